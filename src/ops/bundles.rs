//! `[[bundles]]` sources: open each bundle (import a bundle file into the cache, verified; read a
//! layout directory in place), register it as a source and add one image per name in its
//! `index.json`.
//!
//! Two releases' bundles overlap (the same pause image in both), so a name that arrives twice
//! with the same digest is taken once; the same target name with *different* content cannot
//! both win, so that is an error naming both sources.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::OpsError;
use crate::endpoint::bundle::import;
use crate::endpoint::layout::{LayoutError, LayoutSource};
use crate::model::{bundle_key, BundleSource, ImageSource, Model};
use crate::oci::{Digest, FileDigest};
use crate::resolve::{LocalFile, Sources};
use crate::store::Store;

/// (target repository, tag or `@digest`) → (what the name points at, if known, and who said so).
type Seen = BTreeMap<(String, String), (Option<Digest>, String)>;

fn key(image: &ImageSource) -> (String, String) {
    let tag = match (&image.target_tag, image.reference.digest()) {
        (Some(tag), _) => tag.clone(),
        (None, Some(digest)) => format!("@{digest}"),
        (None, None) => String::new(),
    };
    (image.target_repository.clone(), tag)
}

/// Opens every `[[bundles]]` source; returns each as read (its sha256 and size, for the lock).
pub(super) async fn open_all(
    model: &Model,
    store: &Store,
    sources: &mut Sources,
    images: &mut Vec<ImageSource>,
) -> Result<Vec<LocalFile>, OpsError> {
    let mut read = Vec::with_capacity(model.bundles.len());
    let mut seen: Seen = images
        .iter()
        .map(|i| (key(i), (None, i.display())))
        .collect();
    for bundle in &model.bundles {
        let (source, file) = open(bundle, store).await?;
        read.push(LocalFile::bundle(bundle, file));
        let is_dir = bundle.path.is_dir();
        let named = source
            .index()
            .named_with(bundle.repository.as_deref())
            .map_err(|e| OpsError::Bundle {
                bundle: bundle.written.clone(),
                origin: bundle.origin.clone(),
                source: LayoutError::BadName {
                    path: bundle.path.clone(),
                    source: e,
                },
            })?;
        for entry in named {
            let image = crate::mirrorfile::bundle_image(bundle, is_dir, &entry.name, &model.target)
                .map_err(|reason| OpsError::BundleImage {
                    bundle: bundle.written.clone(),
                    origin: bundle.origin.clone(),
                    name: entry.name.to_string(),
                    reason,
                })?;
            let digest = Some(entry.descriptor.digest.clone());
            match seen.get(&key(&image)) {
                Some((d, _)) if d.is_some() && *d == digest => continue,
                Some((_, first)) => {
                    let (repo, tag) = key(&image);
                    let sep = if tag.starts_with('@') { "" } else { ":" };
                    return Err(OpsError::Conflict {
                        target: format!("{repo}{sep}{tag}"),
                        first: first.clone(),
                        second: image.display(),
                    });
                }
                None => {
                    seen.insert(key(&image), (digest, image.display()));
                    images.push(image);
                }
            }
        }
        sources.insert(&bundle_key(&bundle.path), Arc::new(source));
    }
    Ok(read)
}

/// The source, and the bundle file's sha256 and size (`None` for a layout directory).
async fn open(
    bundle: &BundleSource,
    store: &Store,
) -> Result<(LayoutSource, Option<FileDigest>), OpsError> {
    let err = |source| OpsError::Bundle {
        bundle: bundle.written.clone(),
        origin: bundle.origin.clone(),
        source,
    };
    if bundle.path.is_dir() {
        return Ok((LayoutSource::open_dir(&bundle.path).map_err(err)?, None));
    }
    let path = bundle.path.clone();
    let store = store.clone();
    tokio::task::spawn_blocking(move || import(&path, &store))
        .await
        .map_err(|e| {
            err(LayoutError::Io {
                path: bundle.path.clone(),
                source: std::io::Error::other(e.to_string()),
            })
        })?
        .map_err(err)
}

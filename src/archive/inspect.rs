//! What a bundle (or OCI layout directory) holds, read in one streaming
//! pass without unpacking anything to disk.
//!
//! Every blob is hashed on the way (so the listing also says whether the bundle is intact), and
//! only small JSON documents (manifests, configs: they start with `{`) are kept in memory;
//! layers stream through. The images are then walked from `index.json`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;

use bytes::Bytes;
use serde::Serialize;

use super::{read_bundle, BundleReadError};
use crate::oci::layout::{LayoutIndex, RefNameError};
use crate::oci::{Digest, ManifestView, Platform, RawManifest, Sha256Hasher, MAX_MANIFEST_BYTES};

/// What a bundle holds.
#[derive(Debug, Clone, Serialize)]
pub struct BundleInfo {
    pub path: String,
    /// Top-level files besides the layout (`mirrorfile.toml`, `mirrorfile.lock`).
    pub files: Vec<String>,
    pub images: Vec<InspectImage>,
    pub blobs: u64,
    pub blob_bytes: u64,
    /// Blob entries whose bytes do not hash to their name.
    pub damaged: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct InspectImage {
    /// The name in the bundle (`repository:tag`).
    pub name: String,
    pub digest: String,
    pub media_type: String,
    /// Bytes of everything the image needs (manifests, configs, layers), each blob once.
    pub size: u64,
    pub platforms: Vec<InspectPlatform>,
    /// Blobs it needs that the bundle lacks.
    pub missing: Vec<String>,
    /// Whether the image cannot be copied from this bundle: its root manifest, or a config or
    /// layer of a manifest the bundle holds, is missing. (A child manifest an index lists but
    /// the bundle lacks is only `missing`: a sparse index leaves platforms out on purpose.)
    pub incomplete: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct InspectPlatform {
    pub platform: String,
    pub digest: String,
    pub size: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error(transparent)]
    Read(#[from] BundleReadError),
    #[error("{path}: reading {entry}: {source}")]
    Entry {
        path: String,
        entry: String,
        source: std::io::Error,
    },
    #[error("{path} is not a bundle or OCI layout: {detail}")]
    BadIndex { path: String, detail: String },
    #[error("{path}: an image name in index.json cannot be used: {source}")]
    BadName { path: String, source: RefNameError },
}

#[derive(Default)]
struct Seen {
    index: Option<Vec<u8>>,
    files: Vec<String>,
    sizes: BTreeMap<Digest, u64>,
    documents: BTreeMap<Digest, Bytes>,
    damaged: Vec<String>,
}

/// Reads the bundle at `path`. Blocking: call it from a blocking thread.
pub fn inspect(path: &Path) -> Result<BundleInfo, InspectError> {
    let mut seen = Seen::default();
    let shown = path.display().to_string();
    let read_err = |entry: &str, source: std::io::Error| InspectError::Entry {
        path: shown.clone(),
        entry: entry.to_string(),
        source,
    };
    read_bundle::<InspectError>(path, &mut |file, reader| {
        let Some(rest) = file.name.strip_prefix("blobs/") else {
            let mut bytes = Vec::new();
            reader
                .take(16 * 1024 * 1024)
                .read_to_end(&mut bytes)
                .map_err(|e| read_err(file.name, e))?;
            match file.name {
                "index.json" => seen.index = Some(bytes),
                "oci-layout" => {}
                other => seen.files.push(other.to_string()),
            }
            return Ok(());
        };
        let Ok(digest) = rest.replacen('/', ":", 1).parse::<Digest>() else {
            seen.damaged.push(file.name.to_string());
            return Ok(());
        };
        let keep = file.size <= MAX_MANIFEST_BYTES as u64;
        let mut kept = Vec::new();
        let mut hasher = Sha256Hasher::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = reader.read(&mut buf).map_err(|e| read_err(file.name, e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            if keep {
                kept.extend_from_slice(&buf[..n]);
            }
        }
        seen.sizes.insert(digest.clone(), hasher.len());
        if hasher.finish() != digest {
            seen.damaged.push(file.name.to_string());
        } else if kept.first() == Some(&b'{') {
            seen.documents.insert(digest, Bytes::from(kept));
        }
        Ok(())
    })?;
    let Some(index) = seen.index.take() else {
        return Err(InspectError::BadIndex {
            path: shown,
            detail: "it has no index.json".into(),
        });
    };
    let index = LayoutIndex::parse(&index).map_err(|e| InspectError::BadIndex {
        path: shown.clone(),
        detail: format!("index.json: {e}"),
    })?;
    // Listing needs no placement: a bare-tag name (a skopeo-made layout) is shown as it is.
    let named = index
        .named_with(Some(""))
        .map_err(|source| InspectError::BadName {
            path: shown.clone(),
            source,
        })?;
    let images = named
        .iter()
        .map(|entry| {
            image(
                &seen,
                entry.name.to_string().trim_start_matches(':').to_string(),
                &entry.descriptor.digest,
                entry.descriptor.media_type.to_string(),
            )
        })
        .collect();
    Ok(BundleInfo {
        path: shown,
        files: seen.files,
        images,
        blobs: seen.sizes.len() as u64,
        blob_bytes: seen.sizes.values().sum(),
        damaged: seen.damaged,
    })
}

fn manifest(seen: &Seen, digest: &Digest) -> Option<RawManifest> {
    let bytes = seen.documents.get(digest)?;
    RawManifest::new(bytes.clone(), None).ok()
}

fn image(seen: &Seen, name: String, root: &Digest, media_type: String) -> InspectImage {
    let mut all: BTreeSet<Digest> = BTreeSet::new();
    let mut missing: BTreeSet<Digest> = BTreeSet::new();
    let mut incomplete = false;
    let mut platforms = Vec::new();
    match manifest(seen, root).map(|m| m.view()) {
        Some(Ok(ManifestView::Index(view))) => {
            all.insert(root.clone());
            for child in &view.manifests {
                let mut mine = BTreeSet::new();
                walk(
                    seen,
                    &child.digest,
                    &mut mine,
                    &mut missing,
                    &mut incomplete,
                );
                all.extend(mine.iter().cloned());
                if child.attests().is_some() {
                    continue;
                }
                platforms.push(InspectPlatform {
                    platform: child.platform.clone().unwrap_or_default().to_string(),
                    digest: child.digest.to_string(),
                    size: size_of(seen, &mine),
                });
            }
        }
        Some(Ok(ManifestView::Image(view))) => {
            walk(seen, root, &mut all, &mut missing, &mut incomplete);
            let platform = seen
                .documents
                .get(&view.config.digest)
                .and_then(|b| serde_json::from_slice::<Platform>(b).ok())
                .unwrap_or_default();
            platforms.push(InspectPlatform {
                platform: platform.to_string(),
                digest: root.to_string(),
                size: size_of(seen, &all),
            });
        }
        _ => {
            missing.insert(root.clone());
            incomplete = true;
        }
    }
    InspectImage {
        name,
        digest: root.to_string(),
        media_type,
        size: size_of(seen, &all),
        platforms,
        missing: missing.iter().map(|d| d.to_string()).collect(),
        incomplete,
    }
}

/// Collects a manifest and everything below it.
fn walk(
    seen: &Seen,
    digest: &Digest,
    out: &mut BTreeSet<Digest>,
    missing: &mut BTreeSet<Digest>,
    incomplete: &mut bool,
) {
    if !out.insert(digest.clone()) {
        return;
    }
    let Some(view) = manifest(seen, digest).and_then(|m| m.view().ok()) else {
        out.remove(digest);
        missing.insert(digest.clone());
        return;
    };
    match view {
        ManifestView::Index(view) => {
            for child in &view.manifests {
                walk(seen, &child.digest, out, missing, incomplete);
            }
        }
        ManifestView::Image(view) => {
            for blob in std::iter::once(&view.config).chain(&view.layers) {
                if blob.is_non_distributable() {
                    continue;
                }
                if seen.sizes.contains_key(&blob.digest) {
                    out.insert(blob.digest.clone());
                } else {
                    missing.insert(blob.digest.clone());
                    *incomplete = true;
                }
            }
        }
    }
}

fn size_of(seen: &Seen, digests: &BTreeSet<Digest>) -> u64 {
    digests.iter().filter_map(|d| seen.sizes.get(d)).sum()
}

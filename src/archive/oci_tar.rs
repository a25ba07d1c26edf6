//! An OCI image layout inside a tar: `oci-layout`, `index.json`, `blobs/sha256/…`. Docker 25+
//! writes it next to `manifest.json`; `ctr images export --platform …` (k3s's air-gap archives)
//! writes it alone.
//!
//! `ctr export` keeps `index.json` pointing at the full upstream multi-platform index while only
//! one platform's manifest, config and layers are present, so an index child that is absent is
//! "not in this archive", not an error: the leaves present are taken, and the upstream index
//! digest is kept for provenance. Anything a present manifest names must be present, with the
//! size it states (its digest was checked while spooling).
//!
//! Nothing present is dropped without a word: an attestation (or other `unknown/unknown`)
//! manifest the archive holds is not an image to push, and each one passed over is reported in
//! [`Notes::skipped`] with the archive, its digest and the index that listed it. Absent children
//! are not reported: they are content the archive never carried, not content left behind.

use bytes::Bytes;
use serde::Deserialize;

use super::spool::{Blob, Contents, Spool};
use super::{read_limited, ArchiveError, MAX_JSON_BYTES};
use crate::oci::descriptor::ANNOTATION_REF_NAME;
use crate::oci::{Descriptor, Digest, ManifestView, RawManifest};

/// The OCI layout's root document.
pub const INDEX_JSON: &str = "index.json";
/// containerd's annotation with the full image name.
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
/// Index nesting accepted before refusing.
const MAX_DEPTH: usize = 4;

#[derive(Deserialize)]
struct IndexJson {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

/// One image manifest found in the layout.
#[derive(Debug, Clone)]
pub struct LayoutImage {
    pub names: Vec<String>,
    pub manifest: RawManifest,
    pub config: Blob,
    pub layers: Vec<(Descriptor, Blob)>,
    /// The index that listed it, when it came through one (the upstream multi-platform index).
    pub upstream_index: Option<Digest>,
}

/// What the walk says besides the images it found.
#[derive(Debug, Default)]
pub struct Notes {
    /// Notes about the images found (a name's index without any platform present, …).
    pub warnings: Vec<String>,
    /// Manifests the archive holds that are not taken, each naming the archive, the manifest's
    /// digest and why.
    pub skipped: Vec<String>,
}

/// Walks `index.json` and returns every image manifest present.
pub fn read(
    contents: &Contents,
    spool: &dyn Spool,
    bytes: &[u8],
    notes: &mut Notes,
) -> Result<Vec<LayoutImage>, ArchiveError> {
    let index: IndexJson = serde_json::from_slice(bytes).map_err(|e| ArchiveError::BadJson {
        archive: contents.archive.clone(),
        entry: INDEX_JSON.into(),
        detail: e.to_string(),
    })?;
    let mut out = Vec::new();
    for entry in &index.manifests {
        let names = names_of(entry);
        walk(contents, spool, entry, &names, None, 0, &mut out, notes)?;
    }
    Ok(out)
}

/// The names an `index.json` entry gives its image: containerd's full name, or the OCI ref
/// name when it is a full reference (Docker writes only the tag there).
fn names_of(entry: &Descriptor) -> Vec<String> {
    if let Some(name) = entry.annotations.get(ANNOTATION_IMAGE_NAME) {
        return vec![name.clone()];
    }
    match entry.annotations.get(ANNOTATION_REF_NAME) {
        Some(name) if name.contains('/') || name.contains(':') => vec![name.clone()],
        _ => Vec::new(),
    }
}

#[allow(
    clippy::too_many_arguments,
    reason = "a recursive walk carrying its context"
)]
fn walk(
    contents: &Contents,
    spool: &dyn Spool,
    entry: &Descriptor,
    names: &[String],
    parent: Option<&Digest>,
    depth: usize,
    out: &mut Vec<LayoutImage>,
    notes: &mut Notes,
) -> Result<(), ArchiveError> {
    let image_err = |detail: String| ArchiveError::Image {
        archive: contents.archive.clone(),
        image: names
            .first()
            .cloned()
            .unwrap_or_else(|| entry.digest.to_string()),
        detail,
    };
    if depth > MAX_DEPTH {
        return Err(image_err(format!(
            "indexes nested more than {MAX_DEPTH} deep"
        )));
    }
    let Some(blob) = contents.blob_by_digest(&entry.digest) else {
        if parent.is_none() {
            return Err(ArchiveError::Missing {
                archive: contents.archive.clone(),
                entry: format!("blobs/sha256/{}", entry.digest.hex()),
                named_by: INDEX_JSON.into(),
            });
        }
        return Ok(()); // a platform this archive does not carry
    };
    if blob.size != entry.size {
        return Err(image_err(format!(
            "manifest {} is {} bytes, but its descriptor says {}",
            entry.digest, blob.size, entry.size
        )));
    }
    let bytes = read_limited(
        contents,
        spool,
        blob,
        &entry.digest.to_string(),
        MAX_JSON_BYTES,
    )?;
    let manifest = RawManifest::verified(
        Bytes::from(bytes),
        Some(entry.media_type.as_str()),
        &entry.digest,
    )
    .map_err(|e| image_err(e.to_string()))?;
    match manifest.view().map_err(|e| image_err(e.to_string()))? {
        ManifestView::Index(view) => {
            let before = out.len();
            for child in &view.manifests {
                if child.attests().is_some()
                    || child.platform.as_ref().is_some_and(|p| p.is_unknown())
                {
                    // Not an image to push; say so when the archive holds it.
                    if contents.blob_by_digest(&child.digest).is_some() {
                        notes
                            .skipped
                            .push(skipped_child(contents, child, &manifest, names));
                    }
                    continue;
                }
                walk(
                    contents,
                    spool,
                    child,
                    names,
                    Some(manifest.digest()),
                    depth + 1,
                    out,
                    notes,
                )?;
            }
            if out.len() == before {
                notes.warnings.push(format!(
                    "{}: index {} ({}) has none of its platforms in the archive",
                    contents.archive.display(),
                    manifest.digest().short(),
                    names.first().map_or("unnamed", String::as_str),
                ));
            }
        }
        ManifestView::Image(view) => {
            let present = |d: &Descriptor, what: &str| -> Result<Blob, ArchiveError> {
                let blob =
                    contents
                        .blob_by_digest(&d.digest)
                        .ok_or_else(|| ArchiveError::Missing {
                            archive: contents.archive.clone(),
                            entry: format!("blobs/sha256/{}", d.digest.hex()),
                            named_by: format!("the {what} of manifest {}", manifest.digest()),
                        })?;
                if blob.size != d.size {
                    return Err(image_err(format!(
                        "{what} {} is {} bytes in the archive, but manifest {} says {}",
                        d.digest,
                        blob.size,
                        manifest.digest(),
                        d.size
                    )));
                }
                Ok(blob.clone())
            };
            let config = present(&view.config, "config")?;
            let layers = view
                .layers
                .iter()
                .filter(|l| !l.is_non_distributable())
                .map(|l| present(l, "layer").map(|b| (l.clone(), b)))
                .collect::<Result<Vec<_>, _>>()?;
            out.push(LayoutImage {
                names: names.to_vec(),
                manifest,
                config,
                layers,
                upstream_index: parent.cloned(),
            });
        }
    }
    Ok(())
}

/// The note for an attestation (or `unknown/unknown`) manifest of `index` that is passed over.
fn skipped_child(
    contents: &Contents,
    child: &Descriptor,
    index: &RawManifest,
    names: &[String],
) -> String {
    let what = match child.attests() {
        Some(subject) => format!("attestation manifest {} (for {subject})", child.digest),
        None => format!("manifest {} (platform unknown/unknown)", child.digest),
    };
    format!(
        "{}: {what} in index {} ({}) skipped: an index rebuilt from an archive lists platform images only",
        contents.archive.display(),
        index.digest(),
        names.first().map_or("unnamed", String::as_str),
    )
}

//! `mirror inspect archive:PATH[:NAME]`: the images a `docker save` / podman / OCI archive holds,
//! as mirror would push them.
//!
//! Why through the `[[archives]]` resolver and not a separate reader: what matters to the user
//! is what will land on the target, and for an archive that is decided by resolution (names
//! normalised as docker does, layers checked against the config's diff_ids, uncompressed
//! layers compressed, the archive's own manifest kept only when its layers are already
//! compressed). So the archive is spooled into the cache exactly as `plan` does it (a later
//! `plan` over the same archive then hits the memos), and each image says whether its manifest
//! is the archive's own bytes or the canonical one mirror writes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::inspect::{ConfigJson, ImageInfo, InspectError, Layer};
use crate::archive::ArchiveError;
use crate::model::{ArchiveSource, LayerCompression, Model, Origin, Target};
use crate::oci::{Digest, ManifestView, RawManifest, Reference};
use crate::resolve::archives::resolve_archives;
use crate::resolve::{Provenance, ResolveErrorKind};
use crate::store::Store;

/// Why an archive could not be inspected (kept small: it crosses a blocking task).
#[derive(Debug, thiserror::Error)]
#[error("archive {archive}: {detail}")]
pub struct ArchiveInspectError {
    pub archive: String,
    pub detail: String,
}

impl From<ArchiveInspectError> for InspectError {
    fn from(e: ArchiveInspectError) -> InspectError {
        InspectError::Archive {
            archive: e.archive,
            detail: e.detail,
        }
    }
}

/// Whose bytes an image's manifest is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ManifestFrom {
    /// The archive holds this manifest (OCI layout, `ctr export`); mirror pushes it unchanged.
    Archive,
    /// The archive holds none usable (docker save, or uncompressed layers): this is the
    /// canonical manifest mirror writes and pushes.
    Mirror,
}

/// One image of an archive.
#[derive(Debug, Clone, Serialize)]
pub struct ArchiveImage {
    /// Every name the archive gives it, normalised (`docker.io/rancher/pause:3.6`).
    pub names: Vec<String>,
    pub manifest_from: ManifestFrom,
    #[serde(flatten)]
    pub info: ImageInfo,
    /// The manifest's exact bytes (for `--raw`).
    #[serde(skip)]
    pub raw: RawManifest,
}

/// What `inspect archive:` found.
#[derive(Debug, Clone, Serialize)]
pub struct ArchiveInspection {
    pub archive: String,
    pub images: Vec<ArchiveImage>,
    pub warnings: Vec<String>,
}

/// Reads the archive at `path` through the cache at `store` (blocking: call it off the async
/// threads). `name` keeps only the image with that name; `compression` is how uncompressed
/// layers would be compressed (the Mirrorfile's, else gzip).
pub fn inspect_archive(
    path: &Path,
    name: Option<&str>,
    store: &Store,
    compression: LayerCompression,
) -> Result<ArchiveInspection, ArchiveInspectError> {
    let shown = path.display().to_string();
    if !path.is_file() {
        return Err(ArchiveInspectError {
            archive: shown,
            detail: "no such file".into(),
        });
    }
    let model = Model {
        path: path.to_path_buf(),
        target: Target::Layout {
            path: PathBuf::from("."),
            prefix: None,
        },
        registries: BTreeMap::new(),
        images: Vec::new(),
        bundles: Vec::new(),
        repositories: Vec::new(),
        archives: vec![ArchiveSource {
            pattern: shown.clone(),
            files: vec![path.to_path_buf()],
            platform: None,
            images: None,
            compression,
            index: true,
            // The file name's arch is a claim to report, not a reason to hide the image.
            allow_platform_mismatch: true,
            origin: Origin {
                file: path.to_path_buf(),
                line: 0,
            },
        }],
        cache_dir: Some(store.root().to_path_buf()),
        idle_timeout: None,
        warnings: Vec::new(),
    };
    let read = resolve_archives(&model, store);
    let (resolved, errors) = (read.images, read.errors);
    if !errors.is_empty() {
        let mut detail = errors
            .iter()
            .map(|e| e.kind.to_string())
            .collect::<Vec<_>>()
            .join("; ");
        let bundle = errors.iter().any(|e| {
            matches!(
                *e.kind,
                ResolveErrorKind::Archive(ArchiveError::MirrorBundle { .. })
            )
        });
        if bundle {
            detail.push_str(
                "; `mirror inspect oci-archive:FILE[:NAME]` reads a bundle's images as they are, \
                 `mirror bundle inspect FILE` lists them",
            );
        }
        return Err(ArchiveInspectError {
            archive: shown,
            detail,
        });
    }
    let mut images: Vec<ArchiveImage> = Vec::new();
    let mut at: BTreeMap<Digest, usize> = BTreeMap::new();
    // What the archive holds but would not push comes first: it is about the file.
    let mut warnings: Vec<String> = read.warnings;
    for image in &resolved {
        for w in &image.warnings {
            if !warnings.contains(w) {
                warnings.push(w.clone());
            }
        }
        let Provenance::Archives(platforms) = &image.provenance else {
            continue;
        };
        let label = image.source.reference.to_string();
        for platform in platforms {
            if let Some(&i) = at.get(&platform.manifest) {
                if !images[i].names.contains(&label) {
                    images[i].names.push(label.clone());
                }
                continue;
            }
            let Some(need) = image
                .manifests
                .iter()
                .find(|m| m.manifest.digest() == &platform.manifest)
            else {
                continue;
            };
            let info = info_of(&need.manifest, platform.platform.to_string(), store, &shown)?;
            at.insert(platform.manifest.clone(), images.len());
            images.push(ArchiveImage {
                names: vec![label.clone()],
                manifest_from: if platform.from_archive {
                    ManifestFrom::Archive
                } else {
                    ManifestFrom::Mirror
                },
                info,
                raw: need.manifest.clone(),
            });
        }
    }
    if let Some(name) = name {
        let wanted = normalise(name);
        let all: Vec<String> = images.iter().flat_map(|i| i.names.clone()).collect();
        images.retain(|i| {
            i.names
                .iter()
                .any(|n| Some(n) == wanted.as_ref() || n == name)
        });
        if images.is_empty() {
            return Err(ArchiveInspectError {
                archive: shown,
                detail: format!(
                    "no image named `{name}`; it holds: {}",
                    if all.is_empty() {
                        "nothing".to_string()
                    } else {
                        all.join(", ")
                    }
                ),
            });
        }
    }
    Ok(ArchiveInspection {
        archive: shown,
        images,
        warnings,
    })
}

/// `pause:3.6` → `docker.io/library/pause:3.6`; a name without tag gets `latest`.
fn normalise(name: &str) -> Option<String> {
    let parsed: Reference = name.parse().ok()?;
    if parsed.tag().is_some() || parsed.digest().is_some() {
        return Some(parsed.to_string());
    }
    Reference::new(parsed.registry(), parsed.repository(), Some("latest"), None)
        .ok()
        .map(|r| r.to_string())
}

fn info_of(
    manifest: &RawManifest,
    platform: String,
    store: &Store,
    archive: &str,
) -> Result<ImageInfo, ArchiveInspectError> {
    let bad = |detail: String| ArchiveInspectError {
        archive: archive.to_string(),
        detail,
    };
    let view = match manifest.view() {
        Ok(ManifestView::Image(view)) => view,
        Ok(ManifestView::Index(_)) => {
            return Err(bad(format!(
                "{} is not an image manifest",
                manifest.digest()
            )))
        }
        Err(e) => return Err(bad(e.to_string())),
    };
    let config = store
        .read_small_blob(&view.config.digest)
        .map_err(|e| bad(e.to_string()))?;
    let created = config
        .and_then(|bytes| serde_json::from_slice::<ConfigJson>(&bytes).ok())
        .and_then(|c| c.created);
    Ok(ImageInfo {
        platform,
        digest: manifest.digest().to_string(),
        media_type: manifest.media_type().to_string(),
        size: view.config.size + view.layers.iter().map(|l| l.size).sum::<u64>(),
        created,
        config: Layer::from(&view.config),
        layers: view.layers.iter().map(Layer::from).collect(),
    })
}

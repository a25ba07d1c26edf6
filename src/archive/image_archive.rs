//! Image archives as `docker save` (classic, Docker 25+ hybrid), `podman save --format
//! docker-archive` and `ctr images export` write them, read without any daemon.
//!
//! The layout is detected by content (`manifest.json`, `index.json`), the compression by magic
//! bytes. [`read`] streams the archive once into a [`Spool`] (the cache) and then interprets the
//! metadata, returning each image found with its config, layers and, where the archive holds
//! one, its manifest. Deciding what to push (and compressing layers) belongs to `resolve`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use super::config::ImageConfig;
use super::spool::{Blob, Contents, Spool};
use super::{docker_save, oci_tar, ArchiveError};
use crate::oci::{Descriptor, Digest, RawManifest};

/// Largest `manifest.json`, `index.json` or manifest read into memory.
pub const MAX_JSON_BYTES: u64 = 16 * 1024 * 1024;
pub use crate::oci::MAX_CONFIG_BYTES;

/// One layer of a found image.
#[derive(Debug, Clone)]
pub struct FoundLayer {
    pub blob: Blob,
    /// Its descriptor, when the archive holds a manifest naming it.
    pub descriptor: Option<Descriptor>,
}

/// One image an archive holds (several names may share it).
#[derive(Debug, Clone)]
pub struct FoundImage {
    /// Names as the archive writes them (`rancher/pause:3.6`, `docker.io/library/x:1`).
    pub names: Vec<String>,
    pub config: Blob,
    pub config_info: ImageConfig,
    pub layers: Vec<FoundLayer>,
    /// The manifest the archive holds for it (OCI layouts), bytes as found.
    pub manifest: Option<RawManifest>,
    /// The upstream index the manifest was listed in, for provenance.
    pub upstream_index: Option<Digest>,
}

/// Everything read from one archive.
#[derive(Debug)]
pub struct Found {
    pub contents: Contents,
    pub images: Vec<FoundImage>,
    /// Notes about the images found, for each of them.
    pub warnings: Vec<String>,
    /// Manifests the archive holds that no image takes (attestations), one note each naming
    /// the archive, the digest and why: about the archive, not about any one image.
    pub skipped: Vec<String>,
}

/// Reads a file the archive holds, refusing more than `limit` bytes.
pub(crate) fn read_limited(
    contents: &Contents,
    spool: &dyn Spool,
    blob: &Blob,
    entry: &str,
    limit: u64,
) -> Result<Vec<u8>, ArchiveError> {
    if blob.size > limit {
        return Err(ArchiveError::TooLarge {
            archive: contents.archive.clone(),
            entry: entry.to_string(),
            size: blob.size,
            limit,
        });
    }
    let io = |source| ArchiveError::Io {
        archive: contents.archive.clone(),
        source,
    };
    let mut out = Vec::with_capacity(blob.size as usize);
    spool
        .open(&blob.digest)
        .map_err(io)?
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(io)?;
    Ok(out)
}

/// Reads the archive at `path` and lists the images in it.
///
/// `manifest.json` and `index.json` are reconciled by config digest: an image listed in either
/// is kept (a union, never silently losing one), names are merged, and an OCI manifest without
/// layers while `manifest.json` lists some (the Docker 25.0.0 defect) takes the layers of
/// `manifest.json`.
pub fn read(path: &Path, spool: &dyn Spool) -> Result<Found, ArchiveError> {
    let contents = Contents::read(path, spool)?;
    let mut notes = oci_tar::Notes::default();
    let has_saved = contents.has(docker_save::MANIFEST_JSON);
    let has_layout = contents.has(oci_tar::INDEX_JSON);
    if !has_saved && !has_layout {
        return Err(ArchiveError::NoLayout {
            archive: path.to_path_buf(),
        });
    }
    let mut by_config: BTreeMap<Digest, usize> = BTreeMap::new();
    let mut images: Vec<FoundImage> = Vec::new();
    let mut configs: BTreeMap<Digest, ImageConfig> = BTreeMap::new();
    let mut config_of = |blob: &Blob, image: &str| -> Result<ImageConfig, ArchiveError> {
        if let Some(c) = configs.get(&blob.digest) {
            return Ok(c.clone());
        }
        let bytes = read_limited(
            &contents,
            spool,
            blob,
            &blob.digest.to_string(),
            MAX_CONFIG_BYTES,
        )?;
        let parsed = ImageConfig::parse(&bytes).map_err(|detail| ArchiveError::Image {
            archive: path.to_path_buf(),
            image: image.to_string(),
            detail: format!(
                "config {} is not a valid image config: {detail}",
                blob.digest
            ),
        })?;
        configs.insert(blob.digest.clone(), parsed.clone());
        Ok(parsed)
    };

    if has_layout {
        let blob = contents.get(oci_tar::INDEX_JSON, "the OCI layout")?.clone();
        let bytes = read_limited(&contents, spool, &blob, oci_tar::INDEX_JSON, MAX_JSON_BYTES)?;
        for image in oci_tar::read(&contents, spool, &bytes, &mut notes)? {
            let label = image
                .names
                .first()
                .cloned()
                .unwrap_or_else(|| image.manifest.digest().to_string());
            let config_info = config_of(&image.config, &label)?;
            match by_config.get(&image.config.digest) {
                Some(&i) => merge_names(&mut images[i].names, &image.names),
                None => {
                    by_config.insert(image.config.digest.clone(), images.len());
                    images.push(FoundImage {
                        names: image.names,
                        config: image.config,
                        config_info,
                        layers: image
                            .layers
                            .into_iter()
                            .map(|(d, blob)| FoundLayer {
                                blob,
                                descriptor: Some(d),
                            })
                            .collect(),
                        manifest: Some(image.manifest),
                        upstream_index: image.upstream_index,
                    });
                }
            }
        }
    }
    if has_saved {
        let blob = contents
            .get(docker_save::MANIFEST_JSON, "docker save")?
            .clone();
        let bytes = read_limited(
            &contents,
            spool,
            &blob,
            docker_save::MANIFEST_JSON,
            MAX_JSON_BYTES,
        )?;
        for saved in docker_save::read(&contents, &bytes)? {
            let label = saved
                .names
                .first()
                .cloned()
                .unwrap_or_else(|| saved.config.digest.to_string());
            let config_info = config_of(&saved.config, &label)?;
            let layers: Vec<FoundLayer> = saved
                .layers
                .iter()
                .map(|blob| FoundLayer {
                    blob: blob.clone(),
                    descriptor: None,
                })
                .collect();
            match by_config.get(&saved.config.digest) {
                Some(&i) => {
                    let found = &mut images[i];
                    merge_names(&mut found.names, &saved.names);
                    if found.layers.is_empty() && !layers.is_empty() {
                        notes.warnings.push(format!(
                            "{}: {label}: the OCI manifest lists no layers but manifest.json lists {} (the Docker 25.0.0 save defect); using manifest.json",
                            path.display(),
                            layers.len()
                        ));
                        found.layers = layers;
                        found.manifest = None;
                    }
                }
                None => {
                    if has_layout {
                        notes.warnings.push(format!(
                            "{}: {label} is in manifest.json but not in index.json; kept",
                            path.display()
                        ));
                    }
                    by_config.insert(saved.config.digest.clone(), images.len());
                    images.push(FoundImage {
                        names: saved.names,
                        config: saved.config,
                        config_info,
                        layers,
                        manifest: None,
                        upstream_index: None,
                    });
                }
            }
        }
    }
    Ok(Found {
        contents,
        images,
        warnings: notes.warnings,
        skipped: notes.skipped,
    })
}

fn merge_names(into: &mut Vec<String>, more: &[String]) {
    for name in more {
        if !into.contains(name) {
            into.push(name.clone());
        }
    }
}

//! Bundles on both sides of the air gap.
//!
//! **Target.** [`BundleSink`] is a layout whose blob directory is the cache itself: every blob
//! the executor "pushes" is already there, verified (it was fetched into the cache first), so
//! nothing is copied into a staging directory. The sink only records which image names point at
//! which roots; [`BundleSink::finish`] then streams the deterministic tar of exactly the content
//! reachable from those roots straight from the cache files. A bundle is always written whole,
//! so the probe answers "absent" for everything.
//!
//! **Source.** [`import`] reads a bundle file in one forward pass (a `.tar.zst` cannot seek),
//! streaming every blob into the cache through the verified writer: a blob whose bytes do not
//! hash to its name rejects the whole bundle before anything is planned or pushed. A blob the
//! cache already has is still hashed, so a damaged bundle is always reported. The images are
//! then served by a [`LayoutSource`] over the cache. Nothing here touches the network.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::layout::{LayoutError, LayoutSource};
use super::{EndpointError, Sink};
use crate::archive::{
    read_bundle, write_bundle, BlobFile, BundleContents, BundleWriteError, BundleWritten,
};
use crate::oci::descriptor::ANNOTATION_REF_NAME;
use crate::oci::layout::LayoutIndex;
use crate::oci::{Descriptor, Digest, FileDigest, ManifestView, RawManifest, Sha256Hasher};
use crate::store::{IngestError, Store, StoreError};

/// `index.json` larger than this is refused (it lists names, not content).
const MAX_INDEX_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error(transparent)]
    Write(#[from] BundleWriteError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("blob {digest} of {image} is not in the cache, so the bundle cannot be written")]
    Missing { digest: Digest, image: String },
    #[error("writing the bundle stopped unexpectedly: {0}")]
    Join(String),
}

/// A bundle file as a target.
pub struct BundleSink {
    path: PathBuf,
    cache: Store,
    roots: tokio::sync::Mutex<LayoutIndex>,
}

impl BundleSink {
    pub fn new(path: &Path, cache: Store) -> BundleSink {
        BundleSink {
            path: path.to_path_buf(),
            cache,
            roots: Default::default(),
        }
    }

    /// Writes the bundle: `index.json` naming every root pushed, `extra` files (Mirrorfile,
    /// lock), then manifests and configs in walk order, then layers by digest.
    pub async fn finish(
        &self,
        extra: Vec<(String, Vec<u8>)>,
    ) -> Result<BundleWritten, BundleError> {
        let index = self.roots.lock().await.clone();
        let blobs = self.reachable(&index)?;
        let contents = BundleContents {
            index_json: index.to_bytes(),
            files: extra,
            blobs,
        };
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || write_bundle(&path, &contents))
            .await
            .map_err(|e| BundleError::Join(e.to_string()))?
            .map_err(BundleError::from)
    }

    /// Every blob the named roots need, metadata (manifests, configs) first in walk order so a
    /// streaming reader meets a document before what it references, then layers by digest.
    fn reachable(&self, index: &LayoutIndex) -> Result<Vec<BlobFile>, BundleError> {
        let mut named = index.manifests.clone();
        let name_of = |d: &Descriptor| {
            d.annotations
                .get(ANNOTATION_REF_NAME)
                .cloned()
                .unwrap_or_default()
        };
        named.sort_by_key(name_of);
        let mut seen: BTreeSet<Digest> = BTreeSet::new();
        let mut metadata: Vec<BlobFile> = Vec::new();
        let mut layers: Vec<(Digest, u64, String)> = Vec::new();
        for root in &named {
            let image = name_of(root);
            let mut stack = vec![root.digest.clone()];
            while let Some(digest) = stack.pop() {
                if !seen.insert(digest.clone()) {
                    continue;
                }
                // A sparse index lists children that were not copied: they are not in the cache.
                let Some(manifest) = self.cache.manifest(&digest)? else {
                    continue;
                };
                metadata.push(self.blob_file(&digest, manifest.size(), &image)?);
                match manifest.view() {
                    Ok(ManifestView::Index(view)) => {
                        stack.extend(view.manifests.iter().rev().map(|d| d.digest.clone()));
                    }
                    Ok(ManifestView::Image(view)) => {
                        if seen.insert(view.config.digest.clone()) {
                            metadata.push(self.blob_file(
                                &view.config.digest,
                                view.config.size,
                                &image,
                            )?);
                        }
                        for layer in view.layers.iter().filter(|l| !l.is_non_distributable()) {
                            layers.push((layer.digest.clone(), layer.size, image.clone()));
                        }
                    }
                    Err(_) => {}
                }
            }
        }
        layers.sort();
        let mut out = metadata;
        for (digest, size, image) in layers {
            if seen.insert(digest.clone()) {
                out.push(self.blob_file(&digest, size, &image)?);
            }
        }
        Ok(out)
    }

    fn blob_file(&self, digest: &Digest, size: u64, image: &str) -> Result<BlobFile, BundleError> {
        if !self.cache.contains(digest) {
            return Err(BundleError::Missing {
                digest: digest.clone(),
                image: image.to_string(),
            });
        }
        Ok(BlobFile {
            digest: digest.clone(),
            size,
            path: self.cache.blob_path(digest),
        })
    }
}

#[async_trait]
impl Sink for BundleSink {
    fn describe(&self) -> String {
        format!("bundle {}", self.path.display())
    }

    async fn tag_digest(&self, _: &str, _: &str) -> Result<Option<Digest>, EndpointError> {
        Ok(None)
    }

    async fn has_manifest(&self, _: &str, _: &Digest) -> Result<bool, EndpointError> {
        Ok(false)
    }

    async fn has_blob(&self, _: &str, _: &Digest) -> Result<bool, EndpointError> {
        Ok(false)
    }

    async fn put_blob(
        &self,
        _repository: &str,
        descriptor: &Descriptor,
        _path: &Path,
    ) -> Result<(), EndpointError> {
        // The executor fetched it into the cache (verified) before this call.
        if self.cache.contains(&descriptor.digest) {
            Ok(())
        } else {
            Err(LayoutError::BlobMissing {
                layout: "the cache".into(),
                digest: descriptor.digest.clone(),
            }
            .into())
        }
    }

    async fn put_manifest(
        &self,
        _repository: &str,
        _reference: &str,
        manifest: &RawManifest,
    ) -> Result<(), EndpointError> {
        Ok(self.cache.put_manifest(manifest)?)
    }

    async fn put_root(
        &self,
        repository: &str,
        reference: &str,
        manifest: &RawManifest,
    ) -> Result<(), EndpointError> {
        self.cache.put_manifest(manifest)?;
        self.roots.lock().await.set(
            &super::layout::ref_name(repository, reference),
            manifest.digest(),
            manifest.size(),
            manifest.media_type(),
        );
        Ok(())
    }

    /// One blob namespace: a blob already written is available to every repository.
    async fn mount_blob(&self, _: &str, digest: &Digest, _: &str) -> Result<bool, EndpointError> {
        Ok(self.cache.contains(digest))
    }
}

/// Imports the bundle file at `path` into `cache`, verifying every blob, and returns a source
/// serving its images, with the file's sha256 and size as read (for `mirrorfile.lock`).
/// Blocking: call it from a blocking thread.
pub fn import(
    path: &Path,
    cache: &Store,
) -> Result<(LayoutSource, Option<FileDigest>), LayoutError> {
    let mut index: Option<Vec<u8>> = None;
    let corrupt = |entry: &str, actual: Digest, size: u64| LayoutError::Corrupt {
        bundle: path.to_path_buf(),
        entry: entry.to_string(),
        actual,
        size,
    };
    let import_err = |entry: &str, detail: String| LayoutError::Import {
        bundle: path.to_path_buf(),
        entry: entry.to_string(),
        detail,
    };
    let file_digest = read_bundle::<LayoutError>(path, &mut |file, reader| {
        if file.name == "index.json" {
            let mut bytes = Vec::new();
            reader
                .take(MAX_INDEX_BYTES)
                .read_to_end(&mut bytes)
                .map_err(|e| import_err(file.name, e.to_string()))?;
            index = Some(bytes);
            return Ok(());
        }
        let Some(rest) = file.name.strip_prefix("blobs/") else {
            return Ok(()); // oci-layout, mirrorfile.toml, mirrorfile.lock
        };
        let digest: Digest = rest
            .replacen('/', ":", 1)
            .parse()
            .map_err(|e: crate::oci::DigestError| import_err(file.name, e.to_string()))?;
        if cache.contains(&digest) {
            let mut hasher = Sha256Hasher::new();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = reader
                    .read(&mut buf)
                    .map_err(|e| import_err(file.name, e.to_string()))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
            }
            let size = hasher.len();
            let actual = hasher.finish();
            if actual != digest {
                return Err(corrupt(file.name, actual, size));
            }
            return Ok(());
        }
        match cache.ingest_reader(&digest, Some(file.size), reader) {
            Ok(_) => Ok(()),
            Err(IngestError::DigestMismatch { actual, size, .. }) => {
                Err(corrupt(file.name, actual, size))
            }
            Err(e) => Err(import_err(file.name, e.to_string())),
        }
    })?;
    let Some(bytes) = index else {
        return Err(LayoutError::BadIndex {
            path: path.to_path_buf(),
            detail: "it has no index.json".into(),
        });
    };
    let index = LayoutIndex::parse(&bytes).map_err(|e| LayoutError::BadIndex {
        path: path.to_path_buf(),
        detail: format!("index.json: {e}"),
    })?;
    let source = LayoutSource::new(format!("bundle {}", path.display()), cache.root(), index);
    Ok((source, file_digest))
}

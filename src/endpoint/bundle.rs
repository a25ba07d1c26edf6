//! Bundles on both sides of the air gap.
//!
//! **Target.** [`BundleSink`] is a layout whose blob directory is the cache itself: every blob
//! the executor "pushes" is already there (it was fetched into the cache first), so nothing is
//! copied into a staging directory. A "push" hashes the cache file instead, as a layout or a
//! registry would check the bytes it receives: a copy damaged on disk since it was cached is
//! refused, so the executor's repair (`execute/repair.rs`) removes it, fetches it again from the
//! source and pushes that. The sink records which image names point at which roots and which
//! file each blob was hashed as; [`BundleSink::finish`] then streams the deterministic tar of
//! exactly the content reachable from those roots straight from the cache files, hashing again
//! only a blob whose file changed since (see [`FileStamp`]). A bundle is always written whole, so
//! the probe answers "absent" for everything.
//!
//! **Source.** [`import`] reads a bundle file in one forward pass (a `.tar.zst` cannot seek),
//! streaming every blob into the cache through the verified writer: a blob whose bytes do not
//! hash to its name rejects the whole bundle before anything is planned or pushed. A blob the
//! cache already has is still hashed, so a damaged bundle is always reported. The images are
//! then served by a [`LayoutSource`] over the cache. Nothing here touches the network.

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;

use super::layout::{LayoutError, LayoutSource};
use super::{EndpointError, Sink, UploadProgress};
use crate::archive::{
    read_bundle, write_bundle_until, BlobFile, BundleContents, BundleWriteError, BundleWritten,
};
use crate::fsutil::FileStamp;
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
    /// Blobs whose cache file was hashed to its digest in this run, as that file was then.
    hashed: std::sync::Mutex<HashMap<Digest, FileStamp>>,
}

impl BundleSink {
    pub fn new(path: &Path, cache: Store) -> BundleSink {
        BundleSink {
            path: path.to_path_buf(),
            cache,
            roots: Default::default(),
            hashed: Default::default(),
        }
    }

    /// Writes the bundle: `index.json` naming every root pushed, `extra` files (Mirrorfile,
    /// lock), then manifests and configs in walk order, then layers by digest. When `stop`
    /// completes first (Ctrl-C), the writing gives up and nothing is left at the bundle's path.
    pub async fn finish(
        &self,
        extra: Vec<(String, Vec<u8>)>,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<BundleWritten, BundleError> {
        let index = self.roots.lock().await.clone();
        let blobs = self.reachable(&index)?;
        let contents = BundleContents {
            index_json: index.to_bytes(),
            files: extra,
            blobs,
        };
        let path = self.path.clone();
        let stopping = Arc::new(AtomicBool::new(false));
        let flag = stopping.clone();
        let mut writing =
            tokio::task::spawn_blocking(move || write_bundle_until(&path, &contents, &flag));
        let written = tokio::select! {
            // A stop request wins over a bundle that happens to be finished at the same time.
            biased;
            () = stop => {
                stopping.store(true, Ordering::Relaxed);
                writing.await
            }
            written = &mut writing => written,
        };
        written
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
            hashed: self.hashed_as(digest),
        })
    }

    /// The file `digest` was hashed as in this run, if it was.
    fn hashed_as(&self, digest: &Digest) -> Option<FileStamp> {
        let hashed = self.hashed.lock().unwrap_or_else(|e| e.into_inner());
        hashed.get(digest).copied()
    }
}

/// Hashes the cache file at `path`, telling `progress` how far it got, and returns the file's
/// stamp when its bytes are `descriptor`'s.
fn hash_cached(
    bundle: String,
    path: PathBuf,
    descriptor: &Descriptor,
    progress: &UploadProgress,
) -> Result<FileStamp, LayoutError> {
    let io_err = |source| LayoutError::Io {
        path: path.clone(),
        source,
    };
    let mut file = std::fs::File::open(&path).map_err(io_err)?;
    let stamp = FileStamp::of(&file.metadata().map_err(io_err)?);
    let mut hasher = Sha256Hasher::new();
    hasher
        .update_from(&mut file, |n| progress(n))
        .map_err(io_err)?;
    let size = hasher.len();
    let actual = hasher.finish();
    if actual != descriptor.digest || size != descriptor.size {
        return Err(LayoutError::CachedBlobDamaged {
            bundle,
            digest: descriptor.digest.clone(),
            path,
            actual,
            size,
        });
    }
    Ok(stamp)
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
        repository: &str,
        descriptor: &Descriptor,
        path: &Path,
    ) -> Result<(), EndpointError> {
        let progress: UploadProgress = std::sync::Arc::new(|_| {});
        self.put_blob_reporting(repository, descriptor, path, progress)
            .await
    }

    /// The executor fetched the blob into the cache (verified) before this call; it is hashed
    /// once more here, so a copy damaged on disk since is refused while the run can still fetch
    /// it again, instead of being found when the bundle is written.
    async fn put_blob_reporting(
        &self,
        _repository: &str,
        descriptor: &Descriptor,
        _path: &Path,
        progress: UploadProgress,
    ) -> Result<(), EndpointError> {
        let digest = &descriptor.digest;
        if !self.cache.contains(digest) {
            return Err(LayoutError::BlobMissing {
                layout: "the cache".into(),
                digest: digest.clone(),
            }
            .into());
        }
        if self.hashed_as(digest).is_some() {
            progress(descriptor.size);
            return Ok(());
        }
        let bundle = self.describe();
        let path = self.cache.blob_path(digest);
        let wanted = descriptor.clone();
        let stamp =
            tokio::task::spawn_blocking(move || hash_cached(bundle, path, &wanted, &progress))
                .await
                .map_err(|e| EndpointError::Io {
                    path: self.cache.blob_path(digest),
                    source: std::io::Error::other(e.to_string()),
                })??;
        let mut hashed = self.hashed.lock().unwrap_or_else(|e| e.into_inner());
        hashed.insert(digest.clone(), stamp);
        Ok(())
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

    /// One blob namespace: a blob already taken (hashed) is available to every repository.
    async fn mount_blob(&self, _: &str, digest: &Digest, _: &str) -> Result<bool, EndpointError> {
        Ok(self.hashed_as(digest).is_some())
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
    let truncated = |entry: &str, got: u64, size: u64| {
        import_err(
            entry,
            format!("the file ends after {got} of its {size} bytes: the bundle is truncated"),
        )
    };
    // What the file itself holds: the cache may have more, from other sources.
    let mut in_bundle: BTreeSet<Digest> = BTreeSet::new();
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
        // Counted before reading: every way out below that does not fail verified the bytes.
        in_bundle.insert(digest.clone());
        if cache.contains(&digest) {
            let mut hasher = Sha256Hasher::new();
            hasher
                .update_from(reader, |_| {})
                .map_err(|e| import_err(file.name, e.to_string()))?;
            let size = hasher.len();
            if size < file.size {
                return Err(truncated(file.name, size, file.size));
            }
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
            Err(IngestError::SizeMismatch {
                expected, actual, ..
            }) if actual < expected => Err(truncated(file.name, actual, expected)),
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
    // A tar cut at an entry boundary reads as a valid, shorter tar: check that every image is
    // whole in the file before anything is planned from it.
    for root in &index.manifests {
        if let Some(digest) = lacking(cache, &root.digest, &in_bundle, true)? {
            return Err(LayoutError::Incomplete {
                bundle: path.to_path_buf(),
                image: root
                    .annotations
                    .get(ANNOTATION_REF_NAME)
                    .cloned()
                    .unwrap_or_else(|| root.digest.to_string()),
                digest,
            });
        }
    }
    let source = LayoutSource::new(format!("bundle {}", path.display()), cache.root(), index);
    Ok((source, file_digest))
}

/// The first blob under `digest` that the bundle file did not hold. A root must be there; a
/// child manifest an index lists may be absent (a sparse index leaves platforms out on
/// purpose), but a manifest that is there must have its config and layers.
fn lacking(
    cache: &Store,
    digest: &Digest,
    in_bundle: &BTreeSet<Digest>,
    root: bool,
) -> Result<Option<Digest>, LayoutError> {
    if !in_bundle.contains(digest) {
        return Ok(root.then(|| digest.clone()));
    }
    let cached = cache.manifest(digest).map_err(|e| LayoutError::Io {
        path: cache.root().to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let Some(manifest) = cached else {
        return Ok(Some(digest.clone()));
    };
    match manifest.view() {
        Ok(ManifestView::Index(view)) => {
            for child in &view.manifests {
                if let Some(missing) = lacking(cache, &child.digest, in_bundle, false)? {
                    return Ok(Some(missing));
                }
            }
            Ok(None)
        }
        Ok(ManifestView::Image(view)) => Ok(std::iter::once(&view.config)
            .chain(&view.layers)
            .filter(|blob| !blob.is_non_distributable())
            .find(|blob| !in_bundle.contains(&blob.digest))
            .map(|blob| blob.digest.clone())),
        // Not a manifest: it was imported as a blob, and nothing below it is needed.
        Err(_) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::MediaType;

    fn layer(bytes: &[u8]) -> Descriptor {
        Descriptor {
            media_type: MediaType::parse("application/vnd.oci.image.layer.v1.tar+gzip"),
            digest: Digest::sha256_of(bytes),
            size: bytes.len() as u64,
            platform: None,
            annotations: Default::default(),
            urls: vec![],
            artifact_type: None,
        }
    }

    #[tokio::test]
    async fn a_taken_blob_is_hashed_once_and_a_damaged_one_is_refused_as_bad_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = Store::open(&dir.path().join("cache")).expect("cache");
        let good = layer(b"good layer");
        let bad = layer(b"bad layer");
        for (d, bytes) in [(&good, &b"good layer"[..]), (&bad, b"bad layer")] {
            assert!(cache.put_small_blob(&d.digest, bytes).expect("cache"));
        }
        std::fs::write(cache.blob_path(&bad.digest), b"bad layeR").expect("damage");
        let sink = BundleSink::new(&dir.path().join("out.tar"), cache.clone());
        let path = cache.blob_path(&good.digest);

        sink.put_blob("r", &good, &path).await.expect("intact");
        let stamp = FileStamp::of(&std::fs::metadata(&path).expect("stat"));
        assert_eq!(sink.hashed_as(&good.digest), Some(stamp));
        let file = sink.blob_file(&good.digest, good.size, "r").expect("file");
        assert_eq!(
            file.hashed,
            Some(stamp),
            "the writer need not hash it again"
        );
        assert!(sink
            .mount_blob("s", &good.digest, "r")
            .await
            .expect("mount"));

        let err = sink
            .put_blob("r", &bad, &cache.blob_path(&bad.digest))
            .await
            .expect_err("damaged");
        assert!(
            matches!(
                &err,
                EndpointError::Layout(LayoutError::CachedBlobDamaged { actual, .. })
                    if *actual == Digest::sha256_of(b"bad layeR")
            ),
            "{err}"
        );
        assert!(err.may_be_bad_content(), "so the executor repairs it");
        assert_eq!(sink.hashed_as(&bad.digest), None);
        assert!(!sink.mount_blob("s", &bad.digest, "r").await.expect("mount"));
    }

    #[tokio::test]
    async fn a_stop_while_the_bundle_is_written_leaves_no_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = Store::open(&dir.path().join("cache")).expect("cache");
        let path = dir.path().join("out.tar");
        let sink = BundleSink::new(&path, cache);
        let err = sink
            .finish(vec![("mirrorfile.toml".into(), b"x".to_vec())], async {})
            .await
            .expect_err("stopped");
        assert!(
            matches!(err, BundleError::Write(BundleWriteError::Stopped { .. })),
            "{err}"
        );
        assert!(!path.exists());
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .flatten()
            .map(|e| e.file_name())
            .filter(|n| n != "cache")
            .collect();
        assert!(left.is_empty(), "no temp file left: {left:?}");
        // Without a stop the same sink writes its bundle.
        let written = sink
            .finish(vec![], std::future::pending())
            .await
            .expect("written");
        assert_eq!(written.path, path);
        assert!(path.exists());
    }
}

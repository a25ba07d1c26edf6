//! [`Sink`] and [`Source`] over OCI image layouts.
//!
//! A layout target *is* a [`Store`] at another root (the same verified writer as the cache:
//! temp file, hash, fsync, rename) plus an `index.json` naming each image
//! `repository:tag` in its `org.opencontainers.image.ref.name` annotation. Because its
//! `tag_digest` / `has_manifest` / `has_blob` answer from that directory, a rerun into a layout
//! is incremental like a rerun into a registry. A layout has one blob namespace for all
//! repositories, so a "mount" always succeeds when the blob is there.
//!
//! The source side reads images by name from an index plus a blob directory: a layout
//! directory's own, or (for bundles, see [`super::bundle`]) the cache they were imported into.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::{ByteStream, EndpointError, Sink, Source};
use crate::archive::BundleReadError;
use crate::oci::descriptor::ANNOTATION_REF_NAME;
use crate::oci::layout::{LayoutIndex, RefName, RefNameError};
use crate::oci::{Descriptor, Digest, RawManifest, Reference};
use crate::store::Store;

const CHUNK: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not an OCI layout or bundle: {detail}")]
    BadIndex { path: PathBuf, detail: String },
    #[error("{path}: an image name in index.json cannot be used: {source}")]
    BadName { path: PathBuf, source: RefNameError },
    #[error("{layout} has no image named `{name}`")]
    NotFound { layout: String, name: String },
    /// No name was given and the layout holds more than one image.
    #[error("{layout} holds {count} images; name the one you mean (`oci:DIR:NAME`, or `oci-archive:FILE:NAME` for a bundle): {names}")]
    WhichImage {
        layout: String,
        count: usize,
        names: String,
    },
    #[error("{layout} lacks blob {digest}, which its images need")]
    BlobMissing { layout: String, digest: Digest },
    #[error("bundle {bundle} is incomplete: it lacks {digest}, which `{image}` needs (a file cut short at an entry boundary?); nothing was pushed")]
    Incomplete {
        bundle: PathBuf,
        image: String,
        digest: Digest,
    },
    /// A cache file that a bundle target was to hold no longer hashes to its name.
    #[error(
        "{bundle}: cache file {path} holds {size} bytes that hash to {actual}, not to {digest}"
    )]
    CachedBlobDamaged {
        bundle: String,
        digest: Digest,
        path: PathBuf,
        actual: Digest,
        size: u64,
    },
    #[error("bundle {bundle}: {entry} holds bytes that hash to {actual} ({size} bytes), not to its name: the bundle is damaged, nothing was pushed")]
    Corrupt {
        bundle: PathBuf,
        entry: String,
        actual: Digest,
        size: u64,
    },
    #[error(transparent)]
    Read(#[from] BundleReadError),
    #[error("layout {layout}: copying blob {digest} into it: {detail}")]
    Copy {
        layout: PathBuf,
        digest: Digest,
        detail: String,
    },
    #[error("bundle {bundle}: importing {entry}: {detail}")]
    Import {
        bundle: PathBuf,
        entry: String,
        detail: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> LayoutError + '_ {
    move |source| LayoutError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads and parses `index.json` of the layout at `dir` (an empty index when absent).
fn read_index(dir: &Path) -> Result<LayoutIndex, LayoutError> {
    let path = dir.join("index.json");
    match std::fs::read(&path) {
        Ok(bytes) => LayoutIndex::parse(&bytes).map_err(|e| LayoutError::BadIndex {
            path: path.clone(),
            detail: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(LayoutIndex::default()),
        Err(e) => Err(io_err(&path)(e)),
    }
}

/// The name an image gets in a layout.
pub(super) fn ref_name(repository: &str, reference: &str) -> RefName {
    match reference.parse::<Digest>() {
        Ok(digest) => RefName::new(repository, None, Some(digest)),
        Err(_) => RefName::new(repository, Some(reference), None),
    }
}

/// An OCI layout directory as a target.
pub struct LayoutSink {
    dir: PathBuf,
    store: Store,
    index: tokio::sync::Mutex<LayoutIndex>,
}

impl LayoutSink {
    /// Opens (creating when needed) the layout at `dir`.
    pub fn open(dir: &Path) -> Result<LayoutSink, EndpointError> {
        let store = Store::open(dir)?;
        let index = read_index(dir)?;
        Ok(LayoutSink {
            dir: dir.to_path_buf(),
            store,
            index: tokio::sync::Mutex::new(index),
        })
    }
}

#[async_trait]
impl Sink for LayoutSink {
    fn describe(&self) -> String {
        format!("layout {}", self.dir.display())
    }

    async fn tag_digest(
        &self,
        repository: &str,
        tag: &str,
    ) -> Result<Option<Digest>, EndpointError> {
        let name = RefName::new(repository, Some(tag), None).to_string();
        let index = self.index.lock().await;
        Ok(index
            .lookup(&name)
            .map(|d| d.digest.clone())
            .filter(|d| self.store.contains(d)))
    }

    async fn has_manifest(
        &self,
        _repository: &str,
        digest: &Digest,
    ) -> Result<bool, EndpointError> {
        Ok(self.store.contains(digest))
    }

    async fn has_blob(&self, _repository: &str, digest: &Digest) -> Result<bool, EndpointError> {
        Ok(self.store.contains(digest))
    }

    async fn put_blob(
        &self,
        _repository: &str,
        descriptor: &Descriptor,
        path: &Path,
    ) -> Result<(), EndpointError> {
        if self.store.contains(&descriptor.digest) {
            return Ok(());
        }
        let store = self.store.clone();
        let descriptor = descriptor.clone();
        let path = path.to_path_buf();
        let dir = self.dir.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let mut file = std::fs::File::open(&path).map_err(io_err(&path))?;
            store
                .ingest_reader(&descriptor.digest, Some(descriptor.size), &mut file)
                .map_err(|e| LayoutError::Copy {
                    layout: dir,
                    digest: descriptor.digest.clone(),
                    detail: e.to_string(),
                })
        })
        .await;
        match joined {
            Ok(result) => result.map(|_| ()).map_err(EndpointError::from),
            Err(e) => Err(io_err(&self.dir)(std::io::Error::other(e.to_string())).into()),
        }
    }

    async fn put_manifest(
        &self,
        _repository: &str,
        _reference: &str,
        manifest: &RawManifest,
    ) -> Result<(), EndpointError> {
        Ok(self.store.put_manifest(manifest)?)
    }

    async fn put_root(
        &self,
        repository: &str,
        reference: &str,
        manifest: &RawManifest,
    ) -> Result<(), EndpointError> {
        self.store.put_manifest(manifest)?;
        let mut index = self.index.lock().await;
        index.set(
            &ref_name(repository, reference),
            manifest.digest(),
            manifest.size(),
            manifest.media_type(),
        );
        self.store.replace_index(&index.to_bytes())?;
        Ok(())
    }

    async fn mount_blob(
        &self,
        _repository: &str,
        digest: &Digest,
        _from: &str,
    ) -> Result<bool, EndpointError> {
        Ok(self.store.contains(digest))
    }
}

/// Images read by name from an index and a blob directory.
#[derive(Debug, Clone)]
pub struct LayoutSource {
    label: String,
    root: PathBuf,
    index: LayoutIndex,
}

impl LayoutSource {
    /// A source over the blobs under `root` (`root/blobs/sha256/…`) named by `index`.
    pub fn new(label: String, root: &Path, index: LayoutIndex) -> LayoutSource {
        LayoutSource {
            label,
            root: root.to_path_buf(),
            index,
        }
    }

    /// Reads the layout directory at `dir` in place.
    pub fn open_dir(dir: &Path) -> Result<LayoutSource, LayoutError> {
        if !dir.join("index.json").is_file() {
            return Err(LayoutError::BadIndex {
                path: dir.to_path_buf(),
                detail: "it has no index.json".into(),
            });
        }
        Ok(LayoutSource::new(
            format!("layout {}", dir.display()),
            dir,
            read_index(dir)?,
        ))
    }

    pub fn index(&self) -> &LayoutIndex {
        &self.index
    }

    /// The `index.json` entry named `name` (its `org.opencontainers.image.ref.name`: a tag as
    /// skopeo writes it, or a full `repository:tag`; or a digest), or the only entry when `name`
    /// is `None`. The error lists the names the layout has.
    pub fn find(&self, name: Option<&str>) -> Result<Descriptor, LayoutError> {
        let entries = &self.index.manifests;
        let found = match name {
            Some(name) => entries.iter().find(|e| {
                e.annotations.get(ANNOTATION_REF_NAME).map(String::as_str) == Some(name)
                    || e.digest.to_string() == name
            }),
            None if entries.len() == 1 => entries.first(),
            None => None,
        };
        found.cloned().ok_or_else(|| {
            let names: Vec<&str> = entries
                .iter()
                .filter_map(|e| e.annotations.get(ANNOTATION_REF_NAME).map(String::as_str))
                .collect();
            let names = if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            };
            match name {
                Some(name) => LayoutError::NotFound {
                    layout: format!("{} (names in it: {names})", self.label),
                    name: name.to_string(),
                },
                None => LayoutError::WhichImage {
                    layout: self.label.clone(),
                    count: entries.len(),
                    names,
                },
            }
        })
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm().as_str())
            .join(digest.hex())
    }

    fn missing(&self, digest: &Digest) -> EndpointError {
        LayoutError::BlobMissing {
            layout: self.label.clone(),
            digest: digest.clone(),
        }
        .into()
    }
}

#[async_trait]
impl Source for LayoutSource {
    fn describe(&self) -> String {
        self.label.clone()
    }

    async fn resolve(&self, reference: &Reference) -> Result<Digest, EndpointError> {
        if let Some(digest) = reference.digest() {
            return Ok(digest.clone());
        }
        let name = RefName::new(reference.repository(), reference.tag(), None).to_string();
        // A layout written by `skopeo copy … oci:DIR:TAG` names images by bare tag; the
        // Mirrorfile's `repository` placed them (see `LayoutIndex::named_with`).
        let bare = reference.tag().and_then(|tag| self.index.lookup(tag));
        self.index
            .lookup(&name)
            .or(bare)
            .map(|d| d.digest.clone())
            .ok_or_else(|| {
                LayoutError::NotFound {
                    layout: self.label.clone(),
                    name,
                }
                .into()
            })
    }

    async fn manifest(
        &self,
        _repository: &str,
        digest: &Digest,
    ) -> Result<RawManifest, EndpointError> {
        let path = self.blob_path(digest);
        let bytes = match tokio::fs::read(&path).await {
            Ok(bytes) => Bytes::from(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(self.missing(digest)),
            Err(e) => return Err(io_err(&path)(e).into()),
        };
        Ok(RawManifest::verified(bytes, None, digest)?)
    }

    async fn blob(
        &self,
        _repository: &str,
        descriptor: &Descriptor,
        offset: u64,
    ) -> Result<(u64, ByteStream), EndpointError> {
        let path = self.blob_path(&descriptor.digest);
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(self.missing(&descriptor.digest))
            }
            Err(e) => return Err(io_err(&path)(e).into()),
        };
        if offset > 0 {
            file.seek(SeekFrom::Start(offset))
                .await
                .map_err(io_err(&path))?;
        }
        let stream = futures_util::stream::unfold(Some((file, path)), |state| async move {
            let (mut file, path) = state?;
            let mut buf = vec![0u8; CHUNK];
            match file.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(Bytes::from(buf)), Some((file, path))))
                }
                Err(e) => Some((Err(io_err(&path)(e).into()), None)),
            }
        });
        Ok((offset, Box::pin(stream)))
    }
}

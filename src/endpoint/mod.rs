//! One source/sink shape over every place images live (registries, OCI layout directories,
//! bundles), so the planner and executor never care which one they talk to.
//!
//! Operations are addressed by repository and digest, like the distribution API, and manifests
//! travel as [`RawManifest`] bytes. Capabilities only some places have (cross-repository mounts)
//! have default methods that say "not available" so callers fall back to the general path.

pub mod bundle;
pub mod layout;
pub mod offline;
pub mod registry;
pub mod retry;
pub mod retrying;

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use crate::oci::{Descriptor, Digest, ManifestError, RawManifest, Reference};
use crate::registry::RegistryError;
pub use crate::registry::UploadProgress;
use crate::store::StoreError;

/// A stream of blob bytes.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, EndpointError>> + Send>>;

#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Layout(#[from] layout::LayoutError),
    #[error("blob {digest} is larger than {limit} bytes, too large for an image config")]
    TooLarge { digest: Digest, limit: u64 },
    /// Retries ran out; the last error is kept.
    #[error("gave up after {attempts} attempts: {last}")]
    GaveUp {
        attempts: u32,
        last: Box<EndpointError>,
    },
    /// `--offline`: the answer would need the network.
    #[error("offline: {0}")]
    Offline(String),
    #[error("{what} is not supported by {endpoint}")]
    Unsupported { what: String, endpoint: String },
}

impl EndpointError {
    /// `error`, wrapped to say how many attempts were made when there was more than one.
    pub fn gave_up(error: EndpointError, attempts: u32) -> EndpointError {
        if attempts > 1 {
            EndpointError::GaveUp {
                attempts,
                last: Box::new(error),
            }
        } else {
            error
        }
    }

    /// Whether a registry refused a manifest because it does not see something it references.
    pub fn is_manifest_blob_unknown(&self) -> bool {
        match self {
            EndpointError::Registry(e) => e.is_manifest_blob_unknown(),
            _ => false,
        }
    }

    /// Whether the registry said the thing asked for does not exist (404).
    pub fn is_not_found(&self) -> bool {
        match self {
            EndpointError::Registry(e) => e.is_not_found(),
            _ => false,
        }
    }

    /// Whether the sink may have refused the bytes themselves (a registry's DIGEST_INVALID or
    /// another 400 to an upload, a layout's hash check): worth re-hashing the local copy.
    pub fn may_be_bad_content(&self) -> bool {
        match self {
            EndpointError::Registry(e) => e.may_be_bad_content(),
            EndpointError::Layout(_) | EndpointError::Store(_) => true,
            EndpointError::GaveUp { last, .. } => last.may_be_bad_content(),
            _ => false,
        }
    }

    /// Whether trying the same operation again may succeed (network trouble, 5xx, 429).
    pub fn is_retryable(&self) -> bool {
        match self {
            EndpointError::Registry(e) => e.is_retryable(),
            _ => false,
        }
    }

    /// The host no connection could be made to, when that is what failed.
    pub fn unreachable_host(&self) -> Option<&str> {
        match self {
            EndpointError::Registry(e) => e.unreachable_host(),
            EndpointError::GaveUp { last, .. } => last.unreachable_host(),
            _ => None,
        }
    }

    /// How long the server asked us to wait, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            EndpointError::Registry(e) => e.retry_after(),
            _ => None,
        }
    }
}

/// Somewhere images are read from.
#[async_trait]
pub trait Source: Send + Sync {
    /// A short name for messages (`registry 127.0.0.1:5000`).
    fn describe(&self) -> String;

    /// The digest a reference currently points at (a HEAD where the protocol allows: Docker Hub
    /// counts GETs against its pull limit, not HEADs).
    async fn resolve(&self, reference: &Reference) -> Result<Digest, EndpointError>;

    /// The exact bytes of a manifest, verified against `digest`.
    async fn manifest(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<RawManifest, EndpointError>;

    /// A blob's bytes, starting at `offset` when the source supports resuming (the returned
    /// offset says where the stream really starts).
    async fn blob(
        &self,
        repository: &str,
        descriptor: &Descriptor,
        offset: u64,
    ) -> Result<(u64, ByteStream), EndpointError>;

    /// HTTP requests made so far (0 for local sources).
    fn requests(&self) -> u64 {
        0
    }

    /// Every tag of a repository, as the source lists them (any order).
    async fn list_tags(&self, repository: &str) -> Result<Vec<String>, EndpointError> {
        Err(EndpointError::Unsupported {
            what: format!("listing the tags of {repository}"),
            endpoint: self.describe(),
        })
    }

    /// A small blob (an image config) read whole, refusing anything over `limit` bytes.
    async fn small_blob(
        &self,
        repository: &str,
        descriptor: &Descriptor,
        limit: u64,
    ) -> Result<Bytes, EndpointError> {
        if descriptor.size > limit {
            return Err(EndpointError::TooLarge {
                digest: descriptor.digest.clone(),
                limit,
            });
        }
        let (_, mut stream) = self.blob(repository, descriptor, 0).await?;
        let mut out = Vec::with_capacity(descriptor.size as usize);
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk?);
            if out.len() as u64 > limit {
                return Err(EndpointError::TooLarge {
                    digest: descriptor.digest.clone(),
                    limit,
                });
            }
        }
        Ok(Bytes::from(out))
    }
}

/// Somewhere images are written to.
#[async_trait]
pub trait Sink: Send + Sync {
    fn describe(&self) -> String;

    /// The digest a tag points at now, or `None` when the tag does not exist.
    async fn tag_digest(
        &self,
        repository: &str,
        tag: &str,
    ) -> Result<Option<Digest>, EndpointError>;

    async fn has_manifest(&self, repository: &str, digest: &Digest) -> Result<bool, EndpointError>;

    async fn has_blob(&self, repository: &str, digest: &Digest) -> Result<bool, EndpointError>;

    /// Uploads a verified blob from the cache file at `path`.
    async fn put_blob(
        &self,
        repository: &str,
        descriptor: &Descriptor,
        path: &Path,
    ) -> Result<(), EndpointError>;

    /// [`Sink::put_blob`], telling `progress` how many bytes went out as they go. Sinks that
    /// cannot tell report the whole blob once it is written.
    async fn put_blob_reporting(
        &self,
        repository: &str,
        descriptor: &Descriptor,
        path: &Path,
        progress: UploadProgress,
    ) -> Result<(), EndpointError> {
        self.put_blob(repository, descriptor, path).await?;
        progress(descriptor.size);
        Ok(())
    }

    /// Pushes manifest bytes under `reference` (a tag, or the digest itself).
    async fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        manifest: &RawManifest,
    ) -> Result<(), EndpointError>;

    /// Pushes an image's root manifest under the name users pull it by: `reference` is its tag,
    /// or its digest when it has none. Registries treat it like any manifest; layouts also
    /// record the name in `index.json` (a digest-only child is not named there).
    async fn put_root(
        &self,
        repository: &str,
        reference: &str,
        manifest: &RawManifest,
    ) -> Result<(), EndpointError> {
        self.put_manifest(repository, reference, manifest).await
    }

    /// Makes a blob that `from` already holds available in `repository` without uploading it.
    /// `Ok(false)` means "not mounted, upload it instead".
    async fn mount_blob(
        &self,
        _repository: &str,
        _digest: &Digest,
        _from: &str,
    ) -> Result<bool, EndpointError> {
        Ok(false)
    }

    /// HTTP requests made so far (0 for local sinks).
    fn requests(&self) -> u64 {
        0
    }
}

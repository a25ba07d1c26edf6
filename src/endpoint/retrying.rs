//! [`RetryingSource`] and [`RetryingSink`]: the read-only questions of the resolve and plan
//! phases (HEAD/GET of manifests, image configs, target probes), retried with backoff.
//!
//! A 429 or 503 while resolving a tag is as likely as one while copying a layer, and failing
//! the whole run on the first one would make `plan` the flakiest command. Streams and writes
//! pass through untouched: the executor retries whole tasks, and wrapping both would multiply
//! the attempts beyond `--retries`.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use super::retry::{with_retries, RetryPolicy, Retryable};
use super::{ByteStream, EndpointError, Sink, Source};
use crate::oci::{Descriptor, Digest, RawManifest, Reference};

impl Retryable for EndpointError {
    fn is_retryable(&self) -> bool {
        EndpointError::is_retryable(self)
    }

    fn retry_after(&self) -> Option<std::time::Duration> {
        EndpointError::retry_after(self)
    }
}

/// Runs `op` under `policy`; a failure after more than one attempt says how many were made.
async fn retried<T, F, Fut>(policy: RetryPolicy, what: &str, op: F) -> Result<T, EndpointError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, EndpointError>>,
{
    let on_retry = |attempt, delay, error: &EndpointError| {
        tracing::warn!("{what}: retry {attempt} in {delay:?} after: {error}");
    };
    with_retries(policy, op, on_retry)
        .await
        .map_err(|(error, attempts)| EndpointError::gave_up(error, attempts))
}

/// A [`Source`] whose questions are retried.
pub struct RetryingSource {
    inner: Arc<dyn Source>,
    policy: RetryPolicy,
}

impl RetryingSource {
    pub fn new(inner: Arc<dyn Source>, policy: RetryPolicy) -> Self {
        RetryingSource { inner, policy }
    }
}

#[async_trait]
impl Source for RetryingSource {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    async fn resolve(&self, reference: &Reference) -> Result<Digest, EndpointError> {
        retried(self.policy, "resolve", || self.inner.resolve(reference)).await
    }

    async fn manifest(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<RawManifest, EndpointError> {
        retried(self.policy, "fetch manifest", || {
            self.inner.manifest(repository, digest)
        })
        .await
    }

    async fn blob(
        &self,
        repository: &str,
        descriptor: &Descriptor,
        offset: u64,
    ) -> Result<(u64, ByteStream), EndpointError> {
        self.inner.blob(repository, descriptor, offset).await
    }

    fn requests(&self) -> u64 {
        self.inner.requests()
    }

    async fn list_tags(&self, repository: &str) -> Result<Vec<String>, EndpointError> {
        retried(self.policy, "list tags", || {
            self.inner.list_tags(repository)
        })
        .await
    }

    async fn small_blob(
        &self,
        repository: &str,
        descriptor: &Descriptor,
        limit: u64,
    ) -> Result<Bytes, EndpointError> {
        retried(self.policy, "fetch config", || {
            self.inner.small_blob(repository, descriptor, limit)
        })
        .await
    }
}

/// A [`Sink`] whose probes (tags, manifests, blobs present?) are retried.
pub struct RetryingSink {
    inner: Arc<dyn Sink>,
    policy: RetryPolicy,
}

impl RetryingSink {
    pub fn new(inner: Arc<dyn Sink>, policy: RetryPolicy) -> Self {
        RetryingSink { inner, policy }
    }
}

#[async_trait]
impl Sink for RetryingSink {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    async fn tag_digest(
        &self,
        repository: &str,
        tag: &str,
    ) -> Result<Option<Digest>, EndpointError> {
        retried(self.policy, "probe tag", || {
            self.inner.tag_digest(repository, tag)
        })
        .await
    }

    async fn has_manifest(&self, repository: &str, digest: &Digest) -> Result<bool, EndpointError> {
        retried(self.policy, "probe manifest", || {
            self.inner.has_manifest(repository, digest)
        })
        .await
    }

    async fn has_blob(&self, repository: &str, digest: &Digest) -> Result<bool, EndpointError> {
        retried(self.policy, "probe blob", || {
            self.inner.has_blob(repository, digest)
        })
        .await
    }

    async fn put_blob(
        &self,
        repository: &str,
        descriptor: &Descriptor,
        path: &Path,
    ) -> Result<(), EndpointError> {
        self.inner.put_blob(repository, descriptor, path).await
    }

    async fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        manifest: &RawManifest,
    ) -> Result<(), EndpointError> {
        self.inner
            .put_manifest(repository, reference, manifest)
            .await
    }

    async fn mount_blob(
        &self,
        repository: &str,
        digest: &Digest,
        from: &str,
    ) -> Result<bool, EndpointError> {
        self.inner.mount_blob(repository, digest, from).await
    }

    fn requests(&self) -> u64 {
        self.inner.requests()
    }
}

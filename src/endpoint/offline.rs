//! The source `--offline` puts in place of every registry: it answers nothing, and each refusal
//! names what was missing (a digest not in the cache, a tag not in the lock).
//!
//! Offline mode is structural rather than a flag checked here and there: resolve and execute
//! read through the cache first and ask a [`Source`] only on a miss, so swapping every source for
//! this one guarantees no request reaches a source registry, and every miss becomes an error
//! that says exactly what the cache lacked.

use async_trait::async_trait;

use super::{ByteStream, EndpointError, Source};
use crate::oci::{Descriptor, Digest, RawManifest, Reference};

/// A source that refuses everything.
pub struct OfflineSource {
    registry: String,
}

impl OfflineSource {
    pub fn new(registry: &str) -> Self {
        OfflineSource {
            registry: registry.to_string(),
        }
    }
}

#[async_trait]
impl Source for OfflineSource {
    fn describe(&self) -> String {
        format!("registry {} (offline)", self.registry)
    }

    async fn resolve(&self, reference: &Reference) -> Result<Digest, EndpointError> {
        Err(EndpointError::Offline(format!(
            "{reference} has no entry in the lock, and resolving its tag needs the network (run `mirror lock` online first)"
        )))
    }

    async fn manifest(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<RawManifest, EndpointError> {
        Err(EndpointError::Offline(format!(
            "manifest {digest} of {}/{repository} is not in the cache",
            self.registry
        )))
    }

    async fn blob(
        &self,
        repository: &str,
        descriptor: &Descriptor,
        _offset: u64,
    ) -> Result<(u64, ByteStream), EndpointError> {
        Err(EndpointError::Offline(format!(
            "blob {} of {}/{repository} is not in the cache",
            descriptor.digest, self.registry
        )))
    }

    async fn list_tags(&self, repository: &str) -> Result<Vec<String>, EndpointError> {
        Err(EndpointError::Offline(format!(
            "the tags of {}/{repository} are not in the lock, and listing them needs the network",
            self.registry
        )))
    }
}

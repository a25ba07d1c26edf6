//! [`Source`] and [`Sink`] over the distribution API client.

use std::path::Path;

use async_trait::async_trait;
use futures_util::StreamExt;

use super::{ByteStream, EndpointError, Sink, Source, UploadProgress};
use crate::oci::{Descriptor, Digest, RawManifest, Reference};
use crate::registry::{Client, MountOutcome};

/// A registry, read and written through one client (one connection pool, one token cache).
#[derive(Clone)]
pub struct RegistryEndpoint {
    client: Client,
}

impl RegistryEndpoint {
    pub fn new(client: Client) -> Self {
        RegistryEndpoint { client }
    }
}

#[async_trait]
impl Source for RegistryEndpoint {
    fn describe(&self) -> String {
        format!("registry {}", self.client.host())
    }

    async fn resolve(&self, reference: &Reference) -> Result<Digest, EndpointError> {
        let wanted = reference.manifest_reference();
        match self
            .client
            .head_manifest(reference.repository(), &wanted)
            .await?
        {
            Some(head) => Ok(head.digest),
            // A HEAD 404 can be a registry that does not support HEAD properly; a GET gives the
            // definitive answer (and a clear not-found error).
            None => Ok(self
                .client
                .get_manifest(reference.repository(), &wanted)
                .await?
                .digest()
                .clone()),
        }
    }

    async fn manifest(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<RawManifest, EndpointError> {
        Ok(self
            .client
            .get_manifest(repository, &digest.to_string())
            .await?)
    }

    async fn blob(
        &self,
        repository: &str,
        descriptor: &Descriptor,
        offset: u64,
    ) -> Result<(u64, ByteStream), EndpointError> {
        let response = self
            .client
            .get_blob(repository, &descriptor.digest, offset)
            .await?;
        let stream = response
            .stream
            .map(|item| item.map_err(EndpointError::from));
        Ok((response.resumed_from, Box::pin(stream)))
    }

    fn requests(&self) -> u64 {
        self.client.requests_made()
    }

    async fn list_tags(&self, repository: &str) -> Result<Vec<String>, EndpointError> {
        Ok(self.client.list_tags(repository).await?)
    }
}

#[async_trait]
impl Sink for RegistryEndpoint {
    fn describe(&self) -> String {
        format!("registry {}", self.client.host())
    }

    async fn tag_digest(
        &self,
        repository: &str,
        tag: &str,
    ) -> Result<Option<Digest>, EndpointError> {
        Ok(self
            .client
            .head_manifest(repository, tag)
            .await?
            .map(|h| h.digest))
    }

    async fn has_manifest(&self, repository: &str, digest: &Digest) -> Result<bool, EndpointError> {
        Ok(self
            .client
            .head_manifest(repository, &digest.to_string())
            .await?
            .is_some())
    }

    async fn has_blob(&self, repository: &str, digest: &Digest) -> Result<bool, EndpointError> {
        Ok(self.client.head_blob(repository, digest).await?.is_some())
    }

    async fn put_blob(
        &self,
        repository: &str,
        descriptor: &Descriptor,
        path: &Path,
    ) -> Result<(), EndpointError> {
        Ok(self
            .client
            .upload_blob(repository, &descriptor.digest, descriptor.size, path)
            .await?)
    }

    async fn put_blob_reporting(
        &self,
        repository: &str,
        descriptor: &Descriptor,
        path: &Path,
        progress: UploadProgress,
    ) -> Result<(), EndpointError> {
        Ok(self
            .client
            .upload_blob_reporting(
                repository,
                &descriptor.digest,
                descriptor.size,
                path,
                Some(progress),
            )
            .await?)
    }

    async fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        manifest: &RawManifest,
    ) -> Result<(), EndpointError> {
        Ok(self
            .client
            .put_manifest(repository, reference, manifest)
            .await?)
    }

    async fn mount_blob(
        &self,
        repository: &str,
        digest: &Digest,
        from: &str,
    ) -> Result<bool, EndpointError> {
        Ok(matches!(
            self.client.mount_blob(repository, digest, from).await?,
            MountOutcome::Mounted
        ))
    }

    fn requests(&self) -> u64 {
        self.client.requests_made()
    }
}

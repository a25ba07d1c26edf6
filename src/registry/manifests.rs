//! Manifest and tag endpoints of [`Client`].
//!
//! Manifests are fetched and pushed as exact bytes: a digest reference is verified against the
//! bytes, and so is a `Docker-Content-Digest` header, because a registry or proxy that rewrites a
//! manifest (distribution converts a Docker list fetched without Accept to schema 1) would
//! otherwise change digests silently. The Accept header is always sent: without it distribution
//! answers 404 for an OCI index, which would look like "absent".

use bytes::{Bytes, BytesMut};
use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, LINK};
use reqwest::StatusCode;

use crate::oci::media_type::MANIFEST_ACCEPT;
use crate::oci::{Digest, ManifestError, MediaType, RawManifest, MAX_MANIFEST_BYTES};

use super::auth::{pull_scope, push_scope};
use super::client::{display_ref, header_str, header_u64, Client, DOCKER_CONTENT_DIGEST};
use super::error::RegistryError;
use super::links;

/// Pages of a tag list followed at most (a guard against a registry linking to itself forever).
const MAX_TAG_PAGES: usize = 10_000;

/// What a manifest HEAD tells us without downloading the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestHead {
    pub digest: Digest,
    pub media_type: Option<MediaType>,
    pub size: Option<u64>,
}

impl Client {
    /// A HEAD or GET of a manifest, with the Accept header every manifest read needs
    /// (distribution answers 404 for an OCI index asked for without it), and its operation name.
    fn manifest_read(
        &self,
        method: reqwest::Method,
        repo: &str,
        reference: &str,
    ) -> Result<(String, reqwest::RequestBuilder), RegistryError> {
        let op = format!("{method} manifest {}", display_ref(repo, reference));
        let url = self
            .transport()
            .url(&format!("/v2/{repo}/manifests/{reference}"))?;
        let request = self
            .transport()
            .client()
            .request(method, url)
            .header(ACCEPT, MANIFEST_ACCEPT);
        Ok((op, request))
    }

    /// HEADs a manifest: its digest, type and size, or `None` if the registry has no such tag or
    /// digest. Falls back to GET + hashing when the registry omits `Docker-Content-Digest`.
    pub async fn head_manifest(
        &self,
        repo: &str,
        reference: &str,
    ) -> Result<Option<ManifestHead>, RegistryError> {
        let (op, request) = self.manifest_read(reqwest::Method::HEAD, repo, reference)?;
        let response = self.send(request, &[pull_scope(repo)], &op).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(self.fail(response, &op).await);
        }
        let digest =
            header_str(&response, DOCKER_CONTENT_DIGEST).and_then(|d| d.parse::<Digest>().ok());
        let Some(digest) = digest else {
            let manifest = self.get_manifest(repo, reference).await?;
            return Ok(Some(ManifestHead {
                digest: manifest.digest().clone(),
                media_type: Some(manifest.media_type().clone()),
                size: Some(manifest.size()),
            }));
        };
        Ok(Some(ManifestHead {
            digest,
            media_type: header_str(&response, CONTENT_TYPE.as_str()).map(MediaType::parse),
            size: header_u64(&response, CONTENT_LENGTH.as_str()),
        }))
    }

    /// GETs a manifest's exact bytes. A digest reference is verified; a `Docker-Content-Digest`
    /// that disagrees with the bytes is an error too. The body is refused while streaming once it
    /// passes [`MAX_MANIFEST_BYTES`].
    pub async fn get_manifest(
        &self,
        repo: &str,
        reference: &str,
    ) -> Result<RawManifest, RegistryError> {
        let (op, request) = self.manifest_read(reqwest::Method::GET, repo, reference)?;
        let mut response = self.send(request, &[pull_scope(repo)], &op).await?;
        if !response.status().is_success() {
            return Err(self.fail(response, &op).await);
        }
        let content_type = header_str(&response, CONTENT_TYPE.as_str()).map(str::to_owned);
        let header_digest =
            header_str(&response, DOCKER_CONTENT_DIGEST).and_then(|d| d.parse::<Digest>().ok());
        let too_large = |size: usize| RegistryError::Manifest {
            host: self.host().to_string(),
            operation: op.clone(),
            source: ManifestError::TooLarge {
                digest: reference.to_string(),
                size,
                limit: MAX_MANIFEST_BYTES,
            },
        };
        if let Some(length) = response.content_length() {
            if length > MAX_MANIFEST_BYTES as u64 {
                return Err(too_large(usize::try_from(length).unwrap_or(usize::MAX)));
            }
        }
        let mut body = BytesMut::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(&op, e))?
        {
            if body.len() + chunk.len() > MAX_MANIFEST_BYTES {
                return Err(too_large(body.len() + chunk.len()));
            }
            body.extend_from_slice(&chunk);
        }
        let bytes: Bytes = body.freeze();
        let actual = Digest::sha256_of(&bytes);
        let expected = reference.parse::<Digest>().ok().or(header_digest.clone());
        if let Some(expected) = expected.filter(|e| e.algorithm() == actual.algorithm()) {
            if expected != actual {
                return Err(self.mismatch(&op, expected, actual));
            }
        }
        if let Some(header) = header_digest.filter(|h| h.algorithm() == actual.algorithm()) {
            if header != actual {
                return Err(self.mismatch(&op, header, actual));
            }
        }
        RawManifest::new(bytes, content_type.as_deref()).map_err(|source| RegistryError::Manifest {
            host: self.host().to_string(),
            operation: op,
            source,
        })
    }

    pub(super) fn mismatch(&self, op: &str, expected: Digest, actual: Digest) -> RegistryError {
        RegistryError::DigestMismatch {
            host: self.host().to_string(),
            operation: op.to_string(),
            expected,
            actual,
        }
    }

    /// PUTs the exact bytes under `reference` (a tag or the manifest's digest), with the
    /// manifest's own media type as Content-Type (registries reject a mismatch).
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        manifest: &RawManifest,
    ) -> Result<(), RegistryError> {
        let op = format!("PUT manifest {}", display_ref(repo, reference));
        let url = self
            .transport()
            .url(&format!("/v2/{repo}/manifests/{reference}"))?;
        let request = self
            .transport()
            .client()
            .put(url)
            .header(CONTENT_TYPE, manifest.media_type().as_str())
            .body(manifest.bytes().clone());
        let response = self.send(request, &[push_scope(repo)], &op).await?;
        if !response.status().is_success() {
            return Err(self.fail(response, &op).await);
        }
        if let Some(stored) =
            header_str(&response, DOCKER_CONTENT_DIGEST).and_then(|d| d.parse::<Digest>().ok())
        {
            if &stored != manifest.digest() {
                return Err(self.mismatch(&op, manifest.digest().clone(), stored));
            }
        }
        Ok(())
    }

    /// Every tag of `repo`, following `Link` pagination when the registry paginates.
    pub async fn list_tags(&self, repo: &str) -> Result<Vec<String>, RegistryError> {
        #[derive(serde::Deserialize)]
        struct TagList {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let op = format!("GET tags of {repo}");
        let mut url = self.transport().url(&format!("/v2/{repo}/tags/list"))?;
        let mut tags = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..MAX_TAG_PAGES {
            if !seen.insert(url.clone()) {
                break;
            }
            let request = self.transport().client().get(url.clone());
            let response = self.send(request, &[pull_scope(repo)], &op).await?;
            if !response.status().is_success() {
                return Err(self.fail(response, &op).await);
            }
            let next = header_str(&response, LINK.as_str())
                .and_then(links::next_link)
                .and_then(|target| links::resolve(response.url(), target));
            let body = response
                .bytes()
                .await
                .map_err(|e| self.transport_error(&op, e))?;
            let page: TagList = serde_json::from_slice(&body)
                .map_err(|e| self.invalid(&op, format!("tag list is not JSON: {e}")))?;
            tags.extend(page.tags.unwrap_or_default());
            // A token must never follow a Link to another host.
            match next.filter(|n| {
                n.host_str() == url.host_str()
                    && n.port_or_known_default() == url.port_or_known_default()
            }) {
                Some(next) => url = next,
                None => break,
            }
        }
        Ok(tags)
    }
}

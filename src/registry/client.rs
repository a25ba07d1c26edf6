//! `Client`: one registry host, spoken to through the distribution API.
//!
//! This file holds the client itself, the authenticated send path and the manifest and tag
//! endpoints; blob endpoints live in `blobs.rs`. Manifests travel as the exact bytes received
//! (verified against the digest they were asked for by), never re-serialised. There is no retry
//! policy here: the executor asks [`RegistryError::is_retryable`]. The one exception is
//! authentication: a 401 teaches us the host's challenge (or says a cached token went stale), and
//! the request is sent once more with fresh authorization.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, LINK, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{RequestBuilder, Response, StatusCode};

use crate::model::RegistrySettings;
use crate::oci::media_type::MANIFEST_ACCEPT;
use crate::oci::{Digest, ManifestError, MediaType, RawManifest, MAX_MANIFEST_BYTES};

use super::auth::{pull_scope, push_scope, read_limited, Authenticator};
use super::credentials::{CredentialSource, Credentials};
use super::error::{parse_retry_after, ErrorBody, RegistryError};
use super::http::Transport;
use super::links;

/// How much of an error body is read.
const ERROR_BODY_LIMIT: usize = 16 * 1024;
/// Pages of a tag list followed at most (a guard against a registry linking to itself forever).
const MAX_TAG_PAGES: usize = 10_000;
pub(super) const DEFAULT_SINGLE_PUT_MAX: u64 = 32 * 1024 * 1024;
pub(super) const DEFAULT_CHUNK_SIZE: u64 = 16 * 1024 * 1024;
const DOCKER_CONTENT_DIGEST: &str = "docker-content-digest";

/// What a manifest HEAD tells us without downloading the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestHead {
    pub digest: Digest,
    pub media_type: Option<MediaType>,
    pub size: Option<u64>,
}

/// A client for one registry host. Cheap to clone; clones share connections, tokens and the
/// request counter.
#[derive(Debug, Clone)]
pub struct Client {
    pub(super) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(super) struct Inner {
    pub(super) transport: Transport,
    pub(super) auth: Authenticator,
    pub(super) single_put_max: AtomicU64,
    pub(super) chunk_size: AtomicU64,
}

impl Client {
    /// A client for `host` (a registry name as in references, e.g. `docker.io`, `127.0.0.1:5000`).
    pub fn new(host: &str, settings: &RegistrySettings, credentials: Credentials) -> Result<Client, RegistryError> {
        let source = CredentialSource::default_for(&credentials);
        Client::with_source(host, settings, credentials, source)
    }

    /// Like [`Client::new`], naming where the credentials came from for error messages.
    pub fn with_source(
        host: &str,
        settings: &RegistrySettings,
        credentials: Credentials,
        source: CredentialSource,
    ) -> Result<Client, RegistryError> {
        Ok(Client {
            inner: Arc::new(Inner {
                transport: Transport::new(host, settings)?,
                auth: Authenticator::new(credentials, source),
                single_put_max: AtomicU64::new(DEFAULT_SINGLE_PUT_MAX),
                chunk_size: AtomicU64::new(DEFAULT_CHUNK_SIZE),
            }),
        })
    }

    pub fn host(&self) -> &str {
        self.inner.transport.host()
    }

    /// HTTP requests sent so far by this client and its clones, token requests included.
    pub fn requests_made(&self) -> u64 {
        self.inner.transport.requests_made()
    }

    /// Blobs up to `single_put_max` bytes are uploaded with one PUT; larger ones in PATCH chunks
    /// of `chunk_size` bytes (both at least 1).
    pub fn set_upload_limits(&self, single_put_max: u64, chunk_size: u64) {
        self.inner.single_put_max.store(single_put_max.max(1), Ordering::Relaxed);
        self.inner.chunk_size.store(chunk_size.max(1), Ordering::Relaxed);
    }

    pub(super) fn transport(&self) -> &Transport {
        &self.inner.transport
    }

    /// Sends with authorization for `scopes`; on a 401, learns the challenge (or drops the stale
    /// token) and sends once more when the request can be replayed.
    pub(super) async fn send(&self, request: RequestBuilder, scopes: &[String], op: &str) -> Result<Response, RegistryError> {
        let transport = &self.inner.transport;
        let auth = &self.inner.auth;
        let replay = request.try_clone();
        let header = auth.authorization(transport, scopes, op).await?;
        let had_auth = header.is_some();
        let response = transport.send(with_auth(request, header), op).await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let challenge = response
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let answerable = auth.challenged(challenge.as_deref(), scopes);
        // Basic credentials already sent and refused: sending them again cannot help.
        let pointless = had_auth && !auth.uses_bearer();
        match replay {
            Some(replay) if answerable && !pointless => {
                let header = auth.authorization(transport, scopes, op).await?;
                transport.send(with_auth(replay, header), op).await
            }
            _ => Ok(response),
        }
    }

    /// Turns an unsuccessful response into an error, reading a bounded part of its body.
    pub(super) async fn fail(&self, response: Response, op: &str) -> RegistryError {
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let body = read_limited(response, ERROR_BODY_LIMIT)
            .await
            .map(|b| ErrorBody::parse(&b))
            .unwrap_or_default();
        let host = self.host().to_string();
        let operation = op.to_string();
        if status == 401 || status == 403 {
            RegistryError::Unauthorized {
                host,
                operation,
                status,
                source_label: self.inner.auth.source().clone(),
                body,
            }
        } else {
            RegistryError::Http {
                host,
                operation,
                status,
                body,
                retry_after,
            }
        }
    }

    pub(super) fn invalid(&self, op: &str, message: impl Into<String>) -> RegistryError {
        RegistryError::InvalidResponse {
            host: self.host().to_string(),
            operation: op.to_string(),
            message: message.into(),
        }
    }

    pub(super) fn transport_error(&self, op: &str, err: reqwest::Error) -> RegistryError {
        RegistryError::from_reqwest(self.host(), op, err)
    }

    /// `GET /v2/`: 200 or 401 both mean a registry answers there. A 401 also teaches the
    /// challenge, so the next request authenticates up front.
    pub async fn ping(&self) -> Result<(), RegistryError> {
        let op = "GET /v2/";
        let url = self.transport().url("/v2/")?;
        let response = self.transport().send(self.transport().client().get(url), op).await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            let challenge = response.headers().get(WWW_AUTHENTICATE).and_then(|v| v.to_str().ok());
            self.inner.auth.challenged(challenge, &[]);
            return Ok(());
        }
        if response.status().is_success() {
            Ok(())
        } else {
            Err(self.fail(response, op).await)
        }
    }

    /// HEADs a manifest: its digest, type and size, or `None` if the registry has no such tag or
    /// digest. Falls back to GET + hashing when the registry omits `Docker-Content-Digest`.
    pub async fn head_manifest(&self, repo: &str, reference: &str) -> Result<Option<ManifestHead>, RegistryError> {
        let op = format!("HEAD manifest {}", display_ref(repo, reference));
        let url = self.transport().url(&format!("/v2/{repo}/manifests/{reference}"))?;
        let request = self.transport().client().head(url).header(ACCEPT, MANIFEST_ACCEPT);
        let response = self.send(request, &[pull_scope(repo)], &op).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(self.fail(response, &op).await);
        }
        let digest = header_str(&response, DOCKER_CONTENT_DIGEST).and_then(|d| d.parse::<Digest>().ok());
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
    pub async fn get_manifest(&self, repo: &str, reference: &str) -> Result<RawManifest, RegistryError> {
        let op = format!("GET manifest {}", display_ref(repo, reference));
        let url = self.transport().url(&format!("/v2/{repo}/manifests/{reference}"))?;
        let request = self.transport().client().get(url).header(ACCEPT, MANIFEST_ACCEPT);
        let mut response = self.send(request, &[pull_scope(repo)], &op).await?;
        if !response.status().is_success() {
            return Err(self.fail(response, &op).await);
        }
        let content_type = header_str(&response, CONTENT_TYPE.as_str()).map(str::to_owned);
        let header_digest = header_str(&response, DOCKER_CONTENT_DIGEST).and_then(|d| d.parse::<Digest>().ok());
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
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport_error(&op, e))? {
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
    pub async fn put_manifest(&self, repo: &str, reference: &str, manifest: &RawManifest) -> Result<(), RegistryError> {
        let op = format!("PUT manifest {}", display_ref(repo, reference));
        let url = self.transport().url(&format!("/v2/{repo}/manifests/{reference}"))?;
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
        if let Some(stored) = header_str(&response, DOCKER_CONTENT_DIGEST).and_then(|d| d.parse::<Digest>().ok()) {
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
            let body = response.bytes().await.map_err(|e| self.transport_error(&op, e))?;
            let page: TagList = serde_json::from_slice(&body)
                .map_err(|e| self.invalid(&op, format!("tag list is not JSON: {e}")))?;
            tags.extend(page.tags.unwrap_or_default());
            // A token must never follow a Link to another host.
            match next.filter(|n| n.host_str() == url.host_str() && n.port_or_known_default() == url.port_or_known_default()) {
                Some(next) => url = next,
                None => break,
            }
        }
        Ok(tags)
    }
}

fn with_auth(request: RequestBuilder, header: Option<String>) -> RequestBuilder {
    match header {
        Some(value) => request.header(AUTHORIZATION, value),
        None => request,
    }
}

/// `repo:tag` or `repo@sha256:…`, for operation names.
pub(super) fn display_ref(repo: &str, reference: &str) -> String {
    if reference.contains(':') {
        format!("{repo}@{reference}")
    } else {
        format!("{repo}:{reference}")
    }
}

pub(super) fn header_str<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

/// A numeric header read directly (reqwest's `content_length()` is the body's size hint, which is
/// 0 for HEAD responses).
pub(super) fn header_u64(response: &Response, name: &str) -> Option<u64> {
    header_str(response, name).and_then(|v| v.parse().ok())
}

//! `Client`: one registry host, spoken to through the distribution API.
//!
//! This file holds the client itself and the authenticated send path; manifest and tag endpoints
//! live in `manifests.rs`, blob endpoints in `blobs.rs`. Manifests travel as the exact bytes received
//! (verified against the digest they were asked for by), never re-serialised. There is no retry
//! policy here: the executor asks [`RegistryError::is_retryable`]. The one exception is
//! authentication: a 401 teaches us the host's challenge (or says a cached token went stale), and
//! the request is sent once more with fresh authorization.
//!
//! `[registry."host"] max_concurrency` is a semaphore here, in the client, so every caller
//! (resolve, plan probes, executor) shares the same budget for that host; a blob download holds
//! its permit until its body has been read.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use reqwest::header::{AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{RequestBuilder, Response, StatusCode};

use crate::model::RegistrySettings;

use super::auth::{read_limited, Authenticator};
use super::credentials::{CredentialSource, Credentials};
use super::error::{is_http_to_https_answer, parse_retry_after, ErrorBody, RegistryError};
use super::http::{Activity, Transport};

/// How much of an error body is read.
const ERROR_BODY_LIMIT: usize = 16 * 1024;
pub(super) const DEFAULT_SINGLE_PUT_MAX: u64 = 32 * 1024 * 1024;
pub(super) const DEFAULT_CHUNK_SIZE: u64 = 16 * 1024 * 1024;
pub(super) const DOCKER_CONTENT_DIGEST: &str = "docker-content-digest";

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
    /// Requests in flight at most (`max_concurrency`).
    pub(super) limit: Option<Arc<Semaphore>>,
    /// Set once the host refused a cross-repository mount (401/403/404): not asked again.
    pub(super) mount_refused: AtomicBool,
    pub(super) abandoned: super::uploads::Abandoned,
}

impl Client {
    /// A client for `host` (a registry name as in references, e.g. `docker.io`, `127.0.0.1:5000`).
    pub fn new(
        host: &str,
        settings: &RegistrySettings,
        credentials: Credentials,
    ) -> Result<Client, RegistryError> {
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
                limit: settings
                    .max_concurrency
                    .map(|n| Arc::new(Semaphore::new(n.max(1)))),
                mount_refused: AtomicBool::new(false),
                abandoned: Default::default(),
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
        self.inner
            .single_put_max
            .store(single_put_max.max(1), Ordering::Relaxed);
        self.inner
            .chunk_size
            .store(chunk_size.max(1), Ordering::Relaxed);
    }

    pub(super) fn transport(&self) -> &Transport {
        &self.inner.transport
    }

    /// Whether this host refused a cross-repository mount earlier in the run.
    pub fn mount_refused(&self) -> bool {
        self.inner.mount_refused.load(Ordering::Relaxed)
    }

    /// Waits for a slot under the host's `max_concurrency` (none when unlimited).
    pub(super) async fn permit(&self) -> Option<OwnedSemaphorePermit> {
        let limit = self.inner.limit.clone()?;
        // The semaphore is never closed, so acquiring cannot fail.
        limit.acquire_owned().await.ok()
    }

    /// [`Client::send_unlimited`] within the host's concurrency limit.
    pub(super) async fn send(
        &self,
        request: RequestBuilder,
        scopes: &[String],
        op: &str,
    ) -> Result<Response, RegistryError> {
        let _permit = self.permit().await;
        self.send_unlimited(request, scopes, op).await
    }

    /// [`Client::send`] for a request built on [`Transport::upload_client`] whose body touches
    /// `activity`: watched for silence by [`Transport::send_upload`].
    pub(super) async fn send_upload(
        &self,
        request: RequestBuilder,
        scopes: &[String],
        op: &str,
        activity: &Activity,
    ) -> Result<Response, RegistryError> {
        let _permit = self.permit().await;
        self.send_watched(request, scopes, op, Some(activity)).await
    }

    /// Sends with authorization for `scopes`; on a 401, learns the challenge (or drops the stale
    /// token) and sends once more when the request can be replayed. The caller holds a permit.
    pub(super) async fn send_unlimited(
        &self,
        request: RequestBuilder,
        scopes: &[String],
        op: &str,
    ) -> Result<Response, RegistryError> {
        self.send_watched(request, scopes, op, None).await
    }

    async fn send_watched(
        &self,
        request: RequestBuilder,
        scopes: &[String],
        op: &str,
        activity: Option<&Activity>,
    ) -> Result<Response, RegistryError> {
        let transport = &self.inner.transport;
        let send = |request: RequestBuilder| async move {
            match activity {
                Some(activity) => transport.send_upload(request, activity, op).await,
                None => transport.send(request, op).await,
            }
        };
        let auth = &self.inner.auth;
        let replay = request.try_clone();
        let header = auth.authorization(transport, scopes, op).await?;
        let had_auth = header.is_some();
        let response = send(with_auth(request, header)).await?;
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
                send(with_auth(replay, header)).await
            }
            _ => Ok(response),
        }
    }

    /// Turns an unsuccessful response into an error, reading a bounded part of its body.
    pub(super) async fn fail(&self, response: Response, op: &str) -> RegistryError {
        let status = response.status().as_u16();
        let version = response.version();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        // Upload answers come without reqwest's read timeout: bound the wait here.
        let idle = self.transport().idle_timeout();
        let body = tokio::time::timeout(idle, read_limited(response, ERROR_BODY_LIMIT))
            .await
            .ok()
            .and_then(Result::ok)
            .map(|b| ErrorBody::parse(&b))
            .unwrap_or_default();
        let host = self.host().to_string();
        let operation = op.to_string();
        // A HEAD answer has no body; Go's "HTTP request to an HTTPS server" is an HTTP/1.0 400,
        // which distribution never sends otherwise.
        let http_on_tls = self.transport().base().scheme() == "http"
            && (is_http_to_https_answer(status, &body)
                || (status == 400 && version == reqwest::Version::HTTP_10));
        if http_on_tls {
            RegistryError::SpeaksHttps { host, operation }
        } else if status == 401 || status == 403 {
            RegistryError::Unauthorized {
                host,
                operation,
                status,
                source_label: Box::new(self.inner.auth.source().clone()),
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
        self.transport().error(op, err)
    }

    /// `GET /v2/`: 200 or 401 both mean a registry answers there. A 401 also teaches the
    /// challenge, so the next request authenticates up front.
    pub async fn ping(&self) -> Result<(), RegistryError> {
        let op = "GET /v2/";
        let url = self.transport().url("/v2/")?;
        let response = self
            .transport()
            .send(self.transport().client().get(url), op)
            .await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            let challenge = response
                .headers()
                .get(WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok());
            self.inner.auth.challenged(challenge, &[]);
            return Ok(());
        }
        if response.status().is_success() {
            Ok(())
        } else {
            Err(self.fail(response, op).await)
        }
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
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// A numeric header read directly (reqwest's `content_length()` is the body's size hint, which is
/// 0 for HEAD responses).
pub(super) fn header_u64(response: &Response, name: &str) -> Option<u64> {
    header_str(response, name).and_then(|v| v.parse().ok())
}

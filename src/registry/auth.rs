//! Registry authentication: `WWW-Authenticate` challenges, bearer tokens, and their cache.
//!
//! Distribution registries answer an unauthenticated request with 401 and a challenge. For
//! `Basic` we resend with the user's password; for `Bearer` we ask the challenge's realm for a
//! token covering the scopes we need. The challenge is remembered per host after the first 401
//! and tokens per scope set until shortly before they expire, so later requests carry
//! `Authorization` up front: no `GET /v2/` probe and no extra 401 round trip per request (the
//! behaviour that doubled oci-client's request count, CRATES.md P5).
//!
//! A cross-repository mount needs one token holding *both* `repository:TARGET:pull,push` and
//! `repository:FROM:pull`, so scopes are always a set, sorted to form the cache key.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::{StatusCode, Url};

pub use super::challenge::{parse_challenge, Challenge};
use super::credentials::{CredentialSource, Credentials};
use super::error::{ErrorBody, RegistryError};
use super::http::Transport;

/// Tokens without `expires_in` live 60 s (distribution token spec).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// Largest token response we read.
const MAX_TOKEN_RESPONSE: usize = 1024 * 1024;

/// `repository:REPO:pull`.
pub fn pull_scope(repo: &str) -> String {
    format!("repository:{repo}:pull")
}

/// `repository:REPO:pull,push`.
pub fn push_scope(repo: &str) -> String {
    format!("repository:{repo}:pull,push")
}

/// A scope set in canonical order (the token cache key).
fn scope_key(scopes: &[String]) -> Vec<String> {
    let mut key = scopes.to_vec();
    key.sort();
    key.dedup();
    key
}

#[derive(Debug, Clone)]
struct CachedToken {
    token: String,
    valid_until: Instant,
}

/// When a token of this lifetime, received now, should stop being used: a margin of a tenth of
/// its life (at least 1 s, at most 30 s) absorbs clock skew and request latency.
fn valid_until(now: Instant, lifetime: Duration) -> Instant {
    let margin = (lifetime / 10).clamp(Duration::from_secs(1), Duration::from_secs(30));
    now + lifetime.saturating_sub(margin)
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Parses a token endpoint's JSON: `token` or `access_token`, and the lifetime.
fn parse_token_response(bytes: &[u8]) -> Option<(String, Duration)> {
    let response: TokenResponse = serde_json::from_slice(bytes).ok()?;
    let token = response
        .token
        .or(response.access_token)
        .filter(|t| !t.is_empty())?;
    let lifetime = response
        .expires_in
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TOKEN_LIFETIME);
    Some((token, lifetime))
}

/// Authentication state for one host: credentials, the remembered challenge, cached tokens.
#[derive(Debug)]
pub struct Authenticator {
    credentials: Credentials,
    source: CredentialSource,
    challenge: Mutex<Option<Challenge>>,
    tokens: Mutex<HashMap<Vec<String>, CachedToken>>,
}

impl Authenticator {
    pub fn new(credentials: Credentials, source: CredentialSource) -> Authenticator {
        Authenticator {
            credentials,
            source,
            challenge: Mutex::new(None),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    pub fn source(&self) -> &CredentialSource {
        &self.source
    }

    /// Whether the host asked for bearer tokens (a refused token is worth refreshing once).
    pub fn uses_bearer(&self) -> bool {
        matches!(self.challenge(), Some(Challenge::Bearer { .. }))
    }

    fn challenge(&self) -> Option<Challenge> {
        self.challenge.lock().ok().and_then(|c| c.clone())
    }

    /// Records a 401's challenge and forgets the token that was just refused, so the next
    /// [`Authenticator::authorization`] fetches a fresh one. Returns whether retrying can help:
    /// there is a challenge we can answer.
    pub fn challenged(&self, header: Option<&str>, scopes: &[String]) -> bool {
        let parsed = header.and_then(parse_challenge);
        if let Ok(mut tokens) = self.tokens.lock() {
            tokens.remove(&scope_key(scopes));
        }
        let answerable = match &parsed {
            Some(Challenge::Bearer { .. }) => true,
            Some(Challenge::Basic { .. }) => matches!(self.credentials, Credentials::Basic { .. }),
            None => false,
        };
        if parsed.is_some() {
            if let Ok(mut challenge) = self.challenge.lock() {
                *challenge = parsed;
            }
        }
        answerable
    }

    /// The `Authorization` value for a request needing `scopes`, or `None` when the host has not
    /// asked for authentication (yet).
    pub async fn authorization(
        &self,
        transport: &Transport,
        scopes: &[String],
        operation: &str,
    ) -> Result<Option<String>, RegistryError> {
        match self.challenge() {
            None => Ok(None),
            Some(Challenge::Basic { .. }) => Ok(match &self.credentials {
                Credentials::Basic { username, password } => Some(basic_header(username, password)),
                _ => None,
            }),
            Some(Challenge::Bearer { realm, service, .. }) => {
                let key = scope_key(scopes);
                let cached = self.tokens.lock().ok().and_then(|t| t.get(&key).cloned());
                if let Some(hit) = cached.filter(|t| t.valid_until > Instant::now()) {
                    return Ok(Some(format!("Bearer {}", hit.token)));
                }
                let (token, lifetime) = self
                    .fetch_token(transport, &realm, service.as_deref(), &key, operation)
                    .await?;
                if let Ok(mut tokens) = self.tokens.lock() {
                    tokens.insert(
                        key,
                        CachedToken {
                            token: token.clone(),
                            valid_until: valid_until(Instant::now(), lifetime),
                        },
                    );
                }
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    /// Asks the realm for a token: GET with Basic credentials (or none), or for an identity token
    /// the OAuth2 refresh-token POST.
    async fn fetch_token(
        &self,
        transport: &Transport,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        operation: &str,
    ) -> Result<(String, Duration), RegistryError> {
        let host = transport.host();
        let token_op = format!("token request for {operation}");
        let invalid = |message: String| RegistryError::InvalidResponse {
            host: host.to_string(),
            operation: token_op.clone(),
            message,
        };
        let mut url = Url::parse(realm)
            .map_err(|e| invalid(format!("token realm `{realm}` is not a URL: {e}")))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(invalid(format!(
                "token realm `{realm}` is not an HTTP(S) URL"
            )));
        }
        let client = transport.client();
        let request = match &self.credentials {
            Credentials::IdentityToken(refresh) => {
                let mut form =
                    Url::parse("http://form.invalid/").map_err(|e| invalid(e.to_string()))?;
                {
                    let mut pairs = form.query_pairs_mut();
                    pairs.append_pair("grant_type", "refresh_token");
                    pairs.append_pair("refresh_token", refresh);
                    pairs.append_pair("client_id", "mirror");
                    if let Some(service) = service {
                        pairs.append_pair("service", service);
                    }
                    pairs.append_pair("scope", &scopes.join(" "));
                }
                client
                    .post(url)
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .body(form.query().unwrap_or_default().to_string())
            }
            other => {
                {
                    let mut pairs = url.query_pairs_mut();
                    if let Some(service) = service {
                        pairs.append_pair("service", service);
                    }
                    for scope in scopes {
                        pairs.append_pair("scope", scope);
                    }
                }
                let request = client.get(url);
                match other {
                    Credentials::Basic { username, password } => {
                        request.basic_auth(username, Some(password))
                    }
                    _ => request,
                }
            }
        };
        let response = transport.send(request, &token_op).await?;
        let status = response.status();
        let body = read_limited(response, MAX_TOKEN_RESPONSE)
            .await
            .map_err(|e| transport.error(&token_op, e))?;
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(RegistryError::Unauthorized {
                host: host.to_string(),
                operation: token_op,
                status: status.as_u16(),
                source_label: Box::new(self.source.clone()),
                body: ErrorBody::parse(&body),
            });
        }
        if !status.is_success() {
            return Err(RegistryError::Http {
                host: host.to_string(),
                operation: token_op,
                status: status.as_u16(),
                body: ErrorBody::parse(&body),
                retry_after: None,
            });
        }
        parse_token_response(&body)
            .ok_or_else(|| invalid("token response has no `token` or `access_token`".into()))
    }
}

fn basic_header(username: &str, password: &str) -> String {
    let raw = format!("{username}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// Reads at most `limit` bytes of a body (more is silently cut: callers only parse it).
pub(crate) async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = limit.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= limit {
            break;
        }
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_and_token_parsing() {
        assert_eq!(pull_scope("a/b"), "repository:a/b:pull");
        assert_eq!(push_scope("a/b"), "repository:a/b:pull,push");
        let key = scope_key(&[push_scope("t"), pull_scope("f"), push_scope("t")]);
        assert_eq!(
            key,
            vec![
                "repository:f:pull".to_string(),
                "repository:t:pull,push".to_string()
            ]
        );
        assert_eq!(
            parse_token_response(br#"{"token":"t","expires_in":300}"#),
            Some(("t".into(), Duration::from_secs(300)))
        );
        assert_eq!(
            parse_token_response(br#"{"access_token":"a"}"#),
            Some(("a".into(), DEFAULT_TOKEN_LIFETIME))
        );
        assert_eq!(parse_token_response(br#"{"token":""}"#), None);
        assert_eq!(parse_token_response(b"<html>"), None);
        let now = Instant::now();
        assert_eq!(
            valid_until(now, Duration::from_secs(60)),
            now + Duration::from_secs(54)
        );
        assert_eq!(valid_until(now, Duration::from_secs(1)), now);
    }

    #[test]
    fn challenge_is_remembered_and_answerability() {
        let anon = Authenticator::new(Credentials::Anonymous, CredentialSource::Anonymous);
        assert!(!anon.challenged(Some(r#"Basic realm="x""#), &[]));
        assert!(anon.challenged(Some(r#"Bearer realm="https://t/""#), &[]));
        assert!(matches!(anon.challenge(), Some(Challenge::Bearer { .. })));
        assert!(!anon.challenged(Some("garbage ,,"), &[]));
        assert!(
            matches!(anon.challenge(), Some(Challenge::Bearer { .. })),
            "garbage keeps the old challenge"
        );
        let basic = Authenticator::new(Credentials::basic("u", "p"), CredentialSource::Anonymous);
        assert!(basic.challenged(Some(r#"Basic realm="x""#), &[]));
    }
}

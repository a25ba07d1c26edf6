//! `RegistryError`: what went wrong talking to a registry, said so a user can act on it.
//!
//! Every variant carries the host and the operation ("GET manifest library/alpine:3.20"), because
//! a mirror talks to several registries at once and "HTTP 404" alone names neither. Error bodies
//! are parsed by the `error_body` module. The executor decides about retries by asking [`RegistryError::is_retryable`]; the client itself
//! never retries (except the one re-authentication on 401).

use std::time::Duration;

use crate::oci::{Digest, ManifestError};

use super::credentials::CredentialSource;
pub use super::error_body::{ErrorBody, ErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry answered with an error status.
    #[error("{host}: {operation}: HTTP {status}{}{body}", status_hint(*status))]
    Http {
        host: String,
        operation: String,
        status: u16,
        body: ErrorBody,
        retry_after: Option<Duration>,
    },
    /// The request never got an answer (connection refused, reset, timeout, truncated body).
    #[error("{host}: {operation}: {message}")]
    Transport {
        host: String,
        operation: String,
        message: String,
        retryable: bool,
        /// No connection could be made at all (refused, connect timeout): the host looks down,
        /// not just this request unlucky.
        unreachable: bool,
    },
    /// The TLS handshake failed, most often an untrusted certificate.
    #[error(
        "{host}: {operation}: TLS handshake failed: {message}; {}",
        tls_advice(host, message)
    )]
    Tls {
        host: String,
        operation: String,
        message: String,
    },
    /// The registry answered an HTTPS-only error to a plain-HTTP request (`tls = "http"` on an
    /// HTTPS host).
    #[error(
        "{host}: {operation}: HTTP 400: {host} speaks HTTPS: remove `tls = \"http\"` under \
         `[registry.\"{host}\"]` (or set `tls = \"verify\"` / `tls = \"skip-verify\"`)"
    )]
    SpeaksHttps { host: String, operation: String },
    /// A TLS handshake got a plain-HTTP answer (`tls` not set to `"http"` for an HTTP host).
    #[error(
        "{host}: {operation}: {host} answered in plain HTTP: set `tls = \"http\"` under \
         `[registry.\"{host}\"]` (TLS error: {message})"
    )]
    PlainHttp {
        host: String,
        operation: String,
        message: String,
    },
    /// 401/403 after authenticating with whatever credentials we had.
    #[error(
        "{host}: {operation}: access denied (HTTP {status}) using {source_label}{body}; {}",
        unauthorized_help(host, source_label)
    )]
    Unauthorized {
        host: String,
        operation: String,
        status: u16,
        source_label: Box<CredentialSource>,
        body: ErrorBody,
    },
    /// Bytes received do not hash to the digest they were asked for by.
    #[error("{host}: {operation}: content hashes to {actual}, not the expected {expected}")]
    DigestMismatch {
        host: String,
        operation: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("{host}: {operation}: {source}")]
    Manifest {
        host: String,
        operation: String,
        source: ManifestError,
    },
    /// The registry answered something the protocol does not allow.
    #[error("{host}: {operation}: unexpected response: {message}")]
    InvalidResponse {
        host: String,
        operation: String,
        message: String,
    },
    /// A local file could not be read (blob uploads) or the client could not be configured.
    #[error("{host}: {operation}: {message}")]
    Local {
        host: String,
        operation: String,
        message: String,
    },
}

/// What to do about a 401/403, depending on whether credentials were sent and where from.
fn unauthorized_help(host: &str, source: &CredentialSource) -> String {
    let access = "and that the account may access this repository";
    match source {
        CredentialSource::Env {
            username_var,
            password_var,
        } => format!("check the values of ${username_var} and ${password_var} {access}"),
        CredentialSource::DockerConfig { .. } | CredentialSource::Helper { .. } => {
            format!("check those credentials (run `docker login {host}` again) {access}")
        }
        CredentialSource::ContainersAuth { .. } => format!(
            "check those credentials (run `podman login {host}` or `skopeo login {host}` again) \
             {access}"
        ),
        CredentialSource::Explicit(_) => format!("check those credentials {access}"),
        CredentialSource::Anonymous | CredentialSource::NotFound(_) => format!(
            "log in with `docker login {host}` (or `podman login {host}`), or name variables \
             holding them with `username_env` and `password_env` under `[registry.\"{host}\"]`"
        ),
    }
}

fn status_hint(status: u16) -> &'static str {
    match status {
        404 => " (not found)",
        429 => " (too many requests)",
        _ => "",
    }
}

impl RegistryError {
    /// Worth trying again later: the network failed, the server failed (5xx), or it asked us to
    /// slow down (429) or timed out waiting for us (408).
    pub fn is_retryable(&self) -> bool {
        match self {
            RegistryError::Transport { retryable, .. } => *retryable,
            RegistryError::Http { status, .. } => matches!(status, 408 | 429 | 500..=599),
            _ => false,
        }
    }

    /// The host this error is about when no connection to it could be made at all.
    pub fn unreachable_host(&self) -> Option<&str> {
        match self {
            RegistryError::Transport {
                host,
                unreachable: true,
                ..
            } => Some(host),
            _ => None,
        }
    }

    /// How long the registry asked us to wait (a 429's or 503's `Retry-After` in seconds).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            RegistryError::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The HTTP status, when the registry answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            RegistryError::Http { status, .. } | RegistryError::Unauthorized { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }

    /// The registry refused a manifest because something it references is not (yet) there.
    pub fn is_manifest_blob_unknown(&self) -> bool {
        matches!(self, RegistryError::Http { status: 400, body, .. } if body.has_code("MANIFEST_BLOB_UNKNOWN"))
    }

    /// The registry refused uploaded bytes as not matching (DIGEST_INVALID, SIZE_INVALID, or a
    /// bare 400 to an upload), or bytes did not hash to their digest.
    pub fn may_be_bad_content(&self) -> bool {
        match self {
            RegistryError::Http {
                status: 400, body, ..
            } => {
                body.codes().next().is_none()
                    || ["DIGEST_INVALID", "SIZE_INVALID", "BLOB_UPLOAD_INVALID"]
                        .iter()
                        .any(|code| body.has_code(code))
            }
            RegistryError::DigestMismatch { .. } => true,
            _ => false,
        }
    }

    /// A 404 (manifest, blob or repository unknown).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// A request that got no byte for `idle`: worth retrying. One that got no answer at all
    /// counts as the host being unreachable (a hung registry accepts connections but never
    /// answers); a body that stalled midway does not.
    pub(crate) fn timed_out(
        host: &str,
        operation: &str,
        idle: Duration,
        awaiting_answer: bool,
    ) -> RegistryError {
        let what = if awaiting_answer {
            "no answer"
        } else {
            "no data"
        };
        RegistryError::Transport {
            host: host.to_string(),
            operation: operation.to_string(),
            message: format!("{what} for {} (see --timeout)", seconds(idle)),
            retryable: true,
            unreachable: awaiting_answer,
        }
    }

    /// Classifies a reqwest error. The URL is dropped (it may carry upload-session state or
    /// signed query strings); the message is the error chain, or for a timeout how long nothing
    /// came (`idle`, or `connect` while connecting: that host counts as unreachable).
    /// `awaiting_answer`: the error came before any response (not while reading a body).
    pub(crate) fn from_reqwest(
        host: &str,
        operation: &str,
        err: reqwest::Error,
        (idle, connect): (Duration, Duration),
        awaiting_answer: bool,
    ) -> RegistryError {
        if err.is_timeout() {
            if err.is_connect() {
                return RegistryError::Transport {
                    host: host.to_string(),
                    operation: operation.to_string(),
                    message: format!("could not connect within {}", seconds(connect)),
                    retryable: true,
                    unreachable: true,
                };
            }
            return RegistryError::timed_out(host, operation, idle, awaiting_answer);
        }
        let unreachable = err.is_connect();
        let retryable = err.is_connect()
            || err.is_timeout()
            || err.is_request()
            || err.is_body()
            || err.is_decode();
        let tls = is_tls_error(&err);
        let message = chain_message(err.without_url());
        // A name that does not resolve will not resolve in a second either: fail at once with
        // the message instead of backing off five times per request (no network, a typo).
        let retryable = retryable && !is_name_resolution_failure(&message);
        let (host, operation) = (host.to_string(), operation.to_string());
        if tls && message.to_ascii_lowercase().contains("invalidcontenttype") {
            RegistryError::PlainHttp {
                host,
                operation,
                message,
            }
        } else if tls {
            RegistryError::Tls {
                host,
                operation,
                message,
            }
        } else {
            RegistryError::Transport {
                host,
                operation,
                message,
                retryable,
                unreachable,
            }
        }
    }
}

/// What to do about a failed TLS handshake: specific where the cause is known (a server
/// certificate that is itself a CA, an expired one), else the usual settings.
fn tls_advice(host: &str, message: &str) -> String {
    if message.contains("CaUsedAsEndEntity") {
        format!(
            "{host}'s own certificate is marked as a CA (basicConstraints CA:TRUE, as `openssl req \
             -x509` makes it), and a CA certificate is refused as a server's certificate even \
             when `ca` names it: give {host} a certificate signed by a separate CA and set `ca` to \
             that CA, or set `tls = \"skip-verify\"` to skip verification"
        )
    } else if message.contains("Expired") {
        format!(
            "{host}'s certificate has expired: renew it (`tls = \"skip-verify\"` skips \
             verification meanwhile)"
        )
    } else if message.contains("NotValidYet") {
        format!("{host}'s certificate is not valid yet: check this machine's clock and {host}'s")
    } else {
        format!(
            "if {host} uses a private CA, set `ca = \"/path/to/ca.pem\"` under \
             `[registry.\"{host}\"]`, or `tls = \"skip-verify\"` to skip verification \
             (`tls = \"http\"` if it only speaks plain HTTP; `cert` and `key` if it asks for a \
             client certificate)"
        )
    }
}

/// "60 s", "1.5 s".
fn seconds(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs.fract() == 0.0 {
        format!("{secs:.0} s")
    } else {
        format!("{secs:.1} s")
    }
}

/// Go's HTTP server (distribution) answers a plain-HTTP request on a TLS port with this body.
pub(crate) fn is_http_to_https_answer(status: u16, body: &ErrorBody) -> bool {
    status == 400
        && matches!(body, ErrorBody::Text(text) if text.contains("HTTP request to an HTTPS server"))
}

/// Whether a transport error says the host name could not be resolved.
fn is_name_resolution_failure(message: &str) -> bool {
    let text = message.to_ascii_lowercase();
    text.contains("dns error") || text.contains("failed to lookup address")
}

fn is_tls_error(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if e.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        let text = e.to_string().to_ascii_lowercase();
        if text.contains("certificate")
            || text.contains("invalidcontenttype")
            || text.contains("tls")
        {
            return true;
        }
        current = e.source();
    }
    false
}

/// "error sending request: client error (Connect): tcp connect error: Connection refused".
pub(super) fn chain_message(err: reqwest::Error) -> String {
    let mut parts = vec![err.to_string()];
    let mut current = std::error::Error::source(&err);
    while let Some(e) = current {
        let text = e.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

/// Parses `Retry-After` in its seconds form (the HTTP-date form is rare from registries and is
/// left to the executor's own backoff).
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    value
        .trim()
        .parse::<u64>()
        .ok()
        .map(|s| Duration::from_secs(s.min(3600)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_classification() {
        let http = |status| RegistryError::Http {
            host: "h".into(),
            operation: "op".into(),
            status,
            body: ErrorBody::Empty,
            retry_after: parse_retry_after("7"),
        };
        assert!(http(429).is_retryable());
        assert!(http(503).is_retryable());
        assert!(http(408).is_retryable());
        assert!(!http(404).is_retryable());
        assert!(!http(400).is_retryable());
        assert_eq!(http(429).retry_after(), Some(Duration::from_secs(7)));
        assert!(http(404).to_string().contains("HTTP 404 (not found)"));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    #[test]
    fn unresolvable_names_are_not_retried() {
        assert!(is_name_resolution_failure(
            "error sending request: client error (Connect): dns error: failed to lookup address information: Name or service not known"
        ));
        assert!(!is_name_resolution_failure(
            "error sending request: client error (Connect): tcp connect error: Connection refused (os error 111)"
        ));
    }

    #[test]
    fn timeouts_say_how_long_and_scheme_mistakes_are_recognised() {
        let err =
            RegistryError::timed_out("h:1", "HEAD manifest a:1", Duration::from_secs(60), true);
        assert_eq!(
            err.to_string(),
            "h:1: HEAD manifest a:1: no answer for 60 s (see --timeout)"
        );
        assert!(err.is_retryable());
        assert_eq!(err.unreachable_host(), Some("h:1"));
        let stalled =
            RegistryError::timed_out("h:1", "GET blob", Duration::from_millis(1500), false);
        assert!(stalled
            .to_string()
            .ends_with("no data for 1.5 s (see --timeout)"));
        assert_eq!(stalled.unreachable_host(), None);
        let text = ErrorBody::parse(b"Client sent an HTTP request to an HTTPS server.\n");
        assert!(is_http_to_https_answer(400, &text));
        assert!(!is_http_to_https_answer(400, &ErrorBody::Empty));
        let http = |status, body: &[u8]| RegistryError::Http {
            host: "h".into(),
            operation: "upload".into(),
            status,
            body: ErrorBody::parse(body),
            retry_after: None,
        };
        assert!(http(400, br#"{"errors":[{"code":"DIGEST_INVALID"}]}"#).may_be_bad_content());
        assert!(!http(400, br#"{"errors":[{"code":"NAME_INVALID"}]}"#).may_be_bad_content());
        assert!(!http(403, b"").may_be_bad_content());
    }
}

//! The HTTP layer under the registry client: one reqwest client per registry host.
//!
//! TLS is decided per host from the Mirrorfile's `[registry."HOST"]` settings (verified HTTPS,
//! HTTPS with an extra CA bundle, unverified HTTPS, or plain HTTP; a client certificate for mutual TLS), so a private registry's
//! self-signed certificate never weakens verification for Docker Hub. Every request goes through
//! [`Transport::send`], which counts it: the CLI reports request counts so users can see that a
//! rerun costs almost nothing. reqwest's redirect policy strips `Authorization` when a redirect
//! leaves the host (blob GETs are redirected to object storage), so a token only goes to the host
//! that asked for it.
//!
//! Every request has a connect timeout and an idle timeout (no byte for that long), never a total
//! one: a 1 GB blob that keeps flowing is fine, a registry that stopped answering (a hung
//! process, a dead link) fails the request in seconds and the executor retries it. reqwest's
//! `read_timeout` starts when a request is sent and only restarts for the response body, so it
//! would cut a slow upload off mid-body: uploads go through a second client without it, watched
//! by [`Transport::send_upload`], whose idle clock restarts with every piece of body sent.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Url;

use crate::model::{RegistrySettings, TlsMode};
use crate::oci::reference::api_host;

use super::error::RegistryError;

/// A connection not made within this long counts as the host being unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// No byte for this long on an open connection means it is dead (`--timeout`); blobs may take
/// hours overall, so there is deliberately no total timeout.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Installs rustls' ring provider as the process default. reqwest is built without a provider
/// (aws-lc is a slow C build), and the first TLS connection panics if none is installed. Safe to
/// call more than once.
pub fn install_crypto_provider() {
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
}

/// A configured HTTP client bound to one registry host.
#[derive(Debug)]
pub struct Transport {
    host: String,
    base: Url,
    client: reqwest::Client,
    /// Like `client` without reqwest's read timeout: for requests with a streamed body.
    uploads: reqwest::Client,
    idle: Duration,
    connect: Duration,
    requests: AtomicU64,
}

/// When an upload body last handed a piece to the connection (ms since `start`).
#[derive(Debug, Clone)]
pub struct Activity {
    start: Instant,
    last_ms: Arc<AtomicU64>,
}

impl Activity {
    pub fn new() -> Activity {
        Activity {
            start: Instant::now(),
            last_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Restarts the idle clock.
    pub fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

impl Default for Activity {
    fn default() -> Self {
        Activity::new()
    }
}

impl Transport {
    /// Builds the client for `host` (as written in references: `docker.io` is reached at its API
    /// host).
    pub fn new(host: &str, settings: &RegistrySettings) -> Result<Transport, RegistryError> {
        install_crypto_provider();
        let config_error = |message: String| RegistryError::Local {
            host: host.to_string(),
            operation: "configure HTTP client".to_string(),
            message,
        };
        let scheme = match settings.tls {
            TlsMode::Http => "http",
            TlsMode::Verify | TlsMode::SkipVerify => "https",
        };
        let base = Url::parse(&format!("{scheme}://{}", api_host(host)))
            .map_err(|e| config_error(format!("`{host}` is not a valid registry host: {e}")))?;
        let idle = settings
            .idle_timeout
            .unwrap_or(DEFAULT_IDLE_TIMEOUT)
            .max(Duration::from_millis(100));
        let connect = CONNECT_TIMEOUT.min(idle);
        let mut extra_certs = Vec::new();
        let mut client_identity = None;
        if let Some(path) = &settings.ca {
            let pem = std::fs::read(path).map_err(|e| {
                config_error(format!("cannot read CA file {}: {e}", path.display()))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                config_error(format!(
                    "CA file {} is not a PEM bundle: {e}",
                    path.display()
                ))
            })?;
            if certs.is_empty() {
                return Err(config_error(format!(
                    "CA file {} holds no certificate",
                    path.display()
                )));
            }
            extra_certs = certs;
        }
        if let Some(pair) = &settings.client_cert {
            let mut pem = std::fs::read(&pair.cert).map_err(|e| {
                config_error(format!(
                    "cannot read client certificate {}: {e}",
                    pair.cert.display()
                ))
            })?;
            if is_x509_v1(&pem) {
                return Err(config_error(format!(
                    "client certificate {} is X.509 version 1, which TLS libraries built on \
                     webpki (rustls, used here) refuse: issue it as version 3, e.g. `openssl x509 \
                     -req … -extfile EXT` with EXT holding `basicConstraints=CA:FALSE` and \
                     `extendedKeyUsage=clientAuth`",
                    pair.cert.display()
                )));
            }
            pem.push(b'\n');
            let key = std::fs::read(&pair.key).map_err(|e| {
                config_error(format!(
                    "cannot read client key {}: {e}",
                    pair.key.display()
                ))
            })?;
            pem.extend_from_slice(&key);
            // reqwest's error names the problem (no key, bad PEM), never the key material.
            let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                config_error(format!(
                    "client certificate {} with key {} is not usable: {e}",
                    pair.cert.display(),
                    pair.key.display()
                ))
            })?;
            client_identity = Some(identity);
        }
        let build = |read_timeout: Option<Duration>| {
            let mut builder = reqwest::Client::builder()
                .user_agent(concat!("mirror/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(connect)
                .pool_idle_timeout(Duration::from_secs(90));
            if let Some(read) = read_timeout {
                builder = builder.read_timeout(read);
            }
            if settings.tls == TlsMode::SkipVerify {
                builder = builder.tls_danger_accept_invalid_certs(true);
            }
            if !extra_certs.is_empty() {
                builder = builder.tls_certs_merge(extra_certs.clone());
            }
            if let Some(identity) = &client_identity {
                builder = builder.identity(identity.clone());
            }
            builder.build().map_err(|e| {
                config_error(format!(
                    "cannot build HTTP client: {}",
                    super::error::chain_message(e)
                ))
            })
        };
        let client = build(Some(idle))?;
        let uploads = build(None)?;
        Ok(Transport {
            host: host.to_string(),
            base,
            client,
            uploads,
            idle,
            connect,
            requests: AtomicU64::new(0),
        })
    }
    pub fn host(&self) -> &str {
        &self.host
    }

    /// `https://HOST` (or `http://`), without a trailing slash.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// `base` + `path` (path starts with `/v2/`).
    pub fn url(&self, path: &str) -> Result<Url, RegistryError> {
        self.base.join(path).map_err(|e| RegistryError::Local {
            host: self.host.clone(),
            operation: format!("build URL for {path}"),
            message: e.to_string(),
        })
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The client for requests whose body is streamed (blob uploads): send them with
    /// [`Transport::send_upload`], which watches them for silence.
    pub fn upload_client(&self) -> &reqwest::Client {
        &self.uploads
    }

    /// How long a request may go without a byte.
    pub fn idle_timeout(&self) -> Duration {
        self.idle
    }

    /// A reqwest error from reading a response body as a [`RegistryError`] about this host,
    /// timeouts named with their length.
    pub fn error(&self, operation: &str, err: reqwest::Error) -> RegistryError {
        RegistryError::from_reqwest(&self.host, operation, err, (self.idle, self.connect), false)
    }

    /// Sends a request, counting it, and turns transport failures into [`RegistryError`].
    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
        operation: &str,
    ) -> Result<reqwest::Response, RegistryError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let sent = request.send().await;
        let took = started.elapsed().as_millis();
        // `operation` names method, repository and reference or digest; never a URL, which may
        // carry upload-session state or signed query strings.
        match &sent {
            Ok(response) => {
                let status = response.status().as_u16();
                tracing::debug!("{}: {operation}: HTTP {status} ({took} ms)", self.host);
            }
            Err(e) => tracing::debug!("{}: {operation}: no answer ({took} ms): {e}", self.host),
        }
        sent.map_err(|e| {
            RegistryError::from_reqwest(&self.host, operation, e, (self.idle, self.connect), true)
        })
    }

    /// Sends a request built on [`Transport::upload_client`] whose body touches `activity` as it
    /// is sent: it fails as timed out once neither body nor answer moved for the idle timeout.
    pub async fn send_upload(
        &self,
        request: reqwest::RequestBuilder,
        activity: &Activity,
        operation: &str,
    ) -> Result<reqwest::Response, RegistryError> {
        activity.touch();
        let send = self.send(request, operation);
        tokio::pin!(send);
        loop {
            let deadline = activity.last() + self.idle;
            tokio::select! {
                result = &mut send => return result,
                () = tokio::time::sleep_until(deadline.into()) => {
                    if activity.last() + self.idle <= Instant::now() {
                        return Err(RegistryError::timed_out(&self.host, operation, self.idle, true));
                    }
                }
            }
        }
    }

    pub fn requests_made(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

/// Whether the first certificate in `pem` is X.509 version 1: its `TBSCertificate` does not open
/// with the `[0]` version field (DER: tag 0xA0), which versions 2 and 3 carry. Anything that
/// does not parse is left for the TLS library to judge.
fn is_x509_v1(pem: &[u8]) -> bool {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    /// The length of a DER header (tag and length octets) at the start of `der`.
    fn header_len(der: &[u8]) -> Option<usize> {
        match *der.get(1)? {
            short if short < 0x80 => Some(2),
            long => {
                let octets = usize::from(long & 0x7f);
                (1..=4).contains(&octets).then_some(2 + octets)
            }
        }
    }
    let Some(Ok(cert)) = CertificateDer::pem_slice_iter(pem).next() else {
        return false;
    };
    let der: &[u8] = cert.as_ref();
    let tbs_first = || -> Option<u8> {
        (*der.first()? == 0x30).then_some(())?;
        let tbs = der.get(header_len(der)?..)?;
        (*tbs.first()? == 0x30).then_some(())?;
        tbs.get(header_len(tbs)?..)?.first().copied()
    };
    tbs_first().is_some_and(|tag| tag != 0xa0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        let http = RegistrySettings {
            tls: TlsMode::Http,
            ..RegistrySettings::default()
        };
        let t = Transport::new("127.0.0.1:5000", &http).unwrap();
        assert_eq!(t.url("/v2/").unwrap().as_str(), "http://127.0.0.1:5000/v2/");
        let hub = Transport::new("docker.io", &RegistrySettings::default()).unwrap();
        assert_eq!(hub.base().as_str(), "https://registry-1.docker.io/");
        let missing_ca = RegistrySettings {
            ca: Some("/nonexistent/ca.pem".into()),
            ..RegistrySettings::default()
        };
        let err = Transport::new("r.example", &missing_ca)
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
    }
}

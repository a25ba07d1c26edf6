//! The HTTP layer under the registry client: one reqwest client per registry host.
//!
//! TLS is decided per host from the Mirrorfile's `[registry."HOST"]` settings (verified HTTPS,
//! HTTPS with an extra CA bundle, unverified HTTPS, or plain HTTP; a client certificate for mutual TLS), so a private registry's
//! self-signed certificate never weakens verification for Docker Hub. Every request goes through
//! [`Transport::send`], which counts it: the CLI reports request counts so users can see that a
//! rerun costs almost nothing. reqwest's redirect policy strips `Authorization` when a redirect
//! leaves the host (blob GETs are redirected to object storage), so a token only goes to the host
//! that asked for it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::Url;

use crate::model::{RegistrySettings, TlsMode};
use crate::oci::reference::api_host;

use super::error::RegistryError;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// No byte for this long on an open connection means it is dead; blobs may take hours overall, so
/// there is deliberately no total timeout.
const READ_TIMEOUT: Duration = Duration::from_secs(300);

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
    requests: AtomicU64,
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
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("mirror/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(90));
        if settings.tls == TlsMode::SkipVerify {
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
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
            builder = builder.tls_certs_merge(certs);
        }
        if let Some(pair) = &settings.client_cert {
            let mut pem = std::fs::read(&pair.cert).map_err(|e| {
                config_error(format!(
                    "cannot read client certificate {}: {e}",
                    pair.cert.display()
                ))
            })?;
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
            builder = builder.identity(identity);
        }
        let client = builder
            .build()
            .map_err(|e| config_error(format!("cannot build HTTP client: {e}")))?;
        Ok(Transport {
            host: host.to_string(),
            base,
            client,
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

    /// Sends a request, counting it, and turns transport failures into [`RegistryError`].
    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
        operation: &str,
    ) -> Result<reqwest::Response, RegistryError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let started = std::time::Instant::now();
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
        sent.map_err(|e| RegistryError::from_reqwest(&self.host, operation, e))
    }

    pub fn requests_made(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
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

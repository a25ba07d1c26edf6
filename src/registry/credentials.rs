//! Credentials for one registry host, found where users already keep them, never printed.
//!
//! Lookup goes through the `docker_credential` crate, which reads `$DOCKER_CONFIG/config.json`
//! (or `~/.docker/config.json`) with its `auths`, `credHelpers` and `credsStore`. It is
//! synchronous and may run a `docker-credential-*` helper process, so it runs on the blocking pool,
//! once per host, and the answer is cached. A missing config or entry means anonymous access,
//! which is what most pulls need, so it is not an error.
//!
//! `Debug` is written by hand so a secret cannot reach a log line through `{:?}`; errors name the
//! credential *source* ([`CredentialSource`]) instead.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use crate::oci::reference::DOCKER_HUB;

/// The key Docker itself uses for Docker Hub in `config.json` and credential helpers.
const DOCKER_HUB_CONFIG_KEY: &str = "https://index.docker.io/v1/";

/// What to authenticate with.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum Credentials {
    #[default]
    Anonymous,
    Basic {
        username: String,
        password: String,
    },
    /// An OAuth2 refresh token (`identitytoken` in config.json), exchanged at the token realm.
    IdentityToken(String),
}

impl Credentials {
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials::Basic {
            username: username.into(),
            password: password.into(),
        }
    }

    pub fn is_anonymous(&self) -> bool {
        matches!(self, Credentials::Anonymous)
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Credentials::IdentityToken(_) => f.write_str("IdentityToken(<redacted>)"),
        }
    }
}

/// Where credentials came from, for error messages ("denied with docker config.json credentials").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    Anonymous,
    /// Docker's config.json (possibly through a credential helper).
    DockerConfig,
    /// Given by the caller (command line, environment, tests).
    Explicit(String),
}

impl CredentialSource {
    /// The label used when the caller gives credentials without saying where they came from.
    pub fn default_for(credentials: &Credentials) -> CredentialSource {
        if credentials.is_anonymous() {
            CredentialSource::Anonymous
        } else {
            CredentialSource::Explicit("explicitly provided".to_string())
        }
    }
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialSource::Anonymous => f.write_str("anonymous"),
            CredentialSource::DockerConfig => {
                f.write_str("docker config.json (~/.docker/config.json or $DOCKER_CONFIG)")
            }
            CredentialSource::Explicit(label) => f.write_str(label),
        }
    }
}

/// The keys under which `config.json` may hold a host's credentials, most specific first.
pub fn config_keys(host: &str) -> Vec<String> {
    let hub = [DOCKER_HUB, "index.docker.io", "registry-1.docker.io"];
    if hub.contains(&host) {
        vec![
            DOCKER_HUB_CONFIG_KEY.to_string(),
            DOCKER_HUB.to_string(),
            "index.docker.io".to_string(),
        ]
    } else {
        vec![host.to_string(), format!("https://{host}")]
    }
}

fn convert(credential: docker_credential::DockerCredential) -> Credentials {
    match credential {
        docker_credential::DockerCredential::IdentityToken(token) => {
            Credentials::IdentityToken(token)
        }
        // Some helpers return an identity token as the password of the user `<token>`.
        docker_credential::DockerCredential::UsernamePassword(user, password)
            if user == "<token>" =>
        {
            Credentials::IdentityToken(password)
        }
        docker_credential::DockerCredential::UsernamePassword(username, password) => {
            Credentials::Basic { username, password }
        }
    }
}

/// Looks `host` up in a config.json given as bytes (no helpers are run for `auths` entries).
pub fn from_config_json(json: &[u8], host: &str) -> Credentials {
    config_keys(host)
        .iter()
        .find_map(|key| docker_credential::get_credential_from_reader(json, key).ok())
        .map(convert)
        .unwrap_or_default()
}

/// Blocking lookup in the user's Docker config; anonymous when nothing is configured.
fn lookup_blocking(host: &str) -> (Credentials, CredentialSource) {
    for key in config_keys(host) {
        match docker_credential::get_credential(&key) {
            Ok(credential) => return (convert(credential), CredentialSource::DockerConfig),
            Err(err) => tracing::debug!(host, key, error = %err, "no docker credential"),
        }
    }
    (Credentials::Anonymous, CredentialSource::Anonymous)
}

/// Per-host cache of credential lookups, shared by every client of one run.
#[derive(Default)]
pub struct CredentialStore {
    cache: Mutex<HashMap<String, (Credentials, CredentialSource)>>,
}

impl CredentialStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Credentials for `host` from Docker's config, looked up once per host.
    pub async fn lookup(&self, host: &str) -> (Credentials, CredentialSource) {
        if let Some(hit) = self.cache.lock().ok().and_then(|c| c.get(host).cloned()) {
            return hit;
        }
        let owned = host.to_string();
        let found = tokio::task::spawn_blocking(move || lookup_blocking(&owned))
            .await
            .unwrap_or((Credentials::Anonymous, CredentialSource::Anonymous));
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(host.to_string(), found.clone());
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let basic = Credentials::basic("alice", "hunter2-secret");
        let text = format!("{basic:?}");
        assert!(
            text.contains("alice") && !text.contains("hunter2"),
            "{text}"
        );
        let token = format!("{:?}", Credentials::IdentityToken("tok-secret".into()));
        assert!(!token.contains("tok-secret"), "{token}");
    }

    #[test]
    fn reads_auths_from_config_json() {
        // base64("bob:pw")
        let json = br#"{"auths":{"https://index.docker.io/v1/":{"auth":"Ym9iOnB3"},"127.0.0.1:5000":{"auth":"Ym9iOnB3"}}}"#;
        assert_eq!(
            from_config_json(json, "docker.io"),
            Credentials::basic("bob", "pw")
        );
        assert_eq!(
            from_config_json(json, "127.0.0.1:5000"),
            Credentials::basic("bob", "pw")
        );
        assert_eq!(from_config_json(json, "ghcr.io"), Credentials::Anonymous);
        let token = br#"{"auths":{"quay.io":{"identitytoken":"rt"}}}"#;
        assert_eq!(
            from_config_json(token, "quay.io"),
            Credentials::IdentityToken("rt".into())
        );
        assert_eq!(
            from_config_json(b"not json", "quay.io"),
            Credentials::Anonymous
        );
    }

    #[test]
    fn source_labels() {
        assert_eq!(
            CredentialSource::default_for(&Credentials::Anonymous).to_string(),
            "anonymous"
        );
        assert!(CredentialSource::DockerConfig
            .to_string()
            .contains("config.json"));
    }
}

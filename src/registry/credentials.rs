//! Credentials for one registry host, found where users already keep them, never printed.
//!
//! The places, tried in order (`[registry."host"] credentials = [...]` may change it): Docker's
//! `config.json` (with its credential helpers), containers' `auth.json`, and the environment
//! variables named by `username_env` / `password_env`. Files and variables come from the
//! [`Environment`] snapshot the CLI passes down, never from `std::env`. Helpers are processes,
//! so the lookup runs on the blocking pool, once per host, and the answer is cached. Nothing
//! found means anonymous access, which is what most pulls need, so it is not an error.
//!
//! `Debug` is written by hand so a secret cannot reach a log line through `{:?}`; errors name
//! the credential *source* ([`CredentialSource`]: a file and key, a helper, variable names).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::auth_file::{AuthFile, Found};
use crate::environment::Environment;
use crate::model::{CredentialKind, RegistrySettings};

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

/// Where credentials came from, for error messages ("denied using docker-credential-pass").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// No credentials were looked for.
    Anonymous,
    /// None were found; each note says where we looked and why it had none.
    NotFound(Vec<String>),
    /// An `auths` entry of Docker's config.json.
    DockerConfig { file: PathBuf, key: String },
    /// An `auths` entry of containers' auth.json.
    ContainersAuth { file: PathBuf, key: String },
    /// A `docker-credential-*` helper named in one of those files.
    Helper { helper: String, file: PathBuf },
    /// The variables named by `username_env` / `password_env`.
    Env {
        username_var: String,
        password_var: String,
    },
    /// Given by the caller (tests, library users).
    Explicit(String),
}

impl CredentialSource {
    /// The label used when the caller gives credentials without saying where they came from.
    pub fn default_for(credentials: &Credentials) -> CredentialSource {
        if credentials.is_anonymous() {
            CredentialSource::Anonymous
        } else {
            CredentialSource::Explicit("explicitly provided credentials".to_string())
        }
    }
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialSource::Anonymous => f.write_str("no credentials"),
            CredentialSource::NotFound(notes) if notes.is_empty() => {
                f.write_str("no credentials (none configured)")
            }
            CredentialSource::NotFound(notes) => {
                write!(f, "no credentials (looked in {})", notes.join("; "))
            }
            CredentialSource::DockerConfig { file, key } => write!(
                f,
                "credentials from docker config {} (auths entry `{key}`)",
                file.display()
            ),
            CredentialSource::ContainersAuth { file, key } => write!(
                f,
                "credentials from containers auth file {} (auths entry `{key}`)",
                file.display()
            ),
            CredentialSource::Helper { helper, file } => write!(
                f,
                "credentials from credential helper {helper} (named in {})",
                file.display()
            ),
            CredentialSource::Env {
                username_var,
                password_var,
            } => write!(
                f,
                "credentials from environment variables {username_var} and {password_var}"
            ),
            CredentialSource::Explicit(label) => f.write_str(label),
        }
    }
}

/// Looks `host` up in the places `settings` names, in order (blocking: helpers are processes).
pub fn lookup_blocking(
    host: &str,
    settings: &RegistrySettings,
    env: &Environment,
) -> (Credentials, CredentialSource) {
    let mut notes = Vec::new();
    for kind in settings.credential_order() {
        let found = match kind {
            CredentialKind::DockerConfig => match env.docker_config_file() {
                Some(file) => from_file(host, &file, env, true, &mut notes),
                None => {
                    notes.push("docker config (neither DOCKER_CONFIG nor HOME is set)".into());
                    None
                }
            },
            CredentialKind::ContainersAuth => env
                .containers_auth_files()
                .iter()
                .find_map(|file| from_file(host, file, env, false, &mut notes)),
            CredentialKind::Env => from_env(settings, env, &mut notes),
        };
        if let Some(found) = found {
            return found;
        }
    }
    (Credentials::Anonymous, CredentialSource::NotFound(notes))
}

fn from_file(
    host: &str,
    file: &Path,
    env: &Environment,
    docker: bool,
    notes: &mut Vec<String>,
) -> Option<(Credentials, CredentialSource)> {
    let bytes = match std::fs::read(file) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            notes.push(format!("{}: no such file", file.display()));
            return None;
        }
        Err(e) => {
            notes.push(format!("{}: unreadable ({e})", file.display()));
            return None;
        }
    };
    let parsed = match AuthFile::parse(&bytes) {
        Ok(parsed) => parsed,
        Err(e) => {
            // serde_json's message names a line and column, never the content.
            tracing::warn!(file = %file.display(), "not a valid auth file: {e}");
            notes.push(format!("{}: not valid JSON ({e})", file.display()));
            return None;
        }
    };
    match parsed.lookup(host, env, file) {
        Found::Entry { key, credentials } => {
            let file = file.to_path_buf();
            let source = if docker {
                CredentialSource::DockerConfig { file, key }
            } else {
                CredentialSource::ContainersAuth { file, key }
            };
            Some((credentials, source))
        }
        Found::Helper {
            helper,
            credentials,
        } => Some((
            credentials,
            CredentialSource::Helper {
                helper,
                file: file.to_path_buf(),
            },
        )),
        Found::Nothing(note) => {
            notes.push(note);
            None
        }
    }
}

fn from_env(
    settings: &RegistrySettings,
    env: &Environment,
    notes: &mut Vec<String>,
) -> Option<(Credentials, CredentialSource)> {
    let names = settings.env_credentials.as_ref()?;
    let user = env.var(&names.username_var).filter(|v| !v.is_empty());
    let password = env.var(&names.password_var).filter(|v| !v.is_empty());
    match (user, password) {
        (Some(user), Some(password)) => Some((
            Credentials::basic(user, password),
            CredentialSource::Env {
                username_var: names.username_var.clone(),
                password_var: names.password_var.clone(),
            },
        )),
        _ => {
            notes.push(format!(
                "environment variables {} and {} (not both set)",
                names.username_var, names.password_var
            ));
            None
        }
    }
}

/// Per-host cache of credential lookups, shared by every client of one run.
#[derive(Default)]
pub struct CredentialStore {
    env: Environment,
    cache: Mutex<HashMap<String, (Credentials, CredentialSource)>>,
}

impl CredentialStore {
    pub fn new(env: Environment) -> Self {
        CredentialStore {
            env,
            cache: Mutex::default(),
        }
    }

    /// Credentials for `host`, looked up once per host.
    pub async fn lookup(
        &self,
        host: &str,
        settings: &RegistrySettings,
    ) -> (Credentials, CredentialSource) {
        if let Some(hit) = self.cache.lock().ok().and_then(|c| c.get(host).cloned()) {
            return hit;
        }
        let (owned, settings, env) = (host.to_string(), settings.clone(), self.env.clone());
        let found = tokio::task::spawn_blocking(move || lookup_blocking(&owned, &settings, &env))
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
    fn order_and_sources() {
        let dir = tempfile::tempdir().expect("tempdir");
        let docker = dir.path().join("docker");
        std::fs::create_dir_all(&docker).expect("mkdir");
        // base64("bob:pw")
        std::fs::write(
            docker.join("config.json"),
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"Ym9iOnB3"}}}"#,
        )
        .expect("write");
        let auth = dir.path().join("auth.json");
        std::fs::write(&auth, r#"{"auths":{"r.example":{"auth":"Ym9iOnB3"}}}"#).expect("write");
        let env = Environment::from_pairs([
            ("DOCKER_CONFIG", docker.as_os_str()),
            ("REGISTRY_AUTH_FILE", auth.as_os_str()),
            ("U", "envuser".as_ref()),
            ("P", "envpass".as_ref()),
        ]);
        let mut settings = RegistrySettings::default();
        let (creds, source) = lookup_blocking("docker.io", &settings, &env);
        assert_eq!(creds, Credentials::basic("bob", "pw"));
        assert!(
            matches!(source, CredentialSource::DockerConfig { ref key, .. } if key == "https://index.docker.io/v1/")
        );
        let (_, source) = lookup_blocking("r.example", &settings, &env);
        assert!(matches!(source, CredentialSource::ContainersAuth { .. }));
        let (creds, source) = lookup_blocking("other.example", &settings, &env);
        assert_eq!(creds, Credentials::Anonymous);
        let text = source.to_string();
        assert!(
            text.contains("config.json") && text.contains("auth.json"),
            "{text}"
        );
        settings.env_credentials = Some(crate::model::EnvCredentials {
            username_var: "U".into(),
            password_var: "P".into(),
        });
        let (creds, source) = lookup_blocking("other.example", &settings, &env);
        assert_eq!(creds, Credentials::basic("envuser", "envpass"));
        assert_eq!(
            source.to_string(),
            "credentials from environment variables U and P"
        );
        // The Mirrorfile may put the environment first.
        settings.credential_order = Some(vec![CredentialKind::Env, CredentialKind::DockerConfig]);
        let (creds, _) = lookup_blocking("docker.io", &settings, &env);
        assert_eq!(creds, Credentials::basic("envuser", "envpass"));
        assert!(!format!("{source:?} {source}").contains("envpass"));
    }
}

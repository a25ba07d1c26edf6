//! Docker's `config.json` and containers' `auth.json`: the files `docker login` and
//! `podman login` write, and the credential helpers they name.
//!
//! Both files share the `auths` map (`auth` = base64 `user:password`, or `username` +
//! `password`, or `identitytoken`); Docker's also has `credHelpers` (per host) and `credsStore`
//! (for every host), which name a `docker-credential-<name>` program that answers
//! `get` with `{"Username":…,"Secret":…}` for the server URL written to its stdin.
//!
//! Keys are matched by host: `https://host/v1/`, `http://host` and `host` are the same
//! registry, and Docker Hub's key is `https://index.docker.io/v1/` (also `docker.io`,
//! `index.docker.io`, `registry-1.docker.io`). Nothing here ever formats a secret: errors name
//! the file, the key or the helper.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;

use super::credentials::Credentials;
use crate::environment::Environment;
use crate::oci::reference::DOCKER_HUB;

/// The server URL Docker uses for Docker Hub in `config.json` and with credential helpers.
pub const DOCKER_HUB_CONFIG_KEY: &str = "https://index.docker.io/v1/";
/// A helper that does not answer within this time is treated as failed.
const HELPER_TIMEOUT: Duration = Duration::from_secs(60);
/// Helper output read at most.
const HELPER_OUTPUT_LIMIT: u64 = 1024 * 1024;

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default)]
    creds_store: Option<String>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// What a lookup in one file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// An `auths` entry, under this key.
    Entry {
        key: String,
        credentials: Credentials,
    },
    /// A credential helper answered.
    Helper {
        helper: String,
        credentials: Credentials,
    },
    /// Nothing for this host; the note says why, for "which credentials were tried".
    Nothing(String),
}

/// The host part of an `auths` key (`https://host:5000/v1/` → `host:5000`), Docker Hub's
/// spellings normalised to `docker.io`.
pub fn key_host(key: &str) -> String {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = rest.split('/').next().unwrap_or(rest).to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
        _ => host,
    }
}

/// The server URL handed to credential helpers for `host`.
pub fn helper_server(host: &str) -> String {
    if key_host(host) == DOCKER_HUB {
        DOCKER_HUB_CONFIG_KEY.to_string()
    } else {
        host.to_string()
    }
}

impl AuthFile {
    pub fn parse(bytes: &[u8]) -> Result<AuthFile, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// Credentials for `host`: `credHelpers[host]`, else `credsStore`, else an `auths` entry
    /// (also when a helper has nothing, as Docker's own files often keep both).
    pub fn lookup(&self, host: &str, env: &Environment, file: &Path) -> Found {
        let wanted = key_host(host);
        let helper = self
            .cred_helpers
            .iter()
            .find(|(k, _)| key_host(k) == wanted)
            .map(|(_, v)| v.clone())
            .or_else(|| self.creds_store.clone())
            .filter(|h| !h.is_empty());
        let mut notes = Vec::new();
        if let Some(helper) = helper {
            match run_helper(&helper, &helper_server(host), env) {
                Ok(Some(credentials)) => {
                    return Found::Helper {
                        helper: format!("docker-credential-{helper}"),
                        credentials,
                    }
                }
                Ok(None) => notes.push(format!("docker-credential-{helper} has none")),
                Err(why) => {
                    tracing::warn!(host, helper, "credential helper failed: {why}");
                    notes.push(format!("docker-credential-{helper} failed: {why}"));
                }
            }
        }
        // Prefer the exact key, then any spelling of the same host.
        let mut keys: Vec<&String> = self
            .auths
            .keys()
            .filter(|k| key_host(k) == wanted)
            .collect();
        keys.sort_by_key(|k| (k.as_str() != host, k.len()));
        let found_any = !keys.is_empty();
        for key in keys {
            match self.auths.get(key).map(AuthEntry::credentials) {
                Some(Ok(credentials)) => {
                    return Found::Entry {
                        key: key.clone(),
                        credentials,
                    }
                }
                Some(Err(why)) => notes.push(format!("its entry \"{key}\" is unusable: {why}")),
                None => {}
            }
        }
        if !found_any {
            notes.push(format!("no entry for {host}"));
        }
        Found::Nothing(format!("{}: {}", file.display(), notes.join(", ")))
    }
}

impl AuthEntry {
    /// The credentials of this entry, or why there are none (said without any secret).
    fn credentials(&self) -> Result<Credentials, &'static str> {
        if let Some(token) = self.identitytoken.as_ref().filter(|t| !t.is_empty()) {
            return Ok(Credentials::IdentityToken(token.clone()));
        }
        if let Some(encoded) = self.auth.as_ref().filter(|a| !a.is_empty()) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|_| "its \"auth\" value is not base64")?;
            let text = String::from_utf8(decoded)
                .map_err(|_| "its \"auth\" value does not decode to text")?;
            let (user, password) = text
                .split_once(':')
                .ok_or("its \"auth\" value does not decode to user:password")?;
            return Ok(Credentials::basic(user, password));
        }
        match (&self.username, &self.password) {
            (Some(u), Some(p)) if !u.is_empty() => Ok(Credentials::basic(u, p)),
            _ => Err("it has no \"auth\", \"identitytoken\" or username and password"),
        }
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperAnswer {
    #[serde(default)]
    username: String,
    #[serde(default)]
    secret: String,
}

/// Runs `docker-credential-<name> get` (found on the environment's `PATH`, run with that
/// environment). `Ok(None)` when it has no credentials for `server`.
fn run_helper(name: &str, server: &str, env: &Environment) -> Result<Option<Credentials>, String> {
    let program = format!("docker-credential-{name}");
    let path: PathBuf = env
        .find_program(&program)
        .ok_or_else(|| format!("`{program}` is not on PATH"))?;
    let mut child = Command::new(&path)
        .arg("get")
        .env_clear()
        .envs(env.vars())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", path.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading is reported by its status below.
        let _ = stdin.write_all(server.as_bytes());
    }
    let mut output = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        let _ = stdout.take(HELPER_OUTPUT_LIMIT).read_to_end(&mut output);
    }
    let deadline = Instant::now() + HELPER_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no answer within {HELPER_TIMEOUT:?}"));
            }
            Err(e) => return Err(e.to_string()),
        }
    };
    if !status.success() {
        let text = String::from_utf8_lossy(&output).to_ascii_lowercase();
        if text.contains("not found") {
            return Ok(None);
        }
        // The output of a failed helper is its error message, but it is not ours to print.
        return Err(format!("exited with {status}"));
    }
    let answer: HelperAnswer = serde_json::from_slice(&output)
        .map_err(|_| "answered something that is not its JSON format".to_string())?;
    if answer.secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(if answer.username == "<token>" {
        Credentials::IdentityToken(answer.secret)
    } else {
        Credentials::basic(answer.username, answer.secret)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(json: &str, host: &str) -> Found {
        let file = AuthFile::parse(json.as_bytes()).expect("valid JSON");
        file.lookup(host, &Environment::default(), Path::new("/c.json"))
    }

    #[test]
    fn auths_entries_by_any_spelling_of_the_host() {
        // base64("bob:pw")
        let json = r#"{"auths":{"https://index.docker.io/v1/":{"auth":"Ym9iOnB3"},
            "https://127.0.0.1:5000/v1/":{"username":"u","password":"p"},
            "quay.io":{"identitytoken":"rt"}}}"#;
        let hub = Found::Entry {
            key: DOCKER_HUB_CONFIG_KEY.into(),
            credentials: Credentials::basic("bob", "pw"),
        };
        assert_eq!(lookup(json, "docker.io"), hub);
        assert_eq!(lookup(json, "registry-1.docker.io"), hub);
        assert!(matches!(
            lookup(json, "127.0.0.1:5000"),
            Found::Entry { credentials, .. } if credentials == Credentials::basic("u", "p")
        ));
        assert!(matches!(
            lookup(json, "quay.io"),
            Found::Entry { credentials: Credentials::IdentityToken(t), .. } if t == "rt"
        ));
        assert!(matches!(lookup(json, "ghcr.io"), Found::Nothing(n) if n.contains("/c.json")));
    }

    #[test]
    fn missing_helpers_are_reported_not_fatal() {
        let json = r#"{"auths":{"r.example":{"auth":"Ym9iOnB3"}},"credsStore":"nosuch"}"#;
        // The helper is not on PATH (the environment is empty): the auths entry still works.
        assert!(matches!(lookup(json, "r.example"), Found::Entry { .. }));
        match lookup(json, "other.example") {
            Found::Nothing(note) => assert!(note.contains("docker-credential-nosuch"), "{note}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_entry_that_cannot_be_used_is_named_with_why() {
        // base64("no-colon")
        for (auth, why) in [
            ("!!!notbase64", "its \"auth\" value is not base64"),
            ("bm8tY29sb24=", "does not decode to user:password"),
        ] {
            let json = format!(r#"{{"auths":{{"r.example":{{"auth":"{auth}"}}}}}}"#);
            match lookup(&json, "r.example") {
                Found::Nothing(note) => {
                    assert!(note.contains("entry \"r.example\" is unusable"), "{note}");
                    assert!(note.contains(why), "{note}");
                    assert!(!note.contains("no entry"), "{note}");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn keys_and_servers() {
        assert_eq!(key_host("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(key_host("http://Reg.example:5000/v2/x"), "reg.example:5000");
        assert_eq!(helper_server("docker.io"), DOCKER_HUB_CONFIG_KEY);
        assert_eq!(helper_server("ghcr.io"), "ghcr.io");
    }
}

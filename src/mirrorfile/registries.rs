//! `[registry."host"]` tables → [`RegistrySettings`]: TLS mode, CA and client certificate files,
//! where credentials come from, and a concurrency limit.
//!
//! Files named here must exist now (an error at the line that names them beats a TLS failure
//! in the middle of a run). Credentials themselves are never in the Mirrorfile: only the *names*
//! of environment variables holding them, so the file can be committed.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;

use toml::Spanned;

use super::error::{ErrorKind, MirrorfileError};
use super::lower::{Lowerer, RELATIVE_HELP};
use super::schema::{self, CredentialPlace};
use crate::model::{ClientCert, CredentialKind, EnvCredentials, RegistrySettings, TlsMode};

/// Where each `[registry."HOST"]` table starts, by host.
pub(super) type HostSpans = BTreeMap<String, Range<usize>>;

/// Largest `max_concurrency` accepted (more would only hide a typo).
const MAX_CONCURRENCY: i64 = 1024;

impl Lowerer {
    /// The settings per host, and where each host's table starts.
    pub(super) fn registries(
        &self,
        tables: &BTreeMap<Spanned<String>, schema::RegistryTable>,
    ) -> Result<(BTreeMap<String, RegistrySettings>, HostSpans), MirrorfileError> {
        let mut out = BTreeMap::new();
        let mut spans: BTreeMap<String, Range<usize>> = BTreeMap::new();
        // File order, not key order, so the first error reported is the first in the file.
        let mut keys: Vec<_> = tables.iter().collect();
        keys.sort_by_key(|(k, _)| k.span().start);
        for (key, table) in keys {
            let host = self.host(key)?;
            if let Some(first) = spans.get(&host) {
                let msg = format!("registry `{host}` is configured twice");
                let help = "these names are the same registry; merge the two tables into one";
                return Err(self
                    .file
                    .error(ErrorKind::Conflict, key.span(), msg, "second table")
                    .with_label(first.clone(), "first table")
                    .with_help(help));
            }
            spans.insert(host.clone(), key.span());
            out.insert(host, self.registry(key, table)?);
        }
        Ok((out, spans))
    }

    /// A warning for every `[registry."HOST"]` table no image source and not the target uses
    /// (a typo in the host or port would otherwise be ignored without a word).
    pub(super) fn unused_registries<'a>(
        &self,
        spans: &HostSpans,
        used: impl IntoIterator<Item = &'a str>,
    ) -> Vec<String> {
        let used: std::collections::BTreeSet<&str> = used.into_iter().collect();
        let mut unused: Vec<_> = spans
            .iter()
            .filter(|(host, _)| !used.contains(host.as_str()))
            .collect();
        unused.sort_by_key(|(_, span)| span.start);
        unused
            .into_iter()
            .map(|(host, span)| {
                format!(
                    "[registry.\"{host}\"] ({}:{}) matches no image source or the target",
                    self.file.path.display(),
                    self.file.line_of(span.start)
                )
            })
            .collect()
    }

    fn registry(
        &self,
        key: &Spanned<String>,
        table: &schema::RegistryTable,
    ) -> Result<RegistrySettings, MirrorfileError> {
        let tls = match table.tls.as_ref().map(|t| *t.get_ref()) {
            None | Some(schema::Tls::Verify) => TlsMode::Verify,
            Some(schema::Tls::SkipVerify) => TlsMode::SkipVerify,
            Some(schema::Tls::Http) => TlsMode::Http,
        };
        let ca = self.existing_file(table.ca.as_ref(), "CA file", "ca")?;
        let cert = self.existing_file(table.cert.as_ref(), "client certificate", "cert")?;
        let key_file = self.existing_file(table.key.as_ref(), "client key", "key")?;
        let client_cert = match (cert, key_file) {
            (Some(cert), Some(key)) => Some(ClientCert { cert, key }),
            (None, None) => None,
            _ => {
                let (span, present, missing) = match (&table.cert, &table.key) {
                    (Some(c), _) => (c.span(), "cert", "key"),
                    (_, Some(k)) => (k.span(), "key", "cert"),
                    _ => (key.span(), "cert", "key"),
                };
                let msg = format!("`{present}` is set without `{missing}`");
                let help = "mutual TLS needs both: `cert` (the client certificate) and `key` (its private key), PEM files";
                return Err(self.file.invalid(span, msg, "needs its pair", help));
            }
        };
        let env_credentials = match (&table.username_env, &table.password_env) {
            (Some(user), Some(pass)) => Some(EnvCredentials {
                username_var: self.variable_name(user)?,
                password_var: self.variable_name(pass)?,
            }),
            (None, None) => None,
            (Some(one), None) | (None, Some(one)) => {
                let present = if table.username_env.is_some() {
                    "username_env"
                } else {
                    "password_env"
                };
                let msg = "`username_env` and `password_env` go together";
                let help = format!(
                    "`{present}` is set: add the other one, naming the variable that holds the {}",
                    if present == "username_env" {
                        "password"
                    } else {
                        "username"
                    }
                );
                return Err(self.file.invalid(one.span(), msg, "needs its pair", help));
            }
        };
        let credential_order = match &table.credentials {
            Some(list) => Some(self.credential_order(list)?),
            None => None,
        };
        let max_concurrency = match &table.max_concurrency {
            Some(n) => {
                let value = *n.get_ref();
                if !(1..=MAX_CONCURRENCY).contains(&value) {
                    let msg = format!("`max_concurrency` is {value}");
                    let help = format!(
                        "use a number from 1 to {MAX_CONCURRENCY}: the most requests in flight to this registry"
                    );
                    return Err(self.file.invalid(n.span(), msg, "out of range", help));
                }
                usize::try_from(value).ok()
            }
            None => None,
        };
        Ok(RegistrySettings {
            tls,
            ca,
            client_cert,
            env_credentials,
            credential_order,
            max_concurrency,
            idle_timeout: None,
        })
    }

    /// A file named by `key`, resolved against the Mirrorfile's directory; it must exist.
    fn existing_file(
        &self,
        value: Option<&Spanned<String>>,
        what: &str,
        key: &str,
    ) -> Result<Option<PathBuf>, MirrorfileError> {
        let Some(value) = value else {
            return Ok(None);
        };
        let path = self.dir.join(value.get_ref());
        if !path.is_file() {
            let msg = format!("{what} `{}` does not exist", path.display());
            let help = format!("{RELATIVE_HELP}; fix it or remove `{key}`");
            return Err(self.file.invalid(value.span(), msg, "no such file", help));
        }
        Ok(Some(path))
    }

    /// An environment variable *name* (the value is read when the registry is used).
    fn variable_name(&self, name: &Spanned<String>) -> Result<String, MirrorfileError> {
        let value = name.get_ref();
        let valid = !value.is_empty()
            && !value.starts_with(|c: char| c.is_ascii_digit())
            && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            let msg = format!("`{value}` is not an environment variable name");
            let help = "give the variable's name (letters, digits and `_`), e.g. `REGISTRY_PASSWORD`, never the secret itself";
            return Err(self.file.invalid(name.span(), msg, "not a name", help));
        }
        Ok(value.clone())
    }

    fn credential_order(
        &self,
        list: &Spanned<Vec<Spanned<CredentialPlace>>>,
    ) -> Result<Vec<CredentialKind>, MirrorfileError> {
        let mut order = Vec::new();
        for place in list.get_ref() {
            let kind = match place.get_ref() {
                CredentialPlace::DockerConfig => CredentialKind::DockerConfig,
                CredentialPlace::ContainersAuth => CredentialKind::ContainersAuth,
                CredentialPlace::Env => CredentialKind::Env,
            };
            if order.contains(&kind) {
                let msg = "a credential place is listed twice";
                let help = "list each of `docker-config`, `containers-auth`, `env` at most once";
                return Err(self.file.invalid(place.span(), msg, "again here", help));
            }
            order.push(kind);
        }
        Ok(order)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOP: &str = "[target]\nregistry = \"r.example:5000\"\n";

    fn parse(dir: &std::path::Path, body: &str) -> Result<crate::model::Model, String> {
        let path = dir.join("mirrorfile.toml");
        crate::mirrorfile::parse(&path, &format!("{TOP}{body}")).map_err(|e| {
            let details = miette::Diagnostic::help(&e).map(|h| h.to_string());
            format!("{e} / {}", details.unwrap_or_default())
        })
    }

    #[test]
    fn auth_tls_and_limit_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        for f in ["c.pem", "c.key"] {
            std::fs::write(dir.path().join(f), "x").expect("write");
        }
        let model = parse(
            dir.path(),
            "[registry.\"r.example:5000\"]\ncert = \"c.pem\"\nkey = \"c.key\"\n\
             username_env = \"U\"\npassword_env = \"P_1\"\ncredentials = [\"env\", \"docker-config\"]\n\
             max_concurrency = 3\n",
        )
        .expect("valid");
        let s = model.registry_settings("r.example:5000");
        assert_eq!(s.client_cert.map(|c| c.key), Some(dir.path().join("c.key")));
        assert_eq!(
            s.env_credentials.map(|e| (e.username_var, e.password_var)),
            Some(("U".into(), "P_1".into()))
        );
        assert_eq!(
            s.credential_order,
            Some(vec![CredentialKind::Env, CredentialKind::DockerConfig])
        );
        assert_eq!(s.max_concurrency, Some(3));
        assert_eq!(
            RegistrySettings::default().credential_order(),
            CredentialKind::DEFAULT_ORDER
        );
    }

    #[test]
    fn bad_auth_keys_point_at_the_problem() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cases = [
            ("username_env = \"U\"\n", "go together"),
            (
                "password_env = \"hunter2 secret\"\nusername_env = \"U\"\n",
                "not an environment variable name",
            ),
            ("max_concurrency = 0\n", "use a number from 1"),
            ("cert = \"missing.pem\"\n", "does not exist"),
            ("credentials = [\"env\", \"env\"]\n", "listed twice"),
            ("credentials = [\"keychain\"]\n", "keychain"),
        ];
        for (body, expected) in cases {
            let err = parse(
                dir.path(),
                &format!("[registry.\"r.example:5000\"]\n{body}"),
            )
            .expect_err(body);
            let text = format!("{err:?}");
            assert!(
                text.contains(expected) || err.contains(expected),
                "{body}: {err}"
            );
        }
    }
}

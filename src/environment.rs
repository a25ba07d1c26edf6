//! [`Environment`]: the process environment, read once at the edge and passed down.
//!
//! Credentials, Docker's config location, containers' auth file and the credential helpers'
//! `PATH` all come from environment variables. Reading them in one place (the CLI takes a
//! snapshot at start-up) instead of calling `std::env::var` in the depths means tests decide
//! exactly what a run sees, and a review can find every variable `mirror` reads here.
//!
//! `Debug` prints variable names only: values may be secrets (`password_env`).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

/// A snapshot of environment variables.
#[derive(Clone, Default)]
pub struct Environment {
    vars: BTreeMap<OsString, OsString>,
}

impl Environment {
    /// The current process's environment (call once, in the CLI).
    pub fn from_process() -> Environment {
        Environment {
            vars: std::env::vars_os().collect(),
        }
    }

    /// An environment holding exactly `vars` (tests).
    pub fn from_pairs<K: Into<OsString>, V: Into<OsString>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Environment {
        Environment {
            vars: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// A variable's value, if set and valid UTF-8.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(&OsString::from(name))?.to_str()
    }

    /// A variable as a path, if set and not empty.
    pub fn path_var(&self, name: &str) -> Option<PathBuf> {
        self.vars
            .get(&OsString::from(name))
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    }

    /// All variables, for child processes (credential helpers) that must see the same world.
    pub fn vars(&self) -> impl Iterator<Item = (&OsString, &OsString)> {
        self.vars.iter()
    }

    /// `$HOME`.
    pub fn home(&self) -> Option<PathBuf> {
        self.path_var("HOME")
    }

    /// Docker's `config.json`: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
    pub fn docker_config_file(&self) -> Option<PathBuf> {
        match self.path_var("DOCKER_CONFIG") {
            Some(dir) => Some(dir.join("config.json")),
            None => self.home().map(|h| h.join(".docker").join("config.json")),
        }
    }

    /// containers' `auth.json` candidates, in the order podman and skopeo read them:
    /// `$REGISTRY_AUTH_FILE` alone when set, else `$XDG_RUNTIME_DIR/containers/auth.json`, then
    /// `$XDG_CONFIG_HOME/containers/auth.json` (or `~/.config/…`).
    pub fn containers_auth_files(&self) -> Vec<PathBuf> {
        if let Some(file) = self.path_var("REGISTRY_AUTH_FILE") {
            return vec![file];
        }
        let mut files = Vec::new();
        if let Some(runtime) = self.path_var("XDG_RUNTIME_DIR") {
            files.push(runtime.join("containers").join("auth.json"));
        }
        let config = self
            .path_var("XDG_CONFIG_HOME")
            .or_else(|| self.home().map(|h| h.join(".config")));
        if let Some(config) = config {
            files.push(config.join("containers").join("auth.json"));
        }
        files
    }

    /// Finds an executable by name on `$PATH`.
    pub fn find_program(&self, name: &str) -> Option<PathBuf> {
        let path = self.vars.get(&OsString::from("PATH"))?;
        std::env::split_paths(path)
            .map(|dir| dir.join(name))
            .find(|candidate| is_executable(candidate))
    }
}

#[cfg(unix)]
fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &std::path::Path) -> bool {
    path.is_file()
}

impl fmt::Debug for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.vars.keys().map(|k| k.to_string_lossy()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_follow_the_variables() {
        let env = Environment::from_pairs([("HOME", "/h"), ("SECRET", "hunter2")]);
        assert_eq!(
            env.docker_config_file(),
            Some(PathBuf::from("/h/.docker/config.json"))
        );
        assert_eq!(
            env.containers_auth_files(),
            vec![PathBuf::from("/h/.config/containers/auth.json")]
        );
        assert!(!format!("{env:?}").contains("hunter2"));
        let env = Environment::from_pairs([
            ("HOME", "/h"),
            ("DOCKER_CONFIG", "/d"),
            ("XDG_RUNTIME_DIR", "/run/u"),
        ]);
        assert_eq!(
            env.docker_config_file(),
            Some(PathBuf::from("/d/config.json"))
        );
        assert_eq!(
            env.containers_auth_files()[0],
            PathBuf::from("/run/u/containers/auth.json")
        );
        let env = Environment::from_pairs([("REGISTRY_AUTH_FILE", "/a.json")]);
        assert_eq!(env.containers_auth_files(), vec![PathBuf::from("/a.json")]);
    }
}

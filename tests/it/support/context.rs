//! [`TestContext`]: one temp directory per test, used as the working directory of the `mirror`
//! process, with HOME, XDG dirs and DOCKER_CONFIG inside it, so no test sees the user's
//! configuration, credentials or cache. Output helpers parse JSON and redact temp paths and
//! ports for snapshots.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

pub struct TestContext {
    root: TempDir,
    work: PathBuf,
}

impl Default for TestContext {
    fn default() -> Self {
        Self::new()
    }
}

impl TestContext {
    pub fn new() -> TestContext {
        let root = tempfile::Builder::new()
            .prefix("mirror-it-")
            .tempdir()
            .expect("create test temp dir");
        let work = root.path().join("work");
        for dir in [
            "work",
            "home",
            "home/.cache",
            "home/.config",
            "home/.docker",
        ] {
            fs::create_dir_all(root.path().join(dir)).expect("create test dirs");
        }
        TestContext { root, work }
    }

    /// The temp root (everything of this test lives below it).
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// The working directory of `mirror` (where `mirrorfile.toml` lives).
    pub fn work(&self) -> &Path {
        &self.work
    }

    pub fn home(&self) -> PathBuf {
        self.root.path().join("home")
    }

    /// Writes `work/mirrorfile.toml`.
    pub fn write_mirrorfile(&self, text: &str) -> PathBuf {
        self.write_file("mirrorfile.toml", text)
    }

    /// Writes `work/<name>` (parents created) and returns its path.
    pub fn write_file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.work.join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create parent dir");
        }
        fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    pub fn read_file(&self, name: &str) -> String {
        let path = self.work.join(name);
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    }

    /// Files below the working directory, relative, `/`-separated and sorted.
    pub fn files(&self) -> Vec<String> {
        list_files(&self.work)
    }

    /// Files below `work/<dir>`, relative to it.
    pub fn files_in(&self, dir: &str) -> Vec<String> {
        list_files(&self.work.join(dir))
    }

    /// A `Command` for the built `mirror` binary with the isolated environment.
    pub fn command(&self) -> Command {
        let home = self.home();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mirror"));
        cmd.current_dir(&self.work)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_RUNTIME_DIR", &home)
            .env("DOCKER_CONFIG", home.join(".docker"))
            .env("REGISTRY_AUTH_FILE", home.join("auth.json"))
            .env("NO_COLOR", "1")
            .env("TERM", "dumb")
            .env("COLUMNS", "100");
        cmd
    }

    /// Runs `mirror ARGS…` and returns its output, whatever the exit status.
    pub fn cmd(&self, args: &[&str]) -> Output {
        self.command()
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("run mirror {args:?}: {e}"))
    }

    /// Runs `mirror ARGS…`, asserts exit 0 and returns the output.
    pub fn cmd_ok(&self, args: &[&str]) -> Output {
        let out = self.cmd(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "mirror {args:?} failed\n{}",
            describe(&out)
        );
        out
    }

    /// Runs `mirror ARGS…` (which must include `--json`), asserts exit 0 and parses stdout.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.cmd_ok(args);
        parse_json(&out)
    }

    /// Replaces this test's temp paths with `[ROOT]` and `127.0.0.1:PORT` with `[HOST]`.
    pub fn redact(&self, text: &str) -> String {
        let mut text = text.to_string();
        let mut roots = vec![self.root.path().to_path_buf()];
        if let Ok(canonical) = self.root.path().canonicalize() {
            roots.push(canonical);
        }
        // Longest first, so a canonical path containing the other is fully replaced.
        roots.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
        for root in roots {
            text = text.replace(&root.display().to_string(), "[ROOT]");
        }
        redact_hosts(&text)
    }
}

/// Replaces every `127.0.0.1:DIGITS` with `[HOST]`.
pub fn redact_hosts(text: &str) -> String {
    const NEEDLE: &str = "127.0.0.1:";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find(NEEDLE) {
        let after = &rest[pos + NEEDLE.len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        out.push_str(&rest[..pos]);
        if digits > 0 {
            out.push_str("[HOST]");
        } else {
            out.push_str(NEEDLE);
        }
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}

/// Exit status, stdout and stderr of a run, for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Output as one line: miette's wrapping (`|` gutters, line breaks) removed, whitespace
/// collapsed, so assertions can look for phrases that were wrapped.
pub fn flat(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .replace('|', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Parses stdout as JSON, with the whole output in the panic message when it is not.
pub fn parse_json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e})\n{}", describe(out)))
}

/// The top of a Mirrorfile: target (with optional prefix), and both registries over plain HTTP.
pub fn mirrorfile_header(upstream: &str, target: &str, prefix: Option<&str>) -> String {
    let mut text = format!("[target]\nregistry = \"{target}\"\n");
    if let Some(prefix) = prefix {
        text.push_str(&format!("prefix = \"{prefix}\"\n"));
    }
    text.push_str(&format!(
        "\n[registry.\"{upstream}\"]\ntls = \"http\"\n\n[registry.\"{target}\"]\ntls = \"http\"\n\n[cache]\ndir = \"cache\"\n"
    ));
    text
}

fn list_files(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(base, &path, out);
            } else if let Ok(rel) = path.strip_prefix(base) {
                let parts: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                out.push(parts.join("/"));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

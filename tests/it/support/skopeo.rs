//! `skopeo` 1.9.3 as an independent client: it seeds upstream registries and checks what
//! `mirror` wrote. It runs with a cleared environment and a throwaway HOME, so no user
//! configuration or credentials leak in.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use tempfile::TempDir;

const BINARY: &str = "/usr/bin/skopeo";

fn home() -> &'static Path {
    static HOME: OnceLock<TempDir> = OnceLock::new();
    HOME.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("mirror-it-skopeo-home-")
            .tempdir()
            .expect("create skopeo HOME")
    })
    .path()
}

fn command() -> Command {
    assert!(
        Path::new(BINARY).exists(),
        "{BINARY} not found: install skopeo (apt-get install skopeo)"
    );
    let mut cmd = Command::new(BINARY);
    cmd.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home())
        .env("XDG_RUNTIME_DIR", home())
        .env("XDG_CONFIG_HOME", home().join(".config"));
    cmd
}

/// Runs skopeo with `args` and returns its output, whatever the exit status.
pub fn run(args: &[&str]) -> Output {
    command()
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run skopeo {args:?}: {e}"))
}

/// Runs skopeo and panics (showing stderr) unless it succeeds; returns stdout.
pub fn run_ok(args: &[&str]) -> Vec<u8> {
    let out = run(args);
    assert!(
        out.status.success(),
        "skopeo {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The exact manifest/index bytes behind `reference` (`HOST/REPO:TAG` or `HOST/REPO@DIGEST`).
pub fn inspect_raw(reference: &str) -> Vec<u8> {
    let transport = format!("docker://{reference}");
    run_ok(&["inspect", "--raw", "--tls-verify=false", &transport])
}

/// Like [`inspect_raw`], but `None` when skopeo fails (e.g. the manifest is absent).
pub fn try_inspect_raw(reference: &str) -> Option<Vec<u8>> {
    let transport = format!("docker://{reference}");
    let out = run(&["inspect", "--raw", "--tls-verify=false", &transport]);
    out.status.success().then_some(out.stdout)
}

/// [`inspect_raw`] parsed as JSON.
pub fn inspect_raw_json(reference: &str) -> serde_json::Value {
    let raw = inspect_raw(reference);
    serde_json::from_slice(&raw)
        .unwrap_or_else(|e| panic!("skopeo inspect --raw {reference} is not JSON: {e}"))
}

/// The image config (for a single-platform manifest reference), parsed.
pub fn inspect_config(reference: &str) -> serde_json::Value {
    let transport = format!("docker://{reference}");
    let raw = run_ok(&[
        "inspect",
        "--config",
        "--raw",
        "--tls-verify=false",
        &transport,
    ]);
    serde_json::from_slice(&raw)
        .unwrap_or_else(|e| panic!("skopeo inspect --config {reference} is not JSON: {e}"))
}

/// Pushes tag `tag` of the OCI layout `layout` to `dest` (`HOST/REPO:TAG`), all platforms,
/// digests preserved.
pub fn copy_layout_to_registry(layout: &Path, tag: &str, dest: &str) {
    let src = format!("oci:{}:{tag}", layout.display());
    let dst = format!("docker://{dest}");
    run_ok(&[
        "--insecure-policy",
        "copy",
        "--quiet",
        "--all",
        "--preserve-digests",
        "--dest-tls-verify=false",
        &src,
        &dst,
    ]);
}

/// Copies `reference` (all platforms, digests preserved) into the OCI layout `dir` under `tag`,
/// and returns the layout directory.
pub fn copy_to_oci_dir(reference: &str, dir: &Path, tag: &str) -> PathBuf {
    let src = format!("docker://{reference}");
    let dst = format!("oci:{}:{tag}", dir.display());
    run_ok(&[
        "--insecure-policy",
        "copy",
        "--quiet",
        "--all",
        "--preserve-digests",
        "--src-tls-verify=false",
        &src,
        &dst,
    ]);
    dir.to_path_buf()
}

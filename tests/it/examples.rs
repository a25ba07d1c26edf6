//! The committed examples: every Mirrorfile parses, and the k3s release example mirrors what it
//! says against local registries.
//!
//! The k3s test seeds a local upstream with generated images under the example's repository
//! names, then runs the example Mirrorfile unchanged except for hosts: the list's `docker.io/`
//! becomes the upstream's `127.0.0.1:PORT/` (a copy of the list is written next to a copy of the
//! Mirrorfile) and the target registry becomes the local target, over plain HTTP.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::support::lab::{image_entry, index_platforms, num, Lab};
use crate::support::skopeo;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn mirrorfiles(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            mirrorfiles(&path, found);
        } else if path.file_name().is_some_and(|n| n == "mirrorfile.toml") {
            found.push(path);
        }
    }
}

/// A copy of `file`'s directory in `into`, with a placeholder for every `[[archives]]` glob
/// (`*` → `amd64`) and `[[bundles]]` path the example expects the user to bring.
fn with_placeholders(file: &Path, into: &Path) -> PathBuf {
    let dir = file.parent().expect("a directory");
    for entry in std::fs::read_dir(dir).expect("example dir").flatten() {
        if entry.path().is_file() {
            std::fs::copy(entry.path(), into.join(entry.file_name())).expect("copy example");
        }
    }
    let text = std::fs::read_to_string(file).expect("example");
    let doc: toml::Table = text.parse().expect("TOML");
    for key in ["archives", "bundles"] {
        for entry in doc
            .get(key)
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
        {
            let path = entry["path"].as_str().expect("path").replace('*', "amd64");
            std::fs::write(into.join(path), b"").expect("placeholder");
        }
    }
    into.join("mirrorfile.toml")
}

#[test]
fn every_example_mirrorfile_parses() {
    let mut files = vec![root().join("mirrorfile.toml")];
    mirrorfiles(&root().join("examples"), &mut files);
    for wanted in [
        "k3s-v1.21.7",
        "airgap-archives",
        "air-gap-bundle/connected",
        "air-gap-bundle/airgapped",
    ] {
        let path = root().join("examples").join(wanted).join("mirrorfile.toml");
        assert!(files.contains(&path), "{wanted} not found in {files:?}");
    }
    for file in &files {
        let scratch = tempfile::tempdir().expect("scratch dir");
        let text = std::fs::read_to_string(file).expect("example");
        // Archives and bundles are brought by the user: load a copy with stand-ins for them.
        let brought = text.contains("[[archives]]") || text.contains("[[bundles]]");
        let copy = if brought {
            with_placeholders(file, scratch.path())
        } else {
            file.clone()
        };
        let model = mirror::mirrorfile::load(&copy)
            .unwrap_or_else(|e| panic!("{} does not parse: {e:?}", file.display()));
        assert!(
            !model.images.is_empty()
                || !model.archives.is_empty()
                || !model.bundles.is_empty()
                || !model.repositories.is_empty(),
            "{}: mirrors nothing",
            file.display()
        );
    }
}

const K3S: &str = "examples/k3s-v1.21.7";
const EXAMPLE_TARGET: &str = "registry.example.internal:5000";

#[test]
fn k3s_example_mirrors_three_platforms_of_every_image() {
    let lab = Lab::new();
    let (up, tgt) = (lab.up(), lab.tgt());
    let list = std::fs::read_to_string(root().join(K3S).join("k3s-images.txt")).expect("list");
    let refs: Vec<&str> = list
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(
        refs.len(),
        8,
        "the k3s v1.21.7+k3s1 image list has 8 images"
    );

    // Upstream: every repository of the list, with one platform more than the example selects.
    let built = lab.seed_docker_io(&refs);

    // The example, with only the hosts rewritten.
    let example =
        std::fs::read_to_string(root().join(K3S).join("mirrorfile.toml")).expect("example");
    assert!(example.contains(EXAMPLE_TARGET));
    let text = example
        .replace(EXAMPLE_TARGET, &tgt)
        .replace("tls = \"verify\"", "tls = \"http\"")
        + &format!("\n[registry.\"{up}\"]\ntls = \"http\"\n\n[cache]\ndir = \"cache\"\n");
    lab.ctx.write_mirrorfile(&text);
    lab.ctx.write_file(
        "k3s-images.txt",
        &list.replace("docker.io/", &format!("{up}/")),
    );

    let report = lab.ctx.json(&["apply", "--json"]);
    assert_eq!(num(&report["summary"], "images"), 8);
    assert_eq!(num(&report["summary"], "failed"), 0);
    let wanted: BTreeSet<String> = ["linux/amd64", "linux/arm64", "linux/arm/v7"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for (path, image) in &built {
        let entry = image_entry(&report, &format!("{up}/{path}"));
        assert_eq!(entry["target"], format!("{tgt}/{path}"));
        assert_eq!(entry["status"], "ok");
        let index: serde_json::Value =
            serde_json::from_slice(&skopeo::inspect_raw(&format!("{tgt}/{path}"))).expect("index");
        assert_eq!(index_platforms(&index), wanted, "{path}");
        for platform in ["linux/amd64", "linux/arm64", "linux/arm/v7"] {
            let child = image.manifest(platform);
            let raw = skopeo::inspect_raw(&format!("{tgt}/{}@{}", repo(path), child.digest));
            assert_eq!(raw, child.bytes, "{path} {platform}: bytes are sacred");
        }
    }

    // A rerun has nothing to do.
    let plan = lab.ctx.json(&["plan", "--json"]);
    assert_eq!(num(&plan["summary"], "unchanged"), 8);
    assert_eq!(num(&plan["summary"], "push_bytes"), 0);

    // And the cluster side: every image's registry mirrored to the target, over HTTP.
    let yaml = String::from_utf8_lossy(&lab.ctx.cmd_ok(&["registries-yaml"]).stdout).into_owned();
    assert!(
        yaml.contains(&format!(
            "  \"{up}\":\n    endpoint:\n      - \"http://{tgt}\""
        )),
        "{yaml}"
    );
    assert!(
        !yaml.contains("rewrite"),
        "no prefix, no rename: no rewrite\n{yaml}"
    );
}

fn repo(path: &str) -> &str {
    path.rsplit_once(':').map(|(r, _)| r).unwrap_or(path)
}

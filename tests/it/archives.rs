//! `[[archives]]`: per-architecture `docker save` / OCI archives pushed as multi-platform
//! indexes into a real registry, checked with skopeo; incremental reruns; determinism across
//! caches; platform contradictions; hostile archives.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::support::archives::{
    classic_entries, config_for, ctr_export, docker25_entries, tar_of, write_packed, ArchImage,
    Entry, Packing,
};
use crate::support::context::{describe, stderr};
use crate::support::images::{layer_tar, sha256};
use crate::support::lab::{image_entry, index_platforms, line_of, num, Lab};
use crate::support::skopeo;

/// The four images of one architecture: a namespaced one, an official image without a
/// namespace, one sharing its base layer, and a `localhost/` short name.
fn release(arch: &str, platform: &str, busybox_platform: &str) -> Vec<ArchImage> {
    vec![
        ArchImage::new(
            &["rancher/mirrored-pause:3.6"],
            platform,
            &[&format!("pause-{arch}")],
        ),
        ArchImage::new(
            &["busybox:1.36"],
            busybox_platform,
            &[&format!("base-{arch}")],
        ),
        ArchImage::new(
            &["lab/toolbox:1.0"],
            platform,
            &[&format!("base-{arch}"), &format!("tools-{arch}")],
        ),
        ArchImage::new(&["localhost/app:1"], platform, &[&format!("app-{arch}")]),
    ]
}

fn archive_mirrorfile(lab: &Lab, body: &str) {
    lab.write_mirrorfile(Some("mirror"), body);
}

/// Every tag's expected platforms on the target.
fn expected() -> BTreeMap<&'static str, Vec<&'static str>> {
    let three = vec!["linux/amd64", "linux/arm/v7", "linux/arm64"];
    BTreeMap::from([
        ("mirror/rancher/mirrored-pause:3.6", three.clone()),
        (
            "mirror/library/busybox:1.36",
            vec!["linux/amd64", "linux/arm/v6", "linux/arm64"],
        ),
        ("mirror/lab/toolbox:1.0", three.clone()),
        ("mirror/app:1", three),
    ])
}

/// Copies `reference` with skopeo into an OCI dir and returns, per child, the platform its
/// index entry states and the platform its config states.
fn child_platforms(lab: &Lab, reference: &str) -> Vec<(String, String)> {
    let dir = lab
        .ctx
        .root()
        .join(format!("oci-{}", &sha256(reference.as_bytes())[7..19]));
    skopeo::copy_to_oci_dir(reference, &dir, "x");
    let blob = |d: &str| -> Value {
        let path = dir
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"));
        serde_json::from_slice(&std::fs::read(&path).expect("blob in oci dir")).expect("JSON blob")
    };
    let layout: Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).expect("index.json"))
            .expect("json");
    let top = blob(
        layout["manifests"][0]["digest"]
            .as_str()
            .expect("top digest"),
    );
    let mut out = Vec::new();
    for entry in top["manifests"].as_array().expect("an index") {
        let listed = crate::support::lab::entry_platform(entry);
        let manifest = blob(entry["digest"].as_str().expect("child digest"));
        let config = blob(
            manifest["config"]["digest"]
                .as_str()
                .expect("config digest"),
        );
        let mut stated = format!(
            "{}/{}",
            config["os"].as_str().unwrap_or("?"),
            config["architecture"].as_str().unwrap_or("?")
        );
        if let Some(v) = config["variant"].as_str() {
            stated.push_str(&format!("/{v}"));
        }
        out.push((listed, stated));
    }
    out
}

fn write_release(work: &Path) {
    write_packed(
        &work.join("k3s-airgap-images-amd64.tar"),
        &tar_of(&classic_entries(&release(
            "amd64",
            "linux/amd64",
            "linux/amd64",
        ))),
        Packing::Plain,
    );
    write_packed(
        &work.join("k3s-airgap-images-arm64.tar.zst"),
        &tar_of(&docker25_entries(&release(
            "arm64",
            "linux/arm64",
            "linux/arm64",
        ))),
        Packing::Zstd,
    );
    write_packed(
        &work.join("k3s-airgap-images-arm.tar.gz"),
        &tar_of(&classic_entries(&release(
            "arm",
            "linux/arm/v7",
            "linux/arm/v6",
        ))),
        Packing::Gzip,
    );
}

#[test]
fn per_arch_archives_become_indexes_with_exactly_their_platforms() {
    let lab = Lab::new();
    write_release(lab.ctx.work());
    archive_mirrorfile(&lab, "[[archives]]\npath = \"k3s-airgap-images-*.tar*\"\n");
    let tgt = lab.tgt();

    let plan = lab.ctx.json(&["plan", "--json"]);
    assert_eq!(num(&plan["summary"], "create"), 4);
    assert_eq!(
        num(&plan["summary"], "fetch_blobs"),
        0,
        "archive images are never fetched"
    );
    assert_eq!(num(&plan["summary"]["archives"], "archives"), 3);
    // 4 + 4 + 4 distinct layers, minus nothing shared across arches; base shared within one.
    assert_eq!(num(&plan["summary"]["archives"], "layers_compressed"), 12);
    let busybox = image_entry(&plan, "docker.io/library/busybox:1.36");
    let from: Vec<(String, String)> = busybox["archives"]
        .as_array()
        .expect("archives per platform")
        .iter()
        .map(|a| {
            let file = a["archive"].as_str().unwrap_or("");
            let name = Path::new(file)
                .file_name()
                .map(|n| n.to_string_lossy().to_string());
            (
                a["platform"].as_str().unwrap_or("").to_string(),
                name.unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        from,
        vec![
            (
                "linux/amd64".to_string(),
                "k3s-airgap-images-amd64.tar".to_string()
            ),
            (
                "linux/arm/v6".to_string(),
                "k3s-airgap-images-arm.tar.gz".to_string()
            ),
            (
                "linux/arm64".to_string(),
                "k3s-airgap-images-arm64.tar.zst".to_string()
            ),
        ]
    );
    let text = crate::support::context::stdout(&lab.ctx.cmd_ok(&["plan"]));
    assert!(
        text.contains("linux/arm/v6") && text.contains("from k3s-airgap-images-arm.tar.gz"),
        "{text}"
    );

    let first = lab.ctx.json(&["apply", "--json"]);
    assert_eq!(num(&first["summary"], "failed"), 0);
    for (target, platforms) in expected() {
        let reference = format!("{tgt}/{target}");
        let index = skopeo::inspect_raw_json(&reference);
        assert_eq!(
            index["mediaType"], "application/vnd.oci.image.index.v1+json",
            "{target}"
        );
        let want: std::collections::BTreeSet<String> =
            platforms.iter().map(|p| p.to_string()).collect();
        assert_eq!(index_platforms(&index), want, "{target}");
        for (listed, stated) in child_platforms(&lab, &reference) {
            assert_eq!(listed, stated, "{target}: index entry vs config");
        }
    }

    // Second run: nothing moves, nothing is recompressed.
    let second = lab.ctx.json(&["apply", "--json"]);
    assert_eq!(num(&second["summary"], "blobs_pushed"), 0);
    assert_eq!(num(&second["summary"], "manifests_pushed"), 0);
    assert_eq!(num(&second["summary"]["archives"], "layers_compressed"), 0);
    assert!(num(&second["summary"]["archives"], "memo_hits") >= 12);

    // A fresh cache compresses again and gets the very same digests: everything unchanged.
    let text = lab
        .ctx
        .read_file("mirrorfile.toml")
        .replace("dir = \"cache\"", "dir = \"cache2\"");
    lab.ctx.write_mirrorfile(&text);
    let fresh = lab.ctx.json(&["plan", "--json"]);
    assert_eq!(num(&fresh["summary"]["archives"], "layers_compressed"), 12);
    assert_eq!(num(&fresh["summary"], "unchanged"), 4, "{fresh:#}");
}

#[test]
fn zstd_and_no_compression_settings_and_a_ctr_export_keep_its_bytes() {
    let lab = Lab::new();
    let work = lab.ctx.work();
    let amd = ArchImage::new(
        &["docker.io/rancher/klipper:0.1"],
        "linux/amd64",
        &["klipper-amd"],
    );
    write_packed(
        &work.join("a-amd64.tar"),
        &tar_of(&classic_entries(&[amd])),
        Packing::Plain,
    );
    let arm64 = ArchImage::new(
        &["docker.io/rancher/klipper:0.1"],
        "linux/arm64",
        &["klipper-arm64"],
    );
    let export = ctr_export(&arm64);
    write_packed(
        &work.join("b-arm64.tar.gz"),
        &tar_of(&export.entries),
        Packing::Gzip,
    );
    archive_mirrorfile(
        &lab,
        "[defaults]\ncompression = \"zstd\"\n\n[[archives]]\npath = \"a-amd64.tar\"\n\n[[archives]]\npath = \"b-arm64.tar.gz\"\nplatform = \"linux/arm64\"\n",
    );
    let plan = lab.ctx.json(&["plan", "--json"]);
    let image = image_entry(&plan, "docker.io/rancher/klipper:0.1");
    let archives = image["archives"].as_array().expect("archives");
    assert_eq!(archives.len(), 2);
    assert_eq!(archives[1]["platform"], "linux/arm64");
    assert_eq!(
        archives[1]["manifest"],
        export.manifest.as_str(),
        "ctr export manifest kept byte for byte"
    );
    assert_eq!(
        archives[1]["upstream_index"],
        export.upstream_index.as_str()
    );
    lab.ctx.cmd_ok(&["apply"]);
    let reference = format!("{}/mirror/rancher/klipper:0.1", lab.tgt());
    let index = skopeo::inspect_raw_json(&reference);
    let amd_digest = index["manifests"][0]["digest"]
        .as_str()
        .expect("amd64 child")
        .to_string();
    let amd_manifest = skopeo::inspect_raw_json(&format!(
        "{}/mirror/rancher/klipper@{amd_digest}",
        lab.tgt()
    ));
    assert_eq!(
        amd_manifest["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    for (listed, stated) in child_platforms(&lab, &reference) {
        assert_eq!(listed, stated);
    }

    // `compression = "none"` pushes the tar itself: the layer digest is the diff_id.
    let lab2 = Lab::new();
    let solo = ArchImage::new(&["solo:1"], "linux/amd64", &["solo"]);
    let diff = solo.diff_ids()[0].clone();
    write_packed(
        &lab2.ctx.work().join("s.tar"),
        &tar_of(&classic_entries(&[solo])),
        Packing::Plain,
    );
    archive_mirrorfile(
        &lab2,
        "[[archives]]\npath = \"s.tar\"\ncompression = \"none\"\nindex = false\n",
    );
    lab2.ctx.cmd_ok(&["apply"]);
    let manifest = skopeo::inspect_raw_json(&format!("{}/mirror/library/solo:1", lab2.tgt()));
    assert_eq!(
        manifest["mediaType"], "application/vnd.oci.image.manifest.v1+json",
        "index = false"
    );
    assert_eq!(manifest["layers"][0]["digest"], diff.as_str());
}

/// Runs `apply` and asserts it failed cleanly, pushed nothing and said each of `needles`.
fn assert_refused(lab: &Lab, args: &[&str], needles: &[&str]) -> String {
    let out = lab.ctx.cmd(args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(!err.contains("panicked"), "{err}");
    // miette wraps long lines (and may break at `-`): compare without whitespace and gutters.
    let squash = |t: &str| {
        t.chars()
            .filter(|c| !c.is_whitespace() && *c != '|')
            .collect::<String>()
    };
    let flat = squash(&err);
    for needle in needles {
        assert!(flat.contains(&squash(needle)), "`{needle}` not in:\n{err}");
    }
    assert!(
        lab.target_catalog().is_empty(),
        "something was pushed: {:?}",
        lab.target_catalog()
    );
    err
}

#[test]
fn platform_contradictions_are_errors_unless_allowed() {
    let lab = Lab::new();
    let work = lab.ctx.work();
    // A file named arm64 that holds an amd64 image.
    let wrong = ArchImage::new(&["lab/wrong:1"], "linux/amd64", &["wrong"]);
    write_packed(
        &work.join("imgs-arm64.tar"),
        &tar_of(&classic_entries(&[wrong])),
        Packing::Plain,
    );
    archive_mirrorfile(&lab, "[[archives]]\npath = \"imgs-arm64.tar\"\n");
    assert_refused(
        &lab,
        &["apply"],
        &[
            "imgs-arm64.tar",
            "docker.io/lab/wrong:1",
            "linux/amd64",
            "arm64",
        ],
    );
    let plan = lab
        .ctx
        .json(&["plan", "--json", "--allow-platform-mismatch"]);
    let image = image_entry(&plan, "docker.io/lab/wrong:1");
    assert!(
        image["warnings"]
            .to_string()
            .contains("file name says arm64"),
        "{image:#}"
    );

    // An explicit `platform` assertion against an arm/v6 config.
    let v6 = ArchImage::new(&["lab/old:1"], "linux/arm/v6", &["old"]);
    write_packed(
        &work.join("old.tar"),
        &tar_of(&classic_entries(&[v6])),
        Packing::Plain,
    );
    archive_mirrorfile(
        &lab,
        "[[archives]]\npath = \"old.tar\"\nplatform = \"linux/arm/v7\"\n",
    );
    assert_refused(
        &lab,
        &["apply"],
        &["old.tar", "lab/old:1", "linux/arm/v7", "linux/arm/v6"],
    );

    // Two archives, one platform, one tag, different content.
    let a = ArchImage::new(&["lab/x:1"], "linux/amd64", &["x-a"]);
    let b = ArchImage::new(&["lab/x:1"], "linux/amd64", &["x-b"]);
    write_packed(
        &work.join("one-amd64.tar"),
        &tar_of(&classic_entries(std::slice::from_ref(&a))),
        Packing::Plain,
    );
    write_packed(
        &work.join("two-amd64.tar"),
        &tar_of(&classic_entries(&[b])),
        Packing::Plain,
    );
    archive_mirrorfile(&lab, "[[archives]]\npath = \"*-amd64.tar\"\n");
    assert_refused(
        &lab,
        &["apply"],
        &["one-amd64.tar", "two-amd64.tar", "lab/x:1", "linux/amd64"],
    );
    // The same content twice is one image.
    write_packed(
        &work.join("two-amd64.tar"),
        &tar_of(&docker25_entries(&[a])),
        Packing::Gzip,
    );
    let plan = lab.ctx.json(&["plan", "--json"]);
    assert_eq!(
        image_entry(&plan, "docker.io/lab/x:1")["platforms"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    // The same archive in two entries that would push it differently (zstd and gzip layers):
    // which one lands must not depend on the order of the entries.
    let body = "[[archives]]\npath = \"one-amd64.tar\"\ncompression = \"zstd\"\n\n\
                [[archives]]\npath = \"one-amd64.tar\"\ncompression = \"gzip\"\n";
    let text = lab.write_mirrorfile(Some("mirror"), body);
    // Each entry is declared at its `[[archives]]` line, the one above its `compression`.
    let zstd_entry = line_of(&text, "\"zstd\"") - 2;
    let gzip_entry = line_of(&text, "\"gzip\"") - 2;
    assert_refused(
        &lab,
        &["apply"],
        &[
            "lab/x:1",
            "linux/amd64",
            &format!("mirrorfile.toml:{zstd_entry} and mirrorfile.toml:{gzip_entry}"),
            "different manifests",
            "compression",
        ],
    );
}

#[test]
fn hostile_archives_are_refused_with_clear_errors() {
    let lab = Lab::new();
    let good = ArchImage::new(&["lab/ok:1"], "linux/amd64", &["ok"]);
    let with = |extra: Vec<Entry>| {
        let mut entries = classic_entries(std::slice::from_ref(&good));
        entries.extend(extra);
        entries
    };
    let file = |n: &str, b: &[u8]| Entry::File(n.to_string(), b.to_vec());
    let mut missing = classic_entries(std::slice::from_ref(&good));
    missing.retain(|e| !matches!(e, Entry::File(n, _) if n.ends_with("layer.tar")));
    let wrong_digest = {
        let mut entries = docker25_entries(std::slice::from_ref(&good));
        for e in &mut entries {
            if let Entry::File(name, body) = e {
                if name.starts_with("blobs/") && body.len() > 1000 {
                    body[600] ^= 1;
                }
            }
        }
        entries
    };
    let bad_diff = {
        let mut img = good.clone();
        img.config = config_for("linux/amd64", &[layer_tar("other", 10)]);
        classic_entries(&[img])
    };
    let huge = vec![file("manifest.json", &vec![b' '; 17 * 1024 * 1024])];
    let cases: Vec<(&str, Vec<Entry>, &[&str])> = vec![
        (
            "dotdot",
            with(vec![file("../evil", b"x")]),
            &["`..` path component"],
        ),
        (
            "absolute",
            with(vec![file("/etc/evil", b"x")]),
            &["absolute path"],
        ),
        (
            "escape",
            with(vec![Entry::Symlink(
                "abc/layer.tar".into(),
                "../../etc/passwd".into(),
            )]),
            &["outside the archive"],
        ),
        (
            "duplicate",
            with(vec![file("repositories", b"{}")]),
            &["appears twice"],
        ),
        ("missing", missing, &["layer.tar", "is not in the archive"]),
        ("digest", wrong_digest, &["hashes to"]),
        ("diffid", bad_diff, &["diff_id"]),
        ("huge", huge, &["over the", "manifest.json"]),
    ];
    for (name, entries, needles) in cases {
        let path = lab.ctx.work().join(format!("{name}-amd64.tar"));
        write_packed(&path, &tar_of(&entries), Packing::Plain);
        archive_mirrorfile(
            &lab,
            &format!("[[archives]]\npath = \"{name}-amd64.tar\"\n"),
        );
        let mut all = vec![format!("{name}-amd64.tar")];
        all.extend(needles.iter().map(|n| n.to_string()));
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        assert_refused(&lab, &["apply"], &refs);
    }
}

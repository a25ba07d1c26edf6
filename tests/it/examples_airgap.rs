//! The two air-gap examples, run unchanged except for hosts against local registries:
//! `examples/airgap-archives` (per-arch k3s archives → one registry of multi-platform indexes)
//! and `examples/air-gap-bundle` (connected Mirrorfile → bundle → air-gapped Mirrorfile →
//! registry). Each asserts platforms and digests on the target, not just exit codes.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::support::archives::{
    classic_entries, docker25_entries, tar_of, write_packed, ArchImage, Packing,
};
use crate::support::context::TestContext;
use crate::support::lab::{index_platforms, num, Lab};
use crate::support::skopeo;

const EXAMPLE_TARGET: &str = "registry.example.internal:5000";

fn example(path: &str) -> String {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(path);
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// The example with the target host made local and plain HTTP, and a cache in `cache/`.
fn localised(text: &str, target: &str, extra: &str) -> String {
    assert!(text.contains(EXAMPLE_TARGET), "{text}");
    text.replace(EXAMPLE_TARGET, target)
        .replace("tls = \"verify\"", "tls = \"http\"")
        + extra
        + "\n[cache]\ndir = \"cache\"\n"
}

#[test]
fn airgap_archives_example_gives_one_index_per_image_with_every_arch() {
    let lab = Lab::new();
    let tgt = lab.tgt();
    let work = lab.ctx.work();
    let arches = [
        ("amd64", "linux/amd64"),
        ("arm64", "linux/arm64"),
        ("arm", "linux/arm/v7"),
    ];
    let images = |arch: &str, platform: &str| {
        vec![
            ArchImage::new(
                &["rancher/mirrored-pause:3.6"],
                platform,
                &[&format!("p-{arch}")],
            ),
            ArchImage::new(
                &["rancher/mirrored-coredns-coredns:1.9.1"],
                platform,
                &[&format!("c-{arch}"), &format!("c2-{arch}")],
            ),
        ]
    };
    // The layouts k3s releases have shipped: classic docker save, Docker 25+, compressed or not.
    let amd = images("amd64", arches[0].1);
    write_packed(
        &work.join("k3s-airgap-images-amd64.tar"),
        &tar_of(&classic_entries(&amd)),
        Packing::Plain,
    );
    let arm64 = images("arm64", arches[1].1);
    write_packed(
        &work.join("k3s-airgap-images-arm64.tar.zst"),
        &tar_of(&docker25_entries(&arm64)),
        Packing::Zstd,
    );
    let arm = images("arm", arches[2].1);
    write_packed(
        &work.join("k3s-airgap-images-arm.tar.gz"),
        &tar_of(&classic_entries(&arm)),
        Packing::Gzip,
    );

    let text = localised(&example("airgap-archives/mirrorfile.toml"), &tgt, "");
    lab.ctx.write_mirrorfile(&text);
    let report = lab.ctx.json(&["apply", "--json"]);
    assert_eq!(num(&report["summary"], "images"), 2, "{report:#}");
    assert_eq!(num(&report["summary"], "failed"), 0);
    let all: BTreeSet<String> = arches.iter().map(|(_, p)| p.to_string()).collect();
    for (i, repo_tag) in [
        "rancher/mirrored-pause:3.6",
        "rancher/mirrored-coredns-coredns:1.9.1",
    ]
    .iter()
    .enumerate()
    {
        let index = skopeo::inspect_raw_json(&format!("{tgt}/{repo_tag}"));
        assert_eq!(index_platforms(&index), all, "{repo_tag}");
        let repo = repo_tag.split(':').next().unwrap_or(repo_tag);
        for entry in index["manifests"].as_array().expect("entries") {
            let digest = entry["digest"].as_str().expect("digest");
            let manifest = skopeo::inspect_raw_json(&format!("{tgt}/{repo}@{digest}"));
            let platform = crate::support::lab::entry_platform(entry);
            let built = [&amd, &arm64, &arm]
                .iter()
                .map(|set| &set[i])
                .find(|image| image.platform == platform)
                .expect("a built image for this platform");
            assert_eq!(
                manifest["config"]["digest"],
                built.config_digest().as_str(),
                "{repo_tag} {platform}: the archive's config"
            );
        }
    }
    // No `-arch` tags left behind: one tag per image.
    assert_eq!(
        crate::support::http::tags(&tgt, "rancher/mirrored-pause"),
        ["3.6"]
    );
    let again = lab.ctx.json(&["plan", "--json"]);
    assert_eq!(num(&again["summary"], "unchanged"), 2);
}

#[test]
fn air_gap_bundle_example_carries_every_digest_across() {
    let lab = Lab::new();
    let (up, tgt) = (lab.up(), lab.tgt());
    let connected_text = example("air-gap-bundle/connected/mirrorfile.toml");
    let refs: Vec<String> = connected_text
        .lines()
        .filter_map(|l| l.strip_prefix("ref = \""))
        .map(|r| r.trim_end_matches('"').to_string())
        .collect();
    assert_eq!(refs.len(), 3, "{connected_text}");
    let built = lab.seed_docker_io(&refs);

    // Connected side: only the upstream host changes.
    let connected = TestContext::new();
    connected.write_mirrorfile(
        &(connected_text.replace("docker.io/", &format!("{up}/"))
            + &format!("\n[registry.\"{up}\"]\ntls = \"http\"\n\n[cache]\ndir = \"cache\"\n")),
    );
    let written = connected.json(&["apply", "--json"]);
    assert_eq!(num(&written["summary"], "failed"), 0);
    let bundle = connected.work().join("k3s-v1.21.7.mirror.tar.zst");
    assert!(bundle.is_file(), "{written:#}");

    // Across the gap: the upstream stops being needed; the bundle is copied beside the
    // air-gapped Mirrorfile.
    let airgapped = TestContext::new();
    std::fs::copy(&bundle, airgapped.work().join("k3s-v1.21.7.mirror.tar.zst")).expect("carry");
    airgapped.write_mirrorfile(&localised(
        &example("air-gap-bundle/airgapped/mirrorfile.toml"),
        &tgt,
        "",
    ));
    let report = airgapped.json(&["apply", "--json"]);
    assert_eq!(num(&report["summary"], "failed"), 0);
    assert_eq!(num(&report["summary"], "images"), 3, "{report:#}");
    let wanted: BTreeSet<String> = ["linux/amd64", "linux/arm64", "linux/arm/v7"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for (path, image) in &built {
        let index = skopeo::inspect_raw_json(&format!("{tgt}/{path}"));
        assert_eq!(
            index_platforms(&index),
            wanted,
            "{path}: the selected platforms"
        );
        let repo = path.rsplit_once(':').map_or(path.as_str(), |(r, _)| r);
        for platform in &wanted {
            let child = image.manifest(platform);
            let raw = skopeo::inspect_raw(&format!("{tgt}/{repo}@{}", child.digest));
            assert_eq!(raw, child.bytes, "{path} {platform}: bytes are sacred");
        }
    }
    let again = airgapped.json(&["plan", "--json"]);
    assert_eq!(num(&again["summary"], "unchanged"), 3);
    assert_eq!(num(&again["summary"], "push_bytes"), 0);
}

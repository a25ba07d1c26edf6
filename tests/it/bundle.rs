//! Across the air gap: upstream registry → bundle (no target registry running) → upstream
//! stopped → bundle → target registry. Digests preserved end to end, bundles byte-identical
//! when made twice, readable by skopeo, damaged bundles rejected before anything is pushed, and
//! a newer bundle pushes only what the target lacks. Also OCI layout directories as targets and
//! as sources.

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::support::context::{describe, stderr, TestContext};
use crate::support::images::{sha256, BuiltImage, ImageSpec};
use crate::support::lab::{index_platforms, num};
use crate::support::registry::Registry;
use crate::support::{http, skopeo};

const ALL3: [&str; 3] = ["linux/amd64", "linux/arm64", "linux/arm/v7"];

fn seed(registry: &Registry, repo_tag: &str, spec: &ImageSpec) -> BuiltImage {
    let image = spec.build();
    image.push(&format!("{}/{repo_tag}", registry.host()));
    image
}

/// The connected side: a Mirrorfile whose target is `[target] <kind> = "<dest>"`, reading
/// `refs` from the upstream registry over HTTP.
fn connected(ctx: &TestContext, upstream: &str, kind: &str, dest: &str, refs: &[&str]) {
    let mut text = format!(
        "[target]\n{kind} = \"{dest}\"\n\n[registry.\"{upstream}\"]\ntls = \"http\"\n\n[cache]\ndir = \"cache\"\n"
    );
    for r in refs {
        text.push_str(&format!("\n[[images]]\nref = \"{upstream}/{r}\"\n"));
    }
    ctx.write_mirrorfile(&text);
}

/// The disconnected side: fill `target` from the bundles (or layouts) at `paths`.
fn disconnected(ctx: &TestContext, target: &str, paths: &[&Path], extra: &str) {
    let mut text = format!(
        "[target]\nregistry = \"{target}\"\n\n[registry.\"{target}\"]\ntls = \"http\"\n\n[cache]\ndir = \"cache\"\n"
    );
    for p in paths {
        text.push_str(&format!(
            "\n[[bundles]]\npath = \"{}\"\n{extra}",
            p.display()
        ));
    }
    ctx.write_mirrorfile(&text);
}

fn file_sha256(path: &Path) -> String {
    sha256(&fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display())))
}

/// Asserts that `HOST/REPO:TAG` holds `image` byte for byte, children and blobs included.
fn assert_copy(host: &str, repo: &str, tag: &str, image: &BuiltImage) {
    let raw = skopeo::inspect_raw(&format!("{host}/{repo}:{tag}"));
    assert_eq!(sha256(&raw), image.digest, "{repo}:{tag}: top-level digest");
    assert_eq!(raw, image.bytes, "{repo}:{tag}: bytes are sacred");
    for m in image.all_manifests() {
        let child = skopeo::inspect_raw(&format!("{host}/{repo}@{}", m.digest));
        assert_eq!(sha256(&child), m.digest, "{repo}: {} manifest", m.platform);
        for blob in m.blobs() {
            assert!(
                http::blob_exists(host, repo, &blob.digest),
                "blob {} missing from {repo}",
                blob.digest
            );
        }
    }
}

#[test]
fn air_gap_round_trip_preserves_every_digest_and_bundles_are_deterministic() {
    let mut upstream = Registry::start();
    let up = upstream.host();
    let tiny = seed(
        &upstream,
        "lab/tiny:1.0",
        &ImageSpec::multi("tiny", &ALL3)
            .layer_bytes(30_000)
            .attestation(true),
    );
    let solo = seed(
        &upstream,
        "lab/solo:2.0",
        &ImageSpec::single("solo", "linux/amd64").layer_bytes(20_000),
    );

    // Connected side, no target registry anywhere: write the bundle.
    let conn = TestContext::new();
    let refs = ["lab/tiny:1.0", "lab/solo:2.0"];
    connected(&conn, &up, "bundle", "release.mirror.tar.zst", &refs);
    let report = conn.json(&["apply", "--json"]);
    let bundle = conn.work().join("release.mirror.tar.zst");
    let first = file_sha256(&bundle);
    assert_eq!(report["bundle"]["sha256"], first.as_str(), "{report:#}");
    assert_eq!(
        num(&report["bundle"], "size"),
        fs::metadata(&bundle).map(|m| m.len()).unwrap_or(0)
    );
    let expected_blobs = tiny.blob_bytes() + solo.blob_bytes();
    assert_eq!(
        num(&report["summary"], "bytes_pushed"),
        expected_blobs,
        "{report:#}"
    );
    assert_eq!(
        num(&report["bundle"], "blob_bytes"),
        expected_blobs + manifest_bytes(&[&tiny, &solo])
    );

    // Made twice (warm cache, then a fresh machine): byte-identical.
    conn.cmd_ok(&["apply"]);
    assert_eq!(
        file_sha256(&bundle),
        first,
        "rerun gives the same bundle bytes"
    );
    let other = TestContext::new();
    connected(&other, &up, "bundle", "release.mirror.tar.zst", &refs);
    other.cmd_ok(&["apply"]);
    assert_eq!(
        file_sha256(&other.work().join("release.mirror.tar.zst")),
        first,
        "another cache, another directory, the same bundle"
    );

    // Other tools read it: skopeo's oci-archive transport finds the images by name.
    let archive = format!("oci-archive:{}:lab/tiny:1.0", bundle.display());
    assert_eq!(skopeo::run_ok(&["inspect", "--raw", &archive]), tiny.bytes);
    let archive = format!("oci-archive:{}:lab/solo:2.0", bundle.display());
    assert_eq!(skopeo::run_ok(&["inspect", "--raw", &archive]), solo.bytes);

    // `bundle inspect` lists it without unpacking.
    let info = conn.json(&["bundle", "inspect", "--json", "release.mirror.tar.zst"]);
    let names: Vec<&str> = info["images"]
        .as_array()
        .map(|a| a.iter().filter_map(|i| i["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["lab/solo:2.0", "lab/tiny:1.0"]);
    assert_eq!(info["images"][1]["digest"], tiny.digest.as_str());
    let platforms: BTreeSet<&str> = info["images"][1]["platforms"]
        .as_array()
        .map(|a| a.iter().filter_map(|p| p["platform"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(platforms, ALL3.into_iter().collect());
    assert_eq!(info["images"][0]["platforms"][0]["platform"], "linux/amd64");
    assert_eq!(
        info["files"],
        serde_json::json!(["mirrorfile.toml", "mirrorfile.lock"])
    );
    assert_eq!(info["damaged"], serde_json::json!([]));
    let text = crate::support::context::stdout(&conn.cmd_ok(&[
        "bundle",
        "inspect",
        "release.mirror.tar.zst",
    ]));
    assert!(
        text.contains(&tiny.manifest("linux/arm/v7").digest),
        "{text}"
    );

    // Across the gap: upstream is gone; the bundle alone fills the target registry.
    upstream.stop();
    let target = Registry::start();
    let tgt = target.host();
    let far = TestContext::new();
    let carried = far.work().join("carried.tar.zst");
    fs::copy(&bundle, &carried).expect("carry the bundle");
    disconnected(&far, &tgt, &[Path::new("carried.tar.zst")], "");
    let plan = far.json(&["plan", "--json"]);
    assert_eq!(num(&plan["summary"], "create"), 2, "{plan:#}");
    assert_eq!(
        num(&plan["summary"], "fetch_bytes"),
        0,
        "everything is local: {plan:#}"
    );
    let report = far.json(&["apply", "--json"]);
    let entry = report["images"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|i| i["target"] == format!("{tgt}/lab/tiny:1.0"))
        })
        .unwrap_or_else(|| panic!("no lab/tiny in {report:#}"));
    assert_eq!(entry["source"], "oci-archive:carried.tar.zst:lab/tiny:1.0");
    assert_eq!(entry["target_digest"], tiny.digest.as_str());
    assert_eq!(
        num(&report["summary"], "bytes_pushed"),
        expected_blobs,
        "{report:#}"
    );
    assert_eq!(
        num(&report["summary"], "bytes_fetched"),
        0,
        "nothing fetched from any network"
    );
    assert_copy(&tgt, "lab/tiny", "1.0", &tiny);
    assert_copy(&tgt, "lab/solo", "2.0", &solo);

    // Again: nothing moves.
    let again = far.json(&["apply", "--json"]);
    assert_eq!(num(&again["summary"], "bytes_pushed"), 0, "{again:#}");
    assert_eq!(num(&again["summary"], "manifests_pushed"), 0, "{again:#}");
}

/// Sum of the sizes of every manifest (index, children, attestation) of `images`.
fn manifest_bytes(images: &[&BuiltImage]) -> u64 {
    images
        .iter()
        .map(|i| {
            let top = if i.is_index() {
                i.bytes.len() as u64
            } else {
                0
            };
            top + i.all_manifests().iter().map(|m| m.size()).sum::<u64>()
        })
        .sum()
}

#[test]
fn layout_target_is_readable_by_skopeo_incremental_and_a_source_with_platform_filters() {
    let upstream = Registry::start();
    let up = upstream.host();
    let tiny = seed(
        &upstream,
        "lab/tiny:1.0",
        &ImageSpec::multi("tiny", &ALL3).attestation(true),
    );
    let ctx = TestContext::new();
    connected(&ctx, &up, "layout", "mirror-out", &["lab/tiny:1.0"]);
    let report = ctx.json(&["apply", "--json"]);
    assert_eq!(num(&report["summary"], "bytes_pushed"), tiny.blob_bytes());
    let layout = ctx.work().join("mirror-out");
    let raw = skopeo::run_ok(&[
        "inspect",
        "--raw",
        &format!("oci:{}:lab/tiny:1.0", layout.display()),
    ]);
    assert_eq!(raw, tiny.bytes, "skopeo reads the layout by its ref.name");
    // The layout holds an OCI layout and nothing else but the lock file that keeps two runs
    // from writing it at once (no leftover temp directory).
    let mut top: Vec<String> = fs::read_dir(&layout)
        .expect("layout dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(top, [".lock", "blobs", "index.json", "oci-layout"]);
    // So does `mirror inspect`, with the same spelling (the name holds a colon itself).
    let ours = ctx.cmd_ok(&[
        "inspect",
        "--raw",
        &format!("oci:{}:lab/tiny:1.0", layout.display()),
    ]);
    assert_eq!(ours.stdout, tiny.bytes);
    // Published files are readable by others (a web server, another user), as skopeo writes them.
    {
        use std::os::unix::fs::PermissionsExt;
        let blob = layout
            .join("blobs/sha256")
            .join(tiny.digest.trim_start_matches("sha256:"));
        for file in [layout.join("index.json"), blob] {
            let mode = std::fs::metadata(&file)
                .expect("layout file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o644, "{}", file.display());
        }
    }

    // A rerun into the layout is incremental: the tag is found, nothing is written.
    let again = ctx.json(&["apply", "--json"]);
    assert_eq!(again["images"][0]["action"], "unchanged", "{again:#}");
    assert_eq!(num(&again["summary"], "bytes_pushed"), 0);

    // The layout directory as a source, with a platform filter: children keep their digests.
    let target = Registry::start();
    let tgt = target.host();
    let far = TestContext::new();
    disconnected(&far, &tgt, &[&layout], "platforms = [\"linux/arm64\"]\n");
    let report = far.json(&["apply", "--json"]);
    let pushed = skopeo::inspect_raw_json(&format!("{tgt}/lab/tiny:1.0"));
    assert_eq!(
        index_platforms(&pushed),
        BTreeSet::from(["linux/arm64".to_string()])
    );
    let arm = tiny.manifest("linux/arm64");
    let child = skopeo::inspect_raw(&format!("{tgt}/lab/tiny@{}", arm.digest));
    assert_eq!(sha256(&child), arm.digest);
    let wanted: u64 = arm.blobs().iter().map(|b| b.size).sum();
    assert_eq!(
        num(&report["summary"], "bytes_pushed"),
        wanted,
        "{report:#}"
    );
}

/// Writes `to`, a copy of the plain-tar bundle `from` without its largest blob entry; returns
/// that blob's digest.
fn copy_without_largest_blob(from: &Path, to: &Path) -> String {
    let sizes: Vec<(String, u64)> = tar::Archive::new(fs::File::open(from).expect("open"))
        .entries()
        .expect("entries")
        .map(|e| {
            let e = e.expect("entry");
            (e.path().expect("path").display().to_string(), e.size())
        })
        .collect();
    let largest = sizes
        .iter()
        .filter(|(name, _)| name.starts_with("blobs/sha256/") && name.len() > 13)
        .max_by_key(|(_, size)| *size)
        .map(|(name, _)| name.clone())
        .expect("a blob");
    let mut out = tar::Builder::new(fs::File::create(to).expect("create"));
    let mut archive = tar::Archive::new(fs::File::open(from).expect("open"));
    for entry in archive.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        if entry.path().expect("path").display().to_string() == largest {
            continue;
        }
        let header = entry.header().clone();
        out.append(&header, &mut entry).expect("append");
    }
    out.finish().expect("finish");
    format!("sha256:{}", largest.trim_start_matches("blobs/sha256/"))
}

/// Flips one byte in the middle of the largest blob of a plain-tar bundle; returns its digest.
fn corrupt_largest_blob(bundle: &Path) -> String {
    let file = fs::File::open(bundle).expect("open bundle");
    let mut archive = tar::Archive::new(file);
    let mut best: Option<(u64, u64, String)> = None;
    for entry in archive.entries().expect("entries") {
        let entry = entry.expect("entry");
        let name = entry.path().expect("path").display().to_string();
        if let Some(hex) = name.strip_prefix("blobs/sha256/") {
            let (size, pos) = (entry.size(), entry.raw_file_position());
            if best.as_ref().is_none_or(|b| size > b.0) && !hex.is_empty() {
                best = Some((size, pos, format!("sha256:{hex}")));
            }
        }
    }
    let (size, pos, digest) = best.expect("a blob");
    let mut file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(bundle)
        .expect("open rw");
    let at = pos + size / 2;
    let mut byte = [0u8];
    file.seek(SeekFrom::Start(at)).expect("seek");
    file.read_exact(&mut byte).expect("read");
    file.seek(SeekFrom::Start(at)).expect("seek");
    file.write_all(&[byte[0] ^ 0xff]).expect("write");
    digest
}

#[test]
fn a_damaged_bundle_is_rejected_before_anything_is_pushed() {
    let upstream = Registry::start();
    let up = upstream.host();
    seed(
        &upstream,
        "lab/tiny:1.0",
        &ImageSpec::multi("tiny", &ALL3).layer_bytes(30_000),
    );
    let conn = TestContext::new();
    connected(&conn, &up, "bundle", "release.tar", &["lab/tiny:1.0"]);
    conn.cmd_ok(&["apply"]);
    let bundle = conn.work().join("release.tar");
    // A copy cut short in the middle of a blob is called truncated, not damaged content, by
    // `inspect oci-archive:` (this cache already holds the blob, so it is only hashed)...
    let bytes = fs::read(&bundle).expect("bundle");
    let cut = conn.work().join("cut.tar");
    fs::write(&cut, &bytes[..bytes.len() * 3 / 4]).expect("write cut copy");
    let out = conn.cmd(&["inspect", "oci-archive:cut.tar:lab/tiny:1.0"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stderr(&out).contains("the bundle is truncated"),
        "{}",
        describe(&out)
    );
    // ...and by a Mirrorfile reading it into an empty cache.
    let fresh = TestContext::new();
    disconnected(&fresh, &up, &[&cut], "");
    let out = fresh.cmd(&["plan"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stderr(&out).contains("the bundle is truncated"),
        "{}",
        describe(&out)
    );
    // A copy without one layer (a file cut exactly at an entry boundary reads like this: a
    // valid, shorter tar) is incomplete: bundle inspect fails and names the image, and
    // `[[bundles]]` refuses it before planning anything.
    let holey = conn.work().join("holey.tar");
    let dropped = copy_without_largest_blob(&bundle, &holey);
    let out = conn.cmd(&["bundle", "inspect", "holey.tar"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let text = crate::support::context::stdout(&out);
    assert!(
        text.contains("INCOMPLETE") && text.contains("lab/tiny:1.0"),
        "{text}"
    );
    assert!(text.contains(&dropped), "{text}");
    let holey_target = TestContext::new();
    disconnected(&holey_target, &up, &[&holey], "");
    let out = holey_target.cmd(&["plan"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err: String = stderr(&out)
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '|')
        .collect();
    assert!(
        err.contains("isincomplete:itlacks") && err.contains(&dropped),
        "{}",
        describe(&out)
    );
    let damaged = corrupt_largest_blob(&bundle);

    // inspect notices it.
    let out = conn.cmd(&["bundle", "inspect", "release.tar"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(crate::support::context::stdout(&out).contains(damaged.trim_start_matches("sha256:")));

    let target = Registry::start();
    let tgt = target.host();
    let far = TestContext::new();
    disconnected(&far, &tgt, &[&bundle], "");
    let out = far.cmd(&["apply"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = stderr(&out);
    assert!(err.contains("damaged"), "{err}");
    assert!(
        err.contains(damaged.trim_start_matches("sha256:")),
        "names the blob: {err}"
    );
    assert!(http::catalog(&tgt).is_empty(), "nothing was pushed");
    assert!(!http::manifest_exists(&tgt, "lab/tiny", "1.0"));
}

#[test]
fn a_newer_bundle_pushes_only_the_new_blobs() {
    let upstream = Registry::start();
    let up = upstream.host();
    let spec = |seed: &str| {
        ImageSpec::multi(seed, &ALL3)
            .layers(3)
            .layer_bytes(25_000)
            .shared_base("base")
    };
    let v1 = seed(&upstream, "lab/app:1.0", &spec("app-1"));
    let v2 = seed(&upstream, "lab/app:2.0", &spec("app-2"));
    let conn = TestContext::new();
    connected(&conn, &up, "bundle", "v1.tar.zst", &["lab/app:1.0"]);
    conn.cmd_ok(&["apply"]);
    connected(&conn, &up, "bundle", "v2.tar.zst", &["lab/app:2.0"]);
    conn.cmd_ok(&["apply"]);

    let target = Registry::start();
    let tgt = target.host();
    let far = TestContext::new();
    disconnected(&far, &tgt, &[&conn.work().join("v1.tar.zst")], "");
    let first = far.json(&["apply", "--json"]);
    assert_eq!(num(&first["summary"], "bytes_pushed"), v1.blob_bytes());

    disconnected(&far, &tgt, &[&conn.work().join("v2.tar.zst")], "");
    let second = far.json(&["apply", "--json"]);
    let old: BTreeSet<String> = v1.all_blobs().into_iter().map(|b| b.digest).collect();
    let new: Vec<_> = v2
        .all_blobs()
        .into_iter()
        .filter(|b| !old.contains(&b.digest))
        .collect();
    assert!(
        new.len() < v2.all_blobs().len(),
        "the releases share base layers"
    );
    assert_eq!(
        num(&second["summary"], "bytes_pushed"),
        new.iter().map(|b| b.size).sum::<u64>(),
        "{second:#}"
    );
    assert_eq!(num(&second["summary"], "blobs_pushed"), new.len() as u64);
    assert_copy(&tgt, "lab/app", "1.0", &v1);
    assert_copy(&tgt, "lab/app", "2.0", &v2);
}

/// `skopeo copy … oci:DIR:TAG` names images by bare tag; `repository = …` on the `[[bundles]]`
/// entry places them, and without it the error says so.
#[test]
fn a_skopeo_made_layout_with_bare_tags_is_placed_by_repository() {
    let upstream = Registry::start();
    let target = Registry::start();
    let tiny = seed(
        &upstream,
        "lab/tiny:1.0",
        &ImageSpec::multi("bare", &["linux/amd64", "linux/arm64"]),
    );
    let ctx = TestContext::new();
    let layout = ctx.work().join("from-skopeo");
    skopeo::copy_to_oci_dir(&format!("{}/lab/tiny:1.0", upstream.host()), &layout, "1.0");

    disconnected(&ctx, &target.host(), &[&layout], "");
    let out = ctx.cmd(&["plan"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = stderr(&out);
    assert!(
        err.contains("bare tag") && err.contains("repository ="),
        "{err}"
    );

    disconnected(
        &ctx,
        &target.host(),
        &[&layout],
        "repository = \"mirror/tiny\"\n",
    );
    let report = ctx.json(&["apply", "--json"]);
    assert_eq!(num(&report["summary"], "failed"), 0, "{report:#}");
    assert_copy(&target.host(), "mirror/tiny", "1.0", &tiny);
}

//! `mirror apply` against real registries: digests preserved, exactly the right bytes moved.

use std::collections::BTreeSet;

use crate::support::context::describe;
use crate::support::images::{
    sha256, total_size, ImageSpec, ATTESTATION_DIGEST_KEY, ATTESTATION_TYPE_KEY,
};
use crate::support::lab::{entry_platform, image_entry, index_entries, index_platforms, num, Lab};
use crate::support::{http, skopeo};

const ALL3: [&str; 3] = ["linux/amd64", "linux/arm64", "linux/arm/v7"];

/// A 3-platform image with an attestation and layers big enough to make byte counts meaningful.
fn tiny() -> ImageSpec {
    ImageSpec::multi("tiny", &ALL3)
        .layer_bytes(40_000)
        .attestation(true)
}

#[test]
fn full_copy_preserves_every_digest_and_pushes_every_byte_once() {
    let lab = Lab::new();
    let (up, tgt) = (lab.up(), lab.tgt());
    let multi = lab.seed("lab/tiny:1.0", &tiny());
    let single = lab.seed(
        "lab/solo:2.0",
        &ImageSpec::single("solo", "linux/amd64").layer_bytes(30_000),
    );
    lab.write_mirrorfile(
        Some("mirror"),
        &format!(
            "[[images]]\nref = \"{up}/lab/tiny:1.0\"\n\n[[images]]\nref = \"{up}/lab/solo:2.0\"\n"
        ),
    );
    let expected_bytes = multi.blob_bytes() + single.blob_bytes();
    let expected_blobs = (multi.all_blobs().len() + single.all_blobs().len()) as u64;

    // The plan predicts the bytes that apply then moves.
    let plan = lab.ctx.json(&["plan", "--json"]);
    assert_eq!(plan["version"], 1);
    let entry = image_entry(&plan, &format!("{up}/lab/tiny:1.0"));
    assert_eq!(entry["target"], format!("{tgt}/mirror/lab/tiny:1.0"));
    assert_eq!(entry["action"], "create");
    assert_eq!(entry["source_digest"], multi.digest.as_str());
    assert_eq!(
        entry["target_digest"],
        multi.digest.as_str(),
        "full copy keeps the index digest"
    );
    assert!(entry["current_digest"].is_null());
    assert_eq!(num(&entry["push"], "bytes"), multi.blob_bytes());
    assert_eq!(num(&entry["push"], "blobs"), multi.all_blobs().len() as u64);
    let summary = &plan["summary"];
    assert_eq!(num(summary, "images"), 2);
    assert_eq!(num(summary, "create"), 2);
    assert_eq!(num(summary, "push_bytes"), expected_bytes);
    assert_eq!(num(summary, "push_blobs"), expected_blobs);
    assert_eq!(num(summary, "fetch_bytes"), expected_bytes);
    assert!(lab.target_catalog().is_empty(), "plan pushed something");

    let report = lab.ctx.json(&["apply", "--json"]);
    assert_eq!(report["version"], 1);
    let entry = image_entry(&report, &format!("{up}/lab/tiny:1.0"));
    assert_eq!(entry["target"], format!("{tgt}/mirror/lab/tiny:1.0"));
    assert_eq!(entry["action"], "create");
    assert_eq!(entry["target_digest"], multi.digest.as_str());
    let entry = image_entry(&report, &format!("{up}/lab/solo:2.0"));
    assert_eq!(entry["target_digest"], single.digest.as_str());
    let summary = &report["summary"];
    assert_eq!(num(summary, "images"), 2);
    assert_eq!(num(summary, "bytes_pushed"), expected_bytes, "{report:#}");
    assert_eq!(num(summary, "blobs_pushed"), expected_blobs, "{report:#}");
    // The plan above already read the platform configs into the cache (to check each entry's
    // platform against its config), so apply fetches everything but those.
    let configs: Vec<_> = multi
        .manifests
        .iter()
        .chain(&single.manifests)
        .map(|m| m.config.clone())
        .collect();
    assert_eq!(
        num(summary, "bytes_fetched"),
        expected_bytes - total_size(&configs),
        "{report:#}"
    );
    assert_eq!(
        num(summary, "blobs_fetched"),
        expected_blobs - configs.len() as u64,
        "{report:#}"
    );
    assert_eq!(num(summary, "blobs_mounted"), 0);
    // index + 3 platform manifests + attestation manifest + the single-arch manifest
    assert_eq!(num(summary, "manifests_pushed"), 6, "{report:#}");

    // Checked by independent clients: bytes, children, blobs.
    lab.assert_full_copy("mirror/lab/tiny:1.0", &multi);
    lab.assert_full_copy("mirror/lab/solo:2.0", &single);
    assert_eq!(
        lab.target_catalog(),
        vec!["mirror/lab/solo", "mirror/lab/tiny"]
    );
    let config = skopeo::inspect_config(&format!(
        "{tgt}/mirror/lab/tiny@{}",
        multi.manifest("linux/arm/v7").digest
    ));
    assert_eq!(config["variant"], "v7");
}

#[test]
fn subset_copy_rewrites_the_index_and_keeps_child_digests() {
    let lab = Lab::new();
    let (up, tgt) = (lab.up(), lab.tgt());
    let image = lab.seed("lab/tiny:1.0", &tiny());
    lab.write_mirrorfile(
        None,
        &format!(
            "[[images]]\nref = \"{up}/lab/tiny:1.0\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n"
        ),
    );
    let kept = image.blobs_for(&["linux/amd64", "linux/arm64"], true);

    let plan = lab.ctx.json(&["plan", "--json"]);
    let entry = image_entry(&plan, &format!("{up}/lab/tiny:1.0"));
    assert_eq!(entry["action"], "create");
    assert_eq!(entry["source_digest"], image.digest.as_str());
    let planned = entry["target_digest"]
        .as_str()
        .expect("target_digest")
        .to_string();
    assert_ne!(planned, image.digest, "a subset is a new index");
    assert_eq!(
        entry["platforms"],
        serde_json::json!(["linux/amd64", "linux/arm64"])
    );
    assert_eq!(entry["missing_platforms"], serde_json::json!([]));
    assert_eq!(num(&entry["push"], "bytes"), total_size(&kept));

    let report = lab.ctx.json(&["apply", "--json"]);
    let entry = image_entry(&report, &format!("{up}/lab/tiny:1.0"));
    assert_eq!(entry["target_digest"], planned.as_str());
    assert_eq!(
        num(&report["summary"], "bytes_pushed"),
        total_size(&kept),
        "{report:#}"
    );
    assert_eq!(
        num(&report["summary"], "blobs_pushed"),
        kept.len() as u64,
        "{report:#}"
    );

    // The tag resolves to an index with exactly the selected platforms + amd64's attestation.
    let raw = skopeo::inspect_raw(&format!("{tgt}/lab/tiny:1.0"));
    assert_eq!(sha256(&raw), planned, "plan's target_digest is what lands");
    let index: serde_json::Value = serde_json::from_slice(&raw).expect("target index is JSON");
    assert_eq!(
        index_platforms(&index),
        BTreeSet::from(["linux/amd64".to_string(), "linux/arm64".to_string()])
    );
    let entries = index_entries(&index);
    assert_eq!(
        entries.len(),
        3,
        "two platforms and one attestation: {index:#}"
    );
    for platform in ["linux/amd64", "linux/arm64"] {
        let e = entries
            .iter()
            .find(|e| entry_platform(e) == platform)
            .expect("platform entry");
        assert_eq!(
            e["digest"],
            image.manifest(platform).digest.as_str(),
            "{platform} child"
        );
    }
    let att = entries
        .iter()
        .find(|e| entry_platform(e) == "unknown/unknown")
        .expect("attestation entry kept");
    let upstream_att = image.attestation.as_ref().expect("built with attestation");
    assert_eq!(att["digest"], upstream_att.digest.as_str());
    assert_eq!(
        att["annotations"][ATTESTATION_TYPE_KEY],
        "attestation-manifest"
    );
    assert_eq!(
        att["annotations"][ATTESTATION_DIGEST_KEY],
        image.manifest("linux/amd64").digest.as_str()
    );

    // Kept children and their blobs are present, with their upstream bytes.
    for m in [
        image.manifest("linux/amd64"),
        image.manifest("linux/arm64"),
        upstream_att,
    ] {
        let raw = skopeo::inspect_raw(&format!("{tgt}/lab/tiny@{}", m.digest));
        assert_eq!(raw, m.bytes, "{} manifest bytes", m.platform);
    }
    lab.assert_blobs_present("lab/tiny", &kept);

    // The dropped platform is not there, nor are its own blobs.
    let v7 = image.manifest("linux/arm/v7");
    assert!(skopeo::try_inspect_raw(&format!("{tgt}/lab/tiny@{}", v7.digest)).is_none());
    assert!(!http::manifest_exists(&tgt, "lab/tiny", &v7.digest));
    for blob in v7.blobs() {
        assert!(
            !http::blob_exists(&tgt, "lab/tiny", &blob.digest),
            "arm/v7 blob pushed"
        );
    }
}

#[test]
fn defaults_platforms_apply_to_every_image() {
    let lab = Lab::new();
    let (up, tgt) = (lab.up(), lab.tgt());
    let image = lab.seed("lab/tiny:1.0", &tiny().attestation(false));
    lab.write_mirrorfile(
        None,
        &format!(
            "[defaults]\nplatforms = [\"linux/arm64\"]\n\n[[images]]\nref = \"{up}/lab/tiny:1.0\"\n"
        ),
    );
    lab.ctx.json(&["apply", "--json"]);
    let index = skopeo::inspect_raw_json(&format!("{tgt}/lab/tiny:1.0"));
    assert_eq!(
        index_platforms(&index),
        BTreeSet::from(["linux/arm64".to_string()])
    );
    assert_eq!(
        index_entries(&index)[0]["digest"],
        image.manifest("linux/arm64").digest.as_str()
    );
}

#[test]
fn rerun_moves_nothing_and_plan_reports_no_changes() {
    let lab = Lab::new();
    let up = lab.up();
    lab.seed("lab/tiny:1.0", &tiny());
    lab.seed("lab/solo:2.0", &ImageSpec::single("solo", "linux/arm64"));
    lab.write_mirrorfile(
        Some("mirror"),
        &format!(
            "[[images]]\nref = \"{up}/lab/tiny:1.0\"\nplatforms = [\"linux/amd64\", \"linux/arm/v7\"]\n\n[[images]]\nref = \"{up}/lab/solo:2.0\"\n"
        ),
    );
    let pending = lab.ctx.cmd(&["plan", "--detailed-exitcode"]);
    assert_eq!(
        pending.status.code(),
        Some(2),
        "changes pending\n{}",
        describe(&pending)
    );

    let first = lab.ctx.json(&["apply", "--json"]);
    assert!(num(&first["summary"], "bytes_pushed") > 0);

    let second = lab.ctx.json(&["apply", "--json"]);
    let s = &second["summary"];
    assert_eq!(num(s, "bytes_fetched"), 0, "{second:#}");
    assert_eq!(num(s, "bytes_pushed"), 0, "{second:#}");
    assert_eq!(num(s, "blobs_pushed"), 0, "{second:#}");
    assert_eq!(num(s, "manifests_pushed"), 0, "{second:#}");
    for image in second["images"].as_array().expect("images") {
        assert_eq!(image["action"], "unchanged", "{image:#}");
    }

    let out = lab.ctx.cmd(&["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "no changes\n{}", describe(&out));
    let plan = lab.ctx.json(&["plan", "--json"]);
    for image in plan["images"].as_array().expect("images") {
        assert_eq!(image["action"], "unchanged", "{image:#}");
        assert_eq!(image["current_digest"], image["target_digest"]);
        assert_eq!(num(&image["push"], "bytes"), 0);
    }
    assert_eq!(num(&plan["summary"], "unchanged"), 2);
    assert_eq!(num(&plan["summary"], "push_bytes"), 0);
    assert_eq!(num(&plan["summary"], "fetch_bytes"), 0);
}

#[test]
fn adding_an_image_moves_only_its_bytes_and_mounts_the_shared_base() {
    let lab = Lab::new();
    let up = lab.up();
    let platforms = ["linux/amd64", "linux/arm64"];
    let spec = |seed: &str| {
        ImageSpec::multi(seed, &platforms)
            .layers(3)
            .layer_bytes(50_000)
            .shared_base("debian")
    };
    let app = lab.seed("lab/app:1.0", &spec("app"));
    let worker = lab.seed("lab/worker:1.0", &spec("worker"));
    let first_body = format!("[[images]]\nref = \"{up}/lab/app:1.0\"\n");
    lab.write_mirrorfile(Some("mirror"), &first_body);
    let first = lab.ctx.json(&["apply", "--json"]);
    assert_eq!(num(&first["summary"], "bytes_pushed"), app.blob_bytes());

    lab.write_mirrorfile(
        Some("mirror"),
        &format!("{first_body}\n[[images]]\nref = \"{up}/lab/worker:1.0\"\n"),
    );
    let base: Vec<_> = platforms
        .iter()
        .map(|p| worker.manifest(p).layers[0].clone())
        .collect();
    for (p, b) in platforms.iter().zip(&base) {
        assert_eq!(
            &app.manifest(p).layers[0],
            b,
            "the builder shares the {p} base"
        );
    }
    let base_digests: BTreeSet<&str> = base.iter().map(|b| b.digest.as_str()).collect();
    let new_blobs: Vec<_> = worker
        .all_blobs()
        .into_iter()
        .filter(|b| !base_digests.contains(b.digest.as_str()))
        .collect();

    let plan = lab.ctx.json(&["plan", "--json"]);
    let app_entry = image_entry(&plan, &format!("{up}/lab/app:1.0"));
    assert_eq!(app_entry["action"], "unchanged");
    let worker_entry = image_entry(&plan, &format!("{up}/lab/worker:1.0"));
    assert_eq!(worker_entry["action"], "create");
    assert_eq!(num(&worker_entry["push"], "bytes"), total_size(&new_blobs));
    assert_eq!(num(&worker_entry["fetch"], "bytes"), total_size(&new_blobs));

    let second = lab.ctx.json(&["apply", "--json"]);
    let s = &second["summary"];
    assert_eq!(num(s, "bytes_pushed"), total_size(&new_blobs), "{second:#}");
    assert_eq!(num(s, "blobs_pushed"), new_blobs.len() as u64, "{second:#}");
    // The cache serves the base; the plan above already read the new configs.
    let new_configs: Vec<_> = worker.manifests.iter().map(|m| m.config.clone()).collect();
    assert_eq!(
        num(s, "bytes_fetched"),
        total_size(&new_blobs) - total_size(&new_configs),
        "cache serves the base\n{second:#}"
    );
    assert_eq!(
        num(s, "blobs_mounted") + num(s, "blobs_skipped"),
        base.len() as u64,
        "the shared base layers are mounted or skipped, not pushed\n{second:#}"
    );
    lab.assert_full_copy("mirror/lab/worker:1.0", &worker);
    lab.assert_full_copy("mirror/lab/app:1.0", &app);
}

#[test]
fn list_file_images_are_all_mirrored() {
    let lab = Lab::new();
    let (up, tgt) = (lab.up(), lab.tgt());
    let a = lab.seed(
        "lab/a:1",
        &ImageSpec::multi("a", &["linux/amd64", "linux/arm64"]),
    );
    let b = lab.seed("tools/b:2.5", &ImageSpec::single("b", "linux/amd64"));
    lab.ctx.write_file(
        "images.txt",
        &format!("# images for the release\n\n{up}/lab/a:1\n   \n# the tool\n{up}/tools/b:2.5\n"),
    );
    lab.write_mirrorfile(None, "[[images]]\nlist = \"images.txt\"\n");
    let report = lab.ctx.json(&["apply", "--json"]);
    assert_eq!(num(&report["summary"], "images"), 2, "{report:#}");
    assert_eq!(
        image_entry(&report, &format!("{up}/lab/a:1"))["target"],
        format!("{tgt}/lab/a:1")
    );
    assert_eq!(
        num(&report["summary"], "bytes_pushed"),
        a.blob_bytes() + b.blob_bytes()
    );
    lab.assert_full_copy("lab/a:1", &a);
    lab.assert_full_copy("tools/b:2.5", &b);
    assert_eq!(lab.target_catalog(), vec!["lab/a", "tools/b"]);
}

#[test]
fn rename_with_to_goes_under_the_prefix() {
    let lab = Lab::new();
    let (up, tgt) = (lab.up(), lab.tgt());
    let image = lab.seed("lab/tiny:1.0", &tiny());
    let plain = lab.seed("lab/plain:3", &ImageSpec::single("plain", "linux/arm64"));
    lab.write_mirrorfile(
        Some("edge"),
        &format!(
            "[[images]]\nref = \"{up}/lab/tiny:1.0\"\nto = \"other/name:tag\"\n\n[[images]]\nref = \"{up}/lab/plain:3\"\n"
        ),
    );
    let plan = lab.ctx.json(&["plan", "--json"]);
    assert_eq!(
        image_entry(&plan, &format!("{up}/lab/tiny:1.0"))["target"],
        format!("{tgt}/edge/other/name:tag")
    );
    assert_eq!(
        image_entry(&plan, &format!("{up}/lab/plain:3"))["target"],
        format!("{tgt}/edge/lab/plain:3")
    );
    let report = lab.ctx.json(&["apply", "--json"]);
    assert_eq!(
        image_entry(&report, &format!("{up}/lab/tiny:1.0"))["target"],
        format!("{tgt}/edge/other/name:tag")
    );
    lab.assert_full_copy("edge/other/name:tag", &image);
    lab.assert_full_copy("edge/lab/plain:3", &plain);
    assert_eq!(
        lab.target_catalog(),
        vec!["edge/lab/plain", "edge/other/name"]
    );
    assert_eq!(http::tags(&tgt, "edge/other/name"), vec!["tag"]);
}

#[test]
fn jobs_flag_gives_the_same_result() {
    let lab = Lab::new();
    let up = lab.up();
    let image = lab.seed("lab/tiny:1.0", &tiny());
    lab.write_mirrorfile(None, &format!("[[images]]\nref = \"{up}/lab/tiny:1.0\"\n"));
    let report = lab.ctx.json(&["apply", "--json", "--jobs", "1"]);
    assert_eq!(num(&report["summary"], "bytes_pushed"), image.blob_bytes());
    lab.assert_full_copy("lab/tiny:1.0", &image);
}

#[test]
fn progress_bars_into_a_pipe_fall_back_to_lines_with_fetched_and_pushed_bytes() {
    let lab = Lab::new();
    let up = lab.up();
    let image = lab.seed(
        "lab/lines:1",
        &ImageSpec::single("lines", "linux/amd64").layer_bytes(300_000),
    );
    lab.write_mirrorfile(None, &format!("[[images]]\nref = \"{up}/lab/lines:1\"\n"));
    // stderr is a pipe here: bars cannot be drawn, so `bars` must not mean silence.
    let out = lab.ctx.cmd_ok(&["apply", "--progress", "bars"]);
    let err = crate::support::context::stderr(&out);
    let text = crate::support::context::stdout(&out);
    // Every blob is pushed once; only the layers are fetched by the transfers (the config was
    // read while resolving), so "pushed" must not be fetch plus push.
    let pushed = mirror::report::human_bytes(image.blob_bytes());
    let blobs = image.all_blobs().len();
    assert!(
        text.contains(&format!("pushed {blobs} blobs ({pushed})")),
        "{}",
        describe(&out)
    );
    let layers: u64 = image.manifests[0].layers.iter().map(|l| l.size).sum();
    let line = format!(
        "tagged {}/lab/lines:1 (1/1 images; fetched {}, pushed {pushed} so far)",
        lab.tgt(),
        mirror::report::human_bytes(layers)
    );
    assert!(err.contains(&line), "{line}\n{}", describe(&out));
}

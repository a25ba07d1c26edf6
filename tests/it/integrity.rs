//! Never push unverified bytes, never lose work: corrupted sources, Ctrl-C, two runs on one
//! cache, and `mirror cache verify` / `gc`.

use std::collections::BTreeSet;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::support::context::{describe, mirrorfile_header, stderr, stdout, TestContext};
use crate::support::flip_proxy::{Fault, FlipProxy};
use crate::support::images::{sha256, BuiltImage, ImageSpec};
use crate::support::lab::Lab;
use crate::support::{http, skopeo};

const TWO: [&str; 2] = ["linux/amd64", "linux/arm64"];

/// A Mirrorfile copying `repos` (`lab/a:1`, …) from `source` to the lab's target.
fn mirrorfile(lab: &Lab, source: &str, repos: &[&str]) -> String {
    let mut text = mirrorfile_header(source, &lab.tgt(), None);
    for repo in repos {
        text.push_str(&format!("\n[[images]]\nref = \"{source}/{repo}\"\n"));
    }
    text
}

/// `text` without whitespace and miette's `|` gutters, so wrapped messages compare whole.
fn squash(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_whitespace() && *c != '|')
        .collect()
}

fn has(haystack: &str, needle: &str) -> bool {
    squash(haystack).contains(&squash(needle))
}

fn cache_files(ctx: &TestContext, dir: &str) -> Vec<String> {
    ctx.files_in(dir)
}

/// No blob of `image` is in target repository `repo`.
fn assert_no_blobs(lab: &Lab, repo: &str, image: &BuiltImage) {
    for blob in image.all_blobs() {
        assert!(
            !http::blob_exists(&lab.tgt(), repo, &blob.digest),
            "blob {} of a corrupted image reached the target",
            blob.digest
        );
    }
}

#[test]
fn a_flipped_blob_stops_its_image_and_nothing_of_it_is_pushed() {
    let lab = Lab::new();
    let bad = lab.seed(
        "lab/bad:1",
        &ImageSpec::multi("flip-bad", &TWO)
            .layers(3)
            .layer_bytes(50_000),
    );
    let good = lab.seed(
        "lab/good:1",
        &ImageSpec::multi("flip-good", &TWO).layer_bytes(20_000),
    );
    let proxy = FlipProxy::start(&lab.up());
    let src = proxy.host();
    lab.ctx
        .write_mirrorfile(&mirrorfile(&lab, &src, &["lab/bad:1", "lab/good:1"]));
    // The last layer of the arm64 image, flipped at byte 1000.
    let layer = bad.manifest("linux/arm64").layers[2].clone();
    proxy.add(Fault::FlipBlob {
        digest: layer.digest.clone(),
        offset: 1000,
    });
    let mut flipped = bad.blobs[&layer.digest].clone();
    flipped[1000] ^= 0x01;
    let actual = sha256(&flipped);

    let out = lab.ctx.cmd(&["apply", "--progress", "none"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = stderr(&out);
    assert!(
        has(&err, &format!("{src}/lab/bad:1")),
        "names the image: {err}"
    );
    assert!(
        has(&err, &format!("expected digest {}", layer.digest)),
        "names the expected digest: {err}"
    );
    assert!(has(&err, &actual), "names the actual digest: {err}");
    assert!(proxy.faults_applied() >= 1);

    // Nothing of the corrupted image: no tag, no manifest, no blob; the cache holds no bad bytes.
    assert!(http::tags(&lab.tgt(), "lab/bad").is_empty());
    assert!(!http::manifest_exists(
        &lab.tgt(),
        "lab/bad",
        &bad.manifest("linux/amd64").digest
    ));
    assert_no_blobs(&lab, "lab/bad", &bad);
    let cached = cache_files(&lab.ctx, "cache/blobs/sha256");
    assert!(!cached.contains(&layer.digest["sha256:".len()..].to_string()));
    assert!(cache_files(&lab.ctx, "cache/tmp").is_empty());
    // The other image is complete.
    lab.assert_full_copy("lab/good:1", &good);

    // Once the source serves the right bytes, a rerun finishes the job.
    proxy.clear_faults();
    lab.ctx.cmd_ok(&["apply", "--progress", "none"]);
    lab.assert_full_copy("lab/bad:1", &bad);
}

#[test]
fn a_manifest_that_does_not_match_its_digest_is_refused_before_anything_moves() {
    let lab = Lab::new();
    let image = lab.seed("lab/m:1", &ImageSpec::multi("flip-manifest", &TWO));
    let proxy = FlipProxy::start(&lab.up());
    let src = proxy.host();
    lab.ctx
        .write_mirrorfile(&mirrorfile(&lab, &src, &["lab/m:1"]));
    let child = image.manifest("linux/arm64").digest.clone();
    proxy.add(Fault::CorruptManifest {
        reference: child.clone(),
    });
    let out = lab.ctx.cmd(&["apply", "--progress", "none"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = stderr(&out);
    assert!(has(&err, &format!("{src}/lab/m:1")), "{err}");
    assert!(has(&err, &format!("not the expected {child}")), "{err}");
    assert!(has(&err, "content hashes to sha256:"), "{err}");
    assert!(lab.target_catalog().is_empty(), "nothing was pushed");
    let cached = cache_files(&lab.ctx, "cache/blobs/sha256");
    assert!(!cached.contains(&child["sha256:".len()..].to_string()));
}

/// A cached manifest damaged on disk (a bad disk, an edit by hand) is removed and fetched again
/// in the same run, as a damaged cached blob is, and the copy is byte-exact.
#[test]
fn a_damaged_cached_manifest_is_fetched_again() {
    let lab = Lab::new();
    let image = lab.seed("lab/h:1", &ImageSpec::multi("heal-manifest", &TWO));
    let up = lab.up();
    lab.ctx
        .write_mirrorfile(&mirrorfile(&lab, &up, &["lab/h:1"]));
    lab.ctx.cmd_ok(&["plan"]);
    let child = image.manifest("linux/arm64");
    let path = lab
        .ctx
        .work()
        .join("cache/blobs/sha256")
        .join(&child.digest["sha256:".len()..]);
    let mut bytes = std::fs::read(&path).expect("plan cached the manifest");
    assert_eq!(bytes, child.bytes);
    bytes[20] ^= 0x01;
    std::fs::write(&path, &bytes).expect("damage it");

    let out = lab.ctx.cmd(&["apply", "--progress", "none"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let err = stderr(&out);
    assert!(
        has(
            &err,
            &format!("cached manifest {} was damaged", child.digest)
        ),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&path).ok(),
        Some(child.bytes.clone()),
        "cached anew"
    );
    lab.assert_full_copy("lab/h:1", &image);
}

/// Sends SIGINT to a child process.
fn interrupt(child: &Child) {
    send_signal(child, "-INT");
}

/// Sends `signal` (`-INT`, `-TERM`) to a child process.
fn send_signal(child: &Child, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

#[test]
fn ctrl_c_cancels_uploads_removes_temp_files_and_exits_130() {
    stop_cancels_uploads_and_keeps_what_was_verified("-INT", 130, "interrupted");
}

/// SIGTERM (what `timeout`, systemd, Kubernetes and CI cancellations send) stops as Ctrl-C does.
#[test]
fn sigterm_stops_as_cleanly_as_ctrl_c_and_exits_143() {
    stop_cancels_uploads_and_keeps_what_was_verified("-TERM", 143, "terminated");
}

/// A stop request while apply still resolves (a slow source) ends the run at once: the signal
/// is not lost between the session being opened and the transfers starting.
#[test]
fn a_stop_during_resolution_is_not_lost() {
    use crate::support::fault_proxy::{self, FaultProxy, Rule};
    let lab = Lab::new();
    lab.seed("lab/slow:1", &ImageSpec::single("slowres", "linux/amd64"));
    let up = FaultProxy::start(&lab.up());
    up.add(Rule::new(
        "",
        "/manifests/",
        fault_proxy::Fault::Delay(Duration::from_secs(8)),
    ));
    let mut text = mirrorfile_header(&up.host(), &lab.tgt(), None);
    text.push_str(&format!(
        "\n[[images]]\nref = \"{}/lab/slow:1\"\n",
        up.host()
    ));
    lab.ctx.write_mirrorfile(&text);
    for (signal, code) in [("-TERM", 143), ("-INT", 130)] {
        let child = lab
            .ctx
            .command()
            .args(["apply", "--json", "--progress", "none"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start mirror");
        assert!(
            wait_until(Duration::from_secs(10), || !up.log().is_empty()
                || up.max_in_flight() > 0),
            "no manifest request reached the proxy"
        );
        std::thread::sleep(Duration::from_millis(300));
        let started = Instant::now();
        send_signal(&child, signal);
        let out = child.wait_with_output().expect("wait for mirror");
        assert_eq!(out.status.code(), Some(code), "{}", describe(&out));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "stopped during resolution, not after it: {:?}",
            started.elapsed()
        );
        // `--json` still gets one document saying so.
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("not one JSON document ({e}): {}", describe(&out)));
        let word = if code == 143 {
            "terminated"
        } else {
            "interrupted"
        };
        assert!(
            doc["error"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(word)),
            "{doc:#}"
        );
    }
    assert!(lab.target_catalog().is_empty());
}

fn stop_cancels_uploads_and_keeps_what_was_verified(signal: &str, code: i32, word: &str) {
    let lab = Lab::new();
    let image = lab.seed(
        "lab/big:1",
        &ImageSpec::single("sigint", "linux/amd64")
            .layers(2)
            .layer_bytes(3_000_000),
    );
    // Slow links on both sides, so transfers are in flight when Ctrl-C comes.
    let up = FlipProxy::start(&lab.up());
    up.set_delay(Duration::from_millis(5));
    let down = FlipProxy::start(&lab.tgt());
    down.set_delay(Duration::from_millis(20));
    let mut text = mirrorfile_header(&up.host(), &down.host(), None);
    text.push_str(&format!(
        "\n[[images]]\nref = \"{}/lab/big:1\"\n",
        up.host()
    ));
    lab.ctx.write_mirrorfile(&text);

    let child = lab
        .ctx
        .command()
        .args(["apply", "--progress", "plain"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mirror");
    let mut child = child;
    if !wait_until(Duration::from_secs(60), || down.bytes_up() > 500_000) {
        let _ = child.kill();
        let out = child.wait_with_output().expect("wait");
        panic!(
            "no upload started: {}\n{:?}",
            describe(&out),
            down.take_log()
        );
    }
    let child = child;
    send_signal(&child, signal);
    let started = Instant::now();
    let out = child.wait_with_output().expect("wait for mirror");
    assert_eq!(out.status.code(), Some(code), "{}", describe(&out));
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "stopped promptly"
    );
    assert!(
        stderr(&out).contains(&format!("{word}: transfers in flight were cancelled")),
        "{}",
        describe(&out)
    );
    // The summary does not call the untagged image created.
    let text = stdout(&out);
    assert!(
        text.contains("Apply INTERRUPTED: 0 created, 0 updated, 0 unchanged, 1 not done."),
        "{}",
        describe(&out)
    );
    assert!(
        text.contains(&format!(
            "- {}/lab/big:1  (interrupted before its tag was pushed)",
            down.host()
        )),
        "{}",
        describe(&out)
    );
    assert!(!text.contains("Apply complete"), "{}", describe(&out));
    // No temp file in the cache, no tag, and the open upload session was deleted.
    assert!(cache_files(&lab.ctx, "cache/tmp").is_empty());
    assert!(http::tags(&lab.tgt(), "lab/big").is_empty());
    let log = down.take_log();
    let deletes = log
        .iter()
        .filter(|l| l.method == "DELETE" && l.path.contains("/blobs/uploads/"))
        .filter(|l| l.status == 204)
        .count();
    assert!(deletes >= 1, "the open upload session was cancelled");
    let uploads = lab
        .target
        .storage()
        .join("docker/registry/v2/repositories/lab/big/_uploads");
    // A cancelled session loses its data and start time (distribution 2.8.2 leaves an empty
    // `hashstates` folder behind, which no request can reach).
    let open: Vec<_> = std::fs::read_dir(&uploads)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().join("data").exists() || e.path().join("startedat").exists())
                .map(|e| e.file_name())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        open.is_empty(),
        "upload sessions left open: {open:?}\n{log:#?}"
    );

    // Everything verified before the interrupt stays in the cache; a rerun completes.
    up.set_delay(Duration::ZERO);
    down.set_delay(Duration::ZERO);
    lab.ctx.cmd_ok(&["apply", "--progress", "none"]);
    assert_eq!(
        skopeo::inspect_raw(&format!("{}/lab/big:1", lab.tgt())),
        image.bytes
    );
}

#[test]
fn an_interrupted_apply_reports_finished_images_ok_and_the_rest_not_done_in_json() {
    let lab = Lab::new();
    let small: Vec<String> = (0..3).map(|i| format!("lab/small{i}:1")).collect();
    for (i, name) in small.iter().enumerate() {
        lab.seed(
            name,
            &ImageSpec::single(&format!("int-small{i}"), "linux/amd64").layer_bytes(2_000),
        );
    }
    lab.seed(
        "lab/big:1",
        &ImageSpec::single("int-big", "linux/amd64")
            .layers(2)
            .layer_bytes(3_000_000),
    );
    // A slow target: the big image's uploads are still running when the small ones are tagged.
    let down = FlipProxy::start(&lab.tgt());
    down.set_delay(Duration::from_millis(30));
    let up = lab.up();
    let mut text = mirrorfile_header(&up, &down.host(), None);
    for name in small.iter().map(String::as_str).chain(["lab/big:1"]) {
        text.push_str(&format!("\n[[images]]\nref = \"{up}/{name}\"\n"));
    }
    lab.ctx.write_mirrorfile(&text);

    let mut child = lab
        .ctx
        .command()
        .args(["apply", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mirror");
    let small_tagged = || {
        small.iter().all(|name| {
            let repo = name.split(':').next().unwrap_or(name);
            !http::tags(&lab.tgt(), repo).is_empty()
        })
    };
    if !wait_until(Duration::from_secs(60), || {
        down.bytes_up() > 1_000_000 && small_tagged()
    }) {
        let _ = child.kill();
        let out = child.wait_with_output().expect("wait");
        panic!("the small images were not tagged first: {}", describe(&out));
    }
    interrupt(&child);
    let out = child.wait_with_output().expect("wait for mirror");
    assert_eq!(out.status.code(), Some(130), "{}", describe(&out));
    assert!(
        http::tags(&lab.tgt(), "lab/big").is_empty(),
        "big was not tagged"
    );
    let report = crate::support::context::parse_json(&out);
    let summary = &report["summary"];
    assert_eq!(summary["interrupted"], true, "{report:#}");
    assert_eq!(summary["not_done"], 1, "{report:#}");
    assert_eq!(summary["failed"], 0, "{report:#}");
    let images = report["images"].as_array().expect("images");
    assert_eq!(images.len(), 4);
    for image in images {
        let target = image["target"].as_str().unwrap_or_default();
        if target.ends_with("/lab/big:1") {
            assert_eq!(image["status"], "not_done", "{image:#}");
            assert_eq!(
                image["reason"], "interrupted before its tag was pushed",
                "{image:#}"
            );
        } else {
            assert_eq!(image["status"], "ok", "{image:#}");
            assert!(image["reason"].is_null(), "{image:#}");
        }
    }
}

#[test]
fn an_interrupted_apply_into_a_bundle_writes_no_bundle() {
    let lab = Lab::new();
    lab.seed(
        "lab/slow:1",
        &ImageSpec::single("int-bundle", "linux/amd64")
            .layers(2)
            .layer_bytes(3_000_000),
    );
    let up = FlipProxy::start(&lab.up());
    up.set_delay(Duration::from_millis(30));
    let host = up.host();
    lab.ctx.write_mirrorfile(&format!(
        "[target]\nbundle = \"out.mirror.tar\"\n\n[registry.\"{host}\"]\ntls = \"http\"\n\n\
         [cache]\ndir = \"cache\"\n\n[[images]]\nref = \"{host}/lab/slow:1\"\n"
    ));
    let mut child = lab
        .ctx
        .command()
        .args(["apply", "--progress", "none"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mirror");
    if !wait_until(Duration::from_secs(60), || up.bytes() > 500_000) {
        let _ = child.kill();
        let out = child.wait_with_output().expect("wait");
        panic!("no download started: {}", describe(&out));
    }
    interrupt(&child);
    let out = child.wait_with_output().expect("wait for mirror");
    assert_eq!(out.status.code(), Some(130), "{}", describe(&out));
    assert!(
        stdout(&out).contains("Apply INTERRUPTED: 0 created, 0 updated, 0 unchanged, 1 not done."),
        "{}",
        describe(&out)
    );
    // Half a bundle would be worse than none: it must hold exactly the plan.
    assert!(
        !lab.ctx.work().join("out.mirror.tar").exists(),
        "{}",
        describe(&out)
    );
}

#[test]
fn two_applies_at_once_share_one_cache_without_damage() {
    let lab = Lab::new();
    let second_target = crate::support::registry::Registry::start();
    let a = lab.seed(
        "lab/a:1",
        &ImageSpec::multi("conc-a", &TWO)
            .layer_bytes(400_000)
            .shared_base("conc"),
    );
    let b = lab.seed(
        "lab/b:1",
        &ImageSpec::multi("conc-b", &TWO)
            .layer_bytes(400_000)
            .shared_base("conc"),
    );
    let up = lab.up();
    let cache = lab.ctx.root().join("shared-cache");
    let write = |name: &str, target: &str| {
        let text = mirrorfile_header(&up, target, None)
            .replace("dir = \"cache\"", &format!("dir = \"{}\"", cache.display()))
            + &format!(
                "\n[[images]]\nref = \"{up}/lab/a:1\"\n\n[[images]]\nref = \"{up}/lab/b:1\"\n"
            );
        lab.ctx.write_file(name, &text);
    };
    write("same1.toml", &lab.tgt());
    write("same2.toml", &lab.tgt());
    write("other.toml", &second_target.host());
    let spawn = |file: &str| {
        lab.ctx
            .command()
            .args(["-f", file, "apply", "--progress", "none"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start mirror")
    };
    let runs = [
        spawn("same1.toml"),
        spawn("same2.toml"),
        spawn("other.toml"),
    ];
    // While they run, garbage collection is refused rather than deleting under them (once
    // they have made the cache: gc on a directory that is not a cache yet is refused anyway).
    assert!(wait_until(Duration::from_secs(30), || cache
        .join("blobs")
        .is_dir()));
    let gc = lab.ctx.cmd(&[
        "cache",
        "--dir",
        cache.to_str().expect("utf-8 path"),
        "gc",
        "--apply",
    ]);
    for run in runs {
        let out = run.wait_with_output().expect("wait");
        assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    }
    if gc.status.code() != Some(0) {
        assert!(
            has(&stderr(&gc), "in use by another mirror process"),
            "{}",
            describe(&gc)
        );
    }
    lab.assert_full_copy("lab/a:1", &a);
    lab.assert_full_copy("lab/b:1", &b);
    for (image, repo) in [(&a, "lab/a:1"), (&b, "lab/b:1")] {
        let raw = skopeo::inspect_raw(&format!("{}/{repo}", second_target.host()));
        assert_eq!(raw, image.bytes);
    }
    let verify = lab.ctx.cmd(&[
        "cache",
        "--dir",
        cache.to_str().expect("utf-8 path"),
        "verify",
    ]);
    assert_eq!(verify.status.code(), Some(0), "{}", describe(&verify));
    let blobs: BTreeSet<String> = a
        .all_blobs()
        .into_iter()
        .chain(b.all_blobs())
        .map(|b| b.digest)
        .collect();
    let manifests = 2 + 2 * 2;
    assert!(
        stdout(&verify).contains(&format!("Checked {} blobs", blobs.len() + manifests)),
        "{}",
        stdout(&verify)
    );
    let roots = std::fs::read_to_string(cache.join("index.json")).expect("index.json");
    for repo in ["lab/a:1", "lab/b:1"] {
        for host in [lab.tgt(), second_target.host()] {
            assert!(roots.contains(&format!("{host}/{repo}")), "{roots}");
        }
    }
}

#[test]
fn cache_verify_finds_damage_and_gc_frees_what_a_moved_tag_left_behind() {
    let lab = Lab::new();
    let v1 = lab.seed(
        "lab/app:1",
        &ImageSpec::multi("gc-v1", &TWO).layer_bytes(30_000),
    );
    lab.write_mirrorfile(
        None,
        &format!("[[images]]\nref = \"{}/lab/app:1\"\n", lab.up()),
    );
    lab.ctx.cmd_ok(&["apply", "--progress", "none"]);

    // Damage one cached layer: verify names it, --remove deletes it, apply fetches it again.
    let layer = v1.manifest("linux/amd64").layers[0].clone();
    let path = lab
        .ctx
        .work()
        .join("cache/blobs/sha256")
        .join(&layer.digest["sha256:".len()..]);
    std::fs::write(&path, b"not the layer").expect("damage");
    let out = lab.ctx.cmd(&["cache", "verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(stdout(&out).contains(&layer.digest), "{}", stdout(&out));
    assert!(stdout(&out).contains(&sha256(b"not the layer")));
    let out = lab.ctx.cmd(&["cache", "verify", "--remove"]);
    assert!(stdout(&out).contains("removed"), "{}", describe(&out));
    assert!(!path.exists());
    lab.ctx.cmd_ok(&["cache", "verify"]);

    // The tag moves upstream; after apply the cache root is v2 and v1's own blobs are garbage.
    let v2 = lab.seed(
        "lab/app:1",
        &ImageSpec::multi("gc-v2", &TWO).layer_bytes(30_000),
    );
    // The old lock is kept aside; the Mirrorfile's own lock moves to v2.
    std::fs::copy(
        lab.ctx.work().join("mirrorfile.lock"),
        lab.ctx.work().join("old.lock"),
    )
    .expect("keep the old lock");
    lab.ctx.cmd_ok(&["lock", "--update"]);
    lab.ctx.cmd_ok(&["apply", "--progress", "none"]);
    // v1's blobs still cached (the damaged layer was removed and v1 never needed it again).
    let v1_only: Vec<_> = v1
        .all_blobs()
        .into_iter()
        .filter(|b| !v2.blobs.contains_key(&b.digest) && b.digest != layer.digest)
        .collect();
    let kept_path = lab
        .ctx
        .work()
        .join("cache/blobs/sha256")
        .join(&v1.manifest("linux/arm64").layers[0].digest["sha256:".len()..]);
    let v1_manifests = 1 + v1.manifests.len();
    let garbage_bytes: u64 = v1_only.iter().map(|b| b.size).sum::<u64>()
        + v1.bytes.len() as u64
        + v1.manifests
            .iter()
            .map(|m| m.bytes.len() as u64)
            .sum::<u64>();
    let dry = lab.ctx.json(&["cache", "gc", "--json"]);
    assert_eq!(dry["applied"], false);
    assert_eq!(
        dry["garbage"].as_array().map(Vec::len),
        Some(v1_only.len() + v1_manifests),
        "{dry:#}"
    );
    assert_eq!(dry["garbage_bytes"].as_u64(), Some(garbage_bytes));
    // A lock file that still pins v1 keeps all of it.
    let pinned = lab
        .ctx
        .json(&["cache", "gc", "--json", "--lock", "old.lock"]);
    assert_eq!(
        pinned["garbage"].as_array().map(Vec::len),
        Some(0),
        "{pinned:#}"
    );
    let text = lab.ctx.cmd_ok(&["cache", "gc"]);
    assert!(stdout(&text).contains("Run with --apply to delete"));
    assert!(kept_path.exists(), "a dry run deletes nothing");
    let done = lab.ctx.json(&["cache", "gc", "--apply", "--json"]);
    assert_eq!(done["applied"], true);
    assert!(!kept_path.exists());
    for blob in v2.all_blobs() {
        assert!(lab
            .ctx
            .work()
            .join("cache/blobs/sha256")
            .join(&blob.digest["sha256:".len()..])
            .exists());
    }
    // Nothing to fetch for v2 afterwards.
    let plan = lab.ctx.json(&["plan", "--json"]);
    assert_eq!(plan["summary"]["fetch_bytes"].as_u64(), Some(0), "{plan:#}");
}

/// Two projects share one cache and both write a layout called `out` (each in its own
/// directory) with other platforms of the same tag: the cache keeps a root for each, so gc
/// frees nothing either still needs. Root names used to be relative (`oci:out:…`), and the
/// second project's root replaced the first's.
#[test]
fn layout_targets_of_two_projects_keep_separate_cache_roots() {
    let lab = Lab::new();
    lab.seed("lab/app:1", &ImageSpec::multi("roots", &TWO));
    let cache = lab.ctx.work().join("shared-cache");
    for (project, platform) in [("p1", "linux/amd64"), ("p2", "linux/arm64")] {
        lab.ctx.write_file(
            &format!("{project}/mirrorfile.toml"),
            &format!(
                "[target]\nlayout = \"out\"\n\n[registry.\"{up}\"]\ntls = \"http\"\n\n\
                 [defaults]\nplatforms = [\"{platform}\"]\n\n[cache]\ndir = \"{cache}\"\n\n\
                 [[images]]\nref = \"{up}/lab/app:1\"\n",
                up = lab.up(),
                cache = cache.display()
            ),
        );
        lab.ctx.cmd_ok(&[
            "-f",
            &format!("{project}/mirrorfile.toml"),
            "apply",
            "--progress",
            "none",
        ]);
    }
    let roots = std::fs::read_to_string(cache.join("index.json")).expect("index.json");
    for project in ["p1", "p2"] {
        let dir = lab.ctx.work().join(project).join("out");
        assert!(
            roots.contains(&format!("oci:{}:lab/app:1", dir.display())),
            "{roots}"
        );
    }
    let gc = lab.ctx.json(&[
        "cache",
        "--dir",
        cache.to_str().expect("utf-8 path"),
        "gc",
        "--json",
    ]);
    // Nothing either layout holds is garbage (the upstream index, which neither holds, may be).
    let garbage: BTreeSet<String> = gc["garbage"]
        .as_array()
        .expect("garbage list")
        .iter()
        .filter_map(|g| g["path"].as_str())
        .filter_map(|p| p.rsplit('/').next().map(str::to_string))
        .collect();
    for project in ["p1", "p2"] {
        let held = lab.ctx.files_in(&format!("{project}/out/blobs/sha256"));
        assert!(!held.is_empty());
        for blob in held {
            assert!(!garbage.contains(&blob), "{project} needs {blob}: {gc:#}");
        }
    }
}

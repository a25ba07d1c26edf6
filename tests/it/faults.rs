//! Faults between `mirror` and real registries, injected by [`FaultProxy`]: 429 with
//! `Retry-After`, 503, closed connections, truncated bodies, missing headers, refused mounts.
//! Every phase retries (resolve, plan probes, transfers); downloads resume with `Range`, in
//! the same run and in a later one; a fault that never stops ends in an error naming image,
//! digest and host.

use crate::support::context::{describe, flat, parse_json};
use crate::support::fault_proxy::{Fault, FaultProxy, Rule};
use crate::support::http;
use crate::support::images::ImageSpec;
use crate::support::lab::{num, Lab};
use crate::support::registry::Registry;

fn status(status: u16, retry_after: Option<u64>, body: &str) -> Fault {
    Fault::Status {
        status,
        retry_after,
        body: body.to_string(),
    }
}

/// Mirrorfile: from `up` to `tgt` (both plain HTTP), with extra `[registry."tgt"]` keys.
fn mirrorfile(lab: &Lab, up: &str, tgt: &str, target_keys: &str, images: &[&str]) {
    let mut text = format!(
        "[target]\nregistry = \"{tgt}\"\n\n[registry.\"{up}\"]\ntls = \"http\"\n\n\
         [registry.\"{tgt}\"]\ntls = \"http\"\n{target_keys}\n[cache]\ndir = \"cache\"\n"
    );
    for image in images {
        text.push_str(&format!("\n[[images]]\nref = \"{up}/{image}\"\n"));
    }
    lab.ctx.write_mirrorfile(&text);
}

#[test]
fn faults_in_every_phase_are_retried_and_the_copy_is_exact() {
    let lab = Lab::new();
    let image = lab.seed(
        "lab/f:1",
        &ImageSpec::multi("faulty", &["linux/amd64", "linux/arm64"]).layer_bytes(60_000),
    );
    let up = FaultProxy::start(&lab.up());
    let tgt = FaultProxy::start(&lab.tgt());
    let layer = image.manifest("linux/arm64").layers[1].clone();
    let other = image.manifest("linux/amd64").layers[1].clone();
    let keep = 20_000;
    // Resolve: 429 with Retry-After (plain-text body), then HEAD answers without the digest
    // header (GET + hash); a 503 on the index GET.
    up.add(Rule::new("HEAD", "/manifests/1", status(429, Some(1), "slow down")).times(1));
    up.add(Rule::new(
        "HEAD",
        "/manifests/",
        Fault::DropHeader("Docker-Content-Digest".into()),
    ));
    up.add(Rule::new("GET", "/manifests/", status(503, None, "")).times(1));
    // Transfers: a closed connection and a truncated body.
    up.add(Rule::new("GET", &other.digest, Fault::Close).times(1));
    up.add(Rule::new("GET", &layer.digest, Fault::Truncate { keep }).times(1));
    // Plan probes and uploads on the target.
    tgt.add(Rule::new("HEAD", "/manifests/1", status(503, None, "")).times(1));
    tgt.add(Rule::new("HEAD", "/blobs/", status(502, None, "bad gateway")).times(1));
    tgt.add(Rule::new("POST", "/blobs/uploads/", status(500, None, "")).times(1));
    mirrorfile(&lab, &up.host(), &tgt.host(), "", &["lab/f:1"]);

    let out = lab.ctx.cmd(&["apply", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}\n--\n{}",
        describe(&out),
        up.describe(),
        tgt.describe()
    );
    let report = parse_json(&out);
    assert_eq!(
        num(&report["summary"], "blobs_pushed"),
        image.all_blobs().len() as u64
    );
    // The target holds exactly the upstream bytes (checked with skopeo, past the proxy).
    lab.assert_full_copy("lab/f:1", &image);
    // Every fault fired, and each was followed by a success.
    let log = up.log();
    assert!(log.iter().any(|l| l.status == 429), "{}", up.describe());
    let resumed = up.requests("GET", &layer.digest);
    assert_eq!(resumed.len(), 2, "{}", up.describe());
    assert_eq!(
        resumed[1].range.as_deref(),
        Some(format!("bytes={keep}-").as_str()),
        "{}",
        up.describe()
    );
    assert_eq!(resumed[1].status, 206);
    assert_eq!(up.requests("GET", &other.digest).len(), 2);
    assert!(
        tgt.log().iter().filter(|l| l.fault.is_some()).count() >= 3,
        "{}",
        tgt.describe()
    );
    assert!(!lab
        .ctx
        .work()
        .join("cache/partial")
        .join(layer.digest.trim_start_matches("sha256:"))
        .exists());
}

#[test]
fn apply_gives_up_naming_image_digest_and_host() {
    let lab = Lab::new();
    let image = lab.seed(
        "lab/g:1",
        &ImageSpec::single("giveup", "linux/amd64").layer_bytes(5_000),
    );
    let up = FaultProxy::start(&lab.up());
    let layer = image.manifests[0].layers[0].clone();
    up.add(Rule::new(
        "GET",
        &layer.digest,
        status(503, Some(0), "upstream is overloaded, try later"),
    ));
    mirrorfile(&lab, &up.host(), &lab.tgt(), "", &["lab/g:1"]);
    let out = lab.ctx.cmd(&["--retries", "1", "apply"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = flat(&out.stderr);
    assert!(
        err.contains(&format!("{}/lab/g:1", up.host())),
        "names the image: {err}"
    );
    assert!(err.contains(&layer.digest), "names the digest: {err}");
    assert!(
        err.contains(&format!("{}: GET blob", up.host())),
        "names the host: {err}"
    );
    assert!(err.contains("gave up after 2 attempts"), "{err}");
    assert!(
        err.contains("HTTP 503") && err.contains("upstream is overloaded"),
        "non-JSON body shown: {err}"
    );
    assert_eq!(
        up.requests("GET", &layer.digest).len(),
        2,
        "--retries 1 = 2 attempts"
    );
    assert!(
        http::tags(&lab.tgt(), "lab/g").is_empty(),
        "no tag above missing content"
    );
}

#[test]
fn a_truncated_download_resumes_in_a_later_run() {
    let lab = Lab::new();
    let image = lab.seed(
        "lab/r:1",
        &ImageSpec::single("resume", "linux/arm64").layer_bytes(80_000),
    );
    let up = FaultProxy::start(&lab.up());
    let layer = image.manifests[0].layers[0].clone();
    let keep = 30_000;
    up.add(Rule::new("GET", &layer.digest, Fault::Truncate { keep }));
    mirrorfile(&lab, &up.host(), &lab.tgt(), "", &["lab/r:1"]);
    let failed = lab.ctx.cmd(&["--retries", "0", "apply"]);
    assert_eq!(failed.status.code(), Some(1), "{}", describe(&failed));
    let partial = lab
        .ctx
        .work()
        .join("cache/partial")
        .join(layer.digest.trim_start_matches("sha256:"));
    assert_eq!(
        std::fs::metadata(&partial).map(|m| m.len()).ok(),
        Some(keep as u64),
        "the bytes received survive in the cache"
    );
    up.clear_rules();
    up.clear_log();
    let config = &image.manifests[0].config;
    let config_cached = lab
        .ctx
        .work()
        .join("cache/blobs/sha256")
        .join(config.digest.trim_start_matches("sha256:"))
        .exists();
    let report = lab.ctx.json(&["apply", "--json"]);
    // What moved in this run: the rest of the layer (and the config if run 1 had not got it).
    let rest = layer.size - keep as u64 + if config_cached { 0 } else { config.size };
    assert_eq!(num(&report["summary"], "bytes_fetched"), rest, "{report:#}");
    let gets = up.requests("GET", &layer.digest);
    assert_eq!(gets.len(), 1, "{}", up.describe());
    assert_eq!(
        gets[0].range.as_deref(),
        Some(format!("bytes={keep}-").as_str())
    );
    assert_eq!(gets[0].status, 206);
    assert!(!partial.exists());
    lab.assert_full_copy("lab/r:1", &image);
}

/// A partial download left in the cache that is damaged (not a prefix of the blob) fails the
/// digest check once the rest arrives; the same run then downloads the whole blob again and
/// succeeds, instead of failing the image and blaming the source.
#[test]
fn a_damaged_partial_download_is_fetched_again_from_the_start_in_the_same_run() {
    let lab = Lab::new();
    let image = lab.seed(
        "lab/d:1",
        &ImageSpec::single("damaged", "linux/arm64").layer_bytes(80_000),
    );
    let up = FaultProxy::start(&lab.up());
    let layer = image.manifests[0].layers[0].clone();
    mirrorfile(&lab, &up.host(), &lab.tgt(), "", &["lab/d:1"]);
    let junk = 30_000;
    let partial_dir = lab.ctx.work().join("cache/partial");
    std::fs::create_dir_all(&partial_dir).expect("partial dir");
    let partial = partial_dir.join(layer.digest.trim_start_matches("sha256:"));
    std::fs::write(&partial, vec![0x5a; junk]).expect("plant a damaged partial download");

    let out = lab.ctx.cmd(&["--retries", "0", "apply", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        describe(&out),
        up.describe()
    );
    let gets = up.requests("GET", &layer.digest);
    assert_eq!(
        gets.len(),
        2,
        "resumed, then from the start: {}",
        up.describe()
    );
    assert_eq!(
        gets[0].range.as_deref(),
        Some(format!("bytes={junk}-").as_str()),
        "{}",
        up.describe()
    );
    assert_eq!(gets[1].range, None, "{}", up.describe());
    let report = parse_json(&out);
    // Every blob once, and the damaged layer's rest once more before it.
    assert_eq!(
        num(&report["summary"], "bytes_fetched"),
        image.blob_bytes() + (layer.size - junk as u64),
        "{report:#}\n{}",
        up.describe()
    );
    assert!(
        flat(&out.stderr).contains("did not verify"),
        "{}",
        describe(&out)
    );
    assert!(!partial.exists(), "the damaged prefix is gone");
    lab.assert_full_copy("lab/d:1", &image);
}

#[test]
fn a_registry_refusing_mounts_is_not_asked_again() {
    let lab = Lab::new();
    let spec = |seed: &str| {
        ImageSpec::multi(seed, &["linux/amd64", "linux/arm64"])
            .shared_base("base")
            .layer_bytes(5_000)
    };
    let a = lab.seed("lab/a:1", &spec("a"));
    let b = lab.seed("lab/b:1", &spec("b"));
    let tgt = FaultProxy::start(&lab.tgt());
    tgt.add(Rule::new(
        "POST",
        "mount=",
        status(404, None, "404 page not found"),
    ));
    mirrorfile(&lab, &lab.up(), &tgt.host(), "", &["lab/a:1", "lab/b:1"]);
    let out = lab.ctx.cmd(&["apply", "--json", "--jobs", "1"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let report = parse_json(&out);
    assert_eq!(num(&report["summary"], "blobs_mounted"), 0);
    assert_eq!(
        tgt.requests("POST", "mount=").len(),
        1,
        "{}",
        tgt.describe()
    );
    lab.assert_full_copy("lab/a:1", &a);
    lab.assert_full_copy("lab/b:1", &b);
}

#[test]
fn max_concurrency_bounds_requests_in_flight_per_registry() {
    let lab = Lab::new();
    let image = lab.seed(
        "lab/c:1",
        &ImageSpec::multi("conc", &["linux/amd64", "linux/arm64", "linux/arm/v7"]).layers(3),
    );
    let limited = FaultProxy::start(&lab.tgt());
    limited.add(Rule::new(
        "",
        "/v2/lab/",
        Fault::Delay(std::time::Duration::from_millis(40)),
    ));
    mirrorfile(
        &lab,
        &lab.up(),
        &limited.host(),
        "max_concurrency = 1\n",
        &["lab/c:1"],
    );
    lab.ctx.cmd_ok(&["apply", "--jobs", "8"]);
    assert_eq!(limited.max_in_flight(), 1, "{}", limited.describe());
    lab.assert_full_copy("lab/c:1", &image);

    // The same run without the limit overlaps requests (the measurement can see it).
    let other = Registry::start();
    let free = FaultProxy::start(&other.host());
    free.add(Rule::new(
        "",
        "/v2/lab/",
        Fault::Delay(std::time::Duration::from_millis(40)),
    ));
    mirrorfile(&lab, &lab.up(), &free.host(), "", &["lab/c:1"]);
    lab.ctx.cmd_ok(&["apply", "--jobs", "8"]);
    assert!(free.max_in_flight() > 1, "{}", free.describe());
}

#[test]
fn a_source_that_goes_down_mid_run_is_given_up_on_once_not_per_blob() {
    let lab = Lab::new();
    // The first image's layer is the largest, so (largest first, one job) its fetch runs first.
    let first = lab.seed(
        "lab/d0:1",
        &ImageSpec::single("down0", "linux/amd64").layer_bytes(200_000),
    );
    let names: Vec<String> = (1..13).map(|i| format!("lab/d{i}:1")).collect();
    for (i, name) in names.iter().enumerate() {
        lab.seed(
            name,
            &ImageSpec::single(&format!("down{}", i + 1), "linux/amd64")
                .layers(1)
                .layer_bytes(3_000),
        );
    }
    let up = FaultProxy::start(&lab.up());
    let layer = first.manifests[0].layers[0].clone();
    up.add(Rule::new("GET", &layer.digest, Fault::GoDown));
    let mut images = vec!["lab/d0:1"];
    images.extend(names.iter().map(String::as_str));
    mirrorfile(&lab, &up.host(), &lab.tgt(), "", &images);

    let out = lab.ctx.cmd(&["--retries", "2", "apply", "--jobs", "1"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = flat(&out.stderr);
    // Only the first transfer waits out its retries; the others fail at once.
    let retries = err.matches(" retry ").count();
    assert_eq!(retries, 2, "--retries 2 for the first blob only: {err}");
    assert!(err.contains("gave up after 3 attempts"), "{err}");
    assert!(
        !err.contains("attempts: skipped"),
        "no double wrapping: {err}"
    );
    // The 12 later layer fetches fail on the down host: one progress line says so, and the
    // closing error counts them in one line instead of repeating the cause 12 times.
    let unreachable = format!("{} is unreachable", up.host());
    assert_eq!(
        err.matches(&unreachable).count(),
        2,
        "one FAILED line and one count line: {}",
        describe(&out)
    );
    assert!(
        err.contains(&format!(
            "× 12 more task(s) skipped: {unreachable} (gave up after 3 attempts:"
        )),
        "{err}"
    );
    assert!(
        err.contains("1 task(s) failed, 12 more skipped on an unreachable host"),
        "{err}"
    );
    // The summary names every image that was not pushed, counted as the JSON counts them.
    let text = crate::support::context::stdout(&out);
    assert!(
        text.contains("Apply FAILED: 0 created, 0 updated, 0 unchanged, 13 failed."),
        "{text}"
    );
    for image in &images {
        assert!(
            text.contains(&format!("× {}/{image}  (fetch ", lab.tgt())),
            "every image is reported as failed: {text}"
        );
        let repo = image.split(':').next().unwrap_or(image);
        assert!(
            http::tags(&lab.tgt(), repo).is_empty(),
            "no tag for {image}"
        );
    }
    assert_eq!(up.requests("GET", &layer.digest).len(), 1);
}

#[test]
fn an_image_blocked_by_another_images_failed_blob_is_reported_failed_by_name() {
    let lab = Lab::new();
    // toolbox's first layer is busybox's: busybox (first in the Mirrorfile) fetches and pushes
    // it, toolbox mounts it from there.
    let busybox = lab.seed(
        "lab/busybox:1.35",
        &ImageSpec::single("busybox", "linux/amd64")
            .layer_bytes(20_000)
            .shared_base("shared"),
    );
    let toolbox = lab.seed(
        "lab/toolbox:1.0",
        &ImageSpec::single("toolbox", "linux/amd64")
            .layer_bytes(20_000)
            .shared_base("shared"),
    );
    let other = lab.seed(
        "lab/other:1",
        &ImageSpec::single("other", "linux/amd64").layer_bytes(20_000),
    );
    let shared = busybox.manifests[0].layers[0].clone();
    assert_eq!(shared.digest, toolbox.manifests[0].layers[0].digest);
    let up = FaultProxy::start(&lab.up());
    up.add(Rule::new("GET", &shared.digest, status(404, None, "gone")));
    let images = ["lab/busybox:1.35", "lab/toolbox:1.0", "lab/other:1"];
    mirrorfile(&lab, &up.host(), &lab.tgt(), "", &images);
    let tgt = lab.tgt();

    let out = lab.ctx.cmd(&["apply", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let report = parse_json(&out);
    let entry = |repo: &str| {
        report["images"]
            .as_array()
            .and_then(|list| {
                list.iter()
                    .find(|i| i["target"] == format!("{tgt}/{repo}").as_str())
            })
            .unwrap_or_else(|| panic!("{repo} in {report:#}"))
    };
    let bb = entry("lab/busybox:1.35");
    assert_eq!(bb["status"], "failed", "{bb:#}");
    let reason = bb["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with(&format!("fetch {}", &shared.digest[..19])),
        "{reason}"
    );
    let tb = entry("lab/toolbox:1.0");
    assert_eq!(tb["status"], "failed", "{tb:#}");
    assert_eq!(
        tb["reason"],
        format!("blocked by a failed task of {tgt}/lab/busybox:1.35").as_str()
    );
    assert_eq!(entry("lab/other:1")["status"], "ok");
    assert_eq!(num(&report["summary"], "failed"), 2, "{report:#}");
    assert_eq!(num(&report["summary"], "not_done"), 0, "{report:#}");
    assert_eq!(report["summary"]["interrupted"], false);
    assert!(http::tags(&tgt, "lab/busybox").is_empty());
    assert!(http::tags(&tgt, "lab/toolbox").is_empty());
    lab.assert_full_copy("lab/other:1", &other);

    // The text names both images and why.
    let out = lab.ctx.cmd(&["apply", "--progress", "none"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let text = crate::support::context::stdout(&out);
    assert!(
        text.contains("Apply FAILED: 0 created, 0 updated, 1 unchanged, 2 failed."),
        "{text}"
    );
    assert!(
        text.contains(&format!("× {tgt}/lab/busybox:1.35  (fetch ")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "× {tgt}/lab/toolbox:1.0  (blocked by a failed task of {tgt}/lab/busybox:1.35)"
        )),
        "{text}"
    );
}

//! Crash and resume: `mirror apply` is killed with SIGKILL at random moments (after a random
//! number of bytes relayed by the source proxy, or a random time, whichever comes first) and run
//! again, until it finishes. After every kill the target must be consistent (each tag resolves
//! to the complete image: every child manifest and blob present) and no run may download a blob
//! or manifest that was already in the cache when it started.
//!
//! Deterministic: `MIRROR_CRASH_SEED` (default 7) picks the kill points. The default workload is
//! small enough for CI on two cores; `MIRROR_CRASH_MB=300 MIRROR_CRASH_KILLS=40` is the big run.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::support::context::{describe, mirrorfile_header};
use crate::support::flip_proxy::FlipProxy;
use crate::support::http::{self, MANIFEST_ACCEPT};
use crate::support::images::{sha256, BuiltImage, ImageSpec};
use crate::support::lab::Lab;
use crate::support::registry::Registry;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Hex names of the files in the cache's blob folder.
fn cached(lab: &Lab) -> BTreeSet<String> {
    lab.ctx.files_in("cache/blobs/sha256").into_iter().collect()
}

/// Every tag on the target `host` resolves to its complete image. Returns how many tags exist.
fn assert_target_consistent(host: &str, images: &[(String, BuiltImage)]) -> usize {
    let host = host.to_string();
    let mut tagged = 0;
    for (repo, image) in images {
        for tag in http::tags(&host, repo) {
            // The registry may still be finishing the tag PUT the killed run sent: distribution
            // creates the tag's directory (so it is listed) before it writes the link. Give it
            // a moment; a tag that never resolves points at nothing, which is not a violation.
            let path = format!("/v2/{repo}/manifests/{tag}");
            let mut top = http::get(&host, &path, Some(MANIFEST_ACCEPT));
            for _ in 0..20 {
                if top.status != 404 {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
                top = http::get(&host, &path, Some(MANIFEST_ACCEPT));
            }
            if top.status == 404 {
                continue;
            }
            tagged += 1;
            assert_eq!(top.status, 200, "{repo}:{tag}: {}", top.text());
            assert_eq!(sha256(&top.body), image.digest, "{repo}:{tag} digest");
            for m in image.all_manifests() {
                assert!(
                    http::manifest_exists(&host, repo, &m.digest),
                    "{repo}:{tag} is tagged but child {} is missing",
                    m.digest
                );
            }
            for blob in image.all_blobs() {
                assert!(
                    http::blob_exists(&host, repo, &blob.digest),
                    "{repo}:{tag} is tagged but blob {} is missing",
                    blob.digest
                );
            }
        }
    }
    tagged
}

/// No GET of a blob or manifest by digest that `before` (the cache at the run's start) held.
fn assert_no_refetch(proxy: &FlipProxy, before: &BTreeSet<String>, run: usize) {
    proxy.wait_idle(Duration::from_secs(30));
    for entry in proxy.take_log() {
        if entry.method != "GET" {
            continue;
        }
        if let Some(pos) = entry.path.rfind("sha256:") {
            let hex = &entry.path[pos + "sha256:".len()..];
            assert!(
                !before.contains(hex),
                "run {run} downloaded {} again although it was in the cache",
                entry.path
            );
        }
    }
}

#[test]
fn apply_killed_at_random_moments_always_resumes_to_a_correct_target() {
    let seed = env_u64("MIRROR_CRASH_SEED", 7);
    let megabytes = env_u64("MIRROR_CRASH_MB", 64);
    let kills_wanted = env_u64("MIRROR_CRASH_KILLS", 20) as usize;
    let lab = Lab::new();
    let platforms = ["linux/amd64", "linux/arm64"];
    let (count, layers) = (4usize, 6usize);
    let layer_bytes = (megabytes as usize * 1_000_000) / (count * platforms.len() * layers);
    let images: Vec<(String, BuiltImage)> = (0..count)
        .map(|i| {
            let repo = format!("lab/crash{i}");
            let spec = ImageSpec::multi(&format!("crash-{i}"), &platforms)
                .layers(layers)
                .layer_bytes(layer_bytes)
                .shared_base("crash-base");
            let image = lab.seed(&format!("{repo}:1"), &spec);
            (repo, image)
        })
        .collect();
    let total: u64 = {
        let mut seen = BTreeSet::new();
        images
            .iter()
            .flat_map(|(_, i)| i.all_blobs())
            .filter(|b| seen.insert(b.digest.clone()))
            .map(|b| b.size)
            .sum()
    };
    let proxy = FlipProxy::start(&lab.up());
    // A slowish source, so a run takes long enough to be killed many times.
    proxy.set_delay(Duration::from_millis(env_u64("MIRROR_CRASH_DELAY_MS", 30)));
    let src = proxy.host();
    let write_mirrorfile = |target: &str| {
        let mut text = mirrorfile_header(&src, target, None);
        for (repo, _) in &images {
            text.push_str(&format!("\n[[images]]\nref = \"{src}/{repo}:1\"\n"));
        }
        lab.ctx.write_mirrorfile(&text);
    };
    // When a run finishes before enough kills, the next round copies into a fresh target from
    // the now complete cache: its kills land in the push phase, where "tags last" matters.
    let mut targets = vec![Registry::start()];
    let mut target = targets[0].host();
    write_mirrorfile(&target);

    let mut rng = StdRng::seed_from_u64(seed);
    let (mut kills, mut runs, mut rounds) = (0usize, 0usize, 1usize);
    // Kill times are drawn below this; after a round, below how long its finishing run took.
    let mut time_cap_ms: u64 = 1200;
    let mut tagged_after_kill = Vec::new();
    let mut cached_after_kill = Vec::new();
    let started = Instant::now();
    while kills < kills_wanted {
        runs += 1;
        let before = cached(&lab);
        let start_bytes = proxy.bytes();
        // One trigger per run: bytes relayed by the source, elapsed time, or blobs that reached
        // the cache (the last guarantees progress between kills).
        let (mut budget_bytes, mut budget_time, mut budget_cached) =
            (u64::MAX, Duration::from_secs(600), usize::MAX);
        let mode = if rounds > 1 {
            1
        } else {
            rng.random_range(0..3)
        };
        match mode {
            0 => budget_bytes = rng.random_range(1..=total / 4),
            1 => budget_time = Duration::from_millis(rng.random_range(20..=time_cap_ms)),
            _ => budget_cached = before.len() + rng.random_range(1..=4),
        }
        let mut child = lab
            .ctx
            .command()
            .args(["apply", "--progress", "none", "-q"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mirror");
        let t0 = Instant::now();
        let mut finished = false;
        loop {
            if let Some(status) = child.try_wait().expect("poll mirror") {
                assert_eq!(status.code(), Some(0), "run {run} failed", run = runs);
                finished = true;
                break;
            }
            if proxy.bytes() - start_bytes >= budget_bytes
                || t0.elapsed() >= budget_time
                || (budget_cached != usize::MAX && cached(&lab).len() >= budget_cached)
            {
                child.kill().expect("SIGKILL mirror");
                child.wait().expect("reap mirror");
                kills += 1;
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let tagged = assert_target_consistent(&target, &images);
        assert_no_refetch(&proxy, &before, runs);
        if finished {
            assert_eq!(tagged, images.len(), "a finished run tagged every image");
            time_cap_ms = (t0.elapsed().as_millis() as u64).max(40);
            targets.push(Registry::start());
            target = targets[targets.len() - 1].host();
            write_mirrorfile(&target);
            rounds += 1;
        } else {
            tagged_after_kill.push(tagged);
            cached_after_kill.push(cached(&lab).len());
        }
        assert!(
            runs < 10 * kills_wanted,
            "no end in sight after {runs} runs"
        );
    }

    // The run after the last kill finishes the job without downloading anything cached.
    let before = cached(&lab);
    let out = lab.ctx.cmd(&["apply", "--progress", "none"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_no_refetch(&proxy, &before, runs + 1);
    for (repo, image) in &images {
        let raw = crate::support::skopeo::inspect_raw(&format!("{target}/{repo}:1"));
        assert_eq!(raw, image.bytes, "{repo}: bytes are sacred");
    }
    assert_eq!(assert_target_consistent(&target, &images), images.len());
    let verify = lab.ctx.cmd(&["cache", "verify"]);
    assert_eq!(verify.status.code(), Some(0), "{}", describe(&verify));
    assert!(lab.ctx.files_in("cache/tmp").is_empty());
    eprintln!(
        "crash test: seed {seed}, {:.1} MB of blobs over {} images, {kills} SIGKILLs in {runs} runs, {rounds} round(s), \
         tags present after each kill {tagged_after_kill:?}, cache entries after each kill {cached_after_kill:?}, {:.1}s",
        total as f64 / 1e6,
        images.len(),
        started.elapsed().as_secs_f64()
    );
}

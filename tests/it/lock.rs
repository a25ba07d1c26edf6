//! `mirrorfile.lock`, `--locked`, `--offline`, drift, `mirror lock --update` and saved plans,
//! against real registries.

use std::collections::BTreeSet;

use crate::support::context::{describe, mirrorfile_header, stderr, stdout, TestContext};
use crate::support::images::{sha256, total_size, ImageSpec};
use crate::support::lab::{image_entry, line_of, num, Lab};
use crate::support::registry::Registry;
use crate::support::{http, skopeo};

const TWO: [&str; 2] = ["linux/amd64", "linux/arm64"];

fn app(seed: &str) -> ImageSpec {
    ImageSpec::multi(seed, &TWO)
        .layers(3)
        .layer_bytes(20_000)
        .shared_base("base")
}

/// Terminal text with miette's wrapping undone: words joined by single spaces, gutters dropped.
fn flat(text: &str) -> String {
    text.split_whitespace()
        .filter(|w| *w != "|" && *w != "│")
        .collect::<Vec<_>>()
        .join(" ")
}

fn lock_toml(ctx: &TestContext) -> toml::Value {
    toml::from_str(&ctx.read_file("mirrorfile.lock")).expect("the lock is TOML")
}

/// The `[[image]]` entry of the lock for `source`.
fn locked_image(lock: &toml::Value, source: &str) -> toml::Value {
    lock["image"]
        .as_array()
        .expect("[[image]] entries")
        .iter()
        .find(|i| i["source"].as_str() == Some(source))
        .unwrap_or_else(|| panic!("no lock entry for {source} in {lock:#?}"))
        .clone()
}

#[test]
fn moved_upstream_tag_is_drift_until_lock_update_moves_only_new_blobs() {
    let lab = Lab::new();
    let (up, tgt) = (lab.up(), lab.tgt());
    let source = format!("{up}/lab/app:1.0");
    let v1 = lab.seed("lab/app:1.0", &app("one"));
    lab.write_mirrorfile(None, &format!("[[images]]\nref = \"{source}\"\n"));
    lab.ctx.json(&["apply", "--json"]);
    let lock = lock_toml(&lab.ctx);
    assert_eq!(lock["version"].as_integer(), Some(1));
    let entry = locked_image(&lock, &source);
    assert_eq!(entry["digest"].as_str(), Some(v1.digest.as_str()));
    assert_eq!(
        entry["media_type"].as_str(),
        Some("application/vnd.oci.image.index.v1+json")
    );
    let children: BTreeSet<(String, String)> = entry["platforms"]
        .as_array()
        .expect("platforms")
        .iter()
        .map(|c| {
            (
                c["platform"].as_str().unwrap_or_default().to_string(),
                c["digest"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String)> = TWO
        .iter()
        .map(|p| (p.to_string(), v1.manifest(p).digest.clone()))
        .collect();
    assert_eq!(children, expected);
    let lock_bytes = lab.ctx.read_file("mirrorfile.lock");

    // Upstream retags 1.0 to new content sharing the base layer.
    let v2 = lab.seed("lab/app:1.0", &app("two"));
    assert_ne!(v1.digest, v2.digest);

    // apply keeps the locked digest, and asks the source nothing: one HEAD of the target tag.
    let again = lab.ctx.json(&["apply", "--json"]);
    let entry = image_entry(&again, &source);
    assert_eq!(entry["action"], "unchanged", "{again:#}");
    assert_eq!(entry["source_digest"], v1.digest.as_str());
    assert_eq!(num(&again["summary"], "bytes_pushed"), 0);
    assert_eq!(num(&again["summary"], "requests"), 1, "{again:#}");
    assert_eq!(
        sha256(&skopeo::inspect_raw(&format!("{tgt}/lab/app:1.0"))),
        v1.digest
    );
    assert_eq!(
        lab.ctx.read_file("mirrorfile.lock"),
        lock_bytes,
        "lock untouched"
    );

    // plan shows the drift, in text and JSON, and changes nothing.
    let plan = lab.ctx.json(&["plan", "--json"]);
    let entry = image_entry(&plan, &source);
    assert_eq!(entry["action"], "unchanged");
    assert_eq!(entry["locked"], true);
    assert_eq!(entry["drift"]["locked"], v1.digest.as_str());
    assert_eq!(entry["drift"]["upstream"], v2.digest.as_str());
    let text = stdout(&lab.ctx.cmd_ok(&["plan"]));
    let line = format!(
        "upstream tag moved: {} → {}; keeping the locked digest",
        v1.digest, v2.digest
    );
    assert!(text.contains(&line), "{text}");
    assert_eq!(lab.ctx.read_file("mirrorfile.lock"), lock_bytes);

    // lock --update says what moved; apply then moves the new content and only its new blobs.
    let update = stdout(&lab.ctx.cmd_ok(&["lock", "--update"]));
    assert!(
        update.contains(&format!("~ {source}: {} → {}", v1.digest, v2.digest)),
        "{update}"
    );
    assert_eq!(
        locked_image(&lock_toml(&lab.ctx), &source)["digest"].as_str(),
        Some(v2.digest.as_str())
    );
    let old: BTreeSet<String> = v1.all_blobs().into_iter().map(|b| b.digest).collect();
    let new_blobs: Vec<_> = v2
        .all_blobs()
        .into_iter()
        .filter(|b| !old.contains(&b.digest))
        .collect();
    assert!(new_blobs.len() < v2.all_blobs().len(), "the base is shared");
    let moved = lab.ctx.json(&["apply", "--json"]);
    let entry = image_entry(&moved, &source);
    assert_eq!(entry["action"], "update", "{moved:#}");
    assert_eq!(entry["target_digest"], v2.digest.as_str());
    let s = &moved["summary"];
    assert_eq!(num(s, "bytes_pushed"), total_size(&new_blobs), "{moved:#}");
    assert_eq!(num(s, "blobs_pushed"), new_blobs.len() as u64, "{moved:#}");
    lab.assert_full_copy("lab/app:1.0", &v2);
}

#[test]
fn offline_fills_a_second_target_from_the_cache_with_upstream_stopped() {
    let mut lab = Lab::new();
    let up = lab.up();
    let image = lab.seed("lab/app:1.0", &app("one"));
    let solo = lab.seed("lab/solo:2", &ImageSpec::single("solo", "linux/arm64"));
    let body = format!(
        "[[images]]\nref = \"{up}/lab/app:1.0\"\n\n[[images]]\nref = \"{up}/lab/solo:2\"\n"
    );
    lab.write_mirrorfile(None, &body);
    lab.ctx.json(&["apply", "--json"]);
    let lock = lab.ctx.read_file("mirrorfile.lock");

    lab.upstream.stop();
    let second = Registry::start();
    let text = format!("{}\n{body}", mirrorfile_header(&up, &second.host(), None));
    lab.ctx.write_mirrorfile(&text);
    let report = lab.ctx.json(&["apply", "--offline", "--json"]);
    let s = &report["summary"];
    assert_eq!(num(s, "bytes_fetched"), 0, "{report:#}");
    assert_eq!(
        num(s, "bytes_pushed"),
        image.blob_bytes() + solo.blob_bytes(),
        "{report:#}"
    );
    for (reference, built) in [("lab/app:1.0", &image), ("lab/solo:2", &solo)] {
        let raw = skopeo::inspect_raw(&format!("{}/{reference}", second.host()));
        assert_eq!(raw, built.bytes, "{reference} bytes");
        for blob in built.all_blobs() {
            let repo = reference.split(':').next().unwrap_or_default();
            assert!(http::blob_exists(&second.host(), repo, &blob.digest));
        }
    }
    assert_eq!(lab.ctx.read_file("mirrorfile.lock"), lock, "lock unchanged");
    assert!(!lab.upstream.is_running());
    // Updating the lock needs the sources: with --offline it is refused for that reason.
    let out = lab.ctx.cmd(&["lock", "--update", "--offline"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = flat(&stderr(&out));
    assert!(err.contains("--offline rules out"), "{err}");
    assert!(!err.contains("has no entry in the lock"), "{err}");
    assert_eq!(lab.ctx.read_file("mirrorfile.lock"), lock, "lock unchanged");

    // A blob gone from the cache: offline planning names it and pushes nothing.
    let third = Registry::start();
    let layer = &image.manifest("linux/arm64").layers[1].digest;
    let hex = layer.trim_start_matches("sha256:");
    std::fs::remove_file(lab.ctx.work().join("cache/blobs/sha256").join(hex))
        .expect("remove a cached layer");
    let text = format!("{}\n{body}", mirrorfile_header(&up, &third.host(), None));
    lab.ctx.write_mirrorfile(&text);
    let out = lab.ctx.cmd(&["plan", "--offline"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = flat(&stderr(&out));
    assert!(err.contains("offline"), "{err}");
    assert!(
        err.contains(layer.as_str()),
        "names the missing blob\n{err}"
    );
    assert!(http::catalog(&third.host()).is_empty());
}

#[test]
fn offline_without_a_cached_manifest_names_its_digest() {
    let mut lab = Lab::new();
    let up = lab.up();
    let image = lab.seed("lab/app:1.0", &app("one"));
    let entry = format!("[[images]]\nref = \"{up}/lab/app:1.0\"\n");
    lab.write_mirrorfile(None, &format!("{entry}platforms = [\"linux/amd64\"]\n"));
    lab.ctx.json(&["apply", "--json"]);
    lab.upstream.stop();

    // Every platform now: arm64's manifest was never fetched.
    lab.write_mirrorfile(None, &entry);
    let out = lab.ctx.cmd(&["apply", "--offline"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = flat(&stderr(&out));
    let arm = &image.manifest("linux/arm64").digest;
    assert!(
        err.contains(&format!("offline: manifest {arm}")),
        "names the missing manifest\n{err}"
    );
    assert!(err.contains("not in the cache"), "{err}");
}

#[test]
fn locked_refuses_an_edited_mirrorfile_and_names_the_entry() {
    let lab = Lab::new();
    let up = lab.up();
    lab.seed("lab/app:1.0", &app("one"));
    lab.seed("lab/new:1", &ImageSpec::single("new", "linux/amd64"));
    let first = format!("[[images]]\nref = \"{up}/lab/app:1.0\"\n");
    lab.write_mirrorfile(None, &first);
    lab.ctx.cmd_ok(&["lock"]);
    let lock = lab.ctx.read_file("mirrorfile.lock");
    lab.ctx.cmd_ok(&["plan", "--locked"]);

    // A new entry: refused before anything is resolved or pushed.
    let text = lab.write_mirrorfile(
        None,
        &format!("{first}\n[[images]]\nref = \"{up}/lab/new:1\"\n"),
    );
    let out = lab.ctx.cmd(&["apply", "--locked"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = flat(&stderr(&out));
    let new_line = text
        .lines()
        .position(|l| l.contains("lab/new:1"))
        .expect("entry line");
    // The origin is the `[[images]]` header line, just above the ref.
    let declared = format!("mirrorfile.toml:{}", new_line);
    assert!(err.contains(&format!("{up}/lab/new:1")), "{err}");
    assert!(err.contains(&declared), "names the line {declared}\n{err}");
    assert!(err.contains("--locked"), "{err}");
    assert!(lab.target_catalog().is_empty(), "nothing pushed");
    assert_eq!(lab.ctx.read_file("mirrorfile.lock"), lock, "lock untouched");

    // Another platform selection for a locked entry: the lock would change, so refused.
    let text = lab.write_mirrorfile(None, &format!("{first}platforms = [\"linux/arm64\"]\n"));
    let out = lab.ctx.cmd(&["plan", "--locked"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = flat(&stderr(&out));
    let declared = format!("mirrorfile.toml:{}", line_of(&text, "[[images]]"));
    assert!(err.contains("out of date"), "{err}");
    assert!(err.contains(&format!("{up}/lab/app:1.0")), "{err}");
    assert!(err.contains(&declared), "{err}");
    assert_eq!(lab.ctx.read_file("mirrorfile.lock"), lock);
}

#[test]
fn stale_saved_plan_is_refused_and_a_fresh_one_applies() {
    let lab = Lab::new();
    let (up, tgt) = (lab.up(), lab.tgt());
    let image = lab.seed("lab/app:1.0", &app("one"));
    let other = ImageSpec::single("intruder", "linux/amd64").build();
    let body = format!("[[images]]\nref = \"{up}/lab/app:1.0\"\n");
    lab.write_mirrorfile(None, &body);
    // A plan that cannot be saved says so (not that a saved plan cannot be used).
    let out = lab.ctx.cmd(&["plan", "-o", "no/such/dir/plan.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot save the plan to no/such/dir/plan.json"),
        "{}",
        stderr(&out)
    );
    lab.ctx.cmd_ok(&["plan", "-o", "plan.json"]);
    let saved: serde_json::Value =
        serde_json::from_str(&lab.ctx.read_file("plan.json")).expect("plan.json is JSON");
    assert_eq!(saved["kind"], "mirror-plan");
    assert!(saved["fingerprint"]
        .as_str()
        .is_some_and(|f| f.starts_with("blake3:")));
    assert_eq!(
        image_entry(&saved["plan"], &format!("{up}/lab/app:1.0"))["action"],
        "create"
    );

    // Someone pushes to the target tag after the plan was made.
    other.push(&format!("{tgt}/lab/app:1.0"));
    let out = lab.ctx.cmd(&["apply", "plan.json"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = flat(&stderr(&out));
    assert!(err.contains("stale"), "{err}");
    assert!(err.contains("the target changed"), "{err}");
    assert_eq!(
        sha256(&skopeo::inspect_raw(&format!("{tgt}/lab/app:1.0"))),
        other.digest
    );

    // An edited Mirrorfile is named too.
    lab.ctx.cmd_ok(&["plan", "-o", "plan.json"]);
    lab.write_mirrorfile(None, &format!("# reviewed\n{body}"));
    let out = lab.ctx.cmd(&["apply", "plan.json"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stderr(&out).contains("the Mirrorfile changed"),
        "{}",
        describe(&out)
    );

    // A fresh plan applies, and does exactly what it said.
    lab.ctx.cmd_ok(&["plan", "-o", "fresh.json"]);
    let saved: serde_json::Value =
        serde_json::from_str(&lab.ctx.read_file("fresh.json")).expect("fresh.json");
    let planned = image_entry(&saved["plan"], &format!("{up}/lab/app:1.0"));
    assert_eq!(planned["action"], "update");
    let report = lab.ctx.json(&["apply", "fresh.json", "--json"]);
    assert_eq!(num(&report["summary"], "failed"), 0);
    assert_eq!(
        num(&report["summary"], "bytes_pushed"),
        num(&planned["push"], "bytes")
    );
    lab.assert_full_copy("lab/app:1.0", &image);
}

#[test]
fn lock_bytes_are_identical_across_fresh_runs_and_record_the_subset_index() {
    let lab = Lab::new();
    let up = lab.up();
    let tiny = lab.seed(
        "lab/tiny:1.0",
        &ImageSpec::multi("tiny", &["linux/amd64", "linux/arm64", "linux/arm/v7"])
            .attestation(true),
    );
    lab.seed("lab/solo:2", &ImageSpec::single("solo", "linux/amd64"));
    let body = format!(
        "[[images]]\nref = \"{up}/lab/solo:2\"\n\n[[images]]\nref = \"{up}/lab/tiny:1.0\"\nplatforms = [\"linux/arm64\", \"linux/amd64\"]\n"
    );
    lab.write_mirrorfile(None, &body);
    lab.ctx.cmd_ok(&["lock"]);
    let first = lab.ctx.read_file("mirrorfile.lock");

    // Another checkout: fresh cache, fresh directory, same Mirrorfile.
    let other = TestContext::new();
    other.write_mirrorfile(&format!("{}\n{body}", lab.header(None)));
    other.cmd_ok(&["plan"]);
    let second = other.read_file("mirrorfile.lock");
    assert_eq!(
        sha256(first.as_bytes()),
        sha256(second.as_bytes()),
        "{first}\n---\n{second}"
    );
    assert!(!first.contains("T0") && !first.contains(&lab.ctx.root().display().to_string()));

    let plan = lab.ctx.json(&["plan", "--json"]);
    let subset = image_entry(&plan, &format!("{up}/lab/tiny:1.0"))["target_digest"]
        .as_str()
        .expect("target digest")
        .to_string();
    assert_ne!(subset, tiny.digest);
    let entry = locked_image(&lock_toml(&lab.ctx), &format!("{up}/lab/tiny:1.0"));
    assert_eq!(entry["digest"].as_str(), Some(tiny.digest.as_str()));
    let subsets: Vec<&str> = entry["subset_indexes"]
        .as_array()
        .expect("subset_indexes")
        .iter()
        .filter_map(|d| d.as_str())
        .collect();
    assert_eq!(subsets, vec![subset.as_str()]);
    let platforms: Vec<&str> = entry["platforms"]
        .as_array()
        .expect("platforms")
        .iter()
        .filter_map(|c| c["platform"].as_str())
        .collect();
    assert_eq!(platforms, vec!["linux/amd64", "linux/arm64"]);
    // Entries are sorted by source, whatever the Mirrorfile order.
    assert!(first.find("lab/solo:2").expect("solo") < first.find("lab/tiny:1.0").expect("tiny"));
}

#[test]
fn repository_tag_filters_choose_pin_and_update_exactly_the_set() {
    let lab = Lab::new();
    let (up, tgt) = (lab.up(), lab.tgt());
    let mut built = std::collections::BTreeMap::new();
    for tag in ["3.17.0", "3.18.0", "3.19.1", "3.20.0", "latest", "edge"] {
        let image = lab.seed(
            &format!("lab/alpine:{tag}"),
            &ImageSpec::single(&format!("alpine-{tag}"), "linux/amd64"),
        );
        built.insert(tag.to_string(), image);
    }
    for tag in ["v1", "v2", "nightly"] {
        let image = lab.seed(
            &format!("lab/tools:{tag}"),
            &ImageSpec::single(&format!("tools-{tag}"), "linux/arm64"),
        );
        built.insert(format!("tools:{tag}"), image);
    }
    lab.write_mirrorfile(
        Some("m"),
        &format!(
            "[[images]]\nrepository = \"{up}/lab/alpine\"\ntags = {{ semver = \">=3.18\", latest = 2 }}\n\n[[images]]\nrepository = \"{up}/lab/tools\"\ntags = {{ regex = '^v\\d+$' }}\n"
        ),
    );
    let report = lab.ctx.json(&["apply", "--json"]);
    let sources: BTreeSet<String> = report["images"]
        .as_array()
        .expect("images")
        .iter()
        .map(|i| i["source"].as_str().unwrap_or_default().to_string())
        .collect();
    let expected: BTreeSet<String> = [
        "lab/alpine:3.19.1",
        "lab/alpine:3.20.0",
        "lab/tools:v1",
        "lab/tools:v2",
    ]
    .iter()
    .map(|s| format!("{up}/{s}"))
    .collect();
    assert_eq!(sources, expected, "{report:#}");
    assert_eq!(http::tags(&tgt, "m/lab/alpine"), vec!["3.19.1", "3.20.0"]);
    assert_eq!(http::tags(&tgt, "m/lab/tools"), vec!["v1", "v2"]);
    for tag in ["3.19.1", "3.20.0"] {
        lab.assert_full_copy(&format!("m/lab/alpine:{tag}"), &built[tag]);
    }

    let lock = lock_toml(&lab.ctx);
    let repos = lock["repository"].as_array().expect("[[repository]]");
    let alpine = repos
        .iter()
        .find(|r| r["name"].as_str() == Some(&format!("{up}/lab/alpine")))
        .expect("alpine repository entry");
    assert_eq!(
        alpine["filter"].as_str(),
        Some(r#"semver = ">=3.18", latest = 2"#)
    );
    let tags: Vec<&str> = alpine["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .filter_map(|t| t.as_str())
        .collect();
    assert_eq!(tags, vec!["3.19.1", "3.20.0"]);
    for tag in ["3.19.1", "3.20.0"] {
        let entry = locked_image(&lock, &format!("{up}/lab/alpine:{tag}"));
        assert_eq!(entry["digest"].as_str(), Some(built[tag].digest.as_str()));
    }

    // A newer tag upstream: the pinned set holds until `lock --update` takes it.
    let newest = lab.seed(
        "lab/alpine:3.21.0",
        &ImageSpec::single("alpine-3.21.0", "linux/amd64"),
    );
    let plan = lab.ctx.json(&["plan", "--json"]);
    assert_eq!(num(&plan["summary"], "images"), 4, "{plan:#}");
    assert_eq!(num(&plan["summary"], "unchanged"), 4, "{plan:#}");
    let out = stdout(
        &lab.ctx
            .cmd_ok(&["lock", "--update", &format!("{up}/lab/alpine")]),
    );
    assert!(
        out.contains(&format!(
            "~ {up}/lab/alpine: tags added 3.21.0; removed 3.19.1"
        )),
        "{out}"
    );
    let report = lab.ctx.json(&["apply", "--json"]);
    let entry = image_entry(&report, &format!("{up}/lab/alpine:3.21.0"));
    assert_eq!(entry["action"], "create");
    assert_eq!(num(&report["summary"], "images"), 4);
    lab.assert_full_copy("m/lab/alpine:3.21.0", &newest);
}

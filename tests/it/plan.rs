//! `mirror plan`: what would change and how many bytes would move, without touching the target.

use crate::support::context::{describe, stderr};
use crate::support::images::{total_size, ImageSpec};
use crate::support::lab::{image_entry, num, Lab};
use crate::support::skopeo;

#[test]
fn plan_reports_creates_with_sizes_and_pushes_nothing() {
    let lab = Lab::new();
    let (up, tgt) = (lab.up(), lab.tgt());
    let image = lab.seed(
        "lab/tiny:1.0",
        &ImageSpec::multi("tiny", &["linux/amd64", "linux/arm64"]).layer_bytes(20_000),
    );
    lab.write_mirrorfile(
        Some("mirror"),
        &format!("[[images]]\nref = \"{up}/lab/tiny:1.0\"\n"),
    );

    let plan = lab.ctx.json(&["plan", "--json"]);
    assert_eq!(plan["version"], 1);
    let entry = image_entry(&plan, &format!("{up}/lab/tiny:1.0"));
    assert_eq!(entry["target"], format!("{tgt}/mirror/lab/tiny:1.0"));
    assert_eq!(entry["action"], "create");
    assert_eq!(entry["source_digest"], image.digest.as_str());
    assert_eq!(entry["target_digest"], image.digest.as_str());
    assert!(entry["current_digest"].is_null(), "{entry:#}");
    assert_eq!(
        entry["platforms"],
        serde_json::json!(["linux/amd64", "linux/arm64"])
    );
    assert_eq!(entry["missing_platforms"], serde_json::json!([]));
    assert_eq!(entry["warnings"], serde_json::json!([]));
    assert_eq!(num(&entry["fetch"], "bytes"), image.blob_bytes());
    assert_eq!(
        num(&entry["fetch"], "blobs"),
        image.all_blobs().len() as u64
    );
    assert_eq!(num(&entry["push"], "bytes"), image.blob_bytes());
    assert_eq!(num(&entry["push"], "blobs"), image.all_blobs().len() as u64);
    let s = &plan["summary"];
    assert_eq!(num(s, "images"), 1);
    assert_eq!(num(s, "create"), 1);
    assert_eq!(num(s, "update"), 0);
    assert_eq!(num(s, "unchanged"), 0);
    assert_eq!(num(s, "push_bytes"), image.blob_bytes());
    assert_eq!(num(s, "fetch_bytes"), image.blob_bytes());

    let out = lab.ctx.cmd(&["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let out = lab.ctx.cmd(&["plan"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "without --detailed-exitcode\n{}",
        describe(&out)
    );

    assert!(
        lab.target_catalog().is_empty(),
        "plan must not write to the target"
    );
}

/// What a plan says is still to fetch is exactly what the apply after it fetches: the image
/// configs the first plan read to learn platforms are counted apart, and a second plan (its
/// configs now cached) counts none.
#[test]
fn plan_predicts_the_bytes_the_apply_after_it_fetches() {
    let lab = Lab::new();
    let up = lab.up();
    let image = lab.seed(
        "lab/pred:1.0",
        &ImageSpec::multi("predict", &["linux/amd64", "linux/arm64"]).layer_bytes(30_000),
    );
    lab.write_mirrorfile(None, &format!("[[images]]\nref = \"{up}/lab/pred:1.0\"\n"));
    let configs: u64 = image.manifests.iter().map(|m| m.config.size).sum();

    let first = lab.ctx.json(&["plan", "--json"]);
    let s = &first["summary"];
    assert_eq!(num(s, "fetch_bytes"), image.blob_bytes(), "{first:#}");
    assert_eq!(num(s, "fetched_while_planning_bytes"), configs, "{first:#}");
    assert_eq!(
        num(s, "fetched_while_planning_blobs"),
        image.manifests.len() as u64
    );
    // The same from an empty cache, as text.
    std::fs::remove_dir_all(lab.ctx.work().join("cache")).expect("empty the cache");
    let text = lab.ctx.cmd(&["plan"]);
    let said = crate::support::context::stdout(&text);
    assert!(
        said.contains(&format!(
            "(of which {} image configs",
            image.manifests.len()
        )) && said.contains("already fetched while planning"),
        "{}",
        describe(&text)
    );
    let again = lab.ctx.json(&["plan", "--json"]);
    assert_eq!(num(&again["summary"], "fetched_while_planning_bytes"), 0);
    let still_to_fetch = num(&again["summary"], "fetch_bytes");
    assert_eq!(still_to_fetch, image.blob_bytes() - configs, "{again:#}");

    let applied = lab.ctx.json(&["apply", "--json"]);
    assert_eq!(
        num(&applied["summary"], "bytes_fetched"),
        still_to_fetch,
        "{applied:#}"
    );
}

#[test]
fn plan_reads_the_file_given_with_f() {
    let lab = Lab::new();
    let up = lab.up();
    let image = lab.seed("lab/tiny:1.0", &ImageSpec::single("tiny", "linux/amd64"));
    let text = format!(
        "{}\n[[images]]\nref = \"{up}/lab/tiny:1.0\"\n",
        lab.header(None)
    );
    lab.ctx.write_file("release/v1.toml", &text);
    let out = lab.ctx.cmd(&["plan", "--json"]);
    assert_ne!(
        out.status.code(),
        Some(0),
        "no ./mirrorfile.toml\n{}",
        describe(&out)
    );
    let plan = lab.ctx.json(&["plan", "--json", "-f", "release/v1.toml"]);
    assert_eq!(
        image_entry(&plan, &format!("{up}/lab/tiny:1.0"))["source_digest"],
        image.digest.as_str()
    );
}

#[test]
fn missing_platforms_are_reported() {
    let lab = Lab::new();
    let up = lab.up();
    let image = lab.seed(
        "lab/tiny:1.0",
        &ImageSpec::multi("tiny", &["linux/amd64", "linux/arm64", "linux/arm/v7"]),
    );
    lab.write_mirrorfile(
        None,
        &format!(
            "[[images]]\nref = \"{up}/lab/tiny:1.0\"\nplatforms = [\"linux/amd64\", \"linux/s390x\"]\n"
        ),
    );
    let plan = lab.ctx.json(&["plan", "--json"]);
    let entry = image_entry(&plan, &format!("{up}/lab/tiny:1.0"));
    assert_eq!(
        entry["missing_platforms"],
        serde_json::json!(["linux/s390x"]),
        "{entry:#}"
    );
    assert_eq!(entry["platforms"], serde_json::json!(["linux/amd64"]));
    let amd64 = image.blobs_for(&["linux/amd64"], false);
    assert_eq!(num(&entry["push"], "bytes"), total_size(&amd64));
}

#[test]
fn a_moved_upstream_tag_is_an_update() {
    let lab = Lab::new();
    let up = lab.up();
    let old = lab.seed(
        "lab/tiny:1.0",
        &ImageSpec::multi("old", &["linux/amd64", "linux/arm64"]),
    );
    lab.write_mirrorfile(None, &format!("[[images]]\nref = \"{up}/lab/tiny:1.0\"\n"));
    lab.ctx.json(&["apply", "--json"]);

    // Upstream re-tags 1.0 to new content: the lock keeps the old digest (drift) until
    // `mirror lock --update` takes the new one.
    let new = lab.seed(
        "lab/tiny:1.0",
        &ImageSpec::multi("new", &["linux/amd64", "linux/arm64"]),
    );
    let pinned = lab.ctx.json(&["plan", "--json"]);
    let entry = image_entry(&pinned, &format!("{up}/lab/tiny:1.0"));
    assert_eq!(entry["action"], "unchanged", "{entry:#}");
    assert_eq!(entry["drift"]["upstream"], new.digest.as_str());
    lab.ctx.cmd_ok(&["lock", "--update"]);
    let plan = lab.ctx.json(&["plan", "--json"]);
    let entry = image_entry(&plan, &format!("{up}/lab/tiny:1.0"));
    assert_eq!(entry["action"], "update", "{entry:#}");
    assert_eq!(entry["current_digest"], old.digest.as_str());
    assert_eq!(entry["source_digest"], new.digest.as_str());
    assert_eq!(entry["target_digest"], new.digest.as_str());
    assert_eq!(num(&plan["summary"], "update"), 1);
    assert_eq!(num(&entry["push"], "bytes"), new.blob_bytes());

    let report = lab.ctx.json(&["apply", "--json"]);
    assert_eq!(
        image_entry(&report, &format!("{up}/lab/tiny:1.0"))["action"],
        "update"
    );
    assert_eq!(num(&report["summary"], "bytes_pushed"), new.blob_bytes());
    let raw = skopeo::inspect_raw(&format!("{}/lab/tiny:1.0", lab.tgt()));
    assert_eq!(raw, new.bytes);
}

#[test]
fn a_mistyped_flag_exits_1_never_the_changes_pending_code() {
    let lab = Lab::new();
    let out = lab.ctx.cmd(&["plan", "--detailed-exitcode", "--lockd"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stderr(&out).contains("a similar argument exists: '--locked'"),
        "{}",
        describe(&out)
    );
    let help = lab.ctx.cmd(&["plan", "--help"]);
    assert_eq!(help.status.code(), Some(0), "{}", describe(&help));
}

#[test]
fn an_entry_that_takes_a_tag_a_repository_filter_chose_is_warned_about() {
    let lab = Lab::new();
    let up = lab.up();
    lab.seed(
        "lab/tiny:1.0",
        &ImageSpec::single("shadow-tiny", "linux/amd64"),
    );
    let other = lab.seed(
        "lab/other:7",
        &ImageSpec::single("shadow-other", "linux/amd64"),
    );
    lab.write_mirrorfile(
        None,
        &format!(
            "[[images]]\nrepository = \"{up}/lab/tiny\"\ntags = {{ regex = '^1\\.0$' }}\n\n\
             [[images]]\nref = \"{up}/lab/other:7\"\nto = \"lab/tiny:1.0\"\n"
        ),
    );
    let out = lab.ctx.cmd(&["plan", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let err = stderr(&out).replace('\n', " ");
    assert!(
        err.contains("lab/tiny:1.0 is also chosen by the repository filter declared at")
            && err.contains("but the entry declared at")
            && err.contains(&format!(
                "copies {up}/lab/other:7 there; keeping that entry"
            )),
        "{err}"
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("plan --json is JSON");
    let images = plan["images"].as_array().expect("images");
    assert_eq!(images.len(), 1, "{plan:#}");
    assert_eq!(
        images[0]["source_digest"],
        other.digest.as_str(),
        "{plan:#}"
    );
}

#[test]
fn plan_tells_of_new_tags_a_locked_repository_filter_would_choose() {
    let lab = Lab::new();
    let up = lab.up();
    for tag in ["1.0", "1.1"] {
        lab.seed(
            &format!("lab/rel:{tag}"),
            &ImageSpec::single(&format!("rel-{tag}"), "linux/amd64"),
        );
    }
    lab.write_mirrorfile(
        None,
        &format!("[[images]]\nrepository = \"{up}/lab/rel\"\ntags = {{ latest = 2 }}\n"),
    );
    lab.ctx.cmd_ok(&["lock"]);
    let locked = lab.ctx.read_file("mirrorfile.lock");
    let quiet = lab.ctx.cmd_ok(&["plan"]);
    assert!(!stderr(&quiet).contains("moved on"), "{}", describe(&quiet));

    lab.seed("lab/rel:1.2", &ImageSpec::single("rel-1.2", "linux/amd64"));
    let out = lab.ctx.cmd_ok(&["plan"]);
    let err = stderr(&out).replace('\n', " ");
    assert!(
        err.contains(&format!("{up}/lab/rel: upstream tags moved on"))
            && err.contains("the filter `latest = 2` would now add 1.2 and drop 1.0")
            && err.contains(&format!("`mirror lock --update {up}/lab/rel`")),
        "{err}"
    );
    assert_eq!(
        lab.ctx.read_file("mirrorfile.lock"),
        locked,
        "the lock keeps its tags"
    );
}

//! OCI-layout tars under `[[archives]]` (`skopeo copy --all … oci-archive:`, `ctr export`): what
//! the reader does not take (an unnamed or digest-only `index.json` entry, an attestation
//! manifest) is named in a warning in `plan`, `plan --json` and `inspect archive:`, and a bundle
//! `mirror` wrote is refused with the advice to read it as `[[bundles]]`, which keeps its digests.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::support::archives::{oci_layout_entries, tar_of, write_packed, Packing};
use crate::support::context::{describe, flat, stderr, TestContext};
use crate::support::images::{ImageSpec, REF_NAME};
use crate::support::lab::{index_entries, index_platforms, line_of, num, Lab};
use crate::support::skopeo;

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|w| w.as_str().unwrap_or_default().to_string())
        .collect()
}

/// The one warning mentioning `digest`; it must also name the archive and say `why`.
fn warning_for<'a>(warnings: &'a [String], digest: &str, why: &str) -> &'a str {
    let found: Vec<&String> = warnings.iter().filter(|w| w.contains(digest)).collect();
    assert_eq!(found.len(), 1, "one warning for {digest}: {warnings:#?}");
    let warning = found[0].as_str();
    assert!(
        warning.contains("mixed.tar"),
        "names the archive: {warning}"
    );
    assert!(warning.contains(why), "says why ({why}): {warning}");
    warning
}

#[test]
fn oci_archive_entries_not_taken_are_each_named_in_a_warning() {
    let lab = Lab::new();
    let attested = ImageSpec::multi("oci-att", &["linux/amd64", "linux/arm64"])
        .attestation(true)
        .build();
    let attestation = attested.attestation.clone().expect("built with one");
    let unnamed = ImageSpec::single("oci-anon", "linux/amd64").build();
    let pinned = ImageSpec::single("oci-pin", "linux/arm64").build();
    let pinned_name = format!("lab/pinned@{}", pinned.digest);
    let named: &[(&str, &str)] = &[("io.containerd.image.name", "docker.io/lab/att:1")];
    let by_digest: &[(&str, &str)] = &[(REF_NAME, pinned_name.as_str())];
    let entries = oci_layout_entries(&[(named, &attested), (&[], &unnamed), (by_digest, &pinned)]);
    write_packed(
        &lab.ctx.work().join("mixed.tar"),
        &tar_of(&entries),
        Packing::Plain,
    );
    lab.write_mirrorfile(Some("mirror"), "[[archives]]\npath = \"mixed.tar\"\n");

    // plan --json: the named image is planned; the three left out are each a warning.
    let plan = lab.ctx.json(&["plan", "--json"]);
    let images = plan["images"].as_array().expect("images");
    assert_eq!(images.len(), 1, "{plan:#}");
    assert_eq!(
        images[0]["target"],
        format!("{}/mirror/lab/att:1", lab.tgt()),
        "{plan:#}"
    );
    let warnings = strings(&plan["warnings"]);
    assert_eq!(warnings.len(), 3, "{warnings:#?}");
    warning_for(&warnings, &attestation.digest, "attestation manifest");
    warning_for(&warnings, &unnamed.digest, "no image name");
    warning_for(&warnings, &pinned.digest, &pinned_name);

    // plan, as people read it: the same warnings on its output.
    let out = lab.ctx.cmd_ok(&["plan"]);
    let shown = stderr(&out);
    for digest in [&attestation.digest, &unnamed.digest, &pinned.digest] {
        assert!(
            shown
                .lines()
                .any(|l| l.starts_with("warning: mixed.tar: ") && l.contains(digest.as_str())),
            "{digest} not warned about\n{}",
            describe(&out)
        );
    }

    // inspect archive: lists what would be pushed and warns about the rest.
    let found = lab.ctx.json(&["inspect", "--json", "archive:mixed.tar"]);
    let digests: BTreeSet<String> = found["images"]
        .as_array()
        .expect("images")
        .iter()
        .map(|i| i["digest"].as_str().unwrap_or_default().to_string())
        .collect();
    let platforms: BTreeSet<String> = attested
        .manifests
        .iter()
        .map(|m| m.digest.clone())
        .collect();
    assert_eq!(digests, platforms, "{found:#}");
    let warnings = strings(&found["warnings"]);
    warning_for(&warnings, &attestation.digest, "attestation manifest");
    warning_for(&warnings, &unnamed.digest, "no image name");
    warning_for(&warnings, &pinned.digest, &pinned_name);
    let text = String::from_utf8_lossy(&lab.ctx.cmd_ok(&["inspect", "archive:mixed.tar"]).stdout)
        .into_owned();
    assert!(text.contains(&attestation.digest), "{text}");

    // apply: the named image lands, its platform manifests byte for byte; nothing else.
    let report = lab.ctx.json(&["apply", "--json"]);
    assert_eq!(num(&report["summary"], "failed"), 0, "{report:#}");
    let index = skopeo::inspect_raw_json(&format!("{}/mirror/lab/att:1", lab.tgt()));
    assert_eq!(
        index_platforms(&index),
        BTreeSet::from(["linux/amd64".to_string(), "linux/arm64".to_string()])
    );
    let children: BTreeSet<String> = index_entries(&index)
        .iter()
        .map(|e| e["digest"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(children, platforms, "the archive's manifests, unchanged");
    assert_eq!(lab.target_catalog(), ["mirror/lab/att"]);
}

#[test]
fn a_mirror_bundle_under_archives_is_refused_with_the_way_to_read_it() {
    let lab = Lab::new();
    let up = lab.up();
    let image = lab.seed(
        "lab/busybox:1.35",
        &ImageSpec::multi("oci-bundle", &["linux/amd64", "linux/arm64"]).attestation(true),
    );
    // The connected side writes a bundle of it.
    let conn = TestContext::new();
    conn.write_mirrorfile(&format!(
        "[target]\nbundle = \"out.mirror.tar.zst\"\n\n[registry.\"{up}\"]\ntls = \"http\"\n\n\
         [cache]\ndir = \"cache\"\n\n[[images]]\nref = \"{up}/lab/busybox:1.35\"\n"
    ));
    conn.cmd_ok(&["apply"]);
    std::fs::copy(
        conn.work().join("out.mirror.tar.zst"),
        lab.ctx.work().join("out.mirror.tar.zst"),
    )
    .expect("carry the bundle");

    // As [[archives]]: refused, pointing at the entry and at [[bundles]]; nothing pushed.
    let text = lab.write_mirrorfile(None, "[[archives]]\npath = \"out.mirror.tar.zst\"\n");
    let line = line_of(&text, "[[archives]]");
    let out = lab.ctx.cmd(&["apply"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = flat(&out.stderr);
    for needle in [
        "out.mirror.tar.zst is a mirror bundle",
        &format!("mirrorfile.toml:{line}"),
        "[[bundles]]",
        "byte for byte",
    ] {
        assert!(err.contains(needle), "`{needle}` missing:\n{err}");
    }
    assert!(lab.target_catalog().is_empty(), "nothing was pushed");

    // inspect archive: says what it is, too.
    let out = lab.ctx.cmd(&["inspect", "archive:out.mirror.tar.zst"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = flat(&out.stderr);
    assert!(
        err.contains("is a mirror bundle") && err.contains("mirror bundle inspect FILE"),
        "{}",
        describe(&out)
    );

    // Taking the advice keeps the digest, attestation included.
    lab.write_mirrorfile(None, "[[bundles]]\npath = \"out.mirror.tar.zst\"\n");
    let plan = lab.ctx.json(&["plan", "--json"]);
    assert_eq!(
        plan["images"][0]["target_digest"],
        image.digest.as_str(),
        "{plan:#}"
    );
    assert_eq!(plan["warnings"], serde_json::json!([]), "{plan:#}");
}

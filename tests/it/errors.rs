//! Mirrorfile errors: reported on stderr as miette diagnostics naming file:line and the
//! offending text, with a non-zero exit and nothing written to the target.

use crate::support::context::{describe, stderr};
use crate::support::images::ImageSpec;
use crate::support::lab::{line_of, Lab};

/// A lab with one image upstream, so a lenient parser would have something to push.
fn lab() -> Lab {
    let lab = Lab::new();
    lab.seed("lab/tiny:1.0", &ImageSpec::single("tiny", "linux/amd64"));
    lab
}

/// Runs `plan` and `apply`; both must fail, name `location` and `offending` on stderr, and
/// leave the target empty.
fn assert_rejected(lab: &Lab, location: &str, offending: &str) {
    for args in [&["plan"][..], &["apply"][..], &["plan", "--json"][..]] {
        let out = lab.ctx.cmd(args);
        assert!(
            !out.status.success() && out.status.code().is_some(),
            "mirror {args:?} must fail cleanly\n{}",
            describe(&out)
        );
        assert_ne!(
            out.status.code(),
            Some(2),
            "2 means `changes pending`, not an error"
        );
        let err = stderr(&out);
        assert!(
            err.contains(location),
            "mirror {args:?}: stderr lacks `{location}`\n{err}"
        );
        assert!(
            err.contains(offending),
            "mirror {args:?}: stderr lacks `{offending}`\n{err}"
        );
        assert!(!err.contains("panicked"), "mirror {args:?} panicked\n{err}");
        assert!(
            !err.contains('\u{1b}'),
            "NO_COLOR=1 means no escapes\n{err}"
        );
        if args.contains(&"--json") {
            assert_json_error(&out);
            assert_json_location(&out, location);
        }
    }
    assert!(
        lab.target_catalog().is_empty(),
        "an invalid Mirrorfile pushed something"
    );
}

#[test]
fn unknown_key_is_reported_at_its_line() {
    let lab = lab();
    let up = lab.up();
    let text = lab.write_mirrorfile(
        None,
        &format!("[[images]]\nref = \"{up}/lab/tiny:1.0\"\nplatfroms = [\"linux/amd64\"]\n"),
    );
    let line = line_of(&text, "platfroms");
    assert_rejected(&lab, &format!("mirrorfile.toml:{line}"), "platfroms");
}

#[test]
fn bad_reference_is_reported_at_its_line() {
    let lab = lab();
    let up = lab.up();
    let text = lab.write_mirrorfile(
        None,
        &format!(
            "[[images]]\nref = \"{up}/lab/tiny:1.0\"\n\n[[images]]\nref = \"{up}/Lab/Tiny:1.0\"\n"
        ),
    );
    let line = line_of(&text, "Lab/Tiny");
    assert_rejected(&lab, &format!("mirrorfile.toml:{line}"), "Lab/Tiny");
}

/// A Mirrorfile with mistakes in three entries is reported whole: every mistake at its line on
/// stderr, and each in the `--json` document's details with its location.
#[test]
fn every_broken_entry_is_reported_not_only_the_first() {
    let lab = lab();
    let up = lab.up();
    let text = lab.write_mirrorfile(
        None,
        &format!(
            "[[images]]\nref = \"{up}/lab/tiny:1.0\"\nplatforms = [\"linux/amd46\"]\n\n\
             [[images]]\nref = \"{up}/lab/tiny:1.0\"\n\n\
             [[images]]\nref = \"{up}/Lab/Tiny:2.0\"\n\n\
             [[images]]\nlist = \"no-such-list.txt\"\n"
        ),
    );
    let wanted: Vec<usize> = ["linux/amd46", "Lab/Tiny", "no-such-list.txt"]
        .iter()
        .map(|needle| line_of(&text, needle))
        .collect();
    assert_rejected(
        &lab,
        &format!("mirrorfile.toml:{}", wanted[0]),
        "linux/amd46",
    );
    let out = lab.ctx.cmd(&["plan"]);
    let err = stderr(&out);
    for line in &wanted {
        assert!(
            err.contains(&format!("mirrorfile.toml:{line}:")),
            "stderr lacks line {line}\n{err}"
        );
    }
    let out = lab.ctx.cmd(&["plan", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let lines: Vec<u64> = doc["error"]["details"]
        .as_array()
        .map(|details| {
            details
                .iter()
                .filter_map(|d| d["location"]["line"].as_u64())
                .collect()
        })
        .unwrap_or_default();
    let wanted: Vec<u64> = wanted.iter().map(|&l| l as u64).collect();
    assert_eq!(lines, wanted, "{doc:#}");
}

#[test]
fn bad_platform_is_reported_at_its_line() {
    let lab = lab();
    let up = lab.up();
    let text = lab.write_mirrorfile(
        None,
        &format!(
            "[[images]]\nref = \"{up}/lab/tiny:1.0\"\nplatforms = [\"linux/amd64\", \"linux/amd46\"]\n"
        ),
    );
    let line = line_of(&text, "linux/amd46");
    assert_rejected(&lab, &format!("mirrorfile.toml:{line}"), "linux/amd46");
}

#[test]
fn bad_default_platform_is_reported_at_its_line() {
    let lab = lab();
    let up = lab.up();
    let text = lab.write_mirrorfile(
        None,
        &format!("[defaults]\nplatforms = [\"lunix/arm64\"]\n\n[[images]]\nref = \"{up}/lab/tiny:1.0\"\n"),
    );
    let line = line_of(&text, "lunix/arm64");
    assert_rejected(&lab, &format!("mirrorfile.toml:{line}"), "lunix/arm64");
}

#[test]
fn missing_list_file_is_reported_at_its_line() {
    let lab = lab();
    let up = lab.up();
    let text = lab.write_mirrorfile(
        None,
        &format!(
            "[[images]]\nref = \"{up}/lab/tiny:1.0\"\n\n[[images]]\nlist = \"k3s-images.txt\"\n"
        ),
    );
    let line = line_of(&text, "k3s-images.txt");
    assert_rejected(&lab, &format!("mirrorfile.toml:{line}"), "k3s-images.txt");
}

#[test]
fn bad_reference_in_a_list_file_names_the_list_line() {
    let lab = lab();
    let up = lab.up();
    let list = format!("# release images\n{up}/lab/tiny:1.0  # ok\n\n{up}/Lab/Tiny:1.0\n");
    lab.ctx.write_file("images.txt", &list);
    lab.write_mirrorfile(None, "[[images]]\nlist = \"images.txt\"\n");
    let line = line_of(&list, "Lab/Tiny");
    assert_rejected(&lab, &format!("images.txt:{line}"), "Lab/Tiny");
}

#[test]
fn malformed_toml_is_reported_at_its_line() {
    let lab = lab();
    let up = lab.up();
    let text = lab.write_mirrorfile(
        None,
        &format!("[[images]]\nref = \"{up}/lab/tiny:1.0\nto = 3\n"),
    );
    let line = line_of(&text, "lab/tiny:1.0");
    assert_rejected(&lab, &format!("mirrorfile.toml:{line}"), "lab/tiny:1.0");
}

/// A `--json` command that fails before its report still writes one JSON document to stdout:
/// `{"version": 1, "error": {"message", "help", "details": [{"message", "help"}]}}`. Returns
/// the message and each detail's message and help, one per line.
fn assert_json_error(out: &std::process::Output) -> String {
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e})\n{}", describe(out)));
    assert_eq!(doc["version"], 1, "{doc:#}");
    let message = doc["error"]["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "{doc:#}");
    let details = doc["error"]["details"].as_array().expect("details list");
    let mut text = message.to_string();
    for detail in details {
        for key in ["message", "help"] {
            text.push('\n');
            text.push_str(detail[key].as_str().unwrap_or_default());
        }
    }
    text
}

/// The `--json` error document points where stderr does: `location` = `FILE:LINE`, as
/// `{"file", "line", "column"}` with `file` ending in FILE.
fn assert_json_location(out: &std::process::Output, location: &str) {
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let (file, line) = location.rsplit_once(':').expect("FILE:LINE");
    let at = &doc["error"]["location"];
    assert!(
        at["file"].as_str().is_some_and(|f| f.ends_with(file)),
        "location.file should name {file}: {doc:#}"
    );
    assert_eq!(
        at["line"].as_u64().map(|l| l.to_string()).as_deref(),
        Some(line),
        "{doc:#}"
    );
    assert!(at["column"].as_u64().is_some_and(|c| c >= 1), "{doc:#}");
}

/// A command line clap refuses still gives a `--json` caller its one document on stdout.
#[test]
fn a_bad_flag_with_json_is_a_json_error_document() {
    let lab = lab();
    let out = lab.ctx.cmd(&["plan", "--json", "--bogus"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let message = assert_json_error(&out);
    assert!(message.contains("--bogus"), "{message}");
    assert!(stderr(&out).contains("--bogus"), "{}", describe(&out));
    // Without --json, stdout stays empty.
    let out = lab.ctx.cmd(&["plan", "--bogus"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(out.stdout.is_empty(), "{}", describe(&out));
}

/// `-f` naming a file that is not there is an error for the cache commands too: falling back to
/// the default cache without that project's lock would let `gc --apply` delete what it pins.
#[test]
fn a_missing_named_mirrorfile_is_an_error_for_cache_gc_and_inspect() {
    let lab = lab();
    lab.write_mirrorfile(
        None,
        &format!("[[images]]\nref = \"{}/lab/tiny:1.0\"\n", lab.up()),
    );
    lab.ctx.cmd_ok(&["apply"]);
    for args in [
        &["-f", "typo.toml", "cache", "gc", "--apply"][..],
        &["cache", "verify", "-f", "typo.toml"][..],
        &["-f", "typo.toml", "inspect", "lab/tiny:1.0"][..],
    ] {
        let out = lab.ctx.cmd(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", describe(&out));
        assert!(
            stderr(&out).contains("no Mirrorfile at typo.toml"),
            "{args:?}: {}",
            describe(&out)
        );
    }
}

#[test]
fn a_json_plan_that_cannot_resolve_says_why_on_stdout() {
    let lab = lab();
    let text = lab.write_mirrorfile(
        None,
        &format!("[[images]]\nref = \"{}/lab/tiny:no-such-tag\"\n", lab.up()),
    );
    let out = lab.ctx.cmd(&["plan", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let message = assert_json_error(&out);
    assert!(message.contains("lab/tiny:no-such-tag"), "{message}");
    // The entry's own advice comes along, not only the summary's.
    assert!(message.contains("check the tag"), "{message}");
    // And where the entry is declared (its `[[images]]` line, the one above its `ref`).
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let at = &doc["error"]["details"][0]["location"];
    assert!(
        at["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("mirrorfile.toml")),
        "{doc:#}"
    );
    assert_eq!(
        at["line"].as_u64(),
        Some(line_of(&text, "no-such-tag") as u64 - 1),
        "{doc:#}"
    );
}

#[test]
fn missing_mirrorfile_is_an_error_naming_it() {
    let lab = lab();
    let out = lab.ctx.cmd(&["plan"]);
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        stderr(&out).contains("mirrorfile.toml"),
        "{}",
        describe(&out)
    );
    assert!(lab.target_catalog().is_empty());
}

#[test]
fn bundle_inspect_json_explains_a_failure_on_stdout_too() {
    let lab = lab();
    let out = lab.ctx.cmd(&["bundle", "inspect", "--json", "no-such.tar"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let message = assert_json_error(&out);
    assert!(message.contains("no-such.tar"), "{message}");
}

#[test]
fn a_cache_command_on_a_missing_directory_fails_and_creates_nothing() {
    let lab = lab();
    for command in ["verify", "gc"] {
        let out = lab
            .ctx
            .cmd(&["cache", "--dir", "no-such-cache", command, "--json"]);
        assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
        let message = assert_json_error(&out);
        assert!(
            message.contains("there is no cache at no-such-cache"),
            "{message}"
        );
        assert!(!lab.ctx.work().join("no-such-cache").exists());
    }
}

//! Snapshots of what users read: the plan (terraform-like `+`/`~`/`=`), the apply summary, and
//! the main error messages. Hosts, temp paths and durations are redacted; the images come from
//! the deterministic builder, so digests and sizes are stable.

use crate::support::context::{stderr, stdout};
use crate::support::images::ImageSpec;
use crate::support::lab::Lab;

/// Redacts the two registries by role, temp paths, and `in 1.2s` durations.
fn redact(lab: &Lab, text: &str) -> String {
    let text = text
        .replace(&lab.up(), "[UPSTREAM]")
        .replace(&lab.tgt(), "[TARGET]");
    let text = lab.ctx.redact(&text);
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        match line.find(" requests in ") {
            Some(pos) => {
                out.push_str(&line[..pos]);
                out.push_str(" requests in [ELAPSED]\n");
            }
            None => out.push_str(line),
        }
    }
    out
}

#[test]
fn plan_and_apply_output() {
    let lab = Lab::new();
    let up = lab.up();
    let platforms = ["linux/amd64", "linux/arm64", "linux/arm/v7", "linux/s390x"];
    lab.seed("lab/kept:1.0", &ImageSpec::multi("kept", &platforms));
    lab.seed(
        "lab/moving:1.0",
        &ImageSpec::single("moving-a", "linux/amd64"),
    );
    let body = format!(
        "[defaults]\nplatforms = [\"linux/amd64\", \"linux/arm64\", \"linux/arm/v7\"]\n\n\
         [[images]]\nref = \"{up}/lab/kept:1.0\"\n\n[[images]]\nref = \"{up}/lab/moving:1.0\"\n"
    );
    lab.write_mirrorfile(Some("mirror"), &body);
    insta::assert_snapshot!(
        "plan_first",
        redact(&lab, &stdout(&lab.ctx.cmd_ok(&["plan"])))
    );
    let applied = lab.ctx.cmd_ok(&["apply", "--progress", "none"]);
    insta::assert_snapshot!("apply_first", redact(&lab, &stdout(&applied)));

    // Upstream moves one tag and a new image appears.
    lab.seed(
        "lab/moving:1.0",
        &ImageSpec::single("moving-b", "linux/amd64").layer_bytes(3000),
    );
    lab.seed("lab/new:1.0", &ImageSpec::multi("new", &platforms[..2]));
    lab.write_mirrorfile(
        Some("mirror"),
        &format!("{body}\n[[images]]\nref = \"{up}/lab/new:1.0\"\n"),
    );
    // The lock keeps the moved tag at its old digest and the plan says so ...
    insta::assert_snapshot!(
        "plan_drift",
        redact(&lab, &stdout(&lab.ctx.cmd_ok(&["plan"])))
    );
    // ... until `lock --update` takes the new digest.
    lab.ctx
        .cmd_ok(&["lock", "--update", &format!("{up}/lab/moving:1.0")]);
    insta::assert_snapshot!(
        "plan_mixed",
        redact(&lab, &stdout(&lab.ctx.cmd_ok(&["plan"])))
    );
}

#[test]
fn main_error_messages() {
    let lab = Lab::new();
    let up = lab.up();
    lab.seed("lab/tiny:1.0", &ImageSpec::single("tiny", "linux/amd64"));

    // A tag that does not exist upstream: image, origin line and host.
    lab.write_mirrorfile(None, &format!("[[images]]\nref = \"{up}/lab/tiny:9.9\"\n"));
    let out = lab.ctx.cmd(&["plan"]);
    assert_eq!(out.status.code(), Some(1));
    insta::assert_snapshot!("error_missing_tag", redact(&lab, &stderr(&out)));

    // init over an existing file.
    let out = lab.ctx.cmd(&["init"]);
    assert_eq!(out.status.code(), Some(1));
    insta::assert_snapshot!("error_init_exists", redact(&lab, &stderr(&out)));

    // inspect of something that is not a reference.
    let out = lab.ctx.cmd(&["inspect", "Not/A:Ref:"]);
    assert_eq!(out.status.code(), Some(1));
    insta::assert_snapshot!("error_inspect_bad_reference", redact(&lab, &stderr(&out)));

    // No Mirrorfile at all.
    let out = lab.ctx.cmd(&["plan", "-f", "missing.toml"]);
    assert_eq!(out.status.code(), Some(1));
    insta::assert_snapshot!("error_no_mirrorfile", redact(&lab, &stderr(&out)));
}

//! The small commands: `init`, `schema`, `completions`, `man`, `registries-yaml`, and the
//! plain progress lines of `apply`.

use std::path::Path;

use crate::support::context::{describe, stderr, stdout};
use crate::support::images::ImageSpec;
use crate::support::lab::Lab;

#[test]
fn init_writes_a_starter_from_a_list_and_never_overwrites() {
    let lab = Lab::new();
    lab.ctx.write_file(
        "k3s-images.txt",
        "# k3s\ndocker.io/rancher/pause:3.1\nrancher/klipper-lb:v0.3.4\n",
    );
    lab.ctx.cmd_ok(&[
        "init",
        "--from",
        "k3s-images.txt",
        "--registry",
        "10.1.2.3:5000",
    ]);
    let text = lab.ctx.read_file("mirrorfile.toml");
    assert!(text.contains("registry = \"10.1.2.3:5000\""), "{text}");
    assert!(
        text.contains("ref = \"docker.io/rancher/pause:3.1\""),
        "{text}"
    );
    assert!(
        text.contains("ref = \"docker.io/rancher/klipper-lb:v0.3.4\""),
        "{text}"
    );
    let model = mirror::mirrorfile::load(&lab.ctx.work().join("mirrorfile.toml"))
        .expect("the starter is a valid Mirrorfile");
    assert_eq!(model.images.len(), 2);

    let out = lab.ctx.cmd(&["init"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stderr(&out).contains("already exists"),
        "{}",
        describe(&out)
    );
    assert_eq!(lab.ctx.read_file("mirrorfile.toml"), text, "file untouched");

    // A bad line in the list is reported at its line.
    lab.ctx
        .write_file("bad.txt", "rancher/pause:3.1\nNot A Ref\n");
    let out = lab
        .ctx
        .cmd(&["init", "-f", "other.toml", "--from", "bad.txt"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(stderr(&out).contains("bad.txt:2"), "{}", describe(&out));
    assert!(!lab.ctx.work().join("other.toml").exists());
}

#[test]
fn schema_completions_and_man_come_from_the_real_definitions() {
    let lab = Lab::new();
    let schema = stdout(&lab.ctx.cmd_ok(&["schema"]));
    let committed = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/mirrorfile.schema.json"),
    )
    .expect("committed schema");
    assert_eq!(schema, committed);

    for shell in ["bash", "zsh", "fish"] {
        let script = stdout(&lab.ctx.cmd_ok(&["completions", shell]));
        for word in ["registries-yaml", "inspect", "detailed-exitcode"] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
    }
    let man = stdout(&lab.ctx.cmd_ok(&["man"]));
    assert!(man.contains(".TH mirror 1"), "{man}");
    assert!(man.contains("registries\\-yaml"), "{man}");
}

#[test]
fn apply_plain_progress_reports_streamed_bytes_and_images() {
    let lab = Lab::new();
    let up = lab.up();
    let image = lab.seed(
        "lab/prog:1.0",
        &ImageSpec::single("prog", "linux/amd64").layer_bytes(50_000),
    );
    lab.write_mirrorfile(None, &format!("[[images]]\nref = \"{up}/lab/prog:1.0\"\n"));
    let out = lab.ctx.cmd_ok(&["apply", "--progress", "plain"]);
    let err = stderr(&out);
    // Layers are fetched then pushed; the config was read while planning, so it is only pushed.
    // Each is counted once, under its own name (not fetch plus push as one "moved" figure).
    let m = &image.manifests[0];
    let layers: u64 = m.layers.iter().map(|l| l.size).sum();
    let expected = format!(
        "tagged {}/lab/prog:1.0 (1/1 images; fetched {}, pushed {} so far)",
        lab.tgt(),
        mirror::report::human_bytes(layers),
        mirror::report::human_bytes(layers + m.config.size)
    );
    assert!(err.contains(&expected), "want `{expected}` in\n{err}");
    assert!(!err.contains('\u{1b}'), "no escapes into a pipe\n{err}");

    // Bars on a non-terminal fall back to lines (see apply.rs): no escapes, no failure.
    let bars = lab.ctx.cmd_ok(&["apply", "--progress", "bars"]);
    assert!(!stderr(&bars).contains('\u{1b}'), "{}", describe(&bars));

    let quiet = lab.ctx.cmd_ok(&["apply", "-q"]);
    assert!(stderr(&quiet).is_empty(), "{}", describe(&quiet));
}

#[test]
fn a_mirrorfile_with_nothing_to_mirror_says_so() {
    let lab = Lab::new();
    lab.ctx.write_file(
        "mirrorfile.toml",
        &format!(
            "[target]\nregistry = \"{}\"\n\n[registry.\"{}\"]\ntls = \"http\"\n",
            lab.tgt(),
            lab.tgt()
        ),
    );
    let out = lab.ctx.cmd(&["plan"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        stderr(&out)
            .contains("lists nothing to mirror: add [[images]], [[archives]] or [[bundles]]"),
        "{}",
        describe(&out)
    );
    assert!(stdout(&out).contains("0 to create"), "{}", describe(&out));
}

#[test]
fn a_closed_stderr_is_not_a_crash() {
    let lab = Lab::new();
    lab.ctx
        .write_file("mirrorfile.toml", "[target]\nregistry = \"127.0.0.1:1\"\n");
    // A pipe whose reading end is already gone, as after `mirror plan 2>&1 | head -1`: every
    // write to it fails with EPIPE.
    let plan_into_closed_stderr = || {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let out = lab.ctx.command().arg("plan").stderr(writer).output();
        out.expect("run mirror plan").status.code()
    };
    assert_eq!(
        plan_into_closed_stderr(),
        Some(0),
        "a warning on a closed stderr"
    );
    lab.ctx
        .write_file("mirrorfile.toml", "[target]\nregistry = 1\n");
    assert_eq!(
        plan_into_closed_stderr(),
        Some(1),
        "an error on a closed stderr"
    );
}

#[test]
fn verbose_levels_show_resolutions_and_then_every_request() {
    let lab = Lab::new();
    let up = lab.up();
    let image = lab.seed(
        "lab/verbose:1",
        &ImageSpec::single("verbose", "linux/amd64"),
    );
    lab.write_mirrorfile(None, &format!("[[images]]\nref = \"{up}/lab/verbose:1\"\n"));
    let quiet = lab.ctx.cmd_ok(&["plan"]);
    assert!(
        !stderr(&quiet).contains("resolved to"),
        "{}",
        describe(&quiet)
    );
    std::fs::remove_file(lab.ctx.work().join("mirrorfile.lock")).expect("remove the lock");
    let info = lab.ctx.cmd_ok(&["plan", "-v"]);
    let wanted = format!("{up}/lab/verbose:1: resolved to {}", image.digest);
    assert!(stderr(&info).contains(&wanted), "{}", describe(&info));
    assert!(
        !stderr(&info).contains("HEAD manifest"),
        "{}",
        describe(&info)
    );
    let debug = lab.ctx.cmd_ok(&["plan", "-vv"]);
    let request = format!("{up}: HEAD manifest lab/verbose:1: HTTP 200");
    assert!(stderr(&debug).contains(&request), "{}", describe(&debug));
    assert!(
        stderr(&debug).contains("pinned by the lock"),
        "{}",
        describe(&debug)
    );
}

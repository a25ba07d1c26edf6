//! Local sources in `mirrorfile.lock`: `[[archive]]` per archive file read and `[[bundle]]` per
//! bundle, with the file's sha256 as on disk and the digests it produced; `--locked` refuses a
//! replaced, missing or differently-resolving file before anything is pushed; `plan` shows it.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use crate::support::archives::{
    classic_entries, ctr_export, docker25_entries, tar_of, write_packed, ArchImage, Packing,
};
use crate::support::context::{describe, flat, stdout, TestContext};
use crate::support::images::{sha256, write_layout, BuiltImage, ImageSpec};
use crate::support::lab::{entry_platform, image_entry, index_entries, line_of, num, Lab};
use crate::support::registry::Registry;
use crate::support::skopeo;

const AMD: &str = "images/app-amd64.tar";
const ARM: &str = "images/app-arm64.tar.gz";
const TARGETS: [&str; 2] = ["mirror/bench/app-00:1.0", "mirror/bench/app-01:1.0"];

fn images(arch: &str, platform: &str) -> Vec<ArchImage> {
    ["app-00", "app-01"]
        .iter()
        .map(|name| {
            let reference = format!("bench/{name}:1.0");
            ArchImage::new(&[&reference], platform, &[&format!("{name}-{arch}")])
        })
        .collect()
}

/// A classic `docker save` (plain tar) for amd64 and a Docker 25+ save, gzipped, for arm64.
fn write_archives(work: &Path) {
    fs::create_dir_all(work.join("images")).expect("images dir");
    let amd = tar_of(&classic_entries(&images("amd64", "linux/amd64")));
    write_packed(&work.join(AMD), &amd, Packing::Plain);
    let arm = tar_of(&docker25_entries(&images("arm64", "linux/arm64")));
    write_packed(&work.join(ARM), &arm, Packing::Gzip);
}

fn setup(lab: &Lab) -> String {
    write_archives(lab.ctx.work());
    lab.write_mirrorfile(
        Some("mirror"),
        "[[archives]]\npath = \"images/app-*.tar*\"\n",
    )
}

/// The file's sha256 as `sha256sum` prints it, and its size.
fn on_disk(path: &Path) -> (String, u64) {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let hex = sha256(&bytes).trim_start_matches("sha256:").to_string();
    (hex, bytes.len() as u64)
}

fn lock_toml(ctx: &TestContext, name: &str) -> toml::Value {
    toml::from_str(&ctx.read_file(name)).expect("the lock is TOML")
}

/// The `[[table]]` entry (`archive`, `bundle`) of the lock for `path`.
fn entry(lock: &toml::Value, table: &str, path: &str) -> toml::Value {
    lock[table]
        .as_array()
        .unwrap_or_else(|| panic!("no [[{table}]] entries in {lock:#?}"))
        .iter()
        .find(|e| e["path"].as_str() == Some(path))
        .unwrap_or_else(|| panic!("no [[{table}]] entry for {path} in {lock:#?}"))
        .clone()
}

/// The `[[…image]]` of `entry` for `target`: its digest and (platform, child) pairs.
fn produced(entry: &toml::Value, target: &str) -> (String, BTreeSet<(String, String)>) {
    let image = entry["image"]
        .as_array()
        .expect("image tables")
        .iter()
        .find(|i| i["target"].as_str() == Some(target))
        .unwrap_or_else(|| panic!("no image {target} in {entry:#?}"))
        .clone();
    let platforms = image["platforms"]
        .as_array()
        .expect("platforms")
        .iter()
        .map(|p| {
            let s = |k: &str| p[k].as_str().expect("string").to_string();
            (s("platform"), s("digest"))
        })
        .collect();
    (
        image["digest"].as_str().expect("digest").to_string(),
        platforms,
    )
}

fn targets_of(entry: &toml::Value) -> Vec<String> {
    entry["image"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i["target"].as_str())
                .map(String::from)
        })
        .into_iter()
        .flatten()
        .collect()
}

/// What the target registry holds at `reference`: its digest and, per platform, its child.
fn on_target(tgt: &str, reference: &str) -> (String, BTreeSet<(String, String)>) {
    let raw = skopeo::inspect_raw(&format!("{tgt}/{reference}"));
    let index: serde_json::Value = serde_json::from_slice(&raw).expect("JSON");
    let children = index_entries(&index)
        .iter()
        .map(|e| {
            (
                entry_platform(e),
                e["digest"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    (sha256(&raw), children)
}

/// Whether `text` (terminal output) says `needle`, whatever miette's wrapping split where.
fn says(text: &str, needle: &str) -> bool {
    let squeeze = |s: &str| s.split_whitespace().collect::<String>();
    squeeze(text).contains(&squeeze(needle))
}

fn child(children: &BTreeSet<(String, String)>, platform: &str) -> BTreeSet<(String, String)> {
    children
        .iter()
        .filter(|(p, _)| p == platform)
        .cloned()
        .collect()
}

#[test]
fn archives_are_recorded_with_their_file_sha256_and_the_digests_pushed_byte_for_byte() {
    let lab = Lab::new();
    setup(&lab);
    // An absolute Mirrorfile path makes the glob match absolute file names: the lock must still
    // name them as written, relative to the Mirrorfile.
    let abs = lab.ctx.work().join("mirrorfile.toml");
    let abs = abs.to_str().expect("UTF-8 path");
    let report = lab.ctx.json(&["-f", abs, "apply", "--json"]);
    assert_eq!(num(&report["summary"], "failed"), 0, "{report:#}");
    let text = lab.ctx.read_file("mirrorfile.lock");
    let root = lab.ctx.root().display().to_string();
    assert!(
        !text.contains(&root),
        "no machine path in the lock:\n{text}"
    );
    assert!(text.contains("\nversion = 1\n"), "{text}");
    let lock = lock_toml(&lab.ctx, "mirrorfile.lock");
    assert!(
        lock.get("image").is_none(),
        "archives are not registry pins"
    );
    assert_eq!(lock["archive"].as_array().map(Vec::len), Some(2), "{text}");

    let tgt = lab.tgt();
    for (path, platform) in [(AMD, "linux/amd64"), (ARM, "linux/arm64")] {
        let archive = entry(&lock, "archive", path);
        let (hex, size) = on_disk(&lab.ctx.work().join(path));
        assert_eq!(archive["sha256"].as_str(), Some(hex.as_str()), "{path}");
        assert_eq!(archive["size"].as_integer(), Some(size as i64), "{path}");
        assert_eq!(targets_of(&archive), TARGETS, "{path}: sorted targets");
        for target in TARGETS {
            let (digest, platforms) = produced(&archive, target);
            let (pushed, children) = on_target(&tgt, target);
            assert_eq!(digest, pushed, "{path} {target}: the index on the target");
            assert_eq!(platforms.len(), 1, "{path} gave one platform");
            assert_eq!(platforms, child(&children, platform), "{path} {target}");
        }
    }

    // Again (relative Mirrorfile path), `mirror lock`, and a lock made from scratch: same bytes.
    lab.ctx.cmd_ok(&["apply"]);
    assert_eq!(lab.ctx.read_file("mirrorfile.lock"), text, "second apply");
    let out = lab.ctx.cmd_ok(&["lock"]);
    assert!(stdout(&out).contains("2 archive(s)"), "{}", describe(&out));
    assert_eq!(lab.ctx.read_file("mirrorfile.lock"), text, "mirror lock");
    fs::remove_file(lab.ctx.work().join("mirrorfile.lock")).expect("remove lock");
    lab.ctx.cmd_ok(&["lock"]);
    assert_eq!(lab.ctx.read_file("mirrorfile.lock"), text, "fresh lock");
}

#[test]
fn a_replaced_archive_is_refused_by_locked_before_any_push_and_shown_by_plan() {
    let lab = Lab::new();
    let mirrorfile = setup(&lab);
    lab.ctx.cmd_ok(&["apply"]);
    let first_lock = lab.ctx.read_file("mirrorfile.lock");
    let tgt = lab.tgt();
    let (before, _) = on_target(&tgt, TARGETS[0]);
    let catalog = lab.target_catalog();
    let amd = lab.ctx.work().join(AMD);
    let original = fs::read(&amd).expect("archive");
    let (old_hex, _) = on_disk(&amd);

    // Another save under the same name: app-00 with one more layer (a ctr export, so the
    // manifest that would be pushed is known here).
    let app = ArchImage::new(
        &["docker.io/bench/app-00:1.0"],
        "linux/amd64",
        &["app-00-amd64", "extra-amd64"],
    );
    let export = ctr_export(&app);
    write_packed(&amd, &tar_of(&export.entries), Packing::Plain);
    let (new_hex, _) = on_disk(&amd);
    let declared = format!("mirrorfile.toml:{}", line_of(&mirrorfile, "[[archives]]"));
    for command in ["apply", "plan"] {
        let out = lab.ctx.cmd(&[command, "--locked"]);
        assert_eq!(out.status.code(), Some(1), "{command}: {}", describe(&out));
        let err = flat(&out.stderr);
        for needle in [
            "--locked",
            &format!("archive {AMD}: not the file the lock recorded"),
            &format!("locked sha256 {old_hex}"),
            &format!("on disk sha256 {new_hex}"),
            &declared,
        ] {
            assert!(says(&err, needle), "{command}: `{needle}` in\n{err}");
        }
    }
    assert_eq!(
        lab.ctx.read_file("mirrorfile.lock"),
        first_lock,
        "lock untouched"
    );
    assert_eq!(on_target(&tgt, TARGETS[0]).0, before, "tag not moved");
    let new_manifest = format!("{tgt}/mirror/bench/app-00@{}", export.manifest);
    assert!(
        skopeo::try_inspect_raw(&new_manifest).is_none(),
        "nothing pushed"
    );
    assert_eq!(lab.target_catalog(), catalog);

    // Without --locked, apply says so in its plan, pushes the new save and rewrites the lock.
    let out = lab.ctx.cmd_ok(&["apply"]);
    let note = format!(
        "archive {AMD} is not the file mirrorfile.lock recorded (sha256:{} → sha256:{})",
        &old_hex[..12],
        &new_hex[..12]
    );
    assert!(says(&stdout(&out), &note), "{}", describe(&out));
    let lock = lock_toml(&lab.ctx, "mirrorfile.lock");
    let archive = entry(&lock, "archive", AMD);
    assert_eq!(archive["sha256"].as_str(), Some(new_hex.as_str()));
    assert_eq!(
        targets_of(&archive),
        [TARGETS[0]],
        "the new save has app-00 only"
    );
    let (digest, platforms) = produced(&archive, TARGETS[0]);
    let (pushed, _) = on_target(&tgt, TARGETS[0]);
    assert_eq!(digest, pushed);
    assert_ne!(pushed, before);
    let amd64 = ("linux/amd64".to_string(), export.manifest.clone());
    assert_eq!(platforms, BTreeSet::from([amd64]));

    // The original back: plan shows the change the other way, and the lock is the first one.
    fs::write(&amd, &original).expect("restore");
    let plan = lab.ctx.json(&["plan", "--json"]);
    let image = image_entry(&plan, "docker.io/bench/app-00:1.0");
    assert_eq!(image["action"], "update", "{image:#}");
    let back = format!(
        "archive {AMD} is not the file mirrorfile.lock recorded (sha256:{} → sha256:{})",
        &new_hex[..12],
        &old_hex[..12]
    );
    let warnings = image["warnings"].to_string();
    assert!(warnings.contains(&back), "{warnings}");
    assert_eq!(lab.ctx.read_file("mirrorfile.lock"), first_lock);
}

#[test]
fn locked_refuses_a_missing_archive_and_other_digests_from_the_same_file() {
    let lab = Lab::new();
    let mirrorfile = setup(&lab);
    lab.ctx.cmd_ok(&["lock"]);
    let first_lock = lab.ctx.read_file("mirrorfile.lock");
    lab.ctx.cmd_ok(&["plan", "--locked"]);

    let arm = lab.ctx.work().join(ARM);
    let saved = fs::read(&arm).expect("archive");
    fs::remove_file(&arm).expect("remove");
    let out = lab.ctx.cmd(&["plan", "--locked"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = flat(&out.stderr);
    let missing = format!("- archive {ARM}: in the lock, no longer read");
    assert!(says(&err, &missing), "{err}");
    fs::write(&arm, saved).expect("restore");
    lab.ctx.cmd_ok(&["plan", "--locked"]);

    // Same files, other layers: zstd instead of gzip gives other digests, which the lock notices.
    lab.ctx.write_mirrorfile(&mirrorfile.replace(
        "[[archives]]\n",
        "[defaults]\ncompression = \"zstd\"\n\n[[archives]]\n",
    ));
    let out = lab.ctx.cmd(&["plan", "--locked"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = flat(&out.stderr);
    let amd_entry = entry(&lock_toml(&lab.ctx, "mirrorfile.lock"), "archive", AMD);
    let (old, _) = produced(&amd_entry, TARGETS[0]);
    let changed = format!(
        "~ archive {AMD}: same file, other result: {} {old} →",
        TARGETS[0]
    );
    assert!(says(&err, &changed), "{err}");
    assert!(lab.target_catalog().is_empty(), "nothing pushed");
    assert_eq!(lab.ctx.read_file("mirrorfile.lock"), first_lock);
}

/// `[target] bundle = "site.tar"` made from the OCI layout at `layout` (a `[[bundles]]`
/// directory source, through `make.toml`).
fn make_bundle(ctx: &TestContext, layout: &str) {
    ctx.write_file(
        "make.toml",
        &format!("[target]\nbundle = \"site.tar\"\n\n[cache]\ndir = \"cache\"\n\n[[bundles]]\npath = \"{layout}\"\n"),
    );
    ctx.cmd_ok(&["-f", "make.toml", "apply"]);
}

fn children_of(image: &BuiltImage) -> BTreeSet<(String, String)> {
    image
        .all_manifests()
        .iter()
        .map(|m| (m.platform.clone(), m.digest.clone()))
        .collect()
}

#[test]
fn a_bundle_source_is_recorded_and_a_replaced_bundle_refused_by_locked() {
    let target = Registry::start();
    let tgt = target.host();
    let ctx = TestContext::new();
    let two = ["linux/amd64", "linux/arm64"];
    let one = ImageSpec::multi("one", &two).build();
    write_layout(&ctx.work().join("layout-1"), &[("lab/one:1.0", &one)]);
    make_bundle(&ctx, "layout-1");
    // The layout directory is recorded without a file digest.
    let made = lock_toml(&ctx, "make.lock");
    let dir = entry(&made, "bundle", "layout-1");
    assert!(dir.get("sha256").is_none(), "{dir:#?}");
    assert_eq!(
        produced(&dir, "lab/one:1.0"),
        (one.digest.clone(), children_of(&one))
    );

    let mirrorfile = format!(
        "[target]\nregistry = \"{tgt}\"\n\n[registry.\"{tgt}\"]\ntls = \"http\"\n\n[cache]\ndir = \"cache\"\n\n[[bundles]]\npath = \"site.tar\"\n"
    );
    ctx.write_mirrorfile(&mirrorfile);
    ctx.cmd_ok(&["apply"]);
    let first_lock = ctx.read_file("mirrorfile.lock");
    let lock = lock_toml(&ctx, "mirrorfile.lock");
    let bundle = entry(&lock, "bundle", "site.tar");
    let (old_hex, size) = on_disk(&ctx.work().join("site.tar"));
    assert_eq!(bundle["sha256"].as_str(), Some(old_hex.as_str()));
    assert_eq!(bundle["size"].as_integer(), Some(size as i64));
    let (digest, platforms) = produced(&bundle, "lab/one:1.0");
    assert_eq!(digest, one.digest);
    assert_eq!(
        on_target(&tgt, "lab/one:1.0"),
        (one.digest.clone(), platforms)
    );

    // A newer bundle under the same name, with other content for the tag.
    let other = ImageSpec::multi("other", &two).build();
    write_layout(&ctx.work().join("layout-2"), &[("lab/one:1.0", &other)]);
    make_bundle(&ctx, "layout-2");
    let (new_hex, _) = on_disk(&ctx.work().join("site.tar"));
    assert_ne!(new_hex, old_hex);
    let out = ctx.cmd(&["apply", "--locked"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = flat(&out.stderr);
    let declared = format!("mirrorfile.toml:{}", line_of(&mirrorfile, "[[bundles]]"));
    for needle in [
        "bundle site.tar: not the file the lock recorded",
        &format!("locked sha256 {old_hex}"),
        &format!("on disk sha256 {new_hex}"),
        &declared,
    ] {
        assert!(says(&err, needle), "`{needle}` in\n{err}");
    }
    assert_eq!(
        on_target(&tgt, "lab/one:1.0").0,
        one.digest,
        "tag not moved"
    );
    assert_eq!(ctx.read_file("mirrorfile.lock"), first_lock);

    // Without --locked: applied, and the lock records the new file and digest.
    ctx.cmd_ok(&["apply"]);
    let bundle = entry(&lock_toml(&ctx, "mirrorfile.lock"), "bundle", "site.tar");
    assert_eq!(bundle["sha256"].as_str(), Some(new_hex.as_str()));
    assert_eq!(produced(&bundle, "lab/one:1.0").0, other.digest);
    assert_eq!(on_target(&tgt, "lab/one:1.0").0, other.digest);
}

//! Lowering tests: what a Mirrorfile means, checked on the model.

use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::{find, load, parse, ErrorKind, MirrorfileError};
use crate::model::{
    ImageSource, IndexMode, Model, PlatformSelection, RegistrySettings, Target, TlsMode,
};
use crate::oci::Platform;

const TARGET: &str = "[target]\nregistry = \"registry.example.internal:5000\"\n";

/// A temp dir holding `files`; the Mirrorfile path inside it.
fn setup(files: &[(&str, &str)]) -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        let path = dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(path, text).expect("write");
    }
    let path = dir.path().join("mirrorfile.toml");
    (dir, path)
}

fn lower(text: &str, files: &[(&str, &str)]) -> (TempDir, Model) {
    let (dir, path) = setup(files);
    match parse(&path, text) {
        Ok(model) => (dir, model),
        Err(e) => panic!("{e:?}"),
    }
}

fn lower_err(text: &str, files: &[(&str, &str)]) -> MirrorfileError {
    let (_dir, path) = setup(files);
    parse(&path, text).expect_err("should fail")
}

/// `source -> repo:tag` for each image, for compact assertions.
fn names(model: &Model) -> Vec<String> {
    model.images.iter().map(name).collect()
}

fn name(image: &ImageSource) -> String {
    let tag = image.target_tag.as_deref().unwrap_or("-");
    format!("{} -> {}:{tag}", image.reference, image.target_repository)
}

fn platforms(list: &[&str]) -> PlatformSelection {
    PlatformSelection::Only(
        list.iter()
            .map(|p| p.parse::<Platform>().expect("platform"))
            .collect(),
    )
}

#[test]
fn minimal_file_gets_defaults() {
    let text = format!("{TARGET}\n[[images]]\nref = \"alpine:3.20\"\n");
    let (dir, model) = lower(&text, &[]);
    assert_eq!(
        model.target,
        Target::Registry {
            host: "registry.example.internal:5000".into(),
            prefix: None
        }
    );
    assert_eq!(
        names(&model),
        ["docker.io/library/alpine:3.20 -> library/alpine:3.20"]
    );
    let image = &model.images[0];
    assert_eq!(image.platforms, PlatformSelection::All);
    assert_eq!(image.index_mode, IndexMode::Rewrite);
    assert_eq!(image.origin.file, dir.path().join("mirrorfile.toml"));
    assert_eq!(image.origin.line, 4);
    assert!(model.registries.is_empty());
    assert_eq!(model.cache_dir, None);
}

#[test]
fn defaults_apply_and_entries_override() {
    let text = format!(
        "{TARGET}[defaults]\nplatforms = [\"linux/amd64\", \"linux/arm64\", \"linux/arm/v7\"]\nindex = \"sparse\"\n\
         [[images]]\nref = \"a.io/x:1\"\n\
         [[images]]\nref = \"a.io/y:1\"\nplatforms = [\"linux/amd64\"]\nindex = \"rewrite\"\n"
    );
    let (_dir, model) = lower(&text, &[]);
    assert_eq!(
        model.images[0].platforms,
        platforms(&["linux/amd64", "linux/arm64", "linux/arm/v7"])
    );
    assert_eq!(model.images[0].index_mode, IndexMode::Sparse);
    assert_eq!(model.images[1].platforms, platforms(&["linux/amd64"]));
    assert_eq!(model.images[1].index_mode, IndexMode::Rewrite);
}

#[test]
fn an_entry_can_take_all_platforms_when_defaults_narrow_them() {
    let text = format!(
        "{TARGET}[defaults]\nplatforms = [\"linux/amd64\"]\n\
         [[images]]\nref = \"a.io/x:1\"\n\
         [[images]]\nref = \"a.io/y:1\"\nplatforms = \"all\"\n"
    );
    let (_dir, model) = lower(&text, &[]);
    assert_eq!(model.images[0].platforms, platforms(&["linux/amd64"]));
    assert_eq!(model.images[1].platforms, PlatformSelection::All);
    let (_dir, model) = lower(
        &format!("{TARGET}[defaults]\nplatforms = \"all\"\n[[images]]\nref = \"a.io/x:1\"\n"),
        &[],
    );
    assert_eq!(model.images[0].platforms, PlatformSelection::All);
    // Any other word is refused at the value, naming what is allowed.
    let err = lower_err(
        &format!("{TARGET}[[images]]\nref = \"a.io/x:1\"\nplatforms = \"any\"\n"),
        &[],
    );
    assert!(err.message().contains(r#"or "all""#), "{}", err.message());
    assert_eq!(
        err.kind(),
        ErrorKind::Invalid,
        "a value error, not a syntax error"
    );
}

#[test]
fn prefix_and_to() {
    let text = "[target]\nregistry = \"reg.local\"\nprefix = \"mirror\"\n\
        [[images]]\nref = \"rancher/mirrored-pause:3.6\"\n\
        [[images]]\nref = \"rancher/mirrored-pause:3.6\"\nto = \"infra/pause\"\n\
        [[images]]\nref = \"rancher/mirrored-pause:3.6\"\nto = \"infra/pause:stable\"\n";
    let (_dir, model) = lower(text, &[]);
    assert_eq!(
        model.target,
        Target::Registry {
            host: "reg.local".into(),
            prefix: Some("mirror".into())
        }
    );
    assert_eq!(
        names(&model),
        [
            "docker.io/rancher/mirrored-pause:3.6 -> mirror/rancher/mirrored-pause:3.6",
            "docker.io/rancher/mirrored-pause:3.6 -> mirror/infra/pause:3.6",
            "docker.io/rancher/mirrored-pause:3.6 -> mirror/infra/pause:stable",
        ]
    );
}

#[test]
fn digests() {
    let d = format!("sha256:{}", "a".repeat(64));
    let text = format!(
        "{TARGET}[[images]]\nref = \"alpine@{d}\"\n\
         [[images]]\nref = \"ghcr.io/a/b:1.0@{d}\"\n\
         [[images]]\nref = \"alpine@{d}\"\nto = \"x/alpine:pinned\"\n"
    );
    let (_dir, model) = lower(&text, &[]);
    assert_eq!(model.images[0].target_tag, None);
    assert_eq!(model.images[0].target_repository, "library/alpine");
    assert_eq!(model.images[1].target_tag.as_deref(), Some("1.0"));
    assert_eq!(model.images[1].target_repository, "a/b");
    assert_eq!(model.images[2].target_tag.as_deref(), Some("pinned"));
}

#[test]
fn list_files_expand_in_place() {
    let list = "# k3s images\r\n\r\ndocker.io/rancher/mirrored-pause:3.6\r\n  rancher/klipper-lb:v0.4.9  # lb\r\n";
    let text = format!(
        "{TARGET}[[images]]\nref = \"alpine:1\"\n\
         [[images]]\nlist = \"lists/k3s.txt\"\nplatforms = [\"linux/arm64\"]\nindex = \"sparse\"\n\
         [[images]]\nref = \"alpine:2\"\n"
    );
    let (dir, model) = lower(&text, &[("lists/k3s.txt", list)]);
    assert_eq!(
        names(&model),
        [
            "docker.io/library/alpine:1 -> library/alpine:1",
            "docker.io/rancher/mirrored-pause:3.6 -> rancher/mirrored-pause:3.6",
            "docker.io/rancher/klipper-lb:v0.4.9 -> rancher/klipper-lb:v0.4.9",
            "docker.io/library/alpine:2 -> library/alpine:2",
        ]
    );
    let pause = &model.images[1];
    assert_eq!(pause.origin.file, dir.path().join("lists/k3s.txt"));
    assert_eq!((pause.origin.line, model.images[2].origin.line), (3, 4));
    assert_eq!(pause.platforms, platforms(&["linux/arm64"]));
    assert_eq!(pause.index_mode, IndexMode::Sparse);
    assert_eq!(model.images[0].platforms, PlatformSelection::All);
}

#[test]
fn a_byte_order_mark_is_not_part_of_the_text() {
    let text = format!("\u{feff}{TARGET}[[images]]\nlist = \"win.txt\"\n");
    let (_dir, model) = lower(&text, &[("win.txt", "\u{feff}a.io/x:1\r\na.io/y:2\r\n")]);
    assert_eq!(names(&model), ["a.io/x:1 -> x:1", "a.io/y:2 -> y:2"]);
}

#[test]
fn exact_duplicates_are_dropped() {
    let list = "alpine:3.20\ndocker.io/library/alpine:3.20\nbusybox\n";
    let text = format!(
        "{TARGET}[[images]]\nref = \"index.docker.io/library/alpine:3.20\"\n\
         [[images]]\nlist = \"a.txt\"\n[[images]]\nlist = \"a.txt\"\n"
    );
    let (_dir, model) = lower(&text, &[("a.txt", list)]);
    assert_eq!(
        names(&model),
        [
            "docker.io/library/alpine:3.20 -> library/alpine:3.20",
            "docker.io/library/busybox:latest -> library/busybox:latest",
        ]
    );
    assert_eq!(model.images[0].origin.line, 3, "the first declaration wins");
}

#[test]
fn conflicts_are_errors() {
    let text = format!(
        "{TARGET}[[images]]\nref = \"a.io/x/alpine:1\"\n[[images]]\nref = \"b.io/x/alpine:1\"\n"
    );
    let err = lower_err(&text, &[]);
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(
        err.message().contains("mirrorfile.toml:4 and"),
        "{}",
        err.message()
    );
    assert!(
        err.message().ends_with("mirrorfile.toml:6)"),
        "{}",
        err.message()
    );

    // Renamed onto an existing name.
    let text = format!(
        "{TARGET}[[images]]\nref = \"alpine:1\"\n[[images]]\nref = \"busybox:1\"\nto = \"library/alpine\"\n"
    );
    assert_eq!(lower_err(&text, &[]).kind(), ErrorKind::Conflict);

    // Same image twice with different platforms.
    let text = format!(
        "{TARGET}[[images]]\nref = \"alpine:1\"\n[[images]]\nref = \"alpine:1\"\nplatforms = [\"linux/amd64\"]\n"
    );
    let err = lower_err(&text, &[]);
    assert!(
        err.message().contains("declared twice"),
        "{}",
        err.message()
    );
}

#[test]
fn registries_and_paths() {
    let text = format!(
        "{TARGET}[registry.\"registry.example.internal:5000\"]\ntls = \"http\"\n\
         [registry.\"index.docker.io\"]\ntls = \"skip-verify\"\nca = \"certs/ca.pem\"\n\
         [cache]\ndir = \"cache\"\n"
    );
    let (dir, model) = lower(&text, &[("certs/ca.pem", "pem")]);
    assert_eq!(
        model.registry_settings("registry.example.internal:5000"),
        RegistrySettings {
            tls: TlsMode::Http,
            ..RegistrySettings::default()
        }
    );
    assert_eq!(
        model.registry_settings("docker.io"),
        RegistrySettings {
            tls: TlsMode::SkipVerify,
            ca: Some(dir.path().join("certs/ca.pem")),
            ..RegistrySettings::default()
        }
    );
    assert_eq!(model.cache_dir, Some(dir.path().join("cache")));

    let text = format!("{TARGET}[registry.\"docker.io\"]\n[registry.\"registry-1.docker.io\"]\n");
    assert_eq!(lower_err(&text, &[]).kind(), ErrorKind::Conflict);
    let text = format!("{TARGET}[registry.\"nohost\"]\n");
    assert_eq!(lower_err(&text, &[]).kind(), ErrorKind::Invalid);
}

#[test]
fn entry_level_rules() {
    let cases = [
        "[[images]]\nlist = \"a.txt\"\nto = \"x\"\n",
        "[[images]]\nplatforms = [\"linux/amd64\"]\n",
        "[[images]]\nref = \"alpine\"\nto = \"a@sha256:00\"\n",
        "[[images]]\nlist = \"empty.txt\"\n",
    ];
    for case in cases {
        let text = format!("{TARGET}{case}");
        let err = lower_err(
            &text,
            &[("a.txt", "alpine\n"), ("empty.txt", "# nothing\n")],
        );
        assert_eq!(err.kind(), ErrorKind::Invalid, "{case}");
    }
    let err = lower_err("[[images]]\nref = \"alpine\"\n", &[]);
    assert!(err.message().contains("[target]"), "{}", err.message());
    let err = lower_err("[target]\nprefix = \"x\"\n", &[]);
    assert!(err.message().contains("[target]"), "{}", err.message());
    let err = lower_err("[target]\nregistry = \"r.io\"\nprefix = \"Bad\"\n", &[]);
    assert!(err.message().contains("prefix"), "{}", err.message());
}

#[test]
fn find_and_load() {
    let cwd = Path::new("/work/project");
    assert_eq!(find(None, cwd), cwd.join("mirrorfile.toml"));
    assert_eq!(
        find(Some(Path::new("other.toml")), cwd),
        PathBuf::from("other.toml")
    );

    let (dir, path) = setup(&[("mirrorfile.toml", TARGET)]);
    assert!(load(&path).is_ok());
    let missing = dir.path().join("nope.toml");
    let err = load(&missing).expect_err("missing");
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(err.message().contains("nope.toml"), "{}", err.message());
    let help = miette::Diagnostic::help(&err)
        .map(|h| h.to_string())
        .unwrap_or_default();
    assert!(help.contains("-f"), "{help}");
}

#[test]
fn the_documented_example() {
    let text = r#"
[target]
registry = "registry.example.internal:5000"   # required
prefix = "mirror"

[registry."registry.example.internal:5000"]
tls = "verify"
ca = "certs/ca.pem"

[defaults]
platforms = ["linux/amd64", "linux/arm64", "linux/arm/v7"]
index = "rewrite"

[[images]]
ref = "docker.io/rancher/mirrored-pause:3.6"
platforms = ["linux/amd64"]
to = "infra/pause"
index = "sparse"

[[images]]
list = "k3s-images.txt"

[cache]
dir = "/var/cache/mirror"
"#;
    let files = [
        ("certs/ca.pem", "pem"),
        (
            "k3s-images.txt",
            "docker.io/rancher/mirrored-coredns-coredns:1.10.1\n",
        ),
    ];
    let (_dir, model) = lower(text, &files);
    assert_eq!(
        names(&model),
        [
            "docker.io/rancher/mirrored-pause:3.6 -> mirror/infra/pause:3.6",
            "docker.io/rancher/mirrored-coredns-coredns:1.10.1 -> mirror/rancher/mirrored-coredns-coredns:1.10.1",
        ]
    );
    assert_eq!(
        model.images[0].origin.line, 14,
        "the `[[images]]` header line"
    );
    assert_eq!(
        model.images[1].platforms.clone(),
        platforms(&["linux/amd64", "linux/arm64", "linux/arm/v7"])
    );
    assert_eq!(model.cache_dir, Some(PathBuf::from("/var/cache/mirror")));
}

#[test]
fn layout_and_bundle_targets_and_bundle_sources() {
    let (dir, model) = lower(
        "[target]\nlayout = \"out\"\nprefix = \"m\"\n[[images]]\nref = \"alpine:1\"\n",
        &[],
    );
    assert_eq!(
        model.target,
        Target::Layout {
            path: dir.path().join("out"),
            prefix: Some("m".into())
        }
    );
    assert_eq!(
        names(&model),
        ["docker.io/library/alpine:1 -> m/library/alpine:1"]
    );

    let text = "[target]\nbundle = \"k3s.mirror.tar.zst\"\n\n[defaults]\nplatforms = [\"linux/arm64\"]\n\n[[bundles]]\npath = \"old.tar\"\n\n[[bundles]]\npath = \"dir\"\nplatforms = [\"linux/amd64\"]\n";
    let (dir, model) = lower(text, &[("old.tar", ""), ("dir/index.json", "{}")]);
    assert!(
        matches!(&model.target, Target::Bundle { path, prefix: None } if path == &dir.path().join("k3s.mirror.tar.zst"))
    );
    assert_eq!(model.bundles.len(), 2);
    assert_eq!(model.bundles[0].path, dir.path().join("old.tar"));
    assert_eq!(model.bundles[0].platforms, platforms(&["linux/arm64"]));
    assert_eq!(model.bundles[0].origin.line, 7);
    assert_eq!(model.bundles[1].platforms, platforms(&["linux/amd64"]));

    // Exactly one kind of target.
    let err = lower_err("[target]\nregistry = \"r.io\"\nbundle = \"b.tar\"\n", &[]);
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(
        err.message().contains("both `registry` and `bundle`"),
        "{}",
        err.message()
    );
    let err = lower_err("[target]\nbundle = \"b.zip\"\n", &[]);
    assert!(
        err.message().contains("`.tar` or `.tar.zst`"),
        "{}",
        err.message()
    );
    let err = lower_err(
        &format!("{TARGET}[[bundles]]\npath = \"nope.tar.zst\"\n"),
        &[],
    );
    assert!(
        err.message().contains("does not exist"),
        "{}",
        err.message()
    );
    let err = lower_err(
        &format!("{TARGET}[[bundles]]\nplatforms = [\"linux/amd64\"]\n"),
        &[],
    );
    assert!(err.message().contains("path"), "{}", err.message());
}

#[test]
fn repository_entries_lower_to_filtered_repositories() {
    let text = format!(
        "{TARGET}prefix = \"m\"\n\n[[images]]\nrepository = \"alpine\"\ntags = {{ regex = '^3\\.', semver = \">=3.18\", latest = 3 }}\nplatforms = [\"linux/arm64\"]\n"
    );
    let (_dir, model) = lower(&text, &[]);
    assert!(model.images.is_empty());
    let repo = &model.repositories[0];
    assert_eq!(repo.name(), "docker.io/library/alpine");
    assert_eq!(repo.target_repository, "m/library/alpine");
    assert_eq!(repo.platforms, platforms(&["linux/arm64"]));
    assert_eq!(repo.origin.line, 5);
    assert_eq!(
        repo.filter.describe(),
        r#"regex = "^3\\.", semver = ">=3.18", latest = 3"#
    );
    let image = repo.image("3.20").expect("image of a tag");
    assert_eq!(
        name(&image),
        "docker.io/library/alpine:3.20 -> m/library/alpine:3.20"
    );
}

#[test]
fn repository_entry_mistakes_point_at_the_value() {
    let cases = [
        (
            "repository = \"alpine:3.20\"\ntags = { latest = 1 }",
            "names one image",
            "\"alpine:3.20\"",
        ),
        ("repository = \"alpine\"", "needs `tags`", "\"alpine\""),
        (
            "repository = \"alpine\"\ntags = { latest = 0 }",
            "positive",
            "0",
        ),
        (
            "repository = \"alpine\"\ntags = { regex = \"(\" }",
            "invalid regex",
            "\"(\"",
        ),
        (
            "repository = \"alpine\"\ntags = { semver = \">=three\" }",
            "invalid semver",
            "\">=three\"",
        ),
        (
            "ref = \"alpine\"\ntags = { latest = 1 }",
            "needs `repository`",
            "{ latest = 1 }",
        ),
        (
            "repository = \"alpine\"\nto = \"x\"\ntags = { latest = 1 }",
            "cannot be used",
            "\"x\"",
        ),
    ];
    for (body, message, underlined) in cases {
        let text = format!("{TARGET}\n[[images]]\n{body}\n");
        let err = lower_err(&text, &[]);
        assert_eq!(err.kind(), ErrorKind::Invalid, "{body}");
        assert!(err.message().contains(message), "{body}: {}", err.message());
        let label = miette::Diagnostic::labels(&err)
            .and_then(|mut l| l.next())
            .expect("a label");
        assert_eq!(
            &text[label.offset()..label.offset() + label.len()],
            underlined,
            "{body}"
        );
    }
}

#[test]
fn archive_paths_may_be_absolute_or_relative() {
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let absolute = elsewhere.path().join("images-amd64.tar");
    std::fs::write(&absolute, b"").expect("write");
    let text = format!(
        "[target]\nregistry = \"r.example:5000\"\n\n[[archives]]\npath = \"{}\"\n\n[[archives]]\npath = \"local-*.tar\"\n",
        absolute.display()
    );
    let (_dir, model) = lower(&text, &[("local-arm64.tar", "")]);
    let found: Vec<PathBuf> = model
        .archives
        .iter()
        .flat_map(|a| a.files.clone())
        .collect();
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0], absolute);
    assert!(found[1].ends_with("local-arm64.tar"), "{found:?}");
}

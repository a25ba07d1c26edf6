//! Snapshots of rendered errors: what the user actually sees, caret and all.
//!
//! Rendered with miette's Unicode theme without colour, wide enough that nothing wraps (so the
//! temp dir can be redacted to `[DIR]`).

use miette::{GraphicalReportHandler, GraphicalTheme};

use super::parse;

const TARGET: &str = "[target]\nregistry = \"registry.example.internal:5000\"\n";

/// Parses `text` as `[DIR]/mirrorfile.toml` next to `files` and renders the error.
fn render(text: &str, files: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, contents) in files {
        std::fs::write(dir.path().join(name), contents).expect("write");
    }
    let path = dir.path().join("mirrorfile.toml");
    let err = parse(&path, text).expect_err("should fail");
    let mut out = String::new();
    GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor())
        .with_width(1000)
        .render_report(&mut out, &err)
        .expect("render");
    let dir = dir.path().display().to_string();
    out.replace(&dir, "[DIR]")
}

macro_rules! snapshot {
    ($name:ident, $text:expr) => {
        snapshot!($name, $text, &[]);
    };
    ($name:ident, $text:expr, $files:expr) => {
        #[test]
        fn $name() {
            insta::assert_snapshot!(render(&$text, $files));
        }
    };
}

snapshot!(
    unknown_top_level_key,
    format!("{TARGET}\n[defualts]\nindex = \"sparse\"\n")
);
snapshot!(
    unknown_image_key,
    format!("{TARGET}\n[[images]]\nref = \"alpine:3.20\"\nplatform = [\"linux/amd64\"]\n")
);
snapshot!(
    bad_reference,
    format!("{TARGET}\n[[images]]\nref = \"docker.io/Rancher/pause:3.6\"\n")
);
snapshot!(
    bad_platform,
    format!("{TARGET}\n[defaults]\nplatforms = [\"linux/amd64\", \"linux/arm65\"]\n")
);
snapshot!(
    empty_platforms,
    format!("{TARGET}\n[[images]]\nref = \"alpine:3.20\"\nplatforms = []\n")
);
snapshot!(
    missing_list_file,
    format!("{TARGET}\n[[images]]\nlist = \"k3s-images.txt\"\n")
);
snapshot!(
    bad_list_line,
    format!("{TARGET}\n[[images]]\nlist = \"k3s-images.txt\"\n"),
    &[(
        "k3s-images.txt",
        "# k3s v1.30\r\ndocker.io/rancher/mirrored-pause:3.6\r\n\r\ndocker.io/rancher/klipper-lb:v0.4.9:extra  # lb\r\n"
    )]
);
snapshot!(
    ref_and_list,
    format!("{TARGET}\n[[images]]\nref = \"alpine:3.20\"\nlist = \"k3s-images.txt\"\n")
);
snapshot!(
    to_with_list,
    format!("{TARGET}\n[[images]]\nlist = \"a.txt\"\nto = \"infra/x\"\n"),
    &[("a.txt", "alpine\n")]
);
snapshot!(
    toml_syntax,
    format!("{TARGET}\n[[images]\nref = \"alpine\"\n")
);
snapshot!(
    bad_tls,
    format!("{TARGET}\n[registry.\"registry.example.internal:5000\"]\ntls = \"insecure\"\n")
);
snapshot!(
    missing_ca,
    format!("{TARGET}\n[registry.\"ghcr.io\"]\nca = \"certs/ca.pem\"\n")
);
snapshot!(missing_target, "[[images]]\nref = \"alpine\"\n");
snapshot!(
    conflicting_targets,
    format!(
        "{TARGET}\n[[images]]\nref = \"docker.io/library/alpine:3.20\"\n\n\
         [[images]]\nref = \"ghcr.io/acme/alpine:3.20\"\nto = \"library/alpine\"\n"
    )
);
snapshot!(
    conflict_with_list_file,
    format!("{TARGET}\n[[images]]\nref = \"ghcr.io/rancher/mirrored-pause:3.6\"\n\n[[images]]\nlist = \"k3s-images.txt\"\n"),
    &[("k3s-images.txt", "docker.io/rancher/klipper-lb:v0.4.9\ndocker.io/rancher/mirrored-pause:3.6\n")]
);
snapshot!(wrong_type, "[target]\nregistry = 5000\n");
snapshot!(
    bad_tag_regex,
    format!("{TARGET}\n[[images]]\nrepository = \"docker.io/library/alpine\"\ntags = {{ regex = \"^3.(\" }}\n")
);
snapshot!(
    bad_tag_semver,
    format!("{TARGET}\n[[images]]\nrepository = \"docker.io/library/alpine\"\ntags = {{ semver = \">=three\" }}\n")
);

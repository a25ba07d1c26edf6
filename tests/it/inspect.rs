//! `mirror inspect`: platforms, digests, sizes and layers of a registry image, an OCI layout or
//! an image archive, and `--raw` byte-identical to `skopeo inspect --raw` (for an archive: to
//! what `apply` pushes).

use crate::support::archives::{
    classic_entries, ctr_export, tar_of, write_packed, ArchImage, Packing,
};
use crate::support::context::{describe, stderr};
use crate::support::images::{sha256, ImageSpec};
use crate::support::lab::Lab;
use crate::support::skopeo;

#[test]
fn inspect_registry_image_lists_platforms_and_raw_matches_skopeo() {
    let lab = Lab::new();
    let up = lab.up();
    let image = lab.seed(
        "lab/multi:1.0",
        &ImageSpec::multi("insp", &["linux/amd64", "linux/arm64", "linux/arm/v7"]).layers(2),
    );
    // Registry settings (plain HTTP for the local registry) come from ./mirrorfile.toml.
    lab.write_mirrorfile(None, "");
    let reference = format!("{up}/lab/multi:1.0");

    let raw = lab.ctx.cmd_ok(&["inspect", "--raw", &reference]).stdout;
    assert_eq!(raw, image.bytes, "--raw prints the exact stored bytes");
    assert_eq!(raw, skopeo::inspect_raw(&reference), "same bytes as skopeo");

    let found = lab.ctx.json(&["inspect", "--json", &reference]);
    assert_eq!(found["digest"], image.digest.as_str());
    assert_eq!(found["size"], image.bytes.len() as u64);
    let images = found["images"].as_array().expect("images array");
    let platforms: Vec<&str> = images
        .iter()
        .map(|i| i["platform"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64", "linux/arm/v7"]);
    for (entry, built) in images.iter().zip(&image.manifests) {
        assert_eq!(entry["digest"], built.digest.as_str());
        assert_eq!(entry["config"]["digest"], built.config.digest.as_str());
        let layers: Vec<&str> = entry["layers"]
            .as_array()
            .expect("layers")
            .iter()
            .map(|l| l["digest"].as_str().unwrap_or(""))
            .collect();
        let expected: Vec<&str> = built.layers.iter().map(|l| l.digest.as_str()).collect();
        assert_eq!(layers, expected, "{}", built.platform);
        let size = built.config.size + built.layers.iter().map(|l| l.size).sum::<u64>();
        assert_eq!(entry["size"], size, "{}", built.platform);
    }

    let text =
        String::from_utf8_lossy(&lab.ctx.cmd_ok(&["inspect", &reference]).stdout).into_owned();
    assert!(text.contains(&image.digest), "{text}");
    assert!(text.contains("linux/arm/v7"), "{text}");
}

#[test]
fn inspect_without_a_mirrorfile_takes_tls_from_the_flag() {
    let lab = Lab::new();
    let up = lab.up();
    let image = lab.seed(
        "lab/plain:1",
        &ImageSpec::multi("tlsflag", &["linux/amd64"]),
    );
    let reference = format!("{up}/lab/plain:1");
    // No Mirrorfile: HTTPS is the default, and a plain-HTTP registry fails the handshake.
    let out = lab.ctx.cmd(&["inspect", &reference]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stderr(&out).contains("it speaks plain HTTP: add `--tls http`"),
        "{}",
        describe(&out)
    );
    let found = lab
        .ctx
        .json(&["inspect", "--tls", "http", "--json", &reference]);
    assert_eq!(found["digest"], image.digest.as_str());
}

#[test]
fn inspect_oci_layout_and_clear_errors() {
    let lab = Lab::new();
    let up = lab.up();
    let image = lab.seed(
        "lab/multi:2.0",
        &ImageSpec::multi("layout", &["linux/amd64", "linux/arm64"]),
    );
    let dir = lab.ctx.work().join("layout");
    skopeo::copy_to_oci_dir(&format!("{up}/lab/multi:2.0"), &dir, "v2");
    let location = format!("oci:{}:v2", dir.display());

    let raw = lab.ctx.cmd_ok(&["inspect", "--raw", &location]).stdout;
    assert_eq!(raw, image.bytes, "layout bytes as skopeo wrote them");
    let found = lab.ctx.json(&["inspect", "--json", &location]);
    assert_eq!(found["digest"], image.digest.as_str());
    assert_eq!(found["images"].as_array().map(Vec::len), Some(2));

    // An unknown name says which names exist.
    let out = lab
        .ctx
        .cmd(&["inspect", &format!("oci:{}:nope", dir.display())]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = stderr(&out);
    assert!(
        squash(&err).contains(&squash("has no image named `nope`")) && err.contains("v2"),
        "{err}"
    );
    assert_eq!(
        err.matches(&dir.display().to_string()).count(),
        1,
        "the layout is named once: {err}"
    );
    assert!(
        !err.contains("registry is reachable"),
        "no network advice: {err}"
    );

    // No name, two images: which ones, and how to pick.
    skopeo::copy_to_oci_dir(&format!("{up}/lab/multi:2.0"), &dir, "v2-again");
    let out = lab.ctx.cmd(&["inspect", &format!("oci:{}", dir.display())]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = squash(&stderr(&out));
    assert!(
        no_space(&err).contains(&no_space(
            "holds 2 images; name the one you mean (`oci:DIR:NAME`, or `oci-archive:FILE:NAME` \
             for a bundle): v2, v2-again"
        )),
        "{err}"
    );

    // A missing tag on a registry names the image and the host.
    lab.write_mirrorfile(None, "");
    let missing = format!("{up}/lab/multi:9.9");
    let out = lab.ctx.cmd(&["inspect", &missing]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = stderr(&out);
    assert!(err.contains("lab/multi") && err.contains(&up), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    // A missing archive names the file.
    let out = lab.ctx.cmd(&["inspect", "archive:images.tar"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = stderr(&out);
    assert!(
        err.contains("images.tar") && err.contains("no such file"),
        "{err}"
    );
}

/// The digests of an inspection's `images`, in order.
fn image_digests(found: &serde_json::Value) -> Vec<String> {
    found["images"]
        .as_array()
        .unwrap_or_else(|| panic!("no images in {found:#}"))
        .iter()
        .map(|i| i["digest"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn inspect_oci_archive_reads_a_bundle_by_the_name_apply_prints() {
    let lab = Lab::new();
    let up = lab.up();
    let image = lab.seed(
        "lab/busybox:1.35",
        &ImageSpec::multi(
            "ociarchive",
            &["linux/amd64", "linux/arm64", "linux/arm/v7"],
        )
        .attestation(true),
    );
    lab.ctx.write_mirrorfile(&format!(
        "[target]\nbundle = \"out.mirror.tar.zst\"\n\n[registry.\"{up}\"]\ntls = \"http\"\n\n\
         [cache]\ndir = \"cache\"\n\n[[images]]\nref = \"{up}/lab/busybox:1.35\"\n"
    ));
    let report = lab.ctx.json(&["apply", "--json"]);
    // The spelling mirror prints for a bundle target: oci-archive:FILE:NAME, NAME with a colon.
    let target = report["images"][0]["target"]
        .as_str()
        .unwrap_or_else(|| panic!("no target in {report:#}"))
        .to_string();
    assert!(
        target.starts_with("oci-archive:")
            && target.ends_with("out.mirror.tar.zst:lab/busybox:1.35"),
        "{target}"
    );

    let from_registry = lab
        .ctx
        .json(&["inspect", "--json", &format!("{up}/lab/busybox:1.35")]);
    let from_bundle = lab.ctx.json(&["inspect", "--json", &target]);
    assert_eq!(from_registry["digest"], image.digest.as_str());
    assert_eq!(
        from_bundle["digest"], from_registry["digest"],
        "the bundle holds the registry's index, digest for digest"
    );
    assert_eq!(image_digests(&from_bundle), image_digests(&from_registry));
    assert_eq!(
        lab.ctx.cmd_ok(&["inspect", "--raw", &target]).stdout,
        image.bytes,
        "--raw: the index bytes as upstream serves them"
    );
    // The file alone names its only image.
    let only = lab
        .ctx
        .json(&["inspect", "--json", "oci-archive:out.mirror.tar.zst"]);
    assert_eq!(only["digest"], image.digest.as_str());

    // A name the bundle lacks: which names it has, nothing about registries.
    let out = lab
        .ctx
        .cmd(&["inspect", "oci-archive:out.mirror.tar.zst:lab/busybox:9"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = squash(&stderr(&out));
    assert!(
        err.contains("no image named `lab/busybox:9`")
            && err.contains("names in it:")
            && err.contains("busybox:1.35"),
        "{err}"
    );
    assert!(!err.contains("registry host"), "{err}");
}

#[test]
fn inspect_archive_lists_images_and_raw_is_what_mirror_pushes() {
    let lab = Lab::new();
    let work = lab.ctx.work();
    let pause = ArchImage::new(&["rancher/pause:3.6"], "linux/arm/v7", &["ip-pause"]);
    let tool = ArchImage::new(
        &["lab/tool:1", "lab/tool:latest"],
        "linux/arm/v7",
        &["ip-base", "ip-tool"],
    );
    let saved = work.join("imgs-arm.tar.gz");
    write_packed(
        &saved,
        &tar_of(&classic_entries(&[pause.clone(), tool.clone()])),
        Packing::Gzip,
    );
    // A ctr export holding its own manifest, in a file whose name claims another arch.
    let klipper = ArchImage::new(&["docker.io/rancher/klipper:0.1"], "linux/arm64", &["ip-k"]);
    let export = ctr_export(&klipper);
    let exported = work.join("k-amd64.tar");
    write_packed(&exported, &tar_of(&export.entries), Packing::Plain);
    lab.write_mirrorfile(Some("mirror"), "[[archives]]\npath = \"imgs-arm.tar.gz\"\n");
    let at = |p: &std::path::Path, name: &str| format!("archive:{}{name}", p.display());

    let found = lab.ctx.json(&["inspect", "--json", &at(&saved, "")]);
    let images = found["images"].as_array().expect("images");
    assert_eq!(images.len(), 2, "{found:#}");
    assert_eq!(
        images[0]["names"],
        serde_json::json!(["docker.io/lab/tool:1", "docker.io/lab/tool:latest"])
    );
    assert_eq!(
        images[1]["names"],
        serde_json::json!(["docker.io/rancher/pause:3.6"])
    );
    for (entry, image) in images.iter().zip([&tool, &pause]) {
        assert_eq!(entry["platform"], "linux/arm/v7");
        assert_eq!(
            entry["manifest_from"], "mirror",
            "docker save holds no manifest"
        );
        assert_eq!(entry["config"]["digest"], image.config_digest().as_str());
        let layers = entry["layers"].as_array().expect("layers");
        assert_eq!(layers.len(), image.layers.len());
        let size = entry["config"]["size"].as_u64().unwrap_or(0)
            + layers
                .iter()
                .map(|l| l["size"].as_u64().unwrap_or(0))
                .sum::<u64>();
        assert_eq!(entry["size"], size);
        assert!(layers
            .iter()
            .all(|l| l["media_type"] == "application/vnd.oci.image.layer.v1.tar+gzip"));
    }
    let text =
        String::from_utf8_lossy(&lab.ctx.cmd_ok(&["inspect", &at(&saved, "")]).stdout).into_owned();
    assert!(
        text.contains("docker.io/rancher/pause:3.6") && text.contains("canonical"),
        "{text}"
    );

    // --raw needs one image: the archive holds two.
    let out = lab.ctx.cmd(&["inspect", "--raw", &at(&saved, "")]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stderr(&out).contains("holds 2 images"),
        "{}",
        describe(&out)
    );
    let out = lab
        .ctx
        .cmd(&["inspect", "--raw", &at(&saved, ":lab/tool:1")]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        stderr(&out).contains("canonical manifest mirror writes"),
        "{}",
        describe(&out)
    );
    let raw = out.stdout;
    assert_eq!(sha256(&raw), images[0]["digest"].as_str().unwrap_or(""));
    let out = lab.ctx.cmd(&["inspect", &at(&saved, ":lab/nope:1")]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stderr(&out).contains("no image named") && stderr(&out).contains("docker.io/lab/tool:1"),
        "{}",
        describe(&out)
    );

    // What inspect printed is what apply pushes, byte for byte.
    lab.ctx.cmd_ok(&["apply"]);
    let index = skopeo::inspect_raw_json(&format!("{}/mirror/lab/tool:1", lab.tgt()));
    let child = index["manifests"][0]["digest"].as_str().expect("child");
    let pushed = skopeo::inspect_raw(&format!("{}/mirror/lab/tool@{child}", lab.tgt()));
    assert_eq!(
        pushed, raw,
        "inspect --raw shows the manifest mirror pushes"
    );

    // The ctr export's own manifest, bytes as found; the name's contradiction is a warning.
    let out = lab.ctx.cmd(&["inspect", "--raw", &at(&exported, "")]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(sha256(&out.stdout), export.manifest);
    assert!(
        stderr(&out).contains("held by the archive"),
        "{}",
        describe(&out)
    );
    let found = lab.ctx.json(&["inspect", "--json", &at(&exported, "")]);
    assert_eq!(found["images"][0]["manifest_from"], "archive");
    assert_eq!(found["images"][0]["platform"], "linux/arm64");
    assert_eq!(found["images"][0]["digest"], export.manifest.as_str());
    assert!(
        found["warnings"]
            .to_string()
            .contains("file name says amd64"),
        "{found:#}"
    );
}

/// stderr with miette's line wrapping undone.
/// `text` without any whitespace (miette wraps lines at hyphens too).
fn no_space(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

fn squash(text: &str) -> String {
    text.lines()
        .map(|l| l.trim_start_matches([' ', '|']).trim_end())
        .collect::<Vec<_>>()
        .join(" ")
}

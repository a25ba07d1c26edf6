//! `mirror inspect`: platforms, digests, sizes and layers of a registry image or an OCI layout,
//! and `--raw` byte-identical to `skopeo inspect --raw`.

use crate::support::context::{describe, stderr};
use crate::support::images::ImageSpec;
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
        err.contains("no image named `nope`") && err.contains("v2"),
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

    // archive: is recognised, and says it is not available yet.
    let out = lab.ctx.cmd(&["inspect", "archive:images.tar"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(stderr(&out).contains("archive"), "{}", describe(&out));
}

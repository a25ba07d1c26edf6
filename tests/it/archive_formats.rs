//! `[[archives]]` in the less common layouts real tools write: podman's docker-archive, the
//! Docker 25.0.0 save whose OCI manifests list no layers, and saves whose `index.json` and
//! `manifest.json` disagree. Each is pushed into a real registry and the result read back with
//! independent clients: platforms, config digests, and every layer decompressed and hashed
//! against the config's diff_ids.

use std::collections::BTreeSet;
use std::io::Read;

use serde_json::Value;

use crate::support::archives::{
    classic_entries, docker25_with, podman_entries, tar_of, write_packed, ArchImage, Docker25,
    Packing,
};
use crate::support::http;
use crate::support::images::sha256;
use crate::support::lab::{image_entry, index_platforms, num, Lab};
use crate::support::skopeo;

/// Asserts that `tgt/repo:tag` is an index listing exactly `image`'s platform, whose manifest
/// names `image`'s config and layers that decompress to its diff_ids. Returns the child digest.
fn assert_landed(lab: &Lab, repo: &str, tag: &str, image: &ArchImage) -> String {
    let tgt = lab.tgt();
    let index = skopeo::inspect_raw_json(&format!("{tgt}/{repo}:{tag}"));
    assert_eq!(
        index["mediaType"], "application/vnd.oci.image.index.v1+json",
        "{repo}:{tag}"
    );
    let want: BTreeSet<String> = BTreeSet::from([image.platform.clone()]);
    assert_eq!(index_platforms(&index), want, "{repo}:{tag}");
    let child = index["manifests"][0]["digest"]
        .as_str()
        .expect("child digest")
        .to_string();
    let manifest = skopeo::inspect_raw_json(&format!("{tgt}/{repo}@{child}"));
    assert_eq!(
        manifest["config"]["digest"],
        image.config_digest().as_str(),
        "{repo}:{tag}: the archive's config, unchanged"
    );
    let layers = manifest["layers"].as_array().expect("layers");
    assert_eq!(
        layers.len(),
        image.layers.len(),
        "{repo}:{tag}: layer count"
    );
    for (layer, diff_id) in layers.iter().zip(image.diff_ids()) {
        let digest = layer["digest"].as_str().expect("layer digest");
        let blob = http::get(&tgt, &format!("/v2/{repo}/blobs/{digest}"), None);
        assert_eq!(blob.status, 200, "{repo}: blob {digest}");
        assert_eq!(
            sha256(&blob.body),
            digest,
            "{repo}: blob bytes match digest"
        );
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(&blob.body[..])
            .read_to_end(&mut tar)
            .expect("a gzip layer");
        assert_eq!(
            sha256(&tar),
            diff_id,
            "{repo}:{tag}: layer is what the config says"
        );
    }
    child
}

fn warnings_of(plan: &Value, source: &str) -> String {
    image_entry(plan, source)["warnings"].to_string()
}

#[test]
fn podman_docker_archive_lands_with_the_same_digest_as_a_classic_save() {
    let lab = Lab::new();
    let work = lab.ctx.work();
    let base = "pod-base";
    let app = ArchImage::new(&["docker.io/lab/pod:1"], "linux/arm64", &[base, "pod-app"]);
    // A second image sharing the base layer: podman writes that diffid tar once.
    let sidecar = ArchImage::new(&["docker.io/lab/side:1"], "linux/arm64", &[base]);
    let entries = podman_entries(&[app.clone(), sidecar.clone()]);
    let names: Vec<String> = entries
        .iter()
        .map(|e| match e {
            crate::support::archives::Entry::File(n, _) => n.clone(),
            crate::support::archives::Entry::Symlink(n, _) => n.clone(),
        })
        .collect();
    assert!(names.iter().any(|n| n.ends_with("/layer.tar")), "v1 links");
    assert_eq!(
        names
            .iter()
            .filter(|n| **n == format!("{}.tar", &sha256(&app.layers[0])[7..]))
            .count(),
        1,
        "the shared base layer is written once"
    );
    write_packed(
        &work.join("pod-arm64.tar"),
        &tar_of(&entries),
        Packing::Plain,
    );
    // The same app image saved the classic way under another tag.
    let mut classic = app.clone();
    classic.names = vec!["lab/pod:classic".into()];
    write_packed(
        &work.join("classic-arm64.tar"),
        &tar_of(&classic_entries(&[classic])),
        Packing::Plain,
    );
    lab.write_mirrorfile(Some("mirror"), "[[archives]]\npath = \"*-arm64.tar\"\n");

    let plan = lab.ctx.json(&["plan", "--json"]);
    assert_eq!(num(&plan["summary"], "create"), 3, "{plan:#}");
    let report = lab.ctx.json(&["apply", "--json"]);
    assert_eq!(num(&report["summary"], "failed"), 0);
    let from_podman = assert_landed(&lab, "mirror/lab/pod", "1", &app);
    let from_classic = assert_landed(&lab, "mirror/lab/pod", "classic", &app);
    assert_eq!(
        from_podman, from_classic,
        "one image, one manifest digest, whichever tool saved it"
    );
    assert_landed(&lab, "mirror/lab/side", "1", &sidecar);
}

#[test]
fn docker_25_0_0_empty_oci_layers_use_manifest_json_and_warn() {
    let lab = Lab::new();
    let image = ArchImage::new(&["lab/defect:25"], "linux/amd64", &["d-base", "d-top"]);
    let entries = docker25_with(
        std::slice::from_ref(&image),
        Docker25 {
            empty_oci_layers: true,
            ..Docker25::default()
        },
    );
    write_packed(
        &lab.ctx.work().join("defect-amd64.tar.gz"),
        &tar_of(&entries),
        Packing::Gzip,
    );
    lab.write_mirrorfile(
        Some("mirror"),
        "[[archives]]\npath = \"defect-amd64.tar.gz\"\n",
    );

    let plan = lab.ctx.json(&["plan", "--json"]);
    let warnings = warnings_of(&plan, "docker.io/lab/defect:25");
    assert!(
        warnings.contains("lists no layers") && warnings.contains("using manifest.json"),
        "{warnings}"
    );
    let report = lab.ctx.json(&["apply", "--json"]);
    assert_eq!(num(&report["summary"], "failed"), 0);
    assert_landed(&lab, "mirror/lab/defect", "25", &image);
}

#[test]
fn index_json_and_manifest_json_disagreeing_is_a_union() {
    let lab = Lab::new();
    let both = ArchImage::new(&["lab/both:1"], "linux/arm/v7", &["u-both"]);
    let oci_only = ArchImage::new(&["lab/oci-only:1"], "linux/arm/v7", &["u-oci"]);
    let saved_only = ArchImage::new(&["lab/saved-only:1"], "linux/arm/v7", &["u-saved"]);
    let entries = docker25_with(
        &[both.clone(), oci_only.clone(), saved_only.clone()],
        Docker25 {
            not_in_index: vec![2],
            not_in_manifest_json: vec![1],
            ..Docker25::default()
        },
    );
    write_packed(
        &lab.ctx.work().join("mixed-arm.tar.zst"),
        &tar_of(&entries),
        Packing::Zstd,
    );
    lab.write_mirrorfile(
        Some("mirror"),
        "[[archives]]\npath = \"mixed-arm.tar.zst\"\n",
    );

    let plan = lab.ctx.json(&["plan", "--json"]);
    assert_eq!(num(&plan["summary"], "create"), 3, "{plan:#}");
    assert!(
        warnings_of(&plan, "docker.io/lab/saved-only:1")
            .contains("in manifest.json but not in index.json; kept"),
        "{plan:#}"
    );
    let report = lab.ctx.json(&["apply", "--json"]);
    assert_eq!(num(&report["summary"], "failed"), 0);
    assert_landed(&lab, "mirror/lab/both", "1", &both);
    assert_landed(&lab, "mirror/lab/oci-only", "1", &oci_only);
    assert_landed(&lab, "mirror/lab/saved-only", "1", &saved_only);
    let mut catalog = lab.target_catalog();
    catalog.sort();
    assert_eq!(
        catalog,
        [
            "mirror/lab/both",
            "mirror/lab/oci-only",
            "mirror/lab/saved-only"
        ]
    );
}

//! Multi-arch semantics beyond the happy path: upstream indexes whose entries disagree with their
//! configs, nested indexes, Docker media types, references pinned by digest, sparse indexes.
//!
//! Upstream content that skopeo cannot write (Docker media types, nested or inconsistent
//! indexes) is pushed with the harness's own raw HTTP client.

use serde_json::{json, Value};

use crate::support::context::{describe, stderr};
use crate::support::http;
use crate::support::images::{sha256, BuiltImage, ImageSpec, OCI_INDEX, OCI_MANIFEST};
use crate::support::lab::{image_entry, index_entries, num, Lab};
use crate::support::skopeo;

const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// Pushes every blob and platform manifest of `image` into `repo` by digest, without a tag.
fn push_parts(host: &str, repo: &str, image: &BuiltImage) {
    for bytes in image.blobs.values() {
        http::push_blob(host, repo, bytes);
    }
    for m in image.all_manifests() {
        http::put_manifest(host, repo, &m.digest, OCI_MANIFEST, &m.bytes);
    }
}

fn index_bytes(media_type: &str, entries: Vec<Value>) -> Vec<u8> {
    let doc = json!({"schemaVersion": 2, "mediaType": media_type, "manifests": entries});
    serde_json::to_vec(&doc).expect("index JSON")
}

fn entry(media_type: &str, digest: &str, size: usize, platform: Option<Value>) -> Value {
    let mut e = json!({"mediaType": media_type, "digest": digest, "size": size});
    if let Some(p) = platform {
        e["platform"] = p;
    }
    e
}

fn short(digest: &str) -> &str {
    &digest[..19]
}

#[test]
fn entry_platform_contradicting_its_config_is_copied_byte_exact_with_a_warning() {
    let lab = Lab::new();
    let up = lab.up();
    let image = ImageSpec::multi("trap", &["linux/amd64", "linux/arm64"]).build();
    push_parts(&up, "lab/trap", &image);
    let amd = image.manifest("linux/amd64");
    let arm = image.manifest("linux/arm64");
    // The amd64 image is listed as arm64/v8 and the other way round (seen upstream).
    let index = index_bytes(
        OCI_INDEX,
        vec![
            entry(
                OCI_MANIFEST,
                &amd.digest,
                amd.bytes.len(),
                Some(json!({"os": "linux", "architecture": "arm64", "variant": "v8"})),
            ),
            entry(
                OCI_MANIFEST,
                &arm.digest,
                arm.bytes.len(),
                Some(json!({"os": "linux", "architecture": "amd64"})),
            ),
        ],
    );
    http::put_manifest(&up, "lab/trap", "1.0", OCI_INDEX, &index);
    lab.write_mirrorfile(None, &format!("[[images]]\nref = \"{up}/lab/trap:1.0\"\n"));

    let plan = lab.ctx.json(&["plan", "--json"]);
    let e = image_entry(&plan, &format!("{up}/lab/trap:1.0"));
    let warnings: Vec<String> = e["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .filter_map(|w| w.as_str().map(str::to_string))
        .collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    let about_amd = warnings
        .iter()
        .find(|w| w.contains(short(&amd.digest)))
        .unwrap_or_else(|| panic!("no warning names {}: {warnings:?}", amd.digest));
    assert!(about_amd.contains("lab/trap:1.0"), "{about_amd}");
    assert!(
        about_amd.contains("linux/arm64/v8") && about_amd.contains("linux/amd64"),
        "{about_amd}"
    );

    lab.ctx.cmd_ok(&["apply"]);
    let copied = skopeo::inspect_raw(&format!("{}/lab/trap:1.0", lab.tgt()));
    assert_eq!(sha256(&copied), sha256(&index), "the copy stays byte-exact");
}

#[test]
fn nested_indexes_are_walked_to_the_leaves() {
    let lab = Lab::new();
    let (up, tgt) = (lab.up(), lab.tgt());
    let a = ImageSpec::multi("nest-a", &["linux/amd64", "linux/arm64"]).build();
    let b = ImageSpec::multi("nest-b", &["linux/arm/v7"]).build();
    for inner in [&a, &b] {
        push_parts(&up, "lab/nested", inner);
        http::put_manifest(&up, "lab/nested", &inner.digest, OCI_INDEX, &inner.bytes);
    }
    let outer = index_bytes(
        OCI_INDEX,
        vec![
            entry(OCI_INDEX, &a.digest, a.bytes.len(), None),
            entry(OCI_INDEX, &b.digest, b.bytes.len(), None),
        ],
    );
    http::put_manifest(&up, "lab/nested", "outer", OCI_INDEX, &outer);

    // Everything: byte-identical at every level.
    let header = lab.header(Some("full"));
    lab.ctx.write_mirrorfile(&format!(
        "{header}\n[[images]]\nref = \"{up}/lab/nested:outer\"\n"
    ));
    lab.ctx.cmd_ok(&["apply"]);
    assert_eq!(
        sha256(&skopeo::inspect_raw(&format!(
            "{tgt}/full/lab/nested:outer"
        ))),
        sha256(&outer)
    );
    for m in a.all_manifests().into_iter().chain(b.all_manifests()) {
        assert!(
            http::manifest_exists(&tgt, "full/lab/nested", &m.digest),
            "{} missing",
            m.platform
        );
    }

    // amd64 only: the outer index keeps one entry, pointing at a rewritten inner index that
    // lists only the amd64 manifest; nothing of arm64 or arm/v7 is pushed.
    let header = lab.header(Some("amd"));
    lab.ctx.write_mirrorfile(&format!(
        "{header}\n[[images]]\nref = \"{up}/lab/nested:outer\"\nplatforms = [\"linux/amd64\"]\n"
    ));
    lab.ctx.cmd_ok(&["apply"]);
    let top = skopeo::inspect_raw_json(&format!("{tgt}/amd/lab/nested:outer"));
    let entries = index_entries(&top);
    assert_eq!(entries.len(), 1, "{top:#}");
    let inner_digest = entries[0]["digest"].as_str().expect("digest").to_string();
    assert_ne!(inner_digest, a.digest, "a partial inner index is rewritten");
    let inner = skopeo::inspect_raw_json(&format!("{tgt}/amd/lab/nested@{inner_digest}"));
    let leaves: Vec<String> = index_entries(&inner)
        .iter()
        .map(|e| e["digest"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(leaves, vec![a.manifest("linux/amd64").digest.clone()]);
    assert!(!http::manifest_exists(
        &tgt,
        "amd/lab/nested",
        &a.manifest("linux/arm64").digest
    ));
    assert!(!http::manifest_exists(
        &tgt,
        "amd/lab/nested",
        &b.manifest("linux/arm/v7").digest
    ));
}

#[test]
fn docker_media_types_are_kept_for_full_and_subset_copies() {
    let lab = Lab::new();
    let (up, tgt) = (lab.up(), lab.tgt());
    let image = ImageSpec::multi("dock", &["linux/amd64", "linux/arm64"]).build();
    for bytes in image.blobs.values() {
        http::push_blob(&up, "lab/dock", bytes);
    }
    let mut entries = Vec::new();
    let mut children = Vec::new();
    for m in &image.manifests {
        let doc = json!({
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": DOCKER_CONFIG, "digest": m.config.digest, "size": m.config.size},
            "layers": m.layers.iter().map(|l| json!({"mediaType": DOCKER_LAYER, "digest": l.digest, "size": l.size})).collect::<Vec<_>>(),
        });
        let bytes = serde_json::to_vec_pretty(&doc).expect("manifest JSON");
        let digest = sha256(&bytes);
        http::put_manifest(&up, "lab/dock", &digest, DOCKER_MANIFEST, &bytes);
        let parts: Vec<&str> = m.platform.split('/').collect();
        entries.push(entry(
            DOCKER_MANIFEST,
            &digest,
            bytes.len(),
            Some(json!({"os": parts[0], "architecture": parts[1]})),
        ));
        children.push((m.platform.clone(), digest, bytes));
    }
    let list = index_bytes(DOCKER_LIST, entries);
    http::put_manifest(&up, "lab/dock", "1.0", DOCKER_LIST, &list);

    let header = lab.header(None);
    lab.ctx.write_mirrorfile(&format!(
        "{header}\n[[images]]\nref = \"{up}/lab/dock:1.0\"\n\n[[images]]\nref = \"{up}/lab/dock:1.0\"\nto = \"lab/dock-arm:1.0\"\nplatforms = [\"linux/arm64\"]\n"
    ));
    lab.ctx.cmd_ok(&["apply"]);

    let full = http::get(
        &tgt,
        "/v2/lab/dock/manifests/1.0",
        Some(http::MANIFEST_ACCEPT),
    );
    assert_eq!(full.header("Content-Type"), Some(DOCKER_LIST));
    assert_eq!(sha256(&full.body), sha256(&list));

    let subset = http::get(
        &tgt,
        "/v2/lab/dock-arm/manifests/1.0",
        Some(http::MANIFEST_ACCEPT),
    );
    assert_eq!(
        subset.header("Content-Type"),
        Some(DOCKER_LIST),
        "a subset of a Docker list is a Docker list"
    );
    let doc: Value = serde_json::from_slice(&subset.body).expect("JSON");
    assert_eq!(doc["mediaType"], DOCKER_LIST);
    let kept = index_entries(&doc);
    assert_eq!(kept.len(), 1);
    let (_, arm_digest, arm_bytes) = children
        .iter()
        .find(|(p, _, _)| p == "linux/arm64")
        .expect("arm64 child");
    assert_eq!(kept[0]["digest"], arm_digest.as_str());
    let child = http::get(
        &tgt,
        &format!("/v2/lab/dock-arm/manifests/{arm_digest}"),
        Some(http::MANIFEST_ACCEPT),
    );
    assert_eq!(child.header("Content-Type"), Some(DOCKER_MANIFEST));
    assert_eq!(&child.body, arm_bytes, "children are byte-identical");
}

#[test]
fn a_digest_pinned_index_with_a_platform_subset_is_refused_unless_sparse() {
    let lab = Lab::new();
    let (up, tgt) = (lab.up(), lab.tgt());
    let image = lab.seed(
        "lab/pin:1.0",
        &ImageSpec::multi("pin", &["linux/amd64", "linux/arm64"]),
    );
    let pinned = format!("{up}/lab/pin@{}", image.digest);

    lab.write_mirrorfile(
        None,
        &format!("[[images]]\nref = \"{pinned}\"\nplatforms = [\"linux/amd64\"]\n"),
    );
    let out = lab.ctx.cmd(&["plan"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = stderr(&out);
    assert!(
        err.contains("pinned by index digest") && err.contains(&image.digest),
        "{err}"
    );
    assert!(
        err.contains("mirrorfile.toml:"),
        "names where it was declared: {err}"
    );
    assert!(err.contains("sparse"), "says what to do: {err}");
    assert!(lab.target_catalog().is_empty());

    // Sparse keeps the pinned digest; distribution 2.8 rejects an index whose children are
    // absent, so the plan warns and the apply fails without creating anything under a tag.
    lab.write_mirrorfile(
        None,
        &format!(
            "[[images]]\nref = \"{pinned}\"\nplatforms = [\"linux/amd64\"]\nindex = \"sparse\"\n"
        ),
    );
    let plan = lab.ctx.json(&["plan", "--json"]);
    let e = image_entry(&plan, &pinned);
    assert_eq!(e["target_digest"], image.digest.as_str());
    let warned = e["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .any(|w| w.as_str().unwrap_or("").contains("reject"));
    assert!(warned, "{e:#}");
    let out = lab.ctx.cmd(&["apply"]);
    assert_ne!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        !http::manifest_exists(&tgt, "lab/pin", &image.digest),
        "no sparse index was accepted"
    );
}

#[test]
fn a_digest_only_reference_is_pushed_by_digest_without_a_tag() {
    let lab = Lab::new();
    let (up, tgt) = (lab.up(), lab.tgt());
    let image = lab.seed(
        "lab/bydigest:1.0",
        &ImageSpec::multi("bd", &["linux/amd64", "linux/arm64"]),
    );
    let pinned = format!("{up}/lab/bydigest@{}", image.digest);
    lab.write_mirrorfile(None, &format!("[[images]]\nref = \"{pinned}\"\n"));
    let report = lab.ctx.json(&["apply", "--json"]);
    let e = image_entry(&report, &pinned);
    assert_eq!(e["target"], format!("{tgt}/lab/bydigest@{}", image.digest));
    assert_eq!(
        num(&report["summary"], "blobs_pushed"),
        image.all_blobs().len() as u64
    );
    lab.assert_full_copy(&format!("lab/bydigest@{}", image.digest), &image);
    assert!(
        http::tags(&tgt, "lab/bydigest").is_empty(),
        "no tag is made up"
    );
}

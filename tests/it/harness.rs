//! Tests of the harness itself: they need `docker-registry` and `skopeo`, not `mirror`.

use std::collections::BTreeSet;

use crate::support::context::{mirrorfile_header, redact_hosts, TestContext};
use crate::support::http;
use crate::support::images::{self, sha256, ImageSpec};
use crate::support::registry::Registry;
use crate::support::skopeo;

const PLATFORMS: [&str; 3] = ["linux/amd64", "linux/arm64", "linux/arm/v7"];

#[test]
fn registry_starts_answers_and_stops() {
    let mut registry = Registry::start();
    let host = registry.host();
    let resp = http::get(&host, "/v2/", None);
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.header("Docker-Distribution-Api-Version"),
        Some("registry/2.0")
    );
    assert!(http::catalog(&host).is_empty(), "fresh registry is empty");

    registry.stop();
    assert!(
        http::request(&host, "GET", "/v2/", None).is_err(),
        "stopped registry still answers"
    );
    registry.restart();
    assert_eq!(registry.host(), host, "restart keeps the port");
    assert_eq!(http::get(&host, "/v2/", None).status, 200);
}

#[test]
fn dropping_a_registry_kills_and_reaps_it() {
    let registry = Registry::start();
    let pid = registry.pid().expect("running registry has a pid");
    let storage = registry.storage();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    drop(registry);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "registry process {pid} survived drop"
    );
    assert!(!storage.exists(), "temp storage removed");
}

#[test]
fn two_registries_get_distinct_ports() {
    let a = Registry::start();
    let b = Registry::start();
    assert_ne!(a.port(), b.port());
}

#[test]
fn a_taken_port_is_never_mistaken_for_our_registry() {
    let a = Registry::start();
    let err = match Registry::try_start_on(a.port()) {
        Ok(b) => panic!("second registry claims port {} held by the first", b.port()),
        Err(e) => e,
    };
    assert!(err.contains("exited early"), "{err}");
    assert_eq!(
        http::get(&a.host(), "/v2/", None).status,
        200,
        "first still serves"
    );
}

#[test]
fn builder_is_deterministic() {
    let spec = ImageSpec::multi("det", &PLATFORMS)
        .layers(3)
        .layer_bytes(64 * 1024)
        .shared_base("base")
        .attestation(true);
    let one = spec.build();
    let two = spec.build();
    assert_eq!(one.digest, two.digest);
    assert_eq!(one.bytes, two.bytes);
    for (a, b) in one.all_manifests().iter().zip(two.all_manifests()) {
        assert_eq!(a.digest, b.digest);
        assert_eq!(a.config, b.config);
        assert_eq!(a.layers, b.layers);
    }
    assert_eq!(one.blobs, two.blobs);

    // A different seed changes everything but the shared base.
    let other = ImageSpec::multi("other", &PLATFORMS)
        .layers(3)
        .layer_bytes(64 * 1024)
        .shared_base("base")
        .build();
    assert_ne!(other.digest, one.digest);
    for p in PLATFORMS {
        assert_eq!(
            other.manifest(p).layers[0],
            one.manifest(p).layers[0],
            "{p} base"
        );
        assert_ne!(
            other.manifest(p).layers[1],
            one.manifest(p).layers[1],
            "{p} own layer"
        );
    }
    // Per-platform bases differ.
    assert_ne!(
        one.manifest("linux/amd64").layers[0],
        one.manifest("linux/arm64").layers[0]
    );
}

#[test]
fn builder_makes_valid_blobs() {
    let image = ImageSpec::multi("valid", &PLATFORMS)
        .layer_bytes(100_000)
        .attestation(true)
        .build();
    for blob in image.all_blobs() {
        let bytes = &image.blobs[&blob.digest];
        assert_eq!(sha256(bytes), blob.digest);
        assert_eq!(bytes.len() as u64, blob.size);
    }
    for m in &image.manifests {
        // Layers are gzip'd tars whose sha256 (uncompressed) is the config's diff_id.
        let config: serde_json::Value =
            serde_json::from_slice(&image.blobs[&m.config.digest]).expect("config JSON");
        let parts: Vec<&str> = m.platform.split('/').collect();
        assert_eq!(config["os"], parts[0]);
        assert_eq!(config["architecture"], parts[1]);
        assert_eq!(config["variant"].as_str(), parts.get(2).copied());
        for (layer, diff_id) in m
            .layers
            .iter()
            .zip(config["rootfs"]["diff_ids"].as_array().expect("diff_ids"))
        {
            let mut tar = Vec::new();
            let mut gz = flate2::read::GzDecoder::new(image.blobs[&layer.digest].as_slice());
            std::io::Read::read_to_end(&mut gz, &mut tar).expect("gunzip layer");
            assert_eq!(diff_id.as_str(), Some(sha256(&tar).as_str()));
            let mut archive = tar::Archive::new(tar.as_slice());
            let names: Vec<String> = archive
                .entries()
                .expect("tar entries")
                .map(|e| {
                    e.expect("entry")
                        .path()
                        .expect("path")
                        .display()
                        .to_string()
                })
                .collect();
            let mut sorted = names.clone();
            sorted.sort();
            assert_eq!(names, sorted, "entries sorted");
            assert!(names.iter().any(|n| n.ends_with("data.bin")));
        }
        // Layers with pseudo-random data do not collapse under gzip.
        assert!(m.layers.iter().all(|l| l.size > 100_000));
    }
    let index: serde_json::Value = serde_json::from_slice(&image.bytes).expect("index JSON");
    let att = &index["manifests"][3];
    assert_eq!(att["platform"]["os"], "unknown");
    assert_eq!(
        att["annotations"][images::ATTESTATION_TYPE_KEY],
        "attestation-manifest"
    );
    assert_eq!(
        att["annotations"][images::ATTESTATION_DIGEST_KEY],
        image.manifest("linux/amd64").digest.as_str()
    );
}

#[test]
fn push_with_skopeo_preserves_every_digest() {
    let registry = Registry::start();
    let host = registry.host();
    let multi = ImageSpec::multi("tiny", &PLATFORMS)
        .attestation(true)
        .build();
    let single = ImageSpec::single("solo", "linux/amd64").build();
    multi.push(&format!("{host}/lab/tiny:1.0"));
    single.push(&format!("{host}/lab/solo:2.0"));

    // The index bytes come back unchanged.
    let raw = skopeo::inspect_raw(&format!("{host}/lab/tiny:1.0"));
    assert_eq!(sha256(&raw), multi.digest);
    assert_eq!(raw, multi.bytes);
    let raw = skopeo::inspect_raw(&format!("{host}/lab/solo:2.0"));
    assert_eq!(sha256(&raw), single.digest);

    // Every child manifest and blob is there, in its repository.
    for m in multi.all_manifests() {
        let raw = skopeo::inspect_raw(&format!("{host}/lab/tiny@{}", m.digest));
        assert_eq!(sha256(&raw), m.digest, "{}", m.platform);
        assert!(http::manifest_exists(&host, "lab/tiny", &m.digest));
    }
    for blob in multi.all_blobs() {
        assert!(
            http::blob_exists(&host, "lab/tiny", &blob.digest),
            "{}",
            blob.digest
        );
        assert!(
            !http::blob_exists(&host, "lab/solo", &blob.digest),
            "not in other repo"
        );
    }
    let config = skopeo::inspect_config(&format!(
        "{host}/lab/tiny@{}",
        multi.manifest("linux/arm/v7").digest
    ));
    assert_eq!(config["architecture"], "arm");
    assert_eq!(config["variant"], "v7");

    // Parsing the index shows the three platforms plus the attestation.
    let index = skopeo::inspect_raw_json(&format!("{host}/lab/tiny:1.0"));
    let platforms: BTreeSet<String> = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .map(|m| {
            let p = &m["platform"];
            match p["variant"].as_str() {
                Some(v) => format!(
                    "{}/{}/{v}",
                    p["os"].as_str().unwrap_or(""),
                    p["architecture"].as_str().unwrap_or("")
                ),
                None => format!(
                    "{}/{}",
                    p["os"].as_str().unwrap_or(""),
                    p["architecture"].as_str().unwrap_or("")
                ),
            }
        })
        .collect();
    let expected: BTreeSet<String> = PLATFORMS
        .iter()
        .map(|p| p.to_string())
        .chain(["unknown/unknown".to_string()])
        .collect();
    assert_eq!(platforms, expected);

    assert_eq!(http::catalog(&host), vec!["lab/solo", "lab/tiny"]);
    assert_eq!(http::tags(&host, "lab/tiny"), vec!["1.0"]);
    assert!(skopeo::try_inspect_raw(&format!("{host}/lab/tiny:nope")).is_none());
    assert!(!http::blob_exists(&host, "lab/tiny", &sha256(b"absent")));

    // And skopeo can copy it back out into a layout, digests unchanged.
    let ctx = TestContext::new();
    let out = ctx.root().join("out");
    skopeo::copy_to_oci_dir(&format!("{host}/lab/tiny:1.0"), &out, "x");
    let index_json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.join("index.json")).expect("read copied index.json"),
    )
    .expect("index.json is JSON");
    assert_eq!(index_json["manifests"][0]["digest"], multi.digest.as_str());
}

#[test]
fn layout_can_hold_several_tags() {
    let registry = Registry::start();
    let host = registry.host();
    let a = ImageSpec::multi("a", &["linux/amd64", "linux/arm64"]).build();
    let b = ImageSpec::single("b", "linux/arm64").build();
    let ctx = TestContext::new();
    let dir = ctx.root().join("layout");
    images::write_layout(&dir, &[("a", &a), ("b", &b)]);
    skopeo::copy_layout_to_registry(&dir, "b", &format!("{host}/x/b:1"));
    skopeo::copy_layout_to_registry(&dir, "a", &format!("{host}/x/a:1"));
    assert_eq!(
        sha256(&skopeo::inspect_raw(&format!("{host}/x/a:1"))),
        a.digest
    );
    assert_eq!(
        sha256(&skopeo::inspect_raw(&format!("{host}/x/b:1"))),
        b.digest
    );
}

#[test]
fn context_isolates_and_redacts() {
    let ctx = TestContext::new();
    ctx.write_mirrorfile("# hello\n");
    ctx.write_file("lists/images.txt", "a\n");
    assert_eq!(ctx.files(), vec!["lists/images.txt", "mirrorfile.toml"]);
    let text = format!(
        "{}/work/mirrorfile.toml at 127.0.0.1:5000/x and 127.0.0.1:/y",
        ctx.root().display()
    );
    assert_eq!(
        ctx.redact(&text),
        "[ROOT]/work/mirrorfile.toml at [HOST]/x and 127.0.0.1:/y"
    );
    assert_eq!(redact_hosts("127.0.0.1:1 127.0.0.1:65535"), "[HOST] [HOST]");

    let header = mirrorfile_header("127.0.0.1:1", "127.0.0.1:2", Some("mirror"));
    let parsed: toml::Table = toml::from_str(&header).expect("header is TOML");
    assert_eq!(parsed["target"]["prefix"].as_str(), Some("mirror"));
    assert_eq!(
        parsed["registry"]["127.0.0.1:1"]["tls"].as_str(),
        Some("http")
    );

    // The environment the binary sees lives inside the temp dir.
    let cmd = ctx.command();
    let envs: Vec<(String, String)> = cmd
        .get_envs()
        .filter_map(|(k, v)| Some((k.to_str()?.to_string(), v?.to_str()?.to_string())))
        .collect();
    for key in ["HOME", "XDG_CACHE_HOME", "DOCKER_CONFIG"] {
        let value = &envs.iter().find(|(k, _)| k == key).expect(key).1;
        assert!(
            value.starts_with(&ctx.root().display().to_string()),
            "{key}={value}"
        );
    }
    assert!(envs.iter().any(|(k, v)| k == "NO_COLOR" && v == "1"));
    assert!(!envs.iter().any(|(k, _)| k == "RUST_LOG"));
}

/// The builder's output is pinned, so a change in tar/flate2 behaviour (which would silently
/// change every fixture digest) is noticed here first.
#[test]
fn builder_digests_are_pinned() {
    let image = ImageSpec::multi("pinned", &["linux/amd64", "linux/arm/v7"])
        .layer_bytes(1000)
        .attestation(true)
        .build();
    assert_eq!(
        image.digest,
        "sha256:5d7fc091b5540f9e16859e35eeb4b79894750a4f184a30ce5bc85c3b135e8762"
    );
}

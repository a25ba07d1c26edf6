//! [`Lab`]: the usual scene of an integration test: an upstream registry seeded with built
//! images, an empty target registry and a [`TestContext`] to run `mirror` in; plus checks that
//! read the target with independent clients (skopeo, raw HTTP).

use std::collections::BTreeSet;

use serde_json::Value;

use super::context::{mirrorfile_header, TestContext};
use super::http;
use super::images::{sha256, Blob, BuiltImage, ImageSpec};
use super::registry::Registry;
use super::skopeo;

pub struct Lab {
    pub upstream: Registry,
    pub target: Registry,
    pub ctx: TestContext,
}

impl Default for Lab {
    fn default() -> Self {
        Self::new()
    }
}

impl Lab {
    pub fn new() -> Lab {
        Lab {
            upstream: Registry::start(),
            target: Registry::start(),
            ctx: TestContext::new(),
        }
    }

    /// `127.0.0.1:PORT` of the upstream registry.
    pub fn up(&self) -> String {
        self.upstream.host()
    }

    /// `127.0.0.1:PORT` of the target registry.
    pub fn tgt(&self) -> String {
        self.target.host()
    }

    /// Builds `spec` and pushes it upstream as `REPO:TAG`; returns what was built.
    pub fn seed(&self, repo_tag: &str, spec: &ImageSpec) -> BuiltImage {
        let image = spec.build();
        image.push(&format!("{}/{repo_tag}", self.up()));
        image
    }

    /// Seeds upstream with a 4-platform image (one platform more than the examples select) under
    /// the path of each `docker.io/…` reference, as the examples name them; returns path and image.
    pub fn seed_docker_io<S: AsRef<str>>(&self, refs: &[S]) -> Vec<(String, BuiltImage)> {
        refs.iter()
            .map(|reference| {
                let path = reference
                    .as_ref()
                    .strip_prefix("docker.io/")
                    .expect("the examples use docker.io names");
                let spec = ImageSpec::multi(
                    path,
                    &["linux/amd64", "linux/arm64", "linux/arm/v7", "linux/s390x"],
                );
                (path.to_string(), self.seed(path, &spec))
            })
            .collect()
    }

    /// Mirrorfile header for this lab (target, both registries over HTTP, cache in `cache/`).
    pub fn header(&self, prefix: Option<&str>) -> String {
        mirrorfile_header(&self.up(), &self.tgt(), prefix)
    }

    /// Writes `header(prefix)` followed by `body` as `mirrorfile.toml`; returns the whole text.
    pub fn write_mirrorfile(&self, prefix: Option<&str>, body: &str) -> String {
        let text = format!("{}\n{body}", self.header(prefix));
        self.ctx.write_mirrorfile(&text);
        text
    }

    /// Asserts that `target_ref` (`REPO:TAG` on the target) holds `image` entirely: same top
    /// digest and bytes, every child manifest and every blob present in that repository.
    pub fn assert_full_copy(&self, target_ref: &str, image: &BuiltImage) {
        let host = self.tgt();
        let raw = skopeo::inspect_raw(&format!("{host}/{target_ref}"));
        assert_eq!(sha256(&raw), image.digest, "{target_ref}: top-level digest");
        assert_eq!(raw, image.bytes, "{target_ref}: bytes are sacred");
        let repo = repo_of(target_ref);
        for m in image.all_manifests() {
            if image.is_index() {
                let raw = skopeo::inspect_raw(&format!("{host}/{repo}@{}", m.digest));
                assert_eq!(
                    sha256(&raw),
                    m.digest,
                    "{target_ref}: {} manifest",
                    m.platform
                );
            }
            self.assert_blobs_present(repo, &m.blobs().into_iter().cloned().collect::<Vec<_>>());
        }
    }

    pub fn assert_blobs_present(&self, repo: &str, blobs: &[Blob]) {
        for blob in blobs {
            assert!(
                http::blob_exists(&self.tgt(), repo, &blob.digest),
                "blob {} ({}) missing from target repo {repo}",
                blob.digest,
                blob.media_type
            );
        }
    }

    /// Repositories on the target.
    pub fn target_catalog(&self) -> Vec<String> {
        http::catalog(&self.tgt())
    }
}

/// `lab/tiny` of `lab/tiny:1.0` or `lab/tiny@sha256:…`.
pub fn repo_of(reference: &str) -> &str {
    let end = reference
        .find('@')
        .or_else(|| reference.rfind(':'))
        .unwrap_or(reference.len());
    &reference[..end]
}

/// `os/arch[/variant]` of an index entry.
pub fn entry_platform(entry: &Value) -> String {
    let p = &entry["platform"];
    let os = p["os"].as_str().unwrap_or("?");
    let arch = p["architecture"].as_str().unwrap_or("?");
    match p["variant"].as_str() {
        Some(v) => format!("{os}/{arch}/{v}"),
        None => format!("{os}/{arch}"),
    }
}

/// The `manifests` array of an index.
pub fn index_entries(index: &Value) -> Vec<Value> {
    index["manifests"]
        .as_array()
        .unwrap_or_else(|| panic!("not an index: {index}"))
        .clone()
}

/// Platforms of an index, attestation entries (`unknown/unknown`) left out.
pub fn index_platforms(index: &Value) -> BTreeSet<String> {
    index_entries(index)
        .iter()
        .map(entry_platform)
        .filter(|p| p != "unknown/unknown")
        .collect()
}

/// The 1-based line of `text` containing `needle` (first occurrence).
pub fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("`{needle}` not in:\n{text}"))
}

/// `value[key]` as u64, with a clear message when absent.
pub fn num(value: &Value, key: &str) -> u64 {
    value[key]
        .as_u64()
        .unwrap_or_else(|| panic!("`{key}` is not a number in {value:#}"))
}

/// The entry of `images` (plan or apply JSON) whose `source` is `source`.
pub fn image_entry<'a>(report: &'a Value, source: &str) -> &'a Value {
    report["images"]
        .as_array()
        .unwrap_or_else(|| panic!("no `images` array in {report:#}"))
        .iter()
        .find(|i| i["source"] == source)
        .unwrap_or_else(|| panic!("no image with source {source} in {report:#}"))
}

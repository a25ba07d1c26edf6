//! The one place where `mirror` writes manifests itself.
//!
//! Three documents: a subset index (below), an image manifest assembled for an archive image
//! ([`image_manifest`]) and an index over such manifests ([`index_of`]). The last two are built
//! from descriptors with a fixed key order (serde field order, empty fields left out) and the
//! index entries sorted by platform, so the same images give the same bytes on every machine.
//!
//! A subset index keeps the original document (top-level fields, annotations, each kept entry
//! exactly as upstream wrote it, key order included) and drops the entries that were not
//! selected. The result is serialised once, compactly, so the same input and selection always
//! give the same bytes and digest on any machine; from then on it is a [`RawManifest`] like any
//! other.

use std::collections::BTreeMap;

use bytes::Bytes;

use serde::Serialize;

use super::media_type::{OCI_INDEX, OCI_MANIFEST};
use super::{Descriptor, Digest, ManifestError, RawManifest};

#[derive(Serialize)]
struct ImageManifestDoc<'a> {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: &'static str,
    config: &'a Descriptor,
    layers: &'a [Descriptor],
}

#[derive(Serialize)]
struct IndexDoc<'a> {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: &'static str,
    manifests: &'a [Descriptor],
}

fn finish<T: Serialize>(doc: &T) -> Result<RawManifest, ManifestError> {
    let bytes = serde_json::to_vec(doc).map_err(|source| ManifestError::Json {
        digest: Digest::sha256_of(b""),
        source,
    })?;
    RawManifest::new(Bytes::from(bytes), None)
}

/// An OCI image manifest for `config` and `layers` (base first), written compactly.
pub fn image_manifest(
    config: &Descriptor,
    layers: &[Descriptor],
) -> Result<RawManifest, ManifestError> {
    finish(&ImageManifestDoc {
        schema_version: 2,
        media_type: OCI_MANIFEST,
        config,
        layers,
    })
}

/// An OCI index over `entries`, sorted by platform (normalised os, architecture, variant,
/// then `os.version`) and then digest, whatever order they came in.
pub fn index_of(entries: &[Descriptor]) -> Result<RawManifest, ManifestError> {
    let mut sorted = entries.to_vec();
    sorted.sort_by(|a, b| {
        let key = |d: &Descriptor| {
            let p = d.platform.clone().unwrap_or_default();
            (p.normalized(), p.os_version.clone(), d.digest.to_string())
        };
        key(a).cmp(&key(b))
    });
    finish(&IndexDoc {
        schema_version: 2,
        media_type: OCI_INDEX,
        manifests: &sorted,
    })
}

/// Writes `original` with only the `manifests` entries at positions in `keep` (ascending).
pub fn subset_index(original: &RawManifest, keep: &[usize]) -> Result<RawManifest, ManifestError> {
    subset_index_with(original, keep, &BTreeMap::new())
}

/// Like [`subset_index`], and points the entries at positions in `replaced` at new content (a
/// nested index that was itself rewritten): only their `digest` and `size` change.
pub fn subset_index_with(
    original: &RawManifest,
    keep: &[usize],
    replaced: &BTreeMap<usize, (Digest, u64)>,
) -> Result<RawManifest, ManifestError> {
    let json = |source| ManifestError::Json {
        digest: original.digest().clone(),
        source,
    };
    let mut doc: serde_json::Value = serde_json::from_slice(original.bytes()).map_err(json)?;
    if let Some(serde_json::Value::Array(entries)) = doc.get_mut("manifests") {
        let kept = entries
            .drain(..)
            .enumerate()
            .filter(|(i, _)| keep.contains(i))
            .map(|(i, mut entry)| {
                if let (Some((digest, size)), Some(fields)) =
                    (replaced.get(&i), entry.as_object_mut())
                {
                    fields.insert("digest".into(), digest.to_string().into());
                    fields.insert("size".into(), (*size).into());
                }
                entry
            })
            .collect();
        *entries = kept;
    }
    let bytes = serde_json::to_vec(&doc).map_err(json)?;
    RawManifest::new(Bytes::from(bytes), Some(original.media_type().as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::{MediaType, Platform};

    fn desc(n: u8, platform: Option<Platform>) -> Descriptor {
        Descriptor {
            media_type: MediaType::OciManifest,
            digest: Digest::sha256_of(&[n]),
            size: u64::from(n),
            platform,
            annotations: BTreeMap::new(),
            urls: vec![],
            artifact_type: None,
        }
    }

    #[test]
    fn index_entries_are_sorted_by_platform_with_fixed_keys() {
        let arm = desc(1, Some(Platform::new("linux", "arm", Some("v7"))));
        let amd = desc(2, Some(Platform::new("linux", "amd64", None)));
        let a = index_of(&[arm.clone(), amd.clone()]).expect("index");
        let b = index_of(&[amd, arm]).expect("index");
        assert_eq!(a, b);
        let text = String::from_utf8_lossy(a.bytes()).to_string();
        assert!(text.starts_with(r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:"#), "{text}");
        let amd_at = text.find("amd64").unwrap_or(usize::MAX);
        let arm_at = text.find("\"arm\"").unwrap_or(0);
        assert!(amd_at < arm_at, "{text}");
        assert!(
            text.contains(r#""platform":{"os":"linux","architecture":"arm","variant":"v7"}"#),
            "{text}"
        );
        assert!(a.is_index());
    }

    #[test]
    fn keeps_order_annotations_and_is_deterministic() {
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let text = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,"digest":"{d}","platform":{{"os":"linux","architecture":"amd64"}}}},{{"size":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{d}","annotations":{{"z":"1","a":"2"}}}}],"annotations":{{"k":"v"}}}}"#
        );
        let original = RawManifest::new(Bytes::from(text), None).ok();
        let original = original.as_ref();
        let a = original.and_then(|o| subset_index(o, &[1]).ok());
        let b = original.and_then(|o| subset_index(o, &[1]).ok());
        assert_eq!(a, b);
        let body = a
            .map(|m| String::from_utf8_lossy(m.bytes()).to_string())
            .unwrap_or_default();
        assert_eq!(
            body,
            format!(
                r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"size":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{d}","annotations":{{"z":"1","a":"2"}}}}],"annotations":{{"k":"v"}}}}"#
            )
        );
    }
}

//! The one place where `mirror` writes manifests itself.
//!
//! A subset index keeps the original document (top-level fields, annotations, each kept entry
//! exactly as upstream wrote it, key order included) and drops the entries that were not
//! selected. The result is serialised once, compactly, so the same input and selection always
//! give the same bytes and digest on any machine; from then on it is a [`RawManifest`] like any
//! other.

use bytes::Bytes;

use super::{ManifestError, RawManifest};

/// Writes `original` with only the `manifests` entries at positions in `keep` (ascending).
pub fn subset_index(original: &RawManifest, keep: &[usize]) -> Result<RawManifest, ManifestError> {
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
            .map(|(_, e)| e)
            .collect();
        *entries = kept;
    }
    let bytes = serde_json::to_vec(&doc).map_err(json)?;
    RawManifest::new(Bytes::from(bytes), Some(original.media_type().as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

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

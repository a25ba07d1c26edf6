//! The cache's own roots: `index.json` of the OCI layout lists, per target reference
//! (`org.opencontainers.image.ref.name` = `host/repository:tag`), the root manifest that was
//! last applied there successfully. Garbage collection keeps everything reachable from these
//! (plus any roots the caller adds, such as lock files), so a cache shared by several
//! Mirrorfiles keeps what each of them mirrored last.
//!
//! `index.json` is the cache's own file (not upstream bytes), rewritten whole, sorted by name,
//! under `index.json.lock` so two processes recording at once lose nothing.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::lock::with_index_lock;
use super::{io_err, write_atomically, Store, StoreError};
use crate::oci::{Descriptor, Digest};

use crate::oci::descriptor::ANNOTATION_REF_NAME as REF_NAME;

/// One recorded root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    pub name: Option<String>,
    pub descriptor: Descriptor,
}

impl Store {
    /// Records `descriptor` as the root applied to `name`, replacing what `name` had.
    pub fn record_roots(&self, roots: &[(String, Descriptor)]) -> Result<(), StoreError> {
        if roots.is_empty() {
            return Ok(());
        }
        with_index_lock(&self.root, || {
            let mut index = self.read_index()?;
            let entries = index
                .get("manifests")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let mut named: BTreeMap<String, Value> = BTreeMap::new();
            let mut unnamed = Vec::new();
            for entry in entries {
                match entry
                    .pointer(&format!("/annotations/{}", REF_NAME.replace('/', "~1")))
                    .and_then(Value::as_str)
                {
                    Some(name) => {
                        named.insert(name.to_string(), entry.clone());
                    }
                    None => unnamed.push(entry),
                }
            }
            for (name, d) in roots {
                named.insert(
                    name.clone(),
                    json!({
                        "mediaType": d.media_type.as_str(),
                        "digest": d.digest.to_string(),
                        "size": d.size,
                        "annotations": { REF_NAME: name },
                    }),
                );
            }
            unnamed.extend(named.into_values());
            index["manifests"] = Value::Array(unnamed);
            let mut bytes = serde_json::to_vec_pretty(&index).map_err(|e| StoreError::Io {
                path: self.root.join("index.json"),
                source: std::io::Error::other(e),
            })?;
            bytes.push(b'\n');
            write_atomically(&self.tmp_dir(), &self.root.join("index.json"), &bytes)
        })
    }

    /// Every root `index.json` lists (entries it cannot read are skipped with a warning).
    pub fn roots(&self) -> Result<Vec<Root>, StoreError> {
        let index = self.read_index()?;
        let mut out = Vec::new();
        for entry in index
            .get("manifests")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            match serde_json::from_value::<Descriptor>(entry.clone()) {
                Ok(descriptor) => out.push(Root {
                    name: entry
                        .pointer(&format!("/annotations/{}", REF_NAME.replace('/', "~1")))
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    descriptor,
                }),
                Err(e) => tracing::warn!("cache index.json: skipping an unreadable entry: {e}"),
            }
        }
        Ok(out)
    }

    /// The digests `index.json` lists.
    pub fn root_digests(&self) -> Result<Vec<Digest>, StoreError> {
        Ok(self
            .roots()?
            .into_iter()
            .map(|r| r.descriptor.digest)
            .collect())
    }

    fn read_index(&self) -> Result<Value, StoreError> {
        let path = self.root.join("index.json");
        let bytes = std::fs::read(&path).map_err(io_err(&path))?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| StoreError::BadIndex {
            path: path.clone(),
            message: e.to_string(),
        })?;
        if !value.is_object() {
            return Err(StoreError::BadIndex {
                path,
                message: "not a JSON object".into(),
            });
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::MediaType;

    fn desc(text: &[u8]) -> Descriptor {
        Descriptor {
            media_type: MediaType::OciIndex,
            digest: Digest::sha256_of(text),
            size: text.len() as u64,
            platform: None,
            annotations: Default::default(),
            urls: Vec::new(),
            artifact_type: None,
        }
    }

    #[test]
    fn a_name_keeps_only_its_latest_root_and_other_names_stay() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        store
            .record_roots(&[("h/a:1".into(), desc(b"a1")), ("h/b:1".into(), desc(b"b1"))])
            .expect("record");
        store
            .record_roots(&[("h/a:1".into(), desc(b"a2"))])
            .expect("record again");
        let roots = store.roots().expect("roots");
        let names: Vec<_> = roots
            .iter()
            .map(|r| {
                (
                    r.name.clone().unwrap_or_default(),
                    r.descriptor.digest.clone(),
                )
            })
            .collect();
        assert_eq!(
            names,
            vec![
                ("h/a:1".to_string(), Digest::sha256_of(b"a2")),
                ("h/b:1".to_string(), Digest::sha256_of(b"b1"))
            ]
        );
    }
}

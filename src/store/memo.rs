//! Memos: small facts derived from cached content, so a rerun does not derive them again
//! (which compressed blob a layer became under given settings; the diff_id of a compressed
//! layer). Keyed by a blake3 hash of a versioned key text; a memo only ever *points at* content,
//! and a caller must check that content is still cached before trusting it, so a stale or
//! damaged memo costs a recomputation, never a wrong push.

use super::{write_atomically, Store, StoreError};

/// The memo folder; bump the version when the meaning of a key or a value changes.
const MEMO_DIR: &str = "memo-v1";

impl Store {
    fn memo_path(&self, key: &str) -> std::path::PathBuf {
        let hash = blake3::hash(key.as_bytes());
        self.root.join(MEMO_DIR).join(hash.to_hex().as_str())
    }

    /// The value remembered for `key`, if any (unreadable memos count as absent).
    pub fn memo_get(&self, key: &str) -> Option<String> {
        let text = std::fs::read_to_string(self.memo_path(key)).ok()?;
        let (stored_key, value) = text.split_once('\n')?;
        (stored_key == key).then(|| value.trim_end().to_string())
    }

    /// Remembers `value` for `key` (atomically; the last writer wins with an equal value).
    pub fn memo_put(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let path = self.memo_path(key);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(super::io_err(dir))?;
        }
        write_atomically(
            &self.tmp_dir(),
            &path,
            format!("{key}\n{value}\n").as_bytes(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_by_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        assert_eq!(store.memo_get("a"), None);
        store.memo_put("a", "sha256:00 12").expect("put");
        assert_eq!(store.memo_get("a").as_deref(), Some("sha256:00 12"));
        assert_eq!(store.memo_get("b"), None);
    }
}

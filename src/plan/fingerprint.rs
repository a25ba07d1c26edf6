//! The fingerprint of a saved plan: blake3 over the inputs the plan was computed from (the
//! Mirrorfile's bytes, the lock it implies, what every image resolved to, and the target state
//! the probe saw). `mirror apply plan.json` recomputes each part and refuses the plan when one
//! differs, naming which: a plan is only as good as the state it was made against.

use serde::{Deserialize, Serialize};

use super::TargetState;
use crate::resolve::ResolvedImage;

/// One blake3 per input, and the fingerprint over all of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inputs {
    pub mirrorfile: String,
    pub lock: String,
    pub images: String,
    pub target: String,
}

impl Inputs {
    /// Hashes every input.
    pub fn new<'a>(
        mirrorfile: &[u8],
        lock: &str,
        images: impl IntoIterator<Item = &'a ResolvedImage>,
        target: &str,
    ) -> Inputs {
        let mut h = blake3::Hasher::new();
        for image in images {
            let s = &image.source;
            for part in [
                s.reference.to_string(),
                s.target_repository.clone(),
                s.target_tag.clone().unwrap_or_default(),
                image.upstream_digest.to_string(),
                image.root.digest().to_string(),
            ] {
                field(&mut h, part.as_bytes());
            }
            for need in &image.manifests {
                field(&mut h, need.manifest.digest().to_string().as_bytes());
            }
            field(&mut h, b"\x00end");
        }
        Inputs {
            mirrorfile: hex(blake3::hash(mirrorfile)),
            lock: hex(blake3::hash(lock.as_bytes())),
            images: hex(h.finalize()),
            target: target.to_string(),
        }
    }

    /// `blake3:<hex>` over every part.
    pub fn fingerprint(&self) -> String {
        let mut h = blake3::Hasher::new();
        for part in [&self.mirrorfile, &self.lock, &self.images, &self.target] {
            field(&mut h, part.as_bytes());
        }
        format!("blake3:{}", h.finalize().to_hex())
    }

    /// Why `self` (the saved plan's inputs) no longer matches `now`; empty when it does.
    pub fn stale_reasons(&self, now: &Inputs) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.mirrorfile != now.mirrorfile {
            out.push("the Mirrorfile changed since the plan was made");
        }
        if self.lock != now.lock {
            out.push("the lock (mirrorfile.lock) differs from the one the plan was made with");
        }
        if self.images != now.images {
            out.push("the images resolve to other content (a list file or the lock changed)");
        }
        if self.target != now.target {
            out.push("the target changed since the plan was made (a tag moved, or content was added or removed)");
        }
        out
    }
}

/// A length-prefixed field, so `("ab","c")` and `("a","bc")` hash differently.
pub(super) fn field(h: &mut blake3::Hasher, bytes: &[u8]) {
    h.update(&(bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

fn hex(hash: blake3::Hash) -> String {
    hash.to_hex().to_string()
}

impl TargetState {
    /// blake3 over everything the probe learnt, in a fixed order.
    pub fn fingerprint(&self) -> String {
        let mut h = blake3::Hasher::new();
        for current in &self.current {
            field(
                &mut h,
                current
                    .as_ref()
                    .map(|d| d.to_string())
                    .unwrap_or_default()
                    .as_bytes(),
            );
        }
        field(&mut h, b"\x00manifests");
        for (repo, digest) in self.manifests() {
            field(&mut h, repo.as_bytes());
            field(&mut h, digest.to_string().as_bytes());
        }
        field(&mut h, b"\x00blobs");
        for (digest, repos) in self.blobs() {
            field(&mut h, digest.to_string().as_bytes());
            for repo in repos {
                field(&mut h, repo.as_bytes());
            }
        }
        h.finalize().to_hex().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_input_is_named_when_it_changes() {
        let a = Inputs::new(b"[target]", "version = 1\n", [], "t1");
        let same = Inputs::new(b"[target]", "version = 1\n", [], "t1");
        assert_eq!(a.fingerprint(), same.fingerprint());
        assert!(a.stale_reasons(&same).is_empty());
        let b = Inputs::new(b"[target] ", "version = 1\n", [], "t2");
        assert_ne!(a.fingerprint(), b.fingerprint());
        let reasons = a.stale_reasons(&b);
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert!(reasons[0].contains("Mirrorfile"));
        assert!(reasons[1].contains("target"));
        assert!(a.fingerprint().starts_with("blake3:"));
    }
}

//! Local sources in the lock (`[[archive]]`, `[[bundle]]`): files recorded as they were read
//! and what they produced, and how two records of them differ. They pin nothing (a file is what
//! it is); they let `--locked` notice a replaced file or a file that resolves differently.

use std::collections::{BTreeMap, BTreeSet};

use super::Change;
use crate::oci::{Digest, FileDigest};

/// A local source (an archive or a bundle) as it was read, and what it produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedFile {
    /// sha256 and size of the file as on disk; `None` for an OCI layout directory.
    pub file: Option<FileDigest>,
    /// By target reference (`repository:tag` as pushed, prefix applied, no host).
    pub images: BTreeMap<String, LockedTarget>,
}

/// One target reference a local source produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedTarget {
    /// What the target reference points at (an index, or a manifest).
    pub digest: Digest,
    /// (`os/arch[/variant]`, child manifest digest) of every platform this source gave, sorted.
    pub platforms: BTreeSet<(String, Digest)>,
}

/// Which kind of local source an entry is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FileKind {
    Archive,
    Bundle,
}

impl FileKind {
    /// The lock table (`[[archive]]`) and the word in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Archive => "archive",
            FileKind::Bundle => "bundle",
        }
    }
}

/// `sha256 <hex> (N bytes)`, or what a directory is.
pub(super) fn on_disk(file: &Option<FileDigest>) -> String {
    match file {
        Some(f) => format!("sha256 {} ({} bytes)", f.sha256.hex(), f.size),
        None => "a directory".into(),
    }
}

/// The changes between the `kind` entries of two locks: added, removed, other file, same file
/// with another result.
pub(super) fn diff(
    kind: FileKind,
    old: &BTreeMap<String, LockedFile>,
    new: &BTreeMap<String, LockedFile>,
    out: &mut Vec<Change>,
) {
    for (path, file) in new {
        let path = path.clone();
        match old.get(&path) {
            None => out.push(Change::FileAdded { kind, path }),
            Some(before) if before.file != file.file => out.push(Change::FileChanged {
                kind,
                path,
                locked: before.file.clone(),
                actual: file.file.clone(),
            }),
            Some(before) if before.images != file.images => out.push(Change::FileDerived {
                kind,
                path,
                targets: targets(&before.images, &file.images),
            }),
            Some(_) => {}
        }
    }
    for path in old.keys().filter(|p| !new.contains_key(*p)) {
        out.push(Change::FileRemoved {
            kind,
            path: path.clone(),
        });
    }
}

/// What differs between two target maps of one file, target by target.
fn targets(
    old: &BTreeMap<String, LockedTarget>,
    new: &BTreeMap<String, LockedTarget>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (target, now) in new {
        match old.get(target) {
            None => out.push(format!("+ {target}")),
            Some(was) if was.digest != now.digest => {
                out.push(format!("{target} {} → {}", was.digest, now.digest))
            }
            Some(was) if was != now => out.push(format!("{target}: other platforms")),
            Some(_) => {}
        }
    }
    for target in old.keys().filter(|t| !new.contains_key(*t)) {
        out.push(format!("- {target}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lock::{diff, Lockfile};

    fn local(seed: &[u8], root: &[u8]) -> LockedFile {
        LockedFile {
            file: Some(FileDigest {
                sha256: Digest::sha256_of(seed),
                size: seed.len() as u64,
            }),
            images: BTreeMap::from([(
                "mirror/app:1".to_string(),
                LockedTarget {
                    digest: Digest::sha256_of(root),
                    platforms: BTreeSet::new(),
                },
            )]),
        }
    }

    #[test]
    fn names_the_archive_and_both_file_digests() {
        let mut old = Lockfile::default();
        old.archives
            .insert("a-amd64.tar".into(), local(b"one", b"r1"));
        old.archives
            .insert("b-arm64.tar".into(), local(b"b", b"r2"));
        old.bundles.insert("k3s.tar".into(), local(b"k", b"r3"));
        let mut new = Lockfile::default();
        new.archives
            .insert("a-amd64.tar".into(), local(b"two", b"r4"));
        new.archives.insert("c.tar".into(), local(b"c", b"r5"));
        new.bundles.insert("k3s.tar".into(), local(b"k", b"r6"));
        let text: Vec<String> = diff(&old, &new).iter().map(|c| c.to_string()).collect();
        assert_eq!(
            text[0],
            format!(
                "~ archive a-amd64.tar: not the file the lock recorded: locked sha256 {} (3 bytes), on disk sha256 {} (3 bytes)",
                Digest::sha256_of(b"one").hex(),
                Digest::sha256_of(b"two").hex()
            )
        );
        assert_eq!(text[1], "+ archive c.tar: not in the lock");
        assert!(
            text[2].starts_with("- archive b-arm64.tar: in the lock"),
            "{}",
            text[2]
        );
        assert_eq!(
            text[3],
            format!(
                "~ bundle k3s.tar: same file, other result: mirror/app:1 {} → {}",
                Digest::sha256_of(b"r3"),
                Digest::sha256_of(b"r6")
            )
        );
        assert_eq!(text.len(), 4);
    }
}

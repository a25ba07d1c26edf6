//! What changed between two locks: the lines `mirror lock --update` prints and the entries
//! `--locked` names when it refuses.

use std::fmt;

use super::{local, FileKind, Lockfile};
use crate::oci::{Digest, FileDigest};

/// One difference, old lock → new lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A source the old lock did not have.
    Added {
        source: String,
    },
    /// A source the Mirrorfile no longer names.
    Removed {
        source: String,
    },
    /// The tag now resolves to another digest.
    Moved {
        source: String,
        from: Digest,
        to: Digest,
    },
    /// Same digest, but what is derived from it differs (platform selection edited).
    Derived {
        source: String,
    },
    /// A repository filter that the old lock did not have (new entry, or an edited filter).
    RepositoryAdded {
        name: String,
        filter: String,
    },
    RepositoryRemoved {
        name: String,
        filter: String,
    },
    /// The same filter chose other tags.
    Tags {
        name: String,
        added: Vec<String>,
        removed: Vec<String>,
    },
    /// An archive or bundle the old lock did not have.
    FileAdded {
        kind: FileKind,
        path: String,
    },
    /// An archive or bundle in the lock that is no longer read (file gone, entry removed).
    FileRemoved {
        kind: FileKind,
        path: String,
    },
    /// The file on disk is not the one the lock recorded (`None`: a layout directory).
    FileChanged {
        kind: FileKind,
        path: String,
        locked: Option<FileDigest>,
        actual: Option<FileDigest>,
    },
    /// The same file now produces other targets or digests (Mirrorfile edited: `images`,
    /// `compression`, `index`, a prefix; or a `mirror` that writes other layers).
    FileDerived {
        kind: FileKind,
        path: String,
        /// One per target that differs: `+ t`, `- t`, `t old → new`.
        targets: Vec<String>,
    },
}

impl Change {
    /// The source reference or repository name this change is about.
    pub fn subject(&self) -> &str {
        match self {
            Change::Added { source }
            | Change::Removed { source }
            | Change::Moved { source, .. }
            | Change::Derived { source } => source,
            Change::RepositoryAdded { name, .. }
            | Change::RepositoryRemoved { name, .. }
            | Change::Tags { name, .. } => name,
            Change::FileAdded { path, .. }
            | Change::FileRemoved { path, .. }
            | Change::FileChanged { path, .. }
            | Change::FileDerived { path, .. } => path,
        }
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Added { source } => write!(f, "+ {source}: not in the lock"),
            Change::Removed { source } => {
                write!(f, "- {source}: in the lock, no longer in the Mirrorfile")
            }
            Change::Moved { source, from, to } => write!(f, "~ {source}: {from} → {to}"),
            Change::Derived { source } => write!(
                f,
                "~ {source}: same digest, other platforms or subset index (Mirrorfile edited)"
            ),
            Change::RepositoryAdded { name, filter } => {
                write!(f, "+ {name} ({filter}): tag set not in the lock")
            }
            Change::RepositoryRemoved { name, filter } => {
                write!(
                    f,
                    "- {name} ({filter}): in the lock, no longer in the Mirrorfile"
                )
            }
            Change::Tags {
                name,
                added,
                removed,
            } => {
                write!(f, "~ {name}: tags")?;
                if !added.is_empty() {
                    write!(f, " added {}", added.join(", "))?;
                }
                if !removed.is_empty() {
                    if !added.is_empty() {
                        f.write_str(";")?;
                    }
                    write!(f, " removed {}", removed.join(", "))?;
                }
                Ok(())
            }
            Change::FileAdded { kind, path } => {
                write!(f, "+ {} {path}: not in the lock", kind.as_str())
            }
            Change::FileRemoved { kind, path } => write!(
                f,
                "- {} {path}: in the lock, no longer read (file missing or entry removed)",
                kind.as_str()
            ),
            Change::FileChanged {
                kind,
                path,
                locked,
                actual,
            } => write!(
                f,
                "~ {} {path}: not the file the lock recorded: locked {}, on disk {}",
                kind.as_str(),
                local::on_disk(locked),
                local::on_disk(actual)
            ),
            Change::FileDerived {
                kind,
                path,
                targets,
            } => write!(
                f,
                "~ {} {path}: same file, other result: {}",
                kind.as_str(),
                targets.join("; ")
            ),
        }
    }
}

/// Every difference, repositories first, each group in key order.
pub fn diff(old: &Lockfile, new: &Lockfile) -> Vec<Change> {
    let mut out = Vec::new();
    for ((name, filter), repo) in &new.repositories {
        match old.repositories.get(&(name.clone(), filter.clone())) {
            None => out.push(Change::RepositoryAdded {
                name: name.clone(),
                filter: filter.clone(),
            }),
            Some(before) if before.tags != repo.tags => out.push(Change::Tags {
                name: name.clone(),
                added: missing_from(&repo.tags, &before.tags),
                removed: missing_from(&before.tags, &repo.tags),
            }),
            Some(_) => {}
        }
    }
    for (name, filter) in old.repositories.keys() {
        if !new
            .repositories
            .contains_key(&(name.clone(), filter.clone()))
        {
            out.push(Change::RepositoryRemoved {
                name: name.clone(),
                filter: filter.clone(),
            });
        }
    }
    for (source, image) in &new.images {
        match old.images.get(source) {
            None => out.push(Change::Added {
                source: source.clone(),
            }),
            Some(before) if before.digest != image.digest => out.push(Change::Moved {
                source: source.clone(),
                from: before.digest.clone(),
                to: image.digest.clone(),
            }),
            Some(before) if before != image => out.push(Change::Derived {
                source: source.clone(),
            }),
            Some(_) => {}
        }
    }
    for source in old.images.keys() {
        if !new.images.contains_key(source) {
            out.push(Change::Removed {
                source: source.clone(),
            });
        }
    }
    for kind in [FileKind::Archive, FileKind::Bundle] {
        local::diff(kind, old.files(kind), new.files(kind), &mut out);
    }
    out
}

fn missing_from(a: &[String], b: &[String]) -> Vec<String> {
    a.iter().filter(|t| !b.contains(t)).cloned().collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::lock::{LockedImage, LockedRepository};

    fn image(seed: &[u8]) -> LockedImage {
        LockedImage {
            digest: Digest::sha256_of(seed),
            media_type: "m".into(),
            platforms: BTreeSet::new(),
            subset_indexes: BTreeSet::new(),
        }
    }

    #[test]
    fn names_every_kind_of_change() {
        let mut old = Lockfile::default();
        old.images.insert("r/a:1".into(), image(b"a"));
        old.images.insert("r/b:1".into(), image(b"b"));
        old.images.insert("r/c:1".into(), image(b"c"));
        old.repositories.insert(
            ("r/x".into(), "all tags".into()),
            LockedRepository {
                tags: vec!["1".into(), "2".into()],
            },
        );
        let mut new = old.clone();
        new.images.insert("r/a:1".into(), image(b"a2"));
        new.images.remove("r/b:1");
        new.images.insert("r/d:1".into(), image(b"d"));
        if let Some(c) = new.images.get_mut("r/c:1") {
            c.subset_indexes.insert(Digest::sha256_of(b"s"));
        }
        new.repositories.insert(
            ("r/x".into(), "all tags".into()),
            LockedRepository {
                tags: vec!["2".into(), "3".into()],
            },
        );
        let changes = diff(&old, &new);
        let text: Vec<String> = changes.iter().map(|c| c.to_string()).collect();
        assert_eq!(text[0], "~ r/x: tags added 3; removed 1");
        assert!(matches!(&changes[1], Change::Moved { source, .. } if source == "r/a:1"));
        assert_eq!(
            changes[2],
            Change::Derived {
                source: "r/c:1".into()
            }
        );
        assert_eq!(
            changes[3],
            Change::Added {
                source: "r/d:1".into()
            }
        );
        assert_eq!(
            changes[4],
            Change::Removed {
                source: "r/b:1".into()
            }
        );
        assert!(diff(&new, &new).is_empty());
    }
}

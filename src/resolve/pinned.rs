//! Resolved images → the lock they imply. Pure, and the only place a [`Lockfile`] is built, so
//! the same resolution always gives the same lock.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use super::{ExpandedRepository, Provenance, ResolvedImage};
use crate::lock::{FileKind, LockedFile, LockedImage, LockedRepository, LockedTarget, Lockfile};
use crate::model::{ArchiveSource, BundleSource, Origin, SourceLocation};
use crate::oci::FileDigest;

/// A local source as it was read: an archive file an `[[archives]]` entry matched, or a
/// `[[bundles]]` source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalFile {
    pub kind: FileKind,
    /// Its key in the lock: the path as written, relative to the Mirrorfile.
    pub name: String,
    /// The path as opened (what [`Provenance::Archives`] and [`SourceLocation::Bundle`] hold).
    pub path: PathBuf,
    /// sha256 and size as read; `None` for an OCI layout directory.
    pub file: Option<FileDigest>,
    /// The Mirrorfile entry that named it.
    pub origin: Origin,
}

impl LocalFile {
    /// The archive file `path`, matched by `entry` of the Mirrorfile at `mirrorfile`.
    pub fn archive(
        mirrorfile: &Path,
        entry: &ArchiveSource,
        path: &Path,
        file: &FileDigest,
    ) -> LocalFile {
        LocalFile {
            kind: FileKind::Archive,
            name: written_path(mirrorfile, &entry.pattern, path),
            path: path.to_path_buf(),
            file: Some(file.clone()),
            origin: entry.origin.clone(),
        }
    }

    /// A `[[bundles]]` source (`file` is `None` for a layout directory).
    pub fn bundle(bundle: &BundleSource, file: Option<FileDigest>) -> LocalFile {
        LocalFile {
            kind: FileKind::Bundle,
            name: bundle.written.clone(),
            path: bundle.path.clone(),
            file,
            origin: bundle.origin.clone(),
        }
    }
}

/// The name of a file a glob matched, as the user would write it: relative to the Mirrorfile's
/// directory (absolute only when the pattern is), `/`-separated, without `.` components, so the
/// lock does not depend on where the checkout lives.
pub fn written_path(mirrorfile: &Path, pattern: &str, file: &Path) -> String {
    let dir = mirrorfile.parent().unwrap_or(Path::new(""));
    let relative = if Path::new(pattern).is_absolute() {
        file
    } else {
        file.strip_prefix(dir).unwrap_or(file)
    };
    let mut out = String::new();
    for component in relative.components() {
        match component {
            Component::CurDir => continue,
            Component::RootDir => out.push('/'),
            other => {
                if !out.is_empty() && !out.ends_with('/') {
                    out.push('/');
                }
                out.push_str(&other.as_os_str().to_string_lossy());
            }
        }
    }
    out
}

/// The lock for `images`, `repositories` and the local sources `files` (entries merged by source
/// reference: two entries of one source with different platform selections share one pin and
/// list both selections).
pub fn lockfile(
    images: &[ResolvedImage],
    repositories: &[ExpandedRepository],
    files: &[LocalFile],
) -> Lockfile {
    let mut lock = Lockfile::default();
    for repo in repositories {
        lock.repositories.insert(
            (repo.source.name(), repo.source.filter.describe()),
            LockedRepository {
                tags: repo.tags.clone(),
            },
        );
    }
    // Bundle images are pinned by the bundle itself (and carry no registry to re-resolve).
    for image in images
        .iter()
        .filter(|i| i.source.location == SourceLocation::Registry)
    {
        let entry = lock
            .images
            .entry(image.source.reference.to_string())
            .or_insert_with(|| LockedImage {
                digest: image.upstream_digest.clone(),
                media_type: image.upstream_media_type.clone(),
                platforms: Default::default(),
                subset_indexes: Default::default(),
            });
        for (platform, digest) in &image.children {
            entry
                .platforms
                .insert((platform.to_string(), digest.clone()));
        }
        if image.rewritten() {
            entry.subset_indexes.insert(image.root.digest().clone());
        }
    }
    local_sources(&mut lock, images, files);
    lock
}

/// `[[archive]]` and `[[bundle]]`: every file read, and per target what it gave.
fn local_sources(lock: &mut Lockfile, images: &[ResolvedImage], files: &[LocalFile]) {
    let mut by_path: BTreeMap<(FileKind, &Path), &str> = BTreeMap::new();
    for local in files {
        by_path.insert((local.kind, &local.path), &local.name);
        table(lock, local.kind)
            .entry(local.name.clone())
            .or_insert_with(|| LockedFile {
                file: local.file.clone(),
                images: BTreeMap::new(),
            });
    }
    for image in images {
        // (file, platform, child digest) this image has from each local source.
        let given: Vec<(FileKind, &Path, String, crate::oci::Digest)> =
            match (&image.source.location, &image.provenance) {
                (SourceLocation::Archives, Provenance::Archives(list)) => list
                    .iter()
                    .map(|p| {
                        let platform = p.platform.to_string();
                        (
                            FileKind::Archive,
                            p.archive.as_path(),
                            platform,
                            p.manifest.clone(),
                        )
                    })
                    .collect(),
                (SourceLocation::Bundle { path, .. }, _) => image
                    .children
                    .iter()
                    .map(|(p, d)| (FileKind::Bundle, path.as_path(), p.to_string(), d.clone()))
                    .collect(),
                _ => continue,
            };
        let target = target_of(image);
        for (kind, path, platform, child) in given {
            let Some(name) = by_path.get(&(kind, path)) else {
                continue;
            };
            let Some(entry) = table(lock, kind).get_mut(*name) else {
                continue;
            };
            entry
                .images
                .entry(target.clone())
                .or_insert_with(|| LockedTarget {
                    digest: image.root.digest().clone(),
                    platforms: Default::default(),
                })
                .platforms
                .insert((platform, child));
        }
    }
}

fn table(lock: &mut Lockfile, kind: FileKind) -> &mut BTreeMap<String, LockedFile> {
    match kind {
        FileKind::Archive => &mut lock.archives,
        FileKind::Bundle => &mut lock.bundles,
    }
}

/// `repository:tag` as pushed (prefix applied, no host), or `repository@digest` without a tag.
fn target_of(image: &ResolvedImage) -> String {
    let repository = &image.source.target_repository;
    match &image.source.target_tag {
        Some(tag) => format!("{repository}:{tag}"),
        None => format!("{repository}@{}", image.root.digest()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_names_are_relative_to_the_mirrorfile_as_written() {
        let mf = Path::new("/srv/site/mirrorfile.toml");
        let name = |pattern: &str, file: &str| written_path(mf, pattern, Path::new(file));
        assert_eq!(name("*.tar", "/srv/site/a-amd64.tar"), "a-amd64.tar");
        assert_eq!(name("./img/*.tar", "/srv/site/./img/a.tar"), "img/a.tar");
        assert_eq!(name("../x/*.tar", "/srv/site/../x/a.tar"), "../x/a.tar");
        assert_eq!(
            name("/media/usb/*.tar", "/media/usb/a.tar"),
            "/media/usb/a.tar"
        );
        let here = Path::new("mirrorfile.toml");
        assert_eq!(written_path(here, "./a.tar", Path::new("./a.tar")), "a.tar");
        assert_eq!(written_path(here, "a.tar", Path::new("a.tar")), "a.tar");
    }
}

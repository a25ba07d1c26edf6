//! Resolution with the lock: read `mirrorfile.lock`, expand repositories and resolve images under
//! a [`Policy`], derive the new lock, compare, and (unless `--locked` refuses) write it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{OpsError, Session};
use crate::lock::{self, diff, Change, FileKind, LockError, Lockfile};
use crate::model::{Origin, SourceLocation};
use crate::oci::FileDigest;
use crate::resolve::archives::ArchiveStats;
use crate::resolve::{
    self, ExpandedRepository, LocalFile, Policy, Provenance, Refresh, ResolvedImage, Selector,
};

/// How a command treats the lock.
#[derive(Debug, Clone, Default)]
pub struct LockMode {
    /// `mirror lock --update [REF…]`: `None` reuses every entry, `Some([])` refreshes all.
    pub update: Option<Vec<String>>,
    /// `--locked`: any change to the lock is an error.
    pub locked: bool,
    /// Ask upstream where pinned tags point now (`plan`; never offline).
    pub check_drift: bool,
}

/// What resolving gave: the images, the lock they imply and how it differs from the old one.
#[derive(Debug)]
pub struct Resolution {
    pub resolved: Vec<ResolvedImage>,
    pub repositories: Vec<ExpandedRepository>,
    pub lock: Lockfile,
    /// `lock` as written to disk.
    pub lock_text: String,
    /// The lock before (none when there was no file).
    pub previous: Option<Lockfile>,
    /// previous → lock.
    pub changes: Vec<Change>,
    /// Non-fatal notes (tags skipped, filters that chose nothing).
    pub warnings: Vec<String>,
    /// What reading `[[archives]]` cost.
    pub archives: ArchiveStats,
    pub lock_path: PathBuf,
}

impl Session {
    /// Where this Mirrorfile's lock lives.
    pub fn lock_path(&self) -> PathBuf {
        lock::path_for(&self.model.path)
    }

    /// Resolves every source under the lock; nothing is written.
    pub async fn resolve(&self, mode: &LockMode) -> Result<Resolution, OpsError> {
        let lock_path = self.lock_path();
        let previous = Lockfile::load(&lock_path)?;
        if mode.locked && previous.is_none() {
            return Err(OpsError::NoLock { path: lock_path });
        }
        let refresh = match &mode.update {
            None => Refresh::Nothing,
            Some(refs) if refs.is_empty() => Refresh::All,
            Some(refs) => Refresh::Only(
                self.update_selectors(refs)
                    .map_err(OpsError::UnknownUpdate)?,
            ),
        };
        let policy = Policy {
            lock: previous.clone().unwrap_or_default(),
            refresh,
            locked: mode.locked,
            check_drift: mode.check_drift && !self.offline,
        };
        let mut errors = Vec::new();
        let mut repositories = Vec::new();
        for result in
            resolve::expand(&self.model.repositories, &self.probing_sources, &policy).await
        {
            match result {
                Ok(repo) => repositories.push(repo),
                Err(e) => errors.push(e),
            }
        }
        let (images, shadowed) = resolve::merged(&self.images, &repositories);
        let results =
            resolve::resolve_all_with(&images, &self.probing_sources, &self.store, &policy).await;
        let mut resolved = Vec::with_capacity(results.len());
        for result in results {
            match result {
                Ok(image) => resolved.push(image),
                Err(e) => errors.push(e),
            }
        }
        let from_archives = self.resolve_archives(&resolved, &mut errors).await?;
        let (archives, archive_files) = (from_archives.stats, from_archives.files);
        resolved.extend(from_archives.images);
        if !errors.is_empty() {
            return Err(OpsError::Resolve(errors));
        }
        let mut files = self.bundle_files.clone();
        files.extend(archive_files);
        let lock = resolve::lockfile(&resolved, &repositories, &files);
        let changes = diff(previous.as_ref().unwrap_or(&Lockfile::default()), &lock);
        if mode.locked && !changes.is_empty() {
            let mut origins = self.origins(&repositories);
            for file in &files {
                origins
                    .entry(file.name.clone())
                    .or_insert_with(|| file.origin.clone());
            }
            let changes = changes
                .into_iter()
                .map(|c| {
                    let origin = origins.get(c.subject()).cloned();
                    (c, origin)
                })
                .collect();
            return Err(OpsError::LockedChanges {
                path: lock_path,
                changes,
            });
        }
        note_replaced_files(&mut resolved, &changes, &files, &lock_path);
        let mut warnings: Vec<String> = repositories
            .iter()
            .flat_map(|r| r.warnings.iter().cloned())
            .chain(shadowed)
            .chain(from_archives.warnings)
            .collect();
        let model = &self.model;
        if model.images.is_empty()
            && model.repositories.is_empty()
            && model.archives.is_empty()
            && model.bundles.is_empty()
        {
            warnings.push(format!(
                "{} lists nothing to mirror: add [[images]], [[archives]] or [[bundles]] \
                 entries (`mirror init` writes a starter)",
                model.path.display()
            ));
        }
        Ok(Resolution {
            lock_text: lock::write(&lock),
            resolved,
            repositories,
            lock,
            previous,
            changes,
            warnings,
            archives,
            lock_path,
        })
    }

    /// Writes the lock when its bytes would change; returns whether it wrote.
    pub fn write_lock(&self, resolution: &Resolution) -> Result<bool, LockError> {
        let current = std::fs::read_to_string(&resolution.lock_path).ok();
        if current.as_deref() == Some(resolution.lock_text.as_str()) {
            return Ok(false);
        }
        resolution.lock.save(&resolution.lock_path)?;
        Ok(true)
    }

    /// Parses `--update` references; each must name something the Mirrorfile has (the error is
    /// the first that does not).
    fn update_selectors(&self, refs: &[String]) -> Result<Vec<Selector>, String> {
        let mut out = Vec::new();
        for text in refs {
            let selector = Selector::parse(text).ok_or_else(|| text.clone())?;
            // `alpine:3.20` names one source; `…/alpine` every source of that repository.
            let only = Refresh::Only(vec![selector.clone()]);
            let known = self.images.iter().any(|i| only.image(&i.reference))
                || self
                    .model
                    .repositories
                    .iter()
                    .any(|r| r.name() == selector.reference.name());
            if !known {
                return Err(text.clone());
            }
            out.push(selector);
        }
        Ok(out)
    }

    /// Where each source reference and repository is declared.
    fn origins(&self, repositories: &[ExpandedRepository]) -> BTreeMap<String, Origin> {
        let mut out = BTreeMap::new();
        for repo in repositories {
            out.insert(repo.source.name(), repo.source.origin.clone());
        }
        for image in resolve::images_of(&self.images, repositories) {
            out.entry(image.reference.to_string())
                .or_insert(image.origin);
        }
        for repo in &self.model.repositories {
            out.entry(repo.name())
                .or_insert_with(|| repo.origin.clone());
        }
        out
    }
}

/// The plan's counterpart of tag drift for local sources: every image made from an archive or
/// bundle that is not the file the lock recorded says so (the lock is then rewritten; with
/// `--locked` the run has already been refused).
fn note_replaced_files(
    resolved: &mut [ResolvedImage],
    changes: &[Change],
    files: &[LocalFile],
    lock_path: &Path,
) {
    let short = |file: &Option<FileDigest>| match file {
        Some(f) => f.sha256.short(),
        None => "a directory".into(),
    };
    let lock_name = lock_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    for change in changes {
        let Change::FileChanged {
            kind,
            path,
            locked,
            actual,
        } = change
        else {
            continue;
        };
        let Some(local) = files.iter().find(|f| f.kind == *kind && &f.name == path) else {
            continue;
        };
        let note = format!(
            "{} {path} is not the file {lock_name} recorded ({} → {}); the lock now records this one",
            kind.as_str(),
            short(locked),
            short(actual)
        );
        for image in resolved.iter_mut().filter(|i| made_from(i, local)) {
            image.warnings.push(note.clone());
        }
    }
}

fn made_from(image: &ResolvedImage, local: &LocalFile) -> bool {
    match (local.kind, &image.source.location, &image.provenance) {
        (FileKind::Archive, _, Provenance::Archives(list)) => {
            list.iter().any(|p| p.archive == local.path)
        }
        (FileKind::Bundle, SourceLocation::Bundle { path, .. }, _) => *path == local.path,
        _ => false,
    }
}

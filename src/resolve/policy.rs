//! How resolution treats `mirrorfile.lock`: reuse its pins (the default), re-resolve some or all
//! of them (`mirror lock --update [REF…]`), refuse to add any (`--locked`), and whether to ask
//! upstream where a pinned tag points now (drift, `plan` only).
//!
//! A reused entry costs no source request: the root digest comes from the lock and the
//! manifests from the cache, so a rerun with a complete lock and cache asks sources nothing.

use super::{Drift, ResolveError, ResolveErrorKind};
use crate::endpoint::Source;
use crate::lock::{LockedImage, LockedRepository, Lockfile};
use crate::model::{ImageSource, RepositorySource, SourceLocation};
use crate::oci::{Digest, Reference};

/// Which lock entries to resolve again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Refresh {
    /// None: every entry the lock has is reused.
    #[default]
    Nothing,
    /// Every entry.
    All,
    /// Entries matching one of these (a reference with a tag or digest matches that source; a
    /// bare `registry/repository` matches every source of that repository and its tag list).
    Only(Vec<Selector>),
}

/// One `--update` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    pub reference: Reference,
    /// Written without tag or digest: the whole repository.
    pub bare: bool,
}

impl Selector {
    /// Parses `registry/repo[:tag][@digest]`; `None` when it is not a reference.
    pub fn parse(text: &str) -> Option<Selector> {
        let reference = text.parse::<Reference>().ok()?;
        let last = text.rsplit('/').next().unwrap_or(text);
        Some(Selector {
            reference,
            bare: !text.contains('@') && !last.contains(':'),
        })
    }
}

/// The lock-aware policy of one resolution.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub lock: Lockfile,
    pub refresh: Refresh,
    /// `--locked`: a source without an entry is an error instead of a network lookup.
    pub locked: bool,
    /// Ask upstream where each pinned tag points now, and report when it moved.
    pub check_drift: bool,
}

impl Refresh {
    /// Whether the entry of this source reference is to be resolved again.
    pub fn image(&self, reference: &Reference) -> bool {
        match self {
            Refresh::Nothing => false,
            Refresh::All => true,
            Refresh::Only(selectors) => selectors.iter().any(|s| {
                if s.bare {
                    s.reference.name() == reference.name()
                } else {
                    &s.reference == reference
                }
            }),
        }
    }

    /// Whether the tag set of this repository (`registry/path`) is to be listed again.
    pub fn repository(&self, name: &str) -> bool {
        match self {
            Refresh::Nothing => false,
            Refresh::All => true,
            Refresh::Only(selectors) => selectors
                .iter()
                .any(|s| s.bare && s.reference.name() == name),
        }
    }
}

impl Policy {
    /// The lock entry to reuse for `image`, unless it is to be resolved again.
    pub fn pinned(&self, image: &ImageSource) -> Option<&LockedImage> {
        // Bundle images are fixed by the bundle's own content: the lock is about registries.
        if image.location != SourceLocation::Registry || self.refresh.image(&image.reference) {
            return None;
        }
        self.lock.images.get(&image.reference.to_string())
    }

    /// The locked tag set of a repository entry, unless it is to be listed again.
    pub fn locked_tags(&self, repo: &RepositorySource) -> Option<&LockedRepository> {
        if self.refresh.repository(&repo.name()) {
            return None;
        }
        self.lock
            .repositories
            .get(&(repo.name(), repo.filter.describe()))
    }
}

/// What the policy decided for one image's root.
pub(super) struct Pinned {
    /// The root digest when known without resolving the tag (pinned reference, or the lock).
    pub digest: Option<Digest>,
    /// The media type the lock records, when the digest came from the lock.
    pub media_type: Option<String>,
    pub from_lock: bool,
    pub drift: Option<Drift>,
    /// Set when checking for drift failed (not fatal: the lock still pins the digest).
    pub warning: Option<String>,
}

/// The root digest of `image` under `policy`: the reference's own digest, else the lock's (with
/// one HEAD upstream when checking drift), else `None` (resolve the tag), unless `--locked`
/// forbids that.
pub(super) async fn pin(
    image: &ImageSource,
    source: &dyn Source,
    policy: &Policy,
) -> Result<Pinned, ResolveError> {
    let reference = &image.reference;
    let mut out = Pinned {
        digest: reference.digest().cloned(),
        media_type: None,
        from_lock: false,
        drift: None,
        warning: None,
    };
    if out.digest.is_some() {
        return Ok(out);
    }
    let Some(locked) = policy.pinned(image) else {
        if policy.locked && image.location == SourceLocation::Registry {
            return Err(ResolveError::new(image, ResolveErrorKind::NotInLock));
        }
        return Ok(out);
    };
    out.digest = Some(locked.digest.clone());
    out.media_type = Some(locked.media_type.clone());
    out.from_lock = true;
    if policy.check_drift {
        match source.resolve(reference).await {
            Ok(now) if now != locked.digest => {
                out.drift = Some(Drift {
                    locked: locked.digest.clone(),
                    upstream: now,
                })
            }
            Ok(_) => {}
            Err(e) => {
                out.warning = Some(format!(
                    "{reference}: could not check whether upstream moved the tag: {e}"
                ))
            }
        }
    }
    Ok(out)
}

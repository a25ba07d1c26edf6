//! Whole repositories → images: the tag set comes from the lock when it has the entry (same
//! repository, same filter), else from the source's tag list through the filter.

use std::collections::BTreeMap;

use futures_util::{stream, StreamExt};

use super::{Policy, ResolveError, ResolveErrorKind, Sources};
use crate::model::{ImageSource, Origin, RepositorySource};
use crate::oci::Reference;

/// One repository entry with the tags it stands for.
#[derive(Debug, Clone)]
pub struct ExpandedRepository {
    pub source: RepositorySource,
    /// Sorted.
    pub tags: Vec<String>,
    /// Whether the tags came from the lock (no request was made).
    pub from_lock: bool,
    pub warnings: Vec<String>,
}

/// The tag set of every repository entry, concurrently, in Mirrorfile order.
pub async fn expand(
    repositories: &[RepositorySource],
    sources: &Sources,
    policy: &Policy,
) -> Vec<Result<ExpandedRepository, ResolveError>> {
    stream::iter(repositories.iter())
        .map(|repo| expand_one(repo, sources, policy))
        .buffered(4)
        .collect()
        .await
}

async fn expand_one(
    repo: &RepositorySource,
    sources: &Sources,
    policy: &Policy,
) -> Result<ExpandedRepository, ResolveError> {
    let error = |kind| ResolveError {
        image: repo.name(),
        origin: repo.origin.clone(),
        kind: Box::new(kind),
    };
    if let Some(locked) = policy.locked_tags(repo) {
        let warnings = if policy.check_drift {
            tag_drift(repo, &locked.tags, sources).await
        } else {
            Vec::new()
        };
        return Ok(ExpandedRepository {
            source: repo.clone(),
            tags: locked.tags.clone(),
            from_lock: true,
            warnings,
        });
    }
    if policy.locked {
        return Err(error(ResolveErrorKind::NotInLock));
    }
    let Some(source) = sources.get(&repo.registry) else {
        return Err(error(ResolveErrorKind::NoSource(repo.registry.clone())));
    };
    let listed = source
        .list_tags(&repo.repository)
        .await
        .map_err(|e| error(ResolveErrorKind::Endpoint(e)))?;
    let chosen = repo.filter.choose(&listed);
    let mut warnings: Vec<String> = chosen
        .warnings
        .into_iter()
        .map(|w| format!("{}: {w}", repo.name()))
        .collect();
    if chosen.tags.is_empty() {
        warnings.push(format!(
            "{}: no tag matches {} (declared at {})",
            repo.name(),
            repo.filter.describe(),
            repo.origin
        ));
    }
    Ok(ExpandedRepository {
        source: repo.clone(),
        tags: chosen.tags,
        from_lock: false,
        warnings,
    })
}

/// What the filter would choose upstream now, against the locked tags: `plan` says so (one tag
/// list request per repository, as drift costs one HEAD per pinned tag), so a `latest = 3` user
/// learns of a new release without the lock changing under them. A failed listing is no drift.
async fn tag_drift(repo: &RepositorySource, locked: &[String], sources: &Sources) -> Vec<String> {
    let Some(source) = sources.get(&repo.registry) else {
        return Vec::new();
    };
    let Ok(listed) = source.list_tags(&repo.repository).await else {
        return Vec::new();
    };
    let now = repo.filter.choose(&listed).tags;
    let added: Vec<&str> = now
        .iter()
        .filter(|t| !locked.contains(t))
        .map(String::as_str)
        .collect();
    let dropped: Vec<&str> = locked
        .iter()
        .filter(|t| !now.contains(t))
        .map(String::as_str)
        .collect();
    if added.is_empty() && dropped.is_empty() {
        return Vec::new();
    }
    let mut change = Vec::new();
    if !added.is_empty() {
        change.push(format!("add {}", added.join(", ")));
    }
    if !dropped.is_empty() {
        change.push(format!("drop {}", dropped.join(", ")));
    }
    vec![format!(
        "{}: upstream tags moved on: the filter `{}` would now {}; keeping the locked tags \
         (`mirror lock --update {}` takes them)",
        repo.name(),
        repo.filter.describe(),
        change.join(" and "),
        repo.name()
    )]
}

/// The images of expanded repositories, after `explicit` ones: a tag an explicit entry already
/// mirrors to the same target is left to that entry (its settings are the more specific).
pub fn images_of(explicit: &[ImageSource], expanded: &[ExpandedRepository]) -> Vec<ImageSource> {
    merged(explicit, expanded).0
}

/// [`images_of`], and a warning for every repository tag an explicit entry shadows with other
/// content (an entry whose `to` lands on a tag the filter chose): the filter's copy is dropped,
/// which must not happen silently.
pub fn merged(
    explicit: &[ImageSource],
    expanded: &[ExpandedRepository],
) -> (Vec<ImageSource>, Vec<String>) {
    // Target (repository, tag) → the source reference that has it, and where it is declared.
    let mut taken: BTreeMap<(String, Option<String>), (Reference, Origin)> = BTreeMap::new();
    for image in explicit {
        taken
            .entry((image.target_repository.clone(), image.target_tag.clone()))
            .or_insert_with(|| (image.reference.clone(), image.origin.clone()));
    }
    let mut out = explicit.to_vec();
    let mut warnings = Vec::new();
    for repo in expanded {
        for tag in &repo.tags {
            let Some(image) = repo.source.image(tag) else {
                continue;
            };
            let key = (image.target_repository.clone(), image.target_tag.clone());
            match taken.get(&key) {
                None => {
                    taken.insert(key, (image.reference.clone(), image.origin.clone()));
                    out.push(image);
                }
                Some((reference, origin)) if *reference != image.reference => {
                    warnings.push(format!(
                        "{}:{} is also chosen by the repository filter declared at {} (from {}), \
                         but the entry declared at {} copies {} there; keeping that entry",
                        key.0,
                        key.1.as_deref().unwrap_or(""),
                        repo.source.origin,
                        image.reference,
                        origin,
                        reference
                    ));
                }
                Some(_) => {}
            }
        }
    }
    (out, warnings)
}

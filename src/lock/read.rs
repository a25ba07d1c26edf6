//! Reading `mirrorfile.lock` back, with spans: a damaged or hand-edited lock is reported at the
//! line that is wrong, with the fix (usually: delete it and run `mirror lock`).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::Path;

use miette::{LabeledSpan, NamedSource};
use serde::Deserialize;
use toml::Spanned;

use super::{FileKind, LockedFile, LockedImage, LockedRepository, LockedTarget, Lockfile, VERSION};
use crate::oci::{Digest, FileDigest};

/// A lock that cannot be read or used (boxed: one pointer wide on the happy path).
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error(transparent)]
#[diagnostic(transparent)]
pub struct LockError(Box<Details>);

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{message}")]
struct Details {
    message: String,
    #[source_code]
    source_code: Option<NamedSource<String>>,
    #[label(collection)]
    labels: Vec<LabeledSpan>,
    #[help]
    help: Option<String>,
}

const REGENERATE: &str = "`mirror lock` writes a fresh one (delete the file first; entries \
     are then resolved again from the registries)";

impl LockError {
    pub(super) fn io(path: &Path, err: std::io::Error) -> LockError {
        LockError(Box::new(Details {
            message: format!("cannot read or write `{}`: {err}", path.display()),
            source_code: None,
            labels: Vec::new(),
            help: Some("check the file's permissions".into()),
        }))
    }

    fn at(path: &Path, text: &str, span: Range<usize>, message: String, help: &str) -> LockError {
        LockError(Box::new(Details {
            message: format!("{}: {message}", path.display()),
            source_code: Some(NamedSource::new(
                path.display().to_string(),
                text.to_string(),
            )),
            labels: vec![LabeledSpan::new_with_span(Some("here".into()), span)],
            help: Some(help.to_string()),
        }))
    }
}

#[derive(Deserialize)]
struct LockToml {
    version: Option<Spanned<i64>>,
    #[serde(default)]
    repository: Vec<RepositoryToml>,
    #[serde(default)]
    image: Vec<ImageToml>,
    #[serde(default)]
    archive: Vec<LocalToml>,
    #[serde(default)]
    bundle: Vec<LocalToml>,
}

/// `[[archive]]` and `[[bundle]]`.
#[derive(Deserialize)]
struct LocalToml {
    path: Spanned<String>,
    sha256: Option<Spanned<String>>,
    size: Option<u64>,
    #[serde(default)]
    image: Vec<TargetToml>,
}

#[derive(Deserialize)]
struct TargetToml {
    target: Spanned<String>,
    digest: Spanned<String>,
    #[serde(default)]
    platforms: Vec<ChildToml>,
}

#[derive(Deserialize)]
struct RepositoryToml {
    name: String,
    filter: String,
    tags: Vec<String>,
}

#[derive(Deserialize)]
struct ImageToml {
    source: Spanned<String>,
    digest: Spanned<String>,
    media_type: String,
    #[serde(default)]
    platforms: Vec<ChildToml>,
    #[serde(default)]
    subset_indexes: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
struct ChildToml {
    platform: String,
    digest: Spanned<String>,
}

pub(super) fn parse(path: &Path, text: &str) -> Result<Lockfile, LockError> {
    let doc: LockToml = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let message = e.message().trim().replace('\n', "; ");
        LockError::at(path, text, span, message, REGENERATE)
    })?;
    let Some(version) = doc.version else {
        return Err(LockError::at(
            path,
            text,
            0..0,
            "no `version` key".into(),
            REGENERATE,
        ));
    };
    if *version.get_ref() < 1 || *version.get_ref() > i64::from(VERSION) {
        let message = format!(
            "lock format version {} is not one this mirror reads (1 to {VERSION})",
            version.get_ref()
        );
        let help = "a newer `mirror` wrote this lock: upgrade mirror, or regenerate the lock \
             with this one (`mirror lock` after deleting the file)";
        return Err(LockError::at(path, text, version.span(), message, help));
    }
    let digest = |s: &Spanned<String>| {
        s.get_ref().parse::<Digest>().map_err(|e| {
            LockError::at(
                path,
                text,
                s.span(),
                format!("invalid digest: {e}"),
                REGENERATE,
            )
        })
    };
    let mut lock = Lockfile::default();
    for repo in doc.repository {
        let mut tags = repo.tags;
        tags.sort();
        tags.dedup();
        lock.repositories
            .insert((repo.name, repo.filter), LockedRepository { tags });
    }
    for image in doc.image {
        let mut platforms = BTreeSet::new();
        for child in &image.platforms {
            platforms.insert((child.platform.clone(), digest(&child.digest)?));
        }
        let mut subset_indexes = BTreeSet::new();
        for d in &image.subset_indexes {
            subset_indexes.insert(digest(d)?);
        }
        let locked = LockedImage {
            digest: digest(&image.digest)?,
            media_type: image.media_type,
            platforms,
            subset_indexes,
        };
        let span = image.source.span();
        if lock
            .images
            .insert(image.source.into_inner(), locked)
            .is_some()
        {
            return Err(LockError::at(
                path,
                text,
                span,
                "this source has two entries".into(),
                REGENERATE,
            ));
        }
    }
    for (kind, entries) in [
        (FileKind::Archive, doc.archive),
        (FileKind::Bundle, doc.bundle),
    ] {
        for entry in entries {
            let span = entry.path.span();
            let file = match (&entry.sha256, entry.size) {
                (Some(hex), Some(size)) => Some(FileDigest {
                    sha256: digest(&Spanned::new(
                        hex.span(),
                        format!("sha256:{}", hex.get_ref()),
                    ))?,
                    size,
                }),
                (None, None) => None,
                _ => {
                    return Err(LockError::at(
                        path,
                        text,
                        span,
                        "`sha256` and `size` go together".into(),
                        REGENERATE,
                    ))
                }
            };
            let mut images = BTreeMap::new();
            for image in entry.image {
                let mut platforms = BTreeSet::new();
                for child in &image.platforms {
                    platforms.insert((child.platform.clone(), digest(&child.digest)?));
                }
                let target_span = image.target.span();
                let produced = LockedTarget {
                    digest: digest(&image.digest)?,
                    platforms,
                };
                if images.insert(image.target.into_inner(), produced).is_some() {
                    return Err(LockError::at(
                        path,
                        text,
                        target_span,
                        "this target has two entries".into(),
                        REGENERATE,
                    ));
                }
            }
            let locked = LockedFile { file, images };
            let table = match kind {
                FileKind::Archive => &mut lock.archives,
                FileKind::Bundle => &mut lock.bundles,
            };
            if table.insert(entry.path.into_inner(), locked).is_some() {
                return Err(LockError::at(
                    path,
                    text,
                    span,
                    format!("this {} has two entries", kind.as_str()),
                    REGENERATE,
                ));
            }
        }
    }
    Ok(lock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_point_at_the_line_and_say_what_to_do() {
        let path = Path::new("mirrorfile.lock");
        let newer = parse(path, "version = 7\n").expect_err("newer version");
        assert!(newer.to_string().contains("version 7"), "{newer}");
        let bad = "version = 1\n[[image]]\nsource = \"a/b:1\"\ndigest = \"sha256:zz\"\nmedia_type = \"x\"\n";
        let err = parse(path, bad).expect_err("bad digest");
        assert!(err.to_string().contains("invalid digest"), "{err}");
        let label = err.0.labels.first().expect("label");
        assert_eq!(
            &bad[label.offset()..label.offset() + label.len()],
            "\"sha256:zz\""
        );
        assert!(parse(path, "").is_err(), "no version");
        let bad = "version = 1\n[[archive]]\npath = \"a.tar\"\nsha256 = \"zz\"\nsize = 1\n";
        let err = parse(path, bad).expect_err("bad sha256");
        assert!(err.to_string().contains("invalid digest"), "{err}");
        let label = err.0.labels.first().expect("label");
        assert_eq!(&bad[label.offset()..label.offset() + label.len()], "\"zz\"");
        let half = "version = 1\n[[archive]]\npath = \"a.tar\"\nsize = 1\n";
        let err = parse(path, half).expect_err("size without sha256");
        assert!(err.to_string().contains("go together"), "{err}");
    }
}

//! The lowered image list, deduplicated: two declarations of one target tag must agree.
//!
//! List files overlap in practice (two k3s releases' lists, a list plus a hand-written entry), so
//! an identical repeat is dropped silently. Two *different* images for one target tag cannot both
//! win, and which one does would depend on ordering, so that is an error naming both places.

use std::collections::BTreeMap;
use std::ops::Range;
use std::rc::Rc;

use super::error::{ErrorKind, MirrorfileError, SourceFile};
use crate::model::ImageSource;

/// Where an image was declared: the span of its reference in the Mirrorfile or a list file.
pub(crate) struct Site {
    pub file: Rc<SourceFile>,
    pub span: Range<usize>,
}

impl Site {
    /// `file:line` of the reference itself, matching where the error's carets point.
    fn position(&self) -> String {
        let line = self.file.line_of(self.span.start);
        format!("{}:{line}", self.file.path.display())
    }
}

/// The images lowered so far, in declaration order.
#[derive(Default)]
pub(crate) struct Images {
    sources: Vec<ImageSource>,
    sites: Vec<Site>,
    /// (target repository, target tag or `@digest`) → index into `sources`.
    by_target: BTreeMap<(String, String), usize>,
}

impl Images {
    pub fn into_sources(self) -> Vec<ImageSource> {
        self.sources
    }

    /// Adds an image unless an identical one is already there.
    pub fn add(&mut self, source: ImageSource, site: Site) -> Result<(), MirrorfileError> {
        // A digest-only target is keyed by its digest: the same digest is the same content.
        let key_tag = match (&source.target_tag, source.reference.digest()) {
            (Some(tag), _) => tag.clone(),
            (None, Some(digest)) => format!("@{digest}"),
            (None, None) => String::new(),
        };
        let key = (source.target_repository.clone(), key_tag);
        let Some(&i) = self.by_target.get(&key) else {
            self.by_target.insert(key, self.sources.len());
            self.sources.push(source);
            self.sites.push(site);
            return Ok(());
        };
        let first = &self.sources[i];
        let same_settings =
            first.platforms == source.platforms && first.index_mode == source.index_mode;
        if first.reference == source.reference && same_settings {
            return Ok(());
        }
        Err(conflict(first, &self.sites[i], &source, &site))
    }
}

fn conflict(
    first: &ImageSource,
    first_site: &Site,
    second: &ImageSource,
    site: &Site,
) -> MirrorfileError {
    let target = match &second.target_tag {
        Some(tag) => format!("{}:{tag}", second.target_repository),
        None => second.target_repository.clone(),
    };
    let (message, help) = if first.reference == second.reference {
        (
            format!(
                "`{}` is declared twice with different platforms or index mode ({} and {})",
                second.reference,
                first_site.position(),
                site.position()
            ),
            "declare it once, with the settings you want",
        )
    } else {
        (
            format!(
                "two different images would be pushed to `{target}` ({} and {})",
                first_site.position(),
                site.position()
            ),
            "rename one of them with `to = \"repository:tag\"`, or remove one",
        )
    };
    let second_label = format!("`{}` goes to `{target}`", second.reference);
    let first_label = format!("`{}` already goes there", first.reference);
    let err = site.file.error(
        ErrorKind::Conflict,
        site.span.clone(),
        message,
        second_label,
    );
    // One miette label points into one file; a second file gets its own related snippet.
    let err = if first_site.file.path == site.file.path {
        err.with_label(first_site.span.clone(), first_label)
    } else {
        err.with_related(first_site.file.error(
            ErrorKind::Conflict,
            first_site.span.clone(),
            "first declared here",
            first_label,
        ))
    };
    err.with_help(help)
}

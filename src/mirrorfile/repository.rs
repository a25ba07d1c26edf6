//! `[[images]] repository = "…"` with `tags = { regex, semver, latest }`: lowered into a
//! [`RepositorySource`] whose filter is compiled here, so a bad regex or semver requirement is
//! reported at its span in the Mirrorfile before anything talks to a registry.

use toml::Spanned;

use super::error::MirrorfileError;
use super::lower::{Lowerer, Settings, TargetName};
use super::naming::target_name;
use super::schema::{ImageEntry, TagsTable};
use crate::model::{Origin, RepositorySource, TagFilter};
use crate::oci::Reference;

const REPOSITORY_HELP: &str =
    "write `registry/repository` without a tag or digest, e.g. `docker.io/library/alpine`";

impl Lowerer {
    /// One `[[images]]` entry with `repository`.
    pub(super) fn repository(
        &self,
        entry: &Spanned<ImageEntry>,
        target: &TargetName<'_>,
        defaults: &Settings,
    ) -> Result<RepositorySource, MirrorfileError> {
        let e = entry.get_ref();
        let Some(repository) = &e.repository else {
            return Err(self.file.invalid(
                entry.span(),
                "no `repository` in this entry",
                "here",
                REPOSITORY_HELP,
            ));
        };
        let others = [("ref", &e.reference), ("list", &e.list), ("to", &e.to)];
        if let Some((key, Some(other))) = others.iter().find(|(_, v)| v.is_some()) {
            let msg = format!("`{key}` cannot be used with `repository`");
            let help = "a `repository` entry copies many tags under the source's own name \
                 (use `[target] prefix` to move them); split other images into their own entries";
            return Err(self
                .file
                .invalid(other.span(), msg, "not with `repository`", help)
                .with_label(repository.span(), "`repository` here"));
        }
        let text = repository.get_ref();
        let parsed = text.parse::<Reference>().map_err(|err| {
            let msg = format!("invalid repository: {err}");
            self.file
                .invalid(repository.span(), msg, "not a repository", REPOSITORY_HELP)
        })?;
        let has_tag = text
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':'));
        if parsed.digest().is_some() || has_tag {
            return Err(self.file.invalid(
                repository.span(),
                format!("`{text}` names one image, not a repository"),
                "has a tag or digest",
                "use `ref` for one image, or drop the tag and choose tags with `tags = { … }`",
            ));
        }
        let Some(tags) = &e.tags else {
            return Err(self.file.invalid(
                repository.span(),
                "a `repository` entry needs `tags`",
                "which tags?",
                "add e.g. `tags = { semver = \">=3.18\", latest = 3 }`, or `tags = { regex = \".*\" }` for every tag",
            ));
        };
        let filter = self.tag_filter(tags.get_ref())?;
        let settings = self.settings(e, defaults)?;
        let name_check = Reference::new(parsed.registry(), parsed.repository(), Some("x"), None)
            .map_err(|err| {
                self.file
                    .invalid(repository.span(), err.to_string(), "here", REPOSITORY_HELP)
            })?;
        let (target_repository, _) = target_name(target.host, target.prefix, &name_check, None)
            .map_err(|msg| {
                self.file.invalid(
                    repository.span(),
                    msg,
                    "too long",
                    "choose a shorter prefix",
                )
            })?;
        Ok(RepositorySource {
            registry: parsed.registry().to_string(),
            repository: parsed.repository().to_string(),
            filter,
            platforms: settings.platforms,
            index_mode: settings.index,
            target_repository,
            origin: Origin {
                file: self.file.path.clone(),
                line: self.file.line_of(entry.span().start),
            },
        })
    }

    fn tag_filter(&self, tags: &TagsTable) -> Result<TagFilter, MirrorfileError> {
        let regex = match &tags.regex {
            Some(re) => Some(regex::Regex::new(re.get_ref()).map_err(|err| {
                // The crate's message draws its own caret over several lines; the last line says
                // what is wrong, and the label below already points at the pattern.
                let text = err.to_string();
                let detail = text
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or_default()
                    .trim()
                    .trim_start_matches("error: ")
                    .to_string();
                self.file.invalid(
                    re.span(),
                    format!("invalid regex: {detail}"),
                    "not a regular expression",
                    "write a Rust `regex` pattern, e.g. `^3\\\\.\\\\d+$` (in TOML, `'^3\\.\\d+$'` avoids the double backslashes)",
                )
            })?),
            None => None,
        };
        let semver = match &tags.semver {
            Some(req) => Some(semver::VersionReq::parse(req.get_ref()).map_err(|err| {
                self.file.invalid(
                    req.span(),
                    format!("invalid semver requirement: {err}"),
                    "not a version requirement",
                    "write comparators such as `>=3.18`, `^1.2`, `~1.28.0` or `>=1.27, <1.30`",
                )
            })?),
            None => None,
        };
        let latest = match &tags.latest {
            Some(n) => match usize::try_from(*n.get_ref()) {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    return Err(self.file.invalid(
                        n.span(),
                        "`latest` must be a positive number",
                        "not a count",
                        "write how many of the highest tags to keep, e.g. `latest = 3`",
                    ))
                }
            },
            None => None,
        };
        Ok(TagFilter {
            regex,
            semver,
            latest,
        })
    }
}

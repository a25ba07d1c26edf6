//! Schema → [`Model`]: defaults applied, references and platforms parsed, target names computed,
//! list files expanded, conflicts found.
//!
//! All cross-field rules live here rather than in serde attributes, so each can report its own
//! message at the precise span (`to` next to `list`, an empty `platforms`, two images landing on
//! one target tag). The only I/O is reading list files and checking that CA files exist: both are
//! named by the Mirrorfile and an error about them belongs at the line that names them.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use toml::Spanned;

use super::error::{ErrorKind, MirrorfileError, SourceFile};
use super::image_list;
use super::schema::{self, ImageEntry, MirrorfileToml};
use crate::model::{
    ImageSource, IndexMode, Model, Origin, PlatformSelection, RegistrySettings, Target, TlsMode,
};
use crate::oci::{Platform, Reference};

const REFERENCE_HELP: &str = "write `[registry/]repository[:tag][@sha256:digest]` in lowercase, \
     e.g. `docker.io/library/alpine:3.20`";
const PLATFORM_HELP: &str =
    "write each platform as `os/architecture[/variant]`, e.g. `linux/amd64` or `linux/arm/v7`";
const PATH_HELP: &str = "use lowercase path components separated by `/` (letters, digits, and \
     `.`, `_`, `__`, `-` between them), e.g. `infra/pause`";

/// Lowers a parsed Mirrorfile. `file` is the Mirrorfile; relative paths resolve against its
/// directory.
pub(crate) fn lower(doc: MirrorfileToml, file: SourceFile) -> Result<Model, MirrorfileError> {
    let file = Rc::new(file);
    let dir = file
        .path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let lowerer = Lowerer { file, dir };
    let target = lowerer.target(doc.target.as_ref())?;
    let registries = lowerer.registries(&doc.registry)?;
    let defaults = Defaults {
        platforms: match doc.defaults.as_ref().and_then(|d| d.platforms.as_ref()) {
            Some(p) => lowerer.platforms(p)?,
            None => PlatformSelection::All,
        },
        index: index_mode(doc.defaults.as_ref().and_then(|d| d.index.as_ref())),
    };
    let mut images = Images::default();
    for entry in &doc.images {
        lowerer.entry(entry, &target, &defaults, &mut images)?;
    }
    let cache_dir = doc
        .cache
        .and_then(|c| c.dir)
        .map(|d| lowerer.dir.join(d.into_inner()));
    Ok(Model {
        path: lowerer.file.path.clone(),
        target: target.model,
        registries,
        images: images.sources,
        cache_dir,
    })
}

struct Lowerer {
    file: Rc<SourceFile>,
    dir: PathBuf,
}

struct Defaults {
    platforms: PlatformSelection,
    index: IndexMode,
}

/// The lowered target plus the parts target naming needs.
struct LoweredTarget {
    model: Target,
    host: String,
    prefix: Option<String>,
}

/// Where an image was declared: the span of its reference in the Mirrorfile or a list file.
struct Site {
    file: Rc<SourceFile>,
    span: Range<usize>,
}

/// The images lowered so far, with what is needed to detect duplicates and conflicts.
#[derive(Default)]
struct Images {
    sources: Vec<ImageSource>,
    sites: Vec<Site>,
    /// (target repository, target tag or `@digest`) → index into `sources`.
    by_target: BTreeMap<(String, String), usize>,
}

impl Lowerer {
    fn error(
        &self,
        kind: ErrorKind,
        span: Range<usize>,
        msg: String,
        label: &str,
    ) -> MirrorfileError {
        self.file.error(kind, span, msg, label)
    }

    fn target(
        &self,
        table: Option<&Spanned<schema::TargetTable>>,
    ) -> Result<LoweredTarget, MirrorfileError> {
        let Some(table) = table else {
            return Err(self
                .error(
                    ErrorKind::Invalid,
                    0..0,
                    "missing [target] table".into(),
                    "expected here",
                )
                .with_help(
                    "add `[target]` with `registry = \"host:port\"`, the registry to mirror into",
                ));
        };
        let t = table.get_ref();
        // One key per kind of target; exactly one must be set. `layout` and `bundle` join here.
        let Some(registry) = &t.registry else {
            return Err(self
                .error(
                    ErrorKind::Invalid,
                    table.span(),
                    "[target] does not say where to mirror to".into(),
                    "no `registry` in this table",
                )
                .with_help("add `registry = \"host:port\"`, the registry to mirror into"));
        };
        let host = self.host(registry)?;
        let prefix = match &t.prefix {
            Some(prefix) => {
                let value = prefix.get_ref().trim_matches('/');
                check_repo_path(value).map_err(|reason| {
                    self.error(
                        ErrorKind::Invalid,
                        prefix.span(),
                        format!("invalid prefix: {reason}"),
                        "not a repository path",
                    )
                    .with_help(PATH_HELP)
                })?;
                Some(value.to_string())
            }
            None => None,
        };
        Ok(LoweredTarget {
            model: Target::Registry {
                host: host.clone(),
                prefix: prefix.clone(),
            },
            host,
            prefix,
        })
    }

    /// Validates a registry host and normalises Docker Hub's aliases to `docker.io`.
    fn host(&self, host: &Spanned<String>) -> Result<String, MirrorfileError> {
        normalise_host(host.get_ref()).ok_or_else(|| {
            self.error(ErrorKind::Invalid, host.span(), format!("`{}` is not a registry host", host.get_ref()), "not a host")
                .with_help("write a host name with a `.` or a `:port` (or `localhost`), e.g. `registry.example.internal:5000`")
        })
    }

    fn registries(
        &self,
        tables: &BTreeMap<Spanned<String>, schema::RegistryTable>,
    ) -> Result<BTreeMap<String, RegistrySettings>, MirrorfileError> {
        let mut out = BTreeMap::new();
        let mut spans: BTreeMap<String, Range<usize>> = BTreeMap::new();
        // Report in file order, not key order, so the first error is the first in the file.
        let mut keys: Vec<_> = tables.iter().collect();
        keys.sort_by_key(|(k, _)| k.span().start);
        for (key, table) in keys {
            let host = self.host(key)?;
            if let Some(first) = spans.get(&host) {
                return Err(self
                    .error(
                        ErrorKind::Conflict,
                        key.span(),
                        format!("registry `{host}` is configured twice"),
                        "second table",
                    )
                    .with_label(first.clone(), "first table")
                    .with_help(
                        "these names are the same registry; merge the two tables into one",
                    ));
            }
            spans.insert(host.clone(), key.span());
            let tls = match table.tls.as_ref().map(|t| *t.get_ref()) {
                None | Some(schema::Tls::Verify) => TlsMode::Verify,
                Some(schema::Tls::SkipVerify) => TlsMode::SkipVerify,
                Some(schema::Tls::Http) => TlsMode::Http,
            };
            let ca = match &table.ca {
                Some(ca) => {
                    let path = self.dir.join(ca.get_ref());
                    if !path.is_file() {
                        return Err(self
                            .error(ErrorKind::Invalid, ca.span(), format!("CA file `{}` does not exist", path.display()), "no such file")
                            .with_help("the path is relative to the Mirrorfile's directory; fix it or remove `ca`"));
                    }
                    Some(path)
                }
                None => None,
            };
            out.insert(host, RegistrySettings { tls, ca });
        }
        Ok(out)
    }

    fn platforms(
        &self,
        list: &Spanned<Vec<Spanned<String>>>,
    ) -> Result<PlatformSelection, MirrorfileError> {
        if list.get_ref().is_empty() {
            return Err(self
                .error(
                    ErrorKind::Invalid,
                    list.span(),
                    "`platforms` is empty".into(),
                    "selects no platform",
                )
                .with_help("omit the key to copy all platforms, or list the ones to copy"));
        }
        let mut out: Vec<Platform> = Vec::new();
        for item in list.get_ref() {
            let platform = item.get_ref().parse::<Platform>().map_err(|e| {
                self.error(
                    ErrorKind::Invalid,
                    item.span(),
                    format!("invalid platform: {e}"),
                    "not a platform",
                )
                .with_help(PLATFORM_HELP)
            })?;
            if !out.iter().any(|p| p.normalized() == platform.normalized()) {
                out.push(platform);
            }
        }
        Ok(PlatformSelection::Only(out))
    }

    fn entry(
        &self,
        entry: &Spanned<ImageEntry>,
        target: &LoweredTarget,
        defaults: &Defaults,
        images: &mut Images,
    ) -> Result<(), MirrorfileError> {
        let e = entry.get_ref();
        let platforms = match &e.platforms {
            Some(p) => self.platforms(p)?,
            None => defaults.platforms.clone(),
        };
        let index_mode = e
            .index
            .as_ref()
            .map_or(defaults.index, |i| index_mode(Some(i)));
        let line = self.file.line_of(entry.span().start);
        match (&e.reference, &e.list) {
            (Some(reference), Some(list)) => Err(self
                .error(
                    ErrorKind::Invalid,
                    list.span(),
                    "an [[images]] entry takes `ref` or `list`, not both".into(),
                    "`list` here",
                )
                .with_label(reference.span(), "`ref` here")
                .with_help("split it into two [[images]] entries")),
            (None, None) => Err(self
                .error(
                    ErrorKind::Invalid,
                    entry.span(),
                    "this [[images]] entry has neither `ref` nor `list`".into(),
                    "no image in this entry",
                )
                .with_help(
                    "add `ref = \"docker.io/library/alpine:3.20\"` or `list = \"images.txt\"`",
                )),
            (Some(reference), None) => {
                let source = reference.get_ref().parse::<Reference>().map_err(|err| {
                    self.error(
                        ErrorKind::Invalid,
                        reference.span(),
                        format!("invalid image reference: {err}"),
                        "not a valid image reference",
                    )
                    .with_help(REFERENCE_HELP)
                })?;
                let to = e.to.as_ref().map(|to| self.to(to)).transpose()?;
                let name_span = e.to.as_ref().map_or(reference.span(), |t| t.span());
                let (repo, tag) = target_name(target, &source, to.as_ref()).map_err(|err| {
                    self.error(
                        ErrorKind::Invalid,
                        name_span,
                        err,
                        "gives an invalid target name",
                    )
                })?;
                let site = Site {
                    file: self.file.clone(),
                    span: reference.span(),
                };
                let origin = Origin {
                    file: self.file.path.clone(),
                    line,
                };
                images.add(
                    image(source, platforms, index_mode, repo, tag, origin),
                    site,
                )
            }
            (None, Some(list)) => {
                if let Some(to) = &e.to {
                    return Err(self
                        .error(ErrorKind::Invalid, to.span(), "`to` cannot be used with `list`".into(), "renames one image")
                        .with_label(list.span(), "but this names many")
                        .with_help("list images keep their own names; use `[target] prefix`, or give the image its own [[images]] entry with `ref` and `to`"));
                }
                let list_file = self.read_list(list)?;
                for item in image_list::parse(&list_file)? {
                    let (repo, tag) =
                        target_name(target, &item.reference, None).map_err(|err| {
                            list_file.error(
                                ErrorKind::Invalid,
                                item.span.clone(),
                                err,
                                "gives an invalid target name",
                            )
                        })?;
                    let origin = Origin {
                        file: list_file.path.clone(),
                        line: item.line,
                    };
                    let site = Site {
                        file: list_file.clone(),
                        span: item.span,
                    };
                    images.add(
                        image(
                            item.reference,
                            platforms.clone(),
                            index_mode,
                            repo,
                            tag,
                            origin,
                        ),
                        site,
                    )?;
                }
                Ok(())
            }
        }
    }

    fn read_list(&self, list: &Spanned<String>) -> Result<Rc<SourceFile>, MirrorfileError> {
        let path = self.dir.join(list.get_ref());
        let text = std::fs::read_to_string(&path).map_err(|err| {
            self.error(ErrorKind::Io, list.span(), format!("cannot read list file `{}`", path.display()), "named here")
                .with_help("the path is relative to the Mirrorfile's directory; check that the file exists and is UTF-8 text")
                .with_io(err)
        })?;
        let file = Rc::new(SourceFile::new(path, text));
        if file
            .text
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        {
            return Err(self
                .error(
                    ErrorKind::Invalid,
                    list.span(),
                    format!("list file `{}` names no images", file.path.display()),
                    "empty list",
                )
                .with_help("add one image reference per line, or remove this entry"));
        }
        Ok(file)
    }

    /// Parses `to = "path[:tag]"`.
    fn to(&self, to: &Spanned<String>) -> Result<(String, Option<String>), MirrorfileError> {
        let value = to.get_ref().as_str();
        let invalid = |reason: String| {
            self.error(
                ErrorKind::Invalid,
                to.span(),
                format!("invalid `to`: {reason}"),
                "not `repository[:tag]`",
            )
            .with_help(format!(
                "{PATH_HELP}, optionally with `:tag`, e.g. `infra/pause:stable`"
            ))
        };
        if value.contains('@') {
            return Err(invalid("a target cannot be pinned to a digest".into()));
        }
        let last_slash = value.rfind('/').map_or(0, |i| i + 1);
        let (path, tag) = match value[last_slash..].find(':') {
            Some(colon) => (
                &value[..last_slash + colon],
                Some(&value[last_slash + colon + 1..]),
            ),
            None => (value, None),
        };
        check_repo_path(path).map_err(invalid)?;
        if let Some(tag) = tag {
            if !crate::oci::reference::valid_tag(tag) {
                return Err(invalid(format!("`{tag}` is not a valid tag")));
            }
        }
        Ok((path.to_string(), tag.map(str::to_string)))
    }
}

impl Images {
    /// Adds an image unless an identical one is already there; two different images for one
    /// target tag are an error naming both places.
    fn add(&mut self, source: ImageSource, site: Site) -> Result<(), MirrorfileError> {
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
        let (first, first_site) = (&self.sources[i], &self.sites[i]);
        let same_settings =
            first.platforms == source.platforms && first.index_mode == source.index_mode;
        if first.reference == source.reference && same_settings {
            return Ok(());
        }
        let target = match &source.target_tag {
            Some(tag) => format!("{}:{tag}", source.target_repository),
            None => source.target_repository.clone(),
        };
        let (message, help) = if first.reference == source.reference {
            (
                format!(
                    "`{}` is declared twice with different platforms or index mode ({} and {})",
                    source.reference, first.origin, source.origin
                ),
                "declare it once, with the settings you want",
            )
        } else {
            (
                format!(
                    "two different images would be pushed to `{target}` ({} and {})",
                    first.origin, source.origin
                ),
                "rename one of them with `to = \"repository:tag\"`, or remove one",
            )
        };
        let second_label = format!("`{}` goes to `{target}`", source.reference);
        let first_label = format!("`{}` already goes there", first.reference);
        let err = site.file.error(
            ErrorKind::Conflict,
            site.span.clone(),
            message,
            second_label,
        );
        let err =
            if Rc::ptr_eq(&first_site.file, &site.file) || first_site.file.path == site.file.path {
                err.with_label(first_site.span.clone(), first_label)
            } else {
                err.with_related(first_site.file.error(
                    ErrorKind::Conflict,
                    first_site.span.clone(),
                    "first declared here",
                    first_label,
                ))
            };
        Err(err.with_help(help))
    }
}

fn image(
    reference: Reference,
    platforms: PlatformSelection,
    index_mode: IndexMode,
    target_repository: String,
    target_tag: Option<String>,
    origin: Origin,
) -> ImageSource {
    ImageSource {
        reference,
        platforms,
        index_mode,
        target_repository,
        target_tag,
        origin,
    }
}

fn index_mode(index: Option<&Spanned<schema::Index>>) -> IndexMode {
    match index.map(|i| *i.get_ref()) {
        None | Some(schema::Index::Rewrite) => IndexMode::Rewrite,
        Some(schema::Index::Sparse) => IndexMode::Sparse,
    }
}

/// The target repository and tag for `source`: `to`'s path or the source path, under the prefix;
/// `to`'s tag, else the source tag (none for a digest-only source).
fn target_name(
    target: &LoweredTarget,
    source: &Reference,
    to: Option<&(String, Option<String>)>,
) -> Result<(String, Option<String>), String> {
    let path = to.map_or(source.repository(), |(path, _)| path.as_str());
    let repo = match &target.prefix {
        Some(prefix) => format!("{prefix}/{path}"),
        None => path.to_string(),
    };
    let tag = to
        .and_then(|(_, tag)| tag.clone())
        .or_else(|| source.tag().map(str::to_string));
    // The whole name must still be a valid reference (the 255-character limit, mostly).
    Reference::new(&target.host, &repo, tag.as_deref(), None)
        .map_err(|e| format!("invalid target name: {e}"))?;
    Ok((repo, tag))
}

/// `host` or `host:port`, as a reference's first component; Docker Hub aliases become `docker.io`.
fn normalise_host(host: &str) -> Option<String> {
    let looks_like_host = host.contains('.') || host.contains(':') || host == "localhost";
    if !looks_like_host || host.contains('/') || host.contains('@') {
        return None;
    }
    let parsed = Reference::new(host, "x", None, None).ok()?;
    Some(parsed.registry().to_string())
}

/// Checks a repository path (`a/b/c`), returning why it is invalid.
fn check_repo_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("the repository path is empty".into());
    }
    for component in path.split('/') {
        let ok = !component.is_empty()
            && !component.contains([':', '@'])
            && format!("mirror.invalid/{component}")
                .parse::<Reference>()
                .is_ok();
        if !ok {
            return Err(format!(
                "`{component}` is not a valid repository path component"
            ));
        }
    }
    Ok(())
}

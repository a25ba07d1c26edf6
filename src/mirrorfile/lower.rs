//! Schema → [`Model`]: defaults applied, references and platforms parsed, target names computed,
//! list files expanded, conflicts found.
//!
//! All cross-field rules live here rather than in serde attributes, so each can report its own
//! message at the precise span (`to` next to `list`, an empty `platforms`, a missing `registry`).
//! The only I/O is reading list files and checking that CA files exist: both are named by the
//! Mirrorfile, and an error about them belongs at the line that names them.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use toml::Spanned;

use super::archives;
use super::conflicts::{Images, Site};
use super::error::{ErrorKind, MirrorfileError, SourceFile};
use super::image_list;
use super::naming::{normalise_host, parse_to, target_name, Rename};
use super::schema::{self, ImageEntry, MirrorfileToml, Platforms};
use crate::model::{
    ImageSource, IndexMode, LayerCompression, Model, Origin, PlatformSelection, SourceLocation,
    Target,
};
use crate::oci::{Platform, Reference};

const REFERENCE_HELP: &str = "write `[registry/]repository[:tag][@sha256:digest]` in lowercase, \
     e.g. `docker.io/library/alpine:3.20`";
const PLATFORM_HELP: &str =
    "write each platform as `os/architecture[/variant]`, e.g. `linux/amd64` or `linux/arm/v7`";
const PATH_HELP: &str = "use lowercase path components separated by `/` (letters, digits, and \
     `.`, `_`, `__`, `-` between them), e.g. `infra/pause`";
const HOST_HELP: &str = "write a host name with a `.` or a `:port` (or `localhost`), \
     e.g. `registry.example.internal:5000`";
pub(super) const RELATIVE_HELP: &str = "the path is relative to the Mirrorfile's directory";

mod targets;

/// Lowers a parsed Mirrorfile. Relative paths resolve against `file`'s directory.
pub(crate) fn lower(doc: MirrorfileToml, file: SourceFile) -> Result<Model, MirrorfileError> {
    let file = Rc::new(file);
    let dir = file
        .path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let cx = Lowerer { file, dir };
    let target_kind = cx.target(doc.target.as_ref())?;
    let (registries, registry_spans) = cx.registries(&doc.registry)?;
    let defaults = doc.defaults.as_ref();
    let default_compression = archives::compression(
        defaults.and_then(|d| d.compression.as_ref()),
        LayerCompression::default(),
    );
    let defaults = Settings {
        platforms: match defaults.and_then(|d| d.platforms.as_ref()) {
            Some(p) => cx.platforms(p)?,
            None => PlatformSelection::All,
        },
        index: index_mode(defaults.and_then(|d| d.index.as_ref()), IndexMode::Rewrite),
    };
    let target = TargetName {
        host: match &target_kind {
            Target::Registry { host, .. } => host,
            // A layout has no host; names are checked under a short stand-in.
            Target::Layout { .. } | Target::Bundle { .. } => "localhost",
        },
        prefix: target_kind.prefix(),
    };
    // Every entry is checked even after one fails, so a file with several mistakes is fixed in
    // one round: the first error is the report, the others follow it as related diagnostics.
    let mut errors = Vec::new();
    let mut images = Images::default();
    let mut repositories = Vec::new();
    for entry in &doc.images {
        let lowered = if entry.get_ref().repository.is_some() {
            cx.repository(entry, &target, &defaults)
                .map(|repository| repositories.push(repository))
        } else {
            cx.entry(entry, &target, &defaults, &mut images)
        };
        errors.extend(lowered.err());
    }
    let mut bundles = Vec::new();
    for entry in &doc.bundles {
        match cx.bundle(entry, &defaults) {
            Ok(bundle) => bundles.push(bundle),
            Err(e) => errors.push(e),
        }
    }
    let mut archives = Vec::new();
    for entry in &doc.archives {
        match archives::lower(&cx.file, &cx.dir, entry, default_compression) {
            Ok(archive) => archives.push(archive),
            Err(e) => errors.push(e),
        }
    }
    if let Some(error) = MirrorfileError::joined(errors) {
        return Err(error);
    }
    let images = images.into_sources();
    let target_host = match &target_kind {
        Target::Registry { host, .. } => Some(host.as_str()),
        Target::Layout { .. } | Target::Bundle { .. } => None,
    };
    let warnings = cx.unused_registries(
        &registry_spans,
        images
            .iter()
            .filter(|i| i.location == SourceLocation::Registry)
            .map(|i| i.reference.registry())
            .chain(repositories.iter().map(|r| r.registry.as_str()))
            .chain(target_host),
    );
    let cache_dir = doc
        .cache
        .and_then(|c| c.dir)
        .map(|d| cx.dir.join(d.into_inner()));
    Ok(Model {
        path: cx.file.path.clone(),
        target: target_kind.clone(),
        registries,
        images,
        bundles,
        archives,
        repositories,
        cache_dir,
        idle_timeout: None,
        warnings,
    })
}

pub(super) struct Lowerer {
    /// The Mirrorfile.
    pub(super) file: Rc<SourceFile>,
    /// Its directory, for relative paths.
    pub(super) dir: PathBuf,
}

/// Platform and index settings, from `[defaults]` or an entry.
#[derive(Clone)]
pub(super) struct Settings {
    pub(super) platforms: PlatformSelection,
    pub(super) index: IndexMode,
}

/// What target naming needs from `[target]`.
pub(super) struct TargetName<'a> {
    pub(super) host: &'a str,
    pub(super) prefix: Option<&'a str>,
}

impl Lowerer {
    /// Validates a registry host and normalises Docker Hub's aliases to `docker.io`.
    pub(super) fn host(&self, host: &Spanned<String>) -> Result<String, MirrorfileError> {
        normalise_host(host.get_ref()).ok_or_else(|| {
            let msg = format!("`{}` is not a registry host", host.get_ref());
            self.file.invalid(host.span(), msg, "not a host", HOST_HELP)
        })
    }

    fn platforms(&self, value: &Spanned<Platforms>) -> Result<PlatformSelection, MirrorfileError> {
        let list = match value.get_ref() {
            Platforms::All => return Ok(PlatformSelection::All),
            Platforms::List(list) => list,
        };
        if list.is_empty() {
            let help = "write `platforms = \"all\"` (or omit the key) to copy all platforms, or \
                        list the ones to copy";
            return Err(self.file.invalid(
                value.span(),
                "`platforms` is empty",
                "selects nothing",
                help,
            ));
        }
        let mut out: Vec<Platform> = Vec::new();
        for item in list {
            let platform = item.get_ref().parse::<Platform>().map_err(|e| {
                let msg = format!("invalid platform: {e}");
                self.file
                    .invalid(item.span(), msg, "not a platform", PLATFORM_HELP)
            })?;
            if !out.iter().any(|p| p.normalized() == platform.normalized()) {
                out.push(platform);
            }
        }
        Ok(PlatformSelection::Only(out))
    }

    /// One `[[images]]` entry: a `ref`, or every line of a `list`.
    fn entry(
        &self,
        entry: &Spanned<ImageEntry>,
        target: &TargetName<'_>,
        defaults: &Settings,
        images: &mut Images,
    ) -> Result<(), MirrorfileError> {
        let e = entry.get_ref();
        let settings = self.settings(e, defaults)?;
        if let Some(tags) = &e.tags {
            let help = "`tags` filters the tags of a whole repository: write `repository = \"registry/path\"` instead of `ref`/`list`";
            return Err(self.file.invalid(
                tags.span(),
                "`tags` needs `repository`",
                "only with `repository`",
                help,
            ));
        }
        match (&e.reference, &e.list) {
            (Some(reference), Some(list)) => {
                let msg = "an [[images]] entry takes `ref` or `list`, not both";
                Err(self
                    .file
                    .invalid(
                        list.span(),
                        msg,
                        "`list` here",
                        "split it into two [[images]] entries",
                    )
                    .with_label(reference.span(), "`ref` here"))
            }
            (None, None) => {
                let msg = "this [[images]] entry has none of `ref`, `list`, `repository`";
                let help =
                    "add `ref = \"docker.io/library/alpine:3.20\"` or `list = \"images.txt\"`";
                Err(self
                    .file
                    .invalid(entry.span(), msg, "no image in this entry", help))
            }
            (Some(reference), None) => {
                let source = reference.get_ref().parse::<Reference>().map_err(|err| {
                    let msg = format!("invalid image reference: {err}");
                    self.file.invalid(
                        reference.span(),
                        msg,
                        "not an image reference",
                        REFERENCE_HELP,
                    )
                })?;
                let to = match &e.to {
                    Some(to) => Some(self.to(to)?),
                    None => None,
                };
                let name_span = e.to.as_ref().map_or(reference.span(), |t| t.span());
                let (repo, tag) = target_name(target.host, target.prefix, &source, to.as_ref())
                    .map_err(|msg| {
                        self.file
                            .invalid(name_span, msg, "too long", "choose a shorter name")
                    })?;
                let origin = Origin {
                    file: self.file.path.clone(),
                    line: self.file.line_of(entry.span().start),
                };
                let site = Site {
                    file: self.file.clone(),
                    span: reference.span(),
                };
                images.add(image(source, &settings, repo, tag, origin), site)
            }
            (None, Some(list)) => {
                if let Some(to) = &e.to {
                    let help = "list images keep their own names; use `[target] prefix`, or give \
                         the image its own [[images]] entry with `ref` and `to`";
                    let msg = "`to` cannot be used with `list`";
                    return Err(self
                        .file
                        .invalid(to.span(), msg, "renames one image", help)
                        .with_label(list.span(), "but this names many"));
                }
                let list_file = self.read_list(list)?;
                for item in image_list::parse(&list_file)? {
                    let (repo, tag) =
                        target_name(target.host, target.prefix, &item.reference, None).map_err(
                            |msg| {
                                let span = item.span.clone();
                                list_file.invalid(span, msg, "too long", "use a shorter `prefix`")
                            },
                        )?;
                    let origin = Origin {
                        file: list_file.path.clone(),
                        line: item.line,
                    };
                    let site = Site {
                        file: list_file.clone(),
                        span: item.span,
                    };
                    images.add(image(item.reference, &settings, repo, tag, origin), site)?;
                }
                Ok(())
            }
        }
    }

    /// An entry's platform and index settings, falling back to `[defaults]`.
    pub(super) fn settings(
        &self,
        e: &ImageEntry,
        defaults: &Settings,
    ) -> Result<Settings, MirrorfileError> {
        Ok(Settings {
            platforms: match &e.platforms {
                Some(p) => self.platforms(p)?,
                None => defaults.platforms.clone(),
            },
            index: index_mode(e.index.as_ref(), defaults.index),
        })
    }

    fn read_list(&self, list: &Spanned<String>) -> Result<Rc<SourceFile>, MirrorfileError> {
        let path = self.dir.join(list.get_ref());
        let text = super::read_text_file(&path).map_err(|err| {
            let msg = format!("cannot read list file `{}`", path.display());
            let help = format!("{RELATIVE_HELP}; check that the file exists and is UTF-8 text");
            self.file
                .error(ErrorKind::Io, list.span(), msg, "named here")
                .with_help(help)
                .with_io(err)
        })?;
        let file = Rc::new(SourceFile::new(path, text));
        let blank = |l: &str| l.trim().is_empty() || l.trim_start().starts_with('#');
        if file.text.lines().all(blank) {
            let msg = format!("list file `{}` names no images", file.path.display());
            let help = "add one image reference per line, or remove this entry";
            return Err(self.file.invalid(list.span(), msg, "empty list", help));
        }
        Ok(file)
    }

    fn to(&self, to: &Spanned<String>) -> Result<Rename, MirrorfileError> {
        parse_to(to.get_ref()).map_err(|reason| {
            let msg = format!("invalid `to`: {reason}");
            let help = format!("{PATH_HELP}, optionally with `:tag`, e.g. `infra/pause:stable`");
            self.file
                .invalid(to.span(), msg, "not `repository[:tag]`", help)
        })
    }
}

fn image(
    reference: Reference,
    settings: &Settings,
    target_repository: String,
    target_tag: Option<String>,
    origin: Origin,
) -> ImageSource {
    ImageSource {
        reference,
        location: SourceLocation::Registry,
        platforms: settings.platforms.clone(),
        index_mode: settings.index,
        target_repository,
        target_tag,
        origin,
    }
}

fn index_mode(index: Option<&Spanned<schema::Index>>, default: IndexMode) -> IndexMode {
    match index.map(|i| *i.get_ref()) {
        None => default,
        Some(schema::Index::Rewrite) => IndexMode::Rewrite,
        Some(schema::Index::Sparse) => IndexMode::Sparse,
    }
}

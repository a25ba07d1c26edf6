//! `[target]` (exactly one of `registry`, `layout`, `bundle`) and `[[bundles]]` entries.

use toml::Spanned;

use super::{index_mode, Lowerer, Settings, PATH_HELP, RELATIVE_HELP};
use crate::mirrorfile::error::{ErrorKind, MirrorfileError};
use crate::mirrorfile::naming::check_repo_path;
use crate::mirrorfile::schema;
use crate::model::{BundleSource, Origin, Target};

impl Lowerer {
    /// `[target]`: exactly one of `registry`, `layout`, `bundle`, and the prefix.
    pub(super) fn target(
        &self,
        table: Option<&Spanned<schema::TargetTable>>,
    ) -> Result<Target, MirrorfileError> {
        let help = "add `registry = \"host:port\"` (or `layout = \"DIR\"`, or \
             `bundle = \"FILE.tar.zst\"`) under `[target]`: where to mirror to";
        let Some(table) = table else {
            return Err(self
                .file
                .invalid(0..0, "missing [target] table", "expected here", help));
        };
        let t = table.get_ref();
        let prefix = match &t.prefix {
            Some(prefix) => {
                let value = prefix.get_ref().trim_matches('/');
                check_repo_path(value).map_err(|reason| {
                    let msg = format!("invalid prefix: {reason}");
                    self.file
                        .invalid(prefix.span(), msg, "not a repository path", PATH_HELP)
                })?;
                Some(value.to_string())
            }
            None => None,
        };
        // One key per kind of target; exactly one must be set.
        let kinds = [
            ("registry", &t.registry),
            ("layout", &t.layout),
            ("bundle", &t.bundle),
        ];
        let set: Vec<_> = kinds
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (*k, v)))
            .collect();
        match set.as_slice() {
            [] => {
                let msg = "[target] does not say where to mirror to";
                Err(self.file.invalid(
                    table.span(),
                    msg,
                    "no `registry`, `layout` or `bundle` in this table",
                    help,
                ))
            }
            [("registry", registry)] => Ok(Target::Registry {
                host: self.host(registry)?,
                prefix,
            }),
            [("layout", layout)] => Ok(Target::Layout {
                path: self.dir.join(layout.get_ref()),
                prefix,
            }),
            [(_, bundle)] => {
                let name = bundle.get_ref().to_ascii_lowercase();
                if ![".tar", ".tar.zst", ".tar.zstd", ".tzst"]
                    .iter()
                    .any(|s| name.ends_with(s))
                {
                    let msg = format!(
                        "bundle file `{}` is not a `.tar` or `.tar.zst`",
                        bundle.get_ref()
                    );
                    let help = "name it `NAME.tar.zst` (zstd-compressed) or `NAME.tar`";
                    return Err(self.file.invalid(
                        bundle.span(),
                        msg,
                        "unknown archive type",
                        help,
                    ));
                }
                Ok(Target::Bundle {
                    path: self.dir.join(bundle.get_ref()),
                    prefix,
                })
            }
            [(first, a), (second, b), ..] => {
                let msg = format!(
                    "[target] sets both `{first}` and `{second}`; a Mirrorfile has one target"
                );
                Err(self
                    .file
                    .error(ErrorKind::Conflict, b.span(), msg, "second target")
                    .with_label(a.span(), "first target")
                    .with_help("keep one of them; use another Mirrorfile for another target"))
            }
        }
    }

    /// One `[[bundles]]` entry: the path must exist (a bundle file or a layout directory).
    pub(super) fn bundle(
        &self,
        entry: &Spanned<schema::BundleEntry>,
        defaults: &Settings,
    ) -> Result<BundleSource, MirrorfileError> {
        let e = entry.get_ref();
        let path = self.dir.join(e.path.get_ref());
        if !path.exists() {
            let msg = format!("bundle `{}` does not exist", path.display());
            let help = format!("{RELATIVE_HELP}; name a bundle file or an OCI layout directory");
            return Err(self
                .file
                .invalid(e.path.span(), msg, "no such file or directory", help));
        }
        let repository = match &e.repository {
            Some(repo) => {
                let text = repo.get_ref().trim_matches('/');
                if crate::oci::Reference::new("check.invalid", text, Some("t"), None)
                    .map(|r| r.repository() != text)
                    .unwrap_or(true)
                {
                    let msg = format!("`{}` is not a repository path", repo.get_ref());
                    let help = "lowercase path components separated by `/`, e.g. `library/busybox`";
                    return Err(self
                        .file
                        .invalid(repo.span(), msg, "not a repository", help));
                }
                Some(text.to_string())
            }
            None => None,
        };
        Ok(BundleSource {
            path,
            repository,
            written: e.path.get_ref().clone(),
            platforms: match &e.platforms {
                Some(p) => self.platforms(p)?,
                None => defaults.platforms.clone(),
            },
            index_mode: index_mode(e.index.as_ref(), defaults.index),
            origin: Origin {
                file: self.file.path.clone(),
                line: self.file.line_of(entry.span().start),
            },
        })
    }
}

//! `[[archives]]` entries → [`ArchiveSource`]: globs expanded against the Mirrorfile's
//! directory (an entry matching no file is an error at its `path`), the `platform` assertion
//! and `images` names parsed, compression and index settings resolved against `[defaults]`.

use std::path::Path;

use toml::Spanned;

use super::error::{MirrorfileError, SourceFile};
use super::schema::{ArchiveEntry, Compression};
use crate::model::{ArchiveSource, LayerCompression, Origin};
use crate::oci::{Platform, Reference};

/// The compression setting of `[defaults]` or an entry.
pub(crate) fn compression(
    value: Option<&Spanned<Compression>>,
    default: LayerCompression,
) -> LayerCompression {
    match value.map(|c| *c.get_ref()) {
        None => default,
        Some(Compression::Gzip) => LayerCompression::Gzip,
        Some(Compression::Zstd) => LayerCompression::Zstd,
        Some(Compression::None) => LayerCompression::None,
    }
}

/// Lowers one `[[archives]]` entry.
pub(crate) fn lower(
    file: &SourceFile,
    dir: &Path,
    entry: &Spanned<ArchiveEntry>,
    default_compression: LayerCompression,
) -> Result<ArchiveSource, MirrorfileError> {
    let e = entry.get_ref();
    let pattern = e.path.get_ref();
    let full = format!(
        "{}/{}",
        glob::Pattern::escape(&dir.to_string_lossy()),
        pattern
    );
    let bad_glob = |detail: String| {
        file.invalid(
            e.path.span(),
            format!("invalid archive path `{pattern}`: {detail}"),
            "here",
            "write a file name or a glob such as `k3s-airgap-images-*.tar*`, relative to the Mirrorfile",
        )
    };
    // An absolute path (or glob) stands on its own; a relative one is under the Mirrorfile.
    let paths = if dir.as_os_str().is_empty() || Path::new(pattern).is_absolute() {
        glob::glob(pattern)
    } else {
        glob::glob(&full)
    }
    .map_err(|e| bad_glob(e.to_string()))?;
    let mut files = Vec::new();
    for path in paths {
        let path = path.map_err(|e| bad_glob(e.to_string()))?;
        if path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(file.invalid(
            e.path.span(),
            format!("no archive matches `{pattern}`"),
            "no such file",
            "the path is relative to the Mirrorfile's directory; check the name or the glob",
        ));
    }
    let platform = match &e.platform {
        Some(p) => Some(p.get_ref().parse::<Platform>().map_err(|err| {
            file.invalid(
                p.span(),
                format!("invalid platform: {err}"),
                "not a platform",
                "write `os/architecture[/variant]`, e.g. `linux/arm/v7`",
            )
        })?),
        None => None,
    };
    let images = match &e.images {
        Some(list) => {
            if list.get_ref().is_empty() {
                return Err(file.invalid(
                    list.span(),
                    "`images` is empty",
                    "selects nothing",
                    "omit the key to take every image of the archive",
                ));
            }
            let mut out = Vec::new();
            for item in list.get_ref() {
                out.push(item.get_ref().parse::<Reference>().map_err(|err| {
                    file.invalid(
                        item.span(),
                        format!("invalid image name: {err}"),
                        "not an image name",
                        "write names as the archive does, e.g. `rancher/mirrored-pause:3.6`",
                    )
                })?);
            }
            Some(out)
        }
        None => None,
    };
    Ok(ArchiveSource {
        pattern: pattern.clone(),
        files,
        platform,
        images,
        compression: compression(e.compression.as_ref(), default_compression),
        index: e.index.as_ref().is_none_or(|i| *i.get_ref()),
        allow_platform_mismatch: e.allow_platform_mismatch.unwrap_or(false),
        origin: Origin {
            file: file.path.clone(),
            line: file.line_of(entry.span().start),
        },
    })
}

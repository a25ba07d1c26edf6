//! `mirror inspect REF`: an image's platforms, digests, sizes, created time and layers, or
//! (`--raw`) the exact manifest bytes. Registry settings (TLS mode, CA) come from the Mirrorfile
//! when there is one.

use super::output::note;
use std::fmt::Write;
use std::process::ExitCode;

use clap::Args;
use miette::miette;

use super::output::{print_bytes, print_stdout, to_json};
use super::Cli;
use crate::endpoint::EndpointError;
use crate::environment::Environment;
use crate::model::{Model, RegistrySettings, TlsMode};
use crate::ops::inspect::{self, Inspection, Location};
use crate::ops::inspect_archive::{inspect_archive, ArchiveInspection, ManifestFrom};
use crate::registry::RegistryError;
use crate::report::human_bytes;
use crate::store::Store;

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A registry reference (`docker.io/rancher/pause:3.1`), `oci:DIR[:NAME]`,
    /// `oci-archive:FILE[:NAME]` (a bundle) or `archive:PATH[:NAME]`.
    #[arg(value_name = "REF")]
    pub reference: String,

    /// Print the root manifest's exact bytes (as `skopeo inspect --raw` does).
    #[arg(long, conflicts_with = "json")]
    pub raw: bool,

    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,

    /// How to talk to REF's registry, overriding the Mirrorfile: `verify`, `skip-verify` or
    /// `http` (what `skopeo --tls-verify=false` does for a registry without TLS).
    #[arg(long, value_enum, value_name = "MODE")]
    pub tls: Option<TlsArg>,
}

/// `--tls`: the Mirrorfile's `tls` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TlsArg {
    Verify,
    SkipVerify,
    Http,
}

impl From<TlsArg> for TlsMode {
    fn from(arg: TlsArg) -> TlsMode {
        match arg {
            TlsArg::Verify => TlsMode::Verify,
            TlsArg::SkipVerify => TlsMode::SkipVerify,
            TlsArg::Http => TlsMode::Http,
        }
    }
}

/// `local`: REF is a directory (`oci:`), so network advice would mislead.
fn error(e: inspect::InspectError, local: bool) -> miette::Report {
    let help = match &e {
        inspect::InspectError::BadReference { .. } => {
            "write a reference like `docker.io/rancher/pause:3.1`, `oci:DIR:TAG`, \
             `oci-archive:FILE:NAME` or `archive:FILE`"
        }
        inspect::InspectError::Client { .. }
        | inspect::InspectError::Read { .. }
        | inspect::InspectError::Local(_)
            if local =>
        {
            "`oci:DIR:NAME` (`oci-archive:FILE:NAME` for a bundle) picks an image by a name the \
             layout lists; `mirror bundle inspect DIR|FILE` lists everything in it"
        }
        _ if tls_mismatch(&e) == Some(TlsArg::Http) => {
            "it speaks plain HTTP: add `--tls http` (or set tls = \"http\" under \
             [registry.\"HOST\"] in the Mirrorfile)"
        }
        _ if tls_mismatch(&e) == Some(TlsArg::Verify) => {
            "it speaks HTTPS: drop `--tls http` (or `tls = \"http\"` in the Mirrorfile)"
        }
        inspect::InspectError::Client { .. }
        | inspect::InspectError::Read { .. }
        | inspect::InspectError::Local(_) => {
            "check the name and that the registry is reachable; TLS and CA settings come from \
             [registry.\"HOST\"] in ./mirrorfile.toml (or -f FILE), or from --tls \
             (verify, skip-verify, http)"
        }
        inspect::InspectError::NotAnImage { .. } => "inspect that digest on its own",
        inspect::InspectError::Archive { .. } => {
            "`archive:FILE` lists every image; `archive:FILE:NAME` (a name it lists) picks one"
        }
    };
    miette!(help = help, "{}", super::diagnostics::chain(&e))
}

/// The `--tls` that would have worked, when the registry answered in the other protocol.
fn tls_mismatch(e: &inspect::InspectError) -> Option<TlsArg> {
    fn registry(e: &EndpointError) -> Option<&RegistryError> {
        match e {
            EndpointError::Registry(r) => Some(r),
            EndpointError::GaveUp { last, .. } => registry(last),
            _ => None,
        }
    }
    let found = match e {
        inspect::InspectError::Client { source, .. } => Some(source),
        inspect::InspectError::Read { source, .. } => registry(source),
        _ => None,
    };
    match found? {
        RegistryError::PlainHttp { .. } => Some(TlsArg::Http),
        RegistryError::SpeaksHttps { .. } => Some(TlsArg::Verify),
        _ => None,
    }
}

pub async fn run(cli: &Cli, args: &InspectArgs) -> miette::Result<ExitCode> {
    let location: Location = args.reference.parse().map_err(|e| error(e, false))?;
    let local = matches!(
        location,
        Location::OciDir { .. } | Location::OciArchive { .. }
    );
    let error = |e| error(e, local);
    // The Mirrorfile's [registry."host"] settings, when there is a Mirrorfile.
    let model = cli.optional_model()?;
    let settings = |host: &str| -> RegistrySettings {
        let mut settings: RegistrySettings = model
            .as_ref()
            .map(|m| m.registry_settings(host))
            .unwrap_or_default();
        if let Some(tls) = args.tls {
            settings.tls = tls.into();
        }
        settings.idle_timeout = Some(cli.idle_timeout());
        settings
    };
    if let Location::Archive { path, name } = &location {
        return archive(model.as_ref(), path, name.as_deref(), args).await;
    }
    let env = Environment::from_process();
    let (source, repository, digest) =
        inspect::open(&location, settings, &env, &cache(model.as_ref()))
            .await
            .map_err(error)?;
    if args.raw {
        let raw = inspect::raw(source.as_ref(), &repository, &digest, &args.reference)
            .await
            .map_err(error)?;
        print_bytes(raw.bytes());
        return Ok(ExitCode::SUCCESS);
    }
    let found = inspect::inspect(source.as_ref(), &repository, &digest, &args.reference)
        .await
        .map_err(error)?;
    if args.json {
        print_stdout(&to_json(&found));
    } else {
        print_stdout(&human(&found));
    }
    Ok(ExitCode::SUCCESS)
}

fn human(found: &Inspection) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", found.name);
    let _ = writeln!(out, "  digest:     {}", found.digest);
    let _ = writeln!(out, "  media type: {}", found.media_type);
    let _ = writeln!(out, "  manifest:   {} bytes", found.size);
    for image in &found.images {
        let _ = writeln!(
            out,
            "\n  {}  {}  {}{}",
            image.platform,
            image.digest,
            human_bytes(image.size),
            image
                .created
                .as_deref()
                .map(|c| format!("  created {c}"))
                .unwrap_or_default()
        );
        blob_lines(&mut out, &image.config, &image.layers);
    }
    out
}

/// `inspect archive:PATH[:NAME]`: the archive is spooled into the cache (the Mirrorfile's, else
/// the default one), as `plan` would.
async fn archive(
    model: Option<&Model>,
    path: &std::path::Path,
    name: Option<&str>,
    args: &InspectArgs,
) -> miette::Result<ExitCode> {
    let store =
        Store::open(&cache(model)).map_err(|e| miette!("{}", super::diagnostics::chain(&e)))?;
    // Layers are compressed as the Mirrorfile's [[archives]] entry for this file says.
    let same = |f: &std::path::Path| f.canonicalize().ok() == path.canonicalize().ok();
    let compression = model
        .and_then(|m| m.archives.iter().find(|a| a.files.iter().any(|f| same(f))))
        .map(|a| a.compression)
        .unwrap_or_default();
    let (path, name) = (path.to_path_buf(), name.map(str::to_string));
    let found = tokio::task::spawn_blocking(move || {
        inspect_archive(&path, name.as_deref(), &store, compression)
    })
    .await
    .map_err(|e| miette!("inspect stopped: {e}"))?
    .map_err(|e| error(e.into(), true))?;
    if args.raw {
        let [image] = found.images.as_slice() else {
            let names: Vec<String> = found.images.iter().flat_map(|i| i.names.clone()).collect();
            return Err(miette!(
                help = "write `archive:FILE:NAME` with one of those names",
                "archive {} holds {} images ({}); --raw prints one manifest",
                found.archive,
                found.images.len(),
                names.join(", ")
            ));
        };
        note!("{}", whose(image.manifest_from, &image.info.digest));
        print_bytes(image.raw.bytes());
        return Ok(ExitCode::SUCCESS);
    }
    if args.json {
        print_stdout(&to_json(&found));
    } else {
        print_stdout(&archive_human(&found));
    }
    Ok(ExitCode::SUCCESS)
}

/// The cache archives and bundles are read into: the Mirrorfile's, else the default one (so a
/// later `plan` over the same file reuses the work).
fn cache(model: Option<&Model>) -> std::path::PathBuf {
    model
        .and_then(|m| m.cache_dir.clone())
        .unwrap_or_else(|| super::default_cache(&Environment::from_process()))
}

fn whose(from: ManifestFrom, digest: &str) -> String {
    match from {
        ManifestFrom::Archive => format!("manifest {digest}: held by the archive, bytes as found"),
        ManifestFrom::Mirror => format!(
            "manifest {digest}: the archive holds none usable; this is the canonical manifest mirror writes and pushes"
        ),
    }
}

/// The config and layer lines under one image, the same for registry and archive images.
fn blob_lines(out: &mut String, config: &inspect::Layer, layers: &[inspect::Layer]) {
    let _ = writeln!(
        out,
        "    config  {}  {}",
        config.digest,
        human_bytes(config.size)
    );
    for layer in layers {
        let _ = writeln!(
            out,
            "    layer   {}  {:>9}  {}",
            layer.digest,
            human_bytes(layer.size),
            layer.media_type
        );
    }
}

fn archive_human(found: &ArchiveInspection) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}: {} image(s)", found.archive, found.images.len());
    for image in &found.images {
        let info = &image.info;
        let _ = writeln!(out, "\n  {}", image.names.join(", "));
        let _ = writeln!(
            out,
            "    {}  {}  {}{}",
            info.platform,
            info.digest,
            human_bytes(info.size),
            info.created
                .as_deref()
                .map(|c| format!("  created {c}"))
                .unwrap_or_default()
        );
        let from = match image.manifest_from {
            ManifestFrom::Archive => "the archive's own, bytes as found",
            ManifestFrom::Mirror => "none usable in the archive: the canonical one mirror pushes",
        };
        let _ = writeln!(out, "    manifest  {}  ({from})", info.media_type);
        blob_lines(&mut out, &info.config, &info.layers);
    }
    for w in &found.warnings {
        let _ = writeln!(out, "\nwarning: {w}");
    }
    out
}

//! `mirror inspect REF`: an image's platforms, digests, sizes, created time and layers, or
//! (`--raw`) the exact manifest bytes. Registry settings (TLS mode, CA) come from the Mirrorfile
//! when there is one.

use std::fmt::Write;
use std::process::ExitCode;

use clap::Args;
use miette::miette;

use super::output::{print_bytes, print_stdout, to_json};
use super::Cli;
use crate::environment::Environment;
use crate::model::RegistrySettings;
use crate::ops::inspect::{self, Inspection, Location};
use crate::report::human_bytes;

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A registry reference (`docker.io/rancher/pause:3.1`), `oci:DIR[:NAME]` or `archive:PATH`.
    #[arg(value_name = "REF")]
    pub reference: String,

    /// Print the root manifest's exact bytes (as `skopeo inspect --raw` does).
    #[arg(long, conflicts_with = "json")]
    pub raw: bool,

    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

fn error(e: inspect::InspectError) -> miette::Report {
    let help = match &e {
        inspect::InspectError::BadReference { .. } => {
            "write a reference like `docker.io/rancher/pause:3.1`, `oci:DIR:TAG` or `archive:FILE`"
        }
        inspect::InspectError::Client { .. } | inspect::InspectError::Read { .. } => {
            "check the name and that the registry is reachable; TLS and CA settings come from \
             [registry.\"HOST\"] in ./mirrorfile.toml (or -f FILE)"
        }
        inspect::InspectError::NotAnImage { .. } => "inspect that digest on its own",
        inspect::InspectError::ArchivePending(_) => {
            "load the archive into a registry or an OCI layout first (e.g. `skopeo copy docker-archive:FILE oci:DIR:TAG`) and inspect that"
        }
    };
    miette!(help = help, "{}", super::diagnostics::chain(&e))
}

pub async fn run(cli: &Cli, args: &InspectArgs) -> miette::Result<ExitCode> {
    let location: Location = args.reference.parse().map_err(error)?;
    // The Mirrorfile's [registry."host"] settings, when there is a Mirrorfile.
    let model = if cli.file.exists() {
        Some(crate::mirrorfile::load(&cli.file).map_err(miette::Report::new)?)
    } else {
        None
    };
    let settings = |host: &str| -> RegistrySettings {
        model
            .as_ref()
            .map(|m| m.registry_settings(host))
            .unwrap_or_default()
    };
    let (source, repository, digest) =
        inspect::open(&location, settings, &Environment::from_process())
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
        let _ = writeln!(
            out,
            "    config  {}  {}",
            image.config.digest,
            human_bytes(image.config.size)
        );
        for layer in &image.layers {
            let _ = writeln!(
                out,
                "    layer   {}  {:>9}  {}",
                layer.digest,
                human_bytes(layer.size),
                layer.media_type
            );
        }
    }
    out
}

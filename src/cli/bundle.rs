//! `mirror bundle inspect FILE`: what a bundle (or OCI layout directory) holds, read in one pass
//! without unpacking, every blob checked against its digest. Needs no Mirrorfile.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use miette::miette;

use super::output::{print_stdout, to_json};
use crate::report;

#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// List what a bundle (or OCI layout directory) holds: images, platforms, sizes, digests.
    /// Reads it in one pass without unpacking, and checks every blob against its digest.
    Inspect(BundleInspectArgs),
}

#[derive(Debug, Args)]
pub struct BundleInspectArgs {
    /// The bundle file (`.tar`, `.tar.zst`) or OCI layout directory.
    pub file: PathBuf,

    /// Print the listing as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(command: &BundleCommand) -> miette::Result<ExitCode> {
    let BundleCommand::Inspect(args) = command;
    let path = args.file.clone();
    let info = tokio::task::spawn_blocking(move || crate::archive::inspect::inspect(&path))
        .await
        .map_err(|e| miette!("inspecting the bundle stopped unexpectedly: {e}"))?
        .map_err(|e| {
            miette!(
                help = "name a bundle file written by `mirror apply` or an OCI layout directory",
                "{e}"
            )
        })?;
    if args.json {
        print_stdout(&to_json(&info));
    } else {
        print_stdout(&report::bundle::inspect(&info));
    }
    // A damaged blob, or an image the bundle cannot give whole (a file cut at an entry
    // boundary reads as a valid tar), fails the check.
    let incomplete = info.images.iter().any(|i| i.incomplete);
    Ok(if info.damaged.is_empty() && !incomplete {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

//! `mirror init`: a commented starter Mirrorfile, optionally listing the images of a file.

use super::output::note;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use miette::miette;

use super::Cli;

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Start from an image-list file (one reference per line, like k3s-images.txt): each image
    /// becomes an `[[images]]` entry.
    #[arg(long, value_name = "LIST")]
    pub from: Option<PathBuf>,

    /// The target registry to write into the file.
    #[arg(
        long,
        value_name = "HOST[:PORT]",
        default_value = "registry.example.internal:5000"
    )]
    pub registry: String,
}

pub fn run(cli: &Cli, args: &InitArgs) -> miette::Result<ExitCode> {
    let path = &cli.file;
    if path.exists() {
        return Err(miette!(
            help =
                "edit it, remove it first, or write another file with `mirror init -f other.toml`",
            "{} already exists; `mirror init` never overwrites a Mirrorfile",
            path.display()
        ));
    }
    let images = match &args.from {
        Some(list) => Some(crate::mirrorfile::read_image_list(list).map_err(miette::Report::new)?),
        None => None,
    };
    let text = crate::mirrorfile::starter(&args.registry, images.as_deref());
    // Never write a starter that `plan` would then reject (a bad --registry, say).
    crate::mirrorfile::parse(path, &text).map_err(|e| {
        miette!(
            help = "--registry takes a registry host, optionally with a port: `registry.example.internal:5000`",
            "the starter Mirrorfile would not be valid, so nothing was written: {}",
            super::diagnostics::chain(&e)
        )
    })?;
    // create_new: two `init`s racing cannot clobber each other either.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| miette!("cannot create {}: {e}", path.display()))?;
    std::io::Write::write_all(&mut file, text.as_bytes())
        .map_err(|e| miette!("cannot write {}: {e}", path.display()))?;
    if !cli.quiet {
        note!(
            "Wrote {}. Edit [target], then run `mirror plan`.",
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

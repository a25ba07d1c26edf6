//! `mirror completions SHELL` and `mirror man`, both generated from the clap definition so they
//! never drift from the real flags.

use std::process::ExitCode;

use clap::{Args, CommandFactory};
use clap_complete::Shell;
use miette::IntoDiagnostic;

use super::output::print_bytes;
use super::Cli;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    #[arg(value_enum)]
    pub shell: Shell,
}

pub fn run(args: &CompletionsArgs) -> miette::Result<ExitCode> {
    let mut command = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut command, "mirror", &mut out);
    print_bytes(&out);
    Ok(ExitCode::SUCCESS)
}

pub fn man() -> miette::Result<ExitCode> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut out)
        .into_diagnostic()?;
    print_bytes(&out);
    Ok(ExitCode::SUCCESS)
}

//! `mirror registries-yaml`: the k3s/RKE2 `registries.yaml` for this Mirrorfile's target.

use std::process::ExitCode;

use clap::Args;

use super::output::print_stdout;
use super::Cli;

#[derive(Debug, Args)]
pub struct RegistriesYamlArgs {
    /// The address cluster nodes use to reach the target, when it differs from the Mirrorfile's
    /// (e.g. the Mirrorfile says `127.0.0.1:5000`, nodes reach `registry.lan:5000`).
    #[arg(long, value_name = "HOST[:PORT]")]
    pub endpoint: Option<String>,
}

pub fn run(cli: &Cli, args: &RegistriesYamlArgs) -> miette::Result<ExitCode> {
    let model = crate::mirrorfile::load(&cli.file).map_err(miette::Report::new)?;
    print_stdout(&crate::report::registries_yaml::render(
        &model,
        args.endpoint.as_deref(),
    ));
    Ok(ExitCode::SUCCESS)
}

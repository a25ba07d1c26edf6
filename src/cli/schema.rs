//! `mirror schema`: the Mirrorfile's JSON Schema on stdout.

use std::process::ExitCode;

use super::output::print_stdout;

pub fn run() -> miette::Result<ExitCode> {
    print_stdout(&crate::mirrorfile::schema::json_schema());
    Ok(ExitCode::SUCCESS)
}

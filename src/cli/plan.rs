//! `mirror plan`.

use std::process::ExitCode;

use clap::Args;

use super::diagnostics;
use super::output::{print_stdout, stdout_color, to_json};
use crate::ops::Session;
use crate::report;

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Print the plan as JSON (see the README for its shape).
    #[arg(long)]
    pub json: bool,

    /// Exit with 2 when changes are pending, 0 when there are none (as terraform does).
    #[arg(long)]
    pub detailed_exitcode: bool,
}

pub async fn run(session: &Session, args: &PlanArgs) -> miette::Result<ExitCode> {
    let plan = session.plan().await.map_err(diagnostics::ops)?;
    if args.json {
        print_stdout(&to_json(&report::json::plan(&plan)));
    } else {
        let style = report::human::Style::new(stdout_color());
        print_stdout(&report::human::plan(&plan, &session.target_name, style));
    }
    Ok(if args.detailed_exitcode && plan.has_changes() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

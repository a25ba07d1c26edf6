//! `mirror plan`.

use super::output::note;
use std::process::ExitCode;

use clap::Args;

use std::path::PathBuf;

use super::output::{print_stdout, stdout_color, to_json};
use super::{diagnostics, lock, Cli};
use crate::ops::saved::SavedPlan;
use crate::ops::{LockMode, Session};
use crate::report;

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Print the plan as JSON (see the README for its shape).
    #[arg(long)]
    pub json: bool,

    /// Exit with 2 when changes are pending, 0 when there are none (as terraform does).
    #[arg(long)]
    pub detailed_exitcode: bool,

    /// Also save the plan to FILE, for `mirror apply FILE`.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub out: Option<PathBuf>,
}

pub async fn run(session: &Session, args: &PlanArgs, cli: &Cli) -> miette::Result<ExitCode> {
    // `plan` (unlike `apply`) asks upstream where pinned tags point now, to report drift.
    let mode = LockMode {
        locked: cli.locked,
        check_drift: true,
        ..LockMode::default()
    };
    let resolution = lock::resolve_and_write(session, &mode, cli.quiet).await?;
    let mut plan = session
        .plan_resolved(resolution.resolved.clone(), resolution.archives)
        .await
        .map_err(diagnostics::ops)?;
    // Shown on stderr as they were found; the JSON document carries them too.
    plan.warnings = resolution.warnings.clone();
    if let Some(out) = &args.out {
        let inputs = session
            .plan_inputs(&resolution, &plan)
            .map_err(|e| diagnostics::ops(e.into()))?;
        let doc = serde_json::to_value(report::json::plan(&plan))
            .map_err(|e| miette::miette!("cannot serialise the plan: {e}"))?;
        SavedPlan::new(inputs, doc)
            .save(out)
            .map_err(|e| diagnostics::ops(e.into()))?;
        if !cli.quiet {
            note!(
                "Saved the plan to {}; `mirror apply {}` applies exactly this.",
                out.display(),
                out.display()
            );
        }
    }
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

//! `pvtapi-operator probe`: one probe run from this network namespace, printed as JSON.
//!
//! This is what each probe pod executes. It exits 0 whatever the target's health — an unhealthy
//! API is a *result* — and non-zero only when the probe itself cannot run (bad arguments, an
//! unreadable CA bundle), with a message naming the problem.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use pvtapi_engine::cli::TargetArgs;
use pvtapi_engine::probe::report::REPORT_BUDGET_BYTES;

#[derive(Debug, Args)]
#[command(
    after_help = "The report is JSON on stdout (format: docs/probe-report.md). Exit status: 0 when the probe ran, \
    whatever the API answered; 2 when it could not run (bad flags, unreadable CA bundle, no route to any DNS \
    resolver).\n\n\
    Example:\n  pvtapi-operator probe --api-id abcde12345 --region us-east-1 --stage prod --path /health \\\n      \
    --vpce vpce-0123456789abcdef0 --vpce-dns vpce-0123456789abcdef0-abcdefgh.execute-api.us-east-1.vpce.amazonaws.com"
)]
pub struct ProbeArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Also write the report to this file (the pod's /dev/termination-log).
    #[arg(long)]
    report_file: Option<PathBuf>,
}

/// Runs the probe and prints the report; `Err` only when the probe could not run.
pub async fn probe(args: ProbeArgs) -> anyhow::Result<()> {
    let input = args.target.into_input()?;
    let report = pvtapi_engine::probe::run(&input).await?.bounded(REPORT_BUDGET_BYTES);
    let json = report.to_json();
    println!("{json}");
    if let Some(path) = args.report_file {
        std::fs::write(&path, &json).with_context(|| format!("cannot write the report to {}", path.display()))?;
    }
    Ok(())
}

//! `kubectl pvtapi`: the human face of pvtapi.
//!
//! A user with a failing call wants one answer — the root cause, the evidence, the fix — not a
//! checklist. `explain` documents every root-cause code from the same table the engine reports.

mod check;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use pvtapi_crds::RootCause;

/// Why can't my workload reach this API Gateway private API, and what do I fix?
#[derive(Debug, Parser)]
#[command(
    name = "kubectl-pvtapi",
    bin_name = "kubectl pvtapi",
    version,
    about,
    after_help = "Examples:\n  kubectl pvtapi check --local --api-id abcde12345 --region us-east-1 --stage prod --vpce vpce-0123456789abcdef0\n  kubectl pvtapi explain SecurityGroupBlocked\n  kubectl pvtapi explain --all\n  kubectl pvtapi schema > check-report.schema.json"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check one private API: the root cause, the evidence, the fix.
    Check(Box<check::CheckArgs>),
    /// Explain a root-cause code: what it means and the usual fix.
    Explain {
        /// The code, as shown in the Reason column of `kubectl get pac` (case-insensitive).
        #[arg(required_unless_present = "all")]
        code: Option<String>,
        /// List every code.
        #[arg(long, conflicts_with = "code")]
        all: bool,
    },
    /// Print the JSON Schema of `check -o json` (pvtapi.io/check-report/v1), for jq, alerts, CI.
    Schema,
}

fn explain(code: RootCause) -> String {
    format!("{}  [{}]\n  {}\n  Fix: {}\n", code.code(), code.area(), code.meaning(), code.typical_fix())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check(args) => {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(err) => {
                    eprintln!("error: cannot start the async runtime: {err}");
                    return ExitCode::from(2);
                }
            };
            ExitCode::from(runtime.block_on(check::run(*args)))
        }
        Command::Explain { all: true, .. } => {
            for code in RootCause::ALL {
                println!("{}", explain(*code));
            }
            ExitCode::SUCCESS
        }
        Command::Explain { code: Some(code), .. } => match code.parse::<RootCause>() {
            Ok(code) => {
                print!("{}", explain(code));
                ExitCode::SUCCESS
            }
            Err(err) => {
                let known: Vec<&str> = RootCause::ALL.iter().map(|c| c.code()).collect();
                eprintln!("error: {err}; known codes: {}", known.join(", "));
                ExitCode::from(2)
            }
        },
        Command::Schema => {
            print!("{}", pvtapi_engine::diagnosis::CheckReport::json_schema());
            ExitCode::SUCCESS
        }
        Command::Explain { code: None, all: false } => {
            eprintln!("error: give a root-cause code or --all");
            ExitCode::from(2)
        }
    }
}

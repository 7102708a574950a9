//! `kubectl pvtapi`: the human face of pvtapi.
//!
//! A user with a failing call wants one answer — the root cause, the evidence, the fix — not a
//! checklist. `explain` documents every root-cause code from the same table the engine reports.

mod check;
mod cluster;

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
    after_help = "Examples:\n  kubectl pvtapi check orders -n payments            # the last result of a check in the cluster\n  kubectl pvtapi check orders -n payments --rerun    # run it now and wait\n  kubectl pvtapi check --api-id abcde12345 --region us-east-1 --stage prod --vpce vpce-0123456789abcdef0   # a temporary check in the cluster\n  kubectl pvtapi list -A\n  kubectl pvtapi check --local --api-id abcde12345 --region us-east-1 --stage prod --vpce vpce-0123456789abcdef0\n  kubectl pvtapi explain SecurityGroupBlocked\n  kubectl pvtapi explain --all\n  kubectl pvtapi schema > check-report.schema.json"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    kube: cluster::KubeArgs,
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
    /// List the checks and their last results (one LIST call).
    List(ListArgs),
    /// Print the JSON Schema of `check -o json` (pvtapi.io/check-report/v1), for jq, alerts, CI.
    Schema,
    /// Print the plugin's version.
    Version,
    /// Print a shell completion script (e.g. `kubectl pvtapi completion bash > /etc/bash_completion.d/kubectl-pvtapi`).
    Completion {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  kubectl pvtapi list\n  kubectl pvtapi list -A -o wide\n  kubectl pvtapi list -n payments -l team=orders -o json"
)]
struct ListArgs {
    /// Every namespace.
    #[arg(short = 'A', long)]
    all_namespaces: bool,
    /// Label selector, e.g. team=orders.
    #[arg(short = 'l', long)]
    selector: Option<String>,
    /// Output format (wide adds the success ratio and the last run's timings).
    #[arg(short = 'o', long, value_enum, default_value_t = cluster::Format::Table)]
    output: cluster::Format,
}

async fn list(args: ListArgs, kube: &cluster::KubeArgs) -> u8 {
    let cluster = match kube.connect().await {
        Ok(c) => c,
        Err(err) => {
            eprintln!("error: {err}");
            return 2;
        }
    };
    let items = match cluster::list(&cluster, args.all_namespaces, args.selector.as_deref()).await {
        Ok(items) => items,
        Err(err) => {
            eprintln!("error: {err}");
            return 2;
        }
    };
    let text = match args.output {
        cluster::Format::Table | cluster::Format::Wide => {
            if items.is_empty() {
                let where_ = if args.all_namespaces {
                    "any namespace".to_owned()
                } else {
                    format!("namespace {}", cluster.namespace)
                };
                eprintln!("No PrivateApiConnectivityCheck in {where_}.");
                return 0;
            }
            cluster::render_list(
                &items,
                args.all_namespaces,
                args.output == cluster::Format::Wide,
                k8s_openapi::jiff::Timestamp::now(),
            )
        }
        cluster::Format::Json => {
            match serde_json::to_string_pretty(&serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items}))
            {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("error: cannot render: {e}");
                    return 2;
                }
            }
        }
        cluster::Format::Yaml => {
            match serde_norway::to_string(&serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items})) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("error: cannot render: {e}");
                    return 2;
                }
            }
        }
    };
    println!("{}", text.trim_end());
    0
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
            ExitCode::from(runtime.block_on(check::run(*args, &cli.kube)))
        }
        Command::List(args) => {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(err) => {
                    eprintln!("error: cannot start the async runtime: {err}");
                    return ExitCode::from(2);
                }
            };
            ExitCode::from(runtime.block_on(list(args, &cli.kube)))
        }
        Command::Version => {
            println!("kubectl-pvtapi {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Completion { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "kubectl-pvtapi", &mut std::io::stdout());
            ExitCode::SUCCESS
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

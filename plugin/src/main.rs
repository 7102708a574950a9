//! `kubectl pvtapi`: the human face of pvtapi.
//!
//! A user with a failing call wants one answer — the root cause, the evidence, the fix — not a
//! checklist. `explain` documents every root-cause code from the same table the engine reports.

mod check;
mod cluster;
mod discover;
mod from;

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
    /// Find the private APIs your workloads call (pod env, ConfigMaps) and print checks for them.
    Discover(DiscoverArgs),
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
    after_help = "Looks for execute-api hostnames (private DNS, endpoint alias and the endpoint's own names) in \
    the env of running pods and in ConfigMaps (also those pulled in with envFrom); reads pods and ConfigMaps only, never \
    Secrets. Private custom domains cannot be recognised by name: add checks for them by hand.\n\n\
    Examples:\n  kubectl pvtapi discover -A\n  kubectl pvtapi discover -n payments -o yaml > checks.yaml   # review, fill in what is commented, commit"
)]
struct DiscoverArgs {
    /// Every namespace.
    #[arg(short = 'A', long)]
    all_namespaces: bool,
    /// table: what was found where; yaml: PrivateApiConnectivityCheck manifests to commit.
    #[arg(short = 'o', long, value_enum, default_value_t = DiscoverFormat::Table)]
    output: DiscoverFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum DiscoverFormat {
    Table,
    Yaml,
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
    let text = match args.output {
        cluster::Format::Table | cluster::Format::Wide => {
            // The table needs a few fields of each check: parsed into rows, not whole objects.
            let rows = match cluster::list_rows(&cluster, args.all_namespaces, args.selector.as_deref()).await {
                Ok(rows) => rows,
                Err(err) => {
                    eprintln!("error: {err}");
                    return 2;
                }
            };
            if rows.is_empty() {
                let where_ = if args.all_namespaces {
                    "any namespace".to_owned()
                } else {
                    format!("namespace {}", cluster.namespace)
                };
                eprintln!("No PrivateApiConnectivityCheck in {where_}.");
                return 0;
            }
            cluster::render_list(
                &rows,
                args.all_namespaces,
                args.output == cluster::Format::Wide,
                k8s_openapi::jiff::Timestamp::now(),
            )
        }
        cluster::Format::Json | cluster::Format::Yaml => {
            let items = match cluster::list(&cluster, args.all_namespaces, args.selector.as_deref()).await {
                Ok(items) => items,
                Err(err) => {
                    eprintln!("error: {err}");
                    return 2;
                }
            };
            let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
            let rendered = if args.output == cluster::Format::Json {
                serde_json::to_string_pretty(&list).map_err(|e| e.to_string())
            } else {
                serde_norway::to_string(&list).map_err(|e| e.to_string())
            };
            match rendered {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("error: cannot render: {e}");
                    return 2;
                }
            }
        }
    };
    crate::out(&format!("{}\n", text.trim_end()));
    0
}

async fn discover(args: DiscoverArgs, kube: &cluster::KubeArgs) -> u8 {
    use k8s_openapi::api::core::v1::{ConfigMap, Pod};
    use kube::api::{Api, ListParams};
    let cluster = match kube.connect().await {
        Ok(c) => c,
        Err(err) => {
            eprintln!("error: {err}");
            return 2;
        }
    };
    let (pods, cms): (Api<Pod>, Api<ConfigMap>) = if args.all_namespaces {
        (Api::all(cluster.client.clone()), Api::all(cluster.client.clone()))
    } else {
        (
            Api::namespaced(cluster.client.clone(), &cluster.namespace),
            Api::namespaced(cluster.client.clone(), &cluster.namespace),
        )
    };
    let where_ =
        if args.all_namespaces { "all namespaces".to_owned() } else { format!("namespace {}", cluster.namespace) };
    let forbidden = |what: &str, e: kube::Error| {
        eprintln!(
            "error: cannot list {what} in {where_}: {e}. discover needs list on pods and configmaps{}",
            if args.all_namespaces { " cluster-wide" } else { "" }
        );
        2
    };
    let pods = match pods.list(&ListParams::default()).await {
        Ok(l) => l.items,
        Err(e) => return forbidden("pods", e),
    };
    let cms = match cms.list(&ListParams::default()).await {
        Ok(l) => l.items,
        Err(e) => return forbidden("configmaps", e),
    };
    let found = discover::findings(&pods, &cms);
    if found.is_empty() {
        eprintln!(
            "No execute-api hostname in the env of {} pods or in {} ConfigMaps in {where_}.",
            pods.len(),
            cms.len()
        );
        return 0;
    }
    match args.output {
        DiscoverFormat::Yaml => out(&discover::manifests(&found)),
        DiscoverFormat::Table => {
            let mut rows =
                vec![["NAMESPACE", "WORKLOAD", "SOURCE", "API", "ENDPOINT", "ACCESS", "HOST"].map(str::to_owned)];
            for f in &found {
                let access = serde_json::to_value(f.call.access).ok().and_then(|v| v.as_str().map(str::to_owned));
                rows.push([
                    f.namespace.clone(),
                    f.workload.clone(),
                    f.source.clone(),
                    f.call.api_id.clone().unwrap_or_else(|| "?".into()),
                    f.call.vpce_id.clone().unwrap_or_else(|| "?".into()),
                    access.unwrap_or_default(),
                    f.call.host.clone(),
                ]);
            }
            let widths: Vec<usize> =
                (0..7).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
            for r in rows {
                let line: Vec<String> = r.iter().enumerate().map(|(i, c)| format!("{c:<w$}", w = widths[i])).collect();
                out(&format!("{}\n", line.join("   ").trim_end()));
            }
            eprintln!("\n`kubectl pvtapi discover -o yaml` prints these as PrivateApiConnectivityCheck manifests.");
        }
    }
    0
}

fn explain(code: RootCause) -> String {
    format!("{}  [{}]\n  {}\n  Fix: {}\n", code.code(), code.area(), code.meaning(), code.typical_fix())
}

/// Runs a command's future to its exit code on a single-threaded runtime.
/// Writes to stdout. A reader that went away (`kubectl pvtapi list -A | head`) ends the output
/// quietly, as it does kubectl's, instead of a panic.
pub fn out(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: writing to stdout: {e}");
        std::process::exit(2);
    }
}

fn block_on(command: impl std::future::Future<Output = u8>) -> ExitCode {
    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => ExitCode::from(runtime.block_on(command)),
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            ExitCode::from(2)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check(args) => block_on(check::run(*args, &cli.kube)),
        Command::List(args) => block_on(list(args, &cli.kube)),
        Command::Discover(args) => block_on(discover(args, &cli.kube)),
        Command::Version => {
            out(&format!("kubectl-pvtapi {}\n", env!("CARGO_PKG_VERSION")));
            ExitCode::SUCCESS
        }
        Command::Completion { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "kubectl-pvtapi", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Explain { all: true, .. } => {
            for code in RootCause::ALL {
                out(&format!("{}\n", explain(*code)));
            }
            ExitCode::SUCCESS
        }
        Command::Explain { code: Some(code), .. } => match code.parse::<RootCause>() {
            Ok(code) => {
                out(&explain(code));
                ExitCode::SUCCESS
            }
            Err(err) => {
                let known: Vec<&str> = RootCause::ALL.iter().map(|c| c.code()).collect();
                eprintln!("error: {err}; known codes: {}", known.join(", "));
                ExitCode::from(2)
            }
        },
        Command::Schema => {
            out(&pvtapi_engine::diagnosis::CheckReport::json_schema());
            ExitCode::SUCCESS
        }
        Command::Explain { code: None, all: false } => {
            eprintln!("error: give a root-cause code or --all");
            ExitCode::from(2)
        }
    }
}

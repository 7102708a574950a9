//! `pvtapi-operator`: the in-cluster half of pvtapi.
//!
//! One binary, two roles, so the probe pod can run the operator's own image: `run` reconciles
//! `PrivateApiConnectivityCheck` objects; `probe` is what each short-lived probe pod executes
//! (DNS, TCP, TLS and HTTPS invoke from the pod's network) before printing a compact JSON report.

mod probe_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Continuously diagnoses why workloads cannot reach an Amazon API Gateway private REST API.
#[derive(Debug, Parser)]
#[command(
    name = "pvtapi-operator",
    version,
    about,
    long_about = "Continuously diagnoses why workloads cannot reach an Amazon API Gateway private REST API.\n\n\
        `run` watches PrivateApiConnectivityCheck objects (pvtapi.io/v1alpha1) and, for each, runs a short-lived \
        probe pod, adds read-only AWS facts, and writes one root cause with evidence and a fix into status \
        conditions, events and Prometheus metrics. `probe` is what that pod executes.",
    after_help = "Examples:\n  pvtapi-operator run --probe-image pvtapi.local/pvtapi-operator:dev\n  pvtapi-operator probe --api-id abcde12345 --region us-east-1 --stage prod --vpce vpce-0123456789abcdef0"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the controller: reconcile every PrivateApiConnectivityCheck (probe pods, AWS facts, status, events, metrics).
    Run(Box<pvtapi_operator::run::RunArgs>),
    /// Probe one private API from this network (DNS, TCP 443, TLS, HTTPS invoke) and print a JSON report.
    Probe(Box<probe_cmd::ProbeArgs>),
}

/// Stack of each async worker thread of `run`.
const RUNTIME_STACK_BYTES: usize = 16 * 1024 * 1024;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => {
            pvtapi_operator::telemetry::init();
            // Reconciles hold large futures (probe report + AWS facts + diagnosis); tokio's 2 MiB
            // worker stacks overflow on them in unoptimised builds (seen on the local node).
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_stack_size(RUNTIME_STACK_BYTES)
                .build()
            {
                Ok(rt) => rt,
                Err(err) => {
                    eprintln!("pvtapi-operator run: cannot start the async runtime: {err}");
                    return ExitCode::from(2);
                }
            };
            match runtime.block_on(pvtapi_operator::run::run(*args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    tracing::error!(error = format!("{err:#}"), "pvtapi-operator run stopped");
                    eprintln!("pvtapi-operator run: {err:#}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Probe(args) => {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(err) => {
                    eprintln!("pvtapi-operator probe: cannot start the async runtime: {err}");
                    return ExitCode::from(2);
                }
            };
            match runtime.block_on(probe_cmd::probe(*args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("pvtapi-operator probe: {err:#}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

//! `pvtapi-operator run`: the whole operator — metrics/health server, leader election,
//! controller, graceful shutdown.
//!
//! Why flags with env fallbacks: the Helm chart sets environment variables, a developer passes
//! flags; both work. The Kubernetes client comes from `Client::try_default`, which reads a
//! kubeconfig (development, `KUBECONFIG`) or the in-cluster service account.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::Args;
use kube::Client;
use tokio::sync::watch;

use crate::aws::AwsConfig;
use crate::controller::{ControllerConfig, run_controller};
use crate::http::{HttpState, serve};
use crate::leader::{Election, LeaseConfig, default_identity};
use crate::metrics::Metrics;

/// Flags of `pvtapi-operator run`.
#[derive(Debug, Clone, Args)]
#[command(after_help = "Every flag can also be set from the environment variable shown. The Kubernetes client \
    uses KUBECONFIG / ~/.kube/config outside a cluster and the service account inside one; AWS credentials come \
    from the default chain (IRSA, EKS Pod Identity, environment, profile).\n\n\
    Example (development, against the current kubeconfig context):\n  \
    pvtapi-operator run --probe-image pvtapi.local/pvtapi-operator:dev --metrics-addr 127.0.0.1:8080 --no-leader-election")]
pub struct RunArgs {
    /// The image probe pods run: the operator's own image.
    #[arg(long, env = "PVTAPI_PROBE_IMAGE")]
    pub probe_image: String,
    /// Probe pods running at once across all checks.
    #[arg(long, env = "PVTAPI_MAX_CONCURRENT_RUNS", default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_concurrent_runs: u16,
    /// Address of the /metrics, /healthz and /readyz server.
    #[arg(long, env = "PVTAPI_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "PVTAPI_NAMESPACE")]
    pub namespace: Option<String>,
    /// Namespace of the leader-election Lease (default: the client's namespace, i.e. the
    /// operator's own namespace in a cluster).
    #[arg(long, env = "PVTAPI_LEADER_ELECTION_NAMESPACE")]
    pub leader_election_namespace: Option<String>,
    /// Name of the leader-election Lease.
    #[arg(long, env = "PVTAPI_LEASE_NAME", default_value = "pvtapi-operator")]
    pub lease_name: String,
    /// Run without leader election (a single replica, or development).
    #[arg(long, env = "PVTAPI_NO_LEADER_ELECTION")]
    pub no_leader_election: bool,
    /// Endpoint for every AWS service (tests against moto); AWS_ENDPOINT_URL works too.
    #[arg(long, env = "PVTAPI_AWS_ENDPOINT_URL")]
    pub aws_endpoint_url: Option<String>,
    /// How long AWS facts are reused across runs and checks (keep it under the shortest
    /// intervalSeconds).
    #[arg(long, env = "PVTAPI_AWS_CACHE_TTL_SECONDS", default_value_t = 25, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub aws_cache_ttl_seconds: u64,

    /// How old the AWS facts of a run whose probe saw nothing wrong may be (they only feed
    /// advisories), and those probe pods are built from. Failing runs always use facts at most
    /// --aws-cache-ttl-seconds old.
    #[arg(long, env = "PVTAPI_AWS_HEALTHY_FACTS_MAX_AGE_SECONDS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub aws_healthy_facts_max_age_seconds: u64,
    /// How long a probe pod may stay Pending before the run counts as failed.
    #[arg(long, env = "PVTAPI_PENDING_DEADLINE_SECONDS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(5..=3600))]
    pub pending_deadline_seconds: u64,
    /// Delete every finished probe pod, even the last failed one of a check.
    #[arg(long, env = "PVTAPI_NO_KEEP_FAILED_PODS")]
    pub no_keep_failed_pods: bool,
}

impl RunArgs {
    /// The controller's configuration from the flags.
    pub fn controller_config(&self, instance: &str) -> ControllerConfig {
        ControllerConfig {
            probe_image: self.probe_image.clone(),
            max_concurrent_runs: usize::from(self.max_concurrent_runs),
            pending_deadline: Duration::from_secs(self.pending_deadline_seconds),
            namespace: self.namespace.clone(),
            aws: AwsConfig {
                endpoint_url: self.aws_endpoint_url.clone(),
                cache_ttl: Duration::from_secs(self.aws_cache_ttl_seconds),
                healthy_max_age: Duration::from_secs(self.aws_healthy_facts_max_age_seconds),
            },
            keep_failed_pods: !self.no_keep_failed_pods,
            instance: instance.to_owned(),
        }
    }
}

/// Resolves on SIGTERM or SIGINT.
async fn termination_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs the operator until SIGTERM/SIGINT (`Ok`) or until it loses the leader lease (`Err`: the
/// process should exit and be restarted, as controller-runtime does).
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let client = Client::try_default()
        .await
        .map_err(|e| anyhow::anyhow!("cannot build a Kubernetes client (kubeconfig or in-cluster): {e}"))?;
    let identity = default_identity();
    let metrics = Arc::new(Metrics::new());
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    {
        let stop_tx = stop_tx.clone();
        tokio::spawn(async move {
            termination_signal().await;
            tracing::info!("termination signal: shutting down");
            let _ = stop_tx.send(true);
        });
    }

    let http = Arc::new(HttpState { metrics: metrics.clone(), ready: AtomicBool::new(false) });
    let (addr, server) = serve(args.metrics_addr, http.clone(), stopped()).await?;
    tracing::info!(%addr, "serving /metrics, /healthz, /readyz");

    // Ready means the apiserver answers and the CRD is there (standbys included: they can take
    // over at once); without it the process stops with the reason instead of looking healthy.
    let checks: kube::Api<pvtapi_crds::PrivateApiConnectivityCheck> = match &args.namespace {
        Some(ns) => kube::Api::namespaced(client.clone(), ns),
        None => kube::Api::all(client.clone()),
    };
    crate::controller::preflight(&checks).await?;

    let mut election = None;
    if !args.no_leader_election {
        let lease = LeaseConfig {
            namespace: args.leader_election_namespace.clone().unwrap_or_else(|| client.default_namespace().to_owned()),
            name: args.lease_name.clone(),
            identity: identity.clone(),
            duration_seconds: 15,
            grace_seconds: 5,
        };
        let mut e = Election::start(client.clone(), &lease).await?;
        http.ready.store(true, Ordering::Relaxed);
        tracing::info!(lease = %lease.name, namespace = %lease.namespace, identity = %identity, "waiting for the leader lease");
        tokio::select! {
            r = e.acquired() => r?,
            _ = stopped() => {
                e.release().await;
                let _ = server.await;
                return Ok(());
            }
        }
        tracing::info!("leader lease acquired");
        metrics.set_leader(true);
        election = Some(e);
    } else {
        metrics.set_leader(true);
    }
    http.ready.store(true, Ordering::Relaxed);

    let lost = Arc::new(AtomicBool::new(false));
    let lease_task = election.map(|mut e| {
        let lost = lost.clone();
        let stop_tx = stop_tx.clone();
        let stopped = stopped();
        tokio::spawn(async move {
            tokio::select! {
                _ = e.lost() => {
                    tracing::error!("leader lease lost: stopping");
                    lost.store(true, Ordering::Relaxed);
                    let _ = stop_tx.send(true);
                }
                _ = stopped => {}
            }
            e
        })
    });

    let result = run_controller(client, args.controller_config(&identity), metrics.clone(), stopped()).await;
    let _ = stop_tx.send(true);
    metrics.set_leader(false);
    if let Some(task) = lease_task
        && let Ok(e) = task.await
        && !lost.load(Ordering::Relaxed)
    {
        e.release().await;
    }
    let _ = server.await;
    result?;
    if lost.load(Ordering::Relaxed) {
        anyhow::bail!("lost the leader lease");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    #[test]
    fn flags_have_defaults_and_the_image_is_required() {
        let cli = Cli::try_parse_from(["run", "--probe-image", "pvtapi.local/pvtapi-operator:dev"]).expect("parses");
        let c = cli.run.controller_config("op-0");
        assert_eq!(c.probe_image, "pvtapi.local/pvtapi-operator:dev");
        assert_eq!(c.max_concurrent_runs, 20);
        assert_eq!(c.pending_deadline, Duration::from_secs(120));
        assert!(c.keep_failed_pods);
        assert!(c.aws.cache_ttl < Duration::from_secs(30), "shorter than the shortest interval");
        assert_eq!(cli.run.metrics_addr.port(), 8080);
        if std::env::var_os("PVTAPI_PROBE_IMAGE").is_none() {
            assert!(Cli::try_parse_from(["run"]).is_err(), "--probe-image is required");
        }
        assert!(Cli::try_parse_from(["run", "--probe-image", "x", "--max-concurrent-runs", "0"]).is_err());
    }
}

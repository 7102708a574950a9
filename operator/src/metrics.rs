//! Prometheus metrics (`/metrics`, OpenMetrics text).
//!
//! Why the labels are what they are: Kuberhealthy's users hit Prometheus label limits because
//! free-text errors became labels. Here a label is the check's namespace and name, or a member
//! of a bounded enum — a root-cause code, a probe-run failure reason, a phase, an AWS operation
//! the engine calls — never a message.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use pvtapi_crds::RootCause;

use crate::outcome::FailureReason;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CheckLabels {
    pub namespace: String,
    pub name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CauseLabels {
    pub namespace: String,
    pub name: String,
    pub root_cause: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub root_cause: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    pub operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    pub result: String,
}

/// Phases a run's duration is measured in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Probe pod created → container finished (scheduling, image, start, probe).
    Pod,
    /// The probe's own phases, from its report.
    Dns,
    Connect,
    Tls,
    FirstByte,
    Probe,
    /// AWS inspection after the pod finished.
    Aws,
    /// Pod finished (as seen by the watch) → status written.
    Report,
    /// Run start → status written.
    Total,
}

impl Phase {
    fn as_str(self) -> &'static str {
        match self {
            Phase::Pod => "pod",
            Phase::Dns => "dns",
            Phase::Connect => "connect",
            Phase::Tls => "tls",
            Phase::FirstByte => "first_byte",
            Phase::Probe => "probe",
            Phase::Aws => "aws",
            Phase::Report => "report",
            Phase::Total => "total",
        }
    }
}

fn seconds_histogram() -> Histogram {
    // 5 ms … ~80 s.
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

/// Every metric the operator exports.
#[derive(Debug)]
pub struct Metrics {
    pub registry: Registry,
    reachable: Family<CheckLabels, Gauge>,
    root_cause: Family<CauseLabels, Gauge>,
    runs: Family<ResultLabels, Counter>,
    probe_failures: Family<ReasonLabels, Counter>,
    phase_seconds: Family<PhaseLabels, Histogram, fn() -> Histogram>,
    reconcile_seconds: Histogram,
    reconcile_errors: Family<ReasonLabels, Counter>,
    aws_calls: Family<OperationLabels, Counter>,
    aws_cache: Family<CacheLabels, Counter>,
    runs_in_flight: Gauge,
    leader: Gauge<i64, std::sync::atomic::AtomicI64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("pvtapi");
        let m = Metrics {
            registry: Registry::default(),
            reachable: Family::default(),
            root_cause: Family::default(),
            runs: Family::default(),
            probe_failures: Family::default(),
            phase_seconds: Family::new_with_constructor(seconds_histogram),
            reconcile_seconds: seconds_histogram(),
            reconcile_errors: Family::default(),
            aws_calls: Family::default(),
            aws_cache: Family::default(),
            runs_in_flight: Gauge::default(),
            leader: Gauge::default(),
        };
        registry.register(
            "check_reachable",
            "1 when the check's last run found the API healthy, 0 when it found a failure; absent when the probe could not tell",
            m.reachable.clone(),
        );
        registry.register(
            "check_root_cause",
            "1 for the root cause of the check's last run (label root_cause)",
            m.root_cause.clone(),
        );
        registry.register("runs", "Finished runs by root cause", m.runs.clone());
        registry.register(
            "probe_run_failures",
            "Probe runs that failed for a reason of their own (not the target's)",
            m.probe_failures.clone(),
        );
        registry.register("run_phase_duration_seconds", "Duration of each phase of a run", m.phase_seconds.clone());
        registry.register("reconcile_duration_seconds", "Duration of one reconcile", m.reconcile_seconds.clone());
        registry.register("reconcile_errors", "Reconciles that failed, by error kind", m.reconcile_errors.clone());
        registry.register("aws_calls", "AWS API calls by service:operation", m.aws_calls.clone());
        registry.register(
            "aws_facts_cache_requests",
            "AWS facts lookups served from the shared cache (hit) or read from AWS (miss)",
            m.aws_cache.clone(),
        );
        registry.register("runs_in_flight", "Probe pods running now", m.runs_in_flight.clone());
        registry.register("leader", "1 while this replica holds the leader lease", m.leader.clone());
        for reason in FailureReason::ALL {
            let _ = m.probe_failures.get_or_create(&ReasonLabels { reason: reason.as_str().to_owned() });
        }
        Metrics { registry, ..m }
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// A finished run of `namespace/name`: per-check gauges and the runs counter.
    pub fn record_result(&self, namespace: &str, name: &str, cause: RootCause, previous: Option<RootCause>) {
        let check = CheckLabels { namespace: namespace.to_owned(), name: name.to_owned() };
        match cause {
            RootCause::Healthy => {
                self.reachable.get_or_create(&check).set(1);
            }
            RootCause::ProbeFailed | RootCause::Unknown => {
                self.reachable.remove(&check);
            }
            _ => {
                self.reachable.get_or_create(&check).set(0);
            }
        }
        if let Some(prev) = previous.filter(|p| *p != cause) {
            self.root_cause.remove(&CauseLabels {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                root_cause: prev.code().to_owned(),
            });
        }
        self.root_cause
            .get_or_create(&CauseLabels {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                root_cause: cause.code().to_owned(),
            })
            .set(1);
        self.runs.get_or_create(&ResultLabels { root_cause: cause.code().to_owned() }).inc();
    }

    /// Sets the per-check gauges from a status read back (after a restart or a leader change),
    /// without counting a run.
    pub fn observe_check(&self, namespace: &str, name: &str, cause: RootCause) {
        let check = CheckLabels { namespace: namespace.to_owned(), name: name.to_owned() };
        match cause {
            RootCause::Healthy => {
                self.reachable.get_or_create(&check).set(1);
            }
            RootCause::ProbeFailed | RootCause::Unknown => {}
            _ => {
                self.reachable.get_or_create(&check).set(0);
            }
        }
        self.root_cause
            .get_or_create(&CauseLabels {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                root_cause: cause.code().to_owned(),
            })
            .set(1);
    }

    /// The check is gone: drop its series.
    pub fn forget_check(&self, namespace: &str, name: &str) {
        self.reachable.remove(&CheckLabels { namespace: namespace.to_owned(), name: name.to_owned() });
        for cause in RootCause::ALL {
            self.root_cause.remove(&CauseLabels {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                root_cause: cause.code().to_owned(),
            });
        }
    }

    pub fn probe_failure(&self, reason: FailureReason) {
        self.probe_failures.get_or_create(&ReasonLabels { reason: reason.as_str().to_owned() }).inc();
    }

    pub fn phase(&self, phase: Phase, d: Duration) {
        self.phase_seconds.get_or_create(&PhaseLabels { phase: phase.as_str().to_owned() }).observe(d.as_secs_f64());
    }

    pub fn reconcile(&self, d: Duration) {
        self.reconcile_seconds.observe(d.as_secs_f64());
    }

    /// `kind` must be a bounded identifier (an error variant name).
    pub fn reconcile_error(&self, kind: &'static str) {
        self.reconcile_errors.get_or_create(&ReasonLabels { reason: kind.to_owned() }).inc();
    }

    /// `operation`: `service:Operation` as the SDK names it (bounded by what the engine calls).
    pub fn aws_call(&self, operation: &str) {
        let op: String = operation.chars().take(64).collect();
        self.aws_calls.get_or_create(&OperationLabels { operation: op }).inc();
    }

    pub fn aws_cache(&self, hit: bool) {
        let result = if hit { "hit" } else { "miss" };
        self.aws_cache.get_or_create(&CacheLabels { result: result.to_owned() }).inc();
    }

    pub fn set_in_flight(&self, n: usize) {
        self.runs_in_flight.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_move_the_per_check_series_without_leaving_stale_ones() {
        let m = Metrics::new();
        m.record_result("payments", "orders", RootCause::Healthy, None);
        m.record_result("payments", "orders", RootCause::SecurityGroupBlocked, Some(RootCause::Healthy));
        let text = m.encode();
        assert!(text.contains("pvtapi_check_reachable{namespace=\"payments\",name=\"orders\"} 0"), "{text}");
        assert!(text.contains("root_cause=\"SecurityGroupBlocked\"} 1"), "{text}");
        assert!(
            !text.contains("pvtapi_check_root_cause{namespace=\"payments\",name=\"orders\",root_cause=\"Healthy\"}")
        );
        assert!(text.contains("pvtapi_runs_total{root_cause=\"Healthy\"} 1"), "{text}");
        m.record_result("payments", "orders", RootCause::ProbeFailed, Some(RootCause::SecurityGroupBlocked));
        assert!(!m.encode().contains("pvtapi_check_reachable{"), "unknown: absent");
        m.forget_check("payments", "orders");
        assert!(!m.encode().contains("name=\"orders\""));
    }

    #[test]
    fn failure_reasons_are_pre_registered_and_bounded() {
        let m = Metrics::new();
        m.probe_failure(FailureReason::OomKilled);
        m.phase(Phase::Pod, Duration::from_millis(1500));
        m.aws_call("EC2:DescribeVpcEndpoints");
        m.aws_cache(true);
        let text = m.encode();
        assert!(text.contains("pvtapi_probe_run_failures_total{reason=\"OOMKilled\"} 1"), "{text}");
        assert!(text.contains("pvtapi_probe_run_failures_total{reason=\"ImagePull\"} 0"), "{text}");
        assert!(text.contains("pvtapi_run_phase_duration_seconds_count{phase=\"pod\"} 1"), "{text}");
        assert!(text.contains("pvtapi_aws_calls_total{operation=\"EC2:DescribeVpcEndpoints\"} 1"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }
}

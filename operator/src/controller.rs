//! The controller: one reconcile loop over `PrivateApiConnectivityCheck`, owning probe pods.
//!
//! Why it is shaped like this (kube-rs `controller-rs`, plus what a probe needs):
//! - Probe pods are watched once, label-selected, and that one watch both triggers reconciles
//!   (`owns_stream`: a pod finishing wakes its check — no polling) and fills a store the
//!   reconciler reads, so finding a check's in-flight pod costs no API call. The in-flight pod is
//!   found *by label and owner*, which is also how a restarted operator or a new leader adopts it.
//! - The store can lag behind our own writes. Two guards keep that from duplicating a run: an
//!   in-memory ticket per check for the pod just created (confirmed with one GET when the store
//!   does not have it yet), and a memo of the status last written, used when the watched object
//!   is older than it.
//! - A run: create the pod (owner reference with `controller: true`, so garbage collection
//!   removes pods of a deleted check — never an orphan), wait for the watch, read the report
//!   from the termination message strictly, add AWS facts (shared cache), diagnose (pure), write
//!   the whole status with server-side apply, publish an event on a transition, delete the pod
//!   (the last failed one per check is kept, labelled, for `kubectl describe`).
//! - At most one run per check (the controller never reconciles one object concurrently, and
//!   the in-flight pod or ticket blocks a second), and a global cap on concurrent runs.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use pvtapi_crds::conditions::RUN_NOW_ANNOTATION;
use pvtapi_crds::{AccessMode, CheckStatus, PrivateApiConnectivityCheck, validate};
use pvtapi_engine::diagnosis::{Diagnosis, diagnose_in_cluster, probe_failed};
use pvtapi_engine::probe::ProbeReport;
use pvtapi_engine::probe::classify::{InvokeClass, TcpOutcome};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::aws::{AwsConfig, AwsFactsService};
use crate::metrics::{Metrics, Phase};
use crate::outcome::{FailureReason, ProbeFailure, RunOutcome, probe_run_outcome};
use crate::probe_pod::{self, LABEL_RUN};
use crate::schedule::{self, Decision, ScheduleInput, Trigger};
use crate::status::{self, Lifecycle, RunRecord, StallReason};

type Check = PrivateApiConnectivityCheck;

/// The server-side-apply field manager of everything the operator writes.
pub const FIELD_MANAGER: &str = "pvtapi-operator";
/// Label selector of every probe pod the operator created (the watch and RBAC scope).
/// Every probe pod, including those that took a workload's labels (`spec.probe.workloadRef`),
/// carries both pvtapi keys; nothing else does.
pub const POD_SELECTOR: &str = "pvtapi.io/check,pvtapi.io/run";
/// Pod annotation: the check generation the run was started for.
pub const ANNOTATION_GENERATION: &str = "pvtapi.io/generation";
/// Pod annotation: why the run started (`FirstRun`, `SpecChanged`, `RunNow`, `Due`).
pub const ANNOTATION_TRIGGER: &str = "pvtapi.io/trigger";
/// Pod annotation: the `pvtapi.io/run-now` value the run consumes.
pub const ANNOTATION_RUN_NOW: &str = "pvtapi.io/run-now";
/// Pod label on the last failed probe pod of a check, kept for debugging.
pub const LABEL_RETAINED: &str = "pvtapi.io/retained";

/// What the controller needs to know.
#[derive(Clone, Debug)]
pub struct ControllerConfig {
    /// The operator's own image; probe pods run it (unless `spec.probe.image`).
    pub probe_image: String,
    /// Probe pods running at once, across all checks.
    pub max_concurrent_runs: usize,
    /// How long a probe pod may stay Pending before the run fails.
    pub pending_deadline: Duration,
    /// Watch one namespace only; `None` watches all.
    pub namespace: Option<String>,
    pub aws: AwsConfig,
    /// Keep the last failed probe pod per check.
    pub keep_failed_pods: bool,
    /// Name reported on events (`reportingInstance`), e.g. the pod name.
    pub instance: String,
}

#[derive(Debug)]
struct Ticket {
    pod_name: String,
    _permit: Option<OwnedSemaphorePermit>,
}

#[derive(Debug, Default)]
struct Memo {
    uid: String,
    /// The check was reconciled before in this process.
    seen: bool,
    ticket: Option<Ticket>,
    status: Option<CheckStatus>,
}

/// Shared by every reconcile.
pub struct Context {
    client: Client,
    config: ControllerConfig,
    pods: Store<Pod>,
    aws: Arc<AwsFactsService>,
    metrics: Arc<Metrics>,
    recorder: Recorder,
    permits: Arc<Semaphore>,
    memo: Mutex<HashMap<String, Memo>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("config", &self.config).finish_non_exhaustive()
    }
}

/// A reconcile failure (retried with back-off by the error policy).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("the object has no {0}")]
    MissingField(&'static str),
}

impl Error {
    fn kind(&self) -> &'static str {
        match self {
            Error::Kube(kube::Error::Api(_)) => "ApiError",
            Error::Kube(_) => "ClientError",
            Error::MissingField(_) => "MissingField",
        }
    }
}

fn key(ns: &str, name: &str) -> String {
    format!("{ns}/{name}")
}

/// The `pvtapi.io/check` label value for a check name: the name when it fits a label (63
/// characters), else a prefix and a hash.
pub fn check_label_value(name: &str) -> String {
    if name.len() <= 63 {
        return name.to_owned();
    }
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut h);
    let prefix: String = name.chars().take(54).collect();
    format!("{}-{:08x}", prefix.trim_end_matches(['-', '.']), h.finish() & 0xffff_ffff)
}

/// The probe pod name for a run: the check name (cut to keep the whole under 63 characters,
/// so it is also a valid hostname) and the run id.
pub fn pod_name(check: &str, run_id: &str) -> String {
    let room = 62usize.saturating_sub(run_id.len());
    let prefix: String = check.chars().take(room).collect();
    format!("{}-{run_id}", prefix.trim_end_matches(['-', '.']))
}

fn spec_problem(check: &Check) -> Option<String> {
    let s = &check.spec;
    let mut problems = Vec::new();
    let mut field = |name: &str, r: Result<String, validate::InvalidValue>| {
        if let Err(e) = r {
            problems.push(format!("{name}: {e}"));
        }
    };
    field("spec.api.id", validate::api_id(&s.api.id));
    field("spec.api.region", validate::region(&s.api.region));
    field("spec.api.stage", validate::stage(&s.api.stage));
    field("spec.api.path", validate::path(&s.api.path));
    field("spec.endpoint.vpcEndpointId", validate::vpc_endpoint_id(&s.endpoint.vpc_endpoint_id));
    if let Some(d) = &s.domain_name {
        field("spec.domainName", validate::hostname(d));
    }
    if let Some(r) = &s.aws.api_role_arn {
        field("spec.aws.apiRoleArn", validate::role_arn(r));
    }
    if s.access == AccessMode::CustomDomain && s.domain_name.is_none() {
        problems.push("spec.domainName: required when access is customDomain".into());
    }
    if s.interval_seconds < 30 {
        problems.push("spec.intervalSeconds: must be at least 30".into());
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}

impl Context {
    fn memo<R>(&self, ns: &str, name: &str, uid: &str, f: impl FnOnce(&mut Memo) -> R) -> R {
        let mut map = self.memo.lock().unwrap_or_else(|e| e.into_inner());
        let m = map.entry(key(ns, name)).or_default();
        if m.uid != uid {
            // A new object under an old name: nothing carries over.
            *m = Memo { uid: uid.to_owned(), ..Default::default() };
        }
        f(m)
    }

    fn in_flight_count(&self) -> usize {
        self.config.max_concurrent_runs.saturating_sub(self.permits.available_permits())
    }

    /// The newer of the watched status and the one last written.
    fn effective_status(&self, ns: &str, name: &str, uid: &str, watched: Option<&CheckStatus>) -> CheckStatus {
        let watched = watched.cloned().unwrap_or_default();
        self.memo(ns, name, uid, |m| match &m.status {
            Some(mine) if mine.last_run_time >= watched.last_run_time => mine.clone(),
            _ => watched,
        })
    }

    async fn write_status(&self, check: &Check, before: &CheckStatus, after: CheckStatus) -> Result<(), Error> {
        let ns = check.namespace().ok_or(Error::MissingField("metadata.namespace"))?;
        let name = check.name_any();
        let uid = check.uid().unwrap_or_default();
        if *before == after {
            return Ok(());
        }
        let api: Api<Check> = Api::namespaced(self.client.clone(), &ns);
        let patch = serde_json::json!({
            "apiVersion": "pvtapi.io/v1alpha1",
            "kind": "PrivateApiConnectivityCheck",
            "status": after,
        });
        api.patch_status(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&patch)).await?;
        self.memo(&ns, &name, &uid, |m| m.status = Some(after));
        Ok(())
    }
}

/// Reconciles one check.
pub async fn reconcile(check: Arc<Check>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let result = reconcile_check(&check, &ctx).await;
    ctx.metrics.reconcile(started.elapsed());
    ctx.metrics.set_in_flight(ctx.in_flight_count());
    result
}

/// Retries a failed reconcile after a pause.
pub fn error_policy(check: Arc<Check>, error: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(namespace = check.namespace().unwrap_or_default(), name = %check.name_any(), error = %error, "reconcile failed");
    ctx.metrics.reconcile_error(error.kind());
    Action::requeue(Duration::from_secs(15))
}

fn requeue_at(now: Timestamp, t: Timestamp) -> Action {
    Action::requeue(schedule::until(now, t).max(Duration::from_secs(1)))
}

fn run_id_of(pod: &Pod) -> Option<&str> {
    pod.labels().get(LABEL_RUN).map(String::as_str)
}

fn run_generation(pod: &Pod) -> Option<i64> {
    pod.annotations().get(ANNOTATION_GENERATION).and_then(|g| g.parse().ok())
}

fn created(pod: &Pod) -> Option<Timestamp> {
    pod.metadata.creation_timestamp.as_ref().map(|t| t.0)
}

async fn reconcile_check(check: &Check, ctx: &Context) -> Result<Action, Error> {
    let ns = check.namespace().ok_or(Error::MissingField("metadata.namespace"))?;
    let name = check.name_any();
    let uid = check.uid().ok_or(Error::MissingField("metadata.uid"))?;
    let generation = check.metadata.generation.unwrap_or(0);
    let now = Timestamp::now();

    // Adopting an in-flight pod after a restart needs the complete pod list.
    if tokio::time::timeout(Duration::from_secs(10), ctx.pods.wait_until_ready()).await.is_err() {
        return Ok(Action::requeue(Duration::from_secs(2)));
    }
    let seen_before = ctx.memo(&ns, &name, &uid, |m| std::mem::replace(&mut m.seen, true));
    let current = ctx.effective_status(&ns, &name, &uid, check.status.as_ref());
    if !seen_before && let Some(cause) = current.root_cause {
        // First sight in this process (restart, new leader): export the last result at once.
        ctx.metrics.observe_check(&ns, &name, cause);
    }

    if let Some(problem) = spec_problem(check) {
        let mut next = current.clone();
        status::set_lifecycle(
            &mut next,
            generation,
            &Lifecycle::Stalled { reason: StallReason::InvalidSpec, message: problem },
            now,
        );
        ctx.write_status(check, &current, next).await?;
        return Ok(Action::await_change());
    }

    // This check's probe pods, by owner (labels can be copied; owner uids cannot).
    let pods: Vec<Arc<Pod>> = ctx.pods.state_filter(|p| {
        p.namespace().as_deref() == Some(ns.as_str())
            && p.owner_references().iter().any(|o| o.uid == uid && o.controller == Some(true))
    });
    let processed = |p: &Pod| {
        let id = run_id_of(p);
        // Superseded: deleted by us because the spec changed under it.
        let superseded = p.metadata.deletion_timestamp.is_some() && run_generation(p).is_some_and(|g| g < generation);
        superseded
            || p.labels().contains_key(LABEL_RETAINED)
            || (id.is_some()
                && (id == current.last_run_id.as_deref() || current.history.iter().any(|h| h.run_id.as_deref() == id)))
    };
    let (done, mut active): (Vec<Arc<Pod>>, Vec<Arc<Pod>>) = pods.into_iter().partition(|p| processed(p));
    cleanup(ctx, &ns, &done).await;
    active.sort_by_key(|p| created(p));
    if let Some(pod) = active.pop() {
        // More than one unprocessed pod can only come from a crash between create and record:
        // the newest is the run; the others are stale.
        for stale in active {
            delete_pod(ctx, &ns, &stale.name_any()).await;
        }
        return handle_pod(check, ctx, &current, &pod, now).await;
    }
    let ticket = ctx.memo(&ns, &name, &uid, |m| m.ticket.as_ref().map(|t| t.pod_name.clone()));
    if let Some(pod_name) = ticket {
        // Created by us but not (or no longer) in the store: ask the apiserver.
        let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
        return match api.get_opt(&pod_name).await? {
            Some(pod) => handle_pod(check, ctx, &current, &pod, now).await,
            None => {
                let failure = ProbeFailure::new(
                    FailureReason::Deleted,
                    format!("probe pod {pod_name} was deleted before it reported"),
                );
                finish(check, ctx, &current, None, &pod_name, Err(failure), now).await
            }
        };
    }

    let input = schedule_input(check, &current, &uid);
    match schedule::decide(&input, now) {
        Decision::WaitUntil(t) => Ok(requeue_at(now, t)),
        Decision::Run(trigger) => start_run(check, ctx, &current, trigger, now).await,
    }
}

fn schedule_input<'a>(check: &'a Check, current: &'a CheckStatus, uid: &'a str) -> ScheduleInput<'a> {
    ScheduleInput {
        uid,
        generation: check.metadata.generation,
        observed_generation: current.observed_generation,
        run_now: check.annotations().get(RUN_NOW_ANNOTATION).map(String::as_str),
        last_run_now: current.last_run_now.as_deref(),
        last_run_time: current.last_run_time.as_ref().map(|t| t.0),
        interval: Duration::from_secs(u64::from(check.spec.interval_seconds)),
    }
}

async fn delete_pod(ctx: &Context, ns: &str, name: &str) {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let dp = DeleteParams { grace_period_seconds: Some(0), ..DeleteParams::background() };
    match api.delete(name, &dp).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => {}
        Err(err) => tracing::warn!(namespace = ns, pod = name, error = %err, "cannot delete probe pod"),
    }
}

/// Deletes processed pods; keeps only the newest retained one.
async fn cleanup(ctx: &Context, ns: &str, done: &[Arc<Pod>]) {
    let mut retained: Vec<&Arc<Pod>> = done.iter().filter(|p| p.labels().contains_key(LABEL_RETAINED)).collect();
    retained.sort_by_key(|p| created(p));
    let keep = if ctx.config.keep_failed_pods { retained.last().map(|p| p.name_any()) } else { None };
    for p in done {
        if p.metadata.deletion_timestamp.is_some() || Some(p.name_any()) == keep {
            continue;
        }
        delete_pod(ctx, ns, &p.name_any()).await;
    }
}

async fn handle_pod(
    check: &Check,
    ctx: &Context,
    current: &CheckStatus,
    pod: &Pod,
    now: Timestamp,
) -> Result<Action, Error> {
    let ns = check.namespace().unwrap_or_default();
    let name = check.name_any();
    let uid = check.uid().unwrap_or_default();
    match probe_run_outcome(pod, now, ctx.config.pending_deadline) {
        RunOutcome::InFlight { .. }
            if run_generation(pod).is_some_and(|g| g < check.metadata.generation.unwrap_or(0)) =>
        {
            // The spec changed under a run that has not reported: its result would describe the
            // old spec. Stop it and run the new spec at once.
            tracing::info!(namespace = %ns, name = %name, pod = %pod.name_any(), "spec changed during a run: restarting it");
            delete_pod(ctx, &ns, &pod.name_any()).await;
            ctx.memo(&ns, &name, &uid, |m| m.ticket = None);
            start_run(check, ctx, current, Trigger::SpecChanged, now).await
        }
        RunOutcome::InFlight { recheck_at } => {
            // Adopt (after a restart or a leader change) or keep tracking.
            let pod_name = pod.name_any();
            ctx.memo(&ns, &name, &uid, |m| {
                if m.ticket.as_ref().map(|t| &t.pod_name) != Some(&pod_name) {
                    m.ticket = Some(Ticket { pod_name, _permit: ctx.permits.clone().try_acquire_owned().ok() });
                }
            });
            Ok(requeue_at(now, recheck_at))
        }
        RunOutcome::Finished { message } => {
            finish(check, ctx, current, Some(pod), &pod.name_any(), Ok(message), now).await
        }
        RunOutcome::Failed(f) => finish(check, ctx, current, Some(pod), &pod.name_any(), Err(f), now).await,
    }
}

/// A finished run: report → facts → diagnosis → status, event, metrics, pod clean-up.
async fn finish(
    check: &Check,
    ctx: &Context,
    current: &CheckStatus,
    pod: Option<&Pod>,
    pod_name: &str,
    outcome: Result<String, ProbeFailure>,
    seen: Timestamp,
) -> Result<Action, Error> {
    let ns = check.namespace().unwrap_or_default();
    let name = check.name_any();
    let uid = check.uid().unwrap_or_default();
    let generation = check.metadata.generation.unwrap_or(0);
    let spec = &check.spec;
    let annotations = pod.map(|p| p.annotations().clone()).unwrap_or_default();
    let run_generation = pod.and_then(run_generation).unwrap_or(generation);
    let run_id = pod.and_then(run_id_of).unwrap_or(pod_name).to_owned();

    let parsed = outcome.and_then(|message| {
        crate::report::parse_probe_report(&message)
            .and_then(|r| crate::report::check_target(&r, spec).map(|()| r))
            .map_err(|e| ProbeFailure::new(FailureReason::ReportUnreadable, format!("probe pod {pod_name}: {e}")))
    });
    let (diagnosis, report, failure): (Diagnosis, Option<ProbeReport>, Option<ProbeFailure>) = match parsed {
        Ok(mut report) => {
            let facts = if spec.aws.inspect {
                let address = |get: fn(&k8s_openapi::api::core::v1::PodStatus) -> Option<&String>| -> Option<IpAddr> {
                    pod.and_then(|p| p.status.as_ref()).and_then(get).and_then(|ip| ip.parse().ok())
                };
                let client_ip = address(|s| s.pod_ip.as_ref());
                let node_ip = address(|s| s.host_ip.as_ref());
                let request_id =
                    report.invoke.as_ref().filter(|i| i.class != InvokeClass::Ok).and_then(|i| i.request_id.clone());
                // Nothing failed anywhere on the path: older facts will do (advisories only).
                let clean = report.invoke.as_ref().is_some_and(|i| i.class == InvokeClass::Ok)
                    && report.tcp.iter().all(|t| t.outcome == TcpOutcome::Connected);
                let t = Instant::now();
                let facts = ctx.aws.facts(spec, client_ip, node_ip, request_id, clean).await;
                // The source the endpoint sees (the VPC CNI's SNAT, Security Groups for Pods):
                // the analyses judge that, not the pod's own address.
                let facts = match facts {
                    Ok(f) => Ok(crate::cni::resolve_source(&ctx.client, f).await),
                    Err(e) => Err(e),
                };
                ctx.metrics.phase(Phase::Aws, t.elapsed());
                facts
            } else {
                Err("skipped: spec.aws.inspect is false".to_owned())
            };
            // `auto`: explain the mode from the facts — only when they chose the mode the pod ran
            // with (the pod may have been built before AWS could be read).
            if spec.access == AccessMode::Auto
                && let Ok(f) = &facts
                && let Some((mode, reason)) = pvtapi_engine::diagnosis::choose_access(f, &spec.endpoint.vpc_endpoint_id)
                && mode == report.access.mode
            {
                report.access.reason = reason;
            }
            // The pod's own NetworkPolicies: a timeout they explain, or a path they block that
            // this (not yet policed) probe got through.
            let cluster = match pod {
                Some(p) => {
                    let endpoint =
                        facts.as_ref().ok().and_then(|f| f.endpoint.known()).map(|e| e.addresses()).unwrap_or_default();
                    Some(crate::netpol::cluster_facts(&ctx.client, p, &name, &report, &endpoint).await)
                }
                _ => None,
            };
            let mut d = diagnose_in_cluster(&report, facts.as_ref().ok(), cluster.as_ref());
            if let Err(reason) = &facts {
                d = d.with_aws_unavailable(reason);
            }
            (d, Some(report), None)
        }
        Err(f) => {
            let fix = format!(
                "Run `kubectl describe pod {pod_name} -n {ns}` (the last failed probe pod is kept) and check spec.probe: placement, image and resources"
            );
            (probe_failed(&format!("{}: {}", f.reason.as_str(), f.message), &fix), None, Some(f))
        }
    };

    let finished = Timestamp::now();
    let input = schedule_input(check, current, &uid);
    let next_run = schedule::next_run_time(&input, finished);
    let started_at = pod.and_then(created);
    let mut next = current.clone();
    status::record_result(
        &mut next,
        &RunRecord {
            run_id: &run_id,
            generation: run_generation,
            finished,
            duration_ms: started_at
                .map(|s| schedule::until(s, finished))
                .and_then(|d| u64::try_from(d.as_millis()).ok()),
            diagnosis: &diagnosis,
            probe: report.as_ref(),
            failure: failure.as_ref(),
            run_now: annotations.get(ANNOTATION_RUN_NOW).map(String::as_str),
            next_run: Some(next_run),
        },
    );
    let missing = status::missing_permissions(&diagnosis);
    let lifecycle = if run_generation != generation {
        Lifecycle::Progressing {
            reason: "SpecChanged",
            message: "the spec changed during the run; running again".into(),
        }
    } else if !missing.is_empty() {
        Lifecycle::Stalled {
            reason: StallReason::AwsPermissionMissing,
            message: format!(
                "the operator's AWS role lacks {}: the result is partial (see deploy/iam-policy.json)",
                missing.join(", ")
            ),
        }
    } else {
        Lifecycle::Current
    };
    status::set_lifecycle(&mut next, generation, &lifecycle, finished);
    let event = status::transition_event(current, &next);
    ctx.write_status(check, current, next).await?;
    ctx.memo(&ns, &name, &uid, |m| m.ticket = None);

    // Metrics.
    ctx.metrics.record_result(&ns, &name, diagnosis.root_cause, current.root_cause);
    if let Some(f) = &failure {
        ctx.metrics.probe_failure(f.reason);
    }
    if let Some(r) = &report {
        let ms = |v: u64| Duration::from_millis(v);
        ctx.metrics.phase(Phase::Dns, ms(r.timings.dns_ms));
        for (phase, v) in [
            (Phase::Connect, r.timings.connect_ms),
            (Phase::Tls, r.timings.tls_ms),
            (Phase::FirstByte, r.timings.ttfb_ms),
        ] {
            if let Some(v) = v {
                ctx.metrics.phase(phase, ms(v));
            }
        }
        ctx.metrics.phase(Phase::Probe, ms(r.timings.total_ms));
    }
    let container_finished = pod
        .and_then(|p| p.status.as_ref())
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.first())
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.terminated.as_ref())
        .and_then(|t| t.finished_at.as_ref())
        .map(|t| t.0);
    if let (Some(s), Some(f)) = (started_at, container_finished) {
        ctx.metrics.phase(Phase::Pod, schedule::until(s, f));
    }
    ctx.metrics.phase(Phase::Report, schedule::until(container_finished.unwrap_or(seen), finished));
    if let Some(s) = started_at {
        ctx.metrics.phase(Phase::Total, schedule::until(s, finished));
    }
    tracing::info!(
        namespace = %ns, name = %name, run = %run_id, root_cause = diagnosis.root_cause.code(),
        probe_failure = failure.as_ref().map(|f| f.reason.as_str()), "run finished"
    );

    if let Some(e) = event {
        let ev = Event {
            type_: if e.warning { EventType::Warning } else { EventType::Normal },
            reason: e.reason.to_owned(),
            note: Some(e.note),
            action: "Probe".into(),
            secondary: None,
        };
        if let Err(err) = ctx.recorder.publish(&ev, &check.object_ref(&())).await {
            tracing::warn!(namespace = %ns, name = %name, error = %err, "cannot publish event");
        }
    }

    // The pod: kept (labelled) when it is the evidence of a failed run and has terminated;
    // deleted otherwise.
    if let Some(p) = pod {
        let terminal = matches!(p.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Failed" | "Succeeded"));
        if failure.is_some() && terminal && ctx.config.keep_failed_pods {
            let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
            let patch = serde_json::json!({"metadata": {"labels": {LABEL_RETAINED: "true"}}});
            if let Err(err) = api.patch(&p.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
                tracing::warn!(namespace = %ns, pod = %p.name_any(), error = %err, "cannot label the failed probe pod");
                delete_pod(ctx, &ns, &p.name_any()).await;
            }
        } else {
            delete_pod(ctx, &ns, &p.name_any()).await;
        }
    }
    Ok(if run_generation != generation {
        Action::requeue(Duration::from_millis(100))
    } else {
        requeue_at(finished, next_run)
    })
}

fn stall_for(err: &kube::core::Status) -> (StallReason, String) {
    let msg = crate::outcome::bounded_text(&err.message, 400);
    let lower = msg.to_ascii_lowercase();
    let reason = if err.code == 422 {
        StallReason::InvalidSpec
    } else if lower.contains("podsecurity") {
        StallReason::PodRejected
    } else if lower.contains("quota")
        || lower.contains("limitrange")
        || lower.contains("maximum")
        || lower.contains("minimum")
    {
        StallReason::QuotaExceeded
    } else {
        StallReason::RbacMissing
    };
    (reason, format!("cannot create the probe pod: {msg}"))
}

async fn start_run(
    check: &Check,
    ctx: &Context,
    current: &CheckStatus,
    trigger: Trigger,
    now: Timestamp,
) -> Result<Action, Error> {
    let ns = check.namespace().unwrap_or_default();
    let name = check.name_any();
    let uid = check.uid().unwrap_or_default();
    let generation = check.metadata.generation.unwrap_or(0);
    let Ok(permit) = ctx.permits.clone().try_acquire_owned() else {
        // At the global cap: try again shortly (spread, so waiting checks do not stampede).
        let wait =
            Duration::from_millis(2000 + schedule::jitter(&uid, Some(now), Duration::from_secs(30)).as_millis() as u64);
        return Ok(Action::requeue(wait));
    };
    let run_id = schedule::run_id(now);
    let pod_name = pod_name(&name, &run_id);

    // AWS facts the pod needs: the endpoint's DNS names and the `auto` access choice.
    let mut pod_spec = check.spec.clone();
    let mut dns_names = Vec::new();
    if check.spec.aws.inspect
        && let Ok(hints) = ctx.aws.pod_hints(&check.spec).await
    {
        if let Some((mode, _)) = hints.access {
            pod_spec.access = mode;
        }
        dns_names = hints.vpce_dns_names;
    }
    // As the workload: its identity, read now (a rollout may have changed it since last run).
    let identity = match check.spec.probe.as_ref().and_then(|p| p.workload_ref.as_ref()) {
        None => None,
        Some(r) => match crate::workload::resolve(&ctx.client, &ns, r).await {
            Ok(id) => {
                if !id.notes.is_empty() {
                    tracing::info!(namespace = %ns, name = %name, notes = ?id.notes, "workload identity: not copied");
                }
                Some(id)
            }
            Err(e) => {
                let reason = match &e {
                    crate::workload::WorkloadError::Api(_, kube::Error::Api(s)) if s.code == 403 => {
                        StallReason::RbacMissing
                    }
                    _ => StallReason::WorkloadNotFound,
                };
                tracing::warn!(namespace = %ns, name = %name, error = %e, "cannot read spec.probe.workloadRef");
                let mut next = current.clone();
                let message = format!("spec.probe.workloadRef: {e}");
                status::set_lifecycle(&mut next, generation, &Lifecycle::Stalled { reason, message }, now);
                ctx.write_status(check, current, next).await?;
                return Ok(Action::requeue(Duration::from_secs(60)));
            }
        },
    };
    let check_label = check_label_value(&name);
    let mut pod = probe_pod::build(&probe_pod::ProbePodParams {
        name: pod_name.clone(),
        namespace: &ns,
        check_name: &check_label,
        run_id: &run_id,
        image: &ctx.config.probe_image,
        spec: &pod_spec,
        vpce_dns_names: &dns_names,
        identity: identity.as_ref(),
    });
    pod.metadata.owner_references = Some(vec![OwnerReference {
        api_version: Check::api_version(&()).into_owned(),
        kind: Check::kind(&()).into_owned(),
        name: name.clone(),
        uid: uid.clone(),
        controller: Some(true),
        // Not blocking: that would need update on the check's finalizers (more RBAC) for no gain.
        block_owner_deletion: None,
    }]);
    let mut annotations = std::collections::BTreeMap::from([
        (ANNOTATION_GENERATION.to_owned(), generation.to_string()),
        (ANNOTATION_TRIGGER.to_owned(), trigger.as_str().to_owned()),
    ]);
    if let Trigger::RunNow(v) = &trigger {
        annotations.insert(ANNOTATION_RUN_NOW.to_owned(), v.clone());
    } else if let Some(v) = check.annotations().get(RUN_NOW_ANNOTATION) {
        // A spec change or first run also answers a pending run-now request.
        annotations.insert(ANNOTATION_RUN_NOW.to_owned(), schedule::run_now_value(v.trim()));
    }
    pod.metadata.annotations = Some(annotations);

    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    match api.create(&PostParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() }, &pod).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(kube::Error::Api(e)) if e.code == 403 || e.code == 422 => {
            let (reason, message) = stall_for(&e);
            tracing::warn!(namespace = %ns, name = %name, reason = reason.as_str(), "cannot create the probe pod");
            let mut next = current.clone();
            status::set_lifecycle(&mut next, generation, &Lifecycle::Stalled { reason, message }, now);
            ctx.write_status(check, current, next).await?;
            return Ok(Action::requeue(Duration::from_secs(60)));
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(namespace = %ns, name = %name, run = %run_id, trigger = trigger.as_str(), "probe pod created");
    ctx.memo(&ns, &name, &uid, |m| m.ticket = Some(Ticket { pod_name, _permit: Some(permit) }));

    let progressing = match trigger {
        Trigger::FirstRun => Some(("FirstRun", "the first run is under way")),
        Trigger::SpecChanged => Some(("SpecChanged", "a run for the new spec is under way")),
        _ => None,
    };
    if let Some((reason, message)) = progressing {
        let mut next = current.clone();
        status::set_lifecycle(&mut next, generation, &Lifecycle::Progressing { reason, message: message.into() }, now);
        ctx.write_status(check, current, next).await?;
    }
    Ok(Action::requeue(ctx.config.pending_deadline + Duration::from_secs(5)))
}

/// Runs the controller until `shutdown` resolves (then lets in-flight reconciles finish).
///
/// For end-to-end tests that start it in-process: no leader election, no HTTP server (see
/// [`crate::run::run`] for the whole operator).
/// The apiserver answers and the CRD is installed and listable by the operator: what `/readyz`
/// waits for, and what the controller checks again before it watches.
pub async fn preflight(checks: &Api<Check>) -> anyhow::Result<()> {
    checks.list(&ListParams::default().limit(1)).await.map(|_| ()).map_err(|e| {
        anyhow::anyhow!(
            "cannot list PrivateApiConnectivityCheck objects ({e}): is the CRD installed (crds/pvtapi.io_privateapiconnectivitychecks.yaml) and may the operator list them?"
        )
    })
}

pub async fn run_controller(
    client: Client,
    config: ControllerConfig,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> anyhow::Result<()> {
    let (checks, pods): (Api<Check>, Api<Pod>) = match &config.namespace {
        Some(ns) => (Api::namespaced(client.clone(), ns), Api::namespaced(client.clone(), ns)),
        None => (Api::all(client.clone()), Api::all(client.clone())),
    };
    preflight(&checks).await?;
    // Both caches drop `managedFields` (nothing here reads them): with a thousand checks they
    // were most of what the operator kept in memory.
    let (reader, writer) = reflector::store::<Pod>();
    let pod_stream = watcher(pods, watcher::Config::default().labels(POD_SELECTOR))
        .default_backoff()
        .modify(|p| p.managed_fields_mut().clear())
        .reflect(writer)
        .touched_objects();
    let (check_reader, check_writer) = reflector::store::<Check>();
    let check_stream = watcher(checks, watcher::Config::default().any_semantic())
        .default_backoff()
        .modify(|c| c.managed_fields_mut().clear())
        .reflect(check_writer)
        .touched_objects();
    let aws = Arc::new(AwsFactsService::new(config.aws.clone(), metrics.clone()));
    let recorder = Recorder::new(
        client.clone(),
        Reporter { controller: FIELD_MANAGER.into(), instance: Some(config.instance.clone()) },
    );
    let ctx = Arc::new(Context {
        client: client.clone(),
        permits: Arc::new(Semaphore::new(config.max_concurrent_runs.max(1))),
        config,
        pods: reader,
        aws,
        metrics: metrics.clone(),
        recorder,
        memo: Mutex::new(HashMap::new()),
    });
    let forget_ctx = ctx.clone();
    Controller::for_stream(check_stream, check_reader)
        .owns_stream(pod_stream)
        .with_config(kube::runtime::controller::Config::default().concurrency(32))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(move |res| {
            if let Err(kube::runtime::controller::Error::ObjectNotFound(obj)) = &res {
                // The check is gone: its pods go with it (owner references); drop its series and memo.
                let ns = obj.namespace.clone().unwrap_or_default();
                forget_ctx.metrics.forget_check(&ns, &obj.name);
                if let Ok(mut map) = forget_ctx.memo.lock() {
                    map.remove(&key(&ns, &obj.name));
                }
            }
            futures::future::ready(())
        })
        .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_labels_fit_kubernetes_limits() {
        let long = "a".repeat(200);
        let label = check_label_value(&long);
        assert!(label.len() <= 63, "{}", label.len());
        assert_eq!(label, check_label_value(&long), "stable");
        assert_ne!(label, check_label_value(&format!("{long}b")), "distinct names, distinct labels");
        assert_eq!(check_label_value("orders"), "orders");
        let run = schedule::run_id("2026-12-03T10:00:00Z".parse().expect("ts"));
        let name = pod_name(&long, &run);
        assert!(name.len() <= 63 && name.ends_with(&run), "{name}");
        assert_eq!(pod_name("orders", "mh2k3"), "orders-mh2k3");
        assert_eq!(pod_name(&format!("{}.-x", "b".repeat(52)), "0123456789"), format!("{}-0123456789", "b".repeat(52)));
    }

    #[test]
    fn spec_problems_name_the_field() {
        let mut check = Check::new(
            "orders",
            serde_json::from_value(serde_json::json!({
                "api": {"id": "abcde12345", "region": "us-east-1", "stage": "prod"},
                "endpoint": {"vpcEndpointId": "vpce-0123456789abcdef0"}
            }))
            .expect("spec"),
        );
        assert_eq!(spec_problem(&check), None);
        check.spec.api.id = "NOT-AN-ID".into();
        check.spec.access = AccessMode::CustomDomain;
        let p = spec_problem(&check).expect("problem");
        assert!(p.contains("spec.api.id") && p.contains("spec.domainName"), "{p}");
    }

    #[test]
    fn pod_creation_refusals_map_to_stall_reasons() {
        let status =
            |code: u16, message: &str| kube::core::Status { code, message: message.into(), ..Default::default() };
        let cases = [
            (
                403,
                "pods \"x\" is forbidden: User \"system:serviceaccount:pvtapi:op\" cannot create resource \"pods\"",
                StallReason::RbacMissing,
            ),
            (
                403,
                "pods \"x\" is forbidden: violates PodSecurity \"restricted:latest\": runAsNonRoot != true",
                StallReason::PodRejected,
            ),
            (
                403,
                "pods \"x\" is forbidden: exceeded quota: compute, requested: pods=1, used: pods=10, limited: pods=10",
                StallReason::QuotaExceeded,
            ),
            (422, "Pod \"x\" is invalid: spec.tolerations[0].operator: Invalid value", StallReason::InvalidSpec),
        ];
        for (code, message, want) in cases {
            assert_eq!(stall_for(&status(code, message)).0, want, "{message}");
        }
    }
}

//! The status a check's result becomes: conditions, history, the bounded report.
//!
//! Why pure: status is the product's API — alerts match on the `Reachable` reason, Argo CD and
//! Flux read `Ready`/`Reconciling`/`Stalled` (kstatus), people read the history. Every rule here
//! is a table test, and the controller only decides *when* to write it.
//!
//! Conventions (design.md §8):
//! - `Ready` = the check operates and its result is current. It never goes False because the
//!   *target* is down, so a target outage does not block GitOps syncs.
//! - `Reconciling` is True only while the result does not yet reflect the spec (first run, spec
//!   change), not during every periodic run, so GitOps tools do not flicker to Progressing.
//! - `Stalled` is True when a human must act (invalid spec, missing RBAC or AWS permission).
//! - `Reachable`'s reason is always the root-cause code; True only for `Healthy`, Unknown for
//!   `ProbeFailed`/`Unknown`. Flapping is its own condition so the reason stays the cause.
//! - Every condition carries `observedGeneration`, and `lastTransitionTime` moves only when its
//!   status moves.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use pvtapi_crds::check::MAX_HISTORY;
use pvtapi_crds::conditions::*;
use pvtapi_crds::{CheckStatus, RootCause, RunResult, check::MAX_REPORT_BYTES};
use pvtapi_engine::diagnosis::{AreaResult, AreaStatus, Diagnosis};
use pvtapi_engine::probe::ProbeReport;

use crate::outcome::ProbeFailure;

/// Transitions between healthy and failing within the history window that make a check flap.
pub const FLAPPING_TRANSITIONS: usize = 3;
/// `status.summary`'s schema limit.
const MAX_SUMMARY_CHARS: usize = 1024;
/// Longest condition message written.
const MAX_MESSAGE_CHARS: usize = 1024;

fn bounded(text: &str, max: usize) -> String {
    if text.chars().count() > max { text.chars().take(max - 1).collect::<String>() + "…" } else { text.to_owned() }
}

/// Sets `new` in `conditions` (keyed by type), keeping `lastTransitionTime` when the status
/// did not change.
pub fn set_condition(conditions: &mut Vec<Condition>, mut new: Condition) {
    new.message = bounded(&new.message, MAX_MESSAGE_CHARS);
    match conditions.iter_mut().find(|c| c.type_ == new.type_) {
        Some(old) => {
            if old.status == new.status {
                new.last_transition_time = old.last_transition_time.clone();
            }
            *old = new;
        }
        None => conditions.push(new),
    }
}

/// Looks a condition up by type.
pub fn condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

fn cond(
    type_: &str,
    status: &str,
    reason: &str,
    message: impl Into<String>,
    generation: i64,
    now: Timestamp,
) -> Condition {
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message: message.into(),
        observed_generation: Some(generation),
        last_transition_time: Time(now),
    }
}

/// `Reachable`'s status for a root cause.
pub fn reachable_status(cause: RootCause) -> &'static str {
    match cause {
        RootCause::Healthy => "True",
        RootCause::ProbeFailed | RootCause::Unknown => "Unknown",
        _ => "False",
    }
}

/// Whether a result counts as healthy, failing, or neither (the probe could not tell).
fn verdict(cause: RootCause) -> Option<bool> {
    match cause {
        RootCause::Healthy => Some(true),
        RootCause::ProbeFailed | RootCause::Unknown => None,
        _ => Some(false),
    }
}

/// Healthy↔failing transitions in a history (newest first); runs that could not tell are skipped.
pub fn transitions(history: &[RunResult]) -> usize {
    let verdicts: Vec<bool> = history.iter().filter_map(|r| verdict(r.root_cause)).collect();
    verdicts.windows(2).filter(|w| w[0] != w[1]).count()
}

/// Share of healthy results among the runs that could tell; `None` when none could.
pub fn success_ratio(history: &[RunResult]) -> Option<f64> {
    let verdicts: Vec<bool> = history.iter().filter_map(|r| verdict(r.root_cause)).collect();
    if verdicts.is_empty() {
        return None;
    }
    let ok = verdicts.iter().filter(|v| **v).count();
    // Three decimals are plenty and keep the YAML readable.
    Some((ok as f64 / verdicts.len() as f64 * 1000.0).round() / 1000.0)
}

/// The per-area conditions of a result. `ProbeFailed` (no evidence): all Unknown.
pub fn area_conditions(d: &Diagnosis, generation: i64, now: Timestamp) -> Vec<Condition> {
    let cause = d.root_cause;
    let area = |name: &str| d.areas.iter().find(|a| a.area == name);
    let probe_failed = cause == RootCause::ProbeFailed;
    let mk = |type_: &str, a: Option<&AreaResult>, cause_areas: &[&str], pass: &str, fail: &str| -> Condition {
        let message = a.map(|a| a.reason.clone()).unwrap_or_default();
        if probe_failed {
            return cond(type_, "Unknown", "ProbeFailed", "the probe did not report", generation, now);
        }
        let blamed = cause_areas.contains(&cause.area());
        match a.map(|a| a.status) {
            _ if blamed => cond(type_, "False", cause.code(), message, generation, now),
            Some(AreaStatus::Pass) | Some(AreaStatus::Warn) => cond(type_, "True", pass, message, generation, now),
            Some(AreaStatus::Fail) => cond(type_, "False", fail, message, generation, now),
            _ => cond(type_, "Unknown", "NotReached", message, generation, now),
        }
    };
    let http = area("http");
    let authorized = if probe_failed {
        cond(AUTHORIZED, "Unknown", "ProbeFailed", "the probe did not report", generation, now)
    } else if matches!(cause.area(), "policy" | "auth") {
        cond(AUTHORIZED, "False", cause.code(), http.map(|a| a.reason.clone()).unwrap_or_default(), generation, now)
    } else if http.is_some_and(|a| a.status == AreaStatus::Pass) {
        cond(AUTHORIZED, "True", "Allowed", http.map(|a| a.reason.clone()).unwrap_or_default(), generation, now)
    } else {
        cond(
            AUTHORIZED,
            "Unknown",
            "NotDetermined",
            http.map(|a| a.reason.clone()).unwrap_or_default(),
            generation,
            now,
        )
    };
    let aws = area("aws");
    let inspected = match aws.map(|a| a.status) {
        Some(AreaStatus::Pass) => cond(AWS_INSPECTED, "True", "AllFactsRead", "", generation, now),
        Some(AreaStatus::Unknown) if !probe_failed => cond(
            AWS_INSPECTED,
            "False",
            "FactsIncomplete",
            aws.map(|a| a.reason.clone()).unwrap_or_default(),
            generation,
            now,
        ),
        _ => cond(
            AWS_INSPECTED,
            "Unknown",
            "NotInspected",
            aws.map(|a| a.reason.clone()).unwrap_or_default(),
            generation,
            now,
        ),
    };
    vec![
        mk(DNS_RESOLVED, area("dns"), &["dns"], "Resolved", "ResolutionFailed"),
        mk(ENDPOINT_REACHABLE, area("tcp"), &["network", "endpoint"], "Connected", "ConnectFailed"),
        mk(TLS_ESTABLISHED, area("tls"), &["tls"], "Established", "HandshakeFailed"),
        authorized,
        inspected,
    ]
}

/// The last report, kept under [`MAX_REPORT_BYTES`]: the diagnosis always; the probe's
/// evidence while it fits. Dropped in this order: the fixes' argv (their `commandLine` says the
/// same), probe TCP results, probe DNS results, the whole probe report, the list of unchecked
/// facts, the fixes' policy documents (the command still carries them), evidence beyond five
/// lines, remediation beyond three, the fixes. What was dropped is listed in `truncated`.
pub fn bounded_report(d: &Diagnosis, probe: Option<&ProbeReport>, failure: Option<&ProbeFailure>) -> serde_json::Value {
    let mut v = serde_json::json!({ "diagnosis": d });
    if let Some(p) = probe
        && let Ok(p) = serde_json::to_value(p)
    {
        v["probe"] = p;
    }
    if let Some(f) = failure {
        v["probeFailure"] = serde_json::json!({"reason": f.reason.as_str(), "message": f.message});
    }
    let size = |v: &serde_json::Value| serde_json::to_string(v).map(|s| s.len()).unwrap_or(usize::MAX);
    let mut truncated: Vec<&str> = Vec::new();
    type Step = (&'static str, fn(&mut serde_json::Value) -> bool);
    fn each_fix(v: &mut serde_json::Value, field: &str) -> bool {
        v["diagnosis"]["fixes"].as_array_mut().is_some_and(|fixes| {
            let mut any = false;
            for f in fixes.iter_mut().filter_map(|f| f.as_object_mut()) {
                any |= f.remove(field).is_some();
            }
            any
        })
    }
    let steps: [Step; 9] = [
        ("diagnosis.fixes.awsCli", |v| each_fix(v, "awsCli")),
        ("probe.tcp", |v| {
            v.get_mut("probe").and_then(|p| p.as_object_mut()).is_some_and(|p| p.remove("tcp").is_some())
        }),
        ("probe.dns", |v| {
            v.get_mut("probe").and_then(|p| p.as_object_mut()).is_some_and(|p| p.remove("dns").is_some())
        }),
        ("probe", |v| v.as_object_mut().is_some_and(|o| o.remove("probe").is_some())),
        ("diagnosis.unchecked", |v| v["diagnosis"].as_object_mut().is_some_and(|o| o.remove("unchecked").is_some())),
        ("diagnosis.fixes.policy", |v| each_fix(v, "policy")),
        ("diagnosis.evidence", |v| {
            v["diagnosis"]["evidence"].as_array_mut().is_some_and(|a| {
                let long = a.len() > 5;
                a.truncate(5);
                for e in a.iter_mut() {
                    if let Some(s) = e.as_str() {
                        *e = serde_json::Value::String(bounded(s, 400));
                    }
                }
                long
            })
        }),
        ("diagnosis.remediation", |v| {
            v["diagnosis"]["remediation"].as_array_mut().is_some_and(|a| {
                a.truncate(3);
                for e in a.iter_mut() {
                    if let Some(s) = e.as_str() {
                        *e = serde_json::Value::String(bounded(s, 400));
                    }
                }
                true
            })
        }),
        ("diagnosis.fixes", |v| v["diagnosis"].as_object_mut().is_some_and(|o| o.remove("fixes").is_some())),
    ];
    for (name, step) in steps {
        // Leave room for the `truncated` list itself.
        if size(&v) + 200 <= MAX_REPORT_BYTES {
            break;
        }
        if step(&mut v) {
            truncated.push(name);
        }
    }
    if size(&v) + 200 > MAX_REPORT_BYTES {
        // Last resort: the verdict only.
        v = serde_json::json!({"diagnosis": {"rootCause": d.root_cause, "summary": bounded(&d.summary, 1024)}});
        truncated.push("diagnosis");
    }
    if !truncated.is_empty() {
        v["truncated"] = serde_json::json!(truncated);
    }
    v
}

/// One finished run, as the controller hands it over.
#[derive(Clone, Debug)]
pub struct RunRecord<'a> {
    pub run_id: &'a str,
    /// The spec generation the run was started for.
    pub generation: i64,
    pub finished: Timestamp,
    pub duration_ms: Option<u64>,
    pub diagnosis: &'a Diagnosis,
    pub probe: Option<&'a ProbeReport>,
    pub failure: Option<&'a ProbeFailure>,
    /// The run-now value this run consumed, if any.
    pub run_now: Option<&'a str>,
    pub next_run: Option<Timestamp>,
}

/// Folds a finished run into the status: result fields, history, `Reachable`, per-area and
/// `Flapping` conditions. (`Ready`/`Reconciling`/`Stalled`: [`set_lifecycle`].)
pub fn record_result(status: &mut CheckStatus, r: &RunRecord<'_>) {
    let d = r.diagnosis;
    let now = r.finished;
    let g = r.generation;
    status.observed_generation = Some(g);
    status.last_run_time = Some(Time(now));
    status.next_run_time = r.next_run.map(Time);
    status.last_run_id = Some(r.run_id.to_owned());
    if let Some(v) = r.run_now {
        status.last_run_now = Some(v.to_owned());
    }
    status.root_cause = Some(d.root_cause);
    let summary = match r.failure {
        Some(f) => format!("the probe pod could not run or report ({}): {}", f.reason.as_str(), f.message),
        None => d.summary.clone(),
    };
    status.summary = Some(bounded(&summary, MAX_SUMMARY_CHARS));
    status.report = Some(bounded_report(d, r.probe, r.failure));

    status.history.insert(
        0,
        RunResult {
            time: Time(now),
            root_cause: d.root_cause,
            run_id: Some(r.run_id.to_owned()),
            duration_ms: r.duration_ms,
        },
    );
    status.history.truncate(MAX_HISTORY);
    status.success_ratio = success_ratio(&status.history);
    match verdict(d.root_cause) {
        Some(true) => {
            status.last_success_time = Some(Time(now));
            status.failing_since = None;
        }
        Some(false) if status.failing_since.is_none() => status.failing_since = Some(Time(now)),
        _ => {}
    }

    let fix = d.remediation.first().map(|f| format!(" Fix: {f}")).unwrap_or_default();
    let message = match r.failure {
        Some(f) => format!("{}: {}", f.reason.as_str(), f.message),
        None => format!("{}{fix}", d.summary),
    };
    set_condition(
        &mut status.conditions,
        cond(REACHABLE, reachable_status(d.root_cause), d.root_cause.code(), message, g, now),
    );
    for c in area_conditions(d, g, now) {
        set_condition(&mut status.conditions, c);
    }
    let n = transitions(&status.history);
    let flapping = if n >= FLAPPING_TRANSITIONS {
        cond(
            FLAPPING,
            "True",
            "Flapping",
            format!(
                "{n} changes between healthy and failing in the last {} runs (success ratio {})",
                status.history.len(),
                status.success_ratio.map_or_else(|| "-".to_owned(), |r| r.to_string())
            ),
            g,
            now,
        )
    } else {
        cond(FLAPPING, "False", "Stable", format!("{n} changes in the last {} runs", status.history.len()), g, now)
    };
    set_condition(&mut status.conditions, flapping);
}

/// Why a check cannot make progress without a human (a bounded set: condition reasons).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StallReason {
    /// The spec is invalid although admission accepted it (validation drift, older CRD).
    InvalidSpec,
    /// The operator may not create probe pods in the namespace.
    RbacMissing,
    /// Pod Security admission rejected the probe pod (e.g. a `spec.probe` that breaks
    /// `restricted`, or a stricter policy).
    PodRejected,
    /// A ResourceQuota or LimitRange refused the probe pod.
    QuotaExceeded,
    /// AWS refused some read-only calls: the operator's role lacks permissions (named).
    AwsPermissionMissing,
    /// `spec.probe.workloadRef` names a workload that does not exist (or no running pod).
    WorkloadNotFound,
}

impl StallReason {
    pub fn as_str(self) -> &'static str {
        match self {
            StallReason::InvalidSpec => "InvalidSpec",
            StallReason::RbacMissing => "RbacMissing",
            StallReason::PodRejected => "PodRejected",
            StallReason::QuotaExceeded => "QuotaExceeded",
            StallReason::AwsPermissionMissing => "AwsPermissionMissing",
            StallReason::WorkloadNotFound => "WorkloadNotFound",
        }
    }
}

/// The check's own state (not the target's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    /// The last result reflects the current spec.
    Current,
    /// A run for a spec with no result yet (`FirstRun` / `SpecChanged`) is under way.
    Progressing { reason: &'static str, message: String },
    /// A human must act.
    Stalled { reason: StallReason, message: String },
}

/// Writes `Ready`, `Reconciling` and `Stalled` for `lifecycle`. On `Progressing` before any
/// result, `Reachable` becomes Unknown/`AwaitingFirstRun`.
pub fn set_lifecycle(status: &mut CheckStatus, generation: i64, lifecycle: &Lifecycle, now: Timestamp) {
    let g = generation;
    let (ready, reconciling, stalled) = match lifecycle {
        Lifecycle::Current => (
            cond(READY, "True", "ResultCurrent", "the last result reflects the current spec", g, now),
            cond(RECONCILING, "False", "Idle", "", g, now),
            cond(STALLED, "False", "Operating", "", g, now),
        ),
        Lifecycle::Progressing { reason, message } => (
            cond(READY, "False", reason, message.clone(), g, now),
            cond(RECONCILING, "True", reason, message.clone(), g, now),
            cond(STALLED, "False", "Operating", "", g, now),
        ),
        Lifecycle::Stalled { reason, message } => {
            if *reason != StallReason::AwsPermissionMissing {
                status.observed_generation = Some(g);
            }
            (
                cond(READY, "False", reason.as_str(), message.clone(), g, now),
                cond(RECONCILING, "False", "Stalled", "", g, now),
                cond(STALLED, "True", reason.as_str(), message.clone(), g, now),
            )
        }
    };
    set_condition(&mut status.conditions, ready);
    set_condition(&mut status.conditions, reconciling);
    set_condition(&mut status.conditions, stalled);
    if condition(&status.conditions, REACHABLE).is_none() {
        set_condition(
            &mut status.conditions,
            cond(REACHABLE, "Unknown", "AwaitingFirstRun", "no run has finished yet", g, now),
        );
    }
}

/// The missing AWS permissions a diagnosis names (from its unchecked facts), deduplicated.
pub fn missing_permissions(d: &Diagnosis) -> Vec<String> {
    let mut out: Vec<String> = d
        .unchecked
        .iter()
        .filter_map(|u| u.split_once("(missing permission ").map(|(_, rest)| rest.trim_end_matches(')').to_owned()))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// An event to publish on a transition of `Reachable` or of the root cause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransitionEvent {
    pub warning: bool,
    /// The new root-cause code (bounded).
    pub reason: &'static str,
    pub note: String,
}

/// The event for a change from `before` to `after`, or `None` when nothing the user alerts on
/// changed.
pub fn transition_event(before: &CheckStatus, after: &CheckStatus) -> Option<TransitionEvent> {
    let old = condition(&before.conditions, REACHABLE).map(|c| c.status.as_str());
    let new = condition(&after.conditions, REACHABLE)?;
    let cause = after.root_cause?;
    if old == Some(new.status.as_str()) && before.root_cause == Some(cause) {
        return None;
    }
    let from = before.root_cause.map_or_else(|| "no result".to_owned(), |c| c.code().to_owned());
    Some(TransitionEvent {
        warning: cause != RootCause::Healthy,
        reason: cause.code(),
        note: bounded(
            &format!(
                "Reachable={} ({from} → {}): {}",
                new.status,
                cause.code(),
                after.summary.as_deref().unwrap_or("")
            ),
            // An event note holds at most 1 kB.
            700,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::FailureReason;
    use k8s_openapi::jiff::SignedDuration;

    fn t(secs: i64) -> Timestamp {
        "2026-12-03T10:00:00Z"
            .parse::<Timestamp>()
            .expect("ts")
            .checked_add(SignedDuration::from_secs(secs))
            .expect("t")
    }

    fn diag(cause: RootCause, areas: &[(&str, AreaStatus)]) -> Diagnosis {
        Diagnosis {
            root_cause: cause,
            summary: format!("summary of {cause}"),
            evidence: vec!["e1".into()],
            remediation: vec![format!("fix {cause}")],
            fixes: vec![],
            unchecked: vec![],
            areas: areas
                .iter()
                .map(|(a, s)| AreaResult { area: (*a).to_owned(), status: *s, reason: format!("{a} reason") })
                .collect(),
            advisories: vec![],
        }
    }

    fn healthy() -> Diagnosis {
        use AreaStatus::Pass;
        diag(RootCause::Healthy, &[("dns", Pass), ("tcp", Pass), ("tls", Pass), ("http", Pass), ("aws", Pass)])
    }

    fn sg_blocked() -> Diagnosis {
        use AreaStatus::*;
        diag(
            RootCause::SecurityGroupBlocked,
            &[("dns", Pass), ("tcp", Fail), ("tls", Skip), ("http", Skip), ("aws", Pass)],
        )
    }

    fn record(status: &mut CheckStatus, d: &Diagnosis, at: i64, failure: Option<&ProbeFailure>) {
        let id = format!("run{at}");
        record_result(
            status,
            &RunRecord {
                run_id: &id,
                generation: 1,
                finished: t(at),
                duration_ms: Some(1200),
                diagnosis: d,
                probe: None,
                failure,
                run_now: None,
                next_run: Some(t(at + 300)),
            },
        );
    }

    fn get<'a>(s: &'a CheckStatus, ty: &str) -> &'a Condition {
        condition(&s.conditions, ty).unwrap_or_else(|| panic!("{ty} missing"))
    }

    #[test]
    fn reachable_follows_the_root_cause() {
        for (cause, status) in [
            (RootCause::Healthy, "True"),
            (RootCause::SecurityGroupBlocked, "False"),
            (RootCause::ResourcePolicyDenied, "False"),
            (RootCause::ProbeFailed, "Unknown"),
            (RootCause::Unknown, "Unknown"),
        ] {
            let mut s = CheckStatus::default();
            record(&mut s, &diag(cause, &[]), 0, None);
            let c = get(&s, REACHABLE);
            assert_eq!((c.status.as_str(), c.reason.as_str()), (status, cause.code()));
            assert_eq!(c.observed_generation, Some(1));
        }
    }

    #[test]
    fn last_transition_time_moves_only_on_a_status_change() {
        let mut s = CheckStatus::default();
        record(&mut s, &sg_blocked(), 0, None);
        record(&mut s, &sg_blocked(), 300, None);
        assert_eq!(get(&s, REACHABLE).last_transition_time.0, t(0), "same status: time kept");
        let mut nacl = sg_blocked();
        nacl.root_cause = RootCause::NetworkAclBlocked;
        record(&mut s, &nacl, 600, None);
        assert_eq!(get(&s, REACHABLE).reason, "NetworkAclBlocked");
        assert_eq!(get(&s, REACHABLE).last_transition_time.0, t(0), "reason change alone keeps the time");
        record(&mut s, &healthy(), 900, None);
        assert_eq!(get(&s, REACHABLE).last_transition_time.0, t(900));
        assert_eq!(get(&s, ENDPOINT_REACHABLE).last_transition_time.0, t(900));
        assert_eq!(get(&s, DNS_RESOLVED).last_transition_time.0, t(0), "DNS passed throughout");
    }

    #[test]
    fn area_conditions_blame_the_cause_area() {
        let now = t(0);
        let by_type = |d: &Diagnosis| -> Vec<(String, String, String)> {
            area_conditions(d, 1, now).into_iter().map(|c| (c.type_, c.status, c.reason)).collect()
        };
        let row = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
        assert_eq!(
            by_type(&sg_blocked()),
            vec![
                row(DNS_RESOLVED, "True", "Resolved"),
                row(ENDPOINT_REACHABLE, "False", "SecurityGroupBlocked"),
                row(TLS_ESTABLISHED, "Unknown", "NotReached"),
                row(AUTHORIZED, "Unknown", "NotDetermined"),
                row(AWS_INSPECTED, "True", "AllFactsRead"),
            ]
        );
        use AreaStatus::*;
        let denied = diag(
            RootCause::ResourcePolicyDenied,
            &[("dns", Pass), ("tcp", Pass), ("tls", Pass), ("http", Fail), ("aws", Unknown)],
        );
        let rows = by_type(&denied);
        assert_eq!(rows[3], row(AUTHORIZED, "False", "ResourcePolicyDenied"));
        assert_eq!(rows[4], row(AWS_INSPECTED, "False", "FactsIncomplete"));
        let private_dns_off =
            diag(RootCause::PrivateDnsDisabled, &[("dns", Warn), ("tcp", Pass), ("tls", Pass), ("http", Fail)]);
        assert_eq!(by_type(&private_dns_off)[0], row(DNS_RESOLVED, "False", "PrivateDnsDisabled"));
        let probe_failed = pvtapi_engine::diagnosis::probe_failed("ImagePull: x", "look at the pod");
        assert!(
            by_type(&probe_failed)
                .iter()
                .all(|(_, s, r)| s == "Unknown" && (r == "ProbeFailed" || r == "NotInspected"))
        );
        assert_eq!(by_type(&healthy())[3], row(AUTHORIZED, "True", "Allowed"));
    }

    #[test]
    fn history_ratio_success_time_and_failing_since() {
        let mut s = CheckStatus::default();
        record(&mut s, &healthy(), 0, None);
        assert_eq!(s.last_success_time.as_ref().map(|t| t.0), Some(t(0)));
        assert_eq!(s.failing_since, None);
        record(&mut s, &sg_blocked(), 300, None);
        record(&mut s, &sg_blocked(), 600, None);
        assert_eq!(s.failing_since.as_ref().map(|t| t.0), Some(t(300)), "since the first failure");
        let pf = ProbeFailure::new(FailureReason::ImagePull, "ErrImagePull");
        record(&mut s, &pvtapi_engine::diagnosis::probe_failed("x", "y"), 900, Some(&pf));
        assert_eq!(s.failing_since.as_ref().map(|t| t.0), Some(t(300)), "a probe failure tells nothing");
        assert_eq!(s.success_ratio, Some(0.333), "probe failures are not counted");
        assert_eq!(s.history.len(), 4);
        assert_eq!(s.history[0].root_cause, RootCause::ProbeFailed, "newest first");
        assert!(get(&s, REACHABLE).message.starts_with("ImagePull: ErrImagePull"));
        record(&mut s, &healthy(), 1200, None);
        assert_eq!(s.failing_since, None);
        assert_eq!(s.last_success_time.as_ref().map(|t| t.0), Some(t(1200)));
        for i in 0..30 {
            record(&mut s, &healthy(), 1500 + i * 300, None);
        }
        assert_eq!(s.history.len(), MAX_HISTORY, "bounded");
        assert_eq!(s.success_ratio, Some(1.0));
    }

    #[test]
    fn flapping_needs_three_transitions_in_the_window() {
        let mut s = CheckStatus::default();
        let seq = [healthy(), sg_blocked(), healthy(), sg_blocked()];
        for (i, d) in seq.iter().enumerate() {
            record(&mut s, d, i as i64 * 300, None);
            let want = if i >= 3 { "True" } else { "False" };
            assert_eq!(get(&s, FLAPPING).status, want, "after {} runs", i + 1);
        }
        assert_eq!(get(&s, REACHABLE).reason, "SecurityGroupBlocked", "the reason stays the cause");
        // Probe failures in between do not count as transitions.
        let h = |c| RunResult { time: Time(t(0)), root_cause: c, run_id: None, duration_ms: None };
        assert_eq!(
            transitions(&[
                h(RootCause::Healthy),
                h(RootCause::ProbeFailed),
                h(RootCause::Healthy),
                h(RootCause::Unknown)
            ]),
            0
        );
        // Stable again once the window has moved on.
        for i in 0..MAX_HISTORY {
            record(&mut s, &healthy(), 2000 + i as i64 * 300, None);
        }
        assert_eq!(get(&s, FLAPPING).status, "False");
    }

    #[test]
    fn lifecycle_never_lets_a_target_outage_unready_the_check() {
        let mut s = CheckStatus::default();
        set_lifecycle(&mut s, 1, &Lifecycle::Progressing { reason: "FirstRun", message: "first run".into() }, t(0));
        assert_eq!((get(&s, READY).status.as_str(), get(&s, RECONCILING).status.as_str()), ("False", "True"));
        assert_eq!(get(&s, REACHABLE).reason, "AwaitingFirstRun");
        record(&mut s, &sg_blocked(), 10, None);
        set_lifecycle(&mut s, 1, &Lifecycle::Current, t(10));
        assert_eq!(get(&s, READY).status, "True", "API down, check fine");
        assert_eq!(get(&s, RECONCILING).status, "False");
        assert_eq!(get(&s, STALLED).status, "False");
        assert_eq!(get(&s, REACHABLE).status, "False");
        set_lifecycle(
            &mut s,
            2,
            &Lifecycle::Stalled { reason: StallReason::RbacMissing, message: "cannot create pods".into() },
            t(20),
        );
        assert_eq!((get(&s, STALLED).status.as_str(), get(&s, STALLED).reason.as_str()), ("True", "RbacMissing"));
        assert_eq!(get(&s, READY).status, "False");
        assert_eq!(get(&s, READY).observed_generation, Some(2));
        assert_eq!(s.observed_generation, Some(2));
    }

    #[test]
    fn report_stays_under_the_bound_and_says_what_it_dropped() {
        let mut d = sg_blocked();
        d.evidence = vec!["e".repeat(900); 20];
        d.unchecked = vec!["u".repeat(500); 10];
        let v = bounded_report(&d, None, None);
        let text = serde_json::to_string(&v).expect("json");
        assert!(text.len() <= MAX_REPORT_BYTES, "{}", text.len());
        assert_eq!(v["diagnosis"]["rootCause"], "SecurityGroupBlocked");
        assert!(v["truncated"].as_array().is_some_and(|a| a.iter().any(|x| x == "diagnosis.unchecked")));
        // Small reports are untouched.
        let small = bounded_report(&healthy(), None, None);
        assert!(small.get("truncated").is_none());
        // Pathological: still bounded, still the verdict.
        let mut huge = healthy();
        huge.summary = "s".repeat(20_000);
        huge.areas = (0..100)
            .map(|i| AreaResult { area: format!("a{i}"), status: AreaStatus::Pass, reason: "r".repeat(200) })
            .collect();
        let v = bounded_report(&huge, None, None);
        assert!(serde_json::to_string(&v).expect("json").len() <= MAX_REPORT_BYTES);
        assert_eq!(v["diagnosis"]["rootCause"], "Healthy");
    }

    #[test]
    fn events_only_on_transitions() {
        let mut a = CheckStatus::default();
        record(&mut a, &healthy(), 0, None);
        let first = transition_event(&CheckStatus::default(), &a).expect("first result is a transition");
        assert_eq!((first.warning, first.reason), (false, "Healthy"));
        let mut b = a.clone();
        record(&mut b, &healthy(), 300, None);
        assert_eq!(transition_event(&a, &b), None, "same result: no event");
        let mut c = b.clone();
        record(&mut c, &sg_blocked(), 600, None);
        let e = transition_event(&b, &c).expect("event");
        assert!(e.warning);
        assert_eq!(e.reason, "SecurityGroupBlocked");
        assert!(e.note.contains("Healthy → SecurityGroupBlocked"), "{}", e.note);
        let mut d = c.clone();
        let mut nacl = sg_blocked();
        nacl.root_cause = RootCause::NetworkAclBlocked;
        record(&mut d, &nacl, 900, None);
        assert_eq!(transition_event(&c, &d).map(|e| e.reason), Some("NetworkAclBlocked"), "cause change");
    }

    #[test]
    fn missing_permissions_are_named() {
        let mut d = healthy();
        d.unchecked = vec![
            "nacls: DescribeNetworkAcls: access denied (missing permission ec2:DescribeNetworkAcls)".into(),
            "logs: x (missing permission logs:FilterLogEvents)".into(),
            "other: throttled".into(),
        ];
        assert_eq!(missing_permissions(&d), vec!["ec2:DescribeNetworkAcls", "logs:FilterLogEvents"]);
    }
}

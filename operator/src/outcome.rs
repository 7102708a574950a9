//! Where a probe pod's run stands, read from the pod alone.
//!
//! Why a pure classifier: a probe run can fail for reasons that say nothing about the target API
//! — no node fits, the image cannot be pulled, the container is OOM-killed, the node evicts it,
//! the deadline passes, someone deletes it. Those must become `Reachable=Unknown` with reason
//! `ProbeFailed` and the pod's *own* reason, never a target failure, and the next run goes on
//! normally. Each rule is a table test on real pod-status shapes.

use std::time::Duration;

use k8s_openapi::api::core::v1::{ContainerStateTerminated, Pod};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::probe_pod::CONTAINER;

/// Why a probe run failed; a bounded set, so it can be a metrics label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailureReason {
    /// The scheduler found no node (`PodScheduled=False`, reason `Unschedulable`).
    Unschedulable,
    /// Still pending after the pending deadline (no scheduler, slow node, stuck volume).
    PendingTimeout,
    /// The image could not be pulled or is absent (`ErrImagePull`, `ImagePullBackOff`,
    /// `ErrImageNeverPull`, `InvalidImageName`).
    ImagePull,
    /// The container could not be created or started (`CreateContainerConfigError`, …).
    ContainerError,
    /// The container was killed for exceeding its memory limit.
    OomKilled,
    /// The node evicted the pod (resource pressure).
    Evicted,
    /// `activeDeadlineSeconds` passed before the probe finished.
    DeadlineExceeded,
    /// The pod was deleted before it reported.
    Deleted,
    /// The probe exited non-zero: it could not run (bad arguments, no route to any resolver).
    ProbeExited,
    /// The probe exited 0 but its termination message is not a valid report.
    ReportUnreadable,
    /// The pod ended in a way nothing above explains (node lost, unknown phase).
    Other,
}

impl FailureReason {
    /// Every reason, for metrics initialisation and docs.
    pub const ALL: [FailureReason; 11] = [
        FailureReason::Unschedulable,
        FailureReason::PendingTimeout,
        FailureReason::ImagePull,
        FailureReason::ContainerError,
        FailureReason::OomKilled,
        FailureReason::Evicted,
        FailureReason::DeadlineExceeded,
        FailureReason::Deleted,
        FailureReason::ProbeExited,
        FailureReason::ReportUnreadable,
        FailureReason::Other,
    ];

    /// The label / condition-message spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::Unschedulable => "Unschedulable",
            FailureReason::PendingTimeout => "PendingTimeout",
            FailureReason::ImagePull => "ImagePull",
            FailureReason::ContainerError => "ContainerError",
            FailureReason::OomKilled => "OOMKilled",
            FailureReason::Evicted => "Evicted",
            FailureReason::DeadlineExceeded => "DeadlineExceeded",
            FailureReason::Deleted => "Deleted",
            FailureReason::ProbeExited => "ProbeExited",
            FailureReason::ReportUnreadable => "ReportUnreadable",
            FailureReason::Other => "Other",
        }
    }
}

/// A failed probe run: the bounded reason and the pod's own words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeFailure {
    pub reason: FailureReason,
    pub message: String,
}

impl ProbeFailure {
    pub fn new(reason: FailureReason, message: impl AsRef<str>) -> Self {
        ProbeFailure { reason, message: bounded_text(message.as_ref(), 400) }
    }
}

/// Where a run stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunOutcome {
    /// Not finished; `recheck_at` is when the run becomes overdue if no pod event arrives first.
    InFlight { recheck_at: Timestamp },
    /// The probe exited 0; this is its termination message (still untrusted).
    Finished { message: String },
    /// The run failed for a reason of its own.
    Failed(ProbeFailure),
}

/// Printable, bounded text from a pod status (messages come from the kubelet, the runtime or
/// the registry and can be long).
pub fn bounded_text(text: &str, max: usize) -> String {
    let one_line: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let trimmed = one_line.trim();
    if trimmed.chars().count() > max {
        trimmed.chars().take(max).collect::<String>() + "…"
    } else {
        trimmed.to_owned()
    }
}

fn join(reason: &str, message: Option<&String>) -> String {
    match message.map(|m| m.trim()).filter(|m| !m.is_empty()) {
        Some(m) => format!("{reason}: {m}"),
        None => reason.to_owned(),
    }
}

fn plus(t: Timestamp, d: Duration) -> Timestamp {
    SignedDuration::try_from(d).ok().and_then(|d| t.checked_add(d).ok()).unwrap_or(Timestamp::MAX)
}

fn terminated(t: &ContainerStateTerminated, pod: &str) -> RunOutcome {
    if t.exit_code == 0 {
        return RunOutcome::Finished { message: t.message.clone().unwrap_or_default() };
    }
    let reason = t.reason.as_deref().unwrap_or("Error");
    if reason == "OOMKilled" {
        return RunOutcome::Failed(ProbeFailure::new(
            FailureReason::OomKilled,
            format!(
                "probe pod {pod}: container OOMKilled (exit code {}): raise spec.probe.resources.limits.memory",
                t.exit_code
            ),
        ));
    }
    // The message of a non-zero exit is the probe's own error text at most (never a report).
    RunOutcome::Failed(ProbeFailure::new(
        FailureReason::ProbeExited,
        format!("probe pod {pod}: {} (exit code {})", join(reason, t.message.as_ref()), t.exit_code),
    ))
}

/// Classifies a probe pod at `now`. `pending_deadline`: how long a pod may stay Pending before
/// the run counts as failed.
pub fn probe_run_outcome(pod: &Pod, now: Timestamp, pending_deadline: Duration) -> RunOutcome {
    let name = pod.metadata.name.as_deref().unwrap_or("?");
    let created = pod.metadata.creation_timestamp.as_ref().map(|t| t.0).unwrap_or(now);
    let status = pod.status.clone().unwrap_or_default();
    let phase = status.phase.as_deref().unwrap_or("Pending");
    let container = status.container_statuses.as_ref().and_then(|cs| cs.iter().find(|c| c.name == CONTAINER));
    let state = container.and_then(|c| c.state.as_ref());

    // A finished container is the most precise evidence: read it first.
    if let Some(t) = state.and_then(|s| s.terminated.as_ref()) {
        // …unless the kubelet ended the pod for a reason of its own.
        match status.reason.as_deref() {
            Some("Evicted") => {}
            Some("DeadlineExceeded") if t.exit_code != 0 => {}
            _ => return terminated(t, name),
        }
    }
    if phase == "Failed" || phase == "Succeeded" {
        let reason = status.reason.as_deref().unwrap_or("");
        let message = join(if reason.is_empty() { phase } else { reason }, status.message.as_ref());
        let kind = match reason {
            "Evicted" => FailureReason::Evicted,
            "DeadlineExceeded" => FailureReason::DeadlineExceeded,
            _ => FailureReason::Other,
        };
        return RunOutcome::Failed(ProbeFailure::new(kind, format!("probe pod {name}: {message}")));
    }
    if pod.metadata.deletion_timestamp.is_some() {
        return RunOutcome::Failed(ProbeFailure::new(
            FailureReason::Deleted,
            format!("probe pod {name} was deleted before it reported"),
        ));
    }
    if let Some(w) = state.and_then(|s| s.waiting.as_ref()) {
        let reason = w.reason.as_deref().unwrap_or("");
        let kind = match reason {
            "ErrImagePull" | "ImagePullBackOff" | "ErrImageNeverPull" | "InvalidImageName" | "RegistryUnavailable" => {
                Some(FailureReason::ImagePull)
            }
            "CreateContainerConfigError" | "CreateContainerError" | "RunContainerError" | "PreStartHookError" => {
                Some(FailureReason::ContainerError)
            }
            _ => None,
        };
        if let Some(kind) = kind {
            return RunOutcome::Failed(ProbeFailure::new(
                kind,
                format!("probe pod {name}: container {}", join(reason, w.message.as_ref())),
            ));
        }
    }
    let unschedulable = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False" && c.reason.as_deref() == Some("Unschedulable"));
    if let Some(c) = unschedulable {
        return RunOutcome::Failed(ProbeFailure::new(
            FailureReason::Unschedulable,
            format!("probe pod {name}: {}", join("Unschedulable", c.message.as_ref())),
        ));
    }
    let active_deadline = pod.spec.as_ref().and_then(|s| s.active_deadline_seconds).unwrap_or(300).max(1);
    let active = Duration::from_secs(active_deadline.unsigned_abs());
    match phase {
        "Running" => {
            let started = status.start_time.as_ref().map(|t| t.0).unwrap_or(created);
            // The kubelet enforces the deadline; look again shortly after it in case nobody reports.
            RunOutcome::InFlight { recheck_at: plus(started, active + Duration::from_secs(30)) }
        }
        "Pending" => {
            let due = plus(created, pending_deadline);
            if now >= due {
                RunOutcome::Failed(ProbeFailure::new(
                    FailureReason::PendingTimeout,
                    format!("probe pod {name}: still Pending after {}s", pending_deadline.as_secs()),
                ))
            } else {
                RunOutcome::InFlight { recheck_at: due }
            }
        }
        other => {
            // `Unknown`: the node stopped reporting. Give it the pod's whole budget, then give up.
            let due = plus(created, pending_deadline + active + Duration::from_secs(30));
            if now >= due {
                RunOutcome::Failed(ProbeFailure::new(
                    FailureReason::Other,
                    format!("probe pod {name}: phase {} past its deadline", bounded_text(other, 32)),
                ))
            } else {
                RunOutcome::InFlight { recheck_at: due }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: &str = "2026-12-03T10:00:00Z";

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    /// A pod as the apiserver returns it: metadata + spec deadline + the given status.
    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "orders-mh2k3", "namespace": "payments", "creationTimestamp": T0},
            "spec": {"activeDeadlineSeconds": 80, "containers": [{"name": "probe", "image": "pvtapi:dev"}]},
            "status": status
        }))
        .expect("pod")
    }

    fn at(secs: i64) -> Timestamp {
        ts(T0).checked_add(SignedDuration::from_secs(secs)).expect("time")
    }

    const PENDING: Duration = Duration::from_secs(120);

    fn failed(reason: FailureReason, needle: &'static str) -> impl Fn(&RunOutcome) -> bool {
        move |o| matches!(o, RunOutcome::Failed(f) if f.reason == reason && f.message.contains(needle))
    }

    #[test]
    fn real_pod_statuses_classify_as_the_kubelet_meant_them() {
        type Case = (&'static str, serde_json::Value, i64, Box<dyn Fn(&RunOutcome) -> bool>);
        let cases: Vec<Case> = vec![
            (
                "just created, not scheduled yet",
                serde_json::json!({"phase": "Pending", "qosClass": "Burstable"}),
                5,
                Box::new(|o| *o == RunOutcome::InFlight { recheck_at: at(120) }),
            ),
            (
                "scheduled, container creating",
                serde_json::json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True"}],
                    "containerStatuses": [{"name": "probe", "ready": false, "restartCount": 0, "image": "pvtapi:dev", "imageID": "",
                        "state": {"waiting": {"reason": "ContainerCreating"}}}]}),
                5,
                Box::new(|o| matches!(o, RunOutcome::InFlight { .. })),
            ),
            (
                "pending past the deadline",
                serde_json::json!({"phase": "Pending"}),
                121,
                Box::new(failed(FailureReason::PendingTimeout, "still Pending after 120s")),
            ),
            (
                "unschedulable",
                serde_json::json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                    "message": "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector.", "lastTransitionTime": T0}]}),
                1,
                Box::new(failed(FailureReason::Unschedulable, "didn't match Pod's node affinity")),
            ),
            (
                "image never pull",
                serde_json::json!({"phase": "Pending", "containerStatuses": [{"name": "probe", "ready": false, "restartCount": 0,
                    "image": "pvtapi.local/missing:dev", "imageID": "",
                    "state": {"waiting": {"reason": "ErrImageNeverPull",
                        "message": "Container image \"pvtapi.local/missing:dev\" is not present with pull policy of Never"}}}]}),
                3,
                Box::new(failed(FailureReason::ImagePull, "ErrImageNeverPull: Container image")),
            ),
            (
                "image pull back-off",
                serde_json::json!({"phase": "Pending", "containerStatuses": [{"name": "probe", "ready": false, "restartCount": 0,
                    "image": "registry.invalid/pvtapi:dev", "imageID": "",
                    "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"registry.invalid/pvtapi:dev\""}}}]}),
                30,
                Box::new(failed(FailureReason::ImagePull, "ImagePullBackOff")),
            ),
            (
                "running",
                serde_json::json!({"phase": "Running", "startTime": "2026-12-03T10:00:02Z", "containerStatuses": [{"name": "probe", "ready": true,
                    "restartCount": 0, "image": "pvtapi:dev", "imageID": "", "state": {"running": {"startedAt": "2026-12-03T10:00:03Z"}}}]}),
                4,
                Box::new(|o| *o == RunOutcome::InFlight { recheck_at: at(2 + 80 + 30) }),
            ),
            (
                "succeeded with a report",
                serde_json::json!({"phase": "Succeeded", "containerStatuses": [{"name": "probe", "ready": false, "restartCount": 0,
                    "image": "pvtapi:dev", "imageID": "", "state": {"terminated": {"exitCode": 0, "reason": "Completed", "message": "{\"version\":1}"}}}]}),
                9,
                Box::new(|o| *o == RunOutcome::Finished { message: "{\"version\":1}".into() }),
            ),
            (
                "succeeded without a message",
                serde_json::json!({"phase": "Succeeded", "containerStatuses": [{"name": "probe", "ready": false, "restartCount": 0,
                    "image": "pvtapi:dev", "imageID": "", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}),
                9,
                Box::new(|o| *o == RunOutcome::Finished { message: String::new() }),
            ),
            (
                "oom killed",
                serde_json::json!({"phase": "Failed", "containerStatuses": [{"name": "probe", "ready": false, "restartCount": 0,
                    "image": "pvtapi:dev", "imageID": "", "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]}),
                9,
                Box::new(failed(FailureReason::OomKilled, "exit code 137")),
            ),
            (
                "probe could not run",
                serde_json::json!({"phase": "Failed", "containerStatuses": [{"name": "probe", "ready": false, "restartCount": 0,
                    "image": "pvtapi:dev", "imageID": "", "state": {"terminated": {"exitCode": 2, "reason": "Error"}}}]}),
                9,
                Box::new(failed(FailureReason::ProbeExited, "Error (exit code 2)")),
            ),
            (
                "deadline exceeded",
                serde_json::json!({"phase": "Failed", "reason": "DeadlineExceeded",
                    "message": "Pod was active on the node longer than the specified deadline",
                    "containerStatuses": [{"name": "probe", "ready": false, "restartCount": 0, "image": "pvtapi:dev", "imageID": "",
                        "state": {"terminated": {"exitCode": 137, "reason": "Error"}}}]}),
                90,
                Box::new(failed(FailureReason::DeadlineExceeded, "longer than the specified deadline")),
            ),
            (
                "evicted",
                serde_json::json!({"phase": "Failed", "reason": "Evicted",
                    "message": "The node was low on resource: memory. Threshold quantity: 100Mi, available: 52Mi."}),
                20,
                Box::new(failed(FailureReason::Evicted, "low on resource: memory")),
            ),
            (
                "deleted mid-run",
                serde_json::json!({"phase": "Running", "startTime": T0}),
                3,
                Box::new(|o| matches!(o, RunOutcome::InFlight { .. })),
            ),
        ];
        for (name, status, secs, check) in cases {
            let out = probe_run_outcome(&pod(status), at(secs), PENDING);
            assert!(check(&out), "{name}: {out:?}");
        }
    }

    #[test]
    fn a_pod_being_deleted_before_it_reported_is_a_failure() {
        let mut p = pod(serde_json::json!({"phase": "Running", "startTime": T0}));
        p.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(at(5)));
        assert!(failed(FailureReason::Deleted, "deleted before it reported")(&probe_run_outcome(&p, at(6), PENDING)));
        // …but a pod that already finished keeps its result.
        let mut done = pod(
            serde_json::json!({"phase": "Succeeded", "containerStatuses": [{"name": "probe", "ready": false,
            "restartCount": 0, "image": "pvtapi:dev", "imageID": "", "state": {"terminated": {"exitCode": 0, "message": "{}"}}}]}),
        );
        done.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(at(5)));
        assert_eq!(probe_run_outcome(&done, at(6), PENDING), RunOutcome::Finished { message: "{}".into() });
    }

    #[test]
    fn failure_messages_are_single_line_and_bounded() {
        let long = format!("line1\nline2 {}", "x".repeat(2000));
        let p = pod(serde_json::json!({"phase": "Failed", "reason": "Evicted", "message": long}));
        let RunOutcome::Failed(f) = probe_run_outcome(&p, at(1), PENDING) else { panic!("failed") };
        assert!(!f.message.contains('\n'));
        assert!(f.message.chars().count() <= 401, "{}", f.message.len());
        assert_eq!(FailureReason::ALL.len(), 11);
    }
}

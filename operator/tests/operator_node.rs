//! `pvtapi-operator run` against the real local node: a check is reconciled by a real probe pod
//! (Pod Security restricted namespace), the report comes back through the kubelet, and the
//! conditions, root cause and events are written — no harness plays the kubelet.
//!
//! This is the smoke test of the cluster half; the operator's own suite (AWS worlds on moto,
//! scenario files through the operator, faults) builds on it.

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams};
use pvtapi_crds::{PrivateApiConnectivityCheck, RootCause, conditions};
use pvtapi_testkit::cluster::Cluster;
use pvtapi_testkit::control_plane::FIELD_MANAGER;
use pvtapi_testkit::operator::{
    OperatorOptions, OperatorProcess, apply_and_wait, check, condition, root_cause_is, wait_check,
};

const OPERATOR: &str = env!("CARGO_BIN_EXE_pvtapi-operator");

fn start_operator(cluster: &Cluster, ns: &str) -> OperatorProcess {
    OperatorProcess::start(Path::new(OPERATOR), cluster, ns, &OperatorOptions::default())
}

/// One of two replicas running leader election on a Lease in `ns`.
fn start_replica(cluster: &Cluster, ns: &str, replica: &str) -> OperatorProcess {
    let options = OperatorOptions { replica: Some(replica.to_owned()), ..Default::default() };
    OperatorProcess::start(Path::new(OPERATOR), cluster, ns, &options)
}

#[tokio::test]
async fn the_operator_reconciles_a_check_with_a_real_probe_pod_and_writes_its_conditions() {
    let cluster = Cluster::from_env().await;
    cluster.control_plane().install_crd().await;
    let ns = cluster.namespace("operator-smoke", Some("restricted")).await;
    let _operator = start_operator(&cluster, &ns);

    // No record for this API on the VPC resolver: the probe pod's lookups get NXDOMAIN.
    let check = check(&ns, "orders", "zzzzz99999", serde_json::json!({}));
    let check =
        apply_and_wait(&cluster, &check, "a root cause", |c| c.status.as_ref().is_some_and(|s| s.root_cause.is_some()))
            .await;
    let status = check.status.as_ref().expect("status");
    let root = status.root_cause.expect("root cause");
    assert_eq!(root, RootCause::DnsResolutionFailed, "NXDOMAIN for the API host: {status:?}");
    let reachable = condition(&check, conditions::REACHABLE).expect("Reachable");
    assert_eq!((reachable.status.as_str(), reachable.reason.as_str()), ("False", "DnsResolutionFailed"));
    assert_eq!(reachable.observed_generation, Some(1));
    let ready = condition(&check, conditions::READY).expect("Ready");
    assert_eq!(ready.status, "True", "a target outage does not make the check not-Ready: {ready:?}");
    assert_eq!(status.observed_generation, Some(1));
    assert!(status.last_run_time.is_some() && status.next_run_time.is_some(), "{status:?}");

    // The probe pod ran on the node (its report is what was diagnosed); a successful run's pod
    // is deleted once the status is written.
    let pods: Api<Pod> = Api::namespaced(cluster.admin(), &ns);
    let lp = ListParams::default().labels("app.kubernetes.io/component=probe");
    let mut left = Vec::new();
    for _ in 0..300 {
        left = pods.list(&lp).await.expect("list pods").items;
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        left.is_empty(),
        "the finished probe pod is deleted: {:?}",
        left.iter()
            .map(|p| (p.metadata.name.clone(), p.status.as_ref().and_then(|s| s.phase.clone())))
            .collect::<Vec<_>>()
    );
    // A transition event names the root cause.
    let events: Api<Event> = Api::namespaced(cluster.admin(), &ns);
    let mut seen = Vec::new();
    for _ in 0..50 {
        seen = events.list(&ListParams::default()).await.expect("events").items;
        if seen.iter().any(|e| {
            e.message.as_deref().unwrap_or("").contains("DnsResolutionFailed")
                || e.reason.as_deref() == Some("DnsResolutionFailed")
        }) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        seen.iter().any(|e| e.message.as_deref().unwrap_or("").contains("DnsResolutionFailed")
            || e.reason.as_deref() == Some("DnsResolutionFailed")),
        "an event on the transition: {:?}",
        seen.iter().map(|e| (e.reason.clone(), e.message.clone())).collect::<Vec<_>>()
    );
}

/// A probe-run failure is not a target failure: `Reachable=Unknown`, reason `ProbeFailed`, with
/// the pod's own reason in the message — and `Ready` stays True.
fn probe_failed_with(check: &PrivateApiConnectivityCheck, needle: &str) {
    let reachable = condition(check, conditions::REACHABLE).expect("Reachable");
    assert_eq!((reachable.status.as_str(), reachable.reason.as_str()), ("Unknown", "ProbeFailed"), "{reachable:?}");
    assert!(reachable.message.contains(needle), "the pod's reason {needle:?} in {:?}", reachable.message);
    let ready = condition(check, conditions::READY).expect("Ready");
    assert_eq!(ready.status, "True", "{ready:?}");
}

#[tokio::test]
async fn a_probe_image_that_cannot_be_pulled_is_a_probe_failure_naming_the_pull() {
    let cluster = Cluster::from_env().await;
    cluster.control_plane().install_crd().await;
    let ns = cluster.namespace("operator-noimage", Some("restricted")).await;
    let _operator = start_operator(&cluster, &ns);
    let c = check(&ns, "orders", "zzzzz99998", serde_json::json!({"probe": {"image": "pvtapi.local/absent:1"}}));
    let done = apply_and_wait(&cluster, &c, "ProbeFailed", |c| root_cause_is(c, RootCause::ProbeFailed)).await;
    probe_failed_with(&done, "ImagePull");
}

#[tokio::test]
async fn a_probe_no_node_can_take_is_a_probe_failure_naming_the_scheduler() {
    let cluster = Cluster::from_env().await;
    cluster.control_plane().install_crd().await;
    let ns = cluster.namespace("operator-unsched", Some("restricted")).await;
    let _operator = start_operator(&cluster, &ns);
    let c = check(
        &ns,
        "orders",
        "zzzzz99997",
        serde_json::json!({"probe": {"nodeSelector": {"topology.kubernetes.io/zone": "nowhere-1z"}}}),
    );
    let done = apply_and_wait(&cluster, &c, "ProbeFailed", |c| root_cause_is(c, RootCause::ProbeFailed)).await;
    probe_failed_with(&done, "Unschedulable");
}

#[tokio::test]
async fn a_probe_pod_deleted_mid_run_is_a_probe_failure_and_the_next_run_goes_on() {
    let cluster = Cluster::from_env().await;
    cluster.control_plane().install_crd().await;
    let ns = cluster.namespace("operator-deleted", Some("restricted")).await;
    let _operator = start_operator(&cluster, &ns);
    // The API host resolves to an address nobody answers (the host drops it: a real connect
    // timeout), so the run lasts as long as its timeout — long enough to delete its pod.
    let api_host = "zzzzz99996.execute-api.us-east-1.amazonaws.com";
    let _dns = cluster.dns(&[(api_host, std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 1, 251)))]);
    let c = check(&ns, "orders", "zzzzz99996", serde_json::json!({"timeoutSeconds": 20}));
    let api: Api<PrivateApiConnectivityCheck> = Api::namespaced(cluster.admin(), &ns);
    api.patch("orders", &PatchParams::apply(FIELD_MANAGER), &Patch::Apply(&c)).await.expect("apply check");

    let pods: Api<Pod> = Api::namespaced(cluster.admin(), &ns);
    let lp = ListParams::default().labels("app.kubernetes.io/component=probe");
    let mut victim = None;
    for _ in 0..600 {
        let items = pods.list(&lp).await.expect("list pods").items;
        if let Some(p) = items.iter().find(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")) {
            victim = p.metadata.name.clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let victim = victim.expect("a running probe pod");
    pods.delete(&victim, &Default::default()).await.expect("delete the probe pod");
    let done = wait_check(&api, &ns, "orders", "ProbeFailed", |c| root_cause_is(c, RootCause::ProbeFailed)).await;
    probe_failed_with(&done, "deleted");

    // The next run (asked for with the run-now annotation) runs normally and finds the timeout.
    let patch = serde_json::json!({"metadata": {"annotations": {"pvtapi.io/run-now": "after-delete"}}});
    api.patch("orders", &PatchParams::default(), &Patch::Merge(&patch)).await.expect("annotate run-now");
    let done = wait_check(&api, &ns, "orders", "a timeout root cause", |c| {
        c.status.as_ref().and_then(|s| s.root_cause).is_some_and(|r| r != RootCause::ProbeFailed)
    })
    .await;
    let root = done.status.as_ref().and_then(|s| s.root_cause).expect("root cause");
    assert_eq!(root, RootCause::ConnectTimeout, "{:?}", done.status);
}

#[tokio::test]
async fn when_the_leader_dies_the_other_replica_takes_over_without_running_a_check_twice() {
    let cluster = Cluster::from_env().await;
    cluster.control_plane().install_crd().await;
    let ns = cluster.namespace("operator-ha", Some("restricted")).await;
    let mut replicas = vec![
        ("replica-a", start_replica(&cluster, &ns, "replica-a")),
        ("replica-b", start_replica(&cluster, &ns, "replica-b")),
    ];

    let first = apply_and_wait(&cluster, &check(&ns, "orders", "zzzzz99995", serde_json::json!({})), "a result", |c| {
        root_cause_is(c, RootCause::DnsResolutionFailed)
    })
    .await;
    assert_eq!(first.status.as_ref().map(|s| s.history.len()), Some(1), "one run: {:?}", first.status);
    // Exactly one replica ever believed it held the lease (both start at once: the race to
    // create the Lease is where two winners would show).
    let acquired: Vec<&str> =
        replicas.iter().filter(|(_, p)| p.log().contains("leader lease acquired")).map(|(name, _)| *name).collect();
    assert_eq!(acquired.len(), 1, "one leader at a time, not {acquired:?}");

    let leases: Api<k8s_openapi::api::coordination::v1::Lease> = Api::namespaced(cluster.admin(), &ns);
    let holder = leases
        .get("pvtapi-operator")
        .await
        .expect("the leader Lease")
        .spec
        .and_then(|s| s.holder_identity)
        .expect("a holder");
    let leader =
        replicas.iter().position(|(name, _)| holder.starts_with(name)).unwrap_or_else(|| panic!("holder {holder:?}"));
    let (dead, mut process) = replicas.remove(leader);
    process.kill(); // SIGKILL: no lease release, the follower must wait for it to expire
    let (survivor, _keep) = &replicas[0];

    let second = apply_and_wait(
        &cluster,
        &check(&ns, "payments", "zzzzz99994", serde_json::json!({})),
        "a result from the new leader",
        |c| root_cause_is(c, RootCause::DnsResolutionFailed),
    )
    .await;
    assert!(second.status.as_ref().is_some_and(|s| s.history.len() == 1), "{:?}", second.status);
    let holder =
        leases.get("pvtapi-operator").await.expect("lease").spec.and_then(|s| s.holder_identity).unwrap_or_default();
    assert!(holder.starts_with(survivor), "{dead} died; the lease is now {holder:?}");

    // The check the old leader ran is not run again by the new one (its next run is not due).
    let orders: Api<PrivateApiConnectivityCheck> = Api::namespaced(cluster.admin(), &ns);
    let orders = orders.get("orders").await.expect("orders");
    assert_eq!(
        orders.status.as_ref().map(|s| s.history.len()),
        Some(1),
        "no duplicate run after the hand-over: {:?}",
        orders.status
    );
    let pods: Api<Pod> = Api::namespaced(cluster.admin(), &ns);
    let lp = ListParams::default().labels("app.kubernetes.io/component=probe");
    for _ in 0..300 {
        if pods.list(&lp).await.expect("pods").items.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let left: Vec<_> = pods.list(&lp).await.expect("pods").items.into_iter().filter_map(|p| p.metadata.name).collect();
    assert!(left.is_empty(), "no orphan probe pod after the hand-over: {left:?}");
}

//! `pvtapi-operator run` against the real local node: a check is reconciled by a real probe pod
//! (Pod Security restricted namespace), the report comes back through the kubelet, and the
//! conditions, root cause and events are written — no harness plays the kubelet.
//!
//! This is the smoke test of the cluster half; the operator's own suite (AWS worlds on moto,
//! scenario files through the operator, faults) builds on it.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::wait::await_condition;
use pvtapi_crds::{PrivateApiConnectivityCheck, RootCause, conditions};
use pvtapi_testkit::cluster::Cluster;
use pvtapi_testkit::control_plane::FIELD_MANAGER;

/// The operator as a child process; killed on drop (no orphan if the test panics).
struct Operator(Child);

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_operator(cluster: &Cluster, ns: &str) -> Operator {
    start_replica(cluster, ns, None)
}

/// One operator process watching `ns`; with `replica = Some(name)` it runs leader election on a
/// Lease in `ns` under that name (two replicas, one leader), else without election.
fn start_replica(cluster: &Cluster, ns: &str, replica: Option<&str>) -> Operator {
    let log_name = match replica {
        Some(r) => format!("pvtapi-operator-{ns}-{r}.log"),
        None => format!("pvtapi-operator-{ns}.log"),
    };
    let log = std::fs::File::create(std::env::temp_dir().join(log_name)).expect("log file");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pvtapi-operator"));
    cmd.args(["run", "--metrics-addr", "127.0.0.1:0", "--namespace", ns]);
    match replica {
        Some(r) => cmd.arg(format!("--leader-election-namespace={ns}")).env("POD_NAME", r),
        None => cmd.arg("--no-leader-election"),
    };
    let child = cmd
        .arg(format!("--probe-image={}", cluster.image))
        .env("KUBECONFIG", cluster.control_plane().kubeconfig())
        // Nothing may leave the machine: no instance-metadata lookups, every AWS endpoint dead.
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("dup log"))
        .stderr(log)
        .spawn()
        .expect("start pvtapi-operator run");
    Operator(child)
}

fn check(ns: &str, name: &str, api_id: &str, extra: serde_json::Value) -> PrivateApiConnectivityCheck {
    let mut spec = serde_json::json!({
        "api": {"id": api_id, "region": "us-east-1", "stage": "prod", "path": "/health"},
        "endpoint": {"vpcEndpointId": "vpce-0fedcba9876543210"},
        "access": "privateDns",
        "timeoutSeconds": 2,
        "aws": {"inspect": false}
    });
    if let (Some(base), Some(more)) = (spec.as_object_mut(), extra.as_object()) {
        base.extend(more.clone());
    }
    serde_json::from_value(serde_json::json!({
        "apiVersion": "pvtapi.io/v1alpha1",
        "kind": "PrivateApiConnectivityCheck",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec
    }))
    .expect("check")
}

/// Applies `check` and waits (on a watch) until `done` holds for it, or panics with its status
/// and the operator's log.
async fn apply_and_wait(
    cluster: &Cluster,
    check: &PrivateApiConnectivityCheck,
    what: &str,
    done: impl Fn(&PrivateApiConnectivityCheck) -> bool,
) -> PrivateApiConnectivityCheck {
    let ns = check.metadata.namespace.clone().expect("namespace");
    let name = check.metadata.name.clone().expect("name");
    let api: Api<PrivateApiConnectivityCheck> = Api::namespaced(cluster.admin(), &ns);
    api.patch(&name, &PatchParams::apply(FIELD_MANAGER), &Patch::Apply(check)).await.expect("apply check");
    wait_check(&api, &ns, &name, what, done).await
}

async fn wait_check(
    api: &Api<PrivateApiConnectivityCheck>,
    ns: &str,
    name: &str,
    what: &str,
    done: impl Fn(&PrivateApiConnectivityCheck) -> bool,
) -> PrivateApiConnectivityCheck {
    let cond = await_condition(api.clone(), name, move |c: Option<&PrivateApiConnectivityCheck>| c.is_some_and(&done));
    match tokio::time::timeout(Duration::from_secs(120), cond).await {
        Ok(Ok(Some(c))) => c,
        other => {
            let now = api.get_opt(name).await.ok().flatten();
            // Every operator process of this namespace (one, or the replicas of the HA test).
            let prefix = format!("pvtapi-operator-{ns}");
            let log: String = std::fs::read_dir(std::env::temp_dir())
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                .collect();
            panic!(
                "{ns}/{name}: {what} not seen after 120 s ({other:?})\nstatus: {:?}\noperator log (tail):\n{}",
                now.and_then(|c| c.status),
                log.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }
}

fn root_cause_is(check: &PrivateApiConnectivityCheck, want: RootCause) -> bool {
    check.status.as_ref().and_then(|s| s.root_cause) == Some(want)
}

fn condition<'a>(
    check: &'a PrivateApiConnectivityCheck,
    type_: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    check.status.as_ref()?.conditions.iter().find(|c| c.type_ == type_)
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
        ("replica-a", start_replica(&cluster, &ns, Some("replica-a"))),
        ("replica-b", start_replica(&cluster, &ns, Some("replica-b"))),
    ];

    let first = apply_and_wait(&cluster, &check(&ns, "orders", "zzzzz99995", serde_json::json!({})), "a result", |c| {
        root_cause_is(c, RootCause::DnsResolutionFailed)
    })
    .await;
    assert_eq!(first.status.as_ref().map(|s| s.history.len()), Some(1), "one run: {:?}", first.status);

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
    let _ = process.0.kill(); // SIGKILL: no lease release, the follower must wait for it to expire
    let _ = process.0.wait();
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

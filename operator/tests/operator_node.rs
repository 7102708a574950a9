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
    let log = std::fs::File::create(std::env::temp_dir().join(format!("pvtapi-operator-{ns}.log"))).expect("log file");
    let child = Command::new(env!("CARGO_BIN_EXE_pvtapi-operator"))
        .args(["run", "--no-leader-election", "--metrics-addr", "127.0.0.1:0", "--namespace", ns])
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
    let check: PrivateApiConnectivityCheck = serde_json::from_value(serde_json::json!({
        "apiVersion": "pvtapi.io/v1alpha1",
        "kind": "PrivateApiConnectivityCheck",
        "metadata": {"name": "orders", "namespace": ns},
        "spec": {
            "api": {"id": "zzzzz99999", "region": "us-east-1", "stage": "prod", "path": "/health"},
            "endpoint": {"vpcEndpointId": "vpce-0fedcba9876543210"},
            "access": "privateDns",
            "timeoutSeconds": 2,
            "aws": {"inspect": false}
        }
    }))
    .expect("check");
    let api: Api<PrivateApiConnectivityCheck> = Api::namespaced(cluster.admin(), &ns);
    api.patch("orders", &PatchParams::apply(FIELD_MANAGER), &Patch::Apply(&check)).await.expect("apply check");

    let reported = await_condition(api.clone(), "orders", |c: Option<&PrivateApiConnectivityCheck>| {
        c.and_then(|c| condition(c, conditions::REACHABLE)).is_some_and(|r| r.reason != "Pending")
            && c.and_then(|c| c.status.as_ref()).is_some_and(|s| s.root_cause.is_some())
    });
    let check = match tokio::time::timeout(Duration::from_secs(120), reported).await {
        Ok(Ok(Some(c))) => c,
        other => {
            let now = api.get_opt("orders").await.ok().flatten();
            let log = std::fs::read_to_string(std::env::temp_dir().join(format!("pvtapi-operator-{ns}.log")))
                .unwrap_or_default();
            panic!(
                "no result after 120 s ({other:?})\nstatus: {:?}\noperator log (tail):\n{}",
                now.and_then(|c| c.status),
                log.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    };
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

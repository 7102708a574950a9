//! The operator as the chart will run it: a pod from the pvtapi image on the real node, with
//! in-cluster config (its ServiceAccount token, the `kubernetes` Service), leader election on a
//! Lease, and exactly the RBAC rules of `pvtapi_operator::rbac` — no more.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Container, EnvVar, EnvVarSource, ObjectFieldSelector, Pod, PodSpec};
use kube::api::{Api, ObjectMeta, Patch, PatchParams};
use kube::runtime::wait::await_condition;
use pvtapi_crds::{PrivateApiConnectivityCheck, conditions};
use pvtapi_operator::{probe_pod, rbac};
use pvtapi_testkit::cluster::{Cluster, phase};
use pvtapi_testkit::control_plane::FIELD_MANAGER;

fn meta(ns: Option<&str>, name: &str) -> ObjectMeta {
    ObjectMeta { name: Some(name.to_owned()), namespace: ns.map(str::to_owned), ..Default::default() }
}

/// The operator's ServiceAccount bound to `rbac::cluster_rules()` (ClusterRole) and
/// `rbac::leader_election_rules()` (Role in its own namespace) — nothing else.
async fn operator_identity(cluster: &Cluster, ns: &str) -> String {
    let sa = "pvtapi-operator";
    cluster.control_plane().bind_service_account(ns, sa, rbac::leader_election_rules(), rbac::cluster_rules()).await;
    sa.into()
}

fn env(name: &str, value: &str) -> EnvVar {
    EnvVar { name: name.into(), value: Some(value.into()), ..Default::default() }
}

#[tokio::test]
async fn the_operator_runs_as_a_pod_with_in_cluster_config_and_only_its_own_rbac() {
    let cluster = Cluster::from_env().await;
    cluster.control_plane().install_crd().await;
    let op_ns = cluster.namespace("pvtapi-system", Some("restricted")).await;
    let checks_ns = cluster.namespace("operator-pod", Some("restricted")).await;
    let sa = operator_identity(&cluster, &op_ns).await;

    let operator = Pod {
        metadata: meta(Some(&op_ns), "pvtapi-operator"),
        spec: Some(PodSpec {
            service_account_name: Some(sa),
            security_context: Some(probe_pod::restricted_pod_security_context()),
            containers: vec![Container {
                name: "operator".into(),
                image: Some(cluster.image.clone()),
                image_pull_policy: Some("Never".into()),
                args: Some(vec![
                    "run".into(),
                    format!("--probe-image={}", cluster.image),
                    format!("--namespace={checks_ns}"),
                    "--metrics-addr=0.0.0.0:8080".into(),
                ]),
                env: Some(vec![
                    EnvVar {
                        name: "POD_NAME".into(),
                        value_from: Some(EnvVarSource {
                            field_ref: Some(ObjectFieldSelector {
                                field_path: "metadata.name".into(),
                                ..Default::default()
                            }),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                    // Nothing may leave the machine: no instance metadata, every AWS endpoint dead.
                    env("AWS_EC2_METADATA_DISABLED", "true"),
                    env("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
                    env("RUST_LOG", "info"),
                ]),
                security_context: Some(probe_pod::restricted_container_security_context()),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: None,
    };
    let running = cluster
        .create_and_wait(&operator, "Running", Duration::from_secs(90), |p| {
            matches!(phase(p), "Running" | "Failed" | "Succeeded")
        })
        .await;
    assert_eq!(phase(&running), "Running", "{:?}", running.status);

    let check: PrivateApiConnectivityCheck = serde_json::from_value(serde_json::json!({
        "apiVersion": "pvtapi.io/v1alpha1",
        "kind": "PrivateApiConnectivityCheck",
        "metadata": {"name": "orders", "namespace": checks_ns},
        "spec": {
            "api": {"id": "yyyyy88888", "region": "us-east-1", "stage": "prod"},
            "endpoint": {"vpcEndpointId": "vpce-0aaaabbbbccccdddd"},
            "access": "privateDns",
            "timeoutSeconds": 2,
            "aws": {"inspect": false}
        }
    }))
    .expect("check");
    let api: Api<PrivateApiConnectivityCheck> = Api::namespaced(cluster.admin(), &checks_ns);
    api.patch("orders", &PatchParams::apply(FIELD_MANAGER), &Patch::Apply(&check)).await.expect("apply check");
    let reported = await_condition(api.clone(), "orders", |c: Option<&PrivateApiConnectivityCheck>| {
        c.and_then(|c| c.status.as_ref()).is_some_and(|s| s.root_cause.is_some())
    });
    let check = match tokio::time::timeout(Duration::from_secs(120), reported).await {
        Ok(Ok(Some(c))) => c,
        other => panic!(
            "no result from the operator pod after 120 s ({other:?}); its log:\n{}",
            cluster.logs(&op_ns, "pvtapi-operator").await
        ),
    };
    let reachable = check
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == conditions::REACHABLE))
        .expect("Reachable");
    assert_eq!(
        (reachable.status.as_str(), reachable.reason.as_str()),
        ("False", "DnsResolutionFailed"),
        "{reachable:?}"
    );

    // It holds the Lease in its own namespace, under its pod name.
    let lease =
        Api::<Lease>::namespaced(cluster.admin(), &op_ns).get("pvtapi-operator").await.expect("the leader Lease");
    let holder = lease.spec.and_then(|s| s.holder_identity).unwrap_or_default();
    assert!(holder.starts_with("pvtapi-operator"), "lease holder {holder:?}");

    // Its log carries no credential material (it has a ServiceAccount token mounted).
    let log = cluster.logs(&op_ns, "pvtapi-operator").await;
    assert!(!log.contains("eyJ") && !log.to_ascii_lowercase().contains("bearer "), "a token in the log:\n{log}");
}

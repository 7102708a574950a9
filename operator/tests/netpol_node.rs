//! NetworkPolicies on the probe pod's egress, through the operator on the real node (issue 12).
//!
//! The local cluster's CNI does not enforce NetworkPolicies, so the timeout is made by the host
//! (the API host resolves to an endpoint-subnet address it drops) and the detection is proven
//! from the real policy objects the operator lists: with an egress default-deny in the check's
//! namespace and the security groups and ACLs allowing (moto), the result names the policy
//! and carries a NetworkPolicy that opens exactly what is missing; once that policy is applied,
//! the policies are no longer the explanation and the cause moves on to the network
//! (`ConnectTimeout`: what is left is the host's drop). A check in a namespace without policies
//! never names them.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, PostParams};
use pvtapi_crds::{PrivateApiConnectivityCheck, RootCause};
use pvtapi_testkit::cluster::Cluster;
use pvtapi_testkit::moto::Moto;
use pvtapi_testkit::operator::{
    OperatorOptions, OperatorProcess, apply_and_wait, check, new_result_since, run_now, wait_check,
};
use pvtapi_testkit::world::{self, WorldSpec};

const OPERATOR: &str = env!("CARGO_BIN_EXE_pvtapi-operator");
/// An endpoint-subnet address nobody holds (node.rs uses .10–.209, scenarios .230/.231, faults .241–.244).
const BLACKHOLE: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 247);

const DEFAULT_DENY_EGRESS: &str = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny-egress
spec:
  podSelector: {}
  policyTypes: [Egress]
"#;

#[tokio::test]
async fn an_egress_default_deny_is_named_and_its_suggested_policy_opens_the_path() {
    let cluster = Cluster::from_env().await;
    cluster.control_plane().install_crd().await;
    let denied = cluster.namespace("netpol-deny", Some("restricted")).await;
    let open = cluster.namespace("netpol-open", Some("restricted")).await;

    let moto = Moto::start();
    let config = moto.sdk_config("us-east-1").await;
    let w = world::build(&config, &WorldSpec::default()).await;
    world::add_pod_interfaces(&config, &w, &cluster.pod_addresses).await;
    let host = format!("{}.execute-api.us-east-1.amazonaws.com", world::API_ID);
    let _dns = cluster.dns(&[(host.as_str(), IpAddr::V4(BLACKHOLE))]);

    let policies: Api<NetworkPolicy> = Api::namespaced(cluster.admin(), &denied);
    let deny: NetworkPolicy = serde_norway::from_str(DEFAULT_DENY_EGRESS).expect("policy YAML");
    policies.create(&PostParams::default(), &deny).await.expect("create the default-deny policy");

    let env: Vec<(String, String)> = moto.env().into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    let options = OperatorOptions { env, ..Default::default() };
    let _in_denied = OperatorProcess::start(Path::new(OPERATOR), &cluster, &denied, &options);
    let _in_open = OperatorProcess::start(Path::new(OPERATOR), &cluster, &open, &options);
    let spec = serde_json::json!({
        "endpoint": {"vpcEndpointId": w.vpce},
        "timeoutSeconds": 1,
        "intervalSeconds": 3600,
        "aws": {"inspect": true}
    });

    // The namespace with the default-deny: the policy is named, with the fix.
    let c = check(&denied, "orders", world::API_ID, spec.clone());
    let done = apply_and_wait(&cluster, &c, "a result", |c| new_result_since(c, None)).await;
    let status = done.status.clone().unwrap_or_default();
    assert_eq!(status.root_cause, Some(RootCause::NetworkPolicyBlocked), "{:?}", status.summary);
    let summary = status.summary.clone().unwrap_or_default();
    assert!(summary.contains(&format!("{denied}/default-deny-egress")), "{summary}");
    let report = status.report.clone().unwrap_or_default();
    let manifest = report["diagnosis"]["fixes"][0]["manifest"].as_str().unwrap_or_default().to_owned();
    assert!(manifest.contains("kind: NetworkPolicy"), "no manifest in the fix: {report}");
    assert!(manifest.contains(&format!("{BLACKHOLE}/32")), "the fix opens the endpoint's address: {manifest}");
    assert!(manifest.contains("443"), "{manifest}");

    // Apply exactly what the report suggests; the next run no longer blames the policies.
    let suggested: NetworkPolicy = serde_norway::from_str(&manifest).expect("the suggested policy parses");
    policies.create(&PostParams::default(), &suggested).await.expect("apply the suggested policy");
    let checks: Api<PrivateApiConnectivityCheck> = Api::namespaced(cluster.admin(), &denied);
    let before = status.last_run_id.clone();
    run_now(&checks, "orders", "after-policy").await;
    let after =
        wait_check(&checks, &denied, "orders", "a result after the fix", |c| new_result_since(c, before.as_deref()))
            .await;
    let status = after.status.clone().unwrap_or_default();
    assert_eq!(status.root_cause, Some(RootCause::ConnectTimeout), "{:?}", status.summary);

    // A namespace without policies: the same timeout is never put on NetworkPolicies.
    let c = check(&open, "orders", world::API_ID, spec);
    let done = apply_and_wait(&cluster, &c, "a result", |c| new_result_since(c, None)).await;
    let status = done.status.clone().unwrap_or_default();
    assert_eq!(status.root_cause, Some(RootCause::ConnectTimeout), "{:?}", status.summary);
}

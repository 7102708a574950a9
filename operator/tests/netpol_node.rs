//! NetworkPolicies on the probe pod's egress, through the operator on the real node (issue 12),
//! with the cluster enforcing them (kube-network-policies, started by `cluster.sh`).
//!
//! The API host resolves to the endpoint's own address (as moto assigned it), where nothing
//! answers: the node drops it. With an egress default-deny in the check's namespace the probe's
//! DNS lookup is really dropped first; the result names the policy and carries a NetworkPolicy
//! that opens exactly the path — DNS and TCP 443 to the endpoint's addresses, which come from
//! the AWS facts since the probe never learnt them. Once that policy is applied, the policies are
//! no longer the explanation and the cause moves on to the network (`ConnectTimeout`: what is
//! left is the node's drop). A check in a namespace without policies never names them.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, PostParams};
use pvtapi_crds::{PrivateApiConnectivityCheck, RootCause};
use pvtapi_testkit::cluster::Cluster;
use pvtapi_testkit::moto::Moto;
use pvtapi_testkit::operator::{
    OperatorOptions, OperatorProcess, apply_and_wait, check, new_result_since, rerun_until,
};
use pvtapi_testkit::world::{self, WorldSpec};

const OPERATOR: &str = env!("CARGO_BIN_EXE_pvtapi-operator");

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
    cluster.require_network_policy_enforcement();
    cluster.control_plane().install_crd().await;
    let denied = cluster.namespace("netpol-deny", Some("restricted")).await;
    let open = cluster.namespace("netpol-open", Some("restricted")).await;

    let moto = Moto::start();
    let config = moto.sdk_config("us-east-1").await;
    let w = world::build(&config, &WorldSpec::default()).await;
    world::add_pod_interfaces(&config, &w, &cluster.pod_addresses).await;
    let host = format!("{}.execute-api.us-east-1.amazonaws.com", world::API_ID);
    let endpoint = world::endpoint_address(&config, &w.vpce, Ipv4Addr::new(10, 0, 1, 247)).await;
    let _dns = cluster.dns(&[(host.as_str(), IpAddr::V4(endpoint))]);

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
    assert!(manifest.contains(&format!("{endpoint}/32")), "the fix opens the endpoint's address: {manifest}");
    assert!(manifest.contains("UDP") && manifest.contains("53"), "and DNS: {manifest}");
    assert!(manifest.contains("443"), "{manifest}");

    // Apply exactly what the report suggests; the next run no longer blames the policies.
    let suggested: NetworkPolicy = serde_norway::from_str(&manifest).expect("the suggested policy parses");
    policies.create(&PostParams::default(), &suggested).await.expect("apply the suggested policy");
    let checks: Api<PrivateApiConnectivityCheck> = Api::namespaced(cluster.admin(), &denied);
    // The enforcer decides from its informers' view of the policies: up to three runs to see it.
    let moved_on = |c: &PrivateApiConnectivityCheck| {
        c.status.as_ref().and_then(|s| s.root_cause) == Some(RootCause::ConnectTimeout)
    };
    let (after, runs) = rerun_until(&checks, &denied, "orders", 3, moved_on).await;
    let status = after.status.clone().unwrap_or_default();
    assert_eq!(status.root_cause, Some(RootCause::ConnectTimeout), "after {runs} runs: {:?}", status.summary);

    // A namespace without policies: the same timeout is never put on NetworkPolicies.
    let c = check(&open, "orders", world::API_ID, spec);
    let done = apply_and_wait(&cluster, &c, "a result", |c| new_result_since(c, None)).await;
    let status = done.status.clone().unwrap_or_default();
    assert_eq!(status.root_cause, Some(RootCause::ConnectTimeout), "{:?}", status.summary);
}

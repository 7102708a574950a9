//! The source the endpoint sees, through the operator on the real node (issue 12).
//!
//! The operator reads the real `aws-node` DaemonSet's env (the VPC CNI's settings) from the
//! apiserver, the probe pod's real `hostIP` and `podIP` from the kubelet, and the interfaces,
//! groups and VPC CIDRs from moto through the SDK. The DaemonSet selects no node (its image is
//! never run): only its settings are read, as on EKS. The timeout is the host's (the API host
//! resolves to an address the node drops); what is proven is which source the security-group
//! analysis judges and names:
//!
//! * **SNAT**: an endpoint in another VPC (centralized, outside the cluster VPC's CIDRs) whose
//!   group admits the pods' group but not the node's. External SNAT off: the node's address and
//!   group are judged — `SecurityGroupBlocked`, naming them. External SNAT on: the pod's —
//!   the groups allow, so the cause moves on to the timeout itself.
//! * **Security Groups for Pods**: the pods' interfaces are branches (`aws-k8s-branch-eni`) with
//!   a group of their own that the endpoint does not admit, while the node's group is admitted:
//!   the branch's group is judged and named.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use k8s_openapi::api::apps::v1::DaemonSet;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use pvtapi_crds::{PrivateApiConnectivityCheck, RootCause};
use pvtapi_testkit::cluster::Cluster;
use pvtapi_testkit::moto::Moto;
use pvtapi_testkit::operator::{
    OperatorOptions, OperatorProcess, apply_and_wait, check, new_result_since, run_now, wait_check,
};
use pvtapi_testkit::world::{self, WorldSpec};

const OPERATOR: &str = env!("CARGO_BIN_EXE_pvtapi-operator");
/// An address nobody holds (node.rs uses .10–.209, scenarios .230/.231, faults .241–.244,
/// netpol .247, workload .248, from .249, deleted-pod .251).
const BLACKHOLE: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 245);

/// Applies `kube-system/aws-node` with the `aws-node` container's `env`: a DaemonSet that
/// selects no node, so nothing runs — the operator reads only its settings.
async fn aws_node(cluster: &Cluster, env: &[(&str, &str)]) {
    let env: Vec<serde_json::Value> = env.iter().map(|(k, v)| serde_json::json!({"name": k, "value": v})).collect();
    let ds: DaemonSet = serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "aws-node", "namespace": "kube-system"},
        "spec": {
            "selector": {"matchLabels": {"k8s-app": "aws-node"}},
            "template": {
                "metadata": {"labels": {"k8s-app": "aws-node"}},
                "spec": {
                    "nodeSelector": {"pvtapi.io/no-such-node": "true"},
                    "containers": [{"name": "aws-node", "image": "pvtapi.local/pause:1", "env": env}]
                }
            }
        }
    }))
    .expect("DaemonSet");
    Api::<DaemonSet>::namespaced(cluster.admin(), "kube-system")
        .patch("aws-node", &PatchParams::apply("pvtapi-test").force(), &Patch::Apply(&ds))
        .await
        .expect("apply kube-system/aws-node");
}

async fn remove_aws_node(cluster: &Cluster) {
    let _ =
        Api::<DaemonSet>::namespaced(cluster.admin(), "kube-system").delete("aws-node", &DeleteParams::default()).await;
}

fn spec(vpce: &str) -> serde_json::Value {
    serde_json::json!({
        "endpoint": {"vpcEndpointId": vpce},
        "timeoutSeconds": 1,
        "intervalSeconds": 3600,
        "aws": {"inspect": true}
    })
}

fn evidence(c: &PrivateApiConnectivityCheck) -> Vec<String> {
    let report = c.status.as_ref().and_then(|s| s.report.clone()).unwrap_or_default();
    report["diagnosis"]["evidence"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

fn cause(c: &PrivateApiConnectivityCheck) -> (Option<RootCause>, String) {
    let s = c.status.clone().unwrap_or_default();
    (s.root_cause, s.summary.unwrap_or_default())
}

#[tokio::test]
async fn security_groups_are_judged_for_the_source_the_endpoint_sees() {
    let cluster = Cluster::from_env().await;
    cluster.control_plane().install_crd().await;
    remove_aws_node(&cluster).await;
    let host = format!("{}.execute-api.us-east-1.amazonaws.com", world::API_ID);
    let _dns = cluster.dns(&[(host.as_str(), IpAddr::V4(BLACKHOLE))]);
    let node_ip = cluster.node_ip;

    // SNAT: a centralized endpoint admitting the pods' group, not the node's.
    let snat_ns = cluster.namespace("source-snat", Some("restricted")).await;
    let moto = Moto::start();
    let config = moto.sdk_config("us-east-1").await;
    let w = world::build(&config, &WorldSpec::default()).await;
    world::add_pod_interfaces(&config, &w, &cluster.pod_addresses).await;
    let sg_node = world::add_group(&config, &w.vpc, "nodes", &[]).await;
    world::add_interfaces(&config, &w.subnet_client, &[node_ip], &sg_node, "node primary interface").await;
    let central = world::add_centralized_endpoint(&config, "10.1.0.0/16", "10.1.1.0/24", &[&w.sg_client]).await;
    aws_node(&cluster, &[("AWS_VPC_K8S_CNI_EXTERNALSNAT", "false")]).await;

    let env: Vec<(String, String)> = moto.env().into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    let options = OperatorOptions { env, ..Default::default() };
    let operator = OperatorProcess::start(Path::new(OPERATOR), &cluster, &snat_ns, &options);
    let c = check(&snat_ns, "central", world::API_ID, spec(&central.vpce));
    let done = apply_and_wait(&cluster, &c, "a result", |c| new_result_since(c, None)).await;
    let (root, summary) = cause(&done);
    let ev = evidence(&done);
    assert_eq!(root, Some(RootCause::SecurityGroupBlocked), "{summary}\n{ev:#?}\n{}", operator.log());
    let source = ev.iter().find(|e| e.starts_with("source: ")).unwrap_or_else(|| panic!("no source line: {ev:#?}"));
    eprintln!("{source}");
    assert!(source.contains(&format!("node's address {node_ip}")) && source.contains(&sg_node), "{source}");
    assert!(source.contains("AWS_VPC_K8S_CNI_EXTERNALSNAT is false") && source.contains("10.0.0.0/16"), "{source}");
    assert!(format!("{summary} {ev:?}").contains(&sg_node), "the node's group is the one judged: {summary}");

    // External SNAT on: the pod's own address and group, which the endpoint admits.
    aws_node(&cluster, &[("AWS_VPC_K8S_CNI_EXTERNALSNAT", "true")]).await;
    let checks: Api<PrivateApiConnectivityCheck> = Api::namespaced(cluster.admin(), &snat_ns);
    let before = done.status.as_ref().and_then(|s| s.last_run_id.clone());
    run_now(&checks, "central", "external-snat").await;
    let after = wait_check(&checks, &snat_ns, "central", "a result with external SNAT", |c| {
        new_result_since(c, before.as_deref())
    })
    .await;
    let (root, summary) = cause(&after);
    let ev = evidence(&after);
    assert_eq!(root, Some(RootCause::ConnectTimeout), "{summary}\n{ev:#?}");
    let source = ev.iter().find(|e| e.starts_with("source: ")).unwrap_or_else(|| panic!("no source line: {ev:#?}"));
    eprintln!("{source}");
    assert!(source.contains("the pod's own address 10.0.2.") && source.contains(&w.sg_client), "{source}");
    assert!(source.contains("AWS_VPC_K8S_CNI_EXTERNALSNAT is true"), "{source}");
    drop(operator);

    // Security Groups for Pods: the pods' branch interfaces carry a group the endpoint does not
    // admit; the node's group is admitted (and beside the point in strict mode).
    let sgp_ns = cluster.namespace("source-sgp", Some("restricted")).await;
    let moto = Moto::start();
    let config = moto.sdk_config("us-east-1").await;
    let w = world::build(&config, &WorldSpec::default()).await;
    let sg_branch = world::add_group(&config, &w.vpc, "pod-branch", &[]).await;
    world::add_interfaces(&config, &w.subnet_client, &cluster.pod_addresses, &sg_branch, "aws-k8s-branch-eni").await;
    world::add_interfaces(&config, &w.subnet_client, &[node_ip], &w.sg_client, "node primary interface").await;
    aws_node(&cluster, &[("ENABLE_POD_ENI", "true"), ("POD_SECURITY_GROUP_ENFORCING_MODE", "strict")]).await;
    let env: Vec<(String, String)> = moto.env().into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    let options = OperatorOptions { env, ..Default::default() };
    let operator = OperatorProcess::start(Path::new(OPERATOR), &cluster, &sgp_ns, &options);
    let c = check(&sgp_ns, "branch", world::API_ID, spec(&w.vpce));
    let done = apply_and_wait(&cluster, &c, "a result", |c| new_result_since(c, None)).await;
    let (root, summary) = cause(&done);
    let ev = evidence(&done);
    assert_eq!(root, Some(RootCause::SecurityGroupBlocked), "{summary}\n{ev:#?}\n{}", operator.log());
    let source = ev.iter().find(|e| e.starts_with("source: ")).unwrap_or_else(|| panic!("no source line: {ev:#?}"));
    eprintln!("{source}");
    assert!(source.contains("branch interface") && source.contains(&sg_branch), "{source}");
    assert!(source.contains("enforcing mode strict"), "{source}");
    drop(operator);
    remove_aws_node(&cluster).await;
}

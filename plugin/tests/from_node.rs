//! `kubectl pvtapi check --from deploy/NAME` on the real node (issue 12): the probe runs as an
//! ephemeral container inside the workload's running pod, in a Pod Security `restricted`
//! namespace whose egress default-deny selects the workload (`app=orders`). The API host
//! resolves to an endpoint-subnet address the host drops (the local CNI does not enforce
//! policies: the timeout is real, the policy objects are real). The plugin must name the policy
//! (`NetworkPolicyBlocked`, exit 1) with the suggested policy, the pod must show the exited
//! probe container, and the errors a user meets must say what to do.

use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Output};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, ListParams, PostParams};
use pvtapi_testkit::cluster::Cluster;
use pvtapi_testkit::moto::Moto;
use pvtapi_testkit::operator::pause_deployment;
use pvtapi_testkit::world::{self, WorldSpec};

const BIN: &str = env!("CARGO_BIN_EXE_kubectl-pvtapi");
/// An endpoint-subnet address nobody holds (netpol .247, workload .248).
const BLACKHOLE: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 249);

fn yaml<T: serde::de::DeserializeOwned>(text: &str) -> T {
    serde_norway::from_str(text).unwrap_or_else(|e| panic!("fixture YAML: {e}\n{text}"))
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_from_a_workload_names_the_policy_that_isolates_it() {
    let cluster = Cluster::from_env().await;
    let ns = cluster.namespace("from", Some("restricted")).await;
    let client = cluster.admin();
    pause_deployment(&cluster, &ns, "orders", &[]).await;
    let deny: NetworkPolicy = yaml(
        "metadata: {name: orders-deny-egress}\nspec: {podSelector: {matchLabels: {app: orders}}, policyTypes: [Egress]}",
    );
    Api::<NetworkPolicy>::namespaced(client.clone(), &ns).create(&PostParams::default(), &deny).await.expect("policy");

    let moto = Moto::start();
    let config = moto.sdk_config("us-east-1").await;
    let w = world::build(&config, &WorldSpec::default()).await;
    world::add_pod_interfaces(&config, &w, &cluster.pod_addresses).await;
    let host = format!("{}.execute-api.us-east-1.amazonaws.com", world::API_ID);
    let _dns = cluster.dns(&[(host.as_str(), IpAddr::V4(BLACKHOLE))]);

    // The workload's pod must run first.
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let mut pod_name = None;
    for _ in 0..600 {
        let list = pods.list(&ListParams::default().labels("app=orders")).await.map(|l| l.items).unwrap_or_default();
        if let Some(p) = list.iter().find(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")) {
            pod_name = p.metadata.name.clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pod_name = pod_name.expect("the workload's pod runs within 60 s");

    let run = |extra: &[&str]| {
        let mut cmd = Command::new(BIN);
        cmd.arg("--kubeconfig")
            .arg(cluster.control_plane().kubeconfig())
            .args(["check", "-n", &ns, "--api-id", world::API_ID, "--region", "us-east-1", "--stage", "prod"])
            .args(["--path", "/health", "--vpce", &w.vpce, "--access", "private-dns", "--timeout", "2"])
            .args(["--probe-image", &cluster.image])
            .args(extra)
            .envs(moto.env())
            .env_remove("KUBECONFIG")
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy");
        tokio::task::block_in_place(|| cmd.output()).expect("run the plugin")
    };

    let out = run(&["--from", "deploy/orders", "-o", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&out)));
    let d = &report["diagnosis"];
    assert_eq!(d["rootCause"], "NetworkPolicyBlocked", "{}", show(&out));
    assert!(d["summary"].as_str().unwrap_or_default().contains("orders-deny-egress"), "{}", show(&out));
    assert!(d["fixes"][0]["manifest"].as_str().unwrap_or_default().contains("kind: NetworkPolicy"), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("stays in the pod's spec"),
        "the user is told: {}",
        show(&out)
    );
    // The probe ran in that pod: an exited ephemeral container is there.
    let pod = pods.get(&pod_name).await.expect("the workload's pod");
    let statuses = pod.status.and_then(|s| s.ephemeral_container_statuses).unwrap_or_default();
    assert!(
        statuses
            .iter()
            .any(|c| c.name.starts_with("pvtapi-probe-") && c.state.as_ref().is_some_and(|s| s.terminated.is_some())),
        "{statuses:?}"
    );

    // What a user gets wrong, worded.
    let out = run(&["--from", "deploy/missing"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("deployment missing not found"), "{}", show(&out));
    let out = run(&["--from", "job/x"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a pod, deployment"), "{}", show(&out));
}

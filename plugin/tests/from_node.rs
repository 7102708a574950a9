//! `kubectl pvtapi check --from deploy/NAME` on the real node (issue 12), with the cluster
//! enforcing NetworkPolicies (kube-network-policies, started by `cluster.sh`): the probe runs as
//! an ephemeral container inside the workload's running pod, in a Pod Security `restricted`
//! namespace with an egress default-deny. The API is served healthy (TLS front end, a test CA the
//! workload mounts from a ConfigMap) on the endpoint's own address. The policy really drops the
//! probe's DNS lookup: the plugin must name it (`NetworkPolicyBlocked`, exit 1) with a policy that
//! opens the path; once that policy is applied, the same command is `Healthy` (exit 0). The pod
//! must show the exited probe containers, and the errors a user meets must say what to do.

use std::net::Ipv4Addr;
use std::process::{Command, Output};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, ListParams, PostParams};
use pvtapi_testkit::cluster::Cluster;
use pvtapi_testkit::moto::Moto;
use pvtapi_testkit::operator::{HealthyApi, pause_deployment_with};
use pvtapi_testkit::world::{self, WorldSpec};

const BIN: &str = env!("CARGO_BIN_EXE_kubectl-pvtapi");

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
    cluster.require_network_policy_enforcement();
    let ns = cluster.namespace("from", Some("restricted")).await;
    let client = cluster.admin();
    let deny: NetworkPolicy =
        yaml("metadata: {name: default-deny-egress}\nspec: {podSelector: {}, policyTypes: [Egress]}");
    let policies = Api::<NetworkPolicy>::namespaced(client.clone(), &ns);
    policies.create(&PostParams::default(), &deny).await.expect("policy");

    let moto = Moto::start();
    let config = moto.sdk_config("us-east-1").await;
    let w = world::build(&config, &WorldSpec::default()).await;
    world::add_pod_interfaces(&config, &w, &cluster.pod_addresses).await;
    let endpoint = world::endpoint_address(&config, &w.vpce, Ipv4Addr::new(10, 0, 1, 249)).await;
    let _api = HealthyApi::start(&cluster, &ns, world::API_ID, endpoint, "test-ca").await;
    // A proxy variable from a Secret: never copied into the probe, and the user is told.
    let secret: k8s_openapi::api::core::v1::Secret =
        yaml("metadata: {name: proxy-creds}\nstringData: {url: 'http://user:secret@127.0.0.1:1'}");
    Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &secret)
        .await
        .expect("secret");
    let proxy_from_secret =
        serde_json::json!({"name": "ALL_PROXY", "valueFrom": {"secretKeyRef": {"name": "proxy-creds", "key": "url"}}});
    pause_deployment_with(&cluster, &ns, "orders", &[], Some("test-ca"), &[proxy_from_secret]).await;

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

    let from = ["--from", "deploy/orders", "--ca-bundle-volume", "test-ca/ca.crt", "-o", "json"];
    let out = run(&from);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&out)));
    let d = &report["diagnosis"];
    assert_eq!(d["rootCause"], "NetworkPolicyBlocked", "{}", show(&out));
    assert!(d["summary"].as_str().unwrap_or_default().contains("default-deny-egress"), "{}", show(&out));
    let manifest = d["fixes"][0]["manifest"].as_str().unwrap_or_default().to_owned();
    assert!(manifest.contains("kind: NetworkPolicy"), "{}", show(&out));
    assert!(manifest.contains(&format!("{endpoint}/32")), "the fix opens the endpoint's address: {manifest}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("stays in the pod's spec"),
        "the user is told: {}",
        show(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("note: ALL_PROXY of Pod/") && stderr.contains("not copied"), "{}", show(&out));
    assert!(!stderr.contains("user:secret") && !String::from_utf8_lossy(&out.stdout).contains("user:secret"));
    // The probe ran in that pod: an exited ephemeral container is there.
    let pod = pods.get(&pod_name).await.expect("the workload's pod");
    let statuses = pod.status.and_then(|s| s.ephemeral_container_statuses).unwrap_or_default();
    assert!(
        statuses
            .iter()
            .any(|c| c.name.starts_with("pvtapi-probe-") && c.state.as_ref().is_some_and(|s| s.terminated.is_some())),
        "{statuses:?}"
    );

    // Apply exactly the suggested policy: from the same pod, the API is healthy. The enforcer
    // decides from its informers' view: up to three tries for it to see the new policy.
    let suggested: NetworkPolicy = yaml(&manifest);
    policies.create(&PostParams::default(), &suggested).await.expect("apply the suggested policy");
    let mut out = run(&from);
    for _ in 0..2 {
        if out.status.code() == Some(0) {
            break;
        }
        out = run(&from);
    }
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&out)));
    assert_eq!(report["diagnosis"]["rootCause"], "Healthy", "{}", show(&out));

    // What a user gets wrong, worded.
    let out = run(&["--from", "deploy/missing"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("deployment missing not found"), "{}", show(&out));
    let out = run(&["--from", "job/x"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a pod, deployment"), "{}", show(&out));
    let out = run(&["--from", "deploy/orders", "--ca-bundle-volume", "corp-ca/ca.crt"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no volume \"corp-ca\""), "{}", show(&out));
}

//! Probe as the workload (`spec.probe.workloadRef`) on the real node (issue 12), with the
//! cluster enforcing NetworkPolicies (kube-network-policies, started by `cluster.sh`).
//!
//! A Deployment `orders` (pods `app=orders`) behind a Service, in a namespace with an egress
//! default-deny; the API is served healthy (TLS front end with a test CA) on the endpoint's own
//! address as moto assigned it. Checks of the same API:
//! - in that namespace with `workloadRef: Deployment/orders`: the probe pod is the workload's
//!   (its labels, so the policy selects it), its DNS lookup is really dropped, and the result is
//!   `NetworkPolicyBlocked` naming the policy, with a NetworkPolicy that opens exactly the path;
//! - in another namespace, without `workloadRef`: `Healthy`;
//! - once the suggested policy is applied, the first check is `Healthy` too.
//!
//! While the workload-identity probe pod runs, it must never be a ready endpoint of the
//! workload's Service (asserted on the real EndpointSlices) and never be adopted or counted by
//! the Deployment's ReplicaSet (its controller owner stays the check).

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::ResourceExt;
use kube::api::{Api, ListParams, PostParams};
use pvtapi_crds::{PrivateApiConnectivityCheck, RootCause};
use pvtapi_testkit::cluster::Cluster;
use pvtapi_testkit::moto::Moto;
use pvtapi_testkit::operator::{
    HealthyApi, OperatorOptions, OperatorProcess, apply_and_wait, check, new_result_since, pause_deployment,
    rerun_until,
};
use pvtapi_testkit::world::{self, WorldSpec};

const OPERATOR: &str = env!("CARGO_BIN_EXE_pvtapi-operator");

fn yaml<T: serde::de::DeserializeOwned>(text: &str) -> T {
    serde_norway::from_str(text).unwrap_or_else(|e| panic!("fixture YAML: {e}\n{text}"))
}

#[tokio::test]
async fn the_probe_takes_the_workloads_identity_and_never_serves_its_traffic() {
    let cluster = Cluster::from_env().await;
    cluster.require_network_policy_enforcement();
    cluster.control_plane().install_crd().await;
    let ns = cluster.namespace("workload", Some("restricted")).await;
    let open_ns = cluster.namespace("workload-open", Some("restricted")).await;
    let client = cluster.admin();

    pause_deployment(&cluster, &ns, "orders", &[("tier", "web")]).await;
    let service: Service = yaml("metadata: {name: orders}\nspec: {selector: {app: orders}, ports: [{port: 80}]}");
    Api::<Service>::namespaced(client.clone(), &ns).create(&PostParams::default(), &service).await.expect("Service");
    let deny: NetworkPolicy =
        yaml("metadata: {name: default-deny-egress}\nspec: {podSelector: {}, policyTypes: [Egress]}");
    let policies = Api::<NetworkPolicy>::namespaced(client.clone(), &ns);
    policies.create(&PostParams::default(), &deny).await.expect("policy");

    let moto = Moto::start();
    let config = moto.sdk_config("us-east-1").await;
    let w = world::build(&config, &WorldSpec::default()).await;
    world::add_pod_interfaces(&config, &w, &cluster.pod_addresses).await;
    let endpoint = world::endpoint_address(&config, &w.vpce, Ipv4Addr::new(10, 0, 1, 248)).await;
    let api = HealthyApi::start(&cluster, &ns, world::API_ID, endpoint, "test-ca").await;
    api.share_ca(&cluster, &open_ns, "test-ca").await;
    let env: Vec<(String, String)> = moto.env().into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    let options = OperatorOptions { env, ..Default::default() };
    let _operator = OperatorProcess::start(Path::new(OPERATOR), &cluster, &ns, &options);
    let _open_operator = OperatorProcess::start(Path::new(OPERATOR), &cluster, &open_ns, &options);
    let spec = |workload: bool| {
        let mut s = serde_json::json!({
            "endpoint": {"vpcEndpointId": w.vpce},
            "timeoutSeconds": 4,
            "intervalSeconds": 3600,
            "aws": {"inspect": true},
            "probe": {"caBundle": {"configMap": "test-ca", "key": "ca.crt"}}
        });
        if workload {
            s["probe"]["workloadRef"] = serde_json::json!({"kind": "Deployment", "name": "orders"});
        }
        s
    };

    // As the workload: watch the pod while it runs, then read the result.
    let as_workload = check(&ns, "as-workload", world::API_ID, spec(true));
    let watch = {
        let client = client.clone();
        let ns = ns.clone();
        tokio::spawn(async move { watch_probe_pod(client, &ns, "as-workload").await })
    };
    let done = apply_and_wait(&cluster, &as_workload, "a result", |c| new_result_since(c, None)).await;
    let seen = watch.await.expect("the watch task");
    let status = done.status.clone().unwrap_or_default();
    assert_eq!(status.root_cause, Some(RootCause::NetworkPolicyBlocked), "{:?}", status.summary);
    assert!(status.summary.clone().unwrap_or_default().contains("default-deny-egress"), "{:?}", status.summary);
    let pod = seen.pod.expect("the workload-identity probe pod was seen running");
    assert_eq!(pod.labels().get("app").map(String::as_str), Some("orders"), "{:?}", pod.labels());
    assert_eq!(pod.labels().get("tier").map(String::as_str), Some("web"));
    let owners = pod.owner_references();
    assert_eq!(owners.len(), 1, "{owners:?}");
    assert_eq!((owners[0].kind.as_str(), owners[0].controller), ("PrivateApiConnectivityCheck", Some(true)));
    assert!(seen.slice_polls > 0, "the EndpointSlices were read while the probe pod ran");
    assert!(seen.ready_endpoint.is_none(), "the probe pod was a ready endpoint: {:?}", seen.ready_endpoint);
    assert!(seen.listed_not_ready, "the probe pod never appeared in the Service's EndpointSlice (as not ready)");
    let replica_sets =
        Api::<ReplicaSet>::namespaced(client.clone(), &ns).list(&ListParams::default()).await.expect("rs");
    for rs in replica_sets.items {
        let replicas = rs.status.as_ref().map_or(0, |s| s.replicas);
        assert!(replicas <= 1, "{} counts {replicas} pods: it adopted the probe", rs.name_any());
    }
    let report = status.report.clone().unwrap_or_default();
    let manifest = report["diagnosis"]["fixes"][0]["manifest"].as_str().unwrap_or_default().to_owned();
    assert!(manifest.contains(&format!("{endpoint}/32")), "the fix opens the endpoint's address: {manifest}");

    // Another namespace, no policies, the probe's own identity: healthy.
    let own = check(&open_ns, "own-identity", world::API_ID, spec(false));
    let done = apply_and_wait(&cluster, &own, "a result", |c| new_result_since(c, None)).await;
    let status = done.status.clone().unwrap_or_default();
    assert_eq!(status.root_cause, Some(RootCause::Healthy), "{:?}", status.summary);

    // Apply exactly the suggested policy: the workload's path is open, the check is healthy.
    let suggested: NetworkPolicy = yaml(&manifest);
    policies.create(&PostParams::default(), &suggested).await.expect("apply the suggested policy");
    let checks: Api<PrivateApiConnectivityCheck> = Api::namespaced(client.clone(), &ns);
    let healthy =
        |c: &PrivateApiConnectivityCheck| c.status.as_ref().and_then(|s| s.root_cause) == Some(RootCause::Healthy);
    // The enforcer decides from its informers' view of the policies: up to three runs to see it.
    let (after, runs) = rerun_until(&checks, &ns, "as-workload", 3, healthy).await;
    let status = after.status.clone().unwrap_or_default();
    assert_eq!(status.root_cause, Some(RootCause::Healthy), "after {runs} runs: {:?}", status.summary);
    eprintln!("healthy after applying the suggested policy: run {runs}");
}

#[derive(Default)]
struct Seen {
    pod: Option<Pod>,
    slice_polls: usize,
    ready_endpoint: Option<String>,
    /// The probe pod was listed in the Service's EndpointSlice, not ready: the slice controller
    /// saw it (it matches the selector) and the readiness gate kept it out.
    listed_not_ready: bool,
}

/// Polls the check's probe pod and the Service's EndpointSlices until the pod is gone.
async fn watch_probe_pod(client: kube::Client, ns: &str, check: &str) -> Seen {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let slices: Api<EndpointSlice> = Api::namespaced(client, ns);
    let by_check = ListParams::default().labels(&format!("pvtapi.io/check={check}"));
    let of_service = ListParams::default().labels("kubernetes.io/service-name=orders");
    let mut seen = Seen::default();
    for _ in 0..600 {
        let running = pods
            .list(&by_check)
            .await
            .map(|l| l.items)
            .unwrap_or_default()
            .into_iter()
            .find(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"));
        match (&running, &seen.pod) {
            (Some(p), _) => {
                let name = p.name_any();
                for s in slices.list(&of_service).await.map(|l| l.items).unwrap_or_default() {
                    for e in s.endpoints.iter().flatten() {
                        let is_probe = e.target_ref.as_ref().and_then(|t| t.name.as_deref()) == Some(name.as_str());
                        let ready = e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(false);
                        let serving = e.conditions.as_ref().and_then(|c| c.serving).unwrap_or(false);
                        if is_probe && (ready || serving) {
                            seen.ready_endpoint = Some(format!("{name} in {}: {:?}", s.name_any(), e.conditions));
                        } else if is_probe {
                            seen.listed_not_ready = true;
                        }
                    }
                }
                seen.slice_polls += 1;
                seen.pod = Some(p.clone());
            }
            (None, Some(_)) => return seen,
            (None, None) => {}
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    seen
}

//! Faults around the operator on the real node: AWS failing (500s, throttling, dropped
//! connections), the probe OOM-killed, the operator killed mid-run, the apiserver restarting
//! mid-run (every watch drops), the DNS server down. After each: the conditions say what
//! happened, they recover when the fault ends, no probe pod is left, no run is duplicated and
//! nothing stays `Reconciling`.
//!
//! The apiserver restart and the DNS outage hit the whole cluster, so those two tests hold the
//! write side of [`DISRUPTIVE`]; the others hold the read side. (Other test binaries never run
//! at the same time as this one: cargo runs test binaries one after another.)

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use kube::api::Api;
use pvtapi_crds::{PrivateApiConnectivityCheck, RootCause, conditions};
use pvtapi_testkit::cluster::{Cluster, ClusterDns};
use pvtapi_testkit::faults::{AwsFault, FaultProxy};
use pvtapi_testkit::moto::Moto;
use pvtapi_testkit::operator::{
    HealthyApi, OperatorOptions, OperatorProcess, apply_and_wait, assert_no_probe_pods_left, check, condition,
    new_result_since, root_cause_is, run_now, running_probe_pod, wait_check,
};
use pvtapi_testkit::world::{self, WorldSpec};
use tokio::sync::RwLock;

const OPERATOR: &str = env!("CARGO_BIN_EXE_pvtapi-operator");
/// Cluster-wide faults take the write side; the rest the read side.
static DISRUPTIVE: RwLock<()> = RwLock::const_new(());

fn operator(cluster: &Cluster, ns: &str, env: Vec<(String, String)>) -> OperatorProcess {
    OperatorProcess::start(Path::new(OPERATOR), cluster, ns, &OperatorOptions { env, ..Default::default() })
}

/// A check whose API host resolves to an endpoint-subnet address the host drops: each run lasts
/// its timeout and ends in a real connect timeout.
async fn slow_check(cluster: &Cluster, ns: &str, api_id: &str, blackhole: Ipv4Addr) -> ClusterDns {
    let host = format!("{api_id}.execute-api.us-east-1.amazonaws.com");
    let dns = cluster.dns(&[(host.as_str(), IpAddr::V4(blackhole))]);
    let c = check(ns, "orders", api_id, serde_json::json!({"timeoutSeconds": 8, "intervalSeconds": 3600}));
    let api: Api<PrivateApiConnectivityCheck> = Api::namespaced(cluster.admin(), ns);
    api.patch("orders", &kube::api::PatchParams::apply("pvtapi-tests"), &kube::api::Patch::Apply(&c))
        .await
        .expect("apply check");
    dns
}

fn settled(check: &PrivateApiConnectivityCheck) -> Result<(), String> {
    let reconciling = condition(check, conditions::RECONCILING).map(|c| c.status.clone());
    let ready = condition(check, conditions::READY).map(|c| c.status.clone());
    if reconciling.as_deref() == Some("True") {
        return Err(format!("still Reconciling: {:?}", condition(check, conditions::RECONCILING)));
    }
    if ready.as_deref() != Some("True") {
        return Err(format!("not Ready: {:?}", condition(check, conditions::READY)));
    }
    Ok(())
}

#[tokio::test]
async fn aws_failing_is_a_named_gap_and_the_diagnosis_recovers_with_aws() {
    let _shared = DISRUPTIVE.read().await;
    let cluster = Cluster::from_env().await;
    cluster.control_plane().install_crd().await;
    let ns = cluster.namespace("fault-aws", Some("restricted")).await;

    // The article's security-group case: the endpoint's group lacks 443 from the client.
    let moto = Moto::start();
    let config = moto.sdk_config("us-east-1").await;
    let spec = WorldSpec { endpoint_allows_443_from_client: false, ..Default::default() };
    let w = world::build(&config, &spec).await;
    world::add_pod_interfaces(&config, &w, &cluster.pod_addresses).await;
    let blackhole = Ipv4Addr::new(10, 0, 1, 241);
    let host = format!("{}.execute-api.us-east-1.amazonaws.com", world::API_ID);
    let _dns = cluster.dns(&[(host.as_str(), IpAddr::V4(blackhole))]);

    let proxy = FaultProxy::start(moto.addr()).await;
    proxy.set(AwsFault::ServerError);
    let env: Vec<(String, String)> = moto
        .env()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), if k == "AWS_ENDPOINT_URL" { proxy.url() } else { v }))
        .collect();
    // Facts are reused for 1 s only, so each round's run reads AWS through the proxy again.
    let options = OperatorOptions { env, args: vec!["--aws-cache-ttl-seconds=1".into()], ..Default::default() };
    let _operator = OperatorProcess::start(Path::new(OPERATOR), &cluster, &ns, &options);
    let c = check(
        &ns,
        "orders",
        world::API_ID,
        serde_json::json!({
            "endpoint": {"vpcEndpointId": w.vpce},
            "timeoutSeconds": 1,
            "intervalSeconds": 3600,
            "aws": {"inspect": true}
        }),
    );
    let api: Api<PrivateApiConnectivityCheck> = Api::namespaced(cluster.admin(), &ns);
    let mut last = apply_and_wait(&cluster, &c, "a result while AWS answers 500", |c| new_result_since(c, None)).await;

    for (round, fault, words) in [
        (1, AwsFault::ServerError, &["500", "internal"][..]),
        (2, AwsFault::None, &[][..]),
        (3, AwsFault::Throttle, &["throttl"][..]),
        (4, AwsFault::Drop, &["dispatch", "connection", "closed", "io"][..]),
        (5, AwsFault::None, &[][..]),
    ] {
        if round > 1 {
            proxy.set(fault);
            let before = last.status.as_ref().and_then(|s| s.last_run_id.clone());
            run_now(&api, "orders", &format!("round-{round}")).await;
            last = wait_check(&api, &ns, "orders", &format!("round {round} ({fault:?})"), |c| {
                new_result_since(c, before.as_deref())
            })
            .await;
        }
        let status = last.status.clone().unwrap_or_default();
        let root = status.root_cause.expect("root cause");
        let inspected = condition(&last, conditions::AWS_INSPECTED).cloned().expect("AwsInspected");
        if fault == AwsFault::None {
            assert_eq!(root, RootCause::SecurityGroupBlocked, "round {round}: with AWS back: {:?}", status.summary);
            assert_eq!(inspected.status, "True", "round {round}: {inspected:?}");
        } else {
            // Without facts the timeout cannot be pinned on a security group; it must not be
            // called healthy, and the gap must say why.
            assert_ne!(root, RootCause::Healthy, "round {round}");
            assert_eq!(inspected.status, "False", "round {round} ({fault:?}): {inspected:?}");
            let msg = inspected.message.to_ascii_lowercase();
            assert!(words.iter().any(|w| msg.contains(w)), "round {round} ({fault:?}): {words:?} in {msg}");
            let stalled = condition(&last, conditions::STALLED).map(|c| c.status.clone());
            assert_ne!(stalled.as_deref(), Some("True"), "a transient AWS failure is not Stalled");
        }
        settled(&last).unwrap_or_else(|e| panic!("round {round}: {e}"));
    }
    assert!(proxy.faulted() > 0, "the proxy failed calls");
    assert_no_probe_pods_left(&cluster, &ns).await;
}

#[tokio::test]
async fn an_oom_killed_probe_is_a_probe_failure_naming_it() {
    let _shared = DISRUPTIVE.read().await;
    let cluster = Cluster::from_env().await;
    cluster.control_plane().install_crd().await;
    let ns = cluster.namespace("fault-oom", Some("restricted")).await;
    let _operator = operator(&cluster, &ns, Vec::new());
    // The probe container is the "hog" image (allocates 64 MiB whatever its args) under 16 MiB:
    // the kernel kills it once it runs, every time. (The real probe under a tight limit is
    // killed either while running, OOMKilled, or during runc's init, StartError: not a fixture.)
    let c = check(
        &ns,
        "orders",
        "zzzzz99990",
        serde_json::json!({"probe": {
            "image": cluster.hog_image,
            "resources": {"limits": {"memory": "16Mi", "cpu": "200m"}, "requests": {"memory": "16Mi", "cpu": "10m"}}
        }}),
    );
    let done = apply_and_wait(&cluster, &c, "ProbeFailed", |c| root_cause_is(c, RootCause::ProbeFailed)).await;
    let reachable = condition(&done, conditions::REACHABLE).expect("Reachable");
    assert_eq!((reachable.status.as_str(), reachable.reason.as_str()), ("Unknown", "ProbeFailed"));
    assert!(reachable.message.contains("OOMKilled"), "the kernel's OOM kill is named: {}", reachable.message);
    settled(&done).unwrap_or_else(|e| panic!("{e}"));
    // The failed pod is kept for `kubectl describe` (one per check), nothing else.
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(cluster.admin(), &ns);
    let kept =
        pods.list(&kube::api::ListParams::default().labels("app.kubernetes.io/component=probe")).await.expect("pods");
    assert!(kept.items.len() <= 1, "at most the last failed probe pod is kept: {}", kept.items.len());
}

#[tokio::test]
async fn an_operator_killed_mid_run_is_replaced_and_its_successor_finishes_that_run() {
    let _shared = DISRUPTIVE.read().await;
    let cluster = Cluster::from_env().await;
    cluster.control_plane().install_crd().await;
    let ns = cluster.namespace("fault-opkill", Some("restricted")).await;
    let mut first = operator(&cluster, &ns, Vec::new());
    let _dns = slow_check(&cluster, &ns, "zzzzz99989", Ipv4Addr::new(10, 0, 1, 242)).await;
    let pod = running_probe_pod(&cluster, &ns).await;
    let run = pod.metadata.labels.as_ref().and_then(|l| l.get("pvtapi.io/run").cloned()).expect("run label");
    first.kill(); // SIGKILL mid-run: no clean-up, the pod keeps running
    let _second = operator(&cluster, &ns, Vec::new());
    let api: Api<PrivateApiConnectivityCheck> = Api::namespaced(cluster.admin(), &ns);
    let done = wait_check(&api, &ns, "orders", "the adopted run's result", |c| new_result_since(c, None)).await;
    let status = done.status.clone().unwrap_or_default();
    assert_eq!(status.root_cause, Some(RootCause::ConnectTimeout), "{:?}", status.summary);
    assert_eq!(status.last_run_id.as_deref(), Some(run.as_str()), "the successor adopted the in-flight run");
    assert_eq!(status.history.len(), 1, "one run, not two: {:?}", status.history);
    settled(&done).unwrap_or_else(|e| panic!("{e}"));
    assert_no_probe_pods_left(&cluster, &ns).await;
}

#[tokio::test]
async fn the_apiserver_restarting_mid_run_loses_no_result_and_leaves_no_pod() {
    let _alone = DISRUPTIVE.write().await;
    let cluster = Cluster::from_env().await;
    cluster.control_plane().install_crd().await;
    let ns = cluster.namespace("fault-apiserver", Some("restricted")).await;
    let _operator = operator(&cluster, &ns, Vec::new());
    let _dns = slow_check(&cluster, &ns, "zzzzz99988", Ipv4Addr::new(10, 0, 1, 243)).await;
    let pod = running_probe_pod(&cluster, &ns).await;
    let run = pod.metadata.labels.as_ref().and_then(|l| l.get("pvtapi.io/run").cloned()).expect("run label");

    // Every watch and request breaks; the same apiserver comes back ~8 s later.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/substrate/cluster.sh");
    let out = tokio::process::Command::new("bash")
        .arg(&script)
        .arg("restart-apiserver")
        .output()
        .await
        .expect("run cluster.sh restart-apiserver");
    assert!(out.status.success(), "restart-apiserver: {}", String::from_utf8_lossy(&out.stderr));

    let api: Api<PrivateApiConnectivityCheck> = Api::namespaced(cluster.admin(), &ns);
    let done =
        wait_check(&api, &ns, "orders", "the run's result after the restart", |c| new_result_since(c, None)).await;
    let status = done.status.clone().unwrap_or_default();
    assert_eq!(status.root_cause, Some(RootCause::ConnectTimeout), "{:?}", status.summary);
    assert_eq!(status.last_run_id.as_deref(), Some(run.as_str()));
    assert_eq!(status.history.len(), 1, "no duplicate run: {:?}", status.history);
    settled(&done).unwrap_or_else(|e| panic!("{e}"));

    // The watches came back: a check created after the restart is reconciled.
    let second = check(&ns, "payments", "zzzzz99987", serde_json::json!({}));
    let second =
        apply_and_wait(&cluster, &second, "a new check after the restart", |c| new_result_since(c, None)).await;
    assert_eq!(second.status.and_then(|s| s.root_cause), Some(RootCause::DnsResolutionFailed));
    assert_no_probe_pods_left(&cluster, &ns).await;
}

/// Sends SIGSTOP to the cluster's dnsmasq; SIGCONT on drop (also when the test panics).
struct DnsPaused(String);

impl DnsPaused {
    fn pause() -> DnsPaused {
        let state = std::env::var("PVTAPI_CLUSTER_STATE").expect("PVTAPI_CLUSTER_STATE");
        let pid = std::fs::read_to_string(Path::new(&state).join("pid/dnsmasq.pid")).expect("dnsmasq pid");
        let pid = pid.trim().to_owned();
        let ok = std::process::Command::new("kill").args(["-STOP", &pid]).status().expect("kill -STOP");
        assert!(ok.success(), "SIGSTOP dnsmasq {pid}");
        DnsPaused(pid)
    }
}

impl Drop for DnsPaused {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill").args(["-CONT", &self.0]).status();
    }
}

#[tokio::test]
async fn the_dns_server_down_is_a_dns_failure_and_the_next_run_after_it_is_healthy() {
    let _alone = DISRUPTIVE.write().await;
    let cluster = Cluster::from_env().await;
    cluster.control_plane().install_crd().await;
    let ns = cluster.namespace("fault-dns", Some("restricted")).await;

    // A healthy world without AWS: the front end on an endpoint address, its CA in a ConfigMap.
    let api_id = "zzzzz99986";
    let _api = HealthyApi::start(&cluster, &ns, api_id, Ipv4Addr::new(10, 0, 1, 244), "ca").await;
    let _operator = operator(&cluster, &ns, Vec::new());
    let c = check(
        &ns,
        "orders",
        api_id,
        serde_json::json!({"intervalSeconds": 3600, "probe": {"caBundle": {"configMap": "ca"}}}),
    );
    let healthy = apply_and_wait(&cluster, &c, "Healthy", |c| new_result_since(c, None)).await;
    assert_eq!(healthy.status.as_ref().and_then(|s| s.root_cause), Some(RootCause::Healthy), "{:?}", healthy.status);

    let api: Api<PrivateApiConnectivityCheck> = Api::namespaced(cluster.admin(), &ns);
    let before = healthy.status.as_ref().and_then(|s| s.last_run_id.clone());
    let paused = DnsPaused::pause();
    run_now(&api, "orders", "dns-down").await;
    let down =
        wait_check(&api, &ns, "orders", "a result with DNS down", |c| new_result_since(c, before.as_deref())).await;
    drop(paused);
    let status = down.status.clone().unwrap_or_default();
    assert_eq!(status.root_cause, Some(RootCause::DnsResolutionFailed), "{:?}", status.summary);
    let dns = condition(&down, conditions::DNS_RESOLVED).expect("DnsResolved");
    assert_eq!(dns.status, "False", "{dns:?}");
    settled(&down).unwrap_or_else(|e| panic!("{e}"));

    let before = status.last_run_id.clone();
    run_now(&api, "orders", "dns-back").await;
    let back = wait_check(&api, &ns, "orders", "Healthy again", |c| new_result_since(c, before.as_deref())).await;
    let status = back.status.clone().unwrap_or_default();
    assert_eq!(status.root_cause, Some(RootCause::Healthy), "{:?}", status.summary);
    assert!(status.failing_since.is_none(), "the failure ended");
    let events = cluster.events(&ns, "orders").await;
    assert!(events.contains("DnsResolutionFailed") && events.contains("Healthy"), "both transitions: {events}");
    settled(&back).unwrap_or_else(|e| panic!("{e}"));
}

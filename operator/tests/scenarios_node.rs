//! The scenario files of `tests/scenarios/`, through the operator on the local cluster: the
//! second runner of the same files (the first is `check --local`, `plugin/tests/scenarios.rs`).
//!
//! Each scenario: a moto world (policies, groups, the API), an ENI in moto for every address a pod
//! may get, the TLS front end on an endpoint address of the bridge at port 443 (or an address the
//! host drops), records on the cluster's dnsmasq, the front end's CA in a ConfigMap, one operator
//! process and one check in a Pod Security `restricted` namespace. The probe pod runs on the real
//! node; the operator reads moto and writes the status. The judge is the same as `check --local`'s.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use k8s_openapi::api::core::v1::{ConfigMap, Event};
use kube::api::{Api, ListParams, PostParams};
use pvtapi_crds::{PrivateApiConnectivityCheck, conditions};
use pvtapi_testkit::apigw::{FrontEnd, Reply, TestCa, default_names, requires_api_identity};
use pvtapi_testkit::cluster::Cluster;
use pvtapi_testkit::moto::Moto;
use pvtapi_testkit::operator::{OperatorOptions, OperatorProcess, apply_and_wait, condition};
use pvtapi_testkit::scenario::{self, API_HOST, ApiHost, Scenario};
use pvtapi_testkit::world::{self, API_ID};

const OPERATOR: &str = env!("CARGO_BIN_EXE_pvtapi-operator");
/// The front end's address: an endpoint ENI address in the endpoint subnet, on the bridge.
/// (`node.rs` takes 10.0.1.10–209, the deleted-pod test 10.0.1.251.)
const FRONT_END_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 230);
/// An endpoint-subnet address nobody holds: the host's blackhole route drops what pods send.
const BLACKHOLE_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 231);
/// A documentation address standing for the API's public address (private DNS off). Pods have
/// no route to it: the dial fails on the node.
const PUBLIC_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
const CA_CONFIGMAP: &str = "front-end-ca";

/// What a scenario's check spec looks like, or why a check cannot express it.
fn check_spec(s: &Scenario, vpce: &str) -> Result<serde_json::Value, String> {
    let access = match (&s.invoke_url, &s.check_access) {
        (None, _) => "privateDns".to_owned(),
        (Some(_), Some(mode)) => mode.clone(),
        (Some(url), None) => {
            return Err(format!("the workload's own URL {url} with headers {:?}", s.headers));
        }
    };
    let mut aws = serde_json::json!({"inspect": s.api_host != ApiHost::Public});
    if let Some(account) = s.api_account.as_deref().filter(|_| s.read_api_with_role) {
        aws["apiRoleArn"] = scenario::role_in(account).into();
    }
    let mut endpoint = serde_json::json!({"vpcEndpointId": vpce});
    if let Some(region) = &s.endpoint_region {
        endpoint["region"] = region.clone().into();
    }
    Ok(serde_json::json!({
        "api": {"id": API_ID, "region": "us-east-1", "stage": s.check_stage, "path": s.check_path},
        "endpoint": endpoint,
        "access": access,
        "timeoutSeconds": 1,
        "intervalSeconds": 3600,
        "aws": aws,
        "probe": {"caBundle": {"configMap": CA_CONFIGMAP}}
    }))
}

/// Runs one scenario through the operator; `Ok(None)` when it is not expressible as a check.
async fn run_on_node(cluster: &Cluster, path: &Path) -> Result<Option<String>, String> {
    let s = scenario::load(path)?;
    let placeholder_vpce = "vpce-0123456789abcdef0";
    if let Err(why) = check_spec(&s, placeholder_vpce) {
        return Ok(Some(format!("{}: {why}", s.name)));
    }
    let ns = cluster.namespace("scenario", Some("restricted")).await;
    let ca = TestCa::new();

    // The AWS world (none when the API is public: the check then runs without AWS).
    let moto = (s.api_host != ApiHost::Public).then(Moto::start);
    let (vpce, moto_names) = match &moto {
        Some(moto) => {
            let (w, network) = scenario::aws_world(moto, &s).await;
            world::add_pod_interfaces(&network, &w, &cluster.pod_addresses).await;
            let names = world::endpoint_dns_names(&network, &w.vpce).await;
            (w.vpce, names)
        }
        None => (placeholder_vpce.to_owned(), Vec::new()),
    };
    let vpce_host = scenario::vpce_host(&vpce);

    // Where the names lead, and who answers there.
    let api_ips = match s.api_host {
        ApiHost::FrontEnd => vec![FRONT_END_IP],
        ApiHost::Blackhole => vec![BLACKHOLE_IP],
        ApiHost::Public => vec![PUBLIC_IP],
        ApiHost::Partial => vec![FRONT_END_IP, BLACKHOLE_IP],
    };
    let mut names = default_names("us-east-1");
    names.extend(moto_names.iter().cloned());
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let reply = match &s.answer {
        Some(a) => Reply::apigw_error(a.status, &a.error_type, &a.key, &a.message),
        None => Reply::ok("{}"),
    };
    let _front = FrontEnd::for_names_at(
        &ca,
        &names,
        SocketAddr::from((FRONT_END_IP, 443)),
        requires_api_identity(API_ID, reply),
    )
    .await;
    let mut records: Vec<(&str, IpAddr)> = Vec::new();
    for ip in &api_ips {
        records.push((API_HOST, (*ip).into()));
        records.push((vpce_host.as_str(), (*ip).into()));
        records.extend(moto_names.iter().map(|n| (n.as_str(), IpAddr::from(*ip))));
    }
    let _dns = cluster.dns(&records);

    let cms: Api<ConfigMap> = Api::namespaced(cluster.admin(), &ns);
    let pem = std::fs::read_to_string(ca.bundle_path()).map_err(|e| format!("read the CA: {e}"))?;
    let cm = ConfigMap {
        metadata: kube::api::ObjectMeta { name: Some(CA_CONFIGMAP.into()), ..Default::default() },
        data: Some([("ca.crt".to_owned(), pem)].into()),
        ..Default::default()
    };
    cms.create(&PostParams::default(), &cm).await.map_err(|e| format!("create the CA ConfigMap: {e}"))?;

    let env = moto.as_ref().map(|m| m.env().into_iter().map(|(k, v)| (k.to_owned(), v)).collect()).unwrap_or_default();
    let _operator =
        OperatorProcess::start(Path::new(OPERATOR), cluster, &ns, &OperatorOptions { env, ..Default::default() });
    let spec = check_spec(&s, &vpce)?;
    let check: PrivateApiConnectivityCheck = serde_json::from_value(serde_json::json!({
        "apiVersion": "pvtapi.io/v1alpha1",
        "kind": "PrivateApiConnectivityCheck",
        "metadata": {"name": "scenario", "namespace": ns},
        "spec": spec
    }))
    .map_err(|e| format!("check spec: {e}"))?;
    let done = apply_and_wait(cluster, &check, "a result", |c| {
        c.status.as_ref().is_some_and(|s| s.root_cause.is_some() && s.report.is_some())
    })
    .await;
    let status = done.status.clone().unwrap_or_default();
    let report = status.report.clone().unwrap_or_default();
    let mut problems = s.judge(&report, &vpce, &vpce_host, false);

    // The status around the report says the same thing.
    let code = report["diagnosis"]["rootCause"].as_str().unwrap_or_default().to_owned();
    if status.root_cause.map(|c| c.code()) != Some(code.as_str()) {
        problems.push(format!("status.rootCause {:?} but the report says {code}", status.root_cause));
    }
    if status.summary.as_deref() != report["diagnosis"]["summary"].as_str() {
        problems.push(format!("status.summary {:?} differs from the report's", status.summary));
    }
    match condition(&done, conditions::REACHABLE) {
        Some(c) => {
            let want = if code == "Healthy" { "True" } else { "False" };
            if (c.status.as_str(), c.reason.as_str()) != (want, code.as_str()) {
                problems.push(format!("Reachable is {}/{}, expected {want}/{code}", c.status, c.reason));
            }
        }
        None => problems.push("no Reachable condition".into()),
    }
    if condition(&done, conditions::READY).map(|c| c.status.as_str()) != Some("True") {
        problems.push(format!("Ready is not True: {:?}", condition(&done, conditions::READY)));
    }
    // The transition event (no result → this one) names the root cause.
    let events: Api<Event> = Api::namespaced(cluster.admin(), &ns);
    let mut found = false;
    for _ in 0..50 {
        let list = events.list(&ListParams::default()).await.map_err(|e| format!("list events: {e}"))?;
        if list.items.iter().any(|e| e.reason.as_deref() == Some(code.as_str())) {
            found = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    if !found {
        problems.push(format!("no event with reason {code}"));
    }
    if problems.is_empty() {
        Ok(None)
    } else {
        Err(format!("{} ({}) through the operator:\n  {}", s.name, path.display(), problems.join("\n  ")))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_yields_its_root_cause_through_the_operator_on_the_node() {
    let cluster = Cluster::from_env().await;
    cluster.control_plane().install_crd().await;
    let _front_end_address = cluster.local_address(FRONT_END_IP);
    let files = scenario::files();
    let mut failures = Vec::new();
    let mut not_expressible = Vec::new();
    for f in &files {
        match run_on_node(&cluster, f).await {
            Ok(Some(why)) => not_expressible.push(why),
            Ok(None) => {}
            Err(e) => failures.push(e),
        }
    }
    println!("not expressible as a check (run by check --local only):\n  {}", not_expressible.join("\n  "));
    assert!(
        failures.is_empty(),
        "{} of {} scenarios failed through the operator:\n{}",
        failures.len(),
        files.len() - not_expressible.len(),
        failures.join("\n")
    );
    // Only a workload's own wrong URL may be out of a check's reach.
    assert!(not_expressible.len() <= 2, "too many scenarios skipped: {not_expressible:#?}");
}

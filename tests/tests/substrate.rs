//! Smoke tests of the real test substrate: every peer the later suites stand on answers as the
//! product will meet it — the apiserver enforces our CRD's validation, moto speaks the AWS APIs
//! through the Rust SDK, dnsmasq answers hickory, and namespaces give real timeouts and refusals.

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::rbac::v1::PolicyRule;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams};
use pvtapi_crds::PrivateApiConnectivityCheck;
use pvtapi_testkit::control_plane::{ControlPlane, FIELD_MANAGER};
use pvtapi_testkit::dns::{DnsServer, Record, Zone};
use pvtapi_testkit::moto::Moto;
use pvtapi_testkit::netns::NetNs;
use serde_json::{Value, json};

fn check_resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk("pvtapi.io", "v1alpha1", "PrivateApiConnectivityCheck"))
}

fn sample() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../crds/samples/privateapiconnectivitycheck.yaml"
    ))
    .expect("read sample");
    serde_norway::from_str(&text).expect("parse sample")
}

/// Applies `obj` with server-side apply and strict field validation, as `kubectl apply --server-side` does.
async fn apply(api: &Api<DynamicObject>, obj: &Value) -> Result<DynamicObject, kube::Error> {
    let name = obj["metadata"]["name"].as_str().expect("name");
    api.patch(name, &PatchParams::apply(FIELD_MANAGER).force().validation_strict(), &Patch::Apply(obj)).await
}

#[tokio::test]
async fn admin_lists_namespaces() {
    let cp = ControlPlane::from_env().await;
    let names: Vec<String> = Api::<Namespace>::all(cp.admin())
        .list(&ListParams::default())
        .await
        .expect("list namespaces")
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert!(names.contains(&"default".to_owned()) && names.contains(&"kube-system".to_owned()), "{names:?}");
}

#[tokio::test]
async fn crd_accepts_the_sample_and_applies_defaults() {
    let cp = ControlPlane::from_env().await;
    cp.install_crd().await;
    let ns = cp.namespace("payments").await;
    let api: Api<DynamicObject> = Api::namespaced_with(cp.admin(), &ns, &check_resource());
    let created = apply(&api, &sample()).await.expect("the sample is valid");
    let spec = &created.data["spec"];
    assert_eq!(spec["api"]["method"], "GET");
    assert_eq!(spec["api"]["expectedStatuses"], json!([200]));
    assert_eq!(spec["access"], "auto");
    assert_eq!(spec["timeoutSeconds"], 5);
    assert_eq!(spec["intervalSeconds"], 120);
    assert_eq!(spec["aws"]["inspect"], true);

    // The typed API reads it back with the same defaults.
    let typed: Api<PrivateApiConnectivityCheck> = Api::namespaced(cp.admin(), &ns);
    let check = typed.get("orders-api").await.expect("typed get");
    assert_eq!(check.spec.api.path, "/health");
    assert_eq!(check.spec.endpoint.vpc_endpoint_id, "vpce-0123456789abcdef0");
}

#[tokio::test]
async fn crd_rejects_invalid_specs_naming_the_field() {
    let cp = ControlPlane::from_env().await;
    cp.install_crd().await;
    let ns = cp.namespace("pvtapi-invalid").await;
    let api: Api<DynamicObject> = Api::namespaced_with(cp.admin(), &ns, &check_resource());

    // (case, JSON pointer to set in the sample's spec (None value = remove), expected text in the error)
    let cases: Vec<(&str, &str, Option<Value>, &str)> = vec![
        ("id too short", "/api/id", Some(json!("abc")), "spec.api.id"),
        ("id uppercase", "/api/id", Some(json!("ABCDE12345")), "spec.api.id"),
        ("region without dashes", "/api/region", Some(json!("useast1")), "spec.api.region"),
        ("region uppercase", "/api/region", Some(json!("US-EAST-1")), "spec.api.region"),
        ("stage missing", "/api/stage", None, "spec.api.stage: Required value"),
        ("stage with space", "/api/stage", Some(json!("pr od")), "spec.api.stage"),
        ("path without slash", "/api/path", Some(json!("health")), "spec.api.path"),
        ("path with query", "/api/path", Some(json!("/health?x=1")), "spec.api.path"),
        ("unknown method", "/api/method", Some(json!("FETCH")), "spec.api.method: Unsupported value"),
        ("status below 100", "/api/expectedStatuses", Some(json!([99])), "spec.api.expectedStatuses[0]"),
        ("status above 599", "/api/expectedStatuses", Some(json!([200, 600])), "spec.api.expectedStatuses[1]"),
        ("no statuses", "/api/expectedStatuses", Some(json!([])), "spec.api.expectedStatuses"),
        ("account id short", "/api/accountId", Some(json!("12345")), "spec.api.accountId"),
        (
            "vpc id instead of vpce",
            "/endpoint/vpcEndpointId",
            Some(json!("vpc-0123456789abcdef0")),
            "spec.endpoint.vpcEndpointId",
        ),
        ("vpce too short", "/endpoint/vpcEndpointId", Some(json!("vpce-1234")), "spec.endpoint.vpcEndpointId"),
        (
            "vpce uppercase hex",
            "/endpoint/vpcEndpointId",
            Some(json!("vpce-0ABCDEF1234")),
            "spec.endpoint.vpcEndpointId",
        ),
        ("endpoint missing", "/endpoint", None, "spec.endpoint: Required value"),
        ("interval below 30", "/intervalSeconds", Some(json!(10)), "spec.intervalSeconds"),
        ("timeout zero", "/timeoutSeconds", Some(json!(0)), "spec.timeoutSeconds"),
        ("timeout above 60", "/timeoutSeconds", Some(json!(61)), "spec.timeoutSeconds"),
        ("unknown access mode", "/access", Some(json!("magic")), "spec.access: Unsupported value"),
        (
            "customDomain without domainName",
            "/access",
            Some(json!("customDomain")),
            "domainName is required when access is customDomain",
        ),
        ("bad domainName", "/domainName", Some(json!("not a domain")), "spec.domainName"),
        ("bad role arn", "/aws/apiRoleArn", Some(json!("not-an-arn")), "spec.aws.apiRoleArn"),
        // Server-side apply answers unknown fields with HTTP 500 (a kube-apiserver quirk), naming the field.
        ("unknown spec field", "/colour", Some(json!("blue")), ".spec.colour: field not declared in schema"),
        ("unknown api field", "/api/foo", Some(json!(1)), ".spec.api.foo: field not declared in schema"),
    ];
    assert!(cases.len() >= 15);

    let mut failures = Vec::new();
    for (i, (case, pointer, value, expected)) in cases.iter().enumerate() {
        let mut obj = sample();
        obj["metadata"]["name"] = json!(format!("invalid-{i}"));
        obj["metadata"]["namespace"] = json!(ns);
        set_pointer(&mut obj["spec"], pointer, value.clone());
        match apply(&api, &obj).await {
            Ok(_) => failures.push(format!("{case}: accepted, expected rejection mentioning {expected:?}")),
            Err(kube::Error::Api(status)) => {
                let ok_code =
                    matches!(status.code, 400 | 422) || (status.code == 500 && expected.contains("not declared"));
                if !ok_code || !status.message.contains(expected) {
                    failures.push(format!(
                        "{case}: HTTP {} {:?}, expected it to mention {expected:?}",
                        status.code, status.message
                    ));
                }
            }
            Err(other) => failures.push(format!("{case}: unexpected error {other}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} invalid specs misbehaved:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn kubectl_strict_validation_rejects_unknown_fields() {
    let cp = ControlPlane::from_env().await;
    cp.install_crd().await;
    let ns = cp.namespace("pvtapi-kubectl").await;
    let kubectl =
        std::path::PathBuf::from(std::env::var("PVTAPI_KUBE_BIN").expect("PVTAPI_KUBE_BIN (set by cluster.sh)"))
            .join("kubectl");
    let mut obj = sample();
    obj["metadata"]["namespace"] = json!(ns);
    obj["spec"]["api"]["colour"] = json!("blue");
    let mut child = std::process::Command::new(&kubectl)
        .args(["--kubeconfig", cp.kubeconfig().to_str().expect("utf-8 path"), "create", "--validate=strict", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {}: {e}", kubectl.display()));
    use std::io::Write as _;
    child.stdin.take().expect("stdin").write_all(obj.to_string().as_bytes()).expect("write manifest");
    let out = child.wait_with_output().expect("kubectl");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "kubectl accepted an unknown field");
    assert!(stderr.contains("unknown field \"spec.api.colour\""), "{stderr}");
}

/// Sets (or with `None`, removes) the value at a JSON pointer, creating objects on the way.
fn set_pointer(root: &mut Value, pointer: &str, value: Option<Value>) {
    let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    let (last, parents) = parts.split_last().expect("non-empty pointer");
    let mut node = root;
    for p in parents {
        node = node.as_object_mut().expect("object").entry(p.to_string()).or_insert_with(|| json!({}));
    }
    let obj = node.as_object_mut().expect("object");
    match value {
        Some(v) => {
            obj.insert(last.to_string(), v);
        }
        None => {
            obj.remove(*last);
        }
    }
}

#[tokio::test]
async fn minted_identity_has_exactly_its_rules() {
    let cp = ControlPlane::from_env().await;
    cp.install_crd().await;
    let ns = cp.namespace("pvtapi-rbac").await;
    let read_checks = PolicyRule {
        api_groups: Some(vec!["pvtapi.io".into()]),
        resources: Some(vec!["privateapiconnectivitychecks".into()]),
        verbs: vec!["get".into(), "list".into(), "watch".into()],
        ..Default::default()
    };
    let client = cp.mint_identity(&ns, "reader", vec![read_checks], vec![]).await;

    let checks: Api<PrivateApiConnectivityCheck> = Api::namespaced(client.clone(), &ns);
    checks.list(&ListParams::default()).await.expect("the identity may list checks in its namespace");

    let other: Api<PrivateApiConnectivityCheck> = Api::namespaced(client.clone(), "default");
    assert_forbidden(other.list(&ListParams::default()).await.map(|_| ()), "list checks in another namespace");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    assert_forbidden(secrets.list(&ListParams::default()).await.map(|_| ()), "list secrets");
    let namespaces: Api<Namespace> = Api::all(client);
    assert_forbidden(namespaces.list(&ListParams::default()).await.map(|_| ()), "list namespaces");
}

fn assert_forbidden(result: Result<(), kube::Error>, what: &str) {
    match result {
        Err(kube::Error::Api(status)) if status.code == 403 => {}
        other => panic!("{what}: expected 403 Forbidden, got {other:?}"),
    }
}

#[tokio::test]
async fn rust_sdk_reaches_moto_for_ec2_and_apigateway() {
    let moto = Moto::start();
    let config = moto.sdk_config("us-east-1").await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let created = ec2.create_vpc().cidr_block("10.42.0.0/16").send().await.expect("CreateVpc");
    let vpc_id = created.vpc().and_then(|v| v.vpc_id()).expect("vpc id").to_owned();
    let vpcs = ec2.describe_vpcs().vpc_ids(&vpc_id).send().await.expect("DescribeVpcs");
    assert_eq!(vpcs.vpcs().len(), 1);
    assert_eq!(vpcs.vpcs()[0].cidr_block(), Some("10.42.0.0/16"));

    let apigw = aws_sdk_apigateway::Client::new(&config);
    apigw
        .create_rest_api()
        .name("orders")
        .tags("_custom_id_", "abcde12345")
        .endpoint_configuration(
            aws_sdk_apigateway::types::EndpointConfiguration::builder()
                .types(aws_sdk_apigateway::types::EndpointType::Private)
                .build(),
        )
        .send()
        .await
        .expect("CreateRestApi");
    let apis = apigw.get_rest_apis().send().await.expect("GetRestApis");
    let ids: Vec<&str> = apis.items().iter().filter_map(|a| a.id()).collect();
    assert_eq!(ids, vec!["abcde12345"]);
    let types = apis.items()[0].endpoint_configuration().map(|e| e.types().to_vec()).unwrap_or_default();
    assert_eq!(types, vec![aws_sdk_apigateway::types::EndpointType::Private]);
}

#[tokio::test]
async fn hickory_resolves_from_the_local_dns_server() {
    let api_host = "abcde12345.execute-api.us-east-1.amazonaws.com";
    let zone = Zone::new()
        .with(Record::addr(api_host, Ipv4Addr::new(127, 0, 0, 11)))
        .with(Record::addr(api_host, Ipv4Addr::new(127, 0, 0, 12)));
    let dns = DnsServer::start(&zone);
    let resolver =
        pvtapi_engine::dns::build_resolver(Some(pvtapi_engine::dns::Nameserver(dns.addr())), Duration::from_secs(2))
            .expect("resolver");
    let mut ips: Vec<std::net::IpAddr> = resolver.lookup_ip(api_host).await.expect("lookup").iter().collect();
    ips.sort();
    assert_eq!(ips, vec![Ipv4Addr::new(127, 0, 0, 11), Ipv4Addr::new(127, 0, 0, 12)]);
    assert!(dns.log().contains(api_host), "dnsmasq logged the query");

    // An alias host of an API not associated with the endpoint: NXDOMAIN from the real server.
    let err = resolver
        .lookup_ip("abcde12345-vpce-0123456789abcdef0.execute-api.us-east-1.amazonaws.com")
        .await
        .expect_err("no such record");
    assert!(err.is_nx_domain(), "expected NXDOMAIN, got {err}");
}

#[test]
fn blackhole_times_out_and_refusing_address_refuses() {
    let ns = NetNs::create();

    let start = Instant::now();
    let err = TcpStream::connect_timeout(&SocketAddr::from((ns.blackhole(), 443)), Duration::from_millis(700))
        .expect_err("blackholed address must not connect");
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    assert!(start.elapsed() >= Duration::from_millis(650), "timed out early: {:?}", start.elapsed());

    let err = TcpStream::connect_timeout(&SocketAddr::from((ns.refusing(), 443)), Duration::from_secs(3))
        .expect_err("nothing listens in the namespace");
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
}

#[test]
fn isolated_namespace_has_no_route_out() {
    let ns = NetNs::isolated();
    let out = ns
        .command("bash")
        .args(["-c", "exec 3<>/dev/tcp/203.0.113.10/443"])
        .output()
        .expect("run bash in the namespace");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unreachable"), "expected 'Network is unreachable', got {stderr}");
}

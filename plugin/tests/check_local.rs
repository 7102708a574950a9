//! `kubectl pvtapi check --local` end to end: the real binary against moto_server (AWS facts),
//! dnsmasq (the API host) and a TLS listener playing API Gateway.

#![allow(clippy::unwrap_used)] // fixture setup: a failed AWS call must abort the test loudly

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::Arc;

use pvtapi_testkit::apigw::{FrontEnd, Reply, SeenRequest, TestCa};
use pvtapi_testkit::dns::{DnsServer, Record, Zone};
use pvtapi_testkit::moto::Moto;
use pvtapi_testkit::world::{self, API_ID as API, WorldSpec};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_kubectl-pvtapi");
const API_HOST: &str = "abcde12345.execute-api.us-east-1.amazonaws.com";
const ANON: &str = "User: anonymous is not authorized to perform: execute-api:Invoke on resource: arn:aws:execute-api:us-east-1:123456789012:abcde12345/prod/GET/health";

/// A private API whose resource policy allows calls only through its own endpoint, or (with
/// `allow_own_endpoint` false) only through another one; returns the endpoint the check uses.
async fn aws_world(moto: &Moto, allow_own_endpoint: bool) -> String {
    let allowed = if allow_own_endpoint { "VPCE" } else { "vpce-0fedcba9876543210" };
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":"*","Action":"execute-api:Invoke","Resource":"execute-api:/*","Condition":{{"StringEquals":{{"aws:SourceVpce":"{allowed}"}}}}}}]}}"#
    );
    let spec = WorldSpec { resource_policy: Some(policy), ..WorldSpec::default() };
    world::build(&moto.sdk_config("us-east-1").await, &spec).await.vpce
}

fn check(
    moto: Option<&Moto>,
    vpce: &str,
    dns: &DnsServer,
    front: &FrontEnd,
    ca: &TestCa,
    stage: Option<&str>,
    extra: &[&str],
) -> (i32, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(["check", "--local", "--api-id", API, "--region", "us-east-1", "--path", "/health"]);
    if let Some(stage) = stage {
        cmd.args(["--stage", stage]);
    }
    cmd.args(["--vpce", vpce, "--access", "private-dns", "--nameserver", &dns.addr().to_string()])
        .args([
            "--ca-bundle",
            ca.bundle_path().to_str().unwrap(),
            "--port",
            &front.addr().port().to_string(),
            "--timeout",
            "2",
        ])
        .args(extra)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy");
    match moto {
        Some(m) => {
            cmd.envs(m.env());
        }
        None => {
            cmd.arg("--no-aws");
        }
    }
    let out = cmd.output().expect("run kubectl-pvtapi");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

async fn front(ca: &TestCa, reply: Reply) -> FrontEnd {
    FrontEnd::for_names(ca, &["*.execute-api.us-east-1.amazonaws.com"], Arc::new(move |_: &SeenRequest| reply.clone()))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_exits_0() {
    let moto = Moto::start();
    let vpce = aws_world(&moto, true).await;
    let ca = TestCa::new();
    let front = front(&ca, Reply::ok("{}")).await;
    let dns = DnsServer::start(&Zone::new().with(Record::addr(API_HOST, Ipv4Addr::LOCALHOST)));
    let (code, stdout, stderr) =
        tokio::task::block_in_place(|| check(Some(&moto), &vpce, &dns, &front, &ca, Some("prod"), &["-o", "json"]));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let json: Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(json["diagnosis"]["rootCause"], "Healthy");
    assert_eq!(json["aws"]["api"]["value"]["endpointTypes"][0], "PRIVATE");
    assert_eq!(json["probe"]["invoke"]["status"], 200);

    // Without --stage: the API's only stage (GetStages), or a clear error without AWS.
    let (code, stdout, stderr) =
        tokio::task::block_in_place(|| check(Some(&moto), &vpce, &dns, &front, &ca, None, &["-o", "json"]));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let json: Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(json["probe"]["target"]["stage"], "prod");
    let (code, _, stderr) = tokio::task::block_in_place(|| check(None, &vpce, &dns, &front, &ca, None, &[]));
    assert_eq!(code, 2);
    assert!(stderr.contains("--stage is required with --no-aws"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_policy_implicit_deny_is_named_with_the_fix() {
    let moto = Moto::start();
    let vpce = aws_world(&moto, false).await;
    let ca = TestCa::new();
    let front = front(&ca, Reply::apigw_error(403, "AccessDeniedException", "Message", ANON)).await;
    let dns = DnsServer::start(&Zone::new().with(Record::addr(API_HOST, Ipv4Addr::LOCALHOST)));
    let (code, stdout, stderr) =
        tokio::task::block_in_place(|| check(Some(&moto), &vpce, &dns, &front, &ca, Some("prod"), &["-o", "json"]));
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let json: Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(json["diagnosis"]["rootCause"], "ResourcePolicyDenied", "{}", json["diagnosis"]);
    let fix = json["diagnosis"]["remediation"].to_string();
    assert!(fix.contains(&vpce) && fix.contains("create-deployment"), "{fix}");

    // The human table: answer first, no colour when asked, colour when forced.
    let (code, table, _) = tokio::task::block_in_place(|| {
        check(Some(&moto), &vpce, &dns, &front, &ca, Some("prod"), &["--color", "never"])
    });
    assert_eq!(code, 1);
    assert!(table.starts_with("✗ ResourcePolicyDenied"), "{table}");
    assert!(table.contains("Fix:") && table.contains("Checks") && !table.contains('\x1b'), "{table}");
    let (_, coloured, _) = tokio::task::block_in_place(|| {
        check(Some(&moto), &vpce, &dns, &front, &ca, Some("prod"), &["--color", "always"])
    });
    assert!(coloured.contains('\x1b'), "--color always colours");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_aws_the_network_level_cause_and_the_gaps_are_reported() {
    let ca = TestCa::new();
    let front = front(&ca, Reply::apigw_error(403, "AccessDeniedException", "Message", ANON)).await;
    let dns = DnsServer::start(&Zone::new().with(Record::addr(API_HOST, Ipv4Addr::LOCALHOST)));
    let (code, stdout, stderr) = tokio::task::block_in_place(|| {
        check(None, "vpce-0123456789abcdef0", &dns, &front, &ca, Some("prod"), &["-o", "yaml"])
    });
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stdout.contains("rootCause: ResourcePolicyDenied"), "{stdout}");
    assert!(stdout.contains("AWS facts: skipped (--no-aws)"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_credentials_it_says_so_once_and_still_diagnoses() {
    let ca = TestCa::new();
    let front = front(&ca, Reply::apigw_error(403, "AccessDeniedException", "Message", ANON)).await;
    let dns = DnsServer::start(&Zone::new().with(Record::addr(API_HOST, Ipv4Addr::LOCALHOST)));
    let mut cmd = Command::new(BIN);
    cmd.args(["check", "--local", "--api-id", API, "--region", "us-east-1", "--stage", "prod", "--path", "/health"])
        .args(["--vpce", "vpce-0123456789abcdef0", "--access", "private-dns", "--nameserver", &dns.addr().to_string()])
        .args(["--ca-bundle", ca.bundle_path().to_str().unwrap(), "--port", &front.addr().port().to_string()])
        .args(["--timeout", "2", "-o", "json"])
        // No credentials anywhere: no keys, no files, no instance metadata, no container or web
        // identity endpoints (so nothing is dialled outside this machine).
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", "/nonexistent")
        .env("AWS_CONFIG_FILE", "/nonexistent/config")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9");
    let out = tokio::task::block_in_place(|| cmd.output()).unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let d = &json["diagnosis"];
    assert_eq!(d["rootCause"], "ResourcePolicyDenied", "the network-level cause from the live answer");
    let unchecked: Vec<&str> = d["unchecked"].as_array().unwrap().iter().filter_map(|u| u.as_str()).collect();
    assert_eq!(unchecked.len(), 1, "one line, not one per fact: {unchecked:?}");
    assert!(unchecked[0].contains("no usable AWS credentials") && unchecked[0].contains("--no-aws"), "{unchecked:?}");
    assert!(json.get("aws").is_none(), "no facts were read");
}

#[test]
fn no_network_at_all_exits_2_with_probe_failed() {
    // A namespace with only loopback: no route to the resolver (UDP connect finds no route; no
    // packet is sent anywhere).
    let ns = pvtapi_testkit::netns::NetNs::isolated();
    let out = ns
        .command(BIN)
        .args(["check", "--local", "--no-aws", "--api-id", API, "--region", "us-east-1", "--stage", "prod"])
        .args(["--vpce", "vpce-0123456789abcdef0", "--nameserver", "192.0.2.53", "-o", "json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no network: no route to any DNS resolver (192.0.2.53:53"), "{stderr}");
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["diagnosis"]["rootCause"], "ProbeFailed");
    assert!(json.get("probe").is_none(), "{json}");
}

#[test]
fn bad_flags_exit_2() {
    let out = Command::new(BIN)
        .args([
            "check",
            "--local",
            "--api-id",
            "nope",
            "--region",
            "us-east-1",
            "--stage",
            "p",
            "--vpce",
            "vpce-01234567",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid api id \"nope\""));
    let out = Command::new(BIN)
        .args(["check", "--api-id", "abcde12345", "--region", "us-east-1", "--stage", "p", "--vpce", "vpce-01234567"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "in-cluster check is not available yet and says so");
}

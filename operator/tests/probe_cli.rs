//! `pvtapi-operator probe` as the probe pod runs it: flags, exit codes, the JSON on stdout, and a
//! run inside a network namespace with no route out for "public" DNS answers — so a probe that
//! dials a public address fails locally and no packet leaves the machine.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Command, Output};

use pvtapi_testkit::apigw::{FrontEnd, Reply, TestCa, requires_api_identity};
use pvtapi_testkit::dns::{DnsServer, Record, Zone};
use pvtapi_testkit::netns::NetNs;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_pvtapi-operator");
const API_HOST: &str = "abcde12345.execute-api.us-east-1.amazonaws.com";

fn base_args() -> Vec<String> {
    ["probe", "--api-id", "abcde12345", "--region", "us-east-1", "--stage", "prod", "--vpce", "vpce-0123456789abcdef0"]
        .map(String::from)
        .to_vec()
}

/// The base arguments with `extra` flag/value pairs replacing or adding to them.
fn with_flags(extra: &[&str]) -> Vec<String> {
    let mut args = base_args();
    for pair in extra.chunks(2) {
        match args.iter().position(|a| a == pair[0]) {
            Some(i) if pair.len() == 2 => args[i + 1] = pair[1].to_owned(),
            _ => args.extend(pair.iter().map(|s| s.to_string())),
        }
    }
    args
}

fn run(cmd: &mut Command) -> (i32, Value, String) {
    let Output { status, stdout, stderr } = cmd.output().expect("run pvtapi-operator");
    let stdout = String::from_utf8_lossy(&stdout).to_string();
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (status.code().unwrap_or(-1), json, String::from_utf8_lossy(&stderr).to_string())
}

#[test]
fn bad_flags_exit_2_naming_the_value() {
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--api-id", "ABC"], "invalid api id \"ABC\""),
        (vec!["--region", "mars"], "invalid region \"mars\""),
        (vec!["--stage", "pr od"], "invalid stage \"pr od\""),
        (vec!["--path", "health"], "invalid path \"health\""),
        (vec!["--vpce", "vpc-123"], "invalid VPC endpoint id \"vpc-123\""),
        (vec!["--vpce-dns", "not a host"], "invalid hostname \"not a host\""),
        (vec!["--timeout", "0"], "--timeout"),
        (vec!["--timeout", "61"], "--timeout"),
        (vec!["--expected-status", "99"], "--expected-status"),
        (vec!["--method", "FETCH"], "--method"),
        (vec!["--access", "magic"], "--access"),
        (vec!["--nameserver", "dns.example"], "invalid nameserver \"dns.example\""),
        (vec!["--port", "0"], "--port"),
        (vec!["--access", "custom-domain"], "--access custom-domain needs --domain-name"),
        (vec!["--ca-bundle", "/nonexistent/ca.pem"], "cannot open CA bundle /nonexistent/ca.pem"),
        (vec!["--invoke-url", "http://abcde12345.execute-api.us-east-1.amazonaws.com/prod"], "invalid --invoke-url"),
        (vec!["--invoke-url", "https://u:pw@h.example/prod"], "contains credentials"),
        (vec!["--invoke-url", "https://h.example/prod", "--header", "x-api-key: k"], "\"x-api-key\" is not supported"),
        (vec!["--header", "Host: h.example"], "--invoke-url"),
        (
            vec!["--invoke-url", "https://abcde12345.execute-api.us-east-1.amazonaws.com/dev/x"],
            "--stage prod differs from the stage in --invoke-url (dev)",
        ),
        (vec!["--invoke-url", "https://abcde12345.execute-api.us-east-1.amazonaws.com/"], "--invoke-url has no stage"),
        (
            vec!["--invoke-url", "https://abcde12345.execute-api.us-east-1.amazonaws.com/prod/x", "--path", "/y"],
            "--path /y differs from the path in --invoke-url (/x)",
        ),
    ];
    for (extra, expected) in cases {
        let args = with_flags(&extra);
        let (code, json, stderr) = run(Command::new(BIN).args(&args));
        assert_eq!(code, 2, "{extra:?}: exit code; stderr: {stderr}");
        assert_eq!(json, Value::Null, "{extra:?}: no report on bad input");
        assert!(stderr.contains(expected), "{extra:?}: expected {expected:?} in: {stderr}");
    }

    let dir = std::env::temp_dir().join(format!("pvtapi-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, b"\x00\x01 not pem at all").expect("write");
    let mut args = base_args();
    args.extend(["--ca-bundle".to_owned(), garbage.display().to_string()]);
    let (code, _, stderr) = run(Command::new(BIN).args(&args));
    assert_eq!(code, 2);
    assert!(stderr.contains("contains no CERTIFICATE block") || stderr.contains("not valid PEM"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn help_teaches() {
    let out = Command::new(BIN).args(["probe", "--help"]).output().expect("run");
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in ["--api-id", "--vpce-dns", "--nameserver", "--ca-bundle", "Exit status", "Example"] {
        assert!(help.contains(needle), "probe --help lacks {needle}");
    }
}

#[tokio::test]
async fn healthy_run_prints_the_report_and_writes_the_report_file() {
    let ca = TestCa::new();
    let front = FrontEnd::for_names(
        &ca,
        &["*.execute-api.us-east-1.amazonaws.com"],
        requires_api_identity("abcde12345", Reply::ok("{}")),
    )
    .await;
    let dns = DnsServer::start(&Zone::new().with(Record::addr(API_HOST, Ipv4Addr::LOCALHOST)));
    let report_file = std::env::temp_dir().join(format!("pvtapi-report-{}.json", std::process::id()));
    let mut args = base_args();
    args.extend([
        "--path".into(),
        "/health".into(),
        "--nameserver".into(),
        dns.addr().to_string(),
        "--ca-bundle".into(),
        ca.bundle_path().display().to_string(),
        "--port".into(),
        front.addr().port().to_string(),
        "--report-file".into(),
        report_file.display().to_string(),
    ]);
    let (code, json, stderr) = tokio::task::spawn_blocking(move || {
        run(Command::new(BIN).args(&args).env_remove("HTTPS_PROXY").env_remove("https_proxy"))
    })
    .await
    .expect("join");
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(json["version"], "pvtapi.io/probe-report/v1");
    assert_eq!(json["access"]["mode"], "privateDns");
    assert_eq!(json["invoke"]["class"], "Ok");
    assert_eq!(json["invoke"]["status"], 200);
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(&report_file).expect("report file")).expect("json");
    assert_eq!(written, json);
    let _ = std::fs::remove_file(&report_file);
}

#[test]
fn public_answers_are_dialled_only_inside_a_namespace_without_a_route() {
    let ns = NetNs::isolated();
    // Private DNS off: the API host resolves to a public address (TEST-NET-3 here).
    let zone = Zone::new().with(Record::addr(API_HOST, Ipv4Addr::new(203, 0, 113, 10)));
    let dns = DnsServer::start_at(Some(ns.name()), SocketAddr::from((Ipv4Addr::LOCALHOST, 15353)), &zone);
    let mut args = base_args();
    args.extend(["--nameserver".into(), dns.addr().to_string(), "--timeout".into(), "2".into()]);
    let (code, json, stderr) = run(ns.command(BIN).args(&args));
    assert_eq!(code, 0, "an unhealthy target is a result, not a probe failure: {stderr}");
    let api = json["dns"].as_array().expect("dns").iter().find(|d| d["role"] == "api").expect("api host").clone();
    assert_eq!(api["addresses"][0]["ip"], "203.0.113.10");
    assert_eq!(api["addresses"][0]["class"], "public");
    assert_eq!(json["access"]["mode"], "privateDns");
    assert_eq!(json["tcp"][0]["outcome"], "unreachable", "no route out of the namespace: {}", json["tcp"]);
    assert_eq!(json["invoke"]["class"], "ConnectionError");
}

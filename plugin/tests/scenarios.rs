//! The article's failures, end to end, from data files in `tests/scenarios/` (see its README):
//! moto_server + dnsmasq + a TLS front end (or a namespace blackhole), then
//! `kubectl-pvtapi check --local -o json` must name the expected cause, evidence and fix.

#![allow(clippy::unwrap_used)] // fixture setup: a failed AWS call must abort the test loudly

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Command;

use pvtapi_testkit::apigw::{FrontEnd, Reply, TestCa, default_names, requires_api_identity};
use pvtapi_testkit::dns::{DnsServer, Record, Zone};
use pvtapi_testkit::moto::Moto;
use pvtapi_testkit::netns::NetNs;
use pvtapi_testkit::world::{self, API_ID as API, CLIENT_IP, WorldSpec};
use serde::Deserialize;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_kubectl-pvtapi");
const API_HOST: &str = "abcde12345.execute-api.us-east-1.amazonaws.com";
/// Every scenario checks the world's API, GET /prod/health in us-east-1.
const CHECK: [&str; 10] =
    ["check", "--local", "--api-id", API, "--region", "us-east-1", "--stage", "prod", "--path", "/health"];

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Scenario {
    name: String,
    resource_policy: Option<String>,
    endpoint_policy: Option<String>,
    #[serde(default = "yes")]
    endpoint_allows443_from_client: bool,
    #[serde(default)]
    api_host: ApiHost,
    answer: Option<Answer>,
    /// The URL the workload calls, checked as given (`VPCE_HOST` = the endpoint's regional name).
    invoke_url: Option<String>,
    #[serde(default)]
    headers: Vec<String>,
    /// The account owning the API (created through an assumed role; the endpoint stays in
    /// moto's default account 123456789012).
    api_account: Option<String>,
    /// Pass `--api-role-arn` so the check can read the API in `apiAccount` (default true).
    #[serde(default = "yes")]
    read_api_with_role: bool,
    /// Region of the VPC, endpoint and client (default: the API's, us-east-1); passed as
    /// `--vpce-region`.
    endpoint_region: Option<String>,
    expect: Expect,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
enum ApiHost {
    #[default]
    FrontEnd,
    Blackhole,
    /// A public address (private DNS off): the check runs inside a namespace with no route out
    /// and without AWS (moto on the host's loopback is out of its reach), so nothing leaves.
    Public,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct Answer {
    status: u16,
    #[serde(rename = "errorType")]
    error_type: String,
    key: String,
    message: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Expect {
    root_cause: String,
    #[serde(default)]
    evidence: Vec<String>,
    #[serde(default)]
    remediation: Vec<String>,
    #[serde(default)]
    unchecked: Vec<String>,
    /// Substring of the report's access reason (`probe.access.reason`).
    access: Option<String>,
    /// JSON pointer → exact value in the output (e.g. `/aws/api/status: known`).
    #[serde(default)]
    json: std::collections::BTreeMap<String, Value>,
    /// Substrings that must NOT appear in `diagnosis.unchecked`.
    #[serde(default)]
    not_unchecked: Vec<String>,
}

/// The AWS side: the shared testkit world with the scenario's policies and endpoint group rule.
async fn aws_world(moto: &Moto, s: &Scenario) -> String {
    let spec = WorldSpec {
        resource_policy: s.resource_policy.clone(),
        endpoint_policy: s.endpoint_policy.clone(),
        endpoint_allows_443_from_client: s.endpoint_allows443_from_client,
    };
    let config = moto.sdk_config("us-east-1").await;
    let api_config = match &s.api_account {
        Some(account) => pvtapi_engine::aws::assume_role(&config, &role_in(account)).await,
        None => config.clone(),
    };
    let network = match &s.endpoint_region {
        Some(region) => moto.sdk_config(region).await,
        None => config,
    };
    world::build_cross_account(&network, &api_config, &spec).await.vpce
}

fn role_in(account: &str) -> String {
    format!("arn:aws:iam::{account}:role/pvtapi-reader")
}

async fn run_scenario(path: &Path) -> Result<(), String> {
    let s: Scenario = serde_norway::from_str(&std::fs::read_to_string(path).unwrap())
        .map_err(|e| format!("{}: invalid scenario: {e}", path.display()))?;
    if s.api_host == ApiHost::Public {
        return run_isolated(&s, path);
    }
    let moto = Moto::start();
    let vpce = aws_world(&moto, &s).await;
    let ca = TestCa::new();
    let reply = match &s.answer {
        Some(a) => Reply::apigw_error(a.status, &a.error_type, &a.key, &a.message),
        None => Reply::ok("{}"),
    };
    // Like API Gateway: a request that does not say which API it is for gets 403 Forbidden.
    let names = default_names("us-east-1");
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let front = FrontEnd::for_names(&ca, &names, requires_api_identity(API, reply)).await;
    let ns = (s.api_host == ApiHost::Blackhole).then(NetNs::create);
    let api_ip: IpAddr = match &ns {
        Some(ns) => ns.blackhole().into(),
        None => Ipv4Addr::LOCALHOST.into(),
    };
    let vpce_host = format!("{vpce}-abcdefgh.execute-api.us-east-1.vpce.amazonaws.com");
    let dns =
        DnsServer::start(&Zone::new().with(Record::addr(API_HOST, api_ip)).with(Record::addr(&vpce_host, api_ip)));
    let build = |format: &str| {
        let mut cmd = Command::new(BIN);
        cmd.args(CHECK);
        match &s.invoke_url {
            Some(url) => {
                cmd.args(["--invoke-url", &url.replace("VPCE_HOST", &vpce_host)]);
                for h in &s.headers {
                    cmd.args(["--header", h]);
                }
            }
            None => {
                cmd.args(["--access", "private-dns"]);
            }
        }
        if let Some(account) = s.api_account.as_deref().filter(|_| s.read_api_with_role) {
            cmd.args(["--api-role-arn", &role_in(account)]);
        }
        if let Some(region) = &s.endpoint_region {
            cmd.args(["--vpce-region", region]);
        }
        cmd.args(["--vpce", &vpce, "--nameserver", &dns.addr().to_string(), "--source-ip", CLIENT_IP])
            .args([
                "--ca-bundle",
                ca.bundle_path().to_str().unwrap(),
                "--port",
                &front.addr().port().to_string(),
                "--timeout",
                "1",
                "-o",
                format,
            ])
            .envs(moto.env())
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy");
        cmd
    };
    let out = tokio::task::block_in_place(|| build("json").output()).unwrap();
    show(&s, || build("table"));
    judge(&s, path, &out, &vpce, &vpce_host)
}

/// Private DNS off: the API host resolves to a public address. dnsmasq and the check both run in
/// a namespace with only loopback, so the dial fails locally; AWS is not inspected.
fn run_isolated(s: &Scenario, path: &Path) -> Result<(), String> {
    let ns = NetNs::isolated();
    let dns = DnsServer::start_at(
        Some(ns.name()),
        std::net::SocketAddr::from((Ipv4Addr::LOCALHOST, 15353)),
        &Zone::new().with(Record::addr(API_HOST, Ipv4Addr::new(203, 0, 113, 10))),
    );
    let vpce = "vpce-0123456789abcdef0";
    let build = |format: &str| {
        let mut cmd = ns.command(BIN);
        cmd.args(CHECK)
            .arg("--no-aws")
            .args([
                "--vpce",
                vpce,
                "--access",
                "private-dns",
                "--nameserver",
                &dns.addr().to_string(),
                "--timeout",
                "1",
                "-o",
                format,
            ])
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy");
        cmd
    };
    let out = tokio::task::block_in_place(|| build("json").output()).unwrap();
    show(s, || build("table"));
    judge(s, path, &out, vpce, "")
}

/// With `PVTAPI_SHOW_REPORTS=1` (see `tests/demo.sh`), print the human report of each scenario.
fn show(s: &Scenario, build: impl Fn() -> Command) {
    if std::env::var_os("PVTAPI_SHOW_REPORTS").is_none() {
        return;
    }
    let mut cmd = build();
    cmd.args(["--color", "always"]);
    let out = tokio::task::block_in_place(|| cmd.output()).unwrap();
    println!(
        "\n━━━ {} ━━━ (exit {:?})\n{}{}",
        s.name,
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn judge(s: &Scenario, path: &Path, out: &std::process::Output, vpce: &str, vpce_host: &str) -> Result<(), String> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json: Value = serde_json::from_str(&stdout)
        .map_err(|e| format!("{}: not JSON ({e}): {stdout} {}", s.name, String::from_utf8_lossy(&out.stderr)))?;
    let d = &json["diagnosis"];
    let mut problems = Vec::new();
    let schema = report_schema();
    for error in schema.iter_errors(&json) {
        problems
            .push(format!("output does not match docs/check-report.schema.json at {}: {error}", error.instance_path()));
    }
    if d["rootCause"] != s.expect.root_cause.as_str() {
        problems.push(format!(
            "root cause {} (summary: {}), expected {}",
            d["rootCause"], d["summary"], s.expect.root_cause
        ));
    }
    let want_code = if s.expect.root_cause == "Healthy" { 0 } else { 1 };
    if out.status.code() != Some(want_code) {
        problems.push(format!("exit code {:?}, expected {want_code}", out.status.code()));
    }
    for (field, wanted) in
        [("evidence", &s.expect.evidence), ("remediation", &s.expect.remediation), ("unchecked", &s.expect.unchecked)]
    {
        let text = d[field].to_string();
        for w in wanted {
            let w = w.replace("VPCE_HOST", vpce_host).replace("VPCE", vpce);
            if !text.contains(&w) {
                problems.push(format!("{field} lacks {w:?}: {text}"));
            }
        }
    }
    for (pointer, want) in &s.expect.json {
        let got = json.pointer(pointer).cloned().unwrap_or(Value::Null);
        if got != *want {
            problems.push(format!("{pointer} is {got}, expected {want}"));
        }
    }
    let unchecked = d["unchecked"].to_string();
    for unwanted in &s.expect.not_unchecked {
        if unchecked.contains(unwanted.as_str()) {
            problems.push(format!("unchecked mentions {unwanted:?}: {unchecked}"));
        }
    }
    if let Some(want) = &s.expect.access {
        let reason = json["probe"]["access"]["reason"].as_str().unwrap_or_default();
        if !reason.contains(want.as_str()) {
            problems.push(format!("access reason lacks {want:?}: {reason}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{} ({}):\n  {}", s.name, path.display(), problems.join("\n  ")))
    }
}

fn report_schema() -> jsonschema::Validator {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/check-report.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    jsonschema::validator_for(&schema).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_yields_its_root_cause() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "scenario files missing in {}", dir.display());
    let mut failures = Vec::new();
    for f in &files {
        if let Err(e) = run_scenario(f).await {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{} of {} scenarios failed:\n{}", failures.len(), files.len(), failures.join("\n"));
}

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
use pvtapi_testkit::scenario::{self, API_HOST, ApiHost, Scenario};
use pvtapi_testkit::world::{API_ID as API, CLIENT_IP};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_kubectl-pvtapi");
/// Every scenario checks the world's API in us-east-1 (GET /prod/health unless it says otherwise).
const CHECK: [&str; 2] = ["check", "--local"];

async fn run_scenario(path: &Path) -> Result<(), String> {
    let s = scenario::load(path)?;
    if s.api_host == ApiHost::Public {
        return run_isolated(&s, path);
    }
    let moto = Moto::start();
    let vpce = scenario::aws_world(&moto, &s).await.0.vpce;
    let ca = TestCa::new();
    let reply = match &s.answer {
        Some(a) => Reply::apigw_error(a.status, &a.error_type, &a.key, &a.message),
        None => Reply::ok("{}"),
    };
    // Like API Gateway: a request that does not say which API it is for gets 403 Forbidden.
    let names = default_names("us-east-1");
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let front = FrontEnd::for_names(&ca, &names, requires_api_identity(API, reply)).await;
    let ns = matches!(s.api_host, ApiHost::Blackhole | ApiHost::Partial).then(NetNs::create);
    let api_ips: Vec<IpAddr> = match (&ns, s.api_host) {
        (Some(ns), ApiHost::Partial) => vec![Ipv4Addr::LOCALHOST.into(), ns.blackhole().into()],
        (Some(ns), _) => vec![ns.blackhole().into()],
        (None, _) => vec![Ipv4Addr::LOCALHOST.into()],
    };
    let vpce_host = scenario::vpce_host(&vpce);
    let mut zone = Zone::new();
    for ip in &api_ips {
        zone = zone.with(Record::addr(API_HOST, *ip)).with(Record::addr(&vpce_host, *ip));
    }
    let dns = DnsServer::start(&zone);
    let build = |format: &str| {
        let mut cmd = Command::new(BIN);
        cmd.args(CHECK).args(s.target_args());
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
            cmd.args(["--api-role-arn", &scenario::role_in(account)]);
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
    judge(&s, path, &out, &vpce, &vpce_host)?;
    let Some(after) = &s.after_fix else { return Ok(()) };
    // The fixes, applied as a person would paste them, and the check again.
    let report: Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("{}: {e}", s.name))?;
    let applied = tokio::task::block_in_place(|| scenario::apply_fixes(&moto, &report))
        .map_err(|e| format!("{} ({}): applying the fix: {e}", s.name, path.display()))?;
    let again = tokio::task::block_in_place(|| build("json").output()).unwrap();
    let json: Value = serde_json::from_slice(&again.stdout).map_err(|e| {
        format!("{}: after the fix, not JSON ({e}): {}", s.name, String::from_utf8_lossy(&again.stderr))
    })?;
    let mut problems = scenario::judge(after, &json, &vpce, &vpce_host, true);
    if json["diagnosis"]["rootCause"] == report["diagnosis"]["rootCause"] && after.root_cause != s.expect.root_cause {
        problems.push("the root cause did not change after the fix".into());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} ({}): after applying {applied} fix command(s):\n  {}",
            s.name,
            path.display(),
            problems.join("\n  ")
        ))
    }
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
            .args(s.target_args())
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
    let mut problems = s.judge(&json, vpce, vpce_host, true);
    let schema = report_schema();
    for error in schema.iter_errors(&json) {
        problems
            .push(format!("output does not match docs/check-report.schema.json at {}: {error}", error.instance_path()));
    }
    let want_code = if s.expect.root_cause == "Healthy" { 0 } else { 1 };
    if out.status.code() != Some(want_code) {
        problems.push(format!("exit code {:?}, expected {want_code}", out.status.code()));
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
    let files = scenario::files();
    let mut failures = Vec::new();
    for f in &files {
        if let Err(e) = run_scenario(f).await {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{} of {} scenarios failed:\n{}", failures.len(), files.len(), failures.join("\n"));
}

//! The scenario files in `tests/scenarios/` (format: its README), shared by their two runners:
//! `check --local` on the host (`plugin/tests/scenarios.rs`) and the operator on the local
//! cluster (`operator/tests/scenarios_node.rs`). One model and one judge, so both runners hold
//! the same expectations to the same words.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::moto::Moto;
use crate::world::{self, WorldSpec};

/// The host of the API every scenario checks (GET /prod/health in us-east-1).
pub const API_HOST: &str = "abcde12345.execute-api.us-east-1.amazonaws.com";

/// One scenario file.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    pub resource_policy: Option<String>,
    pub endpoint_policy: Option<String>,
    #[serde(default = "yes")]
    pub endpoint_allows443_from_client: bool,
    #[serde(default)]
    pub api_host: ApiHost,
    pub answer: Option<Answer>,
    /// The URL the workload calls, checked as given (`VPCE_HOST` = the endpoint's regional name).
    pub invoke_url: Option<String>,
    #[serde(default)]
    pub headers: Vec<String>,
    /// The `spec.access` of a check that sends the same request as `invokeUrl` + `headers`.
    /// Absent when no access mode does (the workload's own wrong URL): a check always sends the
    /// right request for its mode, so the cluster runner lists such a scenario as not
    /// expressible as a check instead of running it.
    pub check_access: Option<String>,
    /// The account owning the API (created through an assumed role; the endpoint stays in
    /// moto's default account 123456789012).
    pub api_account: Option<String>,
    /// Pass `--api-role-arn` (`spec.aws.apiRoleArn`) so the check can read the API in
    /// `apiAccount` (default true).
    #[serde(default = "yes")]
    pub read_api_with_role: bool,
    /// Region of the VPC, endpoint and client (default: the API's, us-east-1); passed as
    /// `--vpce-region` (`spec.endpoint.region`).
    pub endpoint_region: Option<String>,
    /// The stage the check asks for (default `prod`, the one the world deploys).
    #[serde(default = "prod")]
    pub check_stage: String,
    /// The path the check asks for (default `/health`, the one the world defines).
    #[serde(default = "health")]
    pub check_path: String,
    /// `authorizationType` of the world's `GET /health` (default `NONE`).
    #[serde(default = "none")]
    pub method_authorization: String,
    /// The world's `GET /health` requires an API key.
    #[serde(default)]
    pub api_key_required: bool,
    /// The world's API has its default execute-api endpoint turned off.
    #[serde(default)]
    pub disable_execute_api_endpoint: bool,
    pub expect: Expect,
    /// Apply the report's ready-to-apply fixes (`diagnosis.fixes[].awsCli`) to moto with the
    /// AWS CLI, check again, and expect this (the fixed layer's analysis passes; the front end
    /// still answers as before, so the cause moves on rather than to Healthy).
    pub after_fix: Option<Expect>,
}

fn prod() -> String {
    "prod".into()
}

fn health() -> String {
    "/health".into()
}

fn none() -> String {
    "NONE".into()
}

fn yes() -> bool {
    true
}

/// Where the API host resolves.
#[derive(Debug, Default, Deserialize, PartialEq, Eq, Clone, Copy)]
#[serde(rename_all = "camelCase")]
pub enum ApiHost {
    /// The TLS front end playing API Gateway.
    #[default]
    FrontEnd,
    /// An address nobody answers and whose packets are dropped: a real connect timeout.
    Blackhole,
    /// A public address (private DNS off), with no route to it and no AWS: nothing leaves.
    Public,
    /// Both the front end and an unanswered address: one of two addresses times out, the
    /// probe's own request succeeds through the other (a partial failure).
    Partial,
}

/// The front end's answer (API Gateway's error shape).
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    pub status: u16,
    #[serde(rename = "errorType")]
    pub error_type: String,
    pub key: String,
    pub message: String,
}

/// What the check must say.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Expect {
    pub root_cause: String,
    #[serde(default)]
    pub evidence: Vec<String>,
    #[serde(default)]
    pub remediation: Vec<String>,
    #[serde(default)]
    pub unchecked: Vec<String>,
    /// Substring of the report's access reason (`probe.access.reason`).
    pub access: Option<String>,
    /// JSON pointer → exact value in the output (e.g. `/aws/api/status: known`).
    #[serde(default)]
    pub json: BTreeMap<String, Value>,
    /// Substrings that must NOT appear in `diagnosis.unchecked`.
    #[serde(default)]
    pub not_unchecked: Vec<String>,
}

/// Reads and parses a scenario file.
pub fn load(path: &Path) -> Result<Scenario, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_norway::from_str(&text).map_err(|e| format!("{}: invalid scenario: {e}", path.display()))
}

/// Every scenario file, sorted.
pub fn files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "scenario files missing in {}", dir.display());
    files
}

/// The role the checks assume in `account` to read its API.
pub fn role_in(account: &str) -> String {
    format!("arn:aws:iam::{account}:role/pvtapi-reader")
}

/// The endpoint's regional DNS name as the scenarios write it (`VPCE_HOST`).
pub fn vpce_host(vpce: &str) -> String {
    format!("{vpce}-abcdefgh.execute-api.us-east-1.vpce.amazonaws.com")
}

/// The AWS side of a scenario on `moto`: the shared world with its policies and endpoint group
/// rule, the API in `apiAccount` when set, the network side in `endpointRegion`. Returns the
/// world and the SDK config of the network side.
pub async fn aws_world(moto: &Moto, s: &Scenario) -> (world::World, aws_config::SdkConfig) {
    let spec = WorldSpec {
        resource_policy: s.resource_policy.clone(),
        endpoint_policy: s.endpoint_policy.clone(),
        endpoint_allows_443_from_client: s.endpoint_allows443_from_client,
        method_authorization: s.method_authorization.clone(),
        api_key_required: s.api_key_required,
        disable_execute_api_endpoint: s.disable_execute_api_endpoint,
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
    (world::build_cross_account(&network, &api_config, &spec).await, network)
}

impl Scenario {
    /// Judges `output` (`{diagnosis, probe, aws?}`: `check -o json`, or the operator's
    /// `status.report`) against the expectations; `VPCE`/`VPCE_HOST` are substituted. With
    /// `has_facts = false` (the operator's status carries no AWS facts: it is size-bounded),
    /// pointers under `/aws` are not judged. Returns the problems found.
    pub fn judge(&self, output: &Value, vpce: &str, vpce_host: &str, has_facts: bool) -> Vec<String> {
        judge(&self.expect, output, vpce, vpce_host, has_facts)
    }

    /// The check's arguments for `check --local` naming the API, stage and path.
    pub fn target_args(&self) -> Vec<String> {
        [
            "--api-id",
            crate::world::API_ID,
            "--region",
            "us-east-1",
            "--stage",
            &self.check_stage,
            "--path",
            &self.check_path,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
    }
}

/// The `aws` command lines of a report's ready-to-apply fixes (`diagnosis.fixes[].awsCli`).
pub fn fix_commands(output: &Value) -> Vec<Vec<String>> {
    output["diagnosis"]["fixes"]
        .as_array()
        .map(|fixes| {
            fixes
                .iter()
                .filter_map(|f| f["awsCli"].as_array())
                .map(|argv| argv.iter().filter_map(|a| a.as_str().map(str::to_owned)).collect())
                .collect()
        })
        .unwrap_or_default()
}

/// Runs each fix with the real AWS CLI against `moto` (`AWS_ENDPOINT_URL`, test credentials);
/// the first one that fails is the error.
pub fn apply_fixes(moto: &Moto, output: &Value) -> Result<usize, String> {
    let commands = fix_commands(output);
    if commands.is_empty() {
        return Err("the report has no ready-to-apply fix (diagnosis.fixes[].awsCli)".into());
    }
    for argv in &commands {
        let Some((program, args)) = argv.split_first() else { return Err("an empty fix command".into()) };
        if program != "aws" {
            return Err(format!("a fix is not an AWS CLI command: {argv:?}"));
        }
        let out = std::process::Command::new("aws")
            .args(args)
            .envs(moto.env())
            .env("AWS_PAGER", "")
            .output()
            .map_err(|e| format!("running the AWS CLI (installed by tests/substrate/install.sh): {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{argv:?} failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    Ok(commands.len())
}

/// Judges `output` against `e` (see [`Scenario::judge`]).
pub fn judge(e: &Expect, output: &Value, vpce: &str, vpce_host: &str, has_facts: bool) -> Vec<String> {
    let d = &output["diagnosis"];
    let mut problems = Vec::new();
    if d["rootCause"] != e.root_cause.as_str() {
        problems.push(format!("root cause {} (summary: {}), expected {}", d["rootCause"], d["summary"], e.root_cause));
    }
    for (field, wanted) in [("evidence", &e.evidence), ("remediation", &e.remediation), ("unchecked", &e.unchecked)] {
        let text = d[field].to_string();
        for w in wanted {
            let w = w.replace("VPCE_HOST", vpce_host).replace("VPCE", vpce);
            if !text.contains(&w) {
                problems.push(format!("{field} lacks {w:?}: {text}"));
            }
        }
    }
    for (pointer, want) in &e.json {
        if !has_facts && pointer.starts_with("/aws") {
            continue;
        }
        let got = output.pointer(pointer).cloned().unwrap_or(Value::Null);
        if got != *want {
            problems.push(format!("{pointer} is {got}, expected {want}"));
        }
    }
    let unchecked = d["unchecked"].to_string();
    for unwanted in &e.not_unchecked {
        if unchecked.contains(unwanted.as_str()) {
            problems.push(format!("unchecked mentions {unwanted:?}: {unchecked}"));
        }
    }
    if let Some(want) = &e.access {
        let reason = output["probe"]["access"]["reason"].as_str().unwrap_or_default();
        if !reason.contains(want.as_str()) {
            problems.push(format!("access reason lacks {want:?}: {reason}"));
        }
    }
    problems
}

//! The diagnosis: probe evidence + AWS facts in, ONE root cause with evidence and a fix out.
//!
//! Pure by design — no I/O — so each rule is a table test. Rules run in request-path order
//! (endpoint and API existence, DNS, TCP, TLS, HTTP): live evidence decides *what* failed, static
//! facts explain *why*. A fact that could not be read never passes for a healthy one: the rule
//! falls back to the network-level cause and the result lists what could not be checked.
//! `Healthy` is only ever the answer when the invoke got an expected status; a run that ends
//! without an answer nothing explains is `Unknown`, never a pass.

use pvtapi_crds::{AccessMode, Advisory, RootCause};
use serde::{Deserialize, Serialize};

use crate::aws::AwsFacts;
use crate::probe::ProbeReport;
use crate::probe::classify::{AddressClass, InvokeClass, TcpOutcome};
use crate::probe::report::{DnsComparison, DnsOutcome, TargetSummary, TlsOutcome};
use crate::probe::target::HostRole;

pub mod cluster;
mod dns;
pub mod fix;
mod http;
mod network;
mod policy;

/// The one answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Diagnosis {
    pub root_cause: RootCause,
    /// One line: what is wrong.
    pub summary: String,
    /// The facts that prove it.
    pub evidence: Vec<String>,
    /// Concrete steps.
    pub remediation: Vec<String>,
    /// Ready-to-apply changes for the root cause, in order: AWS CLI commands with the real ids,
    /// policy statements with the whole resulting document, manifests. Empty when the fix is
    /// not a change in AWS or Kubernetes, or when a fact it needs could not be read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fixes: Vec<fix::Fix>,
    /// What could not be checked, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unchecked: Vec<String>,
    /// Per-area results along the request path.
    pub areas: Vec<AreaResult>,
    /// Findings worth fixing that are not the root cause.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub advisories: Vec<AdvisoryFinding>,
}

/// Version of [`CheckReport`]'s shape; fields may be added within it, never renamed.
pub const CHECK_REPORT_VERSION: &str = "pvtapi.io/check-report/v1";

/// What `kubectl pvtapi check -o json|yaml` prints: the diagnosis first, then the evidence it was
/// drawn from. Its JSON Schema is `docs/check-report.schema.json` (`kubectl pvtapi schema`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(title = "pvtapi check report", extend("$id" = "https://pvtapi.io/schemas/check-report/v1"))]
pub struct CheckReport {
    /// `pvtapi.io/check-report/v1`.
    pub version: String,
    /// The one root cause, its evidence and fix.
    pub diagnosis: Diagnosis,
    /// What the probe saw (absent when it could not run: `diagnosis.rootCause` is `ProbeFailed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<ProbeReport>,
    /// The AWS facts read (absent with `--no-aws` or without usable credentials).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsFacts>,
}

impl CheckReport {
    pub fn new(diagnosis: Diagnosis, probe: Option<ProbeReport>, aws: Option<AwsFacts>) -> Self {
        CheckReport { version: CHECK_REPORT_VERSION.to_owned(), diagnosis, probe, aws }
    }

    /// The JSON Schema of the report, pretty-printed with a trailing newline.
    pub fn json_schema() -> String {
        let schema = schemars::schema_for!(CheckReport);
        let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
        text.push('\n');
        text
    }
}

impl Diagnosis {
    /// The AWS inspection could not run at all (`reason`: no credentials, `--no-aws`): say so
    /// once, in place of the generic line.
    pub fn with_aws_unavailable(mut self, reason: &str) -> Self {
        self.unchecked.retain(|u| !u.starts_with("AWS facts:"));
        self.unchecked.insert(0, format!("AWS facts: {reason}"));
        for a in self.areas.iter_mut().filter(|a| a.area == "aws") {
            a.reason = reason.to_owned();
        }
        self
    }
}

/// An advisory and what it is based on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdvisoryFinding {
    pub advisory: Advisory,
    pub detail: String,
}

/// Advisories: logging off, the request never logged, no endpoint interface in the caller's AZ.
pub fn advisories(probe: &ProbeReport, facts: Option<&AwsFacts>) -> Vec<AdvisoryFinding> {
    use crate::aws::facts::ExecutionLogLookup;
    let Some(f) = facts else { return Vec::new() };
    let mut out = Vec::new();
    let t = &probe.target;
    if let Some(stage) = f.stage.known()
        && !stage.execution_logging_enabled()
    {
        out.push(AdvisoryFinding {
            advisory: Advisory::ExecutionLoggingDisabled,
            detail: format!(
                "stage {} has execution logging off: enable INFO logging with full request/response data to see why calls fail",
                t.stage
            ),
        });
    }
    let failed = probe.invoke.as_ref().is_some_and(|i| i.class != InvokeClass::Ok);
    if failed && let Some(ExecutionLogLookup::NotFound { log_group, window_seconds }) = f.execution_log.known() {
        out.push(AdvisoryFinding {
            advisory: Advisory::RequestNotLogged,
            detail: format!(
                "no line for the request in {log_group} over {window_seconds}s: the request may never have reached API Gateway (check the invoke URL and DNS)"
            ),
        });
    }
    if let (Some(c), Some(e)) = (f.client.known(), f.endpoint.known())
        && let Some(az) = &c.interface.availability_zone
        && !e.interfaces.is_empty()
        && !e.interfaces.iter().any(|i| i.availability_zone.as_ref() == Some(az))
    {
        out.push(AdvisoryFinding {
            advisory: Advisory::EndpointMissingInCallerAz,
            detail: format!("{} has no network interface in {az}: calls cross availability zones", e.id),
        });
    }
    out
}

/// `access: auto` from AWS facts (design.md §2): private DNS on → `privateDns`; else the API is
/// associated with the endpoint → `endpointAlias`; else `endpointHost`. `None` without facts.
pub fn choose_access(facts: &AwsFacts, vpce_id: &str) -> Option<(AccessMode, String)> {
    choose_access_from(facts.api.known(), facts.endpoint.known(), vpce_id)
}

/// [`choose_access`] from the two facts it reads (the API's and the endpoint's).
pub fn choose_access_from(
    api: Option<&crate::aws::facts::ApiFacts>,
    endpoint: Option<&crate::aws::facts::EndpointFacts>,
    vpce_id: &str,
) -> Option<(AccessMode, String)> {
    let endpoint = endpoint?;
    if endpoint.private_dns_enabled {
        return Some((AccessMode::PrivateDns, format!("auto: {vpce_id} has private DNS enabled")));
    }
    let associated = api.is_some_and(|a| a.vpc_endpoint_ids.iter().any(|v| v == vpce_id));
    if associated {
        return Some((
            AccessMode::EndpointAlias,
            format!("auto: private DNS is off and the API is associated with {vpce_id}"),
        ));
    }
    Some((
        AccessMode::EndpointHost,
        format!(
            "auto: private DNS is off and the API is not associated with {vpce_id}; using the endpoint's DNS name with a Host header"
        ),
    ))
}

/// The result of one area of the request path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum AreaStatus {
    Pass,
    Fail,
    Warn,
    Skip,
    Unknown,
}

/// One area (`dns`, `tcp`, `tls`, `http`, `aws`) and why it has its status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AreaResult {
    pub area: String,
    pub status: AreaStatus,
    pub reason: String,
}

fn area(area: &str, status: AreaStatus, reason: String) -> AreaResult {
    AreaResult { area: area.to_owned(), status, reason }
}

/// The per-area view of a run: what passed, failed or was not reached.
pub fn areas(probe: &ProbeReport, facts: Option<&AwsFacts>) -> Vec<AreaResult> {
    use AreaStatus::*;
    let invoke_host = invoke_host(probe);
    let host = invoke_host.as_deref().and_then(|h| probe.dns.iter().find(|d| d.host == h));
    let mut out = Vec::new();
    out.push(match host {
        Some(d) if !d.addresses.is_empty() => {
            let ips: Vec<String> =
                d.addresses.iter().map(|a| format!("{} ({:?})", a.ip, a.class).to_lowercase()).collect();
            let public = d.addresses.iter().any(|a| a.class == AddressClass::Public);
            area("dns", if public { Warn } else { Pass }, format!("{} → {}", d.host, ips.join(", ")))
        }
        Some(d) => area("dns", Fail, format!("{}: {:?}", d.host, d.outcome)),
        None => area("dns", Skip, probe.access.reason.clone()),
    });
    let addrs: Vec<_> = host.map(|d| d.addresses.iter().map(|a| a.ip).collect()).unwrap_or_default();
    let tcp: Vec<_> = probe.tcp.iter().filter(|t| addrs.contains(&t.ip)).collect();
    let connected = tcp.iter().filter(|t| t.outcome == TcpOutcome::Connected).count();
    let tcp_text = tcp
        .iter()
        .map(|t| format!("{}:{} {:?} {} ms", t.ip, t.port, t.outcome, t.ms).to_lowercase())
        .collect::<Vec<_>>()
        .join(", ");
    out.push(if tcp.is_empty() {
        area("tcp", Skip, "no address to connect to".into())
    } else if connected == tcp.len() {
        area("tcp", Pass, tcp_text)
    } else if connected > 0 {
        area("tcp", Warn, tcp_text)
    } else {
        area("tcp", Fail, tcp_text)
    });
    out.push(match &probe.tls {
        Some(t) if t.outcome == TlsOutcome::Ok => {
            area("tls", Pass, format!("{} {}", t.sni, t.version.as_deref().unwrap_or("")))
        }
        Some(t) => area("tls", Fail, format!("{} {:?}", t.sni, t.outcome)),
        None => area("tls", Skip, "no connection".into()),
    });
    out.push(match &probe.invoke {
        Some(i) if i.class == InvokeClass::Ok => area("http", Pass, format!("HTTP {}", i.status.unwrap_or(0))),
        Some(i) if i.status.is_some() => area("http", Fail, format!("HTTP {} {:?}", i.status.unwrap_or(0), i.class)),
        Some(i) => area("http", Skip, i.error.clone().unwrap_or_else(|| "not sent".into())),
        None => area("http", Skip, "no invoke plan".into()),
    });
    out.push(match facts {
        None => area("aws", Skip, "AWS inspection off or no credentials".into()),
        Some(f) if f.gaps.is_empty() => area("aws", Pass, "all facts read".into()),
        Some(f) => {
            // The names, then why (the first gap's reason: one outage usually explains them all).
            let names = f.gaps.keys().cloned().collect::<Vec<_>>().join(", ");
            let why = f.gaps.iter().next().map(|(name, reason)| {
                let reason: String = reason.chars().take(200).collect();
                format!(" ({name}: {reason})")
            });
            area("aws", Unknown, format!("could not read: {names}{}", why.unwrap_or_default()))
        }
    });
    out
}

struct Finding {
    cause: RootCause,
    summary: String,
    evidence: Vec<String>,
    remediation: Vec<String>,
    fixes: Vec<fix::Fix>,
}

impl Finding {
    fn with_fixes(mut self, fixes: Vec<fix::Fix>) -> Finding {
        self.fixes = fixes;
        self
    }
}

fn finding(cause: RootCause, summary: String, evidence: Vec<String>, remediation: Vec<String>) -> Option<Finding> {
    Some(Finding { cause, summary, evidence, remediation, fixes: Vec::new() })
}

/// The evidence line naming the source the endpoint sees, when it was decided from the cluster
/// (`network::source`): the security-group, ACL and `aws:VpcSourceIp` verdicts are about it.
pub(super) fn source_evidence(facts: &AwsFacts) -> Option<String> {
    facts.client.known().and_then(|c| c.source.as_ref()).map(|s| format!("source: {}", s.detail))
}

/// Diagnoses one run. `facts` is `None` when AWS inspection was off or impossible.
pub fn diagnose(probe: &ProbeReport, facts: Option<&AwsFacts>) -> Diagnosis {
    diagnose_in_cluster(probe, facts, None)
}

/// [`diagnose`] with what the cluster says about the probing pod's own egress (its
/// NetworkPolicies): a timeout they explain is `NetworkPolicyBlocked`, named before the VPC's
/// security groups and ACLs (the packets never reach them).
pub fn diagnose_in_cluster(
    probe: &ProbeReport,
    facts: Option<&AwsFacts>,
    cluster: Option<&cluster::ClusterFacts>,
) -> Diagnosis {
    type Rule = fn(&ProbeReport, Option<&AwsFacts>) -> Option<Finding>;
    // Request-path order; `partial` after every rule about the answer (a failure every call
    // hits is named first), `unexplained` last (no answer is never a pass).
    let rules: [Rule; 9] = [
        endpoint_and_api_exist,
        dns::resolution,
        network::connect,
        http::tls,
        http::routing,
        http::answer,
        http::proxy,
        network::partial,
        http::unexplained,
    ];
    // Endpoint and API existence first (nothing else matters without them), then the pod's own
    // NetworkPolicies, then the request path.
    let found = endpoint_and_api_exist(probe, facts)
        .or_else(|| cluster.and_then(|c| cluster::network_policy(probe, c)))
        .or_else(|| rules.iter().skip(1).find_map(|rule| rule(probe, facts)));
    let mut unchecked: Vec<String> = match facts {
        Some(f) => f.gaps.iter().map(|(k, v)| format!("{k}: {v}")).collect(),
        None => vec![
            "AWS facts: inspection off or no credentials; policies, security groups and NACLs were not checked".into(),
        ],
    };
    if let Some(f) = facts
        && f.api.is_not_found()
        && found.as_ref().is_none_or(|f| f.cause != RootCause::ApiNotFound)
    {
        let whose = api_account(probe, facts)
            .filter(|(_, how)| *how != "assumed: the endpoint's account")
            .map(|(a, how)| format!(" (account {a}, {how})"))
            .unwrap_or_default();
        unchecked.push(if api_answered(probe) {
            format!(
                "api: GetRestApi cannot see {} from the inspected account, but API Gateway answered for it{whose}: it is owned by another account; read it with --api-role-arn (spec.aws.apiRoleArn) to check its policy and stage",
                probe.target.api_id
            )
        } else {
            format!(
                "api: GetRestApi finds no API {} in the inspected account; if it lives in another account, read it with --api-role-arn (spec.aws.apiRoleArn)",
                probe.target.api_id
            )
        });
    }
    if let Some(c) = cluster {
        unchecked.extend(c.unchecked());
    }
    if let Some(s) = facts.and_then(|f| f.client.known()).and_then(|c| c.source.as_ref()).filter(|s| s.assumed) {
        unchecked.push(format!("source address: {}", s.detail));
    }
    unchecked.sort();
    let f = found.unwrap_or_else(|| Finding {
        cause: RootCause::Healthy,
        summary: format!("{} answered {} through {:?}", probe.target.api_id, status_text(probe), probe.access.mode),
        evidence: Vec::new(),
        remediation: Vec::new(),
        fixes: Vec::new(),
    });
    Diagnosis {
        root_cause: f.cause,
        summary: f.summary,
        evidence: f.evidence,
        remediation: f.remediation,
        fixes: f.fixes,
        unchecked,
        areas: areas(probe, facts),
        advisories: advisories(probe, facts),
    }
}

/// The diagnosis when the probe itself could not run or report: nothing is known about the path.
/// `fix`: what to do in the caller's context (a pod's events, or this machine's network).
pub fn probe_failed(detail: &str, fix: &str) -> Diagnosis {
    Diagnosis {
        root_cause: RootCause::ProbeFailed,
        summary: format!("the probe could not run: {detail}"),
        evidence: vec![detail.to_owned()],
        remediation: vec![fix.to_owned()],
        fixes: Vec::new(),
        unchecked: vec!["DNS, TCP, TLS and the invoke: the probe did not report".into()],
        areas: ["dns", "tcp", "tls", "http", "aws"]
            .iter()
            .map(|a| area(a, AreaStatus::Unknown, "the probe did not run".into()))
            .collect(),
        advisories: Vec::new(),
    }
}

fn status_text(probe: &ProbeReport) -> String {
    probe.invoke.as_ref().and_then(|i| i.status).map_or_else(|| "nothing".into(), |s| s.to_string())
}

fn endpoint_and_api_exist(probe: &ProbeReport, facts: Option<&AwsFacts>) -> Option<Finding> {
    let facts = facts?;
    let t = &probe.target;
    if facts.endpoint.is_not_found() {
        return finding(
            RootCause::EndpointNotFound,
            format!("VPC endpoint {} does not exist in {}", t.vpce_id, t.region),
            vec![format!("DescribeVpcEndpoints: {} not found", t.vpce_id)],
            vec![
                "Correct spec.endpoint.vpcEndpointId, or inspect from the endpoint's account".into(),
                format!(
                    "If the endpoint is in another region than the API ({}), say so (--vpce-region): an execute-api endpoint reaches only APIs in its own region",
                    t.region
                ),
            ],
        );
    }
    if let Some(e) = facts.endpoint.known() {
        if !e.is_execute_api() {
            return finding(
                RootCause::EndpointWrongService,
                format!("{} is an endpoint for {}, not execute-api", e.id, e.service_name.as_deref().unwrap_or("?")),
                vec![format!("service name: {}", e.service_name.as_deref().unwrap_or("?"))],
                vec![format!("Use an interface endpoint for com.amazonaws.{}.execute-api", t.region)],
            );
        }
        if let Some(region) = e.service_region()
            && region != t.region
        {
            return finding(
                RootCause::CrossAccountRegionMismatch,
                format!("endpoint {} serves execute-api in {region}, the API is in {}", e.id, t.region),
                vec![format!("endpoint service: {}", e.service_name.as_deref().unwrap_or("?"))],
                vec![format!("Create an execute-api interface endpoint in {} (peer the VPCs if needed)", t.region)],
            );
        }
        if !e.state.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("available")) {
            return finding(
                RootCause::EndpointNotAvailable,
                format!("endpoint {} is {}", e.id, e.state.as_deref().unwrap_or("in an unknown state")),
                vec![format!("state: {}", e.state.as_deref().unwrap_or("?"))],
                vec!["Wait for the endpoint to become available, or fix/accept it".into()],
            );
        }
    }
    // Only an HTTP answer can confirm it: without one (DNS/TCP/TLS failed) the network rules
    // run, since the API may simply live in an account the inspection cannot see.
    let got_answer = probe.invoke.as_ref().is_some_and(|i| i.status.is_some());
    if facts.api.is_not_found() && got_answer && !api_answered(probe) {
        return finding(
            RootCause::ApiNotFound,
            format!("no REST API {} in {}", t.api_id, t.region),
            vec![format!("GetRestApi {}: not found", t.api_id)],
            vec!["Correct spec.api.id/region, or set spec.api.accountId and spec.aws.apiRoleArn".into()],
        );
    }
    None
}

/// The host the invoke went to, from its URL (IPv6 literals without brackets).
fn invoke_host(probe: &ProbeReport) -> Option<String> {
    let uri: hyper::Uri = probe.invoke.as_ref()?.url.parse().ok()?;
    Some(uri.host()?.trim_start_matches('[').trim_end_matches(']').to_owned())
}

/// Does the invoke's routing (Host header or `x-apigw-api-id`) name the checked API?
fn routed_to_target(probe: &ProbeReport) -> bool {
    let Some(i) = probe.invoke.as_ref() else { return false };
    let id = &probe.target.api_id;
    let host = i.host_header.split(':').next().unwrap_or_default();
    i.api_id_header.as_deref() == Some(id.as_str())
        || host.starts_with(&format!("{id}.execute-api."))
        || host.starts_with(&format!("{id}-vpce-"))
}

/// Did API Gateway answer *for this API* (a success for a request routed to it, or an error
/// naming its ARN)? Then the API exists, even if GetRestApi cannot see it from the inspected
/// account.
fn api_answered(probe: &ProbeReport) -> bool {
    probe.invoke.as_ref().is_some_and(|i| {
        let success = i.class == InvokeClass::Ok && i.status.is_some_and(|s| (200..400).contains(&s));
        (success && routed_to_target(probe))
            || i.message
                .as_deref()
                .and_then(|m| account_in_message(m, &probe.target.region, &probe.target.api_id))
                .is_some()
    })
}

/// The account in an `arn:{partition}:execute-api:{region}:{account}:{api_id}/…` of an error
/// message; any other ARN (another API, a principal) is ignored.
pub fn account_in_message(message: &str, region: &str, api_id: &str) -> Option<String> {
    message.match_indices("arn:").find_map(|(start, _)| {
        let mut parts = message[start..].splitn(6, ':');
        let (_, partition, service, arn_region, account, rest) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let ok = partition.starts_with("aws")
            && service == "execute-api"
            && arn_region == region
            && account.len() == 12
            && account.bytes().all(|b| b.is_ascii_digit())
            && rest.starts_with(&format!("{api_id}/"));
        ok.then(|| account.to_owned())
    })
}

/// The API's account and how we know it: the check's own statement, the ARN API Gateway put in
/// its answer, or (same-account, the norm) the endpoint's owner.
fn api_account(probe: &ProbeReport, facts: Option<&AwsFacts>) -> Option<(String, &'static str)> {
    if let Some(a) = facts.and_then(|f| f.api_account_id.clone()) {
        return Some((a, "as configured"));
    }
    let t = &probe.target;
    if let Some(a) = probe
        .invoke
        .as_ref()
        .and_then(|i| i.message.as_deref())
        .and_then(|m| account_in_message(m, &t.region, &t.api_id))
    {
        return Some((a, "from the ARN in API Gateway's answer"));
    }
    let owner = facts.and_then(|f| f.endpoint.known()).and_then(|e| e.owner_id.clone())?;
    Some((owner, "assumed: the endpoint's account"))
}

/// `(endpoint owner, API account)` when they differ: the article's cross-account case.
fn cross_account(probe: &ProbeReport, facts: Option<&AwsFacts>) -> Option<(String, String)> {
    let owner = facts?.endpoint.known()?.owner_id.clone()?;
    let (api, _) = api_account(probe, facts)?;
    (owner != api).then_some((owner, api))
}

/// The evidence line for a cross-account call (endpoint owner, API account).
fn cross_account_evidence(t: &TargetSummary, owner: &str, api: &str) -> String {
    format!("cross-account: {} belongs to account {owner}, API {} to account {api}", t.vpce_id, t.api_id)
}

/// `aws apigateway create-deployment …` for the checked stage.
fn redeploy_command(t: &TargetSummary) -> String {
    format!("aws apigateway create-deployment --rest-api-id {} --stage-name {}", t.api_id, t.stage)
}

#[cfg(test)]
mod properties;
#[cfg(test)]
mod source_tests;
#[cfg(test)]
mod tests;

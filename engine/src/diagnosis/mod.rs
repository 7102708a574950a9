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
}

fn finding(cause: RootCause, summary: String, evidence: Vec<String>, remediation: Vec<String>) -> Option<Finding> {
    Some(Finding { cause, summary, evidence, remediation })
}

/// Diagnoses one run. `facts` is `None` when AWS inspection was off or impossible.
pub fn diagnose(probe: &ProbeReport, facts: Option<&AwsFacts>) -> Diagnosis {
    type Rule = fn(&ProbeReport, Option<&AwsFacts>) -> Option<Finding>;
    let rules: [Rule; 8] = [endpoint_and_api_exist, dns, tcp, tls, routing, http, proxy, unexplained];
    let found = rules.iter().find_map(|rule| rule(probe, facts));
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
    unchecked.sort();
    let f = found.unwrap_or_else(|| Finding {
        cause: RootCause::Healthy,
        summary: format!("{} answered {} through {:?}", probe.target.api_id, status_text(probe), probe.access.mode),
        evidence: Vec::new(),
        remediation: Vec::new(),
    });
    Diagnosis {
        root_cause: f.cause,
        summary: f.summary,
        evidence: f.evidence,
        remediation: f.remediation,
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
        unchecked: vec!["DNS, TCP, TLS and the invoke: the probe did not report".into()],
        areas: ["dns", "tcp", "tls", "http", "aws"]
            .iter()
            .map(|a| area(a, AreaStatus::Unknown, "the probe did not run".into()))
            .collect(),
        advisories: Vec::new(),
    }
}

/// Last rule: no answer from API Gateway and nothing above explains why. `Healthy` needs an
/// expected status, so this never lets a silent run pass.
fn unexplained(probe: &ProbeReport, _: Option<&AwsFacts>) -> Option<Finding> {
    match &probe.invoke {
        Some(i) if i.class == InvokeClass::Ok => None,
        Some(i) => {
            let what = i.error.clone().unwrap_or_else(|| format!("{:?}", i.class));
            let mut evidence = vec![format!("{}: {what}", i.url)];
            let first_fix = match &probe.tls {
                Some(t) => {
                    evidence.push(format!("TLS with {} at {}: {:?}", t.sni, t.ip, t.outcome));
                    "TLS succeeded but no HTTP answer came: retry with a longer --timeout; look for a firewall or proxy that accepts TLS but drops requests".to_owned()
                }
                None => {
                    let tcp: Vec<String> =
                        probe.tcp.iter().map(|t| format!("{}:{} {:?}", t.ip, t.port, t.outcome)).collect();
                    if !tcp.is_empty() {
                        evidence.push(format!("TCP: {}", tcp.join(", ")));
                    }
                    if probe.tcp.iter().any(|t| t.outcome == TcpOutcome::Unreachable) {
                        "No route to the endpoint's address from here: check route tables, transit gateway, VPN or Direct Connect routes towards the endpoint's subnets".to_owned()
                    } else {
                        "The connection never completed: check security groups, NACLs and routes between this client and the endpoint's subnets".to_owned()
                    }
                }
            };
            finding(
                RootCause::Unknown,
                format!("{} got no answer from API Gateway ({what}) and no rule explains it", i.url),
                evidence,
                vec![first_fix, RootCause::Unknown.typical_fix().to_owned()],
            )
        }
        None => finding(
            RootCause::Unknown,
            format!("the API was not invoked: {}", probe.access.reason),
            vec![format!("access {:?}: {}", probe.access.mode, probe.access.reason)],
            vec![
                "Give the endpoint's DNS names (--vpce-dns) or enable AWS inspection so they are read, or choose another access mode"
                    .into(),
            ],
        ),
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

/// This exact call as IAM sees it: anonymous, `execute-api:Invoke` on the method's ARN in
/// `account`, through the endpoint (no `aws:SourceIp` there), from its VPC and the client's IP.
fn anonymous_call(
    probe: &ProbeReport,
    facts: &AwsFacts,
    account: String,
) -> (crate::policy::ApiRef, String, crate::policy::RequestContext) {
    use crate::policy::{ApiRef, CallerPrincipal, RequestContext, execute_api_arn};
    let t = &probe.target;
    let api_ref = ApiRef::new(&t.region, account, &t.api_id);
    let arn = execute_api_arn(&api_ref, &t.stage, &t.method, &t.path);
    let mut request = RequestContext::new(CallerPrincipal::Anonymous, arn.clone())
        .source_vpce(&t.vpce_id)
        .without_key("aws:SourceIp")
        .without_key("aws:PrincipalAccount");
    if let Some(vpc) = facts.endpoint.known().and_then(|e| e.vpc_id.clone()) {
        request = request.source_vpc(vpc);
    }
    if let Some(c) = facts.client.known() {
        request = request.vpc_source_ip(c.ip.to_string());
    }
    (api_ref, arn, request)
}

fn dns(probe: &ProbeReport, facts: Option<&AwsFacts>) -> Option<Finding> {
    let mode = probe.access.mode;
    let invoke_host = invoke_host(probe);
    let host_result = probe.dns.iter().find(|d| Some(&d.host) == invoke_host.as_ref())?;
    let api = probe.dns.iter().find(|d| d.role == HostRole::Api);
    if host_result.addresses.is_empty() {
        let associated = facts.and_then(|f| f.api.known()).map(|a| a.vpc_endpoint_ids.contains(&probe.target.vpce_id));
        if host_result.role == HostRole::EndpointAlias
            && host_result.outcome == DnsOutcome::NxDomain
            && associated == Some(false)
        {
            return finding(
                RootCause::ApiNotAssociatedWithEndpoint,
                format!(
                    "{} does not exist: API {} is not associated with {}",
                    host_result.host, probe.target.api_id, probe.target.vpce_id
                ),
                vec![format!("{}: NXDOMAIN", host_result.host), "API vpcEndpointIds does not list the endpoint".into()],
                vec![
                    format!(
                        "aws apigateway update-rest-api --rest-api-id {} --patch-operations op=add,path=/endpointConfiguration/vpcEndpointIds,value={}",
                        probe.target.api_id, probe.target.vpce_id
                    ),
                    "or use endpointHost/apiIdHeader access".into(),
                ],
            );
        }
        return finding(
            RootCause::DnsResolutionFailed,
            format!("{} did not resolve ({:?}) via {}", host_result.host, host_result.outcome, probe.resolver),
            vec![format!("{}: {:?}{}", host_result.host, host_result.outcome, host_result.error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default())],
            vec!["Check that the pod's resolver reaches the VPC's Amazon-provided DNS (CoreDNS forwarders, DHCP options)".into()],
        );
    }
    if mode == AccessMode::PrivateDns
        && let Some(api) = api
        && api.addresses.iter().any(|a| a.class == AddressClass::Public)
    {
        let ips: Vec<String> = api.addresses.iter().map(|a| a.ip.to_string()).collect();
        if let Some(vpc) = facts.and_then(|f| f.vpc.known())
            && !(vpc.enable_dns_support && vpc.enable_dns_hostnames)
        {
            return finding(
                RootCause::VpcDnsAttributesDisabled,
                format!(
                    "VPC {} has DNS support/hostnames off, so the endpoint's private DNS cannot answer",
                    vpc.vpc_id
                ),
                vec![
                    format!("{} → {} (public)", api.host, ips.join(", ")),
                    format!(
                        "enableDnsSupport={} enableDnsHostnames={}",
                        vpc.enable_dns_support, vpc.enable_dns_hostnames
                    ),
                ],
                vec![format!(
                    "aws ec2 modify-vpc-attribute --vpc-id {} --enable-dns-support / --enable-dns-hostnames",
                    vpc.vpc_id
                )],
            );
        }
        return finding(
            RootCause::PrivateDnsDisabled,
            format!("{} resolves to public addresses: private DNS is not answering for it", api.host),
            vec![format!("{} → {} (public)", api.host, ips.join(", "))],
            vec![
                format!("Enable private DNS names on {}", probe.target.vpce_id),
                format!("or call https://{}/{}", probe.target.alias_host(), probe.target.stage),
            ],
        );
    }
    if mode == AccessMode::PrivateDns && probe.dns_comparison == DnsComparison::Disjoint {
        return finding(
            RootCause::DnsMismatch,
            "the API host resolves to addresses that are not this endpoint's".into(),
            vec![format!("API host and endpoint names share no address ({:?})", probe.dns_comparison)],
            vec!["Find the private hosted zone or resolver rule answering for execute-api and remove it, or use the alias host".into()],
        );
    }
    None
}

fn tcp(probe: &ProbeReport, facts: Option<&AwsFacts>) -> Option<Finding> {
    let tls_started = probe.tls.is_some();
    if tls_started || probe.invoke.is_none() {
        return None;
    }
    let host = invoke_host(probe)?;
    let addrs: Vec<_> =
        probe.dns.iter().filter(|d| d.host == host).flat_map(|d| d.addresses.iter().map(|a| a.ip)).collect();
    let results: Vec<_> = probe.tcp.iter().filter(|t| addrs.contains(&t.ip)).collect();
    if results.is_empty() {
        return None;
    }
    let evidence: Vec<String> =
        results.iter().map(|t| format!("{}:{} {:?} after {} ms", t.ip, t.port, t.outcome, t.ms)).collect();
    if results.iter().all(|t| t.outcome == TcpOutcome::Refused) {
        return finding(
            RootCause::ConnectRefused,
            format!("{host} refused TCP {}: the address is not the VPC endpoint", results[0].port),
            evidence,
            vec!["Check DNS: the name resolves to something other than the endpoint's network interfaces".into()],
        );
    }
    if !results.iter().all(|t| t.outcome == TcpOutcome::Timeout) {
        return None;
    }
    // Why: the facts decide between security groups, NACLs and "unexplained".
    let sg = facts.and_then(|f| {
        let e = f.endpoint.known()?;
        let c = f.client.known()?;
        let groups = f.security_groups.known()?;
        Some(crate::network::evaluate_security_groups(
            &crate::network::Client {
                ip: c.ip,
                security_group_ids: c.interface.security_group_ids.clone(),
                subnet_id: c.interface.subnet_id.clone(),
                subnet_cidr: None,
            },
            &crate::network::Endpoint { addresses: e.addresses(), security_group_ids: e.security_group_ids.clone() },
            groups,
        ))
    });
    if let Some(verdict) = &sg
        && verdict.status() == crate::network::SgStatus::Blocked
    {
        let mut ev = evidence;
        ev.push(verdict.to_string());
        return finding(
            RootCause::SecurityGroupBlocked,
            format!("TCP 443 to the endpoint times out: {verdict}"),
            ev,
            verdict.fixes(),
        );
    }
    // Then the stateless NACLs of both subnets, per timing-out endpoint address.
    if let Some(f) = facts
        && let (Some(c), Some(e), Some(acls)) = (f.client.known(), f.endpoint.known(), f.network_acls.known())
    {
        let acl_of =
            |subnet: Option<&str>| subnet.and_then(|s| acls.iter().find(|a| a.subnet_ids.iter().any(|x| x == s)));
        let cidr_of = |subnet: Option<&str>| subnet.and_then(|s| f.subnet_cidrs.get(s)).and_then(|c| c.parse().ok());
        let client_subnet = c.interface.subnet_id.as_deref();
        for iface in &e.interfaces {
            let Some(ip) = iface.private_ips.first().copied() else { continue };
            let endpoint_subnet = iface.subnet_id.as_deref();
            let verdict = crate::network::evaluate_nacls(
                crate::network::NaclSide {
                    ip: c.ip,
                    subnet_id: client_subnet,
                    subnet_cidr: cidr_of(client_subnet),
                    nacl: acl_of(client_subnet),
                },
                crate::network::NaclSide {
                    ip,
                    subnet_id: endpoint_subnet,
                    subnet_cidr: cidr_of(endpoint_subnet),
                    nacl: acl_of(endpoint_subnet),
                },
            );
            if matches!(
                verdict.status,
                crate::network::NaclStatus::Blocked | crate::network::NaclStatus::PartiallyBlocked
            ) {
                let mut ev = evidence;
                ev.push(verdict.to_string());
                return finding(
                    RootCause::NetworkAclBlocked,
                    format!("TCP 443 to the endpoint times out: a network ACL blocks it ({verdict})"),
                    ev,
                    verdict.fixes(),
                );
            }
        }
    }
    finding(
        RootCause::ConnectTimeout,
        format!("TCP {} to {host} times out and no security group or network ACL explains it", results[0].port),
        evidence,
        vec!["Check the NACLs of both subnets (443 in, 1024-65535 back), route tables and firewalls".into()],
    )
}

fn tls(probe: &ProbeReport, _: Option<&AwsFacts>) -> Option<Finding> {
    let tls = probe.tls.as_ref()?;
    if tls.outcome == TlsOutcome::Ok {
        return None;
    }
    let mut evidence = vec![format!("TLS with SNI {} at {}: {:?}", tls.sni, tls.ip, tls.outcome)];
    if !tls.sans.is_empty() {
        evidence.push(format!("certificate names: {}", tls.sans.join(", ")));
    }
    finding(
        RootCause::TlsFailure,
        format!("TLS handshake with {} failed ({:?})", tls.sni, tls.outcome),
        evidence,
        vec!["Call an AWS hostname (API host, alias host or vpce host) so the *.execute-api certificate matches; check for TLS-inspecting proxies".into()],
    )
}

/// `(api id, vpce id)` a hostname names: `{api}.execute-api…`, `{api}-{vpce}.execute-api…` or an
/// endpoint name `{vpce}-{suffix}[-{az}].execute-api.{region}.vpce.amazonaws.com`.
fn ids_in_host(host: &str) -> (Option<&str>, Option<&str>) {
    let first = host.split('.').next().unwrap_or_default();
    let is_api_id = |s: &str| s.len() == 10 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let vpce_prefix = |s: &'_ str| -> Option<usize> {
        let hex = s.strip_prefix("vpce-")?;
        let n = hex.bytes().take_while(|b| b.is_ascii_hexdigit()).count();
        (8..=17).contains(&n).then_some(5 + n)
    };
    if crate::probe::target::is_vpce_host(host) {
        return (None, vpce_prefix(first).map(|n| &first[..n]));
    }
    if !host.contains(".execute-api.") {
        return (None, None);
    }
    if is_api_id(first) {
        return (Some(first), None);
    }
    match first.split_once('-') {
        Some((api, rest)) if is_api_id(api) => {
            (Some(api), vpce_prefix(rest).filter(|n| *n == rest.len()).map(|_| rest))
        }
        _ => (None, None),
    }
}

/// A URL checked as given (`--invoke-url`) that is routed to another API or through another
/// endpoint: whatever it answers is not about the checked API.
fn routing(probe: &ProbeReport, _: Option<&AwsFacts>) -> Option<Finding> {
    let invoke = probe.invoke.as_ref()?;
    invoke.status?;
    let t = &probe.target;
    let connect = invoke_host(probe)?;
    let header_host = invoke.host_header.split(':').next().unwrap_or_default();
    let (header_api, _) = ids_in_host(header_host);
    let routed_api = invoke.api_id_header.as_deref().or(header_api);
    let (_, via_vpce) = ids_in_host(&connect);
    let (_, alias_vpce) = ids_in_host(header_host);
    let mut evidence = vec![format!(
        "{} sent with Host: {}{}",
        invoke.url,
        invoke.host_header,
        invoke.api_id_header.as_deref().map(|a| format!(", x-apigw-api-id: {a}")).unwrap_or_default()
    )];
    let alias = format!("https://{}{}", t.alias_host(), t.stage_path());
    if let Some(other) = routed_api.filter(|a| *a != t.api_id) {
        evidence.push(format!("API Gateway routes this request to API {other}"));
        return finding(
            RootCause::InvokeUrlInvalid,
            format!("the request is routed to API {other}, not {}: the answer is not about the checked API", t.api_id),
            evidence,
            vec![
                format!("Use 'Host: {}' or 'x-apigw-api-id: {}' (or the URL {alias})", t.api_host(), t.api_id),
                "or correct the API id the check is for".into(),
            ],
        );
    }
    if let Some(other) = via_vpce.or(alias_vpce).filter(|v| *v != t.vpce_id) {
        evidence.push(format!("the URL names endpoint {other}"));
        return finding(
            RootCause::InvokeUrlInvalid,
            format!("the URL goes through VPC endpoint {other}, not {}", t.vpce_id),
            evidence,
            vec![format!("Call {alias}, or check the endpoint your workload is meant to use")],
        );
    }
    None
}

fn http(probe: &ProbeReport, facts: Option<&AwsFacts>) -> Option<Finding> {
    let invoke = probe.invoke.as_ref()?;
    let status = invoke.status?;
    let mut evidence = vec![format!("{} → HTTP {status} {:?}", invoke.url, invoke.class)];
    if let Some(m) = &invoke.message {
        evidence.push(format!("message: {m}"));
    }
    if let Some(r) = &invoke.request_id {
        evidence.push(format!("x-amzn-RequestId: {r}"));
    }
    let requires_auth = facts.and_then(|f| f.method.known()).is_some_and(|m| m.requires_authorization());
    let cause = match invoke.class {
        InvokeClass::Ok => return None,
        InvokeClass::MissingAuthenticationToken => RootCause::StageOrResourceNotFound,
        InvokeClass::Unauthorized | InvokeClass::AuthorizerDenied | InvokeClass::SignatureError => {
            RootCause::AuthorizationRequired
        }
        // API Gateway could not tell which API was meant: that precedes any auth question.
        InvokeClass::Forbidden
            if invoke.api_id_header.is_none()
                && crate::probe::target::is_vpce_host(invoke.host_header.split(':').next().unwrap_or_default()) =>
        {
            RootCause::InvokeUrlInvalid
        }
        _ if requires_auth => RootCause::AuthorizationRequired,
        InvokeClass::Forbidden => {
            let not_private =
                facts.and_then(|f| f.api.known()).is_some_and(|a| !a.endpoint_types.iter().any(|t| t == "PRIVATE"));
            match (not_private, probe.access.mode) {
                (true, AccessMode::PrivateDns) => RootCause::PublicApiShadowedByPrivateDns,
                (true, _) => RootCause::ApiNotPrivate,
                _ => RootCause::UnexpectedStatus,
            }
        }
        // Policy answers: the stored policies say which layer and statement, when we have them.
        InvokeClass::ExplicitDeny | InvokeClass::AnonymousNotAuthorized => {
            let t = &probe.target;
            let cross = cross_account(probe, facts);
            if let Some(mut f) = facts.and_then(|f| policy_finding(probe, f, &evidence)) {
                if let Some((owner, api)) = &cross
                    && f.cause != RootCause::EndpointPolicyDenied
                {
                    f.evidence.push(cross_account_evidence(t, owner, api));
                    if let Some(first) = f.remediation.first_mut() {
                        *first = format!(
                            "In account {api}, the API's owner (cross-account access from account {owner}'s endpoint is granted only by the API's resource policy): {first}"
                        );
                    }
                }
                return Some(f);
            }
            if let Some(f) = facts.and_then(|f| endpoint_policy_alone(probe, f, &evidence)) {
                return Some(f);
            }
            let cause = if invoke.class == InvokeClass::ExplicitDeny {
                RootCause::ResourcePolicyExplicitDeny
            } else {
                RootCause::ResourcePolicyDenied
            };
            if let Some((owner, api)) = cross {
                evidence.push(cross_account_evidence(t, &owner, &api));
                return finding(
                    cause,
                    format!("{}: HTTP {status} ({:?})", cause.meaning().trim_end_matches('.'), invoke.class),
                    evidence,
                    vec![
                        format!(
                            "Cross-account access is granted only by the API's resource policy (in account {api}): it must allow aws:SourceVpce = {} (or that endpoint's VPC id) from account {owner}; the endpoint and the API must be in the same region ({})",
                            t.vpce_id, t.region
                        ),
                        format!("then redeploy: {}", redeploy_command(t)),
                    ],
                );
            }
            cause
        }
        _ => RootCause::UnexpectedStatus,
    };
    if cause == RootCause::InvokeUrlInvalid {
        return invoke_url_invalid(probe, invoke, evidence);
    }
    finding(
        cause,
        format!("{}: HTTP {status} ({:?})", cause.meaning().trim_end_matches('.'), invoke.class),
        evidence,
        vec![cause.typical_fix().to_owned()],
    )
}

/// A vpce hostname called without `Host`/`x-apigw-api-id`: API Gateway cannot tell which API is
/// meant. The fix names the exact header or URL for this API.
fn invoke_url_invalid(
    probe: &ProbeReport,
    invoke: &crate::probe::report::InvokeResult,
    mut evidence: Vec<String>,
) -> Option<Finding> {
    let t = &probe.target;
    let vpce_host = invoke.host_header.split(':').next().unwrap_or_default();
    let (api_host, alias, path) = (t.api_host(), t.alias_host(), t.stage_path());
    evidence.push(format!("the request to {vpce_host} carried Host: {} and no x-apigw-api-id", invoke.host_header));
    finding(
        RootCause::InvokeUrlInvalid,
        format!(
            "{vpce_host} is the endpoint's own name: without a Host or x-apigw-api-id header API Gateway cannot tell which API is meant"
        ),
        evidence,
        vec![
            format!("Send the header 'Host: {api_host}' with requests to https://{vpce_host}{path}"),
            format!("or send 'x-apigw-api-id: {}' instead", t.api_id),
            format!("or call https://{alias}{path} (needs the API associated with {})", t.vpce_id),
        ],
    )
}

/// The API's policy is unreadable (another account): the endpoint policy, readable here, may
/// still be the layer that denied. Only a definite deny is reported.
fn endpoint_policy_alone(probe: &ProbeReport, facts: &AwsFacts, live: &[String]) -> Option<Finding> {
    use crate::policy::{Decision, PolicyDocument, evaluate};
    let t = &probe.target;
    let text = facts.endpoint.known()?.policy.as_deref()?;
    let policy = PolicyDocument::parse(text).ok()?;
    let (account, _) = api_account(probe, Some(facts))?;
    let (_, arn, request) = anonymous_call(probe, facts, account);
    match evaluate(&policy, &request) {
        Decision::ExplicitDeny { .. } | Decision::ImplicitDeny => {
            let mut evidence = live.to_vec();
            evidence.push(format!("the endpoint policy of {} does not allow execute-api:Invoke on {arn}", t.vpce_id));
            finding(
                RootCause::EndpointPolicyDenied,
                format!("the VPC endpoint policy of {} denies execute-api:Invoke on {}", t.vpce_id, t.api_id),
                evidence,
                vec![format!("Allow execute-api:Invoke on {arn} for principal \"*\" in the policy of {}", t.vpce_id)],
            )
        }
        _ => None,
    }
}

/// Why API Gateway said "not authorized": evaluates the stored resource and endpoint policies
/// for this exact call (anonymous, through this endpoint, from this VPC and pod IP).
fn policy_finding(probe: &ProbeReport, facts: &AwsFacts, live: &[String]) -> Option<Finding> {
    use crate::policy::{
        AccessVerdict, Decision, PolicyDocument, PolicyLayer, ResourcePolicyOutcome, evaluate_private_api_access,
    };
    let t = &probe.target;
    let api = facts.api.known()?;
    let endpoint = facts.endpoint.known();
    let mut evidence = live.to_vec();
    let Some(policy_text) = &api.policy else {
        evidence.push(format!("GetRestApi {}: no resource policy", t.api_id));
        return finding(
            RootCause::ResourcePolicyMissing,
            format!("private API {} has no resource policy, so every call is denied", t.api_id),
            evidence,
            vec![
                format!("Attach a resource policy allowing execute-api:Invoke from {} (aws:SourceVpce)", t.vpce_id),
                format!("then redeploy: {}", redeploy_command(t)),
            ],
        );
    };
    let resource = PolicyDocument::parse(policy_text).ok()?;
    let endpoint_policy = endpoint.and_then(|e| e.policy.as_deref()).and_then(|p| PolicyDocument::parse(p).ok());
    let account = api_account(probe, Some(facts)).map_or_else(|| "000000000000".to_owned(), |(a, _)| a);
    let (api_ref, arn, request) = anonymous_call(probe, facts, account);
    let access = evaluate_private_api_access(Some(&resource), endpoint_policy.as_ref(), &api_ref, &request);
    let statement = match &access.resource_policy {
        ResourcePolicyOutcome::Evaluated {
            decision: Decision::ExplicitDeny { statement } | Decision::Allow { statement },
        } => Some(statement.to_string()),
        _ => None,
    };
    evidence.push(format!("request evaluated: anonymous, {arn}, aws:SourceVpce={}", t.vpce_id));
    let redeploy = redeploy_command(t);
    match access.verdict {
        AccessVerdict::Denied { layer: PolicyLayer::EndpointPolicy, .. } => {
            evidence.push(format!("the endpoint policy of {} does not allow the call", t.vpce_id));
            finding(
                RootCause::EndpointPolicyDenied,
                format!("the VPC endpoint policy of {} denies execute-api:Invoke on {}", t.vpce_id, t.api_id),
                evidence,
                vec![format!("Allow execute-api:Invoke on {arn} for principal \"*\" in the policy of {}", t.vpce_id)],
            )
        }
        AccessVerdict::Denied { layer: PolicyLayer::ResourcePolicy, explicit: true } => {
            let st = statement.unwrap_or_else(|| "a Deny statement".into());
            evidence.push(format!("resource policy: {st} denies"));
            finding(
                RootCause::ResourcePolicyExplicitDeny,
                format!("statement {st} of {}'s resource policy denies calls through {}", t.api_id, t.vpce_id),
                evidence,
                vec![
                    format!("Change {st}'s condition (aws:SourceVpce / aws:SourceVpc) to include {}", t.vpce_id),
                    format!("then redeploy: {redeploy}"),
                ],
            )
        }
        AccessVerdict::Denied { layer: PolicyLayer::ResourcePolicy, explicit: false } => {
            evidence.push("resource policy: no Allow statement matches".into());
            finding(
                RootCause::ResourcePolicyDenied,
                format!("no statement of {}'s resource policy allows calls through {}", t.api_id, t.vpce_id),
                evidence,
                vec![
                    format!(
                        "Add an Allow for execute-api:Invoke on execute-api:/* with aws:SourceVpce = {}",
                        t.vpce_id
                    ),
                    format!("then redeploy: {redeploy}"),
                ],
            )
        }
        AccessVerdict::Allowed => {
            evidence.push(format!("the stored resource policy allows the call ({})", statement.unwrap_or_default()));
            finding(
                RootCause::ResourcePolicyNotDeployed,
                format!(
                    "the stored policy of {} allows this call but API Gateway denies it: the stage was not redeployed",
                    t.api_id
                ),
                evidence,
                vec![format!("Create a new deployment of stage {}: {redeploy}", t.stage)],
            )
        }
        AccessVerdict::Undetermined { reason, .. } => {
            evidence.push(format!("the stored policies could not be evaluated: {reason:?}"));
            None
        }
    }
}

fn proxy(probe: &ProbeReport, _: Option<&AwsFacts>) -> Option<Finding> {
    let proxied = probe.proxied.first()?;
    finding(
        RootCause::ProxyInterference,
        format!(
            "the workload's proxy settings would send {} through {}",
            proxied.host,
            proxied.via.as_deref().unwrap_or("a proxy")
        ),
        probe.proxied.iter().map(|p| format!("{} via {}", p.host, p.via.as_deref().unwrap_or("?"))).collect(),
        vec![format!("Add .execute-api.{}.amazonaws.com and .vpce.amazonaws.com to NO_PROXY", probe.target.region)],
    )
}

#[cfg(test)]
mod tests;

//! Rules on what answered: TLS, where the request was routed, API Gateway's answer class, the
//! proxy environment, and the last rule that never lets a silent run pass.

use super::*;

pub(super) fn tls(probe: &ProbeReport, _: Option<&AwsFacts>) -> Option<Finding> {
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
pub(super) fn ids_in_host(host: &str) -> (Option<&str>, Option<&str>) {
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
pub(super) fn routing(probe: &ProbeReport, _: Option<&AwsFacts>) -> Option<Finding> {
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

pub(super) fn answer(probe: &ProbeReport, facts: Option<&AwsFacts>) -> Option<Finding> {
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
        InvokeClass::MissingAuthenticationToken => return missing_authentication_token(probe, facts, evidence),
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
        InvokeClass::Forbidden => return forbidden(probe, facts, evidence),
        _ if requires_auth => RootCause::AuthorizationRequired,
        // Policy answers: the stored policies say which layer and statement, when we have them.
        InvokeClass::ExplicitDeny | InvokeClass::AnonymousNotAuthorized => {
            let t = &probe.target;
            let cross = cross_account(probe, facts);
            if let Some(mut f) = facts.and_then(|f| super::policy::policy_finding(probe, f, &evidence)) {
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
            if let Some(f) = facts.and_then(|f| super::policy::endpoint_policy_alone(probe, f, &evidence)) {
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

pub(super) fn proxy(probe: &ProbeReport, _: Option<&AwsFacts>) -> Option<Finding> {
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

/// Last rule: no answer from API Gateway and nothing above explains why. `Healthy` needs an
/// expected status, so this never lets a silent run pass.
pub(super) fn unexplained(probe: &ProbeReport, _: Option<&AwsFacts>) -> Option<Finding> {
    match &probe.invoke {
        Some(i) if i.class == InvokeClass::Ok => contradiction(probe, i).map(|why| Finding {
            cause: RootCause::Unknown,
            summary: format!("the invoke is reported successful, but the report contradicts it: {why}"),
            evidence: vec![why],
            remediation: vec![
                "Re-run the check; if it repeats, the probe image or its report is not the one pvtapi ships (spec.probe.image)"
                    .into(),
            ],
            fixes: Vec::new(),
        }),
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

/// What decides an ambiguous answer, when it could not be read: `"GetStage prod (reason)"`.
fn undecided<T>(what: &str, fact: Option<&crate::aws::Fact<T>>) -> Option<String> {
    match fact {
        None => Some(format!("{what} (AWS inspection off)")),
        Some(f) if f.known().is_none() && !f.is_not_found() => {
            Some(format!("{what} ({})", f.gap().unwrap_or_else(|| "not read".into())))
        }
        _ => None,
    }
}

/// 403 "Missing Authentication Token" is API Gateway's answer for a missing stage, a missing
/// resource, a missing method **and** an unsigned call to an `AWS_IAM` method. The stage and
/// method facts tell them apart; when they could not be read, the answer says which would.
fn missing_authentication_token(
    probe: &ProbeReport,
    facts: Option<&AwsFacts>,
    mut evidence: Vec<String>,
) -> Option<Finding> {
    let t = &probe.target;
    let stage = facts.map(|f| &f.stage);
    let method = facts.map(|f| &f.method);
    let account = facts.and_then(|f| fix::api_account_if_other(f, api_account(probe, Some(f)).map(|a| a.0).as_deref()));
    if stage.is_some_and(|s| s.is_not_found()) {
        evidence.push(format!("GetStage {}/{}: the stage does not exist", t.api_id, t.stage));
        return finding(
            RootCause::StageOrResourceNotFound,
            format!("stage {} does not exist in API {}: API Gateway has no route for the call", t.stage, t.api_id),
            evidence,
            vec![
                format!("Deploy the API to stage {}: {}", t.stage, redeploy_command(t)),
                "or correct spec.api.stage to a deployed stage".into(),
            ],
        )
        .map(|f| f.with_fixes(vec![fix::redeploy(t).in_account(account)]));
    }
    if let Some(crate::aws::Fact::NotFound { detail }) = method {
        evidence.push(format!("GetResources: {detail}"));
        return finding(
            RootCause::StageOrResourceNotFound,
            format!("{} {} is not defined in API {} ({detail})", t.method, t.path, t.api_id),
            evidence,
            vec![format!(
                "Define {} {} in the API and deploy it ({}), or correct spec.api.path/method",
                t.method,
                t.path,
                redeploy_command(t)
            )],
        );
    }
    if let Some(m) = method.and_then(|m| m.known()) {
        if m.authorization_type.eq_ignore_ascii_case("AWS_IAM") {
            evidence.push(format!("{} {}: authorizationType AWS_IAM", m.http_method, m.resource_path));
            return finding(
                RootCause::AuthorizationRequired,
                format!(
                    "{} {} uses AWS_IAM authorization: an unsigned request gets 'Missing Authentication Token', the path and stage exist",
                    m.http_method, m.resource_path
                ),
                evidence,
                vec![
                    "Sign the workload's requests with SigV4 (its IAM role needs execute-api:Invoke on the method's ARN)".into(),
                    "or point the check at a path whose method has authorizationType NONE".into(),
                ],
            );
        }
        if stage.and_then(|s| s.known()).is_some() {
            // The stage and the method both exist in the API, yet API Gateway has no route: the
            // stage's deployment is older than the method.
            evidence.push(format!(
                "GetStage {}: exists; {} {} exists in the API (authorizationType {})",
                t.stage, m.http_method, m.resource_path, m.authorization_type
            ));
            return finding(
                RootCause::StageOrResourceNotFound,
                format!(
                    "{} {} exists in API {} but not in stage {}'s deployment: the API was changed after it was last deployed",
                    m.http_method, m.resource_path, t.api_id, t.stage
                ),
                evidence,
                vec![format!("Redeploy the stage: {}", redeploy_command(t))],
            )
            .map(|f| f.with_fixes(vec![fix::redeploy(t).in_account(account)]));
        }
    }
    let deciding: Vec<String> = [
        undecided(&format!("GetStage {}", t.stage), stage),
        undecided(&format!("GetResources/GetMethod {} {}", t.method, t.path), method),
    ]
    .into_iter()
    .flatten()
    .collect();
    evidence.push(format!(
        "undecided between a missing stage, resource or method and an AWS_IAM method called unsigned: {} would decide",
        deciding.join(" and ")
    ));
    finding(
        RootCause::StageOrResourceNotFound,
        format!(
            "API Gateway answered 'Missing Authentication Token': stage {}, {} {} missing, or the method needs SigV4 signing (not decided: {} could not be read)",
            t.stage,
            t.method,
            t.path,
            deciding.join(", ")
        ),
        evidence,
        vec![
            format!(
                "Check that stage {} exists and {} {} is deployed to it; redeploy: {}",
                t.stage,
                t.method,
                t.path,
                redeploy_command(t)
            ),
            "If the method uses AWS_IAM authorization, sign the requests with SigV4".into(),
            "Give the operator apigateway:GET on the API so the check can tell these apart".into(),
        ],
    )
}

/// 403 `{"message":"Forbidden"}` is shared by a wrong Host, a public API reached through private
/// DNS, an API whose execute-api endpoint is off, a missing API key and AWS WAF. The API, method
/// and stage facts decide; what could not be read is named.
fn forbidden(probe: &ProbeReport, facts: Option<&AwsFacts>, mut evidence: Vec<String>) -> Option<Finding> {
    let t = &probe.target;
    let api = facts.and_then(|f| f.api.known());
    let account = facts.and_then(|f| fix::api_account_if_other(f, api_account(probe, Some(f)).map(|a| a.0).as_deref()));
    if let Some(a) = api
        && !a.endpoint_types.iter().any(|e| e == "PRIVATE")
    {
        let cause = if probe.access.mode == AccessMode::PrivateDns {
            RootCause::PublicApiShadowedByPrivateDns
        } else {
            RootCause::ApiNotPrivate
        };
        evidence.push(format!("GetRestApi {}: endpoint type {}", t.api_id, a.endpoint_types.join(", ")));
        return finding(
            cause,
            format!("{}: HTTP 403 (Forbidden)", cause.meaning().trim_end_matches('.')),
            evidence,
            vec![cause.typical_fix().to_owned()],
        );
    }
    if let Some(a) = api
        && a.disable_execute_api_endpoint
        && probe.access.mode != AccessMode::CustomDomain
    {
        evidence.push(format!("GetRestApi {}: disableExecuteApiEndpoint = true", t.api_id));
        return finding(
            RootCause::ExecuteApiEndpointDisabled,
            format!(
                "API {} has its default execute-api endpoint turned off: calls to its execute-api hostnames get 403",
                t.api_id
            ),
            evidence,
            vec![
                "Call the API through its private custom domain name (access: customDomain)".into(),
                format!("or turn the default endpoint back on for {}", t.api_id),
            ],
        )
        .map(|f| f.with_fixes(vec![fix::enable_execute_api_endpoint(t, account)]));
    }
    let method = facts.and_then(|f| f.method.known());
    if let Some(m) = method
        && m.api_key_required
    {
        evidence.push(format!("{} {}: apiKeyRequired = true", m.http_method, m.resource_path));
        return finding(
            RootCause::AuthorizationRequired,
            format!(
                "{} {} requires an API key: a request without a valid x-api-key header gets 403 Forbidden",
                m.http_method, m.resource_path
            ),
            evidence,
            vec![
                "Send the key in the x-api-key header (from a usage plan that includes this stage)".into(),
                "or point the check at a method without apiKeyRequired".into(),
            ],
        );
    }
    let stage = facts.and_then(|f| f.stage.known());
    if let Some(acl) = stage.and_then(|s| s.web_acl_arn.as_deref()) {
        evidence.push(format!("GetStage {}: web ACL {acl}", t.stage));
        return finding(
            RootCause::WafBlocked,
            format!(
                "stage {} is protected by AWS WAF web ACL {acl}, and nothing else explains the 403 Forbidden",
                t.stage
            ),
            evidence,
            vec![
                format!("Find the request in {acl}'s sampled requests or WAF logs and allow the workload's traffic"),
                RootCause::WafBlocked.typical_fix().to_owned(),
            ],
        );
    }
    if let Some(m) = method
        && m.requires_authorization()
    {
        evidence.push(format!("{} {}: authorizationType {}", m.http_method, m.resource_path, m.authorization_type));
        return finding(
            RootCause::AuthorizationRequired,
            format!(
                "{} {} uses {} authorization, which an anonymous call does not pass",
                m.http_method, m.resource_path, m.authorization_type
            ),
            evidence,
            vec![RootCause::AuthorizationRequired.typical_fix().to_owned()],
        );
    }
    let deciding: Vec<String> = [
        undecided(&format!("GetRestApi {}", t.api_id), facts.map(|f| &f.api)),
        undecided(&format!("GetMethod {} {}", t.method, t.path), facts.map(|f| &f.method)),
        undecided(&format!("GetStage {}", t.stage), facts.map(|f| &f.stage)),
    ]
    .into_iter()
    .flatten()
    .collect();
    let ruled_out = "a private API with its execute-api endpoint on, no API key required, no web ACL on the stage";
    if deciding.is_empty() {
        evidence.push(format!("ruled out by the facts: {ruled_out}"));
    } else {
        evidence.push(format!(
            "undecided between a public API, a disabled execute-api endpoint, a missing API key and AWS WAF: {} would decide",
            deciding.join(" and ")
        ));
    }
    finding(
        RootCause::UnexpectedStatus,
        if deciding.is_empty() {
            format!("API Gateway answered 403 Forbidden although the facts rule out its usual causes ({ruled_out})")
        } else {
            format!("API Gateway answered 403 Forbidden; not decided: {} could not be read", deciding.join(", "))
        },
        evidence,
        vec![
            format!("Check the Host header names the API ({}), the API's endpoint type and API keys", t.api_host()),
            "Look up the request id in the stage's execution logs".into(),
        ],
    )
}

/// Why a report whose invoke says "Ok" cannot be believed: no status, no successful TLS
/// handshake, or no address of the invoke host connected. A real probe never writes that, but
/// the report comes from a pod; `Healthy` needs every phase to agree.
fn contradiction(probe: &ProbeReport, invoke: &crate::probe::report::InvokeResult) -> Option<String> {
    if invoke.status.is_none() {
        return Some("no HTTP status".into());
    }
    match &probe.tls {
        None => return Some("no TLS handshake".into()),
        Some(t) if t.outcome != TlsOutcome::Ok => return Some(format!("TLS {:?}", t.outcome)),
        _ => {}
    }
    let host = invoke_host(probe)?;
    let addrs: Vec<_> =
        probe.dns.iter().filter(|d| d.host == host).flat_map(|d| d.addresses.iter().map(|a| a.ip)).collect();
    let connected = probe.tcp.iter().any(|t| addrs.contains(&t.ip) && t.outcome == TcpOutcome::Connected);
    if !connected {
        return Some(format!("no address of {host} connected"));
    }
    None
}

//! Why API Gateway said "not authorized": the stored resource and endpoint policies evaluated
//! for this exact call (anonymous, through this endpoint, from this VPC and client address).

use super::*;

/// This exact call as IAM sees it: anonymous, `execute-api:Invoke` on the method's ARN in
/// `account`, through the endpoint (no `aws:SourceIp` there), from its VPC and the client's IP.
pub(super) fn anonymous_call(
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

/// The API's policy is unreadable (another account): the endpoint policy, readable here, may
/// still be the layer that denied. Only a definite deny is reported.
pub(super) fn endpoint_policy_alone(probe: &ProbeReport, facts: &AwsFacts, live: &[String]) -> Option<Finding> {
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
            .map(|f| f.with_fixes(endpoint_policy_fix(probe, facts, &arn)))
        }
        _ => None,
    }
}

/// Why API Gateway said "not authorized": evaluates the stored resource and endpoint policies
/// for this exact call (anonymous, through this endpoint, from this VPC and pod IP).
pub(super) fn policy_finding(probe: &ProbeReport, facts: &AwsFacts, live: &[String]) -> Option<Finding> {
    use crate::policy::{
        AccessVerdict, Decision, PolicyDocument, PolicyLayer, ResourcePolicyOutcome, evaluate_private_api_access,
    };
    let t = &probe.target;
    let api = facts.api.known()?;
    let endpoint = facts.endpoint.known();
    let mut evidence = live.to_vec();
    let account_for_fix = fix::api_account_if_other(facts, api_account(probe, Some(facts)).map(|a| a.0).as_deref());
    let Some(policy_text) = &api.policy else {
        evidence.push(format!("GetRestApi {}: no resource policy", t.api_id));
        let statement = fix::allow_through_endpoint_statement(&t.vpce_id);
        let fixes = fix::with_statement(None, &statement)
            .filter(|doc| resource_policy_allows(probe, facts, doc))
            .map(|doc| fix::put_policy(fix::PolicyKind::ResourcePolicy, t, doc, statement, account_for_fix.clone()))
            .unwrap_or_default();
        return finding(
            RootCause::ResourcePolicyMissing,
            format!("private API {} has no resource policy, so every call is denied", t.api_id),
            evidence,
            vec![
                format!("Attach a resource policy allowing execute-api:Invoke from {} (aws:SourceVpce)", t.vpce_id),
                format!("then redeploy: {}", redeploy_command(t)),
            ],
        )
        .map(|f| f.with_fixes(fixes));
    };
    let resource = PolicyDocument::parse(policy_text).ok()?;
    let endpoint_policy = endpoint.and_then(|e| e.policy.as_deref()).and_then(|p| PolicyDocument::parse(p).ok());
    let account = api_account(probe, Some(facts)).map_or_else(|| "000000000000".to_owned(), |(a, _)| a);
    let (api_ref, arn, request) = anonymous_call(probe, facts, account);
    let access = evaluate_private_api_access(Some(&resource), endpoint_policy.as_ref(), &api_ref, &request);
    let statement_ref = match &access.resource_policy {
        ResourcePolicyOutcome::Evaluated {
            decision: Decision::ExplicitDeny { statement } | Decision::Allow { statement },
        } => Some(statement.clone()),
        _ => None,
    };
    let statement = statement_ref.as_ref().map(ToString::to_string);
    let source_ip = facts.client.known().map(|c| format!(", aws:VpcSourceIp={}", c.ip)).unwrap_or_default();
    evidence.push(format!("request evaluated: anonymous, {arn}, aws:SourceVpce={}{source_ip}", t.vpce_id));
    evidence.extend(source_evidence(facts));
    let redeploy = redeploy_command(t);
    match access.verdict {
        AccessVerdict::Denied { layer: PolicyLayer::EndpointPolicy, .. } => {
            evidence.push(format!("the endpoint policy of {} does not allow the call", t.vpce_id));
            let fixes = endpoint_policy_fix(probe, facts, &arn);
            finding(
                RootCause::EndpointPolicyDenied,
                format!("the VPC endpoint policy of {} denies execute-api:Invoke on {}", t.vpce_id, t.api_id),
                evidence,
                vec![format!("Allow execute-api:Invoke on {arn} for principal \"*\" in the policy of {}", t.vpce_id)],
            )
            .map(|f| f.with_fixes(fixes))
        }
        AccessVerdict::Denied { layer: PolicyLayer::ResourcePolicy, explicit: true } => {
            let st = statement.unwrap_or_else(|| "a Deny statement".into());
            evidence.push(format!("resource policy: {st} denies"));
            let vpc = endpoint.and_then(|e| e.vpc_id.as_deref());
            let fixes = statement_ref
                .and_then(|r| fix::with_exception_added(policy_text, r.index, &t.vpce_id, vpc))
                .filter(|(doc, _)| resource_policy_allows(probe, facts, doc))
                .map(|(doc, st)| fix::put_policy(fix::PolicyKind::ResourcePolicy, t, doc, st, account_for_fix.clone()))
                .unwrap_or_default();
            finding(
                RootCause::ResourcePolicyExplicitDeny,
                format!("{st} of {}'s resource policy denies calls through {}", t.api_id, t.vpce_id),
                evidence,
                vec![
                    format!("Change {st}'s condition (aws:SourceVpce / aws:SourceVpc) to include {}", t.vpce_id),
                    format!("then redeploy: {redeploy}"),
                ],
            )
            .map(|f| f.with_fixes(fixes))
        }
        AccessVerdict::Denied { layer: PolicyLayer::ResourcePolicy, explicit: false } => {
            evidence.push("resource policy: no Allow statement matches".into());
            let added = fix::allow_through_endpoint_statement(&t.vpce_id);
            let fixes = fix::with_statement(Some(policy_text), &added)
                .filter(|doc| resource_policy_allows(probe, facts, doc))
                .map(|doc| fix::put_policy(fix::PolicyKind::ResourcePolicy, t, doc, added, account_for_fix.clone()))
                .unwrap_or_default();
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
            .map(|f| f.with_fixes(fixes))
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
            .map(|f| f.with_fixes(vec![fix::redeploy(t).in_account(account_for_fix)]))
        }
        AccessVerdict::Undetermined { reason, .. } => {
            evidence.push(format!("the stored policies could not be evaluated: {reason:?}"));
            None
        }
    }
}

/// Would API Gateway allow this call with `document` as the resource policy (and the stored
/// endpoint policy)? The check every suggested resource policy passes before it is offered.
fn resource_policy_allows(probe: &ProbeReport, facts: &AwsFacts, document: &serde_json::Value) -> bool {
    use crate::policy::{AccessVerdict, PolicyDocument, evaluate_private_api_access};
    let Ok(resource) = PolicyDocument::parse(&document.to_string()) else { return false };
    let endpoint_policy =
        facts.endpoint.known().and_then(|e| e.policy.as_deref()).map(PolicyDocument::parse).transpose();
    let Ok(endpoint_policy) = endpoint_policy else { return false };
    let account = api_account(probe, Some(facts)).map_or_else(|| "000000000000".to_owned(), |(a, _)| a);
    let (api_ref, _, request) = anonymous_call(probe, facts, account);
    evaluate_private_api_access(Some(&resource), endpoint_policy.as_ref(), &api_ref, &request).verdict
        == AccessVerdict::Allowed
}

/// The endpoint policy with an Allow for this call added, when the evaluator then allows it.
pub(super) fn endpoint_policy_fix(probe: &ProbeReport, facts: &AwsFacts, arn: &str) -> Vec<fix::Fix> {
    use crate::policy::{Decision, PolicyDocument, evaluate};
    let Some(endpoint) = facts.endpoint.known() else { return Vec::new() };
    let added = fix::endpoint_allow_statement(arn);
    let Some(doc) = fix::with_statement(endpoint.policy.as_deref(), &added) else { return Vec::new() };
    let Ok(policy) = PolicyDocument::parse(&doc.to_string()) else { return Vec::new() };
    let account = api_account(probe, Some(facts)).map_or_else(|| "000000000000".to_owned(), |(a, _)| a);
    let (_, _, request) = anonymous_call(probe, facts, account);
    match evaluate(&policy, &request) {
        Decision::Allow { .. } => fix::put_policy(fix::PolicyKind::EndpointPolicy, &probe.target, doc, added, None),
        _ => Vec::new(),
    }
}

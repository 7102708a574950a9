//! IAM policy parsing and evaluation (`pvtapi_engine::policy`).
//!
//! Input: the resource policy's text, then optionally a NUL byte followed by bytes that
//! `arbitrary` turns into the request (caller, API, stage/method/path, condition keys) and an
//! optional endpoint policy. A seed is a plain policy file; with no request bytes the request is
//! the usual one (anonymous GET /health on abcde12345 in us-east-1 through
//! vpce-0123456789abcdef0).
//!
//! Beyond "does not panic" (the module promises that for any input), it checks what the
//! diagnosis relies on: the escaped form `GetRestApi` returns parses to the same policy; an
//! explicit Deny wins whatever the statement order; a Deny-everything statement always denies;
//! an Allow-everything statement never turns a deny or an undetermined deny into an allow;
//! shorthand expansion is idempotent and leaves nothing expandable behind; and the two-layer
//! verdict agrees with the two layers' decisions.

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use pvtapi_engine::policy::{
    AccessVerdict, ActionElement, ApiRef, CallerPrincipal, Decision, Effect, EndpointPolicyOutcome, PolicyDocument,
    PolicyLayer, PrincipalElement, PrincipalSet, RequestContext, ResourceElement, ResourcePolicyOutcome, Statement,
    StatementOutcome, UndeterminedReason, evaluate, evaluate_private_api_access, evaluate_statement, execute_api_arn,
    expand_api_shorthand,
};

const ACCOUNTS: &[&str] = &["123456789012", "111122223333", "222222222222", "444455556666"];
const REGIONS: &[&str] = &["us-east-1", "eu-west-1", "us-gov-west-1"];
const APIS: &[&str] = &["abcde12345", "a1b2c3d4e5", "zzzzz99999"];
const STAGES: &[&str] = &["prod", "dev", "test"];
const METHODS: &[&str] = &["GET", "POST", "DELETE", "get"];
const PATHS: &[&str] = &["/health", "/", "/pets/1", "/admin"];
const VPCES: &[&str] = &["vpce-0123456789abcdef0", "vpce-0fedcba9876543210", "VPCE", "vpce-1a2b3c4d"];
const VPCS: &[&str] = &["vpc-0123456789abcdef0", "vpc-1a2b3c4d"];
const IPS: &[&str] = &["10.0.1.15", "192.168.0.1", "203.0.113.5", "fd00::1", "not-an-ip"];
const KEYS: &[&str] = &[
    "aws:SourceVpce",
    "aws:SourceVpc",
    "aws:VpcSourceIp",
    "aws:SourceIp",
    "aws:PrincipalOrgID",
    "aws:PrincipalArn",
    "aws:CalledVia",
    "aws:SecureTransport",
    "execute-api:viaDomainArn",
];
const ACTIONS: &[&str] = &["execute-api:Invoke", "execute-api:ManageConnections", "execute-api:*", "s3:GetObject"];

/// A value from `vocab` most of the time (so conditions and ARNs can match), any string otherwise.
fn word(u: &mut Unstructured<'_>, vocab: &[&str]) -> arbitrary::Result<String> {
    if u.ratio(7, 8)? { Ok((*u.choose(vocab)?).to_owned()) } else { String::arbitrary(u) }
}

fn maybe_word(u: &mut Unstructured<'_>, vocab: &[&str]) -> arbitrary::Result<Option<String>> {
    Ok(if u.arbitrary::<bool>()? { Some(word(u, vocab)?) } else { None })
}

fn caller(u: &mut Unstructured<'_>) -> arbitrary::Result<CallerPrincipal> {
    Ok(match u.int_in_range(0..=5u8)? {
        0 => CallerPrincipal::Anonymous,
        1 => CallerPrincipal::from_text(&word(u, ACCOUNTS)?),
        2 => CallerPrincipal::from_text(&format!("arn:aws:iam::{}:user/{}", word(u, ACCOUNTS)?, word(u, &["bob"])?)),
        3 => CallerPrincipal::from_text(&format!(
            "arn:aws:sts::{}:assumed-role/{}/{}",
            word(u, ACCOUNTS)?,
            word(u, &["app", "pvtapi-reader"])?,
            word(u, &["s1"])?
        )),
        4 => CallerPrincipal::from_text(&format!("arn:aws:iam::{}:root", word(u, ACCOUNTS)?)),
        _ => CallerPrincipal::from_text(&String::arbitrary(u)?),
    })
}

/// The API, the request, and (maybe) an endpoint policy text, from the bytes after the NUL.
fn request(bytes: &[u8]) -> arbitrary::Result<(ApiRef, RequestContext, Option<String>)> {
    let mut u = Unstructured::new(bytes);
    let u = &mut u;
    let api = ApiRef {
        partition: word(u, &["aws", "aws-cn", "aws-us-gov"])?,
        region: word(u, REGIONS)?,
        account: word(u, ACCOUNTS)?,
        api_id: word(u, APIS)?,
    };
    let caller = caller(u)?;
    let resource = if u.ratio(15, 16)? {
        execute_api_arn(&api, &word(u, STAGES)?, &word(u, METHODS)?, &word(u, PATHS)?)
    } else {
        String::arbitrary(u)?
    };
    let mut ctx = RequestContext::new(caller, resource);
    if let Some(action) = maybe_word(u, ACTIONS)? {
        ctx = ctx.with_action(action);
    }
    // Through an endpoint by default: the private-API case.
    if !u.ratio(1, 8)? {
        ctx = ctx.source_vpce(word(u, VPCES)?);
    }
    if let Some(vpc) = maybe_word(u, VPCS)? {
        ctx = ctx.source_vpc(vpc);
    }
    if let Some(ip) = maybe_word(u, IPS)? {
        ctx = ctx.vpc_source_ip(ip);
    }
    if let Some(account) = maybe_word(u, ACCOUNTS)? {
        ctx = ctx.source_account(account);
    }
    for _ in 0..u.int_in_range(0..=3u8)? {
        let key = word(u, KEYS)?;
        ctx = match u.int_in_range(0..=3u8)? {
            0 => ctx.with_key(&key, word(u, VPCES.iter().chain(IPS).copied().collect::<Vec<_>>().as_slice())?),
            1 => {
                let n = u.int_in_range(0..=3u8)?;
                let values = (0..n)
                    .map(|_| word(u, &["apigateway.amazonaws.com", "true", "o-abc"]))
                    .collect::<Result<_, _>>()?;
                ctx.with_values(&key, values)
            }
            2 => ctx.without_key(&key),
            _ => ctx.forget_key(&key),
        };
    }
    let endpoint = match u.int_in_range(0..=2u8)? {
        0 => None,
        1 => Some(String::new()), // the same document as the resource policy
        _ => Some(String::arbitrary_take_rest(Unstructured::new(u.bytes(u.len())?))?),
    };
    Ok((api, ctx, endpoint))
}

fn statement(index: usize, effect: Effect) -> Statement {
    Statement {
        index,
        sid: Some(format!("fuzz-{effect:?}-all")),
        effect,
        principal: Some(PrincipalElement::Principal(PrincipalSet::Everyone)),
        action: ActionElement::Action(vec!["*".into()]),
        resource: ResourceElement::Resource(vec!["*".into()]),
        conditions: Vec::new(),
    }
}

fn with_statement(policy: &PolicyDocument, effect: Effect, first: bool) -> PolicyDocument {
    let mut out = policy.clone();
    let st = statement(policy.statements.len(), effect);
    if first {
        out.statements.insert(0, st);
    } else {
        out.statements.push(st);
    }
    out
}

fn kind(d: &Decision) -> &'static str {
    match d {
        Decision::Allow { .. } => "Allow",
        Decision::ImplicitDeny => "ImplicitDeny",
        Decision::ExplicitDeny { .. } => "ExplicitDeny",
        Decision::Undetermined { .. } => "Undetermined",
    }
}

/// The decision agrees with what each statement does on its own.
fn check_decision(policy: &PolicyDocument, ctx: &RequestContext, decision: &Decision) {
    let outcomes: Vec<(Effect, StatementOutcome)> =
        policy.statements.iter().map(|st| (st.effect, evaluate_statement(policy, st, ctx))).collect();
    let any = |effect: Effect, applies: bool| {
        outcomes.iter().any(|(e, o)| {
            *e == effect
                && if applies {
                    *o == StatementOutcome::Applies
                } else {
                    matches!(o, StatementOutcome::Undetermined(_))
                }
        })
    };
    let named = |st: &pvtapi_engine::policy::StatementRef, effect: Effect, applies: bool| {
        policy.statements.iter().zip(&outcomes).any(|(s, (e, o))| {
            s.reference() == *st
                && *e == effect
                && if applies {
                    *o == StatementOutcome::Applies
                } else {
                    matches!(o, StatementOutcome::Undetermined(_))
                }
        })
    };
    match decision {
        Decision::ExplicitDeny { statement } => {
            assert!(named(statement, Effect::Deny, true), "ExplicitDeny names {statement} which does not deny");
        }
        Decision::Undetermined { statement, .. } => {
            assert!(!any(Effect::Deny, true), "a definite Deny must win over an undetermined statement");
            let from_deny = named(statement, Effect::Deny, false);
            let from_allow = named(statement, Effect::Allow, false);
            assert!(from_deny || from_allow, "Undetermined names {statement}, which is not undetermined");
            if from_allow && !from_deny {
                assert!(!any(Effect::Allow, true), "an undetermined Allow is reported although an Allow applies");
                assert!(!any(Effect::Deny, false), "an undetermined Allow is reported before an undetermined Deny");
            }
        }
        Decision::Allow { statement } => {
            assert!(!any(Effect::Deny, true) && !any(Effect::Deny, false), "Allow although a Deny applies or may");
            assert!(named(statement, Effect::Allow, true), "Allow names {statement} which does not allow");
        }
        Decision::ImplicitDeny => {
            assert!(
                outcomes.iter().all(|(_, o)| *o == StatementOutcome::DoesNotApply),
                "ImplicitDeny but {outcomes:?}"
            );
        }
    }
    assert_eq!(decision.is_allow(), matches!(decision, Decision::Allow { .. }));
    let _ = format!("{decision:?}");
    if let Decision::Undetermined { reason, statement } = decision {
        let _ = format!("{reason} {statement}");
    }
}

fn check_policy(policy: &PolicyDocument, api: &ApiRef, ctx: &RequestContext) {
    let decision = evaluate(policy, ctx);
    check_decision(policy, ctx, &decision);

    // Statement order never matters for the kind of decision (Deny wins wherever it is).
    let mut reversed = policy.clone();
    reversed.statements.reverse();
    assert_eq!(kind(&evaluate(&reversed, ctx)), kind(&decision), "statement order changed the decision");

    // A Deny-everything statement always denies, first or last.
    for first in [true, false] {
        let denied = evaluate(&with_statement(policy, Effect::Deny, first), ctx);
        assert!(matches!(denied, Decision::ExplicitDeny { .. }), "Deny * did not deny: {denied:?}");
    }
    // An Allow-everything statement allows unless a Deny applies or may.
    let allowed = evaluate(&with_statement(policy, Effect::Allow, false), ctx);
    match &decision {
        Decision::ExplicitDeny { .. } => assert_eq!(allowed, decision, "Allow * overrode an explicit deny"),
        Decision::Allow { .. } => assert_eq!(allowed, decision, "the first Allow is the one named"),
        Decision::ImplicitDeny => assert!(allowed.is_allow(), "Allow * did not allow: {allowed:?}"),
        Decision::Undetermined { .. } => {
            assert!(matches!(allowed, Decision::Undetermined { .. } | Decision::Allow { .. }), "{allowed:?}")
        }
    }

    // Shorthand expansion: idempotent, one statement per statement, nothing expandable left.
    let expanded = expand_api_shorthand(policy, api);
    assert_eq!(expand_api_shorthand(&expanded, api), expanded, "expansion is not idempotent");
    assert_eq!(expanded.statements.len(), policy.statements.len());
    let resource_decision = evaluate(&expanded, ctx);
    check_decision(&expanded, ctx, &resource_decision);
    if let Decision::Undetermined { reason: UndeterminedReason::UnexpandedShorthand { pattern }, .. } =
        &resource_decision
    {
        assert!(!pattern.starts_with("execute-api:/"), "{pattern} was left unexpanded");
    }
}

fn check_layers(
    resource: Option<&PolicyDocument>,
    endpoint: Option<&PolicyDocument>,
    api: &ApiRef,
    ctx: &RequestContext,
) {
    let access = evaluate_private_api_access(resource, endpoint, api, ctx);
    let resource_decision = match &access.resource_policy {
        ResourcePolicyOutcome::Missing => {
            assert!(resource.is_none());
            None
        }
        ResourcePolicyOutcome::Evaluated { decision } => {
            let policy = resource.expect("evaluated without a policy");
            assert_eq!(*decision, evaluate(&expand_api_shorthand(policy, api), ctx));
            Some(decision)
        }
    };
    let endpoint_decision = match &access.endpoint_policy {
        EndpointPolicyOutcome::DefaultFullAccess => {
            assert!(endpoint.is_none());
            None
        }
        EndpointPolicyOutcome::Evaluated { decision } => {
            assert_eq!(*decision, evaluate(endpoint.expect("evaluated without a policy"), ctx));
            Some(decision)
        }
    };
    let layer = |l: PolicyLayer| match l {
        PolicyLayer::EndpointPolicy => endpoint_decision,
        PolicyLayer::ResourcePolicy => resource_decision,
    };
    let explicit_somewhere =
        [endpoint_decision, resource_decision].iter().any(|d| matches!(d, Some(Decision::ExplicitDeny { .. })));
    match &access.verdict {
        AccessVerdict::Allowed => {
            assert!(resource_decision.is_some_and(Decision::is_allow), "allowed without a resource-policy Allow");
            assert!(endpoint_decision.is_none_or(Decision::is_allow), "allowed without an endpoint-policy Allow");
        }
        AccessVerdict::Denied { layer: l, explicit: true } => {
            assert!(matches!(layer(*l), Some(Decision::ExplicitDeny { .. })), "{:?}", access);
        }
        AccessVerdict::Denied { layer: l, explicit: false } => {
            assert!(!explicit_somewhere, "an explicit deny is reported as implicit: {access:?}");
            assert!(matches!(layer(*l), None | Some(Decision::ImplicitDeny)), "{access:?}");
            if *l == PolicyLayer::EndpointPolicy {
                assert!(endpoint_decision.is_some(), "the default endpoint policy denied");
            }
        }
        AccessVerdict::Undetermined { layer: l, .. } => {
            assert!(!explicit_somewhere, "{access:?}");
            assert!(matches!(layer(*l), Some(Decision::Undetermined { .. })), "{access:?}");
            assert!(resource_decision.is_some(), "a missing resource policy is a definite deny");
            for d in [endpoint_decision, resource_decision].into_iter().flatten() {
                assert!(!matches!(d, Decision::ImplicitDeny), "a definite deny must decide: {access:?}");
            }
        }
    }
    let _ = serde_json::to_string(&access).expect("the verdict serializes");
}

fuzz_target!(|data: &[u8]| {
    let (text, rest) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(text) = std::str::from_utf8(text) else { return };
    let Ok((api, ctx, endpoint_text)) = request(rest) else { return };

    let parsed = PolicyDocument::parse(text);
    assert_eq!(PolicyDocument::parse(text), parsed, "parsing is deterministic");
    let policy = match parsed {
        Ok(policy) => policy,
        Err(err) => {
            let _ = err.to_string();
            return;
        }
    };
    // The escaped form (`GetRestApi.policy`) of a policy object is the same policy.
    if matches!(serde_json::from_str::<serde_json::Value>(text), Ok(serde_json::Value::Object(_))) {
        let escaped = serde_json::to_string(text).expect("a string serializes");
        assert_eq!(PolicyDocument::parse(&escaped).as_ref(), Ok(&policy), "escaped form differs");
    }
    let _ = policy.uses_policy_variables();

    check_policy(&policy, &api, &ctx);
    let endpoint = match endpoint_text.as_deref() {
        None => None,
        Some("") => Some(policy.clone()),
        Some(t) => PolicyDocument::parse(t).ok(),
    };
    if let Some(endpoint) = &endpoint {
        check_policy(endpoint, &api, &ctx);
    }
    check_layers(Some(&policy), endpoint.as_ref(), &api, &ctx);
    check_layers(None, endpoint.as_ref(), &api, &ctx);
});

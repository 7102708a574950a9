//! Evaluating one policy against one request, and combining the two policies
//! that guard a private API.
//!
//! IAM evaluation logic implemented (IAM User Guide, "Policy evaluation logic"):
//! * A statement applies when its principal, action, resource and every
//!   condition match. If one part definitely does not match, the statement does
//!   not apply even if another part is undetermined (false AND x = false).
//! * **An explicit Deny wins over any Allow, whatever the statement order.** All
//!   statements are scanned; nothing returns on the first match.
//! * Without an applicable Deny, one applicable Allow allows; otherwise the
//!   result is an implicit deny.
//! * Uncertainty is never resolved optimistically: an undetermined Deny (with no
//!   definite Deny) makes the result Undetermined — a deny cannot be ruled out;
//!   an undetermined Allow (with no definite Allow and no Deny) is Undetermined
//!   too — an allow cannot be ruled out.
//!
//! Principal rules (IAM "Principal" / "NotPrincipal" references):
//! * `"*"` and `{"AWS": "*"}` match everyone, **including anonymous** callers.
//! * An account (`"123456789012"` or `arn:aws:iam::123456789012:root`) matches
//!   every IAM principal of that account. Strictly, IAM then also requires the
//!   caller's identity policy to allow (the account delegates); pvtapi does not see
//!   identity policies and counts it as a match.
//! * A role ARN matches sessions of that role (`arn:aws:sts::…:assumed-role/NAME/…`).
//! * Other ARNs match literally; wildcards inside principal ARNs are not IAM syntax.
//! * `Service`/`Federated`/`CanonicalUser` entries never match anonymous or IAM
//!   callers.
//! * `NotPrincipal` applies to everyone not listed. IAM evaluates a signed caller
//!   as a chain — account, then role, then session/user — and each link must be
//!   listed to be exempt ("you must also specify the account ARN of the not-denied
//!   principal. Otherwise, the policy might deny access to the entire account").
//!   So: caller's own ARN not listed → the statement applies; caller and its whole
//!   chain listed → it does not; caller listed but part of its chain missing →
//!   Undetermined (AWS says "might").
//! * A statement with neither `Principal` nor `NotPrincipal` is Undetermined: both
//!   policy types evaluated here (resource and VPC endpoint policies) need one.

use std::fmt;

use serde::Serialize;

use super::condition::evaluate_clause;
use super::context::{ApiRef, CallerPrincipal, RequestContext};
use super::document::{
    ActionElement, AwsPrincipal, Effect, PolicyDocument, PrincipalElement, PrincipalEntry, PrincipalSet,
    ResourceElement, Statement, StatementRef,
};
use super::matching;

/// Why a statement (and so a decision) could not be determined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind")]
pub enum UndeterminedReason {
    /// A condition operator we do not evaluate (numeric, date, binary, unknown).
    UnsupportedOperator { operator: String },
    /// A condition key whose presence/value the request context does not know.
    UnknownConditionKey { operator: String, key: String },
    /// A policy variable (`${…}`) in a condition value; we do not substitute them.
    PolicyVariable { operator: String, key: String, value: String },
    /// A multivalued key used without `ForAnyValue:`/`ForAllValues:`.
    MultivaluedKeyWithoutSetOperator { operator: String, key: String },
    /// A condition value the operator cannot use (bad CIDR, ARN, boolean).
    InvalidValue { operator: String, key: String, value: String, expected: &'static str },
    /// A policy variable in `Resource`/`NotResource`.
    ResourcePolicyVariable { pattern: String },
    /// An `execute-api:/…` shorthand that was not expanded for an API (it is only
    /// meaningful in a resource policy; see [`expand_api_shorthand`]).
    UnexpandedShorthand { pattern: String },
    /// The statement has neither `Principal` nor `NotPrincipal`.
    MissingPrincipal,
    /// `NotPrincipal` names the caller but not its whole chain (account, role);
    /// AWS documents the outcome only as "might deny".
    NotPrincipalIncompleteChain { caller: String, missing: Vec<String> },
}

impl fmt::Display for UndeterminedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UndeterminedReason::UnsupportedOperator { operator } => {
                write!(f, "condition operator {operator:?} is not supported by pvtapi")
            }
            UndeterminedReason::UnknownConditionKey { operator, key } => {
                write!(f, "condition {operator} on key {key:?}: the value of this key for the request is unknown")
            }
            UndeterminedReason::PolicyVariable { operator, key, value } => write!(
                f,
                "condition {operator} on key {key:?} uses the policy variable in {value:?}, which pvtapi does not substitute"
            ),
            UndeterminedReason::MultivaluedKeyWithoutSetOperator { operator, key } => write!(
                f,
                "condition {operator} on multivalued key {key:?} has no ForAnyValue:/ForAllValues: qualifier (IAM documents no result)"
            ),
            UndeterminedReason::InvalidValue { operator, key, value, expected } => {
                write!(f, "condition {operator} on key {key:?}: value {value:?} is not {expected}")
            }
            UndeterminedReason::ResourcePolicyVariable { pattern } => {
                write!(f, "resource {pattern:?} uses a policy variable, which pvtapi does not substitute")
            }
            UndeterminedReason::UnexpandedShorthand { pattern } => {
                write!(f, "resource {pattern:?} is execute-api shorthand that was not expanded for an API")
            }
            UndeterminedReason::MissingPrincipal => {
                write!(f, "the statement has neither Principal nor NotPrincipal")
            }
            UndeterminedReason::NotPrincipalIncompleteChain { caller, missing } => write!(
                f,
                "NotPrincipal lists {caller:?} but not {missing:?}; AWS may evaluate those first and apply the statement"
            ),
        }
    }
}

/// The outcome of evaluating one policy for one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision")]
pub enum Decision {
    /// An Allow statement applies and no Deny statement does (or may).
    Allow { statement: StatementRef },
    /// No statement applies.
    ImplicitDeny,
    /// A Deny statement applies ("… with an explicit deny" in AWS's 403 message).
    ExplicitDeny { statement: StatementRef },
    /// The outcome depends on something pvtapi could not evaluate.
    Undetermined { reason: UndeterminedReason, statement: StatementRef },
}

impl Decision {
    /// True only for a definite Allow.
    pub fn is_allow(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }
}

/// The outcome of one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatementOutcome {
    Applies,
    DoesNotApply,
    Undetermined(UndeterminedReason),
}

/// Three-valued match of one statement element.
enum Tri {
    Yes,
    No,
    Unknown(UndeterminedReason),
}

impl Tri {
    fn from_bool(b: bool) -> Tri {
        if b { Tri::Yes } else { Tri::No }
    }
    fn not(self) -> Tri {
        match self {
            Tri::Yes => Tri::No,
            Tri::No => Tri::Yes,
            u => u,
        }
    }
}

/// "Some item matches": Yes if any item definitely matches, else Unknown if any is
/// unknown, else No.
fn any_of(items: impl Iterator<Item = Tri>) -> Tri {
    let mut unknown = None;
    for t in items {
        match t {
            Tri::Yes => return Tri::Yes,
            Tri::Unknown(r) => {
                if unknown.is_none() {
                    unknown = Some(r);
                }
            }
            Tri::No => {}
        }
    }
    match unknown {
        Some(r) => Tri::Unknown(r),
        None => Tri::No,
    }
}

/// Evaluates `policy` for `request`. See the module docs for the rules.
pub fn evaluate(policy: &PolicyDocument, request: &RequestContext) -> Decision {
    // Every statement is scanned: a Deny anywhere overrides an Allow anywhere,
    // and an undetermined Deny must not be hidden by an Allow seen earlier.
    let mut deny: Option<StatementRef> = None;
    let mut deny_undetermined: Option<(UndeterminedReason, StatementRef)> = None;
    let mut allow: Option<StatementRef> = None;
    let mut allow_undetermined: Option<(UndeterminedReason, StatementRef)> = None;
    for st in &policy.statements {
        match (st.effect, evaluate_statement(policy, st, request)) {
            (Effect::Deny, StatementOutcome::Applies) => {
                deny.get_or_insert(st.reference());
            }
            (Effect::Deny, StatementOutcome::Undetermined(r)) => {
                deny_undetermined.get_or_insert((r, st.reference()));
            }
            (Effect::Allow, StatementOutcome::Applies) => {
                allow.get_or_insert(st.reference());
            }
            (Effect::Allow, StatementOutcome::Undetermined(r)) => {
                allow_undetermined.get_or_insert((r, st.reference()));
            }
            (_, StatementOutcome::DoesNotApply) => {}
        }
    }
    if let Some(statement) = deny {
        return Decision::ExplicitDeny { statement };
    }
    if let Some((reason, statement)) = deny_undetermined {
        return Decision::Undetermined { reason, statement };
    }
    if let Some(statement) = allow {
        return Decision::Allow { statement };
    }
    if let Some((reason, statement)) = allow_undetermined {
        return Decision::Undetermined { reason, statement };
    }
    Decision::ImplicitDeny
}

/// Evaluates one statement of `policy` (the policy supplies its `Version`, which
/// decides whether `${…}` is a variable).
pub fn evaluate_statement(policy: &PolicyDocument, st: &Statement, request: &RequestContext) -> StatementOutcome {
    let variables = policy.uses_policy_variables();
    let parts = [
        principal_matches(st, &request.principal),
        action_element_matches(&st.action, &request.action),
        resource_element_matches(&st.resource, &request.resource, variables),
    ];
    let mut unknown: Option<UndeterminedReason> = None;
    for part in parts {
        match part {
            Tri::Yes => {}
            Tri::No => return StatementOutcome::DoesNotApply,
            Tri::Unknown(r) => {
                unknown.get_or_insert(r);
            }
        }
    }
    for clause in &st.conditions {
        match evaluate_clause(clause, request, variables) {
            Ok(true) => {}
            Ok(false) => return StatementOutcome::DoesNotApply,
            Err(r) => {
                unknown.get_or_insert(r);
            }
        }
    }
    match unknown {
        Some(r) => StatementOutcome::Undetermined(r),
        None => StatementOutcome::Applies,
    }
}

fn action_element_matches(el: &ActionElement, action: &str) -> Tri {
    match el {
        ActionElement::Action(list) => Tri::from_bool(list.iter().any(|p| matching::action_matches(p, action))),
        ActionElement::NotAction(list) => Tri::from_bool(!list.iter().any(|p| matching::action_matches(p, action))),
    }
}

fn resource_pattern_matches(pattern: &str, resource: &str, variables: bool) -> Tri {
    if pattern.starts_with("execute-api:") {
        return Tri::Unknown(UndeterminedReason::UnexpandedShorthand { pattern: pattern.to_string() });
    }
    if variables && pattern.contains("${") {
        return Tri::Unknown(UndeterminedReason::ResourcePolicyVariable { pattern: pattern.to_string() });
    }
    Tri::from_bool(matching::resource_matches(pattern, resource))
}

fn resource_element_matches(el: &ResourceElement, resource: &str, variables: bool) -> Tri {
    match el {
        ResourceElement::Resource(list) => {
            any_of(list.iter().map(|p| resource_pattern_matches(p, resource, variables)))
        }
        ResourceElement::NotResource(list) => {
            any_of(list.iter().map(|p| resource_pattern_matches(p, resource, variables))).not()
        }
    }
}

/// The identities IAM evaluates for a signed caller, outermost first: the
/// account root, then (for a session) the role, then the caller itself.
struct CallerChain {
    account: Option<String>,
    /// `(partition, account, role name)` for assumed-role sessions.
    role: Option<(String, String, String)>,
    arn: Option<String>,
}

fn caller_chain(p: &CallerPrincipal) -> CallerChain {
    match p {
        CallerPrincipal::Anonymous => CallerChain { account: None, role: None, arn: None },
        CallerPrincipal::Account(id) => CallerChain { account: Some(id.clone()), role: None, arn: None },
        CallerPrincipal::Iam(arn) => CallerChain {
            account: matching::arn_account(arn).map(str::to_string),
            role: matching::assumed_role_parts(arn).map(|(p, a, r)| (p.to_string(), a.to_string(), r.to_string())),
            arn: Some(arn.clone()),
        },
    }
}

/// Does an `AWS` entry name the caller's role (for a session caller)?
fn entry_is_role(entry_arn: &str, role: &(String, String, String)) -> bool {
    match matching::role_arn_parts(entry_arn) {
        // IAM role names are unique case-insensitively.
        Some((p, a, name)) => p == role.0 && a == role.1 && name.eq_ignore_ascii_case(&role.2),
        None => false,
    }
}

fn principal_matches(st: &Statement, caller: &CallerPrincipal) -> Tri {
    match &st.principal {
        None => Tri::Unknown(UndeterminedReason::MissingPrincipal),
        Some(PrincipalElement::Principal(set)) => Tri::from_bool(principal_listed(set, caller)),
        Some(PrincipalElement::NotPrincipal(set)) => not_principal_applies(set, caller),
    }
}

/// `Principal` semantics: is the caller covered by the set?
fn principal_listed(set: &PrincipalSet, caller: &CallerPrincipal) -> bool {
    let entries = match set {
        PrincipalSet::Everyone => return true,
        PrincipalSet::Listed(entries) => entries,
    };
    let chain = caller_chain(caller);
    entries.iter().any(|e| match e {
        PrincipalEntry::Aws(AwsPrincipal::Everyone) => true,
        PrincipalEntry::Aws(AwsPrincipal::Account(id)) => chain.account.as_deref() == Some(id),
        PrincipalEntry::Aws(AwsPrincipal::Arn(arn)) => {
            chain.arn.as_deref() == Some(arn) || chain.role.as_ref().is_some_and(|r| entry_is_role(arn, r))
        }
        PrincipalEntry::Other { .. } => false,
    })
}

/// `NotPrincipal` semantics (see module docs): Yes = the statement applies.
fn not_principal_applies(set: &PrincipalSet, caller: &CallerPrincipal) -> Tri {
    let entries = match set {
        PrincipalSet::Everyone => return Tri::No,
        PrincipalSet::Listed(entries) => entries,
    };
    if entries.iter().any(|e| matches!(e, PrincipalEntry::Aws(AwsPrincipal::Everyone))) {
        return Tri::No;
    }
    let chain = caller_chain(caller);
    let account_listed = chain.account.as_ref().is_some_and(|id| {
        entries.iter().any(|e| matches!(e, PrincipalEntry::Aws(AwsPrincipal::Account(a)) if a == id))
    });
    let arn_listed = chain
        .arn
        .as_ref()
        .is_some_and(|arn| entries.iter().any(|e| matches!(e, PrincipalEntry::Aws(AwsPrincipal::Arn(a)) if a == arn)));
    let role_listed = chain.role.as_ref().is_some_and(|r| {
        entries.iter().any(|e| matches!(e, PrincipalEntry::Aws(AwsPrincipal::Arn(a)) if entry_is_role(a, r)))
    });
    match caller {
        CallerPrincipal::Anonymous => Tri::Yes,
        CallerPrincipal::Account(_) => Tri::from_bool(!account_listed),
        CallerPrincipal::Iam(arn) => {
            if !arn_listed {
                return Tri::Yes;
            }
            let mut missing = Vec::new();
            if !account_listed {
                missing.push(format!("arn:aws:iam::{}:root", chain.account.as_deref().unwrap_or("?")));
            }
            if let Some(role) = &chain.role
                && !role_listed
            {
                missing.push(format!("arn:{}:iam::{}:role/{}", role.0, role.1, role.2));
            }
            if missing.is_empty() {
                Tri::No
            } else {
                Tri::Unknown(UndeterminedReason::NotPrincipalIncompleteChain { caller: arn.clone(), missing })
            }
        }
    }
}

/// Expands API Gateway's resource shorthand for the API the policy is attached
/// to, as API Gateway does when the policy is saved: `execute-api:/*` becomes
/// `arn:aws:execute-api:{region}:{account}:{api}/*` and
/// `execute-api:/{stage}/{METHOD}/{path}` becomes `…:{api}/{stage}/{METHOD}/{path}`.
/// Only meaningful for a *resource* policy (an endpoint policy is not attached to
/// an API); other resources are left unchanged.
pub fn expand_api_shorthand(policy: &PolicyDocument, api: &ApiRef) -> PolicyDocument {
    let prefix = api.arn_prefix();
    let expand = |list: &Vec<String>| -> Vec<String> {
        list.iter()
            .map(|r| match r.strip_prefix("execute-api:") {
                Some(rest) if rest.starts_with('/') => format!("{prefix}{rest}"),
                _ => r.clone(),
            })
            .collect()
    };
    let mut out = policy.clone();
    for st in &mut out.statements {
        st.resource = match &st.resource {
            ResourceElement::Resource(l) => ResourceElement::Resource(expand(l)),
            ResourceElement::NotResource(l) => ResourceElement::NotResource(expand(l)),
        };
    }
    out
}

/// Which policy layer guards a private API call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PolicyLayer {
    /// The VPC endpoint policy (evaluated first by AWS).
    EndpointPolicy,
    /// The API's resource policy.
    ResourcePolicy,
}

/// The resource-policy layer of a private API call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state")]
pub enum ResourcePolicyOutcome {
    /// No resource policy: a private API without one denies every call.
    Missing,
    Evaluated {
        decision: Decision,
    },
}

/// The endpoint-policy layer of a private API call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state")]
pub enum EndpointPolicyOutcome {
    /// No custom policy: the default endpoint policy grants full access.
    DefaultFullAccess,
    Evaluated {
        decision: Decision,
    },
}

/// The combined verdict of both layers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict")]
pub enum AccessVerdict {
    /// Both layers allow.
    Allowed,
    /// A layer definitely denies. `explicit` is true for a matching Deny
    /// statement; false for an implicit deny or a missing resource policy.
    Denied { layer: PolicyLayer, explicit: bool },
    /// No layer definitely denies, but a layer is undetermined.
    Undetermined { layer: PolicyLayer, reason: UndeterminedReason },
}

/// Both layers' outcomes and the verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrivateApiAccess {
    pub endpoint_policy: EndpointPolicyOutcome,
    pub resource_policy: ResourcePolicyOutcome,
    pub verdict: AccessVerdict,
}

/// Decides whether a call through a VPC endpoint to a private API passes both
/// policy layers: the VPC endpoint policy **and** the API's resource policy must
/// allow (API Gateway: "The VPC endpoint policy is evaluated first, and then API
/// Gateway evaluates the request"; "Your private API requires a resource policy,
/// but you don't need to create a custom VPC endpoint policy").
///
/// * `resource_policy: None` — a private API without a resource policy denies
///   every call ([`ResourcePolicyOutcome::Missing`]).
/// * `endpoint_policy: None` — the default endpoint policy, full access.
/// * The resource policy's `execute-api:/…` shorthand is expanded for `api`.
///
/// Verdict order: an explicit deny in either layer (endpoint first), then an
/// implicit deny / missing policy (endpoint first), then an undetermined layer,
/// else Allowed. A definite deny in one layer decides even if the other layer is
/// undetermined.
///
/// Scope: these two layers only. For IAM-authorized methods the caller's identity
/// policy also counts (cross-account callers need both their identity policy and
/// the resource policy to allow); identity policies are not evaluated here.
pub fn evaluate_private_api_access(
    resource_policy: Option<&PolicyDocument>,
    endpoint_policy: Option<&PolicyDocument>,
    api: &ApiRef,
    request: &RequestContext,
) -> PrivateApiAccess {
    let endpoint = match endpoint_policy {
        None => EndpointPolicyOutcome::DefaultFullAccess,
        Some(p) => EndpointPolicyOutcome::Evaluated { decision: evaluate(p, request) },
    };
    let resource = match resource_policy {
        None => ResourcePolicyOutcome::Missing,
        Some(p) => ResourcePolicyOutcome::Evaluated { decision: evaluate(&expand_api_shorthand(p, api), request) },
    };
    let endpoint_decision = match &endpoint {
        EndpointPolicyOutcome::DefaultFullAccess => None,
        EndpointPolicyOutcome::Evaluated { decision } => Some(decision),
    };
    let resource_decision = match &resource {
        ResourcePolicyOutcome::Missing => None,
        ResourcePolicyOutcome::Evaluated { decision } => Some(decision),
    };
    let layers = [(PolicyLayer::EndpointPolicy, endpoint_decision), (PolicyLayer::ResourcePolicy, resource_decision)];
    let verdict =
        if let Some((layer, _)) = layers.iter().find(|(_, d)| matches!(d, Some(Decision::ExplicitDeny { .. }))) {
            AccessVerdict::Denied { layer: *layer, explicit: true }
        } else if matches!(endpoint_decision, Some(Decision::ImplicitDeny)) {
            AccessVerdict::Denied { layer: PolicyLayer::EndpointPolicy, explicit: false }
        } else if matches!(resource_decision, None | Some(Decision::ImplicitDeny)) {
            AccessVerdict::Denied { layer: PolicyLayer::ResourcePolicy, explicit: false }
        } else if let Some((layer, reason)) = layers.iter().find_map(|(l, d)| match d {
            Some(Decision::Undetermined { reason, .. }) => Some((*l, reason.clone())),
            _ => None,
        }) {
            AccessVerdict::Undetermined { layer, reason }
        } else {
            AccessVerdict::Allowed
        };
    PrivateApiAccess { endpoint_policy: endpoint, resource_policy: resource, verdict }
}

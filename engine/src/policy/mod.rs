//! IAM policy evaluation for API Gateway private APIs.
//!
//! A call to a private REST API through an interface VPC endpoint passes two IAM
//! policies: the **VPC endpoint policy** (default: full access) and the API's
//! **resource policy** (required for private APIs: none means deny all). Both are
//! evaluated for the action `execute-api:Invoke` on
//! `arn:aws:execute-api:{region}:{account}:{api}/{stage}/{METHOD}/{path}`. This
//! module answers, for one request, what each policy decides and why, naming the
//! deciding statement — the facts behind the root causes `ResourcePolicyDenied`,
//! `ResourcePolicyExplicitDeny`, `ResourcePolicyMissing` and `EndpointPolicyDenied`.
//!
//! * [`document`] — parsing and validation (`PolicyDocument::parse` accepts the
//!   JSON-escaped string `GetRestApi` returns).
//! * [`context`] — the request: caller, action, resource ARN, condition keys.
//! * [`matching`] — IAM wildcards for actions, resources and ARNs.
//! * [`condition`] — condition operators, `…IfExists`, `ForAnyValue:`/`ForAllValues:`.
//! * [`evaluate`] — statement and policy evaluation (explicit Deny wins), the
//!   `execute-api:/…` shorthand, and the two-layer private-API verdict.
//!
//! Design rule: when something cannot be evaluated faithfully (unknown condition
//! key, unsupported operator, policy variable, ambiguous `NotPrincipal`), the
//! result is [`Decision::Undetermined`] naming it — never a silent Allow or a
//! silent non-match. Nothing here panics on any input.

pub mod condition;
pub mod context;
pub mod document;
pub mod evaluate;
pub mod matching;

pub use condition::{BaseOperator, Cidr, ConditionOperator, SetQualifier};
pub use context::{ApiRef, CallerPrincipal, EXECUTE_API_INVOKE, KeyState, RequestContext, execute_api_arn};
pub use document::{
    ActionElement, AwsPrincipal, ConditionClause, Effect, PolicyDocument, PolicyParseError, PolicyVersion,
    PrincipalElement, PrincipalEntry, PrincipalSet, ResourceElement, Statement, StatementRef,
};
pub use evaluate::{
    AccessVerdict, Decision, EndpointPolicyOutcome, PolicyLayer, PrivateApiAccess, ResourcePolicyOutcome,
    StatementOutcome, UndeterminedReason, evaluate, evaluate_private_api_access, evaluate_statement,
    expand_api_shorthand,
};

#[cfg(test)]
mod tests;

//! The request being authorized: who calls, which action, on which resource, and
//! the condition context keys.
//!
//! API Gateway authorizes every call as the action `execute-api:Invoke` on the
//! resource `arn:aws:execute-api:{region}:{account}:{api}/{stage}/{METHOD}/{path}`
//! (path without its leading `/`; the root path gives `…/GET/`). The caller is
//! *anonymous* unless the request carries a valid SigV4 signature (API Gateway's
//! VPC-endpoint-policy docs: no `Authorization` content, or a non-SigV4 one such
//! as a bearer token, is evaluated as an anonymous user).
//!
//! Condition keys have three states here, because a diagnosis must not guess:
//! * **present** with one value (single-valued key) or a set of values
//!   (multivalued key, e.g. `aws:CalledVia`),
//! * **absent** — we know the request does not carry it (IAM's rules for missing
//!   keys then apply: positive operators false, negated operators true, …),
//! * **unknown** — we do not know; a condition on such a key makes the statement
//!   `Undetermined` instead of silently matching or not matching.
//!
//! A new context knows the five keys pvtapi models (`aws:SourceVpce`,
//! `aws:SourceVpc`, `aws:VpcSourceIp`, `aws:SourceAccount`, `aws:PrincipalAccount`)
//! as absent until set, and derives `aws:PrincipalAccount` / `aws:PrincipalArn`
//! from the principal. Any other key is unknown until set or declared absent.
//! Key names are case-insensitive, as in IAM.

use std::collections::BTreeMap;

use super::matching;

/// `aws:SourceVpce` — the VPC endpoint the request came through.
pub const SOURCE_VPCE: &str = "aws:SourceVpce";
/// `aws:SourceVpc` — the VPC of that endpoint.
pub const SOURCE_VPC: &str = "aws:SourceVpc";
/// `aws:VpcSourceIp` — the caller's private IP as seen by the VPC endpoint.
pub const VPC_SOURCE_IP: &str = "aws:VpcSourceIp";
/// `aws:SourceAccount`.
pub const SOURCE_ACCOUNT: &str = "aws:SourceAccount";
/// `aws:PrincipalAccount` — account of the signing principal (absent for anonymous).
pub const PRINCIPAL_ACCOUNT: &str = "aws:PrincipalAccount";
/// `aws:PrincipalArn` — ARN of the signing principal; for an assumed-role session
/// it is the *role* ARN (with its path), which a session ARN does not reveal.
pub const PRINCIPAL_ARN: &str = "aws:PrincipalArn";

/// The action API Gateway authorizes for every API call.
pub const EXECUTE_API_INVOKE: &str = "execute-api:Invoke";

/// Who makes the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerPrincipal {
    /// No (valid) SigV4 signature: matched only by `"*"` / `{"AWS": "*"}`.
    Anonymous,
    /// A SigV4-signed request by an IAM user, role or assumed-role session
    /// (`arn:aws:iam::…:user/x`, `arn:aws:sts::…:assumed-role/r/s`, …).
    Iam(String),
    /// The account itself (`arn:aws:iam::ACCOUNT:root`), given as its id.
    Account(String),
}

impl CallerPrincipal {
    /// Builds a principal from `"anonymous"`, a 12-digit account id, or an ARN.
    pub fn from_text(s: &str) -> CallerPrincipal {
        if s.eq_ignore_ascii_case("anonymous") || s == "*" {
            CallerPrincipal::Anonymous
        } else if matching::is_account_id(s) {
            CallerPrincipal::Account(s.to_string())
        } else if let Some(acct) = matching::account_root_arn_account(s) {
            CallerPrincipal::Account(acct.to_string())
        } else {
            CallerPrincipal::Iam(s.to_string())
        }
    }

    /// The caller's account id, if signed.
    pub fn account(&self) -> Option<&str> {
        match self {
            CallerPrincipal::Anonymous => None,
            CallerPrincipal::Iam(arn) => matching::arn_account(arn),
            CallerPrincipal::Account(id) => Some(id),
        }
    }
}

/// What a [`RequestContext`] knows about one condition key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyState<'a> {
    /// Known to be present with these values. `multivalued` is true for keys set
    /// with [`RequestContext::with_values`] (IAM "multivalued" context keys).
    Present { values: &'a [String], multivalued: bool },
    /// Known to be absent from the request.
    Absent,
    /// Nothing is known about this key.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Slot {
    Single(String),
    Multi(Vec<String>),
    Absent,
}

/// The request to authorize.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    pub principal: CallerPrincipal,
    /// Default `execute-api:Invoke`.
    pub action: String,
    /// The full resource ARN, e.g. from [`execute_api_arn`].
    pub resource: String,
    keys: BTreeMap<String, Slot>,
}

impl RequestContext {
    /// A request for `execute-api:Invoke` on `resource` by `principal`. The five
    /// modelled keys start absent; `aws:PrincipalAccount` and (except for
    /// assumed-role sessions) `aws:PrincipalArn` are derived from the principal.
    pub fn new(principal: CallerPrincipal, resource: impl Into<String>) -> RequestContext {
        let mut ctx = RequestContext {
            principal: principal.clone(),
            action: EXECUTE_API_INVOKE.to_string(),
            resource: resource.into(),
            keys: BTreeMap::new(),
        };
        for k in [SOURCE_VPCE, SOURCE_VPC, VPC_SOURCE_IP, SOURCE_ACCOUNT, PRINCIPAL_ACCOUNT] {
            ctx = ctx.without_key(k);
        }
        match &principal {
            CallerPrincipal::Anonymous => {
                ctx = ctx.without_key(PRINCIPAL_ARN);
            }
            CallerPrincipal::Account(id) => {
                ctx = ctx
                    .with_key(PRINCIPAL_ACCOUNT, id.clone())
                    .with_key(PRINCIPAL_ARN, format!("arn:aws:iam::{id}:root"));
            }
            CallerPrincipal::Iam(arn) => {
                ctx = match matching::arn_account(arn) {
                    Some(acct) => ctx.with_key(PRINCIPAL_ACCOUNT, acct.to_string()),
                    // Not an ARN (e.g. a unique id): the account is unknown.
                    None => ctx.forget_key(PRINCIPAL_ACCOUNT),
                };
                if matching::assumed_role_parts(arn).is_none() {
                    ctx = ctx.with_key(PRINCIPAL_ARN, arn.clone());
                }
            }
        }
        ctx
    }

    /// Replaces the action (default `execute-api:Invoke`).
    pub fn with_action(mut self, action: impl Into<String>) -> RequestContext {
        self.action = action.into();
        self
    }

    /// Sets a single-valued key.
    pub fn with_key(mut self, key: &str, value: impl Into<String>) -> RequestContext {
        self.keys.insert(key.to_ascii_lowercase(), Slot::Single(value.into()));
        self
    }

    /// Sets a multivalued key (IAM: these need `ForAnyValue:` / `ForAllValues:`).
    /// An empty list is IAM's "empty data set".
    pub fn with_values(mut self, key: &str, values: Vec<String>) -> RequestContext {
        self.keys.insert(key.to_ascii_lowercase(), Slot::Multi(values));
        self
    }

    /// Declares that the request does not carry `key`.
    pub fn without_key(mut self, key: &str) -> RequestContext {
        self.keys.insert(key.to_ascii_lowercase(), Slot::Absent);
        self
    }

    /// Forgets anything known about `key` (it becomes unknown).
    pub fn forget_key(mut self, key: &str) -> RequestContext {
        self.keys.remove(&key.to_ascii_lowercase());
        self
    }

    /// Sets `aws:SourceVpce`.
    pub fn source_vpce(self, vpce: impl Into<String>) -> RequestContext {
        self.with_key(SOURCE_VPCE, vpce)
    }
    /// Sets `aws:SourceVpc`.
    pub fn source_vpc(self, vpc: impl Into<String>) -> RequestContext {
        self.with_key(SOURCE_VPC, vpc)
    }
    /// Sets `aws:VpcSourceIp`.
    pub fn vpc_source_ip(self, ip: impl Into<String>) -> RequestContext {
        self.with_key(VPC_SOURCE_IP, ip)
    }
    /// Sets `aws:SourceAccount`.
    pub fn source_account(self, account: impl Into<String>) -> RequestContext {
        self.with_key(SOURCE_ACCOUNT, account)
    }
    /// Sets `aws:PrincipalAccount`.
    pub fn principal_account(self, account: impl Into<String>) -> RequestContext {
        self.with_key(PRINCIPAL_ACCOUNT, account)
    }

    /// What is known about `key` (case-insensitive).
    pub fn key(&self, key: &str) -> KeyState<'_> {
        match self.keys.get(&key.to_ascii_lowercase()) {
            None => KeyState::Unknown,
            Some(Slot::Absent) => KeyState::Absent,
            Some(Slot::Single(v)) => KeyState::Present { values: std::slice::from_ref(v), multivalued: false },
            Some(Slot::Multi(vs)) => KeyState::Present { values: vs, multivalued: true },
        }
    }
}

/// The API a resource policy is attached to; needed to expand the
/// `execute-api:/…` shorthand and to build invoke ARNs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiRef {
    /// `aws`, `aws-cn`, `aws-us-gov`.
    pub partition: String,
    pub region: String,
    pub account: String,
    pub api_id: String,
}

impl ApiRef {
    /// An API in the `aws` partition.
    pub fn new(region: impl Into<String>, account: impl Into<String>, api_id: impl Into<String>) -> ApiRef {
        ApiRef { partition: "aws".to_string(), region: region.into(), account: account.into(), api_id: api_id.into() }
    }

    /// `arn:{partition}:execute-api:{region}:{account}:{api}` — the prefix that the
    /// `execute-api:` shorthand stands for.
    pub fn arn_prefix(&self) -> String {
        format!("arn:{}:execute-api:{}:{}:{}", self.partition, self.region, self.account, self.api_id)
    }
}

/// The resource ARN API Gateway authorizes for a call:
/// `arn:aws:execute-api:{region}:{account}:{api}/{stage}/{METHOD}/{path}` where
/// `path` loses one leading `/` (so `/` gives `…/GET/` and `/pets/1` gives
/// `…/GET/pets/1`) and the method is upper-cased.
pub fn execute_api_arn(api: &ApiRef, stage: &str, method: &str, path: &str) -> String {
    let path = path.strip_prefix('/').unwrap_or(path);
    format!("{}/{}/{}/{}", api.arn_prefix(), stage, method.to_ascii_uppercase(), path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arn_builder() {
        let api = ApiRef::new("us-east-1", "111122223333", "a1b2c3d4e5");
        let cases = [
            ("prod", "GET", "/", "arn:aws:execute-api:us-east-1:111122223333:a1b2c3d4e5/prod/GET/"),
            ("prod", "get", "/pets", "arn:aws:execute-api:us-east-1:111122223333:a1b2c3d4e5/prod/GET/pets"),
            (
                "dev",
                "POST",
                "/pets/1/toys",
                "arn:aws:execute-api:us-east-1:111122223333:a1b2c3d4e5/dev/POST/pets/1/toys",
            ),
            ("dev", "POST", "pets", "arn:aws:execute-api:us-east-1:111122223333:a1b2c3d4e5/dev/POST/pets"),
            ("dev", "GET", "", "arn:aws:execute-api:us-east-1:111122223333:a1b2c3d4e5/dev/GET/"),
        ];
        for (stage, method, path, want) in cases {
            assert_eq!(execute_api_arn(&api, stage, method, path), want);
        }
    }

    #[test]
    fn key_states() {
        let ctx = RequestContext::new(CallerPrincipal::Anonymous, "arn:x")
            .source_vpce("vpce-1")
            .with_values("aws:CalledVia", vec!["a".into(), "b".into()]);
        assert_eq!(
            ctx.key("AWS:SOURCEVPCE"),
            KeyState::Present { values: &["vpce-1".to_string()], multivalued: false }
        );
        assert_eq!(ctx.key("aws:SourceVpc"), KeyState::Absent);
        assert_eq!(ctx.key("aws:PrincipalAccount"), KeyState::Absent);
        assert_eq!(ctx.key("aws:PrincipalOrgID"), KeyState::Unknown);
        assert!(matches!(ctx.key("aws:calledvia"), KeyState::Present { multivalued: true, .. }));
        let ctx = ctx.forget_key("aws:SourceVpce");
        assert_eq!(ctx.key("aws:SourceVpce"), KeyState::Unknown);
    }

    #[test]
    fn principal_keys_are_derived() {
        let user = RequestContext::new(CallerPrincipal::from_text("arn:aws:iam::444455556666:user/bob"), "arn:x");
        assert_eq!(
            user.key(PRINCIPAL_ACCOUNT),
            KeyState::Present { values: &["444455556666".to_string()], multivalued: false }
        );
        let session =
            RequestContext::new(CallerPrincipal::from_text("arn:aws:sts::444455556666:assumed-role/app/s1"), "arn:x");
        // The role ARN (with path) cannot be derived from a session ARN.
        assert_eq!(session.key(PRINCIPAL_ARN), KeyState::Unknown);
        let acct = CallerPrincipal::from_text("arn:aws:iam::444455556666:root");
        assert_eq!(acct, CallerPrincipal::Account("444455556666".into()));
        assert_eq!(CallerPrincipal::from_text("anonymous"), CallerPrincipal::Anonymous);
    }
}

//! Policy documents: our types, and parsing from JSON with our own validation.
//!
//! Why our own validation instead of `#[derive(Deserialize)]`: a diagnosis tool
//! must say *where* a policy is wrong and *why* (the JSON path and the IAM rule),
//! must accept every shape IAM accepts (single value or list, `Statement` as one
//! object or a list, numbers and booleans as condition values) and must never
//! panic on anything.
//!
//! Rules implemented here (from the IAM JSON policy reference):
//! * Element names are case-sensitive (`Effect`, not `effect`); unknown elements
//!   are rejected, as IAM's validator does.
//! * `Effect` is `Allow` or `Deny`, **case-sensitive** — IAM: "The Effect value is
//!   case sensitive." `"allow"` is an error, not an Allow.
//! * A statement has exactly one of `Action`/`NotAction`, exactly one of
//!   `Resource`/`NotResource`, and at most one of `Principal`/`NotPrincipal`.
//! * `Principal` is `"*"` or an object of principal types (`AWS`, `Service`,
//!   `Federated`, `CanonicalUser`), each a string or a list of strings. An
//!   `AWS` value is `*`, a 12-digit account id, an account-root ARN
//!   (`arn:aws:iam::ACCOUNT:root`, equivalent to the bare id) or another ARN.
//! * `Condition` is `{operator: {key: value | [values]}}`; condition values may be
//!   strings, numbers or booleans, which IAM compares as their string form
//!   (`true` → `"true"`, `10` → `"10"`).
//! * `GetRestApi.policy` returns the document as a JSON-escaped *string*
//!   (`"{\"Version\":…}"`); [`PolicyDocument::parse`] accepts both forms.

use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

use super::condition::ConditionOperator;

/// Where and why a policy failed to parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyParseError {
    /// The text is not JSON (position from `serde_json`, 1-based line and column).
    #[error("invalid JSON at line {line}, column {column}: {reason}")]
    Syntax { line: usize, column: usize, reason: String },
    /// The text was a JSON string (the escaped form AWS returns) whose content is
    /// not JSON. Line and column refer to the *unescaped* policy text.
    #[error("invalid JSON inside the escaped policy string at line {line}, column {column}: {reason}")]
    EscapedSyntax { line: usize, column: usize, reason: String },
    /// Valid JSON that is not a valid policy. `path` is a JSON path such as
    /// `Statement[1].Condition.StringEquals`.
    #[error("{path}: {reason}")]
    Invalid { path: String, reason: String },
}

/// The policy language version (`Version`). Only affects policy variables:
/// `${…}` is a variable in `2012-10-17` and literal text in `2008-10-17` (which is
/// also what IAM assumes when `Version` is absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PolicyVersion {
    V2012_10_17,
    V2008_10_17,
}

/// A parsed IAM policy (API Gateway resource policy or VPC endpoint policy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDocument {
    pub version: Option<PolicyVersion>,
    pub id: Option<String>,
    pub statements: Vec<Statement>,
}

/// One statement. `index` is its position in `Statement` (0 when `Statement` is a
/// single object), used to name it when it has no `Sid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub index: usize,
    pub sid: Option<String>,
    pub effect: Effect,
    pub principal: Option<PrincipalElement>,
    pub action: ActionElement,
    pub resource: ResourceElement,
    pub conditions: Vec<ConditionClause>,
}

/// `Effect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Effect {
    Allow,
    Deny,
}

/// `Principal` (the statement applies to the listed principals) or
/// `NotPrincipal` (it applies to everyone except them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalElement {
    Principal(PrincipalSet),
    NotPrincipal(PrincipalSet),
}

/// The value of a `Principal` / `NotPrincipal` element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalSet {
    /// `"Principal": "*"` — everyone, including anonymous callers.
    Everyone,
    /// `{"AWS": …, "Service": …}` flattened to a list.
    Listed(Vec<PrincipalEntry>),
}

/// One principal named in a `Principal` object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalEntry {
    /// An entry under `"AWS"`.
    Aws(AwsPrincipal),
    /// An entry under `Service`, `Federated` or `CanonicalUser`. Such principals are
    /// never an anonymous caller nor an IAM user/role, so they never match the
    /// callers pvtapi evaluates.
    Other { kind: String, value: String },
}

/// A value under `"AWS"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AwsPrincipal {
    /// `"AWS": "*"` — like `"Principal": "*"`, includes anonymous callers.
    Everyone,
    /// `"123456789012"` or `"arn:aws:iam::123456789012:root"`: any IAM principal of
    /// that account (the account delegates to its own identity policies; pvtapi
    /// treats that as a match, see [`super::evaluate`]).
    Account(String),
    /// Any other ARN (user, role, assumed-role session, …) or an IAM unique id
    /// (what AWS shows after the named principal was deleted). Compared literally:
    /// IAM allows no wildcards inside principal ARNs.
    Arn(String),
}

/// `Action` / `NotAction`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionElement {
    Action(Vec<String>),
    NotAction(Vec<String>),
}

/// `Resource` / `NotResource`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceElement {
    Resource(Vec<String>),
    NotResource(Vec<String>),
}

/// One `operator: {key: values}` pair of a `Condition` block. A block with several
/// operators and/or several keys becomes several clauses, all of which must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionClause {
    pub operator: ConditionOperator,
    /// The key as written (condition keys are matched case-insensitively).
    pub key: String,
    /// The values, stringified (IAM compares numbers and booleans as strings).
    pub values: Vec<String>,
}

/// Identifies a statement in a [`super::Decision`]: by `Sid` when it has one,
/// otherwise by its index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatementRef {
    pub index: usize,
    pub sid: Option<String>,
}

impl fmt::Display for StatementRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.sid {
            Some(sid) => write!(f, "statement {sid:?}"),
            None => write!(f, "Statement[{}]", self.index),
        }
    }
}

impl Statement {
    /// How a [`super::Decision`] names this statement.
    pub fn reference(&self) -> StatementRef {
        StatementRef { index: self.index, sid: self.sid.clone() }
    }
}

impl PolicyDocument {
    /// Parses a policy given either as a JSON object or as a JSON string that
    /// contains the (escaped) policy, as `GetRestApi.policy` returns it.
    ///
    /// Duplicate object keys are rejected with their position: JSON leaves their
    /// meaning open and a diagnosis must not silently pick one of them.
    pub fn parse(text: &str) -> Result<PolicyDocument, PolicyParseError> {
        let StrictValue(value) = serde_json::from_str(text).map_err(|e| PolicyParseError::Syntax {
            line: e.line(),
            column: e.column(),
            reason: strip_position(&e),
        })?;
        match value {
            Value::String(inner) => {
                let StrictValue(inner_value) = serde_json::from_str(&inner).map_err(|e| {
                    PolicyParseError::EscapedSyntax { line: e.line(), column: e.column(), reason: strip_position(&e) }
                })?;
                if inner_value.is_string() {
                    return Err(invalid("$", "the policy is escaped twice (a JSON string containing a JSON string)"));
                }
                Self::from_value(&inner_value)
            }
            other => Self::from_value(&other),
        }
    }

    /// Builds a policy from an already-parsed JSON value (must be an object).
    pub fn from_value(value: &Value) -> Result<PolicyDocument, PolicyParseError> {
        let Value::Object(obj) = value else {
            return Err(invalid("$", format!("a policy must be a JSON object, got {}", kind(value))));
        };
        let mut version = None;
        let mut id = None;
        let mut statements = None;
        for (name, v) in obj {
            match name.as_str() {
                "Version" => {
                    version = Some(match v {
                        Value::String(s) if s == "2012-10-17" => PolicyVersion::V2012_10_17,
                        Value::String(s) if s == "2008-10-17" => PolicyVersion::V2008_10_17,
                        other => {
                            return Err(invalid(
                                "Version",
                                format!("Version must be \"2012-10-17\" or \"2008-10-17\", got {}", show(other)),
                            ));
                        }
                    })
                }
                "Id" => id = Some(expect_string(v, "Id")?),
                "Statement" => statements = Some(parse_statements(v)?),
                other => return Err(unknown_element("$", other, TOP_LEVEL_ELEMENTS)),
            }
        }
        let statements = statements.ok_or_else(|| invalid("$", "the policy has no Statement element"))?;
        Ok(PolicyDocument { version, id, statements })
    }

    /// True when `${…}` in values is a policy variable (Version 2012-10-17).
    pub fn uses_policy_variables(&self) -> bool {
        self.version == Some(PolicyVersion::V2012_10_17)
    }
}

const TOP_LEVEL_ELEMENTS: &[&str] = &["Version", "Id", "Statement"];
const STATEMENT_ELEMENTS: &[&str] =
    &["Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition"];

fn parse_statements(v: &Value) -> Result<Vec<Statement>, PolicyParseError> {
    match v {
        Value::Object(obj) => Ok(vec![parse_statement(obj, 0, "Statement".to_string())?]),
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let path = format!("Statement[{i}]");
                let Value::Object(obj) = item else {
                    return Err(invalid(&path, format!("a statement must be a JSON object, got {}", kind(item))));
                };
                out.push(parse_statement(obj, i, path)?);
            }
            Ok(out)
        }
        other => {
            Err(invalid("Statement", format!("Statement must be an object or a list of objects, got {}", kind(other))))
        }
    }
}

fn parse_statement(obj: &Map<String, Value>, index: usize, path: String) -> Result<Statement, PolicyParseError> {
    let mut sid = None;
    let mut effect = None;
    let mut principal: Option<PrincipalElement> = None;
    let mut action: Option<ActionElement> = None;
    let mut resource: Option<ResourceElement> = None;
    let mut conditions = Vec::new();
    for (name, v) in obj {
        let p = format!("{path}.{name}");
        match name.as_str() {
            "Sid" => sid = Some(expect_string(v, &p)?),
            "Effect" => {
                effect = Some(match v {
                    Value::String(s) if s == "Allow" => Effect::Allow,
                    Value::String(s) if s == "Deny" => Effect::Deny,
                    other => {
                        return Err(invalid(
                            &p,
                            format!("Effect must be Allow or Deny (case-sensitive), got {}", show(other)),
                        ));
                    }
                })
            }
            "Principal" | "NotPrincipal" => {
                if principal.is_some() {
                    return Err(invalid(&p, "a statement cannot have both Principal and NotPrincipal"));
                }
                let set = parse_principal_set(v, &p)?;
                principal = Some(if name == "Principal" {
                    PrincipalElement::Principal(set)
                } else {
                    PrincipalElement::NotPrincipal(set)
                });
            }
            "Action" | "NotAction" => {
                if action.is_some() {
                    return Err(invalid(&p, "a statement cannot have both Action and NotAction"));
                }
                let list = string_or_list(v, &p, false)?;
                if let Some((i, _)) = list.iter().enumerate().find(|(_, a)| a.is_empty()) {
                    return Err(invalid(&format!("{p}[{i}]"), "an action cannot be empty"));
                }
                action =
                    Some(if name == "Action" { ActionElement::Action(list) } else { ActionElement::NotAction(list) });
            }
            "Resource" | "NotResource" => {
                if resource.is_some() {
                    return Err(invalid(&p, "a statement cannot have both Resource and NotResource"));
                }
                let list = string_or_list(v, &p, false)?;
                if let Some((i, _)) = list.iter().enumerate().find(|(_, a)| a.is_empty()) {
                    return Err(invalid(&format!("{p}[{i}]"), "a resource cannot be empty"));
                }
                resource = Some(if name == "Resource" {
                    ResourceElement::Resource(list)
                } else {
                    ResourceElement::NotResource(list)
                });
            }
            "Condition" => conditions = parse_condition_block(v, &p)?,
            other => return Err(unknown_element(&path, other, STATEMENT_ELEMENTS)),
        }
    }
    let effect = effect.ok_or_else(|| invalid(&path, "the statement has no Effect"))?;
    let action = action.ok_or_else(|| invalid(&path, "the statement has neither Action nor NotAction"))?;
    let resource = resource.ok_or_else(|| invalid(&path, "the statement has neither Resource nor NotResource"))?;
    Ok(Statement { index, sid, effect, principal, action, resource, conditions })
}

fn parse_principal_set(v: &Value, path: &str) -> Result<PrincipalSet, PolicyParseError> {
    match v {
        Value::String(s) if s == "*" => Ok(PrincipalSet::Everyone),
        Value::String(s) => Err(invalid(
            path,
            format!("a principal given as a string must be \"*\", got {s:?} (use {{\"AWS\": {s:?}}})"),
        )),
        Value::Object(obj) => {
            let mut entries = Vec::new();
            for (kind_name, values) in obj {
                let p = format!("{path}.{kind_name}");
                let list = string_or_list(values, &p, false)?;
                match kind_name.as_str() {
                    "AWS" => {
                        for (i, s) in list.into_iter().enumerate() {
                            entries.push(PrincipalEntry::Aws(parse_aws_principal(s, &format!("{p}[{i}]"))?));
                        }
                    }
                    "Service" | "Federated" | "CanonicalUser" => entries
                        .extend(list.into_iter().map(|value| PrincipalEntry::Other { kind: kind_name.clone(), value })),
                    other => {
                        return Err(invalid(
                            &p,
                            format!(
                                "unknown principal type {other:?} (expected AWS, Service, Federated or CanonicalUser)"
                            ),
                        ));
                    }
                }
            }
            Ok(PrincipalSet::Listed(entries))
        }
        other => Err(invalid(
            path,
            format!("a principal must be \"*\" or an object such as {{\"AWS\": …}}, got {}", kind(other)),
        )),
    }
}

fn parse_aws_principal(s: String, path: &str) -> Result<AwsPrincipal, PolicyParseError> {
    if s == "*" {
        return Ok(AwsPrincipal::Everyone);
    }
    if s.is_empty() {
        return Err(invalid(path, "an AWS principal cannot be empty"));
    }
    if super::matching::is_account_id(&s) {
        return Ok(AwsPrincipal::Account(s));
    }
    if let Some(account) = super::matching::account_root_arn_account(&s) {
        return Ok(AwsPrincipal::Account(account.to_string()));
    }
    Ok(AwsPrincipal::Arn(s))
}

fn parse_condition_block(v: &Value, path: &str) -> Result<Vec<ConditionClause>, PolicyParseError> {
    let Value::Object(ops) = v else {
        return Err(invalid(
            path,
            format!("Condition must be an object {{operator: {{key: value}}}}, got {}", kind(v)),
        ));
    };
    let mut clauses = Vec::new();
    for (op_name, keys) in ops {
        let p = format!("{path}.{op_name}");
        let operator = ConditionOperator::parse(op_name);
        let Value::Object(keys) = keys else {
            return Err(invalid(
                &p,
                format!("a condition operator must map to an object {{key: value}}, got {}", kind(keys)),
            ));
        };
        if keys.is_empty() {
            return Err(invalid(&p, "a condition operator needs at least one key"));
        }
        for (key, values) in keys {
            let kp = format!("{p}.{key}");
            if key.is_empty() {
                return Err(invalid(&kp, "a condition key cannot be empty"));
            }
            let values = string_or_list(values, &kp, true)?;
            clauses.push(ConditionClause { operator: operator.clone(), key: key.clone(), values });
        }
    }
    Ok(clauses)
}

/// A string, or a list of strings. With `scalars`, numbers and booleans are
/// accepted too and stringified (condition values).
fn string_or_list(v: &Value, path: &str, scalars: bool) -> Result<Vec<String>, PolicyParseError> {
    let one = |item: &Value, p: &str| -> Result<String, PolicyParseError> {
        match item {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) if scalars => Ok(n.to_string()),
            Value::Bool(b) if scalars => Ok(b.to_string()),
            other => Err(invalid(
                p,
                format!(
                    "expected {}, got {}",
                    if scalars { "a string, number or boolean" } else { "a string" },
                    kind(other)
                ),
            )),
        }
    };
    match v {
        Value::Array(items) => items.iter().enumerate().map(|(i, item)| one(item, &format!("{path}[{i}]"))).collect(),
        other => Ok(vec![one(other, path)?]),
    }
}

fn expect_string(v: &Value, path: &str) -> Result<String, PolicyParseError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        other => Err(invalid(path, format!("expected a string, got {}", kind(other)))),
    }
}

fn unknown_element(path: &str, name: &str, known: &[&str]) -> PolicyParseError {
    let hint = known
        .iter()
        .find(|k| k.eq_ignore_ascii_case(name))
        .map(|k| format!(" (element names are case-sensitive: did you mean {k}?)"))
        .unwrap_or_default();
    let at = if path == "$" { name.to_string() } else { format!("{path}.{name}") };
    invalid(&at, format!("unknown element {name:?}{hint}"))
}

fn invalid(path: &str, reason: impl Into<String>) -> PolicyParseError {
    PolicyParseError::Invalid { path: path.to_string(), reason: reason.into() }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A short rendering of a JSON value for error messages.
fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => kind(other).to_string(),
    }
}

/// A `serde_json::Value` that refuses duplicate keys in objects.
struct StrictValue(Value);

impl<'de> serde::Deserialize<'de> for StrictValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v).map(Value::Number).ok_or_else(|| E::custom("number out of range"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(<A::Error as serde::de::Error>::custom(format!("duplicate key {key:?}")));
            }
            let StrictValue(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

/// serde_json appends " at line X column Y" to messages; we report those separately.
fn strip_position(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    }
}

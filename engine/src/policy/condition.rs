//! Condition operators and their evaluation.
//!
//! IAM rules implemented here (IAM User Guide, "Condition operators",
//! "Condition", "Single-valued vs. multivalued context keys", "Set operators"):
//!
//! * Several values for one key are OR'ed; several keys under one operator, and
//!   several operators in one `Condition` block, are AND'ed. (The AND is done by
//!   the caller: each `operator/key` pair is one [`ConditionClause`].)
//! * Negated operators (`StringNotEquals`, `StringNotLike`, `ArnNotEquals`,
//!   `ArnNotLike`, `NotIpAddress`, …) are the negation of the positive operator
//!   over *all* policy values: "not equal to any of them".
//! * **Missing key**: "If the key that you specify in a policy condition is not
//!   present in the request context, the values do not match and the condition is
//!   false. If the policy condition requires that the key is not matched, such as
//!   StringNotLike or ArnNotLike, and the right key is not present, the condition
//!   is true. This logic applies to all condition operators except ...IfExists and
//!   Null check." So `Deny` + `StringNotEquals aws:SourceVpce` denies a request
//!   that did not come through a VPC endpoint at all.
//! * `…IfExists`: "If the key is not present, evaluate the condition element as
//!   true"; if present, evaluate normally. Not allowed on `Null`.
//! * `Null`: value `true` holds when the key is absent, `false` when it is present.
//! * `ForAnyValue:` holds if some request value satisfies the operator;
//!   `ForAllValues:` if every request value does. On a missing key / empty set,
//!   `ForAllValues` is true and `ForAnyValue` is false (IAM: "a condition operator
//!   modified by ForAllValues returns true, and … ForAnyValue returns false");
//!   `ForAnyValue:…IfExists` on a missing key is true (the IfExists rule).
//! * Condition key names are case-insensitive; operator names are matched
//!   case-insensitively too (AWS validates operators when a policy is saved, so a
//!   stored policy only contains names AWS understood).
//! * A multivalued key (set with [`RequestContext::with_values`]) used without a
//!   set qualifier is **Undetermined**: IAM says such keys "require" a set
//!   operator and documents no result for the other case.
//! * Anything we cannot evaluate — an operator outside the list below (numeric,
//!   date, binary), a key the context knows nothing about, a policy variable, an
//!   invalid CIDR — yields an [`UndeterminedReason`] naming it, never a silent
//!   true/false.

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

use super::context::{KeyState, RequestContext};
use super::document::ConditionClause;
use super::evaluate::UndeterminedReason;
use super::matching::{arn_condition_matches, wildcard_match};

/// `ForAnyValue:` / `ForAllValues:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SetQualifier {
    ForAnyValue,
    ForAllValues,
}

/// The operator without qualifier and `IfExists` suffix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum BaseOperator {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    ArnEquals,
    ArnLike,
    ArnNotEquals,
    ArnNotLike,
    IpAddress,
    NotIpAddress,
    Bool,
    Null,
    /// Any operator we do not evaluate (numeric, date, binary, misspelt, a
    /// `NullIfExists`, an unknown qualifier). Kept so evaluation can name it.
    Unsupported(String),
}

impl BaseOperator {
    /// Negated operators hold on a missing key and are "not any of the values".
    pub fn is_negated(&self) -> bool {
        matches!(
            self,
            BaseOperator::StringNotEquals
                | BaseOperator::StringNotEqualsIgnoreCase
                | BaseOperator::StringNotLike
                | BaseOperator::ArnNotEquals
                | BaseOperator::ArnNotLike
                | BaseOperator::NotIpAddress
        )
    }

    fn from_name(name: &str) -> Option<BaseOperator> {
        const TABLE: &[(&str, BaseOperator)] = &[
            ("StringEquals", BaseOperator::StringEquals),
            ("StringNotEquals", BaseOperator::StringNotEquals),
            ("StringEqualsIgnoreCase", BaseOperator::StringEqualsIgnoreCase),
            ("StringNotEqualsIgnoreCase", BaseOperator::StringNotEqualsIgnoreCase),
            ("StringLike", BaseOperator::StringLike),
            ("StringNotLike", BaseOperator::StringNotLike),
            ("ArnEquals", BaseOperator::ArnEquals),
            ("ArnLike", BaseOperator::ArnLike),
            ("ArnNotEquals", BaseOperator::ArnNotEquals),
            ("ArnNotLike", BaseOperator::ArnNotLike),
            ("IpAddress", BaseOperator::IpAddress),
            ("NotIpAddress", BaseOperator::NotIpAddress),
            ("Bool", BaseOperator::Bool),
            ("Null", BaseOperator::Null),
        ];
        TABLE.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, op)| op.clone())
    }
}

/// A full condition operator as written, e.g. `ForAnyValue:StringLikeIfExists`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConditionOperator {
    /// The operator exactly as written in the policy.
    pub name: String,
    pub set: Option<SetQualifier>,
    pub base: BaseOperator,
    pub if_exists: bool,
}

impl fmt::Display for ConditionOperator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl ConditionOperator {
    /// Parses an operator name. Never fails: names we cannot evaluate become
    /// [`BaseOperator::Unsupported`] so that evaluation reports them.
    pub fn parse(name: &str) -> ConditionOperator {
        let unsupported = || ConditionOperator {
            name: name.to_string(),
            set: None,
            base: BaseOperator::Unsupported(name.to_string()),
            if_exists: false,
        };
        let (set, rest) = match name.split_once(':') {
            Some((q, rest)) if q.eq_ignore_ascii_case("ForAnyValue") => (Some(SetQualifier::ForAnyValue), rest),
            Some((q, rest)) if q.eq_ignore_ascii_case("ForAllValues") => (Some(SetQualifier::ForAllValues), rest),
            Some(_) => return unsupported(),
            None => (None, name),
        };
        let (if_exists, base_name) = match strip_suffix_ignore_case(rest, "IfExists") {
            Some(b) => (true, b),
            None => (false, rest),
        };
        let Some(base) = BaseOperator::from_name(base_name) else {
            return unsupported();
        };
        // IAM: IfExists can be added to any operator "except the Null condition";
        // a set qualifier on Null has no documented meaning either.
        if base == BaseOperator::Null && (if_exists || set.is_some()) {
            return unsupported();
        }
        ConditionOperator { name: name.to_string(), set, base, if_exists }
    }
}

fn strip_suffix_ignore_case<'a>(s: &'a str, suffix: &str) -> Option<&'a str> {
    if s.len() >= suffix.len() && s.is_char_boundary(s.len() - suffix.len()) {
        let (head, tail) = s.split_at(s.len() - suffix.len());
        if tail.eq_ignore_ascii_case(suffix) && !head.is_empty() {
            return Some(head);
        }
    }
    None
}

/// Evaluates one clause. `variables` is true when `${…}` is a policy variable
/// (policy Version 2012-10-17); we do not substitute variables, so a value using
/// one is Undetermined.
pub fn evaluate_clause(
    clause: &ConditionClause,
    ctx: &RequestContext,
    variables: bool,
) -> Result<bool, UndeterminedReason> {
    let op = &clause.operator;
    if let BaseOperator::Unsupported(name) = &op.base {
        return Err(UndeterminedReason::UnsupportedOperator { operator: name.clone() });
    }
    if variables
        && op.base != BaseOperator::Null
        && let Some(v) = clause.values.iter().find(|v| v.contains("${"))
    {
        return Err(UndeterminedReason::PolicyVariable {
            operator: op.name.clone(),
            key: clause.key.clone(),
            value: v.clone(),
        });
    }
    let state = ctx.key(&clause.key);
    let (values, multivalued) = match state {
        KeyState::Unknown => {
            return Err(UndeterminedReason::UnknownConditionKey { operator: op.name.clone(), key: clause.key.clone() });
        }
        KeyState::Absent => (None, false),
        KeyState::Present { values, multivalued } => (Some(values), multivalued),
    };

    if op.base == BaseOperator::Null {
        let present = values.is_some();
        let mut result = false;
        for v in &clause.values {
            let want_absent = parse_bool(v).ok_or_else(|| UndeterminedReason::InvalidValue {
                operator: op.name.clone(),
                key: clause.key.clone(),
                value: v.clone(),
                expected: "true or false",
            })?;
            result |= want_absent != present;
        }
        return Ok(result);
    }

    // Validate the policy values once, so a bad CIDR / ARN / boolean is reported
    // even when the key is absent.
    let compiled = compile_values(op, &clause.key, &clause.values)?;

    match (op.set, values) {
        (None, None) => Ok(op.if_exists || op.base.is_negated()),
        (None, Some(vs)) => {
            if multivalued {
                return Err(UndeterminedReason::MultivaluedKeyWithoutSetOperator {
                    operator: op.name.clone(),
                    key: clause.key.clone(),
                });
            }
            match vs {
                [one] => Ok(base_holds(&op.base, &compiled, one)),
                // A single-valued key always has exactly one value; unreachable in
                // practice, but never guess.
                _ => Err(UndeterminedReason::MultivaluedKeyWithoutSetOperator {
                    operator: op.name.clone(),
                    key: clause.key.clone(),
                }),
            }
        }
        (Some(SetQualifier::ForAnyValue), None) => Ok(op.if_exists),
        (Some(SetQualifier::ForAllValues), None) => Ok(true),
        (Some(SetQualifier::ForAnyValue), Some(vs)) => Ok(vs.iter().any(|v| base_holds(&op.base, &compiled, v))),
        (Some(SetQualifier::ForAllValues), Some(vs)) => Ok(vs.iter().all(|v| base_holds(&op.base, &compiled, v))),
    }
}

/// Policy values pre-parsed for the operator's type.
enum Compiled<'a> {
    Strings(&'a [String]),
    Arns(&'a [String]),
    Cidrs(Vec<Cidr>),
    Bools(Vec<bool>),
}

fn compile_values<'a>(
    op: &ConditionOperator,
    key: &str,
    values: &'a [String],
) -> Result<Compiled<'a>, UndeterminedReason> {
    let invalid = |v: &String, expected: &'static str| UndeterminedReason::InvalidValue {
        operator: op.name.clone(),
        key: key.to_string(),
        value: v.clone(),
        expected,
    };
    Ok(match op.base {
        BaseOperator::ArnEquals | BaseOperator::ArnLike | BaseOperator::ArnNotEquals | BaseOperator::ArnNotLike => {
            if let Some(v) = values.iter().find(|v| super::matching::split_arn(v).is_none()) {
                return Err(invalid(v, "an ARN with six colon-separated components"));
            }
            Compiled::Arns(values)
        }
        BaseOperator::IpAddress | BaseOperator::NotIpAddress => {
            let mut out = Vec::with_capacity(values.len());
            for v in values {
                out.push(Cidr::parse(v).ok_or_else(|| invalid(v, "an IPv4/IPv6 address or CIDR"))?);
            }
            Compiled::Cidrs(out)
        }
        BaseOperator::Bool => {
            let mut out = Vec::with_capacity(values.len());
            for v in values {
                out.push(parse_bool(v).ok_or_else(|| invalid(v, "true or false"))?);
            }
            Compiled::Bools(out)
        }
        _ => Compiled::Strings(values),
    })
}

/// Does one request value satisfy the base operator against all policy values?
/// Positive operators: some policy value matches. Negated: none does.
fn base_holds(base: &BaseOperator, compiled: &Compiled<'_>, value: &str) -> bool {
    let positive = match (base, compiled) {
        (BaseOperator::StringEquals | BaseOperator::StringNotEquals, Compiled::Strings(ps)) => {
            ps.iter().any(|p| p == value)
        }
        (BaseOperator::StringEqualsIgnoreCase | BaseOperator::StringNotEqualsIgnoreCase, Compiled::Strings(ps)) => {
            let lv = value.to_lowercase();
            ps.iter().any(|p| p.to_lowercase() == lv)
        }
        (BaseOperator::StringLike | BaseOperator::StringNotLike, Compiled::Strings(ps)) => {
            ps.iter().any(|p| wildcard_match(p, value, false))
        }
        (_, Compiled::Arns(ps)) => ps.iter().any(|p| arn_condition_matches(p, value).unwrap_or(false)),
        (_, Compiled::Cidrs(cs)) => match value.parse::<IpAddr>() {
            Ok(ip) => cs.iter().any(|c| c.contains(ip)),
            Err(_) => false,
        },
        (_, Compiled::Bools(bs)) => match parse_bool(value) {
            Some(b) => bs.contains(&b),
            None => false,
        },
        _ => false,
    };
    if base.is_negated() { !positive } else { positive }
}

fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// An IPv4 or IPv6 network. IAM: "If you specify an IP address without the
/// associated routing prefix, IAM uses the default prefix value of /32" (and
/// /128 for IPv6). Host bits in the policy value are ignored (masked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `a.b.c.d`, `a.b.c.d/n`, `x::y` or `x::y/n`.
    pub fn parse(s: &str) -> Option<Cidr> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => {
                if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?))
            }
            None => (s.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return None;
        }
        Some(Cidr { addr, prefix })
    }

    /// True if `ip` is in this network (an IPv4 address is never in an IPv6
    /// network and vice versa).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = if self.prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(self.prefix)) };
                (u32::from(net) & mask) == (u32::from(ip) & mask)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = if self.prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(self.prefix)) };
                (u128::from(net) & mask) == (u128::from(ip) & mask)
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::context::{CallerPrincipal, RequestContext};

    fn clause(op: &str, key: &str, values: &[&str]) -> ConditionClause {
        ConditionClause {
            operator: ConditionOperator::parse(op),
            key: key.to_string(),
            values: values.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn ctx() -> RequestContext {
        RequestContext::new(CallerPrincipal::Anonymous, "arn:aws:execute-api:us-east-1:1:a/s/GET/x")
            .source_vpce("vpce-0a1")
            .vpc_source_ip("10.0.1.5")
            .with_key("aws:SecureTransport", "true")
            .with_key("aws:PrincipalArn", "arn:aws:iam::444455556666:role/app")
            .with_values("aws:CalledVia", vec!["athena.amazonaws.com".into(), "glue.amazonaws.com".into()])
            .with_values("aws:EmptySet", vec![])
        // aws:SourceVpc, aws:SourceAccount, aws:PrincipalAccount: absent.
    }

    type Expect = Result<bool, &'static str>;
    const U_OP: Expect = Err("UnsupportedOperator");
    const U_KEY: Expect = Err("UnknownConditionKey");
    const U_MULTI: Expect = Err("MultivaluedKeyWithoutSetOperator");
    const U_VAL: Expect = Err("InvalidValue");

    fn kind_of(r: &Result<bool, UndeterminedReason>) -> Expect {
        match r {
            Ok(b) => Ok(*b),
            Err(UndeterminedReason::UnsupportedOperator { .. }) => U_OP,
            Err(UndeterminedReason::UnknownConditionKey { .. }) => U_KEY,
            Err(UndeterminedReason::MultivaluedKeyWithoutSetOperator { .. }) => U_MULTI,
            Err(UndeterminedReason::InvalidValue { .. }) => U_VAL,
            Err(UndeterminedReason::PolicyVariable { .. }) => Err("PolicyVariable"),
            Err(_) => Err("other"),
        }
    }

    #[test]
    fn every_operator_present_and_missing() {
        // (operator, key, values, expected). aws:SourceVpce = vpce-0a1 (present),
        // aws:SourceVpc absent.
        let table: &[(&str, &str, &[&str], Expect)] = &[
            // String operators, present key.
            ("StringEquals", "aws:SourceVpce", &["vpce-0a1"], Ok(true)),
            ("StringEquals", "aws:SourceVpce", &["vpce-zzz", "vpce-0a1"], Ok(true)), // values OR'ed
            ("StringEquals", "aws:SourceVpce", &["VPCE-0A1"], Ok(false)),
            ("StringNotEquals", "aws:SourceVpce", &["vpce-0a1"], Ok(false)),
            ("StringNotEquals", "aws:SourceVpce", &["vpce-zzz"], Ok(true)),
            ("StringNotEquals", "aws:SourceVpce", &["vpce-zzz", "vpce-0a1"], Ok(false)),
            ("StringEqualsIgnoreCase", "aws:SourceVpce", &["VPCE-0A1"], Ok(true)),
            ("StringNotEqualsIgnoreCase", "aws:SourceVpce", &["VPCE-0A1"], Ok(false)),
            ("StringNotEqualsIgnoreCase", "aws:SourceVpce", &["VPCE-1"], Ok(true)),
            ("StringLike", "aws:SourceVpce", &["vpce-*"], Ok(true)),
            ("StringLike", "aws:SourceVpce", &["vpce-0?1"], Ok(true)),
            ("StringLike", "aws:SourceVpce", &["VPCE-*"], Ok(false)),
            ("StringNotLike", "aws:SourceVpce", &["vpce-*"], Ok(false)),
            ("StringNotLike", "aws:SourceVpce", &["vpc-*"], Ok(true)),
            // String operators, missing key: positive false, negated true.
            ("StringEquals", "aws:SourceVpc", &["vpc-1"], Ok(false)),
            ("StringNotEquals", "aws:SourceVpc", &["vpc-1"], Ok(true)),
            ("StringEqualsIgnoreCase", "aws:SourceVpc", &["vpc-1"], Ok(false)),
            ("StringNotEqualsIgnoreCase", "aws:SourceVpc", &["vpc-1"], Ok(true)),
            ("StringLike", "aws:SourceVpc", &["*"], Ok(false)),
            ("StringNotLike", "aws:SourceVpc", &["*"], Ok(true)),
            // IfExists.
            ("StringEqualsIfExists", "aws:SourceVpc", &["vpc-1"], Ok(true)),
            ("StringEqualsIfExists", "aws:SourceVpce", &["vpce-0a1"], Ok(true)),
            ("StringEqualsIfExists", "aws:SourceVpce", &["vpce-x"], Ok(false)),
            ("StringNotEqualsIfExists", "aws:SourceVpc", &["vpc-1"], Ok(true)),
            ("StringNotEqualsIfExists", "aws:SourceVpce", &["vpce-0a1"], Ok(false)),
            ("StringLikeIfExists", "aws:SourceVpc", &["x"], Ok(true)),
            ("ArnLikeIfExists", "aws:SourceArn-not-known", &["arn:aws:iam::*:*"], U_KEY),
            ("IpAddressIfExists", "aws:SourceVpc", &["10.0.0.0/8"], Ok(true)),
            ("BoolIfExists", "aws:SourceVpc", &["true"], Ok(true)),
            // ARN operators.
            ("ArnEquals", "aws:PrincipalArn", &["arn:aws:iam::444455556666:role/app"], Ok(true)),
            ("ArnLike", "aws:PrincipalArn", &["arn:aws:iam::*:role/*"], Ok(true)),
            ("ArnLike", "aws:PrincipalArn", &["arn:aws:iam::*:user/*"], Ok(false)),
            ("ArnLike", "aws:PrincipalArn", &["arn:aws:iam::444455556666:role/a?p"], Ok(true)),
            ("ArnNotEquals", "aws:PrincipalArn", &["arn:aws:iam::444455556666:role/app"], Ok(false)),
            ("ArnNotLike", "aws:PrincipalArn", &["arn:aws:iam::*:user/*"], Ok(true)),
            ("ArnLike", "aws:SourceVpc", &["arn:aws:iam::*:*"], Ok(false)),
            ("ArnNotLike", "aws:SourceVpc", &["arn:aws:iam::*:*"], Ok(true)),
            ("ArnLike", "aws:PrincipalArn", &["not-an-arn"], U_VAL),
            // ARN operators compare component-wise: `*` does not cross `:`.
            ("ArnLike", "aws:PrincipalArn", &["arn:aws:iam::*"], U_VAL),
            ("StringLike", "aws:PrincipalArn", &["arn:aws:iam::*"], Ok(true)),
            // IP operators.
            ("IpAddress", "aws:VpcSourceIp", &["10.0.0.0/16"], Ok(true)),
            ("IpAddress", "aws:VpcSourceIp", &["10.0.1.5"], Ok(true)), // bare IP = /32
            ("IpAddress", "aws:VpcSourceIp", &["10.0.1.6"], Ok(false)),
            ("IpAddress", "aws:VpcSourceIp", &["192.168.0.0/16", "10.0.1.0/24"], Ok(true)),
            ("IpAddress", "aws:VpcSourceIp", &["2001:db8::/32"], Ok(false)),
            ("IpAddress", "aws:VpcSourceIp", &["0.0.0.0/0"], Ok(true)),
            ("IpAddress", "aws:VpcSourceIp", &["10.0.1.9/16"], Ok(true)), // host bits masked
            ("NotIpAddress", "aws:VpcSourceIp", &["10.0.0.0/16"], Ok(false)),
            ("NotIpAddress", "aws:VpcSourceIp", &["192.168.0.0/16"], Ok(true)),
            ("IpAddress", "aws:SourceVpc", &["10.0.0.0/8"], Ok(false)),
            ("NotIpAddress", "aws:SourceVpc", &["10.0.0.0/8"], Ok(true)),
            ("IpAddress", "aws:VpcSourceIp", &["10.0.0.0/33"], U_VAL),
            ("IpAddress", "aws:VpcSourceIp", &["ten"], U_VAL),
            ("IpAddress", "aws:SourceVpce", &["10.0.0.0/8"], Ok(false)), // value not an IP
            // Bool.
            ("Bool", "aws:SecureTransport", &["true"], Ok(true)),
            ("Bool", "aws:SecureTransport", &["TRUE"], Ok(true)),
            ("Bool", "aws:SecureTransport", &["false"], Ok(false)),
            ("Bool", "aws:SourceVpc", &["false"], Ok(false)),
            ("Bool", "aws:SecureTransport", &["yes"], U_VAL),
            // Null.
            ("Null", "aws:SourceVpc", &["true"], Ok(true)),
            ("Null", "aws:SourceVpc", &["false"], Ok(false)),
            ("Null", "aws:SourceVpce", &["true"], Ok(false)),
            ("Null", "aws:SourceVpce", &["false"], Ok(true)),
            ("Null", "aws:SourceVpce", &["maybe"], U_VAL),
            ("NullIfExists", "aws:SourceVpce", &["true"], U_OP),
            // Set qualifiers on a multivalued key [athena, glue].
            ("ForAnyValue:StringEquals", "aws:CalledVia", &["glue.amazonaws.com"], Ok(true)),
            ("ForAnyValue:StringEquals", "aws:CalledVia", &["x"], Ok(false)),
            ("ForAllValues:StringEquals", "aws:CalledVia", &["glue.amazonaws.com"], Ok(false)),
            ("ForAllValues:StringEquals", "aws:CalledVia", &["glue.amazonaws.com", "athena.amazonaws.com"], Ok(true)),
            ("ForAllValues:StringLike", "aws:CalledVia", &["*.amazonaws.com"], Ok(true)),
            ("ForAnyValue:StringNotEquals", "aws:CalledVia", &["glue.amazonaws.com"], Ok(true)),
            ("ForAllValues:StringNotEquals", "aws:CalledVia", &["glue.amazonaws.com"], Ok(false)),
            ("ForAllValues:StringNotLike", "aws:CalledVia", &["x*"], Ok(true)),
            // Set qualifiers on an empty set and on a missing key.
            ("ForAllValues:StringEquals", "aws:EmptySet", &["x"], Ok(true)),
            ("ForAnyValue:StringEquals", "aws:EmptySet", &["x"], Ok(false)),
            ("ForAllValues:StringEquals", "aws:SourceVpc", &["x"], Ok(true)),
            ("ForAnyValue:StringEquals", "aws:SourceVpc", &["x"], Ok(false)),
            ("ForAnyValue:StringNotEquals", "aws:SourceVpc", &["x"], Ok(false)),
            ("ForAnyValue:StringEqualsIfExists", "aws:SourceVpc", &["x"], Ok(true)),
            ("ForAllValues:StringEqualsIfExists", "aws:SourceVpc", &["x"], Ok(true)),
            // Set qualifiers on a single-valued key behave like a one-element set.
            ("ForAnyValue:StringEquals", "aws:SourceVpce", &["vpce-0a1"], Ok(true)),
            ("ForAllValues:StringEquals", "aws:SourceVpce", &["vpce-x"], Ok(false)),
            // A multivalued key without a set qualifier is undocumented: Undetermined.
            ("StringEquals", "aws:CalledVia", &["glue.amazonaws.com"], U_MULTI),
            ("StringNotEquals", "aws:CalledVia", &["x"], U_MULTI),
            // Unknown keys and unsupported operators are never guessed.
            ("StringEquals", "aws:PrincipalOrgID", &["o-1"], U_KEY),
            ("StringNotEquals", "aws:PrincipalOrgID", &["o-1"], U_KEY),
            ("Null", "aws:PrincipalOrgID", &["true"], U_KEY),
            ("NumericLessThan", "aws:SourceVpce", &["1"], U_OP),
            ("DateGreaterThan", "aws:CurrentTime", &["2020-01-01T00:00:00Z"], U_OP),
            ("BinaryEquals", "aws:SourceVpce", &["QmluYXJ5"], U_OP),
            ("StringEqualz", "aws:SourceVpce", &["x"], U_OP),
            ("ForSomeValues:StringEquals", "aws:SourceVpce", &["x"], U_OP),
            // Case-insensitive key and operator names.
            ("stringequals", "AWS:SOURCEVPCE", &["vpce-0a1"], Ok(true)),
            ("forallvalues:stringequalsifexists", "aws:sourcevpc", &["x"], Ok(true)),
        ];
        let c = ctx();
        for (op, key, values, want) in table {
            let got = evaluate_clause(&clause(op, key, values), &c, true);
            assert_eq!(kind_of(&got), *want, "{op} {key} {values:?} -> {got:?}");
        }
    }

    #[test]
    fn policy_variables_are_undetermined_only_in_2012_version() {
        let cl = clause("StringEquals", "aws:SourceVpce", &["${aws:SourceVpc}"]);
        assert!(matches!(evaluate_clause(&cl, &ctx(), true), Err(UndeterminedReason::PolicyVariable { .. })));
        assert_eq!(evaluate_clause(&cl, &ctx(), false), Ok(false));
    }

    #[test]
    fn operator_parsing() {
        let op = ConditionOperator::parse("ForAnyValue:StringLikeIfExists");
        assert_eq!(op.set, Some(SetQualifier::ForAnyValue));
        assert_eq!(op.base, BaseOperator::StringLike);
        assert!(op.if_exists);
        assert_eq!(ConditionOperator::parse("IfExists").base, BaseOperator::Unsupported("IfExists".into()));
        assert_eq!(ConditionOperator::parse("").base, BaseOperator::Unsupported(String::new()));
        assert_eq!(
            ConditionOperator::parse("ForAllValues:Null").base,
            BaseOperator::Unsupported("ForAllValues:Null".into())
        );
    }

    #[test]
    fn cidr_parsing() {
        let table: &[(&str, &str, Option<bool>)] = &[
            ("10.0.0.0/8", "10.255.1.1", Some(true)),
            ("10.0.0.0/8", "11.0.0.1", Some(false)),
            ("0.0.0.0/0", "1.2.3.4", Some(true)),
            ("2001:db8::/32", "2001:db8:1::5", Some(true)),
            ("2001:DB8:1234:5678::/64", "2001:db8:1234:5678::1", Some(true)),
            ("2001:db8::/32", "10.0.0.1", Some(false)),
            ("::/0", "::1", Some(true)),
            ("10.0.0.1", "10.0.0.1", Some(true)),
            ("2001:db8::1", "2001:0db8:0:0::1", Some(true)),
            ("10.0.0.0/", "10.0.0.1", None),
            ("10.0.0.0/-1", "10.0.0.1", None),
            ("10.0.0.0/129", "10.0.0.1", None),
            ("2001:db8::/129", "2001:db8::1", None),
            ("10.0.0.0/1000", "10.0.0.1", None),
            ("", "10.0.0.1", None),
        ];
        for (cidr, ip, want) in table {
            let got = Cidr::parse(cidr).map(|c| c.contains(ip.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))));
            assert_eq!(got, *want, "{cidr} contains {ip}");
        }
    }
}

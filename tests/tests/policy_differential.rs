//! Differential test: our evaluator against an independent one,
//! `@cloud-copilot/iam-simulate` (npm, run by `differential/driver.mjs`).
//!
//! A seeded PRNG generates (policy, request) cases — Allow/Deny mixes, every
//! principal shape, NotAction/NotResource/NotPrincipal, wildcard resources (and
//! the `execute-api:/` shorthand), conditions with every supported operator,
//! `…IfExists`, `ForAnyValue:`/`ForAllValues:`, present and missing keys. The Node
//! driver evaluates the whole batch in one child process.
//!
//! Every disagreement must be explained by a divergence listed in
//! `docs/policy-divergences.md`. Explanations are *checked*, not assumed: for each documented
//! divergence the test knows the oracle's rule and can rewrite a case so our
//! evaluator applies that rule (see `oracle_semantics`). A disagreement counts as
//! explained only if our decision under the oracle's rules equals the oracle's;
//! our `Undetermined` outcomes (which the oracle cannot express) must still agree
//! with the oracle once the oracle's rules are applied, whenever that makes them
//! definite. Anything else fails the test.
//!
//! Requires Node and `npm ci --prefix tests/differential`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use pvtapi_engine::policy::{
    ApiRef, AwsPrincipal, BaseOperator, CallerPrincipal, Decision, PolicyDocument, PrincipalElement, PrincipalEntry,
    PrincipalSet, RequestContext, ResourceElement, UndeterminedReason, evaluate, execute_api_arn, expand_api_shorthand,
};
use serde_json::{Value, json};

const CASES: usize = 12_000;
const SEED: u64 = 0x5EED_2026;

const REGION: &str = "us-east-1";
const ACCOUNT: &str = "111122223333";
const API: &str = "a1b2c3d4e5";

const ALICE: &str = "arn:aws:iam::111122223333:user/alice";
const BOB: &str = "arn:aws:iam::444455556666:user/bob";
const ROLE: &str = "arn:aws:iam::444455556666:role/app";
const SESSION: &str = "arn:aws:sts::444455556666:assumed-role/app/sess1";

/// A context value as the oracle takes it.
#[derive(Clone, Debug)]
enum Ctx {
    One(String),
    Many(Vec<String>),
}

struct Case {
    id: usize,
    /// The policy as a user writes it (may use the `execute-api:/` shorthand).
    policy: Value,
    principal: &'static str,
    resource: String,
    /// Keys present in the request. Keys in `KNOWN_KEYS` but not here are
    /// absent; any other key is unknown to our evaluator.
    context: BTreeMap<&'static str, Ctx>,
}

const KNOWN_KEYS: &[&str] = &[
    "aws:SourceVpce",
    "aws:SourceVpc",
    "aws:VpcSourceIp",
    "aws:SourceAccount",
    "aws:PrincipalAccount",
    "aws:PrincipalArn",
    "aws:SecureTransport",
    "aws:CalledVia",
];

// ------------------------------------------------------------ generation --

struct Gen {
    rng: fastrand::Rng,
}

impl Gen {
    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.rng.usize(0..items.len())].clone()
    }
    fn chance(&mut self, p: f64) -> bool {
        self.rng.f64() < p
    }
    /// One item or a list of 1..=max distinct-ish items.
    fn one_or_list(&mut self, pool: &[Value], max: usize) -> Value {
        if self.chance(0.5) {
            self.pick(pool)
        } else {
            let n = self.rng.usize(1..=max);
            Value::Array((0..n).map(|_| self.pick(pool)).collect())
        }
    }

    fn case(&mut self, id: usize) -> Case {
        let principal = if self.chance(0.4) { "anonymous" } else { self.pick(&[ALICE, BOB, ROLE, SESSION]) };
        let stage = self.pick(&["prod", "dev"]);
        let method = self.pick(&["GET", "POST", "DELETE"]);
        let path = self.pick(&["/pets", "/pets/1", "/orders/7/items", "/admin"]);
        let resource = execute_api_arn(&ApiRef::new(REGION, ACCOUNT, API), stage, method, path);

        let mut context = BTreeMap::new();
        let mut maybe = |g: &mut Gen, key: &'static str, pool: &[&str], p_absent: f64| {
            if !g.chance(p_absent) {
                context.insert(key, Ctx::One(g.pick(pool).to_string()));
            }
        };
        maybe(self, "aws:SourceVpce", &["vpce-0a1", "vpce-0a1", "vpce-0b2"], 0.25);
        maybe(self, "aws:SourceVpc", &["vpc-111", "vpc-222"], 0.3);
        maybe(self, "aws:VpcSourceIp", &["10.0.1.5", "10.0.2.9", "192.168.1.20", "2001:db8::5"], 0.25);
        maybe(self, "aws:SourceAccount", &["111122223333", "444455556666"], 0.5);
        maybe(self, "aws:SecureTransport", &["true", "false"], 0.3);
        if !self.chance(0.4) {
            let sets: &[&[&str]] = &[
                &["athena.amazonaws.com"],
                &["athena.amazonaws.com", "glue.amazonaws.com"],
                &["glue.amazonaws.com", "lambda.amazonaws.com"],
            ];
            let set = self.pick(sets);
            context.insert("aws:CalledVia", Ctx::Many(set.iter().map(|s| s.to_string()).collect()));
        }
        match principal {
            "anonymous" => {}
            p => {
                let acct = if p == ALICE { "111122223333" } else { "444455556666" };
                context.insert("aws:PrincipalAccount", Ctx::One(acct.to_string()));
                let parn = if p == SESSION { ROLE } else { p };
                context.insert("aws:PrincipalArn", Ctx::One(parn.to_string()));
            }
        }

        let n = self.rng.usize(1..=4);
        let statements: Vec<Value> = (0..n).map(|i| self.statement(i)).collect();
        let statement = if n == 1 && self.chance(0.3) { statements[0].clone() } else { Value::Array(statements) };
        let mut policy = json!({ "Version": "2012-10-17", "Statement": statement });
        if self.chance(0.1) {
            policy["Id"] = json!("generated");
        }
        Case { id, policy, principal, resource, context }
    }

    fn statement(&mut self, i: usize) -> Value {
        let mut st = serde_json::Map::new();
        if self.chance(0.5) {
            st.insert("Sid".into(), json!(format!("S{i}")));
        }
        st.insert("Effect".into(), json!(if self.chance(0.4) { "Deny" } else { "Allow" }));

        let principals = [
            json!("*"),
            json!({"AWS": "*"}),
            json!({"AWS": "111122223333"}),
            json!({"AWS": "444455556666"}),
            json!({"AWS": "arn:aws:iam::444455556666:root"}),
            json!({"AWS": "arn:aws:iam::999999999999:root"}),
            json!({"AWS": ALICE}),
            json!({"AWS": BOB}),
            json!({"AWS": ROLE}),
            json!({"AWS": [BOB, ALICE]}),
            json!({"Service": "lambda.amazonaws.com"}),
            json!({"AWS": ROLE, "Service": "lambda.amazonaws.com"}),
        ];
        if self.chance(0.15) {
            let pool = [
                json!(ALICE),
                json!(BOB),
                json!(ROLE),
                json!(SESSION),
                json!("444455556666"),
                json!("arn:aws:iam::444455556666:root"),
                json!("arn:aws:iam::111122223333:root"),
            ];
            st.insert("NotPrincipal".into(), json!({ "AWS": self.one_or_list(&pool, 3) }));
        } else {
            st.insert("Principal".into(), self.pick(&principals));
        }

        let actions = [
            json!("execute-api:Invoke"),
            json!("execute-api:Invoke"),
            json!("execute-api:*"),
            json!("*"),
            json!("execute-api:invoke"),
            json!("execute-api:Inv*"),
            json!("execute-api:In?oke"),
            json!("execute-api:ManageConnections"),
            json!("execute-api:*Connections"),
            json!("s3:GetObject"),
        ];
        let a = self.one_or_list(&actions, 2);
        st.insert(if self.chance(0.15) { "NotAction" } else { "Action" }.into(), a);

        let resources = [
            json!("*"),
            json!("execute-api:/*"),
            json!("execute-api:/*"),
            json!("execute-api:/prod/*"),
            json!("execute-api:/*/GET/*"),
            json!("execute-api:/*/POST/*"),
            json!("execute-api:/prod/GET/pets"),
            json!("execute-api:/prod/GET/pets/*"),
            json!("execute-api:/*/*/orders/*"),
            json!("execute-api:/dev/P?ST/*"),
            json!("execute-api:/prod/get/*"),
            json!("arn:aws:execute-api:us-east-1:111122223333:a1b2c3d4e5/*"),
            json!("arn:aws:execute-api:us-east-1:*:a1b2c3d4e5/*/DELETE/*"),
            json!("arn:aws:execute-api:us-east-1:111122223333:a1b2c3d4e5/*/*/pets*"),
            json!("arn:aws:execute-api:*:*:*"),
            json!("arn:aws:execute-api:*"),
            json!("arn:aws:execute-api:eu-west-1:111122223333:a1b2c3d4e5/*"),
            json!("arn:aws:execute-api:us-east-1:111122223333:zz9yy8xx7w/*"),
            // Wildcards in the API-id part (documented divergence D3).
            json!("arn:aws:execute-api:us-east-1:111122223333:*/prod/*"),
            json!("arn:aws:execute-api:us-east-1:111122223333:a1b2c3d4e?/*"),
            json!("arn:aws:execute-api:*:*:*/*/GET/*"),
        ];
        let r = self.one_or_list(&resources, 3);
        st.insert(if self.chance(0.15) { "NotResource" } else { "Resource" }.into(), r);

        if self.chance(0.6) {
            let mut cond = serde_json::Map::new();
            for _ in 0..self.rng.usize(1..=3) {
                let (op, key, values) = self.clause();
                let entry = cond.entry(op).or_insert_with(|| json!({}));
                if let Value::Object(keys) = entry {
                    keys.insert(key, values);
                }
            }
            st.insert("Condition".into(), Value::Object(cond));
        }
        Value::Object(st)
    }

    /// One condition clause: (operator, key, values).
    fn clause(&mut self) -> (String, String, Value) {
        const STRING_OPS: &[&str] = &[
            "StringEquals",
            "StringNotEquals",
            "StringEqualsIgnoreCase",
            "StringNotEqualsIgnoreCase",
            "StringLike",
            "StringNotLike",
        ];
        const ARN_OPS: &[&str] = &["ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike"];
        let roll = self.rng.u32(0..100);
        let (mut op, key, pool): (String, &str, Vec<Value>) = match roll {
            0..=21 => (
                self.pick(STRING_OPS).into(),
                "aws:SourceVpce",
                vec![
                    json!("vpce-0a1"),
                    json!("vpce-0b2"),
                    json!("VPCE-0A1"),
                    json!("vpce-*"),
                    json!("vpce-0?1"),
                    json!("*"),
                    json!("vpce-9zz"),
                ],
            ),
            22..=31 => (
                self.pick(STRING_OPS).into(),
                "aws:SourceVpc",
                vec![json!("vpc-111"), json!("vpc-222"), json!("VPC-111"), json!("vpc-*"), json!("vpc-?22")],
            ),
            32..=37 => (
                self.pick(STRING_OPS).into(),
                "aws:SourceAccount",
                vec![json!("111122223333"), json!(111122223333u64), json!("444455556666"), json!("1111*")],
            ),
            38..=43 => (
                self.pick(STRING_OPS).into(),
                "aws:PrincipalAccount",
                vec![json!("444455556666"), json!(444455556666u64), json!("111122223333"), json!("4444*")],
            ),
            44..=53 => (
                if self.chance(0.8) { self.pick(ARN_OPS) } else { self.pick(STRING_OPS) }.into(),
                "aws:PrincipalArn",
                vec![
                    json!(BOB),
                    json!("arn:aws:iam::444455556666:*"),
                    json!("arn:aws:iam::*:role/app"),
                    json!("arn:aws:iam::444455556666:user/b?b"),
                    json!(ALICE),
                    json!("arn:aws:iam::*:*"),
                ],
            ),
            54..=65 => (
                self.pick(&["IpAddress", "NotIpAddress"]).into(),
                "aws:VpcSourceIp",
                vec![
                    json!("10.0.0.0/16"),
                    json!("10.0.1.5"),
                    json!("10.0.1.5/32"),
                    json!("192.168.0.0/16"),
                    json!("2001:db8::/32"),
                    json!("0.0.0.0/0"),
                    json!("10.0.2.0/24"),
                    json!("::/0"),
                ],
            ),
            66..=67 => (
                self.pick(STRING_OPS).into(),
                "aws:VpcSourceIp",
                vec![json!("10.0.1.5"), json!("10.0.*"), json!("2001:db8::5")],
            ),
            68..=73 => (
                "Bool".into(),
                "aws:SecureTransport",
                vec![json!("true"), json!("false"), json!(true), json!(false), json!("TRUE")],
            ),
            74..=81 => {
                ("Null".into(), self.pick(KNOWN_KEYS), vec![json!("true"), json!("false"), json!(true), json!(false)])
            }
            82..=94 => {
                // Multivalued key: normally with a set qualifier.
                let q = if self.chance(0.9) {
                    format!("{}:", self.pick(&["ForAnyValue", "ForAllValues"]))
                } else {
                    String::new()
                };
                (
                    format!("{q}{}", self.pick(STRING_OPS)),
                    "aws:CalledVia",
                    vec![
                        json!("athena.amazonaws.com"),
                        json!("glue.amazonaws.com"),
                        json!("*.amazonaws.com"),
                        json!("ATHENA.amazonaws.com"),
                    ],
                )
            }
            95..=96 => (
                format!("{}:{}", self.pick(&["ForAnyValue", "ForAllValues"]), self.pick(STRING_OPS)),
                self.pick(&["aws:SourceVpce", "aws:SourceVpc"]),
                vec![json!("vpce-0a1"), json!("vpc-111"), json!("vpc*")],
            ),
            // Things we deliberately do not evaluate: Undetermined.
            97 => ("NumericLessThan".into(), "aws:MultiFactorAuthAge", vec![json!("3600")]),
            _ => (self.pick(STRING_OPS).into(), "aws:PrincipalOrgID", vec![json!("o-abc123")]),
        };
        if op != "Null" && self.chance(0.25) {
            op.push_str("IfExists");
        }
        // Condition keys are case-insensitive.
        let key = match self.rng.u8(0..10) {
            0 => key.to_ascii_lowercase(),
            1 => key.to_ascii_uppercase(),
            _ => key.to_string(),
        };
        let values = self.one_or_list(&pool, 2);
        (op, key, values)
    }
}

// ------------------------------------------------------------- our side --

fn request(case: &Case) -> RequestContext {
    let mut r = RequestContext::new(CallerPrincipal::from_text(case.principal), case.resource.clone());
    for k in KNOWN_KEYS {
        r = r.without_key(k);
    }
    for (k, v) in &case.context {
        r = match v {
            Ctx::One(s) => r.with_key(k, s.clone()),
            Ctx::Many(vs) => r.with_values(k, vs.clone()),
        };
    }
    r
}

fn api() -> ApiRef {
    ApiRef::new(REGION, ACCOUNT, API)
}

fn our_policy(case: &Case) -> PolicyDocument {
    match PolicyDocument::from_value(&case.policy) {
        Ok(p) => expand_api_shorthand(&p, &api()),
        Err(e) => panic!("generated policy {} does not parse: {e}", case.id),
    }
}

fn label(d: &Decision) -> &'static str {
    match d {
        Decision::Allow { .. } => "Allow",
        Decision::ImplicitDeny => "ImplicitDeny",
        Decision::ExplicitDeny { .. } => "ExplicitDeny",
        Decision::Undetermined { .. } => "Undetermined",
    }
}

fn undetermined_kind(r: &UndeterminedReason) -> &'static str {
    match r {
        UndeterminedReason::UnsupportedOperator { .. } => "UnsupportedOperator",
        UndeterminedReason::UnknownConditionKey { .. } => "UnknownConditionKey",
        UndeterminedReason::MultivaluedKeyWithoutSetOperator { .. } => "MultivaluedKeyWithoutSetOperator",
        UndeterminedReason::NotPrincipalIncompleteChain { .. } => "NotPrincipalIncompleteChain",
        UndeterminedReason::PolicyVariable { .. } => "PolicyVariable",
        UndeterminedReason::InvalidValue { .. } => "InvalidValue",
        UndeterminedReason::ResourcePolicyVariable { .. } => "ResourcePolicyVariable",
        UndeterminedReason::UnexpandedShorthand { .. } => "UnexpandedShorthand",
        UndeterminedReason::MissingPrincipal => "MissingPrincipal",
    }
}

/// Undetermined reasons the generator provokes on purpose (docs/policy-divergences.md, U1–U4).
/// Definite-outcome divergences from the oracle (docs/policy-divergences.md, D1–D5).
const DIVERGENCES: &[&str] = &["D1", "D2", "D3", "D4", "D5"];

const EXPECTED_UNDETERMINED: &[&str] =
    &["UnsupportedOperator", "UnknownConditionKey", "MultivaluedKeyWithoutSetOperator", "NotPrincipalIncompleteChain"];

fn expected_undetermined(d: &Decision) -> bool {
    matches!(d, Decision::Undetermined { reason, .. } if EXPECTED_UNDETERMINED.contains(&undetermined_kind(reason)))
}

// --------------------------------------------- the oracle's documented rules --

/// D1: the oracle exempts a caller from `NotPrincipal` if *any* link of its chain
/// is listed (its ARN, its role, or its account); IAM's docs say every link must
/// be listed. Rewrite: a NotPrincipal listing any link lists the whole chain.
fn d1_not_principal(doc: &mut PolicyDocument, caller: &CallerPrincipal) -> bool {
    let CallerPrincipal::Iam(arn) = caller else {
        return false;
    };
    let account = arn.split(':').nth(4).unwrap_or_default().to_string();
    let mut chain = vec![
        PrincipalEntry::Aws(AwsPrincipal::Arn(arn.clone())),
        PrincipalEntry::Aws(AwsPrincipal::Account(account.clone())),
    ];
    if arn == SESSION {
        chain.push(PrincipalEntry::Aws(AwsPrincipal::Arn(ROLE.to_string())));
    }
    let mut changed = false;
    for st in &mut doc.statements {
        if let Some(PrincipalElement::NotPrincipal(PrincipalSet::Listed(entries))) = &mut st.principal {
            let lists_link = entries.iter().any(|e| match e {
                PrincipalEntry::Aws(AwsPrincipal::Arn(a)) => a == arn || (arn == SESSION && a == ROLE),
                PrincipalEntry::Aws(AwsPrincipal::Account(a)) => *a == account,
                _ => false,
            });
            if lists_link {
                let before = entries.len();
                for link in &chain {
                    if !entries.contains(link) {
                        entries.push(link.clone());
                    }
                }
                changed |= entries.len() != before;
            }
        }
    }
    changed
}

/// D2: the oracle evaluates `ForAnyValue:…IfExists` on a missing key as false
/// (it ignores IfExists under a set qualifier); IAM's IfExists rule makes it true.
/// Rewrite: drop IfExists from ForAnyValue operators.
fn d2_for_any_value_if_exists(doc: &mut PolicyDocument) -> bool {
    let mut changed = false;
    for st in &mut doc.statements {
        for c in &mut st.conditions {
            if c.operator.set == Some(pvtapi_engine::policy::SetQualifier::ForAnyValue) && c.operator.if_exists {
                c.operator.if_exists = false;
                changed = true;
            }
        }
    }
    changed
}

/// D3: the oracle requires the first segment of an ARN's resource part (the
/// "product", here the API id) to match literally, so `…:*/prod/*` or
/// `…:a1b2c3d4e?/*` never match; IAM wildcards apply anywhere in the resource.
/// Rewrite: such patterns become a pattern that matches nothing.
fn d3_api_id_wildcard(doc: &mut PolicyDocument) -> bool {
    let never = "arn:aws:execute-api:none:000000000000:none/none".to_string();
    let mut changed = false;
    let fix = |list: &mut Vec<String>, changed: &mut bool| {
        for p in list.iter_mut() {
            let resource_part = p.splitn(6, ':').nth(5).unwrap_or_default();
            if let Some((product, _)) = resource_part.split_once('/')
                && (product.contains('*') || product.contains('?'))
            {
                *p = never.clone();
                *changed = true;
            }
        }
    };
    for st in &mut doc.statements {
        match &mut st.resource {
            ResourceElement::Resource(l) | ResourceElement::NotResource(l) => fix(l, &mut changed),
        }
    }
    changed
}

/// D4: the oracle computes an IPv4 mask as `-1 << (32 - prefix)` in JavaScript,
/// where a shift by 32 is a shift by 0, so `0.0.0.0/0` behaves as `0.0.0.0/32`.
/// Rewrite: `x/0` IPv4 values become `x/32`.
fn d4_ipv4_slash_zero(doc: &mut PolicyDocument) -> bool {
    let mut changed = false;
    for st in &mut doc.statements {
        for c in &mut st.conditions {
            let ip_op = matches!(c.operator.base, BaseOperator::IpAddress | BaseOperator::NotIpAddress);
            for v in &mut c.values {
                if ip_op && v.contains('.') && v.ends_with("/0") {
                    *v = format!("{}/32", v.trim_end_matches("/0"));
                    changed = true;
                }
            }
        }
    }
    changed
}

/// D5: for a bare IPv4 address (no `/prefix`) the oracle computes
/// `isValidIpV4(request) && (policy === request) == expectInCidr`; JavaScript
/// precedence makes that `false` whenever the request address is IPv6, so
/// `NotIpAddress: "10.0.1.5"` is *false* for `2001:db8::5` (IAM: a bare address is
/// a /32, which an IPv6 address is not in, so NotIpAddress is true). Rewrite, for
/// an IPv6 request value: bare IPv4 values in NotIpAddress become `::/0`, which
/// makes them fail the same way.
fn d5_bare_ipv4_vs_ipv6(doc: &mut PolicyDocument, case: &Case) -> bool {
    let request_is_v6 = matches!(case.context.get("aws:VpcSourceIp"), Some(Ctx::One(ip)) if ip.contains(':'));
    if !request_is_v6 {
        return false;
    }
    let mut changed = false;
    for st in &mut doc.statements {
        for c in &mut st.conditions {
            if c.operator.base != BaseOperator::NotIpAddress || !c.key.eq_ignore_ascii_case("aws:VpcSourceIp") {
                continue;
            }
            for v in &mut c.values {
                if !v.contains('/') && v.parse::<std::net::Ipv4Addr>().is_ok() {
                    *v = "::/0".to_string();
                    changed = true;
                }
            }
        }
    }
    changed
}

/// Our evaluator under the oracle's rules for the selected divergences.
fn under_oracle_rules(case: &Case, which: &[&str]) -> Decision {
    let mut doc = our_policy(case);
    let caller = CallerPrincipal::from_text(case.principal);
    for w in which {
        match *w {
            "D1" => {
                d1_not_principal(&mut doc, &caller);
            }
            "D2" => {
                d2_for_any_value_if_exists(&mut doc);
            }
            "D3" => {
                d3_api_id_wildcard(&mut doc);
            }
            "D4" => {
                d4_ipv4_slash_zero(&mut doc);
            }
            "D5" => {
                d5_bare_ipv4_vs_ipv6(&mut doc, case);
            }
            _ => {}
        }
    }
    evaluate(&doc, &request(case))
}

// ---------------------------------------------------------------- driver --

fn differential_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("differential")
}

fn oracle_input(case: &Case) -> Value {
    // The oracle does not know the execute-api shorthand: give it the policy as
    // API Gateway stores it (expanded), built from the same JSON.
    let mut policy = case.policy.clone();
    expand_json_shorthand(&mut policy);
    let context: serde_json::Map<String, Value> = case
        .context
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Ctx::One(s) => json!(s),
                Ctx::Many(vs) => json!(vs),
            };
            (k.to_string(), v)
        })
        .collect();
    json!({
        "id": case.id,
        "policy": policy,
        "principal": case.principal,
        "resource": case.resource,
        "accountId": ACCOUNT,
        "context": context,
    })
}

fn expand_json_shorthand(policy: &mut Value) {
    let prefix = api().arn_prefix();
    let fix = |s: &mut String| {
        if let Some(rest) = s.strip_prefix("execute-api:")
            && rest.starts_with('/')
        {
            *s = format!("{prefix}{rest}");
        }
    };
    let statements: Vec<&mut Value> = match &mut policy["Statement"] {
        Value::Array(items) => items.iter_mut().collect(),
        one @ Value::Object(_) => vec![one],
        _ => vec![],
    };
    for st in statements {
        for element in ["Resource", "NotResource"] {
            match st.get_mut(element) {
                Some(Value::String(s)) => fix(s),
                Some(Value::Array(items)) => {
                    for item in items {
                        if let Value::String(s) = item {
                            fix(s);
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

fn run_oracle(cases: &[Value]) -> Vec<Value> {
    let dir = differential_dir();
    let module = dir.join("node_modules/@cloud-copilot/iam-simulate/package.json");
    assert!(
        module.exists(),
        "the differential oracle is not installed: run `npm ci --prefix tests/differential` \
         (in {}) first",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut child = Command::new("node")
        .arg(dir.join("driver.mjs"))
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `node` (Node 20 is required): {e}"));
    let input = serde_json::to_vec(cases).expect("serialize cases");
    {
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(&input).expect("write cases to the driver");
    }
    let out = child.wait_with_output().expect("driver output");
    assert!(out.status.success(), "driver failed: {}", out.status);
    serde_json::from_slice(&out.stdout).expect("driver output is JSON")
}

#[test]
fn differential_against_iam_simulate() {
    let mut generator = Gen { rng: fastrand::Rng::with_seed(SEED) };
    let cases: Vec<Case> = (0..CASES).map(|i| generator.case(i)).collect();
    let inputs: Vec<Value> = cases.iter().map(oracle_input).collect();
    let results = run_oracle(&inputs);
    assert_eq!(results.len(), cases.len(), "one result per case");

    let mut ours_stats: BTreeMap<&str, usize> = BTreeMap::new();
    let mut oracle_stats: BTreeMap<String, usize> = BTreeMap::new();
    let mut explained: BTreeMap<String, usize> = BTreeMap::new();
    let mut unexplained: Vec<String> = Vec::new();
    let mut disagreements = 0usize;
    let mut dump = Vec::with_capacity(cases.len());

    for (case, res) in cases.iter().zip(&results) {
        assert_eq!(res["id"].as_u64(), Some(case.id as u64), "result order");
        let oracle = res["decision"].as_str().unwrap_or("?").to_string();
        *oracle_stats.entry(oracle.clone()).or_default() += 1;
        let ours = evaluate(&our_policy(case), &request(case));
        *ours_stats.entry(label(&ours)).or_default() += 1;
        dump.push(json!({"case": inputs[case.id], "oracle": oracle, "ours": label(&ours)}));

        if oracle == "Error" {
            unexplained.push(format!("case {}: oracle error {}\n{}", case.id, res["detail"], inputs[case.id]));
            continue;
        }
        if label(&ours) == oracle {
            continue;
        }
        disagreements += 1;
        let all = under_oracle_rules(case, DIVERGENCES);
        let explanation = if let Decision::Undetermined { reason, .. } = &ours {
            let kind = undetermined_kind(reason);
            let consistent = matches!(all, Decision::Undetermined { .. }) || label(&all) == oracle;
            if EXPECTED_UNDETERMINED.contains(&kind) && consistent {
                Some(format!("U: Undetermined ({kind})"))
            } else {
                None
            }
        } else if label(&all) == oracle || expected_undetermined(&all) {
            // Attribute to the single divergence that explains it, if one does;
            // if our decision under the oracle's rules is one of our deliberate
            // Undetermined outcomes, the rest of the gap is that outcome (U).
            let suffix = if label(&all) == oracle { "" } else { " + U" };
            DIVERGENCES
                .iter()
                .find(|d| {
                    let one = under_oracle_rules(case, &[d]);
                    label(&one) == oracle || (!suffix.is_empty() && expected_undetermined(&one))
                })
                .map(|d| format!("{d}{suffix}"))
                .or_else(|| Some(format!("several of D1-D5 combined{suffix}")))
        } else {
            None
        };
        match explanation {
            Some(e) => *explained.entry(e).or_default() += 1,
            None => unexplained.push(format!(
                "case {}: ours {:?}, oracle {oracle}, ours under oracle rules {}\n{}",
                case.id,
                ours,
                label(&all),
                serde_json::to_string_pretty(&inputs[case.id]).unwrap_or_default()
            )),
        }
    }

    // Keep the batch for other evaluators (e.g. the iam-rs check).
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("differential-cases.json");
    let _ = std::fs::write(&out, serde_json::to_vec(&dump).unwrap_or_default());

    println!("differential: {} cases, seed {SEED:#x}", cases.len());
    println!("  ours:   {ours_stats:?}");
    println!("  oracle: {oracle_stats:?}");
    println!("  disagreements: {disagreements}, all explained by docs/policy-divergences.md: {explained:?}");
    println!("  unexplained: {}", unexplained.len());
    println!("  cases written to {}", out.display());
    assert!(cases.len() >= 10_000);
    // The generator must exercise every outcome substantially.
    for k in ["Allow", "ImplicitDeny", "ExplicitDeny"] {
        assert!(ours_stats.get(k).copied().unwrap_or(0) > cases.len() / 20, "too few {k}: {ours_stats:?}");
    }
    assert!(
        unexplained.is_empty(),
        "{} unexplained disagreements; first ones:\n{}",
        unexplained.len(),
        unexplained.iter().take(5).cloned().collect::<Vec<_>>().join("\n\n")
    );
}

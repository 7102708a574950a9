//! Table-driven tests for parsing and evaluation, including the semantics of the
//! example policies in the API Gateway documentation ("API Gateway resource
//! policy examples", "Use VPC endpoint policies for private APIs").

use super::*;

const REGION: &str = "us-east-1";
const ACCOUNT: &str = "111122223333";
const API: &str = "a1b2c3d4e5";

fn api() -> ApiRef {
    ApiRef::new(REGION, ACCOUNT, API)
}

fn arn(stage: &str, method: &str, path: &str) -> String {
    execute_api_arn(&api(), stage, method, path)
}

fn anon(stage: &str, method: &str, path: &str) -> RequestContext {
    RequestContext::new(CallerPrincipal::Anonymous, arn(stage, method, path))
}

fn iam(principal: &str, stage: &str, method: &str, path: &str) -> RequestContext {
    RequestContext::new(CallerPrincipal::from_text(principal), arn(stage, method, path))
}

fn parse(json: &str) -> PolicyDocument {
    match PolicyDocument::parse(json) {
        Ok(p) => p,
        Err(e) => panic!("test policy does not parse: {e}\n{json}"),
    }
}

/// Parses, expands the shorthand for [`api`] (as API Gateway does on save) and
/// evaluates.
fn decide(json: &str, req: &RequestContext) -> Decision {
    evaluate(&expand_api_shorthand(&parse(json), &api()), req)
}

/// A compact expectation: "Allow", "ImplicitDeny", "ExplicitDeny", "Undetermined",
/// optionally with the deciding statement as "Allow@Sid" / "ExplicitDeny@#1".
fn summary(d: &Decision) -> String {
    let (kind, st) = match d {
        Decision::Allow { statement } => ("Allow", Some(statement)),
        Decision::ImplicitDeny => ("ImplicitDeny", None),
        Decision::ExplicitDeny { statement } => ("ExplicitDeny", Some(statement)),
        Decision::Undetermined { statement, .. } => ("Undetermined", Some(statement)),
    };
    match st {
        Some(StatementRef { sid: Some(s), .. }) => format!("{kind}@{s}"),
        Some(StatementRef { index, .. }) => format!("{kind}@#{index}"),
        None => kind.to_string(),
    }
}

fn check(name: &str, d: &Decision, want: &str) {
    let got = summary(d);
    let ok = if want.contains('@') { got == want } else { got.split('@').next() == Some(want) };
    assert!(ok, "{name}: expected {want}, got {got} ({d:?})");
}

// ---------------------------------------------------------------- parsing --

#[test]
fn parse_shapes() {
    let object = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"execute-api:Invoke","Resource":"*"}}"#;
    let list = r#"{"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Allow","Principal":{"AWS":["*"]},"Action":["execute-api:Invoke"],"Resource":["*"]},{"Effect":"Deny","NotPrincipal":{"AWS":"123456789012"},"NotAction":"s3:*","NotResource":"arn:aws:s3:::b"}]}"#;
    let escaped = serde_json::to_string(object).unwrap_or_default();
    assert!(escaped.starts_with("\"{\\\"Version"));

    let p = parse(object);
    assert_eq!(p.version, Some(PolicyVersion::V2012_10_17));
    assert_eq!(p.statements.len(), 1);
    assert_eq!(p.statements[0].principal, Some(PrincipalElement::Principal(PrincipalSet::Everyone)));

    let p = parse(list);
    assert_eq!(p.statements.len(), 2);
    assert_eq!(p.statements[0].sid.as_deref(), Some("A"));
    assert_eq!(
        p.statements[0].principal,
        Some(PrincipalElement::Principal(PrincipalSet::Listed(vec![PrincipalEntry::Aws(AwsPrincipal::Everyone)])))
    );
    assert_eq!(p.statements[1].index, 1);
    assert_eq!(
        p.statements[1].principal,
        Some(PrincipalElement::NotPrincipal(PrincipalSet::Listed(vec![PrincipalEntry::Aws(AwsPrincipal::Account(
            "123456789012".into()
        ))])))
    );
    assert_eq!(p.statements[1].action, ActionElement::NotAction(vec!["s3:*".into()]));
    assert_eq!(p.statements[1].resource, ResourceElement::NotResource(vec!["arn:aws:s3:::b".into()]));

    // The escaped form GetRestApi returns parses to the same document.
    assert_eq!(parse(&escaped), parse(object));
    // Surrounding whitespace is fine.
    assert_eq!(parse(&format!("\n  {object}\n")), parse(object));
}

#[test]
fn parse_values_and_principals() {
    let p = parse(
        r#"{"Statement":[{"Effect":"Allow",
            "Principal":{"AWS":["arn:aws:iam::111122223333:root","444455556666","arn:aws:iam::444455556666:role/app"],
                         "Service":"lambda.amazonaws.com","Federated":["cognito-identity.amazonaws.com"],"CanonicalUser":"abc"},
            "Action":"execute-api:Invoke","Resource":"*",
            "Condition":{"Bool":{"aws:SecureTransport":true},"StringEquals":{"aws:SourceAccount":111122223333,"aws:SourceVpce":["vpce-1",2.5,false]}}}]}"#,
    );
    assert_eq!(p.version, None);
    let st = &p.statements[0];
    let Some(PrincipalElement::Principal(PrincipalSet::Listed(entries))) = &st.principal else {
        panic!("principal shape");
    };
    assert!(entries.contains(&PrincipalEntry::Aws(AwsPrincipal::Account("111122223333".into()))));
    assert!(entries.contains(&PrincipalEntry::Aws(AwsPrincipal::Account("444455556666".into()))));
    assert!(entries.contains(&PrincipalEntry::Aws(AwsPrincipal::Arn("arn:aws:iam::444455556666:role/app".into()))));
    assert!(entries.contains(&PrincipalEntry::Other { kind: "Service".into(), value: "lambda.amazonaws.com".into() }));
    assert_eq!(entries.len(), 6);
    // Numbers and booleans are stringified, lists keep their order.
    let vals: Vec<(&str, Vec<&str>)> =
        st.conditions.iter().map(|c| (c.key.as_str(), c.values.iter().map(String::as_str).collect())).collect();
    assert!(vals.contains(&("aws:SecureTransport", vec!["true"])));
    assert!(vals.contains(&("aws:SourceAccount", vec!["111122223333"])));
    assert!(vals.contains(&("aws:SourceVpce", vec!["vpce-1", "2.5", "false"])));
}

/// Expected error: Syntax/EscapedSyntax with (line, column), or Invalid with the
/// JSON path and a fragment of the reason.
enum E {
    Syntax(usize, usize, &'static str),
    Escaped(usize, usize, &'static str),
    Invalid(&'static str, &'static str),
}

#[test]
fn parse_errors_name_position_and_reason() {
    let deep = format!("{}{}", "[".repeat(2000), "]".repeat(2000));
    let cases: Vec<(&str, String, E)> = vec![
        ("empty input", String::new(), E::Syntax(1, 0, "EOF")),
        ("truncated", "{\n  \"Version\": \"2012-10-17\",\n".into(), E::Syntax(3, 0, "EOF")),
        ("trailing comma", "{\"Statement\": [],}".into(), E::Syntax(1, 18, "trailing comma")),
        ("duplicate key", "{\"Statement\": [],\n \"Statement\": []}".into(), E::Syntax(2, 12, "duplicate key \"Statement\"")),
        ("deep nesting", deep, E::Syntax(1, 128, "recursion limit")),
        (
            "escaped with bad content",
            serde_json::to_string("{\n\"Version\": 2012-10-17}").unwrap_or_default(),
            E::Escaped(2, 16, "expected `,` or `}`"),
        ),
        ("escaped twice", serde_json::to_string(&serde_json::to_string("{}").unwrap_or_default()).unwrap_or_default(), E::Invalid("$", "escaped twice")),
        ("not an object", "[1,2]".into(), E::Invalid("$", "must be a JSON object, got a list")),
        ("no statement", "{\"Version\":\"2012-10-17\"}".into(), E::Invalid("$", "no Statement")),
        ("bad version", "{\"Version\":\"2012-10-18\",\"Statement\":[]}".into(), E::Invalid("Version", "got \"2012-10-18\"")),
        ("unknown top-level element", "{\"statement\":[]}".into(), E::Invalid("statement", "did you mean Statement")),
        ("statement not list/object", "{\"Statement\":5}".into(), E::Invalid("Statement", "got a number")),
        ("statement item not object", "{\"Statement\":[\"x\"]}".into(), E::Invalid("Statement[0]", "got a string")),
        (
            "lowercase effect value",
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"},{"Effect":"allow","Principal":"*","Action":"*","Resource":"*"}]}"#.into(),
            E::Invalid("Statement[1].Effect", "Effect must be Allow or Deny (case-sensitive), got \"allow\""),
        ),
        ("missing effect", r#"{"Statement":{"Principal":"*","Action":"*","Resource":"*"}}"#.into(), E::Invalid("Statement", "no Effect")),
        ("lowercase element", r#"{"Statement":[{"effect":"Allow"}]}"#.into(), E::Invalid("Statement[0].effect", "did you mean Effect")),
        ("unknown element", r#"{"Statement":[{"Effect":"Allow","Foo":1}]}"#.into(), E::Invalid("Statement[0].Foo", "unknown element")),
        ("both actions", r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*","NotAction":"s3:*","Resource":"*"}]}"#.into(), E::Invalid("Statement[0].", "both Action and NotAction")),
        ("no action", r#"{"Statement":[{"Effect":"Allow","Principal":"*","Resource":"*"}]}"#.into(), E::Invalid("Statement[0]", "neither Action nor NotAction")),
        ("no resource", r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*"}]}"#.into(), E::Invalid("Statement[0]", "neither Resource nor NotResource")),
        ("both principals", r#"{"Statement":[{"Effect":"Allow","Principal":"*","NotPrincipal":"*","Action":"*","Resource":"*"}]}"#.into(), E::Invalid("Statement[0].", "both Principal and NotPrincipal")),
        ("action not a string", r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":["execute-api:Invoke",5],"Resource":"*"}]}"#.into(), E::Invalid("Statement[0].Action[1]", "expected a string, got a number")),
        ("empty resource", r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":""}]}"#.into(), E::Invalid("Statement[0].Resource[0]", "cannot be empty")),
        ("principal string not *", r#"{"Statement":[{"Effect":"Allow","Principal":"arn:aws:iam::1:root","Action":"*","Resource":"*"}]}"#.into(), E::Invalid("Statement[0].Principal", "must be \"*\"")),
        ("principal type", r#"{"Statement":[{"Effect":"Allow","Principal":{"Aws":"*"},"Action":"*","Resource":"*"}]}"#.into(), E::Invalid("Statement[0].Principal.Aws", "unknown principal type")),
        ("principal number", r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":[123456789012]},"Action":"*","Resource":"*"}]}"#.into(), E::Invalid("Statement[0].Principal.AWS[0]", "expected a string")),
        ("condition not object", r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Condition":[]}]}"#.into(), E::Invalid("Statement[0].Condition", "must be an object")),
        ("operator not object", r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Condition":{"StringEquals":"x"}}]}"#.into(), E::Invalid("Statement[0].Condition.StringEquals", "must map to an object")),
        ("operator without keys", r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Condition":{"StringEquals":{}}}]}"#.into(), E::Invalid("Statement[0].Condition.StringEquals", "at least one key")),
        ("null condition value", r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:SourceVpce":null}}}]}"#.into(), E::Invalid("Statement[0].Condition.StringEquals.aws:SourceVpce", "got null")),
        ("nested condition value", r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:SourceVpce":["a",{"b":1}]}}}]}"#.into(), E::Invalid("Statement[0].Condition.StringEquals.aws:SourceVpce[1]", "got an object")),
        ("sid not string", r#"{"Statement":[{"Sid":1,"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}]}"#.into(), E::Invalid("Statement[0].Sid", "expected a string")),
    ];
    for (name, input, want) in cases {
        let got = PolicyDocument::parse(&input);
        let err = match got {
            Ok(p) => panic!("{name}: expected an error, parsed {p:?}"),
            Err(e) => e,
        };
        let msg = err.to_string();
        match (&want, &err) {
            (E::Syntax(l, c, frag), PolicyParseError::Syntax { line, column, reason })
            | (E::Escaped(l, c, frag), PolicyParseError::EscapedSyntax { line, column, reason }) => {
                assert_eq!((*line, *column), (*l, *c), "{name}: position ({msg})");
                assert!(reason.contains(frag), "{name}: reason {reason:?} lacks {frag:?}");
                assert!(msg.contains(&format!("line {l}, column {c}")), "{name}: {msg}");
            }
            (E::Invalid(p, frag), PolicyParseError::Invalid { path, reason }) => {
                assert!(path.starts_with(p.trim_end_matches('.')), "{name}: path {path:?}, expected {p:?}");
                assert!(reason.contains(frag), "{name}: reason {reason:?} lacks {frag:?}");
                assert!(msg.starts_with(path.as_str()), "{name}: {msg}");
            }
            _ => panic!("{name}: wrong error kind: {err:?}"),
        }
    }
}

#[test]
fn parse_and_evaluate_never_panic_on_garbage() {
    let seed_policy = r#"{"Version":"2012-10-17","Statement":[{"Sid":"s","Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:iam::444455556666:user/bob"]},"Action":"execute-api:*","NotResource":["execute-api:/*/GET/*"],"Condition":{"ForAnyValue:StringLikeIfExists":{"aws:SourceVpce":["vpce-*",1,true]},"IpAddress":{"aws:VpcSourceIp":"10.0.0.0/8"}}}]}"#;
    let alphabet: Vec<char> = "{}[]\":,*?\\/ aAn0123456789-.$ĀéUtrue".chars().collect();
    let mut rng = fastrand::Rng::with_seed(7);
    let reqs = [
        anon("prod", "GET", "/pets"),
        iam("arn:aws:iam::444455556666:user/bob", "prod", "GET", "/"),
        iam("arn:aws:sts::444455556666:assumed-role/app/s", "dev", "POST", "/x"),
    ];
    let mut parsed = 0;
    for _ in 0..20_000 {
        let mut chars: Vec<char> = seed_policy.chars().collect();
        for _ in 0..rng.usize(1..4) {
            match rng.u8(0..3) {
                0 if !chars.is_empty() => {
                    let i = rng.usize(0..chars.len());
                    chars.remove(i);
                }
                1 => {
                    let i = rng.usize(0..=chars.len());
                    chars.insert(i, alphabet[rng.usize(0..alphabet.len())]);
                }
                _ if !chars.is_empty() => {
                    let i = rng.usize(0..chars.len());
                    chars[i] = alphabet[rng.usize(0..alphabet.len())];
                }
                _ => {}
            }
        }
        let text: String = chars.into_iter().collect();
        for candidate in [text.clone(), serde_json::to_string(&text).unwrap_or_default()] {
            if let Ok(p) = PolicyDocument::parse(&candidate) {
                parsed += 1;
                for r in &reqs {
                    let _ = evaluate(&p, r);
                    let _ = evaluate_private_api_access(Some(&p), Some(&p), &api(), r);
                }
            }
        }
    }
    assert!(parsed > 100, "mutations should often still parse ({parsed})");
}

// ------------------------------------------------------------- evaluation --

const ALLOW_ALL: &str =
    r#"{"Sid":"AllowAll","Effect":"Allow","Principal":"*","Action":"execute-api:Invoke","Resource":"execute-api:/*"}"#;
const DENY_POST: &str = r#"{"Sid":"DenyPost","Effect":"Deny","Principal":"*","Action":"execute-api:Invoke","Resource":"execute-api:/*/POST/*"}"#;

fn policy(statements: &[&str]) -> String {
    format!(r#"{{"Version":"2012-10-17","Statement":[{}]}}"#, statements.join(","))
}

#[test]
fn explicit_deny_wins_in_either_order() {
    for stmts in [[ALLOW_ALL, DENY_POST], [DENY_POST, ALLOW_ALL]] {
        let p = policy(&stmts);
        check("POST denied", &decide(&p, &anon("prod", "POST", "/pets")), "ExplicitDeny@DenyPost");
        check("GET allowed", &decide(&p, &anon("prod", "GET", "/pets")), "Allow@AllowAll");
    }
    // Several matching Allows and a Deny at the very end.
    let p = policy(&[ALLOW_ALL, ALLOW_ALL, DENY_POST]);
    check("deny last", &decide(&p, &anon("prod", "POST", "/")), "ExplicitDeny@DenyPost");
}

#[test]
fn statement_elements_table() {
    // (name, statements, request, expected)
    let bob = "arn:aws:iam::444455556666:user/bob";
    let alice = "arn:aws:iam::444455556666:user/alice";
    let session = "arn:aws:sts::444455556666:assumed-role/app/sess-1";
    let cases: Vec<(&str, String, RequestContext, &str)> = vec![
        // Wildcard boundaries on resources.
        ("GET pattern vs GET", policy(&[r#"{"Effect":"Allow","Principal":"*","Action":"execute-api:Invoke","Resource":"execute-api:/*/GET/*"}"#]), anon("prod", "GET", "/pets"), "Allow"),
        ("GET pattern vs POST", policy(&[r#"{"Effect":"Allow","Principal":"*","Action":"execute-api:Invoke","Resource":"execute-api:/*/GET/*"}"#]), anon("prod", "POST", "/pets"), "ImplicitDeny"),
        ("GET pattern vs root", policy(&[r#"{"Effect":"Allow","Principal":"*","Action":"execute-api:Invoke","Resource":"execute-api:/*/GET/*"}"#]), anon("prod", "GET", "/"), "Allow"),
        ("exact path vs root", policy(&[r#"{"Effect":"Allow","Principal":"*","Action":"execute-api:Invoke","Resource":"execute-api:/prod/GET/"}"#]), anon("prod", "GET", "/"), "Allow"),
        ("exact path vs sub path", policy(&[r#"{"Effect":"Allow","Principal":"*","Action":"execute-api:Invoke","Resource":"execute-api:/prod/GET/pets"}"#]), anon("prod", "GET", "/pets/1"), "ImplicitDeny"),
        ("? matches one char", policy(&[r#"{"Effect":"Allow","Principal":"*","Action":"execute-api:Invoke","Resource":"execute-api:/prod/P?T/*"}"#]), anon("prod", "PUT", "/pets"), "Allow"),
        ("? not two chars", policy(&[r#"{"Effect":"Allow","Principal":"*","Action":"execute-api:Invoke","Resource":"execute-api:/prod/P?T/*"}"#]), anon("prod", "POST", "/pets"), "ImplicitDeny"),
        ("resource is case-sensitive", policy(&[r#"{"Effect":"Allow","Principal":"*","Action":"execute-api:Invoke","Resource":"execute-api:/prod/get/*"}"#]), anon("prod", "GET", "/pets"), "ImplicitDeny"),
        ("other API", policy(&[r#"{"Effect":"Allow","Principal":"*","Action":"execute-api:Invoke","Resource":"arn:aws:execute-api:us-east-1:111122223333:zzzzz99999/*"}"#]), anon("prod", "GET", "/pets"), "ImplicitDeny"),
        ("authorizer-style API wildcard", policy(&[r#"{"Effect":"Allow","Principal":"*","Action":"execute-api:Invoke","Resource":"arn:aws:execute-api:*:*:*/*/GET/*"}"#]), anon("prod", "GET", "/pets"), "Allow"),
        ("authorizer-style API wildcard, POST", policy(&[r#"{"Effect":"Allow","Principal":"*","Action":"execute-api:Invoke","Resource":"arn:aws:execute-api:*:*:*/*/GET/*"}"#]), anon("prod", "POST", "/pets"), "ImplicitDeny"),
        ("any execute-api ARN", policy(&[r#"{"Effect":"Allow","Principal":"*","Action":"execute-api:Invoke","Resource":"arn:aws:execute-api:*"}"#]), anon("prod", "GET", "/pets"), "Allow"),
        // Actions.
        ("action case-insensitive", policy(&[r#"{"Effect":"Allow","Principal":"*","Action":"EXECUTE-API:invoke","Resource":"*"}"#]), anon("prod", "GET", "/"), "Allow"),
        ("action wildcard", policy(&[r#"{"Effect":"Allow","Principal":"*","Action":"execute-api:*","Resource":"*"}"#]), anon("prod", "GET", "/"), "Allow"),
        ("other action", policy(&[r#"{"Effect":"Allow","Principal":"*","Action":"execute-api:ManageConnections","Resource":"*"}"#]), anon("prod", "GET", "/"), "ImplicitDeny"),
        // NotAction / NotResource.
        ("NotAction excludes invoke", policy(&[r#"{"Effect":"Allow","Principal":"*","NotAction":"execute-api:Invoke","Resource":"*"}"#]), anon("prod", "GET", "/"), "ImplicitDeny"),
        ("NotAction other service", policy(&[r#"{"Effect":"Allow","Principal":"*","NotAction":"s3:*","Resource":"*"}"#]), anon("prod", "GET", "/"), "Allow"),
        ("NotResource excludes", policy(&[r#"{"Effect":"Allow","Principal":"*","Action":"*","NotResource":"execute-api:/*/POST/*"}"#]), anon("prod", "POST", "/a"), "ImplicitDeny"),
        ("NotResource admits", policy(&[r#"{"Effect":"Allow","Principal":"*","Action":"*","NotResource":"execute-api:/*/POST/*"}"#]), anon("prod", "GET", "/a"), "Allow"),
        ("Deny NotResource protects all but health", policy(&[ALLOW_ALL, r#"{"Effect":"Deny","Principal":"*","Action":"*","NotResource":"execute-api:/*/GET/health"}"#]), anon("prod", "GET", "/pets"), "ExplicitDeny"),
        ("Deny NotResource spares health", policy(&[ALLOW_ALL, r#"{"Effect":"Deny","Principal":"*","Action":"*","NotResource":"execute-api:/*/GET/health"}"#]), anon("prod", "GET", "/health"), "Allow"),
        // Principals.
        ("AWS * includes anonymous", policy(&[r#"{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"*","Resource":"*"}"#]), anon("prod", "GET", "/"), "Allow"),
        ("account excludes anonymous", policy(&[r#"{"Effect":"Allow","Principal":{"AWS":"444455556666"},"Action":"*","Resource":"*"}"#]), anon("prod", "GET", "/"), "ImplicitDeny"),
        ("account id covers its user", policy(&[r#"{"Effect":"Allow","Principal":{"AWS":"444455556666"},"Action":"*","Resource":"*"}"#]), iam(bob, "prod", "GET", "/"), "Allow"),
        ("account root ARN covers its role session", policy(&[r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":"*","Resource":"*"}"#]), iam(session, "prod", "GET", "/"), "Allow"),
        ("other account", policy(&[r#"{"Effect":"Allow","Principal":{"AWS":"999999999999"},"Action":"*","Resource":"*"}"#]), iam(bob, "prod", "GET", "/"), "ImplicitDeny"),
        ("user ARN exact", policy(&[r#"{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::444455556666:user/bob"]},"Action":"*","Resource":"*"}"#]), iam(bob, "prod", "GET", "/"), "Allow"),
        ("user ARN other user", policy(&[r#"{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::444455556666:user/bob"]},"Action":"*","Resource":"*"}"#]), iam(alice, "prod", "GET", "/"), "ImplicitDeny"),
        ("no wildcards in principal ARNs", policy(&[r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:user/*"},"Action":"*","Resource":"*"}"#]), iam(bob, "prod", "GET", "/"), "ImplicitDeny"),
        ("role ARN covers its sessions", policy(&[r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:role/team/app"},"Action":"*","Resource":"*"}"#]), iam(session, "prod", "GET", "/"), "Allow"),
        ("service principal never matches anonymous", policy(&[r#"{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"*","Resource":"*"}"#]), anon("prod", "GET", "/"), "ImplicitDeny"),
        ("service principal never matches IAM", policy(&[r#"{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"*","Resource":"*"}"#]), iam(bob, "prod", "GET", "/"), "ImplicitDeny"),
        ("missing principal", policy(&[r#"{"Effect":"Allow","Action":"*","Resource":"*"}"#]), anon("prod", "GET", "/"), "Undetermined"),
        // NotPrincipal.
        ("NotPrincipal deny hits anonymous", policy(&[ALLOW_ALL, r#"{"Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:iam::444455556666:user/bob","arn:aws:iam::444455556666:root"]},"Action":"*","Resource":"*"}"#]), anon("prod", "GET", "/"), "ExplicitDeny"),
        ("NotPrincipal deny spares bob", policy(&[ALLOW_ALL, r#"{"Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:iam::444455556666:user/bob","arn:aws:iam::444455556666:root"]},"Action":"*","Resource":"*"}"#]), iam(bob, "prod", "GET", "/"), "Allow"),
        ("NotPrincipal deny hits alice of the same account", policy(&[ALLOW_ALL, r#"{"Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:iam::444455556666:user/bob","arn:aws:iam::444455556666:root"]},"Action":"*","Resource":"*"}"#]), iam(alice, "prod", "GET", "/"), "ExplicitDeny"),
        ("NotPrincipal without the account is ambiguous", policy(&[ALLOW_ALL, r#"{"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::444455556666:user/bob"},"Action":"*","Resource":"*"}"#]), iam(bob, "prod", "GET", "/"), "Undetermined"),
        ("NotPrincipal session needs role and account", policy(&[ALLOW_ALL, r#"{"Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:sts::444455556666:assumed-role/app/sess-1","arn:aws:iam::444455556666:root"]},"Action":"*","Resource":"*"}"#]), iam(session, "prod", "GET", "/"), "Undetermined"),
        ("NotPrincipal full session chain", policy(&[ALLOW_ALL, r#"{"Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:sts::444455556666:assumed-role/app/sess-1","arn:aws:iam::444455556666:role/app","arn:aws:iam::444455556666:root"]},"Action":"*","Resource":"*"}"#]), iam(session, "prod", "GET", "/"), "Allow"),
        ("NotPrincipal allow excludes listed", policy(&[r#"{"Effect":"Allow","NotPrincipal":{"AWS":["arn:aws:iam::444455556666:user/bob","444455556666"]},"Action":"*","Resource":"*"}"#]), iam(bob, "prod", "GET", "/"), "ImplicitDeny"),
        ("NotPrincipal allow grants anonymous", policy(&[r#"{"Effect":"Allow","NotPrincipal":{"AWS":"arn:aws:iam::444455556666:user/bob"},"Action":"*","Resource":"*"}"#]), anon("prod", "GET", "/"), "Allow"),
        ("NotPrincipal AWS * excludes everyone", policy(&[r#"{"Effect":"Allow","NotPrincipal":{"AWS":"*"},"Action":"*","Resource":"*"}"#]), anon("prod", "GET", "/"), "ImplicitDeny"),
        // Shorthand and variables.
        ("unexpanded shorthand is undetermined", String::new(), anon("prod", "GET", "/"), "Undetermined"),
        ("resource variable in 2012 policy", policy(&[r#"{"Effect":"Allow","Principal":"*","Action":"*","Resource":"arn:aws:execute-api:us-east-1:${aws:PrincipalAccount}:*"}"#]), anon("prod", "GET", "/"), "Undetermined"),
        ("resource ${ literal in 2008 policy", r#"{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"arn:aws:execute-api:us-east-1:${x}:*"}]}"#.to_string(), anon("prod", "GET", "/"), "ImplicitDeny"),
    ];
    for (name, p, req, want) in cases {
        let d = if p.is_empty() {
            // Not expanded on purpose (e.g. shorthand in a VPC endpoint policy).
            evaluate(&parse(&policy(&[ALLOW_ALL])), &req)
        } else {
            decide(&p, &req)
        };
        check(name, &d, want);
    }
}

#[test]
fn undetermined_precedence() {
    let unknown_key_deny = r#"{"Sid":"UDeny","Effect":"Deny","Principal":"*","Action":"*","Resource":"*","Condition":{"StringNotEquals":{"aws:PrincipalOrgID":"o-1"}}}"#;
    let unknown_key_allow = r#"{"Sid":"UAllow","Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-1"}}}"#;
    let numeric_deny_post = r#"{"Sid":"NDenyPost","Effect":"Deny","Principal":"*","Action":"*","Resource":"execute-api:/*/POST/*","Condition":{"NumericLessThan":{"aws:MultiFactorAuthAge":"3600"}}}"#;
    let cases: Vec<(&str, Vec<&str>, RequestContext, &str)> = vec![
        (
            "undetermined deny beats allow",
            vec![ALLOW_ALL, unknown_key_deny],
            anon("prod", "GET", "/"),
            "Undetermined@UDeny",
        ),
        (
            "undetermined deny beats allow (order)",
            vec![unknown_key_deny, ALLOW_ALL],
            anon("prod", "GET", "/"),
            "Undetermined@UDeny",
        ),
        (
            "definite deny beats undetermined deny",
            vec![unknown_key_deny, ALLOW_ALL, DENY_POST],
            anon("prod", "POST", "/"),
            "ExplicitDeny@DenyPost",
        ),
        (
            "definite allow beats undetermined allow",
            vec![unknown_key_allow, ALLOW_ALL],
            anon("prod", "GET", "/"),
            "Allow@AllowAll",
        ),
        ("undetermined allow alone", vec![unknown_key_allow], anon("prod", "GET", "/"), "Undetermined@UAllow"),
        (
            "undetermined allow, no other allow",
            vec![unknown_key_allow, DENY_POST],
            anon("prod", "GET", "/"),
            "Undetermined@UAllow",
        ),
        (
            "definite deny beats undetermined allow",
            vec![unknown_key_allow, DENY_POST],
            anon("prod", "POST", "/"),
            "ExplicitDeny@DenyPost",
        ),
        // A definite non-match elsewhere in the statement makes the unknown irrelevant.
        (
            "unsupported operator on a deny that cannot apply",
            vec![ALLOW_ALL, numeric_deny_post],
            anon("prod", "GET", "/"),
            "Allow@AllowAll",
        ),
        (
            "unsupported operator on a deny that may apply",
            vec![ALLOW_ALL, numeric_deny_post],
            anon("prod", "POST", "/"),
            "Undetermined@NDenyPost",
        ),
    ];
    for (name, stmts, req, want) in cases {
        check(name, &decide(&policy(&stmts), &req), want);
    }
    // The reason names the operator / key.
    let d = decide(&policy(&[ALLOW_ALL, numeric_deny_post]), &anon("prod", "POST", "/"));
    let Decision::Undetermined { reason, .. } = d else { panic!("expected undetermined") };
    assert!(reason.to_string().contains("NumericLessThan"), "{reason}");
    let d = decide(&policy(&[unknown_key_allow]), &anon("prod", "GET", "/"));
    let Decision::Undetermined { reason, .. } = d else { panic!("expected undetermined") };
    assert!(reason.to_string().contains("aws:PrincipalOrgID"), "{reason}");
}

#[test]
fn shorthand_expansion() {
    let p = parse(&policy(&[
        r#"{"Effect":"Allow","Principal":"*","Action":"*","Resource":["execute-api:/*","execute-api:/prod/GET/pets","arn:aws:execute-api:*"]}"#,
        r#"{"Effect":"Deny","Principal":"*","Action":"*","NotResource":"execute-api:/dev/*"}"#,
    ]));
    let e = expand_api_shorthand(&p, &api());
    assert_eq!(
        e.statements[0].resource,
        ResourceElement::Resource(vec![
            "arn:aws:execute-api:us-east-1:111122223333:a1b2c3d4e5/*".into(),
            "arn:aws:execute-api:us-east-1:111122223333:a1b2c3d4e5/prod/GET/pets".into(),
            "arn:aws:execute-api:*".into(),
        ])
    );
    assert_eq!(
        e.statements[1].resource,
        ResourceElement::NotResource(vec!["arn:aws:execute-api:us-east-1:111122223333:a1b2c3d4e5/dev/*".into()])
    );
}

// ------------------------------------------------- AWS documentation examples --

/// "API Gateway resource policy examples" and the private-API resource policy
/// pattern from design.md §4, with `region`, `account-id`, `api-id` replaced by
/// us-east-1 / 111122223333 / a1b2c3d4e5.
#[test]
fn aws_resource_policy_examples() {
    // Example: Allow roles in another AWS account to use an API (current page:
    // two roles in 111122223333 may GET /pets on stage "stage").
    let cross_account_roles = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:role/developer","arn:aws:iam::111122223333:role/Admin"]},"Action":"execute-api:Invoke","Resource":["execute-api:/stage/GET/pets"]}]}"#;
    // Older revision of the same example: user Alice and the whole account-id-2.
    let cross_account_users = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::444455556666:user/Alice","444455556666"]},"Action":"execute-api:Invoke","Resource":["arn:aws:execute-api:us-east-1:111122223333:a1b2c3d4e5/stage/GET/pets"]}]}"#;
    // Example: Deny API traffic based on source IP address or range.
    let deny_source_ip = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"execute-api:Invoke","Resource":["execute-api:/*"]},{"Effect":"Deny","Principal":"*","Action":"execute-api:Invoke","Resource":["execute-api:/*"],"Condition":{"IpAddress":{"aws:SourceIp":["192.0.2.0/24","198.51.100.0/24"]}}}]}"#;
    // Example: Deny … when using a private API (aws:VpcSourceIp).
    let deny_vpc_source_ip = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"execute-api:Invoke","Resource":["execute-api:/*"]},{"Effect":"Deny","Principal":"*","Action":"execute-api:Invoke","Resource":["execute-api:/*"],"Condition":{"IpAddress":{"aws:VpcSourceIp":["192.0.2.0/24","198.51.100.0/24"]}}}]}"#;
    // Example: Allow private API traffic based on source VPC.
    let only_vpc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"execute-api:Invoke","Resource":["execute-api:/*"]},{"Effect":"Deny","Principal":"*","Action":"execute-api:Invoke","Resource":["execute-api:/*"],"Condition":{"StringNotEquals":{"aws:SourceVpc":"vpc-1a2b3c4d"}}}]}"#;
    // Example: Allow private API traffic based on VPC endpoint.
    let only_vpce = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"execute-api:Invoke","Resource":["execute-api:/*"]},{"Effect":"Deny","Principal":"*","Action":"execute-api:Invoke","Resource":["execute-api:/*"],"Condition":{"StringNotEquals":{"aws:SourceVpce":"vpce-1a2b3c4d"}}}]}"#;
    // Allow only from listed endpoints (Allow with StringEquals, several vpces;
    // also the cross-account private API case where the endpoint lives in
    // another account), on a full ARN with account/API wildcards.
    let allow_vpce_list = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"execute-api:Invoke","Resource":"arn:aws:execute-api:us-east-1:111122223333:*/*","Condition":{"StringEquals":{"aws:sourceVpce":["vpce-1a2b3c4d","vpce-0other0acct"]}}}]}"#;
    // Method/path restriction: GET anywhere, POST only on /orders, from one vpce.
    let method_path = r#"{"Version":"2012-10-17","Statement":[{"Sid":"ReadAll","Effect":"Allow","Principal":"*","Action":"execute-api:Invoke","Resource":"execute-api:/prod/GET/*"},{"Sid":"WriteOrders","Effect":"Allow","Principal":"*","Action":"execute-api:Invoke","Resource":"execute-api:/prod/POST/orders"},{"Sid":"OnlyVpce","Effect":"Deny","Principal":"*","Action":"execute-api:Invoke","Resource":"execute-api:/*","Condition":{"StringNotEquals":{"aws:SourceVpce":"vpce-1a2b3c4d"}}}]}"#;

    let via =
        |r: RequestContext, vpce: &str, vpc: &str, ip: &str| r.source_vpce(vpce).source_vpc(vpc).vpc_source_ip(ip);
    let dev = "arn:aws:iam::111122223333:role/developer";
    let cases: Vec<(&str, &str, RequestContext, &str)> = vec![
        ("roles: developer GET pets", cross_account_roles, iam(dev, "stage", "GET", "/pets"), "Allow"),
        (
            "roles: developer session GET pets",
            cross_account_roles,
            iam("arn:aws:sts::111122223333:assumed-role/developer/s", "stage", "GET", "/pets"),
            "Allow",
        ),
        ("roles: developer POST pets", cross_account_roles, iam(dev, "stage", "POST", "/pets"), "ImplicitDeny"),
        ("roles: developer other stage", cross_account_roles, iam(dev, "prod", "GET", "/pets"), "ImplicitDeny"),
        ("roles: anonymous", cross_account_roles, anon("stage", "GET", "/pets"), "ImplicitDeny"),
        (
            "roles: other role",
            cross_account_roles,
            iam("arn:aws:iam::111122223333:role/ops", "stage", "GET", "/pets"),
            "ImplicitDeny",
        ),
        (
            "users: Alice",
            cross_account_users,
            iam("arn:aws:iam::444455556666:user/Alice", "stage", "GET", "/pets"),
            "Allow",
        ),
        (
            "users: anyone in account-id-2",
            cross_account_users,
            iam("arn:aws:iam::444455556666:role/x", "stage", "GET", "/pets"),
            "Allow",
        ),
        (
            "users: third account",
            cross_account_users,
            iam("arn:aws:iam::999999999999:user/Alice", "stage", "GET", "/pets"),
            "ImplicitDeny",
        ),
        // aws:SourceIp is not present for calls through a VPC endpoint (IAM docs),
        // so a private API caller passes the source-IP deny; if the context does
        // not even know, the deny is undetermined.
        (
            "source ip: through vpce (key absent)",
            deny_source_ip,
            via(anon("prod", "GET", "/"), "vpce-1a2b3c4d", "vpc-1a2b3c4d", "10.0.0.5").without_key("aws:SourceIp"),
            "Allow",
        ),
        (
            "source ip: blocked range",
            deny_source_ip,
            anon("prod", "GET", "/").with_key("aws:SourceIp", "192.0.2.10"),
            "ExplicitDeny",
        ),
        (
            "source ip: other address",
            deny_source_ip,
            anon("prod", "GET", "/").with_key("aws:SourceIp", "203.0.113.9"),
            "Allow",
        ),
        ("source ip: unknown", deny_source_ip, anon("prod", "GET", "/"), "Undetermined"),
        (
            "vpc source ip: blocked",
            deny_vpc_source_ip,
            via(anon("prod", "GET", "/"), "vpce-1a2b3c4d", "vpc-1a2b3c4d", "198.51.100.7"),
            "ExplicitDeny",
        ),
        (
            "vpc source ip: allowed",
            deny_vpc_source_ip,
            via(anon("prod", "GET", "/"), "vpce-1a2b3c4d", "vpc-1a2b3c4d", "10.0.0.5"),
            "Allow",
        ),
        ("vpc source ip: key absent", deny_vpc_source_ip, anon("prod", "GET", "/"), "Allow"),
        (
            "source vpc: right vpc",
            only_vpc,
            via(anon("prod", "GET", "/"), "vpce-0x", "vpc-1a2b3c4d", "10.0.0.5"),
            "Allow",
        ),
        (
            "source vpc: other vpc",
            only_vpc,
            via(anon("prod", "GET", "/"), "vpce-0x", "vpc-99999999", "10.0.0.5"),
            "ExplicitDeny",
        ),
        ("source vpc: no vpc (public path)", only_vpc, anon("prod", "GET", "/"), "ExplicitDeny"),
        (
            "source vpce: right endpoint",
            only_vpce,
            via(anon("prod", "GET", "/pets"), "vpce-1a2b3c4d", "vpc-1", "10.0.0.5"),
            "Allow",
        ),
        (
            "source vpce: other endpoint",
            only_vpce,
            via(anon("prod", "GET", "/pets"), "vpce-0ffffff", "vpc-1", "10.0.0.5"),
            "ExplicitDeny",
        ),
        (
            "source vpce: case differs",
            only_vpce,
            via(anon("prod", "GET", "/pets"), "VPCE-1A2B3C4D", "vpc-1", "10.0.0.5"),
            "ExplicitDeny",
        ),
        ("source vpce: key missing", only_vpce, anon("prod", "GET", "/pets"), "ExplicitDeny"),
        (
            "source vpce: IAM caller via vpce",
            only_vpce,
            iam(dev, "prod", "GET", "/pets").source_vpce("vpce-1a2b3c4d"),
            "Allow",
        ),
        ("vpce list: first", allow_vpce_list, anon("prod", "GET", "/").source_vpce("vpce-1a2b3c4d"), "Allow"),
        (
            "vpce list: cross-account endpoint",
            allow_vpce_list,
            anon("prod", "GET", "/").source_vpce("vpce-0other0acct"),
            "Allow",
        ),
        ("vpce list: unlisted", allow_vpce_list, anon("prod", "GET", "/").source_vpce("vpce-2"), "ImplicitDeny"),
        ("vpce list: missing", allow_vpce_list, anon("prod", "GET", "/"), "ImplicitDeny"),
        ("method/path: GET", method_path, anon("prod", "GET", "/pets/7").source_vpce("vpce-1a2b3c4d"), "Allow@ReadAll"),
        (
            "method/path: POST orders",
            method_path,
            anon("prod", "POST", "/orders").source_vpce("vpce-1a2b3c4d"),
            "Allow@WriteOrders",
        ),
        (
            "method/path: POST pets",
            method_path,
            anon("prod", "POST", "/pets").source_vpce("vpce-1a2b3c4d"),
            "ImplicitDeny",
        ),
        (
            "method/path: GET, wrong vpce",
            method_path,
            anon("prod", "GET", "/pets").source_vpce("vpce-9"),
            "ExplicitDeny@OnlyVpce",
        ),
        (
            "method/path: dev stage",
            method_path,
            anon("dev", "GET", "/pets").source_vpce("vpce-1a2b3c4d"),
            "ImplicitDeny",
        ),
    ];
    for (name, p, req, want) in cases {
        check(name, &decide(p, &req), want);
    }
}

/// "Use VPC endpoint policies for private APIs in API Gateway", examples 1–3
/// (verbatim shapes), plus the custom-domain example shape (example 4 of the
/// current page, reconstructed: an `execute-api:viaDomainArn` ArnEquals
/// condition). Endpoint policies are not attached to an API: no shorthand.
#[test]
fn aws_vpc_endpoint_policy_examples() {
    let two_apis = r#"{"Statement":[{"Principal":"*","Action":["execute-api:Invoke"],"Effect":"Allow","Resource":["arn:aws:execute-api:us-east-1:123412341234:a1b2c3d4e5/*","arn:aws:execute-api:us-east-1:123412341234:aaaaa11111/*"]}]}"#;
    let get_only = r#"{"Statement":[{"Principal":"*","Action":["execute-api:Invoke"],"Effect":"Allow","Resource":["arn:aws:execute-api:us-east-1:123412341234:a1b2c3d4e5/stageName/GET/*"]}]}"#;
    let one_user = r#"{"Statement":[{"Principal":{"AWS":["arn:aws:iam::123412341234:user/MyUser"]},"Action":["execute-api:Invoke"],"Effect":"Allow","Resource":["arn:aws:execute-api:us-east-1:123412341234:a1b2c3d4e5/*"]}]}"#;
    let via_domain = r#"{"Statement":[{"Principal":"*","Action":"execute-api:Invoke","Effect":"Allow","Resource":["arn:aws:execute-api:us-west-2:111122223333:a1b2c3d4e5/*"],"Condition":{"ArnEquals":{"execute-api:viaDomainArn":"arn:aws:execute-api:us-west-2:111122223333:/domainnames/private.example.com+abcd12"}}}]}"#;
    let default_policy = r#"{"Statement":[{"Action":"*","Effect":"Allow","Principal":"*","Resource":"*"}]}"#;

    let a = ApiRef::new("us-east-1", "123412341234", "a1b2c3d4e5");
    let other = ApiRef::new("us-east-1", "123412341234", "aaaaa11111");
    let third = ApiRef::new("us-east-1", "123412341234", "bbbbb22222");
    let r = |api: &ApiRef, p: CallerPrincipal, stage: &str, m: &str, path: &str| {
        RequestContext::new(p, execute_api_arn(api, stage, m, path))
    };
    let west = ApiRef::new("us-west-2", "111122223333", "a1b2c3d4e5");
    let domain = "arn:aws:execute-api:us-west-2:111122223333:/domainnames/private.example.com+abcd12";
    let my_user = || CallerPrincipal::from_text("arn:aws:iam::123412341234:user/MyUser");
    let cases: Vec<(&str, &str, RequestContext, &str)> = vec![
        ("two APIs: first", two_apis, r(&a, CallerPrincipal::Anonymous, "prod", "GET", "/"), "Allow"),
        ("two APIs: second", two_apis, r(&other, CallerPrincipal::Anonymous, "prod", "DELETE", "/x"), "Allow"),
        ("two APIs: third API", two_apis, r(&third, CallerPrincipal::Anonymous, "prod", "GET", "/"), "ImplicitDeny"),
        ("GET only: GET", get_only, r(&a, CallerPrincipal::Anonymous, "stageName", "GET", "/pets"), "Allow"),
        ("GET only: POST", get_only, r(&a, CallerPrincipal::Anonymous, "stageName", "POST", "/pets"), "ImplicitDeny"),
        ("GET only: other stage", get_only, r(&a, CallerPrincipal::Anonymous, "prod", "GET", "/pets"), "ImplicitDeny"),
        ("one user: MyUser", one_user, r(&a, my_user(), "prod", "GET", "/"), "Allow"),
        (
            "one user: anonymous (unsigned / bearer token)",
            one_user,
            r(&a, CallerPrincipal::Anonymous, "prod", "GET", "/"),
            "ImplicitDeny",
        ),
        (
            "one user: other user",
            one_user,
            r(&a, CallerPrincipal::from_text("arn:aws:iam::123412341234:user/Other"), "prod", "GET", "/"),
            "ImplicitDeny",
        ),
        (
            "domain: through the domain",
            via_domain,
            r(&west, CallerPrincipal::Anonymous, "prod", "GET", "/").with_key("execute-api:viaDomainArn", domain),
            "Allow",
        ),
        (
            "domain: through another domain",
            via_domain,
            r(&west, CallerPrincipal::Anonymous, "prod", "GET", "/").with_key(
                "execute-api:viaDomainArn",
                "arn:aws:execute-api:us-west-2:111122223333:/domainnames/other+x",
            ),
            "ImplicitDeny",
        ),
        (
            "domain: direct call (key absent)",
            via_domain,
            r(&west, CallerPrincipal::Anonymous, "prod", "GET", "/").without_key("execute-api:viaDomainArn"),
            "ImplicitDeny",
        ),
        (
            "domain: unknown whether via domain",
            via_domain,
            r(&west, CallerPrincipal::Anonymous, "prod", "GET", "/"),
            "Undetermined",
        ),
        ("default endpoint policy", default_policy, r(&a, CallerPrincipal::Anonymous, "prod", "GET", "/"), "Allow"),
    ];
    for (name, p, req, want) in cases {
        check(name, &evaluate(&parse(p), &req), want);
    }
}

#[test]
fn private_api_two_layers() {
    let resource = parse(&policy(&[
        ALLOW_ALL,
        r#"{"Sid":"OnlyVpce","Effect":"Deny","Principal":"*","Action":"execute-api:Invoke","Resource":"execute-api:/*","Condition":{"StringNotEquals":{"aws:SourceVpce":"vpce-1"}}}"#,
    ]));
    let endpoint_get_only = parse(
        r#"{"Statement":[{"Principal":"*","Action":"execute-api:Invoke","Effect":"Allow","Resource":"arn:aws:execute-api:us-east-1:111122223333:a1b2c3d4e5/*/GET/*"}]}"#,
    );
    let endpoint_deny_dev = parse(
        r#"{"Statement":[{"Principal":"*","Action":"*","Effect":"Allow","Resource":"*"},{"Principal":"*","Action":"*","Effect":"Deny","Resource":"arn:aws:execute-api:*:*:*/dev/*"}]}"#,
    );
    let endpoint_unknown = parse(
        r#"{"Statement":[{"Principal":"*","Action":"*","Effect":"Allow","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-1"}}}]}"#,
    );
    use AccessVerdict as V;
    use PolicyLayer as L;
    let get = anon("prod", "GET", "/pets").source_vpce("vpce-1");
    type Layers<'a> = (&'a str, Option<&'a PolicyDocument>, Option<&'a PolicyDocument>, RequestContext, AccessVerdict);
    let cases: Vec<Layers<'_>> = vec![
        ("both allow (default endpoint)", Some(&resource), None, get.clone(), V::Allowed),
        ("both allow (custom endpoint)", Some(&resource), Some(&endpoint_get_only), get.clone(), V::Allowed),
        ("no resource policy", None, None, get.clone(), V::Denied { layer: L::ResourcePolicy, explicit: false }),
        (
            "resource explicit deny",
            Some(&resource),
            None,
            anon("prod", "GET", "/").source_vpce("vpce-2"),
            V::Denied { layer: L::ResourcePolicy, explicit: true },
        ),
        (
            "endpoint implicit deny",
            Some(&resource),
            Some(&endpoint_get_only),
            anon("prod", "POST", "/").source_vpce("vpce-1"),
            V::Denied { layer: L::EndpointPolicy, explicit: false },
        ),
        (
            "explicit deny outranks implicit",
            Some(&resource),
            Some(&endpoint_get_only),
            anon("prod", "POST", "/").source_vpce("vpce-2"),
            V::Denied { layer: L::ResourcePolicy, explicit: true },
        ),
        (
            "endpoint explicit deny first",
            Some(&resource),
            Some(&endpoint_deny_dev),
            anon("dev", "GET", "/").source_vpce("vpce-2"),
            V::Denied { layer: L::EndpointPolicy, explicit: true },
        ),
        (
            "missing policy beats undetermined endpoint",
            None,
            Some(&endpoint_unknown),
            get.clone(),
            V::Denied { layer: L::ResourcePolicy, explicit: false },
        ),
    ];
    for (name, rp, ep, req, want) in cases {
        let got = evaluate_private_api_access(rp, ep, &api(), &req);
        assert_eq!(got.verdict, want, "{name}: {got:?}");
    }
    let got = evaluate_private_api_access(Some(&resource), Some(&endpoint_unknown), &api(), &get);
    assert!(matches!(got.verdict, V::Undetermined { layer: L::EndpointPolicy, .. }), "{got:?}");
    assert_eq!(
        got.resource_policy,
        ResourcePolicyOutcome::Evaluated {
            decision: Decision::Allow { statement: StatementRef { index: 0, sid: Some("AllowAll".into()) } }
        }
    );
    // The outcome serializes for reports.
    let json = serde_json::to_string(&got).unwrap_or_default();
    assert!(json.contains("\"verdict\":\"Undetermined\""), "{json}");
}

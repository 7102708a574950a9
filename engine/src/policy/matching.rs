//! Wildcard, action, resource and ARN matching.
//!
//! IAM uses one tiny pattern language everywhere: `*` matches any run of
//! characters (including the empty run) and `?` matches exactly one character.
//! There are no character classes and no escapes. What differs between the
//! places a pattern appears is only *case* and *segmenting*:
//!
//! * **Actions** (`Action` / `NotAction`) compare case-insensitively
//!   (`execute-api:invoke` equals `execute-api:Invoke`).
//! * **Resources** (`Resource` / `NotResource`) compare case-sensitively over the
//!   whole ARN string; a `*` may run across `/` and `:` (so `arn:aws:execute-api:*`
//!   covers every execute-api ARN, and `…:api/*` covers every stage, method and path).
//! * **ARN condition operators** (`ArnEquals`, `ArnLike`, …) compare each of the six
//!   colon-delimited ARN components separately: IAM's documentation states that a
//!   `*` there does *not* run across a `:` ("Each of the six colon-delimited
//!   components of the ARN is checked separately").
//!
//! The matcher is iterative (no recursion) and runs in O(pattern × text) in the
//! worst case, so hostile inputs cannot blow the stack.

/// Matches `text` against an IAM wildcard `pattern` (`*` = any run, `?` = one char).
///
/// With `ignore_case`, both sides are compared after Unicode lower-casing of each
/// character (IAM actions and `…IgnoreCase` operators).
pub fn wildcard_match(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let eq = |a: char, b: char| {
        if ignore_case { a == b || a.to_lowercase().eq(b.to_lowercase()) } else { a == b }
    };
    // Classic greedy glob with single backtrack point: on mismatch, retry from the
    // last `*` consuming one more text character. Correct for `*`/`?` globs.
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<usize> = None;
    let mut star_ti = 0usize;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            star_ti = ti;
            pi += 1;
        } else if pi < p.len() && (p[pi] == '?' || eq(p[pi], t[ti])) {
            pi += 1;
            ti += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            star_ti += 1;
            ti = star_ti;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// `Action` element matching: IAM action names are case-insensitive, and a
/// pattern may use `*` / `?` anywhere (`execute-api:*`, `*`, `execute-api:In*`).
pub fn action_matches(pattern: &str, action: &str) -> bool {
    wildcard_match(pattern, action, true)
}

/// `Resource` element matching: case-sensitive over the whole ARN, `*` may cross
/// `/` and `:`.
pub fn resource_matches(pattern: &str, resource: &str) -> bool {
    wildcard_match(pattern, resource, false)
}

/// Splits an ARN into its six colon-delimited components
/// (`arn`, partition, service, region, account, resource). The resource
/// component keeps any further colons. Returns `None` for strings with fewer
/// than six components.
pub fn split_arn(arn: &str) -> Option<[&str; 6]> {
    let mut parts = arn.splitn(6, ':');
    let a = parts.next()?;
    let b = parts.next()?;
    let c = parts.next()?;
    let d = parts.next()?;
    let e = parts.next()?;
    let f = parts.next()?;
    Some([a, b, c, d, e, f])
}

/// `ArnEquals` / `ArnLike` matching (IAM documents the two as identical):
/// component-wise, case-sensitive wildcard matching. `None` if the *pattern*
/// is not a six-component ARN (the caller decides how to report that); a
/// request value that is not an ARN simply does not match.
pub fn arn_condition_matches(pattern: &str, value: &str) -> Option<bool> {
    let pat = split_arn(pattern)?;
    let Some(val) = split_arn(value) else {
        return Some(false);
    };
    Some(pat.iter().zip(val.iter()).all(|(p, v)| wildcard_match(p, v, false)))
}

/// The account id of an IAM / STS principal ARN (`arn:aws:iam::123456789012:user/x`
/// → `123456789012`), if it has one.
pub fn arn_account(arn: &str) -> Option<&str> {
    let parts = split_arn(arn)?;
    if parts[0] != "arn" || parts[4].is_empty() {
        return None;
    }
    Some(parts[4])
}

/// True for a 12-digit AWS account id.
pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// For an account-root principal ARN (`arn:{partition}:iam::{account}:root`)
/// returns the account id.
pub fn account_root_arn_account(arn: &str) -> Option<&str> {
    let parts = split_arn(arn)?;
    if parts[0] == "arn" && parts[2] == "iam" && parts[3].is_empty() && parts[5] == "root" {
        Some(parts[4])
    } else {
        None
    }
}

/// For an STS assumed-role session ARN
/// (`arn:{partition}:sts::{account}:assumed-role/{role-name}/{session}`) returns
/// `(partition, account, role-name)`.
pub fn assumed_role_parts(arn: &str) -> Option<(&str, &str, &str)> {
    let parts = split_arn(arn)?;
    if parts[0] != "arn" || parts[2] != "sts" {
        return None;
    }
    let rest = parts[5].strip_prefix("assumed-role/")?;
    let (role, session) = rest.split_once('/')?;
    if role.is_empty() || session.is_empty() {
        return None;
    }
    Some((parts[1], parts[4], role))
}

/// For an IAM role ARN (`arn:{partition}:iam::{account}:role/{path/}{name}`)
/// returns `(partition, account, role-name)`; the name is the last path segment.
pub fn role_arn_parts(arn: &str) -> Option<(&str, &str, &str)> {
    let parts = split_arn(arn)?;
    if parts[0] != "arn" || parts[2] != "iam" {
        return None;
    }
    let rest = parts[5].strip_prefix("role/")?;
    let name = rest.rsplit('/').next()?;
    if name.is_empty() {
        return None;
    }
    Some((parts[1], parts[4], name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_table() {
        // (pattern, text, ignore_case, expected)
        let cases: &[(&str, &str, bool, bool)] = &[
            ("*", "", false, true),
            ("*", "anything/at:all", false, true),
            ("", "", false, true),
            ("", "a", false, false),
            ("a*", "a", false, true),
            ("a*b", "ab", false, true),
            ("a*b", "axxb", false, true),
            ("a*b", "axxbc", false, false),
            ("a?c", "abc", false, true),
            ("a?c", "ac", false, false),
            ("a?c", "abbc", false, false),
            ("?", "", false, false),
            ("**", "x", false, true),
            ("*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false, false),
            ("ABC", "abc", false, false),
            ("ABC", "abc", true, true),
            ("a*?", "a", false, false),
            ("a*?", "ab", false, true),
            // `*` crosses `/` and `:`.
            ("arn:aws:execute-api:*", "arn:aws:execute-api:us-east-1:1:a/b/GET/c", false, true),
            // Non-ASCII is compared per character, not per byte.
            ("caf?", "café", false, true),
        ];
        for (p, t, ic, want) in cases {
            assert_eq!(wildcard_match(p, t, *ic), *want, "pattern {p:?} text {t:?} ic={ic}");
        }
    }

    #[test]
    fn execute_api_resource_boundaries() {
        let base = "arn:aws:execute-api:us-east-1:111122223333:a1b2c3d4e5";
        let get = format!("{base}/prod/GET/pets");
        let post = format!("{base}/prod/POST/pets");
        let root = format!("{base}/prod/GET/");
        let cases: Vec<(String, &str, bool)> = vec![
            (format!("{base}/*/GET/*"), get.as_str(), true),
            (format!("{base}/*/GET/*"), post.as_str(), false),
            (format!("{base}/*/GET/*"), root.as_str(), true),
            (format!("{base}/prod/GET/pets"), get.as_str(), true),
            (format!("{base}/prod/GET/pets/*"), get.as_str(), false),
            (format!("{base}/prod/P?ST/*"), post.as_str(), true),
            (format!("{base}/prod/P?ST/*"), get.as_str(), false),
            (format!("{base}/prod/get/*"), get.as_str(), false), // case-sensitive
            (format!("{base}/*"), get.as_str(), true),
            ("arn:aws:execute-api:*:*:*".to_string(), get.as_str(), true),
            ("arn:aws:execute-api:us-east-1:111122223333:*/prod/*".to_string(), get.as_str(), true),
            ("arn:aws:execute-api:eu-west-1:*".to_string(), get.as_str(), false),
        ];
        for (p, r, want) in cases {
            assert_eq!(resource_matches(&p, r), want, "pattern {p} resource {r}");
        }
    }

    #[test]
    fn actions_are_case_insensitive() {
        assert!(action_matches("execute-api:invoke", "execute-api:Invoke"));
        assert!(action_matches("EXECUTE-API:*", "execute-api:Invoke"));
        assert!(action_matches("execute-api:In?oke", "execute-api:Invoke"));
        assert!(!action_matches("execute-api:ManageConnections", "execute-api:Invoke"));
        assert!(!action_matches("s3:*", "execute-api:Invoke"));
    }

    #[test]
    fn arn_condition_is_component_wise() {
        // The IAM docs' own example: StringLike would match, ArnLike must not.
        let pat = "arn:aws:someservice:*:111122223333:finance/*";
        let val = "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt";
        assert!(wildcard_match(pat, val, false));
        assert_eq!(arn_condition_matches(pat, val), Some(false));
        assert_eq!(arn_condition_matches("arn:aws:iam::*:role/app", "arn:aws:iam::444455556666:role/app"), Some(true));
        assert_eq!(arn_condition_matches("not-an-arn", "arn:aws:iam::1:root"), None);
        assert_eq!(arn_condition_matches("arn:aws:iam::*:*", "vpce-123"), Some(false));
    }

    #[test]
    fn principal_arn_helpers() {
        assert_eq!(account_root_arn_account("arn:aws:iam::123456789012:root"), Some("123456789012"));
        assert_eq!(account_root_arn_account("arn:aws:iam::123456789012:user/root"), None);
        assert_eq!(
            assumed_role_parts("arn:aws:sts::123456789012:assumed-role/app/sess"),
            Some(("aws", "123456789012", "app"))
        );
        assert_eq!(role_arn_parts("arn:aws:iam::123456789012:role/team/app"), Some(("aws", "123456789012", "app")));
        assert!(is_account_id("123456789012"));
        assert!(!is_account_id("12345678901a"));
        assert_eq!(arn_account("arn:aws:iam::123456789012:user/a"), Some("123456789012"));
    }
}

//! The same input rules as the CRD's OpenAPI patterns, for the places the apiserver does not
//! guard: command-line flags of `kubectl pvtapi check --local` and `pvtapi-operator probe`.
//!
//! Each validator returns an error that names the field and the bad value. A test in this module
//! checks every validator against the pattern the CRD declares, so the two cannot drift.

use std::fmt;

/// A value that does not fit its field's rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidValue {
    /// The field or flag, e.g. `api id`.
    pub field: &'static str,
    /// The value as given.
    pub value: String,
    /// What the value must look like.
    pub expected: &'static str,
}

impl fmt::Display for InvalidValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {} {:?}: expected {}", self.field, self.value, self.expected)
    }
}

impl std::error::Error for InvalidValue {}

fn check(ok: bool, field: &'static str, value: &str, expected: &'static str) -> Result<String, InvalidValue> {
    if ok { Ok(value.to_owned()) } else { Err(InvalidValue { field, value: value.to_owned(), expected }) }
}

/// `^[a-z0-9]{10}$`
pub fn api_id(value: &str) -> Result<String, InvalidValue> {
    let ok = value.len() == 10 && value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    check(ok, "api id", value, "10 lowercase letters or digits, e.g. abcde12345")
}

/// `^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}$`
pub fn region(value: &str) -> Result<String, InvalidValue> {
    fn ok(v: &str) -> bool {
        let parts: Vec<&str> = v.split('-').collect();
        let lower = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase());
        let number = |s: &str| (1..=2).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
        let partition = |s: &str| s == "gov" || (s.starts_with("iso") && s.len() <= 4 && lower(s));
        match parts.as_slice() {
            [geo, area, n] => geo.len() == 2 && lower(geo) && lower(area) && number(n),
            [geo, part, area, n] => geo.len() == 2 && lower(geo) && partition(part) && lower(area) && number(n),
            _ => false,
        }
    }
    check(ok(value), "region", value, "an AWS region such as us-east-1")
}

/// `^[A-Za-z0-9_-]+$`, 1 to 128 characters.
pub fn stage(value: &str) -> Result<String, InvalidValue> {
    let ok =
        (1..=128).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    check(ok, "stage", value, "1-128 letters, digits, '_' or '-'")
}

/// `^/[^\s?#]*$`, at most 1024 characters.
pub fn path(value: &str) -> Result<String, InvalidValue> {
    let ok = value.starts_with('/')
        && value.len() <= 1024
        && !value.chars().any(|c| c.is_whitespace() || c == '?' || c == '#');
    check(ok, "path", value, "a path starting with '/' without spaces, '?' or '#'")
}

/// `^vpce-[0-9a-f]{8,17}$`
pub fn vpc_endpoint_id(value: &str) -> Result<String, InvalidValue> {
    let ok = value.strip_prefix("vpce-").is_some_and(|hex| {
        (8..=17).contains(&hex.len()) && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    check(ok, "VPC endpoint id", value, "vpce- followed by 8 to 17 lowercase hex digits, e.g. vpce-0123456789abcdef0")
}

/// `^[0-9]{12}$`
pub fn account_id(value: &str) -> Result<String, InvalidValue> {
    let ok = value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit());
    check(ok, "account id", value, "12 digits")
}

/// `^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}$`
pub fn role_arn(value: &str) -> Result<String, InvalidValue> {
    let ok = (|| {
        let rest = value.strip_prefix("arn:aws")?;
        let (partition_tail, rest) = rest.split_once(":iam::")?;
        let (account, name) = rest.split_once(":role/")?;
        // `\w` as the apiserver (Go regexp) reads it: ASCII only.
        let name_ok = (1..=512).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_+=,.@/-".contains(&b));
        Some(
            partition_tail.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
                && account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && name_ok,
        )
    })()
    .unwrap_or(false);
    check(ok, "role ARN", value, "arn:aws:iam::ACCOUNT:role/NAME, e.g. arn:aws:iam::123456789012:role/pvtapi-reader")
}

/// The account of a role ARN accepted by [`role_arn`].
pub fn role_account(role_arn: &str) -> Option<&str> {
    role_arn.split(':').nth(4)
}

/// A DNS hostname: labels of letters, digits and '-', dot-separated, at most 253 characters.
pub fn hostname(value: &str) -> Result<String, InvalidValue> {
    let v = value.strip_suffix('.').unwrap_or(value);
    let ok = !v.is_empty()
        && v.len() <= 253
        && v.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    check(ok, "hostname", value, "a DNS name such as vpce-0123-abcd.execute-api.us-east-1.vpce.amazonaws.com")
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::CustomResourceExt;

    /// The pattern the CRD declares at `path` (e.g. `spec.api.id`).
    fn crd_pattern(path: &[&str]) -> regex::bytes::Regex {
        let crd = serde_json::to_value(crate::PrivateApiConnectivityCheck::crd()).unwrap();
        let mut node = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        for p in path {
            node = &node["properties"][p];
        }
        // Go's regexp (the apiserver's) treats `\w` and `\d` as ASCII: so does this.
        regex::bytes::RegexBuilder::new(node["pattern"].as_str().unwrap_or_else(|| panic!("no pattern at {path:?}")))
            .unicode(false)
            .build()
            .unwrap()
    }

    fn agree(path: &[&str], validator: fn(&str) -> Result<String, InvalidValue>, samples: &[&str]) {
        let re = crd_pattern(path);
        for s in samples {
            assert_eq!(
                re.is_match(s.as_bytes()),
                validator(s).is_ok(),
                "{path:?}: CRD pattern and validator disagree on {s:?}"
            );
        }
    }

    #[test]
    fn validators_agree_with_the_crd_patterns() {
        agree(
            &["spec", "api", "id"],
            api_id,
            &["abcde12345", "ABCDE12345", "abcde1234", "abcde123456", "abcde-1234", ""],
        );
        agree(
            &["spec", "api", "region"],
            region,
            &[
                "us-east-1",
                "eu-central-2",
                "us-gov-west-1",
                "us-isob-east-1",
                "ap-southeast-10",
                "useast1",
                "US-EAST-1",
                "us-east-",
                "u-east-1",
                "us-foo-bar-1",
                "us-east-123",
            ],
        );
        agree(&["spec", "api", "stage"], stage, &["prod", "v1_beta-2", "pr od", "", "a/b", "$default"]);
        agree(&["spec", "api", "path"], path, &["/", "/health", "/a/{id}", "health", "/a b", "/x?y", "/x#y", ""]);
        agree(
            &["spec", "endpoint", "vpcEndpointId"],
            vpc_endpoint_id,
            &[
                "vpce-0123456789abcdef0",
                "vpce-12345678",
                "vpce-1234567",
                "vpce-0123456789abcdef01",
                "vpce-ABCDEF12",
                "vpc-0123456789",
                "vpce-",
            ],
        );
        agree(
            &["spec", "api", "accountId"],
            account_id,
            &["123456789012", "12345678901", "1234567890123", "12345678901a"],
        );
        agree(
            &["spec", "aws", "apiRoleArn"],
            role_arn,
            &[
                "arn:aws:iam::123456789012:role/pvtapi-reader",
                "arn:aws-cn:iam::123456789012:role/path/to/r_1+=,.@-",
                "arn:aws-us-gov:iam::123456789012:role/r",
                "arn:aws:iam::123456789012:role/",
                "arn:aws:iam::12345678901:role/r",
                "arn:aws:iam::123456789012:user/r",
                "arn:aws:sts::123456789012:role/r",
                "arn:AWS:iam::123456789012:role/r",
                "arn:aws:iam::123456789012:role/a b",
                "arn:aws:iam::123456789012:role/r:x",
                "arn:aws:iam:us-east-1:123456789012:role/r",
                "arn:aws:iam::123456789012:role/rôle",
            ],
        );
        assert_eq!(role_account("arn:aws:iam::123456789012:role/r"), Some("123456789012"));
    }

    #[test]
    fn errors_name_the_field_and_value() {
        let err = api_id("ABC").unwrap_err();
        assert_eq!(err.to_string(), "invalid api id \"ABC\": expected 10 lowercase letters or digits, e.g. abcde12345");
        assert!(vpc_endpoint_id("vpc-1").unwrap_err().to_string().starts_with("invalid VPC endpoint id \"vpc-1\""));
        assert!(hostname("a..b").is_err());
        assert!(hostname("vpce-0123-abcd.execute-api.us-east-1.vpce.amazonaws.com").is_ok());
    }
}

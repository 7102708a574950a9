//! Pure classification of what the network said: addresses, TCP errors and API Gateway answers.
//!
//! The point of the probe is not "it failed" but *which* failure: API Gateway's 403 alone has
//! six meanings (design.md §3), told apart only by the body message, its casing-insensitive key,
//! the `x-amzn-ErrorType` header and a trailing "with an explicit deny". Keeping this pure means
//! each signature is a table test.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// Where an address points.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum AddressClass {
    /// RFC 1918, RFC 6598 shared space (VPC secondary CIDRs), IPv6 ULA: inside a VPC.
    Private,
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// 169.254.0.0/16, fe80::/10.
    LinkLocal,
    /// Anything else: the traffic would leave the VPC.
    Public,
}

/// Classifies an address.
pub fn classify_address(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            if v4.is_loopback() {
                AddressClass::Loopback
            } else if v4.is_link_local() {
                AddressClass::LinkLocal
            } else if v4.is_private() || (o[0] == 100 && (64..128).contains(&o[1])) {
                AddressClass::Private
            } else {
                AddressClass::Public
            }
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return classify_address(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            if v6.is_loopback() {
                AddressClass::Loopback
            } else if first & 0xffc0 == 0xfe80 {
                AddressClass::LinkLocal
            } else if first & 0xfe00 == 0xfc00 {
                AddressClass::Private
            } else {
                AddressClass::Public
            }
        }
    }
}

/// The outcome of one TCP connect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum TcpOutcome {
    Connected,
    /// RST: nothing listens there; not a VPC endpoint.
    Refused,
    /// No answer within the timeout: packets dropped (security group, NACL, firewall).
    Timeout,
    /// The local stack has no route (or the host/network is unreachable per ICMP).
    Unreachable,
    /// Any other socket error.
    Error,
}

/// Classifies a connect error.
pub fn classify_connect_error(err: &std::io::Error) -> TcpOutcome {
    use std::io::ErrorKind;
    match err.kind() {
        ErrorKind::ConnectionRefused => TcpOutcome::Refused,
        ErrorKind::TimedOut => TcpOutcome::Timeout,
        ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable | ErrorKind::AddrNotAvailable => {
            TcpOutcome::Unreachable
        }
        _ => TcpOutcome::Error,
    }
}

/// What API Gateway (or whatever answered) said to the invoke.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub enum InvokeClass {
    /// A status in `expectedStatuses`.
    Ok,
    /// A status outside `expectedStatuses` that no other class explains.
    UnexpectedStatus,
    /// 403 `{"message":"Forbidden"}`: wrong host, public API through private DNS, API key, WAF.
    Forbidden,
    /// 403 "Missing Authentication Token": stage, path or method not deployed.
    MissingAuthenticationToken,
    /// 403 "User: anonymous is not authorized …": resource or endpoint policy, implicit deny.
    AnonymousNotAuthorized,
    /// 403 "… with an explicit deny": a Deny statement matched.
    ExplicitDeny,
    /// 403 Incomplete/InvalidSignatureException: a non-SigV4 `Authorization` header.
    SignatureError,
    /// 403 "User is not authorized to access this resource": Lambda authorizer denied.
    AuthorizerDenied,
    /// 401: authorizer or IAM authentication required.
    Unauthorized,
    /// 429.
    Throttled,
    /// 5xx.
    ServerError,
    /// No complete answer within the timeout.
    Timeout,
    /// The connection failed or broke before an answer (including malformed HTTP).
    ConnectionError,
}

/// The parts of an HTTP answer classification looks at.
#[derive(Clone, Debug, Default)]
pub struct InvokeAnswer<'a> {
    pub status: u16,
    /// `x-amzn-ErrorType`, when present.
    pub error_type: Option<&'a str>,
    /// The body as read (capped).
    pub body: &'a [u8],
}

/// The `message` (or `Message`) field of a JSON error body, any casing.
pub fn error_message(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let obj = value.as_object()?;
    obj.iter().find(|(k, _)| k.eq_ignore_ascii_case("message")).and_then(|(_, v)| v.as_str()).map(str::to_owned)
}

/// Classifies an answer against the expected statuses.
pub fn classify_answer(answer: &InvokeAnswer<'_>, expected: &[u16]) -> InvokeClass {
    if expected.contains(&answer.status) {
        return InvokeClass::Ok;
    }
    let message = error_message(answer.body).unwrap_or_default();
    let lower_message = message.to_ascii_lowercase();
    let error_type = answer.error_type.unwrap_or("").split(':').next().unwrap_or("").trim().to_ascii_lowercase();
    match answer.status {
        403 => {
            if error_type == "incompletesignatureexception" || error_type == "invalidsignatureexception" {
                InvokeClass::SignatureError
            } else if lower_message.starts_with("missing authentication token")
                || error_type == "missingauthenticationtokenexception"
            {
                InvokeClass::MissingAuthenticationToken
            } else if lower_message.contains("is not authorized to perform")
                && lower_message.trim_end_matches('.').ends_with("with an explicit deny")
            {
                InvokeClass::ExplicitDeny
            } else if lower_message.starts_with("user: anonymous is not authorized to perform") {
                InvokeClass::AnonymousNotAuthorized
            } else if lower_message.starts_with("user is not authorized to access this resource") {
                InvokeClass::AuthorizerDenied
            } else if lower_message.contains("authorization header requires") || lower_message.contains("signature") {
                InvokeClass::SignatureError
            } else {
                InvokeClass::Forbidden
            }
        }
        401 => InvokeClass::Unauthorized,
        429 => InvokeClass::Throttled,
        500..=599 => InvokeClass::ServerError,
        _ => InvokeClass::UnexpectedStatus,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers() {
        let anon = br#"{"Message":"User: anonymous is not authorized to perform: execute-api:Invoke on resource: arn:aws:execute-api:us-east-1:123456789012:abcde12345/prod/GET/health"}"#;
        let anon_deny = br#"{"Message":"User: anonymous is not authorized to perform: execute-api:Invoke on resource: arn:aws:execute-api:us-east-1:123456789012:abcde12345/prod/GET/health with an explicit deny"}"#;
        let cases: Vec<(u16, Option<&str>, &[u8], InvokeClass)> = vec![
            (200, None, b"ok", InvokeClass::Ok),
            (204, None, b"", InvokeClass::UnexpectedStatus),
            (403, Some("ForbiddenException"), br#"{"message":"Forbidden"}"#, InvokeClass::Forbidden),
            (
                403,
                Some("MissingAuthenticationTokenException"),
                br#"{"message":"Missing Authentication Token"}"#,
                InvokeClass::MissingAuthenticationToken,
            ),
            (403, None, br#"{"MESSAGE":"Missing Authentication Token"}"#, InvokeClass::MissingAuthenticationToken),
            (403, Some("AccessDeniedException"), anon, InvokeClass::AnonymousNotAuthorized),
            (403, Some("AccessDeniedException"), anon_deny, InvokeClass::ExplicitDeny),
            (
                403,
                Some("IncompleteSignatureException"),
                br#"{"message":"Authorization header requires 'Credential' parameter."}"#,
                InvokeClass::SignatureError,
            ),
            (403, Some("InvalidSignatureException:http://internal.amazon.com/"), b"{}", InvokeClass::SignatureError),
            (
                403,
                None,
                br#"{"message":"Authorization header requires 'Signature' parameter."}"#,
                InvokeClass::SignatureError,
            ),
            (
                403,
                None,
                br#"{"Message":"User is not authorized to access this resource with an explicit deny"}"#,
                InvokeClass::AuthorizerDenied,
            ),
            (403, None, b"<html>blocked by WAF</html>", InvokeClass::Forbidden),
            (401, None, br#"{"message":"Unauthorized"}"#, InvokeClass::Unauthorized),
            (429, None, br#"{"message":"Too Many Requests"}"#, InvokeClass::Throttled),
            (500, None, b"", InvokeClass::ServerError),
            (502, None, br#"{"message": "Internal server error"}"#, InvokeClass::ServerError),
            (404, None, b"", InvokeClass::UnexpectedStatus),
        ];
        for (status, error_type, body, want) in cases {
            let got = classify_answer(&InvokeAnswer { status, error_type, body }, &[200]);
            assert_eq!(got, want, "{status} {error_type:?} {}", String::from_utf8_lossy(body));
        }
        assert_eq!(
            classify_answer(&InvokeAnswer { status: 403, error_type: None, body: b"" }, &[200, 403]),
            InvokeClass::Ok
        );
    }

    #[test]
    fn addresses() {
        let cases = [
            ("10.0.1.5", AddressClass::Private),
            ("172.31.0.2", AddressClass::Private),
            ("192.168.1.1", AddressClass::Private),
            ("100.64.3.4", AddressClass::Private),
            ("100.128.0.1", AddressClass::Public),
            ("52.94.1.1", AddressClass::Public),
            ("127.0.0.9", AddressClass::Loopback),
            ("169.254.169.253", AddressClass::LinkLocal),
            ("::1", AddressClass::Loopback),
            ("fd12::1", AddressClass::Private),
            ("fe80::1", AddressClass::LinkLocal),
            ("2600:1f18::1", AddressClass::Public),
            ("::ffff:10.0.0.1", AddressClass::Private),
        ];
        for (ip, want) in cases {
            assert_eq!(classify_address(ip.parse().unwrap()), want, "{ip}");
        }
    }

    #[test]
    fn connect_errors() {
        use std::io::{Error, ErrorKind};
        assert_eq!(classify_connect_error(&Error::from(ErrorKind::ConnectionRefused)), TcpOutcome::Refused);
        assert_eq!(classify_connect_error(&Error::from(ErrorKind::TimedOut)), TcpOutcome::Timeout);
        assert_eq!(classify_connect_error(&Error::from(ErrorKind::NetworkUnreachable)), TcpOutcome::Unreachable);
        assert_eq!(classify_connect_error(&Error::from(ErrorKind::PermissionDenied)), TcpOutcome::Error);
    }

    #[test]
    fn error_message_is_case_insensitive_and_tolerant() {
        assert_eq!(error_message(br#"{"Message":"x"}"#).as_deref(), Some("x"));
        assert_eq!(error_message(br#"{"message":"y"}"#).as_deref(), Some("y"));
        assert_eq!(error_message(b"\xff\xfe binary"), None);
        assert_eq!(error_message(br#"["not an object"]"#), None);
    }
}

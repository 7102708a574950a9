//! Reading a probe pod's termination message back into a [`ProbeReport`] (what the operator does
//! with it; here, next to the report type, so the parser is tested and fuzzed without the operator).
//!
//! Why strict: the message is written by a container, so it is untrusted input — an image
//! swapped by `spec.probe.image`, a crashed probe, or anything that can write
//! `/dev/termination-log` in a pod. The operator turns it into status that alerts and GitOps
//! tools read, so it accepts exactly the documented report (`pvtapi.io/probe-report/v1`) and
//! nothing else: bounded size, valid JSON, no unknown fields anywhere, the right version, and a
//! target that is this check's. A message that fails any of these is a probe-run failure
//! (`ProbeFailed`), never a guess. Error texts never echo the message itself.

use pvtapi_crds::PrivateApiConnectivityCheckSpec;

use super::report::{ProbeReport, REPORT_VERSION};

/// The kubelet keeps at most 4,096 bytes of a termination message; anything longer is not a
/// report the probe wrote.
pub const MAX_TERMINATION_MESSAGE_BYTES: usize = 4096;

/// Why a termination message is not a usable report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error("the probe left no report (empty termination message)")]
    Empty,
    #[error("the report is {0} bytes, over the {MAX_TERMINATION_MESSAGE_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("the report is not valid probe-report JSON: {0}")]
    Malformed(String),
    #[error("the report has fields the probe never writes: {0}")]
    UnknownFields(String),
    /// The version as a quoted, escaped string, cut to 64 characters.
    #[error("the report version is {0}, expected {REPORT_VERSION:?}")]
    WrongVersion(String),
    #[error("the report is for another target: {0} differs from the check's spec")]
    TargetMismatch(&'static str),
}

/// Printable, bounded text from untrusted input (for error messages).
fn clean(text: &str, max: usize) -> String {
    let mut out: String = text.chars().filter(|c| !c.is_control()).take(max).collect();
    if text.chars().count() > max {
        out.push('…');
    }
    out
}

/// Parses a termination message as a probe report, strictly (see the module docs).
pub fn parse_probe_report(message: &str) -> Result<ProbeReport, ReportError> {
    if message.len() > MAX_TERMINATION_MESSAGE_BYTES {
        return Err(ReportError::TooLarge(message.len()));
    }
    let trimmed = message.trim();
    if trimmed.is_empty() {
        return Err(ReportError::Empty);
    }
    let mut unknown = Vec::new();
    let mut de = serde_json::Deserializer::from_str(trimmed);
    let report: ProbeReport = serde_ignored::deserialize(&mut de, |path| unknown.push(path.to_string()))
        .map_err(|e| ReportError::Malformed(clean(&e.to_string(), 160)))?;
    de.end().map_err(|e| ReportError::Malformed(clean(&e.to_string(), 160)))?;
    if !unknown.is_empty() {
        unknown.truncate(5);
        return Err(ReportError::UnknownFields(clean(&unknown.join(", "), 200)));
    }
    if report.version != REPORT_VERSION {
        // Escaped first, then cut: escaping after the cut let 64 invisible characters become
        // 64 `\u{200b}`s, over 500 characters of error text.
        return Err(ReportError::WrongVersion(clean(&format!("{:?}", report.version), 64)));
    }
    Ok(report)
}

/// The report must be about this check: a report for another API or endpoint would put a
/// stranger's result into this check's status.
pub fn check_target(report: &ProbeReport, spec: &PrivateApiConnectivityCheckSpec) -> Result<(), ReportError> {
    let t = &report.target;
    let api = &spec.api;
    let pairs: [(&'static str, &str, &str); 5] = [
        ("target.apiId", &t.api_id, &api.id),
        ("target.region", &t.region, &api.region),
        ("target.stage", &t.stage, &api.stage),
        ("target.path", &t.path, &api.path),
        ("target.vpceId", &t.vpce_id, &spec.endpoint.vpc_endpoint_id),
    ];
    for (field, got, want) in pairs {
        if got != want {
            return Err(ReportError::TargetMismatch(field));
        }
    }
    if !t.method.eq_ignore_ascii_case(api.method.as_str()) {
        return Err(ReportError::TargetMismatch("target.method"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real-shaped report, as `pvtapi-operator probe` prints it.
    fn good() -> String {
        serde_json::json!({
            "version": REPORT_VERSION,
            "target": {"apiId": "abcde12345", "region": "us-east-1", "stage": "prod", "path": "/health", "method": "GET", "vpceId": "vpce-0123456789abcdef0"},
            "access": {"mode": "privateDns", "reason": "as configured"},
            "resolver": "system",
            "dns": [{"host": "abcde12345.execute-api.us-east-1.amazonaws.com", "role": "api", "outcome": "resolved",
                     "addresses": [{"ip": "10.0.1.10", "class": "private"}], "ttl": 60, "ms": 3}],
            "dnsComparison": "same",
            "tcp": [{"ip": "10.0.1.10", "port": 443, "outcome": "connected", "ms": 1}],
            "timings": {"dnsMs": 3, "connectMs": 1, "tlsMs": 5, "ttfbMs": 9, "totalMs": 20}
        })
        .to_string()
    }

    fn spec() -> PrivateApiConnectivityCheckSpec {
        serde_json::from_value(serde_json::json!({
            "api": {"id": "abcde12345", "region": "us-east-1", "stage": "prod", "path": "/health"},
            "endpoint": {"vpcEndpointId": "vpce-0123456789abcdef0"}
        }))
        .expect("spec")
    }

    #[test]
    fn a_real_report_parses_and_matches_its_check() {
        let r = parse_probe_report(&good()).expect("parses");
        assert_eq!(r.target.api_id, "abcde12345");
        check_target(&r, &spec()).expect("same target");
        // Trailing newline as some writers add.
        parse_probe_report(&format!("{}\n", good())).expect("whitespace is fine");
    }

    #[test]
    fn hostile_or_broken_messages_are_rejected_with_a_clear_reason() {
        let unknown_top = good().replacen('{', "{\"extra\":1,", 1);
        let unknown_nested = good().replace("\"ttl\":60", "\"ttl\":60,\"secret\":\"x\"");
        let wrong_version = good().replace(REPORT_VERSION, "pvtapi.io/probe-report/v9");
        type Case = (String, fn(&ReportError) -> bool);
        let cases: Vec<Case> = vec![
            (String::new(), |e| *e == ReportError::Empty),
            ("   \n".into(), |e| *e == ReportError::Empty),
            ("x".repeat(5000), |e| *e == ReportError::TooLarge(5000)),
            ("not json at all".into(), |e| matches!(e, ReportError::Malformed(_))),
            ("[]".into(), |e| matches!(e, ReportError::Malformed(_))),
            ("null".into(), |e| matches!(e, ReportError::Malformed(_))),
            ("{}".into(), |e| matches!(e, ReportError::Malformed(_))),
            (format!("{}{}", good(), "{}"), |e| matches!(e, ReportError::Malformed(_))),
            (good()[..good().len() / 2].to_owned(), |e| matches!(e, ReportError::Malformed(_))),
            (good().replace("\"connected\"", "\"teleported\""), |e| matches!(e, ReportError::Malformed(_))),
            (good().replace("\"ms\":3", "\"ms\":-3"), |e| matches!(e, ReportError::Malformed(_))),
            (unknown_top, |e| matches!(e, ReportError::UnknownFields(f) if f.contains("extra"))),
            (unknown_nested, |e| matches!(e, ReportError::UnknownFields(f) if f.contains("secret"))),
            (wrong_version, |e| matches!(e, ReportError::WrongVersion(_))),
            ("[".repeat(3000), |e| matches!(e, ReportError::Malformed(_))),
        ];
        for (input, ok) in cases {
            let err = parse_probe_report(&input).expect_err("must be rejected");
            assert!(ok(&err), "{:?}… gave {err:?}", input.chars().take(40).collect::<String>());
        }
    }

    #[test]
    fn error_text_never_echoes_the_message() {
        let secret = format!("{{\"version\":\"{}\",\"token\":\"AKIAIOSFODNN7EXAMPLE\"", "\u{1b}[31m");
        let err = parse_probe_report(&secret).expect_err("rejected").to_string();
        assert!(!err.contains("AKIA"), "{err}");
        assert!(!err.contains('\u{1b}'), "{err}");
        assert!(err.len() < 300);
    }

    #[test]
    fn error_text_is_bounded_whatever_the_version_holds() {
        // As JSON text: 64 zero-width spaces, 500 escaped quotes, 1,000 right-to-left overrides.
        for version in ["\u{200b}".repeat(64), "\\\"".repeat(500), "\u{202e}".repeat(1000)] {
            let message = good().replace(REPORT_VERSION, &version);
            let err = parse_probe_report(&message).expect_err("wrong version").to_string();
            assert!(err.chars().count() <= 160, "{} characters: {err}", err.chars().count());
            assert!(err.starts_with("the report version is \""), "{err}");
        }
        let err = parse_probe_report(&good().replace(REPORT_VERSION, "v9")).expect_err("wrong version");
        assert_eq!(err.to_string(), format!("the report version is \"v9\", expected {REPORT_VERSION:?}"));
    }

    #[test]
    fn a_report_for_another_target_is_refused() {
        let mut v: serde_json::Value = serde_json::from_str(&good()).expect("json");
        v["target"]["apiId"] = "zzzzz99999".into();
        let r = parse_probe_report(&v.to_string()).expect("parses");
        assert_eq!(check_target(&r, &spec()), Err(ReportError::TargetMismatch("target.apiId")));
        let r = parse_probe_report(&good().replace("\"GET\"", "\"POST\"")).expect("parses");
        assert_eq!(check_target(&r, &spec()), Err(ReportError::TargetMismatch("target.method")));
    }
}

//! The probe report as the operator reads it from a probe pod's termination message:
//! `probe::untrusted::parse_probe_report` and `check_target`. The message is written by a
//! container, so it is untrusted input (see that module's docs).
//!
//! Input: the termination message (UTF-8, as the Kubernetes API hands it over).
//!
//! Checks: the size limit and the empty message are reported as such; error texts are bounded
//! and have no control characters; an accepted report has the right version and is exactly what
//! the probe would write — serializing it and reading that back gives the same report, also
//! after `bounded` trims it to the report budget; `check_target` accepts a spec made from the
//! report's own target and names the one field that differs in any other.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pvtapi_crds::PrivateApiConnectivityCheckSpec;
use pvtapi_engine::probe::ProbeReport;
use pvtapi_engine::probe::report::{REPORT_BUDGET_BYTES, REPORT_VERSION};
use pvtapi_engine::probe::untrusted::{MAX_TERMINATION_MESSAGE_BYTES, ReportError, check_target, parse_probe_report};

fn spec(
    id: &str,
    region: &str,
    stage: &str,
    path: &str,
    method: &str,
    vpce: &str,
) -> Option<PrivateApiConnectivityCheckSpec> {
    serde_json::from_value(serde_json::json!({
        "api": {"id": id, "region": region, "stage": stage, "path": path, "method": method},
        "endpoint": {"vpcEndpointId": vpce}
    }))
    .ok()
}

/// The report must read back from what the probe would print for it.
fn round_trip(report: &ProbeReport) {
    let json = report.to_json();
    let back: ProbeReport = serde_json::from_str(&json).expect("a report reads back");
    assert_eq!(&back, report, "JSON round trip changed the report");
    if json.len() <= MAX_TERMINATION_MESSAGE_BYTES {
        assert_eq!(parse_probe_report(&json).as_ref(), Ok(report), "the strict parser refused what the probe writes");
    }
}

fn check_targets(report: &ProbeReport) {
    let t = &report.target;
    // The check this report is for: the report's own target (when its method is one a check can
    // have, in any casing).
    let method = t.method.to_ascii_uppercase();
    let Some(own) = spec(&t.api_id, &t.region, &t.stage, &t.path, &method, &t.vpce_id) else { return };
    assert_eq!(check_target(report, &own), Ok(()), "a report is refused for its own target");
    let other = |s: &str| format!("{s}x");
    let cases = [
        ("target.apiId", spec(&other(&t.api_id), &t.region, &t.stage, &t.path, &method, &t.vpce_id)),
        ("target.region", spec(&t.api_id, &other(&t.region), &t.stage, &t.path, &method, &t.vpce_id)),
        ("target.stage", spec(&t.api_id, &t.region, &other(&t.stage), &t.path, &method, &t.vpce_id)),
        ("target.path", spec(&t.api_id, &t.region, &t.stage, &other(&t.path), &method, &t.vpce_id)),
        ("target.vpceId", spec(&t.api_id, &t.region, &t.stage, &t.path, &method, &other(&t.vpce_id))),
        (
            "target.method",
            spec(&t.api_id, &t.region, &t.stage, &t.path, if method == "GET" { "POST" } else { "GET" }, &t.vpce_id),
        ),
    ];
    for (field, spec) in cases {
        let spec = spec.expect("a spec with one field changed");
        assert_eq!(check_target(report, &spec), Err(ReportError::TargetMismatch(field)));
    }
}

fuzz_target!(|data: &[u8]| {
    let message = String::from_utf8_lossy(data);
    let parsed = parse_probe_report(&message);
    let report = match parsed {
        Ok(report) => report,
        Err(err) => {
            if message.len() > MAX_TERMINATION_MESSAGE_BYTES {
                assert_eq!(err, ReportError::TooLarge(message.len()));
            } else if message.trim().is_empty() {
                assert_eq!(err, ReportError::Empty);
            }
            let text = err.to_string();
            assert!(text.chars().count() <= 300, "error text is not bounded: {} chars", text.chars().count());
            assert!(!text.chars().any(char::is_control), "error text has control characters: {text:?}");
            return;
        }
    };
    assert!(message.len() <= MAX_TERMINATION_MESSAGE_BYTES);
    assert_eq!(report.version, REPORT_VERSION);
    round_trip(&report);
    round_trip(&report.clone().bounded(REPORT_BUDGET_BYTES));
    check_targets(&report);

    // The check the samples are about.
    let Some(fixed) = spec("abcde12345", "us-east-1", "prod", "/health", "GET", "vpce-0123456789abcdef0") else {
        panic!("the sample spec parses")
    };
    let t = &report.target;
    let same = t.api_id == "abcde12345"
        && t.region == "us-east-1"
        && t.stage == "prod"
        && t.path == "/health"
        && t.method.eq_ignore_ascii_case("GET")
        && t.vpce_id == "vpce-0123456789abcdef0";
    assert_eq!(check_target(&report, &fixed).is_ok(), same);
});

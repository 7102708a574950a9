//! The URL a workload calls, checked as given (`--invoke-url`, `--header`):
//! `probe::target::InvokeUrl::parse`, `with_header`, and the invoke plan built from it
//! (`Target::plan_for_url`, `Target::hosts`).
//!
//! Input: the URL on the first line, then one `Name: value` header per line.
//!
//! Checks: errors are fixed texts that never repeat the URL (it may carry a password, even when
//! malformed) beyond a well-formed scheme, nor an unsupported header's value (it may be a
//! credential); an accepted URL is https, has a lower-case host, a path starting with `/`, no
//! port 0; the plan connects to that host, sends that path, and its URL reads back to the same host, port and path; the `Host` and
//! `x-apigw-api-id` values are valid header values and the path a valid request target (what
//! `probe::run` builds the request from); the access mode follows the headers and the host; the
//! host is among the names the probe resolves.

#![no_main]

use hyper::header::HeaderValue;
use libfuzzer_sys::fuzz_target;
use pvtapi_crds::{AccessMode, HttpMethod};
use pvtapi_engine::probe::target::{InvokeUrl, Target};

fn target(invoke_url: Option<InvokeUrl>) -> Target {
    Target {
        api_id: "abcde12345".into(),
        region: "us-east-1".into(),
        stage: "prod".into(),
        path: "/health".into(),
        method: HttpMethod::Get,
        vpce_id: "vpce-0123456789abcdef0".into(),
        vpce_dns_names: vec![
            "vpce-0123456789abcdef0-abcdefgh.execute-api.us-east-1.vpce.amazonaws.com".into(),
            "vpce-0123456789abcdef0-abcdefgh-us-east-1a.execute-api.us-east-1.vpce.amazonaws.com".into(),
        ],
        domain_name: None,
        invoke_url,
    }
}

/// `InvokeUrl::parse`'s fixed errors.
const FIXED: &[&str] = &[
    "it is longer than 2048 characters",
    "it contains credentials (user:password@); pass it without them",
    "it is not an absolute URL (expected https://HOST/STAGE/PATH)",
    "it has a fragment (#…), which is never sent; remove it",
    "it has no host",
    "it has an empty host",
];
/// What may follow "it is not a valid URL": the `http` crate's URI errors and parse's own.
const INVALID: &[&str] = &[
    "invalid uri character",
    "invalid scheme",
    "invalid authority",
    "invalid port",
    "invalid format",
    "scheme missing",
    "authority missing",
    "path missing",
    "path does not start with slash",
    "uri too long",
    "empty string",
    "scheme too long",
    "bad port",
    "bad host",
    "bad IPv6 address in brackets",
];

/// Errors never repeat the URL (it may carry a password, even a malformed one): an error is one
/// of the fixed texts, or names a well-formed scheme, nothing else from the input.
fn check_error(input: &str, err: &str) {
    if FIXED.contains(&err) {
        return;
    }
    if let Some(reason) = err.strip_prefix("it is not a valid URL (").and_then(|r| r.strip_suffix(')')) {
        assert!(INVALID.contains(&reason), "unexpected error {err:?}");
        return;
    }
    let scheme = err
        .strip_prefix("it uses ")
        .and_then(|r| r.strip_suffix("://; private APIs are only served over https://"))
        .unwrap_or_else(|| panic!("unexpected error {err:?}"));
    assert!(
        scheme.len() <= 16
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)),
        "error {err:?} names {scheme:?} as the scheme"
    );
    assert!(input.starts_with(&format!("{scheme}://")), "error {err:?} names a scheme the URL does not start with");
}

fn check_plan(url: &InvokeUrl, default_port: u16) {
    let t = target(Some(url.clone()));
    let plan = t.plan_for_url(url, default_port);
    assert_eq!(plan.connect_host, url.host);
    assert_eq!(plan.request_path, url.path);
    assert_eq!(plan.api_id_header, url.api_id_header);

    // What probe::run sends must be a valid request.
    assert!(
        HeaderValue::from_str(&plan.host_header).is_ok(),
        "Host header {:?} is not a header value",
        plan.host_header
    );
    if let Some(id) = &plan.api_id_header {
        assert!(HeaderValue::from_str(id).is_ok(), "x-apigw-api-id {id:?} is not a header value");
    }
    assert!(plan.request_path.parse::<hyper::Uri>().is_ok(), "path {:?} is not a request target", plan.request_path);

    // The plan's URL is the same URL.
    let back = InvokeUrl::parse(&plan.url).unwrap_or_else(|e| panic!("plan URL {:?} does not parse: {e}", plan.url));
    assert_eq!(back.host, url.host, "{}", plan.url);
    assert_eq!(back.path, url.path, "{}", plan.url);
    assert_eq!(back.port.unwrap_or(443), url.port.unwrap_or(default_port), "{}", plan.url);

    // The access mode follows from the headers and the host.
    let api = t.api_host();
    let header_host = plan.host_header.split(':').next().unwrap_or_default();
    let want = if url.api_id_header.is_some() {
        AccessMode::ApiIdHeader
    } else if url.host == api {
        AccessMode::PrivateDns
    } else if header_host == api || url.is_vpce_host() {
        AccessMode::EndpointHost
    } else if url.host == t.alias_host() {
        AccessMode::EndpointAlias
    } else {
        AccessMode::CustomDomain
    };
    assert_eq!(plan.access, want, "{} with Host {:?}", plan.url, plan.host_header);

    let hosts = t.hosts();
    assert!(hosts.iter().any(|h| h.name == url.host), "the URL's host is not resolved");
    for (i, h) in hosts.iter().enumerate() {
        assert!(!hosts[..i].iter().any(|o| o.name == h.name), "{} is resolved twice", h.name);
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut lines = text.split('\n');
    let input = lines.next().unwrap_or_default();
    let mut url = match InvokeUrl::parse(input) {
        Ok(url) => url,
        Err(err) => {
            check_error(input, &err);
            return;
        }
    };
    assert!(input.len() <= 2048);
    assert!(input.get(..8).is_some_and(|s| s.eq_ignore_ascii_case("https://")), "accepted {input:?}");
    assert!(!input.contains('#'));
    assert!(!url.host.is_empty() && !url.host.bytes().any(|b| b.is_ascii_uppercase()), "host {:?}", url.host);
    assert!(url.path.starts_with('/'), "path {:?}", url.path);
    assert_ne!(url.port, Some(0));
    check_plan(&url, 443);

    for header in lines {
        match url.clone().with_header(header) {
            Ok(with) => {
                let (name, value) = header.split_once(':').expect("an accepted header has a colon");
                let value = value.trim();
                match name.trim().to_ascii_lowercase().as_str() {
                    "host" => {
                        assert_eq!(with.host_header.as_deref(), Some(value.to_ascii_lowercase().as_str()));
                        assert_eq!(with.api_id_header, url.api_id_header);
                    }
                    "x-apigw-api-id" => {
                        assert_eq!(with.api_id_header.as_deref(), Some(value));
                        assert_eq!(with.host_header, url.host_header);
                    }
                    other => panic!("header {other:?} was accepted"),
                }
                url = with;
            }
            Err(err) => {
                // An unsupported header is named, its value (maybe a credential) never shown.
                if let Some((name, _)) = header.split_once(':') {
                    let name = name.trim().to_ascii_lowercase();
                    if name != "host" && name != "x-apigw-api-id" {
                        assert_eq!(
                            err,
                            format!(
                                "header {name:?} is not supported: only Host and x-apigw-api-id decide which API is reached"
                            )
                        );
                    }
                }
            }
        }
    }
    check_plan(&url, 443);
    check_plan(&url, 8443);
});

//! What API Gateway (or anything on port 443) answered to the invoke: `probe::classify`'s
//! `classify_answer` / `error_message` and `probe::answers`' `record_head` / `record_body`, which
//! copy the answer into the report.
//!
//! Input, HTTP-like so seeds are readable: a first line `STATUS [EXPECTED,…]`, header lines
//! `Name: value`, an empty line, then the body (any bytes). A status that is not a number is
//! taken from the line's first bytes, so every status is reachable.
//!
//! Checks: an expected status is always `Ok` and nothing else is; each status family gets its
//! class (401, 429, 5xx; the 403 family only for 403); the message key and the error type match
//! case-insensitively and the error type's `:…` suffix is ignored; what reaches the report is
//! bounded (headers 256, message 512, snippet 256 characters), header copies are visible ASCII,
//! the snippet has no control characters and appears only when there is no message; the
//! recorded answer survives the report's JSON round trip.

#![no_main]

use hyper::HeaderMap;
use hyper::header::{HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use pvtapi_engine::probe::answers::{
    MAX_HEADER_CHARS, MAX_MESSAGE_CHARS, MAX_SNIPPET_CHARS, header_text, record_body, record_head,
};
use pvtapi_engine::probe::classify::{InvokeAnswer, InvokeClass, classify_answer, error_message};
use pvtapi_engine::probe::report::InvokeResult;

struct Answer<'a> {
    status: u16,
    expected: Vec<u16>,
    headers: HeaderMap,
    body: &'a [u8],
}

fn parse(data: &[u8]) -> Answer<'_> {
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (data, &[][..]),
    };
    let mut lines = head.split(|b| *b == b'\n');
    let first = lines.next().unwrap_or_default();
    let first = String::from_utf8_lossy(first);
    let mut words = first.split_whitespace();
    let status = match words.next().map(str::parse::<u16>) {
        Some(Ok(s)) => s,
        _ => u16::from_le_bytes([
            first.as_bytes().first().copied().unwrap_or(0),
            first.as_bytes().get(1).copied().unwrap_or(0),
        ]),
    };
    let expected = match words.next() {
        Some(list) => list.split(',').filter_map(|s| s.parse().ok()).collect(),
        None => vec![200],
    };
    let mut headers = HeaderMap::new();
    for line in lines {
        let Some(colon) = line.iter().position(|b| *b == b':') else { continue };
        let name = &line[..colon];
        let value = line[colon + 1..].strip_prefix(b" ").unwrap_or(&line[colon + 1..]);
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            headers.append(name, value);
        }
    }
    Answer { status, expected, headers, body }
}

fn unanswered() -> InvokeResult {
    InvokeResult {
        url: "https://abcde12345.execute-api.us-east-1.amazonaws.com/prod/health".into(),
        host_header: "abcde12345.execute-api.us-east-1.amazonaws.com".into(),
        api_id_header: None,
        class: InvokeClass::ConnectionError,
        status: None,
        request_id: None,
        error_type: None,
        apigw_id: None,
        message: None,
        body_snippet: None,
        body_bytes: 0,
        body_truncated: false,
        error: None,
    }
}

const FORBIDDEN_FAMILY: &[InvokeClass] = &[
    InvokeClass::Forbidden,
    InvokeClass::MissingAuthenticationToken,
    InvokeClass::AnonymousNotAuthorized,
    InvokeClass::ExplicitDeny,
    InvokeClass::SignatureError,
    InvokeClass::AuthorizerDenied,
];

fn check_class(status: u16, expected: &[u16], class: InvokeClass) {
    if expected.contains(&status) {
        assert_eq!(class, InvokeClass::Ok);
        return;
    }
    let want_family: &[InvokeClass] = match status {
        403 => FORBIDDEN_FAMILY,
        401 => &[InvokeClass::Unauthorized],
        429 => &[InvokeClass::Throttled],
        500..=599 => &[InvokeClass::ServerError],
        _ => &[InvokeClass::UnexpectedStatus],
    };
    assert!(want_family.contains(&class), "status {status} classified {class:?}");
}

fn visible_ascii(s: &str) -> bool {
    s.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
}

fuzz_target!(|data: &[u8]| {
    let answer = parse(data);
    let error_type = header_text(&answer.headers, "x-amzn-errortype");

    // error_message: a string under a key that is "message" in any casing, else nothing.
    let message = error_message(answer.body);
    if let Some(m) = &message {
        let value: serde_json::Value = serde_json::from_slice(answer.body).expect("a message comes from JSON");
        let obj = value.as_object().expect("from a JSON object");
        assert!(obj.iter().any(|(k, v)| k.eq_ignore_ascii_case("message") && v.as_str() == Some(m)));
    }

    let class = classify_answer(
        &InvokeAnswer { status: answer.status, error_type: error_type.as_deref(), body: answer.body },
        &answer.expected,
    );
    check_class(answer.status, &answer.expected, class);

    // Casing never matters: not of the message key, the message, nor the error type; and the
    // error type's ":<url>" suffix is ignored.
    if let Some(m) = &message {
        for (key, text) in [("Message", m.to_ascii_uppercase()), ("MESSAGE", m.to_ascii_lowercase())] {
            let mut obj = serde_json::Map::new();
            obj.insert(key.to_owned(), serde_json::Value::String(text.clone()));
            let body = serde_json::Value::Object(obj).to_string();
            let again = classify_answer(
                &InvokeAnswer { status: answer.status, error_type: error_type.as_deref(), body: body.as_bytes() },
                &answer.expected,
            );
            assert_eq!(again, class, "message casing changed the class ({key}: {text:?})");
        }
    }
    if let Some(t) = &error_type {
        for variant in [t.to_ascii_uppercase(), t.to_ascii_lowercase(), format!("{t}:http://internal.amazon.com/")] {
            let again = classify_answer(
                &InvokeAnswer { status: answer.status, error_type: Some(&variant), body: answer.body },
                &answer.expected,
            );
            assert_eq!(again, class, "error type {variant:?} vs {t:?} changed the class");
        }
    }

    // What the report keeps of the answer.
    let mut result = unanswered();
    record_head(&mut result, answer.status, &answer.headers);
    record_body(&mut result, answer.status, answer.body, &answer.expected);
    assert_eq!(result.status, Some(answer.status));
    assert_eq!(result.class, class);
    assert_eq!(result.error_type, error_type);
    assert_eq!(result.body_bytes, answer.body.len() as u64);
    for h in [&result.request_id, &result.error_type, &result.apigw_id].into_iter().flatten() {
        assert!(h.chars().count() <= MAX_HEADER_CHARS && visible_ascii(h), "{h:?}");
    }
    match (&message, &result.message) {
        (Some(full), Some(kept)) => {
            assert!(kept.chars().count() <= MAX_MESSAGE_CHARS && full.starts_with(kept.as_str()));
        }
        (None, None) => {}
        other => panic!("message {other:?}"),
    }
    if let Some(snippet) = &result.body_snippet {
        assert!(result.message.is_none() && class != InvokeClass::Ok && !answer.body.is_empty());
        assert!(!snippet.is_empty() && snippet.chars().count() <= MAX_SNIPPET_CHARS, "{snippet:?}");
        assert!(!snippet.chars().any(char::is_control), "{snippet:?}");
        assert_eq!(snippet.trim(), snippet);
    }
    let json = serde_json::to_string(&result).expect("serializes");
    let back: InvokeResult = serde_json::from_str(&json).expect("parses back");
    assert_eq!(back, result);
});

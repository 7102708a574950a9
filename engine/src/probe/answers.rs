//! Pure: turning what the network answered into report entries — the records of a name's A and
//! AAAA lookups into its [`DnsResult`], an HTTP answer's status, headers and body into the
//! [`InvokeResult`] fields.
//!
//! [`super::run`] does the I/O and hands the answers here, so the rules (which records count,
//! the address cap, the smallest TTL, the most telling failure, the caps on what is copied from a
//! server's answer into the report) are table-tested and fuzzed with answers no real server sends.

use std::net::IpAddr;
use std::time::Duration;

use hickory_resolver::proto::rr::{RData, Record};
use hyper::HeaderMap;

use super::classify::{self, InvokeAnswer, InvokeClass};
use super::report::{DnsOutcome, DnsResult, InvokeResult, ResolvedAddress};
use super::target::Host;

/// Addresses kept per name (a DNS answer with hundreds of records is cut here).
pub const MAX_ADDRESSES_PER_NAME: usize = 16;
/// CNAME targets kept per name.
pub const MAX_CNAMES_PER_NAME: usize = 8;
/// Characters kept of a response header's value.
pub const MAX_HEADER_CHARS: usize = 256;
/// Characters kept of the body's JSON `message`.
pub const MAX_MESSAGE_CHARS: usize = 512;
/// Characters kept of a body that has no JSON `message`.
pub const MAX_SNIPPET_CHARS: usize = 256;

/// What one lookup (A or AAAA) of a name gave.
#[derive(Clone, Debug)]
pub enum Lookup<'a> {
    /// The lookup answered with these answer records (CNAMEs and other types included).
    Answered(&'a [Record]),
    /// No answer within the timeout.
    TimedOut,
    /// The lookup failed: its outcome (see `run::dns_error_outcome`) and the error text.
    Failed { outcome: DnsOutcome, error: String },
}

/// The report entry for `host` from its lookups, in the order they are given (A, then AAAA).
///
/// Addresses: every A/AAAA record's address, first occurrence order, at most
/// [`MAX_ADDRESSES_PER_NAME`]; `ttl` the smallest TTL of all A/AAAA records; CNAME targets
/// deduplicated, at most [`MAX_CNAMES_PER_NAME`]. Any address makes the outcome `resolved`;
/// without one it is the most telling failure — NXDOMAIN, then server errors, then timeouts,
/// then no data. `error` holds the last failure's text (none for "no records"). `ms` is 0: the
/// caller times the lookups.
pub fn dns_result<'a>(host: &Host, lookups: impl IntoIterator<Item = Lookup<'a>>, timeout: Duration) -> DnsResult {
    let mut result = DnsResult {
        host: host.name.clone(),
        role: host.role,
        outcome: DnsOutcome::NoData,
        addresses: Vec::new(),
        ttl: None,
        cnames: Vec::new(),
        error: None,
        ms: 0,
    };
    let mut outcomes = Vec::new();
    for lookup in lookups {
        match lookup {
            Lookup::Answered(records) => {
                for record in records {
                    let ip = match &record.data {
                        RData::A(a) => Some(IpAddr::V4(a.0)),
                        RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                        RData::CNAME(c) => {
                            let target = c.0.to_string();
                            if result.cnames.len() < MAX_CNAMES_PER_NAME && !result.cnames.contains(&target) {
                                result.cnames.push(target);
                            }
                            None
                        }
                        _ => None,
                    };
                    if let Some(ip) = ip {
                        result.ttl = Some(result.ttl.map_or(record.ttl, |t| t.min(record.ttl)));
                        if result.addresses.len() < MAX_ADDRESSES_PER_NAME
                            && !result.addresses.iter().any(|a| a.ip == ip)
                        {
                            result.addresses.push(ResolvedAddress { ip, class: classify::classify_address(ip) });
                        }
                    }
                }
                outcomes.push(DnsOutcome::Resolved);
            }
            Lookup::TimedOut => {
                outcomes.push(DnsOutcome::Timeout);
                result.error = Some(format!("no answer within {}s", timeout.as_secs_f32()));
            }
            Lookup::Failed { outcome, error } => {
                if outcome != DnsOutcome::NoData {
                    result.error = Some(error);
                }
                outcomes.push(outcome);
            }
        }
    }
    result.outcome = if !result.addresses.is_empty() {
        DnsOutcome::Resolved
    } else {
        // Most telling failure first: NXDOMAIN, then server errors, then timeouts, then no data.
        [DnsOutcome::NxDomain, DnsOutcome::ServFail, DnsOutcome::Refused, DnsOutcome::Error, DnsOutcome::Timeout]
            .into_iter()
            .find(|o| outcomes.contains(o))
            .unwrap_or(DnsOutcome::NoData)
    };
    result
}

/// A response header's value as report text: `None` when absent or not visible ASCII, else at
/// most [`MAX_HEADER_CHARS`] characters (the first value when the header repeats).
pub fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(|v| v.chars().take(MAX_HEADER_CHARS).collect::<String>())
}

/// Records an answer's status and the API Gateway headers that identify it
/// (`x-amzn-RequestId`, `x-amzn-ErrorType`, `x-amz-apigw-id`).
pub fn record_head(result: &mut InvokeResult, status: u16, headers: &HeaderMap) {
    result.status = Some(status);
    result.request_id = header_text(headers, "x-amzn-requestid");
    result.error_type = header_text(headers, "x-amzn-errortype");
    result.apigw_id = header_text(headers, "x-amz-apigw-id");
}

/// Records the body read (at most `MAX_BODY_BYTES`) and classifies the answer: its size, class,
/// JSON `message` (at most [`MAX_MESSAGE_CHARS`] characters) or, for an answer that is not OK and
/// has no message, a printable snippet of its start (at most [`MAX_SNIPPET_CHARS`] characters).
/// Uses the status and error type [`record_head`] recorded.
pub fn record_body(result: &mut InvokeResult, status: u16, body: &[u8], expected: &[u16]) {
    result.body_bytes = body.len() as u64;
    result.class =
        classify::classify_answer(&InvokeAnswer { status, error_type: result.error_type.as_deref(), body }, expected);
    result.message = classify::error_message(body).map(|m| m.chars().take(MAX_MESSAGE_CHARS).collect());
    if result.message.is_none() && !body.is_empty() && result.class != InvokeClass::Ok {
        let text = String::from_utf8_lossy(&body[..body.len().min(1024)]);
        let snippet: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(MAX_SNIPPET_CHARS)
            .collect::<String>()
            .trim()
            .to_owned();
        result.body_snippet = (!snippet.is_empty()).then_some(snippet);
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use hickory_resolver::proto::rr::rdata::{A, AAAA, CNAME, TXT};
    use hickory_resolver::proto::rr::{Name, RData, Record};
    use hyper::header::{HeaderName, HeaderValue};

    use super::*;
    use crate::probe::classify::AddressClass;
    use crate::probe::target::HostRole;

    fn host() -> Host {
        Host { name: "abcde12345.execute-api.us-east-1.amazonaws.com".into(), role: HostRole::Api }
    }

    fn record(ttl: u32, data: RData) -> Record {
        Record::from_rdata(Name::from_ascii("abcde12345.execute-api.us-east-1.amazonaws.com.").unwrap(), ttl, data)
    }

    fn a(ip: [u8; 4], ttl: u32) -> Record {
        record(ttl, RData::A(A(Ipv4Addr::from(ip))))
    }

    fn nx() -> Lookup<'static> {
        Lookup::Failed { outcome: DnsOutcome::NxDomain, error: "no record found, NXDomain".into() }
    }

    #[test]
    fn records_become_addresses_ttl_and_cnames() {
        let cname = record(300, RData::CNAME(CNAME(Name::from_ascii("vpce-x.example.").unwrap())));
        let txt = record(5, RData::TXT(TXT::new(vec!["ignored".into()])));
        let v4 = [cname, txt, a([10, 0, 1, 10], 60), a([10, 0, 2, 10], 30), a([10, 0, 1, 10], 10)];
        let v6 = [record(90, RData::AAAA(AAAA(Ipv6Addr::LOCALHOST)))];
        let r = dns_result(&host(), [Lookup::Answered(&v4), Lookup::Answered(&v6)], Duration::from_secs(2));
        assert_eq!(r.outcome, DnsOutcome::Resolved);
        let ips: Vec<String> = r.addresses.iter().map(|a| a.ip.to_string()).collect();
        assert_eq!(ips, ["10.0.1.10", "10.0.2.10", "::1"]);
        assert_eq!(r.addresses[2].class, AddressClass::Loopback);
        assert_eq!(r.ttl, Some(10), "the smallest TTL of every address record, duplicates included");
        assert_eq!(r.cnames, ["vpce-x.example."]);
        assert_eq!((r.error, r.ms), (None, 0));
    }

    #[test]
    fn addresses_are_capped() {
        let many: Vec<Record> = (0..40u8).map(|i| a([10, 0, 0, i], 60)).collect();
        let r = dns_result(&host(), [Lookup::Answered(&many)], Duration::from_secs(2));
        assert_eq!(r.addresses.len(), MAX_ADDRESSES_PER_NAME);
    }

    #[test]
    fn failures_pick_the_most_telling_outcome() {
        let t = Duration::from_millis(1500);
        let cases: Vec<(Vec<Lookup<'static>>, DnsOutcome, Option<&str>)> = vec![
            (vec![Lookup::Answered(&[]), Lookup::Answered(&[])], DnsOutcome::NoData, None),
            (vec![nx(), Lookup::TimedOut], DnsOutcome::NxDomain, Some("no answer within 1.5s")),
            (vec![Lookup::TimedOut, nx()], DnsOutcome::NxDomain, Some("no record found, NXDomain")),
            (
                vec![
                    Lookup::Failed { outcome: DnsOutcome::NoData, error: "no records".into() },
                    Lookup::Failed { outcome: DnsOutcome::Refused, error: "refused".into() },
                ],
                DnsOutcome::Refused,
                Some("refused"),
            ),
            (
                vec![Lookup::Failed { outcome: DnsOutcome::NoData, error: "no records".into() }, Lookup::TimedOut],
                DnsOutcome::Timeout,
                Some("no answer within 1.5s"),
            ),
        ];
        for (lookups, outcome, error) in cases {
            let r = dns_result(&host(), lookups, t);
            assert_eq!((r.outcome, r.error.as_deref()), (outcome, error));
            assert!(r.addresses.is_empty() && r.ttl.is_none());
        }
        // One family answering is enough.
        let v4 = [a([10, 0, 1, 10], 60)];
        let r = dns_result(&host(), [Lookup::Answered(&v4), nx()], t);
        assert_eq!(r.outcome, DnsOutcome::Resolved);
    }

    fn answer() -> InvokeResult {
        InvokeResult {
            url: "https://h/prod/".into(),
            host_header: "h".into(),
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

    #[test]
    fn an_api_gateway_answer_is_recorded() {
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static("x-amzn-errortype"),
            HeaderValue::from_static("MissingAuthenticationTokenException"),
        );
        headers.insert(HeaderName::from_static("x-amzn-requestid"), HeaderValue::from_static("r-1"));
        headers.insert(HeaderName::from_static("x-amz-apigw-id"), HeaderValue::from_bytes(b"\xffbinary").unwrap());
        let mut r = answer();
        record_head(&mut r, 403, &headers);
        record_body(&mut r, 403, br#"{"message":"Missing Authentication Token"}"#, &[200]);
        assert_eq!(r.class, InvokeClass::MissingAuthenticationToken);
        assert_eq!(r.request_id.as_deref(), Some("r-1"));
        assert_eq!(r.apigw_id, None, "a value that is not visible ASCII is not copied");
        assert_eq!(r.message.as_deref(), Some("Missing Authentication Token"));
        assert_eq!((r.body_snippet, r.body_bytes), (None, 42));
    }

    #[test]
    fn bodies_without_a_message_leave_a_printable_snippet() {
        let mut r = answer();
        record_head(&mut r, 502, &HeaderMap::new());
        let body = format!("\u{1b}[31m<html>\n{}</html>", "x".repeat(400));
        record_body(&mut r, 502, body.as_bytes(), &[200]);
        let snippet = r.body_snippet.unwrap_or_default();
        assert!(snippet.starts_with("[31m<html> x"), "{snippet}");
        assert_eq!(snippet.chars().count(), MAX_SNIPPET_CHARS - 1, "capped, then trimmed");
        let mut ok = answer();
        record_body(&mut ok, 200, b"fine", &[200]);
        assert_eq!((ok.class, ok.body_snippet), (InvokeClass::Ok, None));
    }
}

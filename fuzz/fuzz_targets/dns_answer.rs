//! DNS answers as the probe turns them into the report: `probe::answers::dns_result` over the
//! records of a DNS message decoded from the input with hickory's wire decoder, and
//! `probe::classify::classify_address`.
//!
//! Input: a DNS message in wire format (a resolver's response). Its answer section is the A
//! lookup's answer; its response code decides the AAAA lookup: NOERROR answers with the
//! additional section; NXDOMAIN, SERVFAIL and REFUSED fail as such, NOTIMP stands for "no
//! records", FORMERR for any other error, and anything else times out. Each 4- and 16-byte chunk of the input is also classified as
//! an address (the first 64 and 128 bytes).
//!
//! Checks, against a reference written from the report's documentation: the addresses are the
//! distinct A/AAAA addresses in first-seen order, at most 16, each with its class; `ttl` is the
//! smallest A/AAAA TTL; CNAME targets are distinct, at most 8, and from CNAME records; `resolved`
//! exactly when there is an address, else the most telling failure; the entry survives the
//! report's JSON round trip. Classification agrees with the documented ranges (RFC 1918, RFC 6598,
//! ULA, loopback, link-local) and treats an IPv4-mapped IPv6 address as its IPv4 address.

#![no_main]

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;
use std::time::Duration;

use hickory_resolver::proto::op::{Message, ResponseCode};
use hickory_resolver::proto::rr::{RData, Record};
use ipnet::IpNet;
use libfuzzer_sys::fuzz_target;
use pvtapi_engine::probe::answers::{Lookup, MAX_ADDRESSES_PER_NAME, MAX_CNAMES_PER_NAME, dns_result};
use pvtapi_engine::probe::classify::{AddressClass, classify_address};
use pvtapi_engine::probe::report::{DnsOutcome, DnsResult};
use pvtapi_engine::probe::target::{Host, HostRole};

/// The documented ranges, per class.
static RANGES: LazyLock<[(AddressClass, Vec<IpNet>); 3]> = LazyLock::new(|| {
    let nets = |list: &[&str]| list.iter().map(|n| n.parse().expect("a literal network")).collect();
    [
        (AddressClass::Loopback, nets(&["127.0.0.0/8", "::1/128"])),
        (AddressClass::LinkLocal, nets(&["169.254.0.0/16", "fe80::/10"])),
        (AddressClass::Private, nets(&["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"])),
    ]
});
static V4_MAPPED: LazyLock<IpNet> = LazyLock::new(|| "::ffff:0:0/96".parse().expect("a literal network"));

/// The documented classes, written independently of the engine's bit tests.
fn reference_class(ip: IpAddr) -> AddressClass {
    if let IpAddr::V6(v6) = ip
        && V4_MAPPED.contains(&ip)
    {
        let o = v6.octets();
        return reference_class(IpAddr::V4(Ipv4Addr::new(o[12], o[13], o[14], o[15])));
    }
    RANGES
        .iter()
        .find(|(_, nets)| nets.iter().any(|n| n.contains(&ip)))
        .map_or(AddressClass::Public, |(class, _)| *class)
}

fn check_class(ip: IpAddr) {
    let class = classify_address(ip);
    assert_eq!(class, reference_class(ip), "{ip}");
    if let IpAddr::V4(v4) = ip {
        assert_eq!(classify_address(IpAddr::V6(v4.to_ipv6_mapped())), class, "{ip} mapped to IPv6");
    }
}

fn ip_of(record: &Record) -> Option<IpAddr> {
    match &record.data {
        RData::A(a) => Some(IpAddr::V4(a.0)),
        RData::AAAA(a) => Some(IpAddr::V6(a.0)),
        _ => None,
    }
}

fn check_result(result: &DnsResult, host: &Host, lookups: &[Lookup<'_>], timeout: Duration) {
    assert_eq!((&result.host, result.role, result.ms), (&host.name, host.role, 0));
    let answered: Vec<&Record> = lookups
        .iter()
        .filter_map(|l| match l {
            Lookup::Answered(records) => Some(records.iter()),
            _ => None,
        })
        .flatten()
        .collect();

    // Addresses: distinct, first-seen order, capped, classified.
    let mut seen = HashSet::new();
    let want: Vec<IpAddr> =
        answered.iter().filter_map(|r| ip_of(r)).filter(|ip| seen.insert(*ip)).take(MAX_ADDRESSES_PER_NAME).collect();
    let got: Vec<IpAddr> = result.addresses.iter().map(|a| a.ip).collect();
    assert_eq!(got, want);
    for a in &result.addresses {
        assert_eq!(a.class, classify_address(a.ip));
    }
    assert_eq!(result.ttl, answered.iter().filter(|r| ip_of(r).is_some()).map(|r| r.ttl).min());

    // CNAME targets: distinct, capped, each from a CNAME record.
    let targets: Vec<String> = answered
        .iter()
        .filter_map(|r| match &r.data {
            RData::CNAME(c) => Some(c.0.to_string()),
            _ => None,
        })
        .collect();
    assert!(result.cnames.len() <= MAX_CNAMES_PER_NAME);
    let mut distinct = HashSet::new();
    for c in &result.cnames {
        assert!(distinct.insert(c), "{c} listed twice");
        assert!(targets.contains(c), "{c} is no CNAME target");
    }
    if result.cnames.len() < MAX_CNAMES_PER_NAME {
        assert_eq!(distinct.len(), targets.iter().collect::<HashSet<_>>().len(), "a CNAME target was dropped");
    }

    // Outcome: resolved iff an address; else the most telling failure.
    let outcomes: Vec<DnsOutcome> = lookups
        .iter()
        .map(|l| match l {
            Lookup::Answered(_) => DnsOutcome::Resolved,
            Lookup::TimedOut => DnsOutcome::Timeout,
            Lookup::Failed { outcome, .. } => *outcome,
        })
        .collect();
    let want_outcome = if !want.is_empty() {
        DnsOutcome::Resolved
    } else {
        [DnsOutcome::NxDomain, DnsOutcome::ServFail, DnsOutcome::Refused, DnsOutcome::Error, DnsOutcome::Timeout]
            .into_iter()
            .find(|o| outcomes.contains(o))
            .unwrap_or(DnsOutcome::NoData)
    };
    assert_eq!(result.outcome, want_outcome);
    let want_error = lookups.iter().rev().find_map(|l| match l {
        Lookup::TimedOut => Some(format!("no answer within {}s", timeout.as_secs_f32())),
        Lookup::Failed { outcome, error } if *outcome != DnsOutcome::NoData => Some(error.clone()),
        _ => None,
    });
    assert_eq!(result.error, want_error);

    let json = serde_json::to_string(result).expect("serializes");
    let back: DnsResult = serde_json::from_str(&json).expect("parses back");
    assert_eq!(&back, result);
}

fuzz_target!(|data: &[u8]| {
    for window in data.windows(4).step_by(4).take(16) {
        check_class(IpAddr::V4(Ipv4Addr::new(window[0], window[1], window[2], window[3])));
    }
    for window in data.windows(16).step_by(16).take(8) {
        let octets: [u8; 16] = window.try_into().expect("16 bytes");
        check_class(IpAddr::V6(Ipv6Addr::from(octets)));
    }

    let Ok(message) = Message::from_vec(data) else { return };
    let host = Host {
        name: message
            .queries
            .first()
            .map_or_else(|| "abcde12345.execute-api.us-east-1.amazonaws.com".to_owned(), |q| q.name().to_string()),
        role: HostRole::Api,
    };
    let failed = |outcome, error: &str| Lookup::Failed { outcome, error: error.to_owned() };
    let second = match message.metadata.response_code {
        ResponseCode::NoError => Lookup::Answered(&message.additionals),
        ResponseCode::NXDomain => failed(DnsOutcome::NxDomain, "no record found for Query, NXDomain"),
        ResponseCode::ServFail => failed(DnsOutcome::ServFail, "ServFail"),
        ResponseCode::Refused => failed(DnsOutcome::Refused, "Refused"),
        ResponseCode::NotImp => failed(DnsOutcome::NoData, "no records found"),
        ResponseCode::FormErr => failed(DnsOutcome::Error, "FormErr"),
        _ => Lookup::TimedOut,
    };
    let timeout = Duration::from_millis(1500);
    let lookups = [Lookup::Answered(&message.answers), second];
    let result = dns_result(&host, lookups.clone(), timeout);
    check_result(&result, &host, &lookups, timeout);
    // The other order (the AAAA answer first) keeps the same addresses as a set.
    let reversed = [lookups[1].clone(), lookups[0].clone()];
    let other = dns_result(&host, reversed.clone(), timeout);
    check_result(&other, &host, &reversed, timeout);
    assert_eq!(other.outcome, result.outcome);
});

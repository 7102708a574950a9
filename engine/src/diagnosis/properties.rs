//! Property: whatever a probe report says — including combinations a real probe never writes
//! (the report comes from a pod, so it is untrusted) — a report with any failing address of the
//! invoke host or any failed phase is never diagnosed `Healthy`, with or without AWS facts.

use std::net::{IpAddr, Ipv4Addr};

use proptest::prelude::*;
use pvtapi_crds::{AccessMode, RootCause};

use super::diagnose;
use super::tests::{facts, healthy};
use crate::probe::ProbeReport;
use crate::probe::classify::{AddressClass, InvokeClass, TcpOutcome};
use crate::probe::report::{DnsComparison, DnsOutcome, ResolvedAddress, TcpResult, TlsOutcome};

fn tcp_outcome() -> impl Strategy<Value = TcpOutcome> {
    prop_oneof![
        4 => Just(TcpOutcome::Connected),
        1 => Just(TcpOutcome::Refused),
        1 => Just(TcpOutcome::Timeout),
        1 => Just(TcpOutcome::Unreachable),
        1 => Just(TcpOutcome::Error),
    ]
}

fn dns_outcome() -> impl Strategy<Value = DnsOutcome> {
    prop_oneof![
        6 => Just(DnsOutcome::Resolved),
        1 => Just(DnsOutcome::NxDomain),
        1 => Just(DnsOutcome::NoData),
        1 => Just(DnsOutcome::ServFail),
        1 => Just(DnsOutcome::Timeout),
    ]
}

fn tls_outcome() -> impl Strategy<Value = Option<TlsOutcome>> {
    prop_oneof![
        6 => Just(Some(TlsOutcome::Ok)),
        1 => Just(None),
        1 => Just(Some(TlsOutcome::NameMismatch)),
        1 => Just(Some(TlsOutcome::UnknownIssuer)),
        1 => Just(Some(TlsOutcome::HandshakeFailure)),
        1 => Just(Some(TlsOutcome::Timeout)),
    ]
}

fn invoke_class() -> impl Strategy<Value = (InvokeClass, Option<u16>)> {
    prop_oneof![
        6 => Just((InvokeClass::Ok, Some(200))),
        1 => Just((InvokeClass::Ok, None)),
        1 => Just((InvokeClass::Forbidden, Some(403))),
        1 => Just((InvokeClass::MissingAuthenticationToken, Some(403))),
        1 => Just((InvokeClass::AnonymousNotAuthorized, Some(403))),
        1 => Just((InvokeClass::ExplicitDeny, Some(403))),
        1 => Just((InvokeClass::Unauthorized, Some(401))),
        1 => Just((InvokeClass::ServerError, Some(502))),
        1 => Just((InvokeClass::Throttled, Some(429))),
        1 => Just((InvokeClass::UnexpectedStatus, Some(404))),
        1 => Just((InvokeClass::Timeout, None)),
        1 => Just((InvokeClass::ConnectionError, None)),
    ]
}

fn address_class() -> impl Strategy<Value = AddressClass> {
    prop_oneof![8 => Just(AddressClass::Private), 1 => Just(AddressClass::Public)]
}

/// A report built from the healthy one: 1–4 addresses for the invoke host, each with its class
/// and connect outcome, the host's DNS outcome, TLS, the invoke's answer, the DNS comparison.
fn report() -> impl Strategy<Value = ProbeReport> {
    (
        proptest::collection::vec((address_class(), tcp_outcome()), 1..=4),
        dns_outcome(),
        tls_outcome(),
        invoke_class(),
        prop_oneof![
            Just(DnsComparison::NotComparable),
            Just(DnsComparison::Same),
            Just(DnsComparison::Overlap),
            Just(DnsComparison::Disjoint)
        ],
    )
        .prop_map(|(addresses, dns_outcome, tls, (class, status), comparison)| {
            let mut r = healthy();
            let ips: Vec<IpAddr> =
                (0..addresses.len()).map(|i| IpAddr::V4(Ipv4Addr::new(10, 0, 1, 10 + i as u8))).collect();
            let api = &mut r.dns[0];
            api.outcome = dns_outcome;
            api.addresses = if dns_outcome == DnsOutcome::Resolved {
                ips.iter().zip(&addresses).map(|(ip, (class, _))| ResolvedAddress { ip: *ip, class: *class }).collect()
            } else {
                Vec::new()
            };
            r.tcp = if dns_outcome == DnsOutcome::Resolved {
                ips.iter()
                    .zip(&addresses)
                    .map(|(ip, (_, outcome))| TcpResult { ip: *ip, port: 443, outcome: *outcome, ms: 1, error: None })
                    .collect()
            } else {
                Vec::new()
            };
            match tls {
                Some(outcome) => {
                    if let Some(t) = r.tls.as_mut() {
                        t.outcome = outcome;
                    }
                }
                None => r.tls = None,
            }
            let invoke = r.invoke.as_mut().expect("the healthy report invokes");
            invoke.class = class;
            invoke.status = status;
            r.dns_comparison = comparison;
            r
        })
}

/// Does the report show anything failing on the workload's path?
fn shows_a_failure(r: &ProbeReport) -> bool {
    let api = &r.dns[0];
    let dns_failed = api.outcome != DnsOutcome::Resolved || api.addresses.is_empty();
    let public = api.addresses.iter().any(|a| a.class == AddressClass::Public);
    let tcp_failed = r.tcp.iter().any(|t| t.outcome != TcpOutcome::Connected);
    let tls_failed = r.tls.as_ref().is_none_or(|t| t.outcome != TlsOutcome::Ok);
    let invoke_failed = r.invoke.as_ref().is_none_or(|i| i.class != InvokeClass::Ok || i.status.is_none());
    let foreign = matches!(r.dns_comparison, DnsComparison::Disjoint);
    dns_failed || public || tcp_failed || tls_failed || invoke_failed || foreign
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

    #[test]
    fn a_failure_anywhere_is_never_healthy(r in report(), with_facts in any::<bool>()) {
        let f = facts();
        let d = diagnose(&r, if with_facts { Some(&f) } else { None });
        if shows_a_failure(&r) {
            prop_assert_ne!(d.root_cause, RootCause::Healthy, "report: {}", r.to_json());
        }
    }

    #[test]
    fn the_generator_also_makes_healthy_reports(r in report()) {
        // Not vacuous: a report with nothing failing is Healthy (the rule above is not met by
        // never answering Healthy).
        if !shows_a_failure(&r) && r.access.mode == AccessMode::PrivateDns && r.dns_comparison != DnsComparison::Overlap {
            prop_assert_eq!(diagnose(&r, None).root_cause, RootCause::Healthy, "report: {}", r.to_json());
        }
    }
}

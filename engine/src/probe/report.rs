//! `ProbeReport`: what one probe run saw, as versioned, compact JSON.
//!
//! The report travels from the probe pod to the operator as the container's termination message,
//! which the kubelet caps at 4,096 bytes. So field names are stable (documented in
//! `docs/probe-report.md`), empty parts are omitted, and [`ProbeReport::bounded`] drops detail in
//! a fixed order until the JSON fits, listing what it dropped in `truncated`.

use std::net::IpAddr;

use pvtapi_crds::AccessMode;
use serde::{Deserialize, Serialize};

use super::classify::{AddressClass, InvokeClass, TcpOutcome};
use super::proxy::ProxyVerdict;
use super::target::HostRole;

/// The report format identifier; bumped on any incompatible change.
pub const REPORT_VERSION: &str = "pvtapi.io/probe-report/v1";

/// The size a typical report must fit in (a termination message holds 4,096 bytes).
pub const REPORT_BUDGET_BYTES: usize = 3_500;

/// One probe run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProbeReport {
    pub version: String,
    pub target: TargetSummary,
    /// The access mode used for the invoke, and why (for `auto`).
    pub access: AccessChoice,
    /// Which resolver answered: `system` (resolv.conf) or the override address.
    pub resolver: String,
    /// The nameserver addresses `resolver` stands for (from resolv.conf, or the one given): what
    /// the pod's DNS egress must reach.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolver_addresses: Vec<std::net::SocketAddr>,
    pub dns: Vec<DnsResult>,
    /// The API host's addresses compared with the endpoint's.
    pub dns_comparison: DnsComparison,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tcp: Vec<TcpResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoke: Option<InvokeResult>,
    /// Hosts the environment's proxy settings would send through a proxy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub proxied: Vec<ProxyVerdict>,
    pub timings: Timings,
    /// Parts dropped to fit the size budget, in the order they were dropped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub truncated: Vec<String>,
}

/// The check's identifiers, echoed so a report stands on its own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetSummary {
    pub api_id: String,
    pub region: String,
    pub stage: String,
    pub path: String,
    pub method: String,
    pub vpce_id: String,
}

impl TargetSummary {
    /// `{api}.execute-api.{region}.amazonaws.com`
    pub fn api_host(&self) -> String {
        super::target::api_host(&self.api_id, &self.region)
    }

    /// `{api}-{vpce}.execute-api.{region}.amazonaws.com`
    pub fn alias_host(&self) -> String {
        super::target::alias_host(&self.api_id, &self.vpce_id, &self.region)
    }

    /// `/{stage}{path}` as invoked.
    pub fn stage_path(&self) -> String {
        super::target::stage_path(&self.stage, &self.path)
    }
}

/// The mode used and the reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessChoice {
    pub mode: AccessMode,
    pub reason: String,
}

/// The DNS response for one name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum DnsOutcome {
    Resolved,
    /// The name does not exist.
    NxDomain,
    /// The name exists but has no A/AAAA records.
    NoData,
    ServFail,
    Refused,
    Timeout,
    Error,
}

/// One resolved name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DnsResult {
    pub host: String,
    pub role: HostRole,
    pub outcome: DnsOutcome,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<ResolvedAddress>,
    /// Smallest TTL of the answers, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
    /// CNAME chain followed, when any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cnames: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub ms: u64,
}

/// An address and where it points.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedAddress {
    pub ip: IpAddr,
    pub class: AddressClass,
}

/// The API host's addresses against the endpoint hosts' addresses (the seed's two `nslookup`s).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum DnsComparison {
    /// Same set: the API host resolves to this endpoint.
    Same,
    /// Some shared, some not.
    Overlap,
    /// No address in common: another endpoint or public addresses.
    Disjoint,
    /// One side did not resolve or the endpoint's names are unknown.
    NotComparable,
}

/// One TCP connect.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TcpResult {
    pub ip: IpAddr,
    pub port: u16,
    pub outcome: TcpOutcome,
    pub ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The TLS handshake's result class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum TlsOutcome {
    Ok,
    /// The certificate does not cover the name (calling an IP or an own CNAME).
    NameMismatch,
    /// The chain does not lead to a trusted root (TLS-inspecting proxy, wrong CA bundle).
    UnknownIssuer,
    /// The certificate is expired or not yet valid.
    Expired,
    /// Any other handshake failure (alert, protocol error, closed connection).
    HandshakeFailure,
    Timeout,
}

/// The TLS handshake with the invoke host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsResult {
    pub sni: String,
    pub ip: IpAddr,
    pub outcome: TlsOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cipher: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sans: Vec<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub ms: u64,
}

/// The HTTPS invoke.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvokeResult {
    pub url: String,
    pub host_header: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_id_header: Option<String>,
    pub class: InvokeClass,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// `x-amzn-RequestId`: look it up in the execution logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// `x-amzn-ErrorType`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// `x-amz-apigw-id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apigw_id: Option<String>,
    /// The body's `message`/`Message`, when JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The start of the body (printable, at most 256 characters) when it is not a JSON message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_snippet: Option<String>,
    /// Bytes of body read (capped at 64 KiB).
    pub body_bytes: u64,
    /// True when the body was longer than the cap.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub body_truncated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Per-phase timings of the invoke path, in milliseconds, like blackbox_exporter's phases.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Timings {
    pub dns_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttfb_ms: Option<u64>,
    pub total_ms: u64,
}

fn cut(s: &mut Option<String>, max: usize) -> bool {
    match s {
        Some(v) if v.chars().count() > max => {
            *v = v.chars().take(max).collect::<String>() + "…";
            true
        }
        _ => false,
    }
}

impl ProbeReport {
    /// Compact JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| {
            format!("{{\"version\":\"{REPORT_VERSION}\",\"error\":\"cannot serialize report: {e}\"}}")
        })
    }

    /// Drops detail until the JSON fits `budget` bytes. Order: body snippet; error texts cut to
    /// 120 characters; certificate SANs beyond 3; CNAME chains; zonal endpoint names; addresses
    /// beyond 4 per name; TCP results beyond 8 (failures kept first); message cut to 200.
    pub fn bounded(mut self, budget: usize) -> ProbeReport {
        type Step = (&'static str, fn(&mut ProbeReport) -> bool);
        let steps: [Step; 8] = [
            ("invoke.bodySnippet", |r| r.invoke.as_mut().is_some_and(|i| i.body_snippet.take().is_some())),
            ("errors", |r| {
                let mut changed = false;
                for d in &mut r.dns {
                    changed |= cut(&mut d.error, 120);
                }
                for t in &mut r.tcp {
                    changed |= cut(&mut t.error, 120);
                }
                if let Some(t) = &mut r.tls {
                    changed |= cut(&mut t.error, 120);
                }
                if let Some(i) = &mut r.invoke {
                    changed |= cut(&mut i.error, 120);
                }
                changed
            }),
            ("tls.sans", |r| {
                r.tls.as_mut().is_some_and(|t| {
                    t.sans.len() > 3 && {
                        t.sans.truncate(3);
                        true
                    }
                })
            }),
            ("dns.cnames", |r| r.dns.iter_mut().fold(false, |c, d| c | !std::mem::take(&mut d.cnames).is_empty())),
            ("dns.zonal", |r| {
                let before = r.dns.len();
                r.dns.retain(|d| d.role != HostRole::EndpointZonal);
                r.dns.len() != before
            }),
            ("dns.addresses", |r| {
                r.dns.iter_mut().fold(false, |c, d| {
                    c | (d.addresses.len() > 4 && {
                        d.addresses.truncate(4);
                        true
                    })
                })
            }),
            ("tcp", |r| {
                if r.tcp.len() <= 8 {
                    return false;
                }
                r.tcp.sort_by_key(|t| t.outcome == TcpOutcome::Connected);
                r.tcp.truncate(8);
                true
            }),
            ("invoke.message", |r| r.invoke.as_mut().is_some_and(|i| cut(&mut i.message, 200))),
        ];
        for (name, step) in steps {
            if self.to_json().len() <= budget {
                break;
            }
            if step(&mut self) {
                self.truncated.push(name.to_owned());
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::proxy::ProxyVerdict;

    fn bloated() -> ProbeReport {
        let addr = |i: u32| ResolvedAddress {
            ip: IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i)),
            class: AddressClass::Private,
        };
        let dns = |host: &str, role| DnsResult {
            host: host.to_owned(),
            role,
            outcome: DnsOutcome::Resolved,
            addresses: (0..16).map(addr).collect(),
            ttl: Some(60),
            cnames: vec!["x".repeat(60); 8],
            error: Some("e".repeat(400)),
            ms: 1,
        };
        ProbeReport {
            version: REPORT_VERSION.to_owned(),
            target: TargetSummary {
                api_id: "abcde12345".into(),
                region: "us-east-1".into(),
                stage: "prod".into(),
                path: "/health".into(),
                method: "GET".into(),
                vpce_id: "vpce-0123456789abcdef0".into(),
            },
            access: AccessChoice { mode: AccessMode::PrivateDns, reason: "as configured".into() },
            resolver: "system".into(),
            resolver_addresses: vec![],
            dns: vec![
                dns("api", HostRole::Api),
                dns("alias", HostRole::EndpointAlias),
                dns("regional", HostRole::EndpointRegional),
                dns("zonal-a", HostRole::EndpointZonal),
                dns("zonal-b", HostRole::EndpointZonal),
            ],
            dns_comparison: DnsComparison::Same,
            tcp: (0..16)
                .map(|i| TcpResult {
                    ip: addr(i).ip,
                    port: 443,
                    outcome: if i == 15 { TcpOutcome::Timeout } else { TcpOutcome::Connected },
                    ms: 1,
                    error: None,
                })
                .collect(),
            tls: Some(TlsResult {
                sni: "api".into(),
                ip: addr(0).ip,
                outcome: TlsOutcome::Ok,
                version: Some("TLSv1_3".into()),
                cipher: None,
                subject: Some("CN=x".into()),
                sans: vec!["*.example.com".into(); 16],
                not_after: None,
                error: None,
                ms: 1,
            }),
            invoke: Some(InvokeResult {
                url: "https://api/prod/health".into(),
                host_header: "api".into(),
                api_id_header: None,
                class: InvokeClass::ServerError,
                status: Some(502),
                request_id: None,
                error_type: None,
                apigw_id: None,
                message: Some("m".repeat(512)),
                body_snippet: Some("b".repeat(256)),
                body_bytes: 300,
                body_truncated: false,
                error: None,
            }),
            proxied: vec![ProxyVerdict { host: "api".into(), via: Some("http://proxy:3128".into()) }],
            timings: Timings::default(),
            truncated: vec![],
        }
    }

    #[test]
    fn bounded_drops_detail_in_the_documented_order_until_it_fits() {
        let big = bloated();
        assert!(big.to_json().len() > 8_000, "the fixture must overflow");
        let small = big.clone().bounded(REPORT_BUDGET_BYTES);
        assert!(small.to_json().len() <= REPORT_BUDGET_BYTES, "{} bytes", small.to_json().len());
        let order = ["invoke.bodySnippet", "errors", "tls.sans", "dns.cnames", "dns.zonal", "dns.addresses", "tcp"];
        assert_eq!(small.truncated, order[..small.truncated.len()].to_vec(), "drops follow the documented order");
        assert!(small.tcp.iter().any(|t| t.outcome == TcpOutcome::Timeout), "failures survive truncation");
        assert_eq!(small.invoke.as_ref().and_then(|i| i.status), Some(502), "the verdict is never dropped");
        // Already small: untouched.
        let again = small.clone().bounded(REPORT_BUDGET_BYTES);
        assert_eq!(again, small);
    }

    #[test]
    fn report_round_trips_through_json() {
        let report = bloated();
        let back: ProbeReport = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(back, report);
    }
}

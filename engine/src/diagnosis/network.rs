//! TCP rules: connect failures to the invoke host's addresses, explained by the security groups
//! and the (stateless) network ACLs of both subnets when the facts are known.
//!
//! Why per address: a workload is given any of the name's addresses (DNS rotates them), so one
//! failing address fails a share of its calls — "intermittent timeouts" — even when the probe's
//! own invoke went through another address and succeeded. [`connect`] handles the invoke host
//! failing everywhere; [`partial`] runs after every rule about the answer and turns a would-be
//! `Healthy` into the failing part's cause, with how many addresses and which subnets and AZs.

use std::net::IpAddr;

use super::*;
use crate::probe::report::TcpResult;

/// The TCP results of the invoke host's addresses.
fn invoke_host_tcp(probe: &ProbeReport) -> Option<(String, Vec<&TcpResult>)> {
    let host = invoke_host(probe)?;
    let addrs: Vec<IpAddr> =
        probe.dns.iter().filter(|d| d.host == host).flat_map(|d| d.addresses.iter().map(|a| a.ip)).collect();
    let results: Vec<&TcpResult> = probe.tcp.iter().filter(|t| addrs.contains(&t.ip)).collect();
    Some((host, results))
}

fn tcp_evidence(results: &[&TcpResult]) -> Vec<String> {
    results.iter().map(|t| format!("{}:{} {:?} after {} ms", t.ip, t.port, t.outcome, t.ms)).collect()
}

/// The invoke host could not be connected to at any address.
pub(super) fn connect(probe: &ProbeReport, facts: Option<&AwsFacts>) -> Option<Finding> {
    if probe.tls.is_some() || probe.invoke.is_none() {
        return None;
    }
    let (host, results) = invoke_host_tcp(probe)?;
    if results.is_empty() {
        return None;
    }
    let evidence = tcp_evidence(&results);
    if results.iter().all(|t| t.outcome == TcpOutcome::Refused) {
        return finding(
            RootCause::ConnectRefused,
            format!("{host} refused TCP {}: the address is not the VPC endpoint", results[0].port),
            evidence,
            vec!["Check DNS: the name resolves to something other than the endpoint's network interfaces".into()],
        );
    }
    let timed_out: Vec<IpAddr> = results.iter().filter(|t| t.outcome == TcpOutcome::Timeout).map(|t| t.ip).collect();
    if timed_out.is_empty() || results.iter().any(|t| t.outcome == TcpOutcome::Connected) {
        return None;
    }
    timeout_cause(probe, facts, &timed_out, evidence, None)
}

/// The probe got through on some of the invoke host's addresses but not on others: the workload,
/// given any of them, fails a share of its calls. Runs after the rules about the answer, so a
/// failure every call hits (TLS, policy, …) is named first.
pub(super) fn partial(probe: &ProbeReport, facts: Option<&AwsFacts>) -> Option<Finding> {
    let (host, results) = invoke_host_tcp(probe)?;
    let v4_connected = results.iter().any(|t| t.ip.is_ipv4() && t.outcome == TcpOutcome::Connected);
    // An IPv6 address this host has no route to, next to a working IPv4 one, is a stack
    // without IPv6 (clients fall back to the other family), not a failing endpoint address.
    let failed: Vec<&TcpResult> = results
        .iter()
        .copied()
        .filter(|t| t.outcome != TcpOutcome::Connected)
        .filter(|t| !(t.ip.is_ipv6() && t.outcome == TcpOutcome::Unreachable && v4_connected))
        .collect();
    if failed.is_empty() || failed.len() == results.len() {
        return None;
    }
    let share = format!("{} of {} addresses of {host}", failed.len(), results.len());
    let mut evidence = vec![format!(
        "{share} failed; the probe's own request went through another one, a workload given a failing address fails"
    )];
    evidence.extend(tcp_evidence(&results));
    let placement = placements(facts, &failed.iter().map(|t| t.ip).collect::<Vec<_>>());
    evidence.extend(placement.iter().cloned());
    let timed_out: Vec<IpAddr> = failed.iter().filter(|t| t.outcome == TcpOutcome::Timeout).map(|t| t.ip).collect();
    if !timed_out.is_empty() {
        return timeout_cause(probe, facts, &timed_out, evidence, Some(&share));
    }
    if failed.iter().all(|t| t.outcome == TcpOutcome::Refused) {
        return finding(
            RootCause::ConnectRefused,
            format!("{share} refused TCP {}: those addresses are not the VPC endpoint's", failed[0].port),
            evidence,
            vec![
                "Find where the refusing addresses come from (a stale record, a resolver rule or hosts entry) and remove them"
                    .into(),
            ],
        );
    }
    finding(
        RootCause::ConnectTimeout,
        format!("{share} could not be reached (no route or socket error)"),
        evidence,
        vec!["Check route tables, transit gateway and firewall routes towards the failing addresses' subnets".into()],
    )
}

/// Where each address lives, from the endpoint's interfaces: `10.0.1.5: eni-1 in subnet-a
/// (us-east-1a)`, or that it is not one of them.
fn placements(facts: Option<&AwsFacts>, ips: &[IpAddr]) -> Vec<String> {
    let Some(e) = facts.and_then(|f| f.endpoint.known()) else { return Vec::new() };
    if e.interfaces.is_empty() {
        return Vec::new();
    }
    ips.iter()
        .map(|ip| match e.interfaces.iter().find(|i| i.private_ips.contains(ip)) {
            Some(i) => format!(
                "{ip}: {} in {} ({})",
                i.id,
                i.subnet_id.as_deref().unwrap_or("an unknown subnet"),
                i.availability_zone.as_deref().unwrap_or("unknown AZ")
            ),
            None => format!("{ip}: not an address of {}'s network interfaces", e.id),
        })
        .collect()
}

/// Why TCP 443 to `timed_out` times out: the security groups, then the NACLs of the subnets of
/// those addresses, else unexplained. `share` words a partial failure.
fn timeout_cause(
    probe: &ProbeReport,
    facts: Option<&AwsFacts>,
    timed_out: &[IpAddr],
    mut evidence: Vec<String>,
    share: Option<&str>,
) -> Option<Finding> {
    let what =
        share.map_or_else(|| "TCP 443 to the endpoint times out".to_owned(), |s| format!("TCP 443 to {s} times out"));
    let region = facts.map_or(probe.target.region.as_str(), |f| f.region.as_str());
    evidence.extend(facts.and_then(source_evidence));
    // Security groups apply to every interface of the endpoint alike: they explain a timeout on
    // all addresses, and a partial one only through the client's outbound rules per address.
    let sg = facts.and_then(|f| {
        let e = f.endpoint.known()?;
        let c = f.client.known()?;
        let groups = f.security_groups.known()?;
        let client = crate::network::Client {
            ip: c.ip,
            security_group_ids: c.interface.security_group_ids.clone(),
            subnet_id: c.interface.subnet_id.clone(),
            subnet_cidr: None,
        };
        let endpoint =
            crate::network::Endpoint { addresses: e.addresses(), security_group_ids: e.security_group_ids.clone() };
        let verdict = crate::network::evaluate_security_groups(&client, &endpoint, groups);
        let fixes = fix::security_groups(&client, &endpoint, groups, region);
        Some((verdict, fixes))
    });
    if let Some((verdict, fixes)) = &sg {
        let blocked_here = verdict.status() == crate::network::SgStatus::Blocked
            && (share.is_none()
                || matches!(verdict.inbound, crate::network::SgOutcome::Blocked { .. })
                || verdict.unreachable_addresses().iter().any(|a| timed_out.contains(a)));
        evidence.push(verdict.to_string());
        if blocked_here {
            return finding(RootCause::SecurityGroupBlocked, format!("{what}: {verdict}"), evidence, verdict.fixes())
                .map(|f| f.with_fixes(fixes.clone()));
        }
    }
    // Then the stateless NACLs of both subnets, per timing-out endpoint address.
    if let Some(f) = facts
        && let (Some(c), Some(e), Some(acls)) = (f.client.known(), f.endpoint.known(), f.network_acls.known())
    {
        let acl_of =
            |subnet: Option<&str>| subnet.and_then(|s| acls.iter().find(|a| a.subnet_ids.iter().any(|x| x == s)));
        let cidr_of = |subnet: Option<&str>| subnet.and_then(|s| f.subnet_cidrs.get(s)).and_then(|c| c.parse().ok());
        let client_subnet = c.interface.subnet_id.as_deref();
        // The interfaces whose address timed out; when none is known (the addresses are not
        // the endpoint's, or its interfaces were not read), every interface, as before.
        let failing: Vec<_> =
            e.interfaces.iter().filter(|i| i.private_ips.iter().any(|ip| timed_out.contains(ip))).collect();
        let candidates = if failing.is_empty() { e.interfaces.iter().collect() } else { failing };
        for iface in candidates {
            let Some(ip) = iface.private_ips.first().copied() else { continue };
            let endpoint_subnet = iface.subnet_id.as_deref();
            let client_side = crate::network::NaclSide {
                ip: c.ip,
                subnet_id: client_subnet,
                subnet_cidr: cidr_of(client_subnet),
                nacl: acl_of(client_subnet),
            };
            let endpoint_side = crate::network::NaclSide {
                ip,
                subnet_id: endpoint_subnet,
                subnet_cidr: cidr_of(endpoint_subnet),
                nacl: acl_of(endpoint_subnet),
            };
            let verdict = crate::network::evaluate_nacls(client_side, endpoint_side);
            evidence.push(verdict.to_string());
            if matches!(
                verdict.status,
                crate::network::NaclStatus::Blocked | crate::network::NaclStatus::PartiallyBlocked
            ) {
                let fixes = fix::network_acls(client_side, endpoint_side, region);
                return finding(
                    RootCause::NetworkAclBlocked,
                    format!("{what}: a network ACL blocks it ({verdict})"),
                    evidence,
                    verdict.fixes(),
                )
                .map(|f| f.with_fixes(fixes));
            }
        }
    }
    let port = probe.tcp.iter().find(|t| timed_out.contains(&t.ip)).map_or(443, |t| t.port);
    let host = invoke_host(probe).unwrap_or_default();
    let summary = match share {
        Some(s) => format!("TCP {port} to {s} times out and no security group or network ACL explains it"),
        None => format!("TCP {port} to {host} times out and no security group or network ACL explains it"),
    };
    let mut remediation =
        vec!["Check the NACLs of both subnets (443 in, 1024-65535 back), route tables and firewalls".to_owned()];
    if share.is_some() {
        remediation.insert(
            0,
            "Compare the failing addresses' subnets and AZs with the working ones: route tables, firewalls or an appliance on that path"
                .into(),
        );
    }
    finding(RootCause::ConnectTimeout, summary, evidence, remediation)
}

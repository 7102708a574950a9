//! Do the security groups let the client open TCP 443 to the VPC endpoint?
//!
//! The AWS rules this implements (VPC User Guide, "Security group rules" and "Control traffic
//! to your AWS resources using security groups"):
//!
//! * Security groups have **allow rules only**. A new group has no inbound rules (nothing comes
//!   in) and one outbound rule allowing everything; a group with no outbound rules lets nothing
//!   out.
//! * When a network interface has several groups, their rules are **aggregated** into one set:
//!   traffic is allowed if *any* rule of *any* of its groups allows it. So the answer here is the
//!   union over the endpoint's groups (inbound) and over the client ENI's groups (outbound).
//! * Security groups are **stateful**: the response to an allowed connection is allowed
//!   whatever the rules in the other direction say. Only two checks are needed — inbound on the
//!   endpoint ENIs and outbound on the client ENI; the reply (443 → ephemeral port) needs no rule.
//! * A rule's peer is a CIDR (IPv4 or IPv6; `/32` or `/128` for one address), a **referenced
//!   security group** — matching the private IPs of the network interfaces that have that group,
//!   which is why the client's and the endpoint's own group ids are what we compare — or a
//!   **managed prefix list** (matching its CIDRs).
//! * Protocol `-1` means all protocols on all ports; for protocol numbers other than TCP, UDP,
//!   ICMP and ICMPv6 the port range is ignored too. A UDP rule never allows TCP.
//!
//! What we cannot know is reported as [`SgOutcome::Unknown`], never guessed: a group id with no
//! facts in the slice (it may hold the allowing rule), an unresolved prefix list, or a
//! referenced group when the other side's groups are unknown. A definite allow wins over any
//! unknown (one allowing rule suffices); `Blocked` is only returned when every group was known
//! and no rule could match.

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::HTTPS_PORT;
use super::model::{Client, Endpoint, PortSpan, SecurityGroup, SgPeer, SgRule, host_cidr};

/// The answer for one direction (or one endpoint address).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "result", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum SgOutcome {
    /// A rule allows the connection.
    Allowed {
        /// The group holding the allowing rule.
        group_id: String,
        /// The allowing rule, described, e.g. `TCP 443 from 10.0.0.0/16 [sgr-0abc]`.
        rule: String,
    },
    /// Every group is known and none allows it.
    Blocked {
        /// The concrete rule to add, e.g.
        /// `add an inbound rule to sg-e: TCP 443 from 10.1.2.3/32 (or from sg-c)`.
        missing: String,
    },
    /// No known rule allows it, but facts are missing that could.
    Unknown {
        /// What is missing.
        reason: String,
    },
}

impl SgOutcome {
    /// True for [`SgOutcome::Allowed`].
    pub fn is_allowed(&self) -> bool {
        matches!(self, SgOutcome::Allowed { .. })
    }
}

impl fmt::Display for SgOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SgOutcome::Allowed { group_id, rule } => write!(f, "allowed by {group_id} ({rule})"),
            SgOutcome::Blocked { missing } => write!(f, "blocked: {missing}"),
            SgOutcome::Unknown { reason } => write!(f, "undetermined: {reason}"),
        }
    }
}

/// The client's outbound answer for one endpoint address (one ENI, i.e. one AZ).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddressOutcome {
    /// The endpoint ENI's private IP.
    pub address: IpAddr,
    /// Whether the client's groups let TCP 443 out to it.
    pub outcome: SgOutcome,
}

/// Overall security group status, for choosing a root cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum SgStatus {
    /// Both directions allowed.
    Allowed,
    /// At least one direction definitely blocked (root cause `SecurityGroupBlocked`).
    Blocked,
    /// Nothing blocked for sure, but a direction could not be decided.
    Unknown,
}

/// Result of [`evaluate_security_groups`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecurityGroupVerdict {
    /// Inbound on the endpoint ENIs: TCP 443 from the client IP.
    pub inbound: SgOutcome,
    /// Outbound on the client ENI: TCP 443 to the endpoint. `Allowed` when at least one endpoint
    /// address is allowed (see [`SecurityGroupVerdict::unreachable_addresses`] for the others).
    pub outbound: SgOutcome,
    /// The outbound answer per endpoint address, in the order of [`Endpoint::addresses`].
    pub outbound_by_address: Vec<AddressOutcome>,
}

impl SecurityGroupVerdict {
    /// `Blocked` if either direction is blocked, else `Unknown` if either is undetermined,
    /// else `Allowed`.
    pub fn status(&self) -> SgStatus {
        let both = [&self.inbound, &self.outbound];
        if both.iter().any(|o| matches!(o, SgOutcome::Blocked { .. })) {
            SgStatus::Blocked
        } else if both.iter().any(|o| matches!(o, SgOutcome::Unknown { .. })) {
            SgStatus::Unknown
        } else {
            SgStatus::Allowed
        }
    }

    /// Endpoint addresses the client's outbound rules do not (definitely) allow, although the
    /// outbound direction as a whole is allowed through another address. A client that resolves
    /// the endpoint name to such an address (round-robin DNS, or the zonal name of that AZ)
    /// times out: worth an advisory even when the check passes.
    pub fn unreachable_addresses(&self) -> Vec<IpAddr> {
        if !self.outbound.is_allowed() {
            return Vec::new();
        }
        self.outbound_by_address.iter().filter(|a| !a.outcome.is_allowed()).map(|a| a.address).collect()
    }

    /// The rules to add, one per blocked direction.
    pub fn fixes(&self) -> Vec<String> {
        [&self.inbound, &self.outbound]
            .into_iter()
            .filter_map(|o| match o {
                SgOutcome::Blocked { missing } => Some(missing.clone()),
                _ => None,
            })
            .collect()
    }
}

impl fmt::Display for SecurityGroupVerdict {
    /// One line, e.g. `security groups: endpoint inbound allowed by sg-e (TCP 443 from
    /// 10.0.0.0/16); client outbound blocked: add an outbound rule to sg-c: …; replies need no
    /// rule (security groups are stateful)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "security groups: endpoint inbound {}; client outbound {}", self.inbound, self.outbound)?;
        let unreachable = self.unreachable_addresses();
        if !unreachable.is_empty() {
            write!(f, ", but not to {}", join(unreachable.iter()))?;
        }
        f.write_str("; replies need no rule (security groups are stateful)")
    }
}

/// Evaluates both security group checks for a TCP 443 connection from `client` to `endpoint`.
///
/// * `groups`: the facts for every group we fetched (endpoint's and client's; order irrelevant,
///   the first entry wins for duplicate ids). A group id of the client or the endpoint that has
///   no entry here is treated as unknown, never as "no rules".
/// * Inbound: the union of the ingress rules of `endpoint.security_group_ids` must allow TCP 443
///   from `client.ip` — by a CIDR containing it, a referenced group in
///   `client.security_group_ids`, or a prefix list containing it.
/// * Outbound: the union of the egress rules of `client.security_group_ids` must allow TCP 443
///   to an endpoint address — by a CIDR containing it, a referenced group in
///   `endpoint.security_group_ids`, or a prefix list containing it — evaluated per address.
///
/// Return traffic is not checked: security groups are stateful.
pub fn evaluate_security_groups(
    client: &Client,
    endpoint: &Endpoint,
    groups: &[SecurityGroup],
) -> SecurityGroupVerdict {
    let inbound = evaluate_inbound(client, endpoint, groups);
    let (outbound, outbound_by_address) = evaluate_outbound(client, endpoint, groups);
    SecurityGroupVerdict { inbound, outbound, outbound_by_address }
}

/// Whether one rule's peer matches the other side of the connection.
enum PeerMatch {
    Yes,
    No,
    /// Could match; the string says what we would need to know.
    Maybe(String),
}

fn yes_if(b: bool) -> PeerMatch {
    if b { PeerMatch::Yes } else { PeerMatch::No }
}

/// Matches a CIDR or prefix-list peer against an address; `None` for a group reference.
fn match_address(peer: &SgPeer, ip: IpAddr) -> Option<PeerMatch> {
    match peer {
        SgPeer::Cidr(net) => Some(yes_if(net.contains(&ip))),
        SgPeer::PrefixList { cidrs: Some(cidrs), .. } => Some(yes_if(cidrs.iter().any(|n| n.contains(&ip)))),
        SgPeer::PrefixList { id, cidrs: None } => {
            Some(PeerMatch::Maybe(format!("prefix list {id} is unresolved (its CIDRs may include {ip})")))
        }
        SgPeer::SecurityGroup { .. } => None,
    }
}

/// Matches a group reference against the group ids of the ENI on the other side.
/// `other_groups` empty means "unknown".
fn match_group(group_id: &str, other_groups: &[String], whose: &str) -> PeerMatch {
    if other_groups.is_empty() {
        PeerMatch::Maybe(format!("a rule references {group_id}, but the {whose}'s security groups are unknown"))
    } else {
        yes_if(other_groups.iter().any(|g| g == group_id))
    }
}

/// True if the rule's protocol and port range cover TCP `port` (AWS: `-1` and protocol numbers
/// other than TCP/UDP/ICMP/ICMPv6 cover all ports; a missing bound is open).
fn rule_covers_tcp_port(rule: &SgRule, port: u16) -> bool {
    if !rule.protocol.covers_tcp() {
        return false;
    }
    if !rule.protocol.uses_port_range() {
        return true;
    }
    let from = rule.from_port.unwrap_or(0);
    let to = rule.to_port.unwrap_or(u16::MAX);
    from <= port && port <= to
}

enum Search<'a> {
    Allowed { group_id: &'a str, rule: &'a SgRule },
    NotAllowed { unknown: Vec<String> },
}

/// Looks for an allowing rule across `group_ids` (deduplicated, in order). Collects what could
/// not be decided instead of stopping on it: a later rule may still allow definitively.
fn find_allow<'a>(
    group_ids: &'a [String],
    groups: &'a [SecurityGroup],
    egress: bool,
    peer_match: &dyn Fn(&SgPeer) -> PeerMatch,
) -> Search<'a> {
    let mut unknown = Vec::new();
    let mut seen = HashSet::new();
    for id in group_ids {
        if !seen.insert(id.as_str()) {
            continue;
        }
        let Some(group) = groups.iter().find(|g| g.id == *id) else {
            unknown.push(format!("no facts for security group {id}"));
            continue;
        };
        let rules = if egress { &group.egress } else { &group.ingress };
        for rule in rules {
            if !rule_covers_tcp_port(rule, HTTPS_PORT) {
                continue;
            }
            match peer_match(&rule.peer) {
                PeerMatch::Yes => return Search::Allowed { group_id: id, rule },
                PeerMatch::Maybe(why) => unknown.push(format!("{id}: {why}")),
                PeerMatch::No => {}
            }
        }
    }
    Search::NotAllowed { unknown }
}

fn evaluate_inbound(client: &Client, endpoint: &Endpoint, groups: &[SecurityGroup]) -> SgOutcome {
    if endpoint.security_group_ids.is_empty() {
        return SgOutcome::Unknown { reason: "the endpoint's security groups are unknown".to_owned() };
    }
    let matcher = |peer: &SgPeer| match peer {
        SgPeer::SecurityGroup { group_id, .. } => match_group(group_id, &client.security_group_ids, "client"),
        other => match_address(other, client.ip).unwrap_or(PeerMatch::No),
    };
    match find_allow(&endpoint.security_group_ids, groups, false, &matcher) {
        Search::Allowed { group_id, rule } => {
            SgOutcome::Allowed { group_id: group_id.to_owned(), rule: describe_rule(rule, false) }
        }
        Search::NotAllowed { unknown } if !unknown.is_empty() => SgOutcome::Unknown {
            reason: format!(
                "no known inbound rule of {} allows TCP {HTTPS_PORT} from {}; {}",
                join(dedup(&endpoint.security_group_ids).iter()),
                client.ip,
                unknown.join("; ")
            ),
        },
        Search::NotAllowed { .. } => SgOutcome::Blocked { missing: inbound_fix(client, endpoint) },
    }
}

fn evaluate_outbound(
    client: &Client,
    endpoint: &Endpoint,
    groups: &[SecurityGroup],
) -> (SgOutcome, Vec<AddressOutcome>) {
    if client.security_group_ids.is_empty() {
        let reason = "the security groups of the client's network interface are unknown".to_owned();
        let per = endpoint
            .addresses
            .iter()
            .map(|&address| AddressOutcome { address, outcome: SgOutcome::Unknown { reason: reason.clone() } })
            .collect();
        return (SgOutcome::Unknown { reason }, per);
    }
    if endpoint.addresses.is_empty() {
        let reason = "the endpoint's network interface addresses are unknown".to_owned();
        return (SgOutcome::Unknown { reason }, Vec::new());
    }

    let per: Vec<AddressOutcome> = endpoint
        .addresses
        .iter()
        .map(|&address| {
            let matcher = |peer: &SgPeer| match peer {
                SgPeer::SecurityGroup { group_id, .. } => {
                    match_group(group_id, &endpoint.security_group_ids, "endpoint")
                }
                other => match_address(other, address).unwrap_or(PeerMatch::No),
            };
            let outcome = match find_allow(&client.security_group_ids, groups, true, &matcher) {
                Search::Allowed { group_id, rule } => {
                    SgOutcome::Allowed { group_id: group_id.to_owned(), rule: describe_rule(rule, true) }
                }
                Search::NotAllowed { unknown } if !unknown.is_empty() => SgOutcome::Unknown {
                    reason: format!(
                        "no known outbound rule of {} allows TCP {HTTPS_PORT} to {address}; {}",
                        join(dedup(&client.security_group_ids).iter()),
                        unknown.join("; ")
                    ),
                },
                Search::NotAllowed { .. } => SgOutcome::Blocked { missing: outbound_fix(client, endpoint, &[address]) },
            };
            AddressOutcome { address, outcome }
        })
        .collect();

    // One reachable endpoint ENI is enough for a connection to succeed.
    if let Some(allowed) = per.iter().find(|a| a.outcome.is_allowed()) {
        return (allowed.outcome.clone(), per);
    }
    let mut reasons: Vec<&str> = Vec::new();
    for a in &per {
        if let SgOutcome::Unknown { reason } = &a.outcome
            && !reasons.contains(&reason.as_str())
        {
            reasons.push(reason);
        }
    }
    let outcome = if reasons.is_empty() {
        SgOutcome::Blocked { missing: outbound_fix(client, endpoint, &endpoint.addresses) }
    } else {
        SgOutcome::Unknown { reason: reasons.join("; ") }
    };
    (outcome, per)
}

/// `add an inbound rule to sg-e: TCP 443 from 10.1.2.3/32 (or from sg-c, or from the client
/// subnet 10.1.0.0/19)`.
fn inbound_fix(client: &Client, endpoint: &Endpoint) -> String {
    let target = target_groups(&endpoint.security_group_ids, "endpoint");
    let mut alternatives = Vec::new();
    if let Some(g) = client.security_group_ids.first() {
        alternatives.push(format!("from {g}"));
    }
    if let Some(net) = client.subnet_cidr {
        alternatives.push(format!("from the client subnet {net}"));
    }
    format!(
        "add an inbound rule to {target}: TCP {HTTPS_PORT} from {}{}",
        host_cidr(client.ip),
        parenthesized(&alternatives)
    )
}

/// `add an outbound rule to sg-c: TCP 443 to 10.0.1.5/32, 10.0.2.5/32 (or to sg-e)`.
fn outbound_fix(client: &Client, endpoint: &Endpoint, addresses: &[IpAddr]) -> String {
    let target = target_groups(&client.security_group_ids, "client");
    let cidrs: Vec<IpNet> = addresses.iter().map(|&a| host_cidr(a)).collect();
    let alternatives: Vec<String> =
        endpoint.security_group_ids.first().map(|g| format!("to {g}")).into_iter().collect();
    format!(
        "add an outbound rule to {target}: TCP {HTTPS_PORT} to {}{}",
        join(cidrs.iter()),
        parenthesized(&alternatives)
    )
}

fn target_groups(ids: &[String], whose: &str) -> String {
    let ids = dedup(ids);
    match ids.as_slice() {
        [] => format!("a security group of the {whose}"),
        [one] => (*one).to_owned(),
        [first, ..] => format!("{first} (or any other {whose} group: {})", join(ids.iter())),
    }
}

fn parenthesized(alternatives: &[String]) -> String {
    if alternatives.is_empty() { String::new() } else { format!(" (or {})", alternatives.join(", or ")) }
}

fn dedup(ids: &[String]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for id in ids {
        if !out.contains(&id.as_str()) {
            out.push(id);
        }
    }
    out
}

fn join<T: fmt::Display>(items: impl Iterator<Item = T>) -> String {
    items.map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
}

/// `TCP 443 from 10.0.0.0/16 [sgr-0abc] "pods"`, `all traffic to sg-0e`, `TCP 0-65535 from
/// prefix list pl-1`.
fn describe_rule(rule: &SgRule, egress: bool) -> String {
    let what = if rule.protocol.uses_port_range() {
        let from = rule.from_port.unwrap_or(0);
        let to = rule.to_port.unwrap_or(u16::MAX);
        match PortSpan::new(from, to) {
            Some(span) => format!("{} {span}", rule.protocol),
            None => format!("{} {from}-{to}", rule.protocol),
        }
    } else {
        rule.protocol.to_string()
    };
    let peer = match &rule.peer {
        SgPeer::Cidr(net) => net.to_string(),
        SgPeer::SecurityGroup { group_id, user_id: Some(account) } => format!("{account}/{group_id}"),
        SgPeer::SecurityGroup { group_id, user_id: None } => group_id.clone(),
        SgPeer::PrefixList { id, .. } => format!("prefix list {id}"),
    };
    let mut s = format!("{what} {} {peer}", if egress { "to" } else { "from" });
    if let Some(id) = &rule.rule_id {
        s.push_str(&format!(" [{id}]"));
    }
    if let Some(d) = rule.description.as_deref().filter(|d| !d.is_empty()) {
        s.push_str(&format!(" \"{d}\""));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::super::model::IpProtocol;
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Kind {
        Allowed,
        Blocked,
        Unknown,
    }

    fn kind(o: &SgOutcome) -> Kind {
        match o {
            SgOutcome::Allowed { .. } => Kind::Allowed,
            SgOutcome::Blocked { .. } => Kind::Blocked,
            SgOutcome::Unknown { .. } => Kind::Unknown,
        }
    }

    fn rule(protocol: IpProtocol, from: Option<u16>, to: Option<u16>, peer: SgPeer) -> SgRule {
        SgRule { rule_id: None, protocol, from_port: from, to_port: to, peer, description: None }
    }
    fn tcp(from: u16, to: u16, peer: SgPeer) -> SgRule {
        rule(IpProtocol::Tcp, Some(from), Some(to), peer)
    }
    fn all(peer: SgPeer) -> SgRule {
        rule(IpProtocol::All, None, None, peer)
    }
    fn cidr(s: &str) -> SgPeer {
        SgPeer::Cidr(s.parse().unwrap())
    }
    fn sg(id: &str) -> SgPeer {
        SgPeer::SecurityGroup { group_id: id.into(), user_id: None }
    }
    fn pl(id: &str, cidrs: Option<&[&str]>) -> SgPeer {
        SgPeer::PrefixList { id: id.into(), cidrs: cidrs.map(|c| c.iter().map(|s| s.parse().unwrap()).collect()) }
    }
    fn group(id: &str, ingress: Vec<SgRule>, egress: Vec<SgRule>) -> SecurityGroup {
        SecurityGroup { id: id.into(), vpc_id: Some("vpc-1".into()), ingress, egress }
    }
    fn client(ip: &str, sgs: &[&str]) -> Client {
        Client {
            ip: ip.parse().unwrap(),
            security_group_ids: sgs.iter().map(|s| s.to_string()).collect(),
            subnet_id: Some("subnet-c".into()),
            subnet_cidr: None,
        }
    }
    fn endpoint(addrs: &[&str], sgs: &[&str]) -> Endpoint {
        Endpoint {
            addresses: addrs.iter().map(|a| a.parse().unwrap()).collect(),
            security_group_ids: sgs.iter().map(|s| s.to_string()).collect(),
        }
    }
    fn allow_all_egress(id: &str) -> SecurityGroup {
        group(id, vec![], vec![all(cidr("0.0.0.0/0")), all(cidr("::/0"))])
    }

    /// (name, client IP, client groups, endpoint group's ingress rules, expected inbound)
    type InboundCase = (&'static str, &'static str, &'static [&'static str], Vec<SgRule>, Kind);

    /// Endpoint ingress: one endpoint group `sg-e` with `rules`; client group `sg-c` allows all out.
    #[test]
    fn inbound_table() {
        let v4 = "10.1.2.3";
        let v6 = "2001:db8:1::10";
        let cases: Vec<InboundCase> = vec![
            ("cidr v4 contains", v4, &["sg-c"], vec![tcp(443, 443, cidr("10.1.0.0/16"))], Kind::Allowed),
            ("cidr v4 not containing", v4, &["sg-c"], vec![tcp(443, 443, cidr("10.2.0.0/16"))], Kind::Blocked),
            ("cidr /32 exact", v4, &["sg-c"], vec![tcp(443, 443, cidr("10.1.2.3/32"))], Kind::Allowed),
            ("cidr /32 neighbour", v4, &["sg-c"], vec![tcp(443, 443, cidr("10.1.2.4/32"))], Kind::Blocked),
            ("cidr /0", v4, &["sg-c"], vec![tcp(443, 443, cidr("0.0.0.0/0"))], Kind::Allowed),
            ("cidr v6 contains", v6, &["sg-c"], vec![tcp(443, 443, cidr("2001:db8:1::/64"))], Kind::Allowed),
            ("cidr v6 /128", v6, &["sg-c"], vec![tcp(443, 443, cidr("2001:db8:1::10/128"))], Kind::Allowed),
            ("cidr v6 not containing", v6, &["sg-c"], vec![tcp(443, 443, cidr("2001:db8:2::/64"))], Kind::Blocked),
            ("v6 client vs v4 /0", v6, &["sg-c"], vec![tcp(443, 443, cidr("0.0.0.0/0"))], Kind::Blocked),
            ("v4 client vs v6 ::/0", v4, &["sg-c"], vec![tcp(443, 443, cidr("::/0"))], Kind::Blocked),
            ("port range inside", v4, &["sg-c"], vec![tcp(400, 500, cidr("10.0.0.0/8"))], Kind::Allowed),
            ("port range lower edge", v4, &["sg-c"], vec![tcp(443, 1000, cidr("10.0.0.0/8"))], Kind::Allowed),
            ("port range upper edge", v4, &["sg-c"], vec![tcp(1, 443, cidr("10.0.0.0/8"))], Kind::Allowed),
            ("port range just above", v4, &["sg-c"], vec![tcp(444, 1000, cidr("10.0.0.0/8"))], Kind::Blocked),
            ("port range just below", v4, &["sg-c"], vec![tcp(1, 442, cidr("10.0.0.0/8"))], Kind::Blocked),
            ("only port 80", v4, &["sg-c"], vec![tcp(80, 80, cidr("0.0.0.0/0"))], Kind::Blocked),
            (
                "tcp without ports = all",
                v4,
                &["sg-c"],
                vec![rule(IpProtocol::Tcp, None, None, cidr("10.0.0.0/8"))],
                Kind::Allowed,
            ),
            ("protocol -1", v4, &["sg-c"], vec![all(cidr("10.0.0.0/8"))], Kind::Allowed),
            (
                "protocol -1 ignores a port range",
                v4,
                &["sg-c"],
                vec![rule(IpProtocol::All, Some(80), Some(80), cidr("10.0.0.0/8"))],
                Kind::Allowed,
            ),
            (
                "udp 443 only",
                v4,
                &["sg-c"],
                vec![rule(IpProtocol::Udp, Some(443), Some(443), cidr("0.0.0.0/0"))],
                Kind::Blocked,
            ),
            ("icmp only", v4, &["sg-c"], vec![rule(IpProtocol::Icmp, None, None, cidr("0.0.0.0/0"))], Kind::Blocked),
            (
                "protocol 47 only",
                v4,
                &["sg-c"],
                vec![rule(IpProtocol::Other(47), None, None, cidr("0.0.0.0/0"))],
                Kind::Blocked,
            ),
            ("referenced group the client has", v4, &["sg-x", "sg-c"], vec![tcp(443, 443, sg("sg-c"))], Kind::Allowed),
            ("referenced group the client lacks", v4, &["sg-c"], vec![tcp(443, 443, sg("sg-other"))], Kind::Blocked),
            ("referenced group, client groups unknown", v4, &[], vec![tcp(443, 443, sg("sg-c"))], Kind::Unknown),
            (
                "prefix list resolved, contains",
                v4,
                &["sg-c"],
                vec![tcp(443, 443, pl("pl-1", Some(&["10.1.0.0/16"])))],
                Kind::Allowed,
            ),
            (
                "prefix list resolved, not containing",
                v4,
                &["sg-c"],
                vec![tcp(443, 443, pl("pl-1", Some(&["192.168.0.0/16"])))],
                Kind::Blocked,
            ),
            ("prefix list resolved empty", v4, &["sg-c"], vec![tcp(443, 443, pl("pl-1", Some(&[])))], Kind::Blocked),
            ("prefix list unresolved", v4, &["sg-c"], vec![tcp(443, 443, pl("pl-1", None))], Kind::Unknown),
            (
                "unresolved prefix list on a non-matching port is irrelevant",
                v4,
                &["sg-c"],
                vec![tcp(80, 80, pl("pl-1", None))],
                Kind::Blocked,
            ),
            (
                "unresolved prefix list, later rule allows",
                v4,
                &["sg-c"],
                vec![tcp(443, 443, pl("pl-1", None)), tcp(443, 443, cidr("10.0.0.0/8"))],
                Kind::Allowed,
            ),
            ("no inbound rules", v4, &["sg-c"], vec![], Kind::Blocked),
        ];
        for (name, ip, client_sgs, rules, want) in cases {
            let groups = vec![group("sg-e", rules, vec![]), allow_all_egress("sg-c"), allow_all_egress("sg-x")];
            let addr = if ip.contains(':') { "2001:db8:9::5" } else { "10.9.0.5" };
            let v = evaluate_security_groups(&client(ip, client_sgs), &endpoint(&[addr], &["sg-e"]), &groups);
            assert_eq!(kind(&v.inbound), want, "{name}: {}", v.inbound);
        }
    }

    /// Client egress: client group `sg-c` with `rules`; endpoint `sg-e` with two ENIs.
    #[test]
    fn outbound_table() {
        let a1 = "10.0.1.5";
        let a2 = "10.0.2.5";
        let cases: Vec<(&str, &[&str], Vec<SgRule>, Kind)> = vec![
            ("default allow-all egress", &["sg-c"], vec![all(cidr("0.0.0.0/0"))], Kind::Allowed),
            ("egress only to 80", &["sg-c"], vec![tcp(80, 80, cidr("0.0.0.0/0"))], Kind::Blocked),
            ("egress 443 to VPC CIDR", &["sg-c"], vec![tcp(443, 443, cidr("10.0.0.0/16"))], Kind::Allowed),
            ("egress 443 to another CIDR", &["sg-c"], vec![tcp(443, 443, cidr("172.16.0.0/12"))], Kind::Blocked),
            ("egress to the endpoint group", &["sg-c"], vec![tcp(443, 443, sg("sg-e"))], Kind::Allowed),
            ("egress to some other group", &["sg-c"], vec![tcp(443, 443, sg("sg-z"))], Kind::Blocked),
            (
                "egress prefix list resolved",
                &["sg-c"],
                vec![tcp(443, 443, pl("pl-9", Some(&["10.0.0.0/16"])))],
                Kind::Allowed,
            ),
            ("egress prefix list unresolved", &["sg-c"], vec![tcp(443, 443, pl("pl-9", None))], Kind::Unknown),
            ("no egress rules", &["sg-c"], vec![], Kind::Blocked),
            (
                "udp 443 only",
                &["sg-c"],
                vec![rule(IpProtocol::Udp, Some(443), Some(443), cidr("0.0.0.0/0"))],
                Kind::Blocked,
            ),
            ("client groups unknown", &[], vec![all(cidr("0.0.0.0/0"))], Kind::Unknown),
            ("client group without facts", &["sg-missing"], vec![], Kind::Unknown),
            ("union: second client group allows", &["sg-c", "sg-c2"], vec![], Kind::Allowed),
        ];
        for (name, client_sgs, rules, want) in cases {
            let groups = vec![
                group("sg-e", vec![tcp(443, 443, cidr("10.0.0.0/8"))], vec![]),
                group("sg-c", vec![], rules),
                group("sg-c2", vec![], vec![tcp(443, 443, cidr("10.0.0.0/16"))]),
            ];
            let v = evaluate_security_groups(&client("10.0.3.7", client_sgs), &endpoint(&[a1, a2], &["sg-e"]), &groups);
            assert_eq!(kind(&v.outbound), want, "{name}: {}", v.outbound);
            assert_eq!(v.outbound_by_address.len(), 2, "{name}");
            if want == Kind::Allowed {
                assert!(v.unreachable_addresses().is_empty(), "{name}");
            }
        }
    }

    #[test]
    fn multiple_endpoint_groups_union_names_the_allowing_group() {
        let groups = vec![
            group("sg-e1", vec![tcp(22, 22, cidr("10.0.0.0/8"))], vec![]),
            group("sg-e2", vec![tcp(443, 443, cidr("10.1.0.0/16"))], vec![]),
            allow_all_egress("sg-c"),
        ];
        let v = evaluate_security_groups(
            &client("10.1.2.3", &["sg-c"]),
            &endpoint(&["10.0.1.5"], &["sg-e1", "sg-e2"]),
            &groups,
        );
        assert_eq!(v.inbound, SgOutcome::Allowed { group_id: "sg-e2".into(), rule: "TCP 443 from 10.1.0.0/16".into() });
        assert_eq!(v.status(), SgStatus::Allowed);
    }

    #[test]
    fn unknown_group_facts_are_never_no_rules() {
        let allow = group("sg-e2", vec![tcp(443, 443, cidr("10.0.0.0/8"))], vec![]);
        let deny_all = group("sg-e1", vec![], vec![]);
        let c = client("10.1.2.3", &["sg-c"]);
        let egress = allow_all_egress("sg-c");

        // Only unknown group: Unknown, naming the group.
        let v = evaluate_security_groups(&c, &endpoint(&["10.0.1.5"], &["sg-missing"]), std::slice::from_ref(&egress));
        match &v.inbound {
            SgOutcome::Unknown { reason } => {
                assert!(reason.contains("no facts for security group sg-missing"), "{reason}")
            }
            other => panic!("expected Unknown, got {other:?}"),
        }
        assert_eq!(v.status(), SgStatus::Unknown);

        // Known group without a matching rule + unknown group: still Unknown, not Blocked.
        let v = evaluate_security_groups(
            &c,
            &endpoint(&["10.0.1.5"], &["sg-e1", "sg-missing"]),
            &[deny_all.clone(), egress.clone()],
        );
        assert_eq!(kind(&v.inbound), Kind::Unknown, "{}", v.inbound);

        // Unknown group + a known allowing group: Allowed (one allow suffices).
        let v = evaluate_security_groups(&c, &endpoint(&["10.0.1.5"], &["sg-missing", "sg-e2"]), &[allow, egress]);
        assert_eq!(kind(&v.inbound), Kind::Allowed);

        // Endpoint groups not known at all.
        let v = evaluate_security_groups(&c, &endpoint(&["10.0.1.5"], &[]), &[deny_all]);
        assert_eq!(kind(&v.inbound), Kind::Unknown);
        assert_eq!(kind(&v.outbound), Kind::Unknown, "no facts for sg-c: {}", v.outbound);
    }

    #[test]
    fn egress_allowed_to_one_address_only_is_allowed_but_names_the_other() {
        let groups = vec![
            group("sg-e", vec![tcp(443, 443, cidr("10.0.0.0/8"))], vec![]),
            group("sg-c", vec![], vec![tcp(443, 443, cidr("10.0.1.5/32"))]),
        ];
        let v = evaluate_security_groups(
            &client("10.0.3.7", &["sg-c"]),
            &endpoint(&["10.0.1.5", "10.0.2.5"], &["sg-e"]),
            &groups,
        );
        assert!(v.outbound.is_allowed());
        assert_eq!(v.unreachable_addresses(), vec!["10.0.2.5".parse::<IpAddr>().unwrap()]);
        match &v.outbound_by_address[1].outcome {
            SgOutcome::Blocked { missing } => {
                assert_eq!(missing, "add an outbound rule to sg-c: TCP 443 to 10.0.2.5/32 (or to sg-e)")
            }
            other => panic!("expected Blocked, got {other:?}"),
        }
        assert!(v.to_string().contains(", but not to 10.0.2.5"), "{v}");
    }

    #[test]
    fn no_endpoint_addresses_is_unknown() {
        let groups = vec![group("sg-e", vec![], vec![]), allow_all_egress("sg-c")];
        let v = evaluate_security_groups(&client("10.0.3.7", &["sg-c"]), &endpoint(&[], &["sg-e"]), &groups);
        assert_eq!(kind(&v.outbound), Kind::Unknown);
    }

    /// Classic misconfiguration 1 (the article's `telnet vpce-host 443` hangs): the endpoint's
    /// group has no inbound 443 from the pod (only the default self-reference).
    #[test]
    fn classic_endpoint_sg_without_inbound_443_from_pod() {
        let groups = vec![
            group("sg-0endpoint", vec![all(sg("sg-0endpoint"))], vec![all(cidr("0.0.0.0/0"))]),
            allow_all_egress("sg-0node"),
        ];
        let mut c = client("10.1.2.3", &["sg-0node"]);
        c.subnet_cidr = Some("10.1.0.0/19".parse().unwrap());
        let v = evaluate_security_groups(&c, &endpoint(&["10.0.1.5", "10.0.2.5"], &["sg-0endpoint"]), &groups);
        assert_eq!(
            v.inbound,
            SgOutcome::Blocked {
                missing:
                    "add an inbound rule to sg-0endpoint: TCP 443 from 10.1.2.3/32 (or from sg-0node, or from the \
                          client subnet 10.1.0.0/19)"
                        .into()
            }
        );
        assert!(v.outbound.is_allowed());
        assert_eq!(v.status(), SgStatus::Blocked);
        assert_eq!(v.fixes().len(), 1);
        let line = v.to_string();
        assert!(!line.contains('\n'));
        assert!(
            line.starts_with("security groups: endpoint inbound blocked: add an inbound rule to sg-0endpoint"),
            "{line}"
        );
    }

    /// Classic misconfiguration 2: the client's group only lets TCP 80 out.
    #[test]
    fn classic_client_sg_egress_only_80() {
        let groups = vec![
            group("sg-0endpoint", vec![tcp(443, 443, cidr("10.0.0.0/8"))], vec![]),
            group("sg-0pod", vec![], vec![tcp(80, 80, cidr("0.0.0.0/0"))]),
        ];
        let v = evaluate_security_groups(
            &client("10.1.2.3", &["sg-0pod"]),
            &endpoint(&["10.0.1.5", "10.0.2.5"], &["sg-0endpoint"]),
            &groups,
        );
        assert!(v.inbound.is_allowed());
        assert_eq!(
            v.outbound,
            SgOutcome::Blocked {
                missing: "add an outbound rule to sg-0pod: TCP 443 to 10.0.1.5/32, 10.0.2.5/32 (or to sg-0endpoint)"
                    .into()
            }
        );
        assert_eq!(v.status(), SgStatus::Blocked);
        assert!(v.unreachable_addresses().is_empty(), "outbound as a whole is blocked, not partially");
    }

    #[test]
    fn allowed_rule_description_and_display() {
        let mut r =
            tcp(443, 443, SgPeer::SecurityGroup { group_id: "sg-c".into(), user_id: Some("111122223333".into()) });
        r.rule_id = Some("sgr-1".into());
        r.description = Some("pods".into());
        let groups = vec![group("sg-e", vec![r], vec![]), allow_all_egress("sg-c")];
        let v = evaluate_security_groups(&client("10.1.2.3", &["sg-c"]), &endpoint(&["10.0.1.5"], &["sg-e"]), &groups);
        assert_eq!(
            v.to_string(),
            "security groups: endpoint inbound allowed by sg-e (TCP 443 from 111122223333/sg-c [sgr-1] \"pods\"); \
             client outbound allowed by sg-c (all traffic to 0.0.0.0/0); replies need no rule (security groups are \
             stateful)"
        );
    }

    #[test]
    fn ipv6_fix_uses_slash_128_and_multiple_endpoint_groups_are_named() {
        let groups = vec![group("sg-e1", vec![], vec![]), group("sg-e2", vec![], vec![]), allow_all_egress("sg-c")];
        let v = evaluate_security_groups(
            &client("2001:db8:1::10", &["sg-c"]),
            &endpoint(&["2001:db8:9::5"], &["sg-e1", "sg-e2"]),
            &groups,
        );
        match &v.inbound {
            SgOutcome::Blocked { missing } => assert_eq!(
                missing,
                "add an inbound rule to sg-e1 (or any other endpoint group: sg-e1, sg-e2): TCP 443 from \
                 2001:db8:1::10/128 (or from sg-c)"
            ),
            other => panic!("expected Blocked, got {other:?}"),
        }
        assert!(v.outbound.is_allowed(), "::/0 egress covers the v6 endpoint");
    }

    #[test]
    fn verdict_serializes_with_tagged_outcomes() {
        let groups = vec![group("sg-e", vec![], vec![]), allow_all_egress("sg-c")];
        let v = evaluate_security_groups(&client("10.1.2.3", &["sg-c"]), &endpoint(&["10.0.1.5"], &["sg-e"]), &groups);
        let json = serde_json::to_string(&v).unwrap();
        assert!(json.contains(r#""inbound":{"result":"blocked","missing":"#), "{json}");
        assert!(json.contains(r#""outbound":{"result":"allowed","groupId":"sg-c""#), "{json}");
        let back: SecurityGroupVerdict = serde_json::from_str(&json).unwrap();
        assert_eq!(back, v);
    }
}

//! Do the network ACLs let a TCP 443 connection and its replies through?
//!
//! The AWS rules this implements (VPC User Guide, "Network ACLs", "Network ACL rules", "Default
//! network ACL", "Ephemeral ports"):
//!
//! * A network ACL filters traffic **entering or leaving a subnet**; every subnet is associated
//!   with exactly one ACL. Traffic between two addresses of the *same* subnet does not cross the
//!   subnet boundary and is not evaluated by network ACLs ([`NaclScope::SameSubnet`]; all legs
//!   are then [`LegStatus::NotApplicable`]).
//! * ACLs are **stateless**: the reply to allowed traffic is evaluated again, by the outbound
//!   rules of the replying side and the inbound rules of the receiving side. A connection from a
//!   pod to the endpoint therefore crosses four rule sets — the four [`Leg`]s.
//! * Inbound and outbound entries are separate lists. Each list is evaluated in **ascending
//!   rule number**; the **first matching rule decides** (allow or deny) and later rules are not
//!   consulted, even if they contradict it.
//! * Every ACL ends with the unchangeable `*` rule (reported by the API as rule number 32767,
//!   one for IPv4 and one for IPv6) denying whatever no numbered rule matched. We apply it even
//!   when the facts do not list it.
//! * An entry matches by protocol (`-1` = all protocols and all ports; for protocol numbers
//!   other than TCP/UDP/ICMP the port range is ignored), by CIDR — the **source** for inbound
//!   entries, the **destination** for outbound ones; an IPv6 CIDR never matches an IPv4 packet —
//!   and, for TCP/UDP, by the packet's **destination port**.
//! * **Ephemeral ports**: the reply goes back to the client's source port, which the client's
//!   kernel picks. Linux uses 32768–60999 by default (`net.ipv4.ip_local_port_range`), AWS
//!   recommends allowing 1024–65535 to cover every client kind. We cannot know the port of a
//!   given connection, so a reply leg is [`LegStatus::Allowed`] only if the *whole* client range
//!   (default [`LINUX_EPHEMERAL_PORTS`]) is allowed, [`LegStatus::Partial`] if some of it is
//!   (connections fail intermittently), [`LegStatus::Denied`] if none is. Decisions are reported
//!   over 1024–65535 so the report can name which ports are allowed.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::HTTPS_PORT;
use super::model::{Client, DEFAULT_RULE_NUMBER, NaclAction, NaclEntry, NetworkAcl, PortSpan, host_cidr};

/// Linux's default ephemeral (local) port range, 32768–60999: what a pod's source port is
/// drawn from unless the pod changes `net.ipv4.ip_local_port_range`.
pub const LINUX_EPHEMERAL_PORTS: PortSpan = PortSpan { from: 32768, to: 60999 };

/// The ephemeral range AWS recommends opening in network ACLs, 1024–65535.
pub const AWS_RECOMMENDED_EPHEMERAL_PORTS: PortSpan = PortSpan { from: 1024, to: 65535 };

/// One side of the connection as the ACL check sees it.
#[derive(Debug, Clone, Copy)]
pub struct NaclSide<'a> {
    /// The client's (pod) IP, or the endpoint ENI's private IP.
    pub ip: IpAddr,
    /// The subnet of that network interface, when known (decides "same subnet").
    pub subnet_id: Option<&'a str>,
    /// That subnet's CIDR, when known: the other side's fix names it instead of a `/32` (a pod
    /// IP is not stable enough for an ACL entry).
    pub subnet_cidr: Option<IpNet>,
    /// The ACL associated with that subnet; `None` = not fetched (those legs are `Unknown`).
    pub nacl: Option<&'a NetworkAcl>,
}

impl<'a> NaclSide<'a> {
    /// The client's side, from the same [`Client`] given to the security group check.
    pub fn of_client(client: &'a Client, nacl: Option<&'a NetworkAcl>) -> NaclSide<'a> {
        NaclSide { ip: client.ip, subnet_id: client.subnet_id.as_deref(), subnet_cidr: client.subnet_cidr, nacl }
    }
}

/// The four stateless crossings of a client → endpoint TCP 443 connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Leg {
    /// Client subnet, outbound: TCP to endpoint:443.
    ClientEgress,
    /// Endpoint subnet, inbound: TCP from the client to 443.
    EndpointIngress,
    /// Endpoint subnet, outbound: the reply from 443 to the client's ephemeral port.
    EndpointEgress,
    /// Client subnet, inbound: the reply from endpoint:443 to the client's ephemeral port.
    ClientIngress,
}

impl Leg {
    /// The legs in packet order.
    pub const ALL: [Leg; 4] = [Leg::ClientEgress, Leg::EndpointIngress, Leg::EndpointEgress, Leg::ClientIngress];

    /// True for the legs evaluated by outbound entries.
    pub const fn is_egress(self) -> bool {
        matches!(self, Leg::ClientEgress | Leg::EndpointEgress)
    }

    /// True for the legs evaluated by the client subnet's ACL.
    pub const fn on_client_subnet(self) -> bool {
        matches!(self, Leg::ClientEgress | Leg::ClientIngress)
    }

    /// True for the reply legs (destination = the client's ephemeral port).
    pub const fn is_reply(self) -> bool {
        matches!(self, Leg::EndpointEgress | Leg::ClientIngress)
    }

    /// Short label for reports.
    pub const fn label(self) -> &'static str {
        match self {
            Leg::ClientEgress => "client subnet outbound to endpoint:443",
            Leg::EndpointIngress => "endpoint subnet inbound from client to 443",
            Leg::EndpointEgress => "endpoint subnet outbound reply to client ephemeral ports",
            Leg::ClientIngress => "client subnet inbound reply from endpoint:443",
        }
    }
}

impl fmt::Display for Leg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Outcome of one leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum LegStatus {
    /// Every required port is allowed.
    Allowed,
    /// Some required ports are allowed, some denied (reply legs only).
    Partial,
    /// No required port is allowed.
    Denied,
    /// The ACL for this side is not known.
    Unknown,
    /// Not evaluated: client and endpoint share a subnet.
    NotApplicable,
}

/// Which rule decided a span of destination ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PortDecision {
    /// Destination ports decided by this rule.
    pub ports: PortSpan,
    /// The deciding rule; [`DEFAULT_RULE_NUMBER`] for `*` (listed or implicit).
    pub rule_number: u16,
    /// What that rule does.
    pub action: NaclAction,
}

/// One leg's evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LegResult {
    /// Which crossing.
    pub leg: Leg,
    /// The ACL evaluated, when known.
    pub nacl_id: Option<String>,
    /// The address the entries' CIDR is matched against: the destination for outbound legs,
    /// the source for inbound legs.
    pub peer: IpAddr,
    /// The peer's subnet CIDR when known; [`LegResult::fix`] names it rather than `peer/32`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<super::model::Cidr>")]
    pub peer_subnet: Option<IpNet>,
    /// Destination ports that must all be allowed: 443, or the client's ephemeral range.
    pub required: PortSpan,
    /// Destination ports `decisions` cover: 443, or 1024–65535 joined with `required`.
    pub examined: PortSpan,
    /// The leg's outcome, judged on `required`.
    pub status: LegStatus,
    /// First-match decisions over `examined`, in port order (empty when not evaluated).
    pub decisions: Vec<PortDecision>,
    /// Why the leg is `Unknown` / `NotApplicable`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl LegResult {
    /// The deciding `(rule number, action)` pairs within `required`, in port order, deduplicated.
    pub fn deciding_rules(&self) -> Vec<(u16, NaclAction)> {
        let mut out: Vec<(u16, NaclAction)> = Vec::new();
        for d in &self.decisions {
            if d.ports.intersect(self.required).is_some() && !out.contains(&(d.rule_number, d.action)) {
                out.push((d.rule_number, d.action));
            }
        }
        out
    }

    /// The entry to add when the leg is `Denied` or `Partial`, e.g. `in acl-e (endpoint subnet)
    /// add an inbound rule numbered below 90: allow TCP 443 from 10.1.0.0/19` (the peer's subnet
    /// CIDR, or `peer/32` when unknown). Reply legs name AWS's recommended 1024-65535.
    pub fn fix(&self) -> Option<String> {
        if !matches!(self.status, LegStatus::Denied | LegStatus::Partial) {
            return None;
        }
        let acl = self.nacl_id.as_deref().unwrap_or("the network ACL");
        let side = if self.leg.on_client_subnet() { "client" } else { "endpoint" };
        let dir = if self.leg.is_egress() { "outbound" } else { "inbound" };
        let to_from = if self.leg.is_egress() { "to" } else { "from" };
        let ports = if self.leg.is_reply() { AWS_RECOMMENDED_EPHEMERAL_PORTS } else { PortSpan::single(HTTPS_PORT) };
        let first_deny = self
            .decisions
            .iter()
            .filter(|d| d.action == NaclAction::Deny && d.rule_number != DEFAULT_RULE_NUMBER)
            .filter(|d| d.ports.intersect(self.required).is_some())
            .map(|d| d.rule_number)
            .min();
        let below = first_deny.map(|n| format!(" numbered below {n}")).unwrap_or_default();
        Some(format!(
            "in {acl} ({side} subnet) add an {dir} rule{below}: allow TCP {ports} {to_from} {}",
            self.peer_subnet.unwrap_or_else(|| host_cidr(self.peer))
        ))
    }

    fn spans_with(&self, action: NaclAction, within: PortSpan) -> Vec<(PortSpan, u16)> {
        self.decisions
            .iter()
            .filter(|d| d.action == action)
            .filter_map(|d| d.ports.intersect(within).map(|p| (p, d.rule_number)))
            .collect()
    }
}

impl fmt::Display for LegResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.leg)?;
        if let Some(id) = &self.nacl_id {
            write!(f, " ({id})")?;
        }
        match self.status {
            LegStatus::Allowed => write!(f, ": allowed by {}", rules_text(&self.deciding_rules())),
            LegStatus::Denied => {
                write!(f, ": denied by {}", rules_text(&self.deciding_rules()))?;
                let outside = self.spans_with(NaclAction::Allow, self.examined);
                if !outside.is_empty() {
                    write!(f, " (only {} allowed, outside ports {})", spans_text(&outside), self.required)?;
                }
                Ok(())
            }
            LegStatus::Partial => {
                let allowed = self.spans_with(NaclAction::Allow, self.required);
                let denied = self.spans_with(NaclAction::Deny, self.required);
                write!(
                    f,
                    ": partial, of ports {} only {} allowed and {} denied",
                    self.required,
                    spans_text(&allowed),
                    spans_text(&denied)
                )
            }
            LegStatus::Unknown => write!(f, ": unknown ({})", self.note.as_deref().unwrap_or("no facts")),
            LegStatus::NotApplicable => write!(f, ": not evaluated ({})", self.note.as_deref().unwrap_or("n/a")),
        }
    }
}

fn rule_text(n: u16) -> String {
    if n == DEFAULT_RULE_NUMBER { "the default rule *".to_owned() } else { format!("rule {n}") }
}

fn rules_text(rules: &[(u16, NaclAction)]) -> String {
    if rules.is_empty() {
        return "no rule".to_owned();
    }
    rules.iter().map(|(n, _)| rule_text(*n)).collect::<Vec<_>>().join(", ")
}

fn spans_text(spans: &[(PortSpan, u16)]) -> String {
    spans.iter().map(|(p, n)| format!("{p} ({})", rule_text(*n))).collect::<Vec<_>>().join(", ")
}

/// Whether the two sides share a subnet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum NaclScope {
    /// Same subnet: network ACLs do not apply.
    SameSubnet {
        /// The shared subnet.
        subnet_id: String,
    },
    /// Known to be different subnets: all four legs apply.
    DifferentSubnets,
    /// Cannot tell (subnet ids missing and the ACLs do not disambiguate).
    Unknown,
}

/// Overall network ACL status, for choosing a root cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum NaclStatus {
    /// All four legs allowed.
    Allowed,
    /// No leg denied outright, but a reply leg allows only part of the ephemeral range.
    PartiallyBlocked,
    /// A leg is denied (root cause `NetworkAclBlocked`).
    Blocked,
    /// A leg could not be evaluated, or the subnets are unknown and a deny might not apply.
    Unknown,
    /// Same subnet: network ACLs play no part.
    NotApplicable,
}

/// Result of [`evaluate_nacls`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NaclVerdict {
    /// Same subnet or not.
    pub scope: NaclScope,
    /// Overall status.
    pub status: NaclStatus,
    /// The four legs, in [`Leg::ALL`] order.
    pub legs: Vec<LegResult>,
    /// Why `status` is `Unknown` although legs were denied (unknown subnets), when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl NaclVerdict {
    /// The entries to add, one per `Denied`/`Partial` leg.
    pub fn fixes(&self) -> Vec<String> {
        self.legs.iter().filter_map(LegResult::fix).collect()
    }

    /// The result for one leg.
    pub fn leg(&self, leg: Leg) -> Option<&LegResult> {
        self.legs.iter().find(|l| l.leg == leg)
    }
}

impl fmt::Display for NaclVerdict {
    /// One line, e.g. `network ACLs: blocked — endpoint subnet inbound from client to 443
    /// (acl-e): denied by rule 90`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |status: &[LegStatus]| {
            self.legs
                .iter()
                .filter(|l| status.contains(&l.status))
                .map(|l| l.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        };
        match self.status {
            NaclStatus::NotApplicable => {
                let subnet = match &self.scope {
                    NaclScope::SameSubnet { subnet_id } => subnet_id.as_str(),
                    _ => "?",
                };
                write!(
                    f,
                    "network ACLs: not evaluated, client and endpoint are both in {subnet} (network ACLs only \
                     filter traffic entering or leaving a subnet)"
                )
            }
            NaclStatus::Allowed => write!(f, "network ACLs: all four legs allowed — {}", join(&[LegStatus::Allowed])),
            NaclStatus::Blocked => {
                write!(f, "network ACLs: blocked — {}", join(&[LegStatus::Denied, LegStatus::Partial]))
            }
            NaclStatus::PartiallyBlocked => {
                write!(f, "network ACLs: partially blocked (intermittent timeouts) — {}", join(&[LegStatus::Partial]))
            }
            NaclStatus::Unknown => match &self.note {
                Some(note) => write!(f, "network ACLs: undetermined — {note}"),
                None => write!(f, "network ACLs: undetermined — {}", join(&[LegStatus::Unknown])),
            },
        }
    }
}

/// Evaluates the four stateless legs of a TCP 443 connection from `client` to `endpoint` (one
/// endpoint ENI; call once per endpoint address), assuming Linux's default ephemeral range.
pub fn evaluate_nacls(client: NaclSide<'_>, endpoint: NaclSide<'_>) -> NaclVerdict {
    evaluate_nacls_with(client, endpoint, LINUX_EPHEMERAL_PORTS)
}

/// [`evaluate_nacls`] with the client's ephemeral port range given (e.g. a pod that tuned
/// `ip_local_port_range`, or [`AWS_RECOMMENDED_EPHEMERAL_PORTS`] for "any client").
pub fn evaluate_nacls_with(client: NaclSide<'_>, endpoint: NaclSide<'_>, ephemeral: PortSpan) -> NaclVerdict {
    let scope = subnet_scope(&client, &endpoint);
    let https = PortSpan::single(HTTPS_PORT);
    let reply_examined = PortSpan {
        from: AWS_RECOMMENDED_EPHEMERAL_PORTS.from.min(ephemeral.from),
        to: AWS_RECOMMENDED_EPHEMERAL_PORTS.to, // 65535: nothing is above it
    };

    let legs: Vec<LegResult> = Leg::ALL
        .iter()
        .map(|&leg| {
            let (side, other) = if leg.on_client_subnet() { (&client, &endpoint) } else { (&endpoint, &client) };
            let (required, examined) = if leg.is_reply() { (ephemeral, reply_examined) } else { (https, https) };
            let mut result = LegResult {
                leg,
                nacl_id: side.nacl.map(|a| a.id.clone()),
                peer: other.ip,
                peer_subnet: other.subnet_cidr,
                required,
                examined,
                status: LegStatus::Unknown,
                decisions: Vec::new(),
                note: None,
            };
            if let NaclScope::SameSubnet { subnet_id } = &scope {
                result.status = LegStatus::NotApplicable;
                result.note =
                    Some(format!("same subnet {subnet_id}: network ACLs do not filter traffic within a subnet"));
                return result;
            }
            let Some(acl) = side.nacl else {
                let whose = if leg.on_client_subnet() { "client" } else { "endpoint" };
                result.note = Some(format!("no network ACL facts for the {whose} subnet"));
                return result;
            };
            result.decisions = first_match_decisions(&acl.entries, leg.is_egress(), other.ip, examined);
            result.status = classify(&result.decisions, required);
            result
        })
        .collect();

    let statuses: Vec<LegStatus> = legs.iter().map(|l| l.status).collect();
    let mut status = if matches!(scope, NaclScope::SameSubnet { .. }) {
        NaclStatus::NotApplicable
    } else if statuses.contains(&LegStatus::Denied) {
        NaclStatus::Blocked
    } else if statuses.contains(&LegStatus::Partial) {
        NaclStatus::PartiallyBlocked
    } else if statuses.contains(&LegStatus::Unknown) {
        NaclStatus::Unknown
    } else {
        NaclStatus::Allowed
    };
    let mut note = None;
    if scope == NaclScope::Unknown && matches!(status, NaclStatus::Blocked | NaclStatus::PartiallyBlocked) {
        let blocked: Vec<String> = legs
            .iter()
            .filter(|l| matches!(l.status, LegStatus::Denied | LegStatus::Partial))
            .map(|l| l.to_string())
            .collect();
        note = Some(format!(
            "the client's and the endpoint's subnets are unknown and may be the same (then network ACLs do not \
             apply); if they differ: {}",
            blocked.join("; ")
        ));
        status = NaclStatus::Unknown;
    }
    NaclVerdict { scope, status, legs, note }
}

/// Same subnet, different subnets, or unknown. Subnet ids decide when both are known; else two
/// different ACLs prove different subnets (a subnet has exactly one ACL), and so does an ACL
/// whose association list lacks the other side's subnet.
fn subnet_scope(client: &NaclSide<'_>, endpoint: &NaclSide<'_>) -> NaclScope {
    if let (Some(a), Some(b)) = (client.subnet_id, endpoint.subnet_id) {
        return if a == b { NaclScope::SameSubnet { subnet_id: a.to_owned() } } else { NaclScope::DifferentSubnets };
    }
    if let (Some(a), Some(b)) = (client.nacl, endpoint.nacl)
        && a.id != b.id
    {
        return NaclScope::DifferentSubnets;
    }
    let lacks = |subnet: Option<&str>, acl: Option<&NetworkAcl>| match (subnet, acl) {
        (Some(s), Some(acl)) => !acl.subnet_ids.is_empty() && !acl.subnet_ids.iter().any(|x| x == s),
        _ => false,
    };
    if lacks(client.subnet_id, endpoint.nacl) || lacks(endpoint.subnet_id, client.nacl) {
        return NaclScope::DifferentSubnets;
    }
    NaclScope::Unknown
}

/// First-match evaluation of the `egress` entries for a TCP packet to/from `peer`, over every
/// destination port in `examined`: walks the entries in ascending rule number and lets each
/// matching entry decide the ports not yet decided; what is left falls to the `*` rule (deny).
fn first_match_decisions(entries: &[NaclEntry], egress: bool, peer: IpAddr, examined: PortSpan) -> Vec<PortDecision> {
    let mut ordered: Vec<&NaclEntry> = entries.iter().filter(|e| e.egress == egress).collect();
    ordered.sort_by_key(|e| e.rule_number);

    let mut open = vec![examined];
    let mut decisions = Vec::new();
    for entry in ordered {
        if open.is_empty() {
            break;
        }
        if !entry.protocol.covers_tcp() || !entry.cidr.contains(&peer) {
            continue;
        }
        let span = if entry.protocol.uses_port_range() {
            match entry.port_range {
                Some((from, to)) => match PortSpan::new(from, to) {
                    Some(span) => span,
                    None => continue, // an empty range matches nothing
                },
                None => PortSpan::ALL,
            }
        } else {
            PortSpan::ALL
        };
        let mut still_open = Vec::with_capacity(open.len() + 1);
        for o in open {
            match o.intersect(span) {
                Some(hit) => {
                    decisions.push(PortDecision { ports: hit, rule_number: entry.rule_number, action: entry.action });
                    still_open.extend(o.minus(hit));
                }
                None => still_open.push(o),
            }
        }
        open = still_open;
    }
    decisions.extend(open.into_iter().map(|ports| PortDecision {
        ports,
        rule_number: DEFAULT_RULE_NUMBER,
        action: NaclAction::Deny,
    }));
    decisions.sort_by_key(|d| d.ports.from);
    decisions
}

fn classify(decisions: &[PortDecision], required: PortSpan) -> LegStatus {
    let allowed: u32 = decisions
        .iter()
        .filter(|d| d.action == NaclAction::Allow)
        .filter_map(|d| d.ports.intersect(required))
        .map(PortSpan::len)
        .sum();
    if allowed == 0 {
        LegStatus::Denied
    } else if allowed >= required.len() {
        LegStatus::Allowed
    } else {
        LegStatus::Partial
    }
}

#[cfg(test)]
mod tests {
    use super::super::model::IpProtocol;
    use super::*;

    const CLIENT: &str = "10.1.2.3";
    const EP: &str = "10.0.1.5";

    fn entry(
        n: u16,
        egress: bool,
        action: NaclAction,
        protocol: IpProtocol,
        cidr: &str,
        ports: Option<(u16, u16)>,
    ) -> NaclEntry {
        NaclEntry { rule_number: n, egress, action, protocol, cidr: cidr.parse().unwrap(), port_range: ports }
    }
    fn allow_tcp(n: u16, egress: bool, cidr: &str, from: u16, to: u16) -> NaclEntry {
        entry(n, egress, NaclAction::Allow, IpProtocol::Tcp, cidr, Some((from, to)))
    }
    fn deny_tcp(n: u16, egress: bool, cidr: &str, from: u16, to: u16) -> NaclEntry {
        entry(n, egress, NaclAction::Deny, IpProtocol::Tcp, cidr, Some((from, to)))
    }
    fn allow_all(n: u16, egress: bool, cidr: &str) -> NaclEntry {
        entry(n, egress, NaclAction::Allow, IpProtocol::All, cidr, None)
    }
    fn defaults() -> Vec<NaclEntry> {
        let mut v = Vec::new();
        for egress in [false, true] {
            v.push(entry(DEFAULT_RULE_NUMBER, egress, NaclAction::Deny, IpProtocol::All, "0.0.0.0/0", None));
            v.push(entry(DEFAULT_RULE_NUMBER, egress, NaclAction::Deny, IpProtocol::All, "::/0", None));
        }
        v
    }
    /// The default ACL of a dual-stack VPC: 100 allow all v4, 101 allow all v6, `*` deny.
    fn open_entries() -> Vec<NaclEntry> {
        let mut v = vec![allow_all(100, false, "0.0.0.0/0"), allow_all(101, false, "::/0")];
        v.push(allow_all(100, true, "0.0.0.0/0"));
        v.push(allow_all(101, true, "::/0"));
        v.extend(defaults());
        v
    }
    fn acl(id: &str, subnet: &str, mut entries: Vec<NaclEntry>) -> NetworkAcl {
        entries.extend(defaults());
        NetworkAcl { id: id.into(), subnet_ids: vec![subnet.into()], entries }
    }
    fn side<'a>(ip: &str, subnet: Option<&'a str>, nacl: Option<&'a NetworkAcl>) -> NaclSide<'a> {
        NaclSide { ip: ip.parse().unwrap(), subnet_id: subnet, subnet_cidr: None, nacl }
    }
    fn run(client_acl: &NetworkAcl, endpoint_acl: &NetworkAcl) -> NaclVerdict {
        evaluate_nacls(side(CLIENT, Some("subnet-c"), Some(client_acl)), side(EP, Some("subnet-e"), Some(endpoint_acl)))
    }
    fn open(id: &str, subnet: &str) -> NetworkAcl {
        NetworkAcl { id: id.into(), subnet_ids: vec![subnet.into()], entries: open_entries() }
    }
    fn statuses(v: &NaclVerdict) -> [LegStatus; 4] {
        [v.legs[0].status, v.legs[1].status, v.legs[2].status, v.legs[3].status]
    }

    use LegStatus::{Allowed as A, Denied as D, NotApplicable as N, Partial as P, Unknown as U};

    /// (name, client ACL entries, endpoint ACL entries, expected legs
    /// [client out, endpoint in, endpoint out, client in], expected overall)
    type LegCase = (&'static str, Vec<NaclEntry>, Vec<NaclEntry>, [LegStatus; 4], NaclStatus);

    #[test]
    fn leg_table() {
        let cases: Vec<LegCase> = vec![
            ("default ACLs allow all", open_entries(), open_entries(), [A, A, A, A], NaclStatus::Allowed),
            ("empty custom ACLs: default deny", vec![], vec![], [D, D, D, D], NaclStatus::Blocked),
            (
                "tight but correct rules",
                vec![allow_tcp(100, true, "10.0.1.0/24", 443, 443), allow_tcp(100, false, "10.0.1.0/24", 1024, 65535)],
                vec![allow_tcp(100, false, "10.1.0.0/16", 443, 443), allow_tcp(100, true, "10.1.0.0/16", 1024, 65535)],
                [A, A, A, A],
                NaclStatus::Allowed,
            ),
            (
                "deny at 90 before allow at 100 (endpoint inbound)",
                open_entries(),
                vec![
                    deny_tcp(90, false, "10.1.0.0/16", 443, 443),
                    allow_all(100, false, "0.0.0.0/0"),
                    allow_all(100, true, "0.0.0.0/0"),
                ],
                [A, D, A, A],
                NaclStatus::Blocked,
            ),
            (
                "listed out of order: 100 allow before 90 deny is still denied by 90",
                open_entries(),
                vec![
                    allow_all(100, false, "0.0.0.0/0"),
                    deny_tcp(90, false, "10.1.2.3/32", 0, 65535),
                    allow_all(100, true, "0.0.0.0/0"),
                ],
                [A, D, A, A],
                NaclStatus::Blocked,
            ),
            (
                "allow at 90 before deny at 100 wins",
                open_entries(),
                vec![
                    deny_tcp(100, false, "0.0.0.0/0", 443, 443),
                    allow_tcp(90, false, "10.1.0.0/16", 443, 443),
                    allow_all(100, true, "0.0.0.0/0"),
                ],
                [A, A, A, A],
                NaclStatus::Allowed,
            ),
            (
                "stateless: endpoint egress only 443 (no ephemeral)",
                open_entries(),
                vec![allow_all(100, false, "0.0.0.0/0"), allow_tcp(100, true, "0.0.0.0/0", 443, 443)],
                [A, A, D, A],
                NaclStatus::Blocked,
            ),
            (
                "client ingress only 1024-32767: no Linux ephemeral port allowed",
                vec![allow_all(100, true, "0.0.0.0/0"), allow_tcp(100, false, "0.0.0.0/0", 1024, 32767)],
                open_entries(),
                [A, A, A, D],
                NaclStatus::Blocked,
            ),
            (
                "client ingress only 32768-49151: partial",
                vec![allow_all(100, true, "0.0.0.0/0"), allow_tcp(100, false, "0.0.0.0/0", 32768, 49151)],
                open_entries(),
                [A, A, A, P],
                NaclStatus::PartiallyBlocked,
            ),
            (
                "client ingress exactly 32768-60999: allowed",
                vec![allow_all(100, true, "0.0.0.0/0"), allow_tcp(100, false, "0.0.0.0/0", 32768, 60999)],
                open_entries(),
                [A, A, A, A],
                NaclStatus::Allowed,
            ),
            (
                "deny below the ephemeral range does not matter",
                vec![
                    allow_all(100, true, "0.0.0.0/0"),
                    deny_tcp(90, false, "0.0.0.0/0", 1024, 2000),
                    allow_tcp(100, false, "0.0.0.0/0", 1024, 65535),
                ],
                open_entries(),
                [A, A, A, A],
                NaclStatus::Allowed,
            ),
            (
                "deny carving the ephemeral range: partial",
                vec![
                    allow_all(100, true, "0.0.0.0/0"),
                    deny_tcp(90, false, "0.0.0.0/0", 40000, 40010),
                    allow_tcp(100, false, "0.0.0.0/0", 1024, 65535),
                ],
                open_entries(),
                [A, A, A, P],
                NaclStatus::PartiallyBlocked,
            ),
            (
                "IPv6 entries do not match IPv4 traffic",
                vec![allow_all(100, true, "::/0"), allow_all(100, false, "::/0")],
                open_entries(),
                [D, A, A, D],
                NaclStatus::Blocked,
            ),
            (
                "UDP-only entries do not match TCP",
                vec![
                    entry(100, true, NaclAction::Allow, IpProtocol::Udp, "0.0.0.0/0", Some((0, 65535))),
                    entry(100, false, NaclAction::Allow, IpProtocol::Udp, "0.0.0.0/0", Some((0, 65535))),
                ],
                open_entries(),
                [D, A, A, D],
                NaclStatus::Blocked,
            ),
            (
                "protocol -1 ignores its port range",
                vec![
                    entry(100, true, NaclAction::Allow, IpProtocol::All, "0.0.0.0/0", Some((80, 80))),
                    entry(100, false, NaclAction::Allow, IpProtocol::All, "0.0.0.0/0", Some((80, 80))),
                ],
                open_entries(),
                [A, A, A, A],
                NaclStatus::Allowed,
            ),
            (
                "TCP entry without a port range = all ports",
                vec![
                    entry(100, true, NaclAction::Allow, IpProtocol::Tcp, "0.0.0.0/0", None),
                    entry(100, false, NaclAction::Allow, IpProtocol::Tcp, "0.0.0.0/0", None),
                ],
                open_entries(),
                [A, A, A, A],
                NaclStatus::Allowed,
            ),
            (
                "CIDR not containing the peer is skipped",
                vec![allow_all(100, true, "10.0.2.0/24"), allow_all(100, false, "10.0.2.0/24")],
                open_entries(),
                [D, A, A, D],
                NaclStatus::Blocked,
            ),
            (
                "/32 peers",
                vec![allow_all(100, true, "10.0.1.5/32"), allow_all(100, false, "10.0.1.5/32")],
                vec![allow_all(100, true, "10.1.2.3/32"), allow_all(100, false, "10.1.2.3/32")],
                [A, A, A, A],
                NaclStatus::Allowed,
            ),
            (
                "443 at the edges of port ranges",
                vec![allow_tcp(100, true, "0.0.0.0/0", 443, 1000), allow_all(100, false, "0.0.0.0/0")],
                vec![allow_tcp(100, false, "0.0.0.0/0", 1, 443), allow_all(100, true, "0.0.0.0/0")],
                [A, A, A, A],
                NaclStatus::Allowed,
            ),
            (
                "443 just outside port ranges",
                vec![allow_tcp(100, true, "0.0.0.0/0", 444, 1000), allow_all(100, false, "0.0.0.0/0")],
                vec![allow_tcp(100, false, "0.0.0.0/0", 1, 442), allow_all(100, true, "0.0.0.0/0")],
                [D, D, A, A],
                NaclStatus::Blocked,
            ),
            (
                "inverted port range matches nothing",
                vec![allow_tcp(100, true, "0.0.0.0/0", 500, 400), allow_all(100, false, "0.0.0.0/0")],
                open_entries(),
                [D, A, A, A],
                NaclStatus::Blocked,
            ),
        ];
        for (name, client_entries, endpoint_entries, want_legs, want) in cases {
            let c = acl("acl-c", "subnet-c", client_entries);
            let e = acl("acl-e", "subnet-e", endpoint_entries);
            let v = run(&c, &e);
            assert_eq!(statuses(&v), want_legs, "{name}: {v}");
            assert_eq!(v.status, want, "{name}: {v}");
            assert_eq!(v.scope, NaclScope::DifferentSubnets, "{name}");
            let line = v.to_string();
            assert!(!line.contains('\n'), "{name}: {line}");
        }
    }

    #[test]
    fn deny_names_rule_number_and_fix() {
        let c = open("acl-c", "subnet-c");
        let e = acl(
            "acl-e",
            "subnet-e",
            vec![
                deny_tcp(90, false, "10.1.0.0/16", 443, 443),
                allow_all(100, false, "0.0.0.0/0"),
                allow_all(100, true, "0.0.0.0/0"),
            ],
        );
        let v = run(&c, &e);
        let leg = v.leg(Leg::EndpointIngress).unwrap();
        assert_eq!(leg.deciding_rules(), vec![(90, NaclAction::Deny)]);
        assert_eq!(
            leg.fix().as_deref(),
            Some("in acl-e (endpoint subnet) add an inbound rule numbered below 90: allow TCP 443 from 10.1.2.3/32")
        );
        assert_eq!(v.fixes().len(), 1);
        assert_eq!(
            v.to_string(),
            "network ACLs: blocked — endpoint subnet inbound from client to 443 (acl-e): denied by rule 90"
        );
        assert_eq!(v.leg(Leg::ClientEgress).unwrap().deciding_rules(), vec![(100, NaclAction::Allow)]);
    }

    #[test]
    fn fix_prefers_the_peer_subnet_cidr() {
        let c = open("acl-c", "subnet-c");
        let e = acl("acl-e", "subnet-e", vec![]);
        let client = Client {
            ip: CLIENT.parse().unwrap(),
            security_group_ids: vec!["sg-c".into()],
            subnet_id: Some("subnet-c".into()),
            subnet_cidr: Some("10.1.0.0/19".parse().unwrap()),
        };
        let v = evaluate_nacls(NaclSide::of_client(&client, Some(&c)), side(EP, Some("subnet-e"), Some(&e)));
        assert_eq!(
            v.fixes(),
            vec![
                "in acl-e (endpoint subnet) add an inbound rule: allow TCP 443 from 10.1.0.0/19".to_owned(),
                "in acl-e (endpoint subnet) add an outbound rule: allow TCP 1024-65535 to 10.1.0.0/19".to_owned(),
            ]
        );
    }

    #[test]
    fn default_deny_is_named_even_when_not_listed() {
        let bare = |id: &str, s: &str| NetworkAcl { id: id.into(), subnet_ids: vec![s.into()], entries: vec![] };
        let (c, e) = (bare("acl-c", "subnet-c"), bare("acl-e", "subnet-e"));
        let v = run(&c, &e);
        for leg in &v.legs {
            assert_eq!(leg.status, D);
            assert_eq!(leg.deciding_rules(), vec![(DEFAULT_RULE_NUMBER, NaclAction::Deny)], "{leg}");
            assert!(leg.to_string().contains("denied by the default rule *"), "{leg}");
        }
        assert_eq!(
            v.leg(Leg::EndpointEgress).unwrap().fix().as_deref(),
            Some("in acl-e (endpoint subnet) add an outbound rule: allow TCP 1024-65535 to 10.1.2.3/32")
        );
        assert_eq!(
            v.leg(Leg::ClientEgress).unwrap().fix().as_deref(),
            Some("in acl-c (client subnet) add an outbound rule: allow TCP 443 to 10.0.1.5/32")
        );
    }

    #[test]
    fn ephemeral_reporting_names_the_ports() {
        let e = open("acl-e", "subnet-e");
        // Only 1024-32767 allowed back in: denied for every Linux source port.
        let c = acl(
            "acl-c",
            "subnet-c",
            vec![allow_all(100, true, "0.0.0.0/0"), allow_tcp(100, false, "0.0.0.0/0", 1024, 32767)],
        );
        let v = run(&c, &e);
        let leg = v.leg(Leg::ClientIngress).unwrap();
        assert_eq!(
            leg.decisions,
            vec![
                PortDecision { ports: PortSpan { from: 1024, to: 32767 }, rule_number: 100, action: NaclAction::Allow },
                PortDecision {
                    ports: PortSpan { from: 32768, to: 65535 },
                    rule_number: DEFAULT_RULE_NUMBER,
                    action: NaclAction::Deny
                },
            ]
        );
        assert_eq!(
            leg.to_string(),
            "client subnet inbound reply from endpoint:443 (acl-c): denied by the default rule * (only 1024-32767 \
             (rule 100) allowed, outside ports 32768-60999)"
        );
        assert_eq!(
            leg.fix().as_deref(),
            Some("in acl-c (client subnet) add an inbound rule: allow TCP 1024-65535 from 10.0.1.5/32")
        );

        // 32768-49151 allowed: partial, both halves named.
        let c = acl(
            "acl-c",
            "subnet-c",
            vec![allow_all(100, true, "0.0.0.0/0"), allow_tcp(100, false, "0.0.0.0/0", 32768, 49151)],
        );
        let v = run(&c, &e);
        assert_eq!(v.status, NaclStatus::PartiallyBlocked);
        assert_eq!(
            v.to_string(),
            "network ACLs: partially blocked (intermittent timeouts) — client subnet inbound reply from endpoint:443 \
             (acl-c): partial, of ports 32768-60999 only 32768-49151 (rule 100) allowed and 49152-60999 (the default \
             rule *) denied"
        );

        // With the AWS-recommended range as the client range, the same ACL is only partial too.
        let v = evaluate_nacls_with(
            side(CLIENT, Some("subnet-c"), Some(&c)),
            side(EP, Some("subnet-e"), Some(&e)),
            AWS_RECOMMENDED_EPHEMERAL_PORTS,
        );
        assert_eq!(v.leg(Leg::ClientIngress).unwrap().status, P);
    }

    #[test]
    fn same_subnet_is_not_evaluated() {
        let deny_everything = acl("acl-x", "subnet-x", vec![]);
        let v = evaluate_nacls(
            side(CLIENT, Some("subnet-x"), Some(&deny_everything)),
            side(EP, Some("subnet-x"), Some(&deny_everything)),
        );
        assert_eq!(v.scope, NaclScope::SameSubnet { subnet_id: "subnet-x".into() });
        assert_eq!(v.status, NaclStatus::NotApplicable);
        assert_eq!(statuses(&v), [N, N, N, N]);
        assert!(v.fixes().is_empty());
        assert!(v.to_string().contains("not evaluated, client and endpoint are both in subnet-x"), "{v}");

        // Even with no ACL facts at all.
        let v = evaluate_nacls(side(CLIENT, Some("subnet-x"), None), side(EP, Some("subnet-x"), None));
        assert_eq!(v.status, NaclStatus::NotApplicable);
    }

    #[test]
    fn missing_nacl_facts_are_unknown_for_that_side_only() {
        let e = open("acl-e", "subnet-e");
        let v = evaluate_nacls(side(CLIENT, Some("subnet-c"), None), side(EP, Some("subnet-e"), Some(&e)));
        assert_eq!(statuses(&v), [U, A, A, U]);
        assert_eq!(v.status, NaclStatus::Unknown);
        assert!(v.to_string().contains("no network ACL facts for the client subnet"), "{v}");

        // A definite deny on the known side still blocks (subnets known to differ).
        let e = acl("acl-e", "subnet-e", vec![]);
        let v = evaluate_nacls(side(CLIENT, Some("subnet-c"), None), side(EP, Some("subnet-e"), Some(&e)));
        assert_eq!(statuses(&v), [U, D, D, U]);
        assert_eq!(v.status, NaclStatus::Blocked);

        // Nothing known.
        let v = evaluate_nacls(side(CLIENT, None, None), side(EP, None, None));
        assert_eq!(v.scope, NaclScope::Unknown);
        assert_eq!(statuses(&v), [U, U, U, U]);
        assert_eq!(v.status, NaclStatus::Unknown);
    }

    #[test]
    fn unknown_subnets_sharing_an_acl_downgrade_a_deny_to_unknown() {
        let shared = NetworkAcl { id: "acl-s".into(), subnet_ids: vec![], entries: vec![] };
        let v = evaluate_nacls(side(CLIENT, None, Some(&shared)), side(EP, None, Some(&shared)));
        assert_eq!(v.scope, NaclScope::Unknown);
        assert_eq!(statuses(&v), [D, D, D, D], "legs still show what would happen across subnets");
        assert_eq!(v.status, NaclStatus::Unknown);
        assert!(v.note.as_deref().unwrap_or_default().contains("may be the same"), "{v}");
        assert!(v.to_string().starts_with("network ACLs: undetermined — the client's and the endpoint's subnets"));
    }

    #[test]
    fn subnet_scope_inference() {
        let a = acl("acl-a", "subnet-a", vec![]);
        let b = acl("acl-b", "subnet-b", vec![]);
        // Different ACL ids prove different subnets.
        let v = evaluate_nacls(side(CLIENT, None, Some(&a)), side(EP, None, Some(&b)));
        assert_eq!(v.scope, NaclScope::DifferentSubnets);
        assert_eq!(v.status, NaclStatus::Blocked);
        // An ACL whose associations lack the client's subnet proves it too.
        let v = evaluate_nacls(side(CLIENT, Some("subnet-a"), None), side(EP, None, Some(&b)));
        assert_eq!(v.scope, NaclScope::DifferentSubnets);
        // The same ACL associated with both subnets: undecidable without the endpoint's subnet.
        let both =
            NetworkAcl { id: "acl-ab".into(), subnet_ids: vec!["subnet-a".into(), "subnet-b".into()], entries: vec![] };
        let v = evaluate_nacls(side(CLIENT, Some("subnet-a"), Some(&both)), side(EP, None, Some(&both)));
        assert_eq!(v.scope, NaclScope::Unknown);
        // One ACL shared by two different (known) subnets is evaluated.
        let v = evaluate_nacls(side(CLIENT, Some("subnet-a"), Some(&both)), side(EP, Some("subnet-b"), Some(&both)));
        assert_eq!(v.scope, NaclScope::DifferentSubnets);
        assert_eq!(v.status, NaclStatus::Blocked);
    }

    #[test]
    fn ipv6_traffic_matches_ipv6_entries_only() {
        let v4_only =
            acl("acl-4", "subnet-c", vec![allow_all(100, true, "0.0.0.0/0"), allow_all(100, false, "0.0.0.0/0")]);
        let dual = open("acl-e", "subnet-e");
        let v = evaluate_nacls(
            side("2001:db8:1::10", Some("subnet-c"), Some(&v4_only)),
            side("2001:db8:9::5", Some("subnet-e"), Some(&dual)),
        );
        assert_eq!(statuses(&v), [D, A, A, D]);
        assert_eq!(v.leg(Leg::EndpointIngress).unwrap().deciding_rules(), vec![(101, NaclAction::Allow)]);
        assert_eq!(
            v.leg(Leg::ClientEgress).unwrap().fix().as_deref(),
            Some("in acl-4 (client subnet) add an outbound rule: allow TCP 443 to 2001:db8:9::5/128")
        );
    }

    #[test]
    fn allowed_display_lists_every_leg() {
        let (c, e) = (open("acl-c", "subnet-c"), open("acl-e", "subnet-e"));
        let v = run(&c, &e);
        assert_eq!(
            v.to_string(),
            "network ACLs: all four legs allowed — client subnet outbound to endpoint:443 (acl-c): allowed by rule \
             100; endpoint subnet inbound from client to 443 (acl-e): allowed by rule 100; endpoint subnet outbound \
             reply to client ephemeral ports (acl-e): allowed by rule 100; client subnet inbound reply from \
             endpoint:443 (acl-c): allowed by rule 100"
        );
        let json = serde_json::to_string(&v).unwrap();
        let back: NaclVerdict = serde_json::from_str(&json).unwrap();
        assert_eq!(back, v);
        assert!(json.contains(r#""status":"allowed""#), "{json}");
    }
}

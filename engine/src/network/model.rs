//! Our own domain types for the AWS facts the network checks need.
//!
//! They are deliberately independent of the AWS SDK: the inspection layer converts
//! `DescribeSecurityGroups` / `DescribeSecurityGroupRules`, `DescribeManagedPrefixLists` +
//! `GetManagedPrefixListEntries`, `DescribeNetworkAcls` and `DescribeNetworkInterfaces` output
//! into these, and the evaluation in [`super::security_groups`] and [`super::nacl`] stays pure.
//!
//! Facts that were not fetched are represented as *absent* (`Option::None`, a group id with no
//! [`SecurityGroup`] in the slice), never as "empty": a missing group must not read as "a group
//! with no rules", or the diagnosis would blame a rule that may well exist. For that reason the
//! rule lists of [`SecurityGroup`] and the entries of [`NetworkAcl`] are required when
//! deserializing (no `#[serde(default)]`).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// Rule number AWS gives the last, unchangeable `*` rule of every network ACL (one for IPv4 and
/// one for IPv6 when the VPC has an IPv6 block). It denies everything no numbered rule matched.
pub const DEFAULT_RULE_NUMBER: u16 = 32767;

/// An IP protocol as security group rules and network ACL entries carry it.
///
/// Serialized as AWS writes it in `IpProtocol` / `Protocol`: `"tcp"`, `"udp"`, `"icmp"`,
/// `"icmpv6"`, `"-1"` (all protocols) or a decimal protocol number. Parsing accepts the names,
/// `"all"`, and numbers; the numbers 6, 17, 1 and 58 normalize to the named variants, so
/// `"6"` and `"tcp"` are the same protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub enum IpProtocol {
    /// TCP (6).
    Tcp,
    /// UDP (17).
    Udp,
    /// ICMP (1).
    Icmp,
    /// ICMPv6 (58).
    Icmpv6,
    /// `-1`: every protocol and every port.
    All,
    /// Any other IANA protocol number. AWS ignores port ranges for these (all ports).
    Other(u8),
}

impl IpProtocol {
    /// The IANA protocol number; `None` for [`IpProtocol::All`].
    pub const fn number(self) -> Option<u8> {
        match self {
            IpProtocol::Tcp => Some(6),
            IpProtocol::Udp => Some(17),
            IpProtocol::Icmp => Some(1),
            IpProtocol::Icmpv6 => Some(58),
            IpProtocol::All => None,
            IpProtocol::Other(n) => Some(n),
        }
    }

    /// The protocol for an IANA number, normalizing 6/17/1/58 to the named variants.
    pub const fn from_number(n: u8) -> IpProtocol {
        match n {
            6 => IpProtocol::Tcp,
            17 => IpProtocol::Udp,
            1 => IpProtocol::Icmp,
            58 => IpProtocol::Icmpv6,
            n => IpProtocol::Other(n),
        }
    }

    /// True if a rule with this protocol can match a TCP packet (TCP itself, or `-1`).
    pub const fn covers_tcp(self) -> bool {
        matches!(self, IpProtocol::All) || matches!(self.number(), Some(6))
    }

    /// True if AWS applies the rule's port range. For `-1` and for protocol numbers other than
    /// TCP/UDP/ICMP(v6) AWS allows (or, in a NACL, denies) *all ports* whatever range is given.
    /// (For ICMP the "ports" are type/code, irrelevant to a TCP check.)
    pub const fn uses_port_range(self) -> bool {
        matches!(self.number(), Some(6 | 17 | 1 | 58))
    }

    /// The AWS wire form: `tcp`, `udp`, `icmp`, `icmpv6`, `-1` or the number.
    pub fn aws_value(self) -> String {
        match self {
            IpProtocol::Tcp => "tcp".to_owned(),
            IpProtocol::Udp => "udp".to_owned(),
            IpProtocol::Icmp => "icmp".to_owned(),
            IpProtocol::Icmpv6 => "icmpv6".to_owned(),
            IpProtocol::All => "-1".to_owned(),
            IpProtocol::Other(n) => n.to_string(),
        }
    }
}

/// A protocol string that is neither a known name, `-1`/`all`, nor a number 0–255.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown IP protocol {0:?}: expected tcp, udp, icmp, icmpv6, -1 (all) or a protocol number 0-255")]
pub struct ParseProtocolError(pub String);

impl FromStr for IpProtocol {
    type Err = ParseProtocolError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        match t.to_ascii_lowercase().as_str() {
            "tcp" => Ok(IpProtocol::Tcp),
            "udp" => Ok(IpProtocol::Udp),
            "icmp" => Ok(IpProtocol::Icmp),
            "icmpv6" => Ok(IpProtocol::Icmpv6),
            "-1" | "all" => Ok(IpProtocol::All),
            other => other.parse::<u8>().map(IpProtocol::from_number).map_err(|_| ParseProtocolError(s.to_owned())),
        }
    }
}

impl TryFrom<String> for IpProtocol {
    type Error = ParseProtocolError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<IpProtocol> for String {
    fn from(p: IpProtocol) -> String {
        p.aws_value()
    }
}

impl fmt::Display for IpProtocol {
    /// Human form used in reports: `TCP`, `UDP`, `ICMP`, `ICMPv6`, `all traffic`, `protocol 47`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpProtocol::Tcp => f.write_str("TCP"),
            IpProtocol::Udp => f.write_str("UDP"),
            IpProtocol::Icmp => f.write_str("ICMP"),
            IpProtocol::Icmpv6 => f.write_str("ICMPv6"),
            IpProtocol::All => f.write_str("all traffic"),
            IpProtocol::Other(n) => write!(f, "protocol {n}"),
        }
    }
}

/// An inclusive range of TCP/UDP ports. Always `from <= to` when built with [`PortSpan::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PortSpan {
    /// First port, inclusive.
    pub from: u16,
    /// Last port, inclusive.
    pub to: u16,
}

impl PortSpan {
    /// Every port, 0–65535.
    pub const ALL: PortSpan = PortSpan { from: 0, to: u16::MAX };

    /// `from..=to`, or `None` if the range is empty (`from > to`).
    pub const fn new(from: u16, to: u16) -> Option<PortSpan> {
        if from <= to { Some(PortSpan { from, to }) } else { None }
    }

    /// One port.
    pub const fn single(port: u16) -> PortSpan {
        PortSpan { from: port, to: port }
    }

    /// True if `port` is in the span.
    pub const fn contains(self, port: u16) -> bool {
        self.from <= port && port <= self.to
    }

    /// Number of ports (at most 65536, hence `u32`).
    pub const fn len(self) -> u32 {
        if self.from <= self.to { self.to as u32 - self.from as u32 + 1 } else { 0 }
    }

    /// Always false for a well-formed span; present for clippy's `len_without_is_empty`.
    pub const fn is_empty(self) -> bool {
        self.len() == 0
    }

    /// The ports in both spans.
    pub fn intersect(self, other: PortSpan) -> Option<PortSpan> {
        PortSpan::new(self.from.max(other.from), self.to.min(other.to))
    }

    /// The ports of `self` that are not in `other`: zero, one or two spans, in order.
    pub fn minus(self, other: PortSpan) -> Vec<PortSpan> {
        let Some(cut) = self.intersect(other) else {
            return vec![self];
        };
        let mut rest = Vec::with_capacity(2);
        if cut.from > self.from {
            rest.extend(PortSpan::new(self.from, cut.from - 1));
        }
        if cut.to < self.to {
            rest.extend(PortSpan::new(cut.to + 1, self.to));
        }
        rest
    }
}

impl fmt::Display for PortSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.from == self.to { write!(f, "{}", self.from) } else { write!(f, "{}-{}", self.from, self.to) }
    }
}

/// A security group with the rules AWS reports for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecurityGroup {
    /// `sg-…`.
    pub id: String,
    /// The VPC the group belongs to, when known.
    #[serde(default)]
    pub vpc_id: Option<String>,
    /// Inbound rules (`IpPermissions`), one entry per peer.
    pub ingress: Vec<SgRule>,
    /// Outbound rules (`IpPermissionsEgress`), one entry per peer.
    pub egress: Vec<SgRule>,
}

/// One security group rule with a single peer (AWS's `IpPermission` with several ranges or
/// groups is flattened into one `SgRule` per peer, as `DescribeSecurityGroupRules` returns them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SgRule {
    /// `sgr-…`, when known.
    #[serde(default)]
    pub rule_id: Option<String>,
    /// The protocol; `-1` means all protocols and all ports.
    pub protocol: IpProtocol,
    /// First port for TCP/UDP. `None` is read as "from port 0" (all ports when both are `None`).
    #[serde(default)]
    pub from_port: Option<u16>,
    /// Last port for TCP/UDP. `None` is read as "to port 65535".
    #[serde(default)]
    pub to_port: Option<u16>,
    /// Source (inbound rule) or destination (outbound rule).
    pub peer: SgPeer,
    /// The rule's description, when set.
    #[serde(default)]
    pub description: Option<String>,
}

/// The JSON shape of a CIDR (`ipnet`'s own schema has overlapping IPv4/IPv6 branches, so
/// `0.0.0.0/0` would match both and fail its `oneOf`).
#[derive(Debug, schemars::JsonSchema)]
#[schemars(description = "An IPv4 or IPv6 CIDR, e.g. 10.0.0.0/16 or 2001:db8::/32")]
#[allow(dead_code)] // schema only
pub struct Cidr(String);

/// The other side of a security group rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum SgPeer {
    /// An IPv4 or IPv6 CIDR (`CidrIp` / `CidrIpv6`).
    Cidr(#[schemars(with = "Cidr")] IpNet),
    /// A referenced security group (`UserIdGroupPairs`): matches traffic from/to the private IPs
    /// of network interfaces that have this group.
    SecurityGroup {
        /// `sg-…`.
        group_id: String,
        /// Owning account, for cross-account references.
        #[serde(default)]
        user_id: Option<String>,
    },
    /// A managed prefix list (`PrefixListIds`).
    PrefixList {
        /// `pl-…`.
        id: String,
        /// The list's CIDRs; `None` = not resolved (we never guess what it contains).
        #[serde(default)]
        #[schemars(with = "Option<Vec<Cidr>>")]
        cidrs: Option<Vec<IpNet>>,
    },
}

/// A network ACL and its entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkAcl {
    /// `acl-…`.
    pub id: String,
    /// Subnets associated with this ACL (`Associations[].SubnetId`).
    #[serde(default)]
    pub subnet_ids: Vec<String>,
    /// Inbound and outbound entries, in any order (evaluation sorts them).
    pub entries: Vec<NaclEntry>,
}

/// One network ACL entry (rule).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NaclEntry {
    /// 1–32766 for numbered rules, [`DEFAULT_RULE_NUMBER`] for the `*` rule.
    pub rule_number: u16,
    /// True for outbound (traffic leaving the subnet), false for inbound.
    pub egress: bool,
    /// Allow or deny.
    pub action: NaclAction,
    /// The protocol; `-1` means all protocols and all ports.
    pub protocol: IpProtocol,
    /// `CidrBlock` or `Ipv6CidrBlock`: the source (inbound) or destination (outbound).
    #[schemars(with = "Cidr")]
    pub cidr: IpNet,
    /// TCP/UDP destination port range `(from, to)`; `None` is read as all ports.
    #[serde(default)]
    pub port_range: Option<(u16, u16)>,
}

/// `RuleAction` of a network ACL entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum NaclAction {
    /// `allow`.
    Allow,
    /// `deny`.
    Deny,
}

impl fmt::Display for NaclAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NaclAction::Allow => "allow",
            NaclAction::Deny => "deny",
        })
    }
}

/// The calling workload: the network interface that carries the pod's IP.
///
/// On EKS with the VPC CNI, a pod without "security groups for pods" uses the security groups
/// of the node ENI that holds its IP (the node's groups, or the `ENIConfig` groups with custom
/// networking); a pod with security groups for pods has its own branch ENI and groups. Traffic
/// from a pod to an address inside the VPC is not SNATed, so the endpoint sees the pod IP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Client {
    /// The pod's IP (the source address the endpoint sees).
    pub ip: IpAddr,
    /// Security groups of the ENI carrying `ip`. Empty = unknown (every ENI has at least one).
    pub security_group_ids: Vec<String>,
    /// Subnet of that ENI, when known.
    #[serde(default)]
    pub subnet_id: Option<String>,
    /// CIDR of that subnet, when known (used only to word suggestions).
    #[serde(default)]
    #[schemars(with = "Option<Cidr>")]
    pub subnet_cidr: Option<IpNet>,
}

/// The interface VPC endpoint (`com.amazonaws.{region}.execute-api`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    /// Private IPs of the endpoint's network interfaces, one per subnet/AZ.
    pub addresses: Vec<IpAddr>,
    /// The endpoint's security groups (`Groups[].GroupId`); they apply to all its ENIs.
    /// Empty = unknown (an interface endpoint always has at least one).
    pub security_group_ids: Vec<String>,
}

/// `a.b.c.d/32` or `x::y/128`: the host route for one address.
pub fn host_cidr(ip: IpAddr) -> IpNet {
    IpNet::from(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_parsing_table() {
        let cases: &[(&str, Option<IpProtocol>)] = &[
            ("tcp", Some(IpProtocol::Tcp)),
            ("TCP", Some(IpProtocol::Tcp)),
            ("6", Some(IpProtocol::Tcp)),
            ("udp", Some(IpProtocol::Udp)),
            ("17", Some(IpProtocol::Udp)),
            ("icmp", Some(IpProtocol::Icmp)),
            ("1", Some(IpProtocol::Icmp)),
            ("icmpv6", Some(IpProtocol::Icmpv6)),
            ("58", Some(IpProtocol::Icmpv6)),
            ("-1", Some(IpProtocol::All)),
            ("all", Some(IpProtocol::All)),
            ("47", Some(IpProtocol::Other(47))),
            ("256", None),
            ("-2", None),
            ("", None),
            ("sctp", None),
        ];
        for (input, want) in cases {
            assert_eq!(input.parse::<IpProtocol>().ok(), *want, "input {input:?}");
        }
    }

    #[test]
    fn protocol_semantics() {
        assert!(IpProtocol::Tcp.covers_tcp());
        assert!(IpProtocol::All.covers_tcp());
        assert!(IpProtocol::Other(6).covers_tcp(), "a non-normalized 6 is still TCP");
        assert!(!IpProtocol::Udp.covers_tcp());
        assert!(!IpProtocol::Other(47).covers_tcp());
        assert!(IpProtocol::Tcp.uses_port_range());
        assert!(!IpProtocol::All.uses_port_range());
        assert!(!IpProtocol::Other(47).uses_port_range());
    }

    #[test]
    fn port_span_arithmetic() {
        let s = PortSpan { from: 1024, to: 65535 };
        let e = PortSpan { from: 32768, to: 60999 };
        assert_eq!(s.intersect(e), Some(e));
        assert_eq!(s.minus(e), vec![PortSpan { from: 1024, to: 32767 }, PortSpan { from: 61000, to: 65535 }]);
        assert_eq!(e.minus(s), vec![]);
        assert_eq!(e.minus(PortSpan::single(80)), vec![e]);
        assert_eq!(PortSpan::ALL.len(), 65536);
        assert_eq!(PortSpan::new(5, 4), None);
        assert_eq!(PortSpan::ALL.minus(PortSpan::single(0)), vec![PortSpan { from: 1, to: 65535 }]);
        assert_eq!(PortSpan::ALL.minus(PortSpan::single(65535)), vec![PortSpan { from: 0, to: 65534 }]);
        assert_eq!(PortSpan::single(443).to_string(), "443");
        assert_eq!(e.to_string(), "32768-60999");
    }

    #[test]
    fn serde_round_trip_uses_aws_protocol_strings_and_camel_case() {
        let g = SecurityGroup {
            id: "sg-1".into(),
            vpc_id: None,
            ingress: vec![SgRule {
                rule_id: Some("sgr-1".into()),
                protocol: IpProtocol::All,
                from_port: None,
                to_port: None,
                peer: SgPeer::SecurityGroup { group_id: "sg-2".into(), user_id: None },
                description: None,
            }],
            egress: vec![SgRule {
                rule_id: None,
                protocol: IpProtocol::Tcp,
                from_port: Some(443),
                to_port: Some(443),
                peer: SgPeer::PrefixList { id: "pl-1".into(), cidrs: Some(vec!["10.0.0.0/8".parse().unwrap()]) },
                description: None,
            }],
        };
        let json = serde_json::to_string(&g).unwrap();
        assert!(json.contains(r#""protocol":"-1""#), "{json}");
        assert!(json.contains(r#""securityGroup":{"groupId":"sg-2""#), "{json}");
        assert!(json.contains(r#""fromPort":443"#), "{json}");
        let back: SecurityGroup = serde_json::from_str(&json).unwrap();
        assert_eq!(back, g);

        // Missing rule lists are an error, never "no rules".
        assert!(serde_json::from_str::<SecurityGroup>(r#"{"id":"sg-1"}"#).is_err());

        let e: NaclEntry = serde_json::from_str(
            r#"{"ruleNumber":100,"egress":false,"action":"allow","protocol":"6","cidr":"::/0","portRange":[443,443]}"#,
        )
        .unwrap();
        assert_eq!(e.protocol, IpProtocol::Tcp);
        assert_eq!(e.port_range, Some((443, 443)));
        assert!(
            serde_json::from_str::<NaclEntry>(
                r#"{"ruleNumber":100,"egress":false,"action":"allow","protocol":"bogus","cidr":"::/0"}"#
            )
            .is_err()
        );
    }

    #[test]
    fn host_cidr_is_slash_32_or_128() {
        assert_eq!(host_cidr("10.1.2.3".parse().unwrap()).to_string(), "10.1.2.3/32");
        assert_eq!(host_cidr("2001:db8::1".parse().unwrap()).to_string(), "2001:db8::1/128");
    }
}

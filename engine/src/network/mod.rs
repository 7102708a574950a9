//! Network-path rules between a pod and the `execute-api` interface VPC endpoint.
//!
//! A `TCP connect timeout` to the endpoint's IPs (design §3) has three usual causes: the
//! endpoint's security group lacks inbound 443 from the client, the client's security group
//! lacks outbound 443, or a network ACL (stateless) drops the request or its reply. This module
//! decides each of them from AWS facts, with no I/O, and explains the answer in one line:
//!
//! * [`security_groups`] — [`evaluate_security_groups`]: endpoint inbound + client outbound
//!   (stateful, so replies need no rule). Feeds root cause `SecurityGroupBlocked`.
//! * [`nacl`] — [`evaluate_nacls`]: the four stateless legs (client out, endpoint in, endpoint
//!   out, client in) in rule-number order with the default `*` deny, and the ephemeral-port
//!   question for replies. Feeds root cause `NetworkAclBlocked`.
//! * [`kubernetes`] — [`evaluate_egress`]: the pod's own NetworkPolicies (egress isolation,
//!   the union of their rules, ipBlock/selector peers, ports), which the CNI enforces before
//!   any security group or ACL sees the packet, and [`kubernetes::suggest_egress_policy`], the
//!   policy that opens exactly what is needed. Feeds root cause `NetworkPolicyBlocked`.
//! * [`source`] — [`source::resolve`]: the source the endpoint really sees (the pod's
//!   interface, its Security Groups for Pods branch, or the node's after the VPC CNI's SNAT),
//!   which every analysis above is given.
//! * [`model`] — our serde types for the facts (security groups, rules, prefix lists, ACLs).
//!
//! Design rule, shared with the policy evaluator: what the facts cannot decide (a group or ACL
//! not fetched, an unresolved prefix list, unknown subnets) is reported as *unknown* naming the
//! gap — never a silent allow, never a silent deny. Nothing here panics on any input.

pub mod kubernetes;
pub mod model;
pub mod nacl;
pub mod security_groups;
pub mod source;

pub use kubernetes::{EgressVerdict, evaluate_egress};
pub use model::{
    Client, DEFAULT_RULE_NUMBER, Endpoint, IpProtocol, NaclAction, NaclEntry, NetworkAcl, ParseProtocolError, PortSpan,
    SecurityGroup, SgPeer, SgRule, host_cidr,
};
pub use nacl::{
    AWS_RECOMMENDED_EPHEMERAL_PORTS, LINUX_EPHEMERAL_PORTS, Leg, LegResult, LegStatus, NaclScope, NaclSide, NaclStatus,
    NaclVerdict, PortDecision, evaluate_nacls, evaluate_nacls_with,
};
pub use security_groups::{AddressOutcome, SecurityGroupVerdict, SgOutcome, SgStatus, evaluate_security_groups};

/// The port an `execute-api` interface endpoint serves (HTTPS only).
pub const HTTPS_PORT: u16 = 443;

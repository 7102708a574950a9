//! Do the Kubernetes NetworkPolicies (`networking.k8s.io/v1`) let the pod's traffic out?
//!
//! Why this exists: an egress default-deny NetworkPolicy is the most reported cause of "the
//! security groups allow it but it times out". The security-group and NACL analyses next to this
//! module read AWS facts about ENIs; a NetworkPolicy is enforced by the CNI inside the node,
//! before the packet reaches the ENI, so those analyses cannot see it. Only the policy objects
//! and the pod's own labels and namespace decide it — which is also why a probe pod with other
//! labels can be healthy while the workload times out.
//!
//! [`evaluate_egress`] is a pure function of the policies, the pod's identity and one
//! destination (address, port, protocol and, when the destination is a pod, its namespace,
//! labels and named ports). The semantics implemented, from the Kubernetes documentation
//! ("Network Policies") and the API reference:
//!
//! * A policy **selects** the pod when it is in the pod's namespace and `spec.podSelector`
//!   matches the pod's labels (absent or empty: every pod of the namespace). `matchLabels` and
//!   every `matchExpressions` requirement (`In`, `NotIn`, `Exists`, `DoesNotExist`) must hold.
//! * A selecting policy **isolates the pod for egress** when `spec.policyTypes` lists `Egress`;
//!   when `policyTypes` is absent or empty, the API server defaults it to `Ingress` plus
//!   `Egress` only if `spec.egress` has at least one rule (so `egress: []` without
//!   `policyTypes` isolates nothing). Ingress is ignored entirely here.
//! * A pod isolated for egress may send a packet iff **some egress rule of some selecting
//!   policy** allows it: policies are a union, their order is irrelevant, there are no deny
//!   rules. A policy that isolates with no rules is a default-deny.
//! * A rule allows a packet when one of its `to` peers matches the destination (no `to`, or
//!   `to: []`, matches every destination) **and** one of its `ports` matches (no `ports`, or
//!   `ports: []`, matches every port of every protocol).
//! * Peers: `ipBlock` (`cidr` minus every `except`, IPv4 or IPv6) matches the destination
//!   address; `podSelector` alone matches pods of the policy's namespace; `namespaceSelector`
//!   alone matches every pod of the namespaces it selects; both together match the selected
//!   pods of the selected namespaces; an empty selector selects everything.
//! * Ports: `protocol` defaults to TCP; an integer `port` matches that port, or the range up to
//!   `endPort`; a named `port` matches the destination pod's container port of that name and
//!   protocol; no `port` matches every port of the protocol.
//!
//! Destinations: the address is the one the packet carries **after** Service translation, as
//! the CNI sees it — for cluster DNS, the CoreDNS pod behind the `kube-dns` ClusterIP, not the
//! ClusterIP (the documentation leaves undefined whether policies see the address before or
//! after such rewriting; CNIs enforce on the pod). `ipBlock` is meant for cluster-external
//! addresses: when the destination is a pod matched only by an `ipBlock`, the verdict says
//! that CNIs differ there.
//!
//! Design rule, shared with the other analyses: what cannot be decided is
//! [`EgressVerdict::Unknown`] naming the gap — a selector with an unknown operator or invalid
//! values, an unparsable CIDR, a named port for a destination that is not a known pod, a
//! selector peer when it is not known whether the destination is a pod, namespace labels that
//! were not readable. Never a silent allow, never a silent deny: a definite allow from any
//! rule wins over any unknown, and `Blocked` is only returned when every selecting policy was
//! fully decided. Nothing here panics on any input, and nothing does I/O.
//!
//! [`suggest_egress_policy`] builds the ready-to-apply NetworkPolicy that opens exactly the
//! given [`Opening`]s (e.g. [`api_openings`]: TCP 443 to each endpoint address, UDP and TCP 53
//! to the DNS server), as the `k8s-openapi` object and as YAML.
//!
//! Policies of other enforcement engines (Cilium, Calico, AWS VPC CNI's own) are not read here;
//! the caller says so when their CRDs exist.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use k8s_openapi::api::core::v1::ContainerPort;
use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::{Deserialize, Serialize};

/// The label the API server sets on every namespace to its name (immutable, Kubernetes ≥ 1.22).
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// The DNS port, UDP and TCP.
pub const DNS_PORT: u16 = 53;

/// Labels controllers put on pods per revision or per replica; a suggested policy never
/// selects on them (it would stop matching at the next rollout).
pub const PER_REVISION_LABELS: &[&str] = &[
    "pod-template-hash",
    "controller-revision-hash",
    "pod-template-generation",
    "statefulset.kubernetes.io/pod-name",
    "apps.kubernetes.io/pod-index",
];

/// A transport protocol as NetworkPolicy spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Protocol {
    /// `TCP` (the default of a policy port and of a container port).
    Tcp,
    /// `UDP`.
    Udp,
    /// `SCTP`.
    Sctp,
}

impl Protocol {
    /// The API spelling: `TCP`, `UDP`, `SCTP`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }

    /// Parses the API spelling (case-sensitive, as the API server validates it).
    pub fn from_api(s: &str) -> Option<Protocol> {
        match s {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            "SCTP" => Some(Protocol::Sctp),
            _ => None,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The pod whose egress is evaluated: what NetworkPolicies select it by.
#[derive(Debug, Clone, Copy)]
pub struct PodIdentity<'a> {
    /// Its namespace (only policies there can select it).
    pub namespace: &'a str,
    /// Its labels.
    pub labels: &'a BTreeMap<String, String>,
}

/// A destination that is a pod (e.g. CoreDNS): what selector peers and named ports match.
#[derive(Debug, Clone, Copy)]
pub struct DestinationPod<'a> {
    /// Its namespace.
    pub namespace: &'a str,
    /// Its namespace's labels; `None` when they could not be read. Then only selectors on
    /// [`NAMESPACE_NAME_LABEL`] are decided (the API server sets it to the name).
    pub namespace_labels: Option<&'a BTreeMap<String, String>>,
    /// Its labels.
    pub labels: &'a BTreeMap<String, String>,
    /// Its containers' ports (named ports resolve against these).
    pub ports: &'a [ContainerPort],
}

/// What is known of the destination beyond its address.
#[derive(Debug, Clone, Copy)]
pub enum DestinationKind<'a> {
    /// A pod.
    Pod(DestinationPod<'a>),
    /// Known not to be a pod: an address outside the cluster's pods, such as an interface VPC
    /// endpoint's ENI. Selector peers never match it.
    External,
    /// Not known whether it is a pod (an address not matched to any pod or endpoint).
    Unidentified,
}

/// One destination of the pod's traffic.
#[derive(Debug, Clone, Copy)]
pub struct Destination<'a> {
    /// The address the packet carries as the CNI sees it (after Service translation).
    pub ip: IpAddr,
    /// The destination port.
    pub port: u16,
    /// The transport protocol.
    pub protocol: Protocol,
    /// What else is known of it.
    pub kind: DestinationKind<'a>,
}

impl fmt::Display for Destination<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} to {}", self.protocol, self.port, self.ip)?;
        if let DestinationKind::Pod(pod) = self.kind {
            write!(f, " (a pod in namespace {})", pod.namespace)?;
        }
        Ok(())
    }
}

/// The answer of [`evaluate_egress`] for one destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "result", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum EgressVerdict {
    /// No NetworkPolicy selects the pod for egress: everything may leave.
    NotIsolated,
    /// A rule of a policy that selects the pod allows the traffic.
    Allowed {
        /// The allowing policy, `namespace/name`.
        policy: String,
        /// The index of the allowing rule in its `spec.egress`.
        rule: usize,
        /// A caveat on the allow, e.g. a pod destination matched only by an `ipBlock`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// Policies select the pod for egress and none of their rules allows the traffic.
    Blocked {
        /// The policies that select the pod for egress (`namespace/name`, sorted).
        isolating: Vec<String>,
    },
    /// No rule definitely allows it, but one could, depending on what is unknown.
    Unknown {
        /// The policies known to select the pod for egress (`namespace/name`, sorted).
        isolating: Vec<String>,
        /// What is unknown.
        reason: String,
    },
}

impl EgressVerdict {
    /// True when NetworkPolicies let the traffic out ([`EgressVerdict::NotIsolated`] or
    /// [`EgressVerdict::Allowed`]).
    pub fn permits(&self) -> bool {
        matches!(self, EgressVerdict::NotIsolated | EgressVerdict::Allowed { .. })
    }
}

impl fmt::Display for EgressVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EgressVerdict::NotIsolated => f.write_str("not isolated: no NetworkPolicy selects the pod for egress"),
            EgressVerdict::Allowed { policy, rule, note } => {
                write!(f, "allowed by NetworkPolicy {policy} (egress[{rule}])")?;
                if let Some(note) = note {
                    write!(f, "; {note}")?;
                }
                Ok(())
            }
            EgressVerdict::Blocked { isolating } => write!(
                f,
                "blocked: NetworkPolicy {} isolate{} the pod for egress and no egress rule allows it",
                isolating.join(", "),
                if isolating.len() == 1 { "s" } else { "" }
            ),
            EgressVerdict::Unknown { isolating, reason } => {
                write!(f, "undetermined: {reason}")?;
                if !isolating.is_empty() {
                    write!(f, " (isolating for egress: {})", isolating.join(", "))?;
                }
                Ok(())
            }
        }
    }
}

/// Three-valued match: what the unknown could change is carried as reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tri {
    Yes,
    No,
    Maybe(Vec<String>),
}

impl Tri {
    fn maybe(reason: impl Into<String>) -> Tri {
        Tri::Maybe(vec![reason.into()])
    }

    fn from_bool(b: bool) -> Tri {
        if b { Tri::Yes } else { Tri::No }
    }

    /// Both must hold: a definite `No` on either side decides.
    fn and(self, other: Tri) -> Tri {
        match (self, other) {
            (Tri::No, _) | (_, Tri::No) => Tri::No,
            (Tri::Yes, Tri::Yes) => Tri::Yes,
            (Tri::Maybe(mut a), Tri::Maybe(b)) => {
                a.extend(b);
                Tri::Maybe(a)
            }
            (Tri::Maybe(a), Tri::Yes) | (Tri::Yes, Tri::Maybe(a)) => Tri::Maybe(a),
        }
    }
}

/// "Any of": a definite `Yes` decides; otherwise the reasons of every `Maybe`.
fn any_of(items: impl IntoIterator<Item = Tri>) -> Tri {
    let mut reasons = Vec::new();
    for item in items {
        match item {
            Tri::Yes => return Tri::Yes,
            Tri::No => {}
            Tri::Maybe(r) => reasons.extend(r),
        }
    }
    if reasons.is_empty() { Tri::No } else { Tri::Maybe(reasons) }
}

/// Evaluates a label selector against labels, where `known(key)` says whether the label `key`
/// (its value, or its absence) is known. `Ok(None)`: depends on unknown labels;
/// `Err`: the selector is invalid (unknown operator, values where none belong or none where
/// some must be).
fn selector_matches(
    selector: &LabelSelector,
    labels: &BTreeMap<String, String>,
    known: impl Fn(&str) -> bool,
) -> Result<Option<bool>, String> {
    // Validate every requirement first: an invalid selector is invalid whatever the labels.
    let expressions = selector.match_expressions.as_deref().unwrap_or_default();
    for req in expressions {
        let n = req.values.as_ref().map_or(0, Vec::len);
        match req.operator.as_str() {
            "In" | "NotIn" if n == 0 => {
                return Err(format!("operator {} on key {:?} needs values", req.operator, req.key));
            }
            "Exists" | "DoesNotExist" if n != 0 => {
                return Err(format!("operator {} on key {:?} takes no values", req.operator, req.key));
            }
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => return Err(format!("unknown operator {other:?} on key {:?}", req.key)),
        }
    }
    let mut depends = false;
    let match_labels = selector.match_labels.iter().flatten();
    for (key, value) in match_labels {
        if !known(key) {
            depends = true;
        } else if labels.get(key) != Some(value) {
            return Ok(Some(false));
        }
    }
    for req in expressions {
        if !known(&req.key) {
            depends = true;
            continue;
        }
        let value = labels.get(&req.key);
        let values = req.values.as_deref().unwrap_or_default();
        let holds = match req.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => !value.is_some_and(|v| values.contains(v)),
            "Exists" => value.is_some(),
            // "DoesNotExist", the only operator left after validation.
            _ => value.is_none(),
        };
        if !holds {
            return Ok(Some(false));
        }
    }
    Ok(if depends { None } else { Some(true) })
}

/// A selector on fully known labels.
fn selector_tri(selector: &LabelSelector, labels: &BTreeMap<String, String>, what: &str) -> Tri {
    match selector_matches(selector, labels, |_| true) {
        Ok(Some(b)) => Tri::from_bool(b),
        Ok(None) => Tri::maybe(format!("{what}: labels unknown")),
        Err(e) => Tri::maybe(format!("{what} is invalid: {e}")),
    }
}

/// `namespace/name` of a policy (the namespace as given, `?` when absent).
fn policy_name(policy: &NetworkPolicy) -> String {
    format!(
        "{}/{}",
        policy.metadata.namespace.as_deref().unwrap_or("?"),
        policy.metadata.name.as_deref().unwrap_or("<unnamed>")
    )
}

/// Whether the policy affects egress at all, with the API server's defaulting of
/// `policyTypes` applied.
fn affects_egress(spec: &NetworkPolicySpec) -> bool {
    match spec.policy_types.as_deref() {
        Some(types) if !types.is_empty() => types.iter().any(|t| t == "Egress"),
        _ => spec.egress.as_ref().is_some_and(|rules| !rules.is_empty()),
    }
}

/// Does the policy select the pod for egress?
fn selects_for_egress(policy: &NetworkPolicy, pod: &PodIdentity<'_>) -> Tri {
    let Some(spec) = &policy.spec else {
        // No spec: an empty selector and no policy types, i.e. Ingress only.
        return Tri::No;
    };
    if !affects_egress(spec) {
        return Tri::No;
    }
    match policy.metadata.namespace.as_deref() {
        None => return Tri::maybe(format!("NetworkPolicy {} has no namespace", policy_name(policy))),
        Some(ns) if ns != pod.namespace => return Tri::No,
        Some(_) => {}
    }
    match &spec.pod_selector {
        None => Tri::Yes,
        Some(selector) => {
            selector_tri(selector, pod.labels, &format!("spec.podSelector of NetworkPolicy {}", policy_name(policy)))
        }
    }
}

/// A match that records whether it came only from an `ipBlock` on a pod destination.
#[derive(Debug)]
struct RuleMatch {
    tri: Tri,
    ip_block_on_pod: bool,
}

fn ip_block_matches(block: &IPBlock, dest: &Destination<'_>, at: &str) -> Tri {
    let Ok(cidr) = block.cidr.parse::<IpNet>() else {
        return Tri::maybe(format!("{at}.ipBlock.cidr {:?} is not a CIDR", block.cidr));
    };
    if !cidr.contains(&dest.ip) {
        return Tri::No;
    }
    let mut reasons = Vec::new();
    for except in block.except.iter().flatten() {
        match except.parse::<IpNet>() {
            Ok(net) if net.contains(&dest.ip) => return Tri::No,
            Ok(_) => {}
            Err(_) => reasons.push(format!("{at}.ipBlock.except {except:?} is not a CIDR")),
        }
    }
    if reasons.is_empty() { Tri::Yes } else { Tri::Maybe(reasons) }
}

fn namespace_selector_matches(selector: &LabelSelector, pod: &DestinationPod<'_>, at: &str) -> Tri {
    let mut labels = pod.namespace_labels.cloned().unwrap_or_default();
    // The API server always sets it; add it when the caller's copy lacks it.
    labels.entry(NAMESPACE_NAME_LABEL.to_owned()).or_insert_with(|| pod.namespace.to_owned());
    let all_known = pod.namespace_labels.is_some();
    match selector_matches(selector, &labels, |key| all_known || key == NAMESPACE_NAME_LABEL) {
        Ok(Some(b)) => Tri::from_bool(b),
        Ok(None) => Tri::maybe(format!(
            "{at}.namespaceSelector needs the labels of namespace {}, which were not read",
            pod.namespace
        )),
        Err(e) => Tri::maybe(format!("{at}.namespaceSelector is invalid: {e}")),
    }
}

fn peer_matches(peer: &NetworkPolicyPeer, policy_ns: &str, dest: &Destination<'_>, at: &str) -> RuleMatch {
    let no_caveat = |tri| RuleMatch { tri, ip_block_on_pod: false };
    if let Some(block) = &peer.ip_block {
        if peer.pod_selector.is_some() || peer.namespace_selector.is_some() {
            return no_caveat(Tri::maybe(format!("{at} is invalid: ipBlock together with a selector")));
        }
        let tri = ip_block_matches(block, dest, at);
        let ip_block_on_pod = tri == Tri::Yes && matches!(dest.kind, DestinationKind::Pod(_));
        return RuleMatch { tri, ip_block_on_pod };
    }
    if peer.pod_selector.is_none() && peer.namespace_selector.is_none() {
        return no_caveat(Tri::maybe(format!("{at} is invalid: a peer with no ipBlock and no selector")));
    }
    let pod = match dest.kind {
        DestinationKind::External => return no_caveat(Tri::No),
        DestinationKind::Unidentified => {
            return no_caveat(Tri::maybe(format!(
                "{at} selects pods and it is not known whether {} is a pod",
                dest.ip
            )));
        }
        DestinationKind::Pod(pod) => pod,
    };
    let namespace = match &peer.namespace_selector {
        Some(selector) => namespace_selector_matches(selector, &pod, at),
        None => Tri::from_bool(pod.namespace == policy_ns),
    };
    let labels = match &peer.pod_selector {
        Some(selector) => selector_tri(selector, pod.labels, &format!("{at}.podSelector")),
        None => Tri::Yes,
    };
    no_caveat(namespace.and(labels))
}

fn port_matches(port: &NetworkPolicyPort, dest: &Destination<'_>, at: &str) -> Tri {
    let protocol = match port.protocol.as_deref() {
        None => Protocol::Tcp,
        Some(p) => match Protocol::from_api(p) {
            Some(p) => p,
            None => return Tri::maybe(format!("{at}.protocol {p:?} is not TCP, UDP or SCTP")),
        },
    };
    // Invalid entries (which the API server rejects) are undecided whatever the traffic.
    let valid = |n: i32| (1..=i32::from(u16::MAX)).contains(&n);
    match (&port.port, port.end_port) {
        (None, Some(_)) => return Tri::maybe(format!("{at} is invalid: endPort without port")),
        (Some(IntOrString::String(_)), Some(_)) => {
            return Tri::maybe(format!("{at} is invalid: endPort with a named port"));
        }
        (Some(IntOrString::Int(p)), end) if !valid(*p) || !valid(end.unwrap_or(*p)) || end.unwrap_or(*p) < *p => {
            return Tri::maybe(format!("{at} is invalid: port {p}, endPort {end:?}"));
        }
        _ => {}
    }
    if protocol != dest.protocol {
        return Tri::No;
    }
    match &port.port {
        None => Tri::Yes,
        Some(IntOrString::Int(p)) => Tri::from_bool((*p..=port.end_port.unwrap_or(*p)).contains(&i32::from(dest.port))),
        Some(IntOrString::String(name)) => match dest.kind {
            DestinationKind::Pod(pod) => Tri::from_bool(pod.ports.iter().any(|cp| {
                cp.name.as_deref() == Some(name.as_str())
                    && cp.protocol.as_deref().map_or(Some(Protocol::Tcp), Protocol::from_api) == Some(protocol)
                    && cp.container_port == i32::from(dest.port)
            })),
            _ => Tri::maybe(format!(
                "{at}.port is the named port {name:?} and {} is not a known pod: Kubernetes resolves \
                 named ports against the destination pod's container ports, CNIs differ for other \
                 destinations",
                dest.ip
            )),
        },
    }
}

fn rule_matches(rule: &NetworkPolicyEgressRule, policy_ns: &str, dest: &Destination<'_>, at: &str) -> RuleMatch {
    let peers = match rule.to.as_deref() {
        None | Some([]) => RuleMatch { tri: Tri::Yes, ip_block_on_pod: false },
        Some(peers) => {
            // A selector match is preferred over an ipBlock match on a pod (no caveat).
            let results: Vec<RuleMatch> = peers
                .iter()
                .enumerate()
                .map(|(i, p)| peer_matches(p, policy_ns, dest, &format!("{at}.to[{i}]")))
                .collect();
            if results.iter().any(|r| r.tri == Tri::Yes && !r.ip_block_on_pod) {
                RuleMatch { tri: Tri::Yes, ip_block_on_pod: false }
            } else {
                let ip_block_on_pod = results.iter().any(|r| r.ip_block_on_pod);
                RuleMatch { tri: any_of(results.into_iter().map(|r| r.tri)), ip_block_on_pod }
            }
        }
    };
    let ports = match rule.ports.as_deref() {
        None | Some([]) => Tri::Yes,
        Some(ports) => {
            any_of(ports.iter().enumerate().map(|(i, p)| port_matches(p, dest, &format!("{at}.ports[{i}]"))))
        }
    };
    let tri = peers.tri.and(ports);
    let ip_block_on_pod = peers.ip_block_on_pod && tri == Tri::Yes;
    RuleMatch { tri, ip_block_on_pod }
}

/// Do the NetworkPolicies let `pod` send to `dest`? `policies` may hold every policy of the
/// cluster: only those in the pod's namespace that select it for egress count.
pub fn evaluate_egress(pod: &PodIdentity<'_>, policies: &[NetworkPolicy], dest: &Destination<'_>) -> EgressVerdict {
    let mut isolating = BTreeSet::new();
    let mut reasons: Vec<String> = Vec::new();
    // Policies that may or may not select the pod (their selection reasons), and whether one of
    // their rules could allow the traffic.
    let mut maybe_selecting: Vec<(Vec<String>, bool)> = Vec::new();
    // (caveat?, policy, rule): the smallest wins, so the answer does not depend on input order.
    let mut allows: Vec<(bool, String, usize)> = Vec::new();
    for policy in policies {
        let name = policy_name(policy);
        let selection = selects_for_egress(policy, pod);
        if selection == Tri::No {
            continue;
        }
        let rules = policy.spec.as_ref().and_then(|s| s.egress.as_deref()).unwrap_or_default();
        let results = rules.iter().enumerate().map(|(i, rule)| {
            (i, rule_matches(rule, pod.namespace, dest, &format!("NetworkPolicy {name} egress[{i}]")))
        });
        match selection {
            Tri::Yes => {
                isolating.insert(name.clone());
                for (i, m) in results {
                    match m.tri {
                        Tri::Yes => allows.push((m.ip_block_on_pod, name.clone(), i)),
                        Tri::No => {}
                        Tri::Maybe(r) => reasons.extend(r),
                    }
                }
            }
            Tri::Maybe(why) => {
                // Its rules count only if it selects the pod: never a definite allow.
                let mut could_allow = false;
                let mut why = why;
                for (_, m) in results {
                    match m.tri {
                        Tri::Yes => could_allow = true,
                        Tri::No => {}
                        Tri::Maybe(r) => {
                            could_allow = true;
                            why.extend(r);
                        }
                    }
                }
                maybe_selecting.push((why, could_allow));
            }
            Tri::No => {}
        }
    }
    if let Some((caveat, policy, rule)) = allows.into_iter().min() {
        let note = caveat.then(|| {
            format!(
                "{} is a pod matched only by an ipBlock: ipBlock is meant for cluster-external \
                 addresses and CNIs differ on applying it to pod addresses",
                dest.ip
            )
        });
        return EgressVerdict::Allowed { policy, rule, note };
    }
    let isolating: Vec<String> = isolating.into_iter().collect();
    if isolating.is_empty() && maybe_selecting.is_empty() {
        return EgressVerdict::NotIsolated;
    }
    for (why, could_allow) in maybe_selecting {
        // Undecided selection matters when it could allow, or when it alone decides isolation.
        if could_allow || isolating.is_empty() {
            reasons.extend(why);
        }
    }
    if reasons.is_empty() {
        return EgressVerdict::Blocked { isolating };
    }
    let mut seen = BTreeSet::new();
    reasons.retain(|r| seen.insert(r.clone()));
    EgressVerdict::Unknown { isolating, reason: reasons.join("; ") }
}

/// Where a suggested rule sends traffic.
#[derive(Debug, Clone, Copy)]
pub enum EgressTarget<'a> {
    /// One address (`ipBlock` `/32` or `/128`).
    Address(IpAddr),
    /// The pods with these labels in this namespace (`namespaceSelector` on
    /// [`NAMESPACE_NAME_LABEL`] plus `podSelector`); e.g. `kube-system` and the `kube-dns`
    /// Service's selector.
    Pods {
        /// The pods' namespace.
        namespace: &'a str,
        /// Labels that select them; [`PER_REVISION_LABELS`] are dropped.
        labels: &'a BTreeMap<String, String>,
    },
}

/// One thing a suggested policy opens: a target, a protocol and a port.
#[derive(Debug, Clone, Copy)]
pub struct Opening<'a> {
    /// Where to.
    pub target: EgressTarget<'a>,
    /// Which protocol.
    pub protocol: Protocol,
    /// Which port.
    pub port: u16,
}

/// What a private API call needs: TCP 443 to every endpoint address, and UDP and TCP 53 to the
/// DNS server when given (its pods when known, else its address).
pub fn api_openings<'a>(endpoint_addresses: &[IpAddr], dns: Option<EgressTarget<'a>>) -> Vec<Opening<'a>> {
    let mut openings: Vec<Opening<'a>> = endpoint_addresses
        .iter()
        .map(|&ip| Opening { target: EgressTarget::Address(ip), protocol: Protocol::Tcp, port: super::HTTPS_PORT })
        .collect();
    if let Some(target) = dns {
        for protocol in [Protocol::Udp, Protocol::Tcp] {
            openings.push(Opening { target, protocol, port: DNS_PORT });
        }
    }
    openings
}

/// A ready-to-apply NetworkPolicy, as the object and as YAML.
#[derive(Debug, Clone, PartialEq)]
pub struct SuggestedPolicy {
    /// The policy.
    pub policy: NetworkPolicy,
    /// The same policy as YAML, for `kubectl apply -f -`.
    pub yaml: String,
}

fn stable_labels(labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    labels
        .iter()
        .filter(|(k, _)| !PER_REVISION_LABELS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn match_labels(labels: BTreeMap<String, String>) -> LabelSelector {
    LabelSelector { match_labels: (!labels.is_empty()).then_some(labels), match_expressions: None }
}

/// The peer that matches a target.
fn target_peer(target: &EgressTarget<'_>) -> NetworkPolicyPeer {
    match target {
        EgressTarget::Address(ip) => NetworkPolicyPeer {
            ip_block: Some(IPBlock { cidr: IpNet::from(*ip).to_string(), except: None }),
            ..NetworkPolicyPeer::default()
        },
        EgressTarget::Pods { namespace, labels } => NetworkPolicyPeer {
            namespace_selector: Some(match_labels(BTreeMap::from([(
                NAMESPACE_NAME_LABEL.to_owned(),
                (*namespace).to_owned(),
            )]))),
            pod_selector: Some(match_labels(stable_labels(labels))),
            ..NetworkPolicyPeer::default()
        },
    }
}

/// The (protocol, port) pairs a peer needs.
type PortSet = BTreeSet<(Protocol, u16)>;

/// The NetworkPolicy `name`, in the pod's namespace, that lets the pod (selected by its labels
/// minus [`PER_REVISION_LABELS`]; pass a [`PodIdentity`] with a subset to select on fewer)
/// send exactly `openings`: one rule per group of targets that need the same ports, nothing
/// more. It is additive to the policies there (policies are a union), but it isolates for
/// egress every pod it selects that was not isolated yet — choose labels that select only pods
/// already isolated (a namespace-wide default-deny makes every choice safe).
///
/// `None` when there is nothing to open: an `Egress` policy without rules would be a deny-all.
pub fn suggest_egress_policy(name: &str, pod: &PodIdentity<'_>, openings: &[Opening<'_>]) -> Option<SuggestedPolicy> {
    // Per peer (in first-seen order), the (protocol, port) set it needs.
    let mut peers: Vec<(NetworkPolicyPeer, PortSet)> = Vec::new();
    for opening in openings {
        let peer = target_peer(&opening.target);
        let needed = (opening.protocol, opening.port);
        match peers.iter_mut().find(|(p, _)| *p == peer) {
            Some((_, ports)) => {
                ports.insert(needed);
            }
            None => peers.push((peer, BTreeSet::from([needed]))),
        }
    }
    if peers.is_empty() {
        return None;
    }
    // Peers needing the same ports share a rule: rule = peers × ports, so nothing extra opens.
    let mut rules: Vec<(Vec<NetworkPolicyPeer>, PortSet)> = Vec::new();
    for (peer, ports) in peers {
        match rules.iter_mut().find(|(_, p)| *p == ports) {
            Some((to, _)) => to.push(peer),
            None => rules.push((vec![peer], ports)),
        }
    }
    let egress = rules
        .into_iter()
        .map(|(to, ports)| NetworkPolicyEgressRule {
            to: Some(to),
            ports: Some(
                ports
                    .into_iter()
                    .map(|(protocol, port)| NetworkPolicyPort {
                        protocol: Some(protocol.as_str().to_owned()),
                        port: Some(IntOrString::Int(i32::from(port))),
                        end_port: None,
                    })
                    .collect(),
            ),
        })
        .collect();
    let policy = NetworkPolicy {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(pod.namespace.to_owned()),
            ..ObjectMeta::default()
        },
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(match_labels(stable_labels(pod.labels))),
            policy_types: Some(vec!["Egress".to_owned()]),
            egress: Some(egress),
            ingress: None,
        }),
    };
    let yaml = serde_norway::to_string(&policy).unwrap_or_else(|e| format!("# could not render the policy: {e}\n"));
    Some(SuggestedPolicy { policy, yaml })
}

#[cfg(test)]
mod tests;

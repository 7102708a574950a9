//! The source the endpoint sees: which address, interface and security groups a pod's call to
//! the endpoint really carries, on the Amazon VPC CNI.
//!
//! Why this is a rule of its own: the security-group, network-ACL and `aws:VpcSourceIp`
//! analyses are only as right as the source they are given, and on EKS it is often not the
//! pod's address (design §7, the VPC CNI and EKS user guides):
//!
//! * **SNAT.** Unless `AWS_VPC_K8S_CNI_EXTERNALSNAT` is true, the VPC CNI source-NATs pod traffic
//!   to the node's primary address — leaving through the node's primary interface, with its
//!   groups and subnet — for every IPv4 destination outside the VPC's CIDRs and outside
//!   `AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS`. A centralized endpoint in another VPC (Transit
//!   Gateway, peering) is such a destination: rules written for pod addresses or pod groups, and
//!   `aws:VpcSourceIp` conditions written with pod CIDRs, stop matching.
//! * **Security Groups for Pods.** A pod selected by a `SecurityGroupPolicy` has its own branch
//!   interface with its own groups. In the `strict` enforcing mode (the default) all its traffic
//!   leaves through that branch, never source-NATed; in `standard` mode traffic to outside the
//!   VPC is source-NATed like any pod's (and the node's groups apply) unless external SNAT is on.
//! * **Custom networking** (`ENIConfig`) puts the pod's interface in another subnet, with other
//!   groups, than the node's: the pod's interface is still the source, named as such.
//!
//! [`resolve`] is pure: the AWS facts (the pod's interface found by its address, the node's by
//! the pod's host address, the client VPC's CIDRs) and the CNI's settings read from the
//! `aws-node` DaemonSet go in; the facts with `client` replaced by the source the endpoint sees
//! come out, with `client.source` saying which and why. What cannot be decided is said
//! (`assumed`), and a source that is known to be the node's but whose interface could not be
//! read makes `client` unknown — the analyses then say "not checked" instead of judging the
//! pod's groups for traffic that never carries them.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::aws::facts::{AwsFacts, ClientFacts, Fact};

/// Which source the endpoint sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum SourceKind {
    /// The pod's own address on its own (node or custom-networking) interface.
    PodInterface,
    /// The pod's Security Groups for Pods branch interface, with its own groups.
    BranchInterface,
    /// The node's primary address and interface: the VPC CNI source-NATs this traffic.
    NodeAfterSnat,
}

/// How the source in [`ClientFacts`] was decided.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrafficSource {
    pub kind: SourceKind,
    /// The probe pod's own address.
    pub pod_ip: IpAddr,
    /// One line for the evidence: the address, interface and groups, and why these.
    pub detail: String,
    /// Not decided from the facts (the CNI's settings or the VPC's CIDRs could not be read):
    /// the pod's own source is assumed, and `diagnosis.unchecked` says so.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub assumed: bool,
}

/// `POD_SECURITY_GROUP_ENFORCING_MODE`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum SgEnforcingMode {
    /// Only the branch interface's groups; its traffic is never source-NATed (the default).
    #[default]
    Strict,
    /// The branch's groups, and the node's for traffic the CNI source-NATs.
    Standard,
}

/// The Amazon VPC CNI's settings that decide the source, from the `aws-node` DaemonSet's env.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VpcCniConfig {
    /// `AWS_VPC_K8S_CNI_EXTERNALSNAT` (default false: the CNI source-NATs).
    pub external_snat: bool,
    /// `AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS`, the valid IPv4 CIDRs (the CNI skips others).
    pub exclude_snat_cidrs: Vec<String>,
    /// `ENABLE_POD_ENI`: Security Groups for Pods on.
    pub pod_eni: bool,
    /// `POD_SECURITY_GROUP_ENFORCING_MODE`.
    pub enforcing_mode: SgEnforcingMode,
    /// `AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG`: pods take subnets and groups from `ENIConfig`s.
    pub custom_networking: bool,
    /// Settings that could not be read as given, and what was used instead.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// One env entry of the `aws-node` container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnvValue {
    Value(String),
    /// `valueFrom` (a ConfigMap, a Secret, a field): not resolved here; described.
    Reference(String),
}

/// What the cluster says about its CNI.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "status", rename_all = "camelCase")]
pub enum CniFacts {
    /// The Amazon VPC CNI, with its settings.
    VpcCni { config: VpcCniConfig },
    /// No `aws-node` DaemonSet: another CNI, which may masquerade in its own way.
    NotVpcCni { detail: String },
    /// The DaemonSet could not be read.
    Unreadable { reason: String },
}

pub const EXTERNAL_SNAT: &str = "AWS_VPC_K8S_CNI_EXTERNALSNAT";
pub const EXCLUDE_SNAT_CIDRS: &str = "AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS";
pub const ENABLE_POD_ENI: &str = "ENABLE_POD_ENI";
pub const ENFORCING_MODE: &str = "POD_SECURITY_GROUP_ENFORCING_MODE";
pub const CUSTOM_NETWORK: &str = "AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG";

/// Go's `strconv.ParseBool`, which the CNI reads its booleans with.
fn go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Bounded, printable echo of a value read from the cluster.
fn echo(text: &str) -> String {
    let clean: String = text.chars().filter(|c| !c.is_control()).take(64).collect();
    format!("{clean:?}")
}

impl VpcCniConfig {
    /// The settings from the container's env, as the CNI reads them: unset or unparsable values
    /// take the CNI's defaults (noted), invalid exclusion entries are skipped (noted).
    pub fn from_env(env: &[(String, EnvValue)]) -> Self {
        let mut config = VpcCniConfig::default();
        let get = |name: &str| env.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v);
        let mut notes = Vec::new();
        let mut boolean = |name: &str, default: bool| match get(name) {
            None => default,
            Some(EnvValue::Value(v)) => go_bool(v.trim()).unwrap_or_else(|| {
                notes.push(format!("{name}={} is not a boolean: the CNI's default {default} is used", echo(v)));
                default
            }),
            Some(EnvValue::Reference(what)) => {
                notes.push(format!("{name} comes from {what}, not read: the CNI's default {default} is assumed"));
                default
            }
        };
        config.external_snat = boolean(EXTERNAL_SNAT, false);
        config.pod_eni = boolean(ENABLE_POD_ENI, false);
        config.custom_networking = boolean(CUSTOM_NETWORK, false);
        match get(EXCLUDE_SNAT_CIDRS) {
            None => {}
            Some(EnvValue::Value(v)) => {
                for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()).take(64) {
                    match item.parse::<IpNet>() {
                        Ok(IpNet::V4(net)) => config.exclude_snat_cidrs.push(net.trunc().to_string()),
                        _ => notes.push(format!("{EXCLUDE_SNAT_CIDRS}: {} is not an IPv4 CIDR, skipped", echo(item))),
                    }
                }
            }
            Some(EnvValue::Reference(what)) => {
                notes.push(format!("{EXCLUDE_SNAT_CIDRS} comes from {what}, not read: no exclusion assumed"))
            }
        }
        config.enforcing_mode = match get(ENFORCING_MODE) {
            None => SgEnforcingMode::Strict,
            Some(EnvValue::Value(v)) => match v.trim().to_ascii_lowercase().as_str() {
                "strict" | "" => SgEnforcingMode::Strict,
                "standard" => SgEnforcingMode::Standard,
                _ => {
                    notes.push(format!("{ENFORCING_MODE}={} is neither strict nor standard: strict assumed", echo(v)));
                    SgEnforcingMode::Strict
                }
            },
            Some(EnvValue::Reference(what)) => {
                notes.push(format!("{ENFORCING_MODE} comes from {what}, not read: strict (the default) assumed"));
                SgEnforcingMode::Strict
            }
        };
        config.notes = notes;
        config
    }
}

/// `10.0.2.1 (eni-…, subnet-…, groups sg-a, sg-b)`.
fn describe(c: &ClientFacts) -> String {
    let i = &c.interface;
    let mut parts = vec![i.id.clone()];
    if let Some(s) = &i.subnet_id {
        parts.push(s.clone());
    }
    parts.push(if i.security_group_ids.is_empty() {
        "no groups".to_owned()
    } else {
        format!("groups {}", i.security_group_ids.join(", "))
    });
    format!("{} ({})", c.ip, parts.join(", "))
}

fn join(items: &[String]) -> String {
    items.join(", ")
}

/// Is SNAT applied to the endpoint's addresses? `Ok(Some(why))` yes, `Ok(None)` no (with why in
/// `no`), `Err(why)` not decidable.
enum Snat {
    Applies(String),
    DoesNot(String),
    Undecided(String),
}

fn snat(facts: &AwsFacts, pod: &ClientFacts, cni: Option<&CniFacts>) -> Snat {
    let endpoint = facts.endpoint.known();
    let addresses: Vec<IpAddr> = endpoint.map(|e| e.addresses()).unwrap_or_default();
    let v4: Vec<IpAddr> = addresses.iter().copied().filter(IpAddr::is_ipv4).collect();
    if !addresses.is_empty() && v4.is_empty() {
        return Snat::DoesNot("the endpoint's addresses are IPv6, which the VPC CNI never source-NATs".into());
    }
    // Inside the pod's VPC? The same VPC says so without its CIDRs.
    let same_vpc = match (endpoint.and_then(|e| e.vpc_id.as_deref()), pod.interface.vpc_id.as_deref()) {
        (Some(a), Some(b)) => Some(a == b),
        _ => None,
    };
    if same_vpc == Some(true) {
        return Snat::DoesNot(format!(
            "the endpoint is in the pod's VPC {}, whose addresses the VPC CNI never source-NATs",
            pod.interface.vpc_id.as_deref().unwrap_or_default()
        ));
    }
    if v4.is_empty() {
        return Snat::Undecided("the endpoint's addresses are not known".into());
    }
    let cidrs: Option<Vec<IpNet>> =
        facts.client_vpc.known().map(|v| v.cidr_blocks.iter().filter_map(|c| c.parse().ok()).collect());
    let Some(cidrs) = cidrs else {
        let why = facts.client_vpc.gap().unwrap_or_else(|| "not read".into());
        return Snat::Undecided(format!(
            "the endpoint is in {} and the pod in {}, whose CIDRs could not be read ({why})",
            endpoint.and_then(|e| e.vpc_id.as_deref()).unwrap_or("another VPC"),
            pod.interface.vpc_id.as_deref().unwrap_or("an unknown VPC")
        ));
    };
    let vpc_list = facts.client_vpc.known().map(|v| v.cidr_blocks.clone()).unwrap_or_default();
    let outside: Vec<IpAddr> = v4.iter().copied().filter(|a| !cidrs.iter().any(|n| n.contains(a))).collect();
    if outside.is_empty() {
        return Snat::DoesNot(format!(
            "the endpoint's addresses are inside the VPC's CIDRs ({}), which the VPC CNI never source-NATs",
            join(&vpc_list)
        ));
    }
    let config = match cni {
        Some(CniFacts::VpcCni { config }) => config,
        Some(CniFacts::NotVpcCni { detail }) => {
            return Snat::Undecided(format!(
                "the endpoint's addresses are outside the VPC's CIDRs ({}), and the cluster's CNI is not the VPC CNI ({detail}): it may masquerade pod traffic",
                join(&vpc_list)
            ));
        }
        Some(CniFacts::Unreadable { reason }) => {
            return Snat::Undecided(format!(
                "the endpoint's addresses are outside the VPC's CIDRs ({}), and the VPC CNI's settings could not be read ({reason})",
                join(&vpc_list)
            ));
        }
        None => {
            return Snat::Undecided(format!(
                "the endpoint's addresses are outside the VPC's CIDRs ({}), and the cluster's CNI settings were not read",
                join(&vpc_list)
            ));
        }
    };
    if config.external_snat {
        return Snat::DoesNot(format!(
            "{EXTERNAL_SNAT} is true: the VPC CNI does not source-NAT pod traffic (the endpoint's addresses are outside the VPC's CIDRs {})",
            join(&vpc_list)
        ));
    }
    let excluded: Vec<IpNet> = config.exclude_snat_cidrs.iter().filter_map(|c| c.parse().ok()).collect();
    let translated: Vec<IpAddr> = outside.iter().copied().filter(|a| !excluded.iter().any(|n| n.contains(a))).collect();
    if translated.is_empty() {
        return Snat::DoesNot(format!(
            "{EXCLUDE_SNAT_CIDRS} ({}) covers the endpoint's addresses outside the VPC's CIDRs",
            join(&config.exclude_snat_cidrs)
        ));
    }
    if translated.len() < v4.len() {
        return Snat::Undecided(format!(
            "only some of the endpoint's addresses are source-NATed ({} of {}: outside the VPC's CIDRs {} and not excluded)",
            translated.len(),
            v4.len(),
            join(&vpc_list)
        ));
    }
    let list: Vec<String> = translated.iter().map(ToString::to_string).collect();
    Snat::Applies(format!(
        "the VPC CNI source-NATs pod traffic to addresses outside the VPC's CIDRs ({}): {EXTERNAL_SNAT} is false and no {EXCLUDE_SNAT_CIDRS} entry covers {}",
        join(&vpc_list),
        join(&list)
    ))
}

/// The facts with `client` replaced by the source the endpoint sees (see the module docs).
/// Unchanged when the pod's interface is not known or the source was already resolved.
pub fn resolve(facts: &AwsFacts, cni: Option<&CniFacts>) -> AwsFacts {
    let mut out = facts.clone();
    let Some(pod) = facts.client.known() else { return out };
    if pod.source.is_some() {
        return out;
    }
    let config = match cni {
        Some(CniFacts::VpcCni { config }) => Some(config),
        _ => None,
    };
    let source = |kind, detail: String, assumed| TrafficSource { kind, pod_ip: pod.ip, detail, assumed };
    let own = |kind, detail: String, assumed| {
        let mut c = pod.clone();
        c.source = Some(source(kind, detail, assumed));
        Fact::Known { value: c }
    };
    let notes = config.filter(|c| !c.notes.is_empty()).map(|c| format!(" (CNI settings: {})", c.notes.join("; ")));
    let notes = notes.unwrap_or_default();

    // A host-network pod is the node.
    if facts.node.known().is_some_and(|n| n.ip == pod.ip) {
        out.client = own(
            SourceKind::PodInterface,
            format!("the endpoint sees the node's own address {}: the pod uses the host network", describe(pod)),
            false,
        );
        return out;
    }

    let branch = pod.interface.is_branch();
    let mode = config.map(|c| c.enforcing_mode);
    if branch && mode != Some(SgEnforcingMode::Standard) {
        let how = match mode {
            Some(_) => "enforcing mode strict".to_owned(),
            None => "enforcing mode not read: strict, the default, assumed".to_owned(),
        };
        let undecided_matters = mode.is_none() && !matches!(snat(facts, pod, None), Snat::DoesNot(_));
        out.client = own(
            SourceKind::BranchInterface,
            format!(
                "the endpoint sees the pod's branch interface {} (Security Groups for Pods, {how}): its groups apply, not the node's{notes}",
                describe(pod)
            ),
            undecided_matters,
        );
        return out;
    }

    let decision = snat(facts, pod, cni);
    let (kind, what) = if branch {
        (
            SourceKind::BranchInterface,
            format!("the pod's branch interface {} (Security Groups for Pods, enforcing mode standard)", describe(pod)),
        )
    } else if config.is_some_and(|c| c.custom_networking)
        && let Some(node) = facts.node.known()
        && node.interface.subnet_id != pod.interface.subnet_id
    {
        (
            SourceKind::PodInterface,
            format!(
                "the pod's own address {} — custom networking ({CUSTOM_NETWORK}): the pod's interface is in {}, the node's in {}",
                describe(pod),
                pod.interface.subnet_id.as_deref().unwrap_or("?"),
                node.interface.subnet_id.as_deref().unwrap_or("?")
            ),
        )
    } else {
        (SourceKind::PodInterface, format!("the pod's own address {}", describe(pod)))
    };
    match decision {
        Snat::DoesNot(why) => out.client = own(kind, format!("the endpoint sees {what}: {why}{notes}"), false),
        Snat::Undecided(why) => {
            out.client = own(kind, format!("the endpoint is assumed to see {what}: {why}{notes}"), true);
        }
        Snat::Applies(why) => {
            let detail = |node: &str| {
                format!("the endpoint sees the node's address {node}, not the pod's {}: {why}{notes}", pod.ip)
            };
            out.client = match facts.node.known() {
                Some(node) => {
                    let mut c = node.clone();
                    c.source = Some(source(SourceKind::NodeAfterSnat, detail(&describe(node)), false));
                    Fact::Known { value: c }
                }
                None => {
                    let gap = facts.node.gap().unwrap_or_else(|| match &facts.node {
                        Fact::NotFound { detail } => detail.clone(),
                        Fact::Skipped { reason } => reason.clone(),
                        _ => "not read".into(),
                    });
                    let reason = format!("{}; the node's interface could not be read ({gap})", detail("(unknown)"));
                    out.gaps.insert("client".into(), reason.clone());
                    Fact::Unknown { reason, missing_permission: None }
                }
            };
        }
    }
    out
}

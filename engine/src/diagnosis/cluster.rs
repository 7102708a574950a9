//! The cluster's side of the path: Kubernetes NetworkPolicies on the probing pod's egress.
//!
//! Why a rule of its own, first among the network rules: a policy that isolates the pod drops
//! its packets next to the pod, before any security group or network ACL sees them, so a
//! timeout with the VPC's analyses all allowing is this — the most reported "the security
//! groups allow it but it times out". A policy that blocks the path is named even when the
//! probe got through: enforcers learn a new pod's address from the apiserver and let its first
//! packets pass (measured on the local node: 7 of 10 fresh probe pods escaped a default-deny
//! entirely; the VPC CNI's agent documents the same for new pods in its standard mode), so a
//! short-lived probe can succeed where the workload's long-running pods are blocked. The
//! operator evaluates the real policy objects for the pod (`network::kubernetes`) and hands the
//! verdicts in as [`ClusterFacts`]; `check --local` has none.

use super::*;

/// A NetworkPolicy verdict for one destination of the probing pod.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EgressFinding {
    pub status: EgressStatus,
    /// `namespace/name` of the policies that isolate the pod's egress (when blocked).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub isolating_policies: Vec<String>,
    /// One line: what allows or blocks it, or why it could not be decided.
    pub detail: String,
}

/// Allowed, blocked, or not decidable from the policy objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum EgressStatus {
    /// No policy isolates the pod's egress.
    NotIsolated,
    Allowed,
    Blocked,
    Unknown,
}

/// What the cluster says about the probing pod's own egress.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterFacts {
    /// The pod whose egress was evaluated (`namespace/name` or a description of its labels).
    pub pod: String,
    /// TCP 443 to the endpoint's addresses (those the probe connected to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_egress: Option<EgressFinding>,
    /// UDP and TCP 53 to the pod's DNS server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_egress: Option<EgressFinding>,
    /// The NetworkPolicy that opens exactly what is missing, ready to `kubectl apply`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggested_policy: Option<String>,
    /// Policy kinds present in the cluster that are not evaluated (CiliumNetworkPolicy,
    /// Calico NetworkPolicy, …): a path they block is never called allowed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unevaluated: Vec<String>,
    /// Why the policies could not be read, when they could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
}

impl ClusterFacts {
    /// Lines for `diagnosis.unchecked`: unevaluated policy kinds and unreadable policies.
    pub fn unchecked(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(why) = &self.unreadable {
            out.push(format!("NetworkPolicy: could not be read ({why}); the pod's egress was not checked"));
        }
        for kind in &self.unevaluated {
            out.push(format!(
                "NetworkPolicy: {kind} objects exist in the cluster and are not evaluated; they may block what the Kubernetes NetworkPolicies allow"
            ));
        }
        for (what, f) in [("TCP 443 to the endpoint", &self.endpoint_egress), ("DNS", &self.dns_egress)] {
            if let Some(f) = f
                && f.status == EgressStatus::Unknown
            {
                out.push(format!("NetworkPolicy, {what}: not decided ({})", f.detail));
            }
        }
        out
    }
}

/// A timeout the NetworkPolicies explain: the resolver's (DNS timed out) or the endpoint's
/// (TCP 443 timed out on some address of the invoke host).
pub(super) fn network_policy(probe: &ProbeReport, cluster: &ClusterFacts) -> Option<Finding> {
    let host = invoke_host(probe)?;
    let dns_timed_out =
        probe.dns.iter().any(|d| d.host == host && matches!(d.outcome, DnsOutcome::Timeout | DnsOutcome::Error));
    let addrs: Vec<_> =
        probe.dns.iter().filter(|d| d.host == host).flat_map(|d| d.addresses.iter().map(|a| a.ip)).collect();
    let tcp_timed_out: Vec<String> = probe
        .tcp
        .iter()
        .filter(|t| addrs.contains(&t.ip) && t.outcome == TcpOutcome::Timeout)
        .map(|t| format!("{}:{} Timeout after {} ms", t.ip, t.port, t.ms))
        .collect();
    let blocked = |f: &Option<EgressFinding>| f.as_ref().filter(|f| f.status == EgressStatus::Blocked).cloned();
    let dns_what = format!("DNS lookups of {host} from {}", cluster.pod);
    let tcp_what = format!("TCP 443 from {} to the endpoint", cluster.pod);
    // `got_through`: the policies block a path this probe used anyway — it was not policed yet
    // (a new pod is not policed at once: the enforcer learns its address from the apiserver)
    // or the cluster does not enforce NetworkPolicies. Either way not Healthy: a long-running
    // pod of the workload is blocked wherever they are enforced.
    let (what, verdict, mut evidence, got_through) = if dns_timed_out && let Some(v) = blocked(&cluster.dns_egress) {
        (dns_what, v, vec![format!("{host}: DNS timed out via {}", probe.resolver)], false)
    } else if !tcp_timed_out.is_empty()
        && let Some(v) = blocked(&cluster.endpoint_egress)
    {
        (tcp_what, v, tcp_timed_out, false)
    } else if let Some(v) = blocked(&cluster.endpoint_egress) {
        let connected: Vec<String> = probe
            .tcp
            .iter()
            .filter(|t| addrs.contains(&t.ip) && t.outcome == TcpOutcome::Connected)
            .map(|t| format!("{}:{} connected in {} ms", t.ip, t.port, t.ms))
            .collect();
        (tcp_what, v, connected, true)
    } else if let Some(v) = blocked(&cluster.dns_egress) {
        (dns_what, v, vec![format!("{host}: resolved via {} all the same", probe.resolver)], true)
    } else {
        return None;
    };
    evidence.push(format!("NetworkPolicy isolating the pod's egress: {}", verdict.isolating_policies.join(", ")));
    evidence.push(verdict.detail.clone());
    let mut remediation = vec![format!(
        "Allow it in a NetworkPolicy selecting the pod (the isolating ones: {}), or apply the policy in the fix",
        verdict.isolating_policies.join(", ")
    )];
    remediation.push(RootCause::NetworkPolicyBlocked.typical_fix().to_owned());
    let fixes = cluster
        .suggested_policy
        .as_ref()
        .map(|yaml| {
            vec![fix::Fix {
                description: format!("A NetworkPolicy allowing exactly the missing egress for {}", cluster.pod),
                account: None,
                aws_cli: Vec::new(),
                command_line: None,
                policy: None,
                manifest: Some(yaml.clone()),
            }]
        })
        .unwrap_or_default();
    let summary = if got_through {
        evidence.push(
            "the probe got through only because it was not policed yet (a new pod is not policed at once) or the cluster does not enforce NetworkPolicies".into(),
        );
        format!(
            "{what} is blocked by NetworkPolicy: {} isolate its egress and no rule allows it (this probe got through before the policies applied to it, or they are not enforced)",
            verdict.isolating_policies.join(", ")
        )
    } else {
        format!(
            "{what} is dropped by NetworkPolicy: {} isolate its egress and no rule allows it",
            verdict.isolating_policies.join(", ")
        )
    };
    finding(RootCause::NetworkPolicyBlocked, summary, evidence, remediation).map(|f| f.with_fixes(fixes))
}

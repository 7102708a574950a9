//! The cluster's side of a run: the NetworkPolicies on the probe pod's egress.
//!
//! Why the operator reads them: a policy isolating the pod drops its packets before any
//! security group or ACL sees them, and only the policy objects and the pod's own labels tell
//! (the most reported "the security groups allow it but it times out"). Read on every run: a
//! fresh probe pod may get through before the enforcer polices it, so a clean run does not prove
//! the workload's pods are let through — one LIST call, and nothing more when the namespace has
//! no policy and nothing timed out. The evaluation is the engine's
//! (`network::kubernetes`); this module finds the destinations as the CNI sees them — the
//! endpoint's addresses (never pods) and the DNS server behind the pod's resolv.conf address
//! (the `kube-dns`-style Service's pods when that address is a ClusterIP in `kube-system`).

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{ContainerPort, Namespace, Pod, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use pvtapi_engine::diagnosis::cluster::{ClusterFacts, EgressFinding, EgressStatus};
use pvtapi_engine::network::kubernetes::{
    Destination, DestinationKind, DestinationPod, EgressTarget, EgressVerdict, PodIdentity, Protocol, api_openings,
    evaluate_egress, suggest_egress_policy,
};
use pvtapi_engine::probe::ProbeReport;
use pvtapi_engine::probe::classify::TcpOutcome;
use pvtapi_engine::probe::report::DnsOutcome;

use crate::probe_pod::LABEL_RUN;

/// Where cluster DNS Services live.
const DNS_NAMESPACE: &str = "kube-system";

/// API groups of policy engines whose objects are not evaluated here, and what to call them.
const UNEVALUATED_POLICY_GROUPS: &[(&str, &str)] = &[
    ("cilium.io", "Cilium (CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy)"),
    ("crd.projectcalico.org", "Calico (NetworkPolicy, GlobalNetworkPolicy)"),
    ("projectcalico.org", "Calico (NetworkPolicy, GlobalNetworkPolicy)"),
    ("policy.networking.k8s.io", "AdminNetworkPolicy / BaselineAdminNetworkPolicy"),
    ("networking.k8s.aws", "Amazon VPC CNI ClusterNetworkPolicy"),
];

/// Did the run see a timeout a NetworkPolicy could explain? (Policies are read on every run:
/// one that blocks the path is named even when the probe got through, see
/// `diagnosis::cluster`; this decides only whether an empty namespace needs the full look —
/// other policy engines, the DNS server.)
pub fn worth_reading(report: &ProbeReport) -> bool {
    let dns_timeout = report.dns.iter().any(|d| matches!(d.outcome, DnsOutcome::Timeout | DnsOutcome::Error));
    let tcp_timeout = report.tcp.iter().any(|t| t.outcome == TcpOutcome::Timeout);
    dns_timeout || tcp_timeout
}

/// The probe pod's egress verdicts for this run's destinations, read from the cluster.
/// `endpoint_addresses`: the endpoint's interface addresses from AWS facts, judged (and opened
/// by the suggested policy) with those the probe tried — so one policy opens the whole path even
/// when the DNS lookup was dropped first and the probe never learnt them.
pub async fn cluster_facts(
    client: &Client,
    pod: &Pod,
    check_name: &str,
    report: &ProbeReport,
    endpoint_addresses: &[IpAddr],
) -> ClusterFacts {
    let ns = pod.namespace().unwrap_or_default();
    // The run label changes every run: a suggested policy selects on the stable ones.
    let labels: BTreeMap<String, String> =
        pod.labels().iter().filter(|(k, _)| k.as_str() != LABEL_RUN).map(|(k, v)| (k.clone(), v.clone())).collect();
    let mut facts = ClusterFacts { pod: format!("{ns}/{}", pod.name_any()), ..ClusterFacts::default() };
    let timed_out = worth_reading(report);
    let policies = match Api::<NetworkPolicy>::namespaced(client.clone(), &ns).list(&ListParams::default()).await {
        Ok(list) => list.items,
        Err(e) => {
            facts.unreadable = Some(format!("list networkpolicies in {ns}: {e}"));
            if timed_out {
                facts.unevaluated = unevaluated_engines(client).await;
            }
            return facts;
        }
    };
    // No policy in the namespace and nothing timed out: nothing to explain, no more calls.
    if policies.is_empty() && !timed_out {
        let open = |what: &str| EgressFinding {
            status: EgressStatus::NotIsolated,
            isolating_policies: Vec::new(),
            detail: format!("{what}: no NetworkPolicy in {ns}"),
        };
        facts.endpoint_egress = Some(open("TCP 443"));
        facts.dns_egress = Some(open("DNS"));
        return facts;
    }
    facts.unevaluated = unevaluated_engines(client).await;
    let identity = PodIdentity { namespace: &ns, labels: &labels };

    // TCP 443 to the endpoint: every address of the invoke host the probe tried, and the
    // endpoint's own.
    let endpoint_ips: Vec<IpAddr> = {
        let mut ips: Vec<IpAddr> = Vec::new();
        for ip in report.tcp.iter().map(|t| t.ip).chain(endpoint_addresses.iter().copied()) {
            if !ips.contains(&ip) {
                ips.push(ip);
            }
        }
        ips
    };
    let endpoint_verdicts: Vec<(IpAddr, EgressVerdict)> = endpoint_ips
        .iter()
        .map(|ip| {
            let dest = Destination { ip: *ip, port: 443, protocol: Protocol::Tcp, kind: DestinationKind::External };
            (*ip, evaluate_egress(&identity, &policies, &dest))
        })
        .collect();
    facts.endpoint_egress = combine(&endpoint_verdicts, "TCP 443");

    // DNS: the resolver's addresses, as pods when they are a cluster DNS Service's ClusterIP.
    let dns = dns_destination(client, report).await;
    let mut dns_verdicts = Vec::new();
    if let Some(target) = &dns {
        for protocol in [Protocol::Udp, Protocol::Tcp] {
            let kind = match &target.pod {
                Some(p) => DestinationKind::Pod(DestinationPod {
                    namespace: DNS_NAMESPACE,
                    namespace_labels: p.namespace_labels.as_ref(),
                    labels: &p.labels,
                    ports: &p.ports,
                }),
                None => DestinationKind::Unidentified,
            };
            let dest = Destination { ip: target.ip, port: target.port, protocol, kind };
            dns_verdicts.push((target.ip, evaluate_egress(&identity, &policies, &dest)));
        }
    }
    facts.dns_egress = combine(&dns_verdicts, "DNS");

    let blocked = |f: &Option<EgressFinding>| f.as_ref().is_some_and(|f| f.status == EgressStatus::Blocked);
    if blocked(&facts.endpoint_egress) || blocked(&facts.dns_egress) {
        let dns_target = dns.as_ref().map(|d| match &d.pod {
            Some(p) => EgressTarget::Pods { namespace: DNS_NAMESPACE, labels: &p.selector },
            None => EgressTarget::Address(d.ip),
        });
        let openings = api_openings(&endpoint_ips, dns_target);
        facts.suggested_policy =
            suggest_egress_policy(&format!("pvtapi-allow-{check_name}"), &identity, &openings).map(|p| p.yaml);
    }
    facts
}

/// One finding from per-address verdicts: blocked if any is, allowed if all are.
fn combine(verdicts: &[(IpAddr, EgressVerdict)], what: &str) -> Option<EgressFinding> {
    if verdicts.is_empty() {
        return None;
    }
    if let Some((ip, EgressVerdict::Blocked { isolating })) =
        verdicts.iter().find(|(_, v)| matches!(v, EgressVerdict::Blocked { .. }))
    {
        return Some(EgressFinding {
            status: EgressStatus::Blocked,
            isolating_policies: isolating.clone(),
            detail: format!("{what} to {ip}: {}", EgressVerdict::Blocked { isolating: isolating.clone() }),
        });
    }
    if let Some((ip, v @ EgressVerdict::Unknown { isolating, .. })) =
        verdicts.iter().find(|(_, v)| matches!(v, EgressVerdict::Unknown { .. }))
    {
        return Some(EgressFinding {
            status: EgressStatus::Unknown,
            isolating_policies: isolating.clone(),
            detail: format!("{what} to {ip}: {v}"),
        });
    }
    let all_open = verdicts.iter().all(|(_, v)| matches!(v, EgressVerdict::NotIsolated));
    let detail = verdicts.iter().map(|(ip, v)| format!("{what} to {ip}: {v}")).collect::<Vec<_>>().join("; ");
    Some(EgressFinding {
        status: if all_open { EgressStatus::NotIsolated } else { EgressStatus::Allowed },
        isolating_policies: Vec::new(),
        detail,
    })
}

/// The DNS server as the CNI sees it.
struct DnsDestination {
    ip: IpAddr,
    port: u16,
    pod: Option<DnsPod>,
}

struct DnsPod {
    namespace_labels: Option<BTreeMap<String, String>>,
    labels: BTreeMap<String, String>,
    /// The Service's selector (what a suggested policy selects the DNS pods by).
    selector: BTreeMap<String, String>,
    ports: Vec<ContainerPort>,
}

/// The first resolver address; when it is the ClusterIP of a Service in `kube-system`, the
/// address and labels of one of that Service's pods (policies are enforced on the pod).
async fn dns_destination(client: &Client, report: &ProbeReport) -> Option<DnsDestination> {
    let addr = *report.resolver_addresses.first()?;
    let services = Api::<Service>::namespaced(client.clone(), DNS_NAMESPACE).list(&ListParams::default()).await.ok();
    let service = services.and_then(|l| {
        l.items.into_iter().find(|s| {
            s.spec.as_ref().is_some_and(|spec| {
                spec.cluster_ips.iter().flatten().chain(spec.cluster_ip.iter()).any(|ip| ip == &addr.ip().to_string())
            })
        })
    });
    let Some(selector) = service.and_then(|s| s.spec.and_then(|spec| spec.selector)).filter(|s| !s.is_empty()) else {
        return Some(DnsDestination { ip: addr.ip(), port: addr.port(), pod: None });
    };
    let label_selector = selector.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
    let pods = Api::<Pod>::namespaced(client.clone(), DNS_NAMESPACE)
        .list(&ListParams::default().labels(&label_selector))
        .await
        .ok()?;
    let pod = pods.items.into_iter().find(|p| p.status.as_ref().and_then(|s| s.pod_ip.as_ref()).is_some())?;
    let ip: IpAddr = pod.status.as_ref().and_then(|s| s.pod_ip.as_deref()).and_then(|ip| ip.parse().ok())?;
    let ports: Vec<ContainerPort> = pod
        .spec
        .as_ref()
        .map(|s| s.containers.iter().flat_map(|c| c.ports.iter().flatten()).cloned().collect())
        .unwrap_or_default();
    let namespace_labels =
        Api::<Namespace>::all(client.clone()).get(DNS_NAMESPACE).await.ok().map(|n| n.labels().clone());
    Some(DnsDestination {
        ip,
        // The Service port maps to the pod's target port; cluster DNS serves 53 on both.
        port: 53,
        pod: Some(DnsPod { namespace_labels, labels: pod.labels().clone(), selector, ports }),
    })
}

/// Policy engines installed in the cluster (their API groups are served) whose objects are
/// not evaluated. Discovery needs no RBAC beyond being authenticated.
async fn unevaluated_engines(client: &Client) -> Vec<String> {
    let Ok(groups) = client.list_api_groups().await else { return Vec::new() };
    let mut out: Vec<String> = groups
        .groups
        .iter()
        .filter_map(|g| {
            UNEVALUATED_POLICY_GROUPS.iter().find(|(name, _)| *name == g.name).map(|(_, what)| (*what).to_owned())
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

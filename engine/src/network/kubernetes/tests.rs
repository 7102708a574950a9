//! Table tests for the NetworkPolicy egress evaluator: one row per field and semantic, the
//! policies written as YAML (the way they are applied) and parsed with the workspace's YAML
//! crate into the `k8s-openapi` types the evaluator takes.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::ContainerPort;
use k8s_openapi::api::networking::v1::NetworkPolicy;

use super::*;

/// Parses one policy; `apiVersion` and `kind` are added, the common indentation removed.
fn policy(yaml: &str) -> NetworkPolicy {
    let indent =
        yaml.lines().filter(|l| !l.trim().is_empty()).map(|l| l.len() - l.trim_start().len()).min().unwrap_or(0);
    let body: String = yaml.lines().map(|l| format!("{}\n", l.get(indent..).unwrap_or(""))).collect();
    let doc = format!("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n{body}");
    serde_norway::from_str(&doc).unwrap_or_else(|e| panic!("{e}\n{doc}"))
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn container_ports(ports: &[(&str, i32, &str)]) -> Vec<ContainerPort> {
    ports
        .iter()
        .map(|(name, port, protocol)| ContainerPort {
            name: Some((*name).to_owned()),
            container_port: *port,
            protocol: Some((*protocol).to_owned()),
            ..ContainerPort::default()
        })
        .collect()
}

/// The pod under test: namespace `app`, labels `app=web, tier=front`.
const POD_NS: &str = "app";
const POD_LABELS: &[(&str, &str)] = &[("app", "web"), ("tier", "front")];

#[derive(Debug, Clone, Copy)]
enum Kind {
    External,
    Unidentified,
    Pod {
        ns: &'static str,
        /// `None`: the namespace's labels were not readable.
        ns_labels: Option<&'static [(&'static str, &'static str)]>,
        labels: &'static [(&'static str, &'static str)],
        ports: &'static [(&'static str, i32, &'static str)],
    },
}

/// A destination, owned by the table row.
#[derive(Debug, Clone, Copy)]
struct Dst {
    ip: &'static str,
    port: u16,
    protocol: Protocol,
    kind: Kind,
}

const KUBE_SYSTEM_LABELS: &[(&str, &str)] = &[("kubernetes.io/metadata.name", "kube-system")];
const COREDNS_LABELS: &[(&str, &str)] = &[("k8s-app", "kube-dns"), ("pod-template-hash", "5d8f7c")];
const COREDNS_PORTS: &[(&str, i32, &str)] = &[("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"), ("metrics", 9153, "TCP")];

/// The interface endpoint's ENI address: not a pod.
const ENDPOINT: Dst = ext("10.0.1.5", 443, Protocol::Tcp);

const fn ext(ip: &'static str, port: u16, protocol: Protocol) -> Dst {
    Dst { ip, port, protocol, kind: Kind::External }
}

/// CoreDNS in kube-system.
const fn dns(protocol: Protocol) -> Dst {
    dns_with(Some(KUBE_SYSTEM_LABELS), protocol)
}

const fn dns_with(ns_labels: Option<&'static [(&'static str, &'static str)]>, protocol: Protocol) -> Dst {
    Dst {
        ip: "10.0.3.10",
        port: 53,
        protocol,
        kind: Kind::Pod { ns: "kube-system", ns_labels, labels: COREDNS_LABELS, ports: COREDNS_PORTS },
    }
}

/// A pod in the policy's own namespace.
const SAME_NS_POD: Dst = Dst {
    ip: "10.0.4.20",
    port: 8080,
    protocol: Protocol::Tcp,
    kind: Kind::Pod {
        ns: "app",
        ns_labels: Some(&[("kubernetes.io/metadata.name", "app")]),
        labels: &[("app", "cache")],
        ports: &[],
    },
};

const UNIDENTIFIED: Dst = Dst { ip: "10.0.9.9", port: 443, protocol: Protocol::Tcp, kind: Kind::Unidentified };

fn evaluate(policies: &[NetworkPolicy], dst: &Dst) -> EgressVerdict {
    let pod_labels = labels(POD_LABELS);
    let pod = PodIdentity { namespace: POD_NS, labels: &pod_labels };
    with_destination(dst, |dest| evaluate_egress(&pod, policies, dest))
}

/// Builds the borrowed [`Destination`] for a row and hands it to `f`.
fn with_destination<T>(dst: &Dst, f: impl FnOnce(&Destination<'_>) -> T) -> T {
    let ip: IpAddr = dst.ip.parse().expect("row address");
    match dst.kind {
        Kind::External => {
            f(&Destination { ip, port: dst.port, protocol: dst.protocol, kind: DestinationKind::External })
        }
        Kind::Unidentified => {
            f(&Destination { ip, port: dst.port, protocol: dst.protocol, kind: DestinationKind::Unidentified })
        }
        Kind::Pod { ns, ns_labels, labels: pod_labels, ports } => {
            let ns_labels = ns_labels.map(labels);
            let pod_labels = labels(pod_labels);
            let ports = container_ports(ports);
            let kind = DestinationKind::Pod(DestinationPod {
                namespace: ns,
                namespace_labels: ns_labels.as_ref(),
                labels: &pod_labels,
                ports: &ports,
            });
            f(&Destination { ip, port: dst.port, protocol: dst.protocol, kind })
        }
    }
}

#[derive(Debug)]
enum Want {
    NotIsolated,
    Allowed(&'static str, usize),
    /// Allowed, with the ipBlock-on-a-pod note.
    AllowedNote(&'static str, usize),
    Blocked(&'static [&'static str]),
    /// Unknown, the reason containing this text.
    Unknown(&'static str),
}

fn check(row: &str, got: &EgressVerdict, want: &Want) {
    let ok = match (want, got) {
        (Want::NotIsolated, EgressVerdict::NotIsolated) => true,
        (Want::Allowed(p, r), EgressVerdict::Allowed { policy, rule, note: None }) => policy == p && rule == r,
        (Want::AllowedNote(p, r), EgressVerdict::Allowed { policy, rule, note: Some(note) }) => {
            policy == p && rule == r && note.contains("ipBlock")
        }
        (Want::Blocked(names), EgressVerdict::Blocked { isolating }) => isolating == names,
        (Want::Unknown(text), EgressVerdict::Unknown { reason, .. }) => reason.contains(text),
        _ => false,
    };
    assert!(ok, "row {row:?}: want {want:?}, got {got:?}");
}

/// A namespace-wide egress default-deny.
const DENY_ALL: &str = "
    metadata: {name: deny-all, namespace: app}
    spec: {podSelector: {}, policyTypes: [Egress]}
";

/// Allows TCP 443 anywhere, for every pod of `app`.
const ALLOW_443: &str = "
    metadata: {name: allow-api, namespace: app}
    spec:
      podSelector: {}
      policyTypes: [Egress]
      egress:
        - ports: [{protocol: TCP, port: 443}]
";

/// The table: (row, policies, destination, verdict).
fn rows() -> Vec<(&'static str, Vec<&'static str>, Dst, Want)> {
    use Protocol::{Sctp, Tcp, Udp};
    use Want::*;
    vec![
        // ---- which policies select the pod: spec.podSelector and the namespace ----
        ("no policies: not isolated", vec![], ENDPOINT, NotIsolated),
        ("empty podSelector selects every pod: default deny", vec![DENY_ALL], ENDPOINT, Blocked(&["app/deny-all"])),
        (
            "absent podSelector is the empty selector",
            vec!["metadata: {name: p, namespace: app}\nspec: {policyTypes: [Egress]}"],
            ENDPOINT,
            Blocked(&["app/p"]),
        ),
        (
            "matchLabels matching the pod",
            vec!["
                metadata: {name: p, namespace: app}
                spec: {podSelector: {matchLabels: {app: web}}, policyTypes: [Egress]}
            "],
            ENDPOINT,
            Blocked(&["app/p"]),
        ),
        (
            "matchLabels not matching the pod",
            vec!["
                metadata: {name: p, namespace: app}
                spec: {podSelector: {matchLabels: {app: api}}, policyTypes: [Egress]}
            "],
            ENDPOINT,
            NotIsolated,
        ),
        (
            "matchLabels: every label must match",
            vec!["
                metadata: {name: p, namespace: app}
                spec: {podSelector: {matchLabels: {app: web, tier: back}}, policyTypes: [Egress]}
            "],
            ENDPOINT,
            NotIsolated,
        ),
        (
            "matchExpressions In, value listed",
            vec!["
                metadata: {name: p, namespace: app}
                spec:
                  podSelector: {matchExpressions: [{key: app, operator: In, values: [api, web]}]}
                  policyTypes: [Egress]
            "],
            ENDPOINT,
            Blocked(&["app/p"]),
        ),
        (
            "matchExpressions In, value not listed",
            vec!["
                metadata: {name: p, namespace: app}
                spec:
                  podSelector: {matchExpressions: [{key: app, operator: In, values: [api]}]}
                  policyTypes: [Egress]
            "],
            ENDPOINT,
            NotIsolated,
        ),
        (
            "matchExpressions In, label absent",
            vec!["
                metadata: {name: p, namespace: app}
                spec:
                  podSelector: {matchExpressions: [{key: team, operator: In, values: [x]}]}
                  policyTypes: [Egress]
            "],
            ENDPOINT,
            NotIsolated,
        ),
        (
            "matchExpressions NotIn, value not listed",
            vec!["
                metadata: {name: p, namespace: app}
                spec:
                  podSelector: {matchExpressions: [{key: app, operator: NotIn, values: [api]}]}
                  policyTypes: [Egress]
            "],
            ENDPOINT,
            Blocked(&["app/p"]),
        ),
        (
            "matchExpressions NotIn, label absent matches",
            vec!["
                metadata: {name: p, namespace: app}
                spec:
                  podSelector: {matchExpressions: [{key: team, operator: NotIn, values: [x]}]}
                  policyTypes: [Egress]
            "],
            ENDPOINT,
            Blocked(&["app/p"]),
        ),
        (
            "matchExpressions NotIn, value listed",
            vec!["
                metadata: {name: p, namespace: app}
                spec:
                  podSelector: {matchExpressions: [{key: app, operator: NotIn, values: [web]}]}
                  policyTypes: [Egress]
            "],
            ENDPOINT,
            NotIsolated,
        ),
        (
            "matchExpressions Exists, label present",
            vec!["
                metadata: {name: p, namespace: app}
                spec: {podSelector: {matchExpressions: [{key: app, operator: Exists}]}, policyTypes: [Egress]}
            "],
            ENDPOINT,
            Blocked(&["app/p"]),
        ),
        (
            "matchExpressions Exists, label absent",
            vec!["
                metadata: {name: p, namespace: app}
                spec: {podSelector: {matchExpressions: [{key: team, operator: Exists}]}, policyTypes: [Egress]}
            "],
            ENDPOINT,
            NotIsolated,
        ),
        (
            "matchExpressions DoesNotExist, label absent",
            vec!["
                metadata: {name: p, namespace: app}
                spec: {podSelector: {matchExpressions: [{key: team, operator: DoesNotExist}]}, policyTypes: [Egress]}
            "],
            ENDPOINT,
            Blocked(&["app/p"]),
        ),
        (
            "matchExpressions DoesNotExist, label present",
            vec!["
                metadata: {name: p, namespace: app}
                spec: {podSelector: {matchExpressions: [{key: app, operator: DoesNotExist}]}, policyTypes: [Egress]}
            "],
            ENDPOINT,
            NotIsolated,
        ),
        (
            "matchLabels AND matchExpressions: the expression fails",
            vec!["
                metadata: {name: p, namespace: app}
                spec:
                  podSelector:
                    matchLabels: {app: web}
                    matchExpressions: [{key: tier, operator: In, values: [back]}]
                  policyTypes: [Egress]
            "],
            ENDPOINT,
            NotIsolated,
        ),
        (
            "unknown operator: never decided",
            vec!["
                metadata: {name: p, namespace: app}
                spec:
                  podSelector: {matchExpressions: [{key: app, operator: Equals, values: [web]}]}
                  policyTypes: [Egress]
            "],
            ENDPOINT,
            Unknown("unknown operator \"Equals\""),
        ),
        (
            "In without values is invalid",
            vec!["
                metadata: {name: p, namespace: app}
                spec: {podSelector: {matchExpressions: [{key: app, operator: In, values: []}]}, policyTypes: [Egress]}
            "],
            ENDPOINT,
            Unknown("needs values"),
        ),
        (
            "Exists with values is invalid",
            vec!["
                metadata: {name: p, namespace: app}
                spec:
                  podSelector: {matchExpressions: [{key: app, operator: Exists, values: [web]}]}
                  policyTypes: [Egress]
            "],
            ENDPOINT,
            Unknown("takes no values"),
        ),
        (
            "a policy in another namespace is ignored",
            vec!["
                metadata: {name: deny-all, namespace: other}
                spec: {podSelector: {}, policyTypes: [Egress]}
            "],
            ENDPOINT,
            NotIsolated,
        ),
        (
            "a policy without a namespace is undecided",
            vec!["metadata: {name: p}\nspec: {podSelector: {}, policyTypes: [Egress]}"],
            ENDPOINT,
            Unknown("has no namespace"),
        ),
        // ---- policyTypes ----
        (
            "policyTypes [Ingress]: ingress isolation only",
            vec!["metadata: {name: p, namespace: app}\nspec: {podSelector: {}, policyTypes: [Ingress]}"],
            ENDPOINT,
            NotIsolated,
        ),
        (
            "policyTypes [Ingress] with egress rules: egress not affected",
            vec!["
                metadata: {name: p, namespace: app}
                spec:
                  podSelector: {}
                  policyTypes: [Ingress]
                  egress: [{to: [{ipBlock: {cidr: 192.168.0.0/16}}]}]
            "],
            ENDPOINT,
            NotIsolated,
        ),
        (
            "policyTypes absent, ingress only: Ingress implied",
            vec!["metadata: {name: p, namespace: app}\nspec: {podSelector: {}, ingress: [{}]}"],
            ENDPOINT,
            NotIsolated,
        ),
        (
            "policyTypes absent, egress: [] does not imply Egress (API server defaulting)",
            vec!["metadata: {name: p, namespace: app}\nspec: {podSelector: {}, egress: []}"],
            ENDPOINT,
            NotIsolated,
        ),
        (
            "policyTypes absent, egress rules imply Egress",
            vec!["
                metadata: {name: p, namespace: app}
                spec: {podSelector: {}, egress: [{to: [{ipBlock: {cidr: 192.168.0.0/16}}]}]}
            "],
            ENDPOINT,
            Blocked(&["app/p"]),
        ),
        (
            "policyTypes absent, egress rule allowing",
            vec!["
                metadata: {name: p, namespace: app}
                spec: {podSelector: {}, egress: [{to: [{ipBlock: {cidr: 10.0.0.0/8}}]}]}
            "],
            ENDPOINT,
            Allowed("app/p", 0),
        ),
        (
            "policyTypes: [] defaults like absent",
            vec!["
                metadata: {name: p, namespace: app}
                spec: {podSelector: {}, policyTypes: [], egress: [{to: [{ipBlock: {cidr: 192.168.0.0/16}}]}]}
            "],
            ENDPOINT,
            Blocked(&["app/p"]),
        ),
        (
            "policyTypes [Ingress, Egress] without egress rules: default deny",
            vec!["metadata: {name: p, namespace: app}\nspec: {podSelector: {}, policyTypes: [Ingress, Egress]}"],
            ENDPOINT,
            Blocked(&["app/p"]),
        ),
        // ---- rules: to and ports absent or empty ----
        (
            "an empty rule allows everything",
            vec!["metadata: {name: p, namespace: app}\nspec: {podSelector: {}, policyTypes: [Egress], egress: [{}]}"],
            ENDPOINT,
            Allowed("app/p", 0),
        ),
        (
            "to: [] matches every destination",
            vec!["
                metadata: {name: p, namespace: app}
                spec: {podSelector: {}, policyTypes: [Egress], egress: [{to: [], ports: [{port: 443}]}]}
            "],
            ENDPOINT,
            Allowed("app/p", 0),
        ),
        (
            "ports: [] matches every port",
            vec!["
                metadata: {name: p, namespace: app}
                spec:
                  podSelector: {}
                  policyTypes: [Egress]
                  egress: [{to: [{ipBlock: {cidr: 10.0.1.5/32}}], ports: []}]
            "],
            ENDPOINT,
            Allowed("app/p", 0),
        ),
        (
            "the second rule allows",
            vec!["
                metadata: {name: p, namespace: app}
                spec:
                  podSelector: {}
                  policyTypes: [Egress]
                  egress:
                    - to: [{ipBlock: {cidr: 192.168.0.0/16}}]
                    - ports: [{port: 443}]
            "],
            ENDPOINT,
            Allowed("app/p", 1),
        ),
        // ---- ipBlock ----
        (
            "ipBlock containing the address",
            vec!["
                metadata: {name: p, namespace: app}
                spec: {podSelector: {}, policyTypes: [Egress], egress: [{to: [{ipBlock: {cidr: 10.0.0.0/16}}]}]}
            "],
            ENDPOINT,
            Allowed("app/p", 0),
        ),
        (
            "ipBlock /32 of another address",
            vec!["
                metadata: {name: p, namespace: app}
                spec: {podSelector: {}, policyTypes: [Egress], egress: [{to: [{ipBlock: {cidr: 10.0.1.6/32}}]}]}
            "],
            ENDPOINT,
            Blocked(&["app/p"]),
        ),
        (
            "ipBlock except excluding the address",
            vec!["
                metadata: {name: p, namespace: app}
                spec:
                  podSelector: {}
                  policyTypes: [Egress]
                  egress: [{to: [{ipBlock: {cidr: 10.0.0.0/16, except: [10.0.1.0/24]}}]}]
            "],
            ENDPOINT,
            Blocked(&["app/p"]),
        ),
        (
            "ipBlock except elsewhere",
            vec!["
                metadata: {name: p, namespace: app}
                spec:
                  podSelector: {}
                  policyTypes: [Egress]
                  egress: [{to: [{ipBlock: {cidr: 10.0.0.0/16, except: [10.0.2.0/24, 10.0.3.0/24]}}]}]
            "],
            ENDPOINT,
            Allowed("app/p", 0),
        ),
        (
            "ipBlock with host bits set is the network (as the API server parses it)",
            vec!["
                metadata: {name: p, namespace: app}
                spec: {podSelector: {}, policyTypes: [Egress], egress: [{to: [{ipBlock: {cidr: 10.0.1.1/24}}]}]}
            "],
            ENDPOINT,
            Allowed("app/p", 0),
        ),
        (
            "IPv6 ipBlock containing the address",
            vec!["
                metadata: {name: p, namespace: app}
                spec: {podSelector: {}, policyTypes: [Egress], egress: [{to: [{ipBlock: {cidr: 'fd00:ec2::/64'}}]}]}
            "],
            ext("fd00:ec2::5", 443, Tcp),
            Allowed("app/p", 0),
        ),
        (
            "IPv6 ipBlock except excluding the address",
            vec!["
                metadata: {name: p, namespace: app}
                spec:
                  podSelector: {}
                  policyTypes: [Egress]
                  egress: [{to: [{ipBlock: {cidr: 'fd00:ec2::/64', except: ['fd00:ec2::/120']}}]}]
            "],
            ext("fd00:ec2::5", 443, Tcp),
            Blocked(&["app/p"]),
        ),
        (
            "IPv6 ipBlock except elsewhere",
            vec!["
                metadata: {name: p, namespace: app}
                spec:
                  podSelector: {}
                  policyTypes: [Egress]
                  egress: [{to: [{ipBlock: {cidr: 'fd00:ec2::/64', except: ['fd00:ec2::100/120']}}]}]
            "],
            ext("fd00:ec2::5", 443, Tcp),
            Allowed("app/p", 0),
        ),
        (
            "an IPv4 ipBlock never matches an IPv6 address",
            vec!["
                metadata: {name: p, namespace: app}
                spec: {podSelector: {}, policyTypes: [Egress], egress: [{to: [{ipBlock: {cidr: 0.0.0.0/0}}]}]}
            "],
            ext("fd00:ec2::5", 443, Tcp),
            Blocked(&["app/p"]),
        ),
        (
            "an unparsable cidr is undecided",
            vec!["
                metadata: {name: p, namespace: app}
                spec: {podSelector: {}, policyTypes: [Egress], egress: [{to: [{ipBlock: {cidr: 10.0.1.5}}]}]}
            "],
            ENDPOINT,
            Unknown("is not a CIDR"),
        ),
        (
            "an unparsable except is undecided when the cidr matches",
            vec!["
                metadata: {name: p, namespace: app}
                spec:
                  podSelector: {}
                  policyTypes: [Egress]
                  egress: [{to: [{ipBlock: {cidr: 10.0.0.0/8, except: [nope]}}]}]
            "],
            ENDPOINT,
            Unknown("except \"nope\" is not a CIDR"),
        ),
        (
            "ipBlock together with a selector is invalid",
            vec!["
                metadata: {name: p, namespace: app}
                spec:
                  podSelector: {}
                  policyTypes: [Egress]
                  egress: [{to: [{ipBlock: {cidr: 10.0.0.0/8}, podSelector: {}}]}]
            "],
            ENDPOINT,
            Unknown("ipBlock together with a selector"),
        ),
        (
            "an empty peer is invalid",
            vec!["
                metadata: {name: p, namespace: app}
                spec: {podSelector: {}, policyTypes: [Egress], egress: [{to: [{}]}]}
            "],
            ENDPOINT,
            Unknown("no ipBlock and no selector"),
        ),
        (
            "ipBlock on a pod destination: allowed, with the CNI note",
            vec!["
                metadata: {name: p, namespace: app}
                spec: {podSelector: {}, policyTypes: [Egress], egress: [{to: [{ipBlock: {cidr: 10.0.0.0/8}}]}]}
            "],
            dns(Udp),
            AllowedNote("app/p", 0),
        ),
        (
            "a selector allow is preferred over an ipBlock allow for a pod",
            vec!["
                metadata: {name: p, namespace: app}
                spec:
                  podSelector: {}
                  policyTypes: [Egress]
                  egress:
                    - to: [{ipBlock: {cidr: 10.0.0.0/8}}]
                    - to: [{namespaceSelector: {}}]
            "],
            dns(Udp),
            Allowed("app/p", 1),
        ),
        // ---- selector peers ----
        (
            "podSelector alone: pods of the policy's namespace only",
            vec!["
                metadata: {name: p, namespace: app}
                spec:
                  podSelector: {}
                  policyTypes: [Egress]
                  egress: [{to: [{podSelector: {matchLabels: {k8s-app: kube-dns}}}]}]
            "],
            dns(Udp),
            Blocked(&["app/p"]),
        ),
        (
            "podSelector alone: a matching pod of the policy's namespace",
            vec!["
                metadata: {name: p, namespace: app}
                spec:
                  podSelector: {}
                  policyTypes: [Egress]
                  egress: [{to: [{podSelector: {matchLabels: {app: cache}}}]}]
            "],
            SAME_NS_POD,
            Allowed("app/p", 0),
        ),
        (
            "podSelector alone: a pod of the namespace with other labels",
            vec!["
                metadata: {name: p, namespace: app}
                spec:
                  podSelector: {}
                  policyTypes: [Egress]
                  egress: [{to: [{podSelector: {matchLabels: {app: db}}}]}]
            "],
            SAME_NS_POD,
            Blocked(&["app/p"]),
        ),
        (
            "empty podSelector alone: every pod of the policy's namespace",
            vec!["
                metadata: {name: p, namespace: app}
                spec: {podSelector: {}, policyTypes: [Egress], egress: [{to: [{podSelector: {}}]}]}
            "],
            SAME_NS_POD,
            Allowed("app/p", 0),
        ),
        (
            "empty podSelector alone: not pods of other namespaces",
            vec!["
                metadata: {name: p, namespace: app}
                spec: {podSelector: {}, policyTypes: [Egress], egress: [{to: [{podSelector: {}}]}]}
            "],
            dns(Udp),
            Blocked(&["app/p"]),
        ),
        (
            "namespaceSelector alone: every pod of the namespace, by name",
            vec!["
                metadata: {name: p, namespace: app}
                spec:
                  podSelector: {}
                  policyTypes: [Egress]
                  egress: [{to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}}]}]
            "],
            dns(Udp),
            Allowed("app/p", 0),
        ),
        (
            "namespaceSelector alone, with matchExpressions",
            vec!["
                metadata: {name: p, namespace: app}
                spec:
                  podSelector: {}
                  policyTypes: [Egress]
                  egress:
                    - to:
                        - namespaceSelector:
                            matchExpressions: [{key: kubernetes.io/metadata.name, operator: In, values: [kube-system]}]
            "],
            dns(Udp),
            Allowed("app/p", 0),
        ),
        (
            "namespaceSelector alone, not matching the namespace",
            vec!["
                metadata: {name: p, namespace: app}
                spec:
                  podSelector: {}
                  policyTypes: [Egress]
                  egress: [{to: [{namespaceSelector: {matchLabels: {team: platform}}}]}]
            "],
            dns(Udp),
            Blocked(&["app/p"]),
        ),
        (
            "empty namespaceSelector: every namespace",
            vec!["
                metadata: {name: p, namespace: app}
                spec: {podSelector: {}, policyTypes: [Egress], egress: [{to: [{namespaceSelector: {}}]}]}
            "],
            dns(Udp),
            Allowed("app/p", 0),
        ),
        (
            "both selectors: the selected pods of the selected namespaces",
            vec!["
                metadata: {name: p, namespace: app}
                spec:
                  podSelector: {}
                  policyTypes: [Egress]
                  egress:
                    - to:
                        - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}
                          podSelector: {matchLabels: {k8s-app: kube-dns}}
            "],
            dns(Udp),
            Allowed("app/p", 0),
        ),
        (
            "both selectors: the pod does not match",
            vec!["
                metadata: {name: p, namespace: app}
                spec:
                  podSelector: {}
                  policyTypes: [Egress]
                  egress:
                    - to:
                        - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}
                          podSelector: {matchLabels: {k8s-app: metrics-server}}
            "],
            dns(Udp),
            Blocked(&["app/p"]),
        ),
        (
            "both selectors: the namespace does not match",
            vec!["
                metadata: {name: p, namespace: app}
                spec:
                  podSelector: {}
                  policyTypes: [Egress]
                  egress:
                    - to:
                        - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: dns}}
                          podSelector: {matchLabels: {k8s-app: kube-dns}}
            "],
            dns(Udp),
            Blocked(&["app/p"]),
        ),
        (
            "both selectors empty: every pod of the cluster",
            vec!["
                metadata: {name: p, namespace: app}
                spec:
                  podSelector: {}
                  policyTypes: [Egress]
                  egress: [{to: [{namespaceSelector: {}, podSelector: {}}]}]
            "],
            dns(Udp),
            Allowed("app/p", 0),
        ),
        (
            "selectors never match a destination that is not a pod",
            vec!["
                metadata: {name: p, namespace: app}
                spec:
                  podSelector: {}
                  policyTypes: [Egress]
                  egress: [{to: [{namespaceSelector: {}, podSelector: {}}, {podSelector: {}}]}]
            "],
            ENDPOINT,
            Blocked(&["app/p"]),
        ),
        (
            "selectors against an unidentified destination are undecided",
            vec!["
                metadata: {name: p, namespace: app}
                spec: {podSelector: {}, policyTypes: [Egress], egress: [{to: [{namespaceSelector: {}}]}]}
            "],
            UNIDENTIFIED,
            Unknown("not known whether 10.0.9.9 is a pod"),
        ),
        (
            "ipBlock decides an unidentified destination",
            vec!["
                metadata: {name: p, namespace: app}
                spec: {podSelector: {}, policyTypes: [Egress], egress: [{to: [{ipBlock: {cidr: 10.0.9.0/24}}]}]}
            "],
            UNIDENTIFIED,
            Allowed("app/p", 0),
        ),
        (
            "namespace labels unread: a selector on the name label is decided",
            vec!["
                metadata: {name: p, namespace: app}
                spec:
                  podSelector: {}
                  policyTypes: [Egress]
                  egress: [{to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}}]}]
            "],
            dns_with(None, Udp),
            Allowed("app/p", 0),
        ),
        (
            "namespace labels unread: a selector on another label is undecided",
            vec!["
                metadata: {name: p, namespace: app}
                spec:
                  podSelector: {}
                  policyTypes: [Egress]
                  egress: [{to: [{namespaceSelector: {matchLabels: {team: platform}}}]}]
            "],
            dns_with(None, Udp),
            Unknown("labels of namespace kube-system, which were not read"),
        ),
        (
            "namespace labels unread: a mismatching name decides",
            vec!["
                metadata: {name: p, namespace: app}
                spec:
                  podSelector: {}
                  policyTypes: [Egress]
                  egress: [{to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: dns, team: platform}}}]}]
            "],
            dns_with(None, Udp),
            Blocked(&["app/p"]),
        ),
        (
            "an invalid peer podSelector is undecided",
            vec!["
                metadata: {name: p, namespace: app}
                spec:
                  podSelector: {}
                  policyTypes: [Egress]
                  egress: [{to: [{podSelector: {matchExpressions: [{key: app, operator: Like, values: [c]}]}}]}]
            "],
            SAME_NS_POD,
            Unknown("to[0].podSelector is invalid"),
        ),
        // ---- ports ----
        (
            "port 443, protocol defaulting to TCP",
            vec!["
                metadata: {name: p, namespace: app}
                spec: {podSelector: {}, policyTypes: [Egress], egress: [{ports: [{port: 443}]}]}
            "],
            ENDPOINT,
            Allowed("app/p", 0),
        ),
        (
            "another port",
            vec!["
                metadata: {name: p, namespace: app}
                spec: {podSelector: {}, policyTypes: [Egress], egress: [{ports: [{port: 80}, {port: 8443}]}]}
            "],
            ENDPOINT,
            Blocked(&["app/p"]),
        ),
        (
            "a UDP port does not allow TCP",
            vec!["
                metadata: {name: p, namespace: app}
                spec: {podSelector: {}, policyTypes: [Egress], egress: [{ports: [{protocol: UDP, port: 443}]}]}
            "],
            ENDPOINT,
            Blocked(&["app/p"]),
        ),
        (
            "UDP 53 to DNS",
            vec!["
                metadata: {name: p, namespace: app}
                spec: {podSelector: {}, policyTypes: [Egress], egress: [{ports: [{protocol: UDP, port: 53}]}]}
            "],
            dns(Udp),
            Allowed("app/p", 0),
        ),
        (
            "UDP 53 only: DNS over TCP blocked",
            vec!["
                metadata: {name: p, namespace: app}
                spec: {podSelector: {}, policyTypes: [Egress], egress: [{ports: [{protocol: UDP, port: 53}]}]}
            "],
            dns(Tcp),
            Blocked(&["app/p"]),
        ),
        (
            "protocol without port: every port of it",
            vec!["
                metadata: {name: p, namespace: app}
                spec: {podSelector: {}, policyTypes: [Egress], egress: [{ports: [{protocol: TCP}]}]}
            "],
            ENDPOINT,
            Allowed("app/p", 0),
        ),
        (
            "protocol without port: not the other protocols",
            vec!["
                metadata: {name: p, namespace: app}
                spec: {podSelector: {}, policyTypes: [Egress], egress: [{ports: [{protocol: UDP}]}]}
            "],
            ENDPOINT,
            Blocked(&["app/p"]),
        ),
        (
            "SCTP port for SCTP traffic",
            vec!["
                metadata: {name: p, namespace: app}
                spec: {podSelector: {}, policyTypes: [Egress], egress: [{ports: [{protocol: SCTP, port: 443}]}]}
            "],
            ext("10.0.1.5", 443, Sctp),
            Allowed("app/p", 0),
        ),
        (
            "SCTP port does not allow TCP",
            vec!["
                metadata: {name: p, namespace: app}
                spec: {podSelector: {}, policyTypes: [Egress], egress: [{ports: [{protocol: SCTP, port: 443}]}]}
            "],
            ENDPOINT,
            Blocked(&["app/p"]),
        ),
        (
            "an unknown protocol is undecided",
            vec!["
                metadata: {name: p, namespace: app}
                spec: {podSelector: {}, policyTypes: [Egress], egress: [{ports: [{protocol: ICMP}]}]}
            "],
            ENDPOINT,
            Unknown("\"ICMP\" is not TCP, UDP or SCTP"),
        ),
        (
            "endPort range including the port",
            vec!["
                metadata: {name: p, namespace: app}
                spec: {podSelector: {}, policyTypes: [Egress], egress: [{ports: [{port: 400, endPort: 500}]}]}
            "],
            ENDPOINT,
            Allowed("app/p", 0),
        ),
        (
            "endPort range ending on the port",
            vec!["
                metadata: {name: p, namespace: app}
                spec: {podSelector: {}, policyTypes: [Egress], egress: [{ports: [{port: 80, endPort: 443}]}]}
            "],
            ENDPOINT,
            Allowed("app/p", 0),
        ),
        (
            "endPort range excluding the port",
            vec!["
                metadata: {name: p, namespace: app}
                spec: {podSelector: {}, policyTypes: [Egress], egress: [{ports: [{port: 444, endPort: 500}]}]}
            "],
            ENDPOINT,
            Blocked(&["app/p"]),
        ),
        (
            "endPort below port is invalid",
            vec!["
                metadata: {name: p, namespace: app}
                spec: {podSelector: {}, policyTypes: [Egress], egress: [{ports: [{port: 500, endPort: 400}]}]}
            "],
            ENDPOINT,
            Unknown("is invalid: port 500"),
        ),
        (
            "endPort without port is invalid",
            vec!["
                metadata: {name: p, namespace: app}
                spec: {podSelector: {}, policyTypes: [Egress], egress: [{ports: [{endPort: 500}]}]}
            "],
            ENDPOINT,
            Unknown("endPort without port"),
        ),
        (
            "named port of the destination pod",
            vec!["
                metadata: {name: p, namespace: app}
                spec: {podSelector: {}, policyTypes: [Egress], egress: [{ports: [{protocol: UDP, port: dns}]}]}
            "],
            dns(Udp),
            Allowed("app/p", 0),
        ),
        (
            "named port: the name exists for another protocol only",
            vec!["
                metadata: {name: p, namespace: app}
                spec: {podSelector: {}, policyTypes: [Egress], egress: [{ports: [{port: dns}]}]}
            "],
            dns(Tcp),
            Blocked(&["app/p"]),
        ),
        (
            "named port: the name is another port number",
            vec!["
                metadata: {name: p, namespace: app}
                spec: {podSelector: {}, policyTypes: [Egress], egress: [{ports: [{port: metrics}]}]}
            "],
            dns(Tcp),
            Blocked(&["app/p"]),
        ),
        (
            "named port for a destination that is not a pod is undecided",
            vec!["
                metadata: {name: p, namespace: app}
                spec: {podSelector: {}, policyTypes: [Egress], egress: [{ports: [{port: https}]}]}
            "],
            ENDPOINT,
            Unknown("named port \"https\""),
        ),
        (
            "named port undecided, but another rule allows",
            vec!["
                metadata: {name: p, namespace: app}
                spec:
                  podSelector: {}
                  policyTypes: [Egress]
                  egress:
                    - ports: [{port: https}]
                    - to: [{ipBlock: {cidr: 10.0.1.5/32}}]
            "],
            ENDPOINT,
            Allowed("app/p", 1),
        ),
        (
            "named port undecided, but the peer does not match: blocked",
            vec!["
                metadata: {name: p, namespace: app}
                spec:
                  podSelector: {}
                  policyTypes: [Egress]
                  egress: [{to: [{ipBlock: {cidr: 192.168.0.0/16}}], ports: [{port: https}]}]
            "],
            ENDPOINT,
            Blocked(&["app/p"]),
        ),
        (
            "endPort with a named port is invalid",
            vec!["
                metadata: {name: p, namespace: app}
                spec: {podSelector: {}, policyTypes: [Egress], egress: [{ports: [{port: dns, endPort: 60}]}]}
            "],
            dns(Udp),
            Unknown("endPort with a named port"),
        ),
        // ---- the union of policies ----
        ("default deny plus an allowing policy", vec![DENY_ALL, ALLOW_443], ENDPOINT, Allowed("app/allow-api", 0)),
        (
            "two isolating policies, neither allowing: both named",
            vec![
                DENY_ALL,
                "
                metadata: {name: allow-web, namespace: app}
                spec: {podSelector: {}, policyTypes: [Egress], egress: [{ports: [{port: 80}]}]}
                ",
            ],
            ENDPOINT,
            Blocked(&["app/allow-web", "app/deny-all"]),
        ),
        (
            "an allowing policy that selects other pods does not help",
            vec![
                DENY_ALL,
                "
                metadata: {name: allow-api, namespace: app}
                spec:
                  podSelector: {matchLabels: {app: api}}
                  policyTypes: [Egress]
                  egress: [{ports: [{port: 443}]}]
                ",
            ],
            ENDPOINT,
            Blocked(&["app/deny-all"]),
        ),
        (
            "an allowing policy in another namespace does not help",
            vec![
                DENY_ALL,
                "
                metadata: {name: allow-api, namespace: other}
                spec: {podSelector: {}, policyTypes: [Egress], egress: [{}]}
                ",
            ],
            ENDPOINT,
            Blocked(&["app/deny-all"]),
        ),
        (
            "an ingress-only allow does not open egress",
            vec![
                DENY_ALL,
                "
                metadata: {name: allow-in, namespace: app}
                spec: {podSelector: {}, policyTypes: [Ingress], ingress: [{}], egress: [{}]}
                ",
            ],
            ENDPOINT,
            Blocked(&["app/deny-all"]),
        ),
        // ---- unknowns across policies ----
        (
            "a definite block elsewhere does not hide an undecided rule",
            vec![
                DENY_ALL,
                "
                metadata: {name: named, namespace: app}
                spec: {podSelector: {}, policyTypes: [Egress], egress: [{ports: [{port: https}]}]}
                ",
            ],
            ENDPOINT,
            Unknown("named port \"https\""),
        ),
        (
            "a policy that may select the pod and allows: undecided",
            vec![
                DENY_ALL,
                "
                metadata: {name: odd, namespace: app}
                spec:
                  podSelector: {matchExpressions: [{key: app, operator: Equals, values: [web]}]}
                  policyTypes: [Egress]
                  egress: [{}]
                ",
            ],
            ENDPOINT,
            Unknown("spec.podSelector of NetworkPolicy app/odd is invalid"),
        ),
        (
            "a policy that may select the pod but allows nothing: blocked by the definite deny",
            vec![
                DENY_ALL,
                "
                metadata: {name: odd, namespace: app}
                spec:
                  podSelector: {matchExpressions: [{key: app, operator: Equals, values: [web]}]}
                  policyTypes: [Egress]
                  egress: [{ports: [{port: 80}]}]
                ",
            ],
            ENDPOINT,
            Blocked(&["app/deny-all"]),
        ),
        (
            "only a policy that may select the pod, allowing: undecided, never a guessed allow",
            vec!["
                metadata: {name: odd, namespace: app}
                spec:
                  podSelector: {matchExpressions: [{key: app, operator: Equals, values: [web]}]}
                  policyTypes: [Egress]
                  egress: [{}]
            "],
            ENDPOINT,
            Unknown("unknown operator \"Equals\""),
        ),
        (
            "a definite allow wins over an undecided policy",
            vec![
                "
                metadata: {name: named, namespace: app}
                spec: {podSelector: {}, policyTypes: [Egress], egress: [{ports: [{port: https}]}]}
                ",
                ALLOW_443,
            ],
            ENDPOINT,
            Allowed("app/allow-api", 0),
        ),
    ]
}

#[test]
fn egress_table() {
    let rows = rows();
    for (name, docs, dst, want) in &rows {
        let policies: Vec<NetworkPolicy> = docs.iter().map(|d| policy(d)).collect();
        let got = evaluate(&policies, dst);
        check(name, &got, want);
        // The union has no order: the same verdict, naming the same policy, reversed.
        let reversed: Vec<NetworkPolicy> = policies.iter().rev().cloned().collect();
        assert_eq!(evaluate(&reversed, dst), got, "row {name:?} depends on the policies' order");
        // Policies of other namespaces never change anything.
        let mut with_noise = policies.clone();
        with_noise.push(policy(
            "metadata: {name: noise, namespace: kube-system}\nspec: {podSelector: {}, policyTypes: [Egress]}",
        ));
        assert_eq!(evaluate(&with_noise, dst), got, "row {name:?} changed by another namespace's policy");
    }
    assert!(rows.len() >= 100, "{} rows", rows.len());
}

#[test]
fn unknown_names_the_isolating_policies() {
    let policies = [
        policy(DENY_ALL),
        policy(
            "metadata: {name: named, namespace: app}\n\
             spec: {podSelector: {}, policyTypes: [Egress], egress: [{ports: [{port: https}]}]}",
        ),
    ];
    let got = evaluate(&policies, &ENDPOINT);
    let EgressVerdict::Unknown { isolating, reason } = &got else { panic!("{got:?}") };
    assert_eq!(isolating, &["app/deny-all", "app/named"]);
    assert!(reason.starts_with("NetworkPolicy app/named egress[0].ports[0].port is the named port"), "{reason}");
}

#[test]
fn verdicts_display_on_one_line() {
    let cases = [
        (EgressVerdict::NotIsolated, "not isolated: no NetworkPolicy selects the pod for egress"),
        (
            EgressVerdict::Allowed { policy: "app/allow-api".into(), rule: 2, note: None },
            "allowed by NetworkPolicy app/allow-api (egress[2])",
        ),
        (
            EgressVerdict::Allowed { policy: "app/p".into(), rule: 0, note: Some("a note".into()) },
            "allowed by NetworkPolicy app/p (egress[0]); a note",
        ),
        (
            EgressVerdict::Blocked { isolating: vec!["app/deny-all".into()] },
            "blocked: NetworkPolicy app/deny-all isolates the pod for egress and no egress rule allows it",
        ),
        (
            EgressVerdict::Blocked { isolating: vec!["app/a".into(), "app/b".into()] },
            "blocked: NetworkPolicy app/a, app/b isolate the pod for egress and no egress rule allows it",
        ),
        (
            EgressVerdict::Unknown { isolating: vec!["app/a".into()], reason: "why".into() },
            "undetermined: why (isolating for egress: app/a)",
        ),
        (EgressVerdict::Unknown { isolating: vec![], reason: "why".into() }, "undetermined: why"),
    ];
    for (verdict, text) in cases {
        assert_eq!(verdict.to_string(), text);
        assert!(!text.contains('\n'));
    }
    let dest = Destination {
        ip: "10.0.1.5".parse().expect("ip"),
        port: 443,
        protocol: Protocol::Tcp,
        kind: DestinationKind::External,
    };
    assert_eq!(dest.to_string(), "TCP 443 to 10.0.1.5");
    assert_eq!(
        with_destination(&dns(Protocol::Udp), |d| d.to_string()),
        "UDP 53 to 10.0.3.10 (a pod in namespace kube-system)"
    );
}

#[test]
fn verdict_json_shape() {
    let v = EgressVerdict::Allowed { policy: "app/p".into(), rule: 1, note: None };
    assert_eq!(
        serde_json::to_value(&v).expect("json"),
        serde_json::json!({"result": "allowed", "policy": "app/p", "rule": 1})
    );
    let v = EgressVerdict::Blocked { isolating: vec!["app/deny-all".into()] };
    assert_eq!(
        serde_json::to_value(&v).expect("json"),
        serde_json::json!({"result": "blocked", "isolating": ["app/deny-all"]})
    );
    assert_eq!(
        serde_json::to_value(EgressVerdict::NotIsolated).expect("json"),
        serde_json::json!({"result": "notIsolated"})
    );
    assert!(EgressVerdict::NotIsolated.permits());
    assert!(!EgressVerdict::Blocked { isolating: vec![] }.permits());
}

/// The destinations of a private API call: two endpoint addresses (one IPv6) on TCP 443, and
/// CoreDNS on UDP and TCP 53.
fn api_destinations() -> Vec<Dst> {
    vec![ENDPOINT, ext("fd00:ec2::7", 443, Protocol::Tcp), dns(Protocol::Udp), dns(Protocol::Tcp)]
}

#[test]
fn suggested_policy_opens_exactly_what_is_needed() {
    let pod_labels = labels(&[("app", "web"), ("tier", "front"), ("pod-template-hash", "7f9c")]);
    let pod = PodIdentity { namespace: POD_NS, labels: &pod_labels };
    let coredns = labels(COREDNS_LABELS);
    let addresses: Vec<IpAddr> = ["10.0.1.5", "fd00:ec2::7"].iter().map(|a| a.parse().expect("ip")).collect();
    let openings = api_openings(&addresses, Some(EgressTarget::Pods { namespace: "kube-system", labels: &coredns }));
    let suggested = suggest_egress_policy("pvtapi-egress", &pod, &openings).expect("a policy");

    // Before: the default-deny blocks every destination.
    let mut policies = vec![policy(DENY_ALL)];
    for dst in api_destinations() {
        let got = with_destination(&dst, |d| evaluate_egress(&pod, &policies, d));
        check("before", &got, &Want::Blocked(&["app/deny-all"]));
    }
    // After: every one is allowed by the suggested policy, with no caveat.
    policies.push(suggested.policy.clone());
    let want_rule = |dst: &Dst| usize::from(matches!(dst.kind, Kind::Pod { .. }));
    for dst in api_destinations() {
        let got = with_destination(&dst, |d| evaluate_egress(&pod, &policies, d));
        check(&format!("after, {}", dst.ip), &got, &Want::Allowed("app/pvtapi-egress", want_rule(&dst)));
    }
    // And nothing else: another port, another address, another pod of kube-system.
    let not_opened = [
        ext("10.0.1.5", 80, Protocol::Tcp),
        ext("10.0.1.6", 443, Protocol::Tcp),
        ext("10.0.1.5", 443, Protocol::Udp),
        Dst { port: 9153, ..dns(Protocol::Tcp) },
        Dst {
            kind: Kind::Pod {
                ns: "kube-system",
                ns_labels: Some(KUBE_SYSTEM_LABELS),
                labels: &[("k8s-app", "metrics-server")],
                ports: &[],
            },
            ..dns(Protocol::Udp)
        },
        Dst {
            kind: Kind::Pod { ns: "app", ns_labels: None, labels: COREDNS_LABELS, ports: COREDNS_PORTS },
            ..dns(Protocol::Udp)
        },
    ];
    for dst in not_opened {
        let got = with_destination(&dst, |d| evaluate_egress(&pod, &policies, d));
        check(&format!("not opened: {dst:?}"), &got, &Want::Blocked(&["app/deny-all", "app/pvtapi-egress"]));
    }

    // The YAML is the same object, and reads as expected.
    let parsed: NetworkPolicy = serde_norway::from_str(&suggested.yaml).expect("yaml parses");
    assert_eq!(parsed, suggested.policy);
    let want_yaml = "\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: pvtapi-egress
  namespace: app
spec:
  egress:
  - ports:
    - port: 443
      protocol: TCP
    to:
    - ipBlock:
        cidr: 10.0.1.5/32
    - ipBlock:
        cidr: fd00:ec2::7/128
  - ports:
    - port: 53
      protocol: TCP
    - port: 53
      protocol: UDP
    to:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: kube-system
      podSelector:
        matchLabels:
          k8s-app: kube-dns
  podSelector:
    matchLabels:
      app: web
      tier: front
  policyTypes:
  - Egress
";
    assert_eq!(suggested.yaml, want_yaml);
}

#[test]
fn suggested_policy_to_a_dns_address() {
    let pod_labels = labels(POD_LABELS);
    let pod = PodIdentity { namespace: POD_NS, labels: &pod_labels };
    let dns_ip: IpAddr = "10.0.3.10".parse().expect("ip");
    let endpoint: IpAddr = "10.0.1.5".parse().expect("ip");
    let suggested = suggest_egress_policy(
        "pvtapi-egress",
        &pod,
        &api_openings(&[endpoint, endpoint], Some(EgressTarget::Address(dns_ip))),
    )
    .expect("a policy");
    let rules = suggested.policy.spec.as_ref().and_then(|s| s.egress.clone()).expect("rules");
    assert_eq!(rules.len(), 2, "{}", suggested.yaml);
    assert_eq!(rules[0].to.as_ref().map(Vec::len), Some(1), "duplicate addresses collapse");
    let policies = [policy(DENY_ALL), suggested.policy];
    for protocol in [Protocol::Udp, Protocol::Tcp] {
        // Unidentified: decided by the ipBlock. A known pod: allowed, with the CNI note.
        let unidentified = Dst { ip: "10.0.3.10", port: 53, protocol, kind: Kind::Unidentified };
        check("dns address", &evaluate(&policies, &unidentified), &Want::Allowed("app/pvtapi-egress", 1));
        check("dns pod", &evaluate(&policies, &dns(protocol)), &Want::AllowedNote("app/pvtapi-egress", 1));
    }
    check("endpoint", &evaluate(&policies, &ENDPOINT), &Want::Allowed("app/pvtapi-egress", 0));
}

#[test]
fn nothing_to_open_is_no_policy() {
    // An Egress policy without rules would deny everything for the pods it selects.
    let pod_labels = labels(POD_LABELS);
    let pod = PodIdentity { namespace: POD_NS, labels: &pod_labels };
    assert_eq!(suggest_egress_policy("x", &pod, &api_openings(&[], None)), None);
    assert_eq!(api_openings(&[], Some(EgressTarget::Address("10.0.3.10".parse().expect("ip")))).len(), 2);
}

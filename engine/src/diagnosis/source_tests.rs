//! The source the endpoint sees (`network::source`): table tests of the rule, then the
//! diagnoses that follow from it (security groups and `aws:VpcSourceIp` judged for the node's
//! address after SNAT, for the pod's otherwise, for the branch interface with Security Groups
//! for Pods).

use pvtapi_crds::RootCause;

use super::diagnose;
use super::tests::{all_out, answered, healthy, network_facts};
use crate::aws::facts::{ClientFacts, InterfaceFacts, VpcCidrs};
use crate::aws::{AwsFacts, Fact};
use crate::network::source::{CniFacts, EnvValue, SgEnforcingMode, SourceKind, VpcCniConfig, resolve};
use crate::network::{IpProtocol, NaclAction, NaclEntry, NetworkAcl, SecurityGroup, SgPeer, SgRule};
use crate::probe::classify::{InvokeClass, TcpOutcome};

const POD: &str = "10.0.2.15";
const NODE: &str = "10.0.3.7";

fn https_from_group(group: &str) -> SgRule {
    SgRule {
        rule_id: None,
        protocol: IpProtocol::Tcp,
        from_port: Some(443),
        to_port: Some(443),
        peer: SgPeer::SecurityGroup { group_id: group.into(), user_id: None },
        description: None,
    }
}

/// A centralized endpoint (10.0.1.10 in `vpc-shared`, reached over a Transit Gateway) and a
/// cluster VPC `vpc-1` of 10.0.2.0/24 + 10.0.3.0/24: the pod 10.0.2.15 (`eni-c`, `sg-client`,
/// `subnet-c`) on node 10.0.3.7 (`eni-node`, `sg-node`, `subnet-n`). The endpoint's group
/// allows 443 from `endpoint_allows` only.
fn centralized(endpoint_allows: &[&str]) -> AwsFacts {
    let mut f = network_facts(endpoint_allows.iter().map(|g| https_from_group(g)).collect(), vec![]);
    if let Fact::Known { value } = &mut f.endpoint {
        value.vpc_id = Some("vpc-shared".into());
        for i in &mut value.interfaces {
            i.vpc_id = Some("vpc-shared".into());
        }
    }
    if let Fact::Known { value } = &mut f.client {
        value.interface.vpc_id = Some("vpc-1".into());
    }
    f.node = Fact::Known {
        value: ClientFacts {
            ip: NODE.parse().unwrap(),
            interface: InterfaceFacts {
                id: "eni-node".into(),
                subnet_id: Some("subnet-n".into()),
                availability_zone: Some("us-east-1b".into()),
                private_ips: vec![NODE.parse().unwrap()],
                security_group_ids: vec!["sg-node".into()],
                vpc_id: Some("vpc-1".into()),
                ..Default::default()
            },
            source: None,
        },
    };
    f.client_vpc = Fact::Known {
        value: VpcCidrs { vpc_id: "vpc-1".into(), cidr_blocks: vec!["10.0.2.0/24".into(), "10.0.3.0/24".into()] },
    };
    if let Fact::Known { value } = &mut f.security_groups {
        value.push(SecurityGroup { id: "sg-node".into(), vpc_id: None, ingress: vec![], egress: vec![all_out()] });
        value.push(SecurityGroup { id: "sg-branch".into(), vpc_id: None, ingress: vec![], egress: vec![all_out()] });
    }
    if let Fact::Known { value } = &mut f.network_acls {
        let open = |egress| NaclEntry {
            rule_number: 100,
            egress,
            action: NaclAction::Allow,
            protocol: IpProtocol::All,
            cidr: "0.0.0.0/0".parse().unwrap(),
            port_range: None,
        };
        value.push(NetworkAcl {
            id: "acl-n".into(),
            subnet_ids: vec!["subnet-n".into()],
            entries: vec![open(false), open(true)],
        });
    }
    f.subnet_cidrs.insert("subnet-n".into(), "10.0.3.0/24".into());
    f
}

fn vpc_cni(edit: impl FnOnce(&mut VpcCniConfig)) -> Option<CniFacts> {
    let mut config = VpcCniConfig::default();
    edit(&mut config);
    Some(CniFacts::VpcCni { config })
}

fn branch(f: &mut AwsFacts) {
    if let Fact::Known { value } = &mut f.client {
        value.interface.id = "eni-branch".into();
        value.interface.description = Some("aws-k8s-branch-eni".into());
        value.interface.security_group_ids = vec!["sg-branch".into()];
    }
}

fn same_vpc(f: &mut AwsFacts) {
    if let Fact::Known { value } = &mut f.endpoint {
        value.vpc_id = Some("vpc-1".into());
    }
}

/// What the rule must decide: the source kind (or `None`: the client is unknown), the address,
/// whether it is only assumed, and words the detail must have.
struct Want {
    kind: Option<SourceKind>,
    ip: &'static str,
    assumed: bool,
    says: &'static [&'static str],
}

#[test]
fn the_source_follows_snat_branch_interfaces_and_what_could_be_read() {
    type Edit = fn(&mut AwsFacts);
    let none: Edit = |_| {};
    let rows: Vec<(&str, Option<CniFacts>, Edit, Want)> = vec![
        (
            "SNAT off (the default), endpoint outside the VPC: the node's address and groups",
            vpc_cni(|_| {}),
            none,
            Want {
                kind: Some(SourceKind::NodeAfterSnat),
                ip: NODE,
                assumed: false,
                says: &[
                    "node's address 10.0.3.7",
                    "eni-node",
                    "sg-node",
                    "not the pod's 10.0.2.15",
                    "AWS_VPC_K8S_CNI_EXTERNALSNAT is false",
                    "10.0.2.0/24, 10.0.3.0/24",
                ],
            },
        ),
        (
            "external SNAT on: the pod's own",
            vpc_cni(|c| c.external_snat = true),
            none,
            Want {
                kind: Some(SourceKind::PodInterface),
                ip: POD,
                assumed: false,
                says: &["pod's own address 10.0.2.15", "sg-client", "AWS_VPC_K8S_CNI_EXTERNALSNAT is true"],
            },
        ),
        (
            "the endpoint's addresses excluded from SNAT",
            vpc_cni(|c| c.exclude_snat_cidrs = vec!["10.0.1.0/24".into()]),
            none,
            Want {
                kind: Some(SourceKind::PodInterface),
                ip: POD,
                assumed: false,
                says: &["AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS (10.0.1.0/24)"],
            },
        ),
        (
            "an exclusion that does not cover the endpoint changes nothing",
            vpc_cni(|c| c.exclude_snat_cidrs = vec!["192.168.0.0/16".into()]),
            none,
            Want {
                kind: Some(SourceKind::NodeAfterSnat),
                ip: NODE,
                assumed: false,
                says: &["no AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS entry covers 10.0.1.10"],
            },
        ),
        (
            "the endpoint inside a secondary CIDR of the VPC: never SNATed",
            vpc_cni(|_| {}),
            |f| {
                if let Fact::Known { value } = &mut f.client_vpc {
                    value.cidr_blocks.push("10.0.0.0/23".into());
                }
            },
            Want { kind: Some(SourceKind::PodInterface), ip: POD, assumed: false, says: &["inside the VPC's CIDRs"] },
        ),
        (
            "the endpoint in the pod's own VPC: no CIDRs needed",
            vpc_cni(|_| {}),
            |f| {
                same_vpc(f);
                f.client_vpc = Fact::Skipped { reason: "the endpoint is in the client's VPC".into() };
            },
            Want { kind: Some(SourceKind::PodInterface), ip: POD, assumed: false, says: &["in the pod's VPC vpc-1"] },
        ),
        (
            "the VPC's CIDRs unreadable: the pod's source, assumed and said",
            vpc_cni(|_| {}),
            |f| {
                f.client_vpc = Fact::Unknown {
                    reason: "DescribeVpcs vpc-1: access denied".into(),
                    missing_permission: Some("ec2:DescribeVpcs".into()),
                };
            },
            Want {
                kind: Some(SourceKind::PodInterface),
                ip: POD,
                assumed: true,
                says: &["assumed", "ec2:DescribeVpcs"],
            },
        ),
        (
            "SNAT applies but the node's interface is unknown: the client is unknown, never the pod's groups",
            vpc_cni(|_| {}),
            |f| f.node = Fact::NotFound { detail: "no network interface in us-east-1 has the address 10.0.3.7".into() },
            Want {
                kind: None,
                ip: "",
                assumed: false,
                says: &["node's address", "could not be read", "no network interface"],
            },
        ),
        (
            "Security Groups for Pods, strict: the branch's groups even outside the VPC",
            vpc_cni(|c| c.pod_eni = true),
            branch,
            Want {
                kind: Some(SourceKind::BranchInterface),
                ip: POD,
                assumed: false,
                says: &["branch interface", "eni-branch", "sg-branch", "enforcing mode strict"],
            },
        ),
        (
            "Security Groups for Pods, standard, outside the VPC: SNAT and the node's groups",
            vpc_cni(|c| {
                c.pod_eni = true;
                c.enforcing_mode = SgEnforcingMode::Standard;
            }),
            branch,
            Want { kind: Some(SourceKind::NodeAfterSnat), ip: NODE, assumed: false, says: &["sg-node"] },
        ),
        (
            "Security Groups for Pods, standard, inside the VPC: the branch",
            vpc_cni(|c| c.enforcing_mode = SgEnforcingMode::Standard),
            |f| {
                branch(f);
                same_vpc(f);
            },
            Want {
                kind: Some(SourceKind::BranchInterface),
                ip: POD,
                assumed: false,
                says: &["enforcing mode standard", "sg-branch"],
            },
        ),
        (
            "a branch interface with the CNI unread: strict assumed, said",
            None,
            branch,
            Want {
                kind: Some(SourceKind::BranchInterface),
                ip: POD,
                assumed: true,
                says: &["strict, the default, assumed"],
            },
        ),
        (
            "another CNI, endpoint outside the VPC: assumed, it may masquerade",
            Some(CniFacts::NotVpcCni { detail: "no DaemonSet kube-system/aws-node".into() }),
            none,
            Want { kind: Some(SourceKind::PodInterface), ip: POD, assumed: true, says: &["may masquerade"] },
        ),
        (
            "the CNI unreadable, endpoint in the VPC: decided anyway",
            Some(CniFacts::Unreadable { reason: "daemonsets is forbidden".into() }),
            same_vpc,
            Want { kind: Some(SourceKind::PodInterface), ip: POD, assumed: false, says: &["never source-NATs"] },
        ),
        (
            "a host-network pod is the node",
            vpc_cni(|_| {}),
            |f| {
                if let (Fact::Known { value: n }, Fact::Known { value: c }) = (&f.node, &mut f.client) {
                    *c = n.clone();
                }
            },
            Want { kind: Some(SourceKind::PodInterface), ip: NODE, assumed: false, says: &["host network"] },
        ),
        (
            "custom networking: the pod's interface, in its ENIConfig subnet, named",
            vpc_cni(|c| {
                c.custom_networking = true;
                c.external_snat = true;
            }),
            none,
            Want {
                kind: Some(SourceKind::PodInterface),
                ip: POD,
                assumed: false,
                says: &["custom networking", "subnet-c", "subnet-n"],
            },
        ),
        (
            "IPv6 endpoint addresses are never SNATed",
            vpc_cni(|_| {}),
            |f| {
                if let Fact::Known { value } = &mut f.endpoint {
                    value.interfaces[0].private_ips = vec!["fd00::10".parse().unwrap()];
                }
            },
            Want { kind: Some(SourceKind::PodInterface), ip: POD, assumed: false, says: &["IPv6"] },
        ),
    ];
    for (name, cni, edit, want) in rows {
        let mut f = centralized(&["sg-client"]);
        edit(&mut f);
        let out = resolve(&f, cni.as_ref());
        match (want.kind, &out.client) {
            (Some(kind), Fact::Known { value }) => {
                let s = value.source.as_ref().unwrap_or_else(|| panic!("{name}: no source"));
                assert_eq!(s.kind, kind, "{name}: {}", s.detail);
                assert_eq!(value.ip.to_string(), want.ip, "{name}: {}", s.detail);
                assert_eq!(s.assumed, want.assumed, "{name}: {}", s.detail);
                assert_eq!(s.pod_ip, f.client.known().unwrap().ip, "{name}");
                for w in want.says {
                    assert!(s.detail.contains(w), "{name}: {w:?} not in {}", s.detail);
                }
                // Resolving twice changes nothing.
                assert_eq!(resolve(&out, cni.as_ref()), out, "{name}: not idempotent");
            }
            (None, Fact::Unknown { reason, .. }) => {
                for w in want.says {
                    assert!(reason.contains(w), "{name}: {w:?} not in {reason}");
                }
                assert!(out.gaps.contains_key("client"), "{name}: the gap is listed");
            }
            (_, other) => panic!("{name}: unexpected client {other:?}"),
        }
    }
}

#[test]
fn without_a_pod_interface_nothing_is_resolved() {
    let mut f = centralized(&["sg-client"]);
    f.client = Fact::Skipped { reason: "no client address".into() };
    assert_eq!(resolve(&f, vpc_cni(|_| {}).as_ref()), f);
}

#[test]
fn the_cni_settings_are_read_as_the_cni_reads_them() {
    let env = |pairs: &[(&str, EnvValue)]| -> Vec<(String, EnvValue)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
    };
    let v = |s: &str| EnvValue::Value(s.into());

    let c = VpcCniConfig::from_env(&[]);
    assert_eq!(c, VpcCniConfig::default(), "unset: the CNI's defaults");
    assert!(!c.external_snat && c.enforcing_mode == SgEnforcingMode::Strict);

    for (text, want) in
        [("true", true), ("1", true), ("TRUE", true), ("t", true), ("false", false), ("0", false), ("F", false)]
    {
        let c = VpcCniConfig::from_env(&env(&[("AWS_VPC_K8S_CNI_EXTERNALSNAT", v(text))]));
        assert_eq!(c.external_snat, want, "{text}");
        assert!(c.notes.is_empty(), "{text}: {:?}", c.notes);
    }
    let c = VpcCniConfig::from_env(&env(&[("AWS_VPC_K8S_CNI_EXTERNALSNAT", v("yes"))]));
    assert!(!c.external_snat, "not a Go boolean: the default");
    assert!(c.notes[0].contains("\"yes\" is not a boolean"), "{:?}", c.notes);

    let c = VpcCniConfig::from_env(&env(&[(
        "AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS",
        v(" 10.1.0.0/16, bad,2001:db8::/32,10.2.0.5/16,"),
    )]));
    assert_eq!(c.exclude_snat_cidrs, vec!["10.1.0.0/16".to_owned(), "10.2.0.0/16".to_owned()]);
    assert_eq!(c.notes.len(), 2, "{:?}", c.notes);

    let c = VpcCniConfig::from_env(&env(&[
        ("POD_SECURITY_GROUP_ENFORCING_MODE", v("strict")),
        ("POD_SECURITY_GROUP_ENFORCING_MODE", v("Standard")),
        ("ENABLE_POD_ENI", v("true")),
        ("AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG", v("true")),
    ]));
    assert_eq!(c.enforcing_mode, SgEnforcingMode::Standard, "the last entry of a name wins, as in Kubernetes");
    assert!(c.pod_eni && c.custom_networking);

    let c = VpcCniConfig::from_env(&env(&[("POD_SECURITY_GROUP_ENFORCING_MODE", v("loose\u{7}"))]));
    assert_eq!(c.enforcing_mode, SgEnforcingMode::Strict);
    assert!(c.notes[0].contains("\"loose\"") && !c.notes[0].contains('\u{7}'), "{:?}", c.notes);

    let c = VpcCniConfig::from_env(&env(&[(
        "AWS_VPC_K8S_CNI_EXTERNALSNAT",
        EnvValue::Reference("ConfigMap amazon-vpc-cni key external-snat".into()),
    )]));
    assert!(!c.external_snat);
    assert!(c.notes[0].contains("ConfigMap amazon-vpc-cni"), "{:?}", c.notes);
}

fn timeout() -> crate::probe::ProbeReport {
    let mut r = healthy();
    r.tls = None;
    r.tcp[0].outcome = TcpOutcome::Timeout;
    r
}

#[test]
fn security_groups_are_judged_for_the_source_the_endpoint_sees() {
    // The endpoint allows the pods' group: fine for the pod's own address, not for the node's.
    let f = centralized(&["sg-client"]);
    let d = diagnose(&timeout(), Some(&resolve(&f, vpc_cni(|_| {}).as_ref())));
    assert_eq!(d.root_cause, RootCause::SecurityGroupBlocked, "{}", d.summary);
    assert!(
        d.evidence.iter().any(|e| e.starts_with("source: the endpoint sees the node's address 10.0.3.7")),
        "{:?}",
        d.evidence
    );
    assert!(
        d.summary.contains("sg-node") || d.evidence.iter().any(|e| e.contains("sg-node")),
        "{} {:?}",
        d.summary,
        d.evidence
    );
    let fix = d.fixes.iter().find_map(|f| f.command_line.clone()).unwrap_or_default();
    assert!(fix.contains("sg-node") || fix.contains("10.0.3"), "the fix opens the node's source: {fix}");

    let d = diagnose(&timeout(), Some(&resolve(&f, vpc_cni(|c| c.external_snat = true).as_ref())));
    assert_eq!(d.root_cause, RootCause::ConnectTimeout, "{}", d.summary);
    assert!(
        d.evidence.iter().any(|e| e.contains("source: the endpoint sees the pod's own address 10.0.2.15")),
        "{:?}",
        d.evidence
    );

    // The endpoint allows the node's group: the node's source passes, the pod's does not.
    let f = centralized(&["sg-node"]);
    let d = diagnose(&timeout(), Some(&resolve(&f, vpc_cni(|_| {}).as_ref())));
    assert_eq!(d.root_cause, RootCause::ConnectTimeout, "{}", d.summary);
    let d = diagnose(&timeout(), Some(&resolve(&f, vpc_cni(|c| c.external_snat = true).as_ref())));
    assert_eq!(d.root_cause, RootCause::SecurityGroupBlocked, "{}", d.summary);

    // Security Groups for Pods: the branch's group is the one judged and named.
    let mut f = centralized(&["sg-client"]);
    branch(&mut f);
    let d = diagnose(&timeout(), Some(&resolve(&f, vpc_cni(|c| c.pod_eni = true).as_ref())));
    assert_eq!(d.root_cause, RootCause::SecurityGroupBlocked, "{}", d.summary);
    assert!(d.evidence.iter().any(|e| e.contains("branch interface") && e.contains("sg-branch")), "{:?}", d.evidence);

    // Node's interface unknown after SNAT: not checked, never judged with the pod's groups.
    let mut f = centralized(&["sg-node"]);
    f.node =
        Fact::Unknown { reason: "DescribeNetworkInterfaces 10.0.3.7: access denied".into(), missing_permission: None };
    let d = diagnose(&timeout(), Some(&resolve(&f, vpc_cni(|c| c.exclude_snat_cidrs = vec![]).as_ref())));
    assert_eq!(d.root_cause, RootCause::ConnectTimeout, "{}", d.summary);
    assert!(d.unchecked.iter().any(|u| u.starts_with("client:") && u.contains("node's address")), "{:?}", d.unchecked);
}

#[test]
fn aws_vpc_source_ip_is_the_source_the_endpoint_sees() {
    // Calls are allowed from the pods' subnet only (a policy written with pod addresses).
    let policy = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"execute-api:Invoke","Resource":"execute-api:/*","Condition":{"IpAddress":{"aws:VpcSourceIp":"10.0.2.0/24"}}}]}"#;
    let mut f = centralized(&["sg-client"]);
    if let Fact::Known { value } = &mut f.api {
        value.policy = Some(policy.into());
    }
    let forbidden = answered(InvokeClass::AnonymousNotAuthorized, 403);
    let d = diagnose(&forbidden, Some(&resolve(&f, vpc_cni(|_| {}).as_ref())));
    assert_eq!(d.root_cause, RootCause::ResourcePolicyDenied, "{}", d.summary);
    assert!(d.evidence.iter().any(|e| e.contains("aws:VpcSourceIp=10.0.3.7")), "{:?}", d.evidence);
    assert!(d.evidence.iter().any(|e| e.contains("source: the endpoint sees the node's address")), "{:?}", d.evidence);

    let d = diagnose(&forbidden, Some(&resolve(&f, vpc_cni(|c| c.external_snat = true).as_ref())));
    assert_eq!(d.root_cause, RootCause::ResourcePolicyNotDeployed, "the pod's address is allowed: {}", d.summary);
    assert!(d.evidence.iter().any(|e| e.contains("aws:VpcSourceIp=10.0.2.15")), "{:?}", d.evidence);
}

#[test]
fn an_assumed_source_is_listed_as_unchecked() {
    let mut f = centralized(&["sg-client"]);
    f.client_vpc = Fact::Unknown { reason: "DescribeVpcs vpc-1: access denied".into(), missing_permission: None };
    let d = diagnose(&timeout(), Some(&resolve(&f, vpc_cni(|_| {}).as_ref())));
    assert!(
        d.unchecked.iter().any(|u| u.starts_with("source address: the endpoint is assumed to see")),
        "{:?}",
        d.unchecked
    );
}

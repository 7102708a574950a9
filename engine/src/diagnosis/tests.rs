//! Table tests: one probe report + facts per row, the root cause it must yield.

use std::collections::BTreeMap;
use std::net::IpAddr;

use pvtapi_crds::{AccessMode, RootCause};

use super::diagnose;
use crate::aws::facts::{ApiFacts, EndpointFacts, VpcDnsAttributes};
use crate::aws::{AwsFacts, Fact};
use crate::probe::ProbeReport;
use crate::probe::classify::{AddressClass, InvokeClass, TcpOutcome};
use crate::probe::proxy::ProxyVerdict;
use crate::probe::report::*;
use crate::probe::target::HostRole;

const API_HOST: &str = "abcde12345.execute-api.us-east-1.amazonaws.com";
const ALIAS: &str = "abcde12345-vpce-0123456789abcdef0.execute-api.us-east-1.amazonaws.com";

fn addr(ip: &str, class: AddressClass) -> ResolvedAddress {
    ResolvedAddress { ip: ip.parse().unwrap(), class }
}

pub(super) fn healthy() -> ProbeReport {
    let ip: IpAddr = "10.0.1.10".parse().unwrap();
    ProbeReport {
        version: REPORT_VERSION.into(),
        target: TargetSummary {
            api_id: "abcde12345".into(),
            region: "us-east-1".into(),
            stage: "prod".into(),
            path: "/health".into(),
            method: "GET".into(),
            vpce_id: "vpce-0123456789abcdef0".into(),
        },
        access: AccessChoice { mode: AccessMode::PrivateDns, reason: "as configured".into() },
        resolver: "system".into(),
        resolver_addresses: vec![],
        dns: vec![
            DnsResult {
                host: API_HOST.into(),
                role: HostRole::Api,
                outcome: DnsOutcome::Resolved,
                addresses: vec![addr("10.0.1.10", AddressClass::Private)],
                ttl: Some(60),
                cnames: vec![],
                error: None,
                ms: 1,
            },
            DnsResult {
                host: ALIAS.into(),
                role: HostRole::EndpointAlias,
                outcome: DnsOutcome::NxDomain,
                addresses: vec![],
                ttl: None,
                cnames: vec![],
                error: None,
                ms: 1,
            },
        ],
        dns_comparison: DnsComparison::NotComparable,
        tcp: vec![TcpResult { ip, port: 443, outcome: TcpOutcome::Connected, ms: 1, error: None }],
        tls: Some(TlsResult {
            sni: API_HOST.into(),
            ip,
            outcome: TlsOutcome::Ok,
            version: None,
            cipher: None,
            subject: None,
            sans: vec![],
            not_after: None,
            error: None,
            ms: 2,
        }),
        invoke: Some(InvokeResult {
            url: format!("https://{API_HOST}/prod/health"),
            host_header: API_HOST.into(),
            api_id_header: None,
            class: InvokeClass::Ok,
            status: Some(200),
            request_id: Some("r-1".into()),
            error_type: None,
            apigw_id: None,
            message: None,
            body_snippet: None,
            body_bytes: 2,
            body_truncated: false,
            error: None,
        }),
        proxied: vec![],
        timings: Timings::default(),
        truncated: vec![],
    }
}

fn skipped<T>() -> Fact<T> {
    Fact::Skipped { reason: "test".into() }
}

pub(super) fn facts() -> AwsFacts {
    AwsFacts {
        region: "us-east-1".into(),
        api_account_id: None,
        api: Fact::Known {
            value: ApiFacts {
                id: "abcde12345".into(),
                name: None,
                endpoint_types: vec!["PRIVATE".into()],
                vpc_endpoint_ids: vec![],
                disable_execute_api_endpoint: false,
                policy: None,
            },
        },
        stage: skipped(),
        deployment: skipped(),
        method: skipped(),
        endpoint: Fact::Known {
            value: EndpointFacts {
                id: "vpce-0123456789abcdef0".into(),
                endpoint_type: Some("Interface".into()),
                service_name: Some("com.amazonaws.us-east-1.execute-api".into()),
                state: Some("available".into()),
                vpc_id: Some("vpc-1".into()),
                owner_id: None,
                private_dns_enabled: true,
                dns_entries: vec![],
                subnet_ids: vec![],
                security_group_ids: vec![],
                network_interface_ids: vec![],
                policy: None,
                interfaces: vec![],
            },
        },
        vpc: Fact::Known {
            value: VpcDnsAttributes { vpc_id: "vpc-1".into(), enable_dns_support: true, enable_dns_hostnames: true },
        },
        client: skipped(),
        node: skipped(),
        client_vpc: skipped(),
        custom_domain: skipped(),
        security_groups: skipped(),
        network_acls: skipped(),
        subnet_cidrs: BTreeMap::new(),
        execution_log: skipped(),
        gaps: BTreeMap::new(),
    }
}

pub(super) fn answered(class: InvokeClass, status: u16) -> ProbeReport {
    let mut r = healthy();
    let i = r.invoke.as_mut().unwrap();
    i.class = class;
    i.status = Some(status);
    r
}

#[test]
fn root_causes() {
    type Case = (&'static str, ProbeReport, Option<AwsFacts>, RootCause);
    let mut cases: Vec<Case> = vec![
        ("healthy", healthy(), Some(facts()), RootCause::Healthy),
        ("healthy without facts", healthy(), None, RootCause::Healthy),
        (
            "missing token",
            answered(InvokeClass::MissingAuthenticationToken, 403),
            None,
            RootCause::StageOrResourceNotFound,
        ),
        ("explicit deny", answered(InvokeClass::ExplicitDeny, 403), None, RootCause::ResourcePolicyExplicitDeny),
        ("anonymous", answered(InvokeClass::AnonymousNotAuthorized, 403), None, RootCause::ResourcePolicyDenied),
        ("authorizer", answered(InvokeClass::AuthorizerDenied, 403), None, RootCause::AuthorizationRequired),
        ("401", answered(InvokeClass::Unauthorized, 401), None, RootCause::AuthorizationRequired),
        ("500", answered(InvokeClass::ServerError, 500), None, RootCause::UnexpectedStatus),
    ];

    let mut f = facts();
    f.endpoint = Fact::NotFound { detail: "x".into() };
    cases.push(("endpoint missing", healthy(), Some(f), RootCause::EndpointNotFound));

    let mut f = facts();
    if let Fact::Known { value } = &mut f.endpoint {
        value.service_name = Some("com.amazonaws.eu-west-1.execute-api".into());
    }
    cases.push(("endpoint in another region", healthy(), Some(f), RootCause::CrossAccountRegionMismatch));

    let mut f = facts();
    if let Fact::Known { value } = &mut f.endpoint {
        value.service_name = Some("com.amazonaws.us-east-1.s3".into());
    }
    cases.push(("endpoint for s3", healthy(), Some(f), RootCause::EndpointWrongService));

    let mut f = facts();
    if let Fact::Known { value } = &mut f.endpoint {
        value.state = Some("pendingacceptance".into());
    }
    cases.push(("endpoint pending", healthy(), Some(f), RootCause::EndpointNotAvailable));

    let mut f = facts();
    f.api = Fact::NotFound { detail: "x".into() };
    cases.push(("api missing", answered(InvokeClass::Forbidden, 403), Some(f.clone()), RootCause::ApiNotFound));
    cases.push(("api not visible here but answering", healthy(), Some(f), RootCause::Healthy));

    let mut public = healthy();
    public.dns[0].addresses = vec![addr("52.94.1.1", AddressClass::Public)];
    cases.push(("public answer", public.clone(), Some(facts()), RootCause::PrivateDnsDisabled));
    let mut f = facts();
    f.vpc = Fact::Known {
        value: VpcDnsAttributes { vpc_id: "vpc-1".into(), enable_dns_support: true, enable_dns_hostnames: false },
    };
    cases.push(("public answer, vpc dns off", public, Some(f), RootCause::VpcDnsAttributesDisabled));

    let mut alias = healthy();
    alias.access.mode = AccessMode::EndpointAlias;
    alias.invoke.as_mut().unwrap().url = format!("https://{ALIAS}/prod/health");
    alias.tls = None;
    alias.tcp.clear();
    cases.push(("alias nx, not associated", alias.clone(), Some(facts()), RootCause::ApiNotAssociatedWithEndpoint));
    cases.push(("alias nx, no facts", alias, None, RootCause::DnsResolutionFailed));

    let mut timeout = healthy();
    timeout.tls = None;
    timeout.tcp[0].outcome = TcpOutcome::Timeout;
    cases.push(("connect timeout", timeout, None, RootCause::ConnectTimeout));

    let mut refused = healthy();
    refused.tls = None;
    refused.tcp[0].outcome = TcpOutcome::Refused;
    cases.push(("refused", refused, None, RootCause::ConnectRefused));

    let mut tls = healthy();
    tls.tls.as_mut().unwrap().outcome = TlsOutcome::NameMismatch;
    cases.push(("tls mismatch", tls, None, RootCause::TlsFailure));

    let mut f = facts();
    if let Fact::Known { value } = &mut f.api {
        value.endpoint_types = vec!["REGIONAL".into()];
    }
    cases.push((
        "public api via private dns",
        answered(InvokeClass::Forbidden, 403),
        Some(f),
        RootCause::PublicApiShadowedByPrivateDns,
    ));

    let mut f = facts();
    if let Fact::Known { value } = &mut f.api {
        value.endpoint_types = vec!["REGIONAL".into()];
    }
    let mut via_alias = answered(InvokeClass::Forbidden, 403);
    via_alias.access.mode = AccessMode::EndpointAlias;
    cases.push(("regional api via alias", via_alias, Some(f), RootCause::ApiNotPrivate));

    let vpce_host = "vpce-0123456789abcdef0-abcdefgh.execute-api.us-east-1.vpce.amazonaws.com";
    let mut bare_vpce = answered(InvokeClass::Forbidden, 403);
    bare_vpce.access.mode = AccessMode::EndpointHost;
    bare_vpce.invoke.as_mut().unwrap().url = format!("https://{vpce_host}/prod/health");
    bare_vpce.invoke.as_mut().unwrap().host_header = vpce_host.into();
    bare_vpce.dns[0].host = vpce_host.into();
    bare_vpce.dns[0].role = HostRole::EndpointRegional;
    cases.push(("vpce host without Host", bare_vpce.clone(), Some(facts()), RootCause::InvokeUrlInvalid));
    cases.push(("vpce host without Host, no facts", bare_vpce.clone(), None, RootCause::InvokeUrlInvalid));
    let mut with_id = bare_vpce;
    with_id.invoke.as_mut().unwrap().api_id_header = Some("abcde12345".into());
    cases.push(("vpce host with x-apigw-api-id, 403", with_id, Some(facts()), RootCause::UnexpectedStatus));

    let mut mismatch = healthy();
    mismatch.dns_comparison = DnsComparison::Disjoint;
    cases.push(("api host and vpce names disjoint", mismatch, Some(facts()), RootCause::DnsMismatch));

    let mut hang = healthy();
    let i = hang.invoke.as_mut().unwrap();
    i.class = InvokeClass::Timeout;
    i.status = None;
    i.error = Some("no answer within 5s".into());
    cases.push(("tls ok, no http answer", hang, Some(facts()), RootCause::Unknown));
    let mut no_plan = healthy();
    no_plan.invoke = None;
    no_plan.tls = None;
    no_plan.access.reason = "cannot invoke: EndpointHost needs the endpoint's DNS names".into();
    cases.push(("no invoke plan", no_plan, None, RootCause::Unknown));

    let mut proxied = healthy();
    proxied.proxied = vec![ProxyVerdict { host: API_HOST.into(), via: Some("http://proxy:3128".into()) }];
    cases.push(("proxy", proxied, None, RootCause::ProxyInterference));

    // Policies: the live 403 plus the stored policies name the layer and statement.
    let with_policy = |policy: Option<&str>, endpoint_policy: Option<&str>| {
        let mut f = facts();
        if let Fact::Known { value } = &mut f.api {
            value.policy = policy.map(str::to_owned);
        }
        if let Fact::Known { value } = &mut f.endpoint {
            value.policy = endpoint_policy.map(str::to_owned);
            value.owner_id = Some("111122223333".into());
        }
        f
    };
    let allow_all = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"execute-api:Invoke","Resource":"execute-api:/*"}]}"#;
    let deny_other_vpce = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"execute-api:Invoke","Resource":"execute-api:/*"},{"Sid":"OnlyFromOther","Effect":"Deny","Principal":"*","Action":"execute-api:Invoke","Resource":"execute-api:/*","Condition":{"StringNotEquals":{"aws:SourceVpce":"vpce-0fedcba9876543210"}}}]}"#;
    let allow_other_vpce = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"execute-api:Invoke","Resource":"execute-api:/*","Condition":{"StringEquals":{"aws:SourceVpce":"vpce-0fedcba9876543210"}}}]}"#;
    let endpoint_other_api = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"execute-api:Invoke","Resource":"arn:aws:execute-api:us-east-1:111122223333:zzzzz99999/*"}]}"#;
    let anon = answered(InvokeClass::AnonymousNotAuthorized, 403);
    let deny = answered(InvokeClass::ExplicitDeny, 403);
    cases.push(("no resource policy", anon.clone(), Some(with_policy(None, None)), RootCause::ResourcePolicyMissing));
    cases.push((
        "deny unless other vpce",
        deny.clone(),
        Some(with_policy(Some(deny_other_vpce), None)),
        RootCause::ResourcePolicyExplicitDeny,
    ));
    cases.push((
        "allow only other vpce",
        anon.clone(),
        Some(with_policy(Some(allow_other_vpce), None)),
        RootCause::ResourcePolicyDenied,
    ));
    cases.push((
        "stored policy allows",
        anon.clone(),
        Some(with_policy(Some(allow_all), None)),
        RootCause::ResourcePolicyNotDeployed,
    ));
    cases.push((
        "endpoint policy for another api",
        anon,
        Some(with_policy(Some(allow_all), Some(endpoint_other_api))),
        RootCause::EndpointPolicyDenied,
    ));

    for (name, report, facts, want) in cases {
        let d = diagnose(&report, facts.as_ref());
        assert_eq!(d.root_cause, want, "{name}: {}", d.summary);
        if want != RootCause::Healthy {
            assert!(!d.evidence.is_empty() && !d.remediation.is_empty(), "{name}: evidence and fix required");
        }
    }
}

/// A security-group rule allowing all outbound traffic.
pub(super) fn all_out() -> crate::network::SgRule {
    crate::network::SgRule {
        rule_id: None,
        protocol: crate::network::IpProtocol::All,
        from_port: None,
        to_port: None,
        peer: crate::network::SgPeer::Cidr("0.0.0.0/0".parse().unwrap()),
        description: None,
    }
}

/// Facts for a TCP timeout: client 10.0.2.15 (sg-client, subnet-c), endpoint ENI 10.0.1.10
/// (sg-endpoint, subnet-e), with the endpoint group's ingress and the endpoint subnet's ACL given.
pub(super) fn network_facts(
    endpoint_ingress: Vec<crate::network::SgRule>,
    endpoint_acl_entries: Vec<crate::network::NaclEntry>,
) -> AwsFacts {
    use crate::aws::facts::{ClientFacts, InterfaceFacts};
    use crate::network::{IpProtocol, NaclAction, NaclEntry, NetworkAcl, SecurityGroup};
    let all_out = all_out();
    let open_acl = |id: &str, subnet: &str| NetworkAcl {
        id: id.into(),
        subnet_ids: vec![subnet.into()],
        entries: vec![
            NaclEntry {
                rule_number: 100,
                egress: false,
                action: NaclAction::Allow,
                protocol: IpProtocol::All,
                cidr: "0.0.0.0/0".parse().unwrap(),
                port_range: None,
            },
            NaclEntry {
                rule_number: 100,
                egress: true,
                action: NaclAction::Allow,
                protocol: IpProtocol::All,
                cidr: "0.0.0.0/0".parse().unwrap(),
                port_range: None,
            },
        ],
    };
    let mut endpoint_acl = open_acl("acl-e", "subnet-e");
    endpoint_acl.entries.extend(endpoint_acl_entries);
    let mut f = facts();
    if let Fact::Known { value } = &mut f.endpoint {
        value.security_group_ids = vec!["sg-endpoint".into()];
        value.interfaces = vec![InterfaceFacts {
            id: "eni-e".into(),
            subnet_id: Some("subnet-e".into()),
            availability_zone: Some("us-east-1a".into()),
            private_ips: vec!["10.0.1.10".parse().unwrap()],
            security_group_ids: vec!["sg-endpoint".into()],
            ..Default::default()
        }];
    }
    f.client = Fact::Known {
        value: ClientFacts {
            ip: "10.0.2.15".parse().unwrap(),
            interface: InterfaceFacts {
                id: "eni-c".into(),
                subnet_id: Some("subnet-c".into()),
                availability_zone: Some("us-east-1b".into()),
                private_ips: vec!["10.0.2.15".parse().unwrap()],
                security_group_ids: vec!["sg-client".into()],
                ..Default::default()
            },
            source: None,
        },
    };
    f.security_groups = Fact::Known {
        value: vec![
            SecurityGroup {
                id: "sg-endpoint".into(),
                vpc_id: None,
                ingress: endpoint_ingress,
                egress: vec![all_out.clone()],
            },
            SecurityGroup { id: "sg-client".into(), vpc_id: None, ingress: vec![], egress: vec![all_out] },
        ],
    };
    f.network_acls = Fact::Known { value: vec![open_acl("acl-c", "subnet-c"), endpoint_acl] };
    f.subnet_cidrs =
        BTreeMap::from([("subnet-c".into(), "10.0.2.0/24".into()), ("subnet-e".into(), "10.0.1.0/24".into())]);
    f
}

#[test]
fn timeouts_are_explained_by_security_groups_then_nacls() {
    use crate::network::{IpProtocol, NaclAction, NaclEntry, SgPeer, SgRule};
    let mut timeout = healthy();
    timeout.tls = None;
    timeout.tcp[0].outcome = TcpOutcome::Timeout;
    let https_from_client = SgRule {
        rule_id: None,
        protocol: IpProtocol::Tcp,
        from_port: Some(443),
        to_port: Some(443),
        peer: SgPeer::SecurityGroup { group_id: "sg-client".into(), user_id: None },
        description: None,
    };
    let deny_443 = NaclEntry {
        rule_number: 90,
        egress: false,
        action: NaclAction::Deny,
        protocol: IpProtocol::Tcp,
        cidr: "10.0.2.0/24".parse().unwrap(),
        port_range: Some((443, 443)),
    };

    let d = diagnose(&timeout, Some(&network_facts(vec![], vec![])));
    assert_eq!(d.root_cause, RootCause::SecurityGroupBlocked, "{}", d.summary);
    assert!(d.remediation.iter().any(|r| r.contains("sg-endpoint") && r.contains("443")), "{:?}", d.remediation);

    let d = diagnose(&timeout, Some(&network_facts(vec![https_from_client.clone()], vec![deny_443])));
    assert_eq!(d.root_cause, RootCause::NetworkAclBlocked, "{}", d.summary);
    assert!(d.evidence.iter().any(|e| e.contains("90")), "{:?}", d.evidence);

    let d = diagnose(&timeout, Some(&network_facts(vec![https_from_client], vec![])));
    assert_eq!(d.root_cause, RootCause::ConnectTimeout, "{}", d.summary);
}

#[test]
fn the_denying_statement_is_named() {
    let mut f = facts();
    if let Fact::Known { value } = &mut f.api {
        value.policy = Some(r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"execute-api:Invoke","Resource":"execute-api:/*"},{"Sid":"OnlyFromOther","Effect":"Deny","Principal":"*","Action":"execute-api:Invoke","Resource":"execute-api:/*","Condition":{"StringNotEquals":{"aws:SourceVpce":"vpce-0fedcba9876543210"}}}]}"#.into());
    }
    let d = diagnose(&answered(InvokeClass::ExplicitDeny, 403), Some(&f));
    assert_eq!(d.root_cause, RootCause::ResourcePolicyExplicitDeny);
    assert!(d.summary.contains("OnlyFromOther"), "{}", d.summary);
    assert!(d.remediation.iter().any(|r| r.contains("create-deployment")), "{:?}", d.remediation);
}

#[test]
fn cross_account_calls_are_named_as_such() {
    let msg = "User: anonymous is not authorized to perform: execute-api:Invoke on resource: arn:aws:execute-api:us-east-1:444455556666:abcde12345/prod/GET/health";
    let acct = |m: &str| super::account_in_message(m, "us-east-1", "abcde12345");
    assert_eq!(acct(msg).as_deref(), Some("444455556666"));
    assert_eq!(acct("arn:aws:execute-api:us-east-1:12:abcde12345/y"), None);
    assert_eq!(acct("Forbidden"), None);
    // Only this API's execute-api ARN counts: not another API's, not another region's, not a principal.
    assert_eq!(acct(&msg.replace("abcde12345", "zzzzz99999")), None);
    assert_eq!(acct(&msg.replace("us-east-1", "eu-west-1")), None);
    assert_eq!(acct("User: arn:aws:sts::777788889999:assumed-role/r/s is not authorized"), None);
    assert_eq!(
        acct("User: arn:aws:sts::777788889999:assumed-role/r/s is not authorized on arn:aws:execute-api:us-east-1:444455556666:abcde12345/prod/GET/").as_deref(),
        Some("444455556666")
    );

    let owned_by = |f: &mut AwsFacts, owner: &str| {
        if let Fact::Known { value } = &mut f.endpoint {
            value.owner_id = Some(owner.into());
        }
    };
    // The API lives in another account the inspector cannot see; API Gateway's answer names it.
    let mut denied = answered(InvokeClass::AnonymousNotAuthorized, 403);
    denied.invoke.as_mut().unwrap().message = Some(msg.into());
    let mut invisible = facts();
    invisible.api = Fact::NotFound { detail: "Invalid API identifier specified".into() };
    owned_by(&mut invisible, "111122223333");
    let d = diagnose(&denied, Some(&invisible));
    assert_eq!(d.root_cause, RootCause::ResourcePolicyDenied, "{}", d.summary);
    assert!(
        d.evidence.iter().any(|e| e.contains("account 111122223333") && e.contains("account 444455556666")),
        "{:?}",
        d.evidence
    );
    assert!(d.remediation[0].contains("aws:SourceVpce = vpce-0123456789abcdef0"), "{:?}", d.remediation);
    assert!(
        d.unchecked.iter().any(|u| u.contains("--api-role-arn") && u.contains("444455556666")),
        "{:?}",
        d.unchecked
    );

    // Same, answered 200: the API exists, so it is not ApiNotFound.
    let d = diagnose(&healthy(), Some(&invisible));
    assert_eq!(d.root_cause, RootCause::Healthy, "{}", d.summary);

    // Read through a role in the API's account: the stored policy allows only the API account's
    // own endpoint, so this endpoint (another account) is implicitly denied.
    let mut via_role = facts();
    via_role.api_account_id = Some("444455556666".into());
    owned_by(&mut via_role, "111122223333");
    if let Fact::Known { value } = &mut via_role.api {
        value.policy = Some(r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"execute-api:Invoke","Resource":"execute-api:/*","Condition":{"StringEquals":{"aws:SourceVpce":"vpce-0fedcba9876543210"}}}]}"#.into());
    }
    let d = diagnose(&denied, Some(&via_role));
    assert_eq!(d.root_cause, RootCause::ResourcePolicyDenied, "{}", d.summary);
    assert!(d.remediation[0].starts_with("In account 444455556666, the API's owner"), "{:?}", d.remediation);
    assert!(d.remediation[0].contains("aws:SourceVpce = vpce-0123456789abcdef0"), "{:?}", d.remediation);
    assert!(
        d.evidence.iter().any(|e| e.contains("arn:aws:execute-api:us-east-1:444455556666:abcde12345/prod/GET/health")),
        "{:?}",
        d.evidence
    );

    // Without facts nothing is claimed about accounts.
    let d = diagnose(&denied, None);
    assert!(!d.evidence.iter().any(|e| e.contains("cross-account")), "{:?}", d.evidence);
}

#[test]
fn an_invisible_api_does_not_hide_network_failures() {
    // Another account's API (GetRestApi: NotFound) behind a security group that blocks 443:
    // the timeout is explained by the groups read with our own credentials.
    let mut timeout = healthy();
    timeout.tls = None;
    timeout.tcp[0].outcome = TcpOutcome::Timeout;
    timeout.invoke.as_mut().unwrap().status = None;
    timeout.invoke.as_mut().unwrap().class = InvokeClass::ConnectionError;
    let mut f = network_facts(vec![], vec![]);
    f.api = Fact::NotFound { detail: "Invalid API identifier specified".into() };
    let d = diagnose(&timeout, Some(&f));
    assert_eq!(d.root_cause, RootCause::SecurityGroupBlocked, "{}", d.summary);
    assert!(d.unchecked.iter().any(|u| u.contains("--api-role-arn")), "{:?}", d.unchecked);

    // A 200 through a custom domain proves nothing about this API id: still ApiNotFound.
    let mut custom = healthy();
    custom.invoke.as_mut().unwrap().host_header = "api.internal.example.com".into();
    let mut f = facts();
    f.api = Fact::NotFound { detail: "x".into() };
    assert_eq!(diagnose(&custom, Some(&f)).root_cause, RootCause::ApiNotFound);
}

#[test]
fn urls_routed_elsewhere_are_invalid_even_when_they_answer() {
    let vpce_host = "vpce-0123456789abcdef0-abcdefgh.execute-api.us-east-1.vpce.amazonaws.com";
    let other_vpce_host = "vpce-0fedcba9876543210-zzzzzzzz.execute-api.us-east-1.vpce.amazonaws.com";
    let via = |url_host: &str, host_header: &str, api_id_header: Option<&str>| {
        let mut r = healthy();
        let i = r.invoke.as_mut().unwrap();
        i.url = format!("https://{url_host}/prod/health");
        i.host_header = host_header.into();
        i.api_id_header = api_id_header.map(str::to_owned);
        r.dns[0].host = url_host.into();
        r
    };
    let cases = [
        (
            "Host names another API",
            via(vpce_host, "zzzzz99999.execute-api.us-east-1.amazonaws.com", None),
            "API zzzzz99999",
        ),
        ("x-apigw-api-id names another API", via(vpce_host, vpce_host, Some("zzzzz99999")), "API zzzzz99999"),
        ("another endpoint's name", via(other_vpce_host, API_HOST, None), "vpce-0fedcba9876543210"),
        (
            "another endpoint's alias",
            via(
                "abcde12345-vpce-0fedcba9876543210.execute-api.us-east-1.amazonaws.com",
                "abcde12345-vpce-0fedcba9876543210.execute-api.us-east-1.amazonaws.com",
                None,
            ),
            "vpce-0fedcba9876543210",
        ),
    ];
    for (name, report, want) in cases {
        let d = diagnose(&report, Some(&facts()));
        assert_eq!(d.root_cause, RootCause::InvokeUrlInvalid, "{name}: {}", d.summary);
        assert!(d.summary.contains(want), "{name}: {}", d.summary);
        assert!(d.remediation.iter().any(|r| r.contains(ALIAS)), "{name}: {:?}", d.remediation);
    }
    // The right API through the right endpoint's name, with its Host header: healthy.
    assert_eq!(diagnose(&via(vpce_host, API_HOST, None), Some(&facts())).root_cause, RootCause::Healthy);
    assert_eq!(diagnose(&via(vpce_host, vpce_host, Some("abcde12345")), Some(&facts())).root_cause, RootCause::Healthy);

    // A bare vpce host on a method that needs IAM: API Gateway could not pick the API at all.
    let mut bare = via(vpce_host, vpce_host, None);
    let i = bare.invoke.as_mut().unwrap();
    i.class = InvokeClass::Forbidden;
    i.status = Some(403);
    let mut f = facts();
    f.method = Fact::Known {
        value: crate::aws::facts::MethodFacts {
            resource_path: "/health".into(),
            http_method: "GET".into(),
            authorization_type: "AWS_IAM".into(),
            api_key_required: false,
        },
    };
    assert_eq!(diagnose(&bare, Some(&f)).root_cause, RootCause::InvokeUrlInvalid);
}

#[test]
fn cross_account_endpoint_policy_is_still_evaluated() {
    // The API cannot be read, but our endpoint's policy only allows another API: that is the cause.
    let msg = "User: anonymous is not authorized to perform: execute-api:Invoke on resource: arn:aws:execute-api:us-east-1:444455556666:abcde12345/prod/GET/health";
    let mut denied = answered(InvokeClass::AnonymousNotAuthorized, 403);
    denied.invoke.as_mut().unwrap().message = Some(msg.into());
    let mut f = facts();
    f.api = Fact::NotFound { detail: "x".into() };
    if let Fact::Known { value } = &mut f.endpoint {
        value.owner_id = Some("111122223333".into());
        value.policy = Some(r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"execute-api:Invoke","Resource":"arn:aws:execute-api:us-east-1:*:zzzzz99999/*"}]}"#.into());
    }
    let d = diagnose(&denied, Some(&f));
    assert_eq!(d.root_cause, RootCause::EndpointPolicyDenied, "{}", d.summary);
    assert!(
        d.remediation[0].contains("arn:aws:execute-api:us-east-1:444455556666:abcde12345/prod/GET/health"),
        "{:?}",
        d.remediation
    );
}

#[test]
fn no_route_is_not_blamed_on_tls() {
    let mut r = healthy();
    r.tls = None;
    r.tcp[0].outcome = TcpOutcome::Unreachable;
    let i = r.invoke.as_mut().unwrap();
    i.status = None;
    i.class = InvokeClass::ConnectionError;
    i.error = Some("not sent: no TCP connection".into());
    let d = diagnose(&r, None);
    assert_eq!(d.root_cause, RootCause::Unknown);
    assert!(d.remediation[0].starts_with("No route to the endpoint's address"), "{:?}", d.remediation);
}

#[test]
fn a_probe_that_could_not_run_is_probe_failed() {
    let d = super::probe_failed("pod pvtapi-probe-x: ImagePullBackOff", "look at the pod's events");
    assert_eq!(d.root_cause, RootCause::ProbeFailed);
    assert!(d.evidence[0].contains("ImagePullBackOff"));
    assert!(d.areas.iter().all(|a| a.status == super::AreaStatus::Unknown));
}

#[test]
fn without_facts_the_report_says_what_was_not_checked() {
    let d = diagnose(&healthy(), None);
    assert!(d.unchecked.iter().any(|u| u.contains("not checked")), "{:?}", d.unchecked);
}

#[test]
fn advisories_and_access_choice() {
    use crate::aws::facts::{ExecutionLogLookup, StageFacts};
    use pvtapi_crds::Advisory;
    let mut f = facts();
    f.stage = Fact::Known {
        value: StageFacts {
            name: "prod".into(),
            deployment_id: None,
            logging_level: Some("OFF".into()),
            data_trace_enabled: false,
            last_updated: None,
            web_acl_arn: None,
        },
    };
    f.execution_log =
        Fact::Known { value: ExecutionLogLookup::NotFound { log_group: "g".into(), window_seconds: 900 } };
    let d = diagnose(&answered(InvokeClass::ServerError, 502), Some(&f));
    let kinds: Vec<Advisory> = d.advisories.iter().map(|a| a.advisory).collect();
    assert_eq!(kinds, vec![Advisory::ExecutionLoggingDisabled, Advisory::RequestNotLogged]);
    assert!(diagnose(&healthy(), Some(&facts())).advisories.is_empty());

    let mut f = facts();
    assert_eq!(super::choose_access(&f, "vpce-0123456789abcdef0").map(|c| c.0), Some(AccessMode::PrivateDns));
    if let Fact::Known { value } = &mut f.endpoint {
        value.private_dns_enabled = false;
    }
    assert_eq!(super::choose_access(&f, "vpce-0123456789abcdef0").map(|c| c.0), Some(AccessMode::EndpointHost));
    if let Fact::Known { value } = &mut f.api {
        value.vpc_endpoint_ids = vec!["vpce-0123456789abcdef0".into()];
    }
    assert_eq!(super::choose_access(&f, "vpce-0123456789abcdef0").map(|c| c.0), Some(AccessMode::EndpointAlias));
}

/// Two endpoint interfaces (10.0.1.10 in subnet-e / us-east-1a, 10.0.1.20 in subnet-f /
/// us-east-1b) and the API host resolving to both; the probe connected to the first only.
fn two_addresses(second: TcpOutcome) -> ProbeReport {
    let mut r = healthy();
    r.dns[0].addresses.push(addr("10.0.1.20", AddressClass::Private));
    r.tcp.push(TcpResult { ip: "10.0.1.20".parse().unwrap(), port: 443, outcome: second, ms: 1000, error: None });
    r
}

fn two_interface_facts(endpoint_f_acl: Vec<crate::network::NaclEntry>) -> AwsFacts {
    use crate::aws::facts::InterfaceFacts;
    use crate::network::{IpProtocol, NaclAction, NaclEntry, NetworkAcl, SgPeer, SgRule};
    let https_from_client = SgRule {
        rule_id: None,
        protocol: IpProtocol::Tcp,
        from_port: Some(443),
        to_port: Some(443),
        peer: SgPeer::SecurityGroup { group_id: "sg-client".into(), user_id: None },
        description: None,
    };
    let mut f = network_facts(vec![https_from_client], vec![]);
    if let Fact::Known { value } = &mut f.endpoint {
        value.interfaces.push(InterfaceFacts {
            id: "eni-f".into(),
            subnet_id: Some("subnet-f".into()),
            availability_zone: Some("us-east-1b".into()),
            private_ips: vec!["10.0.1.20".parse().unwrap()],
            security_group_ids: vec!["sg-endpoint".into()],
            ..Default::default()
        });
    }
    if let Fact::Known { value } = &mut f.network_acls {
        let mut entries = vec![
            NaclEntry {
                rule_number: 100,
                egress: false,
                action: NaclAction::Allow,
                protocol: IpProtocol::All,
                cidr: "0.0.0.0/0".parse().unwrap(),
                port_range: None,
            },
            NaclEntry {
                rule_number: 100,
                egress: true,
                action: NaclAction::Allow,
                protocol: IpProtocol::All,
                cidr: "0.0.0.0/0".parse().unwrap(),
                port_range: None,
            },
        ];
        entries.extend(endpoint_f_acl);
        value.push(NetworkAcl { id: "acl-f".into(), subnet_ids: vec!["subnet-f".into()], entries });
    }
    f.subnet_cidrs.insert("subnet-f".into(), "10.0.1.16/28".into());
    f
}

#[test]
fn a_partial_failure_is_the_failing_parts_cause_never_healthy() {
    use crate::network::{IpProtocol, NaclAction, NaclEntry};
    let deny_443 = NaclEntry {
        rule_number: 90,
        egress: false,
        action: NaclAction::Deny,
        protocol: IpProtocol::Tcp,
        cidr: "10.0.2.0/24".parse().unwrap(),
        port_range: Some((443, 443)),
    };
    type Case = (&'static str, ProbeReport, Option<AwsFacts>, RootCause, &'static [&'static str]);
    let cases: Vec<Case> = vec![
        (
            "one of two addresses times out, nothing explains it",
            two_addresses(TcpOutcome::Timeout),
            Some(two_interface_facts(vec![])),
            RootCause::ConnectTimeout,
            &["1 of 2 addresses", "10.0.1.20: eni-f in subnet-f (us-east-1b)"],
        ),
        (
            "one of two addresses times out, its subnet's ACL denies 443",
            two_addresses(TcpOutcome::Timeout),
            Some(two_interface_facts(vec![deny_443])),
            RootCause::NetworkAclBlocked,
            &["1 of 2 addresses", "acl-f", "90"],
        ),
        ("without facts", two_addresses(TcpOutcome::Timeout), None, RootCause::ConnectTimeout, &["1 of 2 addresses"]),
        (
            "one refuses",
            two_addresses(TcpOutcome::Refused),
            None,
            RootCause::ConnectRefused,
            &["10.0.1.20:443 Refused"],
        ),
        ("one unreachable", two_addresses(TcpOutcome::Unreachable), None, RootCause::ConnectTimeout, &["Unreachable"]),
        (
            "both connect",
            two_addresses(TcpOutcome::Connected),
            Some(two_interface_facts(vec![])),
            RootCause::Healthy,
            &[],
        ),
    ];
    for (name, report, f, want, evidence) in cases {
        let d = diagnose(&report, f.as_ref());
        assert_eq!(d.root_cause, want, "{name}: {}", d.summary);
        let text = format!("{} {:?}", d.summary, d.evidence);
        for e in evidence {
            assert!(text.contains(e), "{name}: {e:?} not in {text}");
        }
    }
    // A failure every call hits is named before the partial one.
    let mut denied = two_addresses(TcpOutcome::Timeout);
    let i = denied.invoke.as_mut().unwrap();
    i.class = InvokeClass::ExplicitDeny;
    i.status = Some(403);
    assert_eq!(diagnose(&denied, None).root_cause, RootCause::ResourcePolicyExplicitDeny);
}

#[test]
fn dns_answers_mixing_this_endpoint_with_others_are_a_mismatch() {
    let mut r = healthy();
    r.dns[0].addresses.push(addr("10.9.9.9", AddressClass::Private));
    r.tcp.push(TcpResult {
        ip: "10.9.9.9".parse().unwrap(),
        port: 443,
        outcome: TcpOutcome::Connected,
        ms: 1,
        error: None,
    });
    r.dns.push(DnsResult {
        host: "vpce-0123456789abcdef0-abcdefgh.execute-api.us-east-1.vpce.amazonaws.com".into(),
        role: HostRole::EndpointRegional,
        outcome: DnsOutcome::Resolved,
        addresses: vec![addr("10.0.1.10", AddressClass::Private)],
        ttl: Some(60),
        cnames: vec![],
        error: None,
        ms: 1,
    });
    r.dns_comparison = DnsComparison::Overlap;
    let d = diagnose(&r, None);
    assert_eq!(d.root_cause, RootCause::DnsMismatch, "{}", d.summary);
    assert!(d.summary.contains("1 of 2 addresses"), "{}", d.summary);
    assert!(d.evidence.iter().any(|e| e.contains("10.9.9.9")), "{:?}", d.evidence);
    // A subset of the endpoint's addresses is not a mismatch.
    r.dns[0].addresses.truncate(1);
    r.tcp.truncate(1);
    r.dns.last_mut().unwrap().addresses.push(addr("10.0.1.20", AddressClass::Private));
    assert_eq!(diagnose(&r, None).root_cause, RootCause::Healthy);
}

#[test]
fn ambiguous_403s_are_decided_by_the_facts() {
    use crate::aws::facts::{MethodFacts, StageFacts};
    let stage = |acl: Option<&str>| Fact::Known {
        value: StageFacts {
            name: "prod".into(),
            deployment_id: Some("d1".into()),
            logging_level: None,
            data_trace_enabled: false,
            last_updated: None,
            web_acl_arn: acl.map(str::to_owned),
        },
    };
    let method = |auth: &str, key: bool| Fact::Known {
        value: MethodFacts {
            resource_path: "/health".into(),
            http_method: "GET".into(),
            authorization_type: auth.into(),
            api_key_required: key,
        },
    };
    let with = |s: Fact<StageFacts>, m: Fact<MethodFacts>, edit: fn(&mut AwsFacts)| {
        let mut f = facts();
        f.stage = s;
        f.method = m;
        edit(&mut f);
        f
    };
    fn unknown<T>() -> Fact<T> {
        Fact::Unknown {
            reason: "AccessDenied: apigateway:GET".into(),
            missing_permission: Some("apigateway:GET".into()),
        }
    }
    fn not_found<T>(d: &str) -> Fact<T> {
        Fact::NotFound { detail: d.into() }
    }
    let mat = answered(InvokeClass::MissingAuthenticationToken, 403);
    let forbidden = answered(InvokeClass::Forbidden, 403);
    type Case = (&'static str, ProbeReport, AwsFacts, RootCause, &'static str);
    let cases: Vec<Case> = vec![
        (
            "MAT, stage missing",
            mat.clone(),
            with(not_found("no stage"), skipped(), |_| {}),
            RootCause::StageOrResourceNotFound,
            "stage prod does not exist",
        ),
        (
            "MAT, resource missing",
            mat.clone(),
            with(stage(None), not_found("no resource /health"), |_| {}),
            RootCause::StageOrResourceNotFound,
            "no resource /health",
        ),
        (
            "MAT, method missing",
            mat.clone(),
            with(stage(None), not_found("/health has no GET (or ANY) method"), |_| {}),
            RootCause::StageOrResourceNotFound,
            "has no GET",
        ),
        (
            "MAT, AWS_IAM method",
            mat.clone(),
            with(stage(None), method("AWS_IAM", false), |_| {}),
            RootCause::AuthorizationRequired,
            "AWS_IAM",
        ),
        (
            "MAT, method not in the deployment",
            mat.clone(),
            with(stage(None), method("NONE", false), |_| {}),
            RootCause::StageOrResourceNotFound,
            "not in stage prod's deployment",
        ),
        (
            "MAT, facts unreadable",
            mat.clone(),
            with(unknown(), unknown(), |_| {}),
            RootCause::StageOrResourceNotFound,
            "GetStage prod (AccessDenied",
        ),
        (
            "Forbidden, API key",
            forbidden.clone(),
            with(stage(None), method("NONE", true), |_| {}),
            RootCause::AuthorizationRequired,
            "requires an API key",
        ),
        (
            "Forbidden, WAF",
            forbidden.clone(),
            with(stage(Some("arn:aws:wafv2:us-east-1:1:regional/webacl/w/1")), method("NONE", false), |_| {}),
            RootCause::WafBlocked,
            "webacl/w",
        ),
        (
            "Forbidden, execute-api endpoint off",
            forbidden.clone(),
            with(stage(None), method("NONE", false), |f| {
                if let Fact::Known { value } = &mut f.api {
                    value.disable_execute_api_endpoint = true
                }
            }),
            RootCause::ExecuteApiEndpointDisabled,
            "disableExecuteApiEndpoint",
        ),
        (
            "Forbidden, public API through private DNS",
            forbidden.clone(),
            with(stage(None), method("NONE", false), |f| {
                if let Fact::Known { value } = &mut f.api {
                    value.endpoint_types = vec!["REGIONAL".into()]
                }
            }),
            RootCause::PublicApiShadowedByPrivateDns,
            "REGIONAL",
        ),
        (
            "Forbidden, all ruled out",
            forbidden.clone(),
            with(stage(None), method("NONE", false), |_| {}),
            RootCause::UnexpectedStatus,
            "ruled out",
        ),
        (
            "Forbidden, facts unreadable",
            forbidden.clone(),
            with(unknown(), unknown(), |_| {}),
            RootCause::UnexpectedStatus,
            "GetMethod GET /health (AccessDenied",
        ),
    ];
    for (name, report, f, want, text) in cases {
        let d = diagnose(&report, Some(&f));
        assert_eq!(d.root_cause, want, "{name}: {}", d.summary);
        let all = format!("{} {:?}", d.summary, d.evidence);
        assert!(all.contains(text), "{name}: {text:?} not in {all}");
    }
}

#[test]
fn fixes_are_ready_to_apply_and_proven_by_the_analysis() {
    use crate::network::{IpProtocol, NaclAction, NaclEntry};
    let mut timeout = healthy();
    timeout.tls = None;
    timeout.tcp[0].outcome = TcpOutcome::Timeout;
    // Security group: the exact ingress rule, from the client's group into the endpoint's.
    let d = diagnose(&timeout, Some(&network_facts(vec![], vec![])));
    assert_eq!(d.root_cause, RootCause::SecurityGroupBlocked);
    assert_eq!(d.fixes.len(), 1, "{:?}", d.fixes);
    let line = d.fixes[0].command_line.clone().unwrap();
    assert!(
        line.starts_with("aws ec2 authorize-security-group-ingress --region us-east-1 --group-id sg-endpoint"),
        "{line}"
    );
    assert!(line.contains("UserIdGroupPairs=[{GroupId=sg-client}]"), "{line}");
    // NACL: an allow numbered just below the denying rule.
    let https_from_client = crate::network::SgRule {
        rule_id: None,
        protocol: IpProtocol::Tcp,
        from_port: Some(443),
        to_port: Some(443),
        peer: crate::network::SgPeer::SecurityGroup { group_id: "sg-client".into(), user_id: None },
        description: None,
    };
    let deny_443 = NaclEntry {
        rule_number: 90,
        egress: false,
        action: NaclAction::Deny,
        protocol: IpProtocol::Tcp,
        cidr: "10.0.2.0/24".parse().unwrap(),
        port_range: Some((443, 443)),
    };
    let d = diagnose(&timeout, Some(&network_facts(vec![https_from_client], vec![deny_443])));
    assert_eq!(d.root_cause, RootCause::NetworkAclBlocked);
    let argv = &d.fixes[0].aws_cli;
    assert_eq!(argv[2], "create-network-acl-entry", "{argv:?}");
    let at = |flag: &str| argv.iter().position(|a| a == flag).map(|i| argv[i + 1].as_str());
    assert_eq!(at("--network-acl-id"), Some("acl-e"));
    assert_eq!(at("--rule-number"), Some("89"));
    assert_eq!(at("--cidr-block"), Some("10.0.2.0/24"));
    assert!(argv.contains(&"--ingress".to_owned()));

    // Policies: the statement, the whole document, the command and the redeploy.
    let policy_case = |policy: Option<&str>, class: InvokeClass| {
        let mut f = facts();
        if let Fact::Known { value } = &mut f.api {
            value.policy = policy.map(str::to_owned);
        }
        diagnose(&answered(class, 403), Some(&f))
    };
    let d = policy_case(None, InvokeClass::AnonymousNotAuthorized);
    assert_eq!(d.root_cause, RootCause::ResourcePolicyMissing);
    assert_eq!(d.fixes.len(), 2, "{:?}", d.fixes);
    let p = d.fixes[0].policy.as_ref().unwrap();
    assert_eq!(p.document["Statement"][0]["Condition"]["StringEquals"]["aws:SourceVpce"], "vpce-0123456789abcdef0");
    assert_eq!(d.fixes[1].aws_cli[2], "create-deployment");

    let deny_others = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"execute-api:Invoke","Resource":"execute-api:/*"},{"Sid":"OnlyFromOther","Effect":"Deny","Principal":"*","Action":"execute-api:Invoke","Resource":"execute-api:/*","Condition":{"StringNotEquals":{"aws:SourceVpce":"vpce-0fedcba9876543210"}}}]}"#;
    let d = policy_case(Some(deny_others), InvokeClass::ExplicitDeny);
    assert_eq!(d.root_cause, RootCause::ResourcePolicyExplicitDeny);
    let p = d.fixes[0].policy.as_ref().unwrap();
    assert_eq!(
        p.statement["Condition"]["StringNotEquals"]["aws:SourceVpce"],
        serde_json::json!(["vpce-0fedcba9876543210", "vpce-0123456789abcdef0"])
    );
    // An unconditional Deny has no safe automatic rewrite: prose only, never a wrong document.
    let deny_all = r#"{"Statement":[{"Effect":"Deny","Principal":"*","Action":"execute-api:Invoke","Resource":"execute-api:/*"}]}"#;
    let d = policy_case(Some(deny_all), InvokeClass::ExplicitDeny);
    assert_eq!(d.root_cause, RootCause::ResourcePolicyExplicitDeny);
    assert!(d.fixes.is_empty(), "{:?}", d.fixes);

    let allow_other = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"execute-api:Invoke","Resource":"execute-api:/*","Condition":{"StringEquals":{"aws:SourceVpce":"vpce-0fedcba9876543210"}}}]}"#;
    let d = policy_case(Some(allow_other), InvokeClass::AnonymousNotAuthorized);
    assert_eq!(d.root_cause, RootCause::ResourcePolicyDenied);
    assert_eq!(d.fixes[0].policy.as_ref().unwrap().document["Statement"].as_array().unwrap().len(), 2);
}

#[test]
fn a_report_contradicting_its_own_success_is_not_healthy() {
    let mut r = healthy();
    r.tls = None;
    assert_eq!(diagnose(&r, None).root_cause, RootCause::Unknown);
    let mut r = healthy();
    r.invoke.as_mut().unwrap().status = None;
    assert_ne!(diagnose(&r, None).root_cause, RootCause::Healthy);
    let mut r = healthy();
    r.tls.as_mut().unwrap().outcome = TlsOutcome::Ok;
    r.tcp[0].outcome = TcpOutcome::Timeout;
    assert_ne!(diagnose(&r, None).root_cause, RootCause::Healthy);
}

#[test]
fn a_public_address_for_any_invoke_host_is_not_healthy() {
    // endpointHost access: the vpce name resolves to the endpoint's address and a public one.
    let vpce_host = "vpce-0123456789abcdef0-abcdefgh.execute-api.us-east-1.vpce.amazonaws.com";
    let mut r = healthy();
    r.access.mode = AccessMode::EndpointHost;
    r.dns.push(DnsResult {
        host: vpce_host.into(),
        role: HostRole::EndpointRegional,
        outcome: DnsOutcome::Resolved,
        addresses: vec![addr("10.0.1.10", AddressClass::Private), addr("52.94.1.1", AddressClass::Public)],
        ttl: Some(60),
        cnames: vec![],
        error: None,
        ms: 1,
    });
    r.tcp.push(TcpResult {
        ip: "52.94.1.1".parse().unwrap(),
        port: 443,
        outcome: TcpOutcome::Connected,
        ms: 1,
        error: None,
    });
    let i = r.invoke.as_mut().unwrap();
    i.url = format!("https://{vpce_host}/prod/health");
    let d = diagnose(&r, None);
    assert_eq!(d.root_cause, RootCause::DnsMismatch, "{}", d.summary);
    assert!(d.summary.contains("1 of 2 addresses"), "{}", d.summary);
}

#[test]
fn a_network_policy_isolating_the_pod_is_named_before_the_vpc() {
    use super::cluster::{ClusterFacts, EgressFinding, EgressStatus};
    use super::diagnose_in_cluster;
    let finding = |status: EgressStatus| EgressFinding {
        status,
        isolating_policies: vec!["payments/default-deny-egress".into()],
        detail: "no egress rule of payments/default-deny-egress allows TCP 443 to 10.0.1.10".into(),
    };
    let cluster = |endpoint: EgressStatus, dns: EgressStatus| ClusterFacts {
        pod: "payments/orders-probe".into(),
        endpoint_egress: Some(finding(endpoint)),
        dns_egress: Some(finding(dns)),
        suggested_policy: Some("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n".into()),
        unevaluated: vec!["CiliumNetworkPolicy".into()],
        unreadable: None,
    };
    let mut timeout = healthy();
    timeout.tls = None;
    timeout.tcp[0].outcome = TcpOutcome::Timeout;
    // Security groups and NACLs allow (the facts say so); the policy isolates the pod.
    let https_from_client = crate::network::SgRule {
        rule_id: None,
        protocol: crate::network::IpProtocol::Tcp,
        from_port: Some(443),
        to_port: Some(443),
        peer: crate::network::SgPeer::SecurityGroup { group_id: "sg-client".into(), user_id: None },
        description: None,
    };
    let f = network_facts(vec![https_from_client], vec![]);
    let blocked = cluster(EgressStatus::Blocked, EgressStatus::Allowed);
    let d = diagnose_in_cluster(&timeout, Some(&f), Some(&blocked));
    assert_eq!(d.root_cause, RootCause::NetworkPolicyBlocked, "{}", d.summary);
    assert!(d.summary.contains("payments/default-deny-egress"), "{}", d.summary);
    assert!(d.fixes[0].manifest.as_deref().unwrap().contains("NetworkPolicy"));
    assert!(d.unchecked.iter().any(|u| u.contains("CiliumNetworkPolicy")), "{:?}", d.unchecked);
    // Even when a security group blocks too: the pod's own policy drops the packets first.
    let d = diagnose_in_cluster(&timeout, Some(&network_facts(vec![], vec![])), Some(&blocked));
    assert_eq!(d.root_cause, RootCause::NetworkPolicyBlocked);
    // Allowed or not isolated: the VPC's analyses decide as before.
    for status in [EgressStatus::Allowed, EgressStatus::NotIsolated, EgressStatus::Unknown] {
        let d = diagnose_in_cluster(&timeout, Some(&f), Some(&cluster(status, status)));
        assert_eq!(d.root_cause, RootCause::ConnectTimeout, "{status:?}: {}", d.summary);
    }
    // DNS timing out with DNS egress blocked.
    let mut dns_timeout = healthy();
    dns_timeout.dns[0].outcome = DnsOutcome::Timeout;
    dns_timeout.dns[0].addresses.clear();
    dns_timeout.tcp.clear();
    dns_timeout.tls = None;
    let d = diagnose_in_cluster(&dns_timeout, None, Some(&cluster(EgressStatus::Allowed, EgressStatus::Blocked)));
    assert_eq!(d.root_cause, RootCause::NetworkPolicyBlocked, "{}", d.summary);
    assert!(d.summary.contains("DNS lookups"), "{}", d.summary);
    // A run that got through a path the policies block is not healthy: the probe was not
    // policed yet, or the policies are not enforced; the workload's pods are blocked.
    let d = diagnose_in_cluster(&healthy(), None, Some(&blocked));
    assert_eq!(d.root_cause, RootCause::NetworkPolicyBlocked, "{}", d.summary);
    assert!(d.summary.contains("got through") && d.summary.contains("payments/default-deny-egress"), "{}", d.summary);
    assert!(d.evidence.iter().any(|e| e.contains("10.0.1.10:443 connected")), "{:?}", d.evidence);
    let d = diagnose_in_cluster(&healthy(), None, Some(&cluster(EgressStatus::Allowed, EgressStatus::Blocked)));
    assert_eq!(d.root_cause, RootCause::NetworkPolicyBlocked, "{}", d.summary);
    assert!(d.summary.starts_with("DNS lookups"), "{}", d.summary);
    // Allowed, not isolated or undecided policies leave a healthy run healthy.
    for status in [EgressStatus::Allowed, EgressStatus::NotIsolated, EgressStatus::Unknown] {
        let d = diagnose_in_cluster(&healthy(), None, Some(&cluster(status, status)));
        assert_eq!(d.root_cause, RootCause::Healthy, "{status:?}: {}", d.summary);
    }
}

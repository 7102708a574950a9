//! AWS inspection against moto_server: a VPC with subnets, security groups referencing groups
//! and CIDRs, NACLs, an execute-api interface endpoint with a policy and private DNS, a PRIVATE
//! REST API with a resource policy, a stage with logging and an execution log line — every fact
//! read back through the real SDK, plus the call budget for 100 checks and least privilege.

#![allow(clippy::unwrap_used)] // fixture setup: a failed AWS call must abort the test loudly

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use aws_sdk_apigateway::types::{Op, PatchOperation};
use aws_sdk_ec2::types::{AttributeBooleanValue, IpPermission, IpRange, VpcEndpointType};
use pvtapi_engine::aws::facts::ExecutionLogLookup;
use pvtapi_engine::aws::{CallRecorder, Fact, InspectRequest, Inspector};
use pvtapi_engine::network::{self, SgPeer};
use pvtapi_testkit::moto::Moto;
use pvtapi_testkit::world::{self, WorldSpec};

const API: &str = world::API_ID;
const RESOURCE_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"execute-api:Invoke","Resource":"execute-api:/*"},{"Effect":"Deny","Principal":"*","Action":"execute-api:Invoke","Resource":"execute-api:/*","Condition":{"StringNotEquals":{"aws:SourceVpce":"VPCE"}}}]}"#;
const ENDPOINT_POLICY: &str =
    r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"execute-api:Invoke","Resource":"*"}]}"#;

struct World {
    vpce: String,
    vpc: String,
    sg_endpoint: String,
    sg_client: String,
    client_ip: IpAddr,
    subnet_client: String,
    request_id: String,
}

/// Builds the AWS side (the shared testkit world) plus what this suite checks: VPC DNS hostnames
/// on, a CIDR rule on the endpoint group, stage logging and an execution-log line; `rich` adds an
/// inbound rule from a managed prefix list and a custom network ACL on the endpoint's subnet that
/// denies 443 from the client subnet (rule 90).
async fn build_world(config: &aws_config::SdkConfig, rich: bool) -> World {
    let spec = WorldSpec {
        resource_policy: Some(RESOURCE_POLICY.to_owned()),
        endpoint_policy: Some(ENDPOINT_POLICY.to_owned()),
        ..WorldSpec::default()
    };
    let base = world::build(config, &spec).await;
    let (vpc, sg_endpoint, subnet_endpoint) = (&base.vpc, &base.sg_endpoint, &base.subnet_endpoint);
    let ec2 = aws_sdk_ec2::Client::new(config);
    ec2.modify_vpc_attribute()
        .vpc_id(vpc)
        .enable_dns_hostnames(AttributeBooleanValue::builder().value(true).build())
        .send()
        .await
        .unwrap();
    ec2.authorize_security_group_ingress()
        .group_id(sg_endpoint)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(443)
                .to_port(443)
                .ip_ranges(IpRange::builder().cidr_ip("10.0.9.0/24").build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    if rich {
        let acl =
            ec2.create_network_acl().vpc_id(vpc).send().await.unwrap().network_acl.unwrap().network_acl_id.unwrap();
        let entry = |n: i32,
                     egress: bool,
                     action: aws_sdk_ec2::types::RuleAction,
                     proto: &str,
                     cidr: &str,
                     ports: Option<(i32, i32)>| {
            ec2.create_network_acl_entry()
                .network_acl_id(&acl)
                .rule_number(n)
                .egress(egress)
                .rule_action(action)
                .protocol(proto)
                .cidr_block(cidr)
                .set_port_range(ports.map(|(f, t)| aws_sdk_ec2::types::PortRange::builder().from(f).to(t).build()))
                .send()
        };
        use aws_sdk_ec2::types::RuleAction::{Allow, Deny};
        entry(90, false, Deny, "6", "10.0.2.0/24", Some((443, 443))).await.unwrap();
        entry(100, false, Allow, "-1", "0.0.0.0/0", None).await.unwrap();
        entry(100, true, Allow, "-1", "0.0.0.0/0", None).await.unwrap();
        let current = ec2
            .describe_network_acls()
            .filters(
                aws_sdk_ec2::types::Filter::builder().name("association.subnet-id").values(subnet_endpoint).build(),
            )
            .send()
            .await
            .unwrap();
        let association = current.network_acls()[0]
            .associations()
            .iter()
            .find(|a| a.subnet_id() == Some(subnet_endpoint.as_str()))
            .and_then(|a| a.network_acl_association_id())
            .unwrap()
            .to_owned();
        ec2.replace_network_acl_association().association_id(association).network_acl_id(&acl).send().await.unwrap();
    }
    if rich {
        let pl = ec2
            .create_managed_prefix_list()
            .prefix_list_name("office")
            .address_family("IPv4")
            .max_entries(5)
            .entries(aws_sdk_ec2::types::AddPrefixListEntry::builder().cidr("192.168.50.0/24").build())
            .send()
            .await
            .unwrap()
            .prefix_list
            .unwrap()
            .prefix_list_id
            .unwrap();
        ec2.authorize_security_group_ingress()
            .group_id(sg_endpoint)
            .ip_permissions(
                IpPermission::builder()
                    .ip_protocol("tcp")
                    .from_port(443)
                    .to_port(443)
                    .prefix_list_ids(aws_sdk_ec2::types::PrefixListId::builder().prefix_list_id(pl).build())
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
    let apigw = aws_sdk_apigateway::Client::new(config);
    let patch = |path: &str, value: &str| PatchOperation::builder().op(Op::Replace).path(path).value(value).build();
    apigw
        .update_stage()
        .rest_api_id(API)
        .stage_name("prod")
        .patch_operations(patch("/*/*/logging/loglevel", "INFO"))
        .patch_operations(patch("/*/*/logging/dataTrace", "true"))
        .send()
        .await
        .unwrap();

    let logs = aws_sdk_cloudwatchlogs::Client::new(config);
    let group = format!("API-Gateway-Execution-Logs_{API}/prod");
    logs.create_log_group().log_group_name(&group).send().await.unwrap();
    logs.create_log_stream().log_group_name(&group).log_stream_name("s1").send().await.unwrap();
    let request_id = "7d0a6a3e-1111-4222-8333-444455556666".to_owned();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    logs.put_log_events()
        .log_group_name(&group)
        .log_stream_name("s1")
        .log_events(
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                .timestamp(now)
                .message(format!("({request_id}) Extended Request Id: abc="))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    World {
        vpce: base.vpce,
        vpc: base.vpc,
        sg_endpoint: base.sg_endpoint,
        sg_client: base.sg_client,
        client_ip: base.client_ip,
        subnet_client: base.subnet_client,
        request_id,
    }
}

fn request(world: &World, with_log: bool) -> InspectRequest {
    InspectRequest {
        api_id: API.into(),
        stage: "prod".into(),
        path: "/health".into(),
        method: "GET".into(),
        vpce_id: world.vpce.clone(),
        client_ip: Some(world.client_ip),
        node_ip: None,
        request_id: with_log.then(|| world.request_id.clone()),
        request_time: None,
        include_deployment: with_log,
        custom_domain: None,
        api_account_id: None,
    }
}

#[tokio::test]
async fn every_fact_is_read_from_moto() {
    let moto = Moto::start();
    let config = moto.sdk_config("us-east-1").await;
    let world = build_world(&config, true).await;
    let recorder = CallRecorder::default();
    let inspector = Inspector::with_interceptor(&config, Duration::from_secs(60), Some(recorder.clone()));
    let facts = inspector.inspect(&request(&world, true)).await;
    assert!(facts.gaps.is_empty(), "no gaps expected: {:?}", facts.gaps);

    let api = facts.api.known().expect("api");
    assert_eq!(api.endpoint_types, vec!["PRIVATE"]);
    assert_eq!(api.vpc_endpoint_ids, vec![world.vpce.clone()]);
    let policy = pvtapi_engine::policy::PolicyDocument::parse(api.policy.as_deref().expect("policy")).expect("parses");
    assert_eq!(policy.statements.len(), 2);

    let stage = facts.stage.known().expect("stage");
    assert!(stage.deployment_id.is_some());
    assert_eq!(stage.logging_level.as_deref(), Some("INFO"));
    assert!(stage.data_trace_enabled && stage.execution_logging_enabled());
    assert_eq!(facts.deployment.known().map(|d| Some(d.id.clone())), Some(stage.deployment_id.clone()));

    let method = facts.method.known().expect("method");
    assert_eq!((method.resource_path.as_str(), method.authorization_type.as_str()), ("/health", "NONE"));
    assert!(!method.requires_authorization());

    let endpoint = facts.endpoint.known().expect("endpoint");
    assert_eq!(endpoint.state.as_deref(), Some("available"), "moto's lowercase state, compared case-insensitively");
    assert!(endpoint.is_execute_api() && endpoint.private_dns_enabled);
    assert_eq!(endpoint.service_region(), Some("us-east-1"));
    assert_eq!(endpoint.security_group_ids, vec![world.sg_endpoint.clone()]);
    assert_eq!(endpoint.vpc_id.as_deref(), Some(world.vpc.as_str()));
    assert!(!endpoint.dns_entries.is_empty());
    assert!(endpoint.policy.as_deref().is_some_and(|p| p.contains("execute-api:Invoke")));
    assert_eq!(endpoint.interfaces.len(), endpoint.network_interface_ids.len());
    assert!(!endpoint.addresses().is_empty());

    let vpc = facts.vpc.known().expect("vpc attributes");
    assert!(vpc.enable_dns_support && vpc.enable_dns_hostnames);

    let client = facts.client.known().expect("client interface");
    assert_eq!(client.interface.security_group_ids, vec![world.sg_client.clone()]);
    assert_eq!(client.interface.subnet_id.as_deref(), Some(world.subnet_client.as_str()));

    // Security groups: the endpoint's inbound rule references the client's group; the analysis agrees.
    let groups = facts.security_groups.known().expect("security groups");
    let endpoint_sg = groups.iter().find(|g| g.id == world.sg_endpoint).expect("endpoint sg");
    assert!(
        endpoint_sg
            .ingress
            .iter()
            .any(|r| matches!(&r.peer, SgPeer::SecurityGroup { group_id, .. } if *group_id == world.sg_client))
    );
    assert!(endpoint_sg.ingress.iter().any(|r| matches!(&r.peer, SgPeer::Cidr(c) if c.to_string() == "10.0.9.0/24")));
    assert!(
        endpoint_sg.ingress.iter().any(|r| matches!(&r.peer, SgPeer::PrefixList { cidrs: Some(c), .. } if c.iter().any(|n| n.to_string() == "192.168.50.0/24"))),
        "prefix lists are resolved: {:?}",
        endpoint_sg.ingress
    );
    let verdict = network::evaluate_security_groups(
        &network::Client {
            ip: world.client_ip,
            security_group_ids: client.interface.security_group_ids.clone(),
            subnet_id: None,
            subnet_cidr: None,
        },
        &network::Endpoint { addresses: endpoint.addresses(), security_group_ids: endpoint.security_group_ids.clone() },
        groups,
    );
    assert!(
        matches!(verdict.inbound, network::SgOutcome::Allowed { ref group_id, .. } if *group_id == world.sg_endpoint),
        "{verdict}"
    );

    // NACLs: moto's default ACL on the client subnet, our custom one (rule 90 denies 443 from the
    // client subnet) on the endpoint subnet; the stateless analysis names rule 90.
    let acls = facts.network_acls.known().expect("network acls");
    let client_acl = acls.iter().find(|a| a.subnet_ids.contains(&world.subnet_client)).expect("client subnet acl");
    let endpoint_subnet = endpoint.subnet_ids[0].clone();
    let endpoint_acl = acls.iter().find(|a| a.subnet_ids.contains(&endpoint_subnet)).expect("endpoint subnet acl");
    assert_ne!(client_acl.id, endpoint_acl.id);
    assert!(
        endpoint_acl.entries.iter().any(|e| e.rule_number == 90 && e.action == network::NaclAction::Deny && !e.egress)
    );
    let nacl = network::evaluate_nacls(
        network::NaclSide {
            ip: world.client_ip,
            subnet_id: Some(&world.subnet_client),
            subnet_cidr: facts.subnet_cidrs.get(&world.subnet_client).and_then(|c| c.parse().ok()),
            nacl: Some(client_acl),
        },
        network::NaclSide {
            ip: endpoint.addresses()[0],
            subnet_id: Some(&endpoint_subnet),
            subnet_cidr: None,
            nacl: Some(endpoint_acl),
        },
    );
    let ingress = nacl.leg(network::Leg::EndpointIngress).expect("leg");
    assert_eq!(ingress.status, network::LegStatus::Denied, "{nacl}");
    assert_eq!(ingress.deciding_rules(), vec![(90, network::NaclAction::Deny)]);
    assert_eq!(facts.subnet_cidrs.get(&world.subnet_client).map(String::as_str), Some("10.0.2.0/24"));

    match facts.execution_log.known() {
        Some(ExecutionLogLookup::Found { lines }) => assert!(lines[0].contains(&world.request_id)),
        other => panic!("expected the request id in the execution logs, got {other:?}"),
    }

    // A request id that never reached API Gateway: not in the logs.
    let mut unlogged = request(&world, true);
    unlogged.request_id = Some("00000000-0000-4000-8000-000000000000".into());
    match inspector.inspect(&unlogged).await.execution_log.known() {
        Some(ExecutionLogLookup::NotFound { log_group, .. }) => {
            assert_eq!(log_group, &format!("API-Gateway-Execution-Logs_{API}/prod"))
        }
        other => panic!("expected NotFound, got {other:?}"),
    }

    // A cluster in another VPC than the endpoint (a centralized endpoint): the pod's Security
    // Groups for Pods branch interface in a custom-networking subnet of a secondary CIDR, the
    // node's interface found by the pod's host address, the cluster VPC's CIDRs — and the source
    // they give on the VPC CNI.
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let cluster_vpc = ec2.create_vpc().cidr_block("10.20.0.0/16").send().await.unwrap();
    let cluster_vpc = cluster_vpc.vpc().and_then(|v| v.vpc_id()).unwrap().to_owned();
    ec2.associate_vpc_cidr_block().vpc_id(&cluster_vpc).cidr_block("100.64.0.0/16").send().await.unwrap();
    let subnet = |cidr: &'static str| {
        let ec2 = ec2.clone();
        let vpc = cluster_vpc.clone();
        async move {
            let out = ec2.create_subnet().vpc_id(vpc).cidr_block(cidr).send().await.unwrap();
            out.subnet().and_then(|s| s.subnet_id()).unwrap().to_owned()
        }
    };
    let (node_subnet, pod_subnet) = (subnet("10.20.1.0/24").await, subnet("100.64.1.0/24").await);
    let group = |name: &'static str| {
        let ec2 = ec2.clone();
        let vpc = cluster_vpc.clone();
        async move {
            let out = ec2.create_security_group().group_name(name).description(name).vpc_id(vpc).send().await.unwrap();
            out.group_id().unwrap().to_owned()
        }
    };
    let (sg_node, sg_pod) = (group("nodes").await, group("pods").await);
    ec2.create_network_interface()
        .subnet_id(&node_subnet)
        .private_ip_address("10.20.1.10")
        .groups(&sg_node)
        .send()
        .await
        .unwrap();
    ec2.create_network_interface()
        .subnet_id(&pod_subnet)
        .private_ip_address("100.64.1.20")
        .groups(&sg_pod)
        .description(pvtapi_engine::aws::facts::BRANCH_ENI_DESCRIPTION)
        .send()
        .await
        .unwrap();
    let mut from_cluster = request(&world, false);
    from_cluster.client_ip = Some("100.64.1.20".parse().unwrap());
    from_cluster.node_ip = Some("10.20.1.10".parse().unwrap());
    let facts = inspector.inspect(&from_cluster).await;
    assert!(facts.gaps.is_empty(), "no gaps expected: {:?}", facts.gaps);
    let pod = facts.client.known().expect("the pod's interface");
    assert!(pod.interface.is_branch(), "{pod:?}");
    assert_eq!(pod.interface.vpc_id.as_deref(), Some(cluster_vpc.as_str()));
    assert_eq!(pod.interface.security_group_ids, vec![sg_pod.clone()]);
    let node = facts.node.known().expect("the node's interface");
    assert_eq!(node.ip.to_string(), "10.20.1.10");
    assert_eq!(node.interface.security_group_ids, vec![sg_node.clone()]);
    assert_eq!(node.interface.subnet_id.as_deref(), Some(node_subnet.as_str()));
    let cidrs = &facts.client_vpc.known().expect("the cluster VPC's CIDRs").cidr_blocks;
    assert_eq!(cidrs, &vec!["10.20.0.0/16".to_owned(), "100.64.0.0/16".to_owned()]);
    let groups = facts.security_groups.known().expect("security groups");
    assert!([&sg_node, &sg_pod].iter().all(|g| groups.iter().any(|x| &&x.id == g)), "both sides' groups are read");
    let acls = facts.network_acls.known().expect("network acls");
    assert!(acls.iter().any(|a| a.subnet_ids.contains(&node_subnet)), "the node subnet's ACL is read");
    {
        use pvtapi_engine::network::source::{CniFacts, SgEnforcingMode, SourceKind, VpcCniConfig, resolve};
        let cni = |mode| CniFacts::VpcCni { config: VpcCniConfig { enforcing_mode: mode, ..Default::default() } };
        let strict = resolve(&facts, Some(&cni(SgEnforcingMode::Strict)));
        let source = strict.client.known().and_then(|c| c.source.clone()).expect("a source");
        assert_eq!(source.kind, SourceKind::BranchInterface, "{}", source.detail);
        let standard = resolve(&facts, Some(&cni(SgEnforcingMode::Standard)));
        let c = standard.client.known().expect("the node's interface");
        assert_eq!((c.ip, c.source.as_ref().map(|s| s.kind)), (node.ip, Some(SourceKind::NodeAfterSnat)));
    }

    // Least privilege: every call maps to an action in deploy/iam-policy.json, and every action
    // the policy grants is used.
    let used: BTreeSet<String> = recorder.calls().iter().map(|c| iam_action(c)).collect();
    let granted = granted_actions();
    assert_eq!(used, granted, "deploy/iam-policy.json must list exactly the actions the inspection calls");
}

/// `EC2:DescribeVpcEndpoints` → `ec2:DescribeVpcEndpoints`; API Gateway's control plane is
/// authorized by HTTP verb (`apigateway:GET`); CloudWatch Logs by operation.
fn iam_action(call: &str) -> String {
    let (service, op) = call.split_once(':').expect("service:Operation");
    match service.to_ascii_lowercase().as_str() {
        "apigateway" | "api gateway" => {
            assert!(op.starts_with("Get"), "read-only: {call}");
            "apigateway:GET".to_owned()
        }
        "ec2" => format!("ec2:{op}"),
        "cloudwatchlogs" | "cloudwatch logs" | "logs" => format!("logs:{op}"),
        other => panic!("unexpected service {other} in {call}"),
    }
}

fn granted_actions() -> BTreeSet<String> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/iam-policy.json"))
        .expect("policy file");
    let policy: serde_json::Value = serde_json::from_str(&text).expect("policy JSON");
    policy["Statement"]
        .as_array()
        .expect("statements")
        .iter()
        .flat_map(|s| s["Action"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn logging_off_means_no_log_lookup() {
    let moto = Moto::start();
    let config = moto.sdk_config("us-east-1").await;
    let world = build_world(&config, false).await;
    let patch = PatchOperation::builder().op(Op::Replace).path("/*/*/logging/loglevel").value("OFF").build();
    aws_sdk_apigateway::Client::new(&config)
        .update_stage()
        .rest_api_id(API)
        .stage_name("prod")
        .patch_operations(patch)
        .send()
        .await
        .unwrap();
    let facts = Inspector::new(&config, Duration::from_secs(60)).inspect(&request(&world, true)).await;
    assert!(!facts.stage.known().expect("stage").execution_logging_enabled());
    assert_eq!(facts.execution_log.known(), Some(&ExecutionLogLookup::LoggingDisabled));
}

#[tokio::test]
async fn a_hundred_checks_on_one_api_cost_at_most_ten_calls() {
    let moto = Moto::start();
    let config = moto.sdk_config("us-east-1").await;
    let world = build_world(&config, false).await;
    let recorder = CallRecorder::default();
    let inspector = Inspector::with_interceptor(&config, Duration::from_secs(60), Some(recorder.clone()));
    let requests: Vec<InspectRequest> = (0..100).map(|_| request(&world, false)).collect();
    let all = futures::future::join_all(requests.iter().map(|r| inspector.inspect(r))).await;
    assert!(all.iter().all(|f| f.gaps.is_empty()), "{:?}", all[0].gaps);
    let calls = recorder.calls();
    println!("100 checks on one API/endpoint: {} AWS calls: {calls:?}", calls.len());
    assert!(calls.len() <= 10, "{} calls for 100 checks: {calls:?}", calls.len());
}

#[tokio::test]
async fn missing_resources_are_facts_not_errors() {
    let moto = Moto::start();
    let config = moto.sdk_config("us-east-1").await;
    let inspector = Inspector::new(&config, Duration::from_secs(60));
    let facts = inspector
        .inspect(&InspectRequest {
            api_id: "zzzzz99999".into(),
            stage: "prod".into(),
            path: "/".into(),
            method: "GET".into(),
            vpce_id: "vpce-0000000000000000f".into(),
            client_ip: None,
            node_ip: None,
            request_id: Some("r".into()),
            request_time: None,
            include_deployment: true,
            custom_domain: None,
            api_account_id: None,
        })
        .await;
    assert!(facts.api.is_not_found(), "{:?}", facts.api);
    assert!(facts.stage.is_not_found(), "{:?}", facts.stage);
    assert!(facts.endpoint.is_not_found() || matches!(facts.endpoint, Fact::Unknown { .. }), "{:?}", facts.endpoint);
    assert!(matches!(facts.vpc, Fact::Skipped { .. }));
    assert!(matches!(facts.client, Fact::Skipped { .. }));
}

#[tokio::test]
async fn a_missing_permission_is_named_and_does_not_abort_the_inspection() {
    // moto enforces IAM after the first 6 requests: three IAM calls per user, for two users.
    let moto = Moto::start_with_env(&[("INITIAL_NO_AUTH_ACTION_COUNT", "6")]);
    let (admin_key, admin_secret) = moto.iam_user("admin", &["*"]);
    let (key, secret) = moto.iam_user(
        "operator",
        &[
            "ec2:DescribeVpcEndpoints",
            "ec2:DescribeNetworkInterfaces",
            "ec2:DescribeVpcAttribute",
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeSubnets",
        ],
    );
    // The network side, created as the admin (EC2 honours moto's IAM enforcement).
    let admin = moto.sdk_config_as("us-east-1", &admin_key, &admin_secret).await;
    let ec2 = aws_sdk_ec2::Client::new(&admin);
    let vpc = ec2.create_vpc().cidr_block("10.0.0.0/16").send().await.unwrap().vpc.unwrap().vpc_id.unwrap();
    let subnet = ec2
        .create_subnet()
        .vpc_id(&vpc)
        .cidr_block("10.0.1.0/24")
        .send()
        .await
        .unwrap()
        .subnet
        .unwrap()
        .subnet_id
        .unwrap();
    let sg = ec2
        .create_security_group()
        .group_name("e")
        .description("e")
        .vpc_id(&vpc)
        .send()
        .await
        .unwrap()
        .group_id
        .unwrap();
    let vpce = ec2
        .create_vpc_endpoint()
        .vpc_endpoint_type(VpcEndpointType::Interface)
        .vpc_id(&vpc)
        .service_name("com.amazonaws.us-east-1.execute-api")
        .subnet_ids(&subnet)
        .security_group_ids(&sg)
        .send()
        .await
        .unwrap()
        .vpc_endpoint
        .unwrap()
        .vpc_endpoint_id
        .unwrap();

    let restricted = moto.sdk_config_as("us-east-1", &key, &secret).await;
    let inspector = Inspector::new(&restricted, Duration::from_secs(60));
    let facts = inspector
        .inspect(&InspectRequest {
            api_id: API.into(),
            stage: "prod".into(),
            path: "/".into(),
            method: "GET".into(),
            vpce_id: vpce.clone(),
            client_ip: None,
            node_ip: None,
            request_id: None,
            request_time: None,
            include_deployment: false,
            custom_domain: None,
            api_account_id: None,
        })
        .await;
    assert!(facts.endpoint.known().is_some(), "{:?}", facts.endpoint);
    assert!(facts.security_groups.known().is_some(), "{:?}", facts.security_groups);
    match &facts.network_acls {
        Fact::Unknown { missing_permission: Some(p), .. } => assert_eq!(p, "ec2:DescribeNetworkAcls"),
        other => panic!("expected the missing permission to be named, got {other:?}"),
    }
    assert!(
        facts.gaps.get("networkAcls").is_some_and(|g| g.contains("missing permission ec2:DescribeNetworkAcls")),
        "{:?}",
        facts.gaps
    );
    // API Gateway: moto's IAM enforcement rejects its signatures outright; whatever the
    // reason, the fact is unknown and the inspection went on.
    assert!(matches!(facts.api, Fact::Unknown { .. }), "{:?}", facts.api);
}

#[tokio::test]
async fn private_custom_domain_facts_from_recorded_responses() {
    use pvtapi_testkit::recorded::{RecordedAws, Route};
    let domain = "api.internal.example.com";
    let server = RecordedAws::start(vec![
        Route::fixture("/domainnames", Some("resourceOwner=SELF"), "get-domain-names.json"),
        Route::fixture(&format!("/domainnames/{domain}"), Some("domainNameId=a1b2c3"), "get-domain-name.json"),
        Route::fixture(
            "/domainnameaccessassociations",
            Some("resourceOwner=SELF"),
            "get-domain-name-access-associations-self.json",
        ),
        Route::fixture(
            "/domainnameaccessassociations",
            Some("resourceOwner=OTHER_ACCOUNTS"),
            "get-domain-name-access-associations-other.json",
        ),
        Route::fixture(
            &format!("/domainnames/{domain}/basepathmappings"),
            Some("domainNameId=a1b2c3"),
            "get-base-path-mappings.json",
        ),
    ])
    .await;
    let options = pvtapi_engine::aws::SdkOptions {
        region: Some("us-east-1".into()),
        endpoint_url: Some(server.endpoint_url()),
        max_attempts: 1,
        ..Default::default()
    };
    let config = pvtapi_engine::aws::load_sdk_config(&options)
        .await
        .into_builder()
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
            aws_credential_types::Credentials::new("testing", "testing", None, None, "test"),
        ))
        .build();
    let recorder = CallRecorder::default();
    let inspector = Inspector::with_interceptor(&config, Duration::from_secs(60), Some(recorder.clone()));

    let facts = inspector.custom_domain(domain).await;
    let d = facts.known().unwrap_or_else(|| panic!("custom domain facts: {facts:?}; requests: {:?}", server.seen()));
    assert_eq!(d.domain_name_id.as_deref(), Some("a1b2c3"));
    assert_eq!(d.endpoint_types, vec!["PRIVATE"]);
    assert_eq!(d.status.as_deref(), Some("AVAILABLE"));
    assert_eq!(
        d.associated_endpoints,
        vec!["vpce-0123456789abcdef0", "vpce-0aaaabbbbccccdddd"],
        "only this domain's associations"
    );
    let policy =
        pvtapi_engine::policy::PolicyDocument::parse(d.policy.as_deref().expect("domain policy")).expect("parses");
    assert_eq!(policy.statements.len(), 2);
    assert_eq!(d.base_path_mappings[0].rest_api_id.as_deref(), Some("abcde12345"));
    assert_eq!(d.base_path_mappings[0].base_path, "orders");
    assert!(recorder.calls().iter().all(|c| iam_action(c) == "apigateway:GET"), "{:?}", recorder.calls());

    // A domain that does not exist is a fact, not an error.
    let missing = inspector.custom_domain("nope.internal.example.com").await;
    assert!(missing.is_not_found(), "{missing:?}");
}

/// AWS failing the way it does (500s, throttling with each protocol's error shape, dropped
/// connections) → each fact says why it could not be read, nothing panics, and the failure is not
/// cached: the next inspection after AWS recovers reads everything.
#[tokio::test]
async fn aws_faults_are_named_gaps_and_are_not_cached() {
    use pvtapi_testkit::faults::{AwsFault, FaultProxy};
    let moto = Moto::start();
    let config = moto.sdk_config("us-east-1").await;
    let world = build_world(&config, false).await;
    let proxy = FaultProxy::start(moto.addr()).await;
    let options = pvtapi_engine::aws::SdkOptions {
        region: Some("us-east-1".into()),
        endpoint_url: Some(proxy.url()),
        max_attempts: 2,
        operation_timeout: Duration::from_secs(10),
    };
    let via_proxy = pvtapi_engine::aws::load_sdk_config(&options)
        .await
        .into_builder()
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
            aws_credential_types::Credentials::new("testing", "testing", None, None, "test"),
        ))
        .build();
    let inspector = Inspector::new(&via_proxy, Duration::from_secs(600));
    let req = request(&world, false);
    for (fault, words) in [
        (AwsFault::ServerError, &["InternalError", "InternalFailure", "500"][..]),
        (AwsFault::Throttle, &["throttled", "RequestLimitExceeded", "TooManyRequests"][..]),
        (AwsFault::Drop, &["dispatch", "connection", "io error", "unreachable", "closed"][..]),
    ] {
        proxy.set(fault);
        let before = proxy.faulted();
        let facts = inspector.inspect(&req).await;
        assert!(proxy.faulted() > before, "{fault:?}: the proxy answered");
        for (name, fact) in [
            ("api", matches!(facts.api, Fact::Unknown { .. })),
            ("endpoint", matches!(facts.endpoint, Fact::Unknown { .. })),
        ] {
            assert!(fact, "{fault:?}: {name} is Unknown: {:?}", facts.gaps);
        }
        let gaps = format!("{:?}", facts.gaps).to_ascii_lowercase();
        assert!(
            words.iter().any(|w| gaps.contains(&w.to_ascii_lowercase())),
            "{fault:?}: the gaps name the failure ({words:?}): {gaps}"
        );
    }
    proxy.set(AwsFault::None);
    let facts = inspector.inspect(&req).await;
    assert!(facts.gaps.is_empty(), "after recovery every fact is read (nothing failed was cached): {:?}", facts.gaps);
    assert!(facts.api.known().is_some() && facts.endpoint.known().is_some() && facts.client.known().is_some());
}

/// A healthy run accepts older facts than a failing one: the same inspector reads nothing
/// again within the healthy age, and everything again when only fresh facts will do.
#[tokio::test]
async fn cached_facts_are_reused_only_while_young_enough_for_the_caller() {
    let moto = Moto::start();
    let config = moto.sdk_config("us-east-1").await;
    let world = build_world(&config, false).await;
    let recorder = CallRecorder::default();
    let inspector = Inspector::with_interceptor(&config, Duration::from_secs(600), Some(recorder.clone()));
    let req = request(&world, false);
    let first = inspector.with_max_age(Duration::from_secs(600)).inspect(&req).await;
    assert!(first.gaps.is_empty(), "{:?}", first.gaps);
    let cold = recorder.calls().len();
    assert!(cold >= 5, "a cold inspection reads AWS: {cold} calls");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let again = inspector.with_max_age(Duration::from_secs(600)).inspect(&req).await;
    assert_eq!(recorder.calls().len(), cold, "within the healthy age nothing is read again");
    assert_eq!(again.endpoint, first.endpoint);
    let fresh = inspector.with_max_age(Duration::from_secs(1)).inspect(&req).await;
    assert!(fresh.gaps.is_empty());
    let calls = recorder.calls().len();
    // Subnet CIDRs never change and stay cached; every other fact is read again.
    assert!(calls - cold >= cold - 2, "older than 1 s: read again ({cold} cold, then {} more)", calls - cold);
}

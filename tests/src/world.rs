//! The AWS side most end-to-end tests need, built on moto through the real SDK: a VPC with an
//! endpoint subnet and a client subnet, a security group for each side, the client's network
//! interface, an execute-api interface endpoint, and a PRIVATE REST API associated with it, with
//! `GET /health` (MOCK integration) deployed to stage `prod`. Tests add what is special to them.

use std::net::IpAddr;

use aws_sdk_apigateway::types::{EndpointConfiguration, EndpointType, IntegrationType};
use aws_sdk_ec2::types::{IpPermission, UserIdGroupPair, VpcEndpointType};

/// The REST API id every world uses (moto honours the `_custom_id_` tag).
pub const API_ID: &str = "abcde12345";
/// The client's (probe pod's) private address, on its own interface in the client subnet.
pub const CLIENT_IP: &str = "10.0.2.15";

/// What varies between worlds. `VPCE` in the policies is replaced with the endpoint id.
#[derive(Clone, Debug)]
pub struct WorldSpec {
    pub resource_policy: Option<String>,
    pub endpoint_policy: Option<String>,
    /// The endpoint's group allows TCP 443 from the client's group.
    pub endpoint_allows_443_from_client: bool,
    /// `authorizationType` of `GET /health` (`NONE`, `AWS_IAM`, …).
    pub method_authorization: String,
    /// `GET /health` requires an API key.
    pub api_key_required: bool,
    /// The API's default execute-api endpoint is off (`disableExecuteApiEndpoint`).
    pub disable_execute_api_endpoint: bool,
}

impl Default for WorldSpec {
    fn default() -> Self {
        WorldSpec {
            resource_policy: None,
            endpoint_policy: None,
            endpoint_allows_443_from_client: true,
            method_authorization: "NONE".into(),
            api_key_required: false,
            disable_execute_api_endpoint: false,
        }
    }
}

/// The ids moto generated.
#[derive(Clone, Debug)]
pub struct World {
    pub vpc: String,
    pub subnet_endpoint: String,
    pub subnet_client: String,
    pub sg_endpoint: String,
    pub sg_client: String,
    pub client_ip: IpAddr,
    pub vpce: String,
}

fn fail<T>(what: &str) -> impl FnOnce(T) -> String {
    let what = what.to_owned();
    move |_| what
}

/// Builds the world; panics naming the call that failed (a fixture must not half-exist).
pub async fn build(config: &aws_config::SdkConfig, spec: &WorldSpec) -> World {
    build_cross_account(config, config, spec).await
}

/// As [`build`], with the REST API created through `api` — e.g. a role assumed in another
/// account (moto keeps each account's resources apart), the article's cross-account setup.
pub async fn build_cross_account(
    config: &aws_config::SdkConfig,
    api: &aws_config::SdkConfig,
    spec: &WorldSpec,
) -> World {
    build_inner(config, api, spec).await.unwrap_or_else(|call| panic!("building the moto world: {call} failed"))
}

async fn build_inner(
    config: &aws_config::SdkConfig,
    api_config: &aws_config::SdkConfig,
    spec: &WorldSpec,
) -> Result<World, String> {
    let ec2 = aws_sdk_ec2::Client::new(config);
    let vpc = ec2.create_vpc().cidr_block("10.0.0.0/16").send().await.map_err(fail("CreateVpc"))?;
    let vpc = vpc.vpc.and_then(|v| v.vpc_id).ok_or("CreateVpc id")?;
    let mut subnets = Vec::new();
    // The network side lives in the region of `config` (an endpoint in another region than the
    // API is the cross-region case).
    let region = config.region().map(|r| r.to_string()).ok_or("the SDK config has no region")?;
    for (cidr, az) in [("10.0.1.0/24", format!("{region}a")), ("10.0.2.0/24", format!("{region}b"))] {
        let out = ec2.create_subnet().vpc_id(&vpc).cidr_block(cidr).availability_zone(az).send().await;
        subnets.push(out.map_err(fail("CreateSubnet"))?.subnet.and_then(|s| s.subnet_id).ok_or("CreateSubnet id")?);
    }
    let (subnet_endpoint, subnet_client) = (subnets[0].clone(), subnets[1].clone());
    let mut groups = Vec::new();
    for name in ["endpoint", "client"] {
        let out = ec2.create_security_group().group_name(name).description(name).vpc_id(&vpc).send().await;
        groups.push(out.map_err(fail("CreateSecurityGroup"))?.group_id.ok_or("CreateSecurityGroup id")?);
    }
    let (sg_endpoint, sg_client) = (groups[0].clone(), groups[1].clone());
    if spec.endpoint_allows_443_from_client {
        let rule = IpPermission::builder()
            .ip_protocol("tcp")
            .from_port(443)
            .to_port(443)
            .user_id_group_pairs(UserIdGroupPair::builder().group_id(&sg_client).build())
            .build();
        ec2.authorize_security_group_ingress()
            .group_id(&sg_endpoint)
            .ip_permissions(rule)
            .send()
            .await
            .map_err(fail("AuthorizeSecurityGroupIngress"))?;
    }
    ec2.create_network_interface()
        .subnet_id(&subnet_client)
        .private_ip_address(CLIENT_IP)
        .groups(&sg_client)
        .send()
        .await
        .map_err(fail("CreateNetworkInterface"))?;
    let vpce = ec2
        .create_vpc_endpoint()
        .vpc_endpoint_type(VpcEndpointType::Interface)
        .vpc_id(&vpc)
        .service_name(format!("com.amazonaws.{region}.execute-api"))
        .subnet_ids(&subnet_endpoint)
        .security_group_ids(&sg_endpoint)
        .private_dns_enabled(true)
        .set_policy_document(spec.endpoint_policy.clone())
        .send()
        .await
        .map_err(fail("CreateVpcEndpoint"))?
        .vpc_endpoint
        .and_then(|e| e.vpc_endpoint_id)
        .ok_or("CreateVpcEndpoint id")?;

    let apigw = aws_sdk_apigateway::Client::new(api_config);
    apigw
        .create_rest_api()
        .name("orders")
        .tags("_custom_id_", API_ID)
        .set_policy(spec.resource_policy.as_ref().map(|p| p.replace("VPCE", &vpce)))
        .disable_execute_api_endpoint(spec.disable_execute_api_endpoint)
        .endpoint_configuration(
            EndpointConfiguration::builder().types(EndpointType::Private).vpc_endpoint_ids(&vpce).build(),
        )
        .send()
        .await
        .map_err(fail("CreateRestApi"))?;
    let resources = apigw.get_resources().rest_api_id(API_ID).send().await.map_err(fail("GetResources"))?;
    let root = resources.items().first().and_then(|r| r.id()).ok_or("GetResources root")?.to_owned();
    let health = apigw
        .create_resource()
        .rest_api_id(API_ID)
        .parent_id(&root)
        .path_part("health")
        .send()
        .await
        .map_err(fail("CreateResource"))?
        .id
        .ok_or("CreateResource id")?;
    apigw
        .put_method()
        .rest_api_id(API_ID)
        .resource_id(&health)
        .http_method("GET")
        .authorization_type(&spec.method_authorization)
        .api_key_required(spec.api_key_required)
        .send()
        .await
        .map_err(fail("PutMethod"))?;
    apigw
        .put_integration()
        .rest_api_id(API_ID)
        .resource_id(&health)
        .http_method("GET")
        .r#type(IntegrationType::Mock)
        .send()
        .await
        .map_err(fail("PutIntegration"))?;
    apigw.create_deployment().rest_api_id(API_ID).stage_name("prod").send().await.map_err(fail("CreateDeployment"))?;
    let client_ip = CLIENT_IP.parse().map_err(fail("client ip"))?;
    Ok(World { vpc, subnet_endpoint, subnet_client, sg_endpoint, sg_client, client_ip, vpce })
}

/// Gives each of `ips` its own network interface in the client subnet with the client's group —
/// what the VPC CNI does for pods with Security Groups for Pods (a branch ENI per pod), so the
/// security-group and NACL analysis find a probe pod's address whatever the CNI gave it.
///
/// Why not one ENI with secondary addresses (the VPC CNI's default mode, and what the engine's
/// `addresses.private-ip-address` filter finds on AWS): moto 5.2.5 matches that filter against the
/// primary address only (`elastic_network_interfaces.py`, `get_filter_value`).
pub async fn add_pod_interfaces(config: &aws_config::SdkConfig, world: &World, ips: &[std::net::Ipv4Addr]) {
    use futures::StreamExt;
    let ec2 = aws_sdk_ec2::Client::new(config);
    let results: Vec<Result<(), String>> = futures::stream::iter(ips.iter().copied())
        .map(|ip| {
            let ec2 = ec2.clone();
            async move {
                ec2.create_network_interface()
                    .subnet_id(&world.subnet_client)
                    .private_ip_address(ip.to_string())
                    .groups(&world.sg_client)
                    .description("pod branch interface")
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("CreateNetworkInterface {ip}: {e:?}"))
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    if let Some(Err(e)) = results.into_iter().find(Result::is_err) {
        panic!("building the moto world: {e}");
    }
}

/// The endpoint's DNS names as moto reports them (`DnsEntries`; not AWS-shaped, see
/// tests/scenarios/README.md): the names an operator hands its probe pods as `--vpce-dns`.
pub async fn endpoint_dns_names(config: &aws_config::SdkConfig, vpce: &str) -> Vec<String> {
    let ec2 = aws_sdk_ec2::Client::new(config);
    let out = ec2
        .describe_vpc_endpoints()
        .vpc_endpoint_ids(vpce)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeVpcEndpoints {vpce}: {e:?}"));
    out.vpc_endpoints()
        .iter()
        .flat_map(|e| e.dns_entries())
        .filter_map(|d| d.dns_name())
        .map(|n| n.trim_start_matches("*.").to_owned())
        .collect()
}

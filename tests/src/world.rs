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
    let region = region_of(config)?;
    for (cidr, az) in [("10.0.1.0/24", format!("{region}a")), ("10.0.2.0/24", format!("{region}b"))] {
        let out = ec2.create_subnet().vpc_id(&vpc).cidr_block(cidr).availability_zone(az).send().await;
        subnets.push(out.map_err(fail("CreateSubnet"))?.subnet.and_then(|s| s.subnet_id).ok_or("CreateSubnet id")?);
    }
    let (subnet_endpoint, subnet_client) = (subnets[0].clone(), subnets[1].clone());
    let sg_endpoint = create_group(&ec2, &vpc, "endpoint").await?;
    let sg_client = create_group(&ec2, &vpc, "client").await?;
    if spec.endpoint_allows_443_from_client {
        allow_443_from(&ec2, &sg_endpoint, &sg_client).await?;
    }
    ec2.create_network_interface()
        .subnet_id(&subnet_client)
        .private_ip_address(CLIENT_IP)
        .groups(&sg_client)
        .send()
        .await
        .map_err(fail("CreateNetworkInterface"))?;
    let vpce = create_endpoint(&ec2, &vpc, &region, &subnet_endpoint, &sg_endpoint, true, spec.endpoint_policy.clone())
        .await?;

    let apigw = aws_sdk_apigateway::Client::new(api_config);
    let policy = spec.resource_policy.as_ref().map(|p| p.replace("VPCE", &vpce));
    let settings = ApiSettings {
        method_authorization: &spec.method_authorization,
        api_key_required: spec.api_key_required,
        disable_execute_api_endpoint: spec.disable_execute_api_endpoint,
    };
    create_api(&apigw, API_ID, "orders", policy, std::slice::from_ref(&vpce), "prod", &settings).await?;
    let client_ip = CLIENT_IP.parse().map_err(fail("client ip"))?;
    Ok(World { vpc, subnet_endpoint, subnet_client, sg_endpoint, sg_client, client_ip, vpce })
}

fn region_of(config: &aws_config::SdkConfig) -> Result<String, String> {
    config.region().map(|r| r.to_string()).ok_or_else(|| "the SDK config has no region".to_owned())
}

async fn create_group(ec2: &aws_sdk_ec2::Client, vpc: &str, name: &str) -> Result<String, String> {
    let out = ec2.create_security_group().group_name(name).description(name).vpc_id(vpc).send().await;
    Ok(out.map_err(fail("CreateSecurityGroup"))?.group_id.ok_or("CreateSecurityGroup id")?)
}

/// Inbound TCP 443 to `group` from members of `from`.
async fn allow_443_from(ec2: &aws_sdk_ec2::Client, group: &str, from: &str) -> Result<(), String> {
    let rule = IpPermission::builder()
        .ip_protocol("tcp")
        .from_port(443)
        .to_port(443)
        .user_id_group_pairs(UserIdGroupPair::builder().group_id(from).build())
        .build();
    ec2.authorize_security_group_ingress()
        .group_id(group)
        .ip_permissions(rule)
        .send()
        .await
        .map_err(fail("AuthorizeSecurityGroupIngress"))?;
    Ok(())
}

async fn create_endpoint(
    ec2: &aws_sdk_ec2::Client,
    vpc: &str,
    region: &str,
    subnet: &str,
    group: &str,
    private_dns: bool,
    policy: Option<String>,
) -> Result<String, String> {
    ec2.create_vpc_endpoint()
        .vpc_endpoint_type(VpcEndpointType::Interface)
        .vpc_id(vpc)
        .service_name(format!("com.amazonaws.{region}.execute-api"))
        .subnet_ids(subnet)
        .security_group_ids(group)
        .private_dns_enabled(private_dns)
        .set_policy_document(policy)
        .send()
        .await
        .map_err(fail("CreateVpcEndpoint"))?
        .vpc_endpoint
        .and_then(|e| e.vpc_endpoint_id)
        .ok_or_else(|| "CreateVpcEndpoint id".to_owned())
}

/// The method's authorization and the API's default endpoint.
struct ApiSettings<'a> {
    method_authorization: &'a str,
    api_key_required: bool,
    disable_execute_api_endpoint: bool,
}

/// No authorization, no API key, the default execute-api endpoint on.
const OPEN: ApiSettings<'static> =
    ApiSettings { method_authorization: "NONE", api_key_required: false, disable_execute_api_endpoint: false };

/// A PRIVATE REST API `id` (moto honours the `_custom_id_` tag) associated with `vpce_ids`, with
/// `GET /health` (MOCK integration) deployed to `stage`.
async fn create_api(
    apigw: &aws_sdk_apigateway::Client,
    id: &str,
    name: &str,
    resource_policy: Option<String>,
    vpce_ids: &[String],
    stage: &str,
    settings: &ApiSettings<'_>,
) -> Result<(), String> {
    apigw
        .create_rest_api()
        .name(name)
        .tags("_custom_id_", id)
        .set_policy(resource_policy)
        .disable_execute_api_endpoint(settings.disable_execute_api_endpoint)
        .endpoint_configuration(
            EndpointConfiguration::builder()
                .types(EndpointType::Private)
                .set_vpc_endpoint_ids(Some(vpce_ids.to_vec()))
                .build(),
        )
        .send()
        .await
        .map_err(fail("CreateRestApi"))?;
    let resources = apigw.get_resources().rest_api_id(id).send().await.map_err(fail("GetResources"))?;
    let root = resources.items().first().and_then(|r| r.id()).ok_or("GetResources root")?.to_owned();
    let health = apigw
        .create_resource()
        .rest_api_id(id)
        .parent_id(&root)
        .path_part("health")
        .send()
        .await
        .map_err(fail("CreateResource"))?
        .id
        .ok_or("CreateResource id")?;
    apigw
        .put_method()
        .rest_api_id(id)
        .resource_id(&health)
        .http_method("GET")
        .authorization_type(settings.method_authorization)
        .api_key_required(settings.api_key_required)
        .send()
        .await
        .map_err(fail("PutMethod"))?;
    apigw
        .put_integration()
        .rest_api_id(id)
        .resource_id(&health)
        .http_method("GET")
        .r#type(IntegrationType::Mock)
        .send()
        .await
        .map_err(fail("PutIntegration"))?;
    apigw.create_deployment().rest_api_id(id).stage_name(stage).send().await.map_err(fail("CreateDeployment"))?;
    Ok(())
}

/// One more private REST API in a world, beside [`API_ID`]: `GET /health` (MOCK) deployed to
/// `stage`, associated with `vpce_ids`, with its own resource policy (taken as given).
#[derive(Clone, Debug)]
pub struct ApiSpec {
    pub id: String,
    pub name: String,
    pub resource_policy: Option<String>,
    pub vpce_ids: Vec<String>,
    pub stage: String,
}

/// Creates the API of `spec`; panics naming the call that failed.
pub async fn add_api(config: &aws_config::SdkConfig, spec: &ApiSpec) {
    let apigw = aws_sdk_apigateway::Client::new(config);
    create_api(&apigw, &spec.id, &spec.name, spec.resource_policy.clone(), &spec.vpce_ids, &spec.stage, &OPEN)
        .await
        .unwrap_or_else(|call| panic!("building the moto world: {call} failed (API {})", spec.id));
}

/// Another execute-api interface endpoint in the world's endpoint subnet, with a security group
/// of its own (`name`) that allows TCP 443 from the client's group or not, and private DNS on or
/// off (AWS lets one endpoint per service and VPC have it on). Returns the endpoint's id and its
/// group's.
pub async fn add_endpoint(
    config: &aws_config::SdkConfig,
    world: &World,
    name: &str,
    allows_443_from_client: bool,
    private_dns: bool,
) -> (String, String) {
    let ec2 = aws_sdk_ec2::Client::new(config);
    let made = async {
        let region = region_of(config)?;
        let group = create_group(&ec2, &world.vpc, name).await?;
        if allows_443_from_client {
            allow_443_from(&ec2, &group, &world.sg_client).await?;
        }
        let vpce =
            create_endpoint(&ec2, &world.vpc, &region, &world.subnet_endpoint, &group, private_dns, None).await?;
        Ok::<_, String>((vpce, group))
    };
    made.await.unwrap_or_else(|call| panic!("building the moto world: {call} failed (endpoint {name})"))
}

/// Gives each of `ips` its own network interface in the client subnet with the client's group —
/// what the VPC CNI does for pods with Security Groups for Pods (a branch ENI per pod), so the
/// security-group and NACL analysis find a probe pod's address whatever the CNI gave it.
///
/// Why not one ENI with secondary addresses (the VPC CNI's default mode, and what the engine's
/// `addresses.private-ip-address` filter finds on AWS): moto 5.2.5 matches that filter against the
/// primary address only (`elastic_network_interfaces.py`, `get_filter_value`).
pub async fn add_pod_interfaces(config: &aws_config::SdkConfig, world: &World, ips: &[std::net::Ipv4Addr]) {
    add_interfaces(config, &world.subnet_client, ips, &world.sg_client, "pod interface").await;
}

/// One network interface per address in `subnet` with `group` and `description` (the VPC
/// resource controller describes a Security Groups for Pods branch as `aws-k8s-branch-eni`;
/// moto 5.2.5 ignores `InterfaceType`, which AWS sets to `branch` for those).
pub async fn add_interfaces(
    config: &aws_config::SdkConfig,
    subnet: &str,
    ips: &[std::net::Ipv4Addr],
    group: &str,
    description: &str,
) {
    use futures::StreamExt;
    let ec2 = aws_sdk_ec2::Client::new(config);
    let results: Vec<Result<(), String>> = futures::stream::iter(ips.iter().copied())
        .map(|ip| {
            let ec2 = ec2.clone();
            async move {
                ec2.create_network_interface()
                    .subnet_id(subnet)
                    .private_ip_address(ip.to_string())
                    .groups(group)
                    .description(description)
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

/// A security group `name` in `vpc`; `allow_443_from`: groups whose members it admits on TCP 443.
pub async fn add_group(config: &aws_config::SdkConfig, vpc: &str, name: &str, allow_443_from: &[&str]) -> String {
    let ec2 = aws_sdk_ec2::Client::new(config);
    let made = async {
        let group = create_group(&ec2, vpc, name).await?;
        for from in allow_443_from {
            self::allow_443_from(&ec2, &group, from).await?;
        }
        Ok::<_, String>(group)
    };
    made.await.unwrap_or_else(|call| panic!("building the moto world: {call} failed (group {name})"))
}

/// A centralized execute-api endpoint: in a VPC of its own (`vpc_cidr`, one subnet), reached from the world's VPC over a Transit Gateway or peering — the case where the
/// VPC CNI source-NATs pod traffic. Its group admits TCP 443 from `allow_443_from`.
#[derive(Clone, Debug)]
pub struct CentralizedEndpoint {
    pub vpc: String,
    pub subnet: String,
    pub group: String,
    pub vpce: String,
}

pub async fn add_centralized_endpoint(
    config: &aws_config::SdkConfig,
    vpc_cidr: &str,
    subnet_cidr: &str,
    allow_443_from: &[&str],
) -> CentralizedEndpoint {
    let ec2 = aws_sdk_ec2::Client::new(config);
    let made = async {
        let region = region_of(config)?;
        let vpc = ec2.create_vpc().cidr_block(vpc_cidr).send().await.map_err(fail("CreateVpc"))?;
        let vpc = vpc.vpc.and_then(|v| v.vpc_id).ok_or("CreateVpc id")?;
        let subnet = ec2.create_subnet().vpc_id(&vpc).cidr_block(subnet_cidr).send().await;
        let subnet = subnet.map_err(fail("CreateSubnet"))?.subnet.and_then(|s| s.subnet_id).ok_or("CreateSubnet id")?;
        let group = create_group(&ec2, &vpc, "central-endpoint").await?;
        for from in allow_443_from {
            self::allow_443_from(&ec2, &group, from).await?;
        }
        // moto 5.2.5 gives endpoint interfaces a random 10.x.y.z (see `endpoint_address`): one
        // inside the world's VPC (10.0.0.0/16, 1 in 255) would not be "another VPC's" address.
        for _ in 0..8 {
            let vpce = create_endpoint(&ec2, &vpc, &region, &subnet, &group, false, None).await?;
            let inside = interface_addresses(&ec2, &vpce).await?.iter().any(|ip| ip.octets()[..2] == [10, 0]);
            if !inside {
                return Ok::<_, String>(CentralizedEndpoint { vpc, subnet, group, vpce });
            }
            ec2.delete_vpc_endpoints().vpc_endpoint_ids(&vpce).send().await.map_err(fail("DeleteVpcEndpoints"))?;
        }
        Err("CreateVpcEndpoint (8 endpoints with an address inside 10.0.0.0/16)".to_owned())
    };
    made.await.unwrap_or_else(|call| panic!("building the moto world: {call} failed (centralized endpoint)"))
}

/// The ids of the endpoint's network interfaces.
async fn interface_ids(ec2: &aws_sdk_ec2::Client, vpce: &str) -> Result<Vec<String>, String> {
    let endpoints = ec2.describe_vpc_endpoints().vpc_endpoint_ids(vpce).send().await;
    Ok(endpoints
        .map_err(fail("DescribeVpcEndpoints"))?
        .vpc_endpoints()
        .iter()
        .flat_map(|e| e.network_interface_ids())
        .cloned()
        .collect())
}

/// The private IPv4 addresses of the endpoint's interfaces.
async fn interface_addresses(ec2: &aws_sdk_ec2::Client, vpce: &str) -> Result<Vec<std::net::Ipv4Addr>, String> {
    let enis = interface_ids(ec2, vpce).await?;
    let out = ec2.describe_network_interfaces().set_network_interface_ids(Some(enis)).send().await;
    Ok(out
        .map_err(fail("DescribeNetworkInterfaces"))?
        .network_interfaces()
        .iter()
        .flat_map(|n| {
            n.private_ip_address()
                .into_iter()
                .chain(n.private_ip_addresses().iter().filter_map(|a| a.private_ip_address()))
        })
        .filter_map(|a| a.parse().ok())
        .collect())
}

/// Gives the endpoint's (first) network interface the address `ip` of its subnet and returns it:
/// where a test serves the API and points the API host, as AWS would from the endpoint's subnet.
///
/// Why an added address: moto 5.2.5 gives an endpoint's interfaces a random `10.x.y.z` outside
/// their subnet (`vpcs.py`: `create_network_interface(subnet_id, random_private_ip())`), which
/// the node has no route to; AWS assigns them from the subnet. `AssignPrivateIpAddresses` adds
/// `ip` as the interface's second address, so the endpoint's facts list it (the moto one stays).
pub async fn endpoint_address(
    config: &aws_config::SdkConfig,
    vpce: &str,
    ip: std::net::Ipv4Addr,
) -> std::net::Ipv4Addr {
    let ec2 = aws_sdk_ec2::Client::new(config);
    let enis = interface_ids(&ec2, vpce).await.unwrap_or_else(|call| panic!("{call} {vpce} failed"));
    let eni = enis.first().cloned().unwrap_or_else(|| panic!("moto gave {vpce} no network interface"));
    ec2.assign_private_ip_addresses()
        .network_interface_id(&eni)
        .private_ip_addresses(ip.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("AssignPrivateIpAddresses {ip} to {eni}: {e:?}"));
    ip
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

//! Read-only AWS inspection: the facts that explain what the probe saw.
//!
//! Every call is independent and fallible on its own: an `AccessDenied` becomes an unknown fact
//! naming the missing IAM action, a throttle is retried by the SDK (standard mode, backoff) and
//! then reported, a missing resource is a fact. Results are cached per resource for a TTL with
//! single-flight (moka), so N checks that share one API and endpoint cost one call per resource
//! per TTL rather than N.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sdk_ec2::types::{Filter, VpcAttributeName};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use moka::future::Cache;

use crate::network::{IpProtocol, NaclAction, NaclEntry, NetworkAcl, SecurityGroup, SgPeer, SgRule};

use super::facts::{
    ApiFacts, AwsFacts, BasePathMapping, ClientFacts, CustomDomainFacts, DeploymentFacts, EndpointDnsEntry,
    EndpointFacts, ExecutionLogLookup, Fact, InterfaceFacts, MethodFacts, StageFacts, VpcCidrs, VpcDnsAttributes,
};

/// What to inspect for one check.
#[derive(Clone, Debug)]
pub struct InspectRequest {
    pub api_id: String,
    pub stage: String,
    /// The checked resource path (`/items/42`), matched against templates (`/items/{id}`).
    pub path: String,
    pub method: String,
    pub vpce_id: String,
    /// The probe's source address (the pod IP), to find its interface and security groups.
    pub client_ip: Option<IpAddr>,
    /// The probe pod's host address (`status.hostIP`, the node's primary address), to find the
    /// node's interface: the source the endpoint sees when the VPC CNI source-NATs pod traffic.
    pub node_ip: Option<IpAddr>,
    /// `x-amzn-RequestId` of the probe's invoke, to look up in the execution logs.
    pub request_id: Option<String>,
    /// When the invoke happened; the log search window ends a little after it.
    pub request_time: Option<SystemTime>,
    /// Also read the stage's deployment (one more call; for redeploy evidence).
    pub include_deployment: bool,
    /// The private custom domain to read, for `access: customDomain`.
    pub custom_domain: Option<String>,
    /// The 12-digit account that owns the API, when known (`spec.api.accountId`, or the account
    /// of `spec.aws.apiRoleArn`); the diagnosis builds execute-api ARNs with it.
    pub api_account_id: Option<String>,
}

/// How far back the execution-log search reaches.
pub const LOG_WINDOW: Duration = Duration::from_secs(15 * 60);

/// The inspector: SDK clients plus per-resource caches.
#[derive(Clone)]
pub struct Inspector {
    region: String,
    /// How old a cached fact may be for this inspector's callers ([`Inspector::with_max_age`]).
    max_age: Duration,
    apigw: aws_sdk_apigateway::Client,
    ec2: aws_sdk_ec2::Client,
    logs: aws_sdk_cloudwatchlogs::Client,
    apis: FactCache<ApiFacts>,
    stages: FactCache<StageFacts>,
    deployments: FactCache<DeploymentFacts>,
    methods: FactCache<MethodFacts>,
    endpoints: FactCache<EndpointFacts>,
    vpcs: FactCache<VpcDnsAttributes>,
    vpc_cidrs: FactCache<VpcCidrs>,
    clients: FactCache<ClientFacts>,
    groups: FactCache<Vec<SecurityGroup>>,
    interfaces: FactCache<Vec<InterfaceFacts>>,
    domains: FactCache<CustomDomainFacts>,
    acls: FactCache<Vec<NetworkAcl>>,
    subnets: Cache<String, std::collections::BTreeMap<String, String>>,
}

impl std::fmt::Debug for Inspector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inspector").field("region", &self.region).finish_non_exhaustive()
    }
}

fn cache<V: Clone + Send + Sync + 'static>(ttl: Duration) -> Cache<String, V> {
    Cache::builder().max_capacity(10_000).time_to_live(ttl).build()
}

/// A cached value and when it was read.
#[derive(Clone)]
struct Timed<V> {
    at: std::time::Instant,
    value: V,
}

type FactCache<T> = Cache<String, Timed<Fact<T>>>;

/// The cached fact when it is at most `max_age` old, else `load` (one load for concurrent
/// askers). A fact that could not be read (`Unknown`: throttling, a 5xx, a network error, a
/// missing permission) is not kept: the next run asks AWS again instead of repeating a
/// transient failure for a whole TTL.
async fn remember_unless_unknown<T: Clone + Send + Sync + 'static>(
    cache: &FactCache<T>,
    key: String,
    max_age: Duration,
    load: impl std::future::Future<Output = Fact<T>>,
) -> Fact<T> {
    if let Some(t) = cache.get(&key).await {
        if t.at.elapsed() <= max_age {
            return t.value;
        }
        cache.invalidate(&key).await;
    }
    // Boxed: the SDK call futures are large, and a whole inspection joins a dozen of them (a
    // debug build's 2 MiB test-thread stack overflowed without this).
    let load = Box::pin(load);
    let t = cache.get_with(key.clone(), async { Timed { at: std::time::Instant::now(), value: load.await } }).await;
    if matches!(t.value, Fact::Unknown { .. }) {
        cache.invalidate(&key).await;
    }
    t.value
}

/// A failed call, reduced to what a report needs.
fn failure<T, E, R>(err: &SdkError<E, R>, action: &str, what: &str) -> Fact<T>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let code = err.code().unwrap_or("");
    let message = err.message().unwrap_or("");
    let lower = code.to_ascii_lowercase();
    if lower.contains("notfound") || lower.ends_with(".malformed") {
        return Fact::NotFound { detail: format!("{what}: {code} {message}").trim().to_owned() };
    }
    if lower.contains("accessdenied") || lower == "unauthorizedoperation" || lower == "unauthorizedexception" {
        return Fact::Unknown { reason: format!("{what}: access denied"), missing_permission: Some(action.to_owned()) };
    }
    if lower.contains("throttl") || lower == "requestlimitexceeded" || lower == "toomanyrequestsexception" {
        return Fact::Unknown {
            reason: format!("{what}: throttled by AWS after retries ({code})"),
            missing_permission: None,
        };
    }
    let detail = if code.is_empty() {
        aws_smithy_types::error::display::DisplayErrorContext(err).to_string()
    } else {
        format!("{code}: {message}")
    };
    // Cap: SDK errors can embed whole response bodies.
    let detail: String = detail.chars().take(300).collect();
    Fact::Unknown { reason: format!("{what}: {detail}"), missing_permission: None }
}

fn epoch(t: Option<&aws_smithy_types::DateTime>) -> Option<i64> {
    t.map(|d| d.secs())
}

/// Does the concrete `path` match the resource template `template` (`{id}`, `{proxy+}`)?
pub fn path_matches(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let p: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    for (i, seg) in t.iter().enumerate() {
        if seg.starts_with('{') && seg.ends_with("+}") {
            return p.len() > i;
        }
        match p.get(i) {
            Some(ps) if seg.starts_with('{') && seg.ends_with('}') && !ps.is_empty() => {}
            Some(ps) if ps == seg => {}
            _ => return false,
        }
    }
    t.len() == p.len()
}

impl Inspector {
    /// Builds the clients from an SDK configuration; `ttl` bounds how stale a cached fact may be.
    pub fn new(config: &aws_config::SdkConfig, ttl: Duration) -> Inspector {
        Inspector::with_interceptor(config, ttl, None)
    }

    /// As [`Inspector::new`], with an interceptor on every client (tests record calls with it).
    pub fn with_interceptor(
        config: &aws_config::SdkConfig,
        ttl: Duration,
        interceptor: Option<super::CallRecorder>,
    ) -> Inspector {
        Inspector::cross_account(config, config, ttl, interceptor)
    }

    /// For an API owned by another account: `network` (the workload's account) reads the
    /// endpoint, VPC, ENIs, security groups and NACLs; `api` (usually an assumed role in the
    /// API's account, see [`super::assume_role`]) reads the API, stage, methods, domains and logs.
    pub fn cross_account(
        network: &aws_config::SdkConfig,
        api: &aws_config::SdkConfig,
        ttl: Duration,
        interceptor: Option<super::CallRecorder>,
    ) -> Inspector {
        let config = network;
        let mut apigw = aws_sdk_apigateway::config::Builder::from(api);
        let mut ec2 = aws_sdk_ec2::config::Builder::from(network);
        let mut logs = aws_sdk_cloudwatchlogs::config::Builder::from(api);
        if let Some(i) = interceptor {
            apigw = apigw.interceptor(i.clone());
            ec2 = ec2.interceptor(i.clone());
            logs = logs.interceptor(i);
        }
        Inspector {
            region: config.region().map(|r| r.to_string()).unwrap_or_default(),
            max_age: ttl,
            apigw: aws_sdk_apigateway::Client::from_conf(apigw.build()),
            ec2: aws_sdk_ec2::Client::from_conf(ec2.build()),
            logs: aws_sdk_cloudwatchlogs::Client::from_conf(logs.build()),
            apis: cache(ttl),
            stages: cache(ttl),
            deployments: cache(ttl),
            methods: cache(ttl),
            endpoints: cache(ttl),
            vpcs: cache(ttl),
            vpc_cidrs: cache(ttl),
            clients: cache(ttl),
            groups: cache(ttl),
            interfaces: cache(ttl),
            domains: cache(ttl),
            acls: cache(ttl),
            subnets: cache(ttl),
        }
    }

    /// The same clients and caches, reading cached facts only while they are at most `max_age`
    /// old (never older than the TTL the inspector was built with: the caches evict then). A
    /// healthy run can accept older facts than a failing one, whose facts explain the failure.
    pub fn with_max_age(&self, max_age: Duration) -> Inspector {
        Inspector { max_age, ..self.clone() }
    }

    /// Only what a probe needs before it runs — the endpoint (its DNS names, private DNS) and
    /// the API (its endpoint associations, for `auto` access) — from the same caches as
    /// [`Inspector::inspect`], without the network layer (that needs the probe's address).
    pub async fn access_facts(&self, api_id: &str, vpce_id: &str) -> (Fact<ApiFacts>, Fact<EndpointFacts>) {
        tokio::join!(self.api(api_id), self.endpoint(vpce_id))
    }

    /// Inspects everything for one check. Never fails: gaps are facts too.
    pub async fn inspect(&self, req: &InspectRequest) -> AwsFacts {
        let (api, stage, endpoint, method) =
            tokio::join!(self.api(&req.api_id), self.stage(req), self.endpoint(&req.vpce_id), self.method(req));
        let deployment = match stage.known().and_then(|s| s.deployment_id.clone()) {
            Some(id) if req.include_deployment => self.deployment(&req.api_id, &id).await,
            Some(_) => Fact::Skipped { reason: "not needed for this run".into() },
            None => Fact::Skipped { reason: "the stage has no known deployment".into() },
        };
        let vpc_id = endpoint.known().and_then(|e| e.vpc_id.clone());
        let (vpc, interfaces) = match &vpc_id {
            Some(vpc_id) => tokio::join!(self.vpc(vpc_id), self.vpc_interfaces(vpc_id)),
            None => {
                let reason = "the endpoint's VPC is unknown".to_owned();
                (Fact::Skipped { reason: reason.clone() }, Fact::Skipped { reason })
            }
        };
        let mut endpoint = endpoint;
        if let (Fact::Known { value: e }, Some(all)) = (&mut endpoint, interfaces.known()) {
            e.interfaces = all.iter().filter(|i| e.network_interface_ids.contains(&i.id)).cloned().collect();
        }
        let known_interface =
            |ip: IpAddr| interfaces.known().and_then(|all| all.iter().find(|i| i.private_ips.contains(&ip))).cloned();
        let client = match req.client_ip {
            Some(ip) => match known_interface(ip) {
                Some(interface) => Fact::Known { value: ClientFacts { ip, interface, source: None } },
                None => self.client(ip).await,
            },
            None => Fact::Skipped { reason: "no client address (the probe's pod IP) was given".into() },
        };
        let node = match req.node_ip {
            Some(ip) if Some(ip) == req.client_ip => client.clone(),
            Some(ip) => match known_interface(ip) {
                Some(interface) => Fact::Known { value: ClientFacts { ip, interface, source: None } },
                None => self.client(ip).await,
            },
            None => Fact::Skipped { reason: "no node address (the probe pod's host IP) was given".into() },
        };
        // The client's VPC CIDRs matter only when the endpoint is in another VPC (SNAT).
        let client_vpc_id = client.known().and_then(|c| c.interface.vpc_id.clone());
        let client_vpc = match (&client_vpc_id, &vpc_id) {
            (Some(c), Some(e)) if c == e => Fact::Skipped { reason: "the endpoint is in the client's VPC".into() },
            (Some(c), _) => self.vpc_cidrs(c).await,
            (None, _) => Fact::Skipped { reason: "the client's VPC is unknown".into() },
        };
        let execution_log = self.execution_log(req, &stage).await;
        let custom_domain = match &req.custom_domain {
            Some(name) => self.custom_domain(name).await,
            None => Fact::Skipped { reason: "access mode is not customDomain".into() },
        };

        // The network layer: every group and every subnet of both sides, batched.
        let mut group_ids: Vec<String> = Vec::new();
        let mut subnet_ids: Vec<String> = Vec::new();
        if let Some(e) = endpoint.known() {
            group_ids.extend(e.security_group_ids.iter().cloned());
            subnet_ids.extend(e.subnet_ids.iter().cloned());
            subnet_ids.extend(e.interfaces.iter().filter_map(|i| i.subnet_id.clone()));
        }
        for c in [client.known(), node.known()].into_iter().flatten() {
            group_ids.extend(c.interface.security_group_ids.iter().cloned());
            subnet_ids.extend(c.interface.subnet_id.iter().cloned());
        }
        group_ids.sort();
        group_ids.dedup();
        subnet_ids.sort();
        subnet_ids.dedup();
        let (security_groups, network_acls, subnet_cidrs) = tokio::join!(
            self.security_groups(&group_ids),
            self.network_acls(&subnet_ids),
            self.subnet_cidrs(&subnet_ids)
        );
        let mut facts = AwsFacts {
            region: self.region.clone(),
            api_account_id: req.api_account_id.clone(),
            api,
            stage,
            deployment,
            method,
            endpoint,
            vpc,
            client,
            node,
            client_vpc,
            custom_domain,
            security_groups,
            network_acls,
            subnet_cidrs,
            execution_log,
            gaps: Default::default(),
        };
        let gaps = [
            ("api", facts.api.gap()),
            ("stage", facts.stage.gap()),
            ("deployment", facts.deployment.gap()),
            ("method", facts.method.gap()),
            ("endpoint", facts.endpoint.gap()),
            ("vpc", facts.vpc.gap()),
            ("client", facts.client.gap()),
            ("node", facts.node.gap()),
            ("clientVpc", facts.client_vpc.gap()),
            ("customDomain", facts.custom_domain.gap()),
            ("securityGroups", facts.security_groups.gap()),
            ("networkAcls", facts.network_acls.gap()),
            ("executionLog", facts.execution_log.gap()),
        ];
        facts.gaps = gaps.into_iter().filter_map(|(k, v)| v.map(|v| (k.to_owned(), v))).collect();
        facts
    }

    async fn api(&self, api_id: &str) -> Fact<ApiFacts> {
        let key = format!("{}/{api_id}", self.region);
        remember_unless_unknown(&self.apis, key, self.max_age, async {
            match self.apigw.get_rest_api().rest_api_id(api_id).send().await {
                Ok(out) => {
                    let cfg = out.endpoint_configuration();
                    Fact::Known {
                        value: ApiFacts {
                            id: out.id().unwrap_or(api_id).to_owned(),
                            name: out.name().map(str::to_owned),
                            endpoint_types: cfg
                                .map(|c| c.types().iter().map(|t| t.as_str().to_owned()).collect())
                                .unwrap_or_default(),
                            vpc_endpoint_ids: cfg.map(|c| c.vpc_endpoint_ids().to_vec()).unwrap_or_default(),
                            disable_execute_api_endpoint: out.disable_execute_api_endpoint(),
                            policy: out.policy().map(str::to_owned).filter(|p| !p.is_empty()),
                        },
                    }
                }
                Err(err) => failure(&err, "apigateway:GET", &format!("GetRestApi {api_id}")),
            }
        })
        .await
    }

    async fn stage(&self, req: &InspectRequest) -> Fact<StageFacts> {
        let key = format!("{}/{}/{}", self.region, req.api_id, req.stage);
        remember_unless_unknown(&self.stages, key, self.max_age, async {
            match self.apigw.get_stage().rest_api_id(&req.api_id).stage_name(&req.stage).send().await {
                Ok(out) => {
                    let all = out.method_settings().and_then(|m| m.get("*/*"));
                    Fact::Known {
                        value: StageFacts {
                            name: out.stage_name().unwrap_or(&req.stage).to_owned(),
                            deployment_id: out.deployment_id().map(str::to_owned),
                            logging_level: all.and_then(|s| s.logging_level()).map(str::to_owned),
                            data_trace_enabled: all.is_some_and(|s| s.data_trace_enabled()),
                            last_updated: epoch(out.last_updated_date()),
                            web_acl_arn: out.web_acl_arn().map(str::to_owned),
                        },
                    }
                }
                Err(err) => failure(&err, "apigateway:GET", &format!("GetStage {}/{}", req.api_id, req.stage)),
            }
        })
        .await
    }

    /// The API's stage names (GetStages), for a user who did not say which stage to check.
    pub async fn stage_names(&self, api_id: &str) -> Fact<Vec<String>> {
        match self.apigw.get_stages().rest_api_id(api_id).send().await {
            Ok(out) => {
                let mut names: Vec<String> =
                    out.item().iter().filter_map(|s| s.stage_name().map(str::to_owned)).collect();
                names.sort();
                Fact::Known { value: names }
            }
            Err(err) => failure(&err, "apigateway:GET", &format!("GetStages {api_id}")),
        }
    }

    async fn deployment(&self, api_id: &str, deployment_id: &str) -> Fact<DeploymentFacts> {
        let key = format!("{}/{api_id}/{deployment_id}", self.region);
        remember_unless_unknown(&self.deployments, key, self.max_age, async {
            match self.apigw.get_deployment().rest_api_id(api_id).deployment_id(deployment_id).send().await {
                Ok(out) => Fact::Known {
                    value: DeploymentFacts {
                        id: out.id().unwrap_or(deployment_id).to_owned(),
                        created_date: epoch(out.created_date()),
                    },
                },
                Err(err) => failure(&err, "apigateway:GET", &format!("GetDeployment {deployment_id}")),
            }
        })
        .await
    }

    async fn method(&self, req: &InspectRequest) -> Fact<MethodFacts> {
        let key = format!("{}/{}/{}/{}", self.region, req.api_id, req.method, req.path);
        remember_unless_unknown(&self.methods, key, self.max_age, async {
            // One call: resources with their methods embedded (GetMethod only as a fallback).
            let resources = self
                .apigw
                .get_resources()
                .rest_api_id(&req.api_id)
                .embed("methods")
                .limit(500)
                .into_paginator()
                .items()
                .send()
                .collect::<Vec<_>>()
                .await;
            let mut best: Option<aws_sdk_apigateway::types::Resource> = None;
            for item in resources {
                let item = match item {
                    Ok(item) => item,
                    Err(err) => return failure(&err, "apigateway:GET", &format!("GetResources {}", req.api_id)),
                };
                let Some(path) = item.path() else { continue };
                if path_matches(path, &req.path) {
                    // Prefer the most literal template (fewest parameters).
                    let params = path.matches('{').count();
                    if best.as_ref().is_none_or(|b| b.path().unwrap_or("").matches('{').count() > params) {
                        best = Some(item);
                    }
                }
            }
            let Some(resource) = best else {
                return Fact::NotFound {
                    detail: format!("no resource of API {} matches path {}", req.api_id, req.path),
                };
            };
            let resource_path = resource.path().unwrap_or("/").to_owned();
            let embedded = resource.resource_methods().and_then(|m| m.get(&req.method).or_else(|| m.get("ANY")));
            let method = match embedded {
                Some(m) if m.authorization_type().is_some() => m.clone(),
                Some(_) | None
                    if resource
                        .resource_methods()
                        .is_some_and(|m| !m.contains_key(&req.method) && !m.contains_key("ANY")) =>
                {
                    return Fact::NotFound { detail: format!("{resource_path} has no {} (or ANY) method", req.method) };
                }
                _ => {
                    let resource_id = resource.id().unwrap_or_default();
                    let lookup = |m: String| {
                        self.apigw.get_method().rest_api_id(&req.api_id).resource_id(resource_id).http_method(m).send()
                    };
                    let result = match lookup(req.method.clone()).await {
                        Err(err) if err.code() == Some("NotFoundException") => lookup("ANY".into()).await,
                        other => other,
                    };
                    match result {
                        Ok(out) => aws_sdk_apigateway::types::Method::builder()
                            .set_http_method(out.http_method().map(str::to_owned))
                            .set_authorization_type(out.authorization_type().map(str::to_owned))
                            .set_api_key_required(out.api_key_required())
                            .build(),
                        Err(err) => {
                            return failure(
                                &err,
                                "apigateway:GET",
                                &format!("GetMethod {} {resource_path}", req.method),
                            );
                        }
                    }
                }
            };
            Fact::Known {
                value: MethodFacts {
                    resource_path,
                    http_method: method.http_method().unwrap_or(&req.method).to_owned(),
                    authorization_type: method.authorization_type().unwrap_or("NONE").to_owned(),
                    api_key_required: method.api_key_required().unwrap_or(false),
                },
            }
        })
        .await
    }

    async fn endpoint(&self, vpce_id: &str) -> Fact<EndpointFacts> {
        let key = format!("{}/{vpce_id}", self.region);
        remember_unless_unknown(&self.endpoints, key, self.max_age, async {
            let out = match self.ec2.describe_vpc_endpoints().vpc_endpoint_ids(vpce_id).send().await {
                Ok(out) => out,
                Err(err) => {
                    return failure(&err, "ec2:DescribeVpcEndpoints", &format!("DescribeVpcEndpoints {vpce_id}"));
                }
            };
            let Some(e) = out.vpc_endpoints().iter().find(|e| e.vpc_endpoint_id() == Some(vpce_id)) else {
                return Fact::NotFound { detail: format!("endpoint {vpce_id} not found in {}", self.region) };
            };
            let facts = EndpointFacts {
                id: vpce_id.to_owned(),
                endpoint_type: e.vpc_endpoint_type().map(|t| t.as_str().to_owned()),
                service_name: e.service_name().map(str::to_owned),
                state: e.state().map(|s| s.as_str().to_ascii_lowercase()),
                vpc_id: e.vpc_id().map(str::to_owned),
                owner_id: e.owner_id().map(str::to_owned),
                private_dns_enabled: e.private_dns_enabled().unwrap_or(false),
                dns_entries: e
                    .dns_entries()
                    .iter()
                    .filter_map(|d| {
                        d.dns_name().map(|n| EndpointDnsEntry {
                            dns_name: n.to_owned(),
                            hosted_zone_id: d.hosted_zone_id().map(str::to_owned),
                        })
                    })
                    .collect(),
                subnet_ids: e.subnet_ids().to_vec(),
                security_group_ids: e.groups().iter().filter_map(|g| g.group_id().map(str::to_owned)).collect(),
                network_interface_ids: e.network_interface_ids().to_vec(),
                policy: e.policy_document().map(str::to_owned).filter(|p| !p.is_empty()),
                interfaces: Vec::new(),
            };
            Fact::Known { value: facts }
        })
        .await
    }

    async fn vpc(&self, vpc_id: &str) -> Fact<VpcDnsAttributes> {
        let key = format!("{}/{vpc_id}", self.region);
        remember_unless_unknown(&self.vpcs, key, self.max_age, async {
            let attr = |name: VpcAttributeName| self.ec2.describe_vpc_attribute().vpc_id(vpc_id).attribute(name).send();
            let (support, hostnames) =
                tokio::join!(attr(VpcAttributeName::EnableDnsSupport), attr(VpcAttributeName::EnableDnsHostnames));
            let support = match support {
                Ok(o) => o.enable_dns_support().and_then(|v| v.value()).unwrap_or(false),
                Err(err) => {
                    return failure(&err, "ec2:DescribeVpcAttribute", &format!("DescribeVpcAttribute {vpc_id}"));
                }
            };
            let hostnames = match hostnames {
                Ok(o) => o.enable_dns_hostnames().and_then(|v| v.value()).unwrap_or(false),
                Err(err) => {
                    return failure(&err, "ec2:DescribeVpcAttribute", &format!("DescribeVpcAttribute {vpc_id}"));
                }
            };
            Fact::Known {
                value: VpcDnsAttributes {
                    vpc_id: vpc_id.to_owned(),
                    enable_dns_support: support,
                    enable_dns_hostnames: hostnames,
                },
            }
        })
        .await
    }

    /// A VPC's IPv4 CIDRs: the primary and every associated block (`DescribeVpcs`).
    async fn vpc_cidrs(&self, vpc_id: &str) -> Fact<VpcCidrs> {
        use aws_sdk_ec2::types::VpcCidrBlockStateCode;
        let key = format!("{}/{vpc_id}", self.region);
        remember_unless_unknown(&self.vpc_cidrs, key, self.max_age, async {
            let out = match self.ec2.describe_vpcs().vpc_ids(vpc_id).send().await {
                Ok(out) => out,
                Err(err) => return failure(&err, "ec2:DescribeVpcs", &format!("DescribeVpcs {vpc_id}")),
            };
            let Some(vpc) = out.vpcs().iter().find(|v| v.vpc_id() == Some(vpc_id)) else {
                return Fact::NotFound { detail: format!("DescribeVpcs: no VPC {vpc_id}") };
            };
            let mut cidr_blocks: Vec<String> = vpc.cidr_block().map(str::to_owned).into_iter().collect();
            for a in vpc.cidr_block_association_set() {
                let associated = a
                    .cidr_block_state()
                    .and_then(|s| s.state())
                    .is_none_or(|s| matches!(s, VpcCidrBlockStateCode::Associated));
                if let Some(c) = a.cidr_block()
                    && associated
                    && !cidr_blocks.iter().any(|x| x == c)
                {
                    cidr_blocks.push(c.to_owned());
                }
            }
            Fact::Known { value: VpcCidrs { vpc_id: vpc_id.to_owned(), cidr_blocks } }
        })
        .await
    }

    /// Every network interface of the VPC, one paginated call per TTL: endpoint interfaces and
    /// any number of probe pods (new IPs every run) are then found without more calls.
    async fn vpc_interfaces(&self, vpc_id: &str) -> Fact<Vec<InterfaceFacts>> {
        let key = format!("{}/{vpc_id}", self.region);
        remember_unless_unknown(&self.interfaces, key, self.max_age, async {
            let filter = Filter::builder().name("vpc-id").values(vpc_id).build();
            let pages = self
                .ec2
                .describe_network_interfaces()
                .filters(filter)
                .max_results(1000)
                .into_paginator()
                .items()
                .send()
                .collect::<Vec<_>>()
                .await;
            let mut all = Vec::new();
            for eni in pages {
                match eni {
                    Ok(eni) => all.push(interface_facts(&eni)),
                    Err(err) => {
                        return failure(
                            &err,
                            "ec2:DescribeNetworkInterfaces",
                            &format!("DescribeNetworkInterfaces vpc-id={vpc_id}"),
                        );
                    }
                }
            }
            Fact::Known { value: all }
        })
        .await
    }

    async fn client(&self, ip: IpAddr) -> Fact<ClientFacts> {
        let key = format!("{}/{ip}", self.region);
        remember_unless_unknown(&self.clients, key, self.max_age, async {
            // Secondary IPs (pods on the VPC CNI) are matched by this filter; the primary by the other.
            let filter = |name: &str| Filter::builder().name(name).values(ip.to_string()).build();
            let out = match self
                .ec2
                .describe_network_interfaces()
                .filters(filter("addresses.private-ip-address"))
                .send()
                .await
            {
                Ok(out) if !out.network_interfaces().is_empty() => out,
                Ok(_) => {
                    match self.ec2.describe_network_interfaces().filters(filter("private-ip-address")).send().await {
                        Ok(out) => out,
                        Err(err) => {
                            return failure(
                                &err,
                                "ec2:DescribeNetworkInterfaces",
                                &format!("DescribeNetworkInterfaces {ip}"),
                            );
                        }
                    }
                }
                Err(err) => {
                    return failure(&err, "ec2:DescribeNetworkInterfaces", &format!("DescribeNetworkInterfaces {ip}"));
                }
            };
            match out.network_interfaces().first() {
                Some(eni) => Fact::Known { value: ClientFacts { ip, interface: interface_facts(eni), source: None } },
                None => {
                    Fact::NotFound { detail: format!("no network interface in {} has the address {ip}", self.region) }
                }
            }
        })
        .await
    }

    /// A private custom domain: its id (private domains are addressed by name + id), policy,
    /// the endpoints associated with it and its base path mappings.
    pub async fn custom_domain(&self, name: &str) -> Fact<CustomDomainFacts> {
        use aws_sdk_apigateway::types::ResourceOwner;
        let key = format!("{}/{name}", self.region);
        remember_unless_unknown(&self.domains, key, self.max_age, async {
            let action = "apigateway:GET";
            let listed = self
                .apigw
                .get_domain_names()
                .resource_owner(ResourceOwner::SelfValue)
                .limit(500)
                .into_paginator()
                .items()
                .send()
                .collect::<Vec<_>>()
                .await;
            let mut found = None;
            for item in listed {
                match item {
                    Ok(d) if d.domain_name() == Some(name) => found = Some(d),
                    Ok(_) => {}
                    Err(err) => return failure(&err, action, "GetDomainNames"),
                }
            }
            let Some(listed) = found else {
                return Fact::NotFound { detail: format!("no custom domain name {name} in {}", self.region) };
            };
            let id = listed.domain_name_id().map(str::to_owned);
            let domain =
                match self.apigw.get_domain_name().domain_name(name).set_domain_name_id(id.clone()).send().await {
                    Ok(d) => d,
                    Err(err) => return failure(&err, action, &format!("GetDomainName {name}")),
                };
            let arn = domain.domain_name_arn().map(str::to_owned);
            // Associations made in this account and by other accounts' endpoints.
            let mut associated_endpoints = Vec::new();
            for owner in [ResourceOwner::SelfValue, ResourceOwner::OtherAccounts] {
                match self.apigw.get_domain_name_access_associations().resource_owner(owner).send().await {
                    Ok(out) => associated_endpoints.extend(
                        out.items()
                            .iter()
                            .filter(|a| arn.is_some() && a.domain_name_arn() == arn.as_deref())
                            .filter_map(|a| a.access_association_source().map(str::to_owned)),
                    ),
                    Err(err) => return failure(&err, action, "GetDomainNameAccessAssociations"),
                }
            }
            let mappings =
                match self.apigw.get_base_path_mappings().domain_name(name).set_domain_name_id(id.clone()).send().await
                {
                    Ok(out) => out
                        .items()
                        .iter()
                        .map(|m| BasePathMapping {
                            base_path: m.base_path().unwrap_or("(none)").to_owned(),
                            rest_api_id: m.rest_api_id().map(str::to_owned),
                            stage: m.stage().map(str::to_owned),
                        })
                        .collect(),
                    Err(err) => return failure(&err, action, &format!("GetBasePathMappings {name}")),
                };
            Fact::Known {
                value: CustomDomainFacts {
                    domain_name: name.to_owned(),
                    domain_name_id: id,
                    domain_name_arn: arn,
                    endpoint_types: domain
                        .endpoint_configuration()
                        .map(|c| c.types().iter().map(|t| t.as_str().to_owned()).collect())
                        .unwrap_or_default(),
                    status: domain.domain_name_status().map(|s| s.as_str().to_owned()),
                    policy: domain.policy().map(str::to_owned).filter(|p| !p.is_empty()),
                    associated_endpoints,
                    base_path_mappings: mappings,
                },
            }
        })
        .await
    }

    async fn security_groups(&self, ids: &[String]) -> Fact<Vec<SecurityGroup>> {
        if ids.is_empty() {
            return Fact::Skipped { reason: "no security group ids known for the endpoint or the client".into() };
        }
        let key = format!("{}/{}", self.region, ids.join(","));
        remember_unless_unknown(&self.groups, key, self.max_age, async {
            match self.ec2.describe_security_groups().set_group_ids(Some(ids.to_vec())).send().await {
                Ok(out) => {
                    let mut groups: Vec<SecurityGroup> = out.security_groups().iter().map(security_group).collect();
                    self.resolve_prefix_lists(&mut groups).await;
                    Fact::Known { value: groups }
                }
                Err(err) => {
                    failure(&err, "ec2:DescribeSecurityGroups", &format!("DescribeSecurityGroups {}", ids.join(",")))
                }
            }
        })
        .await
    }

    /// Fills in the CIDRs of every prefix list a rule references (one call per list). A list
    /// that cannot be read stays unresolved, which the analysis reports as unknown.
    async fn resolve_prefix_lists(&self, groups: &mut [SecurityGroup]) {
        let mut ids: Vec<String> = groups
            .iter()
            .flat_map(|g| g.ingress.iter().chain(g.egress.iter()))
            .filter_map(|r| match &r.peer {
                SgPeer::PrefixList { id, .. } => Some(id.clone()),
                _ => None,
            })
            .collect();
        ids.sort();
        ids.dedup();
        let mut resolved = std::collections::BTreeMap::new();
        for id in ids {
            let pages = self
                .ec2
                .get_managed_prefix_list_entries()
                .prefix_list_id(&id)
                .into_paginator()
                .items()
                .send()
                .collect::<Vec<_>>()
                .await;
            let cidrs: Result<Vec<ipnet::IpNet>, ()> = pages
                .into_iter()
                .map(|entry| entry.map_err(|_| ()).and_then(|e| e.cidr().and_then(|c| c.parse().ok()).ok_or(())))
                .collect();
            match cidrs {
                Ok(cidrs) => {
                    resolved.insert(id, cidrs);
                }
                Err(()) => tracing::debug!(prefix_list = %id, "GetManagedPrefixListEntries failed; left unresolved"),
            }
        }
        for rule in groups.iter_mut().flat_map(|g| g.ingress.iter_mut().chain(g.egress.iter_mut())) {
            if let SgPeer::PrefixList { id, cidrs } = &mut rule.peer
                && let Some(list) = resolved.get(id)
            {
                *cidrs = Some(list.clone());
            }
        }
    }

    async fn network_acls(&self, subnet_ids: &[String]) -> Fact<Vec<NetworkAcl>> {
        if subnet_ids.is_empty() {
            return Fact::Skipped { reason: "no subnets known for the endpoint or the client".into() };
        }
        let key = format!("{}/{}", self.region, subnet_ids.join(","));
        remember_unless_unknown(&self.acls, key, self.max_age, async {
            let filter = Filter::builder().name("association.subnet-id").set_values(Some(subnet_ids.to_vec())).build();
            match self.ec2.describe_network_acls().filters(filter).send().await {
                Ok(out) => Fact::Known { value: out.network_acls().iter().filter_map(network_acl).collect() },
                Err(err) => {
                    failure(&err, "ec2:DescribeNetworkAcls", &format!("DescribeNetworkAcls {}", subnet_ids.join(",")))
                }
            }
        })
        .await
    }

    async fn subnet_cidrs(&self, subnet_ids: &[String]) -> std::collections::BTreeMap<String, String> {
        if subnet_ids.is_empty() {
            return Default::default();
        }
        let key = format!("{}/{}", self.region, subnet_ids.join(","));
        let cidrs = self
            .subnets
            .get_with(key.clone(), async {
                match self.ec2.describe_subnets().set_subnet_ids(Some(subnet_ids.to_vec())).send().await {
                    Ok(out) => out
                        .subnets()
                        .iter()
                        .filter_map(|s| Some((s.subnet_id()?.to_owned(), s.cidr_block()?.to_owned())))
                        .collect(),
                    Err(err) => {
                        tracing::debug!(error = %aws_smithy_types::error::display::DisplayErrorContext(&err), "DescribeSubnets failed");
                        Default::default()
                    }
                }
            })
            .await;
        // Empty means the call failed: not kept, like an `Unknown` fact.
        if cidrs.is_empty() {
            self.subnets.invalidate(&key).await;
        }
        cidrs
    }

    async fn execution_log(&self, req: &InspectRequest, stage: &Fact<StageFacts>) -> Fact<ExecutionLogLookup> {
        let Some(request_id) = req.request_id.as_deref() else {
            return Fact::Skipped { reason: "no request id from the probe".into() };
        };
        match stage.known() {
            Some(s) if !s.execution_logging_enabled() => {
                return Fact::Known { value: ExecutionLogLookup::LoggingDisabled };
            }
            Some(_) => {}
            None => return Fact::Skipped { reason: "the stage's logging settings are unknown".into() },
        }
        let log_group = format!("API-Gateway-Execution-Logs_{}/{}", req.api_id, req.stage);
        let end = req.request_time.unwrap_or_else(SystemTime::now) + Duration::from_secs(60);
        let start = end - LOG_WINDOW - Duration::from_secs(60);
        let millis =
            |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
        let result = self
            .logs
            .filter_log_events()
            .log_group_name(&log_group)
            .filter_pattern(format!("\"{request_id}\""))
            .start_time(millis(start))
            .end_time(millis(end))
            .limit(20)
            .send()
            .await;
        match result {
            Ok(out) => {
                let lines: Vec<String> = out
                    .events()
                    .iter()
                    .filter_map(|e| e.message())
                    .filter(|m| m.contains(request_id))
                    .take(5)
                    .map(|m| m.chars().take(300).collect())
                    .collect();
                if lines.is_empty() {
                    Fact::Known {
                        value: ExecutionLogLookup::NotFound { log_group, window_seconds: LOG_WINDOW.as_secs() },
                    }
                } else {
                    Fact::Known { value: ExecutionLogLookup::Found { lines } }
                }
            }
            Err(err) if err.code() == Some("ResourceNotFoundException") => {
                Fact::Known { value: ExecutionLogLookup::NotFound { log_group, window_seconds: LOG_WINDOW.as_secs() } }
            }
            Err(err) => failure(&err, "logs:FilterLogEvents", &format!("FilterLogEvents {log_group}")),
        }
    }
}

fn interface_facts(eni: &aws_sdk_ec2::types::NetworkInterface) -> InterfaceFacts {
    let mut ips: Vec<IpAddr> = Vec::new();
    for ip in eni
        .private_ip_address()
        .into_iter()
        .chain(eni.private_ip_addresses().iter().filter_map(|a| a.private_ip_address()))
    {
        if let Ok(ip) = ip.parse::<IpAddr>()
            && !ips.contains(&ip)
        {
            ips.push(ip);
        }
    }
    InterfaceFacts {
        id: eni.network_interface_id().unwrap_or_default().to_owned(),
        subnet_id: eni.subnet_id().map(str::to_owned),
        availability_zone: eni.availability_zone().map(str::to_owned),
        private_ips: ips,
        security_group_ids: eni.groups().iter().filter_map(|g| g.group_id().map(str::to_owned)).collect(),
        vpc_id: eni.vpc_id().map(str::to_owned),
        interface_type: eni.interface_type().map(|t| t.as_str().to_owned()),
        description: eni.description().filter(|d| !d.is_empty()).map(str::to_owned),
    }
}

fn sg_rules(perms: &[aws_sdk_ec2::types::IpPermission]) -> Vec<SgRule> {
    let mut rules = Vec::new();
    for p in perms {
        let protocol = p.ip_protocol().and_then(|s| s.parse::<IpProtocol>().ok()).unwrap_or(IpProtocol::All);
        let port = |v: Option<i32>| v.and_then(|v| u16::try_from(v).ok());
        let rule = |peer: SgPeer, description: Option<&str>| SgRule {
            rule_id: None,
            protocol,
            from_port: port(p.from_port()),
            to_port: port(p.to_port()),
            peer,
            description: description.map(str::to_owned),
        };
        for r in p.ip_ranges() {
            if let Some(net) = r.cidr_ip().and_then(|c| c.parse().ok()) {
                rules.push(rule(SgPeer::Cidr(net), r.description()));
            }
        }
        for r in p.ipv6_ranges() {
            if let Some(net) = r.cidr_ipv6().and_then(|c| c.parse().ok()) {
                rules.push(rule(SgPeer::Cidr(net), r.description()));
            }
        }
        for g in p.user_id_group_pairs() {
            if let Some(id) = g.group_id() {
                rules.push(rule(
                    SgPeer::SecurityGroup { group_id: id.to_owned(), user_id: g.user_id().map(str::to_owned) },
                    g.description(),
                ));
            }
        }
        for pl in p.prefix_list_ids() {
            if let Some(id) = pl.prefix_list_id() {
                // Resolved afterwards by `resolve_prefix_lists`.
                rules.push(rule(SgPeer::PrefixList { id: id.to_owned(), cidrs: None }, pl.description()));
            }
        }
    }
    rules
}

fn security_group(g: &aws_sdk_ec2::types::SecurityGroup) -> SecurityGroup {
    SecurityGroup {
        id: g.group_id().unwrap_or_default().to_owned(),
        vpc_id: g.vpc_id().map(str::to_owned),
        ingress: sg_rules(g.ip_permissions()),
        egress: sg_rules(g.ip_permissions_egress()),
    }
}

fn network_acl(acl: &aws_sdk_ec2::types::NetworkAcl) -> Option<NetworkAcl> {
    let entries = acl
        .entries()
        .iter()
        .filter_map(|e| {
            let cidr = e.cidr_block().or(e.ipv6_cidr_block())?.parse().ok()?;
            Some(NaclEntry {
                rule_number: u16::try_from(e.rule_number()?).ok()?,
                egress: e.egress().unwrap_or(false),
                action: match e.rule_action()?.as_str() {
                    "allow" => NaclAction::Allow,
                    _ => NaclAction::Deny,
                },
                protocol: e.protocol()?.parse().ok()?,
                cidr,
                port_range: e
                    .port_range()
                    .and_then(|r| Some((u16::try_from(r.from()?).ok()?, u16::try_from(r.to()?).ok()?))),
            })
        })
        .collect();
    Some(NetworkAcl {
        id: acl.network_acl_id()?.to_owned(),
        subnet_ids: acl.associations().iter().filter_map(|a| a.subnet_id().map(str::to_owned)).collect(),
        entries,
    })
}

/// Shared handle type used by tests and the operator.
pub type SharedInspector = Arc<Inspector>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_templates() {
        let cases = [
            ("/", "/", true),
            ("/health", "/health", true),
            ("/health", "/health/", true),
            ("/health", "/other", false),
            ("/items/{id}", "/items/42", true),
            ("/items/{id}", "/items", false),
            ("/items/{id}", "/items/42/x", false),
            ("/{proxy+}", "/a/b/c", true),
            ("/{proxy+}", "/", false),
            ("/v1/{proxy+}", "/v1/x", true),
        ];
        for (template, path, want) in cases {
            assert_eq!(path_matches(template, path), want, "{template} vs {path}");
        }
    }
}

#[cfg(test)]
mod failure_tests {
    //! How SDK failures become facts. The errors are built in-process (moto cannot be made to
    //! throttle, and its IAM enforcement does not cover API Gateway); the mapping is pure logic.
    use super::*;
    use aws_sdk_ec2::operation::describe_network_acls::DescribeNetworkAclsError;
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    fn service_error(code: &str, status: u16) -> SdkError<DescribeNetworkAclsError, Response> {
        let err = DescribeNetworkAclsError::generic(ErrorMetadata::builder().code(code).message("m").build());
        let raw = Response::new(StatusCode::try_from(status).unwrap(), SdkBody::empty());
        SdkError::service_error(err, raw)
    }

    #[test]
    fn sdk_failures_become_facts() {
        let cases: Vec<(&str, u16, &str)> = vec![
            ("UnauthorizedOperation", 403, "unknown-permission"),
            ("AccessDenied", 403, "unknown-permission"),
            ("AccessDeniedException", 403, "unknown-permission"),
            ("InvalidVpcEndpointId.NotFound", 400, "not-found"),
            ("NotFoundException", 404, "not-found"),
            ("InvalidVpcEndpointId.Malformed", 400, "not-found"),
            ("RequestLimitExceeded", 503, "unknown-throttled"),
            ("ThrottlingException", 400, "unknown-throttled"),
            ("InternalError", 500, "unknown-other"),
        ];
        for (code, status, want) in cases {
            let fact: Fact<()> =
                failure(&service_error(code, status), "ec2:DescribeNetworkAcls", "DescribeNetworkAcls");
            let got = match &fact {
                Fact::Unknown { missing_permission: Some(p), .. } => {
                    assert_eq!(p, "ec2:DescribeNetworkAcls");
                    "unknown-permission"
                }
                Fact::Unknown { reason, .. } if reason.contains("throttled") => "unknown-throttled",
                Fact::Unknown { .. } => "unknown-other",
                Fact::NotFound { .. } => "not-found",
                other => panic!("{code}: unexpected {other:?}"),
            };
            assert_eq!(got, want, "{code}");
        }
        let timeout: SdkError<DescribeNetworkAclsError, Response> = SdkError::timeout_error("operation timed out");
        let fact: Fact<()> = failure(&timeout, "ec2:DescribeNetworkAcls", "DescribeNetworkAcls");
        assert!(
            matches!(&fact, Fact::Unknown { missing_permission: None, reason } if reason.contains("DescribeNetworkAcls"))
        );
        assert_eq!(
            fact.gap().as_deref().map(|g| g.starts_with("DescribeNetworkAcls")),
            Some(true),
            "the gap names the call"
        );
    }
}

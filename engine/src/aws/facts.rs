//! `AwsFacts`: what read-only AWS calls say about one check, each fact possibly missing.
//!
//! A diagnosis must work with partial facts — no credentials on a laptop, a role without
//! `ec2:DescribeNetworkAcls`, a throttled API. So every fact is a [`Fact`]: known, not found,
//! unknown (with the missing permission when that is the reason) or skipped. The diagnosis never
//! mistakes "unknown" for "fine".

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// One fact and how sure we are of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "status", rename_all = "camelCase")]
pub enum Fact<T> {
    /// Read successfully.
    Known { value: T },
    /// AWS says it does not exist (the absence is itself the fact).
    NotFound { detail: String },
    /// Could not be read: permission, throttling, network, unexpected response.
    Unknown {
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        missing_permission: Option<String>,
    },
    /// Not attempted (inspection off, not needed for this access mode, missing input).
    Skipped { reason: String },
}

impl<T> Fact<T> {
    pub fn known(&self) -> Option<&T> {
        match self {
            Fact::Known { value } => Some(value),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, Fact::NotFound { .. })
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Fact<U> {
        match self {
            Fact::Known { value } => Fact::Known { value: f(value) },
            Fact::NotFound { detail } => Fact::NotFound { detail },
            Fact::Unknown { reason, missing_permission } => Fact::Unknown { reason, missing_permission },
            Fact::Skipped { reason } => Fact::Skipped { reason },
        }
    }

    /// Why the fact could not be read (permission, throttling, error), or `None` when it was
    /// read, found absent, or deliberately skipped (skips are visible on the fact itself).
    pub fn gap(&self) -> Option<String> {
        match self {
            Fact::Known { .. } | Fact::NotFound { .. } | Fact::Skipped { .. } => None,
            Fact::Unknown { reason, missing_permission: Some(p) } => Some(format!("{reason} (missing permission {p})")),
            Fact::Unknown { reason, .. } => Some(reason.clone()),
        }
    }
}

/// The REST API (`GetRestApi`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiFacts {
    pub id: String,
    pub name: Option<String>,
    /// `PRIVATE`, `REGIONAL`, `EDGE`.
    pub endpoint_types: Vec<String>,
    /// Endpoints associated with the API (alias hosts exist only for these).
    pub vpc_endpoint_ids: Vec<String>,
    pub disable_execute_api_endpoint: bool,
    /// The resource policy as stored, unescaped; `None` when the API has none.
    pub policy: Option<String>,
}

/// The stage (`GetStage`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StageFacts {
    pub name: String,
    pub deployment_id: Option<String>,
    /// `methodSettings["*/*"].loggingLevel`: `OFF`, `ERROR`, `INFO`; `None` when unset (= off).
    pub logging_level: Option<String>,
    pub data_trace_enabled: bool,
    /// When the stage (and so its deployment pointer) last changed, epoch seconds.
    pub last_updated: Option<i64>,
    /// The AWS WAF web ACL associated with the stage, when one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_acl_arn: Option<String>,
}

impl StageFacts {
    /// Execution logging is on at ERROR or INFO.
    pub fn execution_logging_enabled(&self) -> bool {
        matches!(self.logging_level.as_deref().map(str::to_ascii_uppercase).as_deref(), Some("ERROR" | "INFO"))
    }
}

/// The deployment the stage points at (`GetDeployment`): when the policy was last put into effect.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentFacts {
    pub id: String,
    /// Epoch seconds.
    pub created_date: Option<i64>,
}

/// The method the check invokes (`GetResources` + `GetMethod`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MethodFacts {
    pub resource_path: String,
    pub http_method: String,
    /// `NONE`, `AWS_IAM`, `CUSTOM`, `COGNITO_USER_POOLS`.
    pub authorization_type: String,
    pub api_key_required: bool,
}

impl MethodFacts {
    /// The method needs something an anonymous probe cannot send.
    pub fn requires_authorization(&self) -> bool {
        self.api_key_required || !self.authorization_type.eq_ignore_ascii_case("NONE")
    }
}

/// One DNS entry of an endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointDnsEntry {
    pub dns_name: String,
    pub hosted_zone_id: Option<String>,
}

/// One network interface: the endpoint's (one per subnet/AZ), a pod's or a node's.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InterfaceFacts {
    pub id: String,
    pub subnet_id: Option<String>,
    pub availability_zone: Option<String>,
    pub private_ips: Vec<IpAddr>,
    pub security_group_ids: Vec<String>,
    /// The VPC the interface is in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
    /// `InterfaceType` (`interface`, `branch`, `trunk`, `vpc_endpoint`, …), when AWS gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface_type: Option<String>,
    /// The interface's description (`aws-k8s-branch-eni` for a Security Groups for Pods branch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// What the VPC resource controller names the branch interfaces it makes for Security Groups for Pods.
pub const BRANCH_ENI_DESCRIPTION: &str = "aws-k8s-branch-eni";

impl InterfaceFacts {
    /// A Security Groups for Pods branch interface: `InterfaceType` `branch`, or the VPC
    /// resource controller's description for one.
    pub fn is_branch(&self) -> bool {
        self.interface_type.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("branch"))
            || self.description.as_deref() == Some(BRANCH_ENI_DESCRIPTION)
    }
}

/// The interface VPC endpoint (`DescribeVpcEndpoints`, `DescribeNetworkInterfaces`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointFacts {
    pub id: String,
    pub endpoint_type: Option<String>,
    pub service_name: Option<String>,
    /// Lowercased (`available`, `pending`, `rejected`, …).
    pub state: Option<String>,
    pub vpc_id: Option<String>,
    pub owner_id: Option<String>,
    pub private_dns_enabled: bool,
    pub dns_entries: Vec<EndpointDnsEntry>,
    pub subnet_ids: Vec<String>,
    pub security_group_ids: Vec<String>,
    pub network_interface_ids: Vec<String>,
    /// The endpoint policy, `None` when AWS returned none (full access).
    pub policy: Option<String>,
    /// From `DescribeNetworkInterfaces`, when readable.
    pub interfaces: Vec<InterfaceFacts>,
}

impl EndpointFacts {
    /// `true` for `com.amazonaws.<region>.execute-api`.
    pub fn is_execute_api(&self) -> bool {
        self.service_name.as_deref().is_some_and(|s| s.ends_with(".execute-api"))
    }

    /// The region in the service name, `com.amazonaws.<region>.execute-api`.
    pub fn service_region(&self) -> Option<&str> {
        let s = self.service_name.as_deref()?;
        let rest = s.strip_prefix("com.amazonaws.")?;
        rest.strip_suffix(".execute-api")
    }

    /// Every private IP of the endpoint's interfaces.
    pub fn addresses(&self) -> Vec<IpAddr> {
        self.interfaces.iter().flat_map(|i| i.private_ips.iter().copied()).collect()
    }
}

/// The VPC's DNS attributes (`DescribeVpcAttribute`), needed for private DNS.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VpcDnsAttributes {
    pub vpc_id: String,
    pub enable_dns_support: bool,
    pub enable_dns_hostnames: bool,
}

/// The client side as the endpoint sees it: the source address and the network interface the
/// traffic leaves through. Inspection finds the probe pod's own interface by its address;
/// [`crate::network::source::resolve`] replaces it with the node's when the VPC CNI
/// source-NATs the traffic, and says so in `source`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientFacts {
    pub ip: IpAddr,
    pub interface: InterfaceFacts,
    /// How this source was decided (pod interface, Security Groups for Pods branch, node after
    /// SNAT); absent when nothing about the cluster's CNI was known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<crate::network::source::TrafficSource>,
}

/// A VPC's IPv4 CIDR blocks (`DescribeVpcs`: the primary and every associated one).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VpcCidrs {
    pub vpc_id: String,
    pub cidr_blocks: Vec<String>,
}

/// The stage's execution log for the probe's request id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ExecutionLogLookup {
    /// Lines mentioning the request id were found (the request reached API Gateway).
    Found { lines: Vec<String> },
    /// No line in the window: the request never reached API Gateway (or logging lags).
    NotFound { log_group: String, window_seconds: u64 },
    /// Stage logging is off: nothing to look up.
    LoggingDisabled,
}

/// A private custom domain name (`GetDomainNames`/`GetDomainName`, its access associations and
/// base path mappings), read when the check uses `access: customDomain`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomDomainFacts {
    pub domain_name: String,
    pub domain_name_id: Option<String>,
    pub domain_name_arn: Option<String>,
    pub endpoint_types: Vec<String>,
    /// `AVAILABLE`, `PENDING`, …
    pub status: Option<String>,
    /// The domain's resource policy (private custom domains have their own), unescaped.
    pub policy: Option<String>,
    /// Endpoints with an access association to this domain (`accessAssociationSource`).
    pub associated_endpoints: Vec<String>,
    pub base_path_mappings: Vec<BasePathMapping>,
}

/// One base path of a custom domain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BasePathMapping {
    /// `(none)` for the root.
    pub base_path: String,
    pub rest_api_id: Option<String>,
    pub stage: Option<String>,
}

/// The default of a fact added after reports were first written: not read.
fn not_read<T>() -> Fact<T> {
    Fact::Skipped { reason: "not read".into() }
}

/// Everything inspected for one check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsFacts {
    pub region: String,
    /// The account that owns the API, when the check says so (spec or role); `None` means the
    /// endpoint's account is assumed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_account_id: Option<String>,
    pub api: Fact<ApiFacts>,
    pub stage: Fact<StageFacts>,
    pub deployment: Fact<DeploymentFacts>,
    pub method: Fact<MethodFacts>,
    pub endpoint: Fact<EndpointFacts>,
    pub vpc: Fact<VpcDnsAttributes>,
    pub client: Fact<ClientFacts>,
    /// The node's primary interface, found by the probe pod's host address: the source the
    /// endpoint sees when the VPC CNI source-NATs pod traffic.
    #[serde(default = "not_read::<ClientFacts>")]
    pub node: Fact<ClientFacts>,
    /// The CIDRs of the client's VPC, read when the endpoint is in another VPC: the VPC CNI
    /// source-NATs traffic to addresses outside them.
    #[serde(default = "not_read::<VpcCidrs>")]
    pub client_vpc: Fact<VpcCidrs>,
    /// The private custom domain, for `access: customDomain`.
    pub custom_domain: Fact<CustomDomainFacts>,
    /// The endpoint's and the client's security groups, read in one batched call.
    pub security_groups: Fact<Vec<crate::network::SecurityGroup>>,
    /// The network ACLs of the endpoint's and the client's subnets, read in one batched call.
    pub network_acls: Fact<Vec<crate::network::NetworkAcl>>,
    /// Subnet id → CIDR for the endpoint's and the client's subnets.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub subnet_cidrs: BTreeMap<String, String>,
    pub execution_log: Fact<ExecutionLogLookup>,
    /// Facts that could not be read, by name, with the reason (and missing permission).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub gaps: BTreeMap<String, String>,
}

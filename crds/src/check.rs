//! `PrivateApiConnectivityCheck` (`pvtapi.io/v1alpha1`): one private REST API, reached through
//! one interface VPC endpoint, checked on an interval from inside the cluster.
//!
//! Why each rule is here rather than in the operator: users keep these objects in Git and apply
//! them through GitOps tools. A typo must fail at `kubectl apply` (or in Argo CD's diff) with a
//! message naming the field, not minutes later as a `Stalled` condition nobody looks at. So every
//! constraint the operator relies on is an OpenAPI pattern, range or enum, or a CEL rule, and
//! the end-to-end suite proves the real apiserver enforces each one.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Affinity, ResourceRequirements, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::root_cause::RootCause;

/// Desired state of a connectivity check: which private API to call, through which interface
/// VPC endpoint, how, and how often.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "pvtapi.io",
    version = "v1alpha1",
    kind = "PrivateApiConnectivityCheck",
    plural = "privateapiconnectivitychecks",
    singular = "privateapiconnectivitycheck",
    shortname = "pac",
    category = "pvtapi",
    namespaced,
    status = "CheckStatus",
    derive = "PartialEq",
    printcolumn = r#"{"name":"API","type":"string","jsonPath":".spec.api.id"}"#,
    printcolumn = r#"{"name":"Endpoint","type":"string","jsonPath":".spec.endpoint.vpcEndpointId"}"#,
    printcolumn = r#"{"name":"Reachable","type":"string","jsonPath":".status.conditions[?(@.type==\"Reachable\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Reachable\")].reason"}"#,
    printcolumn = r#"{"name":"Last Run","type":"date","jsonPath":".status.lastRunTime"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.access != 'customDomain' || has(self.domainName)")
    .message("domainName is required when access is customDomain")
    .field_path(".domainName")
    .reason(Reason::FieldValueRequired))]
pub struct PrivateApiConnectivityCheckSpec {
    /// The private REST API to invoke.
    pub api: ApiTarget,

    /// The interface VPC endpoint (service `com.amazonaws.<region>.execute-api`) the call goes
    /// through.
    pub endpoint: EndpointRef,

    /// How the client addresses the API. `auto` picks from AWS facts: `privateDns` when the
    /// endpoint has private DNS on, else `endpointAlias` when the API is associated with the
    /// endpoint, else `endpointHost`.
    #[serde(default)]
    pub access: AccessMode,

    /// The private custom domain name to call when `access` is `customDomain`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z]{2,63}$"))]
    pub domain_name: Option<String>,

    /// Seconds between two runs of the check.
    #[serde(default = "default_interval_seconds")]
    #[schemars(range(min = 30, max = 86400))]
    pub interval_seconds: u32,

    /// Upper bound, in seconds, for each network step of one run (DNS, TCP, TLS, HTTP).
    #[serde(default = "default_timeout_seconds")]
    #[schemars(range(min = 1, max = 60))]
    pub timeout_seconds: u32,

    /// Where and how the short-lived probe pod runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<ProbePlacement>,

    /// Read-only AWS inspection that explains what the probe saw.
    #[serde(default)]
    pub aws: AwsInspection,
}

fn default_interval_seconds() -> u32 {
    300
}

fn default_timeout_seconds() -> u32 {
    5
}

/// Identifies the API, the stage and the one method + path the check invokes.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApiTarget {
    /// The REST API id: 10 lowercase letters or digits, e.g. `abcde12345`.
    #[schemars(regex(pattern = r"^[a-z0-9]{10}$"))]
    pub id: String,

    /// The AWS region the API lives in, e.g. `us-east-1`.
    #[schemars(regex(pattern = r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}$"))]
    pub region: String,

    /// The deployed stage to call, e.g. `prod`.
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[A-Za-z0-9_-]+$"))]
    pub stage: String,

    /// The resource path under the stage, starting with `/`.
    #[serde(default = "default_path")]
    #[schemars(length(min = 1, max = 1024), regex(pattern = r"^/[^\s?#]*$"))]
    pub path: String,

    /// The HTTP method to invoke.
    #[serde(default)]
    pub method: HttpMethod,

    /// HTTP statuses that count as healthy.
    #[serde(default = "default_expected_statuses")]
    #[schemars(length(min = 1, max = 16), inner(range(min = 100, max = 599)))]
    pub expected_statuses: Vec<u16>,

    /// The 12-digit account that owns the API, when it is not the operator's own account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]{12}$"))]
    pub account_id: Option<String>,
}

fn default_path() -> String {
    "/".to_owned()
}

fn default_expected_statuses() -> Vec<u16> {
    vec![200]
}

/// HTTP methods a check may invoke.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    #[default]
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
}

impl HttpMethod {
    /// The method as it appears on the wire and in execute-api ARNs.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Head => "HEAD",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Delete => "DELETE",
            HttpMethod::Options => "OPTIONS",
        }
    }
}

/// The interface VPC endpoint the check goes through.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EndpointRef {
    /// The endpoint id: `vpce-` followed by 8 to 17 hex digits.
    #[schemars(regex(pattern = r"^vpce-[0-9a-f]{8,17}$"))]
    pub vpc_endpoint_id: String,

    /// The endpoint's region, when it is not the API's. The endpoint, its VPC, subnets and
    /// security groups are read there. API Gateway only accepts calls through an endpoint in
    /// the API's own region, so a check that sets another region is there to show that
    /// mismatch (`CrossAccountRegionMismatch`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}$"))]
    pub region: Option<String>,
}

/// How the client addresses a private API (design.md §2).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
pub enum AccessMode {
    /// Choose from AWS facts (private DNS, endpoint association).
    #[default]
    Auto,
    /// `https://{api}.execute-api.{region}.amazonaws.com/{stage}` via the endpoint's private DNS.
    PrivateDns,
    /// `https://{api}-{vpce}.execute-api.{region}.amazonaws.com/{stage}` (Route 53 alias).
    EndpointAlias,
    /// `https://{vpce-dns-name}/{stage}` with `Host: {api}.execute-api.{region}.amazonaws.com`.
    EndpointHost,
    /// `https://{vpce-dns-name}/{stage}` with `x-apigw-api-id: {api}`.
    ApiIdHeader,
    /// `https://{domainName}/{basepath}`, a private custom domain.
    CustomDomain,
}

/// Placement and resources of the probe pod.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProbePlacement {
    /// Node labels the probe pod must match, to test from a given node group or zone.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,

    /// Tolerations of the probe pod.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,

    /// Affinity of the probe pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,

    /// Service account the probe pod runs as. Its token is never mounted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"))]
    pub service_account_name: Option<String>,

    /// Probe image; defaults to the operator's own image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub image: Option<String>,

    /// Resources of the probe container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Extra certificate authorities the probe trusts, on top of the public roots API Gateway's
    /// certificates chain to: for a TLS-inspecting middlebox in the path, or a private custom
    /// domain whose certificate comes from a private CA. A ConfigMap in the check's namespace,
    /// mounted read-only into the probe pod (the operator itself never reads it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<CaBundleRef>,

    /// Probe **as this workload** (in the check's namespace): the probe pod takes its network
    /// identity — pod labels (so NetworkPolicies and SecurityGroupPolicies select it), service
    /// account, node placement, DNS policy and config, and its proxy variables — and nothing
    /// else (no other env, never secrets). It never receives the workload's traffic (a readiness
    /// gate keeps it out of Service endpoints) and is never adopted (the check is its controller).
    /// `nodeSelector`, `tolerations`, `affinity` and `serviceAccountName` set here win.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_ref: Option<WorkloadRef>,
}

/// The workload a probe pod impersonates (network identity only).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.kind == 'Pod' ? (has(self.selector) && size(self.selector) > 0 && !has(self.name)) : (has(self.name) && !has(self.selector))")
    .message("a Deployment, StatefulSet or DaemonSet is named (name); pods are selected (selector, no name)")
    .reason(Reason::FieldValueInvalid))]
pub struct WorkloadRef {
    /// `Deployment`, `StatefulSet`, `DaemonSet`, or `Pod` (a running pod of `selector`).
    pub kind: WorkloadKind,

    /// The Deployment, StatefulSet or DaemonSet, in the check's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"))]
    pub name: Option<String>,

    /// For `kind: Pod`: the labels of the pods (a running one is used).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub selector: BTreeMap<String, String>,
}

/// What [`WorkloadRef`] names.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
    DaemonSet,
    Pod,
}

impl WorkloadKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::StatefulSet => "StatefulSet",
            WorkloadKind::DaemonSet => "DaemonSet",
            WorkloadKind::Pod => "Pod",
        }
    }
}

/// A PEM bundle of CA certificates in a ConfigMap key.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CaBundleRef {
    /// The ConfigMap's name, in the check's namespace.
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"))]
    pub config_map: String,

    /// The key holding the PEM certificates.
    #[serde(default = "default_ca_key")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub key: String,
}

fn default_ca_key() -> String {
    "ca.crt".to_owned()
}

/// Read-only AWS inspection settings.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AwsInspection {
    /// Read the API, stage, endpoint, policies, security groups and NACLs to explain failures.
    #[serde(default = "default_true")]
    pub inspect: bool,

    /// A role to assume to read an API owned by another account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}$"))]
    pub api_role_arn: Option<String>,
}

impl Default for AwsInspection {
    fn default() -> Self {
        AwsInspection { inspect: true, api_role_arn: None }
    }
}

fn default_true() -> bool {
    true
}

/// Observed state of a check, written by the operator with server-side apply.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CheckStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `Ready`, `Reconciling`, `Stalled`, the outcome `Reachable` (reason = root-cause code) and
    /// per-area conditions (`DnsResolved`, `EndpointReachable`, `TlsEstablished`, `Authorized`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,

    /// When the last run finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_time: Option<Time>,

    /// When the next run is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run_time: Option<Time>,

    /// The one root cause of the last run (`Healthy` when the API answered as expected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_cause: Option<RootCause>,

    /// One line: what is wrong and what to do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub summary: Option<String>,

    /// The last run's compact report (evidence, remediation, timings). The operator keeps it
    /// under 8 KiB serialized, dropping detail in a documented order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "report_schema")]
    pub report: Option<serde_json::Value>,

    /// The last results, newest first, at most [`MAX_HISTORY`]: intermittent failures are
    /// visible here without a metrics stack.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub history: Vec<RunResult>,

    /// Share of the runs in `history` whose result was `Healthy`, from 0 to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_ratio: Option<f64>,

    /// When a run last found the API healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success_time: Option<Time>,

    /// When the current run of failures began (absent while healthy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<Time>,

    /// The last value of the `pvtapi.io/run-now` annotation the operator acted on: a different
    /// value runs the check at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub last_run_now: Option<String>,

    /// The id of the last run whose result this status holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub last_run_id: Option<String>,
}

/// How many results `status.history` keeps.
pub const MAX_HISTORY: usize = 20;

/// One run's result in `status.history`.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RunResult {
    /// When the run finished.
    pub time: Time,
    /// The run's root cause (`Healthy`, a failure code, or `ProbeFailed` when the probe pod
    /// could not run or report).
    pub root_cause: RootCause,
    /// The run's id (the probe pod's `pvtapi.io/run` label).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub run_id: Option<String>,
    /// Wall time from probe pod creation to the result, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

/// The size bound the operator applies to `status.report`.
pub const MAX_REPORT_BYTES: usize = 8 * 1024;

fn conditions_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut schema = generator.subschema_for::<Vec<Condition>>();
    schema.insert("x-kubernetes-list-type".into(), "map".into());
    schema.insert("x-kubernetes-list-map-keys".into(), serde_json::json!(["type"]));
    schema.insert("maxItems".into(), 32.into());
    schema
}

fn report_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "nullable": true,
        "x-kubernetes-preserve-unknown-fields": true,
        "description": "The last run's compact report (evidence, remediation, timings), kept under 8 KiB."
    })
}

//! AWS facts for the controller: one inspector per (region, API role), a shared facts cache,
//! and call counting.
//!
//! Why: a thousand checks on one API and endpoint must not cost a thousand sets of AWS calls per
//! interval. The engine's [`Inspector`] already caches each resource with single-flight; on top,
//! this keeps one inspector per region and role (so those caches are shared across checks) and
//! a whole-facts cache keyed by what a check asks (hits and misses are metrics). Its TTL is
//! shorter than the shortest interval, so a run never explains itself with facts older than the
//! previous run. Failed-run lookups of a request id in the execution logs are never cached, nor
//! are facts that could not be read (a transient failure is not repeated for a whole TTL).
//! Credentials are checked once per inspector and re-checked after a while; they are never
//! logged or written anywhere.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use moka::future::Cache;
use pvtapi_crds::{AccessMode, PrivateApiConnectivityCheckSpec, validate};
use pvtapi_engine::aws::{AwsFacts, CallRecorder, InspectRequest, Inspector, SdkOptions};

use crate::metrics::Metrics;

/// How long "no usable credentials" is believed before trying again.
const CREDENTIALS_RECHECK: Duration = Duration::from_secs(60);

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct InspectorKey {
    /// The API's region.
    region: String,
    /// The endpoint's (and VPC's) region: `spec.endpoint.region`, else the API's.
    network_region: String,
    role: Option<String>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct FactsKey {
    inspector: InspectorKey,
    api_id: String,
    stage: String,
    path: String,
    method: String,
    vpce_id: String,
    client_ip: Option<IpAddr>,
    node_ip: Option<IpAddr>,
    custom_domain: Option<String>,
    api_account_id: Option<String>,
}

#[derive(Clone, Debug)]
enum Slot {
    Ready(Box<Inspector>),
    Unavailable { reason: String, since: Instant },
}

/// Settings for the SDK clients.
#[derive(Clone, Debug)]
pub struct AwsConfig {
    /// Overrides every service endpoint (tests with moto); `AWS_ENDPOINT_URL` works as well.
    pub endpoint_url: Option<String>,
    /// How old the facts explaining a failure may be (and those of every run without a clean
    /// probe): shorter than the shortest interval, so a failure is never explained with facts
    /// older than the previous run.
    pub cache_ttl: Duration,
    /// How old the facts of a run whose probe saw nothing wrong may be (they only feed
    /// advisories), and those a probe pod is built from: a thousand healthy checks on one API
    /// then cost one set of AWS calls per this period, not per `cache_ttl`.
    pub healthy_max_age: Duration,
}

impl AwsConfig {
    /// The caches keep entries this long: the longer of the two ages.
    fn retention(&self) -> Duration {
        self.cache_ttl.max(self.healthy_max_age)
    }
}

/// The shared AWS side of the controller.
#[derive(Debug)]
pub struct AwsFactsService {
    config: AwsConfig,
    inspectors: tokio::sync::Mutex<HashMap<InspectorKey, Slot>>,
    facts: Cache<FactsKey, (Instant, AwsFacts)>,
    recorder: CallRecorder,
    metrics: Arc<Metrics>,
    drain_lock: Mutex<()>,
}

/// What a run needs from AWS facts before its probe pod is built.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodHints {
    /// The endpoint's DNS names (`--vpce-dns`).
    pub vpce_dns_names: Vec<String>,
    /// `access: auto` resolved from the facts, with the reason.
    pub access: Option<(AccessMode, String)>,
}

impl AwsFactsService {
    pub fn new(config: AwsConfig, metrics: Arc<Metrics>) -> AwsFactsService {
        let facts = Cache::builder().max_capacity(10_000).time_to_live(config.retention()).build();
        AwsFactsService {
            config,
            inspectors: tokio::sync::Mutex::new(HashMap::new()),
            facts,
            recorder: CallRecorder::default(),
            metrics,
            drain_lock: Mutex::new(()),
        }
    }

    /// Moves the recorded AWS calls into the `aws_calls` counter.
    pub fn drain_calls(&self) {
        let _guard = self.drain_lock.lock();
        for call in self.recorder.drain() {
            self.metrics.aws_call(&call);
        }
    }

    fn key(spec: &PrivateApiConnectivityCheckSpec) -> InspectorKey {
        InspectorKey {
            region: spec.api.region.clone(),
            network_region: spec.endpoint.region.clone().unwrap_or_else(|| spec.api.region.clone()),
            role: spec.aws.api_role_arn.clone(),
        }
    }

    /// The inspector for a spec, or why AWS cannot be read (no usable credentials).
    async fn inspector(&self, spec: &PrivateApiConnectivityCheckSpec) -> Result<Inspector, String> {
        let key = Self::key(spec);
        let mut map = self.inspectors.lock().await;
        match map.get(&key) {
            Some(Slot::Ready(i)) => return Ok(i.as_ref().clone()),
            Some(Slot::Unavailable { reason, since }) if since.elapsed() < CREDENTIALS_RECHECK => {
                return Err(reason.clone());
            }
            _ => {}
        }
        let options = |region: &str| SdkOptions {
            region: Some(region.to_owned()),
            endpoint_url: self.config.endpoint_url.clone(),
            max_attempts: 3,
            operation_timeout: Duration::from_secs(15),
        };
        // The API side in the API's region; the network side (endpoint, VPC, groups) in the endpoint's.
        let config = pvtapi_engine::aws::load_sdk_config(&options(&key.region)).await;
        let network = if key.network_region == key.region {
            config.clone()
        } else {
            pvtapi_engine::aws::load_sdk_config(&options(&key.network_region)).await
        };
        let slot = match pvtapi_engine::aws::credentials_available(&config, Duration::from_secs(10)).await {
            Ok(()) => {
                let api_config = match &key.role {
                    Some(role) => pvtapi_engine::aws::assume_role(&config, role).await,
                    None => config.clone(),
                };
                Slot::Ready(Box::new(Inspector::cross_account(
                    &network,
                    &api_config,
                    self.config.retention(),
                    Some(self.recorder.clone()),
                )))
            }
            Err(err) => {
                tracing::warn!(region = %key.region, error = %err, "no usable AWS credentials: inspection skipped");
                Slot::Unavailable {
                    reason: format!(
                        "not read: no usable AWS credentials for the operator ({err}); give its service account an IAM role (IRSA or EKS Pod Identity) with deploy/iam-policy.json"
                    ),
                    since: Instant::now(),
                }
            }
        };
        map.insert(key, slot.clone());
        match slot {
            Slot::Ready(i) => Ok(*i),
            Slot::Unavailable { reason, .. } => Err(reason),
        }
    }

    fn request(
        spec: &PrivateApiConnectivityCheckSpec,
        client_ip: Option<IpAddr>,
        node_ip: Option<IpAddr>,
        request_id: Option<String>,
    ) -> InspectRequest {
        let api_account_id = spec
            .api
            .account_id
            .clone()
            .or_else(|| spec.aws.api_role_arn.as_deref().and_then(validate::role_account).map(str::to_owned));
        InspectRequest {
            api_id: spec.api.id.clone(),
            stage: spec.api.stage.clone(),
            path: spec.api.path.clone(),
            method: spec.api.method.as_str().to_owned(),
            vpce_id: spec.endpoint.vpc_endpoint_id.clone(),
            client_ip,
            node_ip,
            request_id,
            request_time: Some(SystemTime::now()),
            include_deployment: false,
            custom_domain: (spec.access == AccessMode::CustomDomain).then(|| spec.domain_name.clone()).flatten(),
            api_account_id,
        }
    }

    /// The facts for a check. `request_id` (a failed invoke's) adds the execution-log lookup;
    /// like any run that is not clean it bypasses the facts cache (the engine's per-resource
    /// caches still apply). `probe_clean`: the
    /// probe saw nothing wrong, so facts up to `healthy_max_age` old will do; otherwise they are
    /// at most `cache_ttl` old. `Err(reason)` when AWS cannot be read at all.
    pub async fn facts(
        &self,
        spec: &PrivateApiConnectivityCheckSpec,
        client_ip: Option<IpAddr>,
        node_ip: Option<IpAddr>,
        request_id: Option<String>,
        probe_clean: bool,
    ) -> Result<AwsFacts, String> {
        let max_age = if probe_clean { self.config.healthy_max_age } else { self.config.cache_ttl };
        let inspector = self.inspector(spec).await?.with_max_age(max_age);
        let req = Self::request(spec, client_ip, node_ip, request_id);
        // The whole-facts cache serves clean runs only: an entry is as old as its oldest part,
        // which its own read time does not tell, while the per-resource caches hold a failing
        // run to `cache_ttl` exactly.
        let facts = if req.request_id.is_some() || !probe_clean {
            self.metrics.aws_cache(false);
            inspector.inspect(&req).await
        } else {
            let key = FactsKey {
                inspector: Self::key(spec),
                api_id: req.api_id.clone(),
                stage: req.stage.clone(),
                path: req.path.clone(),
                method: req.method.clone(),
                vpce_id: req.vpce_id.clone(),
                client_ip: req.client_ip,
                node_ip: req.node_ip,
                custom_domain: req.custom_domain.clone(),
                api_account_id: req.api_account_id.clone(),
            };
            if let Some((at, _)) = self.facts.get(&key).await
                && at.elapsed() > max_age
            {
                self.facts.invalidate(&key).await;
            }
            let entry = self
                .facts
                .entry(key.clone())
                .or_insert_with(async { (Instant::now(), inspector.inspect(&req).await) })
                .await;
            self.metrics.aws_cache(!entry.is_fresh());
            let (_, facts) = entry.into_value();
            // Facts with gaps (throttling, a 5xx, a network error, a missing permission) are not
            // kept: the next run asks again rather than repeating a transient failure.
            if !facts.gaps.is_empty() {
                self.facts.invalidate(&key).await;
            }
            facts
        };
        self.drain_calls();
        Ok(facts)
    }

    /// What the probe pod needs from AWS before it runs: the endpoint's DNS names and the
    /// `auto` access choice — two cached reads (endpoint, API), not a whole inspection: the
    /// network layer waits for the pod's address. `Err(reason)` when AWS cannot be read at all.
    pub async fn pod_hints(&self, spec: &PrivateApiConnectivityCheckSpec) -> Result<PodHints, String> {
        let inspector = self.inspector(spec).await?.with_max_age(self.config.healthy_max_age);
        let (api, endpoint) = inspector.access_facts(&spec.api.id, &spec.endpoint.vpc_endpoint_id).await;
        self.drain_calls();
        let vpce_dns_names = endpoint
            .known()
            .map(|e| e.dns_entries.iter().map(|d| d.dns_name.trim_start_matches("*.").to_owned()).collect())
            .unwrap_or_default();
        let access = match spec.access {
            AccessMode::Auto => pvtapi_engine::diagnosis::choose_access_from(
                api.known(),
                endpoint.known(),
                &spec.endpoint.vpc_endpoint_id,
            ),
            _ => None,
        };
        Ok(PodHints { vpce_dns_names, access })
    }
}

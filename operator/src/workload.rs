//! Probe as the workload (`spec.probe.workloadRef`): the network identity a probe pod takes.
//!
//! Why: what decides whether *a workload* reaches the endpoint is often its own identity — the
//! NetworkPolicies and SecurityGroupPolicies that select its labels, its service account, the
//! nodes it runs on, its DNS settings, its proxy variables. A probe with its own labels can be
//! healthy while the workload fails. So the probe pod copies exactly those, and nothing else:
//!
//! - labels of the pod template, minus the per-revision ones (`pod-template-hash`, …);
//! - `serviceAccountName` (its token is still never mounted), `nodeSelector`, `affinity`,
//!   `tolerations`, `dnsPolicy`, `dnsConfig`;
//! - the proxy variables (`HTTPS_PROXY`, `NO_PROXY`, … in both casings) from `env` and from
//!   `envFrom` ConfigMaps — as references the kubelet resolves (`configMapKeyRef`, optional), so
//!   the operator never reads a ConfigMap. Values from Secrets are never copied: they are named
//!   in the notes instead.
//!
//! The risks of a pod that matches the workload's selectors, and what stops each (tested on
//! the real node): it must never receive the workload's traffic — a readiness gate nobody sets
//! keeps it not-ready, so Services never route to it; it must never be adopted or counted by
//! the workload's controller — the check is its controller owner, and controllers only adopt
//! orphans; it must not outlive its run — `activeDeadlineSeconds` and the operator's cleanup,
//! as for every probe pod; it must not gain privileges — it keeps the `restricted` security
//! context whatever the workload runs with (a `hostNetwork` workload is noted, not copied).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{
    Affinity, ConfigMapKeySelector, EnvVar, EnvVarSource, Pod, PodDNSConfig, PodSpec, Toleration,
};
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use pvtapi_crds::{WorkloadKind, WorkloadRef};
use pvtapi_engine::network::kubernetes::PER_REVISION_LABELS;

use crate::probe_pod::LABEL_RUN;

/// The proxy variables a workload's HTTP client reads (curl's and most runtimes' names).
pub const PROXY_VARIABLES: &[&str] =
    &["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"];

/// The readiness gate that keeps a workload-identity probe pod out of Service endpoints:
/// nobody ever sets this condition, so the pod is never Ready.
pub const NEVER_READY_GATE: &str = "pvtapi.io/probe-never-serves";

/// The network identity a probe pod takes from a workload.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkloadIdentity {
    /// `Deployment/orders`, or `Pod/orders-7d9f…` for a selected pod.
    pub source: String,
    pub labels: BTreeMap<String, String>,
    pub service_account_name: Option<String>,
    pub node_selector: Option<BTreeMap<String, String>>,
    pub affinity: Option<Affinity>,
    pub tolerations: Option<Vec<Toleration>>,
    pub dns_policy: Option<String>,
    pub dns_config: Option<PodDNSConfig>,
    /// The proxy variables, as values or ConfigMap references.
    pub proxy_env: Vec<EnvVar>,
    /// What was deliberately not copied (Secret-sourced proxy variables, hostNetwork).
    pub notes: Vec<String>,
}

/// The identity from a pod template's labels and spec (pure).
pub fn identity_from(source: String, labels: &BTreeMap<String, String>, spec: &PodSpec) -> WorkloadIdentity {
    let mut notes = Vec::new();
    let labels = labels
        .iter()
        .filter(|(k, _)| !PER_REVISION_LABELS.contains(&k.as_str()) && k.as_str() != LABEL_RUN)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if spec.host_network == Some(true) {
        notes.push(format!(
            "{source} uses hostNetwork: the probe runs in the pod network (Pod Security restricted); the workload's traffic leaves from the node's address"
        ));
    }
    // envFrom in order (a later source wins), then env (wins over envFrom): the kubelet's order.
    let mut proxy_env: BTreeMap<String, EnvVar> = BTreeMap::new();
    for c in spec.containers.iter().take(1) {
        for from in c.env_from.iter().flatten() {
            let prefix = from.prefix.as_deref().unwrap_or("");
            if let Some(cm) = &from.config_map_ref {
                for var in PROXY_VARIABLES {
                    let Some(key) = var.strip_prefix(prefix) else { continue };
                    let reference = EnvVarSource {
                        config_map_key_ref: Some(ConfigMapKeySelector {
                            name: cm.name.clone(),
                            key: key.to_owned(),
                            optional: Some(true),
                        }),
                        ..EnvVarSource::default()
                    };
                    let e = EnvVar { name: (*var).to_owned(), value: None, value_from: Some(reference) };
                    proxy_env.insert(e.name.clone(), e);
                }
            }
            if let Some(secret) = &from.secret_ref {
                notes.push(format!(
                    "envFrom Secret {} of {source} is not copied: any proxy variables in it are not applied to the probe",
                    secret.name
                ));
            }
        }
        for e in c.env.iter().flatten().filter(|e| PROXY_VARIABLES.contains(&e.name.as_str())) {
            let copied = match e.value_from.as_ref() {
                None => Some(EnvVar { name: e.name.clone(), value: e.value.clone(), value_from: None }),
                Some(v) if v.config_map_key_ref.is_some() => Some(EnvVar {
                    name: e.name.clone(),
                    value: None,
                    value_from: Some(EnvVarSource {
                        config_map_key_ref: v.config_map_key_ref.clone(),
                        ..EnvVarSource::default()
                    }),
                }),
                Some(_) => {
                    notes.push(format!(
                        "{} of {source} comes from a Secret or a field reference: not copied to the probe",
                        e.name
                    ));
                    proxy_env.remove(&e.name);
                    None
                }
            };
            if let Some(c) = copied {
                proxy_env.insert(c.name.clone(), c);
            }
        }
    }
    let deduped: Vec<EnvVar> = proxy_env.into_values().collect();
    WorkloadIdentity {
        source,
        labels,
        service_account_name: spec.service_account_name.clone().filter(|s| !s.is_empty()),
        node_selector: spec.node_selector.clone().filter(|m| !m.is_empty()),
        affinity: spec.affinity.clone(),
        tolerations: spec.tolerations.clone().filter(|t| !t.is_empty()),
        dns_policy: spec.dns_policy.clone(),
        dns_config: spec.dns_config.clone(),
        proxy_env: deduped,
        notes,
    }
}

/// Why a workload's identity could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    #[error("{0} not found in namespace {1}")]
    NotFound(String, String),
    #[error("no running pod in namespace {0} matches {1} (not counting probe pods)")]
    NoPod(String, String),
    #[error("reading {0}: {1}")]
    Api(String, kube::Error),
}

/// Reads the workload named by `r` in `ns` and returns its identity.
pub async fn resolve(client: &Client, ns: &str, r: &WorkloadRef) -> Result<WorkloadIdentity, WorkloadError> {
    let name = r.name.clone().unwrap_or_default();
    let what = format!("{}/{name}", r.kind.as_str());
    let not_found = |e: kube::Error| match &e {
        kube::Error::Api(s) if s.code == 404 => WorkloadError::NotFound(what.clone(), ns.to_owned()),
        _ => WorkloadError::Api(what.clone(), e),
    };
    let template = match r.kind {
        WorkloadKind::Deployment => Api::<Deployment>::namespaced(client.clone(), ns)
            .get(&name)
            .await
            .map_err(not_found)?
            .spec
            .map(|s| s.template),
        WorkloadKind::StatefulSet => Api::<StatefulSet>::namespaced(client.clone(), ns)
            .get(&name)
            .await
            .map_err(not_found)?
            .spec
            .map(|s| s.template),
        WorkloadKind::DaemonSet => Api::<DaemonSet>::namespaced(client.clone(), ns)
            .get(&name)
            .await
            .map_err(not_found)?
            .spec
            .map(|s| s.template),
        WorkloadKind::Pod => {
            let selector = r.selector.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
            let pods = Api::<Pod>::namespaced(client.clone(), ns)
                .list(&ListParams::default().labels(&selector))
                .await
                .map_err(|e| WorkloadError::Api(format!("pods {selector}"), e))?;
            let pod = pods
                .items
                .into_iter()
                .filter(|p| !p.labels().contains_key(LABEL_RUN))
                .find(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
                .ok_or_else(|| WorkloadError::NoPod(ns.to_owned(), selector.clone()))?;
            let source = format!("Pod/{}", pod.name_any());
            let spec = pod.spec.clone().unwrap_or_default();
            return Ok(identity_from(source, pod.labels(), &spec));
        }
    };
    let template = template.unwrap_or_default();
    let labels = template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
    Ok(identity_from(what, &labels, &template.spec.unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> PodSpec {
        serde_norway::from_str(yaml).expect("pod spec")
    }

    #[test]
    fn only_the_network_identity_is_taken_and_never_secrets() {
        let s = spec(
            r#"
serviceAccountName: orders
nodeSelector: {zone: a}
dnsPolicy: None
dnsConfig: {nameservers: [10.0.0.2]}
tolerations: [{key: dedicated, operator: Exists}]
containers:
  - name: app
    image: orders:1
    envFrom:
      - configMapRef: {name: proxy-settings}
      - secretRef: {name: db-creds}
    env:
      - {name: DATABASE_URL, value: "postgres://u:p@db/x"}
      - {name: HTTPS_PROXY, value: "http://proxy.corp:3128"}
      - {name: NO_PROXY, valueFrom: {configMapKeyRef: {name: np, key: list}}}
      - {name: https_proxy, valueFrom: {secretKeyRef: {name: p, key: url}}}
"#,
        );
        let labels = BTreeMap::from([
            ("app".to_owned(), "orders".to_owned()),
            ("pod-template-hash".to_owned(), "7d9f".to_owned()),
        ]);
        let id = identity_from("Deployment/orders".into(), &labels, &s);
        assert_eq!(id.labels, BTreeMap::from([("app".to_owned(), "orders".to_owned())]));
        assert_eq!(id.service_account_name.as_deref(), Some("orders"));
        assert_eq!(id.dns_policy.as_deref(), Some("None"));
        assert!(id.dns_config.is_some() && id.tolerations.is_some() && id.node_selector.is_some());
        let names: Vec<&str> = id.proxy_env.iter().map(|e| e.name.as_str()).collect();
        assert!(!names.contains(&"DATABASE_URL"), "{names:?}");
        let https = id.proxy_env.iter().find(|e| e.name == "HTTPS_PROXY").expect("HTTPS_PROXY");
        assert_eq!(https.value.as_deref(), Some("http://proxy.corp:3128"), "env wins over envFrom");
        let no_proxy = id.proxy_env.iter().find(|e| e.name == "NO_PROXY").expect("NO_PROXY");
        let r = no_proxy.value_from.as_ref().and_then(|v| v.config_map_key_ref.as_ref()).expect("a reference");
        assert_eq!((r.name.as_str(), r.key.as_str()), ("np", "list"));
        // The envFrom ConfigMap supplies the rest, optionally, by reference.
        let lower = id.proxy_env.iter().find(|e| e.name == "no_proxy").expect("no_proxy from envFrom");
        assert!(
            lower
                .value_from
                .as_ref()
                .and_then(|v| v.config_map_key_ref.as_ref())
                .is_some_and(|r| r.name == "proxy-settings")
        );
        // Secrets: never, and said so.
        assert!(id.proxy_env.iter().all(|e| e.value_from.as_ref().is_none_or(|v| v.secret_key_ref.is_none())));
        assert!(id.notes.iter().any(|n| n.contains("db-creds")), "{:?}", id.notes);
        assert!(id.notes.iter().any(|n| n.contains("https_proxy")), "{:?}", id.notes);
        assert!(!format!("{id:?}").contains("u:p@db"), "no other env is copied");
    }

    #[test]
    fn an_envfrom_prefix_maps_to_its_keys() {
        let s = spec(
            r#"
containers:
  - name: app
    envFrom:
      - {prefix: "", configMapRef: {name: a}}
      - {prefix: "NO_", configMapRef: {name: b}}
"#,
        );
        let id = identity_from("Pod/x".into(), &BTreeMap::new(), &s);
        let no_proxy = id.proxy_env.iter().find(|e| e.name == "NO_PROXY").expect("NO_PROXY");
        let r = no_proxy.value_from.as_ref().and_then(|v| v.config_map_key_ref.as_ref()).unwrap();
        assert_eq!((r.name.as_str(), r.key.as_str()), ("b", "PROXY"), "the later envFrom source wins");
    }
}

//! `kubectl pvtapi discover`: which private APIs do the workloads call? Finds execute-api
//! hostnames in pods' container env and in ConfigMaps (also those pulled in with `envFrom`), and
//! prints ready-to-commit `PrivateApiConnectivityCheck` manifests for them.
//!
//! Why from the workloads: the checks worth having are the calls the workloads really make, with
//! the access mode their URL implies (design.md §2) — a URL through the endpoint's own DNS name,
//! an alias name, or the API's private DNS name each fail in their own ways. Parsing is pure
//! (`find_calls`); the cluster side only lists pods and ConfigMaps.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::ResourceExt;
use pvtapi_crds::AccessMode;
use regex::Regex;

/// One call a workload makes, as far as its URL tells.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Call {
    pub host: String,
    pub api_id: Option<String>,
    pub vpce_id: Option<String>,
    pub region: String,
    pub access: AccessMode,
    /// The first path segment (the stage) and the rest, when the value is a URL.
    pub stage: Option<String>,
    pub path: Option<String>,
}

/// Where a call was found.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    pub namespace: String,
    /// `deployment/orders`, `pod/x`, `configmap/settings`.
    pub workload: String,
    /// `env ORDERS_URL`, `configmap/settings key api.url`.
    pub source: String,
    pub call: Call,
}

static HOST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?:https://)?\b([a-z0-9][a-z0-9-]*)\.execute-api\.([a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2})\.(vpce\.)?amazonaws\.com(/[^\s'\x22,;]*)?",
    )
    .unwrap_or_else(|e| panic!("discover host pattern: {e}"))
});
static API_ID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9]{10}$").unwrap_or_else(|e| panic!("api id pattern: {e}")));
static ALIAS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^([a-z0-9]{10})-(vpce-[0-9a-f]{8,17})$").unwrap_or_else(|e| panic!("alias pattern: {e}"))
});
static VPCE_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(vpce-[0-9a-f]{8,17})-[a-z0-9]+(?:-[a-z]{2}-[a-z]+-[0-9][a-z])?$")
        .unwrap_or_else(|e| panic!("vpce name pattern: {e}"))
});

/// Every execute-api call in `text` (an env value, a ConfigMap value), with the access mode its
/// hostname implies. Bounded: at most 32 per value, values over 64 KiB are cut.
pub fn find_calls(text: &str) -> Vec<Call> {
    let text = if text.len() > 64 * 1024 {
        let mut end = 64 * 1024;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        &text[..end]
    } else {
        text
    };
    let mut out = Vec::new();
    for m in HOST.captures_iter(text).take(32) {
        let label = m[1].to_ascii_lowercase();
        let region = m[2].to_ascii_lowercase();
        let vpce_domain = m.get(3).is_some();
        let (stage, path) = split_path(m.get(4).map(|p| p.as_str()));
        let host = if vpce_domain {
            format!("{label}.execute-api.{region}.vpce.amazonaws.com")
        } else {
            format!("{label}.execute-api.{region}.amazonaws.com")
        };
        let call = if vpce_domain {
            let Some(c) = VPCE_NAME.captures(&label) else { continue };
            // The endpoint's own name: the API is named by a Host or x-apigw-api-id header.
            Call {
                host,
                api_id: None,
                vpce_id: Some(c[1].to_owned()),
                region,
                access: AccessMode::EndpointHost,
                stage,
                path,
            }
        } else if let Some(c) = ALIAS.captures(&label) {
            Call {
                host,
                api_id: Some(c[1].to_owned()),
                vpce_id: Some(c[2].to_owned()),
                region,
                access: AccessMode::EndpointAlias,
                stage,
                path,
            }
        } else if API_ID.is_match(&label) {
            Call { host, api_id: Some(label), vpce_id: None, region, access: AccessMode::PrivateDns, stage, path }
        } else {
            continue;
        };
        out.push(call);
    }
    out
}

/// `/prod/items/1?x` → (`prod`, `/items/1`).
fn split_path(p: Option<&str>) -> (Option<String>, Option<String>) {
    let Some(p) = p else { return (None, None) };
    let p = p.split(['?', '#']).next().unwrap_or_default();
    let mut parts = p.trim_start_matches('/').splitn(2, '/');
    let stage =
        parts.next().filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'));
    let rest = parts.next().map(|r| format!("/{r}"));
    (stage.map(str::to_owned), stage.and(rest))
}

/// The workload a pod belongs to: its controller, with a ReplicaSet's hash taken off.
fn workload_of(pod: &Pod) -> String {
    let Some(owner) = pod.owner_references().iter().find(|o| o.controller == Some(true)) else {
        return format!("pod/{}", pod.name_any());
    };
    if owner.kind == "ReplicaSet"
        && let Some(hash) = pod.labels().get("pod-template-hash")
        && let Some(deployment) = owner.name.strip_suffix(&format!("-{hash}"))
    {
        return format!("deployment/{deployment}");
    }
    format!("{}/{}", owner.kind.to_ascii_lowercase(), owner.name)
}

/// Every call in the pods' env and the ConfigMaps, deduplicated per (namespace, workload,
/// source, host).
pub fn findings(pods: &[Pod], config_maps: &[ConfigMap]) -> Vec<Finding> {
    let mut out = Vec::new();
    // ConfigMaps, and which workloads pull them in with envFrom.
    let mut users: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for pod in pods {
        let ns = pod.namespace().unwrap_or_default();
        let workload = workload_of(pod);
        for c in pod.spec.iter().flat_map(|s| s.containers.iter().chain(s.init_containers.iter().flatten())) {
            for e in c.env.iter().flatten() {
                for call in e.value.as_deref().map(find_calls).unwrap_or_default() {
                    out.push(Finding {
                        namespace: ns.clone(),
                        workload: workload.clone(),
                        source: format!("env {}", e.name),
                        call,
                    });
                }
            }
            for from in c.env_from.iter().flatten() {
                if let Some(cm) = &from.config_map_ref {
                    users.entry((ns.clone(), cm.name.clone())).or_default().push(workload.clone());
                }
            }
        }
    }
    for cm in config_maps {
        let ns = cm.namespace().unwrap_or_default();
        let name = cm.name_any();
        let mut workloads = users.get(&(ns.clone(), name.clone())).cloned().unwrap_or_default();
        workloads.sort();
        workloads.dedup();
        if workloads.is_empty() {
            workloads.push(format!("configmap/{name}"));
        }
        for (key, value) in cm.data.iter().flatten() {
            for call in find_calls(value) {
                for w in &workloads {
                    out.push(Finding {
                        namespace: ns.clone(),
                        workload: w.clone(),
                        source: format!("configmap/{name} key {key}"),
                        call: call.clone(),
                    });
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// A check name from the workload and the API: `orders-abcde12345`.
fn check_name(f: &Finding) -> String {
    let base = f.workload.rsplit('/').next().unwrap_or("api");
    let id = f.call.api_id.as_deref().or(f.call.vpce_id.as_deref()).unwrap_or("api");
    let mut name: String = format!("{base}-{id}")
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' })
        .collect();
    name.truncate(63);
    name.trim_matches('-').to_owned()
}

/// Ready-to-commit manifests, one per (namespace, API, endpoint, access). What a URL cannot tell
/// is left for the user, with a comment, so `kubectl apply` refuses it until it is filled in.
pub fn manifests(findings: &[Finding]) -> String {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = String::new();
    for f in findings {
        let c = &f.call;
        if !seen.insert((f.namespace.clone(), c.api_id.clone(), c.vpce_id.clone(), c.access)) {
            continue;
        }
        let access =
            serde_json::to_value(c.access).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        out.push_str("---\n");
        out.push_str(&format!("# {} calls {} ({}); access {access}\n", f.workload, c.host, f.source));
        out.push_str("apiVersion: pvtapi.io/v1alpha1\nkind: PrivateApiConnectivityCheck\nmetadata:\n");
        out.push_str(&format!("  name: {}\n  namespace: {}\n", check_name(f), f.namespace));
        out.push_str("spec:\n  api:\n");
        match &c.api_id {
            Some(id) => out.push_str(&format!("    id: {id}\n")),
            None => out.push_str("    # id: the API this workload names in its Host or x-apigw-api-id header\n"),
        }
        out.push_str(&format!("    region: {}\n", c.region));
        match &c.stage {
            Some(s) => out.push_str(&format!("    stage: {s}\n")),
            None => out.push_str("    # stage: not in the URL; the stage the workload calls\n"),
        }
        if let Some(p) = &c.path {
            out.push_str(&format!("    path: {p}\n"));
        }
        match &c.vpce_id {
            Some(v) => out.push_str(&format!("  endpoint:\n    vpcEndpointId: {v}\n")),
            // Left empty on purpose: the apiserver refuses it naming spec.endpoint.vpcEndpointId.
            None => out.push_str(
                "  endpoint: {}  # vpcEndpointId: the execute-api interface endpoint with private DNS in this cluster's VPC\n",
            ),
        }
        out.push_str(&format!("  access: {access}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_hostname_shape_implies_its_access_mode() {
        /// region, API, endpoint, access, stage, path.
        type Want<'a> = (&'a str, Option<&'a str>, Option<&'a str>, AccessMode, Option<&'a str>, Option<&'a str>);
        let cases: &[(&str, Option<Want>)] = &[
            (
                "https://abcde12345.execute-api.us-east-1.amazonaws.com/prod/orders?x=1",
                Some(("us-east-1", Some("abcde12345"), None, AccessMode::PrivateDns, Some("prod"), Some("/orders"))),
            ),
            (
                "ORDERS=https://abcde12345-vpce-0123456789abcdef0.execute-api.eu-west-1.amazonaws.com/v1",
                Some((
                    "eu-west-1",
                    Some("abcde12345"),
                    Some("vpce-0123456789abcdef0"),
                    AccessMode::EndpointAlias,
                    Some("v1"),
                    None,
                )),
            ),
            (
                "https://vpce-0123456789abcdef0-ab12cd34.execute-api.us-east-1.vpce.amazonaws.com/prod/health",
                Some((
                    "us-east-1",
                    None,
                    Some("vpce-0123456789abcdef0"),
                    AccessMode::EndpointHost,
                    Some("prod"),
                    Some("/health"),
                )),
            ),
            (
                "vpce-0123456789abcdef0-ab12cd34-us-east-1a.execute-api.us-east-1.vpce.amazonaws.com",
                Some(("us-east-1", None, Some("vpce-0123456789abcdef0"), AccessMode::EndpointHost, None, None)),
            ),
            (
                "https://ABCDE12345.EXECUTE-API.US-EAST-1.AMAZONAWS.COM",
                Some(("us-east-1", Some("abcde12345"), None, AccessMode::PrivateDns, None, None)),
            ),
            ("https://example.com/prod", None),
            ("https://toolongid1234.execute-api.us-east-1.amazonaws.com/prod", None),
            ("https://abcde12345.execute-api.nowhere.amazonaws.com/prod", None),
        ];
        for (text, want) in cases {
            let got = find_calls(text);
            match want {
                None => assert!(got.is_empty(), "{text}: {got:?}"),
                Some((region, api, vpce, access, stage, path)) => {
                    assert_eq!(got.len(), 1, "{text}: {got:?}");
                    let c = &got[0];
                    assert_eq!(
                        (
                            c.region.as_str(),
                            c.api_id.as_deref(),
                            c.vpce_id.as_deref(),
                            c.access,
                            c.stage.as_deref(),
                            c.path.as_deref()
                        ),
                        (*region, *api, *vpce, *access, *stage, *path),
                        "{text}"
                    );
                }
            }
        }
    }

    #[test]
    fn values_are_bounded_and_many_urls_in_one_value_are_all_found() {
        let many = (0..5)
            .map(|i| format!("https://abcde1234{i}.execute-api.us-east-1.amazonaws.com/p"))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(find_calls(&many).len(), 5);
        let huge = "x".repeat(200_000) + "https://abcde12345.execute-api.us-east-1.amazonaws.com/p";
        assert!(find_calls(&huge).is_empty(), "beyond 64 KiB is not read");
        let flood = "https://abcde12345.execute-api.us-east-1.amazonaws.com/p ".repeat(100);
        assert_eq!(find_calls(&flood).len(), 32);
        let utf8 = "é".repeat(40_000);
        assert!(find_calls(&utf8).is_empty());
    }

    #[test]
    fn manifests_leave_unknown_fields_for_the_user() {
        let f = Finding {
            namespace: "payments".into(),
            workload: "deployment/orders".into(),
            source: "env ORDERS_URL".into(),
            call: find_calls("https://abcde12345.execute-api.us-east-1.amazonaws.com/prod/health").remove(0),
        };
        let y = manifests(&[f.clone(), f]);
        assert_eq!(y.matches("kind: PrivateApiConnectivityCheck").count(), 1, "deduplicated: {y}");
        assert!(
            y.contains("name: orders-abcde12345") && y.contains("stage: prod") && y.contains("path: /health"),
            "{y}"
        );
        assert!(y.contains("endpoint: {}  # vpcEndpointId:") && y.contains("access: privateDns"), "{y}");
    }
}

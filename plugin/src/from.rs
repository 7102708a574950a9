//! `check --from deploy/NAME|pod/NAME`: the probe runs **inside one of the workload's running
//! pods**, as an ephemeral container — the pod's exact network namespace (address, branch ENI,
//! NetworkPolicies), its resolv.conf and its proxy variables.
//!
//! Why an ephemeral container: it is the only way to run code in a pod's own network namespace
//! without restarting it or needing `pods/exec` into the workload's image (which may have no
//! shell, no curl). The cost, said plainly in `--help` and on stderr before it happens: an
//! ephemeral container stays in the pod's spec until the pod is replaced (it cannot be removed),
//! though it has exited. It runs with the `restricted` security context and no extra mounts.
//!
//! The report comes back in the container's termination message and is read strictly (it is
//! untrusted, as the operator reads its probe pods'), then AWS facts (this machine's
//! credentials, with the pod's address as the client) and the pod's NetworkPolicies explain it.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{EphemeralContainer, Pod};
use kube::api::{Api, ListParams, PostParams};
use kube::{Client, ResourceExt};
use pvtapi_crds::PrivateApiConnectivityCheckSpec;
use pvtapi_engine::probe::ProbeReport;

/// `deploy/orders`, `pod/orders-7d9f…`, `statefulset/db`, `ds/agent`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FromRef {
    pub kind: FromKind,
    pub name: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FromKind {
    Pod,
    Deployment,
    StatefulSet,
    DaemonSet,
}

impl std::str::FromStr for FromRef {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kind, name) = s
            .split_once('/')
            .ok_or_else(|| format!("--from {s:?}: expected KIND/NAME, e.g. deploy/orders or pod/orders-7d9f4-x2k"))?;
        let kind = match kind.to_ascii_lowercase().as_str() {
            "pod" | "pods" | "po" => FromKind::Pod,
            "deploy" | "deployment" | "deployments" => FromKind::Deployment,
            "sts" | "statefulset" | "statefulsets" => FromKind::StatefulSet,
            "ds" | "daemonset" | "daemonsets" => FromKind::DaemonSet,
            other => {
                return Err(format!(
                    "--from {s:?}: {other:?} is not a pod, deployment, statefulset or daemonset (deploy/NAME, pod/NAME, sts/NAME, ds/NAME)"
                ));
            }
        };
        let valid = !name.is_empty()
            && name.len() <= 253
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !valid {
            return Err(format!("--from {s:?}: {name:?} is not a Kubernetes object name"));
        }
        Ok(FromRef { kind, name: name.to_owned() })
    }
}

/// The running pod `r` names (for a controller: one of its running pods).
pub async fn running_pod(client: &Client, ns: &str, r: &FromRef) -> Result<Pod, String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let not_found = |what: &str, e: kube::Error| match e {
        kube::Error::Api(s) if s.code == 404 => format!("{what} not found in namespace {ns}"),
        kube::Error::Api(s) if s.code == 403 => format!("reading {what} is forbidden: {}", s.message),
        e => format!("reading {what}: {e}"),
    };
    let running = |p: &Pod| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
    let selector = match r.kind {
        FromKind::Pod => {
            let pod = pods.get(&r.name).await.map_err(|e| not_found(&format!("pod {}", r.name), e))?;
            return if running(&pod) {
                Ok(pod)
            } else {
                Err(format!("pod {} is not running (an ephemeral container needs a running pod)", r.name))
            };
        }
        FromKind::Deployment => Api::<Deployment>::namespaced(client.clone(), ns)
            .get(&r.name)
            .await
            .map_err(|e| not_found(&format!("deployment {}", r.name), e))?
            .spec
            .map(|s| s.selector),
        FromKind::StatefulSet => Api::<StatefulSet>::namespaced(client.clone(), ns)
            .get(&r.name)
            .await
            .map_err(|e| not_found(&format!("statefulset {}", r.name), e))?
            .spec
            .map(|s| s.selector),
        FromKind::DaemonSet => Api::<DaemonSet>::namespaced(client.clone(), ns)
            .get(&r.name)
            .await
            .map_err(|e| not_found(&format!("daemonset {}", r.name), e))?
            .spec
            .map(|s| s.selector),
    };
    let labels = selector.and_then(|s| s.match_labels).unwrap_or_default();
    if labels.is_empty() {
        return Err(format!("{}/{} has no matchLabels selector; give --from pod/NAME", kind_name(r.kind), r.name));
    }
    let selector = labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
    let list = pods.list(&ListParams::default().labels(&selector)).await.map_err(|e| not_found("pods", e))?;
    list.items
        .into_iter()
        .filter(|p| !p.labels().contains_key("pvtapi.io/run"))
        .find(running)
        .ok_or_else(|| format!("{}/{} has no running pod (selector {selector})", kind_name(r.kind), r.name))
}

fn kind_name(k: FromKind) -> &'static str {
    match k {
        FromKind::Pod => "pod",
        FromKind::Deployment => "deployment",
        FromKind::StatefulSet => "statefulset",
        FromKind::DaemonSet => "daemonset",
    }
}

/// The probe image when `--probe-image` is not given: the installed operator's own image.
pub async fn operator_image(client: &Client) -> Result<String, String> {
    let pods: Api<Pod> = Api::all(client.clone());
    let lp = ListParams::default().labels("app.kubernetes.io/name=pvtapi,app.kubernetes.io/component=operator");
    let list = pods.list(&lp).await.map_err(|e| {
        format!("cannot find the pvtapi operator's image ({e}); give the probe image with --probe-image")
    })?;
    list.items
        .iter()
        .find_map(|p| p.spec.as_ref().and_then(|s| s.containers.first()).and_then(|c| c.image.clone()))
        .ok_or_else(|| {
            "no pvtapi operator pod found (is the chart installed?); give the probe image with --probe-image".into()
        })
}

/// `--ca-bundle-volume VOLUME/FILE`: a CA file in one of the pod's own volumes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeFile {
    pub volume: String,
    pub file: String,
}

/// Where the volume is mounted in the probe container (read-only).
const POD_CA_DIR: &str = "/etc/pvtapi/pod-ca";

impl std::str::FromStr for VolumeFile {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (volume, file) = s
            .split_once('/')
            .ok_or_else(|| format!("--ca-bundle-volume {s:?}: expected VOLUME/FILE, e.g. corp-ca/ca.crt"))?;
        let volume_ok = !volume.is_empty()
            && volume.len() <= 63
            && volume.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !volume_ok {
            return Err(format!("--ca-bundle-volume {s:?}: {volume:?} is not a volume name (lower-case DNS label)"));
        }
        let file_ok = !file.is_empty()
            && file.len() <= 253
            && file.split('/').all(|part| !part.is_empty() && part != "." && part != "..")
            && file.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._/".contains(&b));
        if !file_ok {
            return Err(format!(
                "--ca-bundle-volume {s:?}: {file:?} is not a relative path inside the volume (no '..', no leading '/')"
            ));
        }
        Ok(VolumeFile { volume: volume.to_owned(), file: file.to_owned() })
    }
}

impl VolumeFile {
    /// The volume must be one of the pod's.
    pub fn check_in(&self, pod: &Pod) -> Result<(), String> {
        let volumes: Vec<&str> =
            pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()).map(|v| v.name.as_str()).collect();
        if volumes.contains(&self.volume.as_str()) {
            Ok(())
        } else {
            Err(format!(
                "--ca-bundle-volume: pod {} has no volume {:?} (its volumes: {})",
                pod.name_any(),
                self.volume,
                if volumes.is_empty() { "none".to_owned() } else { volumes.join(", ") }
            ))
        }
    }
}

/// Runs the probe as an ephemeral container in `pod` and returns its report, read strictly.
/// `ca`: a CA file in one of the pod's volumes, mounted read-only and trusted on top of the roots.
pub async fn probe_in_pod(
    client: &Client,
    pod: &Pod,
    image: &str,
    spec: &PrivateApiConnectivityCheckSpec,
    vpce_dns_names: &[String],
    ca: Option<&VolumeFile>,
    progress: &indicatif::ProgressBar,
) -> Result<ProbeReport, String> {
    let ns = pod.namespace().unwrap_or_default();
    let pod_name = pod.name_any();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let container = format!("pvtapi-probe-{}", pvtapi_operator::schedule::run_id(k8s_openapi::jiff::Timestamp::now()));
    // The workload's proxy variables (literal values and ConfigMap references; never Secrets):
    // an ephemeral container shares the pod's network, not its containers' environment.
    let identity = pvtapi_operator::workload::identity_from(
        format!("Pod/{pod_name}"),
        pod.labels(),
        &pod.spec.clone().unwrap_or_default(),
    );
    // What the probe does not take from the pod (proxy variables from Secrets, …): said, not
    // hidden. (The hostNetwork note is about probe pods; an ephemeral container shares the
    // pod's network, host or not.)
    for note in identity.notes.iter().filter(|n| !n.contains("hostNetwork")) {
        progress.suspend(|| eprintln!("note: {note}"));
    }
    let ephemeral = EphemeralContainer {
        name: container.clone(),
        image: Some(image.to_owned()),
        image_pull_policy: Some("IfNotPresent".into()),
        args: Some({
            let mut args = pvtapi_operator::probe_pod::probe_args(spec, vpce_dns_names);
            if let Some(ca) = ca {
                args.push(format!("--ca-bundle={POD_CA_DIR}/{}", ca.file));
            }
            args
        }),
        volume_mounts: ca.map(|ca| {
            vec![k8s_openapi::api::core::v1::VolumeMount {
                name: ca.volume.clone(),
                mount_path: POD_CA_DIR.into(),
                read_only: Some(true),
                ..Default::default()
            }]
        }),
        env: (!identity.proxy_env.is_empty()).then(|| identity.proxy_env.clone()),
        termination_message_path: Some(pvtapi_operator::probe_pod::TERMINATION_LOG.into()),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        security_context: Some(pvtapi_operator::probe_pod::restricted_container_security_context()),
        ..EphemeralContainer::default()
    };
    let mut current = pods.get_ephemeral_containers(&pod_name).await.map_err(|e| refusal(&pod_name, e))?;
    current.spec.get_or_insert_with(Default::default).ephemeral_containers.get_or_insert_with(Vec::new).push(ephemeral);
    progress.set_message(format!("adding ephemeral container {container} to pod {ns}/{pod_name}…"));
    pods.replace_ephemeral_containers(&pod_name, &PostParams::default(), &current)
        .await
        .map_err(|e| refusal(&pod_name, e))?;

    let deadline = Instant::now()
        + Duration::from_secs(u64::try_from(pvtapi_operator::probe_pod::active_deadline_seconds(spec)).unwrap_or(80));
    loop {
        let p = pods.get(&pod_name).await.map_err(|e| format!("reading pod {pod_name}: {e}"))?;
        let status = p
            .status
            .as_ref()
            .and_then(|s| s.ephemeral_container_statuses.as_ref())
            .and_then(|all| all.iter().find(|c| c.name == container));
        if let Some(state) = status.and_then(|s| s.state.as_ref()) {
            if let Some(t) = &state.terminated {
                let message = t.message.clone().unwrap_or_default();
                if t.exit_code != 0 {
                    return Err(format!(
                        "the probe container exited {} ({}): {}",
                        t.exit_code,
                        t.reason.as_deref().unwrap_or("error"),
                        message.chars().filter(|c| !c.is_control()).take(400).collect::<String>()
                    ));
                }
                let report = pvtapi_engine::probe::untrusted::parse_probe_report(&message)
                    .and_then(|r| pvtapi_engine::probe::untrusted::check_target(&r, spec).map(|()| r))
                    .map_err(|e| format!("the probe's report is unusable: {e}"))?;
                return Ok(report);
            }
            if let Some(w) = &state.waiting {
                let reason = w.reason.as_deref().unwrap_or_default();
                if matches!(reason, "ErrImagePull" | "ImagePullBackOff" | "InvalidImageName" | "CreateContainerError") {
                    return Err(format!(
                        "the probe container cannot start ({reason}: {}); check --probe-image {image}",
                        w.message.as_deref().unwrap_or_default()
                    ));
                }
            }
        }
        if Instant::now() > deadline {
            return Err(format!("the probe container in {ns}/{pod_name} did not finish in time"));
        }
        progress.set_message(format!("probing from {ns}/{pod_name} ({container})…"));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The apiserver's refusal of an ephemeral container, worded.
fn refusal(pod: &str, e: kube::Error) -> String {
    match e {
        kube::Error::Api(s) if s.code == 403 && s.message.to_ascii_lowercase().contains("podsecurity") => format!(
            "Pod Security admission refused the probe container in pod {pod}: {} (the probe runs restricted; the namespace's level or an admission policy forbids ephemeral containers)",
            s.message
        ),
        kube::Error::Api(s) if s.code == 403 => format!(
            "you may not add ephemeral containers to pod {pod} ({}): it needs update on pods/ephemeralcontainers in its namespace",
            s.message
        ),
        kube::Error::Api(s) if s.code == 404 || s.code == 405 => format!(
            "this cluster does not serve pods/ephemeralcontainers ({}): ephemeral containers need Kubernetes 1.25 or later",
            s.message
        ),
        kube::Error::Api(s) => format!("the apiserver refused the probe container in pod {pod}: {}", s.message),
        e => format!("adding the probe container to pod {pod}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_accepts_kubectl_spellings_and_names_what_is_wrong() {
        for (s, kind) in [
            ("deploy/orders", FromKind::Deployment),
            ("deployment/orders", FromKind::Deployment),
            ("pod/orders-7d9f4-x2k", FromKind::Pod),
            ("po/orders", FromKind::Pod),
            ("sts/db", FromKind::StatefulSet),
            ("ds/agent", FromKind::DaemonSet),
        ] {
            assert_eq!(s.parse::<FromRef>().map(|r| r.kind), Ok(kind), "{s}");
        }
        for (s, words) in [
            ("orders", "KIND/NAME"),
            ("job/x", "not a pod, deployment"),
            ("deploy/", "not a Kubernetes object name"),
            ("deploy/Orders", "not a Kubernetes object name"),
        ] {
            let err = s.parse::<FromRef>().expect_err(s);
            assert!(err.contains(words), "{s}: {err}");
        }
    }

    #[test]
    fn a_ca_bundle_volume_is_a_volume_and_a_path_inside_it() {
        let v: VolumeFile = "corp-ca/certs/ca.crt".parse().expect("valid");
        assert_eq!((v.volume.as_str(), v.file.as_str()), ("corp-ca", "certs/ca.crt"));
        for (s, words) in [
            ("corp-ca", "VOLUME/FILE"),
            ("Corp/ca.crt", "not a volume name"),
            ("corp-ca/../etc/shadow", "relative path"),
            ("corp-ca//ca.crt", "relative path"),
            ("corp-ca/", "relative path"),
            ("corp-ca/ca crt", "relative path"),
        ] {
            let err = s.parse::<VolumeFile>().expect_err(s);
            assert!(err.contains(words), "{s}: {err}");
        }
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "orders-1"},
            "spec": {"containers": [], "volumes": [{"name": "corp-ca", "configMap": {"name": "corp-ca"}}]}
        }))
        .expect("pod");
        assert!(v.check_in(&pod).is_ok());
        let other: VolumeFile = "tls/ca.crt".parse().expect("valid");
        let err = other.check_in(&pod).expect_err("no such volume");
        assert!(err.contains("has no volume \"tls\"") && err.contains("corp-ca"), "{err}");
    }
}

//! The probe pod: one short-lived Pod per run of a check, running `pvtapi-operator probe` from
//! the operator's own image.
//!
//! Why it looks like this:
//! - It must be admitted in namespaces that enforce Pod Security `restricted` (platform teams put
//!   checks next to their workloads), so it runs as a non-root numeric user with a read-only root
//!   filesystem, no privilege escalation, every capability dropped and the RuntimeDefault seccomp
//!   profile. The probe needs none of these: it only opens sockets.
//! - It talks to the API, never to Kubernetes: no service-account token is mounted.
//! - The result travels back in the container's termination message (`/dev/termination-log`,
//!   written by `probe --report-file`, at most 4 KiB, read by the kubelet): no log scraping, no
//!   extra RBAC on `pods/log`, and the report survives the container.
//! - Extra CAs (`spec.probe.caBundle`) arrive as a ConfigMap volume the kubelet mounts: the
//!   operator never reads the bundle and needs no RBAC on ConfigMaps for it.
//! - It must never run forever or restart: `restartPolicy: Never` and `activeDeadlineSeconds`
//!   bound it even if the operator is gone.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, KeyToPath, Pod, PodSecurityContext, PodSpec, ResourceRequirements,
    SeccompProfile, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use pvtapi_crds::{AccessMode, PrivateApiConnectivityCheckSpec};

/// The probe container's name.
pub const CONTAINER: &str = "probe";
/// Where the probe writes its report; the kubelet returns it as the termination message.
pub const TERMINATION_LOG: &str = "/dev/termination-log";
/// Where `spec.probe.caBundle` is mounted in the probe container.
pub const CA_BUNDLE_DIR: &str = "/etc/pvtapi/ca";
/// The file, under [`CA_BUNDLE_DIR`], the bundle's key is mounted as.
pub const CA_BUNDLE_FILE: &str = "ca.crt";
const CA_VOLUME: &str = "ca-bundle";

/// The user the probe runs as (the image's `nonroot` user).
pub const PROBE_UID: i64 = 65532;

/// Label naming the check a probe pod belongs to.
pub const LABEL_CHECK: &str = "pvtapi.io/check";
/// Label naming the run a probe pod belongs to.
pub const LABEL_RUN: &str = "pvtapi.io/run";
/// Label marking every pod the operator created (`app.kubernetes.io/component=probe`).
pub const LABEL_COMPONENT: &str = "app.kubernetes.io/component";

/// Everything a probe pod is made from.
#[derive(Debug, Clone)]
pub struct ProbePodParams<'a> {
    pub name: String,
    pub namespace: &'a str,
    pub check_name: &'a str,
    pub run_id: &'a str,
    pub image: &'a str,
    pub spec: &'a PrivateApiConnectivityCheckSpec,
    /// Endpoint DNS names known from AWS facts (`--vpce-dns`), if any.
    pub vpce_dns_names: &'a [String],
    /// The workload whose network identity the pod takes (`spec.probe.workloadRef`).
    pub identity: Option<&'a crate::workload::WorkloadIdentity>,
}

/// The container security context every probe runs with (Pod Security `restricted`).
pub fn restricted_container_security_context() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), add: None }),
        privileged: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        run_as_user: Some(PROBE_UID),
        run_as_group: Some(PROBE_UID),
        seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".into(), localhost_profile: None }),
        ..Default::default()
    }
}

/// The pod-level security context of a probe pod.
pub fn restricted_pod_security_context() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(PROBE_UID),
        run_as_group: Some(PROBE_UID),
        seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".into(), localhost_profile: None }),
        ..Default::default()
    }
}

/// Requests and limits when the check does not set them: the probe is a few sockets and one
/// TLS handshake (a few MiB of memory), so it fits anywhere.
pub fn default_resources() -> ResourceRequirements {
    let q = |s: &str| Quantity(s.to_owned());
    ResourceRequirements {
        requests: Some(BTreeMap::from([("cpu".to_owned(), q("10m")), ("memory".to_owned(), q("32Mi"))])),
        limits: Some(BTreeMap::from([("cpu".to_owned(), q("500m")), ("memory".to_owned(), q("64Mi"))])),
        ..Default::default()
    }
}

/// The `--access` spelling of an access mode.
fn access_arg(mode: AccessMode) -> &'static str {
    match mode {
        AccessMode::Auto => "auto",
        AccessMode::PrivateDns => "private-dns",
        AccessMode::EndpointAlias => "endpoint-alias",
        AccessMode::EndpointHost => "endpoint-host",
        AccessMode::ApiIdHeader => "api-id-header",
        AccessMode::CustomDomain => "custom-domain",
    }
}

/// The probe's command-line arguments for a check (after the `probe` subcommand).
pub fn probe_args(spec: &PrivateApiConnectivityCheckSpec, vpce_dns_names: &[String]) -> Vec<String> {
    let api = &spec.api;
    let mut args = vec![
        "probe".to_owned(),
        format!("--api-id={}", api.id),
        format!("--region={}", api.region),
        format!("--stage={}", api.stage),
        format!("--path={}", api.path),
        format!("--method={}", api.method.as_str().to_ascii_lowercase()),
        format!("--vpce={}", spec.endpoint.vpc_endpoint_id),
        format!("--access={}", access_arg(spec.access)),
        format!("--timeout={}", spec.timeout_seconds),
        format!("--report-file={TERMINATION_LOG}"),
    ];
    args.extend(api.expected_statuses.iter().map(|s| format!("--expected-status={s}")));
    if let Some(domain) = &spec.domain_name {
        args.push(format!("--domain-name={domain}"));
    }
    args.extend(vpce_dns_names.iter().map(|n| format!("--vpce-dns={n}")));
    if spec.probe.as_ref().is_some_and(|p| p.ca_bundle.is_some()) {
        args.push(format!("--ca-bundle={CA_BUNDLE_DIR}/{CA_BUNDLE_FILE}"));
    }
    args
}

/// Upper bound on a probe pod's life: four network steps at the check's timeout each, plus
/// room for scheduling and container start; the kubelet kills the pod after it.
pub fn active_deadline_seconds(spec: &PrivateApiConnectivityCheckSpec) -> i64 {
    i64::from(spec.timeout_seconds) * 4 + 60
}

/// Builds the probe pod for one run of a check.
pub fn build(p: &ProbePodParams<'_>) -> Pod {
    let placement = p.spec.probe.clone().unwrap_or_default();
    // A fixed file name whatever the key: the key never becomes a path.
    let ca_volume = placement.ca_bundle.as_ref().map(|ca| Volume {
        name: CA_VOLUME.into(),
        config_map: Some(ConfigMapVolumeSource {
            name: ca.config_map.clone(),
            items: Some(vec![KeyToPath { key: ca.key.clone(), path: CA_BUNDLE_FILE.into(), mode: None }]),
            default_mode: Some(0o444),
            optional: Some(false),
        }),
        ..Default::default()
    });
    let ca_mount = ca_volume.as_ref().map(|_| VolumeMount {
        name: CA_VOLUME.into(),
        mount_path: CA_BUNDLE_DIR.into(),
        read_only: Some(true),
        ..Default::default()
    });
    // As the workload: its labels (what policies select it by) plus only pvtapi's own keys.
    let mut labels = match p.identity {
        Some(id) => id.labels.clone(),
        None => BTreeMap::from([
            ("app.kubernetes.io/name".to_owned(), "pvtapi".to_owned()),
            (LABEL_COMPONENT.to_owned(), "probe".to_owned()),
            ("app.kubernetes.io/managed-by".to_owned(), "pvtapi-operator".to_owned()),
        ]),
    };
    labels.insert(LABEL_CHECK.to_owned(), p.check_name.to_owned());
    labels.insert(LABEL_RUN.to_owned(), p.run_id.to_owned());
    let id = p.identity;
    let or_workload = |mine: Option<BTreeMap<String, String>>, theirs: Option<&BTreeMap<String, String>>| {
        mine.filter(|m| !m.is_empty()).or_else(|| theirs.cloned())
    };
    Pod {
        metadata: ObjectMeta {
            name: Some(p.name.clone()),
            namespace: Some(p.namespace.to_owned()),
            labels: Some(labels),
            ..Default::default()
        },
        spec: Some(PodSpec {
            restart_policy: Some("Never".into()),
            active_deadline_seconds: Some(active_deadline_seconds(p.spec)),
            automount_service_account_token: Some(false),
            enable_service_links: Some(false),
            termination_grace_period_seconds: Some(1),
            service_account_name: placement
                .service_account_name
                .clone()
                .or_else(|| id.and_then(|i| i.service_account_name.clone())),
            node_selector: or_workload(
                Some(placement.node_selector.clone()),
                id.and_then(|i| i.node_selector.as_ref()),
            ),
            tolerations: (!placement.tolerations.is_empty())
                .then(|| placement.tolerations.clone())
                .or_else(|| id.and_then(|i| i.tolerations.clone())),
            affinity: placement.affinity.clone().or_else(|| id.and_then(|i| i.affinity.clone())),
            dns_policy: id.and_then(|i| i.dns_policy.clone()),
            dns_config: id.and_then(|i| i.dns_config.clone()),
            // Never Ready: a pod matching the workload's Service selector gets no traffic.
            readiness_gates: id.map(|_| {
                vec![k8s_openapi::api::core::v1::PodReadinessGate {
                    condition_type: crate::workload::NEVER_READY_GATE.into(),
                }]
            }),
            security_context: Some(restricted_pod_security_context()),
            containers: vec![Container {
                name: CONTAINER.into(),
                image: Some(placement.image.clone().unwrap_or_else(|| p.image.to_owned())),
                image_pull_policy: Some("IfNotPresent".into()),
                args: Some(probe_args(p.spec, p.vpce_dns_names)),
                env: id.map(|i| i.proxy_env.clone()).filter(|e| !e.is_empty()),
                termination_message_path: Some(TERMINATION_LOG.into()),
                // The report file when the probe ran; its stderr (the reason) when it could not run.
                termination_message_policy: Some("FallbackToLogsOnError".into()),
                resources: Some(placement.resources.clone().unwrap_or_else(default_resources)),
                security_context: Some(restricted_container_security_context()),
                volume_mounts: ca_mount.map(|m| vec![m]),
                ..Default::default()
            }],
            volumes: ca_volume.map(|v| vec![v]),
            ..Default::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> PrivateApiConnectivityCheckSpec {
        serde_json::from_value(serde_json::json!({
            "api": {"id": "abcde12345", "region": "us-east-1", "stage": "prod", "path": "/health", "expectedStatuses": [200, 204]},
            "endpoint": {"vpcEndpointId": "vpce-0123456789abcdef0"},
            "access": "endpointHost",
            "probe": {"nodeSelector": {"zone": "a"}, "serviceAccountName": "probe-sa"}
        }))
        .expect("valid spec")
    }

    #[test]
    fn args_follow_the_spec_in_the_probe_cli_spelling() {
        let args =
            probe_args(&spec(), &["vpce-0123456789abcdef0-abcdefgh.execute-api.us-east-1.vpce.amazonaws.com".into()]);
        for want in [
            "probe",
            "--api-id=abcde12345",
            "--path=/health",
            "--method=get",
            "--access=endpoint-host",
            "--timeout=5",
            "--expected-status=200",
            "--expected-status=204",
            "--report-file=/dev/termination-log",
            "--vpce-dns=vpce-0123456789abcdef0-abcdefgh.execute-api.us-east-1.vpce.amazonaws.com",
        ] {
            assert!(args.iter().any(|a| a == want), "{want} missing from {args:?}");
        }
    }

    #[test]
    fn as_a_workload_the_pod_takes_its_identity_but_stays_restricted_and_never_ready() {
        use crate::workload::{NEVER_READY_GATE, WorkloadIdentity};
        let identity = WorkloadIdentity {
            source: "Deployment/orders".into(),
            labels: BTreeMap::from([("app".to_owned(), "orders".to_owned())]),
            service_account_name: Some("orders".into()),
            dns_policy: Some("ClusterFirst".into()),
            proxy_env: vec![k8s_openapi::api::core::v1::EnvVar {
                name: "HTTPS_PROXY".into(),
                value: Some("http://proxy:3128".into()),
                value_from: None,
            }],
            ..WorkloadIdentity::default()
        };
        let mut spec = spec();
        spec.probe = None;
        let pod = build(&ProbePodParams {
            name: "orders-abc".into(),
            namespace: "payments",
            check_name: "orders",
            run_id: "abc",
            image: "img",
            spec: &spec,
            vpce_dns_names: &[],
            identity: Some(&identity),
        });
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels.get("app").map(String::as_str), Some("orders"));
        assert_eq!(labels.get(LABEL_RUN).map(String::as_str), Some("abc"));
        assert!(!labels.contains_key(LABEL_COMPONENT), "no label the workload does not have, but pvtapi's own keys");
        let ps = pod.spec.expect("spec");
        assert_eq!(ps.service_account_name.as_deref(), Some("orders"));
        assert_eq!(ps.automount_service_account_token, Some(false));
        assert_eq!(ps.readiness_gates.expect("gate")[0].condition_type, NEVER_READY_GATE);
        let c = &ps.containers[0];
        assert_eq!(c.env.as_ref().map(|e| e[0].name.as_str()), Some("HTTPS_PROXY"));
        assert_eq!(c.security_context, Some(restricted_container_security_context()));
        assert_eq!(ps.security_context, Some(restricted_pod_security_context()));
    }

    #[test]
    fn a_ca_bundle_is_a_read_only_configmap_volume_at_a_fixed_path() {
        let mut spec = spec();
        spec.probe = Some(
            serde_json::from_value(serde_json::json!({"caBundle": {"configMap": "corp-ca", "key": "../x"}}))
                .expect("placement"),
        );
        let pod = build(&ProbePodParams {
            name: "orders-abc".into(),
            namespace: "payments",
            check_name: "orders",
            run_id: "abc",
            image: "img",
            spec: &spec,
            vpce_dns_names: &[],
            identity: None,
        });
        let ps = pod.spec.expect("spec");
        let cm = ps.volumes.as_ref().and_then(|v| v[0].config_map.clone()).expect("configMap volume");
        assert_eq!(cm.name, "corp-ca");
        let items = cm.items.expect("items");
        assert_eq!((items[0].key.as_str(), items[0].path.as_str()), ("../x", CA_BUNDLE_FILE));
        let c = &ps.containers[0];
        let mount = &c.volume_mounts.as_ref().expect("mounts")[0];
        assert_eq!((mount.mount_path.as_str(), mount.read_only), (CA_BUNDLE_DIR, Some(true)));
        assert!(c.args.as_ref().expect("args").contains(&"--ca-bundle=/etc/pvtapi/ca/ca.crt".to_owned()));
        let no_ca = build(&ProbePodParams {
            spec: &super::tests::spec(),
            ..ProbePodParams {
                name: "x".into(),
                namespace: "n",
                check_name: "c",
                run_id: "r",
                image: "i",
                spec: &spec,
                vpce_dns_names: &[],
                identity: None,
            }
        });
        assert!(no_ca.spec.expect("spec").volumes.is_none());
    }

    #[test]
    fn pod_is_restricted_tokenless_bounded_and_placed() {
        let spec = spec();
        let pod = build(&ProbePodParams {
            name: "orders-abc".into(),
            namespace: "payments",
            check_name: "orders",
            run_id: "abc",
            image: "pvtapi.local/pvtapi-operator:dev",
            spec: &spec,
            vpce_dns_names: &[],
            identity: None,
        });
        let ps = pod.spec.expect("spec");
        assert_eq!(ps.restart_policy.as_deref(), Some("Never"));
        assert_eq!(ps.automount_service_account_token, Some(false));
        assert_eq!(ps.active_deadline_seconds, Some(80));
        assert_eq!(ps.service_account_name.as_deref(), Some("probe-sa"));
        assert_eq!(ps.node_selector.expect("selector")["zone"], "a");
        let c = &ps.containers[0];
        let sc = c.security_context.as_ref().expect("security context");
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        assert_eq!(sc.run_as_non_root, Some(true));
        assert_eq!(sc.capabilities.as_ref().and_then(|c| c.drop.clone()), Some(vec!["ALL".to_owned()]));
        assert_eq!(sc.seccomp_profile.as_ref().map(|s| s.type_.as_str()), Some("RuntimeDefault"));
        assert!(c.resources.as_ref().and_then(|r| r.limits.as_ref()).is_some_and(|l| l.contains_key("memory")));
        assert_eq!(pod.metadata.labels.expect("labels")[LABEL_CHECK], "orders");
    }
}

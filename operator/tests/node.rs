//! Probe pods and the pod failures the operator must read, on the real local node (kubelet,
//! containerd, runc, CNI bridge, kube-proxy; `tests/substrate/cluster.sh`).
//!
//! Each test creates real pods and reads only what the kubelet and the control plane report:
//! Pod Security admission, the termination message, DNS through the bridge dnsmasq, in-cluster
//! config through the `kubernetes` Service, and the real ErrImageNeverPull / ErrImagePull,
//! OOMKilled and Unschedulable shapes the controller will classify.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, EmptyDirVolumeSource, EnvVar, Pod, PodSpec, ResourceRequirements,
    Volume, VolumeMount,
};
use k8s_openapi::api::rbac::v1::PolicyRule;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{Api, ObjectMeta, PostParams};
use pvtapi_crds::PrivateApiConnectivityCheckSpec;
use pvtapi_engine::probe::classify::{InvokeClass, TcpOutcome};
use pvtapi_engine::probe::report::{DnsOutcome, ProbeReport, TlsOutcome};
use pvtapi_operator::probe_pod::{self, ProbePodParams};
use pvtapi_testkit::apigw::{FrontEnd, Reply, TestCa, requires_api_identity};
use pvtapi_testkit::cluster::{Cluster, container_state, finished, phase, terminated, unique, waiting_reason};

const API: &str = "abcde12345";
const REGION: &str = "us-east-1";
const VPCE: &str = "vpce-0123456789abcdef0";
const API_HOST: &str = "abcde12345.execute-api.us-east-1.amazonaws.com";
const VPCE_HOST: &str = "vpce-0123456789abcdef0-abcdefgh.execute-api.us-east-1.vpce.amazonaws.com";

/// Time a pod on this node may take to reach a terminal state (the kubelet syncs status every
/// few seconds; a cold image import is not part of it).
const POD_TIMEOUT: Duration = Duration::from_secs(90);

fn meta(ns: &str, name: &str) -> ObjectMeta {
    ObjectMeta { name: Some(name.to_owned()), namespace: Some(ns.to_owned()), ..Default::default() }
}

fn check_spec(access: &str) -> PrivateApiConnectivityCheckSpec {
    serde_json::from_value(serde_json::json!({
        "api": {"id": API, "region": REGION, "stage": "prod", "path": "/health"},
        "endpoint": {"vpcEndpointId": VPCE},
        "access": access,
        "timeoutSeconds": 3
    }))
    .expect("valid spec")
}

/// An address in the VPC's other subnet (10.0.1.0/24), playing one endpoint ENI: pods reach it
/// through the node, as they reach an interface endpoint through the VPC router.
fn endpoint_ip() -> Ipv4Addr {
    let n = unique("x").rsplit('-').next().and_then(|s| s.parse::<u32>().ok()).unwrap_or(0);
    Ipv4Addr::new(10, 0, 1, 10 + ((std::process::id() + n * 7) % 200) as u8)
}

/// The pod the operator will create for `spec`, in `ns`, with the test CA mounted and the front
/// end's port.
fn probe_pod_for(cluster: &Cluster, ns: &str, spec: &PrivateApiConnectivityCheckSpec, ca_cm: &str, port: u16) -> Pod {
    let name = unique("probe");
    let mut pod = probe_pod::build(&ProbePodParams {
        name: name.clone(),
        namespace: ns,
        check_name: "orders",
        run_id: &name,
        image: &cluster.image,
        spec,
        vpce_dns_names: &[VPCE_HOST.to_owned()],
        identity: None,
    });
    let ps = pod.spec.as_mut().expect("spec");
    ps.volumes = Some(vec![Volume {
        name: "ca".into(),
        config_map: Some(ConfigMapVolumeSource { name: ca_cm.into(), ..Default::default() }),
        ..Default::default()
    }]);
    let c = &mut ps.containers[0];
    c.volume_mounts = Some(vec![VolumeMount {
        name: "ca".into(),
        mount_path: "/etc/pvtapi-ca".into(),
        read_only: Some(true),
        ..Default::default()
    }]);
    c.image_pull_policy = Some("Never".into());
    let args = c.args.as_mut().expect("args");
    args.push("--ca-bundle=/etc/pvtapi-ca/ca.pem".into());
    args.push(format!("--port={port}"));
    pod
}

async fn ca_config_map(cluster: &Cluster, ns: &str, ca: &TestCa) -> String {
    let pem = std::fs::read_to_string(ca.bundle_path()).expect("read CA bundle");
    let cm = ConfigMap {
        metadata: meta(ns, "test-ca"),
        data: Some(BTreeMap::from([("ca.pem".to_owned(), pem)])),
        ..Default::default()
    };
    Api::<ConfigMap>::namespaced(cluster.admin(), ns)
        .create(&PostParams::default(), &cm)
        .await
        .expect("create CA ConfigMap");
    "test-ca".into()
}

#[tokio::test]
async fn restricted_namespace_runs_the_probe_pod_and_its_report_comes_back_as_the_termination_message() {
    let cluster = Cluster::from_env().await;
    let ns = cluster.namespace("probe-restricted", Some("restricted")).await;

    // The "VPC world": an endpoint ENI address with a TLS front end playing API Gateway, and the
    // private DNS records the endpoint's private hosted zone would give, on the bridge dnsmasq.
    let ip = endpoint_ip();
    let _addr = cluster.local_address(ip);
    let ca = TestCa::new();
    let (chain, key) =
        ca.issue(&["*.execute-api.us-east-1.amazonaws.com", "*.execute-api.us-east-1.vpce.amazonaws.com"]);
    let front = FrontEnd::start(
        SocketAddr::new(IpAddr::V4(ip), 0),
        chain,
        key,
        requires_api_identity(API, Reply::ok(r#"{"ok":true}"#)),
    )
    .await;
    let _dns = cluster.dns(&[(API_HOST, IpAddr::V4(ip)), (VPCE_HOST, IpAddr::V4(ip))]);
    let cm = ca_config_map(&cluster, &ns, &ca).await;

    let spec = check_spec("privateDns");
    let pod = probe_pod_for(&cluster, &ns, &spec, &cm, front.addr().port());
    let done = cluster.create_and_wait(&pod, "a terminal phase", POD_TIMEOUT, finished).await;
    assert_eq!(phase(&done), "Succeeded", "probe pod status: {:?}", done.status);

    let terminated = terminated(&done).expect("terminated state");
    assert_eq!(terminated.exit_code, 0);
    let message = terminated.message.as_deref().expect("the kubelet returns the termination message");
    assert!(message.len() <= 4096, "a termination message is at most 4 KiB, got {}", message.len());
    let report: ProbeReport =
        serde_json::from_str(message).unwrap_or_else(|e| panic!("not a probe report ({e}): {message}"));

    assert_eq!(report.resolver, "system", "the pod resolves through its own resolv.conf (the cluster DNS)");
    let api_dns = report.dns.iter().find(|d| d.host == API_HOST).expect("the API host was resolved");
    assert_eq!(api_dns.outcome, DnsOutcome::Resolved, "{api_dns:?}");
    assert_eq!(api_dns.addresses.iter().map(|a| a.ip).collect::<Vec<_>>(), vec![IpAddr::V4(ip)]);
    assert!(
        report.tcp.iter().any(|t| t.ip == IpAddr::V4(ip) && t.outcome == TcpOutcome::Connected),
        "TCP to the endpoint address: {:?}",
        report.tcp
    );
    let tls = report.tls.as_ref().expect("tls result");
    assert_eq!(tls.outcome, TlsOutcome::Ok, "{tls:?}");
    let invoke = report.invoke.as_ref().expect("invoke result");
    assert_eq!((invoke.class, invoke.status), (InvokeClass::Ok, Some(200)), "{invoke:?}");
    let seen = front.seen();
    assert!(
        // The Host header carries the port when it is not 443 (the front end listens on a free port).
        seen.iter()
            .any(|r| r.header("host") == Some(&format!("{API_HOST}:{}", front.addr().port()))
                && r.path == "/prod/health"),
        "the front end saw the pod's request: {seen:?}"
    );
}

#[tokio::test]
async fn restricted_namespace_refuses_a_probe_pod_without_the_restricted_security_context() {
    // The negative control: admission really enforces "restricted" in these namespaces.
    let cluster = Cluster::from_env().await;
    let ns = cluster.namespace("probe-refused", Some("restricted")).await;
    let spec = check_spec("privateDns");
    let mut pod = probe_pod::build(&ProbePodParams {
        name: "too-privileged".into(),
        namespace: &ns,
        check_name: "orders",
        run_id: "r1",
        image: &cluster.image,
        spec: &spec,
        vpce_dns_names: &[],
        identity: None,
    });
    let ps = pod.spec.as_mut().expect("spec");
    ps.security_context = None;
    ps.containers[0].security_context = None;
    let err = Api::<Pod>::namespaced(cluster.admin(), &ns)
        .create(&PostParams::default(), &pod)
        .await
        .expect_err("Pod Security restricted refuses a pod without a security context");
    let text = err.to_string();
    assert!(text.contains("violates PodSecurity \"restricted:latest\""), "{text}");
    assert!(text.contains("allowPrivilegeEscalation") && text.contains("runAsNonRoot"), "{text}");
}

/// A ServiceAccount bound (ClusterRole) to list namespaces and (Role) to list pods in its own
/// namespace, nothing else.
async fn reader_identity(cluster: &Cluster, ns: &str) -> String {
    let list = |resource: &str| PolicyRule {
        api_groups: Some(vec![String::new()]),
        resources: Some(vec![resource.into()]),
        verbs: vec!["list".into()],
        ..Default::default()
    };
    let sa = "ns-reader";
    cluster.control_plane().bind_service_account(ns, sa, vec![list("pods")], vec![list("namespaces")]).await;
    sa.into()
}

/// A restricted pod running `kubectl ARGS` with in-cluster config (the mounted token, the
/// `kubernetes` Service), as the ServiceAccount `sa`.
fn kubectl_pod(cluster: &Cluster, ns: &str, sa: &str, args: &[&str]) -> Pod {
    Pod {
        metadata: meta(ns, &unique("kubectl")),
        spec: Some(PodSpec {
            restart_policy: Some("Never".into()),
            service_account_name: Some(sa.into()),
            security_context: Some(probe_pod::restricted_pod_security_context()),
            volumes: Some(vec![Volume {
                name: "home".into(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Default::default()
            }]),
            containers: vec![Container {
                name: "kubectl".into(),
                image: Some(cluster.kubectl_image.clone()),
                image_pull_policy: Some("Never".into()),
                args: Some(args.iter().map(|s| (*s).to_owned()).collect()),
                env: Some(vec![EnvVar { name: "HOME".into(), value: Some("/home".into()), ..Default::default() }]),
                volume_mounts: Some(vec![VolumeMount {
                    name: "home".into(),
                    mount_path: "/home".into(),
                    ..Default::default()
                }]),
                security_context: Some(probe_pod::restricted_container_security_context()),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: None,
    }
}

#[tokio::test]
async fn a_pod_with_in_cluster_config_reaches_the_apiserver_through_the_kubernetes_service() {
    let cluster = Cluster::from_env().await;
    let ns = cluster.namespace("incluster", Some("restricted")).await;
    let sa = reader_identity(&cluster, &ns).await;

    let pod = kubectl_pod(&cluster, &ns, &sa, &["get", "namespaces", "-o", "name", "-v=6"]);
    let done = cluster.create_and_wait(&pod, "a terminal phase", POD_TIMEOUT, finished).await;
    let name = done.metadata.name.clone().expect("name");
    let logs = cluster.logs(&ns, &name).await;
    assert_eq!(phase(&done), "Succeeded", "kubectl in the pod failed:\n{logs}");
    assert!(logs.contains("namespace/default") && logs.contains(&format!("namespace/{ns}")), "{logs}");
    // kubectl -v=6 names the server it called: the `kubernetes` Service's ClusterIP on 443.
    let svc_ip = std::env::var("PVTAPI_SERVICE_CIDR").expect("PVTAPI_SERVICE_CIDR");
    let svc_ip =
        format!("{}.1:443", svc_ip.split('/').next().and_then(|n| n.rsplit_once('.')).map(|(p, _)| p).unwrap_or(""));
    assert!(
        logs.contains(&format!("https://{svc_ip}/api/v1/namespaces")),
        "kubectl did not go through the Service:\n{logs}"
    );

    // The same token may list pods in its own namespace (the Role) and nothing more.
    let pod = kubectl_pod(&cluster, &ns, &sa, &["get", "pods", "-n", &ns, "-o", "name"]);
    let done = cluster.create_and_wait(&pod, "a terminal phase", POD_TIMEOUT, finished).await;
    let logs = cluster.logs(&ns, &done.metadata.name.clone().expect("name")).await;
    assert_eq!(phase(&done), "Succeeded", "{logs}");
    let pod = kubectl_pod(&cluster, &ns, &sa, &["get", "secrets", "-n", &ns]);
    let done = cluster.create_and_wait(&pod, "a terminal phase", POD_TIMEOUT, finished).await;
    let logs = cluster.logs(&ns, &done.metadata.name.clone().expect("name")).await;
    assert_eq!(phase(&done), "Failed", "listing secrets must be forbidden:\n{logs}");
    assert!(logs.contains(&format!("system:serviceaccount:{ns}:{sa}")) && logs.contains("forbidden"), "{logs}");
}

fn bare_pod(ns: &str, image: &str, pull: &str) -> Pod {
    Pod {
        metadata: meta(ns, &unique("bare")),
        spec: Some(PodSpec {
            restart_policy: Some("Never".into()),
            automount_service_account_token: Some(false),
            containers: vec![Container {
                name: "main".into(),
                image: Some(image.into()),
                image_pull_policy: Some(pull.into()),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: None,
    }
}

#[tokio::test]
async fn an_absent_image_fails_locally_and_fast() {
    let cluster = Cluster::from_env().await;
    let ns = cluster.namespace("absent-image", None).await;

    let pod = bare_pod(&ns, "pvtapi.local/absent:1", "Never");
    let waiting = cluster
        .create_and_wait(&pod, "ErrImageNeverPull", POD_TIMEOUT, |p| waiting_reason(p) == Some("ErrImageNeverPull"))
        .await;
    let message =
        container_state(&waiting).and_then(|s| s.waiting.as_ref()).and_then(|w| w.message.clone()).unwrap_or_default();
    assert!(message.contains("pvtapi.local/absent:1") && message.contains("not present"), "{message}");
    assert_eq!(phase(&waiting), "Pending");

    // A pull is attempted — and every registry is a dead loopback port: it fails at once, and
    // nothing is resolved or sent outside the machine.
    for image in ["pvtapi.local/absent:1", "docker.io/library/busybox:1.36"] {
        let pod = bare_pod(&ns, image, "IfNotPresent");
        let failed = cluster
            .create_and_wait(&pod, "an image pull failure", POD_TIMEOUT, |p| {
                matches!(waiting_reason(p), Some("ErrImagePull" | "ImagePullBackOff"))
            })
            .await;
        let name = failed.metadata.name.clone().expect("name");
        let events = cluster.events(&ns, &name).await;
        assert!(events.contains("127.0.0.1:1"), "the pull went to the dead loopback registry:\n{events}");
    }
}

#[tokio::test]
async fn a_probe_over_its_memory_limit_is_oom_killed() {
    let cluster = Cluster::from_env().await;
    let ns = cluster.namespace("oom", Some("restricted")).await;
    let mut pod = bare_pod(&ns, &cluster.pause_image, "Never");
    let ps = pod.spec.as_mut().expect("spec");
    ps.security_context = Some(probe_pod::restricted_pod_security_context());
    let c = &mut ps.containers[0];
    c.args = Some(vec!["alloc".into(), "256".into()]);
    c.security_context = Some(probe_pod::restricted_container_security_context());
    c.resources = Some(ResourceRequirements {
        limits: Some(BTreeMap::from([("memory".to_owned(), Quantity("48Mi".into()))])),
        ..Default::default()
    });
    let done = cluster.create_and_wait(&pod, "a terminal phase", POD_TIMEOUT, finished).await;
    assert_eq!(phase(&done), "Failed");
    let terminated = terminated(&done).expect("terminated");
    assert_eq!((terminated.reason.as_deref(), terminated.exit_code), (Some("OOMKilled"), 137), "{terminated:?}");
}

#[tokio::test]
async fn a_probe_no_node_can_take_is_unschedulable() {
    let cluster = Cluster::from_env().await;
    let ns = cluster.namespace("unschedulable", Some("restricted")).await;
    let mut spec = check_spec("privateDns");
    spec.probe = Some(
        serde_json::from_value(serde_json::json!({"nodeSelector": {"topology.kubernetes.io/zone": "nowhere-1z"}}))
            .expect("placement"),
    );
    let pod = probe_pod::build(&ProbePodParams {
        name: unique("unplaced"),
        namespace: &ns,
        check_name: "orders",
        run_id: "r1",
        image: &cluster.image,
        spec: &spec,
        vpce_dns_names: &[],
        identity: None,
    });
    let pending = cluster
        .create_and_wait(&pod, "PodScheduled=False/Unschedulable", POD_TIMEOUT, |p| {
            p.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|cs| {
                cs.iter().any(|c| {
                    c.type_ == "PodScheduled" && c.status == "False" && c.reason.as_deref() == Some("Unschedulable")
                })
            })
        })
        .await;
    assert_eq!(phase(&pending), "Pending");
    let cond = pending
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled").cloned())
        .expect("PodScheduled");
    let message = cond.message.unwrap_or_default();
    assert!(message.contains("0/1 nodes are available") && message.contains("node affinity/selector"), "{message}");
}

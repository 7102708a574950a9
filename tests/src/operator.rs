//! `pvtapi-operator run` as a child process against the local cluster, and the waits the
//! operator suites share: apply a check, wait on a watch until its status says something.
//!
//! Why a process and not the library: the binary is what ships (flags, env, leader election,
//! shutdown), and a process can be SIGKILLed mid-run like a crashed pod.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::wait::await_condition;
use pvtapi_crds::{PrivateApiConnectivityCheck, RootCause};

use crate::cluster::Cluster;
use crate::control_plane::FIELD_MANAGER;

/// How one operator process is started.
#[derive(Clone, Debug, Default)]
pub struct OperatorOptions {
    /// `Some(name)`: leader election on a Lease in the watched namespace, as replica `name`;
    /// `None`: `--no-leader-election`.
    pub replica: Option<String>,
    /// Extra `run` flags.
    pub args: Vec<String>,
    /// `--metrics-addr` (default `127.0.0.1:0`, any free port).
    pub metrics_addr: Option<String>,
    /// Extra environment, e.g. moto's `AWS_ENDPOINT_URL` and dummy credentials. Without it every
    /// AWS endpoint is dead (`http://127.0.0.1:1`): nothing may leave the machine.
    pub env: Vec<(String, String)>,
}

/// The operator as a child process watching one namespace; killed on drop (no orphan if the
/// test panics). Its log is `$TMPDIR/pvtapi-operator-<ns>[-<replica>].log`.
#[derive(Debug)]
pub struct OperatorProcess {
    child: Child,
    log: std::path::PathBuf,
}

impl OperatorProcess {
    /// Starts `binary run` for namespace `ns` with the cluster's probe image.
    pub fn start(binary: &Path, cluster: &Cluster, ns: &str, options: &OperatorOptions) -> OperatorProcess {
        let log_name = match &options.replica {
            Some(r) => format!("pvtapi-operator-{ns}-{r}.log"),
            None => format!("pvtapi-operator-{ns}.log"),
        };
        let log = std::env::temp_dir().join(log_name);
        let file = std::fs::File::create(&log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let mut cmd = Command::new(binary);
        let metrics = options.metrics_addr.as_deref().unwrap_or("127.0.0.1:0");
        cmd.args(["run", "--metrics-addr", metrics, "--namespace", ns]);
        match &options.replica {
            Some(r) => cmd.arg(format!("--leader-election-namespace={ns}")).env("POD_NAME", r),
            None => cmd.arg("--no-leader-election"),
        };
        let child = cmd
            .arg(format!("--probe-image={}", cluster.image))
            .args(&options.args)
            .env("KUBECONFIG", cluster.control_plane().kubeconfig())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
            .env("RUST_LOG", "info")
            .envs(options.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap_or_else(|e| panic!("dup log: {e}")))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("start {} run: {e}", binary.display()));
        OperatorProcess { child, log }
    }

    /// SIGKILL: no Lease release, no clean-up — a crashed pod.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The process id (to stop or continue it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A check of `api_id` (GET /prod/health in us-east-1 through a fixed endpoint id, private DNS,
/// 2 s timeouts, no AWS inspection); `extra` is merged into the spec's top level.
pub fn check(ns: &str, name: &str, api_id: &str, extra: serde_json::Value) -> PrivateApiConnectivityCheck {
    let mut spec = serde_json::json!({
        "api": {"id": api_id, "region": "us-east-1", "stage": "prod", "path": "/health"},
        "endpoint": {"vpcEndpointId": "vpce-0fedcba9876543210"},
        "access": "privateDns",
        "timeoutSeconds": 2,
        "aws": {"inspect": false}
    });
    if let (Some(base), Some(more)) = (spec.as_object_mut(), extra.as_object()) {
        base.extend(more.clone());
    }
    serde_json::from_value(serde_json::json!({
        "apiVersion": "pvtapi.io/v1alpha1",
        "kind": "PrivateApiConnectivityCheck",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec
    }))
    .unwrap_or_else(|e| panic!("check {ns}/{name}: {e}"))
}

/// Applies `check` (server-side apply) and waits until `done` holds for it.
pub async fn apply_and_wait(
    cluster: &Cluster,
    check: &PrivateApiConnectivityCheck,
    what: &str,
    done: impl Fn(&PrivateApiConnectivityCheck) -> bool,
) -> PrivateApiConnectivityCheck {
    let ns = check.metadata.namespace.clone().unwrap_or_default();
    let name = check.metadata.name.clone().unwrap_or_default();
    let api: Api<PrivateApiConnectivityCheck> = Api::namespaced(cluster.admin(), &ns);
    api.patch(&name, &PatchParams::apply(FIELD_MANAGER), &Patch::Apply(check))
        .await
        .unwrap_or_else(|e| panic!("apply {ns}/{name}: {e}"));
    wait_check(&api, &ns, &name, what, done).await
}

/// Waits on a watch (120 s at most) until `done` holds for the check, or panics with its
/// status and the tail of every operator log of the namespace.
pub async fn wait_check(
    api: &Api<PrivateApiConnectivityCheck>,
    ns: &str,
    name: &str,
    what: &str,
    done: impl Fn(&PrivateApiConnectivityCheck) -> bool,
) -> PrivateApiConnectivityCheck {
    wait_check_for(api, ns, name, what, Duration::from_secs(120), done).await
}

/// As [`wait_check`] with its own bound.
pub async fn wait_check_for(
    api: &Api<PrivateApiConnectivityCheck>,
    ns: &str,
    name: &str,
    what: &str,
    timeout: Duration,
    done: impl Fn(&PrivateApiConnectivityCheck) -> bool,
) -> PrivateApiConnectivityCheck {
    let cond = await_condition(api.clone(), name, move |c: Option<&PrivateApiConnectivityCheck>| c.is_some_and(&done));
    match tokio::time::timeout(timeout, cond).await {
        Ok(Ok(Some(c))) => c,
        other => {
            let now = api.get_opt(name).await.ok().flatten();
            panic!(
                "{ns}/{name}: {what} not seen after {timeout:?} ({other:?})\nstatus: {:?}\noperator log (tail):\n{}",
                now.and_then(|c| c.status),
                operator_logs(ns, 30)
            );
        }
    }
}

/// The last `lines` lines of every operator process log of `ns` (one, or an HA test's replicas).
pub fn operator_logs(ns: &str, lines: usize) -> String {
    let prefix = format!("pvtapi-operator-{ns}");
    let mut out = String::new();
    let mut entries: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(lines).collect();
        out.push_str(&format!("── {} ──\n", e.file_name().to_string_lossy()));
        for l in tail.into_iter().rev() {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

/// The status's root cause is `want`.
pub fn root_cause_is(check: &PrivateApiConnectivityCheck, want: RootCause) -> bool {
    check.status.as_ref().and_then(|s| s.root_cause) == Some(want)
}

/// The condition of `type_`, if the status has it.
pub fn condition<'a>(check: &'a PrivateApiConnectivityCheck, type_: &str) -> Option<&'a Condition> {
    check.status.as_ref()?.conditions.iter().find(|c| c.type_ == type_)
}

/// Label selector of every probe pod.
pub const PROBE_PODS: &str = "app.kubernetes.io/component=probe";

/// Waits (60 s at most) for a probe pod of `ns` in phase Running and returns it.
pub async fn running_probe_pod(cluster: &Cluster, ns: &str) -> k8s_openapi::api::core::v1::Pod {
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(cluster.admin(), ns);
    let lp = kube::api::ListParams::default().labels(PROBE_PODS);
    for _ in 0..600 {
        let items = pods.list(&lp).await.map(|l| l.items).unwrap_or_default();
        if let Some(p) =
            items.into_iter().find(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{ns}: no probe pod Running after 60 s\n{}", operator_logs(ns, 30));
}

/// Waits (30 s at most) until `ns` holds no probe pod, or panics naming the ones left.
pub async fn assert_no_probe_pods_left(cluster: &Cluster, ns: &str) {
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(cluster.admin(), ns);
    let lp = kube::api::ListParams::default().labels(PROBE_PODS);
    let mut left = Vec::new();
    for _ in 0..300 {
        left = pods.list(&lp).await.map(|l| l.items).unwrap_or_default();
        if left.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let names: Vec<_> =
        left.iter().map(|p| (p.metadata.name.clone(), p.status.as_ref().and_then(|s| s.phase.clone()))).collect();
    panic!("{ns}: probe pods left behind: {names:?}");
}

/// Sets the `pvtapi.io/run-now` annotation to `value` (a new value runs the check at once).
pub async fn run_now(api: &Api<PrivateApiConnectivityCheck>, name: &str, value: &str) {
    let mut annotations = serde_json::Map::new();
    annotations.insert(pvtapi_crds::conditions::RUN_NOW_ANNOTATION.to_owned(), value.into());
    let patch = serde_json::json!({"metadata": {"annotations": annotations}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap_or_else(|e| panic!("annotate {name} run-now={value}: {e}"));
}

/// Runs `name` again (the run-now annotation) and waits for each new result, up to `runs` times,
/// until `done` holds for one; returns the last result and how many runs it took. For a change
/// the cluster applies asynchronously (a NetworkPolicy reaching the enforcer's informers): the
/// caller asserts on the result, this only bounds the wait.
pub async fn rerun_until(
    api: &Api<PrivateApiConnectivityCheck>,
    ns: &str,
    name: &str,
    runs: usize,
    done: impl Fn(&PrivateApiConnectivityCheck) -> bool,
) -> (PrivateApiConnectivityCheck, usize) {
    let mut before = api.get(name).await.ok().and_then(|c| c.status).and_then(|s| s.last_run_id);
    let mut last = None;
    for attempt in 1..=runs.max(1) {
        run_now(api, name, &format!("rerun-{}-{attempt}", before.as_deref().unwrap_or("none"))).await;
        let result = wait_check(api, ns, name, "a new result", |c| new_result_since(c, before.as_deref())).await;
        before = result.status.as_ref().and_then(|s| s.last_run_id.clone());
        if done(&result) {
            return (result, attempt);
        }
        last = Some(result);
    }
    (last.unwrap_or_else(|| panic!("{ns}/{name}: no result")), runs)
}

/// The status's last run id has changed from `before` and a root cause is set: a new result.
pub fn new_result_since(check: &PrivateApiConnectivityCheck, before: Option<&str>) -> bool {
    check.status.as_ref().is_some_and(|s| s.root_cause.is_some() && s.last_run_id.as_deref() != before)
}

/// A healthy private API for probe pods: the TLS front end (API Gateway's default names, signed
/// by a test CA) on an endpoint address of the bridge at :443 answering 200 for `api_id`, the
/// API host on the cluster DNS, and the CA as ConfigMap `configmap` (key `ca.crt`) in `ns` for
/// `spec.probe.caBundle`. The address, DNS record and listener go away on drop.
#[derive(Debug)]
pub struct HealthyApi {
    pub ca: crate::apigw::TestCa,
    _front: crate::apigw::FrontEnd,
    _dns: crate::cluster::ClusterDns,
    _address: crate::cluster::LocalAddress,
}

impl HealthyApi {
    pub async fn start(
        cluster: &Cluster,
        ns: &str,
        api_id: &str,
        ip: std::net::Ipv4Addr,
        configmap: &str,
    ) -> HealthyApi {
        use crate::apigw::{FrontEnd, Reply, TestCa, default_names, requires_api_identity};
        let address = cluster.local_address(ip);
        let ca = TestCa::new();
        let names = default_names("us-east-1");
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let front = FrontEnd::for_names_at(
            &ca,
            &names,
            std::net::SocketAddr::from((ip, 443)),
            requires_api_identity(api_id, Reply::ok("{}")),
        )
        .await;
        let host = format!("{api_id}.execute-api.us-east-1.amazonaws.com");
        let dns = cluster.dns(&[(host.as_str(), std::net::IpAddr::V4(ip))]);
        let api = HealthyApi { ca, _front: front, _dns: dns, _address: address };
        api.share_ca(cluster, ns, configmap).await;
        api
    }

    /// The test CA as ConfigMap `configmap` (key `ca.crt`) in `ns` too.
    pub async fn share_ca(&self, cluster: &Cluster, ns: &str, configmap: &str) {
        let pem = std::fs::read_to_string(self.ca.bundle_path()).unwrap_or_else(|e| panic!("read the test CA: {e}"));
        let cm = k8s_openapi::api::core::v1::ConfigMap {
            metadata: kube::api::ObjectMeta { name: Some(configmap.into()), ..Default::default() },
            data: Some([("ca.crt".to_owned(), pem)].into()),
            ..Default::default()
        };
        Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(cluster.admin(), ns)
            .create(&kube::api::PostParams::default(), &cm)
            .await
            .unwrap_or_else(|e| panic!("create ConfigMap {ns}/{configmap}: {e}"));
    }
}

/// A restricted-compliant Deployment `name` of the cluster's pause image in `ns`, its pods
/// labelled `app: name` plus `extra_labels` (a workload for `workloadRef` and `check --from`).
pub async fn pause_deployment(cluster: &Cluster, ns: &str, name: &str, extra_labels: &[(&str, &str)]) {
    pause_deployment_with(cluster, ns, name, extra_labels, None, &[]).await;
}

/// [`pause_deployment`] whose pods also have volume `configmap` (the ConfigMap of that name, e.g.
/// a CA the workload trusts) mounted read-only in its container, and `env` (Kubernetes `EnvVar`
/// objects) in it.
pub async fn pause_deployment_with(
    cluster: &Cluster,
    ns: &str,
    name: &str,
    extra_labels: &[(&str, &str)],
    configmap: Option<&str>,
    env: &[serde_json::Value],
) {
    use k8s_openapi::api::apps::v1::Deployment;
    let mut labels = serde_json::json!({"app": name});
    for (k, v) in extra_labels {
        labels[*k] = (*v).into();
    }
    let deployment: Deployment = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "automountServiceAccountToken": false,
                    "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{
                        "name": "app",
                        "image": cluster.pause_image,
                        "imagePullPolicy": "Never",
                        "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}
                    }]
                }
            }
        }
    }))
    .unwrap_or_else(|e| panic!("the Deployment fixture: {e}"));
    let mut deployment = deployment;
    if let (Some(cm), Some(pod)) = (configmap, deployment.spec.as_mut().and_then(|s| s.template.spec.as_mut())) {
        use k8s_openapi::api::core::v1::{ConfigMapVolumeSource, Volume, VolumeMount};
        pod.volumes = Some(vec![Volume {
            name: cm.to_owned(),
            config_map: Some(ConfigMapVolumeSource { name: cm.to_owned(), ..Default::default() }),
            ..Default::default()
        }]);
        for c in &mut pod.containers {
            c.volume_mounts = Some(vec![VolumeMount {
                name: cm.to_owned(),
                mount_path: format!("/etc/{cm}"),
                read_only: Some(true),
                ..Default::default()
            }]);
        }
    }
    if let Some(pod) = deployment.spec.as_mut().and_then(|s| s.template.spec.as_mut())
        && !env.is_empty()
    {
        let vars: Vec<k8s_openapi::api::core::v1::EnvVar> = env
            .iter()
            .map(|v| serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("env fixture {v}: {e}")))
            .collect();
        for c in &mut pod.containers {
            c.env = Some(vars.clone());
        }
    }
    Api::<Deployment>::namespaced(cluster.admin(), ns)
        .create(&kube::api::PostParams::default(), &deployment)
        .await
        .unwrap_or_else(|e| panic!("create Deployment {ns}/{name}: {e}"));
}

//! The local one-node cluster started by `tests/substrate/cluster.sh`: a real kubelet running
//! real pods (containerd, runc, CNI bridge), kube-proxy, the scheduler and the controller
//! manager around the control plane of [`ControlPlane`].
//!
//! Why a real node: only the kubelet shows what a probe pod really meets — Pod Security
//! admission *and* a read-only root filesystem at run time, the termination message it writes,
//! the DNS a pod really resolves through, and the real shapes of ErrImageNeverPull, OOMKilled and
//! Unschedulable. Tests create pods and read what the kubelet reports; nothing here writes a
//! pod's status.
//!
//! The bridge dnsmasq is the cluster DNS and plays the VPC resolver: a test adds its records
//! with [`Cluster::dns`] (a hosts file in the directory dnsmasq watches) and they vanish when the
//! guard drops. [`Cluster::local_address`] adds an address on the bridge for a listener playing
//! an endpoint ENI; pods reach it through the node.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::{ContainerState, ContainerStateTerminated, Event, Namespace, Pod, ServiceAccount};
use kube::api::{Api, ListParams, LogParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::wait::await_condition;
use kube::{Client, ResourceExt};

use crate::control_plane::{ControlPlane, FIELD_MANAGER};
use crate::peers::{INSTALL_HINT, require_program, tail, wait_until};

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: the node tests need the local cluster (kubelet, containerd, kube-proxy); \
             {INSTALL_HINT}, or `eval \"$(bash tests/substrate/cluster.sh start)\"` before `cargo test`"
        )
    })
}

/// A name unique to this test process and call, safe as a Kubernetes name suffix.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{}", std::process::id() % 100_000, COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Handle on the running local cluster.
#[derive(Debug, Clone)]
pub struct Cluster {
    cp: ControlPlane,
    /// The node's name.
    pub node_name: String,
    /// The node's address: the bridge address, the apiserver's and the DNS server's.
    pub node_ip: Ipv4Addr,
    /// The bridge pods are attached to.
    pub bridge: String,
    /// The pvtapi image (the operator binary: `run` and `probe`).
    pub image: String,
    /// The operator binary the image was built from (for suites of other crates).
    pub operator_bin: PathBuf,
    /// The manifest digest of the pvtapi image imported into the node.
    pub image_digest: String,
    /// A tiny static image: waits for SIGTERM; `alloc MIB` allocates first.
    pub pause_image: String,
    /// `pause alloc 64` whatever its args: a container OOM-killed under a 64 MiB limit.
    pub hog_image: String,
    /// kubectl alone in an image, for in-cluster-config checks.
    pub kubectl_image: String,
    /// Every address the CNI may give a pod (`PVTAPI_POD_RANGE`, first-last), in order.
    pub pod_addresses: Vec<Ipv4Addr>,
    state: PathBuf,
    dns_hosts_dir: PathBuf,
}

impl Cluster {
    /// Connects to the cluster named by the env lines of `cluster.sh start`, or panics saying how
    /// to start one.
    pub async fn from_env() -> Cluster {
        let node_ip = env("PVTAPI_NODE_IP");
        let cluster = Cluster {
            cp: ControlPlane::from_env().await,
            node_name: env("PVTAPI_NODE_NAME"),
            node_ip: node_ip.parse().unwrap_or_else(|e| panic!("PVTAPI_NODE_IP {node_ip:?}: {e}")),
            bridge: env("PVTAPI_BRIDGE"),
            image: env("PVTAPI_IMAGE"),
            operator_bin: PathBuf::from(env("PVTAPI_OPERATOR_BIN")),
            image_digest: env("PVTAPI_IMAGE_DIGEST"),
            pause_image: env("PVTAPI_PAUSE_IMAGE"),
            kubectl_image: env("PVTAPI_KUBECTL_IMAGE"),
            hog_image: env("PVTAPI_HOG_IMAGE"),
            pod_addresses: address_range(&env("PVTAPI_POD_RANGE")),
            state: PathBuf::from(env("PVTAPI_CLUSTER_STATE")),
            dns_hosts_dir: PathBuf::from(env("PVTAPI_DNS_HOSTS_DIR")),
        };
        assert!(
            cluster.dns_hosts_dir.is_dir(),
            "{} is missing: is the local cluster running? {INSTALL_HINT}",
            cluster.dns_hosts_dir.display()
        );
        cluster
    }

    /// Panics unless the cluster enforces NetworkPolicies (`cluster.sh` starts
    /// kube-network-policies unless `PVTAPI_NETWORK_POLICIES=off`): a suite whose result depends
    /// on enforcement fails loudly on a cluster without it.
    pub fn require_network_policy_enforcement(&self) {
        let mode = std::env::var("PVTAPI_NETWORK_POLICIES").unwrap_or_default();
        let decider = self.state.join("pid/kube-network-policies.pid");
        let alive = std::fs::read_to_string(&decider)
            .ok()
            .and_then(|pid| pid.trim().parse::<u32>().ok())
            .is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
        assert!(
            mode == "enforced" && alive,
            "this suite needs NetworkPolicy enforcement: PVTAPI_NETWORK_POLICIES={mode:?}, kube-network-policies {} — start the cluster with tests/substrate/cluster.sh start (PVTAPI_NETWORK_POLICIES unset or enforced)",
            if alive { "running" } else { "not running" }
        );
    }

    /// The control plane (admin client, CRD install, restricted identities).
    pub fn control_plane(&self) -> &ControlPlane {
        &self.cp
    }

    /// A client with the admin identity.
    pub fn admin(&self) -> Client {
        self.cp.admin()
    }

    /// A component's log file (`kubelet`, `containerd`, `dnsmasq`, `kube-apiserver`, …).
    pub fn log_path(&self, component: &str) -> PathBuf {
        self.state.join("log").join(format!("{component}.log"))
    }

    /// Creates a fresh namespace `{prefix}-…`, labelled with Pod Security `enforce=level` when
    /// given, and waits for its `default` ServiceAccount (pods are refused until it exists).
    pub async fn namespace(&self, prefix: &str, pod_security: Option<&str>) -> String {
        let name = unique(prefix);
        let mut labels = BTreeMap::new();
        if let Some(level) = pod_security {
            labels.insert("pod-security.kubernetes.io/enforce".to_owned(), level.to_owned());
            labels.insert("pod-security.kubernetes.io/enforce-version".to_owned(), "latest".to_owned());
        }
        let ns = Namespace {
            metadata: ObjectMeta { name: Some(name.clone()), labels: Some(labels), ..Default::default() },
            ..Default::default()
        };
        Api::<Namespace>::all(self.admin())
            .patch(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&ns))
            .await
            .unwrap_or_else(|e| panic!("create namespace {name}: {e}"));
        let sas: Api<ServiceAccount> = Api::namespaced(self.admin(), &name);
        let exists = await_condition(sas, "default", |sa: Option<&ServiceAccount>| sa.is_some());
        tokio::time::timeout(Duration::from_secs(60), exists)
            .await
            .unwrap_or_else(|_| {
                panic!("ServiceAccount {name}/default not created after 60 s (kube-controller-manager running?)")
            })
            .unwrap_or_else(|e| panic!("watch ServiceAccount {name}/default: {e}"));
        name
    }

    /// Publishes `records` (name → address) on the cluster DNS until the guard drops.
    pub fn dns(&self, records: &[(&str, IpAddr)]) -> ClusterDns {
        let file = self.dns_hosts_dir.join(unique("test"));
        let text: String = records.iter().map(|(name, ip)| format!("{ip} {name}\n")).collect();
        let tmp = file.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap_or_else(|e| panic!("write {}: {e}", tmp.display()));
        std::fs::rename(&tmp, &file).unwrap_or_else(|e| panic!("rename {}: {e}", file.display()));
        // dnsmasq logs "read <file> - N names" once it has loaded the file.
        let log = self.log_path("dnsmasq");
        let needle = format!("read {}", file.display());
        wait_until(
            "the cluster DNS to load the test's records",
            Duration::from_secs(10),
            || std::fs::read_to_string(&log).is_ok_and(|l| l.contains(&needle)),
            || tail(&log, 20),
        );
        ClusterDns { file, dnsmasq_pid: self.state.join("pid/dnsmasq.pid") }
    }

    /// Adds `ip/32` to the bridge (an "endpoint ENI" address pods reach through the node) until
    /// the guard drops.
    pub fn local_address(&self, ip: Ipv4Addr) -> LocalAddress {
        let cidr = format!("{ip}/32");
        ip_cmd(&["addr", "add", &cidr, "dev", &self.bridge]);
        LocalAddress { cidr, dev: self.bridge.clone() }
    }

    /// Creates `pod` and waits until `done(pod)` holds, panicking after `timeout` with the pod's
    /// status and events.
    pub async fn create_and_wait(&self, pod: &Pod, what: &str, timeout: Duration, done: impl Fn(&Pod) -> bool) -> Pod {
        let ns = pod.namespace().unwrap_or_else(|| "default".into());
        let api: Api<Pod> = Api::namespaced(self.admin(), &ns);
        let created = api
            .create(&PostParams::default(), pod)
            .await
            .unwrap_or_else(|e| panic!("create pod {ns}/{}: {e}", pod.name_any()));
        self.wait_pod(&ns, &created.name_any(), what, timeout, done).await
    }

    /// Waits (on a watch, not a polling loop) until `done(pod)` holds.
    pub async fn wait_pod(
        &self,
        ns: &str,
        name: &str,
        what: &str,
        timeout: Duration,
        done: impl Fn(&Pod) -> bool,
    ) -> Pod {
        let api: Api<Pod> = Api::namespaced(self.admin(), ns);
        let cond = await_condition(api.clone(), name, move |p: Option<&Pod>| p.is_some_and(&done));
        match tokio::time::timeout(timeout, cond).await {
            Ok(Ok(Some(pod))) => pod,
            Ok(Ok(None)) => panic!("pod {ns}/{name} deleted while waiting for {what}"),
            Ok(Err(e)) => panic!("watch pod {ns}/{name}: {e}"),
            Err(_) => {
                let now = api.get_opt(name).await.ok().flatten();
                panic!(
                    "pod {ns}/{name}: {what} not seen after {timeout:?}\nstatus: {}\nevents:\n{}\nkubelet log:\n{}",
                    now.and_then(|p| p.status)
                        .map(|s| serde_json::to_string_pretty(&s).unwrap_or_default())
                        .unwrap_or_default(),
                    self.events(ns, name).await,
                    tail(&self.log_path("kubelet"), 15)
                )
            }
        }
    }

    /// The events of one object, one line each (for failure messages).
    pub async fn events(&self, ns: &str, name: &str) -> String {
        let api: Api<Event> = Api::namespaced(self.admin(), ns);
        let lp = ListParams::default().fields(&format!("involvedObject.name={name}"));
        match api.list(&lp).await {
            Ok(list) => list
                .items
                .iter()
                .map(|e| {
                    format!(
                        "{} {}: {}",
                        e.type_.as_deref().unwrap_or(""),
                        e.reason.as_deref().unwrap_or(""),
                        e.message.as_deref().unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
                .join("\n"),
            Err(e) => format!("(cannot list events: {e})"),
        }
    }

    /// A pod's logs (through the apiserver and the kubelet, as `kubectl logs` does).
    pub async fn logs(&self, ns: &str, name: &str) -> String {
        Api::<Pod>::namespaced(self.admin(), ns)
            .logs(name, &LogParams::default())
            .await
            .unwrap_or_else(|e| panic!("logs of pod {ns}/{name}: {e}"))
    }
}

/// The pod reached a terminal phase.
/// `a.b.c.d-a.b.c.e` → every address from the first to the last.
fn address_range(range: &str) -> Vec<Ipv4Addr> {
    let parse = |s: &str| s.trim().parse::<Ipv4Addr>().unwrap_or_else(|e| panic!("PVTAPI_POD_RANGE {range:?}: {e}"));
    let (first, last) = range.split_once('-').unwrap_or_else(|| panic!("PVTAPI_POD_RANGE {range:?}: not FIRST-LAST"));
    (u32::from(parse(first))..=u32::from(parse(last))).map(Ipv4Addr::from).collect()
}

pub fn finished(pod: &Pod) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

/// The pod's phase, or "".
pub fn phase(pod: &Pod) -> &str {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("")
}

/// The first container's state, as the kubelet last reported it.
pub fn container_state(pod: &Pod) -> Option<&ContainerState> {
    pod.status.as_ref()?.container_statuses.as_ref()?.first()?.state.as_ref()
}

/// The first container's waiting reason, if it is waiting.
pub fn waiting_reason(pod: &Pod) -> Option<&str> {
    container_state(pod)?.waiting.as_ref()?.reason.as_deref()
}

/// The first container's terminated state, once it has terminated.
pub fn terminated(pod: &Pod) -> Option<&ContainerStateTerminated> {
    container_state(pod)?.terminated.as_ref()
}

/// Records on the cluster DNS; removed on drop.
#[derive(Debug)]
pub struct ClusterDns {
    file: PathBuf,
    dnsmasq_pid: PathBuf,
}

impl Drop for ClusterDns {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
        // dnsmasq reads new and changed files in its hosts directory by itself, but forgets a
        // deleted file's records only when it re-reads everything on SIGHUP.
        if let Ok(pid) = std::fs::read_to_string(&self.dnsmasq_pid) {
            let _ = Command::new("kill").args(["-HUP", pid.trim()]).output();
        }
    }
}

/// An address on the bridge; removed on drop.
#[derive(Debug)]
pub struct LocalAddress {
    cidr: String,
    dev: String,
}

impl Drop for LocalAddress {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["addr", "del", &self.cidr, "dev", &self.dev]).output();
    }
}

fn ip_cmd(args: &[&str]) {
    let ip = require_program("ip", "Debian package `iproute2` (apt-get install -y iproute2)");
    let out = Command::new(ip).args(args).output().unwrap_or_else(|e| panic!("run ip {args:?}: {e}"));
    assert!(out.status.success(), "`ip {}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
}

//! `tests/substrate/cluster.sh stop` leaves nothing behind, and `start` brings the cluster back.
//!
//! The same inventory is taken while the cluster runs (each kind of trace must be found: the
//! check can fail) and after `stop` (none may be left): processes, mounts, the bridge, network
//! namespaces, cgroups, kube-proxy's iptables chains, blackhole routes, host paths, state.
//! This test binary holds only this test, so nothing else uses the cluster while it restarts.

use std::path::{Path, PathBuf};
use std::process::Command;

use pvtapi_testkit::peers::INSTALL_HINT;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/substrate/cluster.sh");

/// Paths the kubelet, containerd and CNI write whatever their configuration says: inside the
/// cluster's private mount namespace they are tmpfs; on the host they must never appear.
const HOST_PATHS: [&str; 7] = [
    "/var/lib/kubelet",
    "/var/lib/cni",
    "/var/lib/containerd",
    "/var/log/pods",
    "/var/log/containers",
    "/run/containerd",
    "/opt/containerd",
];

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: start the local cluster first; {INSTALL_HINT}"))
}

fn run(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[derive(Debug, Default)]
struct Traces(Vec<(&'static str, String)>);

impl Traces {
    fn kinds(&self) -> std::collections::BTreeSet<&'static str> {
        self.0.iter().map(|(k, _)| *k).collect()
    }
}

fn inventory(state: &Path, kube_bin: &str, bridge: &str, cidrs: &[String]) -> Traces {
    let mut t = Traces::default();
    let state_s = state.display().to_string();
    let me = std::process::id().to_string();
    for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) || pid == me {
            continue;
        }
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        if cmdline.contains(&state_s) || cmdline.contains(kube_bin) {
            t.0.push(("process", format!("{pid}: {cmdline}")));
        }
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    for line in mountinfo.lines().filter(|l| l.contains(&state_s) || l.contains("pvtapi-node")) {
        t.0.push(("mount", line.to_owned()));
    }
    if Path::new("/sys/class/net").join(bridge).exists() {
        t.0.push(("link", bridge.to_owned()));
    }
    if let Ok(dir) = std::fs::read_dir("/run/netns") {
        for e in dir.flatten().filter(|e| e.file_name().to_string_lossy().starts_with("cni-")) {
            t.0.push(("netns", e.path().display().to_string()));
        }
    }
    for h in std::fs::read_dir("/sys/fs/cgroup").expect("cgroup fs").flatten() {
        let ours = h.path().join("pvtapi");
        if ours.exists() {
            t.0.push(("cgroup", ours.display().to_string()));
        }
    }
    for save in ["iptables-save", "ip6tables-save"] {
        for table in ["nat", "filter", "mangle"] {
            let rules = run(Command::new(save).args(["-t", table]));
            if let Some(line) = rules.lines().find(|l| l.contains("KUBE-")) {
                t.0.push(("iptables", format!("{save} {table}: {line}")));
            }
        }
    }
    let routes = run(Command::new("ip").args(["route", "show", "type", "blackhole"]));
    for cidr in cidrs {
        if routes.lines().any(|l| l.split_whitespace().nth(1) == Some(cidr.as_str())) {
            t.0.push(("route", format!("blackhole {cidr}")));
        }
    }
    for p in HOST_PATHS.iter().filter(|p| Path::new(p).exists()) {
        t.0.push(("host path", (*p).to_owned()));
    }
    if state.exists() {
        t.0.push(("state", state_s));
    }
    t
}

#[test]
fn stop_removes_every_trace_and_start_brings_the_cluster_back() {
    let state = PathBuf::from(env("PVTAPI_CLUSTER_STATE"));
    let kube_bin = env("PVTAPI_KUBE_BIN");
    let bridge = env("PVTAPI_BRIDGE");
    let cidrs = [env("PVTAPI_VPC_CIDR"), env("PVTAPI_SERVICE_CIDR")];

    let running = inventory(&state, &kube_bin, &bridge, &cidrs);
    let kinds = running.kinds();
    for kind in ["process", "mount", "link", "cgroup", "iptables", "route", "state"] {
        assert!(kinds.contains(kind), "a running cluster must show a {kind}; inventory: {running:#?}");
    }
    assert!(!kinds.contains("host path"), "the node wrote host paths: {running:#?}");
    let processes = running.0.iter().filter(|(k, _)| *k == "process").count();
    assert!(processes >= 8, "etcd, 5 Kubernetes components, containerd, dnsmasq (+ shims): {running:#?}");

    // The kubelet changes a few host sysctls; stop must put back what start saved.
    let saved = std::fs::read_to_string(state.join("sysctl.before"))
        .expect("cluster.sh saves the sysctls it lets the kubelet change");
    assert!(saved.lines().count() >= 4, "{saved}");

    run(Command::new("bash").arg(SCRIPT).arg("stop"));
    let left = inventory(&state, &kube_bin, &bridge, &cidrs);
    for line in saved.lines() {
        let (key, before) = line.split_once(" = ").unwrap_or_else(|| panic!("bad sysctl line {line:?}"));
        let now = run(Command::new("sysctl").args(["-n", key]));
        assert_eq!(now.trim(), before.trim(), "sysctl {key} not restored by stop");
    }
    let restart = Command::new("bash").arg(SCRIPT).arg("start").output().expect("cluster.sh start");
    assert!(left.0.is_empty(), "`cluster.sh stop` left traces behind: {left:#?}");
    assert!(
        restart.status.success(),
        "cluster.sh start after stop failed:\n{}",
        String::from_utf8_lossy(&restart.stderr)
    );
    let env_lines = String::from_utf8_lossy(&restart.stdout);
    assert!(env_lines.contains(&format!("export PVTAPI_CLUSTER_STATE={}", state.display())), "{env_lines}");

    let kubectl = Path::new(&kube_bin).join("kubectl");
    let ready = run(Command::new(kubectl).args([
        "--kubeconfig",
        &env("PVTAPI_KUBECONFIG"),
        "get",
        "node",
        &env("PVTAPI_NODE_NAME"),
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
    ]));
    assert_eq!(ready, "True", "the node is Ready again after a restart");
}

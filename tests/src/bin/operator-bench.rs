//! `operator-bench`: the operator's speed and footprint on the local cluster, each figure next to
//! a baseline measured side by side (never a timed assertion).
//!
//! ```text
//! eval "$(bash tests/substrate/cluster.sh start)"
//! cargo run -p pvtapi-e2e --bin operator-bench -- latency 20   # runs of one check vs bare pods
//! cargo run -p pvtapi-e2e --bin operator-bench -- scale 1000   # 1,000 checks on one API/endpoint
//! cargo run -p pvtapi-e2e --bin operator-bench -- list 1000    # kubectl pvtapi list -A vs kubectl get pac -A
//! ```
//!
//! - `latency N`: N runs of one check (run-now), interleaved with N bare pods from the same image
//!   that exit at once. Prints probe-pod termination → status written (p50/p95, both instants
//!   seen on the same watch connection), and a run's wall time (annotation → status) against a
//!   bare pod's (create → its container terminated, as seen on the watch), with the ratio.
//! - `scale N`: N checks on one API and endpoint in a moto world with a healthy front end.
//!   Prints the time until every check has a first result, probe pods per second the node
//!   sustained, the most probe pods alive at once, the operator's peak and final RSS, and the AWS
//!   calls the whole first round (one interval) cost, from the operator's own `/metrics`.
//! - `list N [RUNS]`: N checks over 10 namespaces, each with the status of a real healthy run
//!   (one check through the operator, its status copied with a status server-side apply and its
//!   history filled to `MAX_HISTORY`, as a check that has run for a while). Times `kubectl pvtapi
//!   list -A` (kubectl runs the plugin from PATH) against `kubectl get pac -A`, interleaved, RUNS
//!   times each (default 15) after a warm-up, and prints min/median/max and the ratio of the
//!   medians, with `kubectl get pac -A --chunk-size=0` (one request, as the plugin makes) and the
//!   plugin alone (`kubectl-pvtapi list -A`) beside them. `PVTAPI_BENCH_KEEP=1` keeps the
//!   checks afterwards (for a profiler).
//!
//! The operator binary: `PVTAPI_OPERATOR_BIN`, else `$CARGO_TARGET_DIR/debug/pvtapi-operator`.
//! The plugin (`list`): `PVTAPI_PLUGIN_BIN`, else `$CARGO_TARGET_DIR/release/kubectl-pvtapi` when
//! built, else `…/debug/kubectl-pvtapi`.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use pvtapi_crds::PrivateApiConnectivityCheck;
use pvtapi_testkit::cluster::Cluster;
use pvtapi_testkit::moto::Moto;
use pvtapi_testkit::operator::{
    HealthyApi, OperatorOptions, OperatorProcess, apply_and_wait, check, root_cause_is, run_now,
};
use pvtapi_testkit::world::{self, WorldSpec};

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/pvtapi/target"))
}

fn operator_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("PVTAPI_OPERATOR_BIN") {
        return PathBuf::from(p);
    }
    target_dir().join("debug/pvtapi-operator")
}

fn plugin_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("PVTAPI_PLUGIN_BIN") {
        return PathBuf::from(p);
    }
    let release = target_dir().join("release/kubectl-pvtapi");
    if release.is_file() { release } else { target_dir().join("debug/kubectl-pvtapi") }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// What the watches saw, with when.
#[derive(Default)]
struct Seen {
    /// pod name → when its container was first seen terminated (or the pod finished).
    pod_done: HashMap<String, Instant>,
    /// run id → when the check's status first named it as the last run.
    status_for_run: HashMap<String, Instant>,
}

fn watch_namespace(cluster: &Cluster, ns: &str, seen: Arc<Mutex<Seen>>) {
    let pods: Api<Pod> = Api::namespaced(cluster.admin(), ns);
    let s = seen.clone();
    tokio::spawn(async move {
        let mut stream = watcher::watcher(pods, watcher::Config::default()).boxed();
        while let Some(ev) = stream.next().await {
            let Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) = ev else { continue };
            // Terminated as the operator sees it: the container's terminated state (the kubelet
            // reports it before the pod's phase turns Succeeded).
            let phase = p.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or_default();
            let terminated = pvtapi_testkit::cluster::terminated(&p).is_some();
            if (terminated || matches!(phase, "Succeeded" | "Failed"))
                && let (Some(name), Ok(mut s)) = (p.metadata.name.clone(), s.lock())
            {
                s.pod_done.entry(name).or_insert_with(Instant::now);
            }
        }
    });
    let checks: Api<PrivateApiConnectivityCheck> = Api::namespaced(cluster.admin(), ns);
    tokio::spawn(async move {
        let mut stream = watcher::watcher(checks, watcher::Config::default()).boxed();
        while let Some(ev) = stream.next().await {
            let Ok(watcher::Event::Apply(c) | watcher::Event::InitApply(c)) = ev else { continue };
            if let (Some(run), Ok(mut s)) = (c.status.and_then(|s| s.last_run_id), seen.lock()) {
                s.status_for_run.entry(run).or_insert_with(Instant::now);
            }
        }
    });
}

async fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if start.elapsed() > timeout {
            panic!("operator-bench: {what} not seen after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn latency(cluster: &Cluster, runs: usize) {
    let ns = cluster.namespace("bench-latency", Some("restricted")).await;
    let seen = Arc::new(Mutex::new(Seen::default()));
    watch_namespace(cluster, &ns, seen.clone());
    let _operator = OperatorProcess::start(&operator_bin(), cluster, &ns, &OperatorOptions::default());
    // No record for this API: NXDOMAIN, the shortest real run (DNS only, no AWS).
    let c = check(&ns, "orders", "zzzzz99970", serde_json::json!({"intervalSeconds": 3600}));
    let checks: Api<PrivateApiConnectivityCheck> = Api::namespaced(cluster.admin(), &ns);
    checks.patch("orders", &PatchParams::apply("operator-bench"), &Patch::Apply(&c)).await.expect("apply");
    let first = wait_for("the first result", Duration::from_secs(120), || {
        seen.lock().ok().and_then(|s| s.status_for_run.keys().next().cloned())
    })
    .await;
    let mut known: Vec<String> = vec![first];

    let pods: Api<Pod> = Api::namespaced(cluster.admin(), &ns);
    let mut term_to_status = Vec::new();
    let mut run_wall = Vec::new();
    let mut bare_wall = Vec::new();
    for i in 0..runs {
        // A run of the check: annotation → status names a new run.
        let t0 = Instant::now();
        run_now(&checks, "orders", &format!("bench-{i}")).await;
        let (run, at) = wait_for("a new run", Duration::from_secs(120), || {
            let s = seen.lock().ok()?;
            s.status_for_run.iter().find(|(r, _)| !known.contains(r)).map(|(r, t)| (r.clone(), *t))
        })
        .await;
        known.push(run.clone());
        run_wall.push(at - t0);
        let pod_name = format!("orders-{run}");
        if let Some(done) = seen.lock().ok().and_then(|s| s.pod_done.get(&pod_name).copied()) {
            term_to_status.push(at.saturating_duration_since(done));
        }

        // A bare pod from the same image that exits at once: create → container terminated.
        let name = format!("bare-{i}");
        let mut pod = pvtapi_operator_like_pod(&name, &cluster.image);
        pod.metadata.namespace = Some(ns.clone());
        let t0 = Instant::now();
        pods.create(&PostParams::default(), &pod).await.expect("create bare pod");
        let done = wait_for("the bare pod Succeeded", Duration::from_secs(120), || {
            seen.lock().ok().and_then(|s| s.pod_done.get(&name).copied())
        })
        .await;
        bare_wall.push(done - t0);
        let _ = pods.delete(&name, &DeleteParams::default()).await;
    }
    for v in [&mut term_to_status, &mut run_wall, &mut bare_wall] {
        v.sort();
    }
    let (run50, bare50) = (percentile(&run_wall, 0.5), percentile(&bare_wall, 0.5));
    println!("operator-bench latency: {runs} runs of one check, interleaved with {runs} bare pods (same image)");
    println!(
        "  probe pod terminated → status written: p50 {}  p95 {}  (n={}; goal p50 ≤ 300 ms)",
        ms(percentile(&term_to_status, 0.5)),
        ms(percentile(&term_to_status, 0.95)),
        term_to_status.len()
    );
    println!("  run (run-now → status): p50 {}  p95 {}", ms(run50), ms(percentile(&run_wall, 0.95)));
    println!(
        "  bare pod (create → container terminated): p50 {}  p95 {}",
        ms(bare50),
        ms(percentile(&bare_wall, 0.95))
    );
    println!(
        "  ratio run / bare pod (p50): {:.2}×  (goal ≤ 1.2×)",
        run50.as_secs_f64() / bare50.as_secs_f64().max(1e-9)
    );
    delete_namespace(cluster, &ns).await;
}

/// A pod like a probe pod (restricted, no token) whose container exits at once.
fn pvtapi_operator_like_pod(name: &str, image: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": false,
            "enableServiceLinks": false,
            "terminationGracePeriodSeconds": 1,
            "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "probe", "image": image, "imagePullPolicy": "IfNotPresent",
                "args": ["probe", "--help"],
                "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"cpu": "500m", "memory": "64Mi"}},
                "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "runAsNonRoot": true,
                    "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}
            }]
        }
    }))
    .expect("bare pod")
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field).map(|v| v.trim().trim_end_matches("kB").trim().parse().unwrap_or(0)))
        .unwrap_or(0)
}

/// One healthy API behind one endpoint in moto, its front end, and an operator watching `ns`
/// with its metrics on `metrics_port`.
struct HealthyWorld {
    vpce: String,
    operator: OperatorProcess,
    _api: HealthyApi,
    _moto: Moto,
}

impl HealthyWorld {
    async fn start(cluster: &Cluster, ns: &str, metrics_port: u16) -> HealthyWorld {
        let moto = Moto::start();
        let config = moto.sdk_config("us-east-1").await;
        let resource_policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"execute-api:Invoke","Resource":"execute-api:/*"}]}"#;
        let spec = WorldSpec { resource_policy: Some(resource_policy.into()), ..Default::default() };
        let w = world::build(&config, &spec).await;
        world::add_pod_interfaces(&config, &w, &cluster.pod_addresses).await;
        let api = HealthyApi::start(cluster, ns, world::API_ID, Ipv4Addr::new(10, 0, 1, 236), "ca").await;
        let env = moto.env().into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        let options = OperatorOptions {
            env,
            // The operator's defaults: failing runs' facts ≤ 25 s old, clean runs' ≤ 600 s.
            args: Vec::new(),
            metrics_addr: Some(format!("127.0.0.1:{metrics_port}")),
            ..Default::default()
        };
        let operator = OperatorProcess::start(&operator_bin(), cluster, ns, &options);
        HealthyWorld { vpce: w.vpce, operator, _api: api, _moto: moto }
    }

    /// A check of the healthy API, run once an hour.
    fn check(&self, ns: &str, name: &str) -> PrivateApiConnectivityCheck {
        check(
            ns,
            name,
            world::API_ID,
            serde_json::json!({
                "endpoint": {"vpcEndpointId": self.vpce},
                "intervalSeconds": 3600,
                "aws": {"inspect": true},
                "probe": {"caBundle": {"configMap": "ca"}}
            }),
        )
    }
}

async fn scale(cluster: &Cluster, n: usize) {
    let ns = cluster.namespace("bench-scale", Some("restricted")).await;
    let port = pvtapi_testkit::peers::free_port(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let world = HealthyWorld::start(cluster, &ns, port).await;
    let pid = world.operator.pid();
    let checks: Api<PrivateApiConnectivityCheck> = Api::namespaced(cluster.admin(), &ns);
    let start = Instant::now();
    for i in 0..n {
        let name = format!("c-{i:04}");
        let c = world.check(&ns, &name);
        checks.patch(&name, &PatchParams::apply("operator-bench"), &Patch::Apply(&c)).await.expect("apply check");
    }
    let created = start.elapsed();
    let pods: Api<Pod> = Api::namespaced(cluster.admin(), &ns);
    let probe_pods = ListParams::default().labels("app.kubernetes.io/component=probe");
    let (mut peak_pods, mut peak_rss) = (0usize, 0u64);
    let mut causes: BTreeMap<String, usize>;
    loop {
        let list = checks.list(&ListParams::default()).await.expect("list checks");
        causes = BTreeMap::new();
        for c in &list.items {
            let cause = c.status.as_ref().and_then(|s| s.root_cause).map(|r| r.code().to_owned());
            *causes.entry(cause.unwrap_or_else(|| "(none yet)".into())).or_default() += 1;
        }
        let alive = pods.list(&probe_pods).await.map(|l| l.items.len()).unwrap_or(0);
        peak_pods = peak_pods.max(alive);
        peak_rss = peak_rss.max(rss_kib(pid, "VmRSS:"));
        let pending = causes.get("(none yet)").copied().unwrap_or(0);
        eprint!(
            "\r  {:>4}/{n} checks have a result, {alive:>3} probe pods alive, {:>5.0} s",
            n - pending,
            start.elapsed().as_secs_f64()
        );
        if pending == 0 {
            break;
        }
        if start.elapsed() > Duration::from_secs(3600) {
            eprintln!();
            panic!("operator-bench: {pending} checks without a result after an hour: {causes:?}");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    eprintln!();
    let all = start.elapsed();
    let metrics = get_metrics(port).await;
    let mut calls: BTreeMap<String, f64> = BTreeMap::new();
    for line in metrics.lines().filter(|l| l.starts_with("pvtapi_aws_calls_total{")) {
        if let Some((labels, v)) = line.rsplit_once(' ') {
            calls.insert(labels.trim_start_matches("pvtapi_aws_calls_total").to_owned(), v.parse().unwrap_or(0.0));
        }
    }
    let total_calls: f64 = calls.values().sum();
    println!(
        "operator-bench scale: {n} checks on one API and endpoint (moto), one operator ({})",
        operator_bin().display()
    );
    println!(
        "  checks created in {:.1} s; every check has a first result after {:.1} s",
        created.as_secs_f64(),
        all.as_secs_f64()
    );
    println!("  root causes: {causes:?}");
    println!(
        "  probe pods: {n} in {:.1} s = {:.1} pods/s sustained; at most {peak_pods} alive at once",
        all.as_secs_f64(),
        n as f64 / all.as_secs_f64()
    );
    println!(
        "  operator RSS: peak {:.1} MiB (sampled), high-water {:.1} MiB, now {:.1} MiB  (goal ≤ 100 MiB)",
        peak_rss as f64 / 1024.0,
        rss_kib(pid, "VmHWM:") as f64 / 1024.0,
        rss_kib(pid, "VmRSS:") as f64 / 1024.0
    );
    println!("  AWS calls for the whole first round (one interval, default cache ages): {total_calls:.0}  (goal ≤ 10)");
    for (op, v) in &calls {
        println!("    {op} {v:.0}");
    }
    drop(world);
    delete_namespace(cluster, &ns).await;
}

/// GET /metrics with a plain TCP request (no HTTP client in the testkit).
async fn get_metrics(port: u16) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await else {
        return String::new();
    };
    let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// The status of one real healthy run, its history filled to `MAX_HISTORY` (a check that has
/// run for a while), to copy onto many checks.
async fn real_status(cluster: &Cluster) -> serde_json::Value {
    let ns = cluster.namespace("bench-list-src", Some("restricted")).await;
    let port = pvtapi_testkit::peers::free_port(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let world = HealthyWorld::start(cluster, &ns, port).await;
    let c = world.check(&ns, "template");
    let done =
        apply_and_wait(cluster, &c, "a healthy result to copy", |c| root_cause_is(c, pvtapi_crds::RootCause::Healthy))
            .await;
    drop(world);
    delete_namespace(cluster, &ns).await;
    let mut status = serde_json::to_value(done.status).expect("status as JSON");
    let first = status["history"][0].clone();
    let history: Vec<serde_json::Value> = (0..pvtapi_crds::check::MAX_HISTORY)
        .map(|i| {
            let mut h = first.clone();
            h["runId"] = format!("{}-{i:02}", first["runId"].as_str().unwrap_or("run")).into();
            h
        })
        .collect();
    status["history"] = history.into();
    status
}

/// Runs `program args` with `env` and stdout into a pipe, and returns its wall time and the
/// bytes it printed.
fn timed(program: &Path, args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> (Duration, usize) {
    use std::io::Read;
    let start = Instant::now();
    let mut child = std::process::Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {}: {e}", program.display()));
    let mut out = Vec::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_end(&mut out);
    }
    let status = child.wait().expect("wait");
    let took = start.elapsed();
    if !status.success() {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        panic!("{} {} exited {status}: {err}", program.display(), args.join(" "));
    }
    (took, out.len())
}

async fn list(cluster: &Cluster, n: usize, runs: usize) {
    const NAMESPACES: usize = 10;
    eprintln!("operator-bench list: one real healthy run to copy its status");
    let status = real_status(cluster).await;
    let mut namespaces = Vec::new();
    for _ in 0..NAMESPACES {
        namespaces.push(cluster.namespace("bench-list", Some("restricted")).await);
    }
    let vpce = status["report"]["probe"]["target"]["vpceId"].as_str().unwrap_or("vpce-0123456789abcdef0").to_owned();
    eprintln!("  {n} checks over {NAMESPACES} namespaces, each with that status (status server-side apply)");
    let client = cluster.admin();
    let start = Instant::now();
    let results: Vec<()> = futures::stream::iter(0..n)
        .map(|i| {
            let ns = namespaces[i % NAMESPACES].clone();
            let client = client.clone();
            let status = status.clone();
            let vpce = vpce.clone();
            async move {
                let api: Api<PrivateApiConnectivityCheck> = Api::namespaced(client, &ns);
                let name = format!("check-{i:04}");
                let spec = serde_json::json!({"endpoint": {"vpcEndpointId": vpce}, "intervalSeconds": 300});
                let c = check(&ns, &name, world::API_ID, spec);
                let pp = PatchParams::apply("operator-bench");
                api.patch(&name, &pp, &Patch::Apply(&c)).await.expect("apply check");
                let body = serde_json::json!({
                    "apiVersion": "pvtapi.io/v1alpha1", "kind": "PrivateApiConnectivityCheck", "status": status
                });
                api.patch_status(&name, &pp.clone().force(), &Patch::Apply(&body)).await.expect("apply status");
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    eprintln!("  created {} in {:.1} s", results.len(), start.elapsed().as_secs_f64());

    // The commands as a person types them: kubectl on PATH runs the plugin for `kubectl pvtapi`.
    let kube_bin = PathBuf::from(std::env::var("PVTAPI_KUBE_BIN").expect("PVTAPI_KUBE_BIN (cluster.sh start)"));
    let kubectl = kube_bin.join("kubectl");
    let plugin = plugin_bin();
    assert!(plugin.is_file(), "{} is missing: cargo build [--release] -p kubectl-pvtapi", plugin.display());
    let bin_dir = pvtapi_testkit::peers::ScratchDir::new("bench-list");
    std::os::unix::fs::symlink(&plugin, bin_dir.path().join("kubectl-pvtapi")).expect("link the plugin");
    let path = std::env::join_paths(
        std::iter::once(bin_dir.path().to_owned())
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .expect("PATH");
    let kubeconfig = cluster.control_plane().kubeconfig().as_os_str().to_owned();
    let env = [("PATH", path.as_os_str()), ("KUBECONFIG", kubeconfig.as_os_str())];
    // kubectl reads 500 checks a request; the apiserver may serve a continuation from etcd
    // rather than its cache, so one request (`--chunk-size=0`, what the plugin does) is shown too.
    let commands: [(&str, &Path, &[&str]); 4] = [
        ("kubectl get pac -A", &kubectl, &["get", "pac", "-A"]),
        ("kubectl pvtapi list -A", &kubectl, &["pvtapi", "list", "-A"]),
        ("kubectl get pac -A --chunk-size=0", &kubectl, &["get", "pac", "-A", "--chunk-size=0"]),
        ("kubectl-pvtapi list -A (the plugin alone)", &plugin, &["list", "-A"]),
    ];
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); commands.len()];
    let mut sizes = vec![0usize; commands.len()];
    for round in 0..runs + 2 {
        for (i, (_, program, args)) in commands.iter().enumerate() {
            let (took, bytes) = tokio::task::block_in_place(|| timed(program, args, &env));
            sizes[i] = bytes;
            if round >= 2 {
                times[i].push(took);
            }
        }
    }
    for t in &mut times {
        t.sort();
    }
    let median = |t: &[Duration]| percentile(t, 0.5);
    println!(
        "operator-bench list: {n} checks over {NAMESPACES} namespaces, each with a real healthy status (report + {} history entries)",
        pvtapi_crds::check::MAX_HISTORY
    );
    println!("  plugin: {}", plugin.display());
    println!("  {runs} runs of each, interleaved, after 2 warm-up rounds; wall time of the whole process:");
    for (i, (what, _, _)) in commands.iter().enumerate() {
        println!(
            "  {what:<44} median {:>7}  min {:>7}  max {:>7}  ({} bytes of output)",
            ms(median(&times[i])),
            ms(times[i][0]),
            ms(times[i][times[i].len() - 1]),
            sizes[i]
        );
    }
    let ratio = |a: usize, b: usize| median(&times[a]).as_secs_f64() / median(&times[b]).as_secs_f64().max(1e-9);
    println!("  ratio kubectl pvtapi list -A / kubectl get pac -A (medians): {:.2}×  (goal ≤ 1.2×)", ratio(1, 0));
    println!("  ratio kubectl pvtapi list -A / kubectl get pac -A --chunk-size=0 (medians): {:.2}×", ratio(1, 2));
    if std::env::var_os("PVTAPI_BENCH_KEEP").is_some() {
        println!("  kept the checks (PVTAPI_BENCH_KEEP): kubectl delete ns {}", namespaces.join(" "));
        return;
    }
    for ns in &namespaces {
        delete_namespace(cluster, ns).await;
    }
}

async fn delete_namespace(cluster: &Cluster, ns: &str) {
    let _ = Api::<Namespace>::all(cluster.admin()).delete(ns, &DeleteParams::default()).await;
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cluster = Cluster::from_env().await;
    cluster.control_plane().install_crd().await;
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["latency"] => latency(&cluster, 20).await,
        ["latency", n] => latency(&cluster, n.parse().expect("latency N: a number of runs")).await,
        ["scale"] => scale(&cluster, 1000).await,
        ["scale", n] => scale(&cluster, n.parse().expect("scale N: a number of checks")).await,
        ["list"] => list(&cluster, 1000, 15).await,
        ["list", n] => list(&cluster, n.parse().expect("list N: a number of checks"), 15).await,
        ["list", n, runs] => {
            list(&cluster, n.parse().expect("list N: a number of checks"), runs.parse().expect("RUNS: a number")).await
        }
        _ => {
            eprintln!(
                "usage: operator-bench latency [RUNS] | scale [CHECKS] | list [CHECKS [RUNS]]   (see the module docs)"
            );
            std::process::exit(2);
        }
    }
}

//! The plugin's cluster side: `check NAME`, a temporary in-cluster check, and `list`.
//!
//! Why it reads status and never probes itself: the answer that matters is the one from inside
//! the cluster, where the workloads are; the operator already has it (or gets it on `--rerun`).
//! Every Kubernetes error is turned into what to do: the CRD missing, the operator not running,
//! RBAC forbidding the call.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anstyle::{AnsiColor, Style};
use clap::{Args, ValueEnum};
use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use pvtapi_crds::{PrivateApiConnectivityCheck, RootCause, conditions};

/// kubectl's connection flags.
#[derive(Debug, Clone, Args)]
pub struct KubeArgs {
    /// Path to the kubeconfig file [default: $KUBECONFIG, then ~/.kube/config].
    #[arg(long, global = true, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// Namespace [default: the context's, else `default`].
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
}

/// A connected client and the namespace to use.
pub struct Cluster {
    pub client: Client,
    pub namespace: String,
}

/// What went wrong, already worded for the user; exit status 2.
#[derive(Debug)]
pub struct Failure(pub String);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl KubeArgs {
    /// Connects like kubectl: `--kubeconfig`, else `$KUBECONFIG`, else `~/.kube/config`, else the
    /// in-cluster service account.
    pub async fn connect(&self) -> Result<Cluster, Failure> {
        let options = KubeConfigOptions { context: self.context.clone(), ..Default::default() };
        let config = match &self.kubeconfig {
            Some(path) => {
                let kc = Kubeconfig::read_from(path)
                    .map_err(|e| Failure(format!("cannot read the kubeconfig {}: {e}", path.display())))?;
                kube::Config::from_custom_kubeconfig(kc, &options).await
            }
            None => match kube::Config::from_kubeconfig(&options).await {
                Ok(c) => Ok(c),
                Err(kc_err) if self.context.is_none() => kube::Config::incluster().map_err(|_| kc_err),
                Err(e) => Err(e),
            },
        }
        .map_err(|e| Failure(format!("cannot load a kubeconfig ({e}): pass --kubeconfig FILE or set KUBECONFIG")))?;
        let namespace = self.namespace.clone().unwrap_or_else(|| config.default_namespace.clone());
        let client = Client::try_from(config).map_err(|e| Failure(format!("cannot build a Kubernetes client: {e}")))?;
        Ok(Cluster { client, namespace })
    }
}

/// A Kubernetes error, said as what to do.
fn explain(err: &kube::Error, what: &str, ns: &str) -> Failure {
    match err {
        kube::Error::Api(s) if s.code == 404 && s.message.contains("could not find the requested resource") => {
            Failure(format!(
                "{what}: the PrivateApiConnectivityCheck CRD is not installed in this cluster. Install the chart (helm install pvtapi charts/pvtapi -n pvtapi-system --create-namespace) or kubectl apply --server-side -f crds/pvtapi.io_privateapiconnectivitychecks.yaml"
            ))
        }
        kube::Error::Api(s) if s.code == 404 => Failure(format!(
            "{what}: not found in namespace {ns} (kubectl pvtapi list -n {ns}, or -A for every namespace)"
        )),
        kube::Error::Api(s) if s.code == 403 => Failure(format!(
            "{what}: forbidden ({}). Reading checks needs get/list/watch on privateapiconnectivitychecks.pvtapi.io (a Role in {ns}, or a ClusterRole for -A); --rerun also needs patch, a temporary check create and delete: ask your cluster admin",
            s.message
        )),
        kube::Error::Api(s) if s.code == 401 => Failure(format!(
            "{what}: unauthorized: your credentials for this cluster are missing or expired ({})",
            s.message
        )),
        other => Failure(format!("{what}: {other} (is the cluster reachable? kubectl cluster-info)")),
    }
}

/// Output formats of the cluster commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Wide,
    Json,
    Yaml,
}

/// The exit status of a check's status: 0 healthy, 1 anything else.
pub fn exit_code(check: &PrivateApiConnectivityCheck) -> u8 {
    match check.status.as_ref().and_then(|s| s.root_cause) {
        Some(RootCause::Healthy) => 0,
        _ => 1,
    }
}

fn paint(color: bool, style: Style, text: &str) -> String {
    if color { format!("{}{text}{}", style.render(), style.render_reset()) } else { text.to_owned() }
}

/// `5s`, `3m`, `2h`, `4d` — kubectl's short ages.
pub fn age(since: Timestamp, now: Timestamp) -> String {
    let secs = now.duration_since(since).as_secs().max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 2 * 3600 => format!("{}m", s / 60),
        s if s < 2 * 86400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

/// The human report of a check's last result: the answer first, then the fix, the per-area
/// conditions, the evidence, history and timings.
pub fn render_status(check: &PrivateApiConnectivityCheck, color: bool, now: Timestamp) -> String {
    let red = Style::new().fg_color(Some(AnsiColor::Red.into())).bold();
    let green = Style::new().fg_color(Some(AnsiColor::Green.into())).bold();
    let yellow = Style::new().fg_color(Some(AnsiColor::Yellow.into()));
    let dim = Style::new().dimmed();
    let ns = check.namespace().unwrap_or_default();
    let name = check.name_any();
    let mut out = String::new();
    let Some(status) = check.status.as_ref().filter(|s| s.root_cause.is_some()) else {
        return format!("{ns}/{name}: no result yet (the operator has not finished a run of this check)\n");
    };
    let cause = status.root_cause.unwrap_or(RootCause::Unknown);
    let head = if cause == RootCause::Healthy {
        paint(color, green, "✓ Healthy")
    } else {
        paint(color, red, &format!("✗ {cause}"))
    };
    out.push_str(&format!("{head}  {}\n", status.summary.as_deref().unwrap_or_default()));
    let report = status.report.clone().unwrap_or_default();
    let d = &report["diagnosis"];
    let list = |v: &serde_json::Value| -> Vec<String> {
        v.as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect()).unwrap_or_default()
    };
    let fix = list(&d["remediation"]);
    if !fix.is_empty() {
        out.push_str("\nFix:\n");
        for (i, step) in fix.iter().enumerate() {
            out.push_str(&format!("  {}. {step}\n", i + 1));
        }
    }
    let fixes: Vec<pvtapi_engine::diagnosis::fix::Fix> = serde_json::from_value(d["fixes"].clone()).unwrap_or_default();
    out.push_str(&crate::check::ready_fixes(&fixes));
    out.push_str(&format!(
        "\nConditions ({ns}/{name}, API {} via {}):\n",
        check.spec.api.id, check.spec.endpoint.vpc_endpoint_id
    ));
    for type_ in [
        conditions::REACHABLE,
        conditions::DNS_RESOLVED,
        conditions::ENDPOINT_REACHABLE,
        conditions::TLS_ESTABLISHED,
        conditions::AUTHORIZED,
        conditions::AWS_INSPECTED,
        conditions::FLAPPING,
        conditions::READY,
        conditions::STALLED,
    ] {
        let Some(c) = status.conditions.iter().find(|c| c.type_ == type_) else { continue };
        let (mark, style) = match (type_, c.status.as_str()) {
            (conditions::FLAPPING | conditions::STALLED, "True") => ("!", yellow),
            (conditions::FLAPPING | conditions::STALLED, _) => ("✓", green),
            (_, "True") => ("✓", green),
            (_, "False") => ("✗", red),
            _ => ("?", yellow),
        };
        // Reachable's message is the summary already printed at the top.
        let msg = if c.message.is_empty() || type_ == conditions::REACHABLE {
            String::new()
        } else {
            format!("  {}", c.message)
        };
        out.push_str(&format!("  {} {:<18} {:<22}{}\n", paint(color, style, mark), c.type_, c.reason, msg));
    }
    let evidence = list(&d["evidence"]);
    if !evidence.is_empty() {
        out.push_str("\nEvidence:\n");
        for e in evidence {
            out.push_str(&format!("  - {e}\n"));
        }
    }
    let unchecked = list(&d["unchecked"]);
    if !unchecked.is_empty() {
        out.push_str("\nNot checked:\n");
        for u in unchecked {
            out.push_str(&format!("  - {u}\n"));
        }
    }
    out.push_str("\nHistory:\n");
    let runs: Vec<String> = status
        .history
        .iter()
        .take(10)
        .map(|h| if h.root_cause == RootCause::Healthy { "✓".to_owned() } else { h.root_cause.code().to_owned() })
        .collect();
    out.push_str(&format!("  last runs (newest first): {}\n", runs.join(" ")));
    if let Some(r) = status.success_ratio {
        out.push_str(&format!("  success ratio: {:.0}% of {} runs\n", r * 100.0, status.history.len()));
    }
    if let Some(t) = &status.failing_since {
        out.push_str(&format!("  failing since: {} ({} ago)\n", t.0, age(t.0, now)));
    }
    if let Some(t) = &status.last_success_time {
        out.push_str(&format!("  last success: {} ago\n", age(t.0, now)));
    }
    let timings = &report["probe"]["timings"];
    let ms = |k: &str| timings[k].as_u64().map_or_else(|| "-".to_owned(), |v| format!("{v} ms"));
    let mut when = String::new();
    if let Some(t) = &status.last_run_time {
        when.push_str(&format!("ran {} ago", age(t.0, now)));
    }
    if let Some(t) = &status.next_run_time {
        let next = t.0.duration_since(now).as_secs();
        when.push_str(&if next > 0 { format!(", next in {next}s") } else { ", next run due".to_owned() });
    }
    out.push_str(&paint(
        color,
        dim,
        &format!(
            "\nTimings: dns {}, connect {}, tls {}, first byte {}, total {}; {when}\n",
            ms("dnsMs"),
            ms("connectMs"),
            ms("tlsMs"),
            ms("ttfbMs"),
            ms("totalMs")
        ),
    ));
    out
}

/// Prints a check in `format`; `None` after saying why when it cannot be rendered.
pub fn print_check(check: &PrivateApiConnectivityCheck, format: Format, color: bool) -> Option<()> {
    let text = match format {
        Format::Table | Format::Wide => render_status(check, color, Timestamp::now()),
        Format::Json => serde_json::to_string_pretty(check).map_err(|e| eprintln!("error: cannot render: {e}")).ok()?,
        Format::Yaml => serde_norway::to_string(check).map_err(|e| eprintln!("error: cannot render: {e}")).ok()?,
    };
    crate::out(&format!("{}\n", text.trim_end()));
    Some(())
}

/// Progress on stderr, only on a terminal.
pub struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    pub fn new(message: &str) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress(None);
        }
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(100));
        bar.set_message(message.to_owned());
        Progress(Some(bar))
    }

    pub fn set(&self, message: String) {
        if let Some(b) = &self.0 {
            b.set_message(message);
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

/// Why a check cannot produce a result without a human, if its status says so (`Stalled=True`
/// for the current generation): waiting would only time out.
fn stalled(check: &PrivateApiConnectivityCheck) -> Option<String> {
    let s = check.status.as_ref()?;
    let c = s.conditions.iter().find(|c| c.type_ == conditions::STALLED && c.status == "True")?;
    let current = c.observed_generation.is_some() && c.observed_generation == check.metadata.generation;
    current.then(|| format!("{}: {}", c.reason, c.message))
}

/// Waits on a watch until `done` holds for the check (checked on the initial list too, so a
/// result written before the watch started counts), reporting what the operator is doing.
/// Transient watch errors are retried with backoff; a Stalled check ends the wait at once.
pub async fn wait_for(
    api: &Api<PrivateApiConnectivityCheck>,
    name: &str,
    ns: &str,
    timeout: Duration,
    done: impl Fn(&PrivateApiConnectivityCheck) -> bool,
) -> Result<PrivateApiConnectivityCheck, Failure> {
    let progress = Progress::new(&format!("waiting for the operator to run {name}…"));
    let start = Instant::now();
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut stream = watcher::watcher(api.clone(), config).default_backoff().boxed();
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => {
                return Err(Failure(format!(
                    "no result for {ns}/{name} after {} s: is the operator running? (kubectl get pods -A -l app.kubernetes.io/name=pvtapi,app.kubernetes.io/component=operator; its logs say why). Wait longer with --wait SECONDS",
                    timeout.as_secs()
                )));
            }
            ev = stream.next() => match ev {
                Some(Ok(watcher::Event::Apply(c) | watcher::Event::InitApply(c))) => {
                    if done(&c) {
                        return Ok(c);
                    }
                    if let Some(why) = stalled(&c) {
                        return Err(Failure(format!("{ns}/{name} is stalled, the operator cannot run it: {why}")));
                    }
                    let reconciling = c
                        .status
                        .as_ref()
                        .and_then(|s| s.conditions.iter().find(|c| c.type_ == conditions::RECONCILING))
                        .filter(|c| c.status == "True")
                        .map(|c| c.message.clone());
                    progress.set(format!(
                        "waiting for the operator to run {name}… {} s{}",
                        start.elapsed().as_secs(),
                        reconciling.map(|m| format!(" ({m})")).unwrap_or_default()
                    ));
                }
                Some(Ok(watcher::Event::Delete(_))) => return Err(Failure(format!("{ns}/{name} was deleted while waiting"))),
                Some(Ok(_)) => {}
                // Forbidden or missing: no retry helps.
                Some(Err(watcher::Error::InitialListFailed(e))) if matches!(&e, kube::Error::Api(s) if s.code == 403 || s.code == 404) => {
                    return Err(explain(&e, &format!("watching {name}"), ns));
                }
                // 410 Gone, a dropped connection…: the watcher recovers by itself.
                Some(Err(e)) => progress.set(format!("waiting for the operator to run {name}… (watch: {e}; retrying)")),
                None => return Err(Failure(format!("the watch on {ns}/{name} ended"))),
            }
        }
    }
}

/// A result for the check's current spec exists.
fn has_current_result(c: &PrivateApiConnectivityCheck) -> bool {
    c.status.as_ref().is_some_and(|s| {
        s.root_cause.is_some() && s.observed_generation.is_some() && s.observed_generation == c.metadata.generation
    })
}

/// `check NAME [--rerun]`.
pub async fn check_named(
    cluster: &Cluster,
    name: &str,
    rerun: bool,
    timeout: Duration,
) -> Result<PrivateApiConnectivityCheck, Failure> {
    let ns = &cluster.namespace;
    let api: Api<PrivateApiConnectivityCheck> = Api::namespaced(cluster.client.clone(), ns);
    let check = api.get(name).await.map_err(|e| explain(&e, &format!("check {name}"), ns))?;
    if !rerun {
        if has_current_result(&check) {
            return Ok(check);
        }
        // No result yet, or the spec changed since: the operator is running it now.
        return wait_for(&api, name, ns, timeout, has_current_result).await;
    }
    // The run that acts on this value (`status.lastRunNow`) — not a scheduled run that was
    // already in flight when we asked.
    let value = format!("kubectl-pvtapi-{}", Timestamp::now().as_millisecond());
    let mut annotations = serde_json::Map::new();
    annotations.insert(conditions::RUN_NOW_ANNOTATION.to_owned(), value.clone().into());
    let patch = serde_json::json!({"metadata": {"annotations": annotations}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| explain(&e, &format!("asking {name} to run now"), ns))?;
    wait_for(&api, name, ns, timeout, |c| {
        has_current_result(c) && c.status.as_ref().and_then(|s| s.last_run_now.as_deref()) == Some(value.as_str())
    })
    .await
}

/// A temporary check (generateName), its first result, then deleted unless `keep` — also when
/// the wait fails or the user interrupts it (Ctrl-C).
pub async fn check_temporary(
    cluster: &Cluster,
    spec: pvtapi_crds::PrivateApiConnectivityCheckSpec,
    keep: bool,
    timeout: Duration,
) -> Result<PrivateApiConnectivityCheck, Failure> {
    let ns = &cluster.namespace;
    let api: Api<PrivateApiConnectivityCheck> = Api::namespaced(cluster.client.clone(), ns);
    let mut check = PrivateApiConnectivityCheck::new("", spec);
    check.metadata.name = None;
    check.metadata.generate_name = Some("pvtapi-check-".into());
    check.metadata.labels = Some([("app.kubernetes.io/created-by".to_owned(), "kubectl-pvtapi".to_owned())].into());
    let created =
        api.create(&PostParams::default(), &check).await.map_err(|e| explain(&e, "creating a temporary check", ns))?;
    let name = created.name_any();
    let result = tokio::select! {
        r = wait_for(&api, &name, ns, timeout, has_current_result) => r,
        _ = tokio::signal::ctrl_c() => Err(Failure(format!("interrupted while waiting for {ns}/{name}"))),
    };
    if keep {
        eprintln!("kept {ns}/{name} (delete it with kubectl delete pac {name} -n {ns})");
    } else if let Err(e) = api.delete(&name, &DeleteParams::default()).await {
        eprintln!("warning: could not delete the temporary check {ns}/{name}: {}", explain(&e, "delete", ns));
    }
    result
}

/// `list -o json|yaml`: one LIST call, the whole objects.
pub async fn list(
    cluster: &Cluster,
    all_namespaces: bool,
    selector: Option<&str>,
) -> Result<Vec<PrivateApiConnectivityCheck>, Failure> {
    let api: Api<PrivateApiConnectivityCheck> = if all_namespaces {
        Api::all(cluster.client.clone())
    } else {
        Api::namespaced(cluster.client.clone(), &cluster.namespace)
    };
    let mut lp = ListParams::default();
    if let Some(s) = selector {
        lp = lp.labels(s);
    }
    let mut items =
        api.list(&lp).await.map_err(|e| explain(&e, &list_what(cluster, all_namespaces), &cluster.namespace))?.items;
    items.sort_by_key(|c| (c.namespace(), c.name_any()));
    Ok(items)
}

fn list_what(cluster: &Cluster, all_namespaces: bool) -> String {
    let where_ = if all_namespaces { "all namespaces".to_owned() } else { format!("namespace {}", cluster.namespace) };
    format!("listing checks in {where_}")
}

/// What the `list` table shows of a check, and nothing more: parsing a LIST response into these
/// skips the rest of each object (the report but its total time, the managed fields, the
/// conditions' messages) instead of building it. With 1,000 checks that response is ~10 MB,
/// most of it `status.report`, `status.history` and `metadata.managedFields`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct Row {
    metadata: RowMeta,
    spec: RowSpec,
    #[serde(default)]
    status: Option<RowStatus>,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct RowMeta {
    name: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    creation_timestamp: Option<Time>,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct RowSpec {
    api: RowApi,
    endpoint: RowEndpoint,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
struct RowApi {
    id: String,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct RowEndpoint {
    vpc_endpoint_id: String,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct RowStatus {
    #[serde(default)]
    root_cause: Option<RootCause>,
    #[serde(default)]
    failing_since: Option<Time>,
    #[serde(default)]
    last_run_time: Option<Time>,
    #[serde(default)]
    success_ratio: Option<f64>,
    #[serde(default)]
    conditions: Vec<RowCondition>,
    #[serde(default)]
    history: Vec<RowRun>,
    #[serde(default)]
    report: Option<RowReport>,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
struct RowCondition {
    #[serde(rename = "type")]
    type_: String,
    status: String,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct RowRun {
    #[serde(default)]
    duration_ms: Option<u64>,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
struct RowReport {
    #[serde(default)]
    probe: RowProbe,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
struct RowProbe {
    #[serde(default)]
    timings: RowTimings,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct RowTimings {
    #[serde(default)]
    total_ms: Option<u64>,
}

#[derive(serde::Deserialize)]
struct RowList {
    #[serde(default)]
    items: Vec<Row>,
}

/// `list` (table, wide): one LIST call, parsed into [`Row`]s.
pub async fn list_rows(cluster: &Cluster, all_namespaces: bool, selector: Option<&str>) -> Result<Vec<Row>, Failure> {
    use kube::Resource;
    let ns = (!all_namespaces).then_some(cluster.namespace.as_str());
    let mut lp = ListParams::default();
    if let Some(s) = selector {
        lp = lp.labels(s);
    }
    let what = list_what(cluster, all_namespaces);
    let request = kube::core::Request::new(PrivateApiConnectivityCheck::url_path(&(), ns))
        .list(&lp)
        .map_err(|e| Failure(format!("{what}: {e}")))?;
    let text = cluster.client.request_text(request).await.map_err(|e| explain(&e, &what, &cluster.namespace))?;
    let list: RowList =
        serde_json::from_str(&text).map_err(|e| Failure(format!("{what}: unexpected answer from the cluster: {e}")))?;
    let mut items = list.items;
    items.sort_by(|a, b| (&a.metadata.namespace, &a.metadata.name).cmp(&(&b.metadata.namespace, &b.metadata.name)));
    Ok(items)
}

/// The `list` table.
pub fn render_list(items: &[Row], all_namespaces: bool, wide: bool, now: Timestamp) -> String {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut header: Vec<&str> = Vec::new();
    if all_namespaces {
        header.push("NAMESPACE");
    }
    header.extend(["NAME", "API", "ENDPOINT", "REACHABLE", "ROOT CAUSE", "FAILING SINCE", "LAST RUN", "AGE"]);
    if wide {
        header.extend(["SUCCESS", "RUN", "PROBE"]);
    }
    let dash = || "-".to_owned();
    for c in items {
        let s = c.status.as_ref();
        let cond = s.and_then(|s| s.conditions.iter().find(|x| x.type_ == conditions::REACHABLE));
        let mut row = Vec::new();
        if all_namespaces {
            row.push(c.metadata.namespace.clone());
        }
        row.push(c.metadata.name.clone());
        row.push(c.spec.api.id.clone());
        row.push(c.spec.endpoint.vpc_endpoint_id.clone());
        row.push(cond.map_or_else(dash, |x| x.status.clone()));
        row.push(s.and_then(|s| s.root_cause).map_or_else(dash, |r| r.code().to_owned()));
        row.push(s.and_then(|s| s.failing_since.as_ref()).map_or_else(dash, |t| age(t.0, now)));
        row.push(s.and_then(|s| s.last_run_time.as_ref()).map_or_else(dash, |t| age(t.0, now)));
        row.push(c.metadata.creation_timestamp.as_ref().map_or_else(dash, |t| age(t.0, now)));
        if wide {
            row.push(s.and_then(|s| s.success_ratio).map_or_else(dash, |r| format!("{:.0}%", r * 100.0)));
            row.push(s.and_then(|s| s.history.first()?.duration_ms).map_or_else(dash, |v| format!("{v}ms")));
            row.push(s.and_then(|s| s.report.as_ref()?.probe.timings.total_ms).map_or_else(dash, |v| format!("{v}ms")));
        }
        rows.push(row);
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (i, cell) in r.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| -> String {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                l.push_str(&format!("{c:<w$}   ", w = widths[i]));
            }
        }
        l.trim_end().to_owned() + "\n"
    };
    let mut out = line(header.iter().map(|h| (*h).to_owned()).collect());
    for r in rows {
        out.push_str(&line(r));
    }
    out
}

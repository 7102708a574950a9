//! `demo`: pvtapi on the local cluster as a platform team meets it. The chart is installed with
//! `helm`, checks are applied with `kubectl`, and the results are read with `kubectl get pac` and
//! `kubectl pvtapi`. The checks run against one VPC world in moto where each check meets a
//! different cause from the article, and one is healthy.
//!
//! ```text
//! bash tests/demo.sh                       # install, build, start the cluster, run this, stop
//! eval "$(bash tests/substrate/cluster.sh start)"; target/debug/demo   # on a running cluster
//! ```
//!
//! The world:
//! - moto on the node's address, where the operator pods reach it (the chart's `extraEnv`);
//! - endpoint A with private DNS, which allows 443 from the client group, and endpoint B without
//!   private DNS, whose group lacks 443;
//! - five private APIs with resource policies of their own;
//! - one TLS front end on an endpoint address that answers per `Host` as API Gateway does (each
//!   API's stages and policy verdict);
//! - endpoint B's names on an address the host drops (a real connect timeout);
//! - the records on the cluster's dnsmasq, and the front end's CA in a ConfigMap
//!   (`spec.probe.caBundle`);
//! - an ENI in moto for every address a pod may get.
//!
//! The demo exits 1 when a check does not report the root cause its world was built for. It
//! removes what it made on success, on failure, on a panic and on Ctrl-C (exit 130).
//!
//! Binaries: kubectl is `$PVTAPI_KUBE_BIN/kubectl`, helm is `$PVTAPI_HELM` (both set by
//! `cluster.sh start`), and the plugin is `kubectl-pvtapi` next to this binary
//! (`PVTAPI_PLUGIN_BIN` overrides it). kubectl runs the plugin itself, as `kubectl pvtapi`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::Display;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use pvtapi_crds::{PrivateApiConnectivityCheck, RootCause};
use pvtapi_testkit::apigw::{FrontEnd, Reply, Responder, TestCa, default_names, deployed_stages, route_by_api};
use pvtapi_testkit::cluster::Cluster;
use pvtapi_testkit::moto::Moto;
use pvtapi_testkit::peers::ScratchDir;
use pvtapi_testkit::world::{self, ApiSpec, WorldSpec};

const RELEASE: &str = "pvtapi";
const RELEASE_NS: &str = "pvtapi-system";
/// Every namespace and check of the demo carries this label.
const PART_OF: (&str, &str) = ("app.kubernetes.io/part-of", "pvtapi-demo");
const REGION: &str = "us-east-1";
const ACCOUNT: &str = "123456789012";
/// The front end's address: an endpoint ENI address in the endpoint subnet, on the bridge.
const FRONT_END_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 230);
/// An endpoint-subnet address nobody holds: the host's blackhole route drops what pods send.
const BLACKHOLE_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 231);
const CA_CONFIGMAP: &str = "api-gateway-ca";
/// Another team's endpoint, named by the policies that do not let ours in.
const OTHER_VPCE: &str = "vpce-0fedcba9876543210";
/// How long the checks may take to get their first results.
const RESULTS_TIMEOUT: Duration = Duration::from_secs(150);

/// Which of the world's two endpoints a check goes through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    /// Private DNS on, TCP 443 allowed from the client group, names on the front end.
    A,
    /// Private DNS off, no 443 in its group, names on an address nobody answers.
    B,
}

/// One sample check and the world it meets.
#[derive(Clone, Debug)]
struct Sample {
    namespace: &'static str,
    name: &'static str,
    api_id: &'static str,
    api_name: &'static str,
    /// The stage the check calls (every API is deployed to `prod` only).
    stage: &'static str,
    via: Via,
    access: &'static str,
    /// The API's resource policy; `VPCE` is replaced with endpoint A's id.
    policy: &'static str,
    /// What API Gateway answers for the API on a deployed stage.
    answer: Answer,
    expect: RootCause,
    /// What is wrong, in a few words.
    story: &'static str,
}

#[derive(Clone, Copy, Debug)]
enum Answer {
    Ok,
    ExplicitDeny,
    ImplicitDeny,
}

const ALLOW_ONLY_VPCE: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"execute-api:Invoke","Resource":"execute-api:/*"},{"Effect":"Deny","Principal":"*","Action":"execute-api:Invoke","Resource":"execute-api:/*","Condition":{"StringNotEquals":{"aws:SourceVpce":"VPCE"}}}]}"#;
const ALLOW_ALL: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"execute-api:Invoke","Resource":"execute-api:/*"}]}"#;
const DENY_ALL_BUT_OTHER: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"execute-api:Invoke","Resource":"execute-api:/*"},{"Sid":"OnlyFromTheSharedServicesEndpoint","Effect":"Deny","Principal":"*","Action":"execute-api:Invoke","Resource":"execute-api:/*","Condition":{"StringNotEquals":{"aws:SourceVpce":"OTHER"}}}]}"#;
const ALLOW_ONLY_OTHER: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"execute-api:Invoke","Resource":"execute-api:/*","Condition":{"StringEquals":{"aws:SourceVpce":"OTHER"}}}]}"#;

fn samples() -> Vec<Sample> {
    vec![
        Sample {
            namespace: "shop",
            name: "orders-api",
            api_id: world::API_ID,
            api_name: "orders",
            stage: "prod",
            via: Via::A,
            access: "privateDns",
            policy: ALLOW_ONLY_VPCE,
            answer: Answer::Ok,
            expect: RootCause::Healthy,
            story: "private DNS, a policy that allows this endpoint",
        },
        Sample {
            namespace: "shop",
            name: "inventory-api",
            api_id: "f3k9x2m7qa",
            api_name: "inventory",
            stage: "v2",
            via: Via::A,
            access: "privateDns",
            policy: ALLOW_ALL,
            answer: Answer::Ok,
            expect: RootCause::StageOrResourceNotFound,
            story: "calls stage v2, never deployed (Missing Authentication Token)",
        },
        Sample {
            namespace: "shop",
            name: "reports-api",
            api_id: "m5d8j3s6lk",
            api_name: "reports",
            stage: "prod",
            via: Via::B,
            access: "endpointHost",
            policy: ALLOW_ALL,
            answer: Answer::Ok,
            expect: RootCause::SecurityGroupBlocked,
            story: "endpoint B's security group has no inbound 443: the connect times out",
        },
        Sample {
            namespace: "payments",
            name: "ledger-api",
            api_id: "p8w4n6t1zb",
            api_name: "ledger",
            stage: "prod",
            via: Via::A,
            access: "privateDns",
            policy: DENY_ALL_BUT_OTHER,
            answer: Answer::ExplicitDeny,
            expect: RootCause::ResourcePolicyExplicitDeny,
            story: "its resource policy denies every endpoint but another team's",
        },
        Sample {
            namespace: "payments",
            name: "billing-api",
            api_id: "h2r7c5v9ye",
            api_name: "billing",
            stage: "prod",
            via: Via::A,
            access: "privateDns",
            policy: ALLOW_ONLY_OTHER,
            answer: Answer::ImplicitDeny,
            expect: RootCause::ResourcePolicyDenied,
            story: "its resource policy allows another endpoint only (implicit deny)",
        },
    ]
}

fn namespaces() -> Vec<&'static str> {
    let mut ns: Vec<&str> = samples().iter().map(|s| s.namespace).collect();
    ns.dedup();
    ns
}

// ---------------------------------------------------------------------------------------------
// Progress and commands
// ---------------------------------------------------------------------------------------------

static START: OnceLock<Instant> = OnceLock::new();

fn elapsed() -> Duration {
    START.get_or_init(Instant::now).elapsed()
}

/// One progress line on stderr: UTC wall time and seconds since the demo started.
fn progress(msg: impl Display) {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) % 86_400;
    eprintln!(
        "[demo {:02}:{:02}:{:02} +{:>5.1}s] {msg}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        elapsed().as_secs_f64()
    );
}

/// A failure, already worded: exit 1.
type Outcome<T> = Result<T, String>;

/// The real binaries, run the way a person types them: `helm …`, `kubectl …`, `kubectl pvtapi …`
/// with `KUBECONFIG` set and a PATH holding kubectl, helm and kubectl-pvtapi.
#[derive(Clone, Debug)]
struct Tools {
    path: OsString,
    kubeconfig: PathBuf,
    /// The repository: commands run there, so the chart is `charts/pvtapi`.
    root: PathBuf,
}

impl Tools {
    fn find(cluster: &Cluster, bin_dir: &Path) -> Outcome<Tools> {
        let kube_bin = std::env::var("PVTAPI_KUBE_BIN").map_err(|_| "PVTAPI_KUBE_BIN is not set (cluster.sh start)")?;
        let helm = std::env::var("PVTAPI_HELM").map_err(|_| "PVTAPI_HELM is not set (cluster.sh start)")?;
        let plugin = match std::env::var_os("PVTAPI_PLUGIN_BIN") {
            Some(p) => PathBuf::from(p),
            None => std::env::current_exe()
                .map_err(|e| format!("where is this binary? {e}"))?
                .with_file_name("kubectl-pvtapi"),
        };
        for (name, target) in [
            ("kubectl", Path::new(&kube_bin).join("kubectl")),
            ("helm", PathBuf::from(helm)),
            ("kubectl-pvtapi", plugin),
        ] {
            if !target.is_file() {
                return Err(format!(
                    "{name} not found at {}: run bash tests/demo.sh (it installs and builds what is missing)",
                    target.display()
                ));
            }
            std::os::unix::fs::symlink(&target, bin_dir.join(name))
                .map_err(|e| format!("link {name} into {}: {e}", bin_dir.display()))?;
        }
        let mut path = OsString::from(bin_dir);
        if let Some(rest) = std::env::var_os("PATH") {
            path.push(":");
            path.push(rest);
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(Path::new("..")).to_owned();
        Ok(Tools { path, kubeconfig: cluster.control_plane().kubeconfig().to_owned(), root })
    }

    fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .current_dir(&self.root)
            .env("PATH", &self.path)
            .env("KUBECONFIG", &self.kubeconfig)
            .stdin(Stdio::null());
        cmd
    }

    /// Runs a command and returns its output (for commands whose output is not the show).
    async fn output(&self, program: &str, args: &[&str]) -> Outcome<Output> {
        let mut cmd = self.command(program, args);
        let line = format!("{program} {}", args.join(" "));
        tokio::task::spawn_blocking(move || cmd.output())
            .await
            .map_err(|e| format!("{line}: {e}"))?
            .map_err(|e| format!("{line}: {e}"))
    }

    /// Prints `$ program args…` and runs it with stdout and stderr on the terminal; returns the
    /// exit code.
    async fn show(&self, program: &str, args: &[&str]) -> Outcome<i32> {
        println!("\n$ {program} {}", args.join(" "));
        let mut cmd = self.command(program, args);
        let line = format!("{program} {}", args.join(" "));
        let status = tokio::task::spawn_blocking(move || cmd.status())
            .await
            .map_err(|e| format!("{line}: {e}"))?
            .map_err(|e| format!("{line}: {e}"))?;
        Ok(status.code().unwrap_or(-1))
    }
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)).trim().to_owned()
}

// ---------------------------------------------------------------------------------------------
// The world
// ---------------------------------------------------------------------------------------------

/// Everything the demo holds on the host; dropping it stops moto and the front end and removes
/// the DNS records and the bridge addresses.
struct World {
    _moto: Moto,
    _front: FrontEnd,
    _dns: pvtapi_testkit::cluster::ClusterDns,
    _addresses: Vec<pvtapi_testkit::cluster::LocalAddress>,
    ca_pem: String,
    vpce_a: String,
    vpce_b: String,
}

/// The AWS side in moto (on the node's address) and the network side on the host.
async fn build_world(cluster: &Cluster, moto: Moto) -> World {
    let config = moto.sdk_config(REGION).await;
    let all = samples();
    let orders = &all[0];
    let spec = WorldSpec { resource_policy: Some(orders.policy.to_owned()), ..Default::default() };
    let w = world::build(&config, &spec).await;
    let (vpce_b, _) = world::add_endpoint(&config, &w, "endpoint-b", false, false).await;
    for s in all.iter().filter(|s| s.api_id != world::API_ID) {
        let vpce = if s.via == Via::A { &w.vpce } else { &vpce_b };
        let policy = s.policy.replace("OTHER", OTHER_VPCE).replace("VPCE", &w.vpce);
        let api = ApiSpec {
            id: s.api_id.to_owned(),
            name: s.api_name.to_owned(),
            resource_policy: Some(policy),
            vpce_ids: vec![vpce.clone()],
            stage: "prod".to_owned(),
        };
        world::add_api(&config, &api).await;
    }
    world::add_pod_interfaces(&config, &w, &cluster.pod_addresses).await;
    let names_a = world::endpoint_dns_names(&config, &w.vpce).await;
    let names_b = world::endpoint_dns_names(&config, &vpce_b).await;

    // One front end on endpoint A's address, answering per API as API Gateway does.
    let addresses = vec![cluster.local_address(FRONT_END_IP)];
    let ca = TestCa::new();
    let mut cert_names = default_names(REGION);
    cert_names.extend(names_a.iter().chain(&names_b).cloned());
    let cert_names: Vec<&str> = cert_names.iter().map(String::as_str).collect();
    let routes: Vec<(String, Responder)> = all
        .iter()
        .map(|s| {
            let resource = format!("arn:aws:execute-api:{REGION}:{ACCOUNT}:{}/prod/GET/health", s.api_id);
            let denied =
                format!("User: anonymous is not authorized to perform: execute-api:Invoke on resource: {resource}");
            let reply = match s.answer {
                Answer::Ok => Reply::ok(r#"{"status":"ok"}"#),
                Answer::ExplicitDeny => Reply::apigw_error(
                    403,
                    "AccessDeniedException",
                    "Message",
                    &format!("{denied} with an explicit deny"),
                ),
                Answer::ImplicitDeny => Reply::apigw_error(403, "AccessDeniedException", "Message", &denied),
            };
            (s.api_id.to_owned(), deployed_stages(&["prod"], reply))
        })
        .collect();
    let front =
        FrontEnd::for_names_at(&ca, &cert_names, SocketAddr::from((FRONT_END_IP, 443)), route_by_api(routes)).await;

    // The VPC resolver: endpoint A's private DNS answers for every API host; endpoint B's own
    // names lead to an address nobody answers.
    let mut records: Vec<(String, IpAddr)> = all
        .iter()
        .map(|s| (format!("{}.execute-api.{REGION}.amazonaws.com", s.api_id), IpAddr::V4(FRONT_END_IP)))
        .collect();
    records.extend(names_a.iter().map(|n| (n.clone(), IpAddr::V4(FRONT_END_IP))));
    records.extend(names_b.iter().map(|n| (n.clone(), IpAddr::V4(BLACKHOLE_IP))));
    let records: Vec<(&str, IpAddr)> = records.iter().map(|(n, ip)| (n.as_str(), *ip)).collect();
    let dns = cluster.dns(&records);
    let ca_pem = std::fs::read_to_string(ca.bundle_path()).unwrap_or_else(|e| panic!("read the CA: {e}"));
    World { _moto: moto, _front: front, _dns: dns, _addresses: addresses, ca_pem, vpce_a: w.vpce, vpce_b }
}

// ---------------------------------------------------------------------------------------------
// Kubernetes objects
// ---------------------------------------------------------------------------------------------

/// A namespace with Pod Security `restricted` enforced and the demo's label.
async fn apply_namespace(client: &Client, name: &str) -> Outcome<()> {
    let ns: Namespace = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "labels": {
            PART_OF.0: PART_OF.1,
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest"
        }}
    }))
    .map_err(|e| format!("namespace {name}: {e}"))?;
    Api::<Namespace>::all(client.clone())
        .patch(name, &PatchParams::apply("pvtapi-demo").force(), &Patch::Apply(&ns))
        .await
        .map_err(|e| format!("create namespace {name}: {e}"))?;
    Ok(())
}

fn check_manifest(s: &Sample, world: &World) -> serde_json::Value {
    let vpce = if s.via == Via::A { &world.vpce_a } else { &world.vpce_b };
    serde_json::json!({
        "apiVersion": "pvtapi.io/v1alpha1",
        "kind": "PrivateApiConnectivityCheck",
        "metadata": {"name": s.name, "namespace": s.namespace, "labels": {PART_OF.0: PART_OF.1}},
        "spec": {
            "api": {"id": s.api_id, "region": REGION, "stage": s.stage, "path": "/health"},
            "endpoint": {"vpcEndpointId": vpce},
            "access": s.access,
            "intervalSeconds": 300,
            "timeoutSeconds": 2,
            "probe": {"caBundle": {"configMap": CA_CONFIGMAP}}
        }
    })
}

fn helm_values(moto_url: &str, image: &str) -> Outcome<String> {
    let (repository, tag) = image.rsplit_once(':').ok_or_else(|| format!("image {image} has no tag"))?;
    let values = serde_json::json!({
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        "resources": {"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
        // moto plays AWS: on EKS this is IRSA or Pod Identity and no extraEnv.
        "extraEnv": [
            {"name": "AWS_ENDPOINT_URL", "value": moto_url},
            {"name": "AWS_ACCESS_KEY_ID", "value": "testing"},
            {"name": "AWS_SECRET_ACCESS_KEY", "value": "testing"},
            {"name": "AWS_REGION", "value": REGION},
            {"name": "AWS_EC2_METADATA_DISABLED", "value": "true"}
        ]
    });
    serde_norway::to_string(&values).map_err(|e| format!("values: {e}"))
}

/// Waits until every sample check has a first result; progress on stderr.
async fn wait_for_results(client: &Client) -> Outcome<BTreeMap<(String, String), PrivateApiConnectivityCheck>> {
    let want: Vec<(String, String)> = samples().iter().map(|s| (s.namespace.to_owned(), s.name.to_owned())).collect();
    let api: Api<PrivateApiConnectivityCheck> = Api::all(client.clone());
    let config = watcher::Config::default().labels(&format!("{}={}", PART_OF.0, PART_OF.1));
    let mut stream = watcher(api, config).default_backoff().applied_objects().boxed();
    let mut done = BTreeMap::new();
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    tick.tick().await;
    let deadline = tokio::time::sleep(RESULTS_TIMEOUT);
    tokio::pin!(deadline);
    while done.len() < want.len() {
        tokio::select! {
            event = stream.next() => match event {
                Some(Ok(c)) => {
                    let key = (c.namespace().unwrap_or_default(), c.name_any());
                    let cause = c.status.as_ref().and_then(|s| s.root_cause);
                    if let Some(cause) = cause && want.contains(&key) && !done.contains_key(&key) {
                        progress(format!(
                            "  {}/{}: {cause} ({:.1} s after apply; {} of {} done)",
                            key.0, key.1, started.elapsed().as_secs_f64(), done.len() + 1, want.len()
                        ));
                        done.insert(key, c);
                    }
                }
                Some(Err(e)) => progress(format!("  (watch: {e}; retrying)")),
                None => return Err("the watch on the checks ended".into()),
            },
            _ = tick.tick() => {
                let pending: Vec<String> =
                    want.iter().filter(|k| !done.contains_key(*k)).map(|(n, c)| format!("{n}/{c}")).collect();
                progress(format!("  waiting for {}", pending.join(", ")));
            }
            _ = &mut deadline => {
                let pending: Vec<String> =
                    want.iter().filter(|k| !done.contains_key(*k)).map(|(n, c)| format!("{n}/{c}")).collect();
                return Err(format!("no result after {RESULTS_TIMEOUT:?} for {}", pending.join(", ")));
            }
        }
    }
    Ok(done)
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

async fn run(cluster: Cluster, tools: Tools, scratch: PathBuf) -> Outcome<()> {
    let client = cluster.admin();
    progress(format!("moto (AWS) on the node's address {}, where the operator pods reach it", cluster.node_ip));
    let node_ip = IpAddr::V4(cluster.node_ip);
    let moto = tokio::task::spawn_blocking(move || Moto::start_on(node_ip)).await.map_err(|e| format!("moto: {e}"))?;
    let moto_url = moto.endpoint_url();

    // helm install runs while the world is built (the operator has nothing to do until the
    // checks exist).
    let values = scratch.join("values.yaml");
    std::fs::write(&values, helm_values(&moto_url, &cluster.image)?).map_err(|e| format!("write values: {e}"))?;
    apply_namespace(&client, RELEASE_NS).await?;
    let values_arg = values.display().to_string();
    let helm_args =
        ["install", RELEASE, "charts/pvtapi", "-n", RELEASE_NS, "-f", &values_arg, "--wait", "--timeout", "180s"];
    progress(format!("$ helm {}", helm_args.join(" ")));
    progress(format!(
        "  values: image {} (imported into the node), extraEnv AWS_ENDPOINT_URL={moto_url} + dummy credentials",
        cluster.image
    ));
    let helm_tools = tools.clone();
    let helm_args: Vec<String> = helm_args.iter().map(|s| (*s).to_owned()).collect();
    let install = tokio::spawn(async move {
        let args: Vec<&str> = helm_args.iter().map(String::as_str).collect();
        helm_tools.output("helm", &args).await
    });

    progress(format!(
        "building the VPC world in moto: 2 endpoints, {} private APIs, an ENI per pod address; \
         the API Gateway front end on {FRONT_END_IP}:443; records on the cluster DNS",
        samples().len()
    ));
    let world = build_world(&cluster, moto).await;
    progress(format!("  endpoint A {} (private DNS, 443 allowed), endpoint B {} (no 443)", world.vpce_a, world.vpce_b));
    for ns in namespaces() {
        apply_namespace(&client, ns).await?;
        let cm = ConfigMap {
            metadata: ObjectMeta { name: Some(CA_CONFIGMAP.into()), ..Default::default() },
            data: Some([("ca.crt".to_owned(), world.ca_pem.clone())].into()),
            ..Default::default()
        };
        Api::<ConfigMap>::namespaced(client.clone(), ns)
            .patch(CA_CONFIGMAP, &PatchParams::apply("pvtapi-demo").force(), &Patch::Apply(&cm))
            .await
            .map_err(|e| format!("ConfigMap {ns}/{CA_CONFIGMAP}: {e}"))?;
    }

    let mut last_report = Instant::now();
    let installed = loop {
        if install.is_finished() {
            break install.await.map_err(|e| format!("helm install: {e}"))??;
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            let pods = Api::<Pod>::namespaced(client.clone(), RELEASE_NS).list(&ListParams::default()).await;
            let states: Vec<String> = pods
                .map(|l| l.items)
                .unwrap_or_default()
                .iter()
                .map(|p| {
                    let ready = p
                        .status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
                        .is_some_and(|c| c.status == "True");
                    format!("{} {}", p.name_any(), if ready { "ready" } else { "starting" })
                })
                .collect();
            progress(format!("  helm install --wait: operator pods: {}", states.join(", ")));
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    if !installed.status.success() {
        let pods = tools.output("kubectl", &["describe", "pods", "-n", RELEASE_NS]).await?;
        return Err(format!("helm install failed: {}\n{}", text(&installed), text(&pods)));
    }
    progress("  the chart is installed: 2 operator replicas ready");

    let manifests: Vec<String> =
        samples().iter().map(|s| serde_norway::to_string(&check_manifest(s, &world)).unwrap_or_default()).collect();
    let file = scratch.join("checks.yaml");
    std::fs::write(&file, manifests.join("---\n")).map_err(|e| format!("write {}: {e}", file.display()))?;
    println!("The checks (one of the {} in {}):\n\n{}", samples().len(), file.display(), manifests[0].trim_end());
    println!("\nWhat each check meets:");
    for s in samples() {
        println!("  {:<24} {}", format!("{}/{}", s.namespace, s.name), s.story);
    }
    let file_arg = file.display().to_string();
    let code = tools.show("kubectl", &["apply", "-f", &file_arg]).await?;
    if code != 0 {
        return Err(format!("kubectl apply exited {code}"));
    }
    progress("waiting for the first results (each run: a probe pod in the check's namespace, then AWS facts)");
    let results = match wait_for_results(&client).await {
        Ok(r) => r,
        Err(e) => {
            let logs = tools
                .output("kubectl", &["logs", "-n", RELEASE_NS, "-l", "app.kubernetes.io/name=pvtapi", "--tail=30"])
                .await
                .map(|o| text(&o))
                .unwrap_or_else(|e| e);
            return Err(format!("{e}\noperator logs:\n{logs}"));
        }
    };

    let lease = Api::<k8s_openapi::api::coordination::v1::Lease>::namespaced(client.clone(), RELEASE_NS)
        .get_opt("pvtapi-operator")
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec?.holder_identity);
    progress(format!("  the leader (Lease pvtapi-operator): {}", lease.as_deref().unwrap_or("none")));

    tools.show("kubectl", &["get", "pac", "-A"]).await?;
    tools.show("kubectl", &["pvtapi", "list", "-A"]).await?;
    let mut problems = Vec::new();
    for s in samples() {
        let code = tools.show("kubectl", &["pvtapi", "check", s.name, "-n", s.namespace]).await?;
        let want = if s.expect == RootCause::Healthy { 0 } else { 1 };
        if code != want {
            problems.push(format!("kubectl pvtapi check {} -n {} exited {code}, expected {want}", s.name, s.namespace));
        }
    }

    println!("\nExpected and found:");
    for s in samples() {
        let key = (s.namespace.to_owned(), s.name.to_owned());
        let found = results.get(&key).and_then(|c| c.status.as_ref()).and_then(|st| st.root_cause);
        let ok = found == Some(s.expect);
        println!(
            "  {} {:<24} expected {:<28} found {}",
            if ok { "✓" } else { "✗" },
            format!("{}/{}", s.namespace, s.name),
            s.expect.code(),
            found.map_or("nothing", |c| c.code())
        );
        if !ok {
            let summary = results.get(&key).and_then(|c| c.status.as_ref()).and_then(|st| st.summary.clone());
            problems.push(format!(
                "{}/{}: expected {}, found {} ({})",
                s.namespace,
                s.name,
                s.expect,
                found.map_or("nothing".to_owned(), |c| c.to_string()),
                summary.unwrap_or_default()
            ));
        }
    }
    drop(world);
    if problems.is_empty() { Ok(()) } else { Err(problems.join("\n")) }
}

/// Removes what the demo made in the cluster; every step tolerates its object being absent.
async fn cleanup(client: &Client, tools: &Tools, wait: bool) {
    progress(format!("cleaning up: helm uninstall {RELEASE}, namespaces {RELEASE_NS} {}", namespaces().join(" ")));
    match tools.output("helm", &["uninstall", RELEASE, "-n", RELEASE_NS, "--wait", "--timeout", "60s"]).await {
        Ok(out) if !out.status.success() && !text(&out).contains("not found") => {
            progress(format!("  helm uninstall: {}", text(&out)));
        }
        Err(e) => progress(format!("  helm uninstall: {e}")),
        _ => {}
    }
    let api: Api<Namespace> = Api::all(client.clone());
    let mut all = namespaces();
    all.push(RELEASE_NS);
    for ns in &all {
        match api.delete(ns, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => progress(format!("  delete namespace {ns}: {e}")),
        }
    }
    if wait {
        for _ in 0..600 {
            let mut left = 0;
            for ns in &all {
                if api.get_opt(ns).await.ok().flatten().is_some() {
                    left += 1;
                }
            }
            if left == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        progress("  namespaces still terminating after 60 s");
    }
}

/// Namespaces of an earlier, interrupted demo on this cluster.
async fn leftovers(client: &Client) -> Vec<String> {
    let api: Api<Namespace> = Api::all(client.clone());
    let lp = ListParams::default().labels(&format!("{}={}", PART_OF.0, PART_OF.1));
    api.list(&lp).await.map(|l| l.items.iter().map(|n| n.name_any()).collect()).unwrap_or_default()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    START.get_or_init(Instant::now);
    if std::env::args().skip(1).any(|a| a == "-h" || a == "--help") {
        println!(
            "usage: demo   (on a running local cluster: eval \"$(bash tests/substrate/cluster.sh start)\"; \
             or bash tests/demo.sh, which starts one)"
        );
        return ExitCode::SUCCESS;
    }
    let cluster = Cluster::from_env().await;
    let client = cluster.admin();
    let scratch = ScratchDir::new("demo");
    let bin_dir = scratch.path().join("bin");
    if let Err(e) = std::fs::create_dir_all(&bin_dir) {
        eprintln!("demo: create {}: {e}", bin_dir.display());
        return ExitCode::from(2);
    }
    let tools = match Tools::find(&cluster, &bin_dir) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("demo: {e}");
            return ExitCode::from(2);
        }
    };
    let old = leftovers(&client).await;
    if !old.is_empty() {
        progress(format!("an earlier demo left {} behind: removing it first", old.join(", ")));
        cleanup(&client, &tools, true).await;
    }

    let mut work = tokio::spawn(run(cluster.clone(), tools.clone(), scratch.path().to_owned()));
    let outcome = tokio::select! {
        joined = &mut work => match joined {
            Ok(result) => result,
            Err(e) if e.is_panic() => Err("the demo panicked (message above)".to_owned()),
            Err(e) => Err(format!("the demo stopped: {e}")),
        },
        _ = tokio::signal::ctrl_c() => {
            work.abort();
            let _ = work.await;
            Err("interrupted".to_owned())
        }
    };
    // A second Ctrl-C during the clean-up ends the process at once, as a person expects.
    let interrupted = outcome.as_ref().err().is_some_and(|e| e == "interrupted");
    tokio::select! {
        _ = cleanup(&client, &tools, false) => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    drop(scratch);
    match outcome {
        Ok(()) => {
            progress(format!("demo OK: {} checks, each with the root cause its world was built for", samples().len()));
            ExitCode::SUCCESS
        }
        Err(_) if interrupted => {
            progress("demo interrupted; cleaned up");
            ExitCode::from(130)
        }
        Err(e) => {
            progress(format!("demo FAILED:\n{e}"));
            ExitCode::from(1)
        }
    }
}

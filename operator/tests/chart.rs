//! The Helm chart `charts/pvtapi`, proven on the local cluster: `helm lint --strict`, the schema
//! refusing bad values, the rendered RBAC equal to `pvtapi_operator::rbac` (so the chart cannot
//! drift from what the code calls), a server-side dry-run of every object, and a real
//! `helm install` whose operator pod (from the image) reconciles a check, then `helm upgrade`
//! and `helm uninstall` leaving no operator objects behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::rbac::v1::PolicyRule;
use kube::api::{Api, ListParams};
use pvtapi_crds::{RootCause, conditions};
use pvtapi_testkit::cluster::Cluster;
use pvtapi_testkit::operator::{apply_and_wait, check, condition, root_cause_is};

fn chart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/pvtapi")
}

fn helm() -> PathBuf {
    let path = std::env::var("PVTAPI_HELM").unwrap_or_else(|_| {
        panic!("PVTAPI_HELM is not set: start the local cluster (`eval \"$(bash tests/substrate/cluster.sh start)\"`)")
    });
    assert!(Path::new(&path).is_file(), "helm not found at {path}: bash tests/substrate/build-tools.sh helm");
    PathBuf::from(path)
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// `helm template` with the local cluster's Kubernetes version (this helm is built without its
/// version flags and would assume v1.20).
fn template(release_ns: &str, sets: &[&str]) -> Output {
    let mut cmd = Command::new(helm());
    cmd.args(["template", "t"]).arg(chart()).args(["-n", release_ns, "--kube-version", "1.36.3"]);
    for s in sets {
        cmd.args(["--set", s]);
    }
    run(&mut cmd)
}

fn documents(yaml: &str) -> Vec<serde_json::Value> {
    yaml.split("\n---")
        .filter_map(|d| serde_norway::from_str::<serde_json::Value>(d).ok())
        .filter(|v| v.is_object())
        .collect()
}

fn rules_of(docs: &[serde_json::Value], kind: &str, name_part: &str) -> Vec<PolicyRule> {
    let doc = docs
        .iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"].as_str().is_some_and(|n| n.contains(name_part)))
        .unwrap_or_else(|| panic!("no {kind} *{name_part}* rendered"));
    serde_json::from_value(doc["rules"].clone()).unwrap_or_else(|e| panic!("{kind} rules: {e}"))
}

#[test]
fn the_chart_lints_refuses_bad_values_and_ships_exactly_the_operators_rbac() {
    let lint = run(Command::new(helm()).args(["lint", "--strict", "--kube-version", "1.36.3"]).arg(chart()));
    assert!(lint.status.success(), "helm lint --strict: {}", text(&lint));

    for (bad, says) in [
        ("replicas=zero", "replicas"),
        ("unknownKey=1", "additional properties"),
        ("image.tagg=x", "additional properties"),
        ("maxConcurrentRuns=0", "minimum"),
        ("podAntiAffinity=maybe", "soft"),
    ] {
        let out = template("pvtapi-system", &[bad]);
        assert!(!out.status.success(), "--set {bad} must be refused");
        assert!(text(&out).contains(says), "--set {bad}: the error names the problem ({says}): {}", text(&out));
    }

    // Cluster-wide: a ClusterRole with exactly the operator's rules; the Lease Role beside it.
    let out = template("pvtapi-system", &[]);
    assert!(out.status.success(), "helm template: {}", text(&out));
    let yaml = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!yaml.contains("\"*\"") && !yaml.contains("- '*'") && !yaml.contains("- \"*\""), "no wildcard");
    let docs = documents(&yaml);
    assert_eq!(rules_of(&docs, "ClusterRole", ""), pvtapi_operator::rbac::cluster_rules());
    assert_eq!(rules_of(&docs, "Role", ""), pvtapi_operator::rbac::leader_election_rules());
    let deployment = docs.iter().find(|d| d["kind"] == "Deployment").expect("a Deployment");
    assert_eq!(deployment["spec"]["replicas"], 2);
    let pod = &deployment["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");

    // One namespace: a Role there instead of the ClusterRole, same rules, and --namespace.
    let out = template("pvtapi-system", &["watchNamespace=team-a"]);
    assert!(out.status.success(), "{}", text(&out));
    let docs = documents(&String::from_utf8_lossy(&out.stdout));
    assert!(!docs.iter().any(|d| d["kind"] == "ClusterRole"), "no ClusterRole with watchNamespace");
    let role =
        docs.iter().find(|d| d["kind"] == "Role" && d["metadata"]["namespace"] == "team-a").expect("a Role in team-a");
    let rules: Vec<PolicyRule> = serde_json::from_value(role["rules"].clone()).expect("rules");
    assert_eq!(rules, pvtapi_operator::rbac::cluster_rules());
    let args =
        docs.iter().find(|d| d["kind"] == "Deployment").expect("Deployment")["spec"]["template"]["spec"]["containers"]
            [0]["args"]
            .to_string();
    assert!(args.contains("--namespace=team-a"), "{args}");
}

fn kubectl(cluster: &Cluster) -> Command {
    let bin = std::env::var("PVTAPI_KUBE_BIN").expect("PVTAPI_KUBE_BIN");
    let mut cmd = Command::new(Path::new(&bin).join("kubectl"));
    cmd.args(["--kubeconfig"]).arg(cluster.control_plane().kubeconfig());
    cmd
}

fn helm_on(cluster: &Cluster) -> Command {
    let mut cmd = Command::new(helm());
    cmd.arg("--kubeconfig").arg(cluster.control_plane().kubeconfig());
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_install_runs_the_operator_from_the_image_and_uninstall_leaves_nothing() {
    let cluster = Cluster::from_env().await;
    cluster.control_plane().install_crd().await;
    let release_ns = cluster.namespace("pvtapi-system", Some("restricted")).await;
    let checks_ns = cluster.namespace("chart-checks", Some("restricted")).await;
    let (repo, tag) = cluster.image.rsplit_once(':').expect("image ref with a tag");
    let values = [
        format!("image.repository={repo}"),
        format!("image.tag={tag}"),
        "image.pullPolicy=Never".to_owned(),
        // Only this test's namespace: other suites run their own operators on the same cluster.
        format!("watchNamespace={checks_ns}"),
        "resources.requests.cpu=10m".to_owned(),
    ];

    // The whole rendering passes the apiserver's own validation first.
    let mut t = Command::new(helm());
    t.args(["template", "pvtapi"]).arg(chart()).args(["-n", &release_ns, "--kube-version", "1.36.3"]);
    for v in &values {
        t.args(["--set", v]);
    }
    let rendered = run(&mut t);
    assert!(rendered.status.success(), "{}", text(&rendered));
    let manifest = std::env::temp_dir().join(format!("{release_ns}.yaml"));
    std::fs::write(&manifest, &rendered.stdout).expect("write the rendering");
    let dry = run(kubectl(&cluster).args(["apply", "--server-side", "--dry-run=server", "-f"]).arg(&manifest));
    assert!(dry.status.success(), "server-side dry-run: {}", text(&dry));

    let mut install = helm_on(&cluster);
    install.args(["install", "pvtapi"]).arg(chart()).args(["-n", &release_ns, "--wait", "--timeout", "180s"]);
    for v in &values {
        install.args(["--set", v]);
    }
    let out = tokio::task::block_in_place(|| run(&mut install));
    let pods: Api<Pod> = Api::namespaced(cluster.admin(), &release_ns);
    let describe = || {
        let out = run(kubectl(&cluster).args(["-n", &release_ns, "describe", "pods"]));
        text(&out)
    };
    assert!(out.status.success(), "helm install: {}\n{}", text(&out), describe());

    // The operator pods (2 replicas, one leader) reconcile a check in the watched namespace.
    let c = check(&checks_ns, "orders", "zzzzz99960", serde_json::json!({}));
    let done = apply_and_wait(&cluster, &c, "a result from the chart's operator", |c| {
        root_cause_is(c, RootCause::DnsResolutionFailed)
    })
    .await;
    let ready = condition(&done, conditions::READY).expect("Ready");
    assert_eq!(ready.status, "True");
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> = Api::namespaced(cluster.admin(), &release_ns);
    let holder = leases.get("pvtapi-operator").await.expect("the Lease").spec.and_then(|s| s.holder_identity);
    assert!(holder.as_deref().is_some_and(|h| h.starts_with("pvtapi-")), "a replica holds the Lease: {holder:?}");

    // Upgrade: a changed value rolls the Deployment; the operator keeps working.
    let mut upgrade = helm_on(&cluster);
    upgrade.args(["upgrade", "pvtapi"]).arg(chart()).args(["-n", &release_ns, "--wait", "--timeout", "180s"]);
    for v in &values {
        upgrade.args(["--set", v]);
    }
    upgrade.args(["--set", "maxConcurrentRuns=5"]);
    let out = tokio::task::block_in_place(|| run(&mut upgrade));
    assert!(out.status.success(), "helm upgrade: {}\n{}", text(&out), describe());
    let deployments: Api<Deployment> = Api::namespaced(cluster.admin(), &release_ns);
    let d = deployments.list(&ListParams::default()).await.expect("deployments").items;
    let args = d
        .first()
        .and_then(|d| d.spec.as_ref())
        .map(|s| format!("{:?}", s.template.spec.as_ref().map(|p| &p.containers[0].args)));
    assert!(args.unwrap_or_default().contains("--max-concurrent-runs=5"), "the upgrade changed the flag");
    let c2 = check(&checks_ns, "payments", "zzzzz99961", serde_json::json!({}));
    apply_and_wait(&cluster, &c2, "a result after the upgrade", |c| root_cause_is(c, RootCause::DnsResolutionFailed))
        .await;

    // Uninstall: every object of the release goes; checks (user data) and the CRD stay.
    let out = tokio::task::block_in_place(|| {
        run(helm_on(&cluster).args(["uninstall", "pvtapi", "-n", &release_ns, "--wait", "--timeout", "120s"]))
    });
    assert!(out.status.success(), "helm uninstall: {}", text(&out));
    let mut left = Vec::new();
    for _ in 0..300 {
        left = pods.list(&ListParams::default()).await.expect("pods").items;
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        left.is_empty(),
        "operator pods left: {:?}",
        left.iter().map(|p| p.metadata.name.clone()).collect::<Vec<_>>()
    );
    let all = run(kubectl(&cluster).args([
        "get",
        "deployment,service,serviceaccount,role,rolebinding,poddisruptionbudget",
        "-n",
        &release_ns,
        "-l",
        "app.kubernetes.io/instance=pvtapi",
        "-o",
        "name",
    ]));
    assert!(String::from_utf8_lossy(&all.stdout).trim().is_empty(), "namespaced objects left: {}", text(&all));
    let cluster_objs = run(kubectl(&cluster).args([
        "get",
        "clusterrole,clusterrolebinding",
        "-l",
        "app.kubernetes.io/instance=pvtapi",
        "-o",
        "name",
    ]));
    let leftover: Vec<String> = String::from_utf8_lossy(&cluster_objs.stdout)
        .lines()
        .filter(|l| l.contains(&release_ns) || l.contains("pvtapi"))
        .map(str::to_owned)
        .collect();
    // Another install of the chart on this cluster could own some; none may name this release.
    assert!(leftover.iter().all(|l| !l.contains(&release_ns)), "cluster objects left: {leftover:?}");
    let probe_pods = Api::<Pod>::namespaced(cluster.admin(), &checks_ns)
        .list(&ListParams::default().labels("app.kubernetes.io/component=probe"))
        .await
        .expect("probe pods")
        .items;
    assert!(probe_pods.is_empty(), "no probe pod left behind");
    let api: Api<pvtapi_crds::PrivateApiConnectivityCheck> = Api::namespaced(cluster.admin(), &checks_ns);
    assert!(api.get_opt("orders").await.expect("get").is_some(), "checks are user data: uninstall keeps them");
}

//! `kubectl pvtapi check NAME`, `check --rerun`, a temporary in-cluster check, and `list`,
//! against the local cluster with the operator running (its probe pods on the real node):
//! output, exit codes, and the errors a user meets (not found, forbidden, no operator).

use std::net::Ipv4Addr;
use std::process::{Command, Output};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams};
use pvtapi_crds::PrivateApiConnectivityCheck;
use pvtapi_testkit::cluster::Cluster;
use pvtapi_testkit::operator::{HealthyApi, OperatorOptions, OperatorProcess, apply_and_wait, check, new_result_since};

const BIN: &str = env!("CARGO_BIN_EXE_kubectl-pvtapi");

fn plugin(cluster: &Cluster, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--kubeconfig")
        .arg(cluster.control_plane().kubeconfig())
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .unwrap_or_else(|e| panic!("run {BIN}: {e}"))
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_name_rerun_temporary_and_list_against_the_operator() {
    let cluster = Cluster::from_env().await;
    cluster.control_plane().install_crd().await;
    let ns = cluster.namespace("plugin-cluster", Some("restricted")).await;
    let _operator = OperatorProcess::start(&cluster.operator_bin, &cluster, &ns, &OperatorOptions::default());

    // A healthy API: the front end on an endpoint address, its CA in a ConfigMap.
    let _api = HealthyApi::start(&cluster, &ns, "zzzzz99951", Ipv4Addr::new(10, 0, 1, 237), "ca").await;
    let healthy = check(&ns, "healthy", "zzzzz99951", serde_json::json!({"probe": {"caBundle": {"configMap": "ca"}}}));
    apply_and_wait(&cluster, &healthy, "a first result", |c| new_result_since(c, None)).await;
    // A failing one: nobody serves this API's name (NXDOMAIN).
    let failing = check(&ns, "orders", "zzzzz99952", serde_json::json!({}));
    let first = apply_and_wait(&cluster, &failing, "a first result", |c| new_result_since(c, None)).await;

    // check NAME: the answer, the fix, the conditions, the history; exit 1 for a problem.
    let out = plugin(&cluster, &["check", "orders", "-n", &ns]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    for want in ["✗ DnsResolutionFailed", "Fix:", "Conditions", "DnsResolved", "Evidence:", "History:", "Timings:"] {
        assert!(text.contains(want), "{want:?} in {}", show(&out));
    }
    assert!(!text.contains('\u{1b}'), "no colour when stdout is not a terminal");
    let out = plugin(&cluster, &["check", "healthy", "-n", &ns]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(stdout(&out).starts_with("✓ Healthy"), "{}", show(&out));
    let out = plugin(&cluster, &["check", "healthy", "-n", &ns, "-o", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&out)));
    assert_eq!(json["status"]["rootCause"], "Healthy");

    // --rerun: a new run, waited for.
    let before = first.status.as_ref().and_then(|s| s.last_run_id.clone());
    let out = plugin(&cluster, &["check", "orders", "-n", &ns, "--rerun"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let api: Api<PrivateApiConnectivityCheck> = Api::namespaced(cluster.admin(), &ns);
    let now = api.get("orders").await.expect("orders");
    let status = now.status.expect("status");
    assert_ne!(status.last_run_id, before, "--rerun ran the check again");
    assert_eq!(status.history.len(), 2);
    assert!(status.last_run_now.is_some_and(|v| v.starts_with("kubectl-pvtapi-")));

    // A temporary check: created, waited for, printed, deleted.
    let adhoc = [
        "check",
        "-n",
        &ns,
        "--api-id",
        "zzzzz99953",
        "--region",
        "us-east-1",
        "--stage",
        "prod",
        "--vpce",
        "vpce-0123456789abcdef0",
        "--access",
        "privateDns",
        "--no-aws",
        "--timeout",
        "2",
    ];
    let out = plugin(&cluster, &adhoc);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(stdout(&out).contains("DnsResolutionFailed"), "{}", show(&out));
    let temporary = |items: &[PrivateApiConnectivityCheck]| {
        items.iter().filter(|c| c.metadata.name.as_deref().is_some_and(|n| n.starts_with("pvtapi-check-"))).count()
    };
    let items = api.list(&ListParams::default()).await.expect("list").items;
    assert_eq!(temporary(&items), 0, "the temporary check is deleted");
    let mut keep = adhoc.to_vec();
    keep.push("--keep");
    let out = plugin(&cluster, &keep);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("kept"), "{}", show(&out));
    let items = api.list(&ListParams::default()).await.expect("list").items;
    assert_eq!(temporary(&items), 1, "--keep keeps it");

    // list: one row per check.
    let out = plugin(&cluster, &["list", "-n", &ns]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("NAME") && lines[0].contains("ROOT CAUSE"), "{text}");
    assert_eq!(lines.len(), 1 + 3, "{text}");
    assert!(lines.iter().any(|l| l.starts_with("healthy") && l.contains("Healthy") && l.contains("True")), "{text}");
    assert!(lines.iter().any(|l| l.starts_with("orders") && l.contains("DnsResolutionFailed")), "{text}");
    let out = plugin(&cluster, &["list", "-A", "-o", "wide"]);
    let text = stdout(&out);
    assert!(text.lines().next().is_some_and(|h| h.starts_with("NAMESPACE") && h.contains("SUCCESS")), "{text}");
    assert!(text.lines().any(|l| l.starts_with(&ns)), "{text}");
    let out = plugin(&cluster, &["list", "-n", &ns, "-o", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("list -o json");
    assert_eq!(json["items"].as_array().map(Vec::len), Some(3));

    // Errors a user meets, each saying what to do; exit 2.
    let out = plugin(&cluster, &["check", "nope", "-n", &ns]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found in namespace"), "{}", show(&out));
    let kubeconfig = std::env::temp_dir().join(format!("{ns}-nobody.kubeconfig"));
    cluster.control_plane().kubeconfig_for(&ns, "nobody", Vec::new(), Vec::new(), &kubeconfig).await;
    let out = Command::new(BIN)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["check", "orders", "-n", &ns])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("forbidden"), "{}", show(&out));
    let quiet = cluster.namespace("plugin-nooperator", Some("restricted")).await;
    let mut no_operator = adhoc.to_vec();
    no_operator[2] = &quiet;
    no_operator.extend(["--wait", "3"]);
    let out = plugin(&cluster, &no_operator);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is the operator running"), "{}", show(&out));
    let left = Api::<PrivateApiConnectivityCheck>::namespaced(cluster.admin(), &quiet)
        .list(&ListParams::default())
        .await
        .expect("list")
        .items;
    assert!(left.is_empty(), "the temporary check is deleted after a failed wait too: {}", left.len());
}

/// `discover`: a Deployment's env and its envFrom ConfigMap, and a ConfigMap nobody uses, each
/// with a different hostname shape → one finding each with its access mode; `-o yaml` gives
/// manifests the apiserver accepts when complete and refuses (naming the field) when the URL
/// could not tell everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_finds_the_apis_workloads_call_and_prints_checks_for_them() {
    use k8s_openapi::api::apps::v1::Deployment;
    let cluster = Cluster::from_env().await;
    cluster.control_plane().install_crd().await;
    let ns = cluster.namespace("plugin-discover", Some("restricted")).await;
    let cms: Api<ConfigMap> = Api::namespaced(cluster.admin(), &ns);
    for (name, key, value) in [
        (
            "settings",
            "API_URL",
            "https://vpce-0123456789abcdef0-ab12cd34.execute-api.us-east-1.vpce.amazonaws.com/prod/items",
        ),
        (
            "unused",
            "endpoint",
            "https://abcde12345-vpce-0fedcba9876543210.execute-api.us-east-1.amazonaws.com/v1/health",
        ),
        ("noise", "url", "https://example.com/prod and s3.us-east-1.amazonaws.com"),
    ] {
        let cm = ConfigMap {
            metadata: kube::api::ObjectMeta { name: Some(name.into()), ..Default::default() },
            data: Some([(key.to_owned(), value.to_owned())].into()),
            ..Default::default()
        };
        cms.create(&PostParams::default(), &cm).await.expect("ConfigMap");
    }
    let deployment: Deployment = serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "orders"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "orders"}},
            "template": {
                "metadata": {"labels": {"app": "orders"}},
                "spec": {
                    "automountServiceAccountToken": false,
                    "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{
                        "name": "app", "image": cluster.pause_image, "imagePullPolicy": "Never",
                        "env": [{"name": "ORDERS_URL", "value": "https://abcde12345.execute-api.us-east-1.amazonaws.com/prod/health"}],
                        "envFrom": [{"configMapRef": {"name": "settings"}}],
                        "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}, "readOnlyRootFilesystem": true}
                    }]
                }
            }
        }
    }))
    .expect("deployment");
    Api::<Deployment>::namespaced(cluster.admin(), &ns)
        .create(&PostParams::default(), &deployment)
        .await
        .expect("create deployment");
    // The ReplicaSet controller creates the pod; discover reads pods.
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(cluster.admin(), &ns);
    for _ in 0..300 {
        if !pods.list(&ListParams::default()).await.expect("pods").items.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    let out = plugin(&cluster, &["discover", "-n", &ns]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let text = stdout(&out);
    let rows: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(rows.len(), 3, "three calls: {text}");
    assert!(
        rows.iter()
            .any(|r| r.contains("deployment/orders") && r.contains("env ORDERS_URL") && r.contains("privateDns")),
        "{text}"
    );
    assert!(
        rows.iter().any(|r| r.contains("deployment/orders")
            && r.contains("configmap/settings key API_URL")
            && r.contains("endpointHost")),
        "envFrom attributes the ConfigMap to the workload: {text}"
    );
    assert!(rows.iter().any(|r| r.contains("configmap/unused") && r.contains("endpointAlias")), "{text}");

    let out = plugin(&cluster, &["discover", "-n", &ns, "-o", "yaml"]);
    let yaml = stdout(&out);
    assert_eq!(yaml.matches("kind: PrivateApiConnectivityCheck").count(), 3, "{yaml}");
    // Each manifest alone through the apiserver's validation: the alias one is complete; the
    // others leave a field the URL cannot tell, and the apiserver names it.
    let kubectl = |doc: &str| {
        let path = std::env::temp_dir().join(format!("{ns}-{}.yaml", doc.len()));
        std::fs::write(&path, doc).expect("write");
        let bin = std::env::var("PVTAPI_KUBE_BIN").expect("PVTAPI_KUBE_BIN");
        Command::new(std::path::Path::new(&bin).join("kubectl"))
            .arg("--kubeconfig")
            .arg(cluster.control_plane().kubeconfig())
            .args(["apply", "--dry-run=server", "-f"])
            .arg(&path)
            .output()
            .expect("kubectl")
    };
    for doc in yaml.split("---\n").filter(|d| d.contains("kind:")) {
        let out = kubectl(doc);
        if doc.contains("access: endpointAlias") {
            assert!(out.status.success(), "the complete manifest is accepted: {}\n{doc}", show(&out));
        } else {
            assert!(!out.status.success(), "an incomplete manifest is refused: {doc}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("vpcEndpointId") || err.contains("spec.api.id"), "names the missing field: {err}");
        }
    }
}

//! The cluster's CNI settings that decide the source the endpoint sees.
//!
//! Why the operator reads them: on the Amazon VPC CNI the endpoint often sees the node's address
//! and groups rather than the pod's (SNAT to destinations outside the VPC's CIDRs) or a branch
//! interface's (Security Groups for Pods), and only the `aws-node` DaemonSet's env says which
//! (`AWS_VPC_K8S_CNI_EXTERNALSNAT`, `AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS`,
//! `POD_SECURITY_GROUP_ENFORCING_MODE`, …). One GET per run that read AWS facts; the decision
//! itself is the engine's (`network::source`). A cluster without the DaemonSet runs another CNI;
//! a DaemonSet the operator may not read (a namespaced install) is said, never guessed.

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Container, EnvVarSource};
use kube::Client;
use kube::api::Api;
use pvtapi_engine::aws::AwsFacts;
use pvtapi_engine::network::source::{
    CUSTOM_NETWORK, CniFacts, ENABLE_POD_ENI, ENFORCING_MODE, EXCLUDE_SNAT_CIDRS, EXTERNAL_SNAT, EnvValue, VpcCniConfig,
};

/// Where the VPC CNI runs (self-managed and EKS add-on alike).
pub const AWS_NODE_NAMESPACE: &str = "kube-system";
pub const AWS_NODE: &str = "aws-node";

/// The settings this module reads; others are not copied (the env may hold anything).
const SETTINGS: [&str; 5] = [EXTERNAL_SNAT, EXCLUDE_SNAT_CIDRS, ENABLE_POD_ENI, ENFORCING_MODE, CUSTOM_NETWORK];

/// `facts` with the client replaced by the source the endpoint sees (the engine's
/// `network::source::resolve`), from this cluster's VPC CNI settings; one GET, made only when
/// the pod's interface is known (nothing to resolve otherwise).
pub async fn resolve_source(client: &Client, facts: AwsFacts) -> AwsFacts {
    if facts.client.known().is_none() {
        return facts;
    }
    let cni = cni_facts(client).await;
    pvtapi_engine::network::source::resolve(&facts, Some(&cni))
}

/// Reads `kube-system/aws-node`.
pub async fn cni_facts(client: &Client) -> CniFacts {
    let api: Api<DaemonSet> = Api::namespaced(client.clone(), AWS_NODE_NAMESPACE);
    match api.get_opt(AWS_NODE).await {
        Ok(Some(ds)) => from_daemonset(&ds),
        Ok(None) => CniFacts::NotVpcCni {
            detail: format!("no DaemonSet {AWS_NODE_NAMESPACE}/{AWS_NODE}: the cluster runs another CNI"),
        },
        Err(e) => CniFacts::Unreadable {
            reason: format!("get DaemonSet {AWS_NODE_NAMESPACE}/{AWS_NODE}: {}", bounded(&e.to_string())),
        },
    }
}

fn bounded(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(200).collect()
}

/// The settings from the DaemonSet's `aws-node` container (the first container when none has
/// that name), as the CNI would see them: `env` entries, and `envFrom` sources for the settings
/// `env` does not set (`env` wins in Kubernetes).
pub fn from_daemonset(ds: &DaemonSet) -> CniFacts {
    let containers: &[Container] =
        ds.spec.as_ref().and_then(|s| s.template.spec.as_ref()).map_or(&[], |p| &p.containers);
    let Some(container) = containers.iter().find(|c| c.name == AWS_NODE).or(containers.first()) else {
        return CniFacts::Unreadable { reason: format!("DaemonSet {AWS_NODE_NAMESPACE}/{AWS_NODE} has no container") };
    };
    let mut env: Vec<(String, EnvValue)> = Vec::new();
    let from = container.env_from.as_deref().unwrap_or_default();
    if !from.is_empty() {
        let sources: Vec<String> = from
            .iter()
            .map(|f| match (&f.config_map_ref, &f.secret_ref) {
                (Some(c), _) => format!("ConfigMap {}", c.name),
                (_, Some(s)) => format!("Secret {}", s.name),
                _ => "an envFrom source".to_owned(),
            })
            .collect();
        for name in SETTINGS {
            env.push((name.to_owned(), EnvValue::Reference(format!("envFrom ({})", sources.join(", ")))));
        }
    }
    for var in container.env.as_deref().unwrap_or_default() {
        if !SETTINGS.contains(&var.name.as_str()) {
            continue;
        }
        let value = match (&var.value, &var.value_from) {
            (_, Some(source)) => EnvValue::Reference(describe(source)),
            (Some(v), None) => EnvValue::Value(v.clone()),
            (None, None) => EnvValue::Value(String::new()),
        };
        env.push((var.name.clone(), value));
    }
    // An empty value is unset for the CNI (its getEnv falls back to the default).
    env.retain(|(_, v)| !matches!(v, EnvValue::Value(t) if t.is_empty()));
    CniFacts::VpcCni { config: VpcCniConfig::from_env(&env) }
}

fn describe(source: &EnvVarSource) -> String {
    if let Some(c) = &source.config_map_key_ref {
        format!("ConfigMap {} key {}", c.name, c.key)
    } else if let Some(s) = &source.secret_key_ref {
        format!("Secret {} key {}", s.name, s.key)
    } else if let Some(f) = &source.field_ref {
        format!("field {}", f.field_path)
    } else {
        "a valueFrom source".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pvtapi_engine::network::source::SgEnforcingMode;

    fn daemonset(yaml: &str) -> DaemonSet {
        serde_norway::from_str(yaml).expect("DaemonSet YAML")
    }

    #[test]
    fn settings_come_from_the_aws_node_container() {
        let ds = daemonset(
            r#"
metadata: {name: aws-node, namespace: kube-system}
spec:
  selector: {matchLabels: {k8s-app: aws-node}}
  template:
    metadata: {labels: {k8s-app: aws-node}}
    spec:
      initContainers: [{name: aws-vpc-cni-init, image: x}]
      containers:
      - name: aws-eks-nodeagent
        image: y
        env: [{name: AWS_VPC_K8S_CNI_EXTERNALSNAT, value: "true"}]
      - name: aws-node
        image: z
        env:
        - {name: AWS_VPC_K8S_CNI_EXTERNALSNAT, value: "false"}
        - {name: AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS, value: "10.1.0.0/16"}
        - {name: POD_SECURITY_GROUP_ENFORCING_MODE, value: standard}
        - {name: ENABLE_POD_ENI, value: ""}
        - {name: AWS_ACCESS_KEY_ID, value: never-copied}
"#,
        );
        let CniFacts::VpcCni { config } = from_daemonset(&ds) else { panic!("not the VPC CNI") };
        assert!(!config.external_snat, "the aws-node container's, not the node agent's");
        assert_eq!(config.exclude_snat_cidrs, vec!["10.1.0.0/16".to_owned()]);
        assert_eq!(config.enforcing_mode, SgEnforcingMode::Standard);
        assert!(!config.pod_eni, "an empty value is unset");
        assert!(config.notes.is_empty(), "{:?}", config.notes);
        assert!(!format!("{config:?}").contains("never-copied"));
    }

    #[test]
    fn references_are_named_not_guessed() {
        let ds = daemonset(
            r#"
metadata: {name: aws-node, namespace: kube-system}
spec:
  selector: {matchLabels: {k8s-app: aws-node}}
  template:
    metadata: {labels: {k8s-app: aws-node}}
    spec:
      containers:
      - name: aws-node
        image: z
        envFrom: [{configMapRef: {name: cni-settings}}]
        env:
        - name: AWS_VPC_K8S_CNI_EXTERNALSNAT
          valueFrom: {configMapKeyRef: {name: amazon-vpc-cni, key: external-snat}}
"#,
        );
        let CniFacts::VpcCni { config } = from_daemonset(&ds) else { panic!("not the VPC CNI") };
        let notes = config.notes.join("\n");
        assert!(notes.contains("ConfigMap amazon-vpc-cni key external-snat"), "{notes}");
        assert!(notes.contains("envFrom (ConfigMap cni-settings)"), "{notes}");
        let empty = daemonset(
            "metadata: {name: aws-node}\nspec:\n  selector: {}\n  template:\n    spec:\n      containers: []\n",
        );
        assert!(matches!(from_daemonset(&empty), CniFacts::Unreadable { .. }));
    }
}

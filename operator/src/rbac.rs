//! The least-privilege RBAC the operator needs, as data.
//!
//! Why in Rust: the Helm chart's ClusterRole/Role, the end-to-end test that runs the operator
//! under exactly these rules, and the unit test that forbids wildcards all read this one list,
//! so the chart cannot drift from what the code calls. Each rule says which call needs it.

use k8s_openapi::api::rbac::v1::PolicyRule;

fn rule(group: &str, resources: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![group.to_owned()]),
        resources: Some(resources.iter().map(|s| (*s).to_owned()).collect()),
        verbs: verbs.iter().map(|s| (*s).to_owned()).collect(),
        ..Default::default()
    }
}

/// Rules for the operator's ClusterRole (or a Role per namespace with `--namespace`).
pub fn cluster_rules() -> Vec<PolicyRule> {
    vec![
        // The controller's watch on checks (and the startup probe that the CRD is installed).
        rule("pvtapi.io", &["privateapiconnectivitychecks"], &["get", "list", "watch"]),
        // Status is written with server-side apply (PATCH on the status subresource).
        rule("pvtapi.io", &["privateapiconnectivitychecks/status"], &["get", "patch"]),
        // Probe pods: watched (label-selected), created per run, read back when the watch lags,
        // labelled when kept for debugging, deleted when done.
        rule("", &["pods"], &["get", "list", "watch", "create", "patch", "delete"]),
        // spec.probe.workloadRef: the workload's pod template (its network identity); and the
        // VPC CNI's settings (DaemonSet kube-system/aws-node: SNAT, Security Groups for Pods).
        rule("apps", &["deployments", "statefulsets", "daemonsets"], &["get"]),
        // NetworkPolicies selecting a probe pod that timed out (listed in its namespace), and
        // the cluster DNS Service behind its resolver address (kube-system) and that
        // namespace's labels (namespaceSelector peers).
        rule("networking.k8s.io", &["networkpolicies"], &["list"]),
        rule("", &["services"], &["list"]),
        rule("", &["namespaces"], &["get"]),
        // Transition events (kube's Recorder creates, then patches a repeated event's series).
        rule("events.k8s.io", &["events"], &["create", "patch"]),
    ]
}

/// Rules for the Role in the leader-election namespace: the Lease is read, created once and
/// renewed with server-side apply.
pub fn leader_election_rules() -> Vec<PolicyRule> {
    vec![rule("coordination.k8s.io", &["leases"], &["get", "create", "patch"])]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_rule_is_a_wildcard_or_grants_secrets() {
        for r in cluster_rules().iter().chain(leader_election_rules().iter()) {
            let all = r.verbs.iter().chain(r.resources.iter().flatten()).chain(r.api_groups.iter().flatten());
            for s in all {
                assert!(!s.contains('*'), "wildcard in {r:?}");
            }
            assert!(!r.resources.iter().flatten().any(|x| x == "secrets" || x == "pods/exec"), "{r:?}");
            assert!(r.non_resource_urls.is_none());
            assert!(!r.verbs.iter().any(|v| v == "escalate" || v == "bind" || v == "impersonate"));
        }
    }

    #[test]
    fn checks_are_read_only_except_their_status() {
        let rules = cluster_rules();
        let checks =
            rules.iter().find(|r| r.resources.as_ref().is_some_and(|x| x == &["privateapiconnectivitychecks"]));
        assert_eq!(checks.map(|r| r.verbs.clone()), Some(vec!["get".into(), "list".into(), "watch".into()]));
    }
}

//! The real kube-apiserver + etcd started by `tests/substrate/cluster.sh`.
//!
//! Tests get the admin client from [`ControlPlane::from_env`] and prove least privilege with
//! [`ControlPlane::mint_identity`]: a ServiceAccount bound to exactly the rules given, with a
//! token from the TokenRequest API — the same kind of identity the operator runs as.

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Client, Config, CustomResourceExt};

use crate::peers::INSTALL_HINT;

/// Field manager used by test fixtures.
pub const FIELD_MANAGER: &str = "pvtapi-e2e";

/// Handle on the running control plane.
#[derive(Clone)]
pub struct ControlPlane {
    kubeconfig: PathBuf,
    config: Config,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane").field("kubeconfig", &self.kubeconfig).finish_non_exhaustive()
    }
}

impl ControlPlane {
    /// Connects to the control plane named by `PVTAPI_KUBECONFIG`, or panics saying how to start one.
    pub async fn from_env() -> ControlPlane {
        let Some(path) = std::env::var_os("PVTAPI_KUBECONFIG").map(PathBuf::from) else {
            panic!(
                "PVTAPI_KUBECONFIG is not set: the end-to-end tests need the real kube-apiserver + etcd; \
                 {INSTALL_HINT}, or `eval \"$(bash tests/substrate/cluster.sh start)\"` before `cargo test`"
            );
        };
        let kubeconfig = Kubeconfig::read_from(&path).unwrap_or_else(|e| {
            panic!("cannot read {} ({e}); is the control plane running? {INSTALL_HINT}", path.display())
        });
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .unwrap_or_else(|e| panic!("bad kubeconfig {}: {e}", path.display()));
        ControlPlane { kubeconfig: path, config }
    }

    /// The admin kubeconfig (group `system:masters`).
    pub fn kubeconfig(&self) -> &std::path::Path {
        &self.kubeconfig
    }

    /// A client with the admin identity.
    pub fn admin(&self) -> Client {
        Client::try_from(self.config.clone()).unwrap_or_else(|e| panic!("admin client: {e}"))
    }

    /// Creates (or keeps) a namespace. There is no namespace controller, so tests use unique names.
    pub async fn namespace(&self, name: &str) -> String {
        let api: Api<Namespace> = Api::all(self.admin());
        let ns = Namespace {
            metadata: ObjectMeta { name: Some(name.to_owned()), ..Default::default() },
            ..Default::default()
        };
        api.patch(name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&ns))
            .await
            .unwrap_or_else(|e| panic!("create namespace {name}: {e}"));
        name.to_owned()
    }

    /// Installs (server-side apply) the pvtapi CRD generated from the Rust types and waits until
    /// it is Established.
    pub async fn install_crd(&self) {
        let api: Api<CustomResourceDefinition> = Api::all(self.admin());
        let crd = pvtapi_crds::PrivateApiConnectivityCheck::crd();
        let name = crd.metadata.name.clone().unwrap_or_default();
        api.patch(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&crd))
            .await
            .unwrap_or_else(|e| panic!("apply CRD {name}: {e}"));
        let established = await_condition(api, &name, conditions::is_crd_established());
        tokio::time::timeout(Duration::from_secs(30), established)
            .await
            .unwrap_or_else(|_| panic!("CRD {name} not Established after 30s"))
            .unwrap_or_else(|e| panic!("watch CRD {name}: {e}"));
    }

    /// Mints a restricted identity: ServiceAccount `name` in `namespace`, bound to a Role with
    /// `namespaced_rules` in that namespace and a ClusterRole with `cluster_rules`, and returns a
    /// client authenticating with a fresh token for it (TokenRequest, 10 minutes).
    pub async fn mint_identity(
        &self,
        namespace: &str,
        name: &str,
        namespaced_rules: Vec<PolicyRule>,
        cluster_rules: Vec<PolicyRule>,
    ) -> Client {
        self.bind_service_account(namespace, name, namespaced_rules, cluster_rules).await;
        let token = self.token(namespace, name).await;
        let mut config = self.config.clone();
        config.auth_info = kube::config::AuthInfo { token: Some(token.into()), ..Default::default() };
        Client::try_from(config).unwrap_or_else(|e| panic!("client for {namespace}/{name}: {e}"))
    }

    /// As [`ControlPlane::mint_identity`], as a kubeconfig file at `path` (for CLIs such as
    /// `kubectl pvtapi`): the admin kubeconfig's cluster with the ServiceAccount's token.
    pub async fn kubeconfig_for(
        &self,
        namespace: &str,
        name: &str,
        namespaced_rules: Vec<PolicyRule>,
        cluster_rules: Vec<PolicyRule>,
        path: &std::path::Path,
    ) {
        self.bind_service_account(namespace, name, namespaced_rules, cluster_rules).await;
        let token = self.token(namespace, name).await;
        let mut kc = kube::config::Kubeconfig::read_from(&self.kubeconfig)
            .unwrap_or_else(|e| panic!("read {}: {e}", self.kubeconfig.display()));
        for user in &mut kc.auth_infos {
            user.auth_info = Some(kube::config::AuthInfo { token: Some(token.clone().into()), ..Default::default() });
        }
        let yaml = serde_norway::to_string(&kc).unwrap_or_else(|e| panic!("kubeconfig for {namespace}/{name}: {e}"));
        std::fs::write(path, yaml).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// A 10-minute token of ServiceAccount `namespace/name`.
    async fn token(&self, namespace: &str, name: &str) -> String {
        let sas: Api<ServiceAccount> = Api::namespaced(self.admin(), namespace);
        let request = TokenRequest {
            spec: Some(TokenRequestSpec { expiration_seconds: Some(600), ..Default::default() }),
            ..Default::default()
        };
        sas.create_token_request(name, &PostParams::default(), &request)
            .await
            .unwrap_or_else(|e| panic!("TokenRequest for {namespace}/{name}: {e}"))
            .status
            .unwrap_or_else(|| panic!("TokenRequest for {namespace}/{name} returned no status"))
            .token
            .unwrap_or_else(|| panic!("TokenRequest for {namespace}/{name} returned no token"))
    }

    /// ServiceAccount `name` in `namespace`, bound to a Role `name` with `namespaced_rules` in
    /// that namespace and a ClusterRole `{namespace}-{name}` with `cluster_rules` — the identity
    /// a pod runs as when it names this ServiceAccount.
    pub async fn bind_service_account(
        &self,
        namespace: &str,
        name: &str,
        namespaced_rules: Vec<PolicyRule>,
        cluster_rules: Vec<PolicyRule>,
    ) {
        let admin = self.admin();
        let pp = PatchParams::apply(FIELD_MANAGER).force();
        let meta = |ns: Option<&str>| ObjectMeta {
            name: Some(name.to_owned()),
            namespace: ns.map(str::to_owned),
            ..Default::default()
        };
        let subject = Subject {
            kind: "ServiceAccount".into(),
            name: name.into(),
            namespace: Some(namespace.into()),
            ..Default::default()
        };

        let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), namespace);
        sas.patch(name, &pp, &Patch::Apply(&ServiceAccount { metadata: meta(Some(namespace)), ..Default::default() }))
            .await
            .unwrap_or_else(|e| panic!("create ServiceAccount {namespace}/{name}: {e}"));

        let roles: Api<Role> = Api::namespaced(admin.clone(), namespace);
        roles
            .patch(name, &pp, &Patch::Apply(&Role { metadata: meta(Some(namespace)), rules: Some(namespaced_rules) }))
            .await
            .unwrap_or_else(|e| panic!("create Role: {e}"));
        let bindings: Api<RoleBinding> = Api::namespaced(admin.clone(), namespace);
        let binding = RoleBinding {
            metadata: meta(Some(namespace)),
            role_ref: RoleRef {
                api_group: Some("rbac.authorization.k8s.io".into()),
                kind: "Role".into(),
                name: name.into(),
            },
            subjects: Some(vec![subject.clone()]),
        };
        bindings.patch(name, &pp, &Patch::Apply(&binding)).await.unwrap_or_else(|e| panic!("create RoleBinding: {e}"));

        let cluster_name = format!("{namespace}-{name}");
        let meta_cluster = ObjectMeta { name: Some(cluster_name.clone()), ..Default::default() };
        let croles: Api<ClusterRole> = Api::all(admin.clone());
        croles
            .patch(
                &cluster_name,
                &pp,
                &Patch::Apply(&ClusterRole {
                    metadata: meta_cluster.clone(),
                    rules: Some(cluster_rules),
                    ..Default::default()
                }),
            )
            .await
            .unwrap_or_else(|e| panic!("create ClusterRole: {e}"));
        let cbindings: Api<ClusterRoleBinding> = Api::all(admin.clone());
        let cbinding = ClusterRoleBinding {
            metadata: meta_cluster,
            role_ref: RoleRef {
                api_group: Some("rbac.authorization.k8s.io".into()),
                kind: "ClusterRole".into(),
                name: cluster_name.clone(),
            },
            subjects: Some(vec![subject]),
        };
        cbindings
            .patch(&cluster_name, &pp, &Patch::Apply(&cbinding))
            .await
            .unwrap_or_else(|e| panic!("create ClusterRoleBinding: {e}"));
    }
}

//! What the probe calls: hostnames, URL and headers for each access mode (design.md §2).
//!
//! Pure: given the check's identifiers, which names exist and how a client must address the API
//! through each of them. Getting this wrong is itself a top cause of 403s (a vpce hostname without
//! `Host`/`x-apigw-api-id`), so the rules live in one place and are table-tested.

use pvtapi_crds::{AccessMode, HttpMethod};
use serde::{Deserialize, Serialize};

/// Validated identifiers of one probe target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub api_id: String,
    pub region: String,
    pub stage: String,
    pub path: String,
    pub method: HttpMethod,
    pub vpce_id: String,
    /// The endpoint's DNS names from `DescribeVpcEndpoints` (regional first, then zonal), when known.
    pub vpce_dns_names: Vec<String>,
    /// Private custom domain for `customDomain` access.
    pub domain_name: Option<String>,
}

/// The role a hostname plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum HostRole {
    /// `{api}.execute-api.{region}.amazonaws.com`
    Api,
    /// `{api}-{vpce}.execute-api.{region}.amazonaws.com`
    EndpointAlias,
    /// The endpoint's regional DNS name.
    EndpointRegional,
    /// One of the endpoint's zonal DNS names.
    EndpointZonal,
    /// The private custom domain.
    CustomDomain,
}

/// A name the probe resolves, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    pub role: HostRole,
}

/// How one invoke is addressed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvokePlan {
    /// The mode actually used (never `auto`).
    pub access: AccessMode,
    /// The name connected to and sent as TLS SNI.
    pub connect_host: String,
    /// `https://{connect_host}/{stage}{path}` (port omitted when 443).
    pub url: String,
    /// The request path, `/{stage}{path}`.
    pub request_path: String,
    /// `Host` header value.
    pub host_header: String,
    /// `x-apigw-api-id` header, for `apiIdHeader`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_id_header: Option<String>,
}

impl Target {
    /// `{api}.execute-api.{region}.amazonaws.com`
    pub fn api_host(&self) -> String {
        format!("{}.execute-api.{}.amazonaws.com", self.api_id, self.region)
    }

    /// `{api}-{vpce}.execute-api.{region}.amazonaws.com`
    pub fn alias_host(&self) -> String {
        format!("{}-{}.execute-api.{}.amazonaws.com", self.api_id, self.vpce_id, self.region)
    }

    /// The endpoint's regional DNS name, when known: the first name without an AZ suffix.
    pub fn vpce_regional_host(&self) -> Option<&str> {
        self.vpce_dns_names
            .iter()
            .map(String::as_str)
            .find(|n| !is_zonal_vpce_name(n))
            .or(self.vpce_dns_names.first().map(String::as_str))
    }

    /// Every name worth resolving for this target, deduplicated, in a stable order.
    pub fn hosts(&self) -> Vec<Host> {
        let mut hosts = vec![
            Host { name: self.api_host(), role: HostRole::Api },
            Host { name: self.alias_host(), role: HostRole::EndpointAlias },
        ];
        for name in &self.vpce_dns_names {
            let role = if is_zonal_vpce_name(name) { HostRole::EndpointZonal } else { HostRole::EndpointRegional };
            if !hosts.iter().any(|h| h.name == *name) {
                hosts.push(Host { name: name.clone(), role });
            }
        }
        if let Some(domain) = &self.domain_name {
            hosts.push(Host { name: domain.clone(), role: HostRole::CustomDomain });
        }
        hosts
    }

    /// `/{stage}{path}`; for a custom domain the path is used as given (it includes the base path).
    pub fn request_path(&self, access: AccessMode) -> String {
        match access {
            AccessMode::CustomDomain => self.path.clone(),
            _ if self.path == "/" => format!("/{}/", self.stage),
            _ => format!("/{}{}", self.stage, self.path),
        }
    }

    /// How to invoke through `access`; `None` when the mode needs a name we do not have
    /// (a vpce DNS name, a domain) — the caller reports that instead of guessing.
    pub fn plan(&self, access: AccessMode, port: u16) -> Option<InvokePlan> {
        let api_host = self.api_host();
        let (connect_host, host_header, api_id_header) = match access {
            AccessMode::Auto => return None,
            AccessMode::PrivateDns => (api_host.clone(), api_host, None),
            AccessMode::EndpointAlias => {
                let alias = self.alias_host();
                (alias.clone(), alias, None)
            }
            AccessMode::EndpointHost => (self.vpce_regional_host()?.to_owned(), api_host, None),
            AccessMode::ApiIdHeader => {
                let vpce = self.vpce_regional_host()?.to_owned();
                (vpce.clone(), vpce, Some(self.api_id.clone()))
            }
            AccessMode::CustomDomain => {
                let domain = self.domain_name.clone()?;
                (domain.clone(), domain, None)
            }
        };
        let request_path = self.request_path(access);
        let authority = if port == 443 { connect_host.clone() } else { format!("{connect_host}:{port}") };
        let host_header = if port == 443 { host_header } else { format!("{host_header}:{port}") };
        Some(InvokePlan {
            access,
            url: format!("https://{authority}{request_path}"),
            connect_host,
            request_path,
            host_header,
            api_id_header,
        })
    }
}

/// `vpce-…-xyz-us-east-1a.execute-api…` — the first label ends with an AZ name.
pub fn is_zonal_vpce_name(name: &str) -> bool {
    let first = name.split('.').next().unwrap_or("");
    // AZ suffix: region + letter, e.g. "-us-east-1a"; the region is in the name's 3rd label.
    let region = name.split('.').nth(2).unwrap_or("");
    !region.is_empty()
        && first
            .strip_suffix(|c: char| c.is_ascii_lowercase())
            .is_some_and(|rest| rest.ends_with(&format!("-{region}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            api_id: "abcde12345".into(),
            region: "us-east-1".into(),
            stage: "prod".into(),
            path: "/health".into(),
            method: HttpMethod::Get,
            vpce_id: "vpce-0123456789abcdef0".into(),
            vpce_dns_names: vec![
                "vpce-0123456789abcdef0-abcdefgh.execute-api.us-east-1.vpce.amazonaws.com".into(),
                "vpce-0123456789abcdef0-abcdefgh-us-east-1a.execute-api.us-east-1.vpce.amazonaws.com".into(),
            ],
            domain_name: Some("api.internal.example.com".into()),
        }
    }

    #[test]
    fn plans_per_access_mode() {
        let t = target();
        let vpce = "vpce-0123456789abcdef0-abcdefgh.execute-api.us-east-1.vpce.amazonaws.com";
        let api = "abcde12345.execute-api.us-east-1.amazonaws.com";
        let alias = "abcde12345-vpce-0123456789abcdef0.execute-api.us-east-1.amazonaws.com";
        // (mode, connect host, Host header, x-apigw-api-id, url)
        let cases = [
            (AccessMode::PrivateDns, api, api, None, format!("https://{api}/prod/health")),
            (AccessMode::EndpointAlias, alias, alias, None, format!("https://{alias}/prod/health")),
            (AccessMode::EndpointHost, vpce, api, None, format!("https://{vpce}/prod/health")),
            (AccessMode::ApiIdHeader, vpce, vpce, Some("abcde12345"), format!("https://{vpce}/prod/health")),
            (
                AccessMode::CustomDomain,
                "api.internal.example.com",
                "api.internal.example.com",
                None,
                "https://api.internal.example.com/health".to_owned(),
            ),
        ];
        for (mode, connect, host, id, url) in cases {
            let plan = t.plan(mode, 443).unwrap();
            assert_eq!(plan.connect_host, connect, "{mode:?}");
            assert_eq!(plan.host_header, host, "{mode:?}");
            assert_eq!(plan.api_id_header.as_deref(), id, "{mode:?}");
            assert_eq!(plan.url, url, "{mode:?}");
        }
        assert_eq!(t.plan(AccessMode::Auto, 443), None);
    }

    #[test]
    fn modes_needing_unknown_names_have_no_plan() {
        let t = Target { vpce_dns_names: vec![], domain_name: None, ..target() };
        assert!(t.plan(AccessMode::EndpointHost, 443).is_none());
        assert!(t.plan(AccessMode::ApiIdHeader, 443).is_none());
        assert!(t.plan(AccessMode::CustomDomain, 443).is_none());
        assert!(t.plan(AccessMode::PrivateDns, 443).is_some());
    }

    #[test]
    fn root_path_and_port_override() {
        let t = Target { path: "/".into(), ..target() };
        let plan = t.plan(AccessMode::PrivateDns, 8443).unwrap();
        assert_eq!(plan.url, "https://abcde12345.execute-api.us-east-1.amazonaws.com:8443/prod/");
        assert_eq!(plan.host_header, "abcde12345.execute-api.us-east-1.amazonaws.com:8443");
    }

    #[test]
    fn hosts_roles() {
        let roles: Vec<HostRole> = target().hosts().iter().map(|h| h.role).collect();
        assert_eq!(
            roles,
            vec![
                HostRole::Api,
                HostRole::EndpointAlias,
                HostRole::EndpointRegional,
                HostRole::EndpointZonal,
                HostRole::CustomDomain
            ]
        );
        assert!(!is_zonal_vpce_name("vpce-0123-abcdefgh.execute-api.us-east-1.vpce.amazonaws.com"));
        assert!(is_zonal_vpce_name("vpce-0123-abcdefgh-us-east-1a.execute-api.us-east-1.vpce.amazonaws.com"));
    }
}

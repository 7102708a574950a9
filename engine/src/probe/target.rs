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
    /// The URL the workload really calls, when checked as given instead of built from `access`.
    pub invoke_url: Option<InvokeUrl>,
}

/// A URL exactly as a workload calls it (`--invoke-url`), with the two headers that decide which
/// API a vpce hostname reaches. It is probed as given, so a wrong URL (the article's "check the
/// invoke URL" step) shows up as the failure it really causes, and the diagnosis names the fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvokeUrl {
    /// Host name (or IP literal) of the URL.
    pub host: String,
    /// Port given in the URL.
    pub port: Option<u16>,
    /// Path and query, starting with `/`.
    pub path: String,
    /// `Host` header sent instead of the URL's host, if the workload sets one.
    pub host_header: Option<String>,
    /// `x-apigw-api-id` header, if the workload sets one.
    pub api_id_header: Option<String>,
}

/// Longest invoke URL accepted.
const MAX_URL_LEN: usize = 2048;

impl InvokeUrl {
    /// Parses an `https://` URL without credentials or fragment; the error says what is wrong.
    pub fn parse(url: &str) -> Result<Self, String> {
        // Errors never repeat the URL: it may carry a password (even a malformed one).
        if url.len() > MAX_URL_LEN {
            return Err(format!("it is longer than {MAX_URL_LEN} characters"));
        }
        let after_scheme = url.split_once("://").or_else(|| url.split_once(":/")).map_or(url, |(_, rest)| rest);
        if after_scheme.split('/').next().is_some_and(|authority| authority.contains('@')) {
            return Err("it contains credentials (user:password@); pass it without them".into());
        }
        // Only a well-formed scheme is named in the error: anything else before `://` may be a
        // password (`user:secret@host://…`).
        let is_scheme = |s: &str| {
            s.len() <= 16
                && s.starts_with(|c: char| c.is_ascii_alphabetic())
                && s.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        };
        let Some((scheme, _)) = url.split_once("://").filter(|(scheme, _)| is_scheme(scheme)) else {
            return Err("it is not an absolute URL (expected https://HOST/STAGE/PATH)".into());
        };
        if !scheme.eq_ignore_ascii_case("https") {
            return Err(format!("it uses {scheme}://; private APIs are only served over https://"));
        }
        if url.contains('#') {
            return Err("it has a fragment (#…), which is never sent; remove it".into());
        }
        let uri: hyper::Uri = url.parse().map_err(|e| format!("it is not a valid URL ({e})"))?;
        let authority = uri.authority().ok_or("it has no host")?;
        // `http` accepts more than RFC 3986 here (`[f:]x`, `[::1]junk`, zone ids): a bracketed
        // host must be an IPv6 address, and only `:PORT` may follow the host, so the host
        // probed is the one the workload's client would use.
        let raw_host = authority.host();
        let host = match raw_host.strip_prefix('[') {
            Some(bracketed) => {
                let inner = bracketed.strip_suffix(']').unwrap_or(bracketed);
                if inner.parse::<std::net::Ipv6Addr>().is_err() {
                    return Err("it is not a valid URL (bad IPv6 address in brackets)".into());
                }
                inner.to_ascii_lowercase()
            }
            None => raw_host.to_ascii_lowercase(),
        };
        if host.is_empty() {
            return Err("it has an empty host".into());
        }
        let after_host = authority.as_str().strip_prefix(raw_host).ok_or("it is not a valid URL (bad host)")?;
        let port = match after_host {
            "" => None,
            _ => Some(
                after_host
                    .strip_prefix(':')
                    .and_then(|p| p.parse::<u16>().ok())
                    .filter(|p| *p != 0)
                    .ok_or("it is not a valid URL (bad port)")?,
            ),
        };
        // `https://host?x=1` has an empty path: the request target is `/?x=1`.
        let path_and_query = uri.path_and_query().map_or("", |p| p.as_str());
        let path =
            if path_and_query.starts_with('/') { path_and_query.to_owned() } else { format!("/{path_and_query}") };
        Ok(Self { host, port, path, host_header: None, api_id_header: None })
    }

    /// Adds a `Name: value` header; only `Host` and `x-apigw-api-id` change where API Gateway
    /// routes the call, so only those are accepted.
    pub fn with_header(mut self, header: &str) -> Result<Self, String> {
        let Some((name, value)) = header.split_once(':') else {
            return Err("a header must be of the form 'Name: value'".into());
        };
        let name = name.trim().to_ascii_lowercase();
        if name != "host" && name != "x-apigw-api-id" {
            // The value is not echoed: it may be a credential (Authorization, x-api-key).
            return Err(format!(
                "header {name:?} is not supported: only Host and x-apigw-api-id decide which API is reached"
            ));
        }
        let value = value.trim();
        if value.is_empty() || value.len() > 253 || !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!("header {header:?} has an empty or invalid value"));
        }
        if name == "host" {
            self.host_header = Some(value.to_ascii_lowercase());
        } else {
            self.api_id_header = Some(value.to_owned());
        }
        Ok(self)
    }

    /// Whether the host is one of an interface endpoint's own DNS names.
    pub fn is_vpce_host(&self) -> bool {
        is_vpce_host(&self.host)
    }
}

/// `{api}.execute-api.{region}.amazonaws.com`
pub fn api_host(api_id: &str, region: &str) -> String {
    format!("{api_id}.execute-api.{region}.amazonaws.com")
}

/// `{api}-{vpce}.execute-api.{region}.amazonaws.com`
pub fn alias_host(api_id: &str, vpce_id: &str, region: &str) -> String {
    format!("{api_id}-{vpce_id}.execute-api.{region}.amazonaws.com")
}

/// `/{stage}{path}`, and `/{stage}/` for the root path.
pub fn stage_path(stage: &str, path: &str) -> String {
    if path == "/" { format!("/{stage}/") } else { format!("/{stage}{path}") }
}

/// Whether `host` is one of an interface endpoint's own DNS names (`….vpce.amazonaws.com`).
pub fn is_vpce_host(host: &str) -> bool {
    host.ends_with(".vpce.amazonaws.com")
}

/// The role a hostname plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// The host of a URL checked as given that is none of the above (an IP, an own CNAME).
    InvokeUrl,
}

/// A name the probe resolves, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    pub role: HostRole,
}

/// How one invoke is addressed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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
        api_host(&self.api_id, &self.region)
    }

    /// `{api}-{vpce}.execute-api.{region}.amazonaws.com`
    pub fn alias_host(&self) -> String {
        alias_host(&self.api_id, &self.vpce_id, &self.region)
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
        if let Some(url) = &self.invoke_url
            && !hosts.iter().any(|h| h.name == url.host)
        {
            let role = if url.is_vpce_host() {
                if is_zonal_vpce_name(&url.host) { HostRole::EndpointZonal } else { HostRole::EndpointRegional }
            } else {
                HostRole::InvokeUrl
            };
            hosts.push(Host { name: url.host.clone(), role });
        }
        hosts
    }

    /// `/{stage}{path}`; for a custom domain the path is used as given (it includes the base path).
    pub fn request_path(&self, access: AccessMode) -> String {
        match access {
            AccessMode::CustomDomain => self.path.clone(),
            _ => stage_path(&self.stage, &self.path),
        }
    }

    /// The plan for a URL checked as given, and the access mode it amounts to.
    pub fn plan_for_url(&self, url: &InvokeUrl, default_port: u16) -> InvokePlan {
        let api_host = self.api_host();
        let port = url.port.unwrap_or(default_port);
        let ipv6 = url.host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_ipv6());
        let host = if ipv6 { format!("[{}]", url.host) } else { url.host.clone() };
        let authority = if port == 443 { host } else { format!("{host}:{port}") };
        let host_header = url.host_header.clone().unwrap_or_else(|| authority.clone());
        let header_host = host_header.split(':').next().unwrap_or_default();
        let access = if url.api_id_header.is_some() {
            AccessMode::ApiIdHeader
        } else if header_host == api_host && url.host != api_host {
            AccessMode::EndpointHost
        } else if url.host == api_host {
            AccessMode::PrivateDns
        } else if url.host == self.alias_host() {
            AccessMode::EndpointAlias
        } else if url.is_vpce_host() {
            // A vpce name without Host/x-apigw-api-id: what the workload does, and why it fails.
            AccessMode::EndpointHost
        } else {
            AccessMode::CustomDomain
        };
        InvokePlan {
            access,
            connect_host: url.host.clone(),
            url: format!("https://{authority}{}", url.path),
            request_path: url.path.clone(),
            host_header,
            api_id_header: url.api_id_header.clone(),
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
            invoke_url: None,
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

    #[test]
    fn urls_as_given_amount_to_an_access_mode() {
        let t = target();
        let vpce = "vpce-0123456789abcdef0-abcdefgh.execute-api.us-east-1.vpce.amazonaws.com";
        let api = "abcde12345.execute-api.us-east-1.amazonaws.com";
        let alias = "abcde12345-vpce-0123456789abcdef0.execute-api.us-east-1.amazonaws.com";
        // (url, headers, mode, Host header sent, x-apigw-api-id sent)
        type Case<'a> = (String, &'a [&'a str], AccessMode, &'a str, Option<&'a str>);
        let cases: [Case; 7] = [
            (format!("https://{vpce}/prod/health"), &[], AccessMode::EndpointHost, vpce, None),
            (format!("https://{vpce}/prod/health"), &[&format!("Host: {api}")], AccessMode::EndpointHost, api, None),
            (
                format!("https://{vpce}/prod/health"),
                &["x-apigw-api-id: abcde12345"],
                AccessMode::ApiIdHeader,
                vpce,
                Some("abcde12345"),
            ),
            (format!("https://{api}/prod/health"), &[], AccessMode::PrivateDns, api, None),
            (format!("https://{alias}/prod/health?x=1"), &[], AccessMode::EndpointAlias, alias, None),
            ("https://api.example.internal/v1".into(), &[], AccessMode::CustomDomain, "api.example.internal", None),
            ("https://10.0.1.10/prod/health".into(), &[], AccessMode::CustomDomain, "10.0.1.10", None),
        ];
        for (url, headers, mode, host, id) in cases {
            let mut parsed = InvokeUrl::parse(&url).unwrap();
            for h in headers {
                parsed = parsed.with_header(h).unwrap();
            }
            let t = Target { invoke_url: Some(parsed.clone()), ..t.clone() };
            let plan = t.plan_for_url(&parsed, 443);
            assert_eq!(
                (plan.access, plan.host_header.as_str(), plan.api_id_header.as_deref()),
                (mode, host, id),
                "{url}"
            );
            assert_eq!(plan.url, url);
            assert!(t.hosts().iter().any(|h| h.name == parsed.host), "{url}: its host is resolved");
        }
        let ip = InvokeUrl::parse("https://10.0.1.10/x").unwrap();
        let t = Target { invoke_url: Some(ip), ..target() };
        assert_eq!(t.hosts().last().map(|h| h.role), Some(HostRole::InvokeUrl));
        let port = InvokeUrl::parse(&format!("https://{vpce}:8443/prod/")).unwrap();
        assert_eq!(t.plan_for_url(&port, 443).host_header, format!("{vpce}:8443"));
        let v6 = InvokeUrl::parse("https://[fd00::1]/prod/").unwrap();
        assert_eq!(v6.host, "fd00::1");
        assert_eq!(t.plan_for_url(&v6, 443).url, "https://[fd00::1]/prod/");
        assert_eq!(t.plan_for_url(&v6, 443).host_header, "[fd00::1]");
        // Found by fuzzing: a query without a path kept `?x=1` as the request path.
        let query_only = InvokeUrl::parse("https://api.example.internal?x=1").unwrap();
        assert_eq!(query_only.path, "/?x=1");
        assert_eq!(t.plan_for_url(&query_only, 443).url, "https://api.example.internal/?x=1");
        let v6_port = InvokeUrl::parse("https://[FD00::1]:8443/prod/").unwrap();
        assert_eq!((v6_port.host.as_str(), v6_port.port), ("fd00::1", Some(8443)));
        assert_eq!(t.plan_for_url(&v6_port, 443).url, "https://[fd00::1]:8443/prod/");
    }

    #[test]
    fn bad_invoke_urls_and_headers_are_named() {
        let cases = [
            ("http://abcde12345.execute-api.us-east-1.amazonaws.com/prod", "https://"),
            ("abcde12345.execute-api.us-east-1.amazonaws.com/prod", "absolute"),
            ("https://user:secret@host.example/prod", "credentials"),
            ("user:secret@host.example/prod", "credentials"),
            ("https:/user:secret@host.example/prod", "credentials"),
            ("https://user:se?cr#et@host.example/prod", "credentials"),
            ("https://host.example/prod#frag", "fragment"),
            ("https://", "not a valid URL"),
            ("https://exa mple.com/secret", "not a valid URL"),
            ("https://host:99999/secret", "not a valid URL"),
            // Found by fuzzing (fuzz/ invoke_url): `http` accepted these authorities, and the
            // probe went on with host `f:` (text after `]` dropped) or an IPv6 zone id.
            ("https://[f:]d/secret", "bad IPv6 address"),
            // … and an error that named everything before `://` as the scheme.
            ("user:secret@host.example://x/prod", "absolute"),
            ("ftp://host.example/secret", "it uses ftp://"),
            ("https://[::1]x/secret", "not a valid URL"),
            ("https://[fe80::1%25eth0]/secret", "not a valid URL"),
            ("https://[v1.x]/secret", "not a valid URL"),
        ];
        for (url, want) in cases {
            let err = InvokeUrl::parse(url).unwrap_err();
            assert!(err.contains(want), "{url}: {err}");
            assert!(!err.contains("secret"), "{err}");
        }
        assert!(InvokeUrl::parse(&format!("https://h.example/{}", "a".repeat(3000))).unwrap_err().contains("longer"));
        let u = InvokeUrl::parse("https://h.example/").unwrap();
        for (h, want) in [
            ("Host abcde", "Name: value"),
            ("Authorization: Bearer secret", "not supported"),
            ("Host:", "empty or invalid"),
            ("Host: a b", "empty or invalid"),
        ] {
            let err = u.clone().with_header(h).unwrap_err();
            assert!(err.contains(want) && !err.contains("secret"), "{h}: {err}");
        }
    }
}

//! Would an HTTP(S) proxy from the environment carry execute-api traffic out of the VPC?
//!
//! Workloads often inherit `HTTPS_PROXY` from a platform default. A proxy outside the VPC turns a
//! private-API call into a public one, and API Gateway answers 403 — with every VPC-side setting
//! correct. The probe itself never uses a proxy (it must see the direct path); it reports what the
//! workload's HTTP client would do with the same environment, following curl's `NO_PROXY` rules.

use serde::{Deserialize, Serialize};

/// The proxy variables, as read from the environment (both casings; lowercase wins, as in curl).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxyEnv {
    pub https_proxy: Option<String>,
    pub no_proxy: Option<String>,
}

impl ProxyEnv {
    /// Reads `https_proxy`/`HTTPS_PROXY` (falling back to `all_proxy`/`ALL_PROXY`) and `no_proxy`/`NO_PROXY`.
    pub fn from_env() -> ProxyEnv {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Same as [`ProxyEnv::from_env`] with an injectable lookup (for tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> ProxyEnv {
        let first = |keys: &[&str]| keys.iter().find_map(|k| get(k).filter(|v| !v.trim().is_empty()));
        ProxyEnv {
            https_proxy: first(&["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"]),
            no_proxy: first(&["no_proxy", "NO_PROXY"]),
        }
    }
}

/// What the environment would do with one hostname.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProxyVerdict {
    pub host: String,
    /// The proxy URL, credentials removed, when the host would be proxied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
}

/// Decides for each host whether `env` sends it through the proxy.
pub fn evaluate(env: &ProxyEnv, hosts: &[String]) -> Vec<ProxyVerdict> {
    hosts
        .iter()
        .map(|host| {
            let via = env
                .https_proxy
                .as_deref()
                .filter(|_| !env.no_proxy.as_deref().is_some_and(|np| no_proxy_matches(np, host)))
                .map(redact_credentials);
            ProxyVerdict { host: host.clone(), via }
        })
        .collect()
}

/// curl's rules: `*` matches all; each comma/space separated entry matches the host itself or any
/// subdomain; a leading `.` or `*.` is the same as none; matching is case-insensitive; a `:port`
/// suffix on an entry is ignored.
pub fn no_proxy_matches(no_proxy: &str, host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    no_proxy.split([',', ' ']).map(str::trim).filter(|e| !e.is_empty()).any(|entry| {
        if entry == "*" {
            return true;
        }
        let entry = entry.trim_start_matches("*.").trim_start_matches('.');
        let entry = match entry.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !h.contains(':') => h,
            _ => entry,
        };
        let entry = entry.trim_end_matches('.').to_ascii_lowercase();
        !entry.is_empty() && (host == entry || host.ends_with(&format!(".{entry}")))
    })
}

/// `http://user:secret@proxy:3128` → `http://proxy:3128`: no credentials in reports.
pub fn redact_credentials(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let rest = match rest.split_once('@') {
        Some((userinfo, host)) if !userinfo.contains('/') => host,
        _ => rest,
    };
    if scheme.is_empty() { rest.to_owned() } else { format!("{scheme}://{rest}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    const API: &str = "abcde12345.execute-api.us-east-1.amazonaws.com";

    #[test]
    fn no_proxy_rules() {
        let cases = [
            ("*", true),
            (".execute-api.us-east-1.amazonaws.com", true),
            ("execute-api.us-east-1.amazonaws.com", true),
            ("*.amazonaws.com", true),
            ("amazonaws.com:443", true),
            ("AMAZONAWS.COM", true),
            ("localhost, 169.254.169.254", false),
            ("zonaws.com", false),
            ("", false),
            (API, true),
        ];
        for (np, want) in cases {
            assert_eq!(no_proxy_matches(np, API), want, "{np:?}");
        }
    }

    #[test]
    fn verdicts_and_redaction() {
        let env = ProxyEnv::from_lookup(|k| match k {
            "HTTPS_PROXY" => Some("http://alice:s3cret@proxy.corp:3128".into()),
            "NO_PROXY" => Some(".vpce.amazonaws.com".into()),
            _ => None,
        });
        let vpce = "vpce-0123-abcd.execute-api.us-east-1.vpce.amazonaws.com".to_owned();
        let v = evaluate(&env, &[API.to_owned(), vpce]);
        assert_eq!(v[0].via.as_deref(), Some("http://proxy.corp:3128"));
        assert_eq!(v[1].via, None);
        assert!(!format!("{v:?}").contains("s3cret"));
    }

    #[test]
    fn lowercase_wins_and_empty_is_unset() {
        let env = ProxyEnv::from_lookup(|k| match k {
            "https_proxy" => Some("http://lower:1".into()),
            "HTTPS_PROXY" => Some("http://upper:2".into()),
            "no_proxy" => Some("  ".into()),
            _ => None,
        });
        assert_eq!(env.https_proxy.as_deref(), Some("http://lower:1"));
        assert_eq!(env.no_proxy, None);
        assert_eq!(evaluate(&ProxyEnv::default(), &[API.to_owned()])[0].via, None);
    }
}

//! Command-line flags shared by `pvtapi-operator probe` and `kubectl pvtapi check --local`:
//! one definition, so both tools validate the same way and name the same flags in errors.

use std::io::Read as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use pvtapi_crds::{AccessMode, HttpMethod, validate};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::dns::Nameserver;
use crate::probe::proxy::ProxyEnv;
use crate::probe::target::InvokeUrl;
use crate::probe::{ProbeInput, Target};

/// A flag or file that cannot be used, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CliError(pub String);

/// Largest CA bundle accepted.
const MAX_CA_BUNDLE_BYTES: u64 = 1024 * 1024;

/// The check's target, shared by `pvtapi-operator probe` and `kubectl pvtapi check`; each command
/// carries its own help epilogue (exit status, examples).
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// REST API id (10 lowercase letters/digits).
    #[arg(long, value_parser = validate::api_id)]
    pub api_id: String,
    /// AWS region of the API, e.g. us-east-1.
    #[arg(long, value_parser = validate::region)]
    pub region: String,
    /// Stage to call. (`check --local` may omit it when AWS shows the API has exactly one.)
    #[arg(long, value_parser = validate::stage)]
    pub stage: Option<String>,
    /// Resource path under the stage [default: /, or taken from --invoke-url].
    #[arg(long, value_parser = validate::path)]
    pub path: Option<String>,
    /// HTTP method.
    #[arg(long, value_enum, default_value_t = MethodArg::Get)]
    pub method: MethodArg,
    /// A status that counts as healthy (repeat for several).
    #[arg(long = "expected-status", default_value = "200", value_parser = clap::value_parser!(u16).range(100..=599))]
    pub expected_statuses: Vec<u16>,
    /// Interface VPC endpoint id (vpce-…).
    #[arg(long, value_parser = validate::vpc_endpoint_id)]
    pub vpce: String,
    /// One of the endpoint's DNS names (regional or zonal); repeat for several. Needed for
    /// endpointHost/apiIdHeader access.
    #[arg(long = "vpce-dns", value_parser = validate::hostname)]
    pub vpce_dns: Vec<String>,
    /// How to address the API.
    #[arg(long, value_enum, default_value_t = AccessArg::Auto)]
    pub access: AccessArg,
    /// Private custom domain name, for --access custom-domain.
    #[arg(long, value_parser = validate::hostname)]
    pub domain_name: Option<String>,
    /// Call exactly this URL, as the workload does, instead of the one --access builds
    /// (e.g. https://vpce-….execute-api.us-east-1.vpce.amazonaws.com/prod/health). A wrong URL
    /// is then diagnosed as the failure it causes.
    #[arg(long, value_name = "URL", conflicts_with_all = ["access", "domain_name"])]
    pub invoke_url: Option<String>,
    /// A header the workload sends with --invoke-url: 'Host: NAME' or 'x-apigw-api-id: ID'
    /// (repeat for both).
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE", requires = "invoke_url")]
    pub headers: Vec<String>,
    /// Resolve with this DNS server (IP[:PORT]) instead of /etc/resolv.conf.
    #[arg(long)]
    pub nameserver: Option<Nameserver>,
    /// PEM file with extra CA certificates to trust (besides the Mozilla roots).
    #[arg(long)]
    pub ca_bundle: Option<PathBuf>,
    /// TCP port (tests only; API Gateway listens on 443).
    #[arg(long, default_value_t = 443, value_parser = clap::value_parser!(u16).range(1..))]
    pub port: u16,
    /// Seconds allowed for each step (DNS, connect, TLS, HTTP).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=60))]
    pub timeout: u64,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
/// `--method` values (clap spelling of [`HttpMethod`]).
/// The CRD's spelling (`GET`, …) is accepted too: users copy from their YAML.
pub enum MethodArg {
    #[value(alias = "GET")]
    Get,
    #[value(alias = "HEAD")]
    Head,
    #[value(alias = "POST")]
    Post,
    #[value(alias = "PUT")]
    Put,
    #[value(alias = "PATCH")]
    Patch,
    #[value(alias = "DELETE")]
    Delete,
    #[value(alias = "OPTIONS")]
    Options,
}

impl From<MethodArg> for HttpMethod {
    fn from(m: MethodArg) -> Self {
        match m {
            MethodArg::Get => HttpMethod::Get,
            MethodArg::Head => HttpMethod::Head,
            MethodArg::Post => HttpMethod::Post,
            MethodArg::Put => HttpMethod::Put,
            MethodArg::Patch => HttpMethod::Patch,
            MethodArg::Delete => HttpMethod::Delete,
            MethodArg::Options => HttpMethod::Options,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
/// `--access` values (clap spelling of [`AccessMode`]).
/// The CRD's spelling (`privateDns`, …) is accepted too: users copy from their YAML.
pub enum AccessArg {
    Auto,
    #[value(alias = "privateDns")]
    PrivateDns,
    #[value(alias = "endpointAlias")]
    EndpointAlias,
    #[value(alias = "endpointHost")]
    EndpointHost,
    #[value(alias = "apiIdHeader")]
    ApiIdHeader,
    #[value(alias = "customDomain")]
    CustomDomain,
}

impl From<AccessArg> for AccessMode {
    fn from(a: AccessArg) -> Self {
        match a {
            AccessArg::Auto => AccessMode::Auto,
            AccessArg::PrivateDns => AccessMode::PrivateDns,
            AccessArg::EndpointAlias => AccessMode::EndpointAlias,
            AccessArg::EndpointHost => AccessMode::EndpointHost,
            AccessArg::ApiIdHeader => AccessMode::ApiIdHeader,
            AccessArg::CustomDomain => AccessMode::CustomDomain,
        }
    }
}

/// Reads a PEM bundle (size-capped) and returns its certificates; errors name the file.
pub fn read_ca_bundle(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, CliError> {
    let err = |what: String| CliError(what);
    let file = std::fs::File::open(path).map_err(|e| err(format!("cannot open CA bundle {}: {e}", path.display())))?;
    let mut pem = Vec::new();
    file.take(MAX_CA_BUNDLE_BYTES + 1)
        .read_to_end(&mut pem)
        .map_err(|e| err(format!("cannot read CA bundle {}: {e}", path.display())))?;
    if pem.len() as u64 > MAX_CA_BUNDLE_BYTES {
        return Err(err(format!("CA bundle {} is larger than {} bytes", path.display(), MAX_CA_BUNDLE_BYTES)));
    }
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| err(format!("CA bundle {} is not valid PEM: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(err(format!("CA bundle {} contains no CERTIFICATE block", path.display())));
    }
    Ok(certs)
}

impl TargetArgs {
    /// The checks [`TargetArgs::into_input`] makes that need no file, run before slow work; and
    /// with an execute-api or vpce `--invoke-url`, the stage and path come from that URL (the
    /// policy ARN and method facts must describe what is really called).
    pub fn normalize(&mut self) -> Result<(), CliError> {
        if AccessMode::from(self.access) == AccessMode::CustomDomain && self.domain_name.is_none() {
            return Err(CliError("--access custom-domain needs --domain-name".into()));
        }
        let Some(url) = self.invoke_url()? else { return Ok(()) };
        if !(url.host.ends_with(".amazonaws.com") && url.host.contains(".execute-api.")) {
            return Ok(()); // a custom domain or an IP: its path is a base-path mapping, not /{stage}/…
        }
        let path = url.path.split('?').next().unwrap_or("/");
        let mut segments = path.trim_start_matches('/').splitn(2, '/');
        let url_stage = segments.next().filter(|s| !s.is_empty());
        let url_path = format!("/{}", segments.next().unwrap_or_default());
        let Some(url_stage) = url_stage else {
            return Err(CliError("--invoke-url has no stage: expected https://HOST/STAGE/PATH".into()));
        };
        let url_stage = validate::stage(url_stage).map_err(|e| CliError(format!("--invoke-url: {e}")))?;
        let url_path = validate::path(&url_path).map_err(|e| CliError(format!("--invoke-url: {e}")))?;
        match &self.stage {
            Some(s) if *s != url_stage => {
                return Err(CliError(format!("--stage {s} differs from the stage in --invoke-url ({url_stage})")));
            }
            _ => self.stage = Some(url_stage),
        }
        match &self.path {
            Some(p) if *p != url_path => {
                return Err(CliError(format!("--path {p} differs from the path in --invoke-url ({url_path})")));
            }
            _ => self.path = Some(url_path),
        }
        Ok(())
    }

    fn invoke_url(&self) -> Result<Option<InvokeUrl>, CliError> {
        Ok(match &self.invoke_url {
            Some(url) => {
                let mut parsed = InvokeUrl::parse(url).map_err(|e| CliError(format!("invalid --invoke-url: {e}")))?;
                for h in &self.headers {
                    parsed = parsed.with_header(h).map_err(|e| CliError(format!("invalid --header: {e}")))?;
                }
                Some(parsed)
            }
            None => None,
        })
    }

    /// The probe input these flags describe; errors name the flag or file at fault.
    pub fn into_input(mut self) -> Result<ProbeInput, CliError> {
        self.normalize()?;
        let access: AccessMode = self.access.into();
        let invoke_url = self.invoke_url()?;
        let extra_roots = match &self.ca_bundle {
            Some(path) => read_ca_bundle(path)?,
            None => Vec::new(),
        };
        let stage =
            self.stage.ok_or_else(|| CliError("--stage is required: the stage to call, e.g. --stage prod".into()))?;
        let target = Target {
            api_id: self.api_id,
            region: self.region,
            stage,
            path: self.path.unwrap_or_else(|| "/".to_owned()),
            method: self.method.into(),
            vpce_id: self.vpce,
            vpce_dns_names: self.vpce_dns,
            domain_name: self.domain_name,
            invoke_url,
        };
        let input = ProbeInput {
            target,
            access,
            expected_statuses: self.expected_statuses,
            timeout: Duration::from_secs(self.timeout),
            nameserver: self.nameserver,
            extra_roots,
            port: self.port,
            proxy_env: ProxyEnv::from_env(),
        };
        Ok(input)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        target: TargetArgs,
    }

    fn parse(extra: &[&str]) -> Result<TargetArgs, clap::Error> {
        let base = ["t", "--api-id", "abcde12345", "--region", "us-east-1", "--vpce", "vpce-0123456789abcdef0"];
        Cli::try_parse_from(base.iter().chain(extra)).map(|c| c.target)
    }

    #[test]
    fn the_crds_enum_spellings_are_accepted_as_well_as_the_kebab_forms() {
        for (kebab, crd, mode) in [
            ("private-dns", "privateDns", AccessMode::PrivateDns),
            ("endpoint-alias", "endpointAlias", AccessMode::EndpointAlias),
            ("endpoint-host", "endpointHost", AccessMode::EndpointHost),
            ("api-id-header", "apiIdHeader", AccessMode::ApiIdHeader),
            ("custom-domain", "customDomain", AccessMode::CustomDomain),
        ] {
            for spelling in [kebab, crd] {
                let t = parse(&["--access", spelling]).unwrap_or_else(|e| panic!("--access {spelling}: {e}"));
                assert_eq!(AccessMode::from(t.access), mode, "--access {spelling}");
            }
        }
        for (lower, upper) in [("get", "GET"), ("post", "POST"), ("options", "OPTIONS")] {
            let a = parse(&["--method", lower]).map(|t| HttpMethod::from(t.method));
            let b = parse(&["--method", upper]).map(|t| HttpMethod::from(t.method));
            assert_eq!(a.ok(), b.ok(), "--method {lower} / {upper}");
        }
        let err = parse(&["--access", "privatedns"]).expect_err("no such spelling");
        assert!(err.to_string().contains("private-dns"), "the error lists the values: {err}");
    }
}

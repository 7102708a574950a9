//! `pvtapi-operator probe`: one probe run from this network namespace, printed as JSON.
//!
//! This is what each probe pod executes. It exits 0 whatever the target's health — an unhealthy
//! API is a *result* — and non-zero only when the probe itself cannot run (bad arguments, an
//! unreadable CA bundle), with a message naming the problem.

use std::io::Read as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use pvtapi_crds::{AccessMode, HttpMethod, validate};
use pvtapi_engine::dns::Nameserver;
use pvtapi_engine::probe::proxy::ProxyEnv;
use pvtapi_engine::probe::report::REPORT_BUDGET_BYTES;
use pvtapi_engine::probe::{ProbeInput, Target};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// Largest CA bundle accepted.
const MAX_CA_BUNDLE_BYTES: u64 = 1024 * 1024;

#[derive(Debug, Args)]
#[command(
    after_help = "The report is JSON on stdout (format: docs/probe-report.md). Exit status: 0 when the probe ran, \
    whatever the API answered; 2 when it could not run (bad flags, unreadable CA bundle).\n\n\
    Example:\n  pvtapi-operator probe --api-id abcde12345 --region us-east-1 --stage prod --path /health \\\n      \
    --vpce vpce-0123456789abcdef0 --vpce-dns vpce-0123456789abcdef0-abcdefgh.execute-api.us-east-1.vpce.amazonaws.com"
)]
pub struct ProbeArgs {
    /// REST API id (10 lowercase letters/digits).
    #[arg(long, value_parser = validate::api_id)]
    api_id: String,
    /// AWS region of the API, e.g. us-east-1.
    #[arg(long, value_parser = validate::region)]
    region: String,
    /// Stage to call.
    #[arg(long, value_parser = validate::stage)]
    stage: String,
    /// Resource path under the stage.
    #[arg(long, default_value = "/", value_parser = validate::path)]
    path: String,
    /// HTTP method.
    #[arg(long, value_enum, default_value_t = MethodArg::Get)]
    method: MethodArg,
    /// A status that counts as healthy (repeat for several).
    #[arg(long = "expected-status", default_value = "200", value_parser = clap::value_parser!(u16).range(100..=599))]
    expected_statuses: Vec<u16>,
    /// Interface VPC endpoint id (vpce-…).
    #[arg(long, value_parser = validate::vpc_endpoint_id)]
    vpce: String,
    /// One of the endpoint's DNS names (regional or zonal); repeat for several. Needed for
    /// endpointHost/apiIdHeader access.
    #[arg(long = "vpce-dns", value_parser = validate::hostname)]
    vpce_dns: Vec<String>,
    /// How to address the API.
    #[arg(long, value_enum, default_value_t = AccessArg::Auto)]
    access: AccessArg,
    /// Private custom domain name, for --access custom-domain.
    #[arg(long, value_parser = validate::hostname)]
    domain_name: Option<String>,
    /// Resolve with this DNS server (IP[:PORT]) instead of /etc/resolv.conf.
    #[arg(long)]
    nameserver: Option<Nameserver>,
    /// PEM file with extra CA certificates to trust (besides the Mozilla roots).
    #[arg(long)]
    ca_bundle: Option<PathBuf>,
    /// TCP port (tests only; API Gateway listens on 443).
    #[arg(long, default_value_t = 443, value_parser = clap::value_parser!(u16).range(1..))]
    port: u16,
    /// Seconds allowed for each step (DNS, connect, TLS, HTTP).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=60))]
    timeout: u64,
    /// Also write the report to this file (the pod's /dev/termination-log).
    #[arg(long)]
    report_file: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum MethodArg {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
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
enum AccessArg {
    Auto,
    PrivateDns,
    EndpointAlias,
    EndpointHost,
    ApiIdHeader,
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
pub fn read_ca_bundle(path: &std::path::Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot open CA bundle {}", path.display()))?;
    let mut pem = Vec::new();
    file.take(MAX_CA_BUNDLE_BYTES + 1)
        .read_to_end(&mut pem)
        .with_context(|| format!("cannot read CA bundle {}", path.display()))?;
    if pem.len() as u64 > MAX_CA_BUNDLE_BYTES {
        bail!("CA bundle {} is larger than {} bytes", path.display(), MAX_CA_BUNDLE_BYTES);
    }
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .with_context(|| format!("CA bundle {} is not valid PEM", path.display()))?;
    if certs.is_empty() {
        bail!("CA bundle {} contains no CERTIFICATE block", path.display());
    }
    Ok(certs)
}

impl ProbeArgs {
    fn into_input(self) -> anyhow::Result<(ProbeInput, Option<PathBuf>)> {
        let access: AccessMode = self.access.into();
        if access == AccessMode::CustomDomain && self.domain_name.is_none() {
            bail!("--access custom-domain needs --domain-name");
        }
        let extra_roots = match &self.ca_bundle {
            Some(path) => read_ca_bundle(path)?,
            None => Vec::new(),
        };
        let target = Target {
            api_id: self.api_id,
            region: self.region,
            stage: self.stage,
            path: self.path,
            method: self.method.into(),
            vpce_id: self.vpce,
            vpce_dns_names: self.vpce_dns,
            domain_name: self.domain_name,
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
        Ok((input, self.report_file))
    }
}

/// Runs the probe and prints the report; `Err` only when the probe could not run.
pub async fn probe(args: ProbeArgs) -> anyhow::Result<()> {
    let (input, report_file) = args.into_input()?;
    let report = pvtapi_engine::probe::run(&input).await?.bounded(REPORT_BUDGET_BYTES);
    let json = report.to_json();
    println!("{json}");
    if let Some(path) = report_file {
        std::fs::write(&path, &json).with_context(|| format!("cannot write the report to {}", path.display()))?;
    }
    Ok(())
}

//! The probe's I/O: resolve, connect, handshake, invoke — concurrently where the steps are
//! independent, each bounded by the check's timeout.
//!
//! The invoke path (DNS → TCP → TLS → HTTP on the *same* connection) is what a workload does, so
//! a healthy run costs about what one `curl` costs. Everything else — the other names, the other
//! endpoint addresses (one per AZ) — runs alongside it and is joined at the end, so one bad AZ
//! shows up without delaying the invoke.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use hickory_resolver::TokioResolver;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::RecordType;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use pvtapi_crds::AccessMode;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::answers;
use super::classify::{self, AddressClass, InvokeClass, TcpOutcome};
use super::proxy::{self, ProxyEnv};
use super::report::{
    AccessChoice, DnsComparison, DnsOutcome, DnsResult, InvokeResult, ProbeReport, REPORT_VERSION, ResolvedAddress,
    TargetSummary, TcpResult, Timings, TlsOutcome, TlsResult,
};
use super::target::{Host, HostRole, InvokePlan, Target};
use crate::dns::{Nameserver, build_resolver};

/// Largest body the probe reads; the rest is left unread.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Largest response head (status line + headers) accepted.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Distinct addresses connected to in one run.
pub const MAX_CONNECT_ADDRESSES: usize = 16;
pub use super::answers::MAX_ADDRESSES_PER_NAME;

/// Everything one probe run needs.
#[derive(Clone, Debug)]
pub struct ProbeInput {
    pub target: Target,
    pub access: AccessMode,
    pub expected_statuses: Vec<u16>,
    /// Bound for each step (each DNS query, each connect, the handshake, the HTTP exchange).
    pub timeout: Duration,
    /// Resolver override; `None` uses the system configuration like the workload.
    pub nameserver: Option<Nameserver>,
    /// Extra trusted roots on top of the Mozilla set.
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// TCP port, 443 except in tests.
    pub port: u16,
    /// The proxy variables the workload would inherit.
    pub proxy_env: ProxyEnv,
}

/// Why the probe could not run at all (as opposed to the target being unhealthy).
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(transparent)]
    Resolver(#[from] crate::dns::ResolverError),
    #[error("invalid TLS configuration (CA bundle): {0}")]
    Tls(#[from] rustls::Error),
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Runs the probe and returns its report. Errors only when the probe itself cannot run.
pub async fn run(input: &ProbeInput) -> Result<ProbeReport, ProbeError> {
    let started = Instant::now();
    crate::dns::check_route_to_resolvers(input.nameserver)?;
    let resolver = build_resolver(input.nameserver, input.timeout)?;
    let (tls_config, verifier) = super::tls::client_config(&input.extra_roots)?;

    // 1. DNS for every name, concurrently.
    let hosts = input.target.hosts();
    let dns: Vec<DnsResult> =
        futures::future::join_all(hosts.iter().map(|h| resolve(&resolver, h, input.timeout))).await;
    let dns_ms = dns.iter().map(|d| d.ms).max().unwrap_or(0);

    // 2. The access mode (auto: from what DNS said) and the invoke plan.
    let (access, plan) = choose_access(input, &dns);

    // 3. TCP to every distinct address (bounded), the invoke host's first; TLS + HTTP on the
    //    first connection to the invoke host, while the other connects complete.
    let invoke_addrs: Vec<IpAddr> = plan
        .as_ref()
        .and_then(|p| dns.iter().find(|d| d.host == p.connect_host))
        .map(|d| d.addresses.iter().map(|a| a.ip).collect())
        .unwrap_or_default();
    let mut seen = BTreeSet::new();
    let mut other_addrs = Vec::new();
    for ip in invoke_addrs.iter().copied().chain(dns.iter().flat_map(|d| d.addresses.iter().map(|a| a.ip))) {
        if seen.insert(ip) && !invoke_addrs.contains(&ip) {
            other_addrs.push(ip);
        }
    }
    let budget = MAX_CONNECT_ADDRESSES.saturating_sub(invoke_addrs.len().min(MAX_CONNECT_ADDRESSES));
    other_addrs.truncate(budget);
    let invoke_addrs: Vec<IpAddr> = invoke_addrs.into_iter().take(MAX_CONNECT_ADDRESSES).collect();

    let port = input.port;
    let timeout = input.timeout;
    let others =
        futures::future::join_all(other_addrs.iter().map(|ip| async move { connect(*ip, port, timeout).await.0 }));
    let invoke_path = async {
        let mut pending: FuturesUnordered<_> = invoke_addrs.iter().map(|ip| connect(*ip, port, timeout)).collect();
        let mut results = Vec::new();
        let mut first: Option<(IpAddr, TcpStream, u64)> = None;
        while let Some((result, stream)) = pending.next().await {
            if first.is_none()
                && let Some(stream) = stream
            {
                first = Some((result.ip, stream, result.ms));
            }
            results.push(result);
            if first.is_some() {
                break;
            }
        }
        let exchange = async {
            match (first, plan.as_ref()) {
                (Some((ip, stream, connect_ms)), Some(plan)) => {
                    let (tls, tls_stream) =
                        handshake(stream, ip, &plan.connect_host, &tls_config, &verifier, timeout).await;
                    let invoke = match tls_stream {
                        Some(s) => Some(invoke(s, plan, input).await),
                        None => None,
                    };
                    (Some(connect_ms), Some(tls), invoke)
                }
                _ => (None, None, None),
            }
        };
        let rest = async {
            let mut rest = Vec::new();
            while let Some((result, _)) = pending.next().await {
                rest.push(result);
            }
            rest
        };
        let ((connect_ms, tls, invoke), rest) = tokio::join!(exchange, rest);
        results.extend(rest);
        (results, connect_ms, tls, invoke)
    };
    let ((mut tcp, connect_ms, tls, invoke), other_tcp) = tokio::join!(invoke_path, others);
    tcp.extend(other_tcp);

    let proxied = proxy::evaluate(&input.proxy_env, &hosts.iter().map(|h| h.name.clone()).collect::<Vec<_>>())
        .into_iter()
        .filter(|v| v.via.is_some())
        .collect();

    let (invoke, ttfb_ms) = match invoke {
        Some((result, ttfb)) => (Some(result), ttfb),
        None => (None, None),
    };
    let invoke = invoke.or_else(|| {
        plan.as_ref()
            .map(|p| InvokeResult { error: Some(not_invoked_reason(&dns, &tcp, tls.as_ref(), p)), ..unanswered(p) })
    });

    let t = &input.target;
    Ok(ProbeReport {
        version: REPORT_VERSION.to_owned(),
        target: TargetSummary {
            api_id: t.api_id.clone(),
            region: t.region.clone(),
            stage: t.stage.clone(),
            path: t.path.clone(),
            method: t.method.as_str().to_owned(),
            vpce_id: t.vpce_id.clone(),
        },
        access,
        resolver: input.nameserver.map_or_else(|| "system".to_owned(), |n| n.to_string()),
        resolver_addresses: crate::dns::nameserver_addresses(input.nameserver),
        dns_comparison: compare(&dns),
        dns,
        tcp,
        timings: Timings {
            dns_ms,
            connect_ms,
            tls_ms: tls.as_ref().map(|t| t.ms),
            ttfb_ms,
            total_ms: ms(started.elapsed()),
        },
        tls,
        invoke,
        proxied,
        truncated: Vec::new(),
    })
}

/// An invoke of `plan` with no answer yet (class `ConnectionError` until one arrives).
fn unanswered(plan: &InvokePlan) -> InvokeResult {
    InvokeResult {
        url: plan.url.clone(),
        host_header: plan.host_header.clone(),
        api_id_header: plan.api_id_header.clone(),
        class: InvokeClass::ConnectionError,
        status: None,
        request_id: None,
        error_type: None,
        apigw_id: None,
        message: None,
        body_snippet: None,
        body_bytes: 0,
        body_truncated: false,
        error: None,
    }
}

/// Why there is no HTTP answer: the first failing step on the invoke path.
fn not_invoked_reason(dns: &[DnsResult], tcp: &[TcpResult], tls: Option<&TlsResult>, plan: &InvokePlan) -> String {
    if let Some(tls) = tls {
        return format!("not sent: TLS handshake with {} failed ({:?})", tls.sni, tls.outcome);
    }
    match dns.iter().find(|d| d.host == plan.connect_host) {
        Some(d) if d.addresses.is_empty() => format!("not sent: {} did not resolve ({:?})", d.host, d.outcome),
        Some(d) => {
            let outcomes: Vec<String> = tcp
                .iter()
                .filter(|t| d.addresses.iter().any(|a| a.ip == t.ip))
                .map(|t| format!("{}:{} {:?}", t.ip, t.port, t.outcome))
                .collect();
            format!("not sent: no TCP connection to {} ({})", d.host, outcomes.join(", "))
        }
        None => "not sent: the invoke host was not resolved".to_owned(),
    }
}

/// `auto`: private DNS if the API host resolves to non-public addresses; else the alias host if
/// it resolves; else the endpoint's own name with a `Host` header; else private DNS (so the
/// public-address failure is what gets reported).
fn choose_access(input: &ProbeInput, dns: &[DnsResult]) -> (AccessChoice, Option<InvokePlan>) {
    let t = &input.target;
    if let Some(url) = &t.invoke_url {
        let plan = t.plan_for_url(url, input.port);
        let reason = format!("the URL as given ({}), which amounts to {:?} access", plan.url, plan.access);
        return (AccessChoice { mode: plan.access, reason }, Some(plan));
    }
    let resolved = |role: HostRole, want_private: bool| {
        dns.iter().any(|d| {
            d.role == role
                && !d.addresses.is_empty()
                && (!want_private || d.addresses.iter().all(|a| a.class != AddressClass::Public))
        })
    };
    let (mode, reason) = match input.access {
        AccessMode::Auto => {
            if resolved(HostRole::Api, true) {
                (AccessMode::PrivateDns, "auto: the API host resolves to private addresses (private DNS is on)")
            } else if resolved(HostRole::EndpointAlias, false) {
                (AccessMode::EndpointAlias, "auto: the API host is not private but the endpoint alias host resolves")
            } else if t.vpce_regional_host().is_some() {
                (
                    AccessMode::EndpointHost,
                    "auto: neither the API host nor the alias resolve privately; using the endpoint's DNS name with a Host header",
                )
            } else {
                (
                    AccessMode::PrivateDns,
                    "auto: no private name resolves and the endpoint's DNS names are unknown; trying the API host",
                )
            }
        }
        explicit => (explicit, "as configured"),
    };
    let plan = t.plan(mode, input.port);
    let reason = if plan.is_none() {
        format!("{reason}; cannot invoke: {mode:?} needs the endpoint's DNS names (or domainName), which are unknown")
    } else {
        reason.to_owned()
    };
    (AccessChoice { mode, reason }, plan)
}

/// The API host's addresses against the endpoint hosts' addresses.
fn compare(dns: &[DnsResult]) -> DnsComparison {
    let set = |roles: &[HostRole]| -> BTreeSet<IpAddr> {
        dns.iter().filter(|d| roles.contains(&d.role)).flat_map(|d| d.addresses.iter().map(|a| a.ip)).collect()
    };
    let api = set(&[HostRole::Api]);
    let endpoint = set(&[HostRole::EndpointRegional, HostRole::EndpointZonal]);
    if api.is_empty() || endpoint.is_empty() {
        DnsComparison::NotComparable
    } else if api == endpoint {
        DnsComparison::Same
    } else if api.is_disjoint(&endpoint) {
        DnsComparison::Disjoint
    } else {
        DnsComparison::Overlap
    }
}

async fn resolve(resolver: &TokioResolver, host: &Host, timeout: Duration) -> DnsResult {
    let started = Instant::now();
    // An IP literal (a URL checked as given) needs no lookup.
    if let Ok(ip) = host.name.parse::<IpAddr>() {
        return DnsResult {
            host: host.name.clone(),
            role: host.role,
            outcome: DnsOutcome::Resolved,
            addresses: vec![ResolvedAddress { ip, class: classify::classify_address(ip) }],
            ttl: None,
            cnames: Vec::new(),
            error: None,
            ms: 0,
        };
    }
    let name = format!("{}.", host.name.trim_end_matches('.'));
    let query = |rtype| {
        let name = name.clone();
        async move {
            match tokio::time::timeout(timeout, resolver.lookup(name, rtype)).await {
                Ok(result) => result.map_err(Some),
                Err(_) => Err(None),
            }
        }
    };
    let (a, aaaa) = tokio::join!(query(RecordType::A), query(RecordType::AAAA));
    let mut result = answers::dns_result(host, [lookup(&a), lookup(&aaaa)], timeout);
    result.ms = ms(started.elapsed());
    result
}

/// One lookup's result (`Err(None)`: no answer within the timeout) as [`answers::dns_result`] takes it.
fn lookup(
    answer: &Result<hickory_resolver::lookup::Lookup, Option<hickory_resolver::net::NetError>>,
) -> answers::Lookup<'_> {
    match answer {
        Ok(lookup) => answers::Lookup::Answered(lookup.answers()),
        Err(None) => answers::Lookup::TimedOut,
        Err(Some(err)) => answers::Lookup::Failed { outcome: dns_error_outcome(err), error: err.to_string() },
    }
}

fn dns_error_outcome(err: &hickory_resolver::net::NetError) -> DnsOutcome {
    use hickory_resolver::net::{DnsError, NetError};
    if err.is_nx_domain() {
        return DnsOutcome::NxDomain;
    }
    if err.is_no_records_found() {
        return DnsOutcome::NoData;
    }
    match err {
        NetError::Timeout => DnsOutcome::Timeout,
        NetError::Dns(DnsError::ResponseCode(ResponseCode::Refused)) => DnsOutcome::Refused,
        NetError::Dns(DnsError::ResponseCode(ResponseCode::ServFail)) => DnsOutcome::ServFail,
        _ => DnsOutcome::Error,
    }
}

async fn connect(ip: IpAddr, port: u16, timeout: Duration) -> (TcpResult, Option<TcpStream>) {
    let started = Instant::now();
    let (outcome, stream, error) =
        match tokio::time::timeout(timeout, TcpStream::connect(SocketAddr::new(ip, port))).await {
            Ok(Ok(stream)) => (TcpOutcome::Connected, Some(stream), None),
            Ok(Err(err)) => (classify::classify_connect_error(&err), None, Some(err.to_string())),
            Err(_) => (TcpOutcome::Timeout, None, Some(format!("no answer within {}s", timeout.as_secs_f32()))),
        };
    (TcpResult { ip, port, outcome, ms: ms(started.elapsed()), error }, stream)
}

async fn handshake(
    stream: TcpStream,
    ip: IpAddr,
    sni: &str,
    config: &Arc<rustls::ClientConfig>,
    verifier: &super::tls::RecordingVerifier,
    timeout: Duration,
) -> (TlsResult, Option<TlsStream<TcpStream>>) {
    let started = Instant::now();
    let mut result = TlsResult {
        sni: sni.to_owned(),
        ip,
        outcome: TlsOutcome::HandshakeFailure,
        version: None,
        cipher: None,
        subject: None,
        sans: Vec::new(),
        not_after: None,
        error: None,
        ms: 0,
    };
    let Ok(server_name) = ServerName::try_from(sni.to_owned()) else {
        result.error = Some(format!("{sni:?} is not a valid TLS server name"));
        return (result, None);
    };
    let connector = TlsConnector::from(config.clone());
    let outcome = tokio::time::timeout(timeout, connector.connect(server_name, stream)).await;
    result.ms = ms(started.elapsed());
    if let Some(cert) = verifier.presented()
        && let Some((subject, sans, not_after)) = super::tls::describe_certificate(&cert)
    {
        result.subject = Some(subject);
        result.sans = sans;
        result.not_after = Some(not_after);
    }
    match outcome {
        Ok(Ok(stream)) => {
            let (_, conn) = stream.get_ref();
            result.outcome = TlsOutcome::Ok;
            result.version = conn.protocol_version().and_then(|v| v.as_str()).map(str::to_owned);
            result.cipher = conn.negotiated_cipher_suite().and_then(|c| c.suite().as_str()).map(str::to_owned);
            (result, Some(stream))
        }
        Ok(Err(err)) => {
            result.outcome = super::tls::classify_handshake_error(&err);
            result.error = Some(err.to_string());
            (result, None)
        }
        Err(_) => {
            result.outcome = TlsOutcome::Timeout;
            result.error = Some(format!("no handshake within {}s", timeout.as_secs_f32()));
            (result, None)
        }
    }
}

/// Sends the request and reads the answer (head within `timeout`, body capped and within the
/// same budget). Returns the result and the time to the response head.
async fn invoke(stream: TlsStream<TcpStream>, plan: &InvokePlan, input: &ProbeInput) -> (InvokeResult, Option<u64>) {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + input.timeout;
    let mut result = unanswered(plan);
    let timed_out = |mut r: InvokeResult, what: &str| {
        r.class = InvokeClass::Timeout;
        r.error = Some(format!("{what} within {}s", input.timeout.as_secs_f32()));
        r
    };

    let mut builder = hyper::client::conn::http1::Builder::new();
    builder.max_buf_size(MAX_HEAD_BYTES).max_headers(200);
    let handshake = tokio::time::timeout_at(deadline, builder.handshake::<_, Empty<Bytes>>(TokioIo::new(stream))).await;
    let (mut sender, connection) = match handshake {
        Ok(Ok(pair)) => pair,
        Ok(Err(err)) => {
            result.error = Some(format!("HTTP setup failed: {err}"));
            return (result, None);
        }
        Err(_) => return (timed_out(result, "no HTTP connection"), None),
    };
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });

    let mut request = hyper::Request::builder()
        .method(input.target.method.as_str())
        .uri(plan.request_path.as_str())
        .header(hyper::header::HOST, plan.host_header.as_str())
        .header(hyper::header::USER_AGENT, concat!("pvtapi-probe/", env!("CARGO_PKG_VERSION")))
        .header(hyper::header::ACCEPT, "*/*");
    if let Some(id) = &plan.api_id_header {
        request = request.header("x-apigw-api-id", id.as_str());
    }
    let request = match request.body(Empty::<Bytes>::new()) {
        Ok(r) => r,
        Err(err) => {
            driver.abort();
            result.error = Some(format!("cannot build the request: {err}"));
            return (result, None);
        }
    };

    let response = match tokio::time::timeout_at(deadline, sender.send_request(request)).await {
        Ok(Ok(response)) => response,
        Ok(Err(err)) => {
            driver.abort();
            result.error = Some(format!("no valid HTTP response: {err}"));
            return (result, None);
        }
        Err(_) => {
            driver.abort();
            return (timed_out(result, "no response head"), None);
        }
    };
    let ttfb = ms(started.elapsed());
    let status = response.status().as_u16();
    answers::record_head(&mut result, status, response.headers());

    let mut body = response.into_body();
    let mut buf: Vec<u8> = Vec::new();
    let mut read_error = None;
    loop {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    let room = MAX_BODY_BYTES - buf.len();
                    if data.len() > room {
                        buf.extend_from_slice(&data[..room]);
                        result.body_truncated = true;
                        break;
                    }
                    buf.extend_from_slice(&data);
                }
            }
            Ok(Some(Err(err))) => {
                read_error = Some(format!("body read failed: {err}"));
                break;
            }
            Ok(None) => break,
            Err(_) => {
                read_error = Some(format!("body not complete within {}s", input.timeout.as_secs_f32()));
                result.body_truncated = true;
                break;
            }
        }
    }
    driver.abort();
    answers::record_body(&mut result, status, &buf, &input.expected_statuses);
    result.error = read_error;
    (result, Some(ttfb))
}

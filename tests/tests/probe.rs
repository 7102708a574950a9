//! The probe engine against real local peers: dnsmasq answering AWS-looking names with loopback
//! addresses, TLS listeners with a test CA playing the API Gateway front end, and network
//! namespaces for real timeouts and refusals. Every DNS, TCP, TLS and invoke class is seen here
//! on a real socket. (Public answers are tested in `operator/tests/probe_cli.rs`, inside a
//! namespace with no route out.)

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pvtapi_crds::{AccessMode, HttpMethod};
use pvtapi_engine::dns::Nameserver;
use pvtapi_engine::probe::classify::{InvokeClass, TcpOutcome};
use pvtapi_engine::probe::proxy::ProxyEnv;
use pvtapi_engine::probe::report::{DnsComparison, DnsOutcome, ProbeReport, REPORT_BUDGET_BYTES, TlsOutcome};
use pvtapi_engine::probe::target::HostRole;
use pvtapi_engine::probe::{ProbeInput, Target};
use pvtapi_testkit::apigw::{FrontEnd, Reply, Responder, SeenRequest, TestCa, requires_api_identity};
use pvtapi_testkit::dns::{DnsServer, HostileDnsServer, Hostility, Record, Zone};
use pvtapi_testkit::netns::NetNs;

const API: &str = "abcde12345";
const REGION: &str = "us-east-1";
const VPCE: &str = "vpce-0123456789abcdef0";
const API_HOST: &str = "abcde12345.execute-api.us-east-1.amazonaws.com";
const ALIAS_HOST: &str = "abcde12345-vpce-0123456789abcdef0.execute-api.us-east-1.amazonaws.com";
const VPCE_HOST: &str = "vpce-0123456789abcdef0-abcdefgh.execute-api.us-east-1.vpce.amazonaws.com";
const VPCE_ZONAL: &str = "vpce-0123456789abcdef0-abcdefgh-us-east-1a.execute-api.us-east-1.vpce.amazonaws.com";

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

fn target(path: &str) -> Target {
    Target {
        api_id: API.into(),
        region: REGION.into(),
        stage: "prod".into(),
        path: path.into(),
        method: HttpMethod::Get,
        vpce_id: VPCE.into(),
        vpce_dns_names: vec![VPCE_HOST.into(), VPCE_ZONAL.into()],
        domain_name: None,
        invoke_url: None,
    }
}

fn input(dns: &DnsServer, front: &FrontEnd, ca: &TestCa, path: &str, access: AccessMode) -> ProbeInput {
    ProbeInput {
        target: target(path),
        access,
        expected_statuses: vec![200],
        timeout: Duration::from_secs(2),
        nameserver: Some(Nameserver(dns.addr())),
        extra_roots: vec![ca.cert()],
        port: front.addr().port(),
        proxy_env: ProxyEnv::default(),
    }
}

/// Private DNS on: the API host and the endpoint names resolve to the front end's address.
fn private_dns_zone(ip: Ipv4Addr) -> Zone {
    Zone::new().with(Record::addr(API_HOST, ip)).with(Record::addr(VPCE_HOST, ip)).with(Record::addr(VPCE_ZONAL, ip))
}

async fn healthy_front(ca: &TestCa) -> FrontEnd {
    let names = ["*.execute-api.us-east-1.amazonaws.com", "*.execute-api.us-east-1.vpce.amazonaws.com"];
    FrontEnd::for_names(ca, &names, requires_api_identity(API, Reply::ok(r#"{"status":"ok"}"#))).await
}

async fn probe(input: &ProbeInput) -> ProbeReport {
    let started = Instant::now();
    let report = pvtapi_engine::probe::run(input).await.expect("the probe runs");
    // Every step is bounded: DNS + connect + TLS + HTTP, each at most `timeout`, plus slack.
    assert!(started.elapsed() < input.timeout * 4 + Duration::from_secs(1), "probe overran: {:?}", started.elapsed());
    report
}

#[tokio::test]
async fn healthy_private_dns() {
    let ca = TestCa::new();
    let front = healthy_front(&ca).await;
    let dns = DnsServer::start(&private_dns_zone(LO));
    let report = probe(&input(&dns, &front, &ca, "/health", AccessMode::Auto)).await;

    assert_eq!(report.access.mode, AccessMode::PrivateDns, "{}", report.access.reason);
    let api = report.dns.iter().find(|d| d.role == HostRole::Api).expect("api host resolved");
    assert_eq!(api.outcome, DnsOutcome::Resolved);
    assert_eq!(api.ttl, Some(60));
    let alias = report.dns.iter().find(|d| d.role == HostRole::EndpointAlias).expect("alias looked up");
    assert_eq!(alias.outcome, DnsOutcome::NxDomain);
    assert_eq!(report.dns_comparison, DnsComparison::Same);
    assert!(report.tcp.iter().all(|t| t.outcome == TcpOutcome::Connected), "{:?}", report.tcp);
    let tls = report.tls.as_ref().expect("tls");
    assert_eq!(tls.outcome, TlsOutcome::Ok, "{:?}", tls.error);
    assert_eq!(tls.sni, API_HOST);
    assert_eq!(tls.version.as_deref(), Some("TLSv1_3"));
    assert!(tls.sans.contains(&"*.execute-api.us-east-1.amazonaws.com".to_owned()), "{:?}", tls.sans);
    let invoke = report.invoke.as_ref().expect("invoke");
    assert_eq!(invoke.class, InvokeClass::Ok);
    assert_eq!(invoke.status, Some(200));
    assert!(invoke.request_id.as_deref().is_some_and(|r| r.starts_with("00000000-")), "{invoke:?}");
    assert_eq!(invoke.apigw_id.as_deref(), Some("Ab1Cd2Ef3Gh="));
    assert!(report.timings.connect_ms.is_some() && report.timings.tls_ms.is_some() && report.timings.ttfb_ms.is_some());
    let json = report.to_json();
    assert!(json.len() <= REPORT_BUDGET_BYTES, "typical report is {} bytes", json.len());
    let seen = front.seen();
    assert_eq!(seen.len(), 1, "one invoke, on the connection TCP opened");
    assert_eq!(seen[0].path, "/prod/health");
    assert_eq!(seen[0].header("host"), Some(format!("{API_HOST}:{}", front.addr().port()).as_str()));
}

#[tokio::test]
async fn every_access_mode_sends_what_api_gateway_needs() {
    let ca = TestCa::new();
    let front = healthy_front(&ca).await;
    let dns = DnsServer::start(&private_dns_zone(LO).with(Record::addr(ALIAS_HOST, LO)));
    let cases = [
        (AccessMode::PrivateDns, API_HOST, None),
        (AccessMode::EndpointAlias, ALIAS_HOST, None),
        (AccessMode::EndpointHost, API_HOST, None),
        (AccessMode::ApiIdHeader, VPCE_HOST, Some(API)),
    ];
    for (mode, host_header, api_id) in cases {
        let report = probe(&input(&dns, &front, &ca, "/", mode)).await;
        let invoke = report.invoke.as_ref().expect("invoke");
        assert_eq!(invoke.class, InvokeClass::Ok, "{mode:?}: {invoke:?}");
        let seen: SeenRequest = front.seen().pop().expect("request seen");
        assert_eq!(seen.path, "/prod/");
        let port = front.addr().port();
        assert_eq!(seen.header("host"), Some(format!("{host_header}:{port}").as_str()), "{mode:?}");
        assert_eq!(seen.header("x-apigw-api-id"), api_id, "{mode:?}");
    }

    // A vpce hostname called without Host/x-apigw-api-id: API Gateway's 403 Forbidden.
    let mut bare = input(&dns, &front, &ca, "/", AccessMode::CustomDomain);
    bare.target.domain_name = Some(VPCE_HOST.into());
    let report = probe(&bare).await;
    let invoke = report.invoke.expect("invoke");
    assert_eq!(invoke.class, InvokeClass::Forbidden);
    assert_eq!(invoke.error_type.as_deref(), Some("ForbiddenException"));
}

#[tokio::test]
async fn every_api_gateway_answer_is_classified() {
    let anon = "User: anonymous is not authorized to perform: execute-api:Invoke on resource: arn:aws:execute-api:us-east-1:123456789012:abcde12345/prod/GET/p";
    let routes: Vec<(&str, Reply, InvokeClass)> = vec![
        ("/ok", Reply::ok("{}"), InvokeClass::Ok),
        ("/forbidden", Reply::apigw_error(403, "ForbiddenException", "message", "Forbidden"), InvokeClass::Forbidden),
        (
            "/missing",
            Reply::apigw_error(403, "MissingAuthenticationTokenException", "message", "Missing Authentication Token"),
            InvokeClass::MissingAuthenticationToken,
        ),
        (
            "/anon",
            Reply::apigw_error(403, "AccessDeniedException", "Message", anon),
            InvokeClass::AnonymousNotAuthorized,
        ),
        (
            "/deny",
            Reply::apigw_error(403, "AccessDeniedException", "Message", &format!("{anon} with an explicit deny")),
            InvokeClass::ExplicitDeny,
        ),
        (
            "/sig",
            Reply::apigw_error(
                403,
                "IncompleteSignatureException",
                "message",
                "Authorization header requires 'Credential' parameter.",
            ),
            InvokeClass::SignatureError,
        ),
        (
            "/authorizer",
            Reply::apigw_error(
                403,
                "AccessDeniedException",
                "Message",
                "User is not authorized to access this resource",
            ),
            InvokeClass::AuthorizerDenied,
        ),
        (
            "/unauthorized",
            Reply::apigw_error(401, "UnauthorizedException", "message", "Unauthorized"),
            InvokeClass::Unauthorized,
        ),
        (
            "/throttled",
            Reply::apigw_error(429, "TooManyRequestsException", "message", "Too Many Requests"),
            InvokeClass::Throttled,
        ),
        (
            "/error",
            Reply::apigw_error(502, "InternalServerErrorException", "message", "Internal server error"),
            InvokeClass::ServerError,
        ),
        (
            "/teapot",
            Reply::Http { status: 418, headers: vec![], body: b"short and stout".to_vec() },
            InvokeClass::UnexpectedStatus,
        ),
        ("/slow", Reply::Hang, InvokeClass::Timeout),
        ("/endless", Reply::EndlessHeaders, InvokeClass::ConnectionError),
    ];
    let table: Vec<(String, Reply)> = routes.iter().map(|(p, r, _)| (format!("/prod{p}"), r.clone())).collect();
    let responder: Responder = Arc::new(move |req: &SeenRequest| {
        table.iter().find(|(p, _)| *p == req.path).map(|(_, r)| r.clone()).unwrap_or(Reply::ok("{}"))
    });
    let ca = TestCa::new();
    let front = FrontEnd::for_names(&ca, &["*.execute-api.us-east-1.amazonaws.com"], responder).await;
    let dns = DnsServer::start(&private_dns_zone(LO));
    for (path, _, want) in &routes {
        let mut input = input(&dns, &front, &ca, path, AccessMode::PrivateDns);
        input.timeout = Duration::from_secs(1);
        let report = probe(&input).await;
        let invoke = report.invoke.as_ref().expect("invoke");
        assert_eq!(invoke.class, *want, "{path}: {invoke:?}");
        assert!(report.to_json().len() <= REPORT_BUDGET_BYTES, "{path}: report too large");
    }
}

#[tokio::test]
async fn huge_binary_body_is_read_only_up_to_the_cap() {
    let ca = TestCa::new();
    let front = FrontEnd::for_names(
        &ca,
        &["*.execute-api.us-east-1.amazonaws.com"],
        Arc::new(|_: &SeenRequest| Reply::HugeBinaryBody),
    )
    .await;
    let dns = DnsServer::start(&private_dns_zone(LO));
    let report = probe(&input(&dns, &front, &ca, "/", AccessMode::PrivateDns)).await;
    let invoke = report.invoke.expect("invoke");
    assert_eq!(invoke.class, InvokeClass::Ok);
    assert_eq!(invoke.body_bytes, 64 * 1024);
    assert!(invoke.body_truncated);
    assert!(invoke.body_snippet.is_none(), "no binary in the report for a healthy answer");
}

#[tokio::test]
async fn tls_failures_are_classified_with_the_presented_certificate() {
    let ca = TestCa::new();
    let dns = DnsServer::start(&private_dns_zone(LO));
    let ok: Responder = Arc::new(|_: &SeenRequest| Reply::ok("{}"));

    // A certificate for someone else's name: what calling an own CNAME looks like.
    let wrong = FrontEnd::for_names(&ca, &["internal.example.com"], ok.clone()).await;
    let report = probe(&input(&dns, &wrong, &ca, "/", AccessMode::PrivateDns)).await;
    let tls = report.tls.expect("tls");
    assert_eq!(tls.outcome, TlsOutcome::NameMismatch, "{:?}", tls.error);
    assert_eq!(tls.sans, vec!["internal.example.com".to_owned()]);
    assert!(report.invoke.expect("invoke").error.expect("reason").contains("TLS handshake"));

    // Without the test CA: an unknown issuer (a TLS-inspecting proxy looks like this).
    let front = healthy_front(&ca).await;
    let mut untrusted = input(&dns, &front, &ca, "/", AccessMode::PrivateDns);
    untrusted.extra_roots.clear();
    let tls = probe(&untrusted).await.tls.expect("tls");
    assert_eq!(tls.outcome, TlsOutcome::UnknownIssuer, "{:?}", tls.error);

    // Expired.
    let (chain, key) = ca.issue_with_validity(
        &["*.execute-api.us-east-1.amazonaws.com"],
        time::Duration::days(-10),
        time::Duration::days(-1),
    );
    let expired = FrontEnd::start(SocketAddr::from((LO, 0)), chain, key, ok).await;
    let tls = probe(&input(&dns, &expired, &ca, "/", AccessMode::PrivateDns)).await.tls.expect("tls");
    assert_eq!(tls.outcome, TlsOutcome::Expired, "{:?}", tls.error);
    assert!(tls.not_after.is_some());

    // A listener that accepts TCP and never speaks TLS.
    let silent = tokio::net::TcpListener::bind((LO, 0)).await.expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let _hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let mut hang = input(&dns, &front, &ca, "/", AccessMode::PrivateDns);
    hang.port = port;
    hang.timeout = Duration::from_secs(1);
    let tls = probe(&hang).await.tls.expect("tls");
    assert_eq!(tls.outcome, TlsOutcome::Timeout);

    // A plain-HTTP port: the server answers the ClientHello with HTTP — a handshake failure.
    let plain = tokio::net::TcpListener::bind((LO, 0)).await.expect("bind");
    let plain_port = plain.local_addr().expect("addr").port();
    let _plain = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        while let Ok((mut s, _)) = plain.accept().await {
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n").await;
        }
    });
    let mut http = input(&dns, &front, &ca, "/", AccessMode::PrivateDns);
    http.port = plain_port;
    let tls = probe(&http).await.tls.expect("tls");
    assert_eq!(tls.outcome, TlsOutcome::HandshakeFailure, "{:?}", tls.error);
}

#[tokio::test]
async fn tcp_timeout_refusal_and_one_bad_az() {
    let ns = NetNs::create();
    let ca = TestCa::new();
    let front = healthy_front(&ca).await;
    // The API host: one healthy address and one blackholed (a second AZ whose ENI drops 443).
    let zone = Zone::new()
        .with(Record::addr(API_HOST, LO))
        .with(Record::addr(API_HOST, ns.blackhole()))
        .with(Record::addr(VPCE_HOST, LO))
        .with(Record::addr(VPCE_HOST, ns.blackhole()))
        .with(Record::addr(VPCE_ZONAL, ns.refusing()));
    let dns = DnsServer::start(&zone);
    let mut inp = input(&dns, &front, &ca, "/", AccessMode::PrivateDns);
    inp.timeout = Duration::from_secs(1);
    let report = probe(&inp).await;
    let outcome = |ip: Ipv4Addr| report.tcp.iter().find(|t| t.ip == IpAddr::V4(ip)).map(|t| t.outcome);
    assert_eq!(outcome(LO), Some(TcpOutcome::Connected));
    assert_eq!(outcome(ns.blackhole()), Some(TcpOutcome::Timeout));
    assert_eq!(outcome(ns.refusing()), Some(TcpOutcome::Refused));
    assert_eq!(report.invoke.expect("invoke").class, InvokeClass::Ok, "the healthy AZ still answers");
    assert_eq!(report.dns_comparison, DnsComparison::Overlap);

    // Only the blackholed address: the invoke is not sent and says why.
    let dns = DnsServer::start(&Zone::new().with(Record::addr(API_HOST, ns.blackhole())));
    let report = probe(&input(&dns, &front, &ca, "/", AccessMode::PrivateDns)).await;
    assert_eq!(report.tcp[0].outcome, TcpOutcome::Timeout);
    assert!(report.tls.is_none());
    let invoke = report.invoke.expect("invoke");
    assert_eq!(invoke.class, InvokeClass::ConnectionError);
    assert!(invoke.error.expect("reason").contains("no TCP connection"), "reason names the step");
}

#[tokio::test]
async fn dns_failures_are_classified() {
    let ca = TestCa::new();
    let front = healthy_front(&ca).await;

    // REFUSED: a server that is authoritative for nothing and has no upstream.
    let refusing = DnsServer::start(&Zone { records: vec![], local_domains: vec![] });
    let report = probe(&input(&refusing, &front, &ca, "/", AccessMode::PrivateDns)).await;
    assert!(report.dns.iter().all(|d| d.outcome == DnsOutcome::Refused), "{:?}", report.dns);
    assert!(report.invoke.expect("invoke").error.expect("reason").contains("did not resolve"));

    // Mismatching sets: the API host points elsewhere than the endpoint.
    let dns = DnsServer::start(
        &Zone::new().with(Record::addr(API_HOST, LO)).with(Record::addr(VPCE_HOST, Ipv4Addr::new(127, 0, 0, 2))),
    );
    let report = probe(&input(&dns, &front, &ca, "/", AccessMode::PrivateDns)).await;
    assert_eq!(report.dns_comparison, DnsComparison::Disjoint);
    let zonal = report.dns.iter().find(|d| d.role == HostRole::EndpointZonal).expect("zonal");
    assert_eq!(zonal.outcome, DnsOutcome::NxDomain);

    // IPv6-only name: AAAA answers are recorded.
    let dns = DnsServer::start(&Zone::new().with(Record::addr(API_HOST, std::net::Ipv6Addr::LOCALHOST)));
    let report = probe(&input(&dns, &front, &ca, "/", AccessMode::PrivateDns)).await;
    let api = report.dns.iter().find(|d| d.role == HostRole::Api).expect("api");
    assert_eq!(
        api.addresses.iter().map(|a| a.ip).collect::<Vec<_>>(),
        vec![IpAddr::from(std::net::Ipv6Addr::LOCALHOST)]
    );

    // NODATA: the name exists (TXT only) but has no address records.
    let dns = DnsServer::start(&Zone::new().with(Record::Txt { name: API_HOST.into(), text: "x".into() }));
    let report = probe(&input(&dns, &front, &ca, "/", AccessMode::PrivateDns)).await;
    let api = report.dns.iter().find(|d| d.role == HostRole::Api).expect("api");
    assert_eq!(api.outcome, DnsOutcome::NoData, "{api:?}");

    // SERVFAIL and a malformed answer, from a misbehaving resolver.
    for (mode, want) in [(Hostility::ServFail, DnsOutcome::ServFail), (Hostility::Garbage, DnsOutcome::Error)] {
        let hostile = HostileDnsServer::start(mode).await;
        let mut inp = input(&dns, &front, &ca, "/", AccessMode::PrivateDns);
        inp.nameserver = Some(Nameserver(hostile.addr()));
        inp.timeout = Duration::from_secs(1);
        let report = probe(&inp).await;
        let api = report.dns.iter().find(|d| d.role == HostRole::Api).expect("api");
        assert_eq!(api.outcome, want, "{mode:?}: {api:?}");
    }

    // A nameserver that never answers: a DNS timeout, bounded.
    let ns = NetNs::create();
    let mut silent = input(&refusing, &front, &ca, "/", AccessMode::PrivateDns);
    silent.nameserver = Some(Nameserver(SocketAddr::from((ns.blackhole(), 53))));
    silent.timeout = Duration::from_secs(1);
    let report = probe(&silent).await;
    assert!(report.dns.iter().all(|d| d.outcome == DnsOutcome::Timeout), "{:?}", report.dns);
}

#[tokio::test]
async fn hostile_dns_answers_stay_bounded() {
    let ca = TestCa::new();
    let front = healthy_front(&ca).await;
    // Hundreds of records for one name.
    let mut zone = Zone::new();
    for i in 0..300u32 {
        zone = zone.with(Record::addr(API_HOST, Ipv4Addr::new(127, 1, (i / 250) as u8, (i % 250 + 1) as u8)));
    }
    let dns = DnsServer::start(&zone);
    let mut inp = input(&dns, &front, &ca, "/", AccessMode::PrivateDns);
    inp.timeout = Duration::from_secs(1);
    let report = probe(&inp).await;
    let api = report.dns.iter().find(|d| d.role == HostRole::Api).expect("api");
    assert_eq!(api.outcome, DnsOutcome::Resolved);
    assert_eq!(api.addresses.len(), 16, "addresses per name are capped");
    assert!(report.tcp.len() <= 16, "connects are capped");
    assert!(report.to_json().len() <= REPORT_BUDGET_BYTES * 2, "bounded before the size step");
    assert!(report.bounded(REPORT_BUDGET_BYTES).to_json().len() <= REPORT_BUDGET_BYTES);

    // A resolver answering every name with a CNAME loop: no addresses, no hang, no panic.
    let looping = HostileDnsServer::start(Hostility::CnameLoop).await;
    inp.nameserver = Some(Nameserver(looping.addr()));
    let report = probe(&inp).await;
    for d in &report.dns {
        assert!(d.addresses.is_empty(), "a CNAME loop resolves to nothing: {d:?}");
        assert_ne!(d.outcome, DnsOutcome::Resolved);
    }
    assert!(report.invoke.expect("invoke").error.expect("reason").contains("did not resolve"));
}

#[tokio::test]
async fn proxy_variables_that_would_carry_the_call_out_are_reported() {
    let ca = TestCa::new();
    let front = healthy_front(&ca).await;
    let dns = DnsServer::start(&private_dns_zone(LO));
    let mut inp = input(&dns, &front, &ca, "/", AccessMode::PrivateDns);
    inp.proxy_env = ProxyEnv {
        https_proxy: Some("http://user:pa55@proxy.corp.example:3128".into()),
        no_proxy: Some(".vpce.amazonaws.com,localhost".into()),
    };
    let report = probe(&inp).await;
    let hosts: Vec<&str> = report.proxied.iter().map(|p| p.host.as_str()).collect();
    assert_eq!(hosts, vec![API_HOST, ALIAS_HOST]);
    assert_eq!(report.proxied[0].via.as_deref(), Some("http://proxy.corp.example:3128"));
    assert!(!report.to_json().contains("pa55"), "no credentials in the report");
    assert_eq!(report.invoke.expect("invoke").class, InvokeClass::Ok, "the probe itself never uses the proxy");
}

//! A real TLS listener that plays the API Gateway front end, with a test CA.
//!
//! It answers the way API Gateway does — status, `x-amzn-RequestId`, `x-amzn-ErrorType`, the JSON
//! `message`/`Message` bodies of design.md §3 — or misbehaves on purpose (hangs after the
//! handshake, sends endless headers or a huge binary body) so the probe's bounds are proven on a
//! real socket. HTTP is written by hand here because hostile answers are the point.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::peers::ScratchDir;

/// A certificate authority for one test, with its PEM written to a file for `--ca-bundle`.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    cert: CertificateDer<'static>,
    dir: ScratchDir,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").field("bundle", &self.bundle_path()).finish()
    }
}

impl TestCa {
    pub fn new() -> TestCa {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name.push(DnType::CommonName, "pvtapi test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).expect("self-sign CA");
        let dir = ScratchDir::new("ca");
        std::fs::write(dir.path().join("ca.pem"), cert.pem()).expect("write CA PEM");
        TestCa { issuer: Issuer::new(params, key), cert: cert.der().clone(), dir }
    }

    /// The CA certificate as PEM file, for `--ca-bundle`.
    pub fn bundle_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The CA certificate.
    pub fn cert(&self) -> CertificateDer<'static> {
        self.cert.clone()
    }

    /// A leaf certificate for `names` valid from `not_before` to `not_after` (offsets from now).
    pub fn issue_with_validity(
        &self,
        names: &[&str],
        not_before: time::Duration,
        not_after: time::Duration,
    ) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let key = KeyPair::generate().expect("leaf key");
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, names.first().copied().unwrap_or("pvtapi-test"));
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now + not_before;
        params.not_after = now + not_after;
        let cert = params.signed_by(&key, &self.issuer).expect("sign leaf");
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        (vec![cert.der().clone(), self.cert.clone()], key_der)
    }

    /// A leaf certificate for `names`, valid for a day.
    pub fn issue(&self, names: &[&str]) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        self.issue_with_validity(names, time::Duration::hours(-1), time::Duration::days(1))
    }
}

impl Default for TestCa {
    fn default() -> Self {
        TestCa::new()
    }
}

/// The names API Gateway's default certificate covers in `region`.
pub fn default_names(region: &str) -> Vec<String> {
    vec![format!("*.execute-api.{region}.amazonaws.com"), format!("*.execute-api.{region}.vpce.amazonaws.com")]
}

/// One request as the front end saw it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeenRequest {
    pub method: String,
    pub path: String,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
}

impl SeenRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// What to send back.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A normal answer. `x-amzn-RequestId` is added.
    Http { status: u16, headers: Vec<(String, String)>, body: Vec<u8> },
    /// Complete the TLS handshake, read the request, then never answer.
    Hang,
    /// A status line followed by headers forever (until the client goes away).
    EndlessHeaders,
    /// A 200 with `Content-Length` of 10 MiB of binary data.
    HugeBinaryBody,
    /// Answer after a delay.
    Delayed(Duration, Box<Reply>),
}

impl Reply {
    /// API Gateway's JSON error answer: `{"<key>":"<message>"}` with `x-amzn-ErrorType`.
    pub fn apigw_error(status: u16, error_type: &str, key: &str, message: &str) -> Reply {
        Reply::Http {
            status,
            headers: vec![
                ("x-amzn-ErrorType".into(), error_type.into()),
                ("content-type".into(), "application/json".into()),
            ],
            body: serde_json::json!({ key: message }).to_string().into_bytes(),
        }
    }

    pub fn ok(body: &str) -> Reply {
        Reply::Http {
            status: 200,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("x-amz-apigw-id".into(), "Ab1Cd2Ef3Gh=".into()),
            ],
            body: body.as_bytes().to_vec(),
        }
    }
}

/// Decides the reply from the request.
pub type Responder = Arc<dyn Fn(&SeenRequest) -> Reply + Send + Sync>;

/// API Gateway's routing for private APIs: on a vpce hostname without `Host: {api}.execute-api…`
/// or `x-apigw-api-id`, it cannot tell which API is meant and answers 403 Forbidden.
pub fn requires_api_identity(api_id: &str, then: Reply) -> Responder {
    route_by_api(vec![(api_id.to_owned(), Arc::new(move |_: &SeenRequest| then.clone()))])
}

/// One front end for several private APIs, as API Gateway's is: the API is told from the `Host`
/// header (`{api}.execute-api…` or the alias `{api}-vpce-…`) or `x-apigw-api-id`, and its own
/// responder answers. A request naming no API, or one not in `apis`, gets 403 Forbidden.
pub fn route_by_api(apis: Vec<(String, Responder)>) -> Responder {
    Arc::new(move |req: &SeenRequest| {
        let host = req.header("host").unwrap_or("");
        let named = |id: &str| {
            host.starts_with(&format!("{id}.execute-api."))
                || host.starts_with(&format!("{id}-vpce-"))
                || req.header("x-apigw-api-id") == Some(id)
        };
        match apis.iter().find(|(id, _)| named(id)) {
            Some((_, responder)) => responder(req),
            None => Reply::apigw_error(403, "ForbiddenException", "message", "Forbidden"),
        }
    })
}

/// An API deployed to `stages` only: a request for another stage (the path's first segment)
/// gets API Gateway's 403 `Missing Authentication Token`; the others get `then`.
pub fn deployed_stages(stages: &[&str], then: Reply) -> Responder {
    let stages: Vec<String> = stages.iter().map(|s| (*s).to_owned()).collect();
    Arc::new(move |req: &SeenRequest| {
        let stage = req.path.trim_start_matches('/').split(['/', '?']).next().unwrap_or_default();
        if stages.iter().any(|s| s == stage) {
            then.clone()
        } else {
            Reply::apigw_error(403, "MissingAuthenticationTokenException", "message", "Missing Authentication Token")
        }
    })
}

/// A running front end; stopped on drop.
pub struct FrontEnd {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<SeenRequest>>>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for FrontEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrontEnd").field("addr", &self.addr).finish()
    }
}

impl FrontEnd {
    /// Listens on `ip` (port 0 = any free port) with the given certificate, answering with `responder`.
    pub async fn start(
        bind: SocketAddr,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        responder: Responder,
    ) -> FrontEnd {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server certificate");
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind(bind).await.unwrap_or_else(|e| panic!("bind {bind}: {e}"));
        let addr = listener.local_addr().expect("local addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen_task = seen.clone();
        let task = tokio::spawn(async move {
            let mut n = 0u64;
            loop {
                let Ok((tcp, _)) = listener.accept().await else { continue };
                n += 1;
                let acceptor = acceptor.clone();
                let responder = responder.clone();
                let seen = seen_task.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                    let Some(request) = read_head(&mut tls).await else { return };
                    if let Ok(mut s) = seen.lock() {
                        s.push(request.clone());
                    }
                    let reply = responder(&request);
                    write_reply(&mut tls, reply, n).await;
                });
            }
        });
        FrontEnd { addr, seen, task }
    }

    /// A front end for `names` signed by `ca` on 127.0.0.1 and a free port.
    pub async fn for_names(ca: &TestCa, names: &[&str], responder: Responder) -> FrontEnd {
        let (chain, key) = ca.issue(names);
        FrontEnd::start(SocketAddr::from(([127, 0, 0, 1], 0)), chain, key, responder).await
    }

    /// A front end for `names` signed by `ca` on `bind` (e.g. an endpoint address on the
    /// cluster's bridge, port 443, where probe pods reach it).
    pub async fn for_names_at(ca: &TestCa, names: &[&str], bind: SocketAddr, responder: Responder) -> FrontEnd {
        let (chain, key) = ca.issue(names);
        FrontEnd::start(bind, chain, key, responder).await
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Requests received so far.
    pub fn seen(&self) -> Vec<SeenRequest> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for FrontEnd {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn read_head<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> Option<SeenRequest> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        if buf.len() > 64 * 1024 {
            return None;
        }
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk)).await.ok()?.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&buf);
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split_whitespace();
    let method = first.next()?.to_owned();
    let path = first.next()?.to_owned();
    let headers = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Some(SeenRequest { method, path, headers })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

async fn write_reply<S: tokio::io::AsyncWrite + Unpin>(stream: &mut S, reply: Reply, n: u64) {
    let mut reply = reply;
    while let Reply::Delayed(delay, inner) = reply {
        tokio::time::sleep(delay).await;
        reply = *inner;
    }
    match reply {
        Reply::Http { status, headers, body } => {
            let mut head = format!(
                "HTTP/1.1 {status} {}\r\nx-amzn-RequestId: 00000000-0000-4000-8000-{n:012}\r\ncontent-length: {}\r\nconnection: close\r\n",
                reason(status),
                body.len()
            );
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(&body).await;
            let _ = stream.flush().await;
            let _ = stream.shutdown().await;
        }
        Reply::Hang => tokio::time::sleep(Duration::from_secs(3600)).await,
        Reply::EndlessHeaders => {
            if stream.write_all(b"HTTP/1.1 200 OK\r\n").await.is_err() {
                return;
            }
            for i in 0u64.. {
                if stream.write_all(format!("x-filler-{i}: {}\r\n", "a".repeat(100)).as_bytes()).await.is_err() {
                    return;
                }
            }
        }
        Reply::HugeBinaryBody => {
            let size = 10 * 1024 * 1024;
            let head =
                format!("HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: {size}\r\n\r\n");
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let block: Vec<u8> = (0..65536u32).map(|i| (i % 251) as u8).collect();
            for _ in 0..(size / block.len()) {
                if stream.write_all(&block).await.is_err() {
                    return;
                }
            }
        }
        Reply::Delayed(..) => {}
    }
}

/// Writes `pem` to a file in `dir` and returns its path (for CA bundles in tests).
pub fn write_file(dir: &Path, name: &str, contents: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

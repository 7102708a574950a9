//! An HTTP proxy in front of moto_server that can be told to fail the way AWS fails: 500s,
//! throttling (each protocol's own error shape), or connections that die. Tests switch it at
//! run time to show the operator reports the gap, keeps running, and recovers when AWS does.
//!
//! Why a proxy: moto has no fault injection, and killing it loses its state. Each request is
//! proxied on its own upstream connection with `Connection: close`, so no response parsing is
//! needed beyond the request head and body.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the proxy answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum AwsFault {
    /// Pass every request to moto.
    None = 0,
    /// HTTP 500 InternalError / InternalFailure.
    ServerError = 1,
    /// Throttling: EC2's 503 `RequestLimitExceeded`, API Gateway's 429
    /// `TooManyRequestsException`, the JSON services' 400 `ThrottlingException`.
    Throttle = 2,
    /// The connection is closed before any answer (AWS unreachable mid-call).
    Drop = 3,
}

/// A running proxy; stopped on drop.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    mode: Arc<AtomicU8>,
    faulted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 8 * 1024 * 1024;

impl FaultProxy {
    /// Listens on 127.0.0.1 and a free port, passing to `upstream` until told otherwise.
    pub async fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap_or_else(|e| panic!("bind proxy: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("proxy addr: {e}"));
        let mode = Arc::new(AtomicU8::new(AwsFault::None as u8));
        let faulted = Arc::new(AtomicUsize::new(0));
        let (m, f) = (mode.clone(), faulted.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else { continue };
                let (m, f) = (m.clone(), f.clone());
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(Duration::from_secs(60), serve(client, upstream, &m, &f)).await;
                });
            }
        });
        FaultProxy { addr, mode, faulted, task }
    }

    /// The endpoint URL to give the SDK (`AWS_ENDPOINT_URL`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Switches how the next requests are answered.
    pub fn set(&self, fault: AwsFault) {
        self.mode.store(fault as u8, Ordering::SeqCst);
    }

    /// How many requests were answered with a fault so far.
    pub fn faulted(&self) -> usize {
        self.faulted.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut client: TcpStream, upstream: SocketAddr, mode: &AtomicU8, faulted: &AtomicUsize) -> Option<()> {
    let (head, body) = read_request(&mut client).await?;
    let fault = match mode.load(Ordering::SeqCst) {
        1 => AwsFault::ServerError,
        2 => AwsFault::Throttle,
        3 => AwsFault::Drop,
        _ => AwsFault::None,
    };
    if fault != AwsFault::None {
        faulted.fetch_add(1, Ordering::SeqCst);
        if fault == AwsFault::Drop {
            return Some(());
        }
        let (status, content_type, extra, body) = error_for(&head, &body, fault);
        let reply = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        client.write_all(reply.as_bytes()).await.ok()?;
        return Some(());
    }
    // Pass: the same request on a fresh upstream connection that closes after the response.
    let mut head_out = String::new();
    for (i, line) in head.split("\r\n").enumerate() {
        if i > 0 && line.to_ascii_lowercase().starts_with("connection:") {
            continue;
        }
        head_out.push_str(line);
        head_out.push_str("\r\n");
    }
    head_out.push_str("Connection: close\r\n\r\n");
    let mut up = TcpStream::connect(upstream).await.ok()?;
    up.write_all(head_out.as_bytes()).await.ok()?;
    up.write_all(&body).await.ok()?;
    tokio::io::copy(&mut up, &mut client).await.ok()?;
    Some(())
}

/// The request head (without the blank line) and its body (Content-Length only: the SDK's
/// requests to these services are never chunked).
async fn read_request(client: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD {
            return None;
        }
        let n = client.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..end].to_vec()).ok()?;
    let length = head
        .lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.trim().eq_ignore_ascii_case("content-length")))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    if length > MAX_BODY {
        return None;
    }
    let mut body = buf[end + 4..].to_vec();
    while body.len() < length {
        let n = client.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Some((head, body))
}

/// The error each AWS protocol returns for `fault`: (status line, content type, extra headers, body).
fn error_for(head: &str, body: &[u8], fault: AwsFault) -> (&'static str, &'static str, String, String) {
    let lower = head.to_ascii_lowercase();
    let json_target = lower.contains("x-amz-target:");
    let rest_json = lower.starts_with("get /restapis")
        || lower.starts_with("get /domainnames")
        || lower.starts_with("post /restapis")
        || lower.contains("content-type: application/json");
    let query = String::from_utf8_lossy(body).contains("Action=");
    let throttle = fault == AwsFault::Throttle;
    if query && !json_target {
        // EC2 / STS: XML errors.
        let (status, code, message) = if throttle {
            ("503 Service Unavailable", "RequestLimitExceeded", "Request limit exceeded.")
        } else {
            ("500 Internal Server Error", "InternalError", "An internal error has occurred")
        };
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>fault-proxy</RequestID></Response>"
        );
        return (status, "text/xml", String::new(), xml);
    }
    if json_target && !rest_json {
        // JSON 1.1 services (CloudWatch Logs).
        let (status, code) = if throttle {
            ("400 Bad Request", "ThrottlingException")
        } else {
            ("500 Internal Server Error", "ServiceUnavailableException")
        };
        return (
            status,
            "application/x-amz-json-1.1",
            String::new(),
            format!("{{\"__type\":\"{code}\",\"message\":\"injected by the test\"}}"),
        );
    }
    // API Gateway (REST JSON).
    let (status, code) = if throttle {
        ("429 Too Many Requests", "TooManyRequestsException")
    } else {
        ("500 Internal Server Error", "InternalFailure")
    };
    (
        status,
        "application/json",
        format!("x-amzn-ErrorType: {code}\r\n"),
        "{\"message\":\"injected by the test\"}".to_owned(),
    )
}

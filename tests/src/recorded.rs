//! Recorded AWS responses served over HTTP to the real SDK, for the calls moto lacks.
//!
//! Only for what moto_server cannot answer (see `tests/fixtures/aws/README.md`); everything
//! moto implements is tested against moto. Routes match the request path exactly and, when
//! given, a query fragment; unmatched requests get API Gateway's 404 NotFoundException.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One recorded answer.
#[derive(Clone, Debug)]
pub struct Route {
    pub path: String,
    /// A substring the query must contain (e.g. `resourceOwner=SELF`), when set.
    pub query_contains: Option<String>,
    pub body: String,
}

impl Route {
    /// `path` answered with the contents of `tests/fixtures/aws/<file>`.
    pub fn fixture(path: &str, query_contains: Option<&str>, file: &str) -> Route {
        let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/aws").join(file);
        let body = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("read {}: {e}", full.display()));
        Route { path: path.to_owned(), query_contains: query_contains.map(str::to_owned), body }
    }
}

/// A running recorded-response server; stopped on drop.
#[derive(Debug)]
pub struct RecordedAws {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl RecordedAws {
    pub async fn start(routes: Vec<Route>) -> RecordedAws {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen_task = seen.clone();
        let routes = Arc::new(routes);
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let routes = routes.clone();
                let seen = seen_task.clone();
                tokio::spawn(async move {
                    loop {
                        let mut head = Vec::new();
                        let mut byte = [0u8; 1];
                        while !head.ends_with(b"\r\n\r\n") {
                            match stream.read(&mut byte).await {
                                Ok(1) => head.push(byte[0]),
                                _ => return,
                            }
                            if head.len() > 64 * 1024 {
                                return;
                            }
                        }
                        let text = String::from_utf8_lossy(&head).to_string();
                        let target = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
                        if let Ok(mut s) = seen.lock() {
                            s.push(target.clone());
                        }
                        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
                        let route = routes
                            .iter()
                            .find(|r| r.path == path && r.query_contains.as_deref().is_none_or(|q| query.contains(q)));
                        let (status, body) = match route {
                            Some(r) => ("200 OK", r.body.clone()),
                            None => (
                                "404 Not Found",
                                r#"{"message":"Invalid domain name identifier specified"}"#.to_owned(),
                            ),
                        };
                        let extra = if route.is_none() { "x-amzn-ErrorType: NotFoundException\r\n" } else { "" };
                        let response = format!(
                            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n{extra}x-amzn-RequestId: recorded\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if stream.write_all(response.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        RecordedAws { addr, seen, task }
    }

    pub fn endpoint_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Request targets (path + query) received so far.
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for RecordedAws {
    fn drop(&mut self) {
        self.task.abort();
    }
}

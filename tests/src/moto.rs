//! moto_server: the AWS APIs (apigateway, ec2, logs) on a loopback port.
//!
//! One server per test, so state never leaks between tests. The SDK reaches it through an
//! explicit endpoint URL and dummy credentials; [`Moto::env`] gives the same as the standard
//! `AWS_ENDPOINT_URL` variables for a child process (the plugin, the probe).

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::peers::{ScratchDir, free_port, require_program, tail, wait_until};

/// The moto version the suite is written against (pinned in tests/substrate/install.sh).
pub const MOTO_VERSION: &str = "5.2.5";

/// A running moto_server; killed when dropped.
#[derive(Debug)]
pub struct Moto {
    child: Child,
    addr: SocketAddr,
    log: std::path::PathBuf,
    _dir: ScratchDir,
}

impl Moto {
    /// Starts moto_server on 127.0.0.1 and a free port and waits until it answers.
    pub fn start() -> Moto {
        Moto::start_with_env(&[])
    }

    /// As [`Moto::start`], with extra environment for the server (e.g.
    /// `INITIAL_NO_AUTH_ACTION_COUNT` to enforce IAM after the first N requests).
    pub fn start_with_env(env: &[(&str, &str)]) -> Moto {
        Moto::start_at(IpAddr::V4(Ipv4Addr::LOCALHOST), env)
    }

    /// Starts moto_server on `ip` (an address of this host, e.g. the local cluster's node
    /// address, where pods reach it: an operator pod's `AWS_ENDPOINT_URL`) and a free port.
    pub fn start_on(ip: IpAddr) -> Moto {
        Moto::start_at(ip, &[])
    }

    fn start_at(ip: IpAddr, env: &[(&str, &str)]) -> Moto {
        let program = require_program(
            "moto_server",
            &format!("PyPI package `moto[server]=={MOTO_VERSION}` (pip install 'moto[server]=={MOTO_VERSION}')"),
        );
        let addr = SocketAddr::new(ip, free_port(ip));
        let dir = ScratchDir::new("moto");
        let log = dir.path().join("moto.log");
        let log_file = std::fs::File::create(&log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let mut child = Command::new(program)
            .args(["-H", &ip.to_string(), "-p", &addr.port().to_string()])
            .env("MOTO_ALLOW_NONEXISTENT_REGION", "false")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap_or_else(|e| panic!("dup log: {e}")))
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn moto_server: {e}"));
        let log_diag = log.clone();
        let mut exited = None;
        wait_until(
            &format!("moto_server on {addr}"),
            Duration::from_secs(60),
            || {
                if let Ok(Some(status)) = child.try_wait() {
                    exited = Some(status);
                    return true;
                }
                http_get(addr, "/moto-api/data.json").is_some_and(|(status, _)| status == 200)
            },
            || tail(&log_diag, 30),
        );
        if let Some(status) = exited {
            panic!("moto_server exited with {status} at start:\n{}", tail(&log, 30));
        }
        Moto { child, addr, log, _dir: dir }
    }

    /// Where moto listens (e.g. for a [`crate::faults::FaultProxy`] in front of it).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDRESS:PORT` (127.0.0.1 unless started with [`Moto::start_on`]).
    pub fn endpoint_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Environment for a child process that should talk to this moto with dummy credentials.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint_url()),
            ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
            ("AWS_SESSION_TOKEN", "testing".to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ]
    }

    /// An SDK configuration for this moto: explicit endpoint, dummy static credentials, region.
    pub async fn sdk_config(&self, region: &str) -> aws_config::SdkConfig {
        self.sdk_config_as(region, "testing", "testing").await
    }

    /// An SDK configuration for this moto with the given access key (an IAM user's, when moto
    /// enforces IAM).
    pub async fn sdk_config_as(&self, region: &str, access_key_id: &str, secret: &str) -> aws_config::SdkConfig {
        let options = pvtapi_engine::aws::SdkOptions {
            region: Some(region.to_owned()),
            endpoint_url: Some(self.endpoint_url()),
            max_attempts: 1,
            ..Default::default()
        };
        let base = pvtapi_engine::aws::load_sdk_config(&options).await;
        base.into_builder()
            .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_credential_types::Credentials::new(access_key_id, secret, None, None, "pvtapi-testkit"),
            ))
            .build()
    }

    /// Creates IAM user `name` with an inline policy allowing exactly `actions` and returns its
    /// access key and secret. Uses boto3 (installed with moto) so the Rust suite needs no IAM SDK.
    pub fn iam_user(&self, name: &str, actions: &[&str]) -> (String, String) {
        let script = r#"
import boto3, json, sys
url, name, actions = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
iam = boto3.client("iam", endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
iam.create_user(UserName=name)
iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}))
k = iam.create_access_key(UserName=name)["AccessKey"]
print(k["AccessKeyId"], k["SecretAccessKey"])
"#;
        let actions = serde_json::to_string(actions).unwrap_or_default();
        let out = Command::new("python3")
            .args(["-c", script, &self.endpoint_url(), name, &actions])
            .output()
            .unwrap_or_else(|e| panic!("run python3 for IAM setup: {e}"));
        assert!(out.status.success(), "IAM setup failed: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        let mut parts = text.split_whitespace();
        match (parts.next(), parts.next()) {
            (Some(k), Some(s)) => (k.to_owned(), s.to_owned()),
            _ => panic!("IAM setup printed no key: {text}"),
        }
    }

    /// The requests moto has logged (one line per request: method, path, status).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.0 GET for readiness checks; returns the status and body.
fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(300)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.take(1 << 20).read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Some((status, body))
}

//! A real DNS server (dnsmasq from Debian's `dnsmasq-base`) answering the records a test sets.
//!
//! Each test starts its own server on a free loopback port (never 5353, which is mDNS) with a
//! generated config file, so tests run in parallel without sharing state. Names under the
//! domains in [`Zone::local_domains`] that have no record answer NXDOMAIN — exactly what an
//! unassociated `{api}-{vpce}` alias host looks like; other names answer REFUSED.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::peers::{ScratchDir, free_port, require_program, tail, wait_until};

/// One DNS record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// A or AAAA (by the address family), with a TTL in seconds.
    Address { name: String, ip: IpAddr, ttl: u32 },
    /// CNAME `name` → `target`.
    Cname { name: String, target: String, ttl: u32 },
    /// TXT: the name exists but has no A/AAAA (a NODATA answer for address queries).
    Txt { name: String, text: String },
}

impl Record {
    /// An A/AAAA record with a 60 s TTL.
    pub fn addr(name: &str, ip: impl Into<IpAddr>) -> Record {
        Record::Address { name: name.to_owned(), ip: ip.into(), ttl: 60 }
    }

    /// A CNAME record with a 60 s TTL.
    pub fn cname(name: &str, target: &str) -> Record {
        Record::Cname { name: name.to_owned(), target: target.to_owned(), ttl: 60 }
    }
}

/// The records a server answers, and the domains it is authoritative for (NXDOMAIN for the rest).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Zone {
    pub records: Vec<Record>,
    pub local_domains: Vec<String>,
}

impl Default for Zone {
    fn default() -> Self {
        Zone { records: Vec::new(), local_domains: vec!["amazonaws.com".to_owned()] }
    }
}

impl Zone {
    pub fn new() -> Zone {
        Zone::default()
    }

    pub fn with(mut self, record: Record) -> Zone {
        self.records.push(record);
        self
    }

    fn dnsmasq_conf(&self) -> String {
        let mut conf = String::new();
        for domain in &self.local_domains {
            let _ = writeln!(conf, "local=/{domain}/");
        }
        for record in &self.records {
            let _ = match record {
                Record::Address { name, ip, ttl } => writeln!(conf, "host-record={name},{ip},{ttl}"),
                Record::Cname { name, target, ttl } => writeln!(conf, "cname={name},{target},{ttl}"),
                Record::Txt { name, text } => writeln!(conf, "txt-record={name},\"{text}\""),
            };
        }
        conf
    }
}

/// A running dnsmasq; killed when dropped.
#[derive(Debug)]
pub struct DnsServer {
    child: Child,
    addr: SocketAddr,
    log: std::path::PathBuf,
    _dir: ScratchDir,
}

impl DnsServer {
    /// Starts dnsmasq on 127.0.0.1 and a free port, answering `zone`.
    pub fn start(zone: &Zone) -> DnsServer {
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        DnsServer::start_at(None, SocketAddr::new(ip, free_port(ip)), zone)
    }

    /// Starts dnsmasq at `addr`, inside network namespace `netns` when given.
    pub fn start_at(netns: Option<&str>, addr: SocketAddr, zone: &Zone) -> DnsServer {
        let dnsmasq = require_program("dnsmasq", "Debian package `dnsmasq-base` (apt-get install -y dnsmasq-base)");
        let dir = ScratchDir::new("dns");
        let conf = dir.path().join("dnsmasq.conf");
        std::fs::write(&conf, zone.dnsmasq_conf()).unwrap_or_else(|e| panic!("write {}: {e}", conf.display()));
        let log = dir.path().join("dnsmasq.log");
        let log_file = std::fs::File::create(&log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new(require_program("ip", "Debian package `iproute2`"));
                c.args(["netns", "exec", ns]).arg(&dnsmasq);
                c
            }
            None => Command::new(&dnsmasq),
        };
        cmd.args([
            "--keep-in-foreground",
            "--no-resolv",
            "--no-hosts",
            "--no-poll",
            "--pid-file=",
            "--user=root",
            "--bind-interfaces",
            "--log-queries",
            "--log-facility=-",
        ])
        .arg(format!("--conf-file={}", conf.display()))
        .arg(format!("--listen-address={}", addr.ip()))
        .arg(format!("--port={}", addr.port()))
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().unwrap_or_else(|e| panic!("dup log: {e}")))
        .stderr(log_file);
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn dnsmasq: {e}"));
        let check_addr = addr;
        let in_host_ns = netns.is_none();
        let log_for_diag = log.clone();
        let mut exited = None;
        wait_until(
            &format!("dnsmasq on {addr}"),
            Duration::from_secs(10),
            || {
                if let Ok(Some(status)) = child.try_wait() {
                    exited = Some(status);
                    return true;
                }
                // Inside another namespace we cannot connect from here: the log line is the signal.
                if in_host_ns {
                    TcpStream::connect_timeout(&check_addr, Duration::from_millis(200)).is_ok()
                } else {
                    std::fs::read_to_string(&log_for_diag).is_ok_and(|l| l.contains("started, version"))
                }
            },
            || tail(&log_for_diag, 20),
        );
        if let Some(status) = exited {
            panic!("dnsmasq exited with {status} at start:\n{}", tail(&log, 20));
        }
        DnsServer { child, addr, log, _dir: dir }
    }

    /// Where the server listens (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The queries the server has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How a [`HostileDnsServer`] answers every query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hostility {
    /// `name → loop.<name>` → `name`: a CNAME loop (dnsmasq refuses to serve one).
    CnameLoop,
    /// SERVFAIL, as a resolver whose upstream is broken answers.
    ServFail,
    /// Bytes that are not a DNS message.
    Garbage,
}

/// A DNS server that misbehaves on purpose: real UDP on a real socket, answers built with
/// hickory's wire format, for the answers a well-behaved server like dnsmasq will not give.
#[derive(Debug)]
pub struct HostileDnsServer {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl HostileDnsServer {
    /// Starts on 127.0.0.1 and a free port (needs a Tokio runtime).
    pub async fn start(mode: Hostility) -> HostileDnsServer {
        use hickory_resolver::proto::op::{Message, MessageType, ResponseCode};
        use hickory_resolver::proto::rr::rdata::CNAME;
        use hickory_resolver::proto::rr::{Name, RData, Record as DnsRecord};

        let socket = tokio::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.expect("bind UDP");
        let addr = socket.local_addr().expect("local addr");
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, peer)) = socket.recv_from(&mut buf).await else { continue };
                if mode == Hostility::Garbage {
                    // Echo the id so the client reads the packet, then nonsense.
                    let mut junk = buf[..2.min(n)].to_vec();
                    junk.extend_from_slice(&[0xff; 9]);
                    let _ = socket.send_to(&junk, peer).await;
                    continue;
                }
                let Ok(query) = Message::from_vec(&buf[..n]) else { continue };
                let Some(q) = query.queries.first().cloned() else { continue };
                let name = q.name().clone();
                let mut response = Message::new(query.metadata.id, MessageType::Response, query.metadata.op_code);
                response.metadata.recursion_desired = query.metadata.recursion_desired;
                response.metadata.recursion_available = true;
                response.add_query(q);
                if mode == Hostility::ServFail {
                    response.metadata.response_code = ResponseCode::ServFail;
                } else {
                    let Ok(other) = Name::from_ascii(format!("loop.{name}")) else { continue };
                    response.metadata.response_code = ResponseCode::NoError;
                    response.add_answer(DnsRecord::from_rdata(name.clone(), 60, RData::CNAME(CNAME(other.clone()))));
                    response.add_answer(DnsRecord::from_rdata(other, 60, RData::CNAME(CNAME(name))));
                }
                if let Ok(bytes) = response.to_vec() {
                    let _ = socket.send_to(&bytes, peer).await;
                }
            }
        });
        HostileDnsServer { addr, task }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for HostileDnsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

//! The DNS resolver the probe uses, and how a user names a nameserver on the command line.
//!
//! By default the probe resolves exactly like the workload next to it: through the pod's
//! `/etc/resolv.conf`. `--nameserver IP[:PORT]` overrides that, for a local resolver under test
//! or to ask the VPC's Amazon DNS (`169.254.169.253`) directly and compare.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::{Resolver, TokioResolver};

/// A nameserver given as `IP`, `IP:PORT` or `[IPv6]:PORT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Nameserver(pub SocketAddr);

/// A nameserver string that is not `IP`, `IP:PORT` or `[IPv6]:PORT`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid nameserver {0:?}: expected IP, IP:PORT or [IPv6]:PORT, e.g. 10.0.0.2 or 127.0.0.1:15353")]
pub struct InvalidNameserver(pub String);

impl FromStr for Nameserver {
    type Err = InvalidNameserver;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Nameserver(SocketAddr::new(ip, 53)));
        }
        match s.parse::<SocketAddr>() {
            Ok(addr) if addr.port() != 0 => Ok(Nameserver(addr)),
            _ => Err(InvalidNameserver(s.to_owned())),
        }
    }
}

impl fmt::Display for Nameserver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.port() == 53 { write!(f, "{}", self.0.ip()) } else { write!(f, "{}", self.0) }
    }
}

/// Why a resolver could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ResolverError {
    /// `/etc/resolv.conf` (or the platform equivalent) could not be read.
    #[error("cannot read the system resolver configuration (/etc/resolv.conf): {0}")]
    SystemConfig(String),
    /// hickory refused the configuration.
    #[error("cannot build the DNS resolver: {0}")]
    Build(String),

    /// No nameserver can be reached at all: this host has no route to any of them.
    #[error("no network: no route to any DNS resolver ({0})")]
    NoRoute(String),
}

/// The nameserver addresses queries go to: the one given, or resolv.conf's (empty when it
/// cannot be read; the resolver itself reports that).
pub fn nameserver_addresses(nameserver: Option<Nameserver>) -> Vec<SocketAddr> {
    match nameserver {
        Some(Nameserver(addr)) => vec![addr],
        None => system_nameservers().unwrap_or_default(),
    }
}

/// resolv.conf's nameservers with their ports.
fn system_nameservers() -> Result<Vec<SocketAddr>, ResolverError> {
    let (config, _) =
        hickory_resolver::system_conf::read_system_conf().map_err(|e| ResolverError::SystemConfig(e.to_string()))?;
    Ok(config
        .name_servers()
        .iter()
        .map(|ns| SocketAddr::new(ns.ip, ns.connections.first().map_or(53, |c| c.port)))
        .collect())
}

/// Fails with [`ResolverError::NoRoute`] when no configured nameserver has a route from here.
///
/// A UDP `connect` only looks the route up — no packet is sent — so this costs nothing and tells
/// "this machine has no network" (the tool cannot do its job) apart from "the resolver does not
/// answer" (a finding about the workload's DNS).
pub fn check_route_to_resolvers(nameserver: Option<Nameserver>) -> Result<(), ResolverError> {
    let addrs: Vec<SocketAddr> = match nameserver {
        Some(Nameserver(addr)) => vec![addr],
        None => system_nameservers()?,
    };
    let mut failures = Vec::new();
    for addr in &addrs {
        let bind: SocketAddr = if addr.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
        match std::net::UdpSocket::bind(bind).and_then(|s| s.connect(addr)) {
            Ok(()) => return Ok(()),
            Err(e) => failures.push(format!("{addr}: {e}")),
        }
    }
    if addrs.is_empty() {
        return Err(ResolverError::NoRoute("the resolver configuration lists no nameserver".into()));
    }
    Err(ResolverError::NoRoute(failures.join("; ")))
}

/// Builds a resolver: the system's configuration, or exactly one nameserver when given.
///
/// Caching is off (each run must see what DNS says now) and every query is bounded by `timeout`
/// with a single attempt per server, so a silent resolver costs at most `timeout`.
pub fn build_resolver(nameserver: Option<Nameserver>, timeout: Duration) -> Result<TokioResolver, ResolverError> {
    let (config, mut opts) = match nameserver {
        Some(Nameserver(addr)) => {
            let mut udp = ConnectionConfig::udp();
            udp.port = addr.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = addr.port();
            let server = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
            (ResolverConfig::from_parts(None, vec![], vec![server]), ResolverOpts::default())
        }
        None => {
            hickory_resolver::system_conf::read_system_conf().map_err(|e| ResolverError::SystemConfig(e.to_string()))?
        }
    };
    opts.timeout = timeout;
    opts.attempts = 1;
    opts.cache_size = 0;
    opts.use_hosts_file = hickory_resolver::config::ResolveHosts::Never;
    Resolver::builder_with_config(config, TokioRuntimeProvider::default())
        .with_options(opts)
        .build()
        .map_err(|e| ResolverError::Build(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nameserver_forms() {
        let cases = [
            ("10.0.0.2", "10.0.0.2:53"),
            ("127.0.0.1:15353", "127.0.0.1:15353"),
            ("[::1]:5300", "[::1]:5300"),
            ("::1", "[::1]:53"),
            (" 169.254.169.253 ", "169.254.169.253:53"),
        ];
        for (input, want) in cases {
            let ns: Nameserver = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(ns.0.to_string(), want, "{input}");
        }
    }

    #[test]
    fn a_reachable_resolver_has_a_route() {
        // Loopback always has a route; nothing needs to listen (UDP connect sends nothing).
        assert!(check_route_to_resolvers(Some("127.0.0.1:9".parse().unwrap())).is_ok());
    }

    #[test]
    fn bad_nameservers_are_named_in_the_error() {
        for input in ["", "dns.google", "10.0.0.2:", "10.0.0.2:0", "10.0.0.2:99999", "1.2.3", "::1:53:x"] {
            let err = input.parse::<Nameserver>().unwrap_err();
            assert!(err.to_string().contains(&format!("{:?}", input.trim())), "{err}");
        }
    }
}

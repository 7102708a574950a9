//! Network namespaces for real TCP failures without sending a packet off the machine.
//!
//! [`NetNs::create`] makes a namespace joined to the host by a veth pair on a /30 from
//! 198.18.0.0/16 (RFC 2544 benchmarking space, never routed on the Internet):
//!
//! - [`NetNs::refusing`]: the namespace's own address; nothing listens, so a SYN gets a RST —
//!   "connection refused".
//! - [`NetNs::blackhole`]: a private address (10.254.0.0/16, a /32 per namespace) the host
//!   routes into the namespace, where a `blackhole` route drops the packet silently — a real
//!   connect *timeout*, as with a security group that lacks 443. Packets to it never leave the
//!   machine: the host route points into the namespace.
//!
//! [`NetNs::isolated`] makes a namespace with only loopback and no default route: a probe run in
//! it with `ip netns exec` that dials a "public" address it resolved fails locally at once.
//!
//! Everything is torn down on drop; `tests/run.sh` also removes leftovers named `pvt*`.

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::peers::{require_program, require_root};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A network namespace; deleted (with its veth pair and host routes) on drop.
#[derive(Debug)]
pub struct NetNs {
    name: String,
    host_veth: Option<String>,
    host_addr: Option<Ipv4Addr>,
    ns_addr: Option<Ipv4Addr>,
    blackhole: Option<Ipv4Addr>,
}

fn ip(args: &[&str]) {
    let program = require_program("ip", "Debian package `iproute2` (apt-get install -y iproute2)");
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("run ip {args:?}: {e}"));
    assert!(out.status.success(), "`ip {}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
}

fn in_ns(ns: &str, args: &[&str]) {
    let mut full = vec!["netns", "exec", ns];
    full.extend_from_slice(args);
    ip(&full);
}

fn unique_index() -> u32 {
    // Spread over 8192 /30 blocks by pid and a per-process counter; test binaries run one at a time.
    (std::process::id().wrapping_mul(131) + COUNTER.fetch_add(1, Ordering::Relaxed)) % 8192
}

impl NetNs {
    /// A namespace with a veth link to the host, a refusing address and a blackholed address.
    pub fn create() -> NetNs {
        require_root("creating a network namespace");
        let idx = unique_index();
        let name = format!("pvt{}-{idx}", std::process::id() % 100_000);
        let host_veth = format!("pvh{idx}");
        let ns_veth = format!("pvn{idx}");
        // 198.18.0.0/16: /30 number idx. Blackhole targets are private (10.254.0.0/16, one /32 per
        // namespace, routed into it) so a diagnosis treats them like a VPC endpoint's addresses.
        let base = u32::from(Ipv4Addr::new(198, 18, 0, 0)) + idx * 4;
        let host_addr = Ipv4Addr::from(base + 1);
        let ns_addr = Ipv4Addr::from(base + 2);
        let blackhole = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 254, 0, 0)) + idx * 4 + 1);
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        let _ = Command::new("ip").args(["link", "del", &host_veth]).output();
        let _ = Command::new("ip").args(["route", "del", &format!("{blackhole}/32")]).output();
        ip(&["netns", "add", &name]);
        let mut ns = NetNs { name: name.clone(), host_veth: None, host_addr: None, ns_addr: None, blackhole: None };
        in_ns(&name, &["ip", "link", "set", "lo", "up"]);
        ip(&["link", "add", &host_veth, "type", "veth", "peer", "name", &ns_veth, "netns", &name]);
        ns.host_veth = Some(host_veth.clone());
        ip(&["addr", "add", &format!("{host_addr}/30"), "dev", &host_veth]);
        ip(&["link", "set", &host_veth, "up"]);
        in_ns(&name, &["ip", "addr", "add", &format!("{ns_addr}/30"), "dev", &ns_veth]);
        in_ns(&name, &["ip", "link", "set", &ns_veth, "up"]);
        in_ns(&name, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        in_ns(&name, &["ip", "route", "add", "blackhole", &format!("{blackhole}/32")]);
        ip(&["route", "add", &format!("{blackhole}/32"), "via", &ns_addr.to_string()]);
        ns.host_addr = Some(host_addr);
        ns.ns_addr = Some(ns_addr);
        ns.blackhole = Some(blackhole);
        ns
    }

    /// A namespace with only loopback up and no routes at all.
    pub fn isolated() -> NetNs {
        require_root("creating a network namespace");
        let idx = unique_index();
        let name = format!("pvt{}-i{idx}", std::process::id() % 100_000);
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        ip(&["netns", "add", &name]);
        in_ns(&name, &["ip", "link", "set", "lo", "up"]);
        NetNs { name, host_veth: None, host_addr: None, ns_addr: None, blackhole: None }
    }

    /// The namespace's name, for `ip netns exec NAME …`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// An address where TCP connects are refused (RST).
    pub fn refusing(&self) -> Ipv4Addr {
        self.ns_addr.expect("refusing() needs NetNs::create(), not isolated()")
    }

    /// An address where packets are silently dropped: connects time out.
    pub fn blackhole(&self) -> Ipv4Addr {
        self.blackhole.expect("blackhole() needs NetNs::create(), not isolated()")
    }

    /// The host's end of the veth pair, reachable from inside the namespace.
    pub fn host_addr(&self) -> Ipv4Addr {
        self.host_addr.expect("host_addr() needs NetNs::create(), not isolated()")
    }

    /// A `Command` that runs `program` inside the namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(require_program("ip", "Debian package `iproute2`"));
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        if let Some(bh) = self.blackhole {
            let _ = Command::new("ip").args(["route", "del", &format!("{bh}/32")]).output();
        }
        if let Some(veth) = &self.host_veth {
            let _ = Command::new("ip").args(["link", "del", veth]).output();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.name]).output();
    }
}

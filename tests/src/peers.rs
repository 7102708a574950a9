//! Finding the peer programs, and failing loudly with an install hint when one is missing.

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How to get the peers: the one command that installs everything.
pub const INSTALL_HINT: &str =
    "run `bash tests/run.sh` (installs and starts every peer) or `bash tests/substrate/install.sh`";

/// Finds `name` on `PATH` (or at an absolute path) or panics naming the package that provides it.
pub fn require_program(name: &str, provided_by: &str) -> PathBuf {
    if Path::new(name).is_absolute() && Path::new(name).is_file() {
        return PathBuf::from(name);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let extra = ["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from);
    for dir in std::env::split_paths(&path).chain(extra) {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("peer program `{name}` not found: it is provided by {provided_by}; {INSTALL_HINT}");
}

/// Panics unless the test runs as root (network namespaces and veth pairs need CAP_NET_ADMIN).
pub fn require_root(what: &str) {
    // /proc/self/status "Uid:" real effective saved fs
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().nth(1))
        .unwrap_or("");
    assert_eq!(euid, "0", "{what} needs root (CAP_NET_ADMIN); run the suite as root, as CI does");
}

/// A loopback port free for both UDP and TCP at the time of the call.
pub fn free_port(ip: std::net::IpAddr) -> u16 {
    for _ in 0..100 {
        let Ok(tcp) = TcpListener::bind(SocketAddr::new(ip, 0)) else { continue };
        let Ok(addr) = tcp.local_addr() else { continue };
        if UdpSocket::bind(addr).is_ok() {
            return addr.port();
        }
    }
    panic!("no free port on {ip}");
}

/// Waits until `ready` returns true, or panics after `timeout` with `what` and `diagnostics()`.
pub fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool, diagnostics: impl Fn() -> String) {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if ready() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} not ready after {timeout:?}\n{}", diagnostics());
}

/// The last `lines` lines of a log file, for failure messages.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| format!("(cannot read {}: {e})", path.display()));
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A scratch directory removed on drop.
#[derive(Debug)]
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    /// Creates `$TMPDIR/pvtapi-<what>-<pid>-<n>`.
    pub fn new(what: &str) -> ScratchDir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "pvtapi-{what}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        ScratchDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

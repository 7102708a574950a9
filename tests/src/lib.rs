//! Real peers for the end-to-end suites, started and stopped by the tests themselves.
//!
//! Why real peers: pvtapi's value is a *correct* diagnosis, and the only way to show that is
//! against the servers the product meets in the field — the kube-apiserver's admission rules,
//! the AWS API shapes (via moto_server), a real DNS server, real TCP timeouts and refusals.
//!
//! Fast, per-test peers (dnsmasq, moto_server, network namespaces) are started here, one per
//! test, so tests stay isolated and parallel. The control plane is slow to start and is started
//! once by `tests/run.sh` (or `tests/substrate/cluster.sh start`); tests find it through
//! `PVTAPI_KUBECONFIG`. A missing peer is a loud test failure that says how to install it —
//! never a skip.

pub mod apigw;
pub mod cluster;
pub mod control_plane;
pub mod dns;
pub mod faults;
pub mod moto;
pub mod netns;
pub mod operator;
pub mod peers;
pub mod recorded;
pub mod scenario;
pub mod world;

//! The library half of `pvtapi-operator`: what the binary and the end-to-end suites share.
//!
//! The controller builds probe pods here, and the tests on the real node run exactly these pods,
//! so what Pod Security admits and the kubelet runs in the tests is what the operator creates.
//! The pure parts (report parsing, run-outcome classification, scheduling, status) are separate
//! modules with table tests; I/O lives in `controller`, `aws`, `leader` and `http`.

pub mod aws;
pub mod cni;
pub mod controller;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod netpol;
pub mod outcome;
pub mod probe_pod;
pub mod rbac;
pub mod report;
pub mod run;
pub mod schedule;
pub mod status;
pub mod telemetry;
pub mod workload;

//! The library half of `pvtapi-operator`: what the binary and the end-to-end suites share.
//!
//! The controller builds probe pods here, and the tests on the real node run exactly these pods,
//! so what Pod Security admits and the kubelet runs in the tests is what the operator creates.

pub mod probe_pod;

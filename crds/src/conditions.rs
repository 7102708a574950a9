//! Condition types and reasons the operator writes into `status.conditions`.
//!
//! kstatus-style: `Ready` says the check itself is operating and its result is current; it does
//! not go False when the *target* API is down, so GitOps syncs are never blocked by a target
//! outage. The outcome lives in `Reachable`, whose reason is the root-cause code.

/// The check is operating and its last result is current.
pub const READY: &str = "Ready";
/// A run is in progress or the spec changed since the last result.
pub const RECONCILING: &str = "Reconciling";
/// The check cannot make progress without a human (invalid spec, missing permission).
pub const STALLED: &str = "Stalled";
/// The outcome: True when the API answered as expected; reason = root-cause code.
pub const REACHABLE: &str = "Reachable";
/// Per-area: the hostname resolved to the endpoint's addresses.
pub const DNS_RESOLVED: &str = "DnsResolved";
/// Per-area: TCP 443 to the endpoint connected.
pub const ENDPOINT_REACHABLE: &str = "EndpointReachable";
/// Per-area: the TLS handshake succeeded and the certificate matched.
pub const TLS_ESTABLISHED: &str = "TlsEstablished";
/// Per-area: API Gateway and the policies let the call through.
pub const AUTHORIZED: &str = "Authorized";
/// Per-area: the AWS facts that explain a failure could all be read.
pub const AWS_INSPECTED: &str = "AwsInspected";
/// The result changed between healthy and failing several times within the history window:
/// the failure is intermittent. `Reachable` keeps the current root cause as its reason.
pub const FLAPPING: &str = "Flapping";

/// The annotation whose every new value runs a check at once (`kubectl pvtapi check NAME`).
pub const RUN_NOW_ANNOTATION: &str = "pvtapi.io/run-now";

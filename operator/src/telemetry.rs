//! Logging: JSON lines on stderr, level from `RUST_LOG`.
//!
//! Why JSON: the operator runs as a pod whose logs go to a collector; one object per line with
//! the check's namespace and name as fields is what log pipelines index. Credentials never reach
//! a log line: the engine redacts proxy userinfo and credential-helper output, and the operator
//! logs codes, names and bounded messages only.

use tracing_subscriber::EnvFilter;

/// The filter when `RUST_LOG` is unset: our crates at info, the libraries quieter.
pub const DEFAULT_FILTER: &str =
    "info,kube=warn,kube_lease_manager=warn,aws_config=warn,aws_smithy_runtime=warn,hyper=warn";

/// Installs the global subscriber. Safe to call more than once (later calls do nothing), so
/// tests that start the controller in-process can call it too.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

//! Reading a probe pod's termination message back into a [`pvtapi_engine::probe::ProbeReport`].
//!
//! The strict parser lives in the engine (`pvtapi_engine::probe::untrusted`, where it is unit
//! tested and fuzzed without building the operator); see its docs for why the message is untrusted
//! input and what is accepted.

pub use pvtapi_engine::probe::untrusted::{
    MAX_TERMINATION_MESSAGE_BYTES, ReportError, check_target, parse_probe_report,
};

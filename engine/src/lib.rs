//! The pvtapi engine: everything between "here is a check" and "here is the one root cause".
//!
//! I/O lives at the edges — [`dns`] (the resolver the probe uses), [`aws`] (SDK clients for the
//! read-only inspection) — so the diagnosis in the middle can stay a pure function of evidence.

pub mod aws;
#[cfg(feature = "cli")]
pub mod cli;
pub mod diagnosis;
pub mod dns;
pub mod network;
pub mod policy;
pub mod probe;

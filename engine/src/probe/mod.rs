//! The probe: what the workload's network sees when it calls the private API.
//!
//! It automates the article's `nslookup` ×2, `telnet vpce-host 443` and the invoke itself, and
//! goes further: every endpoint address (one per AZ), the TLS certificate, the exact API Gateway
//! error signature, proxy variables. I/O is in [`run`]; [`target`], [`classify`], [`answers`],
//! [`proxy`], [`report`] and [`untrusted`] (reading a report back, strictly) are pure.

pub mod answers;
pub mod classify;
pub mod proxy;
pub mod report;
pub mod run;
pub mod target;
pub mod tls;
pub mod untrusted;

pub use report::ProbeReport;
pub use run::{ProbeError, ProbeInput, run};
pub use target::Target;

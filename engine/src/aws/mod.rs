//! AWS: the facts the diagnosis reads ([`facts`]: plain data, always compiled) and, with the
//! default `aws-sdk` feature, the read-only inspection that gathers them (`inspect`) and the SDK
//! configuration every inspection call shares (`load_sdk_config`, `assume_role`, …).
//!
//! The feature exists so that builds which need only the pure engine (the fuzz crate) do not
//! compile the AWS SDK, which takes minutes; every crate of the workspace uses the default.

pub mod facts;
#[cfg(feature = "aws-sdk")]
pub mod inspect;
#[cfg(feature = "aws-sdk")]
mod sdk;

pub use facts::{AwsFacts, Fact};
#[cfg(feature = "aws-sdk")]
pub use inspect::{InspectRequest, Inspector};
#[cfg(feature = "aws-sdk")]
pub use sdk::{CallRecorder, SdkOptions, assume_role, credentials_available, load_sdk_config};

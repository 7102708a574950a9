//! AWS SDK configuration shared by every read-only inspection call (the `aws-sdk` feature).
//!
//! Why this exists: the SDK's default HTTP client pulls aws-lc or the legacy hyper 0.14 stack.
//! pvtapi is rustls-on-ring everywhere, so the client is built here once, explicitly, and every
//! service client is made from the resulting [`aws_config::SdkConfig`]. Credentials come from the
//! default chain (IRSA, EKS Pod Identity, environment, profile) and the endpoint from the standard
//! `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` variables, which is how tests reach moto.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig, retry::RetryConfig, timeout::TimeoutConfig};
use aws_smithy_http_client::tls;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// Options for loading the SDK configuration.
#[derive(Clone, Debug)]
pub struct SdkOptions {
    /// Region to use; `None` takes it from the environment/profile.
    pub region: Option<String>,
    /// Endpoint for every service, overriding `AWS_ENDPOINT_URL` (tests, private API endpoints).
    pub endpoint_url: Option<String>,
    /// Attempts per call, including the first (throttles and 5xx are retried with backoff).
    pub max_attempts: u32,
    /// Upper bound for one call, retries included.
    pub operation_timeout: Duration,
}

impl Default for SdkOptions {
    fn default() -> Self {
        SdkOptions { region: None, endpoint_url: None, max_attempts: 3, operation_timeout: Duration::from_secs(20) }
    }
}

/// Loads the SDK configuration with the rustls/ring HTTP client.
pub async fn load_sdk_config(options: &SdkOptions) -> SdkConfig {
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client)
        .retry_config(RetryConfig::standard().with_max_attempts(options.max_attempts.max(1)))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_timeout(options.operation_timeout)
                .build(),
        );
    if let Some(region) = &options.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &options.endpoint_url {
        loader = loader.endpoint_url(url.clone());
    }
    loader.load().await
}

/// The configuration of `role_arn` assumed from `base` (STS AssumeRole, refreshed before expiry),
/// for reading an API owned by another account. Failures to assume surface on each call that
/// uses it, as `Unknown` facts naming the error.
pub async fn assume_role(base: &SdkConfig, role_arn: &str) -> SdkConfig {
    let provider = aws_config::sts::AssumeRoleProvider::builder(role_arn)
        .session_name("pvtapi-inspect")
        .configure(base)
        .build()
        .await;
    base.to_builder()
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(provider))
        .build()
}

/// Whether `config` yields credentials at all (within `timeout`): without them every call would
/// fail the same way, so the caller skips inspection and says why once. The error names the
/// providers tried; the output of a `credential_process` helper (which may print secrets) is cut.
pub async fn credentials_available(config: &SdkConfig, timeout: Duration) -> Result<(), String> {
    use aws_credential_types::provider::ProvideCredentials;
    let provider = config.credentials_provider().ok_or("no credentials provider is configured")?;
    match tokio::time::timeout(timeout, provider.provide_credentials()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(err)) => {
            Err(credentials_error_text(&aws_smithy_types::error::display::DisplayErrorContext(&err).to_string()))
        }
        Err(_) => Err(format!("resolving credentials took longer than {}s", timeout.as_secs())),
    }
}

/// A credentials error fit to show: anything from a helper's output (`stdout`/`stderr`) on is
/// dropped, and the rest capped.
fn credentials_error_text(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let cut = ["stderr", "stdout", "output", "response:"].iter().filter_map(|w| lower.find(w)).min();
    let (kept, omitted) = match cut {
        Some(i) => (&text[..i], true),
        None => (text, false),
    };
    let mut out: String = kept.trim_end().chars().take(300).collect();
    if omitted {
        out.push_str(" (process output omitted)");
    }
    out
}

/// Records `service:Operation` for every call made through the clients it is attached to.
///
/// Used to prove least privilege (the shipped IAM policy lists exactly the actions called) and to
/// count calls; cheap enough to leave on.
#[derive(Clone, Debug, Default)]
pub struct CallRecorder(Arc<Mutex<Vec<String>>>);

impl CallRecorder {
    /// Every call so far, as `service:Operation` (e.g. `EC2:DescribeVpcEndpoints`).
    pub fn calls(&self) -> Vec<String> {
        self.0.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Takes the calls recorded so far, leaving none: a long-running process counts them into
    /// metrics this way without the record growing forever.
    pub fn drain(&self) -> Vec<String> {
        self.0.lock().map(|mut c| std::mem::take(&mut *c)).unwrap_or_default()
    }
}

impl Intercept for CallRecorder {
    fn name(&self) -> &'static str {
        "pvtapi-call-recorder"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Ok(mut calls) = self.0.lock() {
            match cfg.load::<Metadata>() {
                Some(meta) => calls.push(format!("{}:{}", meta.service(), meta.name())),
                None => calls.push("unknown:unknown".to_owned()),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod credentials_tests {
    #[test]
    fn helper_output_is_never_shown() {
        let text =
            "failed to load credentials: Error retrieving credentials from external process: Stderr: token=SECRET123";
        let shown = super::credentials_error_text(text);
        assert!(!shown.contains("SECRET123"), "{shown}");
        assert!(shown.contains("external process") && shown.ends_with("(process output omitted)"), "{shown}");
        assert_eq!(
            super::credentials_error_text("no providers in chain provided credentials"),
            "no providers in chain provided credentials"
        );
    }
}

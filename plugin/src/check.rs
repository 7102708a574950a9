//! `kubectl pvtapi check --local`: probe + AWS inspection + diagnosis, in-process, from here.
//!
//! The on-prem / Direct Connect / laptop case of the article: the same engine the operator runs,
//! pointed at this machine's network. The answer comes first (root cause and fix), the evidence
//! after. Exit status: 0 healthy, 1 a problem was found, 2 the tool could not do its job.

use std::io::IsTerminal;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use anstyle::{AnsiColor, Style};
use clap::{Args, ValueEnum};
use pvtapi_crds::{AccessMode, RootCause, validate};
use pvtapi_engine::aws::{InspectRequest, Inspector, SdkOptions};
use pvtapi_engine::cli::TargetArgs;
use pvtapi_engine::diagnosis::{AreaStatus, CheckReport, Diagnosis, diagnose};
use pvtapi_engine::probe::ProbeReport;

#[derive(Debug, Args)]
#[command(after_help = "AWS facts are read with the usual credential chain (AWS_PROFILE, keys, SSO, instance role); \
    the read-only actions are in deploy/iam-policy.json. Without credentials the check still runs and says what it \
    could not verify.\n\n\
    Exit status: 0 healthy, 1 a problem was found, 2 the tool could not do its job (bad flags, no network).\n\n\
    Examples:\n  \
    kubectl pvtapi check --local --api-id abcde12345 --region us-east-1 --stage prod --path /health \\\n      \
    --vpce vpce-0123456789abcdef0 --source-ip 10.0.2.15\n  \
    # the exact URL and headers your workload uses:\n  \
    kubectl pvtapi check --local ... -H 'Host: abcde12345.execute-api.us-east-1.amazonaws.com' \\\n      \
    --invoke-url \\\n      \
    https://vpce-0123456789abcdef0-abcd.execute-api.us-east-1.vpce.amazonaws.com/prod/health\n  \
    # an API owned by another account:\n  \
    kubectl pvtapi check --local ... --api-role-arn arn:aws:iam::222222222222:role/pvtapi-reader\n  \
    kubectl pvtapi check --local ... -o json    # the full report: docs/check-report.md")]
pub struct CheckArgs {
    /// Run everything from this machine (required until the in-cluster `check NAME` lands).
    #[arg(long)]
    local: bool,
    #[command(flatten)]
    target: TargetArgs,
    /// This machine's address as the VPC sees it (finds its network interface and security groups).
    #[arg(long)]
    source_ip: Option<IpAddr>,
    /// Skip the AWS inspection (no credentials needed; network-level causes only).
    #[arg(long)]
    no_aws: bool,
    /// Region of the VPC endpoint (and of this machine's VPC), when it is not the API's region.
    /// An execute-api endpoint reaches only APIs in its own region: this finds that mistake.
    #[arg(long, value_parser = validate::region)]
    vpce_region: Option<String>,
    /// The 12-digit account that owns the API, when it is not the endpoint's (cross-account).
    #[arg(long, value_parser = validate::account_id)]
    api_account_id: Option<String>,
    /// Role in the API's account to assume for reading the API, its stage and logs
    /// (cross-account; the endpoint, VPC and security groups are read with your own credentials).
    #[arg(long, value_parser = validate::role_arn, conflicts_with = "no_aws")]
    api_role_arn: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Table)]
    output: Output,
    /// Colour the table: auto (only on a terminal, and not with NO_COLOR), always or never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Output {
    Table,
    Json,
    Yaml,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// Runs the check; returns the exit code.
pub async fn run(mut args: CheckArgs) -> u8 {
    if !args.local {
        eprintln!(
            "error: only `check --local` is available in this build (the in-cluster `check NAME` needs the operator)"
        );
        return 2;
    }
    if let Err(err) = args.target.normalize() {
        eprintln!("error: {err}");
        return 2;
    }
    let role_account = args.api_role_arn.as_deref().and_then(validate::role_account).map(str::to_owned);
    if let (Some(given), Some(role)) = (&args.api_account_id, &role_account)
        && given != role
    {
        eprintln!("error: --api-account-id {given} differs from the account of --api-role-arn ({role})");
        return 2;
    }
    if args.target.stage.is_none() && args.no_aws {
        eprintln!("error: --stage is required with --no-aws (without AWS the API's stages cannot be listed)");
        return 2;
    }
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.enable_steady_tick(Duration::from_millis(100));
    let (inspector, aws_unavailable) = inspector(&args, &spinner).await;
    if args.target.stage.is_none() {
        match only_stage(inspector.as_ref(), &args.target.api_id).await {
            Ok(stage) => args.target.stage = Some(stage),
            Err(err) => {
                spinner.finish_and_clear();
                eprintln!("error: {err}");
                return 2;
            }
        }
    }
    let mut input = match args.target.into_input() {
        Ok(input) => input,
        Err(err) => {
            spinner.finish_and_clear();
            eprintln!("error: {err}");
            return 2;
        }
    };
    let t = input.target.clone();
    let custom_domain = (input.access == AccessMode::CustomDomain).then(|| t.domain_name.clone()).flatten();
    let api_account_id = args.api_account_id.clone().or(role_account);
    let request = |request_id: Option<String>| InspectRequest {
        api_id: t.api_id.clone(),
        stage: t.stage.clone(),
        path: t.path.clone(),
        method: t.method.as_str().to_owned(),
        vpce_id: t.vpce_id.clone(),
        client_ip: args.source_ip,
        request_id,
        request_time: Some(SystemTime::now()),
        include_deployment: false,
        custom_domain: custom_domain.clone(),
        api_account_id: api_account_id.clone(),
    };
    if inspector.is_some() {
        spinner.set_message("reading AWS facts…");
    }
    let mut facts = match &inspector {
        Some(i) => Some(i.inspect(&request(None)).await),
        None => None,
    };
    // The endpoint's own DNS names, for endpointHost/apiIdHeader and the comparison.
    if input.target.vpce_dns_names.is_empty()
        && let Some(e) = facts.as_ref().and_then(|f| f.endpoint.known())
    {
        input.target.vpce_dns_names =
            e.dns_entries.iter().map(|d| d.dns_name.trim_start_matches("*.").to_owned()).collect();
    }

    // `auto`: decided from AWS facts when we have them (the probe alone can only guess from DNS).
    // (Not with --invoke-url: that URL is checked as given.)
    let auto_choice = match (input.access, &facts) {
        (AccessMode::Auto, Some(f)) if t.invoke_url.is_none() => pvtapi_engine::diagnosis::choose_access(f, &t.vpce_id),
        _ => None,
    };
    if let Some((mode, _)) = &auto_choice {
        input.access = *mode;
    }
    spinner.set_message("probing DNS, TCP 443, TLS and the invoke…");
    let report = match pvtapi_engine::probe::run(&input).await {
        Ok(mut r) => {
            if let Some((_, reason)) = auto_choice {
                r.access.reason = reason;
            }
            r
        }
        Err(err) => {
            spinner.finish_and_clear();
            eprintln!("error: the probe could not run: {err}");
            if !matches!(args.output, Output::Table) {
                let d = pvtapi_engine::diagnosis::probe_failed(
                    &err.to_string(),
                    "Check this machine's network and DNS settings (/etc/resolv.conf, or --nameserver IP of a resolver it can reach)",
                );
                let out = CheckReport::new(d, None, facts);
                if let Some(text) = render(&out, args.output) {
                    println!("{text}");
                }
            }
            return 2;
        }
    };
    // A failed call: look its request id up in the execution logs.
    if let (Some(i), Some(invoke)) = (&inspector, &report.invoke)
        && invoke.class != pvtapi_engine::probe::classify::InvokeClass::Ok
        && invoke.request_id.is_some()
    {
        spinner.set_message("looking the request up in the execution logs…");
        facts = Some(i.inspect(&request(invoke.request_id.clone())).await);
    }
    spinner.finish_and_clear();

    let mut diagnosis = diagnose(&report, facts.as_ref());
    if let Some(reason) = &aws_unavailable {
        diagnosis = diagnosis.with_aws_unavailable(reason);
    }
    let code = if diagnosis.root_cause == RootCause::Healthy { 0 } else { 1 };
    let printed = match args.output {
        Output::Table => Some(table(&diagnosis, &report, use_color(args.color))),
        structured => render(&CheckReport::new(diagnosis, Some(report), facts), structured),
    };
    match printed {
        Some(text) => println!("{}", text.trim_end()),
        None => return 2,
    }
    code
}

/// `-o json|yaml`; `None` (after saying why on stderr) if it cannot be rendered.
fn render(out: &CheckReport, format: Output) -> Option<String> {
    let text = match format {
        Output::Yaml => serde_norway::to_string(out).map_err(|e| e.to_string()),
        _ => serde_json::to_string_pretty(out).map_err(|e| e.to_string()),
    };
    text.map_err(|err| eprintln!("error: cannot render the output: {err}")).ok()
}

fn use_color(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
        }
    }
}

fn paint(color: bool, style: Style, text: &str) -> String {
    if color { format!("{}{text}{}", style.render(), style.render_reset()) } else { text.to_owned() }
}

/// The inspector, or why there is none (`--no-aws`, no usable credentials).
async fn inspector(args: &CheckArgs, spinner: &indicatif::ProgressBar) -> (Option<Inspector>, Option<String>) {
    if args.no_aws {
        return (None, Some("skipped (--no-aws): policies, security groups and NACLs were not checked".to_owned()));
    }
    spinner.set_message("loading AWS credentials…");
    let options = |region: &str| SdkOptions {
        region: Some(region.to_owned()),
        max_attempts: 2,
        operation_timeout: Duration::from_secs(15),
        ..Default::default()
    };
    // The API side in the API's region; the network side (endpoint, VPC, groups) in the endpoint's.
    let config = pvtapi_engine::aws::load_sdk_config(&options(&args.target.region)).await;
    let network = match &args.vpce_region {
        Some(region) if *region != args.target.region => pvtapi_engine::aws::load_sdk_config(&options(region)).await,
        _ => config.clone(),
    };
    match pvtapi_engine::aws::credentials_available(&config, Duration::from_secs(10)).await {
        Ok(()) => {
            let api_config = match &args.api_role_arn {
                Some(role) => pvtapi_engine::aws::assume_role(&config, role).await,
                None => config.clone(),
            };
            let config = network;
            (Some(Inspector::cross_account(&config, &api_config, Duration::from_secs(300), None)), None)
        }
        Err(err) => (
            None,
            Some(format!(
                "not read: no usable AWS credentials ({err}). Set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (read-only actions: deploy/iam-policy.json), or pass --no-aws"
            )),
        ),
    }
}

/// `--stage` omitted: the API's only stage, or an error listing them.
async fn only_stage(inspector: Option<&Inspector>, api_id: &str) -> Result<String, String> {
    let Some(inspector) = inspector else {
        return Err("--stage is required: AWS credentials are needed to list the API's stages".into());
    };
    match inspector.stage_names(api_id).await {
        pvtapi_engine::aws::Fact::Known { value } => match value.as_slice() {
            [only] => Ok(only.clone()),
            [] => Err(format!(
                "API {api_id} has no stage: deploy it first (aws apigateway create-deployment --rest-api-id {api_id} --stage-name prod)"
            )),
            many => {
                Err(format!("API {api_id} has {} stages ({}): choose one with --stage", many.len(), many.join(", ")))
            }
        },
        pvtapi_engine::aws::Fact::NotFound { detail } => {
            Err(format!("cannot list the stages of {api_id}: {detail}; give --stage"))
        }
        other => Err(format!("cannot list the stages of {api_id} ({}); give --stage", other.gap().unwrap_or_default())),
    }
}

/// The human report: the answer first, then the evidence.
fn table(d: &Diagnosis, report: &ProbeReport, color: bool) -> String {
    let red = Style::new().fg_color(Some(AnsiColor::Red.into())).bold();
    let green = Style::new().fg_color(Some(AnsiColor::Green.into())).bold();
    let yellow = Style::new().fg_color(Some(AnsiColor::Yellow.into()));
    let dim = Style::new().dimmed();
    let mut out = String::new();
    let healthy = d.root_cause == RootCause::Healthy;
    let head =
        if healthy { paint(color, green, "✓ Healthy") } else { paint(color, red, &format!("✗ {}", d.root_cause)) };
    out.push_str(&format!("{head}  {}\n", d.summary));
    if !d.remediation.is_empty() {
        out.push_str("\nFix:\n");
        for (i, step) in d.remediation.iter().enumerate() {
            out.push_str(&format!("  {}. {step}\n", i + 1));
        }
    }
    if !d.evidence.is_empty() {
        out.push_str("\nEvidence:\n");
        for e in &d.evidence {
            out.push_str(&format!("  - {e}\n"));
        }
    }
    out.push_str(&format!("\nChecks ({:?} access: {}):\n", report.access.mode, report.access.reason));
    for a in &d.areas {
        let (mark, style) = match a.status {
            AreaStatus::Pass => ("✓", green),
            AreaStatus::Fail => ("✗", red),
            AreaStatus::Warn => ("!", yellow),
            AreaStatus::Skip => ("-", dim),
            AreaStatus::Unknown => ("?", yellow),
        };
        out.push_str(&format!("  {} {:<5} {}\n", paint(color, style, mark), a.area, a.reason));
    }
    if !d.advisories.is_empty() {
        out.push_str("\nAdvisories:\n");
        for a in &d.advisories {
            out.push_str(&format!("  {} {:?}: {}\n", paint(color, yellow, "!"), a.advisory, a.detail));
        }
    }
    if !d.unchecked.is_empty() {
        out.push_str("\nNot checked:\n");
        for u in &d.unchecked {
            out.push_str(&format!("  - {u}\n"));
        }
    }
    let t = &report.timings;
    let opt = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v} ms"));
    out.push_str(&paint(
        color,
        dim,
        &format!(
            "\nTimings: dns {} ms, connect {}, tls {}, first byte {}, total {} ms\n",
            t.dns_ms,
            opt(t.connect_ms),
            opt(t.tls_ms),
            opt(t.ttfb_ms),
            t.total_ms
        ),
    ));
    out
}

//! `kubectl pvtapi check`: three ways to one answer.
//!
//! - `check NAME`: the last result of a check in the cluster (`--rerun` runs it now);
//! - `check --api-id … --vpce …`: a temporary check in the cluster, its first result, then gone;
//! - `check --local …`: probe + AWS inspection + diagnosis in this process, from this machine —
//!   the on-prem / Direct Connect / laptop case of the article: the same engine the operator
//!   runs, pointed at this machine's network.
//!
//! The cluster modes live in [`crate::cluster`]. The answer comes first (root cause and fix), the evidence
//! after. Exit status: 0 healthy, 1 a problem was found, 2 the tool could not do its job.

use std::io::IsTerminal;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use anstyle::{AnsiColor, Style};
use clap::{Args, ValueEnum};
use pvtapi_crds::{AccessMode, RootCause, validate};
use pvtapi_engine::aws::{InspectRequest, Inspector, SdkOptions};
use pvtapi_engine::cli::TargetArgs;

use crate::cluster::KubeArgs;
use pvtapi_engine::diagnosis::{AreaStatus, CheckReport, Diagnosis, diagnose_in_cluster};
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
// The target's required flags are required only without NAME (`check NAME` reads the cluster).
#[command(
    mut_arg("api_id", |a| a.required(false).required_unless_present("name")),
    mut_arg("region", |a| a.required(false).required_unless_present("name")),
    mut_arg("vpce", |a| a.required(false).required_unless_present("name"))
)]
pub struct CheckArgs {
    /// A PrivateApiConnectivityCheck in the cluster: print its last result (from status).
    #[arg(value_name = "NAME", conflicts_with = "local")]
    pub name: Option<String>,
    /// Run everything from this machine (on-prem, VPN, a laptop) instead of in the cluster.
    #[arg(long)]
    local: bool,
    /// With NAME: run the check now and wait for the new result.
    #[arg(long, requires = "name")]
    pub rerun: bool,
    /// Probe from inside a running pod of this workload (deploy/NAME, sts/NAME, ds/NAME or
    /// pod/NAME, in -n NAMESPACE): an ephemeral container in the pod's own network namespace,
    /// with its resolv.conf and proxy variables; then AWS facts (your credentials, the pod's
    /// address as the client) and the pod's NetworkPolicies explain what it saw. NOTE: an
    /// ephemeral container stays in the pod's spec until the pod is replaced (it has exited; it
    /// cannot be removed). Needs update on pods/ephemeralcontainers.
    #[arg(long, value_name = "KIND/NAME", conflicts_with_all = ["name", "local", "keep"])]
    from: Option<crate::from::FromRef>,
    /// With --from: the probe image [default: the installed operator's image].
    #[arg(long, value_name = "IMAGE", requires = "from")]
    probe_image: Option<String>,
    /// With --from: also trust the CA certificates in FILE of the pod's volume VOLUME (e.g. the
    /// corporate CA a workload behind a TLS-inspecting proxy mounts). An ephemeral container can
    /// only mount the pod's own volumes, so this is how --from takes an extra CA.
    #[arg(long, value_name = "VOLUME/FILE", requires = "from")]
    ca_bundle_volume: Option<crate::from::VolumeFile>,
    /// With a temporary in-cluster check (--api-id … without --local): keep it afterwards.
    #[arg(long, conflicts_with_all = ["name", "local"])]
    pub keep: bool,
    /// How long to wait for the operator's result, in seconds (cluster modes).
    #[arg(long = "wait", value_name = "SECONDS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub wait: u64,
    #[command(flatten)]
    target: Option<TargetArgs>,
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
    /// Output format. json/yaml: with --local the check report (`kubectl pvtapi schema`); in the
    /// cluster the PrivateApiConnectivityCheck (its `status.report` holds the same diagnosis).
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

/// Runs the check in the mode the flags name; returns the exit code.
pub async fn run(mut args: CheckArgs, kube: &KubeArgs) -> u8 {
    let target = args.target.take();
    match (args.name.clone(), args.local, target) {
        (Some(_), _, Some(_)) => {
            eprintln!("error: give either NAME (a check in the cluster) or the target flags (--api-id …), not both");
            2
        }
        (Some(name), _, None) => in_cluster(&args, kube, Mode::Named(name)).await,
        (None, _, Some(target)) if args.from.is_some() => run_local(args, target, Some(kube)).await,
        (None, true, Some(target)) => run_local(args, target, None).await,
        (None, false, Some(target)) => match temporary_spec(&args, &target) {
            Ok(spec) => in_cluster(&args, kube, Mode::Temporary(Box::new(spec))).await,
            Err(err) => {
                eprintln!("error: {err}");
                2
            }
        },
        (None, _, None) => {
            eprintln!(
                "error: give NAME (a PrivateApiConnectivityCheck in the cluster), or --api-id ID --region REGION --stage STAGE --vpce VPCE_ID for a temporary check in the cluster (add --local to run from this machine instead)"
            );
            2
        }
    }
}

enum Mode {
    Named(String),
    Temporary(Box<pvtapi_crds::PrivateApiConnectivityCheckSpec>),
}

/// `check NAME [--rerun]` or a temporary check: the operator's result, from the cluster.
async fn in_cluster(args: &CheckArgs, kube: &KubeArgs, mode: Mode) -> u8 {
    if let Mode::Named(name) = &mode {
        let spec_flags = [
            ("--source-ip", args.source_ip.is_some()),
            ("--no-aws", args.no_aws),
            ("--vpce-region", args.vpce_region.is_some()),
            ("--api-account-id", args.api_account_id.is_some()),
            ("--api-role-arn", args.api_role_arn.is_some()),
        ];
        let given: Vec<&str> = spec_flags.iter().filter(|(_, set)| *set).map(|(f, _)| *f).collect();
        if !given.is_empty() {
            eprintln!(
                "error: {} cannot change the check {name}: its spec says how it runs (kubectl edit pac {name})",
                given.join(", ")
            );
            return 2;
        }
    }
    let cluster = match kube.connect().await {
        Ok(c) => c,
        Err(err) => {
            eprintln!("error: {err}");
            return 2;
        }
    };
    let wait = Duration::from_secs(args.wait);
    let result = match mode {
        Mode::Named(name) => crate::cluster::check_named(&cluster, &name, args.rerun, wait).await,
        Mode::Temporary(spec) => crate::cluster::check_temporary(&cluster, *spec, args.keep, wait).await,
    };
    match result {
        Ok(check) => {
            let format = match args.output {
                Output::Table => crate::cluster::Format::Table,
                Output::Json => crate::cluster::Format::Json,
                Output::Yaml => crate::cluster::Format::Yaml,
            };
            match crate::cluster::print_check(&check, format, use_color(args.color)) {
                Some(()) => crate::cluster::exit_code(&check),
                None => 2,
            }
        }
        Err(err) => {
            eprintln!("error: {err}");
            2
        }
    }
}

/// The spec of a temporary in-cluster check from the flags; flags that only make sense from
/// this machine are refused by name.
fn temporary_spec(args: &CheckArgs, t: &TargetArgs) -> Result<pvtapi_crds::PrivateApiConnectivityCheckSpec, String> {
    let local_only = [
        ("--invoke-url", t.invoke_url.is_some()),
        ("--header", !t.headers.is_empty()),
        ("--nameserver", t.nameserver.is_some()),
        ("--ca-bundle", t.ca_bundle.is_some()),
        ("--port", t.port != 443),
        ("--vpce-dns", !t.vpce_dns.is_empty()),
        ("--source-ip", args.source_ip.is_some()),
    ];
    let given: Vec<&str> = local_only.iter().filter(|(_, set)| *set).map(|(f, _)| *f).collect();
    if !given.is_empty() {
        return Err(format!(
            "{} only work with --local (a check in the cluster probes from a pod, with the cluster's DNS and the access mode's URL)",
            given.join(", ")
        ));
    }
    let Some(stage) = &t.stage else {
        return Err("--stage is required for a check in the cluster".into());
    };
    if AccessMode::from(t.access) == AccessMode::CustomDomain && t.domain_name.is_none() {
        return Err("--access custom-domain needs --domain-name".into());
    }
    let mut api = serde_json::json!({
        "id": t.api_id, "region": t.region, "stage": stage,
        "path": t.path.clone().unwrap_or_else(|| "/".into()),
        "method": pvtapi_crds::HttpMethod::from(t.method).as_str(),
        "expectedStatuses": t.expected_statuses,
    });
    if let Some(a) = &args.api_account_id {
        api["accountId"] = a.clone().into();
    }
    let mut endpoint = serde_json::json!({"vpcEndpointId": t.vpce});
    if let Some(r) = &args.vpce_region {
        endpoint["region"] = r.clone().into();
    }
    let mut aws = serde_json::json!({"inspect": !args.no_aws});
    if let Some(r) = &args.api_role_arn {
        aws["apiRoleArn"] = r.clone().into();
    }
    let mut spec = serde_json::json!({
        "api": api,
        "endpoint": endpoint,
        "access": AccessMode::from(t.access),
        "timeoutSeconds": t.timeout,
        "aws": aws,
    });
    if let Some(d) = &t.domain_name {
        spec["domainName"] = d.clone().into();
    }
    serde_json::from_value(spec).map_err(|e| format!("cannot build the check: {e}"))
}

/// `check --local`: probe, AWS and diagnosis in this process; with `--from` (`kube` given) the
/// probe runs in one of the workload's pods instead.
async fn run_local(args: CheckArgs, mut target: TargetArgs, kube: Option<&KubeArgs>) -> u8 {
    if let Err(err) = target.normalize() {
        eprintln!("error: {err}");
        return 2;
    }
    let from = match (&args.from, kube) {
        (Some(r), Some(kube)) => match from_pod(&args, &target, r, kube).await {
            Ok(site) => Some(site),
            Err(err) => {
                eprintln!("error: {err}");
                return 2;
            }
        },
        _ => None,
    };
    let client_ip = from.as_ref().and_then(|f| f.pod_ip).or(args.source_ip);
    let node_ip = from.as_ref().and_then(|f| f.node_ip);
    let role_account = args.api_role_arn.as_deref().and_then(validate::role_account).map(str::to_owned);
    if let (Some(given), Some(role)) = (&args.api_account_id, &role_account)
        && given != role
    {
        eprintln!("error: --api-account-id {given} differs from the account of --api-role-arn ({role})");
        return 2;
    }
    if target.stage.is_none() && args.no_aws {
        eprintln!("error: --stage is required with --no-aws (without AWS the API's stages cannot be listed)");
        return 2;
    }
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.enable_steady_tick(Duration::from_millis(100));
    let (inspector, aws_unavailable) = inspector(&args, &target.region, &spinner).await;
    if target.stage.is_none() {
        match only_stage(inspector.as_ref(), &target.api_id).await {
            Ok(stage) => target.stage = Some(stage),
            Err(err) => {
                spinner.finish_and_clear();
                eprintln!("error: {err}");
                return 2;
            }
        }
    }
    let mut input = match target.into_input() {
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
        client_ip,
        node_ip,
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
    let probed = match &from {
        None => pvtapi_engine::probe::run(&input).await.map_err(|e| e.to_string()),
        Some(site) => {
            let mut spec = site.spec.clone();
            spec.access = input.access;
            crate::from::probe_in_pod(
                &site.client,
                &site.pod,
                &site.image,
                &spec,
                &input.target.vpce_dns_names,
                args.ca_bundle_volume.as_ref(),
                &spinner,
            )
            .await
        }
    };
    let report = match probed {
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
                    crate::out(&format!("{text}\n"));
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
    // From a pod: the source the endpoint sees (the VPC CNI's SNAT, Security Groups for Pods).
    if let Some(site) = &from
        && let Some(f) = facts.take()
    {
        facts = Some(pvtapi_operator::cni::resolve_source(&site.client, f).await);
    }
    spinner.finish_and_clear();

    // From a pod: its own NetworkPolicies (a timeout they explain, or a path they block).
    let cluster = match &from {
        Some(site) => {
            let endpoint = facts.as_ref().and_then(|f| f.endpoint.known()).map(|e| e.addresses()).unwrap_or_default();
            Some(pvtapi_operator::netpol::cluster_facts(&site.client, &site.pod, "from", &report, &endpoint).await)
        }
        _ => None,
    };
    let mut diagnosis = diagnose_in_cluster(&report, facts.as_ref(), cluster.as_ref());
    if let Some(reason) = &aws_unavailable {
        diagnosis = diagnosis.with_aws_unavailable(reason);
    }
    let code = if diagnosis.root_cause == RootCause::Healthy { 0 } else { 1 };
    let printed = match args.output {
        Output::Table => Some(table(&diagnosis, &report, use_color(args.color))),
        structured => render(&CheckReport::new(diagnosis, Some(report), facts), structured),
    };
    match printed {
        Some(text) => crate::out(&format!("{}\n", text.trim_end())),
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
async fn inspector(
    args: &CheckArgs,
    api_region: &str,
    spinner: &indicatif::ProgressBar,
) -> (Option<Inspector>, Option<String>) {
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
    let config = pvtapi_engine::aws::load_sdk_config(&options(api_region)).await;
    let network = match &args.vpce_region {
        Some(region) if region != api_region => pvtapi_engine::aws::load_sdk_config(&options(region)).await,
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

/// The ready-to-apply fixes (`diagnosis.fixes`): each command line as it can be pasted, with
/// the account to run it in and the whole policy document a policy change results in.
pub fn ready_fixes(fixes: &[pvtapi_engine::diagnosis::fix::Fix]) -> String {
    if fixes.is_empty() {
        return String::new();
    }
    let mut out = String::from("\nReady to apply (in order):\n");
    for f in fixes {
        let account = f.account.as_deref().map(|a| format!(" [in account {a}]")).unwrap_or_default();
        out.push_str(&format!("  # {}{account}\n", f.description));
        if let Some(line) = &f.command_line {
            out.push_str(&format!("  {line}\n"));
        }
        if let Some(p) = &f.policy {
            let doc = serde_json::to_string_pretty(&p.document).unwrap_or_default();
            out.push_str("  # the resulting policy document:\n");
            for l in doc.lines() {
                out.push_str(&format!("  #   {l}\n"));
            }
        }
        if let Some(m) = &f.manifest {
            out.push_str("  # apply with kubectl apply -f -:\n");
            for l in m.lines() {
                out.push_str(&format!("  {l}\n"));
            }
        }
    }
    out
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
    out.push_str(&ready_fixes(&d.fixes));
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

/// Where `--from` probes: the pod, its address, the probe image and the check it stands for.
struct FromSite {
    client: kube::Client,
    pod: k8s_openapi::api::core::v1::Pod,
    pod_ip: Option<IpAddr>,
    /// The pod's host address: the node's, the source the endpoint sees after SNAT.
    node_ip: Option<IpAddr>,
    image: String,
    spec: pvtapi_crds::PrivateApiConnectivityCheckSpec,
}

async fn from_pod(
    args: &CheckArgs,
    target: &TargetArgs,
    r: &crate::from::FromRef,
    kube: &KubeArgs,
) -> Result<FromSite, String> {
    let spec = temporary_spec(args, target)?;
    let cluster = kube.connect().await.map_err(|e| e.to_string())?;
    let pod = crate::from::running_pod(&cluster.client, &cluster.namespace, r).await?;
    if let Some(v) = &args.ca_bundle_volume {
        v.check_in(&pod)?;
    }
    let image = match &args.probe_image {
        Some(i) => i.clone(),
        None => crate::from::operator_image(&cluster.client).await?,
    };
    let pod_ip = pod.status.as_ref().and_then(|s| s.pod_ip.as_deref()).and_then(|ip| ip.parse().ok());
    let node_ip = pod.status.as_ref().and_then(|s| s.host_ip.as_deref()).and_then(|ip| ip.parse().ok());
    eprintln!(
        "note: probing from pod {}/{} as an ephemeral container; it stays in the pod's spec (exited) until the pod is replaced",
        cluster.namespace,
        kube::ResourceExt::name_any(&pod)
    );
    Ok(FromSite { client: cluster.client, pod, pod_ip, node_ip, image, spec })
}

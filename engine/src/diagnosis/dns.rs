//! DNS rules: the name the client calls must resolve, to private addresses, to this endpoint.
//! Why first among the network rules: every later phase depends on which address DNS gave.

use super::*;

pub(super) fn resolution(probe: &ProbeReport, facts: Option<&AwsFacts>) -> Option<Finding> {
    let mode = probe.access.mode;
    let invoke_host = invoke_host(probe);
    let host_result = probe.dns.iter().find(|d| Some(&d.host) == invoke_host.as_ref())?;
    let api = probe.dns.iter().find(|d| d.role == HostRole::Api);
    if host_result.addresses.is_empty() {
        let associated = facts.and_then(|f| f.api.known()).map(|a| a.vpc_endpoint_ids.contains(&probe.target.vpce_id));
        if host_result.role == HostRole::EndpointAlias
            && host_result.outcome == DnsOutcome::NxDomain
            && associated == Some(false)
        {
            return finding(
                RootCause::ApiNotAssociatedWithEndpoint,
                format!(
                    "{} does not exist: API {} is not associated with {}",
                    host_result.host, probe.target.api_id, probe.target.vpce_id
                ),
                vec![format!("{}: NXDOMAIN", host_result.host), "API vpcEndpointIds does not list the endpoint".into()],
                vec![
                    format!(
                        "aws apigateway update-rest-api --rest-api-id {} --patch-operations op=add,path=/endpointConfiguration/vpcEndpointIds,value={}",
                        probe.target.api_id, probe.target.vpce_id
                    ),
                    "or use endpointHost/apiIdHeader access".into(),
                ],
            )
            .map(|f| {
                let account = facts.and_then(|x| fix::api_account_if_other(x, api_account(probe, facts).map(|a| a.0).as_deref()));
                f.with_fixes(vec![fix::associate_endpoint(&probe.target, account)])
            });
        }
        return finding(
            RootCause::DnsResolutionFailed,
            format!("{} did not resolve ({:?}) via {}", host_result.host, host_result.outcome, probe.resolver),
            vec![format!("{}: {:?}{}", host_result.host, host_result.outcome, host_result.error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default())],
            vec!["Check that the pod's resolver reaches the VPC's Amazon-provided DNS (CoreDNS forwarders, DHCP options)".into()],
        );
    }
    if mode == AccessMode::PrivateDns
        && let Some(api) = api
        && api.addresses.iter().any(|a| a.class == AddressClass::Public)
    {
        let ips: Vec<String> = api.addresses.iter().map(|a| a.ip.to_string()).collect();
        if let Some(vpc) = facts.and_then(|f| f.vpc.known())
            && !(vpc.enable_dns_support && vpc.enable_dns_hostnames)
        {
            return finding(
                RootCause::VpcDnsAttributesDisabled,
                format!(
                    "VPC {} has DNS support/hostnames off, so the endpoint's private DNS cannot answer",
                    vpc.vpc_id
                ),
                vec![
                    format!("{} → {} (public)", api.host, ips.join(", ")),
                    format!(
                        "enableDnsSupport={} enableDnsHostnames={}",
                        vpc.enable_dns_support, vpc.enable_dns_hostnames
                    ),
                ],
                vec![format!(
                    "aws ec2 modify-vpc-attribute --vpc-id {} --enable-dns-support / --enable-dns-hostnames",
                    vpc.vpc_id
                )],
            )
            .map(|f| {
                let region = facts.map_or(probe.target.region.as_str(), |x| x.region.as_str());
                f.with_fixes(fix::enable_vpc_dns(&vpc.vpc_id, region, vpc.enable_dns_support, vpc.enable_dns_hostnames))
            });
        }
        return finding(
            RootCause::PrivateDnsDisabled,
            format!("{} resolves to public addresses: private DNS is not answering for it", api.host),
            vec![format!("{} → {} (public)", api.host, ips.join(", "))],
            vec![
                format!("Enable private DNS names on {}", probe.target.vpce_id),
                format!("or call https://{}/{}", probe.target.alias_host(), probe.target.stage),
            ],
        )
        .map(|f| {
            // Only when the facts say it is off: otherwise the command would change nothing.
            let off = facts.and_then(|x| x.endpoint.known()).is_some_and(|e| !e.private_dns_enabled);
            let region = facts.map_or(probe.target.region.as_str(), |x| x.region.as_str());
            f.with_fixes(if off { vec![fix::enable_private_dns(&probe.target.vpce_id, region)] } else { Vec::new() })
        });
    }
    // Any other host the client calls (alias, endpoint name, custom domain, a URL as given)
    // must lead to the endpoint's private addresses too: a public one among them sends a share
    // of the workload's calls out of the VPC, to API Gateway's public front door, which refuses
    // private APIs — even when the probe's own request went through a private address.
    let public: Vec<String> =
        host_result.addresses.iter().filter(|a| a.class == AddressClass::Public).map(|a| a.ip.to_string()).collect();
    if mode != AccessMode::PrivateDns && !public.is_empty() {
        return finding(
            RootCause::DnsMismatch,
            format!(
                "{} of {} addresses of {} are public: they are not the VPC endpoint's",
                public.len(),
                host_result.addresses.len(),
                host_result.host
            ),
            vec![format!("{} → {} (public)", host_result.host, public.join(", "))],
            vec![format!(
                "Find the record answering {} with public addresses (a private hosted zone, resolver rule or CNAME) and point it at the endpoint",
                host_result.host
            )],
        );
    }
    if mode == AccessMode::PrivateDns
        && matches!(probe.dns_comparison, DnsComparison::Disjoint | DnsComparison::Overlap)
        && let Some(api) = api
    {
        // Overlap: some of the API host's addresses are this endpoint's, some are not; a
        // workload given one of the others reaches another endpoint (or nothing) for a share of
        // its calls, even when the probe's own request went through a right one.
        let endpoint_ips: Vec<std::net::IpAddr> = probe
            .dns
            .iter()
            .filter(|d| matches!(d.role, HostRole::EndpointRegional | HostRole::EndpointZonal))
            .flat_map(|d| d.addresses.iter().map(|a| a.ip))
            .collect();
        let foreign: Vec<String> =
            api.addresses.iter().filter(|a| !endpoint_ips.contains(&a.ip)).map(|a| a.ip.to_string()).collect();
        if foreign.is_empty() {
            // A subset of the endpoint's addresses: every one the workload gets is right.
            return None;
        }
        let summary = if probe.dns_comparison == DnsComparison::Overlap {
            format!(
                "{} of {} addresses of {} are not this endpoint's: another endpoint's private DNS or an overriding record answers too",
                foreign.len(),
                api.addresses.len(),
                api.host
            )
        } else {
            "the API host resolves to addresses that are not this endpoint's".into()
        };
        return finding(
            RootCause::DnsMismatch,
            summary,
            vec![
                format!("API host and endpoint names share {} ({:?})", if probe.dns_comparison == DnsComparison::Overlap { "only some addresses" } else { "no address" }, probe.dns_comparison),
                format!("{} → not the endpoint's: {}", api.host, foreign.join(", ")),
            ],
            vec!["Find the private hosted zone or resolver rule answering for execute-api and remove it, or use the alias host".into()],
        );
    }
    None
}

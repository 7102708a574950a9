//! Root-cause codes: the stable vocabulary of pvtapi.
//!
//! A code is what an alert matches on (`Reachable` condition reason, `rootCause` in status,
//! the metric label), so codes are never renamed or reused; new ones are only added. Each code
//! carries its meaning and the usual fix here, next to its name, so that `kubectl pvtapi explain`
//! and `docs/root-causes.md` cannot drift from the code the engine emits.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

macro_rules! root_causes {
    ($( $(#[$meta:meta])* $variant:ident => { area: $area:literal, meaning: $meaning:literal, fix: $fix:literal } ),+ $(,)?) => {
        /// The one root cause a check reports (design.md §6).
        #[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum RootCause {
            $( $(#[$meta])* $variant, )+
        }

        impl RootCause {
            /// Every code, in documentation order.
            pub const ALL: &'static [RootCause] = &[$(RootCause::$variant),+];

            /// The code as written in status, conditions and metrics.
            pub fn code(self) -> &'static str {
                match self { $(RootCause::$variant => stringify!($variant)),+ }
            }

            /// The area of the request path the cause sits in (dns, network, tls, http, policy, …).
            pub fn area(self) -> &'static str {
                match self { $(RootCause::$variant => $area),+ }
            }

            /// What the code means.
            pub fn meaning(self) -> &'static str {
                match self { $(RootCause::$variant => $meaning),+ }
            }

            /// The usual fix, before the diagnosis makes it concrete with the check's own facts.
            pub fn typical_fix(self) -> &'static str {
                match self { $(RootCause::$variant => $fix),+ }
            }
        }
    };
}

root_causes! {
    /// The API answered with an expected status through the chosen access mode.
    Healthy => { area: "none", meaning: "The API answered with an expected status through the endpoint.", fix: "Nothing to do." },
    DnsResolutionFailed => { area: "dns", meaning: "The hostname the client calls did not resolve (NXDOMAIN, no records, SERVFAIL or timeout).", fix: "Check the pod's resolver (CoreDNS forwarders, DHCP options) reaches the Amazon-provided DNS and that the name is right for the access mode." },
    PrivateDnsDisabled => { area: "dns", meaning: "The API host resolves to public addresses: the endpoint's private DNS is off, so calls leave the VPC and API Gateway refuses them.", fix: "Enable private DNS names on the interface endpoint, or call the endpoint-specific alias `{api}-{vpce}.execute-api.{region}.amazonaws.com`." },
    DnsMismatch => { area: "dns", meaning: "The API host resolves, but not to this endpoint's addresses: another endpoint's private DNS or an overriding record wins.", fix: "Find the private hosted zone or resolver rule answering for `execute-api.{region}.amazonaws.com` and remove the override, or use the endpoint alias host." },
    VpcDnsAttributesDisabled => { area: "dns", meaning: "The VPC has `enableDnsSupport` or `enableDnsHostnames` off, so private DNS for the endpoint cannot work.", fix: "Turn on both DNS attributes of the VPC (`aws ec2 modify-vpc-attribute --enable-dns-support/--enable-dns-hostnames`)." },
    EndpointNotFound => { area: "endpoint", meaning: "The VPC endpoint id in the spec does not exist in this account and region.", fix: "Correct `spec.endpoint.vpcEndpointId`, or grant the operator `ec2:DescribeVpcEndpoints` in the endpoint's account." },
    EndpointNotAvailable => { area: "endpoint", meaning: "The VPC endpoint exists but is not in the `available` state (pending, rejected, failed, deleting).", fix: "Wait for or fix the endpoint's state; a rejected endpoint needs acceptance by the service owner." },
    EndpointWrongService => { area: "endpoint", meaning: "The VPC endpoint is not an `execute-api` interface endpoint.", fix: "Point the check at an interface endpoint for `com.amazonaws.{region}.execute-api`." },
    /// A Kubernetes NetworkPolicy isolates the pod's egress and no rule allows the path.
    NetworkPolicyBlocked => { area: "network", meaning: "A Kubernetes NetworkPolicy selects the pod and isolates its egress, and no rule allows TCP 443 to the endpoint (or DNS to its resolver): packets are dropped next to the pod, before any security group sees them.", fix: "Apply a NetworkPolicy that allows egress from the pod's labels to the endpoint's addresses on TCP 443 and to the DNS server on UDP and TCP 53 (the report carries it, ready to apply)." },
    SecurityGroupBlocked => { area: "network", meaning: "TCP 443 to the endpoint times out and a security group does not allow it (endpoint inbound or client outbound).", fix: "Add an inbound rule for TCP 443 from the client (pod CIDR, pod or node security group) to the endpoint's security group, and outbound 443 on the client's." },
    NetworkAclBlocked => { area: "network", meaning: "TCP 443 to the endpoint times out and a network ACL denies the request or its return traffic.", fix: "Allow TCP 443 inbound to the endpoint subnets and ephemeral ports 1024-65535 back to the client subnets in the network ACLs (they are stateless)." },
    ConnectTimeout => { area: "network", meaning: "TCP 443 to the endpoint times out and no security group or NACL explains it (routing, firewall appliance, or facts unavailable).", fix: "Check route tables, firewalls and, if AWS inspection was off or denied, the security groups and NACLs by hand." },
    ConnectRefused => { area: "network", meaning: "The address the name resolved to actively refused TCP 443: it is not the VPC endpoint.", fix: "Check DNS: the name resolves to something other than the endpoint's network interfaces." },
    TlsFailure => { area: "tls", meaning: "The TLS handshake failed: certificate name mismatch (calling an IP or own CNAME), unknown issuer (TLS-inspecting proxy) or handshake error.", fix: "Call an AWS hostname (API host, alias host or vpce host) so the `*.execute-api.{region}.amazonaws.com` certificate matches." },
    InvokeUrlInvalid => { area: "http", meaning: "A vpce hostname was called without a `Host` or `x-apigw-api-id` header, so API Gateway cannot tell which API is meant (403 Forbidden).", fix: "Send `Host: {api}.execute-api.{region}.amazonaws.com` or `x-apigw-api-id: {api}`, or use the alias host." },
    ApiNotPrivate => { area: "api", meaning: "The API's endpoint type is not PRIVATE.", fix: "Call a regional or edge API through its public URL, or change the API's endpoint type to PRIVATE." },
    PublicApiShadowedByPrivateDns => { area: "dns", meaning: "A public (regional/edge) API is called from a VPC whose execute-api endpoint has private DNS on, so the call lands on the endpoint and gets 403.", fix: "Call the public API through a custom domain name, or turn private DNS off on the endpoint and use alias hosts for private APIs." },
    ApiNotAssociatedWithEndpoint => { area: "api", meaning: "The endpoint alias host does not exist because the API's `vpcEndpointIds` does not list this endpoint.", fix: "Add the endpoint to the API's `endpointConfiguration.vpcEndpointIds`, or use `endpointHost`/`apiIdHeader` access." },
    StageOrResourceNotFound => { area: "api", meaning: "API Gateway answered 'Missing Authentication Token': the stage, path or method is not deployed.", fix: "Check the stage name, path and method, and deploy the API to the stage." },
    ApiNotFound => { area: "api", meaning: "No REST API with this id exists in the account and region.", fix: "Correct `spec.api.id`/`region`, or set `spec.api.accountId` and `spec.aws.apiRoleArn` for an API in another account." },
    ResourcePolicyMissing => { area: "policy", meaning: "The private API has no resource policy; a private API without one denies every call.", fix: "Attach a resource policy that allows `execute-api:Invoke` from this endpoint or VPC, then redeploy the stage." },
    ResourcePolicyDenied => { area: "policy", meaning: "The API's resource policy does not allow this call (implicit deny: no Allow statement matches).", fix: "Add an Allow for `execute-api:Invoke` on this API from this endpoint (`aws:SourceVpce`) or VPC, then redeploy the stage." },
    ResourcePolicyExplicitDeny => { area: "policy", meaning: "A Deny statement in the API's resource policy matches this call.", fix: "Change the denying statement's condition (usually the `aws:SourceVpce`/`aws:SourceVpc` list) to include this endpoint, then redeploy the stage." },
    ResourcePolicyNotDeployed => { area: "policy", meaning: "The stored resource policy allows the call, yet API Gateway denies it: the policy changed after the stage's last deployment.", fix: "Create a new deployment of the stage so the current policy takes effect." },
    EndpointPolicyDenied => { area: "policy", meaning: "The VPC endpoint policy does not allow `execute-api:Invoke` on this API for this caller.", fix: "Allow `execute-api:Invoke` on the API's ARN for the caller (principal `*` for unauthenticated methods) in the endpoint policy." },
    /// The API turned its default `execute-api` endpoint off, so every execute-api hostname is refused.
    ExecuteApiEndpointDisabled => { area: "api", meaning: "The API has `disableExecuteApiEndpoint` on: API Gateway refuses calls to its execute-api hostnames (403 Forbidden) and only its custom domain names work.", fix: "Call the API through its private custom domain name, or turn the default endpoint back on (`aws apigateway update-rest-api --patch-operations op=replace,path=/disableExecuteApiEndpoint,value=false`)." },
    /// An AWS WAF web ACL on the stage blocked the request.
    WafBlocked => { area: "waf", meaning: "API Gateway answered 403 Forbidden and the stage has an AWS WAF web ACL, which the other facts do not rule out as the blocker.", fix: "Look up the request in the web ACL's sampled requests or WAF logs and allow the workload's requests (a rule's scope-down, an IP set with the VPC CIDR)." },
    AuthorizationRequired => { area: "auth", meaning: "The method needs IAM auth, a Lambda/Cognito authorizer or an API key; the network path works.", fix: "Call with the credentials the method requires, or point the check at an unauthenticated health path." },
    CrossAccountRegionMismatch => { area: "endpoint", meaning: "The endpoint is in another account and another region than the API; private APIs are only reachable from endpoints in the same region.", fix: "Create an execute-api endpoint in the API's region (peer the VPCs if the client is elsewhere)." },
    ProxyInterference => { area: "network", meaning: "An HTTP(S) proxy from the environment would carry execute-api traffic out of the VPC.", fix: "Add `.execute-api.{region}.amazonaws.com` and `.vpce.amazonaws.com` to `NO_PROXY` for the workload." },
    UnexpectedStatus => { area: "http", meaning: "The API answered with a status outside `expectedStatuses` that no rule explains.", fix: "Check the backend integration and the execution logs for the request id in the report." },
    ProbeFailed => { area: "probe", meaning: "The probe pod could not run or report (scheduling, image, crash, oversized report).", fix: "Look at the probe pod's events and logs; check `spec.probe` placement and image." },
    /// Also what an older client reads for a code it does not know yet (a newer operator).
    #[serde(other)]
    Unknown => { area: "none", meaning: "The evidence does not point to one cause.", fix: "Read the per-area results in the report; open an issue with the `-o json` output." },
}

impl fmt::Display for RootCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Error for a string that is not a known root-cause code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCode(pub String);

impl fmt::Display for UnknownCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown code {:?}", self.0)
    }
}

impl std::error::Error for UnknownCode {}

impl FromStr for RootCause {
    type Err = UnknownCode;

    /// Parses a code, ignoring ASCII case so `kubectl pvtapi explain securitygroupblocked` works.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RootCause::ALL
            .iter()
            .copied()
            .find(|c| c.code().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownCode(s.to_owned()))
    }
}

/// Findings worth reporting that are not the root cause.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Advisory {
    /// Stage execution logging is off, so failed calls leave no trace in CloudWatch.
    ExecutionLoggingDisabled,
    /// The probe's request id is not in the execution logs: the request never reached API Gateway.
    RequestNotLogged,
    /// The endpoint has no subnet in the probe's availability zone, so traffic crosses zones.
    EndpointMissingInCallerAz,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_serde_and_from_str() {
        for code in RootCause::ALL {
            let json = serde_json::to_string(code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.code()));
            assert_eq!(serde_json::from_str::<RootCause>(&json).unwrap(), *code);
            assert_eq!(code.code().to_lowercase().parse::<RootCause>().unwrap(), *code);
        }
    }

    #[test]
    fn every_design_code_is_present_once() {
        // design.md §6, in its order: the codes are a stable API.
        let design = "Healthy DnsResolutionFailed PrivateDnsDisabled DnsMismatch VpcDnsAttributesDisabled \
            EndpointNotFound EndpointNotAvailable EndpointWrongService SecurityGroupBlocked \
            NetworkAclBlocked ConnectTimeout ConnectRefused TlsFailure InvokeUrlInvalid ApiNotPrivate \
            PublicApiShadowedByPrivateDns ApiNotAssociatedWithEndpoint StageOrResourceNotFound \
            ApiNotFound ResourcePolicyMissing ResourcePolicyDenied ResourcePolicyExplicitDeny \
            ResourcePolicyNotDeployed EndpointPolicyDenied AuthorizationRequired \
            CrossAccountRegionMismatch ProxyInterference UnexpectedStatus ProbeFailed Unknown \
            NetworkPolicyBlocked";
        // Codes added since, each a distinct answer the diagnosis gives (issue 13: the 403
        // Forbidden causes the facts tell apart). Codes are only ever added.
        let additions = ["ExecuteApiEndpointDisabled", "WafBlocked"];
        let ours: Vec<&str> = RootCause::ALL.iter().map(|c| c.code()).collect();
        for code in design.split_whitespace().chain(additions) {
            assert_eq!(ours.iter().filter(|c| **c == code).count(), 1, "{code} must be present once");
        }
        assert_eq!(ours.len(), design.split_whitespace().count() + additions.len(), "an undocumented code: {ours:?}");
        // Documentation order follows the request path; design.md's own order is kept for its codes
        // apart from NetworkPolicyBlocked, which sits with the other network causes.
        let listed: Vec<&str> = design.split_whitespace().filter(|c| *c != "NetworkPolicyBlocked").collect();
        let design_order: Vec<&str> = ours.iter().copied().filter(|c| listed.contains(c)).collect();
        assert_eq!(design_order, listed);
    }

    #[test]
    fn unknown_code_is_an_error_naming_it() {
        let err = "NotACode".parse::<RootCause>().unwrap_err();
        assert_eq!(err.to_string(), "unknown code \"NotACode\"");
    }

    #[test]
    fn every_code_has_meaning_and_fix() {
        for code in RootCause::ALL {
            assert!(code.meaning().ends_with('.'), "{code}: meaning must be a sentence");
            assert!(!code.typical_fix().is_empty(), "{code}: missing fix");
            assert!(!code.area().is_empty());
        }
    }
}

//! Ready-to-apply fixes: the exact change, with the check's real ids, in machine-readable form.
//!
//! Why: "add an inbound rule for 443" sends a person to the console to find the group, the
//! source and the syntax; the fix here is the command itself (`argv`, no shell), the policy
//! statement with the whole resulting document, or the manifest. A fix is only offered when
//! the engine's own analysis of the changed state passes — the security-group and NACL
//! evaluators with the new rule, the policy evaluator with the new document — so a suggested
//! change never leaves the layer it fixes still failing.

use pvtapi_crds::RootCause;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::aws::AwsFacts;
use crate::network::{
    Client, Endpoint, IpProtocol, NaclAction, NaclEntry, NaclSide, NaclStatus, NetworkAcl, SecurityGroup, SgPeer,
    SgRule, SgStatus,
};
use crate::probe::report::TargetSummary;

/// One change that fixes the root cause (or one step of it, in order).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Fix {
    /// What the change does, one line.
    pub description: String,
    /// The AWS account whose credentials the command needs, when it is not the endpoint's
    /// (the API's owner in a cross-account setup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// An AWS CLI command as argv (no shell quoting needed; `commandLine` is the quoted form).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aws_cli: Vec<String>,
    /// The same command quoted for a POSIX shell, ready to paste.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_line: Option<String>,
    /// For a policy change: the statement added or changed and the whole resulting document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyFix>,
    /// A Kubernetes manifest to apply (`kubectl apply -f -`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
}

/// Which policy a [`PolicyFix`] changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum PolicyKind {
    /// The API's resource policy (takes effect after a redeploy of the stage).
    ResourcePolicy,
    /// The VPC endpoint's policy.
    EndpointPolicy,
}

/// A policy change: the statement and the document after the change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyFix {
    pub kind: PolicyKind,
    /// The statement added, or the statement as changed.
    pub statement: Value,
    /// The whole policy document after the change.
    pub document: Value,
}

impl Fix {
    fn cli(description: impl Into<String>, argv: &[&str]) -> Fix {
        let aws_cli: Vec<String> = argv.iter().map(|s| (*s).to_owned()).collect();
        let command_line = shlex::try_join(aws_cli.iter().map(String::as_str)).ok();
        Fix { description: description.into(), account: None, aws_cli, command_line, policy: None, manifest: None }
    }

    pub fn in_account(mut self, account: Option<String>) -> Fix {
        self.account = account;
        self
    }
}

/// `aws apigateway create-deployment`: puts the current policy and methods into effect (and
/// creates the stage when it does not exist).
pub fn redeploy(t: &TargetSummary) -> Fix {
    Fix::cli(
        format!("Deploy API {} to stage {} so the current policy and methods take effect", t.api_id, t.stage),
        &[
            "aws",
            "apigateway",
            "create-deployment",
            "--region",
            &t.region,
            "--rest-api-id",
            &t.api_id,
            "--stage-name",
            &t.stage,
        ],
    )
}

/// `aws ec2 modify-vpc-endpoint --private-dns-enabled`.
pub fn enable_private_dns(vpce: &str, region: &str) -> Fix {
    Fix::cli(
        format!("Turn on private DNS names for {vpce}"),
        &["aws", "ec2", "modify-vpc-endpoint", "--region", region, "--vpc-endpoint-id", vpce, "--private-dns-enabled"],
    )
}

/// `aws ec2 modify-vpc-attribute`, one per attribute that is off (the CLI takes one per call).
pub fn enable_vpc_dns(vpc: &str, region: &str, support: bool, hostnames: bool) -> Vec<Fix> {
    let mut out = Vec::new();
    for (on, flag, what) in
        [(support, "--enable-dns-support", "DNS support"), (hostnames, "--enable-dns-hostnames", "DNS hostnames")]
    {
        if !on {
            out.push(Fix::cli(
                format!("Turn on {what} for {vpc}"),
                &["aws", "ec2", "modify-vpc-attribute", "--region", region, "--vpc-id", vpc, flag, r#"{"Value":true}"#],
            ));
        }
    }
    out
}

/// `aws apigateway update-rest-api`: associate the endpoint with the API (creates the alias host).
pub fn associate_endpoint(t: &TargetSummary, account: Option<String>) -> Fix {
    let ops = json!([{"op": "add", "path": "/endpointConfiguration/vpcEndpointIds", "value": t.vpce_id}]).to_string();
    Fix::cli(
        format!("Associate {} with API {} (creates the alias host)", t.vpce_id, t.api_id),
        &[
            "aws",
            "apigateway",
            "update-rest-api",
            "--region",
            &t.region,
            "--rest-api-id",
            &t.api_id,
            "--patch-operations",
            &ops,
        ],
    )
    .in_account(account)
}

/// `aws apigateway update-rest-api`: turn the default execute-api endpoint back on.
pub fn enable_execute_api_endpoint(t: &TargetSummary, account: Option<String>) -> Fix {
    let ops = json!([{"op": "replace", "path": "/disableExecuteApiEndpoint", "value": "false"}]).to_string();
    Fix::cli(
        format!("Turn the default execute-api endpoint of {} back on", t.api_id),
        &[
            "aws",
            "apigateway",
            "update-rest-api",
            "--region",
            &t.region,
            "--rest-api-id",
            &t.api_id,
            "--patch-operations",
            &ops,
        ],
    )
    .in_account(account)
}

/// The security-group rules that open TCP 443 from the client to the endpoint, each proven by
/// re-running the evaluator with the rule added. Empty when no single rule per blocked
/// direction makes the analysis pass (then only the prose fix is given).
pub fn security_groups(client: &Client, endpoint: &Endpoint, groups: &[SecurityGroup], region: &str) -> Vec<Fix> {
    let mut groups = groups.to_vec();
    let mut fixes = Vec::new();
    let verdict = crate::network::evaluate_security_groups(client, endpoint, &groups);
    let https = |peer: SgPeer| SgRule {
        rule_id: None,
        protocol: IpProtocol::Tcp,
        from_port: Some(443),
        to_port: Some(443),
        peer,
        description: Some("pvtapi: HTTPS to the execute-api endpoint".into()),
    };
    let client_group = client.security_group_ids.first();
    let endpoint_group = endpoint.security_group_ids.first();
    if matches!(verdict.inbound, crate::network::SgOutcome::Blocked { .. })
        && let Some(target) = endpoint_group
        && let Some(g) = groups.iter_mut().find(|g| &g.id == target)
    {
        let (peer, permission, from) = match client_group {
            Some(sg) => (
                SgPeer::SecurityGroup { group_id: sg.clone(), user_id: None },
                format!("IpProtocol=tcp,FromPort=443,ToPort=443,UserIdGroupPairs=[{{GroupId={sg}}}]"),
                format!("the client's group {sg}"),
            ),
            None => {
                let cidr = client.subnet_cidr.unwrap_or_else(|| crate::network::host_cidr(client.ip));
                (
                    SgPeer::Cidr(cidr),
                    format!("IpProtocol=tcp,FromPort=443,ToPort=443,IpRanges=[{{CidrIp={cidr}}}]"),
                    cidr.to_string(),
                )
            }
        };
        g.ingress.push(https(peer));
        fixes.push(Fix::cli(
            format!("Allow TCP 443 into {target} (the endpoint's group) from {from}"),
            &[
                "aws",
                "ec2",
                "authorize-security-group-ingress",
                "--region",
                region,
                "--group-id",
                target,
                "--ip-permissions",
                &permission,
            ],
        ));
    }
    if matches!(verdict.outbound, crate::network::SgOutcome::Blocked { .. })
        && let Some(source) = client_group
        && let Some(g) = groups.iter_mut().find(|g| &g.id == source)
    {
        let (peer, permission, to) = match endpoint_group {
            Some(sg) => (
                SgPeer::SecurityGroup { group_id: sg.clone(), user_id: None },
                format!("IpProtocol=tcp,FromPort=443,ToPort=443,UserIdGroupPairs=[{{GroupId={sg}}}]"),
                format!("the endpoint's group {sg}"),
            ),
            None => return Vec::new(),
        };
        g.egress.push(https(peer));
        fixes.push(Fix::cli(
            format!("Allow TCP 443 out of {source} (the client's group) to {to}"),
            &[
                "aws",
                "ec2",
                "authorize-security-group-egress",
                "--region",
                region,
                "--group-id",
                source,
                "--ip-permissions",
                &permission,
            ],
        ));
    }
    let after = crate::network::evaluate_security_groups(client, endpoint, &groups);
    if fixes.is_empty() || after.status() != SgStatus::Allowed { Vec::new() } else { fixes }
}

/// The network ACL entries that let the connection and its replies through, each numbered
/// before the rule that denies it, proven by re-running the evaluator with them added.
pub fn network_acls(client: NaclSide<'_>, endpoint: NaclSide<'_>, region: &str) -> Vec<Fix> {
    let verdict = crate::network::evaluate_nacls(client, endpoint);
    let mut acls: Vec<NetworkAcl> = [client.nacl, endpoint.nacl].into_iter().flatten().cloned().collect();
    acls.dedup_by(|a, b| a.id == b.id);
    let mut fixes = Vec::new();
    for leg in &verdict.legs {
        if !matches!(leg.status, crate::network::LegStatus::Denied | crate::network::LegStatus::Partial) {
            continue;
        }
        let Some(acl) = leg.nacl_id.as_deref().and_then(|id| acls.iter_mut().find(|a| a.id == id)) else {
            return Vec::new();
        };
        let egress = leg.leg.is_egress();
        let ports = if leg.leg.is_reply() { (1024, 65535) } else { (443, 443) };
        let first_deny = leg
            .decisions
            .iter()
            .filter(|d| d.action == NaclAction::Deny && d.rule_number != crate::network::DEFAULT_RULE_NUMBER)
            .filter(|d| d.ports.intersect(leg.required).is_some())
            .map(|d| d.rule_number)
            .min();
        let Some(number) = free_rule_number(acl, egress, first_deny) else { return Vec::new() };
        let cidr = leg.peer_subnet.unwrap_or_else(|| crate::network::host_cidr(leg.peer));
        acl.entries.push(NaclEntry {
            rule_number: number,
            egress,
            action: NaclAction::Allow,
            protocol: IpProtocol::Tcp,
            cidr,
            port_range: Some(ports),
        });
        let (number, range, cidr_text) =
            (number.to_string(), format!("From={},To={}", ports.0, ports.1), cidr.to_string());
        let cidr_flag = if cidr.addr().is_ipv4() { "--cidr-block" } else { "--ipv6-cidr-block" };
        let acl_id = acl.id.clone();
        fixes.push(Fix::cli(
            format!("In {acl_id}: {} (rule {number})", leg.leg.label()),
            &[
                "aws",
                "ec2",
                "create-network-acl-entry",
                "--region",
                region,
                "--network-acl-id",
                &acl_id,
                "--rule-number",
                &number,
                if egress { "--egress" } else { "--ingress" },
                "--protocol",
                "tcp",
                "--port-range",
                &range,
                cidr_flag,
                &cidr_text,
                "--rule-action",
                "allow",
            ],
        ));
    }
    let find = |side: &NaclSide<'_>| side.nacl.and_then(|n| acls.iter().find(|a| a.id == n.id));
    let after = crate::network::evaluate_nacls(
        NaclSide { nacl: find(&client), ..client },
        NaclSide { nacl: find(&endpoint), ..endpoint },
    );
    if fixes.is_empty() || after.status != NaclStatus::Allowed { Vec::new() } else { fixes }
}

/// A rule number not used in `acl`'s direction: just below the first denying rule, or after the
/// last numbered rule when only the `*` rule denies.
fn free_rule_number(acl: &NetworkAcl, egress: bool, below: Option<u16>) -> Option<u16> {
    let used = |n: u16| acl.entries.iter().any(|e| e.egress == egress && e.rule_number == n);
    match below {
        Some(limit) => (1..limit).rev().find(|n| !used(*n)),
        None => {
            let last = acl
                .entries
                .iter()
                .filter(|e| e.egress == egress && e.rule_number != crate::network::DEFAULT_RULE_NUMBER)
                .map(|e| e.rule_number)
                .max()
                .unwrap_or(0);
            let start = (last / 10 + 1) * 10;
            (start..crate::network::DEFAULT_RULE_NUMBER).find(|n| !used(*n))
        }
    }
}

/// The statement that allows this API's invoke through `vpce` (what AWS documents for private
/// APIs), for the resource policy.
pub fn allow_through_endpoint_statement(vpce: &str) -> Value {
    json!({
        "Sid": "PvtapiAllowInvokeThroughEndpoint",
        "Effect": "Allow",
        "Principal": "*",
        "Action": "execute-api:Invoke",
        "Resource": "execute-api:/*",
        "Condition": {"StringEquals": {"aws:SourceVpce": vpce}}
    })
}

/// The statement that allows invoking `arn` through the endpoint, for the endpoint policy.
pub fn endpoint_allow_statement(arn: &str) -> Value {
    json!({
        "Sid": "PvtapiAllowInvoke",
        "Effect": "Allow",
        "Principal": "*",
        "Action": "execute-api:Invoke",
        "Resource": arn
    })
}

/// `document` with `statement` appended (a document without one starts fresh).
pub fn with_statement(document: Option<&str>, statement: &Value) -> Option<Value> {
    let mut doc: Value = match document {
        Some(text) => serde_json::from_str(text).ok()?,
        None => json!({"Version": "2012-10-17", "Statement": []}),
    };
    let obj = doc.as_object_mut()?;
    let list = match obj.remove("Statement") {
        Some(Value::Array(list)) => list,
        Some(single @ Value::Object(_)) => vec![single],
        None => Vec::new(),
        Some(_) => return None,
    };
    let mut list = list;
    list.push(statement.clone());
    obj.insert("Statement".into(), Value::Array(list));
    Some(doc)
}

/// A Deny statement whose condition excludes endpoints or VPCs by a negated operator
/// (`StringNotEquals`/`StringNotLike` on `aws:SourceVpce` or `aws:SourceVpc`): `document` with
/// this endpoint's id (or VPC) added to that list, and the statement as changed.
pub fn with_exception_added(document: &str, index: usize, vpce: &str, vpc: Option<&str>) -> Option<(Value, Value)> {
    let mut doc: Value = serde_json::from_str(document).ok()?;
    let statement = match doc.get_mut("Statement")? {
        Value::Array(list) => list.get_mut(index)?,
        single @ Value::Object(_) if index == 0 => single,
        _ => return None,
    };
    let conditions = statement.get_mut("Condition")?.as_object_mut()?;
    let mut changed = false;
    for (operator, block) in conditions.iter_mut() {
        let op = operator.to_ascii_lowercase();
        let op = op.trim_end_matches("ifexists");
        if !(op.ends_with("stringnotequals") || op.ends_with("stringnotlike")) {
            continue;
        }
        let Some(block) = block.as_object_mut() else { continue };
        for (key, values) in block.iter_mut() {
            let add = match key.to_ascii_lowercase().as_str() {
                "aws:sourcevpce" => vpce,
                "aws:sourcevpc" => match vpc {
                    Some(v) => v,
                    None => continue,
                },
                _ => continue,
            };
            let mut list = match values.take() {
                Value::Array(list) => list,
                Value::Null => Vec::new(),
                single => vec![single],
            };
            if !list.iter().any(|v| v.as_str() == Some(add)) {
                list.push(Value::String(add.to_owned()));
            }
            *values = Value::Array(list);
            changed = true;
        }
    }
    if !changed {
        return None;
    }
    let statement = statement.clone();
    Some((doc, statement))
}

/// The commands that put `document` in place as `kind` (and, for a resource policy, redeploy).
pub fn put_policy(
    kind: PolicyKind,
    t: &TargetSummary,
    document: Value,
    statement: Value,
    account: Option<String>,
) -> Vec<Fix> {
    let text = document.to_string();
    match kind {
        PolicyKind::ResourcePolicy => {
            let ops = json!([{"op": "replace", "path": "/policy", "value": text}]).to_string();
            let mut put = Fix::cli(
                format!("Replace the resource policy of {} with the document below", t.api_id),
                &[
                    "aws",
                    "apigateway",
                    "update-rest-api",
                    "--region",
                    &t.region,
                    "--rest-api-id",
                    &t.api_id,
                    "--patch-operations",
                    &ops,
                ],
            )
            .in_account(account.clone());
            put.policy = Some(PolicyFix { kind, statement, document });
            vec![put, redeploy(t).in_account(account)]
        }
        PolicyKind::EndpointPolicy => {
            let mut put = Fix::cli(
                format!("Replace the policy of {} with the document below", t.vpce_id),
                &[
                    "aws",
                    "ec2",
                    "modify-vpc-endpoint",
                    "--region",
                    &t.region,
                    "--vpc-endpoint-id",
                    &t.vpce_id,
                    "--policy-document",
                    &text,
                ],
            );
            put.policy = Some(PolicyFix { kind, statement, document });
            vec![put]
        }
    }
}

/// The root causes whose fix is a change in AWS and which the diagnosis makes ready to apply
/// whenever the facts it needs were read (table-tested).
pub const WITH_READY_FIX: &[RootCause] = &[
    RootCause::SecurityGroupBlocked,
    RootCause::NetworkAclBlocked,
    RootCause::PrivateDnsDisabled,
    RootCause::VpcDnsAttributesDisabled,
    RootCause::ApiNotAssociatedWithEndpoint,
    RootCause::StageOrResourceNotFound,
    RootCause::ResourcePolicyMissing,
    RootCause::ResourcePolicyDenied,
    RootCause::ResourcePolicyExplicitDeny,
    RootCause::ResourcePolicyNotDeployed,
    RootCause::EndpointPolicyDenied,
];

/// The account a resource-policy command runs in, when it is not the endpoint's.
pub fn api_account_if_other(facts: &AwsFacts, api_account: Option<&str>) -> Option<String> {
    let owner = facts.endpoint.known().and_then(|e| e.owner_id.as_deref());
    match (owner, api_account) {
        (Some(o), Some(a)) if o != a => Some(a.to_owned()),
        _ => None,
    }
}

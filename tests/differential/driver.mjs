// Differential-test driver (test-only). Reads a JSON array of cases on stdin,
// evaluates each one's policy as a *resource policy* with
// @cloud-copilot/iam-simulate, and writes a JSON array of decisions on stdout.
//
// Case:   { id, policy, principal: "anonymous" | "<arn>", resource: "<arn>",
//           accountId: "<12 digits>", context: { key: "v" | ["v", ...] } }
// Output: { id, decision: "Allow" | "ExplicitDeny" | "ImplicitDeny" | "Error",
//           detail?: string }
//
// The decision is the resource-policy analysis alone (resourceAnalysis.result),
// not the overall result that also folds in identity policies / SCPs / RCPs.
// 'AllowedForAccount' / 'DeniedForAccount' (account principals) are mapped to
// Allow / ExplicitDeny, which is how pvtapi documents account principals.
import { anonymousPrincipal, runSimulation } from '@cloud-copilot/iam-simulate'

async function readStdin() {
  const chunks = []
  for await (const chunk of process.stdin) chunks.push(chunk)
  return Buffer.concat(chunks).toString('utf8')
}

const MAP = {
  Allowed: 'Allow',
  AllowedForAccount: 'Allow',
  ExplicitlyDenied: 'ExplicitDeny',
  DeniedForAccount: 'ExplicitDeny',
  ImplicitlyDenied: 'ImplicitDeny',
}

async function evaluateCase(c) {
  const simulation = {
    request: {
      principal: c.principal === 'anonymous' ? anonymousPrincipal : c.principal,
      action: c.action ?? 'execute-api:Invoke',
      resource: { resource: c.resource, accountId: c.accountId },
      contextVariables: c.context ?? {},
    },
    identityPolicies: [],
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    resourcePolicy: c.policy,
  }
  try {
    const res = await runSimulation(simulation, {})
    if (res.resultType === 'error') {
      return { id: c.id, decision: 'Error', detail: JSON.stringify(res.errors) }
    }
    if (res.resultType !== 'single') {
      return { id: c.id, decision: 'Error', detail: `unexpected resultType ${res.resultType}` }
    }
    const ra = res.result.analysis.resourceAnalysis
    const ignored = res.result.ignoredContextKeys ?? []
    const decision = MAP[ra.result]
    if (!decision) return { id: c.id, decision: 'Error', detail: `unexpected result ${ra.result}` }
    const out = { id: c.id, decision }
    if (ignored.length > 0) out.ignoredContextKeys = ignored
    return out
  } catch (e) {
    return { id: c.id, decision: 'Error', detail: String(e && e.stack ? e.stack : e) }
  }
}

const input = JSON.parse(await readStdin())
const results = []
for (const c of input) results.push(await evaluateCase(c))
process.stdout.write(JSON.stringify(results))

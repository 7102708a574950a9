-- Argo CD health of a pvtapi.io/v1alpha1 PrivateApiConnectivityCheck (docs/argocd/README.md).
--
-- The status follows kstatus (Ready, Reconciling, Stalled, observedGeneration); the outcome
-- is the Reachable condition, whose reason is the root-cause code. This script turns a target
-- outage into Degraded on purpose; docs/argocd/ready-only/health.lua does not.
--
-- Written for Argo CD's default sandbox: no Lua standard library but base and table
-- (resource.customizations.useOpenLibs is not needed).

local hs = {}

local function condition(conditions, ctype)
  for _, c in ipairs(conditions) do
    if c.type == ctype then
      return c
    end
  end
  return nil
end

local function text(value)
  if value == nil then
    return ""
  end
  return tostring(value)
end

local function said(c)
  return text(c.reason) .. ": " .. text(c.message)
end

local status = obj.status
if status == nil or status.conditions == nil or #status.conditions == 0 then
  hs.status = "Progressing"
  hs.message = "Waiting for the first result: the operator has not written a status yet"
  return hs
end
local conditions = status.conditions
local generation = obj.metadata.generation

local reconciling = condition(conditions, "Reconciling")
if reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = said(reconciling)
  return hs
end

if generation ~= nil and status.observedGeneration ~= nil and status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Spec changed: generation " .. text(generation)
    .. " is not observed yet (the last result is for generation " .. text(status.observedGeneration) .. ")"
  return hs
end

local stalled = condition(conditions, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = said(stalled)
  return hs
end

local reachable = condition(conditions, "Reachable")
if reachable == nil or reachable.reason == "AwaitingFirstRun" then
  hs.status = "Progressing"
  if reachable == nil then
    hs.message = "Waiting for the first result"
  else
    hs.message = said(reachable)
  end
  return hs
end

local flapping = condition(conditions, "Flapping")
local intermittent = ""
if flapping ~= nil and flapping.status == "True" then
  intermittent = " (flapping: " .. text(flapping.message) .. ")"
end

local cause = status.rootCause or reachable.reason
local summary = status.summary or reachable.message
if reachable.status == "True" then
  hs.status = "Healthy"
else
  -- False: the root cause; Unknown: ProbeFailed (the probe pod could not run or report) or
  -- Unknown (the evidence names no cause). Neither is a healthy result.
  hs.status = "Degraded"
end
hs.message = text(cause) .. ": " .. text(summary) .. intermittent
return hs

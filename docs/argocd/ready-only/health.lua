-- Argo CD health of a pvtapi.io/v1alpha1 PrivateApiConnectivityCheck, lifecycle only
-- (docs/argocd/README.md): Healthy whenever the check operates and its result is current,
-- whatever that result is. A target outage is shown in the message, never as Degraded, so it
-- can neither fail a sync wave nor turn the application Degraded.
--
-- Written for Argo CD's default sandbox: no Lua standard library but base and table.

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

local ready = condition(conditions, "Ready")
local reachable = condition(conditions, "Reachable")
if ready ~= nil and ready.status ~= "True" then
  hs.status = "Progressing"
  hs.message = said(ready)
  return hs
end
if ready == nil or reachable == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the first result"
  return hs
end

local flapping = condition(conditions, "Flapping")
local intermittent = ""
if flapping ~= nil and flapping.status == "True" then
  intermittent = " (flapping: " .. text(flapping.message) .. ")"
end
hs.status = "Healthy"
hs.message = "Check operating; last result " .. text(status.rootCause or reachable.reason) .. ": "
  .. text(status.summary or reachable.message) .. intermittent
return hs

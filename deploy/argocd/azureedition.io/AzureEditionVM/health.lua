-- Argo CD health check for azureedition.io/AzureEditionVM.
--
-- Reads the same conditions as kstatus (Flux, kubectl wait): the operator classifies every reason
-- once (azure_edition_operator.reasons) into Ready, Reconciling and Stalled, so this script names
-- no reason at all and cannot fall behind the operator's vocabulary:
--   * being deleted                                    -> Progressing "Deleting ..."
--   * no status yet, or status for an older generation -> Progressing (the operator has not
--     looked at the latest spec yet; Argo CD must not call a stale Ready "Healthy")
--   * Stalled=True  (a person must act)                -> Degraded "<reason>: <message>"
--   * Reconciling=True (time or the operator fixes it) -> Progressing "<reason>: <message>"
--   * Ready=True                                       -> Healthy, with Ready's message (a warning,
--     e.g. a certificate inside its warning window, keeps Ready=True and is named there)
--   * otherwise (an operator from before the kstatus conditions): Ready=False is Degraded unless the
--     phase is Pending or Provisioning; anything else is Progressing
-- tests/deploy/test_status_agreement.py runs it on the status the operator computes for every reason.
-- Install it through argocd-cm (deploy/argocd/argocd-cm-patch.yaml).
local hs = {}

local function withReason(reason, message)
  if message ~= nil and message ~= "" then
    return reason .. ": " .. message
  end
  return reason
end

local deleting = "Deleting: the operator is removing the Azure resources (or orphaning them, per spec.deletionPolicy)"

if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = deleting
  return hs
end

local status = obj.status
if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report status"
  return hs
end

local generation = obj.metadata and obj.metadata.generation
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local found = {}
if status.conditions ~= nil then
  for _, condition in ipairs(status.conditions) do
    found[condition.type] = condition
  end
end
local ready, reconciling, stalled = found["Ready"], found["Reconciling"], found["Stalled"]

if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = withReason(stalled.reason or "Stalled", stalled.message)
  return hs
end

if reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = withReason(reconciling.reason or "Reconciling", reconciling.message)
  return hs
end

if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or "Ready"
  return hs
end

local phase = status.phase
if phase == "Deleting" then
  hs.status = "Progressing"
  hs.message = deleting
  return hs
end
if ready ~= nil and ready.status == "False" and phase ~= "Pending" and phase ~= "Provisioning" then
  hs.status = "Degraded"
else
  hs.status = "Progressing"
end
if ready ~= nil then
  hs.message = withReason(ready.reason or ("Ready=" .. tostring(ready.status)), ready.message)
else
  hs.message = "Phase " .. tostring(phase or "Pending") .. ": waiting for the Ready condition"
end
return hs

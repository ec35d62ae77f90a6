-- Argo CD health check for azureedition.io/AzureEditionVM.
--
-- Maps the operator's status (docs/reference.md) to Healthy / Progressing / Degraded:
--   * being deleted                                   -> Progressing "Deleting ..."
--   * no status yet, or status for an older generation -> Progressing (the operator has not
--     looked at the latest spec yet; Argo CD must not call a stale Ready "Healthy")
--   * Ready=True                                       -> Healthy
--   * Ready=False, reason Provisioning                 -> Progressing (time fixes it)
--   * Ready=False, reason Degraded, ProvisioningFailed, ImageUnresolved,
--     AdminCredentialsMissing, NotPermitted or VMStopped -> Degraded (a person must act)
--     (this list is tested against azure_edition_operator.reasons.READY_DEGRADED_REASONS)
--   * anything else: the phase decides (Pending/Provisioning -> Progressing,
--     Degraded/Failed -> Degraded), else Progressing
-- Install it through argocd-cm (deploy/argocd/argocd-cm-patch.yaml).
local hs = {}

local degradedReasons = {
  Degraded = true,
  ProvisioningFailed = true,
  ImageUnresolved = true,
  AdminCredentialsMissing = true,
  AdminCredentialsInvalid = true,
  NotPermitted = true,
  VMStopped = true,
}

local function withReason(reason, message)
  if message ~= nil and message ~= "" then
    return reason .. ": " .. message
  end
  return reason
end

if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "Deleting: the operator is removing the Azure resources (or orphaning them, per spec.deletionPolicy)"
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

local ready = nil
if status.conditions ~= nil then
  for _, condition in ipairs(status.conditions) do
    if condition.type == "Ready" then
      ready = condition
    end
  end
end

if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or "Ready"
  return hs
end

if ready ~= nil and ready.status == "False" then
  if ready.reason == "Provisioning" then
    hs.status = "Progressing"
    hs.message = withReason(ready.reason, ready.message)
    return hs
  end
  if degradedReasons[ready.reason] then
    hs.status = "Degraded"
    hs.message = withReason(ready.reason, ready.message)
    return hs
  end
end

local phase = status.phase
if phase == "Degraded" or phase == "Failed" then
  hs.status = "Degraded"
elseif phase == "Deleting" then
  hs.status = "Progressing"
  hs.message = "Deleting: the operator is removing the Azure resources (or orphaning them, per spec.deletionPolicy)"
  return hs
else
  hs.status = "Progressing"
end
if ready ~= nil then
  hs.message = withReason(ready.reason or ("Ready=" .. tostring(ready.status)), ready.message)
else
  hs.message = "Phase " .. tostring(phase or "Pending") .. ": waiting for the Ready condition"
end
return hs

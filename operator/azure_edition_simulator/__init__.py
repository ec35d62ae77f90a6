"""ARM simulator: Azure Resource Manager (Compute, Network) and enough of Microsoft Entra ID, over HTTPS on
loopback, so the *real* ``azure-identity`` / ``azure-mgmt-compute`` / ``azure-mgmt-network`` SDKs run
unchanged against it. The operator never imports this package; tests and ``make demo`` run it.

Running it
==========

* CLI: ``python -m azure_edition_simulator`` (console script ``azure-edition-armsim``) with ``--port``
  (default random), ``--state-dir`` (CA, identity and world survive restarts), ``--env-file``,
  ``--provisioning-seconds`` (default 0.5), ``--retry-after`` (default 1), ``--quic-port`` (default 443,
  0 = random), ``--no-throttling``, ``--throttle-{subscription-reads,subscription-writes,vm-get,vm-update,
  vm-guest-patch} CAPACITY/PER_MINUTE``, ``--subscription-id``, ``--tenant-id``, ``--client-id``,
  ``--client-secret``, ``--location``, ``--token-lifetime``, ``--tls-san NAME`` (repeatable: extra names
  for the serving certificate, e.g. a Kubernetes Service), ``--profile instant|azure`` (timing, see
  below), ``--time-scale F``, ``--seed N``, ``--consistency-rate R``, ``--no-policy``. Runs until SIGINT/SIGTERM. Responses (LRO
  URLs, OIDC endpoints, accepted token audiences) use the origin the client addressed, so any name in
  the certificate works. The state dir holds ``ca.pem`` (also copied to ``ca.crt``), ``ca-bundle.pem``,
  ``server.pem``, ``federated-token``, ``identity.json`` and ``world.json``.
* In-process (tests): ``async with Simulator.start(provisioning_seconds=0, retry_after_seconds=0) as sim``
  (``with`` works too). The server runs in its own thread and loop, so synchronous SDK calls from a
  test do not block it. ``sim.endpoint``, ``sim.ca_path``, ``sim.tenant_id``, ``sim.client_id``,
  ``sim.client_secret``, ``sim.subscription_id``, ``sim.federated_token_file``, ``sim.quic_port`` and
  ``sim.control`` (a :class:`SimulatorControl`).

Env file (``--env-file``; ``KEY=value`` lines, shell-quoted; :func:`load_env_file` parses it)
-------------------------------------------------------------------------------------------------

===================================  ==============================================================
``AZURE_RESOURCE_MANAGER_ENDPOINT``  ARM base URL, ``https://127.0.0.1:<port>`` (SDK ``base_url``)
``AZURE_RESOURCE_MANAGER_SCOPE``     ``<endpoint>/.default`` (SDK ``credential_scopes``)
``AZURE_AUTHORITY_HOST``             the same origin: it also serves the identity endpoints
``AZURE_TENANT_ID``                  tenant of the simulated directory
``AZURE_CLIENT_ID``                  the operator's app registration
``AZURE_CLIENT_SECRET``              its secret (ClientSecretCredential)
``AZURE_FEDERATED_TOKEN_FILE``       a service-account-like JWT it trusts (WorkloadIdentityCredential)
``AZURE_SUBSCRIPTION_ID``            the seeded subscription
``SSL_CERT_FILE``/``REQUESTS_CA_BUNDLE``  simulator CA + the system CAs (process-wide trust)
``ARMSIM_CA_CERT``                   the simulator CA alone (for ``connection_verify=``)
``ARMSIM_CONTROL_URL``               ``<endpoint>/_simulator`` (control API)
``ARMSIM_QUIC_PORT``                 UDP port of the VMs' SMB over QUIC endpoints
``ARMSIM_LOOPBACK_BLOCK``            this simulator's own ``127.X.0.0/16`` for guest addresses (:mod:`.loopback`)
``ARMSIM_LOCATION``, ``ARMSIM_RESOURCE_GROUP``, ``ARMSIM_SUBNET_ID``, ``ARMSIM_EXTENDED_SUBNET_ID``,
``ARMSIM_STATE_DIR``                 the seeded world (``rg-branch-a``; subnets ``servers`` 127.X.1.0/24,
                                     ``extended`` 127.X.2.0/24 in ``vnet-branch-a``; its ``GatewaySubnet``
                                     127.X.3.0/24 holds VPN gateway ``vgw-branch-a`` with connection
                                     ``cn-branch-a-onprem``, Connected: Extended Network's prerequisites)
===================================  ==============================================================

Real SDK construction that works (verified by tests/integration/test_simulator_sdk.py)
--------------------------------------------------------------------------------------

.. code-block:: python

    ca = env["ARMSIM_CA_CERT"]                 # or rely on SSL_CERT_FILE / REQUESTS_CA_BUNDLE and omit it
    credential = ClientSecretCredential(
        tenant_id, client_id, client_secret,
        authority=env["AZURE_AUTHORITY_HOST"],
        disable_instance_discovery=True,         # REQUIRED for the sync (MSAL) credentials, see below
        connection_verify=ca)
    # or WorkloadIdentityCredential(tenant_id=..., client_id=..., token_file_path=...,
    #                               authority=env["AZURE_AUTHORITY_HOST"], connection_verify=ca)
    # or DefaultAzureCredential(disable_instance_discovery=True) with the env file exported
    #    (plain sync DefaultAzureCredential() FAILS: its EnvironmentCredential → MSAL does instance
    #    discovery against login.microsoftonline.com, and a configured credential's failure ends the
    #    chain). The azure.identity.aio credentials do not use MSAL: they post to
    #    {authority}/{tenant}/oauth2/v2.0/token directly and work with or without the flag.
    compute = ComputeManagementClient(
        credential, subscription_id,
        base_url=env["AZURE_RESOURCE_MANAGER_ENDPOINT"],
        credential_scopes=[env["AZURE_RESOURCE_MANAGER_SCOPE"]],
        connection_verify=ca,
        polling_interval=1)                      # LRO poll period when Retry-After is 0 or absent

The async clients (``azure.mgmt.compute.aio`` + ``azure.identity.aio``) take the same arguments.
Notes: these SDK versions (TypeSpec-generated) send a plain ``dict`` body *as is*, so pass model objects
(``models.VirtualMachine(...)``) or REST-shaped dicts (camelCase under ``properties``). azure-core treats
``Retry-After: 0`` as "use ``polling_interval``" (default 30 s): tests set ``polling_interval`` small.
azure-core's RetryPolicy retries 408/429/5xx honouring ``Retry-After``; pass ``retry_total=0`` to see them.

Identity
========
MSAL tenant discovery ``GET /{tenant}/v2.0/.well-known/openid-configuration``, ``POST
/{tenant}/oauth2/v2.0/token`` (``client_credentials`` with ``client_secret`` or a ``client_assertion``),
``GET /{tenant}/discovery/v2.0/keys``, ``GET /common/discovery/instance``. Tokens are RS256 JWTs for the
requested resource; ARM accepts the simulator origin and ARM's well-known audiences
(``https://management.azure.com`` ...). Errors use Entra's AADSTS codes. ARM requests without a valid
token get 401 with ``WWW-Authenticate: Bearer authorization_uri=..., error="invalid_token"`` and ARM's
envelope: ``AuthenticationFailed`` (no/invalid header), ``InvalidAuthenticationToken``,
``ExpiredAuthenticationToken``, ``InvalidAuthenticationTokenAudience``, ``InvalidAuthenticationTokenTenant``.
The federated token file is signed by the simulator's workload issuer ``<endpoint>/_simulator/
workload-identity`` (subject ``system:serviceaccount:azure-edition-system:azure-edition-operator``,
audience ``api://AzureADTokenExchange``), trusted by a federated credential of the default app.
A real cluster's service-account tokens are trusted through ``--federated-credential ISSUER SUBJECT``
and ``--oidc-ca-file`` (or ``POST identity/federated-credentials``): the assertion's signature is then
checked against the issuer's own OIDC discovery and JWKS, fetched over HTTPS (identity.py).

ARM surface
===========
Microsoft.Compute: ``virtualMachines`` PUT/PATCH/GET (``$expand=instanceView|userData``)/DELETE
(``forceDeletion``), list by resource group and subscription, ``instanceView``, POST ``assessPatches``,
``installPatches``, ``runCommand``; ``virtualMachines/{vm}/runCommands`` PUT/GET/list/DELETE (parameters and
protectedParameters reach the script; protected ones are never stored or returned);
``virtualMachines/{vm}/extensions`` PUT/GET/list/DELETE (the Key Vault extension acts in the guest:
:mod:`.vmextensions`); ``disks``
GET/list/DELETE (a VM's OS disk, and empty data disks, are created with it and deleted with it when
``deleteOption: Delete``); ``locations/{l}/publishers/../skus[/{sku}/versions[/{v}]]`` (platform image
catalog, :mod:`.images`; per region: 2025 Azure Edition is missing from a few, where list-skus omits it and a VM create gets PlatformImageNotFound). Microsoft.Network: ``networkInterfaces``, ``publicIPAddresses`` and ``networkSecurityGroups`` (:mod:`.nsg`)
PUT/GET/list/DELETE, ``virtualNetworks/{v}/subnets/{s}`` GET (subnets are registered through the control
API; a GatewaySubnet lists its gateway's ``ipConfigurations``, a delegated subnet its ``delegations``),
``virtualNetworkGateways`` and ``connections`` GET/list (:mod:`.gateways`, seeded and changed through the
control API only; ``connectionStatus`` Connected/NotConnected/Connecting/Unknown). ``resourceGroups/{rg}`` GET. Each provider and resource type has its own ``api-version`` list
(:mod:`.apiversions`:
missing → ``MissingApiVersionParameter``, malformed → ``InvalidApiVersionParameter``, unknown →
``NoRegisteredProviderFound``). Also ``disks`` PATCH (tags), ``virtualMachines`` lists with
``statusOnly=true`` (each VM with its instanceView), and Resource SKUs (``GET
/subscriptions/{s}/providers/Microsoft.Compute/skus?$filter=location eq '<region>'``, :mod:`.skus`).

Timing profiles (:mod:`.timing`): ``instant`` (default; the behaviour below: ``--provisioning-seconds``,
``Retry-After: --retry-after``, network operations done at once) and ``azure`` (real durations: VM create
30-60 s, update 5-15 s, delete 15-30 s, NIC/public IP 2-10 s, Run Command 20-60 s, assessPatches 30-120 s;
``Retry-After`` 10-35 s or absent, all times ``--time-scale``; the env file then also carries
``AZURE_POLLING_INTERVAL`` = 15 s x scale). Azure profile lifecycles: NICs and public IPs show
``Updating``, deleted ones stay readable as ``Deleting``; a VM create's 201 lacks ``timeCreated``,
``exactVersion``, disk ids and sizes. Choices are deterministic under ``--seed``.

Others (:mod:`.others`): eventual consistency (a write referencing a resource that is not Succeeded, or at
``--consistency-rate`` — default 0.02 in the azure profile — any such write: ``429 RetryableError`` with a
``ReferencedResourceNotProvisioned`` detail), ``AuthorizationFailed`` while a role assignment propagates,
``ResourceGroupNotFound`` while a group is created, operation URLs that 404 after a while, an Azure Policy
model (tags, system-assigned identity) and out-of-band changes, all through the control API.

Protocol: PUT answers 201 (create) / 200 (update) with ``Azure-AsyncOperation``; VM PATCH 200 with it;
POST actions and DELETE answer 202 with ``Location`` and ``Azure-AsyncOperation``. VMs go
Creating/Updating/Deleting → Succeeded (or Failed, see ``fail_operation``) after
``--provisioning-seconds``; network resources are Succeeded at once. Status documents and Location
semantics: :mod:`.lro`. ``Retry-After`` = ``--retry-after`` on LRO responses and running polls.
Errors everywhere use ARM's ``{"error": {"code", "message", ...}}``; 404 ``ResourceNotFound`` /
``ResourceGroupNotFound`` / ``SubscriptionNotFound``. Compute writes the resource group upper-case in ids
it generates (``managedDisk.id``, NIC ``virtualMachine.id``), as real CRP does: compare ids
case-insensitively.

Validation (codes are Azure's; see :mod:`.errors` and :mod:`.compute` for which messages are verbatim):
unknown image or version → 404 ``PlatformImageNotFound``; ``enableHotpatching: true`` on an image outside
the Hotpatch-capable SKUs (docs/capabilities.md) → 400 ``InvalidParameter``; hotpatch without ``patchMode:
AutomaticByPlatform`` → ``InvalidParameter``; ``AutomaticByPlatform`` with ``provisionVMAgent: false`` or
``enableAutomaticUpdates: false`` → ``InvalidParameter``; hotpatch with
``bypassPlatformSafetyChecksOnUserSchedule: true`` → ``InvalidParameter`` ("Hotpatch updates require
platform safety checks..."); a Hotpatch-capable image without ``patchSettings`` → ``InvalidParameter``
("PatchSettings must be specified for hotpatch compatible VMs."); api-version < 2020-06-01 on such an
image → ``BadRequest``; a VM referencing a missing NIC → 400 ``NotFound``; create-only changes →
``PropertyChangeNotAllowed``; unknown region → ``LocationNotAvailableForResourceType``; a NIC on an
unknown subnet / public IP → 400 ``InvalidResourceReference``; deleting a NIC used by a VM → 400
``NicInUse``; deleting an associated public IP → 400 ``PublicIPAddressCannotBeDeleted``; deleting an
attached disk → 409 ``OperationNotAllowed``; operations on a VM being deleted → 409 ``OperationNotAllowed``.
``vmSize`` against the catalogue (:mod:`.skus`): unknown → 400 ``InvalidParameter``, restricted → 409
``SkuNotAvailable``, Hyper-V generation the size cannot boot → 400 ``BadRequest``, premium disk on a size
without premium IO → 400 ``InvalidParameter``, accelerated networking on a size without it → 400
``VMSizeIsNotPermittedToEnableAcceleratedNetworking``. Tags, names and credentials (:mod:`.limits`): 50 tags,
name ≤ 512, value ≤ 256, no ``<>%&\\?/`` in names; VM/NIC/public IP names; Windows computer name, admin
user name and password complexity (400 ``InvalidParameter``).

Throttling (:mod:`.throttle`): ARM token buckets per subscription+principal — reads 250 (+25/s), writes
200 (+10/s), 429 ``SubscriptionRequestsThrottled``; Compute per VM — GET/instanceView 36 (+12/min), Update
VM incl. Run Command 12 (+4/min), assess/installPatches 6 (+2/min), 429 ``OperationNotAllowed`` with a
``TooManyRequests`` detail. 429s carry ``Retry-After``; normal responses carry
``x-ms-ratelimit-remaining-subscription-reads|writes`` and (per-VM operations)
``x-ms-ratelimit-remaining-resource: Microsoft.Compute/<policy>;<n>``.

The guest (:mod:`.guest`) and Run Command protocol
==================================================
Every VM has a guest: SMB over QUIC on/off, certificate mappings (serverName → a real X.509 certificate
from :mod:`.certs`), available patches, reboot-pending, last assessment/installation, and one-shot
failures. ``instanceView.patchStatus``, ``assessPatches`` and ``installPatches`` report it in the published
shapes. A VM whose ``assessmentMode`` is ``AutomaticByPlatform`` is assessed once when provisioned.

Run Command (``runCommand`` action with ``commandId: RunPowerShellScript``, or a ``runCommands`` resource
with ``source.script``) recognises scripts by a marker comment line:

* ``# azureedition.io/script: smb-quic-status`` → StdOut is JSON ``{"enableSmbQuic": bool, "mappings":
  [{"name": serverName, "thumbprint": SHA-1 upper-case hex, "notAfter": ISO 8601, "notBefore",
  "subject", "issuer", "dnsNames"}]}`` (the last four are extras).
* ``# azureedition.io/script: smb-quic-enable`` → sets EnableSMBQUIC; StdOut ``{"enableSmbQuic": true}``.
* ``smb-cert-import`` (protected ``PfxBase64``, ``PfxPassword``) and ``smb-cert-map`` (``ServerName``,
  ``Thumbprint``, ``RemoveThumbprints``): the guest's ``LocalMachine\\My`` and its mappings (:mod:`.certstore`).

Key Vault's data plane (certificates with versions, a policy with an AutoRenew action that fires by its
own trigger as time passes or through the control API, the PFX secret, Azure RBAC) answers on one HTTPS
origin per vault, made through the control API (:mod:`.keyvault`).
* anything else → succeeds with empty StdOut.

The result is ``{"value": [{"code": "ComponentStatus/StdOut/succeeded", "level": "Info",
"displayStatus": "Provisioning succeeded", "message": <stdout>}, {"code":
"ComponentStatus/StdErr/succeeded", ..., "message": <stderr>}]}`` as on Windows VMs.

Real QUIC: a provisioned VM whose guest has SMB over QUIC enabled and a certificate mapping serves a real
QUIC/TLS 1.3 endpoint (ALPN ``smb``, :mod:`.quic_endpoint`) with the first mapping's certificate on the
VM's address: its primary NIC's public IP (pool 127.X.100.0/22) or, without one, its private IP (from
the subnet's prefix; the seeded subnets are loopback ranges), UDP port ``--quic-port``.

Isolation: each simulator claims its own loopback block ``127.X.0.0/16`` (X ≥ 32) by binding a UDP claim
socket on ``127.X.0.1:47443`` for its lifetime (and proving the QUIC port free on the block), so two
simulators on one machine never serve or probe each other's guests. Subnets added through the control
API without ``addressPrefix`` get a free /24 of the block; a persisted world whose block is taken is
renumbered into the new one.

Control API (``<endpoint>/_simulator``; client: :class:`SimulatorControl`)
========================================================================
Answers loopback peers only (this machine, ``kubectl port-forward`` into the pod), or any peer that
sends ``Authorization: Bearer <token>`` when started with ``--control-token`` (``ARMSIM_CONTROL_TOKEN``,
which the env file then carries); 403 ``ControlForbidden`` otherwise. The workload issuer's discovery
document and JWKS are public.
``GET info|env|counters|requests?since=N|operations|quic|vms|faults|throttling|settings|guest-defaults``;
``POST reset`` (seeded world, no faults, full buckets, empty log); ``POST counters/reset``;
``PUT settings {provisioningSeconds, retryAfterSeconds, tokenLifetimeSeconds}``;
``PUT throttling {enabled, buckets: {<name>: {capacity, refillPerSecond|refillPerMinute}}}``,
``POST throttling/refill``; ``POST faults {method, pathRegex, operation, status, code, message, headers,
latencySeconds, drop, times}``, ``DELETE faults[/{id}]``; ``POST operation-failures {operation, code,
message, times, httpStatus}`` (next LROs of that operation end Failed); ``POST subscriptions``,
``POST resource-groups {name, location}``, ``POST subnets {virtualNetwork, name, addressPrefix?,
resourceGroup, location}``; ``POST outside-vms {name, sku, hotpatch?, patchSettings?, publicIp?, tags?, resourceGroup?, vmSize?,
version?, subnetId?, nicName?, publicIpName?, computerName?, location?}`` (a VM made outside the operator, as
the portal/Terraform/Bicep leave it, provisioned at once and never in the request log: :mod:`.outside`);
``GET vms/{rg}/{vm}`` (the VM as ARM's GET returns it, outside the request log);
``GET|PATCH vms/{rg}/{vm}/guest``; ``PUT|DELETE
vms/{rg}/{vm}/guest/certificates/{serverName}`` (body: CertificateSpec JSON); ``PUT
vms/{rg}/{vm}/patch-settings`` (replace patchSettings behind the operator's back); ``PUT guest-defaults
{enableSmbQuic, rebootPending, availablePatches, monthKind, certificate: {<spec>, serverName}}`` (without
serverName, new VMs use tag ``azureedition.io_smb-over-quic-server-name`` or
``<computerName>.simulated.test``); ``POST identity/federated-tokens {subject, audience,
lifetimeSeconds}``; ``GET|POST identity/principals``; ``POST identity/federated-credentials {issuer,
subject, audiences?, issuerCaPem?, clientId?}`` (trust a cluster's service-account tokens); ``PUT settings {profile, timeScale, seed, consistencyRate,
operationExpirySeconds, policy: {tags, systemAssignedIdentity}}``; ``POST authorization-delays {clientId,
scope, seconds}``; ``POST resource-groups {..., readyAfterSeconds}``; ``POST vms/{rg}/{vm}/out-of-band
{action: delete|resize|remove-nic|set-tags|stop|start, ...}``; ``GET|POST|DELETE sku-restrictions
{location, vmSize}``; Extended Network: ``POST subnets {..., delegations: [serviceName]}``, ``GET|POST
virtual-network-gateways {virtualNetwork, name, gatewayType}``, ``DELETE virtual-network-gateways/{rg}/{name}``,
``GET|POST connections {name, gateway, connectionStatus}``, ``PATCH|DELETE connections/{rg}/{name}``,
``PATCH nics/{rg}/{nic} {enableIPForwarding}``, guest fields ``hypervRole`` and ``extendedNetworkAppliance``
(Run Command script ``extended-network-status``); faults take ``details`` and ``additionalInfo``. Client methods (simcontract):
``set_timing``, ``set_consistency_rate``, ``expire_operations``, ``set_policy``, ``delay_authorization``,
``out_of_band``, ``add_resource_group(ready_after_seconds=)``, ``inject_fault(details=, additional_info=)``,
``restrict_sku``, ``delegate_subnet``, ``add_gateway``, ``remove_gateway``, ``add_connection``,
``set_connection_status``, ``remove_connection``, ``set_nic_ip_forwarding``, ``create_outside_vm``, ``vm_document``.
"""

from .client import ControlError, SimulatorControl, load_env_file
from .runner import Simulator, SimulatorHandle

__all__ = ["ControlError", "Simulator", "SimulatorControl", "SimulatorHandle", "load_env_file"]

"""The few Kubernetes calls the operator makes itself (kopf makes the rest).

Reading the admin Secret (``get`` only, one named Secret), the state key of the operator's own namespace
(made once), and patching status (for ``publish``, the one writer of status: the controller runs
outside kopf's handler cycle, where there is no ``patch``).
"""

from __future__ import annotations

import base64
import os
from typing import Any

import aiohttp
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from . import reasons as vocab
from . import sealing
from .adminsecret import AdminSecretProblem, admin_values
from .api.v1alpha1 import GROUP, PLURAL, POLICY_PLURAL, VERSION
from .azure.specs import AdminCredentials
from .fresh import Fresh


class SecretUnavailable(Exception):
    """A Secret a spec names is missing, or the operator may not read it there; the message says what to do."""


class CredentialsUnavailable(SecretUnavailable):
    """The referenced Secret or one of its keys is missing; the message says which."""

    reason = vocab.ADMIN_CREDENTIALS_MISSING


class CredentialsInvalid(CredentialsUnavailable):
    """The Secret's values break Azure's rules; the message names the key and the rule, never the value."""

    reason = vocab.ADMIN_CREDENTIALS_INVALID


class Conflict(Exception):
    """The object changed since we read it (optimistic concurrency)."""


class StateKeyUnavailable(Exception):
    """The state key Secret can neither be read nor made; the message says what to do."""


STATE_KEY_FIELD = "key"


class Kube:
    """An async Kubernetes API client configured the way kopf found the cluster."""

    # TenantPolicies and namespace labels are read at most this often (seconds): every reconcile and
    # check round consults them, and a policy change taking two seconds to apply is fine.
    TENANCY_TTL = 2.0

    def __init__(self, api: client.ApiClient) -> None:
        self._api = api
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self._policies: Fresh[list[dict[str, Any]]] = Fresh(self.TENANCY_TTL)
        self._labels: Fresh[dict[str, str]] = Fresh(self.TENANCY_TTL)

    @classmethod
    async def connect(cls) -> Kube:
        try:
            config.load_incluster_config()
        except config.ConfigException:
            # $KUBECONFIG read now, not at import (the library's default is fixed when it is imported).
            await config.load_kube_config(config_file=os.environ.get("KUBECONFIG") or None)
        return cls(without_env_lookups(client.ApiClient()))

    async def close(self) -> None:
        await self._api.close()

    async def _named_secret(
        self, namespace: str, name: str, unavailable: type[SecretUnavailable], create: str
    ) -> dict[str, str]:
        """``data`` of a Secret a spec names, in the object's own namespace; ``unavailable`` says what to do
        when it is missing (``create``) or the namespace is not onboarded (RBAC grants Secrets per namespace)."""
        try:
            secret = await self.core.read_namespaced_secret(name, namespace)
        except ApiException as err:
            if err.status == 404:
                raise unavailable(f"Secret {namespace}/{name} {create}") from None
            if err.status == 403:
                raise unavailable(
                    f"the operator may not read Secrets in namespace {namespace}: a cluster administrator "
                    "onboards it with deploy/tenant-namespace (a RoleBinding to ClusterRole "
                    "azure-edition-operator-tenant; docs/install.md#add-a-tenant-namespace)"
                ) from None
            raise
        return dict(secret.data or {})

    async def admin_credentials(self, namespace: str, secret_name: str) -> AdminCredentials:
        data = await self._named_secret(
            namespace, secret_name, CredentialsUnavailable,
            "(spec.adminCredentialsSecretRef) does not exist; create it with keys 'username' and 'password'",
        )  # fmt: skip
        missing = [k for k in ("username", "password") if not data.get(k)]
        if missing:
            raise CredentialsUnavailable(
                f"Secret {namespace}/{secret_name} has no {' or '.join(repr(k) for k in missing)} key; "
                "add it (the VM's local administrator)"
            )
        try:
            username, password = admin_values(data)
        except AdminSecretProblem as err:
            raise CredentialsInvalid(f"Secret {namespace}/{secret_name}: {err}") from None
        return AdminCredentials(username, password)

    async def tls_secret(self, namespace: str, name: str) -> dict[str, str]:
        """``data`` of a Secret named by spec.smbOverQuic.certificate.secretRef, in the object's namespace."""
        return await self._named_secret(
            namespace, name, SecretUnavailable,
            "does not exist; create it (kubernetes.io/tls, e.g. a cert-manager Certificate's secretName)",
        )  # fmt: skip

    async def tenancy_inputs(self, namespace: str) -> tuple[list[dict[str, Any]], dict[str, str]]:
        """Every TenantPolicy, and the namespace's labels (for ``tenancy.decide``)."""

        async def policies() -> list[dict[str, Any]]:
            try:
                listed = await self.custom.list_cluster_custom_object(GROUP, VERSION, POLICY_PLURAL)
            except ApiException as err:
                if err.status != 404:
                    raise
                listed = {}  # the TenantPolicy CRD is not installed: no policy exists
            return list(listed.get("items") or [])

        async def labels() -> dict[str, str]:
            return dict((await self.core.read_namespace(namespace)).metadata.labels or {})

        return await self._policies.get("", policies), await self._labels.get(namespace, labels)

    async def operator_secret(self, namespace: str, name: str) -> dict[str, str]:
        """A Secret of the operator's own namespace, decoded; a missing one reads as empty."""
        try:
            secret = await self.core.read_namespaced_secret(name, namespace)
        except ApiException as err:
            if err.status == 404:
                return {}
            raise
        out = {}
        for key, value in (secret.data or {}).items():
            try:
                out[key] = base64.b64decode(value).decode()
            except (ValueError, UnicodeDecodeError):
                continue  # reported as a missing key, without echoing the bytes
        return out

    async def state_key(self, namespace: str, name: str) -> bytes:
        """The key that seals the operator's state (``sealing``): read from the Secret ``name`` of the
        operator's own namespace, or made there once (the replica that loses the race reads the winner's)."""
        for _ in range(3):
            try:
                secret = await self.core.read_namespaced_secret(name, namespace)
            except ApiException as err:
                if err.status != 404:
                    raise StateKeyUnavailable(
                        f"cannot read Secret {namespace}/{name}: {err.reason}"
                    ) from None
            else:
                try:
                    key = base64.b64decode((secret.data or {}).get(STATE_KEY_FIELD) or "", validate=True)
                except ValueError:
                    key = b""
                if len(key) < sealing.KEY_BYTES:
                    raise StateKeyUnavailable(
                        f"Secret {namespace}/{name} has no '{STATE_KEY_FIELD}' of {sealing.KEY_BYTES} bytes or "
                        "more; delete it and the operator makes a new one"
                    )
                return key
            body = {"metadata": {"name": name, "labels": {"app.kubernetes.io/name": "azure-edition-operator"}},
                    "type": "Opaque", "immutable": True,
                    "data": {STATE_KEY_FIELD: base64.b64encode(sealing.new_key()).decode()}}  # fmt: skip
            try:
                await self.core.create_namespaced_secret(namespace, body)
            except ApiException as err:
                if err.status == 409:
                    continue  # another replica made it first: read theirs
                raise StateKeyUnavailable(
                    f"cannot create Secret {namespace}/{name} ({err.status} {err.reason}): create namespace "
                    f"{namespace}, or set AEO_CREDENTIALS_NAMESPACE to the operator's own namespace"
                ) from None
        raise StateKeyUnavailable(f"Secret {namespace}/{name} kept changing while it was read")

    async def patch_status(
        self, namespace: str, name: str, resource_version: str | None, patch: dict[str, Any]
    ) -> str | None:
        """Merge-patch status, refusing if the object moved on since ``resource_version`` (None: a
        handler's write, unconditionally, as kopf's own patches are). Returns the new resourceVersion."""
        body: dict[str, Any] = {"status": patch}
        if resource_version is not None:
            body["metadata"] = {"resourceVersion": resource_version}
        try:
            written = await self.custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, PLURAL, name, body, _content_type="application/merge-patch+json"
            )
        except ApiException as err:
            if err.status == 409:
                raise Conflict(f"{namespace}/{name} changed while checking") from None
            raise
        return _version_of(written)

    async def annotate(self, namespace: str, name: str, annotations: dict[str, str]) -> str | None:
        """Merge ``annotations`` into the object's metadata (None removes one); the new resourceVersion."""
        written = await self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name, {"metadata": {"annotations": annotations}},
            _content_type="application/merge-patch+json",
        )  # fmt: skip
        return _version_of(written)


def without_env_lookups(api: client.ApiClient) -> client.ApiClient:
    """``api`` on a session that does not read ~/.netrc and the proxy variables on every request.

    kubernetes_asyncio opens its session with ``trust_env=True``: aiohttp then parses ~/.netrc and scans
    the environment in a thread per request, about 7 % of the operator's CPU in a 1,000-VM burst (py-spy).
    The API server's proxy, if any, comes from the kubeconfig (``configuration.proxy``), as before.
    """
    rest = api.rest_client
    old = rest.pool_manager
    rest.pool_manager = aiohttp.ClientSession(
        connector=old.connector,
        trust_env=False,
        read_bufsize=2**21,  # as kubernetes_asyncio: large watch events
    )
    old.detach()  # the connector now belongs to the new session only; the old one is closed, unused
    return api


def _version_of(obj: Any) -> str | None:
    return ((obj or {}).get("metadata") or {}).get("resourceVersion") if isinstance(obj, dict) else None

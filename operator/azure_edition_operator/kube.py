"""The few Kubernetes calls the operator makes itself (kopf makes the rest).

Reading the admin Secret (``get`` only, one named Secret) and patching status from the periodic
checks, which run outside kopf's handler cycle and so cannot use kopf's ``patch``.
"""

from __future__ import annotations

import base64
import os
from typing import Any

from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from .api.v1alpha1 import GROUP, PLURAL, VERSION
from .azure.specs import AdminCredentials


class CredentialsUnavailable(Exception):
    """The referenced Secret or one of its keys is missing; the message says which."""


class Conflict(Exception):
    """The object changed since we read it (optimistic concurrency)."""


class Kube:
    """An async Kubernetes API client configured the way kopf found the cluster."""

    def __init__(self, api: client.ApiClient) -> None:
        self._api = api
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)

    @classmethod
    async def connect(cls) -> Kube:
        try:
            config.load_incluster_config()
        except config.ConfigException:
            # $KUBECONFIG read now, not at import (the library's default is fixed when it is imported).
            await config.load_kube_config(config_file=os.environ.get("KUBECONFIG") or None)
        return cls(client.ApiClient())

    async def close(self) -> None:
        await self._api.close()

    async def admin_credentials(self, namespace: str, secret_name: str) -> AdminCredentials:
        try:
            secret = await self.core.read_namespaced_secret(secret_name, namespace)
        except ApiException as err:
            if err.status == 404:
                raise CredentialsUnavailable(
                    f"Secret {namespace}/{secret_name} (spec.adminCredentialsSecretRef) does not exist; "
                    "create it with keys 'username' and 'password'"
                ) from None
            raise
        data = secret.data or {}
        missing = [k for k in ("username", "password") if not data.get(k)]
        if missing:
            raise CredentialsUnavailable(
                f"Secret {namespace}/{secret_name} has no {' or '.join(repr(k) for k in missing)} key; "
                "add it (the VM's local administrator)"
            )
        decode = lambda k: base64.b64decode(data[k]).decode()  # noqa: E731
        return AdminCredentials(decode("username"), decode("password"))

    async def patch_status(
        self, namespace: str, name: str, resource_version: str, patch: dict[str, Any]
    ) -> None:
        """Merge-patch status, refusing if the object moved on since ``resource_version``."""
        body = {"metadata": {"resourceVersion": resource_version}, "status": patch}
        try:
            await self.custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, PLURAL, name, body, _content_type="application/merge-patch+json"
            )
        except ApiException as err:
            if err.status == 409:
                raise Conflict(f"{namespace}/{name} changed while checking") from None
            raise

    async def annotate(self, namespace: str, name: str, annotations: dict[str, str]) -> None:
        """Merge ``annotations`` into the object's metadata."""
        await self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name, {"metadata": {"annotations": annotations}},
            _content_type="application/merge-patch+json",
        )  # fmt: skip

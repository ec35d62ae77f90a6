"""Workload identity federation for real: the cluster's own service-account tokens, Entra's checks.

The chain a pod on AKS uses, with every part real except Entra and ARM (the simulator): the real
kube-apiserver issues a service-account token (TokenRequest, audience api://AzureADTokenExchange, as
the workload identity webhook projects it); azure-identity's WorkloadIdentityCredential reads it from a
token file and sends it as a client assertion; the simulator's Entra endpoint fetches the cluster's OIDC
discovery and JWKS anonymously over HTTPS, verifies the signature, matches a federated credential
(issuer, subject, audience), and the ARM call that follows succeeds. No client secret is involved.
Refusals carry Entra's codes. The expired and forged assertions are signed with the cluster's own key
(pki/sa.key), because TokenRequest will not issue a token that is already expired.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import WorkloadIdentityCredential
from azure.mgmt.compute import ComputeManagementClient
from cryptography.hazmat.primitives.asymmetric import ec

from azure_edition_simulator import Simulator
from azure_edition_simulator.identity import TOKEN_EXCHANGE_AUDIENCE
from tests.e2e.conftest import Cluster, Kubectl

OPERATOR_SA = "wi-operator"
OTHER_SA = "wi-intruder"
ADDED_SA = "wi-added"  # trusted only by the control-API test


@pytest.fixture(scope="module")
def local(cluster: Cluster) -> Any:
    if cluster.local is None:
        pytest.skip("needs this session's own control plane (its CA and signing key); unset KUBECONFIG")
    return cluster.local


@pytest.fixture(scope="module")
def wi_namespace(local: Any, kubectl: Kubectl) -> Iterator[str]:
    """A namespace with the operator's ServiceAccount and another one (objects only: no controllers)."""
    name = f"e2e-wi-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    for sa in (OPERATOR_SA, OTHER_SA, ADDED_SA):
        kubectl("create", "serviceaccount", sa, "-n", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


@pytest.fixture(scope="module")
def sim(local: Any, wi_namespace: str) -> Iterator[Simulator]:
    """A simulator whose default app trusts only the operator's ServiceAccount of this cluster."""
    with Simulator.start(
        provisioning_seconds=0,
        retry_after_seconds=0,
        quic_port=0,
        federated_credentials=(
            (local.service_account_issuer, f"system:serviceaccount:{wi_namespace}:{OPERATOR_SA}"),
        ),
        oidc_ca_files=(local.pki_dir / "ca.crt",),
    ) as simulator:
        yield simulator


def create_token(kubectl: Kubectl, namespace: str, sa: str, audience: str = TOKEN_EXCHANGE_AUDIENCE) -> str:
    """TokenRequest, as the kubelet does for a projected service-account token volume."""
    return kubectl(
        "create", "token", sa, "-n", namespace, f"--audience={audience}", "--duration=10m"
    ).stdout.strip()


def credential(sim: Simulator, token: str, tmp_path: Path) -> WorkloadIdentityCredential:
    """What the operator builds in workload-identity mode (AZURE_FEDERATED_TOKEN_FILE), secret-free."""
    token_file = tmp_path / f"token-{uuid.uuid4().hex[:6]}"
    token_file.write_text(token)
    return WorkloadIdentityCredential(
        tenant_id=sim.tenant_id,
        client_id=sim.client_id,
        token_file_path=str(token_file),
        authority=sim.authority_host,
        connection_verify=str(sim.ca_path),
    )


def refused_with(sim: Simulator, token: str, tmp_path: Path) -> str:
    with pytest.raises(ClientAuthenticationError) as failure:
        credential(sim, token, tmp_path).get_token(sim.credential_scope)
    return str(failure.value)


def resign(local: Any, token: str, *, key: Any = None, **changes: Any) -> str:
    """The same claims and kid, changed and signed with the cluster's key (or another one)."""
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False}) | changes
    signing_key = key or (local.pki_dir / "sa.key").read_bytes()
    return jwt.encode(claims, signing_key, algorithm=header["alg"], headers={"kid": header["kid"]})


def test_discovery_and_jwks_are_public_as_on_a_real_cluster(local: Any) -> None:
    ca = str(local.pki_dir / "ca.crt")
    issuer = local.service_account_issuer
    discovery = requests.get(f"{issuer}/.well-known/openid-configuration", verify=ca, timeout=10).json()
    assert discovery["issuer"] == issuer
    assert discovery["jwks_uri"] == f"{issuer}/openid/v1/jwks"
    keys = requests.get(discovery["jwks_uri"], verify=ca, timeout=10).json()["keys"]
    assert keys and all(key["use"] == "sig" for key in keys)
    # Discovery is public, the API is not.
    assert requests.get(f"{issuer}/api/v1/namespaces", verify=ca, timeout=10).status_code == 403


def test_the_service_accounts_token_gets_an_arm_token_and_an_arm_call_succeeds(
    sim: Simulator, kubectl: Kubectl, wi_namespace: str, local: Any, tmp_path: Path
) -> None:
    token = create_token(kubectl, wi_namespace, OPERATOR_SA)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == local.service_account_issuer
    assert claims["sub"] == f"system:serviceaccount:{wi_namespace}:{OPERATOR_SA}"
    workload = credential(sim, token, tmp_path)
    compute = ComputeManagementClient(
        workload,
        sim.subscription_id,
        base_url=sim.endpoint,
        credential_scopes=[sim.credential_scope],
        connection_verify=str(sim.ca_path),
    )
    with compute:
        assert list(compute.virtual_machines.list_all()) == []
    access = jwt.decode(workload.get_token(sim.credential_scope).token, options={"verify_signature": False})
    assert access["appid"] == sim.client_id
    assert sim.control.count("Identity_Token", 200) >= 1


def test_another_service_accounts_token_is_refused(
    sim: Simulator, kubectl: Kubectl, wi_namespace: str, tmp_path: Path
) -> None:
    message = refused_with(sim, create_token(kubectl, wi_namespace, OTHER_SA), tmp_path)
    assert "AADSTS70021" in message
    assert f"system:serviceaccount:{wi_namespace}:{OTHER_SA}" in message


def test_a_token_for_another_audience_is_refused(
    sim: Simulator, kubectl: Kubectl, wi_namespace: str, tmp_path: Path
) -> None:
    token = create_token(kubectl, wi_namespace, OPERATOR_SA, audience="api://SomethingElse")
    assert "AADSTS700212" in refused_with(sim, token, tmp_path)


def test_an_expired_token_is_refused(
    sim: Simulator, kubectl: Kubectl, wi_namespace: str, local: Any, tmp_path: Path
) -> None:
    now = int(time.time())
    token = resign(
        local, create_token(kubectl, wi_namespace, OPERATOR_SA), iat=now - 1200, nbf=now - 1200, exp=now - 600
    )
    assert "AADSTS700024" in refused_with(sim, token, tmp_path)


def test_a_token_signed_by_another_key_is_refused(
    sim: Simulator, kubectl: Kubectl, wi_namespace: str, local: Any, tmp_path: Path
) -> None:
    forged = resign(
        local, create_token(kubectl, wi_namespace, OPERATOR_SA), key=ec.generate_private_key(ec.SECP256R1())
    )
    assert "AADSTS700027" in refused_with(sim, forged, tmp_path)


def test_a_federated_credential_added_through_the_control_api_is_trusted(
    sim: Simulator, kubectl: Kubectl, wi_namespace: str, local: Any, tmp_path: Path
) -> None:
    subject = f"system:serviceaccount:{wi_namespace}:{ADDED_SA}"
    token = create_token(kubectl, wi_namespace, ADDED_SA)
    assert "AADSTS70021" in refused_with(sim, token, tmp_path)
    app = sim.control.add_federated_credential(
        local.service_account_issuer, subject, issuer_ca_pem=(local.pki_dir / "ca.crt").read_text()
    )
    trusted = [(c["issuer"], c["subject"], c["audiences"]) for c in app["federatedCredentials"]]
    assert (local.service_account_issuer, subject, [TOKEN_EXCHANGE_AUDIENCE]) in trusted
    assert credential(sim, token, tmp_path).get_token(sim.credential_scope).token

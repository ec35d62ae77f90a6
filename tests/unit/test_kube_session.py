"""The Kubernetes client's session: no ~/.netrc or proxy-variable lookups per request (a thread each)."""

from __future__ import annotations

from kubernetes_asyncio import client

from azure_edition_operator.kube import without_env_lookups


async def test_the_session_keeps_its_connector_and_stops_reading_the_environment() -> None:
    api = client.ApiClient(client.Configuration(host="https://127.0.0.1:6443"))
    before = api.rest_client.pool_manager
    connector = before.connector
    assert before.trust_env  # kubernetes_asyncio's own choice: what this undoes
    try:
        without_env_lookups(api)
        after = api.rest_client.pool_manager
        assert after is not before and not after.trust_env
        assert after.connector is connector  # the same pool and TLS context, not a second one
        assert before.closed and not after.closed  # nothing left open behind
    finally:
        await api.close()
    assert connector.closed

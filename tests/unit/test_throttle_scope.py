"""Throttling scoped as Azure scopes it: one VM's per-resource 429 holds back that VM's requests only."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from azure.core.pipeline import PipelineContext, PipelineRequest, PipelineResponse
from azure.core.rest import HttpRequest
from azure.core.utils import CaseInsensitiveDict

from azure_edition_operator.azure import clients
from azure_edition_operator.azure.clients import ThrottleGate, held_back_by, resource_scope

SUB = "https://management.azure.com/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines"


class Answers:
    """The next policy: answers each request with the next (status, headers)."""

    def __init__(self, *answers: tuple[int, dict[str, str]]) -> None:
        self.answers, self.sent = list(answers), []

    async def send(self, request: PipelineRequest[Any]) -> PipelineResponse[Any, Any]:
        self.sent.append(request.http_request.url)
        status, headers = self.answers.pop(0) if self.answers else (200, {})
        response = SimpleNamespace(status_code=status, headers=CaseInsensitiveDict(headers))
        return PipelineResponse(request.http_request, response, PipelineContext(None))  # type: ignore[arg-type]


def _request(method: str, url: str) -> PipelineRequest[Any]:
    return PipelineRequest(HttpRequest(method, url), PipelineContext(None))  # type: ignore[arg-type]


def test_the_scope_is_the_resource_and_the_header_says_whose_bucket_refused() -> None:
    assert resource_scope(f"{SUB}/VM-a/runCommand?api-version=1") == resource_scope(f"{SUB}/vm-a")
    assert resource_scope(f"{SUB}/vm-a") != resource_scope(f"{SUB}/vm-b")
    assert held_back_by(429, CaseInsensitiveDict({"x-ms-ratelimit-remaining-resource": "x;0"})) == "resource"
    assert held_back_by(429, CaseInsensitiveDict({})) == "subscription"
    assert held_back_by(200, CaseInsensitiveDict({"x-ms-ratelimit-remaining-resource": "x;3"})) is None


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(round(seconds))

    monkeypatch.setattr(clients.asyncio, "sleep", sleep)
    return slept


async def test_a_vms_run_command_429_holds_back_that_vm_only(waits: list[float]) -> None:
    gate = ThrottleGate()
    gate.next = Answers(
        (429, {"Retry-After": "30", "x-ms-ratelimit-remaining-resource": "Microsoft.Compute/UpdateVM;0"})
    )
    await gate.send(_request("POST", f"{SUB}/vm-a/runCommand"))
    await gate.send(_request("GET", f"{SUB}/vm-b"))  # another VM's check: at once
    await gate.send(_request("POST", f"{SUB}/vm-b/runCommand"))
    assert waits == []
    await gate.send(_request("GET", f"{SUB}/vm-a"))  # the throttled VM's own request waits
    assert waits == [30]


async def test_arms_subscription_429_holds_back_every_request(waits: list[float]) -> None:
    gate = ThrottleGate()
    gate.next = Answers((429, {"Retry-After": "20"}))
    await gate.send(_request("GET", f"{SUB}/vm-a"))
    await gate.send(_request("GET", f"{SUB}/vm-b"))
    assert waits and waits[0] == 20


async def test_a_write_held_back_for_pacing_is_handed_back_to_the_controller(waits: list[float]) -> None:
    """Inside a pass (the controller sets HAND_BACK_WRITES) a write the gate would hold back longer is
    not waited for: it ends the pass as Throttled with the wait, so status says why nothing moves."""
    from azure_edition_operator import reasons as vocab
    from azure_edition_operator.azure.errors import AzureRetryableError

    gate = ThrottleGate()
    gate.next = Answers((429, {"Retry-After": "20"}))
    await gate.send(_request("GET", f"{SUB}/vm-a"))  # ARM refused: the subscription waits 20 s
    token = clients.HAND_BACK_WRITES.set(2.0)
    try:
        with pytest.raises(AzureRetryableError) as handed:
            await gate.send(_request("PUT", f"{SUB}/vm-b"))
        await gate.send(_request("GET", f"{SUB}/vm-b"))  # reads still wait (they are short)
    finally:
        clients.HAND_BACK_WRITES.reset(token)
    assert handed.value.reason == vocab.THROTTLED and 19 <= (handed.value.retry_after or 0) <= 20
    assert "holds this write back" in handed.value.message
    assert gate.next.sent == [f"{SUB}/vm-a", f"{SUB}/vm-b"]  # the PUT was never sent
    await gate.send(_request("PUT", f"{SUB}/vm-c"))  # outside a pass (tools, tests): waited for
    assert waits[-1] >= 19

"""The async driver with fake resources: start, record, poll, resume after restart, 404 on the operation URL."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from azure_edition_operator.azure.driver import (
    DEFAULT_POLL_SECONDS,
    Driver,
    InProgress,
    OperationRecord,
    OperationState,
    PollResult,
    Verb,
)
from azure_edition_operator.azure.errors import AzurePermanentError
from azure_edition_operator.azure.specs import Owner
from azure_edition_operator.conditions import format_timestamp

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@dataclass
class FakeOperation:
    """Runs for ``polls`` status requests, then ends as ``outcome``."""

    resource: FakeResource
    verb: Verb
    body: Any = None
    polls: int = 2
    outcome: PollResult | Exception = PollResult.SUCCEEDED
    asked: float | None = 12.0

    def token(self) -> str:
        return f"{self.verb}:{self.resource.name}"

    def retry_after(self) -> float | None:
        return self.asked

    def done(self) -> bool:
        return self.polls == 0 and self.outcome is PollResult.SUCCEEDED

    async def poll(self) -> PollResult:
        self.resource.calls.append("poll")
        if self.polls > 0:
            self.polls -= 1
            if self.polls > 0:
                return PollResult.RUNNING
        if isinstance(self.outcome, Exception):
            raise self.outcome
        if self.outcome is not PollResult.RUNNING:
            self.resource.apply(self.verb, self.body)
        return self.outcome


@dataclass
class FakeResource:
    kind: str = "virtualMachines"
    name: str = "vm1"
    current: dict[str, Any] | None = None
    want: dict[str, Any] = field(default_factory=lambda: {"size": "D2"})
    calls: list[str] = field(default_factory=list)
    running: FakeOperation | None = None
    polls: int = 2
    outcome: PollResult | Exception = PollResult.SUCCEEDED
    asked: float | None = 12.0

    def apply(self, verb: Verb, body: Any) -> None:
        self.current = None if verb is Verb.DELETE else dict(body)

    async def get(self) -> Any | None:
        self.calls.append("get")
        return self.current

    async def parameters(self, existing: Any | None) -> Any | None:
        return None if existing == self.want else dict(self.want)

    def _op(self, verb: Verb, body: Any = None) -> FakeOperation:
        self.running = FakeOperation(self, verb, body, self.polls, self.outcome, self.asked)
        if self.running.done():
            self.apply(verb, body)
        return self.running

    async def begin_put(self, body: Any) -> FakeOperation:
        self.calls.append("put")
        return self._op(Verb.PUT, body)

    async def begin_delete(self) -> FakeOperation:
        self.calls.append("delete")
        return self._op(Verb.DELETE)

    async def resume(self, verb: Verb, token: str) -> FakeOperation:
        assert self.running is not None and token == self.running.token()
        return self.running


def driver(state: OperationState | None = None) -> Driver:
    return Driver(state or OperationState(), clock=lambda: T0)


async def test_a_create_is_started_recorded_and_not_waited_for() -> None:
    res = FakeResource()
    d = driver()
    with pytest.raises(InProgress) as progress:
        await d.ensure(res)
    assert res.calls == ["get", "put"]
    assert progress.value.retry_after == 12.0
    record = d.state.operation
    assert record == OperationRecord(
        "virtualMachines", "vm1", "put", "put:vm1", format_timestamp(T0), "created"
    )


async def test_the_recorded_operation_is_polled_never_restarted_then_read() -> None:
    res = FakeResource(polls=3)
    d = driver()
    with pytest.raises(InProgress):
        await d.ensure(res)
    specs = {("virtualMachines", "vm1"): res}
    with pytest.raises(InProgress):
        await d.finish_recorded(specs)
    with pytest.raises(InProgress):
        await d.finish_recorded(specs)
    assert (await d.finish_recorded(specs)) is not None
    assert d.state.operation is None
    assert await d.ensure(res) == {"size": "D2"}
    assert res.calls.count("put") == 1


async def test_a_restarted_operator_resumes_from_the_annotation() -> None:
    res = FakeResource(polls=1)
    first = driver()
    with pytest.raises(InProgress):
        await first.ensure(res)
    saved = first.state.dumps()

    second = driver(OperationState.loads(saved))  # a new process: only the annotation survives
    assert await second.finish_recorded({("virtualMachines", "vm1"): res}) is not None
    assert await second.ensure(res) == {"size": "D2"}
    assert res.calls.count("put") == 1


async def test_operation_url_404_is_answered_by_reading_the_resource() -> None:
    res = FakeResource(polls=1, outcome=PollResult.GONE)
    d = driver()
    with pytest.raises(InProgress):
        await d.ensure(res)
    res.current = {"size": "D2"}  # Azure finished and forgot the operation
    assert (await d.finish_recorded({("virtualMachines", "vm1"): res})) is not None
    assert await d.ensure(res) == {"size": "D2"}
    assert res.calls.count("put") == 1


async def test_a_failed_operation_clears_the_record_and_raises_its_error() -> None:
    res = FakeResource(polls=1, outcome=AzurePermanentError("QuotaExceeded", "quota", reason="QuotaExceeded"))
    d = driver()
    with pytest.raises(InProgress):
        await d.ensure(res)
    with pytest.raises(AzurePermanentError):
        await d.finish_recorded({("virtualMachines", "vm1"): res})
    assert d.state.operation is None


async def test_no_retry_after_means_the_default_poll() -> None:
    res = FakeResource(asked=None)
    with pytest.raises(InProgress) as progress:
        await driver().ensure(res)
    assert progress.value.retry_after == DEFAULT_POLL_SECONDS


async def test_steady_state_is_a_get_and_nothing_else() -> None:
    res = FakeResource(current={"size": "D2"})
    assert await driver().ensure(res) == {"size": "D2"}
    assert res.calls == ["get"]


async def test_an_operation_done_at_once_is_not_recorded() -> None:
    res = FakeResource(polls=0)
    d = driver()
    assert await d.ensure(res) == {"size": "D2"}
    assert d.state.operation is None


async def test_delete_is_recorded_and_absent_is_done() -> None:
    res = FakeResource(current={"size": "D2"}, polls=1)
    d = driver()
    with pytest.raises(InProgress) as progress:
        await d.delete(res)
    assert progress.value.verb is Verb.DELETE and d.state.operation.action == "deleted"
    await d.finish_recorded({("virtualMachines", "vm1"): res})
    assert await d.delete(res) is False


async def test_a_record_for_a_resource_no_longer_managed_is_dropped() -> None:
    d = driver(OperationState(OperationRecord("networkInterfaces", "old", "put", "t", T0.isoformat())))
    assert await d.finish_recorded({}) is None
    assert d.state.operation is None


@pytest.mark.parametrize("garbage", ["", "{", "[]", '{"operation": {"kind": 1}}', '{"operation": 5}', "null"])
def test_unreadable_state_counts_as_empty(garbage: str) -> None:
    assert OperationState.loads(garbage) == OperationState()


def test_state_round_trips() -> None:
    state = OperationState(
        OperationRecord("disks", "d", "delete", "tok", T0.isoformat(), "deleted"), "vm-uuid",
        {"publisher": "MicrosoftWindowsServer", "offer": "WindowsServer", "sku": "2022-datacenter-azure-edition"},
    )  # fmt: skip
    assert OperationState.loads(state.dumps()) == state


def test_an_unreadable_recorded_image_is_dropped_not_the_rest() -> None:
    assert OperationState.loads('{"vm_id": "v", "image": 5}') == OperationState(vm_id="v")


SUB = "00000000-0000-0000-0000-000000000001"


def _spec(capabilities: list[str], image: dict[str, object] | None = None) -> Any:
    from azure_edition_operator.api.v1alpha1 import AzureEditionVMSpec

    spec: dict[str, object] = {
        "capabilities": capabilities,
        "azure": {"subscriptionId": SUB, "resourceGroup": "rg", "location": "westeurope",
                  "vmSize": "Standard_D2as_v5",
                  "subnetId": f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Network"
                              "/virtualNetworks/vnet/subnets/default"},
        "adminCredentialsSecretRef": {"name": "admin"},
    }  # fmt: skip
    if image is not None:
        spec["image"] = image
    return AzureEditionVMSpec.model_validate(spec)


def test_the_recorded_image_is_used_only_if_it_carries_the_spec_capabilities() -> None:
    """Recreate as it was, unless the spec now asks for what that image cannot carry (then the catalog)."""
    from azure_edition_operator.azure.provision import recorded_image

    state = OperationState(
        vm_id="v", image={"sku": "2025-datacenter-azure-edition-core", "version": "latest"}
    )
    image = recorded_image(state, _spec(["Hotpatch"]))
    assert image is not None and image.sku == "2025-datacenter-azure-edition-core"
    assert image.publisher == "MicrosoftWindowsServer" and image.version == "latest"
    assert recorded_image(OperationState(vm_id="v", image={"sku": "not-in-the-catalog"}), _spec([])) is None
    assert recorded_image(OperationState(vm_id="v"), _spec([])) is None


@pytest.mark.parametrize(
    ("why", "image", "vm_id", "pins"),
    [
        ("another publisher", {"publisher": "EvilPublisher"}, "v", None),
        ("another offer", {"offer": "EvilOffer"}, "v", None),
        ("outside the pinned version", {}, "v", {"windowsServerVersion": "2022"}),
        ("outside the pinned experience", {}, "v", {"experience": "DesktopExperience"}),
        ("another image version than the pinned one", {"version": "1.2.3"}, "v", {"version": "9.9.9"}),
    ],
)
def test_a_recorded_image_outside_the_spec_and_the_catalog_is_not_used(
    why: str, image: dict[str, str], vm_id: str | None, pins: dict[str, object] | None
) -> None:
    """The image record is operator state (sealed; a tenant could once write it): it may only repeat an
    image within the spec's pins and the catalog's publisher and offer."""
    from azure_edition_operator.azure.provision import recorded_image

    recorded = {"publisher": "MicrosoftWindowsServer", "offer": "WindowsServer",
                "sku": "2025-datacenter-azure-edition-core", "version": "latest", **image}  # fmt: skip
    state = OperationState(vm_id=vm_id, image=recorded)
    assert recorded_image(state, _spec([], pins)) is None, why


def test_garbage_start_time_reads_as_now() -> None:
    record = OperationRecord("disks", "d", "delete", "tok", "yesterday-ish")
    assert abs((record.started_at() - datetime.now(UTC)).total_seconds()) < 5


async def test_an_unreadable_token_is_dropped_not_fatal() -> None:
    class Broken(FakeResource):
        async def resume(self, verb: Verb, token: str) -> FakeOperation:
            raise ValueError("not a continuation token")

    res = Broken()
    d = driver(OperationState(OperationRecord("virtualMachines", "vm1", "put", "garbage", T0.isoformat())))
    assert await d.finish_recorded({("virtualMachines", "vm1"): res}) is None
    assert d.state.operation is None


async def test_each_write_is_logged_once_with_the_object_reference(caplog: pytest.LogCaptureFixture) -> None:
    """One line per Azure write, carrying the object's reference as kopf's per-object lines do."""
    res = FakeResource(polls=0)
    d = Driver(OperationState(), clock=lambda: T0, logger=Owner("ns", "aevm", "u1").logger("test"))
    with caplog.at_level("INFO"):
        await d.ensure(res)  # created and done at once
        await d.ensure(res)  # nothing to write
    writes = [r for r in caplog.records if "virtualMachines/vm1" in r.getMessage()]
    assert [r.getMessage() for r in writes] == ["created virtualMachines/vm1"]
    assert writes[0].k8s_ref == {"namespace": "ns", "name": "aevm", "uid": "u1"}


# ----------------------------------------------------------------------------- observe only


async def test_observing_reads_and_says_what_it_would_write_but_never_writes() -> None:
    drifted = FakeResource(current={"size": "D4"})
    d = Driver(OperationState(), clock=lambda: T0, observe=True)
    assert await d.ensure(drifted) == {"size": "D4"}, "what Azure has, unchanged"
    missing = FakeResource(name="nic1", kind="networkInterfaces")
    assert await d.ensure(missing) is None
    present = FakeResource(name="pip1", kind="publicIPAddresses", current={"x": 1})
    assert await d.delete(present) is False
    assert d.would_change == ["update virtualMachines/vm1", "create networkInterfaces/nic1",
                              "delete publicIPAddresses/pip1"]  # fmt: skip
    assert [c for r in (drifted, missing, present) for c in r.calls] == ["get", "get", "get"]
    assert d.state.operation is None


async def test_observing_uses_the_resources_own_words() -> None:
    res = FakeResource(current={"size": "D4"})
    res.changes = lambda existing, body: [f"size {existing['size']} → {body['size']}"]  # type: ignore[attr-defined]
    d = Driver(OperationState(), observe=True)
    await d.ensure(res)
    await d.ensure(res)
    assert d.would_change == ["size D4 → D2"], "said once"

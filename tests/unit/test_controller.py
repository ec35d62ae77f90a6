"""The controller driven with a fake clock: due times, back-off, fairness, forgetting, the management policy.

No cluster and no Azure: the Kubernetes client is a recorder, Events go to a list, and Azure is a trap
that fails the test if a step reaches it where it must not.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest
import yaml

from azure_edition_operator import controller as ctl
from azure_edition_operator import publish as publish_module
from azure_edition_operator import reasons as vocab
from azure_edition_operator.api.v1alpha1 import AzureEditionVMSpec
from azure_edition_operator.azure.specs import Owner, vm_identity
from azure_edition_operator.config import OperatorConfig
from azure_edition_operator.controller import Controller, ObjectRecord, Schedule, Services, needs_pass
from azure_edition_operator.slots import Rank
from tests.conftest import SAMPLES

SPEC = list(yaml.safe_load_all((SAMPLES / "plain-core.yaml").read_text()))[1]["spec"]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeKube:
    """Records status patches and annotations; ``down`` makes every call fail as an API outage would."""

    def __init__(self) -> None:
        self.status: list[dict[str, Any]] = []
        self.annotations: list[dict[str, Any]] = []
        self.down = False

    async def patch_status(
        self, namespace: str, name: str, version: str | None, patch: dict[str, Any]
    ) -> None:
        if self.down:
            raise ConnectionRefusedError("the API server is away")
        self.status.append(patch)

    async def annotate(self, namespace: str, name: str, annotations: dict[str, Any]) -> None:
        if self.down:
            raise ConnectionRefusedError("the API server is away")
        self.annotations.append(annotations)


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str]]:
    posted: list[tuple[str, str, str]] = []

    def post(body: Any, kind: str, reason: str, message: str) -> None:
        posted.append((kind, reason, message))

    monkeypatch.setattr(publish_module, "post", post)
    monkeypatch.setattr(ctl, "post", post)
    return posted


def body(
    uid: str = "uid-1", namespace: str = "ns", name: str = "vm", generation: int = 1, **spec: Any
) -> dict:
    return {
        "apiVersion": "azureedition.io/v1alpha1",
        "kind": "AzureEditionVM",
        "metadata": {
            "uid": uid,
            "namespace": namespace,
            "name": name,
            "generation": generation,
            "resourceVersion": "1",
        },
        "spec": {**copy.deepcopy(SPEC), **spec},
    }


def make(clock: FakeClock, workers: int = 2) -> tuple[Controller, FakeKube]:
    kube = FakeKube()
    config = OperatorConfig(max_concurrent_reconciles=workers, kube_retry_base=0.5, kube_retry_cap=5.0)
    controller = Controller(Services(config, kube, None, b"k" * 32), clock=clock)  # type: ignore[arg-type]
    controller.start = lambda: None  # type: ignore[method-assign]  # the test drives ``tick`` itself

    async def no_azure(*_: Any) -> Any:
        raise AssertionError("an Azure call was made")

    controller._azure = no_azure  # type: ignore[method-assign]
    return controller, kube


# ----------------------------------------------------------------------------- the schedule (pure)


def test_a_key_is_taken_when_due_and_not_before() -> None:
    schedule = Schedule()
    schedule.add("a", 10.0, Rank.START, "ns")
    schedule.release(9.9)
    assert schedule.take() is None and schedule.next_due() == 10.0
    schedule.release(10.0)
    assert schedule.take() == "a" and schedule.active == 1


def test_asking_earlier_moves_the_due_time_and_asking_later_does_not() -> None:
    schedule = Schedule()
    schedule.add("a", 10.0, Rank.START)
    schedule.add("a", 5.0, Rank.START)
    schedule.add("a", 20.0, Rank.START)
    assert schedule.next_due() == 5.0
    schedule.release(5.0)
    assert schedule.take() == "a" and schedule.take() is None  # once, not three times


def test_a_running_key_is_never_handed_to_a_second_worker_and_runs_again_after() -> None:
    schedule = Schedule()
    schedule.add("a", 0.0, Rank.START)
    schedule.release(0.0)
    assert schedule.take() == "a"
    schedule.add("a", 0.0, Rank.START)  # changed while it runs
    schedule.release(1.0)
    assert schedule.take() is None
    schedule.done("a", 60.0)  # the step asked for 60 s later; the change asked for now
    schedule.release(1.0)
    assert schedule.take() == "a"


def test_done_with_no_due_time_leaves_the_key_unscheduled() -> None:
    schedule = Schedule()
    schedule.add("a", 0.0, Rank.START)
    schedule.release(0.0)
    schedule.take()
    schedule.done("a", None)
    assert schedule.next_due() is None and schedule.take() is None


def test_a_forgotten_key_leaves_nothing_behind() -> None:
    schedule = Schedule()
    for i in range(200):
        schedule.add(f"k{i}", float(i), Rank.START, f"ns{i % 3}")
    schedule.release(50.0)
    running = schedule.take()
    for i in range(200):
        schedule.forget(f"k{i}")
    schedule.done(running, 0.0)  # its worker finishes after the delete: not queued again
    schedule.release(1e9)
    assert schedule.take() is None and schedule.next_due() is None
    assert len(schedule) == 0 and not schedule._how and not schedule._again and len(schedule._heap) < 200


def test_one_namespaces_flood_does_not_delay_anothers_new_object() -> None:
    """A flood of 1,000 objects of one tenant due at once: another namespace's object, due a moment later,
    is the next but one a worker takes (after at most one of the flood's)."""
    schedule = Schedule()
    for i in range(1000):
        schedule.add(f"a{i}", 0.0, Rank.START, "tenant-a")
    schedule.release(0.0)
    assert schedule.take() == "a0"
    schedule.add("b", 0.5, Rank.START, "tenant-b")
    schedule.release(0.5)
    taken = [schedule.take() for _ in range(3)]
    assert "b" in taken[:2]


def test_an_object_furthest_along_is_taken_first() -> None:
    schedule = Schedule()
    schedule.add("new", 0.0, Rank.START, "a")
    schedule.add("polling", 0.0, Rank.RESUME, "b")
    schedule.add("checking", 0.0, Rank.CHECK, "c")
    schedule.release(0.0)
    assert [schedule.take() for _ in range(3)] == ["checking", "polling", "new"]


# ----------------------------------------------------------------------------- one object's due time


def test_due_time_of_a_provisioned_object_is_its_next_pass_or_check() -> None:
    rec = ObjectRecord("u", "ns", "vm", body(), next_pass=5000.0, next_check=1600.0)
    assert rec.due() == 5000.0  # not provisioned: checks do not count
    rec.provisioned_generation = 1
    assert rec.due() == 1600.0
    rec.not_before = 1700.0  # backing off after a failed step
    assert rec.due() == 1700.0
    rec.provisioned_generation, rec.not_before = 1, 0.0
    rec.body = body(generation=2)  # a new spec: the VM is not provisioned for it yet
    assert rec.due() == 5000.0


def test_a_paused_or_deleting_object_is_never_due() -> None:
    rec = ObjectRecord(
        "u", "ns", "vm", body(managementPolicy="Paused"), next_pass=0.0, provisioned_generation=1
    )
    assert rec.due() is None
    rec = ObjectRecord("u", "ns", "vm", body(), next_pass=0.0, deleting=True)
    assert rec.due() is None


# ----------------------------------------------------------------------------- the controller


async def _run_due(controller: Controller) -> None:
    while tasks := controller.tick():
        await asyncio.gather(*tasks)


async def test_a_paused_object_makes_no_azure_call_and_says_so(events) -> None:
    clock = FakeClock()
    controller, kube = make(clock)
    controller.changed(body(managementPolicy="Paused"))
    await _run_due(controller)
    rec = controller.records["uid-1"]
    synced = next(c for c in rec.status["conditions"] if c["type"] == "Synced")
    assert (synced["status"], synced["reason"]) == ("False", vocab.RECONCILE_PAUSED)
    assert "no Azure call" in synced["message"] and "spec.managementPolicy" in synced["message"]
    reconciling = next(c for c in rec.status["conditions"] if c["type"] == "Reconciling")
    stalled = next(c for c in rec.status["conditions"] if c["type"] == "Stalled")
    assert (reconciling["status"], reconciling["reason"]) == ("False", vocab.RECONCILE_PAUSED)
    assert stalled["status"] == "False"
    assert len(kube.status) == 1
    clock.now += 1e6  # a long time later: nothing was scheduled (no pass, no check, no resync)
    assert controller.schedule.next_due() is None
    await _run_due(controller)
    assert len(kube.status) == 1
    controller.assess(body(managementPolicy="Paused"), "t-1")  # not even an assessment
    await _run_due(controller)
    assert controller.schedule.next_due() is None


async def test_a_full_object_has_no_synced_condition() -> None:
    from azure_edition_operator.status import Observation, compute_status

    status = compute_status({}, Observation(1, frozenset()), ctl.now())
    assert not any(c["type"] == "Synced" for c in status["conditions"])


async def test_the_step_does_what_is_due(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    controller, _ = make(clock)
    done: list[str] = []

    async def pass_(rec: ObjectRecord) -> None:
        done.append("pass")
        rec.provisioned_generation, rec.next_pass, rec.next_check = 1, clock.now + 3600, clock.now + 60

    async def check(rec: ObjectRecord) -> None:
        done.append("check")
        rec.next_check = clock.now + 60

    monkeypatch.setattr(controller, "_pass", pass_)
    monkeypatch.setattr(controller, "_check_round", check)
    controller.changed(body())
    await _run_due(controller)
    assert done == ["pass"] and controller.schedule.next_due() == clock.now + 60
    clock.now += 59
    await _run_due(controller)
    assert done == ["pass"]
    clock.now += 1
    await _run_due(controller)
    assert done == ["pass", "check"]
    clock.now += 3600
    await _run_due(controller)
    assert done[-1] == "pass"


async def test_a_kubernetes_outage_is_retried_with_a_short_back_off(events) -> None:
    """The API server away: the object's step comes back after 0.5, 1, 2, 4, 5, 5 s (not kopf's minute),
    and the first step after it returns writes the status."""
    clock = FakeClock()
    controller, kube = make(clock)
    kube.down = True
    controller.changed(body(managementPolicy="Paused"))
    waits = []
    for _ in range(6):
        await _run_due(controller)
        due = controller.schedule.next_due()
        waits.append(due - clock.now)
        clock.now = due
    assert waits == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    kube.down = False
    await _run_due(controller)
    assert len(kube.status) == 1 and controller.records["uid-1"].failures == 0


async def test_workers_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    controller, _ = make(clock, workers=2)
    release, inside, most = asyncio.Event(), 0, 0

    async def pass_(rec: ObjectRecord) -> None:
        nonlocal inside, most
        inside += 1
        most = max(most, inside)
        await release.wait()
        inside -= 1
        rec.next_pass = ctl.NEVER

    monkeypatch.setattr(controller, "_pass", pass_)
    for i in range(5):
        controller.changed(body(uid=f"u{i}", name=f"vm{i}"))
    first = controller.tick()
    await asyncio.sleep(0)  # both workers are inside their step
    assert len(first) == 2 and controller.schedule.waiting == 3 and not controller.tick()
    release.set()
    await asyncio.gather(*first)
    await _run_due(controller)
    assert most == 2 and controller.schedule.waiting == 0


async def test_deleting_an_object_that_is_not_fully_managed_leaves_azure_alone_and_nothing_behind(
    events,
) -> None:
    clock = FakeClock()
    controller, _kube = make(clock)
    observed = body(managementPolicy="Observe")
    controller.changed(observed)
    controller.records["uid-1"].check_memory = object()  # type: ignore[assignment]
    assert await controller.delete(observed) is None  # the finalizer may go; ``_azure`` is a trap
    assert ("Normal", "AzureLeftAsIs") in [e[:2] for e in events]
    assert controller.records == {} and len(controller.schedule) == 0
    clock.now += 1e6
    assert controller.tick() == []


def _vm(*, power: str = "running", state: str = "Succeeded", nics: list[str] | None = None,
        size: str = "Standard_D2as_v5", tags: dict[str, str] | None = None) -> Any:  # fmt: skip
    from azure.mgmt.compute.models import (
        HardwareProfile,
        InstanceViewStatus,
        NetworkInterfaceReference,
        NetworkProfile,
        VirtualMachine,
        VirtualMachineInstanceView,
    )

    vm = VirtualMachine(location="westeurope", tags=tags)
    vm.hardware_profile = HardwareProfile(vm_size=size)
    vm.network_profile = NetworkProfile(
        network_interfaces=[NetworkInterfaceReference(id=n) for n in nics or []]
    )
    vm.instance_view = VirtualMachineInstanceView(statuses=[
        InstanceViewStatus(code=f"ProvisioningState/{state.lower()}"), InstanceViewStatus(code=f"PowerState/{power}")])  # fmt: skip
    vm.provisioning_state = state  # type: ignore[misc]
    return vm


def test_a_check_rounds_read_asks_for_a_pass_only_when_the_vm_is_not_as_the_spec_says() -> None:
    from azure_edition_operator.azure.specs import desired_tags

    spec = AzureEditionVMSpec.model_validate(SPEC)
    identity = vm_identity(Owner("ns", "vm", "uid-1"), spec.azure)
    tags = desired_tags(spec, identity.owner)
    fine = _vm(nics=[identity.nic_id], tags=tags)
    assert needs_pass(fine, spec, identity) == []
    assert needs_pass(_vm(power="deallocated", nics=[identity.nic_id], tags=tags), spec, identity) == [
        "power state deallocated"
    ]
    (no_nic,) = needs_pass(_vm(nics=[], tags=tags), spec, identity)
    assert "no network interface" in no_nic and identity.nic_name in no_nic
    assert needs_pass(_vm(nics=[identity.nic_id], tags=tags, size="Standard_D4as_v5"), spec, identity) == [
        "vmSize Standard_D4as_v5 (spec: Standard_D2as_v5)"
    ]
    assert needs_pass(_vm(nics=[identity.nic_id], tags={}), spec, identity) == ["tags"]


def test_an_extended_network_vm_without_its_extended_nic_names_it() -> None:
    docs = list(yaml.safe_load_all((SAMPLES / "extended-network.yaml").read_text()))
    spec = AzureEditionVMSpec.model_validate(next(d for d in docs if d["kind"] == "AzureEditionVM")["spec"])
    identity = vm_identity(Owner("ns", "vm", "uid-1"), spec.azure)
    (problem,) = [p for p in needs_pass(_vm(nics=[identity.nic_id]), spec, identity) if "NIC" in p]
    assert identity.extended_nic_name in problem and "extended NIC" in problem


async def test_an_event_older_than_our_own_write_does_not_take_status_back(events) -> None:
    """Our status write made resourceVersion 12; an event of version 11 arriving after it (an earlier write
    of ours) must not make the next write diff against the old status (and announce Ready twice)."""
    clock = FakeClock()
    controller, kube = make(clock)

    async def patch_status(namespace: str, name: str, version: str | None, patch: dict[str, Any]) -> str:
        kube.status.append(patch)
        return "12"

    kube.patch_status = patch_status  # type: ignore[method-assign]
    paused = body(managementPolicy="Paused")
    controller.changed(paused)
    await _run_due(controller)
    rec = controller.records["uid-1"]
    written = rec.status
    stale = {**paused, "metadata": {**paused["metadata"], "resourceVersion": "11"}, "status": {}}
    controller.seen(stale)
    assert rec.status == written
    fresh = {
        **paused,
        "metadata": {**paused["metadata"], "resourceVersion": "13"},
        "status": {"phase": "Edited"},
    }
    controller.seen(fresh)  # a later write by someone else (a hand edit): believed as what is there now
    assert rec.status == {"phase": "Edited"}


async def test_during_an_outage_only_the_refused_write_is_retried_never_the_azure_work(
    monkeypatch: pytest.MonkeyPatch, events
) -> None:
    """A pass whose status write the API server refused: the retries (0.5 s, 1 s, ...) write what the pass
    found, with no second pass (no Azure call), and the status lands once the API is back."""
    from azure_edition_operator.status import Observation

    clock = FakeClock()
    controller, kube = make(clock)
    passes = []

    async def pass_(rec: ObjectRecord) -> None:
        passes.append(clock.now)
        rec.next_pass = clock.now + 3600
        await controller._publish(rec, Observation(rec.generation, frozenset()))

    monkeypatch.setattr(controller, "_pass", pass_)
    kube.down = True
    controller.changed(body())
    for _ in range(5):
        await _run_due(controller)
        clock.now = controller.schedule.next_due()
    assert len(passes) == 1 and kube.status == []
    kube.down = False
    await _run_due(controller)
    assert len(passes) == 1 and len(kube.status) == 1
    assert controller.records["uid-1"].unwritten is None and controller.records["uid-1"].failures == 0
    assert controller.schedule.next_due() == passes[0] + 3600


def test_a_check_round_goes_before_passes_and_a_pass_keeps_its_rank() -> None:
    rec = ObjectRecord("u", "ns", "vm", body(), next_pass=5000.0, next_check=1600.0, rank=Rank.START)
    assert rec.due_rank() is Rank.START  # not provisioned: what is due is a pass
    rec.provisioned_generation = 1
    assert rec.due_rank() is Rank.CHECK
    rec.next_pass = 1000.0  # a pass is due first (a drift seen, a spec edit)
    assert rec.due_rank() is Rank.START


def test_an_annotation_overwritten_after_ours_is_forgotten_and_rewritten_by_the_next_save() -> None:
    """A tenant who writes the operator's state annotation after the operator did: the record stops
    trusting its memory of that value (the object's unverified value reads as no state) and the next
    save writes the sealed state again; events from before our write change nothing."""
    controller, kube = make(FakeClock())
    first = body()
    controller.changed(first)
    rec = controller.records["uid-1"]
    rec.written[ctl.STATE_ANNOTATION], rec.annotated_version = "v1.ours", 5
    stale = copy.deepcopy(first)
    stale["metadata"].update(resourceVersion="4", annotations={ctl.STATE_ANNOTATION: "older"})
    controller.seen(stale)
    assert rec.written[ctl.STATE_ANNOTATION] == "v1.ours"
    ours_again = copy.deepcopy(first)
    ours_again["metadata"].update(resourceVersion="6", annotations={ctl.STATE_ANNOTATION: "v1.ours"})
    controller.seen(ours_again)
    assert rec.written[ctl.STATE_ANNOTATION] == "v1.ours"
    forged = copy.deepcopy(first)
    forged["metadata"].update(resourceVersion="7", annotations={ctl.STATE_ANNOTATION: "v1.forged"})
    controller.seen(forged)
    assert ctl.STATE_ANNOTATION not in rec.written
    assert ctl.sealed(b"k" * 32, rec, ctl.STATE_ANNOTATION) is None  # the forged value does not verify
    asyncio.run(controller._save_state(rec))  # nothing to remember yet: the forged value is removed
    assert kube.annotations == [{ctl.STATE_ANNOTATION: None}]

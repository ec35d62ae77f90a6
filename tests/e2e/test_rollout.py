"""The baseline rollout end to end: a real API server, the operator process, the simulator's Azure at
1/50 of Azure's durations and the operator's rollout clock at 50x, starting just before a Saturday 02:00
(Europe/Berlin) window in January (a planned baseline month). Two rings: canary installs first, the
broad ring only after canary is Ready again and the soak has passed, all with one maxPatchPublishDate;
a failed canary stops the rollout (condition, Event, metric) and broad never installs, while another
namespace's rollout goes on; a restarted operator continues without sending an installation twice."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator

import pytest
import yaml

from azure_edition_envtest.stack import (
    Process,
    operator_env,
    simulator_timing_args,
    start_operator,
    start_simulator,
)
from azure_edition_simulator.client import SimulatorControl
from tests.conftest import SAMPLES
from tests.e2e.operator_stack import RG, condition, get, vm_name, wait_for
from tests.e2e.test_checks import events, metric

pytestmark = pytest.mark.e2e

TIME_SCALE = 0.02  # the simulator: Azure's durations x 0.02 (a VM create 0.6-1.2 s, installPatches 1.2-6 s)
SPEED = 1 / TIME_SCALE  # the rollout's clock: 50 s per real second, in step with the simulator's Azure
OPERATOR_NS = "e2e-rollout-system"
BERLIN = "Europe/Berlin"
OPENS = dt.datetime(2027, 1, 9, 2, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))  # Saturday 02:00 CET
LEAD = dt.timedelta(minutes=3)  # the clock starts this long before the window opens: 3.6 s real
SOAK = dt.timedelta(minutes=5)  # 6 s real
WINDOW = {"daysOfWeek": ["Saturday"], "startTime": "02:00", "timeZone": BERLIN, "duration": "3h"}
CUTOFF_PROOF_KB = "5099999"  # published after the rollout's maxPatchPublishDate: no ring installs it


@pytest.fixture(scope="module")
def rollout_simulator(tmp_path_factory) -> Iterator[tuple[Process, dict[str, str]]]:
    proc, env = start_simulator(tmp_path_factory.mktemp("armsim"), *simulator_timing_args(TIME_SCALE))
    yield proc, env
    proc.stop()


@pytest.fixture(scope="module")
def sim(rollout_simulator) -> SimulatorControl:
    return SimulatorControl.from_env(rollout_simulator[1])


@pytest.fixture(scope="module")
def rings(kubectl) -> Iterator[None]:
    """The platform team's rollout configuration, in the operator's own namespace."""
    doc = {"rings": ["canary", "broad"], "soak": f"{int(SOAK.total_seconds() // 60)}m"}
    config_map = {"apiVersion": "v1", "kind": "ConfigMap",
                  "metadata": {"name": "azure-edition-rollout", "namespace": OPERATOR_NS},
                  "data": {"rollout.json": json.dumps(doc)}}  # fmt: skip
    kubectl("create", "namespace", OPERATOR_NS, check=False)
    kubectl("apply", "-f", "-", input=yaml.safe_dump(config_map))
    yield
    kubectl("delete", "namespace", OPERATOR_NS, "--wait=false", check=False)


def start_rollout_operator(kubeconfig, simulator_env, log, clock_start: dt.datetime) -> Process:
    """An operator whose rollout clock starts at ``clock_start`` and runs at SPEED."""
    env = operator_env(kubeconfig, simulator_env, AEO_CREDENTIALS_NAMESPACE=OPERATOR_NS,
                       AEO_ROLLOUT_INTERVAL="0.5", AEO_CLOCK_START=clock_start.isoformat(),
                       AEO_CLOCK_SPEED=f"{SPEED:g}")  # fmt: skip
    started = time.time()
    proc = start_operator(log, env, wait_metrics=True)
    proc.extra.update(started=started, clock_start=clock_start)
    return proc


def clock_of(proc: Process) -> dt.datetime:
    """About where the operator's rollout clock is now (it started a little after the process)."""
    return proc.extra["clock_start"] + dt.timedelta(seconds=(time.time() - proc.extra["started"]) * SPEED)


@pytest.fixture
def rollout_operator(crd, kubeconfig, rollout_simulator, rings, tmp_path_factory) -> Iterator[Process]:
    """An operator whose rollout clock starts LEAD before the window (a fresh one per test)."""
    proc = start_rollout_operator(kubeconfig, rollout_simulator[1], tmp_path_factory.mktemp("op") / "operator.log",
                                  OPENS - LEAD)  # fmt: skip
    proc.extra["opens_at"] = time.time() + LEAD.total_seconds() / SPEED  # roughly: the clock started before
    yield proc
    proc.stop()
    print(proc.tail(60))


def baseline_guests(sim: SimulatorControl, **extra) -> None:
    """Every new VM's Windows Update offers January's cumulative update (reboots) and a patch published
    after the rollout began."""
    later = {"classification": "Security", "kbId": CUTOFF_PROOF_KB, "publishedDate": "2027-02-10T18:00:00Z"}
    sim.set_guest_defaults(
        monthKind="Baseline", availablePatches=[{"classification": "Security"}, later], **extra
    )


def create_vms(kubectl, namespace: str, rings: dict[str, str | None]) -> None:
    secret, vm = yaml.safe_load_all((SAMPLES / "hotpatch.yaml").read_text())
    docs = [secret]
    for name, ring in rings.items():
        doc = json.loads(json.dumps(vm))
        doc["metadata"] = {"name": name, **({"labels": {"azureedition.io/ring": ring}} if ring else {})}
        doc["spec"]["hotpatch"]["maintenanceWindow"] = WINDOW
        docs.append(doc)
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(docs))


def installs(sim: SimulatorControl) -> dict[str, dict]:
    """installPatches the simulator took, by VM name (its operation log keeps each request's body)."""
    return {
        op["resourceId"].rsplit("/", 1)[1]: op for op in sim.operations() if op["kind"] == "vm.installPatches"
    }


def epoch(iso: str) -> float:
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def test_two_rings_install_in_order_with_one_patch_set(rollout_operator, kubectl, namespace, sim):
    baseline_guests(sim)
    create_vms(
        kubectl, namespace, {"canary-1": "canary", "broad-1": "broad", "broad-2": None}
    )  # none: last ring
    names = {n: vm_name(get(kubectl, namespace, n)) for n in ("canary-1", "broad-1", "broad-2")}

    def installed(name: str) -> dict | None:
        obj = get(kubectl, namespace, name)
        c = condition(obj, "HotpatchRollout")
        return obj if c and c["reason"] == "PatchesInstalled" else None

    canary = wait_for(lambda: installed("canary-1"), timeout=60, what="canary installed and Ready again")
    assert canary["status"]["maintenance"]["ring"] == "canary"
    waiting = condition(get(kubectl, namespace, "broad-1"), "HotpatchRollout")
    done = installs(sim)
    if names["broad-1"] not in done:  # broad waits for canary's soak (6 s real): seen before it starts
        assert waiting["reason"] == "RingWaiting" and waiting["status"] == "True"
    wait_for(lambda: installed("broad-1") and installed("broad-2"), timeout=60, what="broad installed")

    done = installs(sim)
    first, later = done[names["canary-1"]], [done[names["broad-1"]], done[names["broad-2"]]]
    # Nothing before the window opened (the operator's clock was 3 fake minutes before it at start).
    assert first["startEpoch"] >= rollout_operator.extra["opens_at"] - 1.0
    # Broad starts only after canary's installation ended, it rebooted and was Ready, and the soak passed.
    for op in later:
        assert op["startEpoch"] - epoch(first["endTime"]) >= SOAK.total_seconds() / SPEED - 0.5
    bodies = [op["params"]["input"] for op in (first, *later)]
    cutoffs = {b["windowsParameters"]["maxPatchPublishDate"] for b in bodies}
    assert len(cutoffs) == 1, f"every ring installs the same patch set: {cutoffs}"
    assert cutoffs.pop().startswith("2027-01-09T01:")  # fixed when the rollout began, inside the window (UTC)
    for body in bodies:
        assert body["rebootSetting"] == "IfRequired"
        assert body["windowsParameters"]["classificationsToInclude"] == ["Critical", "Security"]
        assert body["maximumDuration"].startswith("PT2H") or body["maximumDuration"] == "PT3H"  # ends with it
    for op in (first, *later):  # the cumulative update rebooted each VM; the later patch stayed out
        assert op["status"] == "Succeeded" and op["result"]["rebootStatus"] == "Completed"
        assert op["result"]["installedPatchCount"] == 1 and op["result"]["notSelectedPatchCount"] == 1
    assert [p["kbId"] for p in sim.guest(RG, names["broad-2"])["patches"]] == [CUTOFF_PROOF_KB]
    status = get(kubectl, namespace, "broad-2")["status"]["maintenance"]
    assert (status["ring"], status["phase"], status["month"]) == ("broad", "Installed", "2027-01")


def test_a_failed_canary_stops_the_broad_ring(rollout_operator, kubectl, namespace, second_namespace, sim):
    baseline_guests(sim, nextInstallationFailure={"code": "PatchInstallationFailed",
                                                   "message": "KB5000000 failed: 0x80070643"})  # fmt: skip
    try:
        create_vms(kubectl, namespace, {"canary-1": "canary", "broad-1": "broad"})
        broad_vm = vm_name(get(kubectl, namespace, "broad-1"))

        def stopped(name: str) -> dict | None:
            obj = get(kubectl, namespace, name)
            c = condition(obj, "HotpatchRollout")
            return obj if c and c["reason"] == "RolloutStopped" and c["status"] == "False" else None

        canary = wait_for(lambda: stopped("canary-1"), timeout=60, what="the rollout stopped on canary")
        message = condition(canary, "HotpatchRollout")["message"]
        assert "ring canary failed on canary-1" in message and "0x80070643" in message
        assert canary["status"]["maintenance"]["phase"] == "Failed"
        assert stopped("broad-1") is not None  # the later ring says why it waits
        wait_for(lambda: events(kubectl, namespace, "RolloutStopped"), what="the Warning Event")
        assert all(e["type"] == "Warning" for e in events(kubectl, namespace, "RolloutStopped"))
        assert metric(rollout_operator, "azureedition_hotpatch_rollout_stopped", namespace=namespace) == 1.0
        # Another namespace's rollout is its own: its canary installs, soaks, and its broad ring follows,
        # while this namespace's broad ring still installs nothing.
        baseline_guests(sim)
        create_vms(kubectl, second_namespace, {"canary-1": "canary", "broad-1": "broad"})
        wait_for(lambda: (c := condition(get(kubectl, second_namespace, "broad-1"), "HotpatchRollout"))
                 and c["reason"] == "PatchesInstalled", timeout=60, what="the other namespace's broad ring")  # fmt: skip
        assert (
            metric(rollout_operator, "azureedition_hotpatch_rollout_stopped", namespace=second_namespace)
            == 0.0
        )
        assert broad_vm not in installs(sim)
        assert get(kubectl, namespace, "broad-1")["status"]["maintenance"]["phase"] == "Waiting"
    finally:
        baseline_guests(sim)


def test_a_restarted_operator_continues_without_installing_twice(
    rollout_operator, kubectl, namespace, sim, kubeconfig, rollout_simulator, tmp_path_factory
):
    baseline_guests(sim)
    create_vms(kubectl, namespace, {"canary-1": "canary", "broad-1": "broad"})
    canary_vm = vm_name(get(kubectl, namespace, "canary-1"))
    wait_for(lambda: canary_vm in installs(sim), timeout=60, what="canary's installPatches")
    rollout_operator.stop()  # while canary's installation runs (1.2-6 s here)
    log = tmp_path_factory.mktemp("op2") / "operator.log"
    second = start_rollout_operator(kubeconfig, rollout_simulator[1], log, clock_of(rollout_operator))
    try:
        wait_for(
            lambda: (
                (c := condition(get(kubectl, namespace, "broad-1"), "HotpatchRollout"))
                and c["reason"] == "PatchesInstalled"
            ),
            timeout=60,
            what="broad installed after the restart",
        )
    finally:
        second.stop()
    ops = [op for op in sim.operations() if op["kind"] == "vm.installPatches"
           and op["resourceId"].rsplit("/", 1)[1] in (canary_vm, vm_name(get(kubectl, namespace, "broad-1")))]  # fmt: skip
    canary_ops = [op for op in ops if op["resourceId"].endswith(canary_vm)]
    assert len(canary_ops) == 1, "the restarted operator recognised the installation in flight"
    assert len({op["params"]["input"]["windowsParameters"]["maxPatchPublishDate"] for op in ops}) == 1

"""``make demo``: the operator on a local control plane against the ARM simulator, samples reaching Ready.

Steps, each printed as it happens: start etcd + kube-apiserver, start the ARM simulator, install the
CRD, start the operator, apply deploy/samples/ (and one object the API server refuses, to show its
message), map an SMB over QUIC certificate in each simulated guest that needs one (the step an
administrator does with New-SmbServerCertificateMapping), wait for Ready, print
``kubectl get aevm -o wide``. With ``--once`` it exits (0 when every sample is Ready); otherwise it
follows the operator's log until Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from azure_edition_simulator.client import SimulatorControl

from .controlplane import ControlPlane, wait_established
from .stack import operator_env, simulator_timing_args, start_operator, start_simulator

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "deploy" / "samples"
CRD = REPO / "crds" / "azureeditionvms.azureedition.io.yaml"
NAMESPACE = "demo"
# Azure's durations shrunk so a warm demo stays under two minutes (VM create 3-6 s, assessPatches 3-12 s).
DEMO_TIME_SCALE = 0.1


def say(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def vm_docs() -> list[dict]:
    return [
        d
        for p in sorted(SAMPLES.glob("*.yaml"))
        for d in yaml.safe_load_all(p.read_text())
        if d["kind"] == "AzureEditionVM"
    ]


def map_certificates(kubectl, control: SimulatorControl, pending: set[str], rg: str) -> None:
    """Give each SMB over QUIC guest a certificate for its serverName once its VM exists."""
    from azure_edition_operator.azure.specs import Owner, vm_name_for

    for doc in vm_docs():
        name = doc["metadata"]["name"]
        if name not in pending:
            continue
        obj = json.loads(kubectl("get", "aevm", name, "-n", NAMESPACE, "-o", "json").stdout)
        vm = vm_name_for(Owner(NAMESPACE, name, obj["metadata"]["uid"]))
        if not any(v["name"] == vm for v in control.vms()):
            continue
        server = doc["spec"]["smbOverQuic"]["serverName"]
        control.set_certificate(
            rg, vm, server, {"commonName": server, "dnsNames": [server], "validDays": 211}
        )
        print(f"    {name}: mapped a certificate for {server} in the guest (valid 211 days)")
        pending.discard(name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--once", action="store_true", help="exit after the table (non-zero if not all Ready)"
    )
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for Ready")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="aeo-demo-"))
    started = time.monotonic()
    say("starting a local control plane (etcd + kube-apiserver, built from the Go module proxy)")
    with ControlPlane.start(work_dir=work / "cluster") as cp:
        print(f"    export KUBECONFIG={cp.kubeconfig}")

        def kubectl(
            *a: str, check: bool = True, input: str | None = None
        ) -> subprocess.CompletedProcess[str]:
            result = subprocess.run([str(cp.kubectl), f"--kubeconfig={cp.kubeconfig}", *a], capture_output=True,
                                    text=True, input=input, timeout=120)  # fmt: skip
            if check and result.returncode:
                raise SystemExit(f"kubectl {' '.join(a)} failed: {result.stderr}")
            return result

        say(
            "starting the ARM simulator (HTTPS, its own CA; real QUIC endpoints on its own 127.X.y.z block, "
            "port 443)"
        )
        sim, sim_env = start_simulator(work / "armsim", *simulator_timing_args(DEMO_TIME_SCALE))
        print(
            f"    timing: Azure's (--profile azure) at time scale {DEMO_TIME_SCALE:g}: a VM create takes "
            f"{30 * DEMO_TIME_SCALE:g}-{60 * DEMO_TIME_SCALE:g} s instead of 30-60 s, Retry-After "
            f"{10 * DEMO_TIME_SCALE:g}-{35 * DEMO_TIME_SCALE:g} s (rounded) or absent, as on Azure"
        )
        control = SimulatorControl.from_env(sim_env)
        print(f"    ARM endpoint {sim_env['AZURE_RESOURCE_MANAGER_ENDPOINT']}")
        operator = None
        try:
            say("installing the CRD")
            kubectl("apply", "--server-side", "-f", str(CRD))
            wait_established(lambda *a: kubectl(*a, check=False).stdout, "azureeditionvms.azureedition.io")
            say("starting the operator (logs: %s)" % (work / "operator.log"))
            operator = start_operator(work / "operator.log", operator_env(cp.kubeconfig, sim_env))
            kubectl("create", "namespace", NAMESPACE)
            say("applying deploy/samples/")
            for path in sorted(SAMPLES.glob("*.yaml")):
                print(
                    "    "
                    + kubectl("apply", "-n", NAMESPACE, "-f", str(path))
                    .stdout.strip()
                    .replace("\n", "\n    ")
                )
            say(
                "applying deploy/samples/invalid/ (the API server refuses it, with a message that says what to change)"
            )
            for path in sorted((SAMPLES / "invalid").glob("*.yaml")):
                refused = kubectl("apply", "-n", NAMESPACE, "-f", str(path), check=False)
                print(f"    {path.name}: {refused.stderr.strip() or 'accepted?!'}")
            say(
                "waiting for Ready; mapping SMB over QUIC certificates in the guests as an administrator would"
            )
            names = {d["metadata"]["name"] for d in vm_docs()}
            pending = {
                d["metadata"]["name"] for d in vm_docs() if "SMBOverQUIC" in d["spec"].get("capabilities", [])
            }
            deadline = time.monotonic() + args.timeout
            ready: set[str] = set()
            while time.monotonic() < deadline and ready != names:
                map_certificates(kubectl, control, pending, sim_env["ARMSIM_RESOURCE_GROUP"])
                items = json.loads(kubectl("get", "aevm", "-n", NAMESPACE, "-o", "json").stdout)["items"]
                ready = {i["metadata"]["name"] for i in items if any(
                    c["type"] == "Ready" and c["status"] == "True" for c in i.get("status", {}).get("conditions", []))}  # fmt: skip
                time.sleep(1)
            say(f"kubectl get aevm -n {NAMESPACE} -o wide")
            print(kubectl("get", "aevm", "-n", NAMESPACE, "-o", "wide").stdout)
            if ready != names:
                print(
                    f"not Ready within {args.timeout:.0f}s: {', '.join(sorted(names - ready))}",
                    file=sys.stderr,
                )
                print(operator.tail(40), file=sys.stderr)
                return 1
            print(
                f"    every sample Ready {time.monotonic() - started:.0f} s after the demo started "
                f"(Azure's timing at scale {DEMO_TIME_SCALE:g})"
            )
            if args.once:
                return 0
            say("the operator keeps running; its log follows (Ctrl-C stops everything)")
            with subprocess.Popen(["tail", "-n", "+1", "-f", str(operator.log)]) as tail:
                try:
                    tail.wait()
                except KeyboardInterrupt:
                    tail.terminate()
            return 0
        finally:
            if operator is not None:
                operator.stop()
            sim.stop()


if __name__ == "__main__":
    sys.exit(main())

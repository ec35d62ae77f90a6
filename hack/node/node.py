#!/usr/bin/env python3
"""A real one-node Kubernetes cluster on the local control plane: `make node-up` / `make node-down`.

On top of etcd + kube-apiserver (azure_edition_envtest.controlplane in node mode) this starts
containerd v2 (private root, state and socket), kubelet, kube-scheduler and
kube-controller-manager, with certificates issued from the control plane's CA. Pods run with
hostNetwork only: the CNI is loopback-only, so there are no ClusterIP Services and no cluster DNS.
See hack/node/README.md for every setting and why it is there.

One node per machine: kubelet tunes machine-wide kernel settings and uses the shared `kubepods`
cgroup, so a second `up` from another checkout refuses, naming the running one. `down` stops
everything, force-removes containers, unmounts what kubelet and containerd mounted, restores the
kernel settings and removes the cgroups, then checks that nothing is left.

Usage: node.py up --dir .node | node.py down --dir .node | node.py status --dir .node
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from azure_edition_envtest import controlplane as cp

REPO = Path(__file__).resolve().parents[2]
LOCK = Path("/run/azure-edition-node.lock")
RUN_ROOT = Path("/run/azure-edition-node")
# kubelet writes these while it runs (kubelet's setupKernelTunables); `down` puts them back.
SYSCTLS = ("vm/overcommit_memory", "kernel/panic", "kernel/panic_on_oops")
CGROUP_ROOT = Path("/sys/fs/cgroup")
COMPONENTS = ("containerd", "kubelet", "kube-scheduler", "kube-controller-manager")
PAUSE_IMAGE_NAME = "localhost/azure-edition-pause"
CNI_BIN_DIR = Path("/usr/lib/cni")


class NodeError(RuntimeError):
    """The node could not be started, or something was left behind."""


# --------------------------------------------------------------------------------------------------
# Pure parts: certificates, configuration files
# --------------------------------------------------------------------------------------------------


def issue(ca_cert_pem: bytes, ca_key_pem: bytes, cn: str, *, org: str | None = None, server_sans=()):
    """(cert PEM, key PEM) signed by the control plane's CA: client auth, or serving with SANs."""
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org)] if org else []
    subject = x509.Name([*attrs, x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    usages = [ExtendedKeyUsageOID.SERVER_AUTH] if server_sans else [ExtendedKeyUsageOID.CLIENT_AUTH]
    cert = cp._issue(subject, key.public_key(), ca_cert.subject, ca_key, sans=server_sans, usages=usages)
    return cert.public_bytes(serialization.Encoding.PEM), cp._pem_key(key)


def kubeconfig(server: str, ca: Path, cert: Path, key: Path, user: str) -> str:
    """A kubeconfig that refers to certificate files (components read them at start)."""
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "node", "cluster": {"server": server, "certificate-authority": str(ca)}}],
            "users": [{"name": user, "user": {"client-certificate": str(cert), "client-key": str(key)}}],
            "contexts": [{"name": "node", "context": {"cluster": "node", "user": user}}],
            "current-context": "node",
        },
        sort_keys=False,
    )


def containerd_config(root: Path, state: Path, cni_conf_dir: Path, pause_image: str) -> str:
    """containerd v2 (config version 3): private dirs and socket, runc via cgroupfs, local pause image.

    restrict_oom_score_adj: root here cannot lower oom_score_adj (no CAP_SYS_RESOURCE), and every
    sandbox fails without it. NRI and the TCP/metrics/debug listeners are off: nothing uses them.
    """
    return f"""version = 3
root = '{root}'
state = '{state}'

[grpc]
  address = '{state}/containerd.sock'
[ttrpc]
  address = '{state}/containerd.sock.ttrpc'
[debug]
  address = ''
[metrics]
  address = ''

[plugins]
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = '{pause_image}'
  [plugins.'io.containerd.cri.v1.runtime']
    restrict_oom_score_adj = true
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = 'runc'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = 'io.containerd.runc.v2'
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          BinaryName = '{shutil.which("runc") or "runc"}'
          Root = '{state}/runc'
          SystemdCgroup = false
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ['{CNI_BIN_DIR}']
      conf_dir = '{cni_conf_dir}'
  [plugins.'io.containerd.grpc.v1.cri']
    stream_server_address = '127.0.0.1'
  [plugins.'io.containerd.nri.v1.nri']
    disable = true
"""


LOOPBACK_CNI = {"cniVersion": "1.0.0", "name": "loopback", "plugins": [{"type": "loopback"}]}


def kubelet_config(pki: Path, root: Path, logs: Path, ports: dict[str, int], static_dir: Path) -> dict:
    """KubeletConfiguration for this machine (hack/node/README.md explains each departure)."""
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": "127.0.0.1",
        "port": ports["kubelet"],
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": ports["kubelet-healthz"],
        "readOnlyPort": 0,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(pki / "ca.crt")},
        },
        "authorization": {"mode": "Webhook"},
        "tlsCertFile": str(pki / "kubelet-serving.crt"),
        "tlsPrivateKeyFile": str(pki / "kubelet-serving.key"),
        "cgroupDriver": "cgroupfs",
        "failCgroupV1": False,
        "failSwapOn": False,
        "podLogsDir": str(logs),
        "staticPodPath": str(static_dir),
        "resolvConf": "/etc/resolv.conf",
        "clusterDomain": "cluster.local",
        # Nothing to collect on a throwaway node; image GC would only cost time.
        "imageGCHighThresholdPercent": 100,
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
        "serializeImagePulls": False,
        "registerNode": True,
        "maxPods": 30,
        "syncFrequency": "10s",
        "fileCheckFrequency": "5s",
        "nodeStatusUpdateFrequency": "4s",
        "shutdownGracePeriod": "0s",
        "containerRuntimeEndpoint": "",  # set by flag
    }


def parse_mountinfo(text: str) -> list[str]:
    """Mount points listed in /proc/self/mountinfo text (octal escapes decoded)."""
    points = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) > 4:
            points.append(fields[4].encode().decode("unicode_escape"))
    return points


def mounts_under(prefixes: list[Path], mountinfo: str) -> list[str]:
    """Mount points at or under any prefix, deepest first (the order to unmount them)."""
    result = []
    for point in parse_mountinfo(mountinfo):
        for prefix in prefixes:
            if point == str(prefix) or point.startswith(f"{prefix}/"):
                result.append(point)
                break
    return sorted(set(result), key=lambda p: (-p.count("/"), p))


# --------------------------------------------------------------------------------------------------
# Shell: processes, files, the machine
# --------------------------------------------------------------------------------------------------


def log(msg: str) -> None:
    print(f"node: {msg}", file=sys.stderr, flush=True)


def binaries(bin_dir: Path, containerd_dir: Path) -> dict[str, Path]:
    found = {
        "kubelet": bin_dir / "kubelet",
        "kube-scheduler": bin_dir / "kube-scheduler",
        "kube-controller-manager": bin_dir / "kube-controller-manager",
        "kubectl": bin_dir / "kubectl",
        "containerd": containerd_dir / "containerd",
        "ctr": containerd_dir / "ctr",
        "containerd-shim-runc-v2": containerd_dir / "containerd-shim-runc-v2",
        "pause": containerd_dir / "pause",
    }
    missing = [str(p) for p in found.values() if not os.access(p, os.X_OK)]
    if not (CNI_BIN_DIR / "loopback").exists():
        missing.append(str(CNI_BIN_DIR / "loopback"))
    if not shutil.which("runc"):
        missing.append("runc")
    if missing:
        raise NodeError(f"missing: {', '.join(missing)} (make node-up builds and installs them)")
    return found


def spawn(argv: list[str], logfile: Path, env: dict[str, str] | None = None) -> int:
    """Start a detached process in its own session (it outlives `up`); returns its pid."""
    with open(logfile, "ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
    return proc.pid


def wait_for(what: str, ready, timeout: float, pids: dict[str, int], logs: Path) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        for name, pid in pids.items():
            if not cp.pid_alive(pid):
                tail = "\n".join((logs / f"{name}.log").read_text(errors="replace").splitlines()[-20:])
                raise NodeError(f"{name} exited while waiting for {what}:\n{tail}")
        if time.monotonic() > deadline:
            raise NodeError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.2)


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def kubectl(kctl: Path, kubeconfig: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(kctl), "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True, check=check
    )


def read_sysctls() -> dict[str, str]:
    return {name: (Path("/proc/sys") / name).read_text().strip() for name in SYSCTLS}


def write_sysctls(values: dict[str, str]) -> None:
    for name, value in values.items():
        path = Path("/proc/sys") / name
        if path.read_text().strip() != value:
            path.write_text(f"{value}\n")


def cgroup_dirs() -> list[Path]:
    """The `kubepods` cgroup in every v1 hierarchy (and the unified one) that has it."""
    return [d / "kubepods" for d in sorted(CGROUP_ROOT.iterdir()) if (d / "kubepods").is_dir()]


def remove_cgroup_tree(top: Path) -> None:
    """rmdir a cgroup and its children, deepest first (cgroupfs only allows empty dirs to go)."""
    for dirpath, _dirnames, _files in sorted(os.walk(top), key=lambda e: -e[0].count("/")):
        with contextlib.suppress(OSError):
            os.rmdir(dirpath)


def lock_owner() -> dict | None:
    try:
        return json.loads(LOCK.read_text())
    except (OSError, ValueError):
        return None


def lock_alive(owner: dict) -> bool:
    pids = owner.get("pids") or {}
    return any(cp._pid_runs(pid, name) for name, pid in pids.items())


# --------------------------------------------------------------------------------------------------
# up / down
# --------------------------------------------------------------------------------------------------


def up(directory: Path, bin_dir: Path, containerd_dir: Path, pause_image: str, timeout: float) -> dict:
    directory = directory.resolve()
    state_file = directory / "node.json"
    owner = lock_owner()
    if owner and owner.get("dir") != str(directory) and lock_alive(owner):
        raise NodeError(
            f"a one-node cluster from {owner.get('dir')} is already running on this machine "
            f"(kubelet tunes machine-wide kernel settings and the shared kubepods cgroup: one per machine); "
            f"run `make node-down` there first"
        )
    if owner and owner.get("dir") == str(directory) and lock_alive(owner) and healthy(owner):
        return owner
    if owner:
        down(Path(owner["dir"]), quiet=True)
    exe = binaries(bin_dir, containerd_dir)
    start = time.monotonic()
    directory.mkdir(parents=True, exist_ok=True)
    run_dir = RUN_ROOT / hashlib.sha256(str(directory).encode()).hexdigest()[:12]
    pki = directory / "cluster" / "pki"
    logs = directory / "logs"
    for sub in ("logs", "kubelet", "pod-logs", "static", "cni/net.d", "containerd"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    for old in logs.glob("*.log"):
        old.unlink()
    run_dir.mkdir(parents=True, exist_ok=True)
    state: dict = {
        "dir": str(directory),
        "run_dir": str(run_dir),
        "pids": {},
        "sysctls": read_sysctls(),
        "cgroups_before": [str(p) for p in cgroup_dirs()],
        "started": dt.datetime.now(dt.UTC).isoformat(),
        "containerd_dir": str(containerd_dir),
    }
    LOCK.write_text(json.dumps(state))
    try:
        cluster, _ = cp.up(directory / "cluster", bin_dir, node=True)
        server = str(cluster["server"])
        hostname = socket.gethostname()
        ca, ca_key = (pki / "ca.crt").read_bytes(), (pki / "ca.key").read_bytes()
        certs = {
            "node-client": issue(ca, ca_key, f"system:node:{hostname}", org="system:nodes"),
            "kubelet-serving": issue(
                ca,
                ca_key,
                hostname,
                server_sans=[
                    x509.DNSName(hostname),
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ],
            ),
            "scheduler": issue(ca, ca_key, "system:kube-scheduler"),
            "controller-manager": issue(ca, ca_key, "system:kube-controller-manager"),
        }
        for name, (cert, key) in certs.items():
            (pki / f"{name}.crt").write_bytes(cert)
            (pki / f"{name}.key").write_bytes(key)
            (pki / f"{name}.key").chmod(0o600)
        for name, user in (
            ("node-client", f"system:node:{hostname}"),
            ("scheduler", "scheduler"),
            ("controller-manager", "controller-manager"),
        ):
            (directory / f"{name}.kubeconfig").write_text(
                kubeconfig(server, pki / "ca.crt", pki / f"{name}.crt", pki / f"{name}.key", user)
            )
        ports = dict(
            zip(
                ("kubelet", "kubelet-healthz", "scheduler", "controller-manager"),
                cp.free_ports(4),
                strict=True,
            )
        )
        state["ports"] = ports

        # containerd
        (directory / "cni/net.d/10-loopback.conflist").write_text(json.dumps(LOOPBACK_CNI))
        config = directory / "containerd.toml"
        config.write_text(
            containerd_config(
                directory / "containerd", run_dir / "containerd", directory / "cni/net.d", pause_image
            )
        )
        env = {**os.environ, "PATH": f"{containerd_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
        state["pids"]["containerd"] = spawn(
            [str(exe["containerd"]), "--config", str(config)], logs / "containerd.log", env
        )
        LOCK.write_text(json.dumps(state))
        sock = run_dir / "containerd" / "containerd.sock"
        wait_for("containerd", sock.exists, timeout, state["pids"], logs)
        state["containerd_socket"] = str(sock)
        ensure_pause_image(exe, sock, pause_image, directory)

        # kubelet, scheduler, controller-manager
        kubelet_yaml = directory / "kubelet.yaml"
        kcfg = kubelet_config(pki, directory / "kubelet", directory / "pod-logs", ports, directory / "static")
        kcfg["containerRuntimeEndpoint"] = f"unix://{sock}"
        kubelet_yaml.write_text(yaml.safe_dump(kcfg))
        state["pids"]["kubelet"] = spawn(
            [
                str(exe["kubelet"]),
                f"--config={kubelet_yaml}",
                f"--kubeconfig={directory / 'node-client.kubeconfig'}",
                f"--root-dir={directory / 'kubelet'}",
                f"--hostname-override={hostname}",
                f"--cert-dir={directory / 'kubelet' / 'pki'}",
                "--v=1",
            ],
            logs / "kubelet.log",
            env,
        )
        common = [
            "--bind-address=127.0.0.1",
            f"--client-ca-file={pki / 'ca.crt'}",
            "--leader-elect=false",
            "--profiling=false",
        ]
        state["pids"]["kube-scheduler"] = spawn(
            [
                str(exe["kube-scheduler"]),
                f"--kubeconfig={directory / 'scheduler.kubeconfig'}",
                f"--authentication-kubeconfig={directory / 'scheduler.kubeconfig'}",
                f"--authorization-kubeconfig={directory / 'scheduler.kubeconfig'}",
                f"--secure-port={ports['scheduler']}",
                *common,
            ],
            logs / "kube-scheduler.log",
        )
        state["pids"]["kube-controller-manager"] = spawn(
            [
                str(exe["kube-controller-manager"]),
                f"--kubeconfig={directory / 'controller-manager.kubeconfig'}",
                f"--authentication-kubeconfig={directory / 'controller-manager.kubeconfig'}",
                f"--authorization-kubeconfig={directory / 'controller-manager.kubeconfig'}",
                f"--secure-port={ports['controller-manager']}",
                f"--service-account-private-key-file={pki / 'sa.key'}",
                f"--root-ca-file={pki / 'ca.crt'}",
                "--use-service-account-credentials",
                f"--flex-volume-plugin-dir={directory / 'flexvolume'}",
                f"--cluster-signing-cert-file={pki / 'ca.crt'}",
                f"--cluster-signing-key-file={pki / 'ca.key'}",
                "--controllers=*,-bootstrapsigner,-tokencleaner",
                *common,
            ],
            logs / "kube-controller-manager.log",
        )
        LOCK.write_text(json.dumps(state))
        admin = Path(str(cluster["kubeconfig"]))
        state["kubeconfig"] = str(admin)
        state["kubectl"] = str(exe["kubectl"])

        def node_ready() -> bool:
            out = kubectl(
                exe["kubectl"],
                admin,
                "get",
                "node",
                hostname,
                "-o",
                "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
                check=False,
            )
            return out.stdout.strip() == "True"

        wait_for(f"node {hostname} Ready", node_ready, timeout, state["pids"], logs)
        state["node"] = hostname
        state["up_seconds"] = round(time.monotonic() - start, 1)
        LOCK.write_text(json.dumps(state))
        state_file.write_text(json.dumps(state, indent=2) + "\n")
        return state
    except BaseException:
        down(directory, quiet=True, state=state)
        raise


def ensure_pause_image(exe: dict[str, Path], sock: Path, image: str, directory: Path) -> None:
    """Import the locally built pause image into containerd's k8s.io namespace (once per root)."""
    ctr = [str(exe["ctr"]), "--address", str(sock), "--namespace", "k8s.io"]
    listed = subprocess.run([*ctr, "images", "ls", "-q"], capture_output=True, text=True, check=True).stdout
    if image in listed.split():
        return
    archive = directory / "pause.tar"
    subprocess.run(
        ["podman", "save", "--quiet", "--format", "docker-archive", "-o", str(archive), image], check=True
    )
    subprocess.run([*ctr, "images", "import", "--no-unpack", str(archive)], check=True, capture_output=True)
    archive.unlink()


def healthy(state: dict) -> bool:
    pids = state.get("pids") or {}
    if set(pids) != set(COMPONENTS) or not all(cp._pid_runs(pid, name) for name, pid in pids.items()):
        return False
    return http_ok(f"http://127.0.0.1:{state['ports']['kubelet-healthz']}/healthz")


def our_shims(containerd_dir_hint: str, sock: str) -> list[int]:
    """Shim processes serving our containerd (their command line names its socket)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"containerd-shim-runc-v2") and sock.encode() in b" ".join(argv):
            found.append(int(proc.name))
    return found


def down(directory: Path, *, quiet: bool = False, state: dict | None = None) -> list[str]:
    """Stop the node and the control plane; returns what was left behind (empty when clean)."""
    directory = directory.resolve()
    if state is None:
        state = lock_owner() if (lock_owner() or {}).get("dir") == str(directory) else None
    if state is None:
        with contextlib.suppress(OSError, ValueError):
            state = json.loads((directory / "node.json").read_text())
    state = state or {"dir": str(directory), "pids": {}}
    pids = state.get("pids") or {}
    run_dir = Path(state.get("run_dir") or RUN_ROOT / "none")
    for name in ("kube-controller-manager", "kube-scheduler", "kubelet"):
        pid = pids.get(name)
        if pid and cp._pid_runs(pid, name):
            cp.terminate_group(pid, grace=5)
    # Containers: kubelet is gone, so remove them directly with runc (kills their processes).
    runc_root = run_dir / "containerd" / "runc" / "k8s.io"
    if runc_root.is_dir():
        listed = subprocess.run(
            ["runc", "--root", str(runc_root), "list", "-q"], capture_output=True, text=True
        )
        for cid in listed.stdout.split():
            subprocess.run(["runc", "--root", str(runc_root), "delete", "--force", cid], capture_output=True)
    sock = state.get("containerd_socket") or str(run_dir / "containerd" / "containerd.sock")
    pid = pids.get("containerd")
    if pid and cp._pid_runs(pid, "containerd"):
        cp.terminate_group(pid, grace=5)
    for shim in our_shims("", sock):
        with contextlib.suppress(ProcessLookupError):
            os.kill(shim, signal.SIGKILL)
    # Mounts kubelet (volumes, projected tokens) and containerd (rootfs, shm) made under our dirs.
    prefixes = [directory, run_dir]
    for _ in range(3):
        points = mounts_under(prefixes, Path("/proc/self/mountinfo").read_text())
        if not points:
            break
        for point in points:
            if subprocess.run(["umount", point], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", point], capture_output=True)
    # kubelet links every container's log into /var/log/containers (a fixed path); drop ours.
    containers_logs = Path("/var/log/containers")
    if containers_logs.is_dir():
        for link in containers_logs.iterdir():
            with contextlib.suppress(OSError):
                if link.is_symlink() and os.readlink(link).startswith(f"{directory}/"):
                    link.unlink()
    if "sysctls" in state:
        write_sysctls(state["sysctls"])
    before = set(state.get("cgroups_before") or [])
    for group in cgroup_dirs():
        if str(group) not in before:
            remove_cgroup_tree(group)
    cp.down(directory / "cluster")
    shutil.rmtree(run_dir, ignore_errors=True)
    with contextlib.suppress(OSError):
        RUN_ROOT.rmdir()
    (directory / "node.json").unlink(missing_ok=True)
    if (lock_owner() or {}).get("dir") == str(directory):
        LOCK.unlink(missing_ok=True)
    return leftovers(state, prefixes)


def leftovers(state: dict, prefixes: list[Path]) -> list[str]:
    """Processes, mounts, kernel settings and cgroups this node left behind (should be none)."""
    left = []
    for name, pid in (state.get("pids") or {}).items():
        if cp._pid_runs(pid, name):
            left.append(f"process {name} ({pid})")
    sock = state.get("containerd_socket") or ""
    left += [f"shim process {pid}" for pid in (our_shims("", sock) if sock else [])]
    left += [f"mount {p}" for p in mounts_under(prefixes, Path("/proc/self/mountinfo").read_text())]
    if "sysctls" in state:
        now = read_sysctls()
        left += [f"sysctl {k}={now[k]} (was {v})" for k, v in state["sysctls"].items() if now[k] != v]
    before = set(state.get("cgroups_before") or [])
    left += [f"cgroup {g}" for g in cgroup_dirs() if str(g) not in before]
    return left


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--dir", type=Path, default=Path(".node"))
    parser.add_argument("--bin-dir", type=Path, default=REPO / "bin")
    parser.add_argument(
        "--containerd-dir", type=Path, help="containerd, shim, ctr, pause (build-containerd.sh)"
    )
    parser.add_argument("--pause-image", default="")
    parser.add_argument("--timeout", type=float, default=90.0)
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            state = up(args.dir, args.bin_dir, args.containerd_dir, args.pause_image, args.timeout)
            log(
                f"node {state.get('node')} Ready in {state.get('up_seconds', 0)} s; "
                f"export KUBECONFIG={state['kubeconfig']}"
            )
            return 0
        if args.command == "down":
            start = time.monotonic()
            left = down(args.dir)
            if left:
                log("left behind: " + "; ".join(left))
                return 1
            log(f"stopped in {time.monotonic() - start:.1f} s; nothing left behind")
            return 0
        owner = lock_owner()
        ok = bool(owner) and owner.get("dir") == str(args.dir.resolve()) and healthy(owner)
        print(json.dumps({"healthy": ok, **(owner or {})}, indent=2))
        return 0 if ok else 1
    except NodeError as error:
        log(str(error))
        return 1


if __name__ == "__main__":
    sys.exit(main())

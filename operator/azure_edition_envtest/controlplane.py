"""A real, throwaway Kubernetes control plane (etcd + kube-apiserver) on loopback, like envtest.

Tests and `make cluster-up` need a genuine API server (CRD schema + CEL validation, RBAC, the
status subresource) without Docker. This module starts the binaries built by
`make controlplane` on random loopback ports with fresh certificates, waits for /readyz, writes
an admin kubeconfig and guarantees the processes are gone afterwards.

Python API::

    with ControlPlane.start() as cp:          # binaries from <repo>/bin (built if missing)
        subprocess.run([cp.kubectl, "--kubeconfig", cp.kubeconfig, "get", "ns"])

CLI (also the `azure-edition-controlplane` console script)::

    python -m azure_edition_envtest.controlplane up --dir .cluster    # background, idempotent
    python -m azure_edition_envtest.controlplane status --dir .cluster
    python -m azure_edition_envtest.controlplane down --dir .cluster
"""

from __future__ import annotations

import argparse
import atexit
import base64
import contextlib
import ctypes
import datetime as dt
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

BINARY_NAMES = ("etcd", "kube-apiserver", "kubectl")
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
# Service-account tokens are issued by the API server's own URL (https://127.0.0.1:PORT), which
# serves the OIDC discovery document and JWKS there, so a verifier (the simulator's Entra endpoint,
# as Entra for AKS) can fetch them: workload identity federation against this cluster's real keys.
OIDC_DISCOVERY_PATH = "/.well-known/openid-configuration"
OIDC_JWKS_PATH = "/openid/v1/jwks"
# Like a real cluster's public OIDC issuer: anyone may read discovery and JWKS (not the API).
ANONYMOUS_DISCOVERY_BINDING = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "ClusterRoleBinding",
    "metadata": {"name": "service-account-issuer-discovery-unauthenticated"},
    "roleRef": {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "system:service-account-issuer-discovery",
    },
    "subjects": [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:unauthenticated"}
    ],
}
STATE_FILE = "state.json"
BIN_DIR_ENV = "AZURE_EDITION_CONTROLPLANE_BIN_DIR"
TEMP_PREFIX = "azure-edition-envtest-"
OWNER_FILE = "owner.pid"
# Context name in every kubeconfig we write: lets tests recognise our control plane behind $KUBECONFIG.
KUBECONFIG_CONTEXT = "azure-edition-envtest"


class ControlPlaneError(RuntimeError):
    """The control plane could not be built, started or reached."""


def wait_established(kubectl: Callable[..., str], name: str, timeout: float = 60.0) -> None:
    """Until CRD ``name`` is Established. Polled, because ``kubectl wait --for=condition=Established``
    fails at once ("accessor error: <nil>") while a CRD just created has no conditions yet.
    ``kubectl(*args)`` runs kubectl against the cluster and returns its stdout (empty on failure)."""
    deadline = time.monotonic() + timeout
    query = 'jsonpath={.status.conditions[?(@.type=="Established")].status}'
    while kubectl("get", f"crd/{name}", "-o", query).strip() != "True":
        if time.monotonic() > deadline:
            raise ControlPlaneError(f"crd/{name} is not Established after {timeout:g} s")
        time.sleep(0.2)


# --------------------------------------------------------------------------------------------------
# Locating the binaries
# --------------------------------------------------------------------------------------------------


def repo_root() -> Path | None:
    """The source checkout this package lives in (editable install), or None when installed elsewhere."""
    for parent in Path(__file__).resolve().parents:
        if (parent / "hack" / "controlplane" / "build.sh").is_file():
            return parent
    return None


def pinned_versions(root: Path | None = None) -> dict[str, str]:
    """KUBERNETES_VERSION and ETCD_VERSION from hack/controlplane/versions.env (empty if unknown)."""
    root = root or repo_root()
    if root is None:
        return {}
    versions: dict[str, str] = {}
    for line in (root / "hack" / "controlplane" / "versions.env").read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.startswith("#"):
            versions[key.strip()] = value.strip()
    return versions


def _has_all_binaries(directory: Path) -> bool:
    return all(os.access(directory / name, os.X_OK) for name in BINARY_NAMES)


def find_bin_dir(bin_dir: Path | str | None = None, *, build: bool = True) -> Path:
    """Directory holding etcd, kube-apiserver and kubectl.

    Order: the explicit argument, $AZURE_EDITION_CONTROLPLANE_BIN_DIR, <repo>/bin; when none has
    them and `build` is set, run `make controlplane` (a cold build takes a while, then it is cached).
    """
    candidates = [Path(p) for p in (bin_dir, os.environ.get(BIN_DIR_ENV)) if p]
    root = repo_root()
    if root is not None:
        candidates.append(root / "bin")
    for candidate in candidates:
        if _has_all_binaries(candidate):
            return candidate
    if bin_dir is not None:
        raise ControlPlaneError(f"{bin_dir} does not contain {', '.join(BINARY_NAMES)}")
    if not build or root is None:
        raise ControlPlaneError(
            f"control plane binaries not found (looked in {', '.join(map(str, candidates)) or 'nothing'});"
            " run `make controlplane`"
        )
    print("control plane binaries missing; running `make controlplane` (cold build is slow)", file=sys.stderr)
    result = subprocess.run(["make", "-C", str(root), "controlplane"], stdout=sys.stderr, check=False)
    if result.returncode != 0 or not _has_all_binaries(root / "bin"):
        raise ControlPlaneError(f"`make controlplane` failed (exit {result.returncode})")
    return root / "bin"


# --------------------------------------------------------------------------------------------------
# Certificates and kubeconfig (pure: inputs in, PEM/YAML out)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    """PEM material for one control plane: a CA, the serving cert, an admin client, the SA key pair."""

    ca_cert: bytes
    serving_cert: bytes
    serving_key: bytes
    admin_cert: bytes
    admin_key: bytes
    service_account_key: bytes
    service_account_pub: bytes
    # The CA key signs node and component certificates (hack/node): kept in node mode only.
    ca_key: bytes = b""
    # kube-apiserver's client certificate towards kubelets (logs, exec, port-forward).
    kubelet_client_cert: bytes = b""
    kubelet_client_key: bytes = b""


def _pem_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _issue(
    subject: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    issuer: x509.Name,
    signing_key: ec.EllipticCurvePrivateKey,
    *,
    is_ca: bool = False,
    sans: Sequence[x509.GeneralName] = (),
    usages: Sequence[x509.ObjectIdentifier] = (),
    days: int = 365,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=not is_ca,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=is_ca,
                crl_sign=is_ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def generate_pki() -> Pki:
    """Fresh certificates for one run. ECDSA P-256 keeps generation in milliseconds."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "azure-edition-envtest-ca")])
    ca = _issue(ca_name, ca_key.public_key(), ca_name, ca_key, is_ca=True, days=3650)

    serving_key = ec.generate_private_key(ec.SECP256R1())
    first_service_ip = next(ipaddress.ip_network(SERVICE_CLUSTER_IP_RANGE).hosts())
    serving = _issue(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]),
        serving_key.public_key(),
        ca_name,
        ca_key,
        sans=[
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.DNSName("localhost"),
            x509.IPAddress(first_service_ip),
            x509.DNSName("kubernetes.default.svc"),
        ],
        usages=[ExtendedKeyUsageOID.SERVER_AUTH],
    )

    admin_key = ec.generate_private_key(ec.SECP256R1())
    admin = _issue(
        x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"),
                x509.NameAttribute(NameOID.COMMON_NAME, "envtest-admin"),
            ]
        ),
        admin_key.public_key(),
        ca_name,
        ca_key,
        usages=[ExtendedKeyUsageOID.CLIENT_AUTH],
    )

    sa_key = ec.generate_private_key(ec.SECP256R1())
    pem = serialization.Encoding.PEM
    kubelet_client_key = ec.generate_private_key(ec.SECP256R1())
    kubelet_client = _issue(
        x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"),
                x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver-kubelet-client"),
            ]
        ),
        kubelet_client_key.public_key(),
        ca_name,
        ca_key,
        usages=[ExtendedKeyUsageOID.CLIENT_AUTH],
    )
    return Pki(
        ca_key=_pem_key(ca_key),
        kubelet_client_cert=kubelet_client.public_bytes(pem),
        kubelet_client_key=_pem_key(kubelet_client_key),
        ca_cert=ca.public_bytes(pem),
        serving_cert=serving.public_bytes(pem),
        serving_key=_pem_key(serving_key),
        admin_cert=admin.public_bytes(pem),
        admin_key=_pem_key(admin_key),
        service_account_key=_pem_key(sa_key),
        service_account_pub=sa_key.public_key().public_bytes(
            pem, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )


def render_kubeconfig(server: str, pki: Pki, *, name: str = KUBECONFIG_CONTEXT) -> str:
    """A self-contained admin kubeconfig (certificates embedded, so the file can be copied)."""

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": name, "cluster": {"server": server, "certificate-authority-data": b64(pki.ca_cert)}}
        ],
        "users": [
            {
                "name": f"{name}-admin",
                "user": {
                    "client-certificate-data": b64(pki.admin_cert),
                    "client-key-data": b64(pki.admin_key),
                },
            }
        ],
        "contexts": [{"name": name, "context": {"cluster": name, "user": f"{name}-admin"}}],
        "current-context": name,
        "preferences": {},
    }
    return yaml.safe_dump(config, sort_keys=False)


# --------------------------------------------------------------------------------------------------
# Command lines (pure)
# --------------------------------------------------------------------------------------------------


def etcd_args(data_dir: Path, client_port: int, peer_port: int) -> list[str]:
    """etcd on loopback, plain HTTP (only the API server talks to it), fsync off: data is throwaway."""
    client = f"http://127.0.0.1:{client_port}"
    peer = f"http://127.0.0.1:{peer_port}"
    return [
        "--name=envtest",
        f"--data-dir={data_dir}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=envtest={peer}",
        "--initial-cluster-state=new",
        "--unsafe-no-fsync",
        "--log-level=warn",
    ]


def service_account_issuer(secure_port: int) -> str:
    """The issuer URL in service-account tokens: the API server itself (it serves discovery there)."""
    return f"https://127.0.0.1:{secure_port}"


def apiserver_args(pki_dir: Path, etcd_url: str, secure_port: int, *, node: bool = False) -> list[str]:
    """kube-apiserver with real authn (client certs, SA tokens) and RBAC; defaults kept otherwise.

    Admission plugins and CEL (CRD x-kubernetes-validations, ValidatingAdmissionPolicy) stay at
    their defaults so behaviour matches a real cluster. Priority-and-fairness is off: it only
    matters under load and its bootstrap adds startup time. With `node` (a kubelet joins,
    hack/node), the Node authorizer and NodeRestriction admit it as a real cluster does, and the API
    server reaches the kubelet by hostname (kubelet refuses a loopback node IP; the hostname resolves
    to loopback here) with its own client certificate.
    """
    issuer = service_account_issuer(secure_port)
    node_args = [
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction",
        f"--kubelet-client-certificate={pki_dir / 'kubelet-client.crt'}",
        f"--kubelet-client-key={pki_dir / 'kubelet-client.key'}",
        f"--kubelet-certificate-authority={pki_dir / 'ca.crt'}",
        "--kubelet-preferred-address-types=Hostname",
    ]
    return [
        f"--etcd-servers={etcd_url}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        # Loopback may not be published as the `kubernetes` Service endpoint; nothing here needs it.
        "--endpoint-reconciler-type=none",
        f"--secure-port={secure_port}",
        f"--cert-dir={pki_dir}",
        f"--tls-cert-file={pki_dir / 'serving.crt'}",
        f"--tls-private-key-file={pki_dir / 'serving.key'}",
        f"--client-ca-file={pki_dir / 'ca.crt'}",
        *(node_args if node else ["--authorization-mode=RBAC"]),
        f"--service-account-issuer={issuer}",
        f"--service-account-jwks-uri={issuer}{OIDC_JWKS_PATH}",
        f"--service-account-key-file={pki_dir / 'sa.pub'}",
        f"--service-account-signing-key-file={pki_dir / 'sa.key'}",
        f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
        "--allow-privileged=true",
        "--enable-priority-and-fairness=false",
        "--profiling=false",
    ]


# --------------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------------

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """preexec_fn: the kernel SIGKILLs the child when the launching thread dies (even on SIGKILL)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports (held open together so they cannot repeat)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def pid_alive(pid: int) -> bool:
    """True for a live process; a zombie counts as gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def _pid_runs(pid: int, binary: str) -> bool:
    """pid is alive and runs `binary` (guards against killing a recycled pid)."""
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0].decode()
    except OSError:
        return False
    return pid_alive(pid) and Path(argv0).name == binary


def terminate_group(pid: int, *, grace: float = 10.0) -> None:
    """SIGTERM the process group led by pid, SIGKILL whatever is left after `grace` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        except PermissionError:
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # reap if it is our child, so it does not linger as a zombie
            if not pid_alive(pid):
                return
            time.sleep(0.05)


@dataclass
class _Proc:
    """One launched binary: its pid (= process group) and log file."""

    name: str
    pid: int
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    @classmethod
    def spawn(cls, binary: Path, args: list[str], log: Path, *, detach: bool) -> _Proc:
        with open(log, "wb") as log_file:
            popen = subprocess.Popen(
                [str(binary), *args],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: we can kill it and all its children
                preexec_fn=None if detach else _die_with_parent_if_main_thread(),
            )
        return cls(binary.name, popen.pid, log, popen)

    def exited(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is not None
        return not pid_alive(self.pid)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, grace: float = 10.0) -> None:
        terminate_group(self.pid, grace=grace)
        if self.popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=1)


def _die_with_parent_if_main_thread() -> Callable[[], None] | None:
    """PDEATHSIG fires when the *thread* that forked exits, so only arm it from the main thread."""
    return _die_with_parent if threading.current_thread() is threading.main_thread() else None


# --------------------------------------------------------------------------------------------------
# Health
# --------------------------------------------------------------------------------------------------


def is_envtest_kubeconfig(kubeconfig: Path) -> bool:
    """True when the kubeconfig's current context is one this module wrote (no controllers run there)."""
    try:
        config = yaml.safe_load(kubeconfig.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return False
    return config.get("current-context") == KUBECONFIG_CONTEXT


def _https_get(url: str, pki_dir: Path, timeout: float = 2.0) -> tuple[int, str]:
    context = ssl.create_default_context(cafile=str(pki_dir / "ca.crt"))
    context.load_cert_chain(str(pki_dir / "admin.crt"), str(pki_dir / "admin.key"))
    try:
        with urllib.request.urlopen(url, context=context, timeout=timeout) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def _https_post_json(url: str, body: object, pki_dir: Path, timeout: float = 10.0) -> tuple[int, str]:
    context = ssl.create_default_context(cafile=str(pki_dir / "ca.crt"))
    context.load_cert_chain(str(pki_dir / "admin.crt"), str(pki_dir / "admin.key"))
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, context=context, timeout=timeout) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def _http_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


def _wait_until(ready: Callable[[], bool], procs: Sequence[_Proc], what: str, timeout: float) -> None:
    """Poll `ready` every 100 ms; fail fast (with the log tail) if one of `procs` dies meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        for proc in procs:
            if proc.exited():
                raise ControlPlaneError(f"{proc.name} exited while waiting for {what}:\n{proc.log_tail()}")
        if ready():
            return
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {p.name} ---\n{p.log_tail()}" for p in procs)
            raise ControlPlaneError(f"timed out after {timeout:.0f}s waiting for {what}\n{tails}")
        time.sleep(0.1)


# --------------------------------------------------------------------------------------------------
# The control plane
# --------------------------------------------------------------------------------------------------

_RUNNING: set[ControlPlane] = set()  # strong refs: dropped only by stop()


@dataclass(eq=False)
class ControlPlane:
    """A running etcd + kube-apiserver pair. Create with `start()` (context manager) or `launch()`."""

    work_dir: Path
    bin_dir: Path
    server: str
    etcd_url: str
    kubeconfig: Path
    processes: list[_Proc]
    owns_work_dir: bool = False
    detached: bool = False
    stopped: bool = field(default=False, init=False)

    @property
    def kubectl(self) -> Path:
        return self.bin_dir / "kubectl"

    @property
    def pki_dir(self) -> Path:
        return self.work_dir / "pki"

    @property
    def pids(self) -> dict[str, int]:
        return {proc.name: proc.pid for proc in self.processes}

    @classmethod
    @contextlib.contextmanager
    def start(
        cls, bin_dir: Path | str | None = None, work_dir: Path | str | None = None, *, timeout: float = 90.0
    ) -> Iterator[ControlPlane]:
        """Run a control plane for the duration of the `with` block; it is stopped even on errors."""
        control_plane = cls.launch(bin_dir, work_dir, timeout=timeout)
        try:
            yield control_plane
        finally:
            control_plane.stop()

    @classmethod
    def launch(
        cls,
        bin_dir: Path | str | None = None,
        work_dir: Path | str | None = None,
        *,
        timeout: float = 90.0,
        detach: bool = False,
        attempts: int = 3,
        node: bool = False,
    ) -> ControlPlane:
        """Start etcd and kube-apiserver and wait for /readyz. Caller must `stop()` (unless detached).

        With `detach`, the processes outlive this Python process (the `up` CLI); otherwise they are
        tied to it (atexit, SIGTERM and parent-death signal all stop them).
        """
        resolved_bin = find_bin_dir(bin_dir)
        for attempt in range(1, attempts + 1):
            try:
                return cls._launch_once(resolved_bin, work_dir, timeout=timeout, detach=detach, node=node)
            except ControlPlaneError as error:
                # Free ports are picked before the binaries bind them; lose that race, try again.
                if "address already in use" not in str(error) or attempt == attempts:
                    raise
        raise AssertionError("unreachable")

    @classmethod
    def _launch_once(
        cls, bin_dir: Path, work_dir: Path | str | None, *, timeout: float, detach: bool, node: bool = False
    ) -> ControlPlane:
        owns_work_dir = work_dir is None
        if owns_work_dir:
            _sweep_abandoned_work_dirs()
            work = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
            (work / OWNER_FILE).write_text(f"{os.getpid()}\n")
        else:
            work = Path(work_dir)
        work = work.resolve()
        for stale in ("etcd-data", "pki"):
            shutil.rmtree(work / stale, ignore_errors=True)
        (work / "pki").mkdir(parents=True, mode=0o700)
        if not detach:
            _install_signal_handlers()

        etcd_client_port, etcd_peer_port, apiserver_port = free_ports(3)
        etcd_url = f"http://127.0.0.1:{etcd_client_port}"
        server = f"https://127.0.0.1:{apiserver_port}"
        control_plane = cls(
            work_dir=work,
            bin_dir=bin_dir,
            server=server,
            etcd_url=etcd_url,
            kubeconfig=work / "kubeconfig",
            processes=[],
            owns_work_dir=owns_work_dir,
            detached=detach,
        )
        _RUNNING.add(control_plane)
        try:
            etcd = _Proc.spawn(
                bin_dir / "etcd",
                etcd_args(work / "etcd-data", etcd_client_port, etcd_peer_port),
                work / "etcd.log",
                detach=detach,
            )
            control_plane.processes.append(etcd)
            control_plane._write_pki(generate_pki(), node=node)  # overlaps with etcd starting up
            _wait_until(lambda: _http_ok(f"{etcd_url}/health"), [etcd], "etcd /health", timeout)

            apiserver = _Proc.spawn(
                bin_dir / "kube-apiserver",
                apiserver_args(work / "pki", etcd_url, apiserver_port, node=node),
                work / "kube-apiserver.log",
                detach=detach,
            )
            control_plane.processes.append(apiserver)
            _wait_until(control_plane.is_ready, [etcd, apiserver], "kube-apiserver /readyz", timeout)
            control_plane._allow_anonymous_discovery()
        except BaseException:
            control_plane.stop()
            raise
        return control_plane

    def _write_pki(self, pki: Pki, *, node: bool = False) -> None:
        node_files = {
            "ca.key": pki.ca_key,
            "kubelet-client.crt": pki.kubelet_client_cert,
            "kubelet-client.key": pki.kubelet_client_key,
        }
        files = {
            **(node_files if node else {}),
            "ca.crt": pki.ca_cert,
            "serving.crt": pki.serving_cert,
            "serving.key": pki.serving_key,
            "admin.crt": pki.admin_cert,
            "admin.key": pki.admin_key,
            "sa.key": pki.service_account_key,
            "sa.pub": pki.service_account_pub,
        }
        for name, data in files.items():
            path = self.pki_dir / name
            path.write_bytes(data)
            path.chmod(0o600)
        self.kubeconfig.write_text(render_kubeconfig(self.server, pki))
        self.kubeconfig.chmod(0o600)

    @property
    def service_account_issuer(self) -> str:
        """The `iss` of this cluster's service-account tokens (discovery and JWKS are served there)."""
        return self.server

    def _allow_anonymous_discovery(self) -> None:
        status, body = _https_post_json(
            f"{self.server}/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            ANONYMOUS_DISCOVERY_BINDING,
            self.pki_dir,
        )
        if status not in (201, 409):
            raise ControlPlaneError(
                f"creating the issuer-discovery ClusterRoleBinding: HTTP {status}: {body}"
            )

    def readyz(self) -> tuple[int, str]:
        """(HTTP status, body) of GET /readyz as the admin user."""
        return _https_get(f"{self.server}/readyz", self.pki_dir)

    def is_ready(self) -> bool:
        try:
            return self.readyz()[0] == 200
        except (OSError, ssl.SSLError, urllib.error.URLError):
            return False

    def stop(self, grace: float = 10.0) -> None:
        """Stop kube-apiserver, then etcd; idempotent. Removes the work dir if we created it."""
        if self.stopped:
            return
        self.stopped = True
        for proc in reversed(self.processes):
            proc.stop(grace)
        _RUNNING.discard(self)
        if self.owns_work_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def state(self) -> dict[str, object]:
        """What `status`/`down` need to find this control plane again from another process."""
        return {
            "server": self.server,
            "etcd": self.etcd_url,
            "kubeconfig": str(self.kubeconfig),
            "service_account_issuer": self.service_account_issuer,
            "bin_dir": str(self.bin_dir),
            "pids": self.pids,
            "versions": pinned_versions(),
        }


def _sweep_abandoned_work_dirs() -> None:
    """Remove temporary work dirs whose owning process died without cleanup (e.g. SIGKILL).

    Their etcd/kube-apiserver died with the owner (parent-death signal); only files remain.
    """
    for candidate in Path(tempfile.gettempdir()).glob(f"{TEMP_PREFIX}*"):
        try:
            owner = int((candidate / OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue
        if not pid_alive(owner):
            shutil.rmtree(candidate, ignore_errors=True)


def _stop_all_running() -> None:
    for control_plane in list(_RUNNING):
        if not control_plane.detached:
            control_plane.stop(grace=5.0)


atexit.register(_stop_all_running)
_signals_installed = False


def _install_signal_handlers() -> None:
    """Turn SIGTERM/SIGHUP into SystemExit so `finally` blocks and atexit run and stop the processes.

    SIGINT already raises KeyboardInterrupt. Only default handlers are replaced, and only from the
    main thread (Python's rule), so a host application's own handlers win.
    """
    global _signals_installed
    if _signals_installed or threading.current_thread() is not threading.main_thread():
        return
    _signals_installed = True

    def exit_on_signal(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is signal.SIG_DFL:
            signal.signal(sig, exit_on_signal)


# --------------------------------------------------------------------------------------------------
# Background daemon (`up` / `down` / `status`)
# --------------------------------------------------------------------------------------------------


def _read_state(directory: Path) -> dict[str, object] | None:
    try:
        return json.loads((directory / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None


def _state_healthy(directory: Path, state: dict[str, object]) -> bool:
    pids: dict[str, int] = state.get("pids", {})  # type: ignore[assignment]
    if set(pids) != {"etcd", "kube-apiserver"} or not all(_pid_runs(pid, name) for name, pid in pids.items()):
        return False
    try:
        return _https_get(f"{state['server']}/readyz", directory / "pki")[0] == 200
    except (OSError, ssl.SSLError, urllib.error.URLError):
        return False


def down(directory: Path) -> bool:
    """Stop a background control plane started by `up`; True if something was running."""
    state = _read_state(directory)
    stopped = False
    for name in ("kube-apiserver", "etcd"):
        pid = (state or {}).get("pids", {}).get(name)  # type: ignore[union-attr]
        pid_file = directory / f"{name}.pid"
        if pid is None and pid_file.exists():
            with contextlib.suppress(ValueError):
                pid = int(pid_file.read_text())
        if pid is not None and _pid_runs(pid, name):
            terminate_group(pid)
            stopped = True
        pid_file.unlink(missing_ok=True)
    (directory / STATE_FILE).unlink(missing_ok=True)
    return stopped


def up(
    directory: Path, bin_dir: Path | None = None, timeout: float = 90.0, *, node: bool = False
) -> tuple[dict[str, object], bool]:
    """Ensure a healthy background control plane in `directory`; (state, started_now).

    `node`: ready for a kubelet to join (CA key kept, Node authorizer; hack/node/node.py).
    """
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    state = _read_state(directory)
    if state is not None and bool(state.get("node")) == node and _state_healthy(directory, state):
        return state, False
    down(directory)  # half-dead leftovers from a crash or reboot, or the other mode
    control_plane = ControlPlane.launch(bin_dir, directory, timeout=timeout, detach=True, node=node)
    try:
        state = {**control_plane.state(), "node": node}
        for name, pid in control_plane.pids.items():
            (directory / f"{name}.pid").write_text(f"{pid}\n")
        (directory / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")
    except BaseException:
        control_plane.stop()
        raise
    return state, True


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: up | down | status."""
    parser = argparse.ArgumentParser(prog="azure-edition-controlplane", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--dir", type=Path, default=Path(".cluster"), help="state dir (default .cluster)")
    parser.add_argument("--bin-dir", type=Path, default=None, help="dir with etcd, kube-apiserver, kubectl")
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for /readyz")
    parser.add_argument("--node", action="store_true", help="ready for a kubelet to join (hack/node)")
    args = parser.parse_args(argv)
    directory: Path = args.dir.resolve()

    if args.command == "up":
        started = time.monotonic()
        try:
            state, fresh = up(directory, args.bin_dir, args.timeout, node=args.node)
        except ControlPlaneError as error:
            print(f"control plane failed to start: {error}", file=sys.stderr)
            return 1
        verb = f"started in {time.monotonic() - started:.1f}s" if fresh else "already running"
        print(f"control plane {verb}: {state['server']}")
        print(f"export KUBECONFIG={state['kubeconfig']}")
        return 0
    if args.command == "down":
        print("control plane stopped" if down(directory) else "control plane was not running")
        return 0
    state = _read_state(directory)
    if state is not None and _state_healthy(directory, state):
        print(json.dumps({"healthy": True, **state}, indent=2))
        return 0
    print(json.dumps({"healthy": False, "dir": str(directory)}, indent=2))
    return 1


if __name__ == "__main__":
    raise SystemExit(main())

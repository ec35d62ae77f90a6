"""The cluster tests/node runs against: the one-node cluster (`make e2e-node`) or any kubeconfig.

Three things differ between clusters, and only these; the tests ask the target for them:
  * how an image built here gets onto the node (no registry: the suite loads each image itself);
  * how the test process reaches a port a pod listens on (health, metrics, the simulator);
  * where hostNetwork pods reach the API server, if not at the in-cluster Service.

`OneNodeTarget` discovers the one-node cluster from its state (`<NODE_DIR>/node.json`), imports images
with containerd's `ctr` on the node's socket, and reaches pods directly: with hostNetwork their
loopback listeners are this machine's. `KubeconfigTarget` knows only a kubeconfig and what the
caller names (environment, see `from_env`): the command that loads an image archive (for kind:
`kind load image-archive {archive}`) and whether hostNetwork pods must be pointed at the kubeconfig's
API server address. It reaches pods through `kubectl port-forward`, which works on every cluster.
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OVERLAY = REPO / "deploy" / "overlays" / "node-e2e"
PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs"]

# What `make e2e-kind` (or anyone) sets to run the suite against a kubeconfig of their own.
ENV_KUBECONFIG = "AZURE_EDITION_E2E_KUBECONFIG"
ENV_LOAD = "AZURE_EDITION_E2E_LOAD"
ENV_OVERLAY = "AZURE_EDITION_E2E_OVERLAY"
ENV_POD_APISERVER = "AZURE_EDITION_E2E_POD_APISERVER"

_FORWARDING = re.compile(r"^Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)$")


def forwarded_port(line: str) -> int | None:
    """The local port in a line `kubectl port-forward` prints once it listens, else None."""
    match = _FORWARDING.match(line.strip())
    return int(match.group(1)) if match else None


def load_command(template: str, archive: Path) -> list[str]:
    """The caller's image-load command with `{archive}` replaced by the image archive's path."""
    if "{archive}" not in template:
        raise ValueError(f"{ENV_LOAD} must name the archive as {{archive}}: {template!r}")
    return [part.replace("{archive}", str(archive)) for part in shlex.split(template)]


def server_address(server: str) -> tuple[str, int]:
    """(host, port) of a kubeconfig's `server` URL (https://127.0.0.1:6443 -> ("127.0.0.1", 6443))."""
    url = urlsplit(server)
    if not url.hostname:
        raise ValueError(f"not an API server URL: {server!r}")
    return url.hostname, url.port or 443


class Target:
    """kubectl against the cluster, and the three cluster-specific answers (see the module)."""

    name = "cluster"

    def __init__(self, kubeconfig: str, kubectl_bin: str, overlay: Path, workdir: Path) -> None:
        self.kubeconfig = kubeconfig
        self.kubectl_bin = kubectl_bin
        self.overlay = overlay
        self.workdir = workdir

    def kubectl(self, *args: str, check: bool = True, input: str | None = None, timeout: float = 120):
        result = subprocess.run(
            [self.kubectl_bin, "--kubeconfig", self.kubeconfig, *args],
            capture_output=True, text=True, input=input, timeout=timeout,
        )  # fmt: skip
        if check and result.returncode:
            raise AssertionError(f"kubectl {' '.join(args)}: {result.stderr}")
        return result

    def json(self, *args: str) -> dict:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def server(self) -> str:
        """The API server URL this kubeconfig's current context uses."""
        return self.kubectl(
            "config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}"
        ).stdout

    def load_images(self, images: tuple[str, ...]) -> None:
        raise NotImplementedError

    def pod_apiserver(self) -> tuple[str, int] | None:
        """Where the pods must be told the API server is (KUBERNETES_SERVICE_HOST/_PORT), or None
        when the in-cluster Service works (kubelet injects it)."""
        raise NotImplementedError

    @contextlib.contextmanager
    def reach(self, namespace: str, resource: str, port: int) -> Iterator[str]:
        """A `host:port` this process can connect to that reaches `port` of the pod `resource`
        (pod/<name> or deployment/<name>) while the context lasts."""
        raise NotImplementedError
        yield ""  # pragma: no cover


class OneNodeTarget(Target):
    """`make node-up`'s cluster, found from its state file; hostNetwork pods on this machine."""

    name = "one-node"

    def __init__(self, node_dir: Path, overlay: Path) -> None:
        try:
            self.state = json.loads((node_dir / "node.json").read_text())
        except OSError as error:
            raise LookupError(
                f"no one-node cluster in {node_dir}: run `make node-up` (or `make e2e-node`)"
            ) from error
        super().__init__(self.state["kubeconfig"], self.state["kubectl"], overlay, node_dir / "e2e")
        self._server = json.loads((node_dir / "cluster" / "state.json").read_text())["server"]

    def server(self) -> str:
        return self._server

    def load_images(self, images: tuple[str, ...]) -> None:
        # The images reach containerd as they would from a registry pull: whole, by content.
        ctr = [
            str(Path(self.state["containerd_dir"]) / "ctr"),
            "--address", self.state["containerd_socket"], "--namespace", "k8s.io",
        ]  # fmt: skip
        for image in images:
            with subprocess.Popen([*PODMAN, "save", "--format", "docker-archive", image],
                                  stdout=subprocess.PIPE) as save:  # fmt: skip
                subprocess.run(
                    [*ctr, "images", "import", "-"], stdin=save.stdout, capture_output=True, check=True
                )
            assert save.returncode == 0, f"podman save {image} failed"

    def pod_apiserver(self) -> tuple[str, int]:
        # No Service network on this node: hostNetwork pods use the API server's loopback address.
        return server_address(self._server)

    @contextlib.contextmanager
    def reach(self, namespace: str, resource: str, port: int) -> Iterator[str]:
        # hostNetwork: the overlay's loopback listeners are this machine's own.
        yield f"127.0.0.1:{port}"


class KubeconfigTarget(Target):
    """Any cluster, known only by its kubeconfig and the caller's load command."""

    name = "kubeconfig"

    def __init__(
        self,
        kubeconfig: str,
        kubectl_bin: str,
        overlay: Path,
        workdir: Path,
        load: str,
        pods_use_server: bool,
    ) -> None:
        super().__init__(kubeconfig, kubectl_bin, overlay, workdir)
        load_command(load, Path("x"))  # refuse a template without {archive} before anything runs
        self.load = load
        self.pods_use_server = pods_use_server

    def load_images(self, images: tuple[str, ...]) -> None:
        with tempfile.TemporaryDirectory(prefix="aeo-e2e-images-") as tmp:
            for image in images:
                archive = Path(tmp) / "image.tar"
                subprocess.run([*PODMAN, "save", "--quiet", "--format", "docker-archive", "-o", str(archive), image],
                               check=True)  # fmt: skip
                result = subprocess.run(load_command(self.load, archive), capture_output=True, text=True)
                assert result.returncode == 0, f"loading {image} ({self.load}): {result.stderr}"
                archive.unlink()

    def pod_apiserver(self) -> tuple[str, int] | None:
        return server_address(self.server()) if self.pods_use_server else None

    @contextlib.contextmanager
    def reach(self, namespace: str, resource: str, port: int) -> Iterator[str]:
        proc = subprocess.Popen(
            [self.kubectl_bin, "--kubeconfig", self.kubeconfig, "-n", namespace, "port-forward",
             "--address", "127.0.0.1", resource, f":{port}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        try:
            local = None
            for line in proc.stdout:  # the first line says where it listens (or it exits: EOF)
                local = forwarded_port(line)
                if local:
                    break
            if not local:
                raise AssertionError(f"kubectl port-forward {resource} :{port} failed: {proc.stderr.read()}")
            yield f"127.0.0.1:{local}"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def from_env(environ: dict[str, str], node_dir: Path, tmp: Path) -> Target:
    """The target the environment names: a kubeconfig (AZURE_EDITION_E2E_KUBECONFIG, with its load
    command in AZURE_EDITION_E2E_LOAD), else the one-node cluster in node_dir. The overlay is
    AZURE_EDITION_E2E_OVERLAY (default deploy/overlays/node-e2e) either way."""
    overlay = Path(environ.get(ENV_OVERLAY) or DEFAULT_OVERLAY)
    overlay = (overlay if overlay.is_absolute() else REPO / overlay).resolve()
    kubeconfig = environ.get(ENV_KUBECONFIG)
    if not kubeconfig:
        return OneNodeTarget(node_dir, overlay)
    load = environ.get(ENV_LOAD)
    if not load:
        raise LookupError(f"{ENV_KUBECONFIG} is set but {ENV_LOAD} is not: name the command that loads an image "
                          f"archive onto the cluster's nodes, e.g. 'bin/kind load image-archive {{archive}}'")  # fmt: skip
    pods_use_server = environ.get(ENV_POD_APISERVER, "service")
    if pods_use_server not in ("service", "kubeconfig"):
        raise LookupError(
            f"{ENV_POD_APISERVER} is 'service' (default) or 'kubeconfig', not {pods_use_server!r}"
        )
    kubectl = environ.get("KUBECTL") or str(REPO / "bin" / "kubectl")
    return KubeconfigTarget(
        str(Path(kubeconfig).resolve()), kubectl, overlay, tmp, load, pods_use_server == "kubeconfig"
    )

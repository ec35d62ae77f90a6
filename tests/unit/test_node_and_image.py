"""Pure parts of the one-node cluster (hack/node/node.py), the image locks (hack/image/lock.py) and the
e2e-node helpers (tests/node/support.py). The real thing runs in `make e2e-node`."""

from __future__ import annotations

import importlib.util
import sys
import tomllib
from pathlib import Path

import yaml

from tests.conftest import REPO
from tests.node.support import scrape_config, wrapper_kustomization


def load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


node = load(REPO / "hack" / "node" / "node.py", "hack_node")
lock = load(REPO / "hack" / "image" / "lock.py", "hack_image_lock")


def test_mounts_under_lists_only_our_mounts_deepest_first():
    mountinfo = "\n".join(
        f"{i} 1 0:1 / {point} rw - tmpfs tmpfs rw"
        for i, point in enumerate(
            ["/", "/work/.node", "/work/.node/kubelet/pods/x/volumes/tok", "/work/.node2/y", "/run/n/a\\040b"]
        )
    )
    got = node.mounts_under([Path("/work/.node"), Path("/run/n")], mountinfo)
    assert got == ["/work/.node/kubelet/pods/x/volumes/tok", "/run/n/a b", "/work/.node"]


def test_containerd_config_has_what_this_machine_needs():
    text = node.containerd_config(Path("/r"), Path("/s"), Path("/c"), "localhost/pause:1")
    config = tomllib.loads(text)
    runtime = config["plugins"]["io.containerd.cri.v1.runtime"]
    assert runtime["restrict_oom_score_adj"] is True
    options = runtime["containerd"]["runtimes"]["runc"]["options"]
    assert options["SystemdCgroup"] is False and options["Root"] == "/s/runc"
    assert config["plugins"]["io.containerd.cri.v1.images"]["pinned_images"]["sandbox"] == "localhost/pause:1"
    assert config["grpc"]["address"] == "/s/containerd.sock"
    assert config["plugins"]["io.containerd.nri.v1.nri"]["disable"] is True


def test_kubelet_config_serves_on_loopback_with_webhook_auth():
    ports = {"kubelet": 1, "kubelet-healthz": 2}
    config = node.kubelet_config(Path("/p"), Path("/r"), Path("/l"), ports, Path("/s"))
    assert config["address"] == "127.0.0.1" and config["port"] == 1 and config["healthzPort"] == 2
    assert config["failCgroupV1"] is False and config["cgroupDriver"] == "cgroupfs"
    assert config["authentication"]["anonymous"]["enabled"] is False
    assert config["authorization"]["mode"] == "Webhook" and config["readOnlyPort"] == 0


def test_lock_check_finds_a_pin_missing_from_the_lock(tmp_path, monkeypatch):
    assert lock.stale_pins() == [], "requirements/*.lock are up to date with the pyproject pins"
    for name in ("image.lock", "build.lock", "armsim.lock"):
        (tmp_path / name).write_text((REPO / "requirements" / name).read_text())
    text = (tmp_path / "image.lock").read_text()
    (tmp_path / "image.lock").write_text(text.replace("kopf==1.45.2 ", "kopf==1.45.1 "))
    monkeypatch.setattr(lock, "OUT", tmp_path)
    assert lock.stale_pins() == ["kopf==1.45.2"]


def test_every_locked_requirement_has_a_sha256():
    for name in ("image.lock", "build.lock", "armsim.lock"):
        text = (REPO / "requirements" / name).read_text()
        pins = [line for line in text.splitlines() if "==" in line]
        # armsim.lock may be empty: the simulator then needs nothing the operator's image lacks.
        assert (pins or name == "armsim.lock") and all(line.endswith("\\") for line in pins), name
        assert text.count("--hash=sha256:") == len(pins), name


def test_scrape_config_honours_the_service_monitor_labels_setting():
    monitor = yaml.safe_load((REPO / "deploy" / "monitoring" / "servicemonitor.yaml").read_text())
    pod = {
        "metadata": {
            "name": "op-1",
            "namespace": "azure-edition-system",
            "labels": {"app.kubernetes.io/name": "azure-edition-operator"},
        },
        "spec": {"containers": [{"name": "operator"}]},
    }
    job = scrape_config(monitor, pod, address="127.0.0.1:1")
    # The shipped ServiceMonitor keeps the metrics' own namespace label (else: exported_namespace).
    assert job["honor_labels"] is True
    assert job["static_configs"][0]["labels"]["namespace"] == "azure-edition-system"
    monitor["spec"]["endpoints"][0].pop("honorLabels")
    assert scrape_config(monitor, pod, address="127.0.0.1:1")["honor_labels"] is False


def test_scrape_config_follows_the_endpoints_https_and_token(tmp_path):
    """The shipped endpoint is HTTPS with Prometheus' token (the self-signed default is not verified)."""
    monitor = yaml.safe_load((REPO / "deploy" / "monitoring" / "servicemonitor.yaml").read_text())
    pod = {"metadata": {"name": "op-1", "namespace": "azure-edition-system",
                        "labels": {"app.kubernetes.io/name": "azure-edition-operator"}},
           "spec": {"containers": [{"name": "operator"}]}}  # fmt: skip
    job = scrape_config(monitor, pod, address="127.0.0.1:1", token_file=tmp_path / "token")
    assert job["scheme"] == "https" and job["tls_config"] == {"insecure_skip_verify": True}
    assert job["authorization"] == {"type": "Bearer", "credentials_file": str(tmp_path / "token")}
    assert "authorization" not in scrape_config(monitor, pod, address="127.0.0.1:1")


def test_wrapper_kustomization_adds_only_the_per_run_values(tmp_path):
    overlay = REPO / "deploy" / "overlays" / "node-e2e"
    doc = yaml.safe_load(
        wrapper_kustomization(tmp_path, overlay, ("127.0.0.1", 6443), "https://127.0.0.1:6443")
    )
    assert (tmp_path / doc["resources"][0]).resolve() == REPO / "deploy" / "overlays" / "node-e2e"
    assert doc["configMapGenerator"][0]["literals"] == [
        "KUBERNETES_SERVICE_HOST=127.0.0.1",
        "KUBERNETES_SERVICE_PORT=6443",
    ]
    args = [op["value"] for op in yaml.safe_load(doc["patches"][0]["patch"])]
    assert args == [
        "--federated-credential",
        "https://127.0.0.1:6443",
        "system:serviceaccount:azure-edition-system:azure-edition-operator",
    ]

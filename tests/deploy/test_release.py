"""`make release` (hack/release/release.py): its pure decisions, and one whole release made from a
small OCI archive built here (the image build itself is `make image`'s, tested by tests/node) and
signed with an ephemeral cosign key pair, then checked the way a user would: `cosign verify-blob`
against the public key, `sha256sum -c`, install.yaml and the packaged chart naming the image by digest."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import subprocess
import tarfile
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.deploy.support import DEPLOY, REPO, kustomize

_spec = importlib.util.spec_from_file_location("release", REPO / "hack" / "release" / "release.py")
release = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(release)

VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
TOOLS = REPO / "hack" / "release" / "tools.sh"


# -- pure decisions ---------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["0.2.0", "1.0.0-rc.1", "1.2.3+build.5", "10.20.30"])
def test_semantic_versions_are_accepted(version):
    assert release.check_version(version, version) == version


@pytest.mark.parametrize("version", ["v0.2.0", "0.2", "01.2.3", "1.2.3-", "latest", ""])
def test_non_semantic_versions_are_refused(version):
    with pytest.raises(release.ReleaseError, match="not a semantic version"):
        release.check_version(version, version)


def test_a_version_other_than_pyprojects_is_refused_with_where_to_change_it():
    with pytest.raises(release.ReleaseError, match=r'set `version = "9.9.9"` there'):
        release.check_version("9.9.9", "0.2.0")


def test_the_changelog_has_a_section_for_the_current_version():
    """The version in pyproject.toml is always releasable: CHANGELOG.md says what it contains."""
    notes = release.changelog_section((REPO / "CHANGELOG.md").read_text(), VERSION)
    assert notes.startswith(f"## [{VERSION}]") and "### " in notes


def test_changelog_section_stops_at_the_next_version_and_refuses_an_empty_one():
    text = "# Changelog\n\n## [0.3.0] - unreleased\n\n## [0.2.0] - 2027-01-01\n\n### Added\n- x\n\n## [0.1.0]\n- y\n"
    assert release.changelog_section(text, "0.2.0") == "## [0.2.0] - 2027-01-01\n\n### Added\n- x\n"
    with pytest.raises(release.ReleaseError, match=r"no `## \[0.3.0\]` section with content"):
        release.changelog_section(text, "0.3.0")
    with pytest.raises(release.ReleaseError):
        release.changelog_section(text, "0.2")  # a prefix of a heading is not that heading


def test_image_reference_needs_a_lowercase_registry():
    assert release.image_reference("ghcr.io/you/", "1.0.0") == "ghcr.io/you/azure-edition-operator:1.0.0"
    with pytest.raises(release.ReleaseError, match="IMAGE_REGISTRY"):
        release.image_reference("GHCR.io/You", "1.0.0")


def test_chart_values_keep_comments_and_set_only_the_image():
    values = (REPO / "charts" / "azure-edition-operator" / "values.yaml").read_text()
    digest = "sha256:" + "0" * 64
    changed = release.chart_values(values, "r.example/aeo", digest)
    before, after = yaml.safe_load(values), yaml.safe_load(changed)
    assert after["image"] == {**before["image"], "repository": "r.example/aeo", "digest": digest}
    assert {k: v for k, v in after.items() if k != "image"} == {
        k: v for k, v in before.items() if k != "image"
    }
    assert changed.count("\n#") == values.count("\n#")


def test_the_dockerfile_does_not_repeat_the_version():
    """The wheel's file name is globbed: a version bump touches pyproject.toml only."""
    assert VERSION not in (REPO / "Dockerfile").read_text()


def oci_archive(path: Path, tag: str) -> str:
    """A minimal OCI image archive (one empty layer) and its manifest digest."""
    blobs: dict[str, bytes] = {}

    def blob(data: bytes) -> dict:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return {"digest": digest, "size": len(data)}

    layer_tar = io.BytesIO()
    with tarfile.open(fileobj=layer_tar, mode="w"):
        pass
    layer = blob(layer_tar.getvalue())
    config = blob(json.dumps({"architecture": "amd64", "os": "linux",
                              "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}}).encode())  # fmt: skip
    manifest = blob(json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **layer}],
    }).encode())  # fmt: skip
    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", **manifest,
        "annotations": {"org.opencontainers.image.ref.name": tag},
    }]}  # fmt: skip
    with tarfile.open(path, "w") as tar:
        files = {"oci-layout": b'{"imageLayoutVersion": "1.0.0"}', "index.json": json.dumps(index).encode()}
        files |= {f"blobs/sha256/{d.split(':')[1]}": data for d, data in blobs.items()}
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return manifest["digest"]


def test_oci_archive_digest_is_the_manifests(tmp_path):
    archive = tmp_path / "image.oci.tar"
    digest = oci_archive(archive, "1.0.0")
    assert release.oci_archive_digest(archive) == digest
    with tarfile.open(tmp_path / "not-oci.tar", "w"):
        pass
    with pytest.raises(release.ReleaseError, match="not an OCI archive"):
        release.oci_archive_digest(tmp_path / "not-oci.tar")


def test_sha256sums_is_what_sha256sum_checks(tmp_path):
    (tmp_path / "b.txt").write_text("b")
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "SHA256SUMS").write_text(release.sha256sums([tmp_path / "b.txt", tmp_path / "a.txt"]))
    assert (
        subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=tmp_path, capture_output=True).returncode == 0
    )
    (tmp_path / "a.txt").write_text("tampered")
    assert (
        subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=tmp_path, capture_output=True).returncode != 0
    )


# -- one whole release ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tools() -> dict[str, Path]:
    """helm and cosign built from the Go module proxy (cached), kubectl from the control plane."""
    linked = [REPO / "bin" / "helm", REPO / "bin" / "cosign"]  # `make release-tools` links them
    if all(os.access(p, os.X_OK) for p in linked):
        helm, cosign = linked
    else:
        result = subprocess.run([str(TOOLS)], capture_output=True, text=True, timeout=3600)
        assert result.returncode == 0, result.stderr
        helm, cosign = (Path(p) for p in result.stdout.splitlines()[-2:])
    from tests.deploy.support import kubectl_binary

    return {"helm": helm, "cosign": cosign, "kubectl": kubectl_binary()}


@pytest.fixture(scope="module")
def made(tools, tmp_path_factory) -> dict:
    """`make release` with an archive built here and a throwaway key (never a maintainer's)."""
    tmp = tmp_path_factory.mktemp("release")
    env = {**os.environ, "COSIGN_PASSWORD": "ephemeral-test-only"}
    keys = tmp / "keys"
    keys.mkdir()
    subprocess.run(
        [str(tools["cosign"]), "generate-key-pair"], cwd=keys, env=env, check=True, capture_output=True
    )
    source = tmp / "source"
    source.mkdir()
    archive = source / f"azure-edition-operator-{VERSION}.oci.tar"
    digest = oci_archive(archive, VERSION)
    (source / f"azure-edition-operator-{VERSION}.spdx.json").write_text('{"spdxVersion": "SPDX-2.3"}\n')
    dist = tmp / "dist"
    result = subprocess.run(
        [str(REPO / ".venv" / "bin" / "python"), str(REPO / "hack" / "release" / "release.py"),
         "--version", VERSION, "--registry", "registry.example.com/team", "--dist", str(dist),
         "--image-archive", str(archive)],
        env={**env, "COSIGN_KEY": str(keys / "cosign.key")}, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return {"dist": dist, "digest": digest, "keys": keys, "env": env,
            "files": [Path(p) for p in result.stdout.split()]}  # fmt: skip


def test_release_files(made):
    names = sorted(p.name for p in made["dist"].iterdir())
    artifacts = [
        f"azure-edition-operator-{VERSION}.oci.tar",
        f"azure-edition-operator-{VERSION}.spdx.json",
        f"azure-edition-operator-{VERSION}.tgz",
        "install.yaml",
        "RELEASE-NOTES.md",
        "SHA256SUMS",
    ]
    assert names == sorted([*artifacts, *(f"{a}.sigstore.json" for a in artifacts), "cosign.pub"])
    assert (
        subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=made["dist"], capture_output=True).returncode
        == 0
    )


def test_cosign_verify_accepts_every_file_and_refuses_a_changed_one(made, tools, tmp_path):
    """What docs/install.md#verify-a-release tells users to run, with the public key only."""
    cosign, public = str(tools["cosign"]), str(made["dist"] / "cosign.pub")

    def verify(path: Path, bundle: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([cosign, "verify-blob", "--key", public, "--insecure-ignore-tlog=true",
                               "--bundle", str(bundle), str(path)], capture_output=True, text=True)  # fmt: skip

    for path in made["files"]:
        result = verify(path, Path(f"{path}.sigstore.json"))
        assert result.returncode == 0, (path.name, result.stderr)
        assert "Verified OK" in result.stderr
    changed = tmp_path / "install.yaml"
    changed.write_text((made["dist"] / "install.yaml").read_text().replace("replicas: 1", "replicas: 2"))
    assert verify(changed, made["dist"] / "install.yaml.sigstore.json").returncode != 0
    # Another key's signature is refused too.
    other = tmp_path / "other"
    other.mkdir()
    subprocess.run([cosign, "generate-key-pair"], cwd=other, env=made["env"], check=True, capture_output=True)
    result = subprocess.run([cosign, "verify-blob", "--key", str(other / "cosign.pub"), "--insecure-ignore-tlog=true",
                             "--bundle", str(made["dist"] / "SHA256SUMS.sigstore.json"),
                             str(made["dist"] / "SHA256SUMS")], capture_output=True, text=True)  # fmt: skip
    assert result.returncode != 0


def test_install_yaml_is_deploy_base_with_the_image_by_digest(made):
    pinned = f"registry.example.com/team/azure-edition-operator@{made['digest']}"
    objects = [o for o in yaml.safe_load_all((made["dist"] / "install.yaml").read_text()) if o]
    base = kustomize(DEPLOY / "base")
    for obj in base:
        if obj["kind"] == "Deployment":
            obj["spec"]["template"]["spec"]["containers"][0]["image"] = pinned
    assert objects == base
    kinds = {o["kind"] for o in objects}
    assert {"CustomResourceDefinition", "ValidatingAdmissionPolicy", "Deployment"} <= kinds


def test_install_yaml_says_to_set_the_cluster_id_and_install_md_sets_it(made, tmp_path):
    """install.yaml carries AEO_CLUSTER_ID: default and says so in its header; the command in
    docs/install.md#set-the-cluster-id changes exactly that value."""
    text = (made["dist"] / "install.yaml").read_text()
    header = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
    assert "AEO_CLUSTER_ID" in header and "docs/install.md#cluster-id" in header
    copy = tmp_path / "install.yaml"
    copy.write_text(text)
    script = doc_block("### Set the cluster id", "sh")
    subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, check=True)
    config = next(o for o in yaml.safe_load_all(copy.read_text()) if o and o["kind"] == "ConfigMap")
    assert config["data"]["AEO_CLUSTER_ID"] == "prod-weu-1"
    before = [o for o in yaml.safe_load_all(text) if o]
    after = [o for o in yaml.safe_load_all(copy.read_text()) if o]
    changed = [o["kind"] for o, n in zip(before, after, strict=True) if o != n]
    assert changed == ["ConfigMap"]


def test_packaged_chart_names_the_image_by_digest(made, tools):
    chart = made["dist"] / f"azure-edition-operator-{VERSION}.tgz"
    with tarfile.open(chart) as tar:
        meta = yaml.safe_load(tar.extractfile("azure-edition-operator/Chart.yaml"))
    assert (meta["version"], meta["appVersion"]) == (VERSION, VERSION)
    rendered = subprocess.run([str(tools["helm"]), "template", "x", str(chart), "-n", "azure-edition-system"],
                              capture_output=True, text=True, check=True).stdout  # fmt: skip
    deployment = next(o for o in yaml.safe_load_all(rendered) if o and o["kind"] == "Deployment")
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == f"registry.example.com/team/azure-edition-operator@{made['digest']}"


def test_release_notes_are_the_changelog_section(made):
    expected = release.changelog_section((REPO / "CHANGELOG.md").read_text(), VERSION)
    assert (made["dist"] / "RELEASE-NOTES.md").read_text() == expected


def test_release_without_a_key_is_refused(tmp_path):
    result = subprocess.run(
        [str(REPO / ".venv" / "bin" / "python"), str(REPO / "hack" / "release" / "release.py"),
         "--version", VERSION, "--registry", "r.example", "--dist", str(tmp_path)],
        env={k: v for k, v in os.environ.items() if k != "COSIGN_KEY"}, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 1
    assert "COSIGN_KEY is not set" in result.stderr
    assert not list(tmp_path.iterdir()), "nothing is written before the key is known"


def doc_block(heading: str, language: str) -> str:
    """The first ```language block under `heading` in docs/install.md."""
    text = (REPO / "docs" / "install.md").read_text().split(heading + "\n", 1)[1]
    return text.split(f"```{language}\n", 1)[1].split("```", 1)[0]


def test_the_verify_commands_of_install_md_accept_the_release(made, tools):
    """docs/install.md#verify-a-release, run as written (cosign from bin/) in the release directory."""
    script = doc_block("### Verify a release", "sh").replace("cosign ", f"{tools['cosign']} ")
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=made["dist"], capture_output=True,
                            text=True)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Verified OK" in result.stderr and result.stdout.count(": OK") == 5, result.stdout

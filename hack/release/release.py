#!/usr/bin/env python3
"""`make release VERSION=x.y.z`: the files a maintainer uploads for one release, under dist/.

    dist/azure-edition-operator-<v>.oci.tar        the image as an OCI archive, tagged <registry>/azure-edition-operator:<v>
    dist/azure-edition-operator-<v>.spdx.json      its SBOM (hack/image/sbom.py, read from the image itself)
    dist/install.yaml                              CRDs + admission policies + deploy/base, the image by digest
    dist/azure-edition-operator-<v>.tgz            the Helm chart, its values naming the image by digest
    dist/RELEASE-NOTES.md                          this version's CHANGELOG.md section
    dist/SHA256SUMS                                every file above
    dist/<file>.sigstore.json                      a cosign signature bundle for each file above and SHA256SUMS
    dist/cosign.pub                                the public half of the key that signed them

Nothing is pushed: the image archive keeps its digest when copied to a registry as it is
(`skopeo copy oci-archive:... docker://...`, `crane push`), so install.yaml and the chart name
what gets pushed. Signing uses the maintainer's key (COSIGN_KEY: a file, env://, or a KMS URI;
COSIGN_PASSWORD its password), offline: no transparency log, no Fulcio (docs/install.md#verify-a-release).

The version lives in pyproject.toml; VERSION must repeat it (a typo must not ship another version).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "azure-edition-operator"
IMAGE_NAME = "azure-edition-operator"

# semver.org's grammar (MAJOR.MINOR.PATCH[-prerelease][+build]), without a leading "v".
SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


class ReleaseError(Exception):
    """What is wrong and what to do (printed as is)."""


def project_version(pyproject: str) -> str:
    return tomllib.loads(pyproject)["project"]["version"]


def check_version(requested: str, pyproject_version: str) -> str:
    """The release's version: semantic, and the one pyproject.toml names."""
    if not SEMVER.match(requested):
        raise ReleaseError(f"VERSION={requested!r} is not a semantic version (MAJOR.MINOR.PATCH, no 'v')")
    if requested != pyproject_version:
        raise ReleaseError(
            f"VERSION={requested} but pyproject.toml says {pyproject_version}: the version lives in "
            f'pyproject.toml; set `version = "{requested}"` there (and a CHANGELOG.md section), commit, release'
        )
    return requested


def changelog_section(changelog: str, version: str) -> str:
    """The body of `## [<version>] ...` in CHANGELOG.md (Keep a Changelog), up to the next `## `."""
    lines = changelog.splitlines()
    heading = re.compile(rf"^## \[{re.escape(version)}\](\s|$)")
    for start, line in enumerate(lines):
        if heading.match(line):
            end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
            body = "\n".join(lines[start + 1 : end]).strip()
            if not body:
                break
            return f"{line}\n\n{body}\n"
    raise ReleaseError(f"CHANGELOG.md has no `## [{version}]` section with content: write what changed first")


def image_reference(registry: str, version: str) -> str:
    registry = registry.rstrip("/")
    if not registry or registry != registry.lower() or " " in registry:
        raise ReleaseError(f"IMAGE_REGISTRY={registry!r}: a lowercase registry/path such as ghcr.io/you")
    return f"{registry}/{IMAGE_NAME}:{version}"


def oci_archive_digest(archive: Path) -> str:
    """The digest of the (single) image manifest in an OCI archive: what a registry serves it by."""
    with tarfile.open(archive) as tar:
        try:
            member = tar.extractfile("index.json")
        except KeyError:
            member = None
        if member is None:
            raise ReleaseError(f"{archive}: no index.json (not an OCI archive)")
        index = json.load(member)
    manifests = index.get("manifests", [])
    if len(manifests) != 1 or not DIGEST.match(manifests[0].get("digest", "")):
        raise ReleaseError(f"{archive}: expected one image manifest, index.json has {manifests!r}")
    return manifests[0]["digest"]


def release_kustomization(base: str, repository: str, digest: str, *, tag: bool = False) -> str:
    """A kustomization rendering `base` with the operator image pinned to `repository@digest`
    (`tag=True`: `repository:digest`, for a test on a cluster that has the image only by its tag)."""
    return (
        "apiVersion: kustomize.config.k8s.io/v1beta1\n"
        "kind: Kustomization\n"
        f"resources:\n  - {base}\n"
        "images:\n"
        f"  - name: {IMAGE_NAME}\n"
        f"    newName: {repository}\n"
        f"    {'newTag' if tag else 'digest'}: {digest}\n"
    )


def install_header(version: str, image: str) -> str:
    return (
        f"# azure-edition-operator {version}: CRDs, admission policies and the operator (deploy/base).\n"
        f"# Image: {image}\n"
        "# Needs Kubernetes >= 1.30 (docs/install.md#supported-kubernetes-versions).\n"
        "# Set AEO_CLUSTER_ID in the ConfigMap below to this cluster's id first (docs/install.md#cluster-id).\n"
        "#   kubectl apply --server-side -f install.yaml\n"
        "# Then onboard a tenant namespace with its TenantPolicy (docs/install.md#add-a-tenant-namespace).\n"
    )


def chart_values(values: str, repository: str, digest: str) -> str:
    """values.yaml with image.repository and image.digest set (text edits: the comments stay)."""
    repo_line = re.compile(r"^(  repository: ).*$", re.M)
    digest_line = re.compile(r'^(  digest: )"".*$', re.M)
    if len(repo_line.findall(values)) != 1 or len(digest_line.findall(values)) != 1:
        raise ReleaseError(
            "charts/azure-edition-operator/values.yaml: expected one image repository and digest line"
        )
    values = repo_line.sub(lambda m: m.group(1) + repository, values)
    return digest_line.sub(lambda m: m.group(1) + digest, values)


def sha256sums(files: list[Path]) -> str:
    """`sha256sum`'s format, so `sha256sum -c SHA256SUMS` checks a download."""
    return "".join(f"{hashlib.sha256(f.read_bytes()).hexdigest()}  {f.name}\n" for f in sorted(files))


# --------------------------------------------------------------------------------------------------
# The shell: tools run as processes, nothing kept but dist/.
# --------------------------------------------------------------------------------------------------


def run(*args: str | Path, env: dict[str, str] | None = None, capture: bool = False) -> str:
    print("+", " ".join(str(a) for a in args), file=sys.stderr)
    result = subprocess.run([str(a) for a in args], env=env, text=True, capture_output=capture)
    if result.returncode:
        detail = (result.stderr or "") if capture else ""
        raise ReleaseError(f"{Path(str(args[0])).name} failed ({result.returncode}) {detail}".strip())
    return result.stdout if capture else ""


def cosign_sign(cosign: Path, key: str, files: list[Path]) -> None:
    """One signature bundle per file, offline: the key only (no Rekor upload, no Fulcio)."""
    for f in files:
        run(cosign, "sign-blob", "--yes", "--key", key, "--use-signing-config=false", "--tlog-upload=false",
            "--bundle", f"{f}.sigstore.json", f, capture=True)  # fmt: skip
        Path(f"{f}.sigstore.json").chmod(0o644)  # cosign writes 0600; these are for publishing


def cosign_verify(cosign: Path, public_key: Path, files: list[Path]) -> None:
    """What a user runs (docs/install.md#verify-a-release), run here before anything is declared done."""
    for f in files:
        run(cosign, "verify-blob", "--key", public_key, "--insecure-ignore-tlog=true",
            "--bundle", f"{f}.sigstore.json", f, capture=True)  # fmt: skip


def render_install(
    kubectl: Path, work: Path, version: str, repository: str, digest: str, *, tag: bool = False
) -> str:
    """install.yaml's text: deploy/base rendered with the image pinned (see release_kustomization).
    tests/node installs it on the one-node cluster with the image it has loaded (`tag=True`)."""
    pinned = f"{repository}{':' if tag else '@'}{digest}"
    kustomization = work / "install"
    kustomization.mkdir()
    (kustomization / "kustomization.yaml").write_text(
        release_kustomization(
            os.path.relpath(REPO / "deploy" / "base", kustomization), repository, digest, tag=tag
        )
    )
    rendered = run(kubectl, "kustomize", kustomization, capture=True)
    if pinned not in rendered:
        raise ReleaseError(f"install.yaml does not name {pinned}")
    return install_header(version, pinned) + rendered


def release(version: str, registry: str, dist: Path, key: str, image_archive: Path | None) -> list[Path]:
    bin_dir = REPO / "bin"
    version = check_version(version, project_version((REPO / "pyproject.toml").read_text()))
    notes = changelog_section((REPO / "CHANGELOG.md").read_text(), version)
    image = image_reference(registry, version)
    repository = image.rsplit(":", 1)[0]
    if not key:
        raise ReleaseError(
            "COSIGN_KEY is not set: the maintainer's signing key (a cosign.key file, env://VAR or a KMS URI; "
            "`bin/cosign generate-key-pair` makes one, COSIGN_PASSWORD is its password)"
        )
    # dist/ may hold other builds' output (`make image` writes dist/sbom/): clear only its files.
    dist.mkdir(parents=True, exist_ok=True)
    for stale in dist.iterdir():
        if stale.is_file():
            stale.unlink()
    work = dist / ".work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()

    archive = dist / f"{IMAGE_NAME}-{version}.oci.tar"
    sbom = dist / f"{IMAGE_NAME}-{version}.spdx.json"
    if image_archive is None:
        env = {**os.environ, "IMAGE": image, "SBOM_DIR": str(work)}
        run(REPO / "hack" / "image" / "build.sh", env=env)
        (work / f"{IMAGE_NAME}-{version}.spdx.json").rename(sbom)
        podman = ["podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs"]
        run(*podman, "save", "--quiet", "--format", "oci-archive", "-o", archive, image)
    else:  # an archive made earlier from the same commit (and its SBOM next to it)
        shutil.copyfile(image_archive, archive)
        shutil.copyfile(image_archive.with_name(sbom.name), sbom)
    digest = oci_archive_digest(archive)
    pinned = f"{repository}@{digest}"

    install = dist / "install.yaml"
    install.write_text(render_install(bin_dir / "kubectl", work, version, repository, digest))

    chart = work / "chart" / CHART.name
    shutil.copytree(CHART, chart)
    (chart / "values.yaml").write_text(chart_values((CHART / "values.yaml").read_text(), repository, digest))
    run(bin_dir / "helm", "lint", "--strict", chart, capture=True)
    run(bin_dir / "helm", "package", chart, "--version", version, "--app-version", version,
        "--destination", dist, capture=True)  # fmt: skip
    chart_archive = dist / f"{CHART.name}-{version}.tgz"
    if not chart_archive.exists():
        raise ReleaseError(f"helm package wrote no {chart_archive.name}")

    (dist / "RELEASE-NOTES.md").write_text(notes)
    artifacts = [archive, sbom, install, chart_archive, dist / "RELEASE-NOTES.md"]
    sums = dist / "SHA256SUMS"
    sums.write_text(sha256sums(artifacts))
    signed = [*artifacts, sums]
    public_key = dist / "cosign.pub"
    public_key.write_text(run(bin_dir / "cosign", "public-key", "--key", key, capture=True))
    cosign_sign(bin_dir / "cosign", key, signed)
    cosign_verify(bin_dir / "cosign", public_key, signed)
    shutil.rmtree(work)
    print(f"release {version}: {pinned}", file=sys.stderr)
    return signed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", required=True)
    parser.add_argument(
        "--registry", required=True, help="where the image is meant to be pushed (IMAGE_REGISTRY)"
    )
    parser.add_argument("--dist", type=Path, default=REPO / "dist")
    parser.add_argument(
        "--image-archive", type=Path, help="use this OCI archive instead of building the image"
    )
    args = parser.parse_args(argv)
    try:
        files = release(args.version, args.registry, args.dist.resolve(), os.environ.get("COSIGN_KEY", ""),
                        args.image_archive)  # fmt: skip
    except ReleaseError as error:
        print(f"release: {error}", file=sys.stderr)
        return 1
    for f in files:
        print(f)
    return 0


if __name__ == "__main__":
    sys.exit(main())

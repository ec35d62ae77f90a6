#!/usr/bin/env bash
# `make image`: build the operator image (Dockerfile) and write its SBOM.
#
#   BASE_IMAGE   unset: a Debian base made by debootstrap (hack/image/base.sh; no registry needed);
#                `pinned`: the Dockerfile's default (registry image pinned by digest); else any ref.
#   IMAGE        the tag to build (default localhost/azure-edition-operator:<version>)
#   IMAGE_LABEL  an extra label key=value (a new image ID with the same content: rollout tests)
#   SBOM_DIR     where the SPDX document goes (default dist/sbom)
# --armsim: the ARM simulator image instead (hack/image/armsim.Dockerfile; demo and e2e only).
# Prints the image reference on its last line.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
VERSION="$(sed -nE 's/^version = "([^"]+)"/\1/p' "$REPO/pyproject.toml" | head -1)"
ARMSIM=0
[[ "${1:-}" == "--armsim" ]] && ARMSIM=1
if [[ $ARMSIM == 1 ]]; then
  IMAGE="${ARMSIM_IMAGE:-localhost/azure-edition-armsim:$VERSION}"
else
  IMAGE="${IMAGE:-localhost/azure-edition-operator:$VERSION}"
fi
SBOM_DIR="${SBOM_DIR:-$REPO/dist/sbom}"

if command -v podman >/dev/null; then
  # crun refuses this machine's hybrid cgroups; the default ulimits fail with EPERM (hack/node/README.md).
  ENGINE=(podman --runtime runc --cgroup-manager cgroupfs)
  RUN_FLAGS=(--network host --ulimit nofile=20000:20000 --ulimit nproc=4096:4096)
elif command -v docker >/dev/null; then
  ENGINE=(docker)
  RUN_FLAGS=()
else
  echo "image: neither podman nor docker found (make node-tools installs podman)" >&2
  exit 1
fi

build_args=()
case "${BASE_IMAGE:-}" in
  "") build_args+=(--build-arg "BASE_IMAGE=$(PODMAN="${ENGINE[0]}" "$HERE/base.sh" | tail -1)") ;;
  pinned) ;;
  *) build_args+=(--build-arg "BASE_IMAGE=$BASE_IMAGE") ;;
esac
[[ -n "${IMAGE_LABEL:-}" ]] && build_args+=(--label "$IMAGE_LABEL")
# pip inside the build verifies TLS with the host's CA bundle (which knows any local proxy's CA).
ca=/etc/ssl/certs/ca-certificates.crt
[[ -r "$ca" && "${ENGINE[0]}" == podman ]] && build_args+=(--volume "$ca:$ca:ro")

"$HERE/../../hack/image/lock.py" --check || exit 1
start=$SECONDS
if [[ $ARMSIM == 1 ]]; then
  # A context of its own: the repo's .dockerignore keeps the simulator out of the operator's.
  ctx="$(mktemp -d)"
  trap 'rm -rf "$ctx"' EXIT
  cp -r "$REPO/pyproject.toml" "$REPO/README.md" "$REPO/requirements" "$ctx/"
  mkdir "$ctx/operator"
  cp -r "$REPO/operator/pyproject.toml" "$REPO"/operator/azure_edition_* "$ctx/operator/"
  find "$ctx" -name __pycache__ -prune -exec rm -rf {} +
  "${ENGINE[@]}" build "${RUN_FLAGS[@]}" "${build_args[@]}" --tag "$IMAGE" --file "$HERE/armsim.Dockerfile" "$ctx" >&2
  echo "image: built $IMAGE in $((SECONDS - start)) s" >&2
  echo "$IMAGE"
  exit 0
fi
"${ENGINE[@]}" build "${RUN_FLAGS[@]}" "${build_args[@]}" --tag "$IMAGE" --file "$REPO/Dockerfile" "$REPO" >&2
echo "image: built $IMAGE in $((SECONDS - start)) s" >&2

# The SBOM is taken from the image itself (its dpkg database and its Python distributions), so it
# lists what is in it, not what the Dockerfile meant to put there.
mkdir -p "$SBOM_DIR"
image_id="$("${ENGINE[@]}" image inspect --format '{{.Id}}' "$IMAGE")"
sbom="$SBOM_DIR/$(basename "${IMAGE%%:*}")-${IMAGE##*:}.spdx.json"
"${ENGINE[@]}" run --rm -i "${RUN_FLAGS[@]}" --user 10001:10001 --read-only --entrypoint python \
  -e "SBOM_IMAGE=$IMAGE" -e "SBOM_IMAGE_ID=$image_id" "$IMAGE" - <"$HERE/sbom.py" >"$sbom.part"
mv "$sbom.part" "$sbom"
echo "image: SBOM $sbom ($(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["packages"]))' "$sbom") packages)" >&2
echo "$IMAGE"

#!/usr/bin/env bash
# Build kube-apiserver of the lowest supported Kubernetes minor once into a cache outside the repo,
# keyed by its version, and assemble bin/lowest/ (that kube-apiserver, the current etcd and kubectl)
# for AZURE_EDITION_CONTROLPLANE_BIN_DIR. `make controlplane-lowest`; a warm run takes milliseconds.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../../.." && pwd)"
# shellcheck source=versions.env
source "$HERE/versions.env"
CACHE_ROOT="${AZURE_EDITION_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/azure-edition-operator}"
OUT="$CACHE_ROOT/controlplane/lowest-${KUBERNETES_VERSION#v}"
CURRENT="$("$HERE/../build.sh" --print-dir)"

grep -qE "^\s*(require\s+)?k8s\.io/kubernetes ${KUBERNETES_VERSION}( |$)" "$HERE/go.mod" || {
  echo "build.sh: lowest/go.mod does not pin k8s.io/kubernetes ${KUBERNETES_VERSION}" >&2
  exit 1
}

if [[ ! -x "$OUT/kube-apiserver" ]]; then
  command -v go >/dev/null || { echo "build.sh: 'go' not found on PATH" >&2; exit 1; }
  mkdir -p "$OUT"
  STAGE="$(mktemp -d "$OUT/.build.XXXXXX")"
  trap 'rm -rf "$STAGE"' EXIT
  minor="${KUBERNETES_VERSION#v1.}"
  minor="${minor%%.*}"
  flags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=${KUBERNETES_VERSION} -X $pkg.gitMajor=1 -X $pkg.gitMinor=${minor} -X $pkg.gitTreeState=archive"
  done
  start=$SECONDS
  echo "build.sh: building kube-apiserver ${KUBERNETES_VERSION} into $OUT" >&2
  (cd "$HERE" && CGO_ENABLED=0 GOFLAGS="${GOFLAGS:--mod=mod}" go build -trimpath -ldflags "$flags" \
    -o "$STAGE/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver)
  mv -f "$STAGE/kube-apiserver" "$OUT/kube-apiserver"
  echo "build.sh: built in $((SECONDS - start)) s" >&2
fi

[[ -x "$CURRENT/etcd" && -x "$CURRENT/kubectl" ]] || "$HERE/../build.sh" >&2
mkdir -p "$REPO/bin/lowest"
ln -sfn "$OUT/kube-apiserver" "$REPO/bin/lowest/kube-apiserver"
ln -sfn "$CURRENT/etcd" "$REPO/bin/lowest/etcd"
ln -sfn "$CURRENT/kubectl" "$REPO/bin/lowest/kubectl"
echo "$REPO/bin/lowest"

#!/usr/bin/env bash
# Build kube-apiserver, kubectl and etcd once into a cache outside the repo, keyed by their versions,
# then symlink them into <repo>/bin. A warm run only checks that the binaries exist (seconds).
#
# Usage: hack/controlplane/build.sh            build if needed, link into bin/
#        hack/controlplane/build.sh --node     also kubelet, kube-scheduler, kube-controller-manager
#                                              (the one-node cluster, hack/node), same cache and key
#        hack/controlplane/build.sh --print-dir print the cache directory and exit
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
# shellcheck source=versions.env
source "$HERE/versions.env"

CACHE_ROOT="${AZURE_EDITION_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/azure-edition-operator}"
KEY="${KUBERNETES_VERSION#v}-etcd${ETCD_VERSION#v}"
OUT="$CACHE_ROOT/controlplane/$KEY"
BIN="$REPO/bin"
BINARIES=(kube-apiserver kubectl etcd)
NODE_BINARIES=(kubelet kube-scheduler kube-controller-manager)

if [[ "${1:-}" == "--print-dir" ]]; then
  echo "$OUT"
  exit 0
fi

# The cache key comes from versions.env; refuse to file a build of other versions under it.
grep -qE "^\s*(require\s+)?k8s\.io/kubernetes ${KUBERNETES_VERSION}( |$)" "$HERE/kubernetes/go.mod" || {
  echo "build.sh: kubernetes/go.mod does not pin k8s.io/kubernetes ${KUBERNETES_VERSION}; run hack/controlplane/gen-replaces.py --write" >&2
  exit 1
}
grep -qE "^\s*(require\s+)?go\.etcd\.io/etcd/server/v3 ${ETCD_VERSION}( |$)" "$HERE/etcd/go.mod" || {
  echo "build.sh: etcd/go.mod does not pin go.etcd.io/etcd/server/v3 ${ETCD_VERSION}; run: (cd hack/controlplane/etcd && go get go.etcd.io/etcd/server/v3@${ETCD_VERSION} && go mod tidy)" >&2
  exit 1
}

have_all() {
  local name
  for name in "$@"; do
    [[ -x "$OUT/$name" ]] || return 1
  done
}

# Stamp the version the way kubernetes' hack/lib/version.sh does; without it the binaries report
# v0.0.0-master and kubectl warns about version skew. Build date = the release's publication time.
k8s_ldflags() {
  local k8s_minor release_date flags pkg
  k8s_minor="${KUBERNETES_VERSION#v1.}"
  k8s_minor="${k8s_minor%%.*}"
  release_date="$(cd "$HERE/kubernetes" && go list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)"
  flags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=${KUBERNETES_VERSION} -X $pkg.gitMajor=1 -X $pkg.gitMinor=${k8s_minor}"
    flags+=" -X $pkg.gitTreeState=archive -X $pkg.gitCommit= -X $pkg.buildDate=${release_date}"
  done
  echo "$flags"
}

if ! have_all "${BINARIES[@]}"; then
  command -v go >/dev/null || { echo "build.sh: 'go' not found on PATH (need Go >= 1.26)" >&2; exit 1; }
  mkdir -p "$OUT"
  # Build into a private staging dir and rename at the end, so an interrupted build never
  # leaves a half-written binary that a later warm run would trust.
  STAGE="$(mktemp -d "$OUT/.build.XXXXXX")"
  trap 'rm -rf "$STAGE"' EXIT
  export GOFLAGS="${GOFLAGS:--mod=mod}" CGO_ENABLED=0
  start=$SECONDS
  echo "build.sh: building kube-apiserver + kubectl ${KUBERNETES_VERSION} into $OUT (cold build: ~6-30 min on 2 cores)"
  k8s_ldflags="$(k8s_ldflags)"
  (cd "$HERE/kubernetes" && go build -trimpath -ldflags "$k8s_ldflags" -o "$STAGE/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl)
  echo "build.sh: building etcd ${ETCD_VERSION}"
  (cd "$HERE/etcd" && go build -trimpath -ldflags "-s -w" -o "$STAGE/etcd" .)
  for name in "${BINARIES[@]}"; do
    mv -f "$STAGE/$name" "$OUT/$name"
  done
  echo "build.sh: built in $((SECONDS - start)) s"
fi

if [[ "${1:-}" == "--node" ]]; then
  BINARIES+=("${NODE_BINARIES[@]}")
  if ! have_all "${NODE_BINARIES[@]}"; then
    command -v go >/dev/null || { echo "build.sh: 'go' not found on PATH (need Go >= 1.26)" >&2; exit 1; }
    STAGE="$(mktemp -d "$OUT/.build.XXXXXX")"
    trap 'rm -rf "$STAGE"' EXIT
    export GOFLAGS="${GOFLAGS:--mod=mod}" CGO_ENABLED=0
    start=$SECONDS
    echo "build.sh: building kubelet, kube-scheduler, kube-controller-manager ${KUBERNETES_VERSION} into $OUT (cold: ~4 min after kube-apiserver)"
    (cd "$HERE/kubernetes" && go build -trimpath -ldflags "$(k8s_ldflags)" -o "$STAGE/" \
      k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kube-controller-manager)
    for name in "${NODE_BINARIES[@]}"; do
      mv -f "$STAGE/$name" "$OUT/$name"
    done
    echo "build.sh: built in $((SECONDS - start)) s"
  fi
fi

mkdir -p "$BIN"
for name in "${BINARIES[@]}"; do
  ln -sfn "$OUT/$name" "$BIN/$name"
done
echo "build.sh: $BIN -> $OUT (kubernetes ${KUBERNETES_VERSION}, etcd ${ETCD_VERSION})"

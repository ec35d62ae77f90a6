#!/usr/bin/env bash
# Build containerd v2 (containerd, containerd-shim-runc-v2, ctr) and the pause binary once into a cache
# outside the repo keyed by version. A warm run only checks that the binaries exist.
#
# Usage: hack/node/build-containerd.sh   prints the cache directory on its last line
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$HERE/versions.env"
CACHE_ROOT="${AZURE_EDITION_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/azure-edition-operator}"
PAUSE_KEY="$(sha256sum "$HERE/pause/main.go" | cut -c1-12)"
OUT="$CACHE_ROOT/node/containerd-${CONTAINERD_VERSION#v}-pause-$PAUSE_KEY"
BINARIES=(containerd containerd-shim-runc-v2 ctr pause)

grep -qE "^\s*(require\s+)?github\.com/containerd/containerd/v2 ${CONTAINERD_VERSION}( |$)" "$HERE/containerd/go.mod" || {
  echo "build-containerd.sh: containerd/go.mod does not pin containerd ${CONTAINERD_VERSION}" >&2
  exit 1
}

have_all() {
  local name
  for name in "${BINARIES[@]}"; do [[ -x "$OUT/$name" ]] || return 1; done
}

if ! have_all; then
  command -v go >/dev/null || { echo "build-containerd.sh: 'go' not found on PATH" >&2; exit 1; }
  mkdir -p "$OUT"
  STAGE="$(mktemp -d "$OUT/.build.XXXXXX")"
  trap 'rm -rf "$STAGE"' EXIT
  export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:--mod=mod}"
  start=$SECONDS
  echo "build-containerd.sh: building containerd ${CONTAINERD_VERSION} into $OUT (cold: ~1.5 min)" >&2
  pkg=github.com/containerd/containerd/v2
  (cd "$HERE/containerd" && go build -trimpath -tags 'no_btrfs no_devmapper no_zfs urfave_cli_no_docs' \
    -ldflags "-s -w -X $pkg/version.Version=${CONTAINERD_VERSION} -X $pkg/version.Package=$pkg" \
    -o "$STAGE/" "$pkg/cmd/containerd" "$pkg/cmd/containerd-shim-runc-v2" "$pkg/cmd/ctr")
  (cd "$HERE/pause" && go build -trimpath -ldflags "-s -w" -o "$STAGE/pause" .)
  for name in "${BINARIES[@]}"; do mv -f "$STAGE/$name" "$OUT/$name"; done
  echo "build-containerd.sh: built in $((SECONDS - start)) s" >&2
fi
echo "$OUT"

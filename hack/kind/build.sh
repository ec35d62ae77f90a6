#!/usr/bin/env bash
# Build the kind CLI once into a cache outside the repo, keyed by its version, and link it as bin/kind.
# A warm run only checks that the binary exists (milliseconds): tests call this freely.
#
# Usage: hack/kind/build.sh              build if needed, link into bin/, print the binary's path
#        hack/kind/build.sh --print-path print where the binary is (or would be) and exit
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
# shellcheck source=versions.env
source "$HERE/versions.env"
CACHE_ROOT="${AZURE_EDITION_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/azure-edition-operator}"
OUT="$CACHE_ROOT/kind/${KIND_VERSION#v}"

if [[ "${1:-}" == "--print-path" ]]; then
  echo "$OUT/kind"
  exit 0
fi

# The cache key comes from versions.env; refuse to file a build of another version under it.
grep -qE "^\s*(require\s+)?sigs\.k8s\.io/kind ${KIND_VERSION}( |$)" "$HERE/module/go.mod" || {
  echo "build.sh: hack/kind/module/go.mod does not pin sigs.k8s.io/kind ${KIND_VERSION}" >&2
  echo "  run: (cd hack/kind/module && go get sigs.k8s.io/kind@${KIND_VERSION} && go mod tidy)" >&2
  exit 1
}

if [[ ! -x "$OUT/kind" ]]; then
  command -v go >/dev/null || { echo "build.sh: 'go' not found on PATH (need Go >= 1.24)" >&2; exit 1; }
  mkdir -p "$OUT"
  # Build into a private staging dir and rename at the end: an interrupted build leaves nothing
  # that a later warm run would trust.
  STAGE="$(mktemp -d "$OUT/.build.XXXXXX")"
  trap 'rm -rf "$STAGE"' EXIT
  export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:--mod=mod}"
  start=$SECONDS
  echo "build.sh: building kind ${KIND_VERSION} into $OUT (cold: ~1 min)" >&2
  (cd "$HERE/module" && go build -trimpath -ldflags "-s -w" -o "$STAGE/kind" sigs.k8s.io/kind)
  mv -f "$STAGE/kind" "$OUT/kind"
  echo "build.sh: built in $((SECONDS - start)) s" >&2
fi

mkdir -p "$REPO/bin"
ln -sfn "$OUT/kind" "$REPO/bin/kind"
echo "$OUT/kind"

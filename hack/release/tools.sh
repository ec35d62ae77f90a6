#!/usr/bin/env bash
# Build the release tools (helm, cosign) once into a cache outside the repo, keyed by version, and
# link them into bin/. Same pattern as hack/kind/build.sh: a warm run only checks that the binaries
# exist (milliseconds), so tests call this freely.
#
# Usage: hack/release/tools.sh [helm|cosign]  build what is missing (both, or the one named), link
#                                            into bin/, print the binaries' paths (helm first)
#        hack/release/tools.sh --print-path  print where the binaries are (or would be) and exit
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
# shellcheck source=versions.env
source "$HERE/versions.env"
CACHE_ROOT="${AZURE_EDITION_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/azure-edition-operator}"
HELM_OUT="$CACHE_ROOT/helm/${HELM_VERSION#v}"
COSIGN_OUT="$CACHE_ROOT/cosign/${COSIGN_VERSION#v}"

if [[ "${1:-}" == "--print-path" ]]; then
  echo "$HELM_OUT/helm"
  echo "$COSIGN_OUT/cosign"
  exit 0
fi

# The cache key comes from versions.env; refuse to file a build of another version under it.
pinned() {  # <module dir> <module path> <version>
  grep -qE "^\s*(require\s+)?${2//./\\.} ${3}( |$)" "$HERE/$1/go.mod" || {
    echo "tools.sh: hack/release/$1/go.mod does not pin $2 $3" >&2
    echo "  run: (cd hack/release/$1 && go get $2@$3 && go mod tidy)" >&2
    exit 1
  }
}
pinned helm helm.sh/helm/v4 "$HELM_VERSION"
pinned cosign github.com/sigstore/cosign/v3 "$COSIGN_VERSION"

ONLY="${1:-}"
case "$ONLY" in ""|helm|cosign) ;; *) echo "tools.sh: unknown tool '$ONLY' (helm or cosign)" >&2; exit 2 ;; esac

build() {  # <name> <out dir> <module dir> <package> <ldflags>
  local name="$1" out="$2" stage start
  [[ -n "$ONLY" && "$ONLY" != "$name" ]] && return 0
  [[ -x "$out/$name" ]] && return 0
  command -v go >/dev/null || { echo "tools.sh: 'go' not found on PATH (need Go >= 1.26)" >&2; exit 1; }
  mkdir -p "$out"
  # Build into a private staging dir and rename at the end: an interrupted build leaves nothing
  # that a later warm run would trust.
  stage="$(mktemp -d "$out/.build.XXXXXX")"
  start=$SECONDS
  echo "tools.sh: building $name into $out" >&2
  if ! (cd "$HERE/$3" && CGO_ENABLED=0 GOFLAGS="${GOFLAGS:--mod=mod}" \
        go build -trimpath -ldflags "$5" -o "$stage/$name" "$4"); then
    rm -rf "$stage"
    exit 1
  fi
  mv -f "$stage/$name" "$out/$name"
  rm -rf "$stage"
  echo "tools.sh: built $name in $((SECONDS - start)) s" >&2
}

# The version stamps each project's own Makefile sets (`helm version`, `cosign version`).
build helm "$HELM_OUT" helm helm.sh/helm/v4/cmd/helm \
  "-s -w -X helm.sh/helm/v4/internal/version.version=${HELM_VERSION} -X helm.sh/helm/v4/internal/version.gitTreeState=archive"
build cosign "$COSIGN_OUT" cosign github.com/sigstore/cosign/v3/cmd/cosign \
  "-s -w -buildid= -X sigs.k8s.io/release-utils/version.gitVersion=${COSIGN_VERSION} -X sigs.k8s.io/release-utils/version.gitTreeState=archive"

mkdir -p "$REPO/bin"
for path in "$HELM_OUT/helm" "$COSIGN_OUT/cosign"; do
  name="$(basename "$path")"
  [[ -n "$ONLY" && "$ONLY" != "$name" ]] && continue
  ln -sfn "$path" "$REPO/bin/$name"
  echo "$path"
done

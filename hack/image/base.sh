#!/usr/bin/env bash
# Make the operator image's base from Debian's packages (for machines with no container registry):
# debootstrap a minimal Debian with python3, python3-venv and ca-certificates, cache the tarball
# outside the repo keyed by suite and package list, and import it into podman once.
#
# Usage: hack/image/base.sh   prints the image reference on its last line
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../node/versions.env
source "$HERE/../node/versions.env"
CACHE_ROOT="${AZURE_EDITION_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/azure-edition-operator}"
PODMAN="${PODMAN:-podman}"
INCLUDE="python3,python3-venv,ca-certificates"
# The mirror this machine's apt uses for the suite itself, else Debian's CDN.
MIRROR="${DEBIAN_MIRROR:-$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 2>/dev/null | awk -v s="$DEBIAN_SUITE" '$2 == s {print $1; exit}' || true)}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
KEY="$(printf '%s %s' "$DEBIAN_SUITE" "$INCLUDE" | sha256sum | cut -c1-12)"
TARBALL="$CACHE_ROOT/image/debian-${DEBIAN_SUITE}-minbase-$KEY.tar"
IMAGE="localhost/azure-edition-base:${DEBIAN_SUITE}-$KEY"

if ! [[ -s "$TARBALL" ]]; then
  command -v debootstrap >/dev/null || { echo "base.sh: debootstrap missing (make node-tools)" >&2; exit 1; }
  mkdir -p "$(dirname "$TARBALL")"
  root="$(mktemp -d "$CACHE_ROOT/image/.root.XXXXXX")"
  trap 'rm -rf "$root" "$TARBALL.part"' EXIT
  start=$SECONDS
  echo "base.sh: debootstrap $DEBIAN_SUITE from $MIRROR (cold: ~2 min)" >&2
  debootstrap --variant=minbase --include="$INCLUDE" "$DEBIAN_SUITE" "$root" "$MIRROR" >&2
  # No apt lists or package caches in the image: they are large and stale the day after.
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
  tar --numeric-owner -C "$root" -cf "$TARBALL.part" .
  mv "$TARBALL.part" "$TARBALL"
  echo "base.sh: base made in $((SECONDS - start)) s" >&2
fi
if ! "$PODMAN" image inspect "$IMAGE" >/dev/null 2>&1; then  # (podman or docker)
  "$PODMAN" import --quiet "$TARBALL" "$IMAGE" >&2
fi
echo "$IMAGE"

#!/usr/bin/env bash
# `make node-up`: build (once, cached) what the node needs, then start it (hack/node/node.py).
#   kubelet, kube-scheduler, kube-controller-manager: hack/controlplane/build.sh --node
#   containerd v2, its runc shim, ctr and the pause binary: hack/node/build-containerd.sh
#   the pause image (FROM scratch, the pause binary): podman, tagged by the binary's hash
# Usage: hack/node/up.sh <python> <node dir>
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY="$1"
NODE_DIR="$2"
"$HERE/../controlplane/build.sh" --node >&2
containerd_dir="$("$HERE/build-containerd.sh" | tail -1)"
pause_tag="$(sha256sum "$containerd_dir/pause" | cut -c1-12)"
pause_image="localhost/azure-edition-pause:$pause_tag"
if ! podman image exists "$pause_image"; then
  ctx="$(mktemp -d)"
  trap 'rm -rf "$ctx"' EXIT
  cp "$containerd_dir/pause" "$ctx/pause"
  printf 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n' >"$ctx/Containerfile"
  podman --runtime runc --cgroup-manager cgroupfs build --quiet --network host -t "$pause_image" "$ctx" >/dev/null
fi
exec "$PY" "$HERE/node.py" up --dir "$NODE_DIR" --containerd-dir "$containerd_dir" --pause-image "$pause_image"

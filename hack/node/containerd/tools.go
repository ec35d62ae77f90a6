//go:build tools

// Package tools pins containerd v2 as a dependency of this wrapper module, so hack/node/build.sh can
// build its commands (containerd, containerd-shim-runc-v2, ctr) from the Go module proxy.
package tools

import (
	_ "github.com/containerd/containerd/v2/cmd/containerd"
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"
	_ "github.com/containerd/containerd/v2/cmd/ctr"
)

//go:build tools

// Package tools pins kind as a dependency of this wrapper module (go.mod + go.sum), so
// hack/kind/build.sh builds the kind CLI from the Go module proxy at exactly that version.
package tools

import (
	_ "sigs.k8s.io/kind"
)

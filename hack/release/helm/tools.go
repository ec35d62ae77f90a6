//go:build tools

// Package tools pins helm as a dependency of this wrapper module (go.mod + go.sum), so
// hack/release/tools.sh builds the helm CLI from the Go module proxy at exactly that version.
package tools

import (
	_ "helm.sh/helm/v4/cmd/helm"
)

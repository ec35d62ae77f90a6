//go:build tools

// Package tools pins cosign as a dependency of this wrapper module (go.mod + go.sum), so
// hack/release/tools.sh builds the cosign CLI from the Go module proxy at exactly that version.
package tools

import (
	_ "github.com/sigstore/cosign/v3/cmd/cosign"
)

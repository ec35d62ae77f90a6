//go:build tools

// Package tools pins kube-apiserver of the lowest supported minor (build.sh builds it).
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
)

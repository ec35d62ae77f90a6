"""Local control plane (etcd + kube-apiserver) for tests and the demo, in the spirit of envtest."""

"""Kubernetes operator for Windows Server Azure Edition VMs."""

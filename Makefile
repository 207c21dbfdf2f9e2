# Sirene — one task runner for developers and CI (.ci/run calls `make test`).
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV := .local/tools/bin/uv
PY := .venv/bin/python
export PYTHONUNBUFFERED := 1

.PHONY: help install up down status seed test test-unit lint format typecheck schemas schemas-check compose-check k8s k8s-check dashboards dashboards-check config-docs config-docs-check logs clean bench-channels bench-fanout bench-publish

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

install: ## Install uv, the Python workspace, Kafka jars, FerretDB and Redis (cached)
	@deploy/local/install.sh

up: install ## Start Kafka, FerretDB, Redis, every service and the simulators; seed the demo town
	@$(PY) -m sirene.devstack up

down: ## Stop everything `make up` started (by recorded process id)
	@if [ -x $(PY) ]; then $(PY) -m sirene.devstack down; fi

status: ## Show what runs
	@$(PY) -m sirene.devstack status

seed: ## Seed the demo municipality again (idempotent)
	@$(PY) -m sirene.devstack seed

test: install schemas-check compose-check k8s-check dashboards-check config-docs-check lint typecheck ## Unit, integration and end-to-end tests against real servers
	@$(PY) -m pytest

test-unit: install ## Only the tests that need no servers
	@$(PY) -m pytest -m "not integration and not e2e"

lint: ## Ruff (lint and format check)
	@.venv/bin/ruff check .
	@.venv/bin/ruff format --check .

format: ## Apply ruff fixes and formatting
	@.venv/bin/ruff check --fix .
	@.venv/bin/ruff format .

typecheck: ## mypy (strict, pydantic plugin)
	@.venv/bin/mypy

schemas: ## Export JSON Schema of every topic into schemas/json/
	@$(PY) -m sirene.schemas.export schemas/json

schemas-check: ## Fail when schemas/json/ is stale
	@$(PY) -m sirene.schemas.export schemas/json --check

compose-check: ## Validate deploy/compose.yaml with `docker compose config` (builds the plugin if missing)
	@deploy/local/bin/install-compose.sh >/dev/null
	@docker compose -f deploy/compose.yaml config --quiet && echo "deploy/compose.yaml: valid"

k8s: ## Write the Kubernetes manifests in deploy/k8s/ (generated from the service list)
	@$(PY) -m sirene.devstack.k8s

k8s-check: ## Fail when deploy/k8s/ is stale or does not validate against the Kubernetes schema
	@$(PY) -m sirene.devstack.k8s --check

dashboards: ## Write the Grafana dashboards and provisioning in deploy/grafana/ (dashboards as code)
	@$(PY) -m sirene.devstack.dashboards

dashboards-check: ## Fail when deploy/grafana/ is stale
	@$(PY) -m sirene.devstack.dashboards --check

config-docs: ## Write docs/configuration.md from the services' settings classes
	@$(PY) -m sirene.devstack.confdoc

config-docs-check: ## Fail when docs/configuration.md is stale
	@$(PY) -m sirene.devstack.confdoc --check && echo "docs/configuration.md: current"

bench-channels: ## Channel hand-off throughput vs a raw client loop (test stack): N=2000 RUNS=3
	@$(PY) bench/channels.py --n $(or $(N),2000) --runs $(or $(RUNS),3) $(BENCH_ARGS)

bench-fanout: ## Fanout benchmark on the running stack (after `make up`): N=1000000 RUNS=3
	@$(PY) bench/fanout.py --n $(or $(N),1000000) --runs $(or $(RUNS),3) $(BENCH_ARGS)

logs: ## Follow the logs of the local stack
	@tail -n 20 -F .local/logs/*.log

clean: down ## Stop everything and delete local data (keeps downloads and builds)
	@rm -rf .local/kafka/data .local/ferretdb .local/redis .local/run .local/logs

bench-publish: up ## Time from "Senden" (API publish) to the first delivery at the simulator; median of 10 runs → bench/RESULTS.md
	@$(PY) bench/publish.py

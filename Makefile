# Sirene — one task runner for developers and CI (.ci/run calls `make test`).
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV := .local/tools/bin/uv
PY := .venv/bin/python
export PYTHONUNBUFFERED := 1

.PHONY: help install up down status seed test test-unit lint format typecheck schemas schemas-check compose-check logs clean bench-publish

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

test: install schemas-check compose-check lint typecheck ## Unit, integration and end-to-end tests against real servers
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

logs: ## Follow the logs of the local stack
	@tail -n 20 -F .local/logs/*.log

clean: down ## Stop everything and delete local data (keeps downloads and builds)
	@rm -rf .local/kafka/data .local/ferretdb .local/redis .local/run .local/logs

bench-publish: up ## Time from "Senden" (API publish) to the first delivery at the simulator; median of 10 runs → bench/RESULTS.md
	@$(PY) bench/publish.py

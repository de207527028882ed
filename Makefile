# Partsemble sales tracking. On a fresh clone:
#   make run    bootstrap (.venv, deps, PostgreSQL, RabbitMQ), migrate, start all services
#   make test   bootstrap (.venv, deps, PostgreSQL, RabbitMQ, chromium), lint (ruff, mypy), run pytest
#               e.g. make test PYTEST_ARGS="-k fifo -x"
SHELL := /bin/bash
.DEFAULT_GOAL := help

PY := .venv/bin/python
PYTEST_ARGS ?=

# Unbuffered output so honcho/pytest show service logs as they happen.
export PYTHONUNBUFFERED := 1

.PHONY: help run test lint migrate secrets compose-up bootstrap bootstrap-test clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{ printf "  make %-15s %s\n", $$1, $$2 }'

run: bootstrap migrate ## run the whole system (Ctrl-C stops it)
	exec scripts/run.sh

test: bootstrap-test lint ## lint, format and types, then the tests; pass pytest options with PYTEST_ARGS="..."
	$(PY) -m pytest $(PYTEST_ARGS)

lint: bootstrap ## ruff check, ruff format --check and mypy (strict on shared/ and the costing engine)
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

migrate: bootstrap ## create the database if missing, apply migrations (DATABASE_OWNER_URL), set up the service role (DATABASE_URL)
	$(PY) -m shared.migrate

secrets: ## create var/secrets.env (mode 0600) once: app keys, simulator verifier token, compose's database and broker passwords
	@bash scripts/secrets.sh var/secrets.env

compose-up: secrets ## the whole system under Docker Compose (deploy/README.md); COMPOSE_ARGS="--profile cluster" for the cluster
	docker compose --env-file var/secrets.env $(COMPOSE_ARGS) up --build

bootstrap: ## .venv + pinned deps + PostgreSQL/RabbitMQ for DATABASE_URL
	@bash scripts/bootstrap.sh run

bootstrap-test: ## .venv + pinned deps + PostgreSQL/RabbitMQ for TEST_DATABASE_URL + chromium
	@bash scripts/bootstrap.sh test

clean: ## remove .venv and caches (databases are left alone)
	rm -rf .venv .pytest_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

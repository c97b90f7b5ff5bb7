# Tailor — `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash
export RASA_TELEMETRY_ENABLED := false
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: help install run test test-fast lint audit bench clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

install: ## create .venv (Python 3.11) and .venv-rasa (Python 3.10, Rasa 3.6.21) if missing
	@scripts/bootstrap.sh

run: install ## build the demo catalog, index and Rasa model if needed; serve the bot at a local page
	@.venv/bin/tailor run

test: ## run the whole test suite (unit, Rasa dialogue, end-to-end on real servers, browser)
	@scripts/bootstrap.sh --browser
	@mkdir -p test-output
	@.venv/bin/pytest -p no:cacheprovider --junitxml=test-output/junit.xml $(PYTEST_ARGS)
	@.venv/bin/python scripts/audit_deps.py

test-fast: install ## unit tests only (no model loading, no Rasa, no PostgreSQL/Redis/RabbitMQ)
	@.venv/bin/pytest -m "not slow and not rasa and not e2e and not browser and not production" $(PYTEST_ARGS)

lint: install ## ruff and mypy
	@.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy

audit: install ## pip-audit both venvs (PyPI advisories); fails on findings not ignored in .ci/pip-audit-ignore.txt, or if nothing could be audited
	@.venv/bin/python scripts/audit_deps.py --require

bench: install ## benchmarks: turns vs floor (docs/bench/), embedding, index at scale
	@.venv/bin/tailor bench --profile
	@.venv/bin/python scripts/bench_embed.py
	@.venv/bin/python scripts/bench_index.py --sizes 100000 1000000 --hnsw-max 0

clean: ## remove built data (catalog, index, models, logs); keeps the venvs
	rm -rf var test-output bot/data/generated

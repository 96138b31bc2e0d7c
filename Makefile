# Tombola developer commands. Everything runs from the virtualenv in .venv, which
# scripts/bootstrap.sh creates or refreshes (it returns in about a second when nothing changed).
#
#   make run    install, create var/, seed demo data, serve on http://127.0.0.1:8000
#   make test   install, start PostgreSQL, then ruff, mypy, import-linter and pytest
#   make lint   the three linters only
#   make bench  the benchmarks in bench/ at small sizes
#   make openapi  rewrite docs/openapi.json from the routes (a test fails while it is stale)
#   make clean  remove var/ and caches (keeps .venv)

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

# SQLAlchemy URL base of the PostgreSQL server that scripts/pg-setup.sh prepares for the tests.
TOMBOLA_TEST_PG_DSN ?= postgresql+psycopg://tombola_test:tombola_test@127.0.0.1:5432/

.PHONY: help venv init run pg test lint bench clean openapi

help:
	@echo "make run | test | lint | bench | clean | venv | init | pg | openapi"

venv:
	bash scripts/bootstrap.sh

init: venv
	$(BIN)/tombola init

run: export TOMBOLA_HOST := $(HOST)
run: export TOMBOLA_PORT := $(PORT)
run: venv
	$(BIN)/tombola init
	$(BIN)/tombola demo
	$(BIN)/tombola serve --host $(HOST) --port $(PORT)

pg:
	bash scripts/pg-setup.sh

# Each line is its own shell: make stops at the first step that fails, with its exit status.
test: export TOMBOLA_TEST_PG_DSN := $(TOMBOLA_TEST_PG_DSN)
test: venv pg
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest -q -n auto --dist loadfile --durations=15

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# The committed OpenAPI document (deterministic: sorted keys); tests/server/test_openapi.py compares.
openapi: venv
	$(BIN)/python -m server.openapi docs/openapi.json

# Benchmarks read TOMBOLA_BENCH_SIZE (small here) and may write results to bench/out/.
bench: venv
	mkdir -p bench/out
	shopt -s nullglob; \
	for f in bench/*.py; do \
		echo "== $$f"; \
		TOMBOLA_BENCH_SIZE=small $(BIN)/python "$$f"; \
	done

clean:
	rm -rf var/ build/ bench/out/ .pytest_cache/ .mypy_cache/ .ruff_cache/ .hypothesis/ *.egg-info/
	find . -path ./.venv -prune -o -path ./.git -prune -o -type d -name __pycache__ -print0 \
		| xargs -0 rm -rf

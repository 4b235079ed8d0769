# The two commands: `make run` and `make test`. Everything they need is installed here from
# the lock files in requirements/ (versions + hashes) and package-lock.json files.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
UV := $(VENV)/bin/uv
PKGS := -e libs/common -e services/gateway -e services/datalake -e services/workflows \
        -e services/catalogue -e services/zenodo
PYTEST_ARGS ?=

.PHONY: run test lint format lock deps bench clean openapi

run: deps
	$(VENV)/bin/vre up

test: deps
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

deps: $(VENV)/.stamp .venv-rucio/.stamp .venv-reana/.stamp tests/oidc/node_modules/.stamp

$(VENV)/.stamp: requirements/bootstrap.txt requirements/main.txt libs/common/pyproject.toml services/*/pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check --require-hashes --no-deps -r requirements/bootstrap.txt
	$(UV) pip sync -q --compile-bytecode --python $(VENV)/bin/python --require-hashes requirements/main.txt
	$(UV) pip install -q --python $(VENV)/bin/python --no-deps --no-build-isolation $(PKGS)
	touch $@

# Rucio's server caps its dependencies: it lives in its own environment, started as a subprocess.
.venv-rucio/.stamp: requirements/rucio-server.txt $(VENV)/.stamp
	test -x .venv-rucio/bin/python || $(PYTHON) -m venv .venv-rucio
	$(UV) pip sync -q --compile-bytecode --python .venv-rucio/bin/python --require-hashes requirements/rucio-server.txt
	touch $@

# reana-commons pins jsonschema<4: the official reana.yaml validator runs as a worker from here.
.venv-reana/.stamp: requirements/reana-validator.txt $(VENV)/.stamp
	test -x .venv-reana/bin/python || $(PYTHON) -m venv .venv-reana
	$(UV) pip sync -q --compile-bytecode --python .venv-reana/bin/python --require-hashes requirements/reana-validator.txt
	touch $@

tests/oidc/node_modules/.stamp: tests/oidc/package-lock.json
	cd tests/oidc && npm ci --no-audit --no-fund --loglevel=error
	touch $@

lint: $(VENV)/.stamp
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(VENV)/.stamp
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

openapi: $(VENV)/.stamp
	$(VENV)/bin/vre openapi > docs/openapi.json

bench: deps
	@command -v wrk >/dev/null && test -x /usr/sbin/nginx || apt-get install -y -qq wrk nginx
	$(VENV)/bin/python -m bench $(BENCH_ARGS)

lock: $(VENV)/.stamp
	cd requirements && for f in main rucio-server reana-validator bootstrap; do \
	  ../$(UV) pip compile -q $$f.in --generate-hashes --python-version 3.11 -o $$f.txt; done

clean:
	rm -rf $(VENV) .venv-rucio .venv-reana tests/oidc/node_modules

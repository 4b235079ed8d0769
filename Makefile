# The two commands: `make run` and `make test`. Everything they need is installed here from
# the lock files in requirements/ (versions + hashes) and package-lock.json files.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
UV := $(VENV)/bin/uv
PKGS := -e libs/common -e libs/rucio-local -e services/gateway -e services/datalake \
        -e services/workflows -e services/catalogue -e services/zenodo -e services/ivoa \
        -e clients/python
PYTEST_ARGS ?=

.PHONY: run test lint format lock deps system-deps cache-deps bench clean openapi docs web images push-images pin-images

run: deps cache-deps
	$(VENV)/bin/vre up

test: deps system-deps cache-deps .venv-checkov/.stamp
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

deps: $(VENV)/.stamp .venv-rucio/.stamp .venv-reana/.stamp .venv-reana-client/.stamp \
      tests/oidc/node_modules/.stamp .venv-tools/.stamp web/dist/.stamp .venv-eossr/.stamp \
      .venv-hub/.stamp

# memcached beside the development Rucio (vre_rucio_local.cache): Rucio caches RSE lookups
# and token checks there, as in its deployments. Without it Rucio still runs, reading its
# database each time.
cache-deps:
	@tools/ensure-debian-packages memcached "--no-install-recommends memcached" \
	  "Rucio runs without its cache"

# System packages the tests use: podman (+runc) runs workflow steps in containers, debootstrap
# builds their small test image, bubblewrap sandboxes REANA's specification loaders.
# Installed when missing and we may (root); otherwise the tests that need them say why they
# skip or fail.
system-deps:
	@tools/ensure-debian-packages "podman debootstrap kubectl bwrap" \
	  "podman runc debootstrap kubectl bubblewrap" "the container tests will skip"
	@# GAVO DaCHS (a real TAP server for the ivoa tests) with pgSphere and q3c; not the
	@# gavodachs2-server package, which wants a running cluster and system users.
	@tools/ensure-debian-packages dachs \
	  "--no-install-recommends python3-gavo postgresql-15-pgsphere postgresql-15-q3c" \
	  "the ivoa tests will skip"
	@# promtool (Debian's prometheus package) checks and unit-tests the alert rules.
	@tools/ensure-debian-packages promtool "--no-install-recommends prometheus" \
	  "the alert tests will fail"
	@# Debian's Chromium (and fonts for readable screenshots) for the browser tests (Playwright
	@# drives /usr/lib/chromium/chromium; browser downloads are not used).
	@tools/ensure-debian-packages /usr/lib/chromium/chromium \
	  "--no-install-recommends chromium fonts-liberation" "the browser tests will fail"
	@# Slurm (a one-node cluster started by the workflows tests' fixture from a temporary
	@# folder) and Debian's container registry (a loopback registry for the image-pull tests).
	@tools/ensure-debian-packages "slurmctld munged docker-registry" \
	  "slurm-wlm munge docker-registry" "the Slurm and image-pull tests will skip"

$(VENV)/.stamp: requirements/bootstrap.txt requirements/main.txt libs/*/pyproject.toml services/*/pyproject.toml \
                clients/python/pyproject.toml
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

# The official reana-client pins old libraries: its own environment, used only by a test.
.venv-reana-client/.stamp: requirements/reana-client.txt $(VENV)/.stamp
	test -x .venv-reana-client/bin/python || $(PYTHON) -m venv .venv-reana-client
	$(UV) pip sync -q --compile-bytecode --python .venv-reana-client/bin/python --require-hashes requirements/reana-client.txt
	touch $@

# The OSSR's eossr (codemeta validator and codemeta→Zenodo converter) pulls numpy and pandas:
# its own environment, used only by the catalogue's tests and tools as a witness.
.venv-eossr/.stamp: requirements/eossr.txt $(VENV)/.stamp
	test -x .venv-eossr/bin/python || $(PYTHON) -m venv .venv-eossr
	$(UV) pip sync -q --compile-bytecode --python .venv-eossr/bin/python --require-hashes requirements/eossr.txt
	touch $@

# Deployment checks (hadolint, podman-compose, compose-spec, kubernetes-validate): their own
# environment, so syncing main.txt never removes them. tests/deploy uses .venv-tools/bin/*.
.venv-tools/.stamp: requirements/tools.txt $(VENV)/.stamp
	test -x .venv-tools/bin/python || $(PYTHON) -m venv .venv-tools
	$(UV) pip sync -q --compile-bytecode --python .venv-tools/bin/python --require-hashes requirements/tools.txt
	touch $@

# JupyterHub (tests/client/test_jupyterhub.py): the hub, its Python proxy and single-user
# servers, with the client (no dependencies: they are in hub.txt) for the notebooks' kernel.
.venv-hub/.stamp: requirements/hub.txt clients/python/pyproject.toml $(VENV)/.stamp
	test -x .venv-hub/bin/python || $(PYTHON) -m venv .venv-hub
	$(UV) pip sync -q --compile-bytecode --python .venv-hub/bin/python --require-hashes requirements/hub.txt
	$(UV) pip install -q --python .venv-hub/bin/python --no-deps --no-build-isolation -e clients/python
	touch $@

# checkov's general Kubernetes policies (tests/deploy/test_k8s_policies.py): its own environment,
# needed by the tests only.
.venv-checkov/.stamp: requirements/checkov.txt $(VENV)/.stamp
	test -x .venv-checkov/bin/python || $(PYTHON) -m venv .venv-checkov
	$(UV) pip sync -q --compile-bytecode --python .venv-checkov/bin/python --require-hashes requirements/checkov.txt
	touch $@

tests/oidc/node_modules/.stamp: tests/oidc/package-lock.json
	cd tests/oidc && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The dashboard (/app): a TypeScript + Preact app built by Vite from web/package-lock.json; the
# gateway serves web/dist. axe-core (in web/node_modules) is used by the browser tests.
web: web/dist/.stamp

web/dist/.stamp: web/package-lock.json web/package.json web/vite.config.ts web/tsconfig.json \
                 web/index.html $(shell find web/src -type f)
	cd web && npm ci --no-audit --no-fund --loglevel=error && npm run build
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

# Generated documents that tests keep in step: the merged OpenAPI and the configuration reference.
docs: openapi
	$(VENV)/bin/python tools/gen_config_reference.py
	$(VENV)/bin/python tools/gen_prometheus_rule.py   # the PrometheusRule from deploy/monitoring/rules.yml
	$(VENV)/bin/python tools/gen_architecture.py      # the pictures of docs/architecture.md
	$(VENV)/bin/python -m vre_gateway.problem_types   # docs/problems.md: a page per problem type
	@# The client's API reference from its docstrings (pdoc), as static HTML.
	$(VENV)/bin/pdoc --docformat restructuredtext -o build/client-api vre vre.client vre.datalake \
	  vre.workflows vre.services vre.fs vre.config vre.errors vre.hub vre.device vre.cli

bench: deps cache-deps
	@tools/ensure-debian-packages "wrk /usr/sbin/nginx" "wrk nginx" \
	  "the gateway benchmarks against nginx fail"
	$(VENV)/bin/python -m bench $(BENCH_ARGS)

lock: $(VENV)/.stamp
	cd requirements && for f in main rucio-server reana-validator reana-client bootstrap checkov eossr; do \
	  ../$(UV) pip compile -q $$f.in --generate-hashes --python-version 3.11 -o $$f.txt; done
	cd requirements && for f in gateway datalake workflows catalogue zenodo ivoa webdav tools hub; do \
	  ../$(UV) pip compile -q $$f.in --generate-hashes --python-version 3.11 -c main.txt -o $$f.txt; done

clean:
	rm -rf $(VENV) .venv-rucio .venv-reana .venv-reana-client .venv-tools .venv-hub tests/oidc/node_modules
	rm -rf web/node_modules web/dist

# Soak (bench/soak.py): uploads of random sizes through the embedded VRE while its Rucio
# restarts; prints completed / failed cleanly / lost / partial and fails on lost or partial.
# CI can give it a short budget: `make soak SOAK_UPLOADS=60` (or the environment variable).
SOAK_UPLOADS ?= 1000
.PHONY: soak
soak: deps
	$(VENV)/bin/python -m bench.soak --uploads $(SOAK_UPLOADS)

# The images of the distributed mode (deploy/docker/*.Dockerfile), as the CI pipeline
# (.github/workflows/images.yml) builds them: `make images REGISTRY=registry.example.org/vre
# TAG=0.2.0`, then `make push-images … DIGESTS=build/image-digests.json` and
# `make pin-images REGISTRY=… DIGESTS=… SITE=k8s/sites/<site>` to pin a site to those digests.
IMAGE_TOOL ?= podman
REGISTRY ?= localhost/vre
TAG ?= dev
DIGESTS ?= build/image-digests.json
SITE ?= k8s/sites/example
images:
	deploy/bin/vre-images build --tool $(IMAGE_TOOL) --registry $(REGISTRY) --tag $(TAG) $(IMAGE_ARGS)
push-images:
	deploy/bin/vre-images push --tool $(IMAGE_TOOL) --registry $(REGISTRY) --tag $(TAG) --digests $(DIGESTS) $(IMAGE_ARGS)
pin-images:
	deploy/bin/vre-images pin --registry $(REGISTRY) --digests $(DIGESTS) --site $(SITE)

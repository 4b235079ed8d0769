# syntax=docker/dockerfile:1
# The VRE datalake service (Rucio over REST; streams bytes to POSIX and WebDAV storage).
# Build from the repository root:
#   docker build -f deploy/docker/datalake.Dockerfile -t vre-datalake .
# PYTHON_IMAGE: any Debian-based image with python3 3.11 and its venv module.
# Behind a TLS-intercepting proxy, pass its CA bundle: --secret id=ca-bundle,src=FILE.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never
WORKDIR /app
# Dependencies first (a layer that changes only with the lock file): versions and hashes only.
COPY requirements/bootstrap.txt requirements/datalake.txt requirements/
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=secret,id=ca-bundle \
    if [ -s /run/secrets/ca-bundle ]; then \
      export SSL_CERT_FILE=/run/secrets/ca-bundle PIP_CERT=/run/secrets/ca-bundle; \
    fi \
 && python3 -m venv /opt/uv \
 && /opt/uv/bin/pip install --quiet --no-cache-dir --require-hashes --no-deps \
      -r requirements/bootstrap.txt \
 && python3 -m venv /opt/venv \
 && /opt/uv/bin/uv pip sync --quiet --python /opt/venv/bin/python --require-hashes \
      requirements/datalake.txt
# The project's own packages, editable (migrations are found next to each package), no deps.
COPY libs/common/pyproject.toml libs/common/
COPY libs/common/src libs/common/src
COPY services/datalake/pyproject.toml services/datalake/
COPY services/datalake/alembic services/datalake/alembic
COPY services/datalake/src services/datalake/src
COPY deploy/bin/vre-migrate deploy/bin/
# vre-provision-rucio registers storage elements with the RSE helpers of libs/rucio-local
# (httpx only; the development Rucio server in that package is never started here).
COPY libs/rucio-local/pyproject.toml libs/rucio-local/
COPY libs/rucio-local/src libs/rucio-local/src
COPY deploy/bin/vre-provision-rucio deploy/bin/
RUN /opt/uv/bin/uv pip install --quiet --offline --python /opt/venv/bin/python \
      --no-deps --no-build-isolation -e libs/common -e services/datalake -e libs/rucio-local \
 && /opt/venv/bin/python -m compileall -q libs services

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:/app/deploy/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VRE_DATA=/data
RUN groupadd --system --gid 10001 vre \
 && useradd --system --uid 10001 --gid vre --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin vre \
 && install -d -o 10001 -g 10001 /data
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /app /app
WORKDIR /app
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["uvicorn", "--factory", "vre_datalake.main:create_app", "--host", "0.0.0.0", "--port", "8000", \
     "--proxy-headers", "--no-access-log", "--timeout-graceful-shutdown", "20"]

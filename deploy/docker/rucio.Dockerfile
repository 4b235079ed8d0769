# syntax=docker/dockerfile:1
# A Rucio server and its daemons (rucio 41.5.1 from requirements/rucio-server.txt), for
# deployments that have no Rucio yet. One image, three roles (deploy/rucio/vre-rucio):
#   init (schema + root account, one-shot), server (REST API on 8080), daemons.
# Build from the repository root:
#   docker build -f deploy/docker/rucio.Dockerfile -t vre-rucio .
# Behind a TLS-intercepting proxy, pass its CA bundle: --secret id=ca-bundle,src=FILE.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never
WORKDIR /build
COPY requirements/bootstrap.txt requirements/rucio-server.txt requirements/
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=secret,id=ca-bundle \
    if [ -s /run/secrets/ca-bundle ]; then \
      export SSL_CERT_FILE=/run/secrets/ca-bundle PIP_CERT=/run/secrets/ca-bundle; \
    fi \
 && python3 -m venv /opt/uv \
 && /opt/uv/bin/pip install --quiet --no-cache-dir --require-hashes --no-deps \
      -r requirements/bootstrap.txt \
 && python3 -m venv /opt/rucio \
 && /opt/uv/bin/uv pip sync --quiet --python /opt/rucio/bin/python --require-hashes \
      requirements/rucio-server.txt

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/rucio/bin:/opt/vre-rucio:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    RUCIO_HOME=/var/lib/rucio \
    RUCIO_CONFIG=/var/lib/rucio/etc/rucio.cfg
RUN groupadd --system --gid 10001 rucio \
 && useradd --system --uid 10001 --gid rucio --home-dir /var/lib/rucio --no-create-home \
      --shell /usr/sbin/nologin rucio \
 && install -d -o 10001 -g 10001 /var/lib/rucio /data
COPY --from=builder /opt/rucio /opt/rucio
# The schema bootstrap and the daemon pass (with its copying transfer tool) are the ones the
# embedded mode runs: one copy of that code, in libs/rucio-local.
COPY libs/rucio-local/src/vre_rucio_local/scripts/bootstrap_db.py \
     libs/rucio-local/src/vre_rucio_local/scripts/daemon_pass.py \
     /opt/vre-rucio/scripts/
COPY deploy/rucio/vre-rucio /opt/vre-rucio/
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "/opt/vre-rucio/vre-rucio", "healthcheck", "server"]
ENTRYPOINT ["python", "/opt/vre-rucio/vre-rucio"]
CMD ["server"]

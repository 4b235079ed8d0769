# syntax=docker/dockerfile:1
# The WebDAV storage element of docker-compose.yml (WsgiDAV under cheroot, https with a CA
# made at first start). Build from the repository root:
#   docker build -f deploy/docker/webdav.Dockerfile -t vre-webdav .
# Behind a TLS-intercepting proxy, pass its CA bundle: --secret id=ca-bundle,src=FILE.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never
WORKDIR /build
COPY requirements/bootstrap.txt requirements/webdav.txt requirements/
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
      requirements/webdav.txt

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    WEBDAV_ROOT=/data \
    WEBDAV_CERT_DIR=/certs \
    WEBDAV_PORT=8443
RUN groupadd --system --gid 10001 vre \
 && useradd --system --uid 10001 --gid vre --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin vre \
 && install -d -o 10001 -g 10001 /data /certs
COPY --from=builder /opt/venv /opt/venv
COPY deploy/webdav/webdav-server /usr/local/bin/
USER 10001:10001
EXPOSE 8443
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "/usr/local/bin/webdav-server", "healthcheck"]
CMD ["python", "/usr/local/bin/webdav-server"]

# The VRE's single-user notebook image: Jupyter's scientific stack, the VRE client with its
# astropy, pyvo and fsspec extras (`vre`, `vre-token-refresher`), from this repository.
#   docker build -f deploy/jupyterhub/singleuser.Dockerfile -t registry.example.org/vre/singleuser:0.1.0 .
ARG BASE=quay.io/jupyter/scipy-notebook:2026-11-30
FROM ${BASE}

COPY --chown=1000:100 clients/python /opt/vre-client
RUN pip install --no-cache-dir "/opt/vre-client[all]" \
 && vre --help >/dev/null

COPY --chown=1000:100 examples /home/jovyan/examples

USER 1000
WORKDIR /home/jovyan

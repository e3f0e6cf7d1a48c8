# The generia_pipelines code location as an image.
#
# Its default command is the gRPC code server that the webserver and the daemon load
# (deploy/workspace.yaml locally, the Helm chart's user deployment on Kubernetes). The same
# image runs the runs: the K8sRunLauncher starts each run in a pod of this image, and the
# DefaultRunLauncher starts it as a child process of the code server. The webserver and the
# daemon can run from it too (see the README's "Deployment" section).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/dagster/dagster_home

WORKDIR /opt/generia

# dagster-k8s: run pods load the instance, whose run launcher is the K8sRunLauncher.
COPY pyproject.toml README.md ./
COPY generia_pipelines ./generia_pipelines
RUN pip install . "dagster-k8s>=0.29,<0.30" \
    && useradd --create-home --uid 10001 generia \
    && mkdir -p "$DAGSTER_HOME" \
    && chown generia "$DAGSTER_HOME"

# The production instance (PostgreSQL from DAGSTER_PG_*) and workspace; the Helm chart mounts
# its own dagster.yaml over this one.
COPY deploy/dagster.yaml $DAGSTER_HOME/dagster.yaml
COPY deploy/workspace.yaml /opt/generia/workspace.yaml

USER generia
EXPOSE 3030
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s \
    CMD ["dagster", "api", "grpc-health-check", "-p", "3030"]
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "3030", "-m", "generia_pipelines.definitions", "--location-name", "generia_pipelines"]

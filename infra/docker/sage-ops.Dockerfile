# syntax=docker/dockerfile:1
# The sage_ops image: the Dagster code location (gRPC server) by default; the same image runs the
# webserver, the daemon and each run (EcsRunLauncher / DockerRunLauncher) with other commands.
# Build from the repository root: docker build -f infra/docker/sage-ops.Dockerfile -t sage-ops .

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY sage_ops ./sage_ops
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --upgrade pip \
    && /opt/venv/bin/pip install .

FROM python:3.11-slim-bookworm
# PostgreSQL 16 client tools (pg_dump must be at least as new as RDS) and git for the push sensor.
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-common gnupg ca-certificates git \
    && /usr/share/postgresql-common/pgdg/apt.postgresql.org.sh -y \
    && apt-get install -y --no-install-recommends postgresql-client-16 \
    && apt-get purge -y gnupg && apt-get autoremove -y && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/venv /opt/venv
RUN useradd --system --uid 10001 --home-dir /opt/dagster --create-home sage \
    && mkdir -p /opt/dagster/dagster_home /var/lib/sage-ops \
    && chown -R sage /opt/dagster /var/lib/sage-ops
COPY infra/dagster/dagster.yaml /opt/dagster/dagster_home/dagster.yaml
ENV PATH=/opt/venv/bin:$PATH \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    SAGE_OPS_STATE_DIR=/var/lib/sage-ops \
    SAGE_OPS_PG_BIN_DIR=/usr/lib/postgresql/16/bin
USER 10001
WORKDIR /opt/dagster
EXPOSE 4000
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s \
    CMD ["dagster", "api", "grpc-health-check", "-p", "4000"]
CMD ["dagster", "api", "grpc", "-h", "0.0.0.0", "-p", "4000", "-m", "sage_ops.definitions"]

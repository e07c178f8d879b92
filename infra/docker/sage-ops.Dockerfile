# The sage_ops image: the Dagster code location (gRPC server) by default; the same image runs the
# webserver, the daemon and each run (EcsRunLauncher / DockerRunLauncher) with other commands.
#
# Production form (BuildKit or the classic builder), from the repository root:
#   docker build -f infra/docker/sage-ops.Dockerfile -t sage-ops .
# Local form (no Docker Hub; pip inside containers cannot verify TLS): infra/local/build-images.sh
# passes a Debian base made with debootstrap, a context with host-built wheels in wheels/, and
#   --build-arg BASE_IMAGE=sage-local/debian:bookworm --build-arg PG_CLIENT=pgserver
#   --build-arg PIP_INSTALL_ARGS="--no-index --find-links /src"
# The backend's Prisma migrations at build time land in /opt/dagster/migrations (the tasks'
# SAGE_OPS_MIGRATIONS_DIR, for the stand-alone migrate_database): MIGRATIONS names them in the
# context; by default this repository's sample backend, whose schema the backend's matches.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
ARG PIP_INSTALL_ARGS=""
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# python:3.11-slim has Python; a bare Debian base gets bookworm's python3 (3.11 as well).
RUN if ! python3 -m venv --help >/dev/null 2>&1; then \
        apt-get update && apt-get install -y --no-install-recommends python3 python3-venv \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && python3 -m venv /opt/venv
WORKDIR /src
# wheels/ exists only in the local build's context; the pattern lets this line work without it.
# A directory source is copied by content, so the wheels land in /src beside pyproject.toml.
COPY pyproject.toml wheel[s] ./
# The venv holds the dependencies only, installed from pyproject.toml with an empty package: the
# runtime stage copies it (hundreds of MB) in a layer that a code-only change leaves cached.
RUN mkdir sage_ops && touch sage_ops/__init__.py README.md \
    && /opt/venv/bin/pip install ${PIP_INSTALL_ARGS} . \
    && /opt/venv/bin/pip uninstall -y sage-ops \
    && rm -rf sage_ops README.md build *.egg-info
COPY README.md ./
COPY sage_ops ./sage_ops
RUN /opt/venv/bin/pip wheel ${PIP_INSTALL_ARGS} --no-deps -w /dist .

FROM ${BASE_IMAGE}
# How the PostgreSQL 16 client arrives (pg_dump must be at least as new as the server):
#   pgdg      PostgreSQL's apt repository (production),
#   pgserver  the PostgreSQL 16 binaries of the pgserver wheel, already in the venv (local: no
#             apt.postgresql.org). Either way they are found in /usr/lib/postgresql/16/bin.
ARG PG_CLIENT=pgdg
# git for the push sensor; python3 when the base is bare Debian.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates git \
    && if ! command -v python3 >/dev/null; then apt-get install -y --no-install-recommends python3; fi \
    && if [ "$PG_CLIENT" = pgdg ]; then \
        apt-get install -y --no-install-recommends postgresql-common gnupg \
        && /usr/share/postgresql-common/pgdg/apt.postgresql.org.sh -y \
        && apt-get install -y --no-install-recommends postgresql-client-16 \
        && apt-get purge -y gnupg && apt-get autoremove -y; \
    fi \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
COPY --from=build /opt/venv /opt/venv
RUN if [ "$PG_CLIENT" = pgserver ]; then \
        mkdir -p /usr/lib/postgresql/16/bin \
        && ln -s /opt/venv/lib/python3.11/site-packages/pgserver/pginstall/bin/* \
            /usr/lib/postgresql/16/bin/; \
    fi \
    && /usr/lib/postgresql/16/bin/pg_dump --version | grep -q ' 16\.' \
    && useradd --system --uid 10001 --home-dir /opt/dagster --create-home sage \
    && mkdir -p /opt/dagster/dagster_home /var/lib/sage-ops/backups \
    && chown -R sage /opt/dagster /var/lib/sage-ops
# sage_ops itself last: a code change rebuilds only these small layers.
COPY --from=build /dist /tmp/dist
RUN /opt/venv/bin/pip install --no-cache-dir --no-index --no-deps /tmp/dist/*.whl \
    && rm -rf /tmp/dist
COPY infra/dagster/dagster.yaml /opt/dagster/dagster_home/dagster.yaml
ARG MIGRATIONS=infra/sample-backend/prisma/migrations
COPY ${MIGRATIONS} /opt/dagster/migrations
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

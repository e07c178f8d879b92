#!/usr/bin/env bash
# The compose stack on this machine, with the images build-images.sh makes and the sample backend
# and frontend stand-in as the apps:
#   bash infra/local/stack.sh up      # build (cached), start, wait until every service is
#                                     # healthy, load the sample data (once)
#   bash infra/local/stack.sh up --no-build   # the same with the images as they are
#   bash infra/local/stack.sh down    # stop; volumes (Dagster history, backups) are kept
#   bash infra/local/stack.sh ps | logs [SERVICE] | compose ARGS...
# The Dagster UI: http://127.0.0.1:3300, through the sage_ops gate as dev@localhost (an admin).
# Settings live in an env file made once (.state/local-stack/stack.env): a generated password
# (kept per machine and project, see password()), the apps' directories and the host ports, which default to the compose file's (backend 3000,
# frontend 5173, Dagster UI 3300) except PostgreSQL and the registry, whose usual ports the
# machine's own PostgreSQL and infra/local/services.sh already hold. Override any of them with
# the environment, e.g. SAGE_STACK_PROJECT=sage-ci BACKEND_PORT=13000 bash infra/local/stack.sh up.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PROJECT="${SAGE_STACK_PROJECT:-sage}"
STATE="${SAGE_STACK_STATE:-$ROOT/.state/local-stack}"
ENV_FILE="$STATE/stack.env"
HEALTH_TIMEOUT_S="${HEALTH_TIMEOUT_S:-300}"

# PostgreSQL keeps the password its volume was initialised with, and Docker keeps the project's
# volumes per machine, not per checkout: the password lives beside them, one file per project for
# every checkout (a fresh CI clone included). A checkout's env file from before this keeps its own.
PASSWORD_FILE="${SAGE_STACK_PASSWORD_FILE:-${XDG_STATE_HOME:-$HOME/.local/state}/sage-ops/stack-$PROJECT.password}"

password() {
    if [ ! -s "$PASSWORD_FILE" ]; then
        mkdir -p "$(dirname "$PASSWORD_FILE")"
        { sed -n 's/^POSTGRES_PASSWORD=//p' "$ENV_FILE" 2>/dev/null | grep . \
            || head -c 18 /dev/urandom | base64 | tr -d '/+='; } >"$PASSWORD_FILE.tmp"
        mv "$PASSWORD_FILE.tmp" "$PASSWORD_FILE"
    fi
    cat "$PASSWORD_FILE"
}

write_env() {
    local pw
    mkdir -p "$STATE"
    umask 077
    pw="$(password)"
    [ -f "$ENV_FILE" ] && return
    cat >"$ENV_FILE" <<ENV
POSTGRES_PASSWORD=$pw
SAGE_ENV_FILE=$ENV_FILE
BACKEND_DIR=$ROOT/infra/sample-backend
BACKEND_DOCKERFILE=Dockerfile.debian
FRONTEND_DIR=$ROOT/infra/local/frontend
DOCKER_GID=$(stat -c %g /var/run/docker.sock)
POSTGRES_PORT=${POSTGRES_PORT:-15432}
REDIS_PORT=${REDIS_PORT:-16379}
REGISTRY_PORT=${REGISTRY_PORT:-5002}
BACKEND_PORT=${BACKEND_PORT:-3000}
FRONTEND_PORT=${FRONTEND_PORT:-5173}
DAGSTER_UI_PORT=${DAGSTER_UI_PORT:-3300}
ENV
}

compose() {
    docker-compose -f "$ROOT/infra/docker-compose.yml" --env-file "$ENV_FILE" -p "$PROJECT" "$@"
}

# docker-compose 1.29 has no `up --wait`: poll every container's health (or running state).
# On timeout, each container that is not healthy is shown with its last health check output and
# the end of its log.
wait_healthy() {
    local deadline=$((SECONDS + HEALTH_TIMEOUT_S)) waiting name
    while true; do
        waiting="$(compose ps -q | xargs docker inspect --format \
            '{{.Name}} {{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' \
            | grep -v -e ' healthy$' -e ' running$' || true)"
        [ -z "$waiting" ] && return 0
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "not healthy after ${HEALTH_TIMEOUT_S} s:" $waiting >&2
            for name in $(cut -d' ' -f1 <<<"$waiting"); do
                echo "--- ${name#/}: last health check, then its log" >&2
                docker inspect --format \
                    '{{if .State.Health}}{{range .State.Health.Log}}{{.Output}}{{end}}{{end}}' \
                    "$name" | tail -5 >&2
                docker logs --tail 40 "$name" >&2 2>&1
            done
            return 1
        fi
        sleep 2
    done
}

# The embedded demo's sample data (sage_ops' own seed) in the stack's application database, so
# nightly_backup has rows to back up; a database that has it already is left alone.
seed() {
    compose exec -T dagster-code python3 -c '
import os
from sage_ops.embedded import seed_sample_data
from sage_ops.postgres import PgTarget
loaded = seed_sample_data(PgTarget.from_url(os.environ["DATABASE_URL"]))
print("sample data:", "loaded" if loaded else "already there")'
}

case "${1:-up}" in
    up)
        bash "$ROOT/infra/local/services.sh" >/dev/null
        [ "${2:-}" = --no-build ] || bash "$ROOT/infra/local/build-images.sh"
        write_env
        compose up -d --no-build
        wait_healthy
        seed
        compose ps
        ;;
    down) compose down ;;
    ps) compose ps ;;
    logs) shift; compose logs --tail 100 "$@" ;;
    env) write_env; echo "$ENV_FILE" ;;
    compose) shift; write_env; compose "$@" ;;
    *) sed -n '2,14p' "$0" >&2; exit 2 ;;
esac

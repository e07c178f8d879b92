#!/usr/bin/env bash
# Static security scan of infra/terraform with checkov.
# checkov lives in its own venv: its pins (boto3, pydantic, ...) must not mix with the project's
# venv, which pins the Dagster family exactly.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="${CHECKOV_VENV:-$repo_root/.state/tools/checkov-venv}"
# Pinned: new checkov releases add checks, and a gate should change only when this line does.
checkov_spec="${CHECKOV_SPEC:-checkov==3.3.30}"
python="${PYTHON:-python3}"

# The marker (the installed spec) is written last: an interrupted install or a changed pin is
# redone instead of trusted.
marker="$venv/.checkov-installed"
if [[ "$(cat "$marker" 2>/dev/null)" != "$checkov_spec" ]]; then
    echo "checkov.sh: installing $checkov_spec into $venv" >&2
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    "$python" -m venv "$venv"
    log="$(dirname "$venv")/checkov-install.log"
    if ! "$venv/bin/pip" install --disable-pip-version-check "$checkov_spec" >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        rm -rf "$venv"  # never leave a half-installed venv that the next run would trust
        echo "checkov.sh: pip install failed, full log in $log" >&2
        exit 2
    fi
    printf '%s' "$checkov_spec" >"$marker"
fi

# --skip-download: no calls to Prisma Cloud (offline CI, nothing to upload).
# exec: checkov's own exit status (1 on any failed check, no soft-fail) is the script's.
exec "$venv/bin/checkov" \
    --directory "$repo_root/infra/terraform" \
    --framework terraform \
    --compact --quiet \
    --download-external-modules false \
    --skip-download \
    "$@"

"""`sage-ops demo` and `sage-ops deploy-demo`: the README's first commands, ending in the UI."""

import argparse
import getpass
import os
import subprocess
import sys
from pathlib import Path

from sage_ops import postgres
from sage_ops.backups.resources import BackupConfig
from sage_ops.child_env import DOCKER, child_env
from sage_ops.deploy.demo import demo_environment, environment_databases
from sage_ops.errors import ConfigError
from sage_ops.lineage.names import NIGHTLY_BACKUP
from sage_ops.state import state_dir


def demo(args: argparse.Namespace) -> int:
    """The README's first command: a verified backup of the embedded database, seen in the UI."""
    env = dict(os.environ, DAGSTER_HOME=str(_repo_root()))
    target = BackupConfig.from_env(env_refs=False).target()
    print(f"database: {target.redacted}")
    run = [_bin("dagster"), "job", "execute", "-m", "sage_ops.definitions", "-j", NIGHTLY_BACKUP]
    print("running nightly_backup ...", flush=True)
    code = subprocess.run(run, env=env, check=False).returncode
    print("nightly_backup " + ("succeeded" if code == 0 else f"FAILED (exit {code})"))
    if args.no_ui:
        return code
    print(
        f"opening the Dagster UI on http://127.0.0.1:{args.port} (Ctrl-C stops it): click Runs "
        "for the nightly_backup run, then Assets > backups > db_backup for the backup",
        flush=True,
    )
    ui = _local_ui(args.port)
    os.execve(ui[0], ui, env)
    return 0  # not reached


def deploy_demo(args: argparse.Namespace) -> int:
    """Build-push-deploy on this machine: commit to the demo repo, watch the UI deploy it."""
    repo_root = _repo_root()
    services = repo_root / "infra" / "local" / "services.sh"
    # It starts dockerd and a registry: they get Docker's settings, none of our secrets.
    services_env = child_env(DOCKER, {"SAGE_OPS_STATE_DIR": str(state_dir())})
    subprocess.run(["bash", str(services)], env=services_env, check=True)
    server = BackupConfig.from_env(env_refs=False).target().with_database(postgres.MAINTENANCE_DB)
    env = demo_environment(state_dir(), environment_databases(server))
    print(f"demo repository: {env['SAGE_OPS_REPO']} (commit to apps/backend/ to deploy again)")
    print("git_push_sensor deploys its head within 30 s: Overview > Runs shows deploy_backend")
    env = dict(os.environ, DAGSTER_HOME=str(repo_root), **env)
    ui = _local_ui(args.port)
    print(f"opening the Dagster UI on http://127.0.0.1:{args.port} (Ctrl-C stops it)", flush=True)
    os.execve(ui[0], ui, env)
    return 0  # not reached


def _local_ui(port: int) -> list[str]:
    """The UI as `dagster dev` serves it, but through the gate as you, an admin, on 127.0.0.1."""
    user = f"{getpass.getuser()}@localhost"
    print(f"the UI runs as {user} (admin) through the sage_ops gate; audit lines go to stdout")
    gate = [_bin("sage-ops"), "gate", "-p", str(port), "--local-user", user, "--local-admin"]
    return [*gate, "--with-daemon", "-w", "workspace.yaml"]


def _repo_root() -> Path:
    repo = Path.cwd()
    if not (repo / "dagster.yaml").exists() or not (repo / "workspace.yaml").exists():
        raise ConfigError("run this from the repository root (where dagster.yaml is)")
    return repo


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)

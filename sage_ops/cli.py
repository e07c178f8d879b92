"""`sage-ops`: what Dagster's own CLI does not do (doctor, demo, backups list/restore)."""

from __future__ import annotations

import argparse
import getpass
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from sage_ops import doctor, embedded, postgres
from sage_ops.backups.catalog import load_manifests
from sage_ops.backups.resources import BackupConfig
from sage_ops.backups.restore import restore_backup
from sage_ops.backups.selection import BackupChoice, choose_backup, named_source
from sage_ops.child_env import DOCKER, child_env
from sage_ops.deploy.demo import demo_environment, environment_databases
from sage_ops.errors import ConfigError, SageOpsError
from sage_ops.lineage.names import ENVIRONMENTS, NIGHTLY_BACKUP
from sage_ops.lineage.records import backup_text, commit_text, deployment_text, to_json
from sage_ops.migrations.bookkeeping import resolve_applied, resolve_rolled_back
from sage_ops.migrations.discovery import DEFAULT_MIGRATIONS_DIR, load_migrations
from sage_ops.migrations.preflight import plan
from sage_ops.postgres import PgTarget
from sage_ops.state import state_dir


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except SageOpsError as exc:
        print(f"sage-ops: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sage-ops", description=__doc__)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    p = sub.add_parser("doctor", help="show the effective configuration and check each system")
    p.add_argument(
        "--require-all",
        action="store_true",
        help="every capability configured, no local defaults (the default inside an ECS task)",
    )
    p.set_defaults(func=_doctor)

    p = sub.add_parser("demo", help="run nightly_backup on the embedded database, then open the UI")
    p.add_argument("--no-ui", action="store_true", help="stop after the run")
    p.add_argument("--port", type=int, default=3000)
    p.set_defaults(func=_demo)

    p = sub.add_parser(
        "gate", help="the Dagster UI behind the sage_ops gate (sign-in, role gates, audit trail)"
    )
    p.add_argument("-H", "--host", default="127.0.0.1")
    p.add_argument("-p", "--port", type=int, default=3000)
    p.add_argument("-w", "--workspace", default=None, help="workspace.yaml (default)")
    p.add_argument("--grpc-host", default=None, help="a running code server instead")
    p.add_argument("--grpc-port", type=int, default=4000)
    p.add_argument(
        "--local-user", metavar="EMAIL", help="every request is this user (127.0.0.1 only)"
    )
    p.add_argument("--local-admin", action="store_true", help="the local user is an admin")
    p.add_argument(
        "--local-any-interface",
        action="store_true",
        help="allow the local user on --host 0.0.0.0: only in a container published on 127.0.0.1",
    )
    p.add_argument("--with-daemon", action="store_true", help="run dagster-daemon beside it")
    p.set_defaults(func=_gate)

    p = sub.add_parser(
        "deploy-demo", help="local registry, swarm and a sample repo; then the UI deploys each push"
    )
    p.add_argument("--port", type=int, default=3000)
    p.set_defaults(func=_deploy_demo)

    p = sub.add_parser("backups", help="list or restore backups in the store")
    bsub = p.add_subparsers(required=True, metavar="ACTION")
    b = bsub.add_parser("list", help="backups of the configured database, newest first")
    b.set_defaults(func=_list)
    b = bsub.add_parser("restore", help="restore a backup into an empty database")
    b.add_argument("key", help="backup key, e.g. backup_20261125_030000.sql.gz, or 'latest'")
    b.add_argument(
        "--target-env",
        default="RESTORE_DATABASE_URL",
        help="name of the env var holding the target database URL (never pass URLs as args)",
    )
    b.add_argument(
        "--source-database",
        default="",
        help="restore a backup of this database (URL as 'backups list' shows it, password "
        "masked) instead of the configured DATABASE_URL's",
    )
    b.add_argument(
        "--allow-unverified", action="store_true", help="restore a backup that is not verified"
    )
    b.set_defaults(func=_restore)

    p = sub.add_parser("migrations", help="migration status, and resolving a failed migration")
    msub = p.add_subparsers(required=True, metavar="ACTION")
    m = msub.add_parser("status", help="applied and pending migrations, or why a run would refuse")
    m.set_defaults(func=_migration_status)
    m = msub.add_parser("resolve", help="mark a failed migration rolled back or applied")
    how = m.add_mutually_exclusive_group(required=True)
    how.add_argument(
        "--rolled-back", metavar="NAME", help="it was fixed; let the next run retry it"
    )
    how.add_argument("--applied", metavar="NAME", help="it was completed by hand")
    m.set_defaults(func=_migration_resolve)
    for m in msub.choices.values():
        m.add_argument("--dir", default=None, help="migrations directory (SAGE_OPS_MIGRATIONS_DIR)")

    p = sub.add_parser("lineage", help="what runs where, from which commit, on which backup")
    lsub = p.add_subparsers(required=True, metavar="QUESTION")
    q = lsub.add_parser("what-is-deployed", help="commit, digest, since, run, migrations, backup")
    q.add_argument("environment", nargs="?", choices=ENVIRONMENTS, default=None)
    q.set_defaults(func=_lineage_deployed)
    q = lsub.add_parser("commit", help="where a commit went and when, or why not")
    q.add_argument("sha")
    q.set_defaults(func=_lineage_commit)
    q = lsub.add_parser("backup", help="which runs made or relied on a backup")
    q.add_argument("key")
    q.set_defaults(func=_lineage_backup)
    for q in lsub.choices.values():
        q.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("triage", help="root causes of log lines, or a whole triage of a log")
    tsub = p.add_subparsers(required=True, metavar="ACTION")
    t = tsub.add_parser("classify", help="each line's root-cause category (summary on stderr)")
    t.add_argument("file", nargs="?", default="-", help="log file, or - for stdin (default)")
    t.add_argument("--json", action="store_true", help='{"line": N, "category": ...} per line')
    t.set_defaults(func=_triage_classify)
    t = tsub.add_parser("analyze", help="root cause, first error, counts, suspects, fixes")
    t.add_argument("file", help="log file or CloudWatch Logs export (JSON), or - for stdin")
    t.add_argument("--environment", default="production", help="whose deploy runs are suspects")
    t.set_defaults(func=_triage_analyze)

    p = sub.add_parser("embedded-stop", help="stop the embedded PostgreSQL server")
    p.set_defaults(func=lambda _: print("stopped" if embedded.stop() else "not running") or 0)
    return parser


def _doctor(args: argparse.Namespace) -> int:
    from sage_ops.checks import on_ecs

    text, code = doctor.report(*BackupConfig.read_env(), strict=args.require_all or on_ecs())
    print(text)
    return code


def _demo(args: argparse.Namespace) -> int:
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


def _local_ui(port: int) -> list[str]:
    """The UI as `dagster dev` serves it, but through the gate as you, an admin, on 127.0.0.1."""
    user = f"{getpass.getuser()}@localhost"
    print(f"the UI runs as {user} (admin) through the sage_ops gate; audit lines go to stdout")
    gate = [_bin("sage-ops"), "gate", "-p", str(port), "--local-user", user, "--local-admin"]
    return [*gate, "--with-daemon", "-w", "workspace.yaml"]


def _gate(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from sage_ops.gate.server import load_target, serve
    from sage_ops.gate.settings import GateSettings

    settings = GateSettings.from_env()
    if args.local_user:
        settings = settings.with_local_user(args.local_user, args.local_admin)
        settings = replace(settings, local_on_any_interface=args.local_any_interface)
    target = load_target(args.workspace, args.grpc_host, args.grpc_port)
    serve(settings, args.host, args.port, target, args.with_daemon)
    return 0


def _deploy_demo(args: argparse.Namespace) -> int:
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


def _repo_root() -> Path:
    repo = Path.cwd()
    if not (repo / "dagster.yaml").exists() or not (repo / "workspace.yaml").exists():
        raise ConfigError("run this from the repository root (where dagster.yaml is)")
    return repo


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def _migrations_dir(args: argparse.Namespace) -> Path:
    return Path(args.dir or os.environ.get("SAGE_OPS_MIGRATIONS_DIR") or DEFAULT_MIGRATIONS_DIR)


def _migration_status(args: argparse.Namespace) -> int:
    target = BackupConfig.from_env(env_refs=False).target()
    result = plan(target, load_migrations(_migrations_dir(args)))
    print(f"{target.redacted}: PostgreSQL {result.server_version}")
    print(f"applied: {len(result.applied)}")
    for migration in result.pending:
        print(f"pending: {migration.name}")
    return 0


def _migration_resolve(args: argparse.Namespace) -> int:
    target = BackupConfig.from_env(env_refs=False).target()
    if args.rolled_back:
        with postgres.connect(target) as conn:
            resolve_rolled_back(conn, args.rolled_back)
        print(f"{args.rolled_back} marked rolled back")
        return 0
    # The new row records the file as it is now, so the migration must be on disk (Prisma P3017).
    files = {m.name: m for m in load_migrations(_migrations_dir(args))}
    if args.applied not in files:
        raise ConfigError(f"no migration named {args.applied!r} in {_migrations_dir(args)}")
    with postgres.connect(target) as conn:
        resolve_applied(conn, args.applied, files[args.applied].checksum)
    print(f"{args.applied} marked applied (checksum {files[args.applied].checksum[:12]})")
    return 0


def _instance():
    from sage_ops.lineage.instance import check_instance, open_instance

    instance = open_instance()
    check_instance(instance)
    return instance


def _lineage_deployed(args: argparse.Namespace) -> int:
    from sage_ops.lineage.instance import LineageError, what_is_deployed

    instance = _instance()
    found = []
    for environment in [args.environment] if args.environment else ENVIRONMENTS:
        try:
            found.append(what_is_deployed(instance, environment))
        except LineageError:
            if args.environment:
                raise
    if not found:
        raise ConfigError("nothing has been deployed yet")
    if args.json:
        print(
            to_json(found[0])
            if args.environment
            else "[" + ",".join(to_json(d) for d in found) + "]"
        )
    else:
        print("\n".join(deployment_text(d) for d in found))
    return 0


def _lineage_commit(args: argparse.Namespace) -> int:
    from sage_ops.lineage.instance import commit_story

    story = commit_story(_instance(), args.sha)
    print(to_json(story) if args.json else commit_text(story))
    return 0


def _lineage_backup(args: argparse.Namespace) -> int:
    from sage_ops.lineage.instance import backup_use

    use = backup_use(_instance(), args.key)
    print(to_json(use) if args.json else backup_text(use))
    return 0


def _log_stream(name: str) -> BinaryIO:
    if name == "-":
        return sys.stdin.buffer
    try:
        return open(name, "rb")
    except OSError as exc:
        raise ConfigError(f"cannot read {name}: {exc.strerror}") from None


def _triage_classify(args: argparse.Namespace) -> int:
    from sage_ops.incidents.log_triage import classify_lines, summary

    try:
        with _log_stream(args.file) as stream:
            counts = classify_lines(stream, sys.stdout, args.json)
    except BrokenPipeError:  # `| head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    print(summary(counts), file=sys.stderr)  # stdout stays one line per input line
    return 0


def _triage_analyze(args: argparse.Namespace) -> int:
    from sage_ops.incidents.log_triage import analyze, render, report

    with _log_stream(args.file) as stream:
        analysis = analyze(stream)
    changes, notes = _deploy_runs(args.environment, analysis.first_error)
    print(render(report(analysis, changes, notes)))
    return 0


def _deploy_runs(environment: str, first_error: datetime | None) -> tuple[list, list[str]]:
    """sage_ops' own deploy runs around the first error, when a Dagster instance is at hand."""
    if not os.environ.get("DAGSTER_HOME") or first_error is None:
        return [], ["set DAGSTER_HOME to include this instance's deploy runs as suspects"]
    from sage_ops.lineage.changes import recent_changes
    from sage_ops.lineage.instance import open_instance

    since = first_error - timedelta(hours=2)
    return recent_changes(open_instance(), since, environment), []


def _list(_: argparse.Namespace) -> int:
    settings = BackupConfig.from_env(env_refs=False)
    store = settings.store()
    manifests = load_manifests(store, settings.target().redacted, _warn)[0]
    if not manifests:
        print(f"no backups of this database in {store.url}")
    for m in manifests:
        print(f"{m.key}  {m.size / 1e6:10.1f} MB  {m.started_at}  {m.verification.status}")
    return 0


def _warn(message: str) -> None:
    print(f"sage-ops: warning: {message}", file=sys.stderr)


def _restore(args: argparse.Namespace) -> int:
    url = os.environ.get(args.target_env)
    if not url:
        raise ConfigError(
            f"set {args.target_env} to the URL of the (empty) database to restore into"
        )
    target = PgTarget.from_url(url, args.target_env)
    settings = BackupConfig.from_env(env_refs=False)
    store = settings.store()
    choice = BackupChoice(
        source=named_source(args.source_database, settings.target(), "--source-database"),
        key="" if args.key == "latest" else args.key,
        allow_unverified=args.allow_unverified,
        source_option="--source-database",
        unverified_option="--allow-unverified",
    )
    manifest = choose_backup(store, choice, _warn)
    with postgres.connect(target) as conn:
        if postgres.table_row_counts(conn):
            raise ConfigError(f"{target.redacted} already has tables; restore into a new database")
    print(
        f"restoring {manifest.key} (backup of {manifest.database}, taken at "
        f"{manifest.started_at}, verification {manifest.verification.status}) "
        f"into {target.redacted} ..."
    )
    restore_backup(store, manifest, target)
    print("restored")
    return 0

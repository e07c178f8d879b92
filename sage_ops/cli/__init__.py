"""`sage-ops`: what Dagster's own CLI does not do (doctor, demo, backups list/restore)."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass

from sage_ops.errors import SageOpsError
from sage_ops.lineage.names import ENVIRONMENTS


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
    p.set_defaults(func=_Handler("doctor", "doctor"))

    p = sub.add_parser("demo", help="run nightly_backup on the embedded database, then open the UI")
    p.add_argument("--no-ui", action="store_true", help="stop after the run")
    p.add_argument("--port", type=int, default=3000)
    p.set_defaults(func=_Handler("demo", "demo"))

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
    p.set_defaults(func=_Handler("gate", "gate"))

    p = sub.add_parser(
        "deploy-demo", help="local registry, swarm and a sample repo; then the UI deploys each push"
    )
    p.add_argument("--port", type=int, default=3000)
    p.set_defaults(func=_Handler("demo", "deploy_demo"))

    p = sub.add_parser(
        "backups", help="list or restore backups in the store, clean up leftover databases"
    )
    bsub = p.add_subparsers(required=True, metavar="ACTION")
    b = bsub.add_parser("list", help="backups of the configured database, newest first")
    b.set_defaults(func=_Handler("backups", "list_backups"))
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
    b.set_defaults(func=_Handler("backups", "restore"))
    b = bsub.add_parser(
        "cleanup", help="list (and with --yes drop) restore and scratch databases killed runs left"
    )
    b.add_argument("--yes", action="store_true", help="drop them (default: only list them)")
    b.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME",
        help="also the server of the URL in env var NAME (e.g. a restore target); repeatable",
    )
    b.set_defaults(func=_Handler("backups", "cleanup"))

    p = sub.add_parser("migrations", help="migration status, and resolving a failed migration")
    msub = p.add_subparsers(required=True, metavar="ACTION")
    m = msub.add_parser("status", help="applied and pending migrations, or why a run would refuse")
    m.set_defaults(func=_Handler("migrations", "status"))
    m = msub.add_parser("resolve", help="mark a failed migration rolled back or applied")
    how = m.add_mutually_exclusive_group(required=True)
    how.add_argument(
        "--rolled-back", metavar="NAME", help="it was fixed; let the next run retry it"
    )
    how.add_argument("--applied", metavar="NAME", help="it was completed by hand")
    m.set_defaults(func=_Handler("migrations", "resolve"))
    for m in msub.choices.values():
        m.add_argument("--dir", default=None, help="migrations directory (SAGE_OPS_MIGRATIONS_DIR)")

    p = sub.add_parser("lineage", help="what runs where, from which commit, on which backup")
    lsub = p.add_subparsers(required=True, metavar="QUESTION")
    q = lsub.add_parser("what-is-deployed", help="commit, digest, since, run, migrations, backup")
    q.add_argument("environment", nargs="?", choices=ENVIRONMENTS, default=None)
    q.set_defaults(func=_Handler("lineage", "deployed"))
    q = lsub.add_parser("commit", help="where a commit went and when, or why not")
    q.add_argument("sha")
    q.set_defaults(func=_Handler("lineage", "commit"))
    q = lsub.add_parser("backup", help="which runs made or relied on a backup")
    q.add_argument("key")
    q.set_defaults(func=_Handler("lineage", "backup"))
    for q in lsub.choices.values():
        q.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("triage", help="root causes of log lines, or a whole triage of a log")
    tsub = p.add_subparsers(required=True, metavar="ACTION")
    t = tsub.add_parser("classify", help="each line's root-cause category (summary on stderr)")
    t.add_argument("file", nargs="?", default="-", help="log file, or - for stdin (default)")
    t.add_argument("--json", action="store_true", help='{"line": N, "category": ...} per line')
    t.set_defaults(func=_Handler("triage", "classify_log"))
    t = tsub.add_parser("analyze", help="root cause, first error, counts, suspects, fixes")
    t.add_argument("file", help="log file or CloudWatch Logs export (JSON), or - for stdin")
    t.add_argument("--environment", default="production", help="whose deploy runs are suspects")
    t.set_defaults(func=_Handler("triage", "analyze_log"))

    p = sub.add_parser("embedded-stop", help="stop the embedded PostgreSQL server")
    p.set_defaults(func=_embedded_stop)
    return parser


def _embedded_stop(_: argparse.Namespace) -> int:
    from sage_ops import embedded

    print("stopped" if embedded.stop() else "not running")
    return 0


@dataclass(frozen=True)
class _Handler:
    """A subcommand's handler, its module imported only when it runs: `--help` and every other
    subcommand do not pay for Dagster, boto3 or pandas."""

    module: str
    name: str

    def resolve(self) -> Callable[[argparse.Namespace], int]:
        return getattr(importlib.import_module(f"sage_ops.cli.{self.module}"), self.name)

    def __call__(self, args: argparse.Namespace) -> int:
        return int(self.resolve()(args))

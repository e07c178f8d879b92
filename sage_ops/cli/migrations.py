"""`sage-ops migrations`: status, and resolving a failed migration as Prisma's resolve does."""

import argparse
from pathlib import Path

from sage_ops import postgres
from sage_ops.errors import ConfigError
from sage_ops.migrations.bookkeeping import resolve_applied, resolve_rolled_back
from sage_ops.migrations.discovery import load_migrations
from sage_ops.migrations.preflight import plan
from sage_ops.migrations.resources import MigrationConfig


def status(args: argparse.Namespace) -> int:
    target = MigrationConfig.from_env().target()
    result = plan(target, load_migrations(_migrations_dir(args)))
    print(f"{target.redacted}: PostgreSQL {result.server_version}")
    print(f"applied: {len(result.applied)}")
    for migration in result.pending:
        print(f"pending: {migration.name}")
    return 0


def resolve(args: argparse.Namespace) -> int:
    target = MigrationConfig.from_env().target()
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


def _migrations_dir(args: argparse.Namespace) -> Path:
    return Path(args.dir or MigrationConfig.from_env().migrations_dir)

"""`sage-ops backups`: list the store's backups, restore one into an empty database."""

import argparse
import sys

from sage_ops import postgres
from sage_ops.backups.catalog import load_manifests
from sage_ops.backups.resources import BackupConfig
from sage_ops.backups.restore import restore_backup
from sage_ops.backups.selection import BackupChoice, choose_backup, named_source
from sage_ops.errors import ConfigError
from sage_ops.postgres import PgTarget


def list_backups(_: argparse.Namespace) -> int:
    settings = BackupConfig.from_env(env_refs=False)
    store = settings.store()
    manifests = load_manifests(store, settings.target().redacted, _warn)[0]
    if not manifests:
        print(f"no backups of this database in {store.url}")
    for m in manifests:
        print(f"{m.key}  {m.size / 1e6:10.1f} MB  {m.started_at}  {m.verification.status}")
    return 0


def restore(args: argparse.Namespace) -> int:
    target = PgTarget.from_env(args.target_env)
    if target is None:
        raise ConfigError(
            f"set {args.target_env} to the URL of the (empty) database to restore into"
        )
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


def _warn(message: str) -> None:
    print(f"sage-ops: warning: {message}", file=sys.stderr)

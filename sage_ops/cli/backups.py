"""`sage-ops backups`: list the store's backups, restore one into an empty database, clean up the
databases killed runs left on the servers."""

import argparse
import sys

from sage_ops import postgres
from sage_ops.backups.catalog import load_manifests, status
from sage_ops.backups.resources import BackupConfig
from sage_ops.backups.restore import restore_backup
from sage_ops.backups.selection import BackupChoice, choose_backup, named_source
from sage_ops.backups.unrecorded import unrecorded
from sage_ops.errors import ConfigError
from sage_ops.leftover_databases import drop_leftovers, own_databases
from sage_ops.postgres import PgTarget


def list_backups(_: argparse.Namespace) -> int:
    settings = BackupConfig.from_env(env_refs=False)
    store = settings.store()
    manifests, keys = load_manifests(store, settings.target().redacted, _warn)
    if not manifests:
        print(f"no backups of this database in {store.url}")
    for m in manifests:
        print(f"{m.key}  {m.size / 1e6:10.1f} MB  {m.started_at}  {status(m, keys)}")
    for key in unrecorded(keys):  # of any database: without a manifest, nobody can tell
        print(f"{key}  unrecorded (no manifest: being written, or left by a killed run)")
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


def cleanup(args: argparse.Namespace) -> int:
    """Leftover restore and scratch databases on the configured servers, oldest first; dropped
    only with --yes, and only those no session uses and no live run claims."""
    settings = BackupConfig.from_env(env_refs=False)
    servers = [settings.target()]
    if settings.scratch_database_url:
        servers.append(settings.scratch_server(servers[0]))
    servers += [_required_server(name) for name in args.server_env]
    seen = set()
    leftovers = 0
    for server in servers:
        server = server.with_database(postgres.MAINTENANCE_DB)
        if (server.host, server.port) in seen:
            continue
        seen.add((server.host, server.port))
        print(f"{server.redacted}:")
        found = own_databases(server)
        for db in found:
            print(f"  {db.describe()}")
        leftovers += sum(db.leftover for db in found)
        if args.yes:
            for db in drop_leftovers(server):
                print(f"  dropped {db.name}")
        elif not found:
            print("  no database created by sage_ops")
    if leftovers and not args.yes:
        print(f"{leftovers} leftover database(s); drop them with: sage-ops backups cleanup --yes")
    return 0


def _required_server(name: str) -> PgTarget:
    target = PgTarget.from_env(name)
    if target is None:
        raise ConfigError(f"{name} is not set (--server-env names an env var holding a URL)")
    return target


def _warn(message: str) -> None:
    print(f"sage-ops: warning: {message}", file=sys.stderr)

"""Which backup a restore may use: one of the named source database, verified unless overridden.

Shared by the `restore_database` job and `sage-ops backups restore`, so both refuse the same
things: a backup of another database than the one the operator named, an unverified backup
without the override, and (for "latest") a manifest dated in the future.
"""

from __future__ import annotations

from dataclasses import dataclass

from sage_ops.backups.catalog import OnSkip, find_manifest, load_manifests
from sage_ops.backups.manifest import Manifest
from sage_ops.backups.restore import same_database
from sage_ops.backups.store import BackupStore
from sage_ops.errors import ConfigError
from sage_ops.postgres import PgTarget


@dataclass(frozen=True)
class BackupChoice:
    source: PgTarget  # only backups of this database (host, port, name) qualify
    key: str = ""  # empty: the newest verified backup of `source`
    purpose: str | None = None  # with an empty key: only backups taken for this purpose
    allow_unverified: bool = False
    # How the operator sets the two overrides, named in refusals: job config or CLI flags.
    source_option: str = "source_database"
    unverified_option: str = "allow_unverified"


def named_source(url: str, default: PgTarget, setting: str = "source_database") -> PgTarget:
    """The database an operator named as the backup's source (as backup metadata shows it,
    password masked), or `default` when nothing is named."""
    if not url:
        return default
    source = PgTarget.from_url(url, setting)
    if source.password not in (None, "***"):
        raise ConfigError(
            f"{setting} holds a password: give it as backup metadata shows it "
            "(postgresql://USER:***@HOST:5432/DB); it is compared, never connected to"
        )
    return source


def choose_backup(store: BackupStore, choice: BackupChoice, warn: OnSkip) -> Manifest:
    """The named backup, or the newest verified one, of `choice.source` only."""
    if not choice.key:
        return _latest(store, choice, warn)
    manifest = find_manifest(store, choice.key)
    if not same_database(manifest.database, choice.source):
        raise ConfigError(
            f"{manifest.key} is a backup of {manifest.database}, not of "
            f"{choice.source.redacted}; to restore it anyway set {choice.source_option} to "
            f"{manifest.database!r}"
        )
    if not manifest.verified and not choice.allow_unverified:
        raise ConfigError(
            f"{manifest.key} is not verified (verification {manifest.verification.status}); "
            f"set {choice.unverified_option} to restore it anyway"
        )
    return manifest


def _latest(store: BackupStore, choice: BackupChoice, warn: OnSkip) -> Manifest:
    manifests, keys = load_manifests(store, on_skip=warn)
    for m in manifests:
        if not same_database(m.database, choice.source) or choice.purpose not in (None, m.purpose):
            continue
        if m.key not in keys:
            warn(
                f"skipped {m.key}: its object is missing from the store, only the manifest is left"
            )
        elif m.dated_in_future():
            warn(f"skipped {m.key}: dated in the future ({m.started_at}), so not trusted as latest")
        elif m.verified:
            return m
    kind = f"{choice.purpose} " if choice.purpose else ""
    raise ConfigError(
        f"no verified {kind}backup of {choice.source.redacted} in {store.url}; name one by its "
        f"key (and set {choice.source_option} if it is another database's)"
    )

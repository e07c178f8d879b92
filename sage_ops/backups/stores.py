"""Backup stores by URL scheme: file:// (LocalStore) and s3:// (S3Store). A new store is one
module implementing BackupStore and one branch here."""

from __future__ import annotations

from urllib.parse import urlsplit

from sage_ops.backups.store import BackupStore, LocalStore
from sage_ops.errors import ConfigError


def open_store(url: str, sse: str | None = None, kms_key_id: str | None = None) -> BackupStore:
    """The store at `url`; `sse` and `kms_key_id` are the S3 store's encryption settings."""
    scheme = urlsplit(url).scheme
    if scheme == "file":
        return LocalStore(url)
    if scheme == "s3":
        from sage_ops.backups.s3_store import S3Store

        return S3Store(url, sse=sse, kms_key_id=kms_key_id)
    raise ConfigError(
        f"SAGE_OPS_BACKUP_URL has unknown scheme {scheme or 'none'!r}; "
        "use file:///absolute/dir or s3://bucket/prefix/"
    )

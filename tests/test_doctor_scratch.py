"""`sage-ops doctor` refuses a scratch server that is DATABASE_URL's own server (issue 11, item 5)."""

from __future__ import annotations

from sage_ops.backups.resources import BackupConfig
from sage_ops.doctor import run_checks
from sage_ops.postgres import PgTarget


def _settings(source: PgTarget, scratch: str | None, tmp_path) -> BackupConfig:
    return BackupConfig(
        database_url=source.secret_url(),
        scratch_database_url=scratch,
        backup_url=f"file://{tmp_path}/backups",
        verify_level="full",
    )


def test_scratch_on_the_source_server_is_refused(source_db: PgTarget, tmp_path) -> None:
    scratch = source_db.with_database("postgres").secret_url()
    results = {r.name: r for r in run_checks(_settings(source_db, scratch, tmp_path))}
    assert not results["scratch server"].ok
    assert "points at the server of DATABASE_URL" in results["scratch server"].detail
    assert source_db.password is None or source_db.password not in results["scratch server"].detail


def test_scratch_elsewhere_and_the_unset_default_pass(
    source_db: PgTarget, password_server: PgTarget, tmp_path
) -> None:
    other = password_server.with_database("postgres").secret_url()
    for scratch in (other, None):
        results = {r.name: r for r in run_checks(_settings(source_db, scratch, tmp_path))}
        assert results["scratch server"].ok, results["scratch server"].detail

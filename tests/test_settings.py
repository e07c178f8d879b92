"""Settings that would fail at 03:00 are refused by `sage-ops doctor` and at definition load."""

import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import DagsterInstance, Definitions, serialize_value

from sage_ops.backups import defs as backups
from sage_ops.backups.resources import BackupConfig
from sage_ops.errors import ConfigError

SAGE_OPS = str(Path(sys.executable).parent / "sage-ops")

BAD = {  # variable=value: what the refusal must say about the allowed values
    "SAGE_OPS_BACKUP_KEEP=0": "an integer of at least 1",
    "SAGE_OPS_BACKUP_KEEP=-1": "an integer of at least 1",
    "SAGE_OPS_BACKUP_KEEP=seven": "an integer of at least 1",
    "SAGE_OPS_BACKUP_FORMAT=zip": "plain or custom",
    "SAGE_OPS_BACKUP_COMPRESSION=0": "1-9 for the plain format",
    "SAGE_OPS_BACKUP_COMPRESSION=10": "1-9 for the plain format",
    "SAGE_OPS_VERIFY_LEVEL=bogus": "checksum or full",
}
bad = pytest.mark.parametrize("setting", BAD, ids=BAD)


def _doctor(env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "DAGSTER"))}
    return subprocess.run(
        [SAGE_OPS, "doctor"], env={**base, **env}, capture_output=True, text=True, timeout=120
    )


@bad
def test_doctor_refuses_a_bad_setting_naming_it(setting, source_db, tmp_path):
    name, value = setting.split("=")
    result = _doctor(
        {
            "DATABASE_URL": source_db.redacted,
            "SAGE_OPS_BACKUP_URL": f"file://{tmp_path}/b",
            name: value,
        }
    )
    assert result.returncode == 1, result.stdout
    [failure] = [line for line in result.stdout.splitlines() if "[FAIL]" in line]
    assert name in failure and BAD[setting] in failure and repr(value) in failure
    assert "[ok] database:" in result.stdout  # the systems are still checked
    assert "Traceback" not in result.stderr


def test_custom_format_allows_compression_0_and_doctor_passes(source_db, tmp_path):
    result = _doctor(
        {
            "DATABASE_URL": source_db.redacted,
            "SAGE_OPS_BACKUP_URL": f"file://{tmp_path}/b",
            "SAGE_OPS_BACKUP_FORMAT": "custom",
            "SAGE_OPS_BACKUP_COMPRESSION": "0",
            "SAGE_OPS_VERIFY_LEVEL": "checksum",
        }
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_doctor_names_every_bad_setting_at_once(source_db, tmp_path):
    result = _doctor(
        {
            "DATABASE_URL": source_db.redacted,
            "SAGE_OPS_BACKUP_URL": f"file://{tmp_path}/b",
            "SAGE_OPS_BACKUP_KEEP": "0",
            "SAGE_OPS_BACKUP_FORMAT": "custom",
            "SAGE_OPS_BACKUP_COMPRESSION": "12",
            "SAGE_OPS_VERIFY_LEVEL": "bogus",
        }
    )
    failures = [line for line in result.stdout.splitlines() if "[FAIL]" in line]
    assert result.returncode == 1 and len(failures) == 3
    assert (
        "SAGE_OPS_BACKUP_COMPRESSION" in failures[1] and "0-9 for the custom format" in failures[1]
    )


@bad
def test_definitions_refuse_to_load_with_a_bad_setting(setting, monkeypatch):
    name, value = setting.split("=")
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=f"{name}={value!r}.*{BAD[setting]}"):
        runpy.run_module("sage_ops.definitions")


@pytest.mark.parametrize(
    "override",
    [{"keep": 0}, {"format": "zip"}, {"compression_level": 0}, {"verify_level": "bogus"}],
    ids=["keep", "format", "compression_level", "verify_level"],
)
def test_backup_resource_refuses_a_bad_value_before_any_dump(override, store, source_db):
    with pytest.raises(ConfigError, match="must be"):
        BackupConfig(backup_url=store.url, **override)
    # Run config edited in the launchpad: refused when the run starts, before pg_dump runs.
    definitions = Definitions.merge(
        backups.defs,
        Definitions(
            resources={
                "backups": BackupConfig(backup_url=store.url, database_url=source_db.redacted)
            }
        ),
    )
    instance = DagsterInstance.ephemeral()
    result = definitions.resolve_job_def("nightly_backup").execute_in_process(
        instance=instance,
        raise_on_error=False,
        run_config={"resources": {"backups": {"config": {"backup_url": store.url, **override}}}},
    )
    assert not result.success
    log = "\n".join(serialize_value(e) for e in instance.all_logs(result.run_id))
    assert "is not allowed: it must be" in log
    assert list(store.objects()) == []

"""The repo's dagster.yaml loads into a real instance with the promised settings."""

import shutil
from pathlib import Path

from dagster import DagsterInstance

REPO = Path(__file__).resolve().parent.parent


def test_local_instance_config(tmp_path, monkeypatch):
    shutil.copy(REPO / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.chdir(tmp_path)
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        assert not instance.telemetry_enabled
        assert instance.run_monitoring_enabled
        assert Path(instance.storage_directory()).resolve().is_relative_to(tmp_path / ".state")
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
        assert {
            "key": "sage_ops/database-writer",
            "value": {"applyLimitPerUniqueValue": True},
            "limit": 1,
        } in limits
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1

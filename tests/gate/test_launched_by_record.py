"""Who launched a run, in the run's own record: the tag the gate sets, read back by
`sage-ops lineage` from a real Dagster instance."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import MaterializeResult, asset, materialize

from sage_ops.cli import main
from sage_ops.lineage.instance import commit_story, what_is_deployed
from sage_ops.lineage.tags import COMMIT_TAG, LAUNCHED_BY_TAG, launched_by
from tests.gate.stack import dagster_instance

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def deployment_asset(metadata: dict[str, str]):
    @asset(name="production_deployment")
    def production_deployment() -> MaterializeResult:
        return MaterializeResult(
            metadata={"commit": COMMIT, "image": "reg/sage@sha256:ab", "revision": "7", **metadata}
        )

    return production_deployment


def test_launched_by_names_the_user_else_the_automation() -> None:
    assert launched_by({LAUNCHED_BY_TAG: "ana@sage.test"}) == "ana@sage.test"
    assert launched_by({"dagster/sensor_name": "git_push_sensor"}) == "sensor git_push_sensor"
    assert launched_by({}).startswith("unknown")


def test_lineage_shows_who_deployed_from_metadata_or_the_run_tag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "dagster"
    with dagster_instance(home) as instance:
        # Recorded before deployments named their launcher: read from the run's tag.
        tags = {LAUNCHED_BY_TAG: "ana@sage.test", COMMIT_TAG: COMMIT}
        assert materialize([deployment_asset({})], instance=instance, tags=tags).success
        assert what_is_deployed(instance, "production").launched_by == "ana@sage.test"
        story = commit_story(instance, COMMIT)
        assert [r["launched_by"] for r in story.runs] == ["ana@sage.test"]
        # As promote_to_production and rollback_deployment record it now: in the metadata.
        rollback = deployment_asset({"launched_by": "root@sage.test"})
        assert materialize([rollback], instance=instance, tags={COMMIT_TAG: COMMIT}).success
        assert what_is_deployed(instance, "production").launched_by == "root@sage.test"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    assert main(["lineage", "what-is-deployed", "production"]) == 0
    assert "by        root@sage.test" in capsys.readouterr().out
    assert main(["lineage", "commit", COMMIT]) == 0
    out = capsys.readouterr().out
    assert "launched by ana@sage.test" in out and "launched by unknown" in out

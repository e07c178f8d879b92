"""End to end on a real PostgreSQL: exhaust its connections until it refuses with 53300, let the
local probe alarm fire, run alarm_sensor and the incident_triage job, and read the report.

The report must name connection pool exhaustion from the server's own log lines, with the fixes
in order, the connection budget, and the deployment that finished just before as a suspect.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, Definitions, build_sensor_context

from sage_ops import postgres
from sage_ops.errors import DatabaseError
from sage_ops.incidents import defs as incidents
from sage_ops.incidents.alarms.alarm import parse_episode_key
from sage_ops.incidents.defs import alarm_sensor
from sage_ops.incidents.resources import IncidentConfig
from tests.incidents.small_pg import MAX_CONNECTIONS, RESERVED, SmallServer
from tests.lineage.deploy_runs import COMMIT, deploy

PERIOD_S = 2
REPORT_COPY = os.environ.get("SAGE_TEST_REPORT_COPY")  # write the report there to read it
ALARM = "sage-local-db-connections-high"


@contextlib.contextmanager
def exhausted(server: SmallServer) -> Iterator[list[str]]:
    """Hold every slot; return the refusals the server sent (each a real 53300)."""
    refusals: list[str] = []
    with contextlib.ExitStack() as held:
        with postgres.connect(server.admin) as admin:
            admin.execute("DROP ROLE IF EXISTS reporting")
            admin.execute("CREATE ROLE reporting LOGIN CONNECTION LIMIT 1")
        held.enter_context(
            postgres.connect(
                server.admin.__class__(
                    server.admin.host, server.admin.port, "reporting", "postgres"
                )
            )
        )
        for target in (
            server.admin.__class__(server.admin.host, server.admin.port, "reporting", "postgres"),
            *[server.app] * (MAX_CONNECTIONS - RESERVED),  # the first is taken by reporting
            *[server.admin] * (RESERVED + 1),
        ):
            try:
                held.enter_context(postgres.connect(target))
            except DatabaseError as exc:
                refusals.append(str(exc))
        yield refusals


def with_config(config: IncidentConfig) -> Definitions:
    """The capability's definitions with the test's resource instead of the env-built one."""
    return Definitions(
        assets=[incidents.incident_report],
        jobs=[incidents.incident_triage],
        sensors=[incidents.alarm_sensor],
        resources={"incidents": config},
    )


def sensor_tick(instance: DagsterInstance, config: IncidentConfig, cursor: str | None):
    context = build_sensor_context(
        instance=instance, cursor=cursor, resources={"incidents": config}
    )
    return alarm_sensor(context)


@pytest.fixture
def config(small_pg, tmp_path, monkeypatch) -> IncidentConfig:
    monkeypatch.setenv(
        "SAGE_TEST_PROBED_DB_URL", f"postgresql://postgres@127.0.0.1:{small_pg.admin.port}/postgres"
    )
    return IncidentConfig(
        source="local",
        database_url_env="SAGE_TEST_PROBED_DB_URL",
        pg_log_file=str(small_pg.log_file),
        probe_period_s=PERIOD_S,
        history_path=str(tmp_path / "probes.sqlite"),
        service_tasks=4,
        db_pool_size=3,
        deploy_max_percent=200,
    )


def test_53300_is_triaged_as_connection_pool_exhaustion(small_pg, config, instance):
    quiet = sensor_tick(instance, config, None)
    assert quiet.run_requests == [] and "0 of 1 alarms in ALARM" in quiet.skip_reason.skip_message
    deploy(instance, "production")  # the change that "just" happened

    with exhausted(small_pg) as refusals:
        assert any('too many connections for role "reporting"' in r for r in refusals)
        assert any("remaining connection slots are reserved" in r for r in refusals)
        assert any("sorry, too many clients already" in r for r in refusals)
        fired = sensor_tick(instance, config, quiet.cursor)
        [request] = fired.run_requests
        # Still in ALARM on the next tick, and after a restart from the saved cursor: no new run.
        assert sensor_tick(instance, config, fired.cursor).run_requests == []

    name, _ = parse_episode_key(request.run_key)
    assert name == ALARM and request.partition_key == request.run_key
    assert fired.dynamic_partitions_requests[0].partition_keys == [request.run_key]

    instance.add_dynamic_partitions("incidents", [request.partition_key])
    job = with_config(config).resolve_job_def("incident_triage")
    result = job.execute_in_process(
        instance=instance, partition_key=request.partition_key, tags=request.tags
    )
    assert result.success
    [materialization] = result.asset_materializations_for_node("incident_report")
    meta = {k: v.value for k, v in materialization.metadata.items()}
    assert meta["rule"] == "pg_connection_exhaustion" and meta["confidence"] == "high"
    assert meta["root_cause"] == "PostgreSQL connection pool exhaustion (53300)"
    assert meta["notified"] == "run log"
    report = meta["report"]
    if REPORT_COPY:
        Path(REPORT_COPY).write_text(report)
    # The server's own words, from its log file, as templates:
    assert "FATAL: sorry, too many clients already" in report
    assert (
        "remaining connection slots are reserved for roles with the SUPERUSER attribute" in report
    )
    assert "too many connections for role <str>" in report
    # The fixes, in the order the report gives them, and the budget arithmetic with the probed server:
    fixes = [
        "explicit `connection_limit`",
        "one PrismaClient per process",
        "RDS Proxy or PgBouncer",
        "maximumPercent",
        "Raise max_connections last",
    ]
    fix_section = report[report.index("**Fixes, in order**") :].lower()
    positions = [fix_section.find(f.lower()) for f in fixes]
    assert -1 not in positions and positions == sorted(positions)
    assert f"usable slots: max_connections {MAX_CONNECTIONS} - {RESERVED} reserved = 9" in report
    assert "8 tasks x 3 + 5 other + 1 migration = 30 (exceeds the 9 usable slots by 21)" in report
    # The deployment just before is a suspect, with the one-click rollback.
    assert f"`{COMMIT[:12]}`" in report and "**suspect**" in report
    assert "/jobs/rollback_deployment/playground" in report
    assert "data:image/png;base64," in report  # the metric plot
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"root_cause_named": True, "incident_notified": True}
    assert instance.get_latest_materialization_event(AssetKey("incident_report")) is not None

    # Recovery, then a new episode: a new incident with a new key.
    time.sleep(PERIOD_S + 0.2)
    recovered = sensor_tick(instance, config, fired.cursor)
    assert recovered.run_requests == []
    with exhausted(small_pg):
        again = sensor_tick(instance, config, recovered.cursor)
    assert [r.run_key for r in again.run_requests] != [request.run_key]
    assert len(again.run_requests) == 1

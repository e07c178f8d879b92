"""Local probes against real servers: an HTTP service that fails or crawls, a PostgreSQL that
runs out of slots; alarms evaluated over the probe history with CloudWatch's semantics."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

from sage_ops import postgres
from sage_ops.errors import DatabaseError
from sage_ops.incidents.alarms.alarm import ALARM, INSUFFICIENT_DATA, OK
from sage_ops.incidents.evidence import probes
from sage_ops.incidents.evidence.local_alarms import (
    LocalAlarms,
    LocalMetrics,
    ProbeTargets,
    local_rules,
)
from sage_ops.incidents.evidence.probe_history import ProbeHistory
from tests.incidents.http_service import Behaviour, http_service
from tests.incidents.small_pg import MAX_CONNECTIONS, RESERVED


def test_http_probe_measures_errors_and_latency():
    with http_service(Behaviour(status=500)) as (url, state):
        failing = probes.probe_http(url, requests=4, timeout_s=1)
        state.status, state.delay_s = 200, 0.3
        slow = probes.probe_http(url, requests=2, timeout_s=1)
    errors = [s.value for s in failing if s.metric == probes.HTTP_ERROR_PCT]
    assert errors == [100.0] * 4 and failing[0].detail == "HTTP 500"
    latencies = [s.value for s in slow if s.metric == probes.HTTP_LATENCY_S]
    assert all(0.3 <= v < 1 for v in latencies)
    assert [s.value for s in slow if s.metric == probes.HTTP_ERROR_PCT] == [0.0, 0.0]


def test_http_probe_counts_timeouts_and_refusals_as_errors():
    with http_service(Behaviour(delay_s=1.0)) as (url, _):
        timed_out = probes.probe_http(url, requests=1, timeout_s=0.2)
    refused = probes.probe_http(url, requests=1, timeout_s=0.2)  # server gone
    for samples in (timed_out, refused):
        by_metric = {s.metric: s for s in samples}
        assert by_metric[probes.HTTP_ERROR_PCT].value == 100.0
        assert by_metric[probes.HTTP_LATENCY_S].value <= 0.2
        assert by_metric[probes.HTTP_ERROR_PCT].detail.startswith("no answer")


def test_error_rate_and_p95_alarms_fire_on_a_broken_service_and_recover(tmp_path):
    history = ProbeHistory(tmp_path / "probes.sqlite")
    with http_service() as (url, state):
        targets = ProbeTargets(health_url=url, http_requests=5, http_timeout_s=3)
        clock = Clock()
        source = LocalAlarms(targets, local_rules("sage-", targets, period_s=60), history, clock)
        names = {a.name: a for a in source.alarms()}
        assert {a.state for a in names.values()} == {OK}
        error_alarm = "sage-local-api-error-rate-high"
        assert set(names) == {error_alarm, "sage-local-api-latency-p95-high"}

        state.status = 503
        clock.advance(61)  # the healthy period ages out
        broken = {a.name: a for a in source.alarms()}
        assert broken[error_alarm].state == ALARM
        assert broken[error_alarm].changed_at == clock()
        assert "greater than the threshold (5)" in broken[error_alarm].reason

        state.status, state.delay_s = 200, 2.2
        clock.advance(61)
        slow = {a.name: a for a in source.alarms()}
        assert slow[error_alarm].state == OK
        assert slow["sage-local-api-latency-p95-high"].state == ALARM

    frame = LocalMetrics(history).history(
        broken[error_alarm], clock() - timedelta(hours=1), clock()
    )
    assert set(frame["metric"]) == {probes.HTTP_ERROR_PCT, probes.HTTP_LATENCY_S}
    assert len(frame) == 30


def test_pg_probe_reads_saturation_and_a_refusal_is_a_full_reading(small_pg):
    quiet = {s.metric: s.value for s in probes.probe_pg_connections(small_pg.admin)}
    assert quiet[probes.PG_CONNECTIONS_PCT] == 0.0
    assert quiet[probes.PG_MAX_CONNECTIONS] == MAX_CONNECTIONS
    assert quiet[probes.PG_RESERVED] == RESERVED
    with contextlib.ExitStack() as held:
        for _ in range(MAX_CONNECTIONS - RESERVED):
            held.enter_context(postgres.connect(small_pg.app))
        full = {s.metric: s for s in probes.probe_pg_connections(small_pg.admin)}
        assert full[probes.PG_CONNECTIONS_PCT].value == 100.0
        assert "9 of 9 usable slots" in full[probes.PG_CONNECTIONS_PCT].detail
        # As the ordinary role the probe itself is refused: still a (full) reading.
        refused = probes.probe_pg_connections(small_pg.app)
        assert [s.value for s in refused] == [100.0]
        assert "remaining connection slots are reserved" in refused[0].detail
    down = small_pg.admin.__class__("127.0.0.1", 1, "postgres", "postgres")
    assert probes.probe_pg_connections(down) == []  # unreachable: missing data, not 100 %


def test_db_connection_alarm_goes_from_insufficient_data_to_alarm(small_pg, tmp_path):
    targets = ProbeTargets(database=small_pg.admin)
    history = ProbeHistory(tmp_path / "probes.sqlite")
    clock = Clock()
    source = LocalAlarms(targets, local_rules("sage-", targets, period_s=30), history, clock)
    assert source.alarm("sage-local-db-connections-high").state == INSUFFICIENT_DATA
    assert source.alarms()[0].state == OK
    with contextlib.ExitStack() as held:
        for _ in range(MAX_CONNECTIONS - RESERVED):
            held.enter_context(postgres.connect(small_pg.app))
        clock.advance(1)
        with contextlib.suppress(DatabaseError):
            postgres.connect(small_pg.app)
        alarmed = source.alarms()[0]
    assert alarmed.state == ALARM and alarmed.changed_at == clock()
    assert source.alarm(alarmed.name) == alarmed  # the stored state, without probing again


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

"""The local alarm source: probes sampled on every sensor tick, evaluated like CloudWatch alarms.

The embedded default and the local swarm have no CloudWatch, so sage_ops measures the same
signals itself - PostgreSQL connection saturation, the service's health-endpoint error rate and
p95 latency, its containers' CPU - keeps them in the probe history, and evaluates local
counterparts of the production alarms with CloudWatch's semantics (see evaluation.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta

import pandas as pd

from sage_ops.incidents.alarms.alarm import INSUFFICIENT_DATA, Alarm, AlarmSource
from sage_ops.incidents.alarms.evaluation import AlarmRule, evaluate
from sage_ops.incidents.evidence import probes
from sage_ops.incidents.evidence.base import MetricSource
from sage_ops.incidents.evidence.containers import probe_container_cpu
from sage_ops.incidents.evidence.probe_history import ProbeHistory, StoredState
from sage_ops.postgres import PgTarget

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class ProbeTargets:
    """What the local probes look at; None switches that probe and its alarms off."""

    database: PgTarget | None = None
    health_url: str | None = None
    service: str | None = None
    http_requests: int = 5
    http_timeout_s: float = 2.0

    def sample(self) -> list[probes.Sample]:
        samples: list[probes.Sample] = []
        if self.database:
            samples += probes.probe_pg_connections(self.database)
        if self.health_url:
            samples += probes.probe_http(self.health_url, self.http_requests, self.http_timeout_s)
        if self.service:
            samples += probe_container_cpu(self.service)
        return samples


def local_rules(prefix: str, targets: ProbeTargets, period_s: int = 60) -> list[AlarmRule]:
    """Local counterparts of the production alarms (infra/terraform/modules/alarms), for what is
    probed."""
    rules = []
    if targets.database:
        rules.append(
            AlarmRule(
                f"{prefix}local-db-connections-high",
                probes.PG_CONNECTIONS_PCT,
                "Maximum",
                90,
                period_s=period_s,
                description="PostgreSQL connection slots in use > 90 %",
            )
        )
    if targets.health_url:
        rules += [
            AlarmRule(
                f"{prefix}local-api-error-rate-high",
                probes.HTTP_ERROR_PCT,
                "Average",
                5,
                period_s=period_s,
                treat_missing="notBreaching",
                description="health endpoint 5xx/unanswered rate > 5 %",
            ),
            AlarmRule(
                f"{prefix}local-api-latency-p95-high",
                probes.HTTP_LATENCY_S,
                "p95",
                2,
                period_s=period_s,
                treat_missing="notBreaching",
                description="health endpoint p95 latency > 2 s",
            ),
        ]
    if targets.service:
        rules.append(
            AlarmRule(
                f"{prefix}local-service-cpu-high",
                probes.CONTAINER_CPU_PCT,
                "Average",
                80,
                period_s=5 * period_s,
                evaluation_periods=2,
                description="service containers' CPU > 80 % for 2 of 2 periods",
            )
        )
    return rules


class LocalAlarms(AlarmSource):
    kind = "local"

    def __init__(
        self,
        targets: ProbeTargets,
        rules: list[AlarmRule],
        history: ProbeHistory,
        clock: Clock = lambda: datetime.now(UTC),
    ) -> None:
        self.targets = targets
        self.rules = rules
        self.history = history
        self.clock = clock

    def alarms(self) -> list[Alarm]:
        """Probe once, record the samples, evaluate every rule, remember transitions.

        The samples of one tick are stamped with the tick's time, as CloudWatch stamps a
        datapoint with its period rather than with the moment each request ended.
        """
        samples = self.targets.sample()
        now = self.clock()
        self.history.record(replace(s, at=now) for s in samples)
        longest = max((r.period_s * r.evaluation_periods for r in self.rules), default=0)
        recent = self.history.frame({r.metric for r in self.rules}, now - _s(longest), now)
        return [self._evaluate(rule, recent, now) for rule in self.rules]

    def alarm(self, name: str) -> Alarm | None:
        """The alarm as last evaluated, without probing again."""
        rule = next((r for r in self.rules if r.name == name), None)
        if rule is None:
            return None
        state = self.history.state(name) or StoredState(INSUFFICIENT_DATA, self.clock(), "")
        return _alarm(rule, state)

    def _evaluate(self, rule: AlarmRule, recent: pd.DataFrame, now: datetime) -> Alarm:
        outcome = evaluate(rule, recent[recent["metric"] == rule.metric], now)
        stored = self.history.state(rule.name)
        if outcome.state is None:  # treat_missing=ignore with no data: keep the state
            state = stored or StoredState(INSUFFICIENT_DATA, now, outcome.reason)
        elif stored is None or stored.state != outcome.state:
            state = StoredState(outcome.state, now, outcome.reason)
        else:
            state = StoredState(stored.state, stored.changed_at, outcome.reason)
        if state != stored:
            self.history.set_state(rule.name, state)
        return _alarm(rule, state)


class LocalMetrics(MetricSource):
    """Every probed series around the episode (the alarm's own is named after its metric)."""

    def __init__(self, store: ProbeHistory, metrics: list[str] | None = None) -> None:
        self.store = store
        self.metrics = metrics or [
            probes.PG_CONNECTIONS_PCT,
            probes.PG_CONNECTIONS,
            probes.PG_MAX_CONNECTIONS,
            probes.PG_RESERVED,
            probes.HTTP_ERROR_PCT,
            probes.HTTP_LATENCY_S,
            probes.CONTAINER_CPU_PCT,
        ]

    def history(self, alarm: Alarm, start: datetime, end: datetime) -> pd.DataFrame:
        return self.store.frame({*self.metrics, alarm.metric}, start, end)


def _alarm(rule: AlarmRule, state: StoredState) -> Alarm:
    return Alarm(
        name=rule.name,
        state=state.state,
        changed_at=state.changed_at,
        reason=state.reason,
        metric=rule.metric,
        threshold=rule.threshold,
        comparison=rule.comparison,
        period_s=rule.period_s,
        evaluation_periods=rule.evaluation_periods,
        datapoints_to_alarm=rule.required,
        spec={"source": "local probes", **asdict(rule)},
    )


def _s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)

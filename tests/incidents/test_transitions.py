"""The sensor's decision: one incident per episode, never one per tick."""

from datetime import timedelta

from sage_ops.incidents.alarms.alarm import ALARM, INSUFFICIENT_DATA, OK, parse_episode_key
from sage_ops.incidents.alarms.transitions import evaluate_tick, load_cursor
from tests.incidents.factories import T0, alarm


def test_fires_on_entering_alarm_then_not_while_it_stays():
    first = evaluate_tick([alarm("a", state=OK), alarm("b", state=INSUFFICIENT_DATA)], None)
    assert first.fired == []
    entered = evaluate_tick([alarm("a", state=ALARM), alarm("b", state=OK)], first.cursor)
    assert [a.name for a in entered.fired] == ["a"]
    still = evaluate_tick([alarm("a", state=ALARM), alarm("b", state=OK)], entered.cursor)
    assert still.fired == []
    assert still.in_alarm == 1 and still.watched == 2


def test_a_new_episode_after_recovery_fires_again_even_if_ok_fell_between_ticks():
    one = evaluate_tick([alarm("a", changed_at=T0)], None)
    recovered = evaluate_tick(
        [alarm("a", state=OK, changed_at=T0 + timedelta(minutes=5))], one.cursor
    )
    assert recovered.fired == []
    again = evaluate_tick([alarm("a", changed_at=T0 + timedelta(minutes=9))], recovered.cursor)
    assert len(again.fired) == 1
    # The OK spell happened entirely between two ticks: the transition time still differs.
    missed_ok = evaluate_tick([alarm("a", changed_at=T0 + timedelta(minutes=30))], again.cursor)
    assert len(missed_ok.fired) == 1
    keys = {a.episode_key for a in one.fired + again.fired + missed_ok.fired}
    assert len(keys) == 3


def test_cursor_survives_a_restart_and_drops_deleted_alarms():
    tick = evaluate_tick([alarm("a"), alarm("b")], None)
    restarted = evaluate_tick([alarm("a")], str(tick.cursor))  # only the string is persisted
    assert restarted.fired == []
    assert set(load_cursor(restarted.cursor)) == {"a"}


def test_unreadable_cursor_counts_as_empty():
    assert load_cursor("not json") == {} and load_cursor("[1]") == {}
    assert len(evaluate_tick([alarm("a")], "{{").fired) == 1


def test_episode_key_round_trips_and_is_a_valid_partition_key():
    a = alarm(
        "sage-production-rds-connections-high", changed_at=T0 + timedelta(microseconds=123456)
    )
    assert a.episode_key == "sage-production-rds-connections-high@2026-11-25T10:00:00.123Z"
    name, at = parse_episode_key(a.episode_key)
    assert name == a.name and at == T0 + timedelta(milliseconds=123)
    assert "..." not in alarm("odd...name").episode_key

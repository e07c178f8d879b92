"""Findings quote a JSON-wrapped line by its message, never by a masked `{<str>:<str>,...}`."""

from sage_ops.incidents.classification.readable import readable
from sage_ops.incidents.classification.templates import template_of

PINO_502 = (
    '{"level":50,"time":1795600800000,"msg":"request errored","req":{"method":"GET"},'
    '"res":{"statusCode":502}}'
)
NESTED = (
    '{"level":"error","msg":"cache down","err":{"message":"connect ECONNREFUSED 10.0.0.5:6379"}}'
)
CLOUD_LOGGING = (
    '{"insertId":"x","severity":"ALERT","textPayload":"[12]: [2-1] db=postgres FATAL:  the '
    'database system is starting up","timestamp":"2020-05-02T13:31:47Z"}'
)


def test_the_message_that_shows_the_cause_is_chosen():
    assert readable(NESTED, "redis_unavailable") == "connect ECONNREFUSED 10.0.0.5:6379"
    assert "the database system is starting up" in readable(CLOUD_LOGGING, "db_unreachable")


def test_a_cause_in_other_fields_is_named_with_them():
    form = template_of(readable(PINO_502, "http_5xx"))
    assert form.startswith("request errored ") and "res.statusCode=<num>" in form
    assert "{<str>" not in form


def test_other_text_is_kept_as_it_is():
    assert readable("plain line", "http_5xx") == "plain line"
    assert readable('{"unterminated": ', "http_5xx") == '{"unterminated": '

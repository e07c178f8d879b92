"""An optional second opinion in prose from Claude, on top of the rules-based analysis.

Only when ANTHROPIC_API_KEY is set. It gets the analysis (masked log templates, counts, the
metric summary, the rules' findings), never raw log lines, and it can only add to the report:
a missing key, an error or a slow answer (bounded by the timeout, no retries) is a note in the
report, never a failed triage.

One POST to the Messages API with the standard library: the Anthropic SDK would add 20 MB of API
types to the image that every run pulls, for this one call.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass

DEFAULT_MODEL = "claude-sonnet-4-6"
DEFAULT_BASE_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"
SYSTEM = (
    "You are an SRE reviewing an automated incident triage for a Nest.js + Prisma API on ECS "
    "with PostgreSQL. In at most 120 words: say whether the evidence supports the named root "
    "cause, what else to check, and the first action to take. Do not invent facts."
)


@dataclass(frozen=True)
class LlmOutcome:
    text: str | None
    note: str


def llm_summary(
    facts: str,
    api_key: str | None,
    model: str = DEFAULT_MODEL,
    timeout_s: float = 20.0,
    base_url: str | None = None,
) -> LlmOutcome:
    if not api_key:
        return LlmOutcome(None, "no LLM summary: ANTHROPIC_API_KEY is not set")
    body = {
        "model": model,
        "max_tokens": 400,
        "system": SYSTEM,
        "messages": [{"role": "user", "content": facts}],
    }
    url = f"{(base_url or DEFAULT_BASE_URL).rstrip('/')}/v1/messages"
    if not url.startswith(("https://", "http://")):
        return LlmOutcome(None, f"no LLM summary: {base_url!r} is not an http(s) URL")
    request = urllib.request.Request(  # noqa: S310 (the scheme is checked above)
        url,
        data=json.dumps(body).encode(),
        headers={
            "x-api-key": api_key,
            "anthropic-version": API_VERSION,
            "content-type": "application/json",
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            message = json.loads(response.read())
        text = "".join(block.get("text", "") for block in message["content"]).strip()
    except Exception as exc:  # the summary is optional: any failure is a note
        return LlmOutcome(None, f"no LLM summary: {_failure(exc)}")
    if not text:
        return LlmOutcome(None, "no LLM summary: the model returned no text")
    return LlmOutcome(text, f"LLM summary by {model}")


def _failure(exc: Exception) -> str:
    """The API's own error message when it sent one, else the exception."""
    if isinstance(exc, urllib.error.HTTPError):
        try:
            detail = json.loads(exc.read())["error"]
            return f"HTTP {exc.code} {detail['type']}: {detail['message'][:200]}"
        except (ValueError, KeyError, TypeError):
            return f"HTTP {exc.code} {exc.reason}"
    return f"{type(exc).__name__}: {str(exc)[:200]}"

"""An optional second opinion in prose from Claude, on top of the rules-based analysis.

Only when ANTHROPIC_API_KEY is set. It gets the analysis (masked log templates, counts, the
metric summary, the rules' findings), never raw log lines, and it can only add to the report:
a missing key, an error or a slow answer (bounded by the timeout, no retries) is a note in the
report, never a failed triage.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MODEL = "claude-sonnet-4-6"
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
    try:
        import anthropic

        client = anthropic.Anthropic(
            api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=0
        )
        message = client.messages.create(
            model=model,
            max_tokens=400,
            system=SYSTEM,
            messages=[{"role": "user", "content": facts}],
        )
        text = "".join(getattr(block, "text", "") for block in message.content).strip()
    except Exception as exc:  # the summary is optional: any failure is a note
        return LlmOutcome(None, f"no LLM summary: {type(exc).__name__}: {str(exc)[:200]}")
    if not text:
        return LlmOutcome(None, "no LLM summary: the model returned no text")
    return LlmOutcome(text, f"LLM summary by {model}")

"""How a step fails for an operator: their one-line message, not a stack trace."""

import contextlib
from collections.abc import Iterator

from dagster import Failure

from sage_ops.errors import SageOpsError


@contextlib.contextmanager
def operator_errors() -> Iterator[None]:
    """Fail the step with the operator's one-line message instead of a stack trace."""
    try:
        yield
    except SageOpsError as exc:
        raise Failure(description=f"{type(exc).__name__}: {exc}", allow_retries=False) from None

"""What a refused request gets back: for a GraphQL mutation, the `PythonError` result Dagster's UI
shows as an "Error" dialog with the message; for anything else, a plain page or JSON error."""

from __future__ import annotations

import html
import json
from typing import Any

from graphql import FieldNode, FragmentSpreadNode, InlineFragmentNode, SelectionSetNode

from sage_ops.gate.mutations import Mutation

ERROR_TYPES = ("PythonError", "Error")  # PythonError implements the Error interface


def graphql_refusal(refused: list[Mutation], message: str) -> dict[str, Any]:
    """A response for every top-level field of the request. Object results (LaunchRunResult,
    TerminateRunResult, ...) are all unions that include PythonError; scalar results (Boolean)
    cannot carry one, so those get a GraphQL error instead."""
    if any(m.node.selection_set is None for m in refused):
        return {
            "data": None,
            "errors": [{"message": message, "path": [m.response_key]} for m in refused],
        }
    return {
        "data": {
            m.response_key: _python_error(m.node.selection_set, m, message)  # type: ignore[arg-type]
            for m in refused
        }
    }


def _python_error(selection_set: SelectionSetNode, mutation: Mutation, message: str) -> dict:
    values: dict[str, Any] = {
        "__typename": "PythonError",
        "message": message,
        "className": "PermissionError",
        "stack": [],
        "errorChain": [],
        "cause": None,
        "causes": [],
    }
    out: dict[str, Any] = {}
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            key = selection.alias.value if selection.alias else selection.name.value
            out[key] = values.get(selection.name.value)
        elif isinstance(selection, InlineFragmentNode):
            condition = selection.type_condition
            if condition is None or condition.name.value in ERROR_TYPES:
                out.update(_python_error(selection.selection_set, mutation, message))
        elif isinstance(selection, FragmentSpreadNode):
            fragment = mutation.fragments.get(selection.name.value)
            if fragment is not None and fragment.type_condition.name.value in ERROR_TYPES:
                out.update(_python_error(fragment.selection_set, mutation, message))
    return out


def page(status: int, message: str, accept: str) -> tuple[bytes, str]:
    """Body and content type of a 401/403/503 answer: HTML for browsers, JSON otherwise."""
    if "text/html" in accept:
        title = {401: "Sign-in required", 403: "Not allowed"}.get(status, "Try again")
        body = (
            f"<!doctype html><meta charset=utf-8><title>sage_ops: {title}</title>"
            "<body style='font-family:sans-serif;max-width:40em;margin:4em auto'>"
            f"<h1>{title}</h1><p>{html.escape(message)}</p><p>The Dagster UI of sage_ops is "
            "reached through the company sign-in (the internal load balancer). Ask a sage_ops "
            "admin if you need access.</p></body>"
        )
        return body.encode(), "text/html; charset=utf-8"
    return json.dumps({"errors": [{"message": message}]}).encode(), "application/json"

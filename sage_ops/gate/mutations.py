"""What a GraphQL request to the webserver asks for: the request as dagster-webserver reads it
(query string, JSON or application/graphql body) and the mutation fields it would execute."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    parse,
)
from graphql.utilities import value_from_ast_untyped


class BadRequest(Exception):
    """A GraphQL request the gate cannot read; nothing is forwarded."""


@dataclass
class GraphQLRequest:
    query: str
    variables: dict[str, Any]
    operation_name: str | None

    def body(self) -> bytes:
        return json.dumps(
            {"query": self.query, "variables": self.variables, "operationName": self.operation_name}
        ).encode()


@dataclass
class Mutation:
    """One top-level mutation field, with the document it came from (for variable defaults and
    fragments)."""

    node: FieldNode
    operation: OperationDefinitionNode
    fragments: dict[str, FragmentDefinitionNode] = field(repr=False)

    @property
    def name(self) -> str:
        return self.node.name.value

    @property
    def response_key(self) -> str:
        return self.node.alias.value if self.node.alias else self.name

    def argument(self, name: str, request: GraphQLRequest) -> Any:
        """An argument's value with variables (and their defaults) substituted."""
        for arg in self.node.arguments:
            if arg.name.value != name:
                continue
            if isinstance(arg.value, VariableNode):
                return variable_value(arg.value.name.value, self.operation, request)
            return value_from_ast_untyped(arg.value, request.variables)
        return None

    def variable_of(self, name: str) -> str | None:
        """The variable an argument is passed in, or None for an inline literal or no argument."""
        for arg in self.node.arguments:
            if arg.name.value == name and isinstance(arg.value, VariableNode):
                return arg.value.name.value
        return None

    def passes(self, name: str) -> bool:
        return any(arg.name.value == name for arg in self.node.arguments)


def variable_value(name: str, operation: OperationDefinitionNode, request: GraphQLRequest) -> Any:
    if name in request.variables:
        return request.variables[name]
    for definition in operation.variable_definitions:
        if definition.variable.name.value == name and definition.default_value is not None:
            return value_from_ast_untyped(definition.default_value)
    return None


def read_request(
    method: str, content_type: str, query_string: bytes, body: bytes
) -> GraphQLRequest | None:
    """The request exactly as dagster-webserver's graphql endpoint reads it; None without a
    query (GraphiQL's page, or Dagster's own "no query" answer)."""
    params = dict(parse_qsl(query_string.decode("latin-1"), keep_blank_values=True))
    data: Any = params
    if method == "POST" and "application/json" in content_type:
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise BadRequest(f"GraphQL request is invalid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise BadRequest("GraphQL request must be one JSON object (no batches)")
    elif method == "POST" and "application/graphql" in content_type:
        data = {"query": body.decode("utf-8", "replace")}
    query = data.get("query")
    if query is None:
        return None
    variables = data.get("variables") or {}
    if isinstance(variables, str):
        try:
            variables = json.loads(variables)
        except ValueError as exc:
            raise BadRequest(f"GraphQL variables are invalid JSON: {exc}") from exc
    if not isinstance(query, str) or not isinstance(variables, dict):
        raise BadRequest("GraphQL request needs a query string and variables as an object")
    return GraphQLRequest(query, variables, data.get("operationName"))


def mutations(request: GraphQLRequest) -> list[Mutation]:
    """Every top-level mutation field of every mutation operation in the document.

    Conservative on purpose: fields under @skip/@include and operations other than the one named
    by operationName count too. A document that does not parse is executed by nobody.
    """
    # Fast path for the UI's polling: a mutation operation must spell out the keyword.
    if "mutation" not in request.query:
        return []
    try:
        document = parse(request.query)
    except GraphQLError:
        return []
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    found = []
    for definition in document.definitions:
        if (
            isinstance(definition, OperationDefinitionNode)
            and definition.operation == OperationType.MUTATION
        ):
            for node in _fields(definition.selection_set, fragments, set()):
                found.append(Mutation(node, definition, fragments))
    return found


def _fields(
    selection_set: SelectionSetNode, fragments: dict[str, FragmentDefinitionNode], seen: set[str]
) -> list[FieldNode]:
    """Top-level fields, through inline fragments and fragment spreads (each spread once)."""
    found: list[FieldNode] = []
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            found.append(selection)
        elif isinstance(selection, InlineFragmentNode):
            found += _fields(selection.selection_set, fragments, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in fragments and name not in seen:
                seen.add(name)
                found += _fields(fragments[name].selection_set, fragments, seen)
    return found

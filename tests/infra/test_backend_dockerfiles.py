"""Dockerfile.node (the production template, node:20-alpine) and Dockerfile.debian (its twin, built
here) have the same stages and the same runtime image: only where the base and the node binary
come from, and the compiled entry point (dist/ for the Nest app, src/ for the sample), differ."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.infra.conftest import REPO

BACKEND = REPO / "infra" / "sample-backend"
STAGES = ["node", "deps", "dev", "migrate", "build", "runtime"]


def stages(dockerfile: Path) -> dict[str, list[tuple[str, str]]]:
    """{stage name: [(INSTRUCTION, arguments)]}, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", dockerfile.read_text())
    result: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, args = line.partition(" ")
        if instruction.upper() == "FROM":
            current = result.setdefault(args.split(" AS ")[-1].strip(), [])
        current.append((instruction.upper(), re.sub(r"\s+", " ", args.strip())))
    return result


def only(instructions: list[tuple[str, str]], name: str) -> str:
    [value] = [args for instruction, args in instructions if instruction == name]
    return value


@pytest.fixture(scope="module")
def twins() -> tuple[dict, dict]:
    return stages(BACKEND / "Dockerfile.node"), stages(BACKEND / "Dockerfile.debian")


def test_both_have_the_same_stages_in_the_same_order(twins):
    node, debian = twins
    assert list(node) == list(debian) == STAGES


def test_the_runtime_stages_are_the_same_but_for_the_label_and_entry_point(twins):
    node, debian = (
        [(i, a) for i, a in stage["runtime"] if i not in ("LABEL", "CMD")] for stage in twins
    )
    assert node == debian
    assert node[0] == ("FROM", "scratch AS runtime")  # distroless: no shell, no package manager
    entry_points = [json.loads(only(stage["runtime"], "CMD")) for stage in twins]
    assert [e[0] for e in entry_points] == ["node", "node"]
    assert [Path(e[1]).name for e in entry_points] == ["main.js", "main.js"]


@pytest.mark.parametrize("stage", ["dev", "migrate", "runtime"])
def test_user_port_and_health_check_match(twins, stage):
    node, debian = twins
    assert only(node[stage], "USER") == only(debian[stage], "USER") == "node"
    if stage != "migrate":
        assert only(node[stage], "EXPOSE") == only(debian[stage], "EXPOSE") == "3000"


def test_the_health_check_is_node_itself_in_exec_form(twins):
    [check] = {only(stage["runtime"], "HEALTHCHECK") for stage in twins}  # options too
    options, _, command = check.partition(" CMD ")
    assert json.loads(command) == ["node", "/usr/local/lib/healthcheck.js"]
    assert "--interval=" in options and "--timeout=" in options


def test_both_assemble_the_runtime_filesystem_with_the_same_script(twins):
    for stage in twins:
        runs = " ".join(args for instruction, args in stage["node"] if instruction == "RUN")
        assert "runtime-rootfs.sh /usr/local/bin/node /runtime" in runs
        build = " ".join(args for instruction, args in stage["build"] if instruction == "RUN")
        assert "prune-prisma-client.sh" in build and "patch-adapter-pg.sh" in build

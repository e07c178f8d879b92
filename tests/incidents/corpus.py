"""The labelled corpus: tests/incidents/corpus/<category>.log holds lines of that category (one
entry per line), near_misses/<category>.tsv the traps for it, each `label<TAB>line` (mostly
unknown; some belong to a neighbouring category)."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent / "corpus"


def positives() -> list[tuple[str, str]]:
    return [
        (path.stem, line)
        for path in sorted(HERE.glob("*.log"))
        for line in path.read_text().splitlines()
        if line.strip()
    ]


def near_misses() -> dict[str, list[tuple[str, str]]]:
    found = {}
    for path in sorted((HERE / "near_misses").glob("*.tsv")):
        rows = [line.split("\t", 1) for line in path.read_text().splitlines() if line.strip()]
        found[path.stem] = [(label, text) for label, text in rows]
    return found


def labelled() -> list[tuple[str, str]]:
    return positives() + [row for rows in near_misses().values() for row in rows]

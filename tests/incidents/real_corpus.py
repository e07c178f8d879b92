"""The held-out corpus of real logs: whole public log files (tests/incidents/real_logs/, sources
and licences in its SOURCES.md) with a label for every line (labels.tsv lists the lines of a
cause; every other line is "unknown").

The split was fixed before the files were read for tuning: a file is held out when the first
byte of the SHA-256 of its name is odd, else it may be tuned on. Each file is classified whole,
as `sage-ops triage classify` reads a log (entries grouped, every line given its entry's
category), and scored line by line.

    .venv/bin/python -m tests.incidents.real_corpus     # accuracy per category, both parts
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from sage_ops.incidents.categories import UNKNOWN, classify_text
from sage_ops.incidents.entries import group
from sage_ops.incidents.log_input import lines

HERE = Path(__file__).parent / "real_logs"


def held_out(name: str) -> bool:
    return hashlib.sha256(name.encode()).digest()[0] % 2 == 1


def read(name: str) -> bytes:
    data = (HERE / name).read_bytes()
    if name.endswith(".bz2"):
        return bz2.decompress(data)
    return gzip.decompress(data) if name.endswith(".gz") else data


def labels() -> dict[str, dict[int, str]]:
    found: dict[str, dict[int, str]] = {}
    for row in (HERE / "labels.tsv").read_text().splitlines():
        if row and not row.startswith("#"):
            name, line, category = row.split("\t")
            found.setdefault(name, {})[int(line)] = category
    return found


def files() -> list[str]:
    return sorted(p.name for p in HERE.iterdir() if p.name.startswith("pgbadger_"))


def predicted(data: bytes) -> list[str]:
    """Every physical line's category, the file read whole."""
    out: list[str] = []
    for entry in group(lines(io.BytesIO(data))):
        out += [classify_text(entry.text)] * entry.lines
    return out


@dataclass
class Score:
    right: Counter[str]
    total: Counter[str]
    false_positives: Counter[str]  # predicted this category, labelled another

    def accuracy(self, category: str) -> float:
        return self.right[category] / self.total[category] if self.total[category] else 1.0


def score(names: list[str]) -> Score:
    s = Score(Counter(), Counter(), Counter())
    marks = labels()
    for name in names:
        for number, got in enumerate(predicted(read(name)), 1):
            want = marks.get(name, {}).get(number, UNKNOWN)
            s.total[want] += 1
            s.right[want] += got == want
            if got != want and got != UNKNOWN:
                s.false_positives[got] += 1
    return s


def main() -> None:
    for part, names in (
        ("held-out", [n for n in files() if held_out(n)]),
        ("tune", [n for n in files() if not held_out(n)]),
    ):
        s = score(names)
        print(f"{part}: {', '.join(names)}")
        for category in sorted(s.total):
            print(
                f"  {category:<26} {s.accuracy(category):7.1%} of {s.total[category]:>6} lines, "
                f"{s.false_positives[category]} false positive(s)"
            )


if __name__ == "__main__":
    main()

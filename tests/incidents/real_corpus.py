"""The held-out corpus of real logs (tests/incidents/real_logs/, sources and licences in its
SOURCES.md), in two kinds:

- whole public log files with a label for every line (labels.tsv lists the lines of a cause;
  every other line is "unknown"), each file classified whole, as `sage-ops triage classify`
  reads a log (entries grouped, every line given its entry's category), and scored line by line;
- lines.tsv: single machine-written lines from public issue threads and documentation, each with
  its source id and label, classified one at a time. Lines labelled "unknown" are near misses:
  lines from the same systems and incidents that name no cause.

The split was fixed before any line was checked against the rules: a file or source is held out
when the first byte of the SHA-256 of its name (or source id) is odd, else it may be tuned on.

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

from sage_ops.incidents.classification.categories import UNKNOWN, classify_text
from sage_ops.incidents.classification.entries import group
from sage_ops.incidents.evidence.log_input import lines

HERE = Path(__file__).parent / "real_logs"


def held_out(name: str) -> bool:
    """Whether a file name or source id belongs to the held-out part."""
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


@dataclass(frozen=True)
class Line:
    source: str  # "owner/repo#N" for an issue thread, "aws-…" for a documentation table
    category: str
    text: str


def pasted() -> list[Line]:
    """lines.tsv: source id, label and the line as written (the line may hold tabs)."""
    rows = (HERE / "lines.tsv").read_text(encoding="utf-8").splitlines()
    return [Line(*row.split("\t", 2)) for row in rows if row and not row.startswith("#")]


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

    def overall(self, causes_only: bool = False) -> float:
        names = [c for c in self.total if not (causes_only and c == UNKNOWN)]
        return sum(self.right[c] for c in names) / sum(self.total[c] for c in names)

    @property
    def near_miss_false_positives(self) -> int:
        """Lines labelled "unknown" that were given a cause."""
        return self.total[UNKNOWN] - self.right[UNKNOWN]

    def lines(self) -> list[str]:
        rows = [
            f"  {c:<26} {self.accuracy(c):7.1%} of {self.total[c]:>6} lines, "
            f"{self.false_positives[c]} false positive(s)"
            for c in sorted(self.total)
        ]
        return [
            *rows,
            f"  all causes {self.overall(True):.1%}, every line {self.overall():.1%}, "
            f"near-miss false positives {self.near_miss_false_positives}",
        ]


def tally(s: Score, want: str, got: str) -> None:
    s.total[want] += 1
    s.right[want] += got == want
    if got != want and got != UNKNOWN:
        s.false_positives[got] += 1


def score_lines(rows: list[Line]) -> Score:
    s = Score(Counter(), Counter(), Counter())
    for row in rows:
        tally(s, row.category, classify_text(row.text))
    return s


def score(names: list[str]) -> Score:
    s = Score(Counter(), Counter(), Counter())
    marks = labels()
    for name in names:
        for number, got in enumerate(predicted(read(name)), 1):
            tally(s, marks.get(name, {}).get(number, UNKNOWN), got)
    return s


def main() -> None:
    for part, keep in (("held-out", True), ("tune", False)):
        names = [n for n in files() if held_out(n) == keep]
        print(f"{part} files: {', '.join(names)}")
        print("\n".join(score(names).lines()))
        rows = [r for r in pasted() if held_out(r.source) == keep]
        sources = len({r.source for r in rows})
        print(f"{part} lines: {len(rows)} from {sources} sources (lines.tsv)")
        print("\n".join(score_lines(rows).lines()))


if __name__ == "__main__":
    main()

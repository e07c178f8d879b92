"""Every category on the labelled corpus: at least 30 real-format lines and 30 near misses each,
precision and recall 100 % per category."""

from collections import Counter

import pytest

from sage_ops.incidents.classification.categories import CATEGORIES, NAMES, UNKNOWN, classify_text
from tests.incidents.corpus import labelled, near_misses, positives

LOG_CATEGORIES = [c.name for c in CATEGORIES]


def test_corpus_size_per_category():
    counts = Counter(label for label, _ in positives())
    assert {c: counts[c] for c in LOG_CATEGORIES if counts[c] < 30} == {}
    traps = {c: len(rows) for c, rows in near_misses().items()}
    assert set(traps) == set(LOG_CATEGORIES)
    assert {c: n for c, n in traps.items() if n < 30} == {}
    assert all(label in NAMES for label, _ in labelled())


@pytest.mark.parametrize("category", LOG_CATEGORIES)
def test_precision_and_recall_are_100_percent(category):
    rows = [(label, text, classify_text(text)) for label, text in labelled()]
    missed = [text for label, text, got in rows if label == category and got != category]
    wrong = [(label, text) for label, text, got in rows if got == category and label != category]
    assert missed == [], "recall"
    assert wrong == [], "precision"


def test_near_misses_stay_out_of_their_category():
    for category, rows in near_misses().items():
        assert all(label != category for label, _ in rows), category
        assert all(classify_text(text) == label for label, text in rows), category


def test_unknown_is_the_answer_for_ordinary_lines():
    assert (
        classify_text("[Nest] 1  - 12/01/2026, 3:00:00 AM     LOG [NestFactory] Starting")
        == UNKNOWN
    )
    assert classify_text("") == UNKNOWN

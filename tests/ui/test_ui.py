"""The operator's journey (tests/ui/journey.py) in headless Chromium against a throw-away
instance: webserver behind the gate + daemon (see conftest.py). Screenshots of each step go to the
test's tmp_path (use --basetemp to choose where); their paths are printed at the end.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.ui.conftest import DagsterUI
from tests.ui.journey import backup_is_in_store, operator_journey


@pytest.mark.slow
def test_operator_journey_in_the_ui(
    dagster_ui: DagsterUI, page: Page, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    try:
        journey = operator_journey(page, tmp_path / "screenshots")
        backup_is_in_store(
            dagster_ui.backup_dir, dagster_ui.backup_dir.as_uri(), journey.metadata, journey.run_id
        )
    except BaseException:
        print(dagster_ui.log_tails())
        raise
    with capsys.disabled():
        print(f"\nUI journey took {time.monotonic() - started:.0f} s; screenshots:")
        for path in journey.screenshots:
            print(f"  {path}")

"""The operator's path through the Dagster UI, in headless Chromium: asset graph -> launch
nightly_backup -> run succeeds -> materialization metadata -> the blocking check ->
schedule and sensors running. One journey for every place the UI runs: a throw-away instance
(tests/ui/test_ui.py) and the docker-compose stack, where the run has its own container
(tests/infra/test_stack.py).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Locator, Page, expect, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
UI_TIMEOUT_MS = 30_000
RUN_TIMEOUT_MS = 150_000  # queued -> dequeued by the daemon -> dump, full verify, retention
TICK_TIMEOUT_S = 75  # sensors tick every 30 s

# Each capability's asset group and assets the operator must find on the asset graph.
CAPABILITIES = {
    "backups": ["db_backup", "backup_retention"],
    "migrations": ["migration_plan", "pre_migration_backup", "applied_migrations"],
    "deploy": ["backend_image", "production_deployment"],
    "incidents": ["incident_report"],
}
AUTOMATIONS = ["nightly_backup_schedule", "git_push_sensor", "alarm_sensor"]


@contextmanager
def open_page(base_url: str) -> Iterator[Page]:
    """A page of headless Debian Chromium on `base_url`, the community modal skipped."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(
                base_url=base_url, viewport={"width": 1600, "height": 1000}
            )
            page = context.new_page()
            page.set_default_timeout(UI_TIMEOUT_MS)

            # A first visit may greet with "Join the Dagster community"; skip it whenever it shows.
            def skip_community_modal(_: Locator) -> None:
                page.get_by_role("button", name="Skip").click()

            page.add_locator_handler(
                page.get_by_text("Join the Dagster community"), skip_community_modal
            )
            yield page
        finally:
            browser.close()


@dataclass(frozen=True)
class Journey:
    run_id: str
    metadata: dict[str, str]  # db_backup's materialization metadata, as the UI shows it
    screenshots: list[Path]


def operator_journey(
    page: Page, screenshots: Path, run_timeout_ms: int = RUN_TIMEOUT_MS
) -> Journey:
    """The whole journey; screenshots of each step (and of a failure) go to `screenshots`."""
    shots = Screenshots(page, screenshots)
    with shots.on_failure():
        see_every_capability_on_the_asset_graph(page, shots)
        run_id = launch_nightly_backup(page, shots, run_timeout_ms)
        metadata = read_backup_materialization(page, shots, run_id)
        see_the_backup_verified(page, shots, metadata["key"])
        see_schedule_and_sensors_running(page, shots)
    return Journey(run_id, metadata, shots.paths)


class Screenshots:
    def __init__(self, page: Page, directory: Path) -> None:
        self.page = page
        self.directory = directory
        self.paths: list[Path] = []
        directory.mkdir(parents=True, exist_ok=True)

    def take(self, name: str) -> Path:
        path = self.directory / f"{len(self.paths) + 1:02d}_{name}.png"
        self.page.screenshot(path=path)
        self.paths.append(path)
        print(f"screenshot: {path}")
        return path

    @contextmanager
    def on_failure(self) -> Iterator[None]:
        try:
            yield
        except BaseException:
            try:
                self.take("FAILURE")
            except PlaywrightError as exc:
                print(f"no failure screenshot: {exc}")
            raise


def see_every_capability_on_the_asset_graph(page: Page, shots: Screenshots) -> None:
    page.goto("/asset-groups")
    expect(page.get_by_text("Global asset lineage")).to_be_visible(timeout=UI_TIMEOUT_MS)
    for group in CAPABILITIES:
        expect(page.get_by_title(group, exact=True)).to_be_visible(timeout=UI_TIMEOUT_MS)
    # Groups start collapsed: expand them all in the graph (the graph menu's "Expand all
    # groups", shortcut Alt+E) and see one asset node drawn per capability.
    page.keyboard.press("Alt+e")
    for assets in CAPABILITIES.values():
        expect(page.get_by_text(assets[0], exact=True)).to_be_visible(timeout=UI_TIMEOUT_MS)
    # The sidebar tree names every asset in full under its group (the graph's small nodes
    # shorten long names): open each group there too.
    for group in CAPABILITIES:
        row = (
            page.locator("div")
            .filter(has=page.get_by_title(group, exact=True))
            .filter(has=page.get_by_role("img", name="arrow_drop_down"))
            .last
        )
        row.get_by_role("img", name="arrow_drop_down").click()
    for assets in CAPABILITIES.values():
        for asset in assets:
            expect(page.get_by_title(asset, exact=True)).to_be_visible(timeout=UI_TIMEOUT_MS)
    group_of: dict[str, str] = {}
    current = None
    for title in page.locator("[title]").evaluate_all("els => els.map(e => e.title)"):
        if title in CAPABILITIES:
            current = title
        elif current:
            group_of.setdefault(title, current)
    for group, assets in CAPABILITIES.items():
        for asset in assets:
            assert group_of.get(asset) == group, f"{asset} is listed under {group_of.get(asset)}"
    shots.take("asset_graph_all_groups")


def link(page: Page, text: str) -> Locator:
    """The link showing `text` (its accessible name may start with its icon's label)."""
    return page.get_by_role("link", name=re.compile(rf"(^|\s){re.escape(text)}$"))


def launch_nightly_backup(page: Page, shots: Screenshots, run_timeout_ms: int) -> str:
    """Jobs > nightly_backup > Materialize all (no partition to pick); returns the run id."""
    link(page, "Jobs").click()
    link(page, "nightly_backup").click()
    expect(page.get_by_text("Back up the database, verify the backup")).to_be_visible(
        timeout=UI_TIMEOUT_MS
    )
    launch = page.get_by_role("button", name="Materialize all")
    expect(launch).to_be_enabled(timeout=UI_TIMEOUT_MS)
    shots.take("nightly_backup_job")
    launch.click()

    toast = page.get_by_text(re.compile(r"Launched run [0-9a-f]{8}")).first
    expect(toast).to_be_visible(timeout=UI_TIMEOUT_MS)
    short_id = re.search(r"Launched run ([0-9a-f]{8})", toast.inner_text()).group(1)  # type: ignore[union-attr]
    page.locator(f"a[href^='/runs/{short_id}']").first.click()
    expect(page).to_have_url(re.compile(rf"/runs/{short_id}[0-9a-f-]{{28}}"), timeout=UI_TIMEOUT_MS)
    run_id = re.search(r"/runs/([0-9a-f-]{36})", page.url).group(1)  # type: ignore[union-attr]

    # The run is queued; the daemon's run coordinator starts it. Wait for a final status.
    final = page.get_by_text(re.compile(r"^(Success|Failure|Canceled)$")).first
    expect(final).to_be_visible(timeout=run_timeout_ms)
    status = final.inner_text()
    shots.take("run_finished")
    assert status == "Success", f"run {run_id} ended with {status}"
    return run_id


def read_backup_materialization(page: Page, shots: Screenshots, run_id: str) -> dict[str, str]:
    """The newest db_backup materialization (the run's), as its Events tab shows it."""
    page.goto("/assets/db_backup?view=events")
    expect(page.get_by_text("materialized in run")).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(page.get_by_role("link", name=run_id[:8], exact=True)).to_be_visible()
    metadata = {
        key: metadata_value(page, key)
        for key in ("location", "key", "sha256", "size_bytes", "row_counts", "pg_dump")
    }
    assert re.fullmatch(r"backup_\d{8}_\d{6}\.sql\.gz", metadata["key"]), metadata
    assert re.fullmatch(r"[0-9a-f]{64}", metadata["sha256"]), metadata
    assert int(metadata["size_bytes"]) > 0, metadata
    assert metadata["location"].endswith("/" + metadata["key"]), metadata
    assert '"public.messages": 2000' in metadata["row_counts"], metadata
    assert metadata["pg_dump"].startswith("pg_dump "), metadata
    shots.take("db_backup_materialization_metadata")
    return metadata


def metadata_value(page: Page, key: str) -> str:
    row = page.get_by_role("row").filter(has=page.get_by_role("cell", name=key, exact=True))
    value = row.get_by_role("cell").nth(1)
    expect(value).to_be_visible(timeout=UI_TIMEOUT_MS)
    return value.inner_text().strip()


def see_the_backup_verified(page: Page, shots: Screenshots, key: str) -> None:
    page.get_by_role("tab", name="Checks", exact=True).click()
    expect(page.get_by_text("backup_verified").first).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(page.get_by_text("Passed", exact=True).first).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(page.get_by_text(key, exact=True).first).to_be_visible()
    expect(page.get_by_text("full", exact=True).first).to_be_visible()
    shots.take("backup_verified_check_passed")


def see_schedule_and_sensors_running(page: Page, shots: Screenshots) -> None:
    link(page, "Automation").click()
    for name in AUTOMATIONS:
        row = automation_row(page, name)
        expect(row).to_be_visible(timeout=UI_TIMEOUT_MS)
        # The row's on/off switch (the other checkbox selects the row for bulk actions).
        expect(row.locator("label[class*='formatSwitch'] input")).to_be_checked()
    shots.take("automation_schedule_and_sensors_on")
    # Running means ticking: both sensors have evaluated, and git_push_sensor (no SAGE_OPS_REPO
    # here) says why it skipped.
    alarm_tick = latest_tick(page, "alarm_sensor")
    assert "Latest tick failed" not in alarm_tick, alarm_tick
    page.mouse.move(1, 1)
    expect(tick_popover(page)).to_have_count(0, timeout=UI_TIMEOUT_MS)
    git_tick = latest_tick(page, "git_push_sensor")
    assert "Latest tick skipped" in git_tick, git_tick
    assert "SAGE_OPS_REPO is not set" in git_tick, git_tick
    shots.take("git_push_sensor_skip_reason")


def automation_row(page: Page, name: str) -> Locator:
    return page.locator("[data-index]").filter(has=page.get_by_text(name, exact=True))


def tick_popover(page: Page) -> Locator:
    """The hover card of a latest tick: "Latest tick skipped|succeeded|failed", time, reason."""
    return page.locator(".bp5-popover").filter(has_text="Latest tick")


def latest_tick(page: Page, sensor: str) -> str:
    """What the popover of the sensor's latest-tick status says, once it has ticked."""
    deadline = time.monotonic() + TICK_TIMEOUT_S
    while True:
        try:
            automation_row(page, sensor).get_by_role("button").hover(timeout=5_000)
            expect(tick_popover(page)).to_be_visible(timeout=5_000)
            return tick_popover(page).inner_text()
        except (AssertionError, PlaywrightError):
            if time.monotonic() > deadline:
                raise
            page.reload()  # no tick yet: poll


def backup_is_in_store(
    backup_dir: Path, store_url: str, metadata: dict[str, str], run_id: str
) -> None:
    """The backup the UI showed, with its manifest, in `backup_dir` (a copy of the store at
    `store_url`, or the store itself): same size, sha256 and run, verified in full."""
    backup = backup_dir / metadata["key"]
    manifest_path = backup_dir / (metadata["key"] + ".manifest.json")
    assert backup.is_file(), sorted(p.name for p in backup_dir.iterdir())
    assert manifest_path.is_file(), sorted(p.name for p in backup_dir.iterdir())
    assert not list(backup_dir.glob("*.partial"))
    assert metadata["location"] == f"{store_url.rstrip('/')}/{metadata['key']}"
    assert backup.stat().st_size == int(metadata["size_bytes"])
    assert hashlib.sha256(backup.read_bytes()).hexdigest() == metadata["sha256"]
    manifest = json.loads(manifest_path.read_text())
    assert manifest["key"] == metadata["key"]
    assert manifest["sha256"] == metadata["sha256"]
    assert manifest["size"] == int(metadata["size_bytes"])
    assert manifest["run_id"] == run_id
    assert manifest["verification"]["status"] == "passed", manifest["verification"]
    assert manifest["verification"]["level"] == "full", manifest["verification"]

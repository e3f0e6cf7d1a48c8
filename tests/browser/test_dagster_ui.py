"""A person's path through the Dagster UI, in a real browser, against the real deployment.

Debian's Chromium (Playwright drives it; nothing is downloaded) opens the webserver: the
asset graph shows the six assets, the ``characters`` asset lists the world's partition, the
``populate_world`` job is launched for that world from the launch dialog, and the run page
shows it succeed. Screenshots of each step land in ``test-artifacts/browser/``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_helpers import shot
from deploy_helpers import Deployment
from playwright.sync_api import Browser, Page, expect

ASSETS = ("world_brief", "characters", "character_avatars", "post_drafts", "post_images", "posts")
WORLD = {
    "id": "ui-world",
    "name": "Ui World",
    "prompt": "A mountain monastery of bell-makers, goat herders and star cartographers",
    "characters": 3,
    "posts_per_day": 3,
}
TIMEOUT_MS = 60_000


@pytest.fixture
def page(browser: Browser, ui_deployment: Deployment) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    context.set_default_timeout(TIMEOUT_MS)
    # A UI on 127.0.0.1 would greet a new browser with a newsletter dialog (and an iframe
    # from dagster.io) a second after load, over whatever is being clicked;
    # deploy/dagster.yaml turns it off (nux: enabled: false).
    assert ui_deployment.graphql("query { shouldShowNux }")["shouldShowNux"] is False
    opened = context.new_page()
    try:
        yield opened
    finally:
        context.close()


@pytest.mark.timeout(300)
def test_the_ui_shows_the_assets_and_materializes_a_world(
    page: Page, ui_deployment: Deployment, artifacts: Path
) -> None:
    live = ui_deployment
    live.add_worlds([WORLD])
    live.add_world_partitions([WORLD["id"]])
    base = live.url

    # The asset graph: every asset is a node (and an entry in the sidebar next to it).
    page.goto(f"{base}/asset-groups")
    expect(page.get_by_text("Global asset lineage").first).to_be_visible()
    for asset in ASSETS:
        expect(page.get_by_text(asset, exact=True).first).to_be_visible()
        assert page.get_by_text(asset, exact=True).count() >= 2, asset
    shot(page, artifacts, "01-asset-graph")

    # The characters asset's partitions: the world is there, not materialized yet.
    page.goto(f"{base}/assets/characters?view=partitions")
    expect(page.get_by_text(re.compile(r"Missing \(1\)"))).to_be_visible()
    expect(page.get_by_text(WORLD["id"], exact=True).first).to_be_visible()
    shot(page, artifacts, "02-characters-partitions-before")

    # Launch populate_world for that world from the job's launch dialog.
    page.goto(f"{base}/locations/__repository__@generia_pipelines/jobs/populate_world")
    page.get_by_role("button", name="Materialize all").click()
    expect(page.get_by_text("Launch runs to materialize 3 assets")).to_be_visible()
    page.get_by_text("Select a partition or create one").click()
    page.keyboard.type(WORLD["id"])
    page.locator("label").filter(has_text=WORLD["id"]).first.click()
    page.keyboard.press("Escape")
    launch = page.get_by_role("button", name="Launch 1 run")
    expect(launch).to_be_enabled()
    shot(page, artifacts, "03-launch-dialog")
    launch.click()

    # The toast links the run; its page shows it succeed.
    link = page.locator("a[href^='/runs/']").first
    expect(page.get_by_text(re.compile(r"Launched run"))).to_be_visible()
    href = link.get_attribute("href")
    assert href, "no link to the launched run"
    run_id = href.rsplit("/", 1)[-1]
    page.goto(f"{base}/runs/{run_id}")
    began = time.monotonic()
    expect(page.get_by_text("Success", exact=True).first).to_be_visible(timeout=120_000)
    print(f"run {run_id} succeeded {time.monotonic() - began:.1f} s after its page opened")
    shot(page, artifacts, "04-run-succeeded")

    # Back on the partitions, the world is materialized.
    page.goto(f"{base}/assets/characters?view=partitions")
    expect(page.get_by_text(re.compile(r"Materialized \(1\)"))).to_be_visible()
    shot(page, artifacts, "05-characters-partitions-after")

    # What the browser showed is what happened.
    run = live.run(run_id)
    assert run["status"] == "SUCCESS"
    assert run["jobName"] == "populate_world"
    assert run["tags"]["dagster/partition"] == WORLD["id"]
    assert run["tags"].get("dagster/from_ui") == "true"
    people = live.platform(WORLD["id"], "characters")
    assert len(people) == WORLD["characters"]
    assert all(p["avatar_media_id"] for p in people)

"""The data team's day in the UI (issue 13), flow by flow, in a real browser.

One deployment for the module (``ui_deployment``: PostgreSQL, code server, webserver,
daemon, the local Generia stack); Debian's Chromium, driven by Playwright, reads each flow
off the pages and the screenshots (``13-*``) land in ``test-artifacts/browser/``:

1. the avatar previews load after the local stack restarts on its data and ports;
2. the lineage shows a world's setup upstream of its posts;
3. ``world_report``'s ``by_day`` table shows the world's cost and output, and they agree
   with the platform, the ledger, the Runware stand-in and the assets' own ``cost_usd``;
4. a world removed from the catalog is left out by the schedule, and the sensor retires
   its partition;
5. a changed prompt rewrites the brief, a lowered count rests the extra character, and a
   partition added by hand in the UI is retired by the sensor.

The tests share the deployment and build on each other in file order (a few runs in all,
each made once by a module fixture), but each also stands alone.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import browser_helpers
import pytest
import yaml
from deploy_helpers import LOCATION, Deployment, wait_for
from playwright.sync_api import Browser, Locator, Page, expect

from generia_pipelines.ledger import Ledger

WORLD: dict[str, Any] = {
    "id": "flows-harbour",
    "name": "Flows Harbour",
    "prompt": "A harbour town of lantern makers, tide readers and net menders",
    "characters": 3,
    "posts_per_day": 3,
}
#: The world the catalog loses in flow 4 (a partition, never set up).
GONE: dict[str, Any] = {
    "id": "flows-gone",
    "name": "Flows Gone",
    "prompt": "A desert of glass farmers and wind tuners",
    "characters": 2,
    "posts_per_day": 1,
}
#: The partition added by hand in the UI for a world no catalog has (flow 5).
STRAY = "stray-world"
WORLD_ID, GONE_ID = str(WORLD["id"]), str(GONE["id"])
TODAY = datetime.now(UTC).date()
#: The latest complete day (flow 3) and the day before it (flow 5's day after the changes).
DAY = (TODAY - timedelta(days=1)).isoformat()
DAY2 = (TODAY - timedelta(days=2)).isoformat()
SENSOR = "new_worlds_sensor"
TIMEOUT_MS = 60_000
#: Playwright's own default for ``expect``, put back after the module.
EXPECT_DEFAULT_MS = 5_000
RUN_TIMEOUT_S = 180
SENSOR_TICK_TIMEOUT_S = 120
#: Wide enough for the asset graph's whole chain and for every column of ``by_day``.
WIDE = 2400


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def patient_expect() -> Iterator[None]:
    """``expect`` waits as long as the pages' actions do (its own default is 5 s, too short
    on a loaded 2-core machine), and only in this module."""
    expect.set_options(timeout=TIMEOUT_MS)
    try:
        yield
    finally:
        expect.set_options(timeout=EXPECT_DEFAULT_MS)


@pytest.fixture(scope="module")
def flows(ui_deployment: Deployment) -> Deployment:
    """The deployment with the module's two worlds in the catalog, each a partition."""
    live = ui_deployment
    # No newsletter dialog over what is clicked (deploy/dagster.yaml: nux disabled).
    assert live.graphql("query { shouldShowNux }")["shouldShowNux"] is False
    live.add_worlds([WORLD, GONE])
    live.add_world_partitions([WORLD_ID, GONE_ID])
    return live


@dataclass
class PaidImages:
    """Images the Runware stand-in generated in this module. A stack restart starts a new
    stand-in, counting from 0: what the stopped ones counted is kept in ``earlier``."""

    earlier: int = 0

    def total(self, live: Deployment) -> int:
        return self.earlier + live.images_paid


@pytest.fixture(scope="module")
def paid_images() -> PaidImages:
    return PaidImages()


@pytest.fixture(scope="module")
def set_up(flows: Deployment) -> str:
    """The world's setup (brief, characters, avatars), materialized once; its run id."""
    return run_ok(flows, "populate_world", WORLD_ID)


@pytest.fixture(scope="module")
def day_posted(flows: Deployment, set_up: str) -> str:
    """The world's posts of the latest complete day, materialized once; the day."""
    run_ok(flows, "daily_posts", f"{DAY}|{WORLD_ID}")
    return DAY


# -- helpers -------------------------------------------------------------------------------


@contextlib.contextmanager
def fresh_page(browser: Browser, width: int = 1600, height: int = 1000) -> Iterator[Page]:
    """A page in a new browser context: nothing cached from an earlier page."""
    context = browser.new_context(
        viewport={"width": width, "height": height}, timezone_id="UTC", locale="en-US"
    )
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


def shot(page: Page, artifacts: Path, name: str) -> None:
    assert name.startswith("13-"), name  # this screenshots, apart from the others
    browser_helpers.shot(page, artifacts, name)


def run_ok(live: Deployment, job: str, partition: str) -> str:
    """Launch one partition of ``job`` as the launchpad does; wait for its success."""
    began = time.monotonic()
    run_id = live.launch_run(job, partition)
    run = live.wait_run(run_id, timeout_s=RUN_TIMEOUT_S)
    assert run["status"] == "SUCCESS", f"{job} {partition}: {run['status']}\n{live.logs()}"
    print(f"{job} {partition}: {run['status']} in {time.monotonic() - began:.1f} s")
    return run_id


def write_catalog(live: Deployment, worlds: Sequence[Mapping[str, Any]]) -> None:
    """Replace the catalog file the code location reads (atomically: a run may read it)."""
    live.catalog[:] = [dict(w) for w in worlds]
    text = yaml.safe_dump({"worlds": live.catalog}, sort_keys=False)
    scratch = live.worlds_file.with_suffix(".tmp")
    scratch.write_text(text, encoding="utf-8")
    scratch.replace(live.worlds_file)


def world_partitions(live: Deployment) -> list[str]:
    data = live.graphql(
        'query { assetNodeOrError(assetKey: {path: ["characters"]}) '
        "{ ... on AssetNode { partitionKeys } } }"
    )
    keys: list[str] = data["assetNodeOrError"]["partitionKeys"]
    return keys


def latest_cost(live: Deployment, asset: str, partition: str) -> float:
    """The ``cost_usd`` of the latest materialization of one partition of ``asset``."""
    data = live.graphql(
        """
        query($key: AssetKeyInput!, $p: [String!]) { assetOrError(assetKey: $key) {
          ... on Asset { assetMaterializations(partitions: $p, limit: 1) {
            metadataEntries { label
              ... on FloatMetadataEntry { floatValue } ... on IntMetadataEntry { intValue }
            }
          } }
        } }
        """,
        {"key": {"path": [asset]}, "p": [partition]},
    )
    (latest,) = data["assetOrError"]["assetMaterializations"]
    entry = next(e for e in latest["metadataEntries"] if e["label"] == "cost_usd")
    return float(entry.get("floatValue", entry.get("intValue")))


@contextlib.contextmanager
def stack_stopped(live: Deployment, paid: PaidImages) -> Iterator[None]:
    """The local stack down, then up again on the same data directory and the same ports
    (the code server keeps its addresses), as after closing and reopening ``dev``."""
    stack = live.stack
    env, ports = stack.env, stack.stack.ports
    config = stack.config
    config.character_port, config.media_port = ports["character"], ports["media"]
    config.post_port, config.world_port = ports["post"], ports["world"]
    config.http_port = ports["http"]
    runware_port = urlsplit(env["RUNWARE_URL"]).port
    assert runware_port, env["RUNWARE_URL"]
    live.runware.port = runware_port
    paid.earlier += live.images_paid
    stack.stop()
    try:
        yield
    finally:
        stack.start(timeout_s=30)
    assert stack.env == env, "the stack came back on other addresses"


def cells(table: Locator) -> list[list[str]]:
    """A table's rows (header first) as the texts of their cells."""
    rows: list[list[str]] = table.evaluate(
        "t => [...t.querySelectorAll('tr')].map("
        "r => [...r.querySelectorAll('th,td')].map(c => c.innerText.trim()))"
    )
    return rows


def metadata(page: Page, key: str) -> dict[str, str]:
    """The Metadata table of an asset page, key -> value text, once ``key`` shows."""
    expect(page.get_by_text(key, exact=True).first).to_be_visible()
    table = page.locator("table").filter(has=page.get_by_text("Timestamp", exact=True)).first
    pairs: list[list[str]] = table.evaluate(
        "t => [...t.tBodies[0].rows].map("
        "r => [r.cells[0].innerText.trim(), r.cells[r.cells.length - 1].innerText.trim()])"
    )
    return {k: v for k, v in pairs}


def nested_table(page: Page) -> list[dict[str, str]]:
    """The one table inside the Metadata table (a TableMetadata or a markdown table), as
    records by column name."""
    table = page.locator("table table")
    expect(table).to_have_count(1)
    expect(table).to_be_visible()
    header, *body = cells(table)
    return [dict(zip(header, row, strict=True)) for row in body]


def avatar_previews(page: Page, base: str, stack_url: str) -> list[dict[str, Any]]:
    """The ``previews`` images of the world's latest ``character_avatars``, once each has
    loaded or failed: their source and natural width (0 when it did not load)."""
    page.goto(f"{base}/assets/character_avatars?partition={WORLD_ID}")
    expect(page.get_by_text("previews", exact=True)).to_be_visible()
    images = page.locator(f"img[src^='{stack_url}/']")
    expect(images).to_have_count(int(WORLD["characters"]))
    page.wait_for_function(
        "prefix => [...document.images].filter(i => i.src.startsWith(prefix))"
        ".every(i => i.complete)",
        arg=f"{stack_url}/",
        timeout=TIMEOUT_MS,
    )
    found: list[dict[str, Any]] = images.evaluate_all(
        "els => els.map(e => ({src: e.src, width: e.naturalWidth}))"
    )
    return found


def latest_schedule_tick() -> str:
    """The daily schedule's latest tick (06:00 UTC) as the preview dialog names it."""
    now = datetime.now(UTC)
    tick = now.replace(hour=6, minute=0, second=0, microsecond=0)
    if tick > now:
        tick -= timedelta(days=1)
    return f"{tick:%b} {tick.day}, 6:00 AM UTC"


def preview_schedule(page: Page, base: str, tick: str) -> str:
    """Preview ``daily_posts_schedule``'s tick in the UI; open its one run request's
    configuration and return the text it shows (its tags)."""
    page.goto(f"{base}/locations/{LOCATION}/schedules/daily_posts_schedule")
    page.get_by_role("button", name="Preview tick result").click()
    dialog = page.get_by_role("dialog").filter(
        has_text="Preview tick result for daily_posts_schedule"
    )
    dialog.get_by_role("button", name=re.compile("UTC")).click()
    page.get_by_role("menuitem", name=tick, exact=True).click()
    dialog.get_by_role("button", name="Continue").click()
    expect(dialog.get_by_text("Requested runs (1)")).to_be_visible()
    expect(dialog.get_by_text("daily_posts", exact=True)).to_be_visible()
    dialog.locator("table button").first.click()
    config = page.get_by_role("dialog").filter(has_text="Run configuration")
    expect(config.get_by_text("generia/world", exact=False).first).to_be_visible()
    return config.inner_text()


def tick_sensor(live: Deployment, after: float) -> dict[str, Any]:
    """Start ``new_worlds_sensor``, wait for its first tick that starts after ``after`` (an
    epoch time), stop it again; the tick. The cursor says the world's past days were asked
    for already (the tests launched them), so the tick requests no posts of its own."""
    selector = {**live.repository_selector, "sensorName": SENSOR}
    cursor = json.dumps({"backfilled": [WORLD_ID]}, separators=(",", ":"))
    data = live.graphql(
        """
        mutation($s: SensorSelector!, $c: String) { setSensorCursor(sensorSelector: $s,
          cursor: $c) { __typename ... on PythonError { message } } }
        """,
        {"s": selector, "c": cursor},
    )
    assert data["setSensorCursor"]["__typename"] == "Sensor", data

    def finished() -> dict[str, Any] | None:
        data = live.graphql(
            """
            query($s: SensorSelector!) { sensorOrError(sensorSelector: $s) {
              ... on Sensor { sensorState { ticks(limit: 5) {
                timestamp status runIds error { message }
                dynamicPartitionsRequestResults { partitionKeys type }
              } } }
            } }
            """,
            {"s": selector},
        )
        ticks = data["sensorOrError"]["sensorState"]["ticks"]
        done = [
            t
            for t in ticks
            if t["timestamp"] > after and t["status"] in ("SUCCESS", "SKIPPED", "FAILURE")
        ]
        return done[-1] if done else None

    assert live.sensor(SENSOR, True) == "RUNNING"
    began = time.monotonic()
    try:
        # At most the sensor's minimum interval (60 s) after its previous tick.
        tick = wait_for(f"a {SENSOR} tick", finished, SENSOR_TICK_TIMEOUT_S)
    finally:
        live.sensor(SENSOR, False)
    print(f"{SENSOR} ticked {time.monotonic() - began:.1f} s after it was started")
    assert tick["status"] != "FAILURE", tick["error"]
    assert tick["runIds"] == [], tick
    return tick


def deleted_partitions(tick: Mapping[str, Any]) -> list[str]:
    return [
        key
        for result in tick["dynamicPartitionsRequestResults"]
        if result["type"] == "DELETE_PARTITIONS"
        for key in result["partitionKeys"]
    ]


def show_retirement(
    page: Page, base: str, world: str, worlds_file: Path, artifacts: Path, name: str
) -> None:
    """The sensor page's latest tick: one partition deleted, and its log says which."""
    page.goto(f"{base}/locations/{LOCATION}/sensors/{SENSOR}")
    expect(page.get_by_text(re.compile(r"1 partitions? deleted")).first).to_be_visible()
    shot(page, artifacts, f"{name}-tick")
    page.get_by_text("View logs").first.click()
    logs = page.get_by_role("dialog").filter(has_text=f"Logs for {SENSOR}")
    expect(
        logs.get_by_text(
            f"retiring the partitions of 1 worlds no longer in file {worlds_file}: {world}"
        )
    ).to_be_visible()
    shot(page, artifacts, f"{name}-log")


def show_partitions_without(page: Page, base: str, world: str) -> None:
    """The ``characters`` partitions: the world set up is there, ``world`` is not."""
    page.goto(f"{base}/assets/characters?view=partitions")
    expect(page.get_by_text(WORLD_ID, exact=True).first).to_be_visible()
    expect(page.get_by_text(world, exact=True)).to_have_count(0)


# -- the flows -----------------------------------------------------------------------------


@pytest.mark.timeout(300)
def test_avatar_previews_load_after_the_stack_restarts(
    browser: Browser,
    flows: Deployment,
    set_up: str,
    paid_images: PaidImages,
    artifacts: Path,
) -> None:
    live, base = flows, flows.url
    stack_url = live.stack.http_url

    with fresh_page(browser) as page:
        before = avatar_previews(page, base, stack_url)
        shot(page, artifacts, "13-1a-avatar-previews")
    assert before and all(image["width"] > 0 for image in before), before

    with stack_stopped(live, paid_images), fresh_page(browser) as page:
        # With the object store down, the same previews fail: they do come from it.
        down = avatar_previews(page, base, stack_url)
        shot(page, artifacts, "13-1b-avatar-previews-stack-down")
        assert [image["width"] for image in down] == [0] * len(before), down

    with fresh_page(browser) as page:
        after = avatar_previews(page, base, stack_url)
        shot(page, artifacts, "13-1c-avatar-previews-after-restart")
    assert [i["src"] for i in after] == [i["src"] for i in before]
    assert all(image["width"] > 0 for image in after), after
    # The platform came back with its data, on the addresses the code server has.
    people = live.platform(WORLD_ID, "characters")
    assert len(people) == WORLD["characters"]
    assert all(p["avatar_media_id"] for p in people)


@pytest.mark.timeout(300)
def test_the_lineage_connects_a_worlds_setup_to_its_posts(
    browser: Browser, flows: Deployment, artifacts: Path
) -> None:
    base = flows.url

    with fresh_page(browser) as page:
        # post_drafts' own page lists its upstream assets: the world's characters, avatars.
        page.goto(f"{base}/assets/post_drafts")
        upstream = page.get_by_text("Upstream assets", exact=True).locator("xpath=..")
        expect(upstream.locator("a")).to_have_count(2)
        links = {a.get_attribute("href") for a in upstream.locator("a").all()}
        assert links == {"/assets/characters", "/assets/character_avatars"}
        downstream = page.get_by_text("Downstream assets", exact=True).locator("xpath=..")
        expect(downstream.locator("a[href='/assets/post_images']")).to_have_count(1)
        shot(page, artifacts, "13-2a-post-drafts-upstream-assets")

        # Its lineage, one level up: exactly those two, and nothing further up.
        page.goto(f"{base}/assets/post_drafts?view=lineage&lineageScope=upstream&lineageDepth=1")
        for asset in ("characters", "character_avatars"):
            expect(page.get_by_text(asset, exact=True).first).to_be_visible()
        for asset in ("world_brief", "posts", "world_report"):
            expect(page.get_by_text(asset, exact=True)).to_have_count(0)
        shot(page, artifacts, "13-2b-post-drafts-lineage-one-level-up")

    with fresh_page(browser, width=WIDE, height=1100) as page:
        # posts, all the way up: one chain from the world's brief to its published posts.
        page.goto(f"{base}/assets/posts?view=lineage&lineageScope=upstream")
        page.get_by_role("button", name="All", exact=True).click()
        for asset in ("world_brief", "characters", "character_avatars", "post_drafts"):
            expect(page.get_by_text(asset, exact=True).first).to_be_visible()
        expect(page.get_by_text("post_images", exact=True).first).to_be_visible()
        expect(page.get_by_text("world_report", exact=True)).to_have_count(0)
        shot(page, artifacts, "13-2c-posts-lineage-all-the-way-up")


@pytest.mark.timeout(300)
def test_the_world_report_shows_the_worlds_cost_and_output_per_day(
    browser: Browser,
    flows: Deployment,
    day_posted: str,
    paid_images: PaidImages,
    artifacts: Path,
) -> None:
    live, base = flows, flows.url
    run_ok(live, "world_reports", WORLD_ID)

    with fresh_page(browser, width=WIDE, height=1200) as page:
        page.goto(f"{base}/assets/world_report?partition={WORLD_ID}")
        shown = metadata(page, "cost_usd_total")
        records = nested_table(page)
        shot(page, artifacts, "13-3-world-report-by-day")

    by_day = {r["period"]: {k: float(v) for k, v in r.items() if k != "period"} for r in records}
    print(f"world_report by_day: {by_day}")
    periods = list(by_day)
    assert periods[0] == "setup" and periods[-1] == "total" and day_posted in periods, periods
    days = periods[1:-1]
    setup, day, total = by_day["setup"], by_day[day_posted], by_day["total"]

    # The table adds up: the total row is the sum of the others, column by column.
    for column, value in total.items():
        assert value == pytest.approx(sum(by_day[p][column] for p in periods[:-1]), abs=1e-6)
    # The numbers beside it are the table's.
    assert float(shown["cost_usd_total"]) == pytest.approx(total["cost_usd"], abs=1e-6)
    assert float(shown["cost_usd_setup"]) == pytest.approx(setup["cost_usd"], abs=1e-6)
    assert float(shown["cost_usd_latest_day"]) == pytest.approx(
        by_day[days[-1]]["cost_usd"], abs=1e-6
    )
    assert shown["latest_day"] == days[-1]
    for key in ("characters", "posts_published", "images_paid", "failures"):
        assert float(shown[key]) == total[key], key

    # What the page says is what the platform holds.
    people = live.platform(WORLD_ID, "characters")
    published = live.platform(WORLD_ID, "posts")
    media = live.platform(WORLD_ID, "media")
    assert setup["characters"] == len(people) == WORLD["characters"]
    assert setup["avatars"] == sum(1 for p in people if p["avatar_media_id"])
    assert day["posts_published"] == WORLD["posts_per_day"]
    assert day["images_paid"] == day["posts_published"]
    assert total["posts_published"] == len(published)
    assert total["failures"] == 0 and total["posts_unfinished"] == 0
    # Each image paid once: an avatar or a post's image, each on the platform, each made by
    # the Runware stand-in (the only world with images here).
    assert total["images_paid"] == setup["avatars"] + total["posts_published"] == len(media)
    assert total["images_paid"] == paid_images.total(live)
    # The ledger's paid calls, each counted once.
    with Ledger(live.ledger_url) as ledger:
        calls = ledger.paid_calls(WORLD_ID)
    assert sum(c.images for c in calls) == total["images_paid"]
    assert sum(c.text_calls for c in calls) == total["text_calls"]
    assert sum(c.usd for c in calls) == pytest.approx(total["cost_usd"], abs=1e-6)
    # Each asset shows its own cost only: together they make the report's total.
    own = [latest_cost(live, a, WORLD_ID) for a in ("world_brief", "characters")]
    own.append(latest_cost(live, "character_avatars", WORLD_ID))
    for period in days:
        for asset in ("post_drafts", "post_images", "posts"):
            own.append(latest_cost(live, asset, f"{period}|{WORLD_ID}"))
    assert sum(own) == pytest.approx(total["cost_usd"], abs=1e-6), own


@pytest.mark.timeout(300)
def test_a_world_removed_from_the_catalog_is_skipped_and_its_partition_retired(
    browser: Browser, flows: Deployment, artifacts: Path
) -> None:
    live, base = flows, flows.url
    tick = latest_schedule_tick()

    with fresh_page(browser) as page:
        # While the catalog lists it, the schedule's run covers both worlds.
        before = preview_schedule(page, base, tick)
        shot(page, artifacts, "13-4a-schedule-preview-both-worlds")
    assert GONE_ID in before and WORLD_ID in before, before

    write_catalog(live, [w for w in live.catalog if w["id"] != GONE_ID])
    with fresh_page(browser) as page:
        after = preview_schedule(page, base, tick)
        shot(page, artifacts, "13-4b-schedule-preview-removed-world-skipped")
    assert f"generia/world: {WORLD_ID}" in after, after
    assert GONE_ID not in after, after

    removed_at = time.time()
    sensor_tick = tick_sensor(live, after=removed_at)
    assert deleted_partitions(sensor_tick) == [GONE_ID], sensor_tick
    assert GONE_ID not in world_partitions(live)

    with fresh_page(browser) as page:
        show_retirement(page, base, GONE_ID, live.worlds_file, artifacts, "13-4c-sensor")
    with fresh_page(browser) as page:
        show_partitions_without(page, base, GONE_ID)
        shot(page, artifacts, "13-4d-partitions-without-removed-world")


@pytest.mark.timeout(360)
def test_a_changed_prompt_a_lowered_count_and_a_stray_partition(
    browser: Browser, flows: Deployment, set_up: str, artifacts: Path
) -> None:
    live, base = flows, flows.url

    # A partition added by hand in the launch dialog, for a world no catalog lists.
    with fresh_page(browser) as page:
        page.goto(f"{base}/locations/__repository__@{LOCATION}/jobs/populate_world")
        page.get_by_role("button", name="Materialize all").click()
        launch = page.get_by_role("dialog").filter(has_text="Launch runs to materialize")
        expect(launch.get_by_text("Launch runs to materialize 3 assets")).to_be_visible()
        launch.get_by_text("Select a partition or create one").click()
        page.keyboard.type(STRAY)
        page.get_by_text("Add partition", exact=True).click()
        add = page.get_by_role("dialog").filter(has_text="Add a partition for worlds")
        add.locator("input").fill(STRAY)
        add.get_by_role("button", name="Save").click()
        expect(launch.get_by_role("button", name="Launch 1 run")).to_be_visible()
        expect(launch.get_by_text(STRAY).first).to_be_visible()
        shot(page, artifacts, "13-5a-stray-partition-added-in-the-ui")
        launch.get_by_role("button", name="Cancel").click()
    added_at = time.time()
    assert STRAY in world_partitions(live)

    # The world's prompt changes and its character count drops from 3 to 2; set it up again.
    changed = {**WORLD, "prompt": f"{WORLD['prompt']}, now with a lighthouse choir"}
    changed["characters"] = 2
    write_catalog(live, [changed if w["id"] == WORLD_ID else w for w in live.catalog])
    run_ok(live, "populate_world", WORLD_ID)

    with fresh_page(browser, height=1300) as page:
        page.goto(f"{base}/assets/world_brief?partition={WORLD_ID}")
        brief = metadata(page, "regenerated_because")
        shot(page, artifacts, "13-5b-world-brief-regenerated")
    assert brief["outcome"] == "regenerated", brief
    assert "prompt" in brief["regenerated_because"], brief

    with fresh_page(browser, height=1500) as page:
        page.goto(f"{base}/assets/characters?partition={WORLD_ID}")
        cast = metadata(page, "characters_beyond_target")
        profiles = nested_table(page)
        shot(page, artifacts, "13-5c-characters-beyond-target")
    assert cast["target"] == "2" and cast["characters_total"] == "3", cast
    assert cast["characters_beyond_target"] == "1", cast
    (resting,) = [p for p in profiles if int(p["slot"]) >= 2]
    assert cast["resting_characters"] == resting["name"], (cast, profiles)
    # The extra character stays on the platform ...
    people = {p["id"]: p for p in live.platform(WORLD_ID, "characters")}
    assert len(people) == 3 and resting["id"] in people

    # ... but gets no new posts: a new day's posts go to the other two.
    earlier = {p["post_id"] for p in live.platform(WORLD_ID, "posts")}
    run_ok(live, "daily_posts", f"{DAY2}|{WORLD_ID}")
    new = [p for p in live.platform(WORLD_ID, "posts") if p["post_id"] not in earlier]
    assert len(new) == WORLD["posts_per_day"], new
    assert resting["id"] not in {p["character_id"] for p in new}, new
    with fresh_page(browser, height=1700) as page:
        page.goto(f"{base}/assets/post_drafts?partition={quote(f'{DAY2}|{WORLD_ID}')}")
        drafts = metadata(page, "authors")
        authors = {row["author"] for row in nested_table(page)}
        shot(page, artifacts, "13-5d-new-day-without-the-resting-character")
    assert drafts["posts_planned"] == str(WORLD["posts_per_day"]), drafts
    assert authors <= {p["name"] for p in profiles if int(p["slot"]) < 2}, authors
    assert resting["name"] not in authors

    # The sensor's next tick retires the stray partition.
    sensor_tick = tick_sensor(live, after=added_at)
    assert deleted_partitions(sensor_tick) == [STRAY], sensor_tick
    assert STRAY not in world_partitions(live)
    with fresh_page(browser) as page:
        show_retirement(page, base, STRAY, live.worlds_file, artifacts, "13-5e-sensor")
    with fresh_page(browser) as page:
        show_partitions_without(page, base, STRAY)
        shot(page, artifacts, "13-5f-partitions-without-stray")

"""Retries, crashes and budgets: a re-run does only what is missing, never twice."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import WORLD
from pipeline_helpers import Bed

from generia_pipelines.resources.runware import RunwareResource

WORLD_ID = "neon-harbor"
DAY = "2026-11-21"


def _images(bed: Bed) -> int:
    assert bed.runware.standin is not None
    return bed.runware.standin.stats.images_generated


def _failure_text(result: Any) -> str:
    return " ".join(
        str(e.event_specific_data)
        for e in result.all_events
        if e.event_type_value == "STEP_FAILURE"
    )


@pytest.fixture
def silent_runware() -> Iterator[str]:
    """A Runware URL whose server accepts connections and never answers (a hung gateway)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    server.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"ws://127.0.0.1:{server.getsockname()[1]}/v1"
    stop.set()
    thread.join(timeout=5)
    for conn in held:
        conn.close()
    server.close()


def test_a_runware_outage_spends_nothing_and_the_next_run_completes(
    bed: Bed, silent_runware: str
) -> None:
    """Runware accepts the connection and never authenticates: every image fails with a
    message naming Runware and its address, no budget is consumed, the step is not retried,
    and once Runware is back the next run completes the day, paying each image once."""
    assert bed.setup(WORLD_ID).success
    before = _images(bed)
    env = bed.stack.env
    down = RunwareResource(
        api_key=env["RUNWARE_API_KEY"], url=silent_runware, connect_timeout_s=1.0
    )
    result = bed.day(WORLD_ID, DAY, resources=bed.resources(runware=down), raise_on_error=False)
    assert not result.success
    text = _failure_text(result)
    posts = WORLD["posts_per_day"]
    assert f"Runware unreachable at {silent_runware}" in text
    assert f"{posts} of {posts} post images" in text and "not retried" in text
    with bed.ledger() as ledger:
        assert ledger.spent(WORLD_ID, DAY).images == 0
        assert ledger.reserved(WORLD_ID, DAY).images == 0
    assert _images(bed) == before
    assert bed.day(WORLD_ID, DAY).success  # Runware is back
    assert _images(bed) == before + posts
    assert len(bed.platform(WORLD_ID, "posts")) == posts


def test_failed_publication_is_retried_by_dagster_without_duplicates(bed: Bed) -> None:
    assert bed.setup(WORLD_ID).success
    # INTERNAL is not retried by the client: three posts fail, the step fails, Dagster's
    # retry policy re-runs the step, which publishes only what is missing.
    bed.stack.faults.set("CreateAIPost", error_code="INTERNAL", times=3)
    result = bed.day(WORLD_ID, DAY)
    assert result.success
    published = bed.platform(WORLD_ID, "posts")
    assert len(published) == 6 and len({p["post_id"] for p in published}) == 6
    assert bed.stack.stats.get("post.CreateAIPost").calls == 6 + 3
    assert _images(bed) == 4 + 6


def test_lost_responses_after_commit_create_no_duplicates(bed: Bed) -> None:
    bed.stack.faults.set("CreateCharacter", drop_after_commit_rate=1.0, times=2)
    bed.stack.faults.set("CreateAIPost", drop_after_commit_rate=1.0, times=2)
    assert bed.setup(WORLD_ID).success
    assert bed.day(WORLD_ID, DAY).success
    assert len(bed.platform(WORLD_ID, "characters")) == 4
    assert len(bed.platform(WORLD_ID, "posts")) == 6
    assert bed.stack.stats.get("character.CreateCharacter").replays >= 2
    with bed.ledger() as ledger:
        assert ledger.duplicates(WORLD_ID) == []


def test_runware_failures_are_retried_and_paid_once(bed: Bed) -> None:
    assert bed.setup(WORLD_ID).success
    standin = bed.runware.standin
    assert standin is not None
    standin.faults.set(fail_next=2, drop_next=1)
    assert bed.day(WORLD_ID, DAY).success
    assert len(bed.platform(WORLD_ID, "posts")) == 6
    with bed.ledger() as ledger:
        paid = [u for u in ledger.units(WORLD_ID, "posts", DAY) if u.image is not None]
        assert len(paid) == 6


def test_images_billed_for_a_failed_call_are_in_the_ledger(bed: Bed) -> None:
    """Undecodable images are paid for; when the call then fails, the ledger still counts
    them, so its costs match what Runware billed."""
    assert bed.setup(WORLD_ID).success
    standin = bed.runware.standin
    assert standin is not None
    standin.faults.set(garbage_next=1)  # the first task is garbage; its second is fine
    env = bed.stack.env
    runware = RunwareResource(
        api_key=env["RUNWARE_API_KEY"], url=env["RUNWARE_URL"], max_attempts=1
    )
    assert bed.day(WORLD_ID, DAY, resources=bed.resources(runware=runware)).success
    assert _images(bed) == 4 + 6 + 1
    with bed.ledger() as ledger:
        assert ledger.cost(WORLD_ID) == pytest.approx(standin.stats.snapshot().cost_reported_usd)
        assert ledger.spent(WORLD_ID, DAY).images == 6 + 1  # billed images, garbage included


def test_runware_sending_only_garbage_stops_the_step_naming_it(bed: Bed) -> None:
    """Every result is undecodable: the step stops after a few in a row instead of paying on
    until the budget is gone, and says what came back."""
    assert bed.setup(WORLD_ID).success
    standin = bed.runware.standin
    assert standin is not None
    before = _images(bed)
    standin.faults.set(garbage_next=1000)
    result = bed.day(WORLD_ID, DAY, raise_on_error=False)
    assert not result.success
    failure = _failure_text(result)
    assert "unusable images in a row" in failure and "not a decodable image" in failure
    paid = _images(bed) - before
    assert paid == 3  # tasks go one at a time until one image is usable: 3 in a row stop it
    assert "not retried" in failure  # a step retry would pay for more garbage
    with bed.ledger() as ledger:
        assert ledger.spent(WORLD_ID, DAY).images == paid  # each billed garbage is counted
    standin.faults.set(garbage_next=0)
    assert bed.day(WORLD_ID, DAY).success  # Runware is fixed: the budget left completes it


def test_confirmed_avatar_whose_attach_failed_is_attached_without_paying_again(
    bed: Bed,
) -> None:
    """The avatars are confirmed (their bytes dropped), then UpdateCharacter fails (INTERNAL
    is not retried by the client): the step retry attaches the same media, paying nothing."""
    bed.stack.faults.set("UpdateCharacter", error_code="INTERNAL", times=4)
    assert bed.setup(WORLD_ID).success
    assert _images(bed) == 4
    people = bed.platform(WORLD_ID, "characters")
    media = {m["media_id"]: m for m in bed.platform(WORLD_ID, "media")}
    assert all(media[p["avatar_media_id"]]["character_id"] == p["id"] for p in people)


def test_crash_after_images_resumes_from_the_ledger(bed: Bed) -> None:
    """A run that dies after paying for images but before publishing: the re-run reuses."""
    assert bed.setup(WORLD_ID).success
    bed.stack.faults.set("ConfirmUpload", error_code="INTERNAL", times=50)
    broken = bed.day(WORLD_ID, DAY, raise_on_error=False)
    assert not broken.success
    paid = _images(bed)
    assert paid == 4 + 6  # every post image was generated once, then the confirms failed
    bed.stack.faults.clear()
    assert bed.day(WORLD_ID, DAY).success
    assert _images(bed) == paid  # nothing paid twice
    assert len(bed.platform(WORLD_ID, "posts")) == 6


def test_budget_stops_spending_and_keeps_what_was_done(bed: Bed) -> None:
    bed.write_worlds([{**WORLD, "budget": {"daily": {"images": 2}}}])
    assert bed.setup(WORLD_ID).success
    result = bed.day(WORLD_ID, DAY, raise_on_error=False)
    assert not result.success
    text = _failure_text(result)
    assert "budget" in text and WORLD_ID in text
    assert _images(bed) == 4 + 2
    with bed.ledger() as ledger:
        confirmed = [u for u in ledger.units(WORLD_ID, "posts", DAY) if u.media_id]
        assert len(confirmed) == 2

    bed.write_worlds([{**WORLD, "budget": {"daily": {"images": 6}}}])
    assert bed.day(WORLD_ID, DAY).success  # drafts reused, the missing images made
    assert _images(bed) == 4 + 6  # only the four missing images were paid for
    assert len(bed.platform(WORLD_ID, "posts")) == 6


def test_raising_the_character_count_adds_only_new_characters(bed: Bed) -> None:
    assert bed.setup(WORLD_ID).success
    first = {p["id"] for p in bed.platform(WORLD_ID, "characters")}
    bed.write_worlds([{**WORLD, "characters": 6}])
    assert bed.setup(WORLD_ID).success
    now = {p["id"] for p in bed.platform(WORLD_ID, "characters")}
    assert first < now and len(now) == 6
    assert _images(bed) == 6  # two new avatars only


def test_world_missing_from_the_catalog_fails_naming_it(bed: Bed) -> None:
    result = bed.setup("ghost-town", raise_on_error=False)
    assert not result.success
    text = _failure_text(result)
    assert "ghost-town" in text and "worlds.yaml" in text


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small disk needs root")
def test_a_ledger_that_cannot_be_written_stops_the_day_before_any_image(
    bed: Bed, tmp_path: Path
) -> None:
    """The ledger's disk fills up mid-life: the day's run stops with an error naming the
    ledger's file, pays Runware for nothing (no intent, no call), and is not retried."""
    disk = tmp_path / "ledger-disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        path = disk / "ledger.sqlite"
        small = replace(bed, ledger_url=f"sqlite:///{path}")
        assert small.setup(WORLD_ID).success
        before = _images(bed)
        filler = disk / "filler"
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=4k"], capture_output=True)
        result = small.day(WORLD_ID, DAY, raise_on_error=False)
        assert not result.success
        text = _failure_text(result)
        assert f"the ledger at sqlite:///{path} cannot be used" in text
        assert "not retried" in text
        assert _images(bed) == before  # no image without its intent in the ledger
        filler.unlink()
        assert small.day(WORLD_ID, DAY).success  # space again: the day completes
        assert _images(bed) == before + WORLD["posts_per_day"]
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)

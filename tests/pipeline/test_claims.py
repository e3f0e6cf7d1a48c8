"""Leases and budget reservations in the ledger, on SQLite and the real PostgreSQL, across
real processes: one holder per unit, dead holders taken over, reservations that count money
and never outlive their holder."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from ledger_targets import Target

from generia_pipelines.budget import Budget, BudgetExceeded, Spend
from generia_pipelines.generation.planning import post_key
from generia_pipelines.ledger import Holder, Ledger, LedgerUnwritable
from generia_pipelines.units.session import ClaimSession, LeaseLost, UnitBusy

WORLD = "salt-harbor"
DAY = "2026-11-24"
KEY = post_key(WORLD, DAY, 0)
OPEN = Budget(None, None, None)


def _claim_in_process(
    url: str, schema: str | None, key: str, start: Any, out: Any, finish: Any
) -> None:
    ledger = Ledger(url, schema=schema)
    holder = Holder.new(f"run-{os.getpid()}")
    start.wait(timeout=60)  # every process is ready: claim at the same instant
    claim = ledger.claim(key, holder, ttl_s=30)
    out.put((os.getpid(), claim.held))
    finish.wait(timeout=60)  # stay alive: a dead holder's lease is rightly taken over
    ledger.close()


def test_one_process_of_many_wins_a_unit(target: Target) -> None:
    """Six processes claim the same unit at the same instant: exactly one holds it."""
    target.open().close()  # create the tables once
    ctx = multiprocessing.get_context("spawn")
    out, start, finish = ctx.Queue(), ctx.Barrier(6), ctx.Event()
    procs = [
        ctx.Process(
            target=_claim_in_process, args=(target.url, target.schema, KEY, start, out, finish)
        )
        for _ in range(6)
    ]
    for proc in procs:
        proc.start()
    try:
        results = [out.get(timeout=90) for _ in procs]
    finally:
        finish.set()
        for proc in procs:
            proc.join(timeout=30)
    assert sum(held for _, held in results) == 1, results


def test_a_live_lease_is_never_worked_around_and_an_expired_one_is_taken_over(
    ledger: Ledger,
) -> None:
    first, second = Holder.new("run-aaaa1111"), Holder.new("run-bbbb2222")
    assert ledger.claim(KEY, first, ttl_s=0.5).held
    assert ledger.claim(KEY, first, ttl_s=0.5).held  # renewing our own
    refused = ledger.claim(KEY, second, ttl_s=30)
    assert not refused.held and refused.run_id == "run-aaaa1111"
    time.sleep(0.7)
    taken = ledger.claim(KEY, second, ttl_s=30)
    assert taken.held and taken.took_over == "run-aaaa1111"
    assert not ledger.claim(KEY, first, ttl_s=30).held


def test_a_dead_holder_on_this_host_is_taken_over_at_once(ledger: Ledger, target: Target) -> None:
    """A run killed mid-unit: its lease would last 10 minutes, but its process is gone."""
    script = (
        "import sys; from generia_pipelines.ledger import Budget, Ledger, Holder; "
        "l = Ledger(sys.argv[1], schema=sys.argv[2] or None); h = Holder.new('run-dead0001'); "
        f"l.reserve({KEY!r}, Budget(None, None, None),"
        " holder=h.token, ttl_s=600, kind='image', usd=0.0006); "
        f"print(l.claim({KEY!r}, h, ttl_s=600).held)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, target.url, target.schema or ""],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.strip() == "True", done.stderr
    budget = Budget(images=1, text_calls=None, usd=None)
    # The dead run's reservation still holds the only image of the budget...
    with pytest.raises(BudgetExceeded, match="held by calls in flight now: 1 images"):
        ledger.check_budget(WORLD, budget, period=DAY, images=1)
    claim = ledger.claim(KEY, Holder.new("run-live0002"), ttl_s=30)
    assert claim.held and claim.took_over == "run-dead0001"
    # ...until its lease is taken over: what it reserved is no longer held.
    assert ledger.reserved(WORLD, DAY) == Spend()
    ledger.check_budget(WORLD, budget, period=DAY, images=1)


def test_reservations_count_money_not_attempts(ledger: Ledger) -> None:
    holder = Holder.new("run-1")
    budget = Budget(images=2, text_calls=None, usd=None)
    first = ledger.reserve(KEY, budget, holder=holder.token, ttl_s=30, kind="image", usd=0.0006)
    second = ledger.reserve(KEY, budget, holder=holder.token, ttl_s=30, kind="image", usd=0.0006)
    with pytest.raises(BudgetExceeded, match="in flight"):
        ledger.reserve(KEY, budget, holder=holder.token, ttl_s=30, kind="image", usd=0.0006)
    ledger.release(first.reservation_id, "connection refused")  # provably not billed
    third = ledger.reserve(KEY, budget, holder=holder.token, ttl_s=30, kind="image", usd=0.0006)
    assert ledger.settle(second.reservation_id, 0.0007) == pytest.approx(0.0007)
    assert ledger.settle(second.reservation_id, 0.0007) == 0.0  # never counted twice
    spent = ledger.spent(WORLD, DAY)
    assert (spent.images, spent.usd) == (1, pytest.approx(0.0007))
    assert ledger.reserved(WORLD, DAY).images == 1
    ledger.release_claims(holder)  # the run ends with `third` unresolved
    assert ledger.reserved(WORLD, DAY) == Spend()
    resumed = ledger.reserve(
        KEY, budget, holder="run-2", ttl_s=30, kind="image", usd=0.0006, resume=True
    )
    assert resumed.resumed and resumed.reservation_id == third.reservation_id


def test_a_paid_image_and_its_spend_are_written_together(ledger: Ledger) -> None:
    holder = Holder.new("run-1")
    intent = ledger.reserve(KEY, OPEN, holder=holder.token, ttl_s=30, kind="image", usd=0.0006)
    png = b"\x89PNG\r\n\x1a\n" + bytes(64)
    unit = ledger.record_paid_image(KEY, png, {}, intent.reservation_id, 0.0005)
    assert unit.image is not None and unit.cost_usd == pytest.approx(0.0005)
    assert ledger.spent(WORLD, DAY).images == 1
    again = ledger.reserve(
        KEY, OPEN, holder=holder.token, ttl_s=30, kind="image", usd=0.0006, resume=True
    )
    assert not again.resumed and again.reservation_id != intent.reservation_id


async def test_a_session_waits_for_a_live_holder_then_reports_it(ledger: Ledger) -> None:
    other = Holder.new("run-other777")
    assert ledger.claim(KEY, other, ttl_s=30).held
    async with ClaimSession(ledger, Holder.new("run-me"), wait_s=0.3, poll_s=0.05) as claims:
        with pytest.raises(UnitBusy, match="in progress in run run-othe"):
            await claims.acquire(KEY)
        finished = await claims.acquire(KEY, finished=lambda: True)
        assert finished is False  # the other run finished it meanwhile: nothing to do
        with pytest.raises(LeaseLost):
            claims.ensure(KEY)
    ledger.release_claims(other)
    async with ClaimSession(ledger, Holder.new("run-me"), ttl_s=0.3) as claims:
        assert await claims.acquire(KEY)
        await asyncio.sleep(0.5)  # renewed in the background meanwhile
        claims.ensure(KEY)
        assert not ledger.claim(KEY, Holder.new("run-third"), ttl_s=30).held
    assert ledger.claim(KEY, Holder.new("run-third"), ttl_s=30).held  # released at the end


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small disk needs root")
def test_a_full_disk_stops_before_paying_with_the_ledgers_path(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)])
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        ledger = Ledger(f"sqlite:///{disk / 'ledger.sqlite'}")
        ledger.plan([KEY])
        subprocess.run(
            f"dd if=/dev/zero of={disk / 'filler'} bs=4k",
            shell=True,
            check=False,
            capture_output=True,
        )
        with pytest.raises(LedgerUnwritable, match=str(disk / "ledger.sqlite")):
            for slot in range(64):
                ledger.reserve(
                    post_key(WORLD, DAY, slot),
                    OPEN,
                    holder="h",
                    ttl_s=30,
                    kind="image",
                    usd=0.0006,
                )
                ledger.record_image(
                    post_key(WORLD, DAY, slot), b"\x89PNG\r\n\x1a\n" + bytes(90_000), {}, 0
                )
        ledger.close()
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_ledger_of_an_earlier_version_gains_the_columns_it_lacks(target: Target) -> None:
    """Upgrading: a ledger whose leases table predates a nullable column still opens, and
    the column is added, instead of every later write failing on it."""
    first = target.open()
    table = f'"{target.schema}".generia_ledger_leases' if target.schema else "generia_ledger_leases"
    with first._engine.begin() as conn:
        conn.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN previous_run")
    first.close()
    upgraded = target.open()
    try:
        assert upgraded.claim(KEY, Holder.new("run-after-upgrade"), ttl_s=30).held
        columns = {
            c["name"]
            for c in sa.inspect(upgraded._engine).get_columns(
                "generia_ledger_leases", schema=target.schema
            )
        }
        assert "previous_run" in columns
    finally:
        upgraded.close()

"""The generation ledger on SQLite and on the real PostgreSQL: one row per unit whatever the
concurrency, paid images reused after a crash, budgets refused before spending."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest
import sqlalchemy as sa
from dagster import DagsterInstance, asset, materialize
from ledger_targets import PG_URL, Target

from generia_pipelines.budget import Budget, BudgetExceeded, BudgetLimits, BudgetOverrides, Spend
from generia_pipelines.clients.errors import ConfigError
from generia_pipelines.clients.records import MediaVariant
from generia_pipelines.generation.planning import avatar_key, character_key, post_key
from generia_pipelines.ledger import (
    Ledger,
    LedgerError,
    Stage,
    default_ledger_url,
    mask_url,
    units_table,
)
from generia_pipelines.resources.ledger import LedgerResource

WORLD = "neon-harbor"
DAY = "2026-11-24"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
T = TypeVar("T")


def run_together(count: int, work: Callable[[int], T]) -> list[T | BaseException]:
    """Run ``work(i)`` in ``count`` threads released at the same moment."""
    barrier = threading.Barrier(count)

    def start(index: int) -> T | BaseException:
        barrier.wait()
        try:
            return work(index)
        except BaseException as exc:
            return exc

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(start, range(count)))


def assert_spend(spend: Spend, images: int, text_calls: int, usd: float) -> None:
    assert (spend.images, spend.text_calls) == (images, text_calls)
    assert spend.usd == pytest.approx(usd)


def row_count(ledger: Ledger, key: str) -> int:
    return len([u for u in ledger.units(WORLD, key.split("/")[0]) if u.key == key])


# -- units -------------------------------------------------------------------------------


def test_plan_creates_each_unit_once(ledger: Ledger) -> None:
    keys = [character_key(WORLD, slot) for slot in range(12)]
    first = ledger.plan(keys)
    assert set(first) == set(keys)
    assert all(unit.status is Stage.PLANNED for unit in first.values())
    ledger.record_text(keys[0], {"name": "Ada"})
    again = ledger.plan(keys)
    assert again[keys[0]].status is Stage.TEXT_DONE  # planning again keeps progress
    units = ledger.units(WORLD, "characters")
    assert [u.slot_number for u in units] == list(range(12))  # numeric, not "10" < "2"
    assert ledger.units(WORLD, "posts") == []
    assert ledger.get("characters/other/0") is None
    assert ledger.plan([]) == {}


def test_unit_fields_and_filters(ledger: Ledger) -> None:
    key = post_key(WORLD, DAY, 3)
    unit = ledger.record_text(key, {"caption": "Rain again", "tags": ["rain"]}, character_id="c1")
    assert (unit.kind, unit.world_id, unit.partition, unit.slot) == ("posts", WORLD, DAY, "3")
    assert unit.payload == {"caption": "Rain again", "tags": ["rain"]}
    assert unit.character_id == "c1"
    assert unit.created_at is not None and unit.created_at.tzinfo is not None
    ledger.plan([post_key(WORLD, "2026-11-25", 0), character_key("other-world", 0)])
    assert [u.key for u in ledger.units(WORLD, "posts", DAY)] == [key]
    assert len(ledger.units(WORLD, "posts")) == 2
    assert ledger.counts(WORLD) == {"posts": {"text_done": 1, "planned": 1}}
    assert ledger.counts(WORLD, partition=DAY) == {"posts": {"text_done": 1}}


def test_first_text_wins_and_stages_only_move_forward(ledger: Ledger) -> None:
    key = character_key(WORLD, 0)
    ledger.record_text(key, {"name": "Ada"})
    assert ledger.record_text(key, {"name": "Bob"}).payload == {"name": "Ada"}
    ledger.record_created(key, "char-1")
    unit = ledger.record_text(key, {"name": "Cy"})
    assert unit.status is Stage.CREATED
    assert unit.done and unit.remote_id == "char-1"
    with pytest.raises(TypeError, match="JSON-serialisable"):
        ledger.record_text(character_key(WORLD, 1), {"when": object()})


def test_failures_count_attempts_and_keep_the_stage(ledger: Ledger) -> None:
    key = post_key(WORLD, DAY, 0)
    ledger.record_text(key, {"caption": "x"})
    ledger.record_failure(key, "Runware timed out")
    unit = ledger.record_failure(key, TimeoutError("again"))
    assert (unit.attempts, unit.status) == (2, Stage.TEXT_DONE)
    assert unit.error == "TimeoutError: again"
    unit = ledger.record_image(key, PNG, {}, 0.0006)
    assert (unit.attempts, unit.error, unit.status) == (2, None, Stage.IMAGE_DONE)


def test_media_flow_and_bytes_dropped_after_confirmation(ledger: Ledger) -> None:
    key = avatar_key(WORLD, "char-1")
    unit = ledger.record_image(key, PNG, {"seed": 7, "model": "runware:100@1"}, 0.0006)
    assert unit.image is not None
    assert (unit.image.size, unit.image.content_type) == (len(PNG), "image/png")
    assert unit.image.meta == {"seed": 7, "model": "runware:100@1"}
    assert ledger.record_upload(key, "m1").media_id == "m1"
    assert ledger.record_upload(key, "m2").media_id == "m2"  # re-presigned before confirm
    variants = [MediaVariant("original", "http://x/o.png", 512, 512)]
    unit = ledger.record_media(key, "m2", variants)
    assert unit.status is Stage.CONFIRMED
    assert unit.variants == (
        {"name": "original", "url": "http://x/o.png", "width": 512, "height": 512},
    )
    assert ledger.load_image(key) is None  # the platform has it now
    assert ledger.record_upload(key, "m3").media_id == "m2"  # confirmed media is final
    unit = ledger.record_created(key)
    assert unit.done and unit.remote_id == "m2"


def test_keep_images_keeps_the_bytes(target: Target) -> None:
    with target.open(keep_images=True) as ledger:
        key = avatar_key(WORLD, "char-1")
        ledger.record_image(key, PNG, {"content_type": "image/png"}, 0.0)
        ledger.record_media(key, "m1", [{"name": "original", "url": "u", "width": 1, "height": 1}])
        stored = ledger.load_image(key)
        assert stored is not None and stored.data == PNG


def test_paid_image_is_reused_after_a_crash(target: Target) -> None:
    """A step dies after paying for an image; the retry (a new process, a new Ledger on the
    same URL) finds the bytes and does not pay again."""
    key = post_key(WORLD, DAY, 5)
    budget = Budget.for_day(10)
    paid: list[bytes] = []

    def image_for(ledger: Ledger) -> bytes:
        unit = ledger.get(key)
        if unit is not None and unit.image is not None:
            stored = ledger.load_image(key)
            assert stored is not None
            return stored.data
        ledger.spend(WORLD, budget, period=DAY, images=1, usd=0.0006)
        data = PNG + os.urandom(16)  # a paid generation: unique bytes
        paid.append(data)
        ledger.record_image(key, data, {"seed": 1}, 0.0006)
        return data

    first = target.open()
    first.record_text(key, {"caption": "Harbor lights"}, character_id="c1")
    before_crash = image_for(first)
    # Crash: the process dies here, before the upload. Nothing is closed cleanly.

    retry = target.open()
    try:
        unit = retry.get(key)
        assert unit is not None and unit.status is Stage.IMAGE_DONE
        assert image_for(retry) == before_crash
        assert len(paid) == 1
        assert retry.cost(WORLD) == pytest.approx(0.0006)
        assert_spend(retry.spent(WORLD, DAY), 1, 0, 0.0006)
    finally:
        retry.close()
        first.close()


def test_created_twice_keeps_the_first_id_and_reports_the_orphan(ledger: Ledger) -> None:
    key = post_key(WORLD, DAY, 0)
    ledger.record_created(key, "post-1")
    unit = ledger.record_created(key, "post-2")
    assert unit.post_id == "post-1"
    assert [o["id"] for o in unit.orphans] == ["post-2"]
    assert ledger.record_created(key, "post-2").orphans == unit.orphans  # reported once
    [duplicate] = ledger.duplicates(WORLD)
    assert (duplicate.field, duplicate.remote_id, duplicate.unit_keys) == (
        "post_id",
        "post-2",
        (key,),
    )
    assert "kept post-1" in duplicate.reason
    with pytest.raises(ValueError, match="remote_id"):
        ledger.record_created(character_key(WORLD, 0))


def test_duplicates_finds_remote_ids_shared_by_units(ledger: Ledger) -> None:
    ledger.record_created(character_key(WORLD, 0), "char-1")
    ledger.record_created(character_key(WORLD, 1), "char-1")
    ledger.record_created(character_key(WORLD, 2), "char-2")
    ledger.record_media(post_key(WORLD, DAY, 0), "m1")
    ledger.record_media(post_key(WORLD, DAY, 1), "m1")
    for slot in range(3):  # posts share their author legitimately
        ledger.record_text(post_key(WORLD, DAY, slot + 5), {"c": slot}, character_id="char-2")
    found = {(d.field, d.remote_id): d.unit_keys for d in ledger.duplicates()}
    assert found == {
        ("character_id", "char-1"): (character_key(WORLD, 0), character_key(WORLD, 1)),
        ("media_id", "m1"): (post_key(WORLD, DAY, 0), post_key(WORLD, DAY, 1)),
    }
    assert ledger.duplicates("other-world") == []


def test_cost_sums_units_once(ledger: Ledger) -> None:
    ledger.record_image(post_key(WORLD, DAY, 0), PNG, {}, 0.0006)
    ledger.record_image(post_key(WORLD, DAY, 1), PNG, {}, 0.0008)
    ledger.record_image(avatar_key(WORLD, "c1"), PNG, {}, 0.001)
    assert ledger.cost(WORLD) == pytest.approx(0.0024)
    assert ledger.cost(WORLD, kind="posts") == pytest.approx(0.0014)
    assert ledger.cost(WORLD, kind="posts", partition="2026-11-25") == 0.0
    assert ledger.cost("other-world") == 0.0


def test_cost_of_discarded_results_counts_without_an_image(ledger: Ledger) -> None:
    key = post_key(WORLD, DAY, 0)
    unit = ledger.record_cost(key, 0.0012)  # two undecodable images, then the call failed
    assert unit.image is None and unit.status is Stage.PLANNED
    ledger.record_image(key, PNG, {}, 0.0006)
    assert ledger.cost(WORLD) == pytest.approx(0.0018)
    with pytest.raises(ValueError):
        ledger.record_cost(key, -1.0)


# -- concurrency -------------------------------------------------------------------------


def test_concurrent_writers_on_one_unit_make_one_row(target: Target) -> None:
    """Overlapping steps (separate Ledger objects, like separate processes) race on a unit."""
    writers = [target.open() for _ in range(8)]
    key = post_key(WORLD, DAY, 9)
    try:
        texts = run_together(8, lambda i: writers[i].record_text(key, {"caption": f"v{i}"}))
        assert not [r for r in texts if isinstance(r, BaseException)], texts
        payloads = {str(r.payload) for r in texts if not isinstance(r, BaseException)}
        assert len(payloads) == 1  # everyone got the winner's text

        images = run_together(
            8, lambda i: writers[i].record_image(key, PNG + bytes([i]), {"i": i}, 0.0006)
        )
        shas = {r.image.sha256 for r in images if not isinstance(r, BaseException) and r.image}
        assert len(shas) == 1 and len(images) == 8
        stored = writers[0].load_image(key)
        assert stored is not None and stored.info.sha256 in shas
        assert writers[0].cost(WORLD) == pytest.approx(8 * 0.0006)  # each one was paid

        created = run_together(8, lambda i: writers[i].record_created(key, f"post-{i}"))
        kept = {r.post_id for r in created if not isinstance(r, BaseException)}
        assert len(kept) == 1
        unit = writers[0].get(key)
        assert unit is not None and len(unit.orphans) == 7
        assert row_count(writers[0], key) == 1
    finally:
        for writer in writers:
            writer.close()


def test_concurrent_planning_makes_one_row_per_key(ledger: Ledger) -> None:
    keys = [character_key(WORLD, slot) for slot in range(20)]
    results = run_together(11, lambda i: ledger.plan(keys[i : i + 10]))
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert [u.key for u in ledger.units(WORLD, "characters")] == keys
    with ledger._engine.begin() as conn:  # the unique key itself
        assert conn.execute(sa.select(sa.func.count()).select_from(units_table)).scalar() == 20


def test_concurrent_spending_never_overshoots_the_budget(target: Target) -> None:
    writers = [target.open() for _ in range(4)]
    budget = Budget(images=10, text_calls=None, usd=None)
    try:
        results = run_together(
            24, lambda i: writers[i % 4].spend(WORLD, budget, period=DAY, images=1, usd=0.0006)
        )
        refused = [r for r in results if isinstance(r, BudgetExceeded)]
        granted = [r for r in results if isinstance(r, Spend)]
        assert (len(granted), len(refused)) == (10, 14), results
        assert_spend(writers[0].spent(WORLD, DAY), 10, 0, 0.006)
    finally:
        for writer in writers:
            writer.close()


# -- budgets -------------------------------------------------------------------------------


def test_budget_exceeded_is_raised_before_spending(ledger: Ledger) -> None:
    budget = Budget(images=3, text_calls=5, usd=0.002)
    for _ in range(3):
        ledger.spend(WORLD, budget, period=DAY, images=1, usd=0.0006)
    with pytest.raises(BudgetExceeded) as caught:
        ledger.spend(WORLD, budget, period=DAY, images=1, usd=0.0006)
    error = caught.value
    message = str(error)
    assert "'neon-harbor'" in message and f"day {DAY}" in message
    assert "images 3 spent + 1 requested > limit 3" in message
    assert "USD 0.0018 spent + 0.0006 requested > limit 0.0020" in message
    assert "Nothing was spent" in message and "budget.daily" in message
    assert (error.world_id, error.period, error.spent.images) == (WORLD, DAY, 3)
    assert_spend(ledger.spent(WORLD, DAY), 3, 0, 0.0018)  # unchanged

    ledger.spend(WORLD, budget, period=DAY, text_calls=5)
    with pytest.raises(BudgetExceeded, match="text calls 5 spent \\+ 1 requested > limit 5"):
        ledger.check_budget(WORLD, budget, period=DAY, text_calls=1)
    assert ledger.check_budget(WORLD, budget, period=DAY, usd=0.0002).text_calls == 5
    assert ledger.spent(WORLD, DAY).text_calls == 5  # check_budget counts nothing


def test_budgets_are_per_period(ledger: Ledger) -> None:
    budget = Budget(images=1, text_calls=None, usd=None)
    ledger.spend(WORLD, budget, images=1)  # setup
    ledger.spend(WORLD, budget, period=DAY, images=1)
    ledger.spend(WORLD, budget, period="2026-11-25", images=1)
    with pytest.raises(BudgetExceeded, match=r"\(setup\)") as caught:
        ledger.spend(WORLD, budget, images=1)
    assert "budget.setup" in str(caught.value)
    assert ledger.spent(WORLD) == Spend(3, 0, 0.0)
    assert ledger.spent(WORLD, "") == Spend(1, 0, 0.0)
    assert ledger.spent("other-world") == Spend()
    with pytest.raises(ValueError):
        ledger.spend(WORLD, budget, period="tomorrow", images=1)
    with pytest.raises(ValueError):
        ledger.spend("Bad World", budget, images=1)
    with pytest.raises(ValueError):
        ledger.spend(WORLD, budget, images=-1)


def test_adjust_spend_corrects_and_refunds(ledger: Ledger) -> None:
    budget = Budget(images=2, text_calls=None, usd=1.0)
    ledger.spend(WORLD, budget, period=DAY, images=2, usd=0.0012)
    assert_spend(ledger.adjust_spend(WORLD, period=DAY, usd=0.0004), 2, 0, 0.0016)
    ledger.adjust_spend(WORLD, period=DAY, images=-1, usd=-0.0006)  # a call never made
    assert ledger.spend(WORLD, budget, period=DAY, images=1).images == 2
    assert ledger.adjust_spend(WORLD, period=DAY, images=-10).images == 0


def test_default_budgets_derive_from_counts() -> None:
    day = Budget.for_day(12)
    assert day.images == 12 * 3 // 2 + 2  # 1.5 × posts + 2
    assert day.text_calls == 13 * 2 + 2
    assert day.usd is not None and day.usd >= day.images * 0.0006
    setup = Budget.for_setup(25)
    assert setup.images is not None and setup.images >= 25 + 2
    assert setup.text_calls is not None and setup.text_calls >= 1 + 3 + 50
    assert Budget.for_setup(40).images > Budget.for_setup(8).images  # type: ignore[operator]
    overridden = Budget.for_day(
        12, BudgetOverrides(daily=BudgetLimits(images=1), setup=BudgetLimits(images=99))
    )
    assert (overridden.images, overridden.text_calls) == (1, day.text_calls)
    assert Budget(None, None, None).overruns(Spend(10**6, 10**6, 1e6), Spend(1, 1, 1.0)) == []


# -- configuration -------------------------------------------------------------------------


def test_mask_url_hides_passwords() -> None:
    assert (
        mask_url("postgresql+psycopg2://gen:s3cret@db:5432/ledger")
        == "postgresql+psycopg2://gen:***@db:5432/ledger"
    )
    masked = mask_url("postgresql+psycopg2://gen@db/ledger?password=s3cret&sslmode=require")
    assert "s3cret" not in masked and "sslmode=require" in masked
    assert mask_url("not a url") == "<unparseable database URL>"


def test_default_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_ledger_url({"DAGSTER_HOME": str(tmp_path)}) == (
        f"sqlite:///{tmp_path}/generia_ledger.sqlite"
    )
    monkeypatch.chdir(tmp_path)
    assert default_ledger_url({}) == f"sqlite:///{tmp_path}/.dagster_home/generia_ledger.sqlite"
    assert default_ledger_url({"GENERIA_LEDGER_URL": PG_URL, "DAGSTER_HOME": "/x"}) == PG_URL
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("GENERIA_LEDGER_URL", raising=False)
    with Ledger() as ledger:  # creates the directory and the file
        assert ledger.url.database == str(tmp_path / "home" / "generia_ledger.sqlite")
    assert (tmp_path / "home" / "generia_ledger.sqlite").exists()


@pytest.mark.parametrize(
    ("url", "schema", "message"),
    [
        ("::nope::", None, "GENERIA_LEDGER_URL is not a valid SQLAlchemy URL"),
        ("sqlite://", None, "in-memory SQLite ledger"),
        ("sqlite:///:memory:", None, "in-memory SQLite ledger"),
        ("sqlite:////tmp/x.sqlite", "s", "needs PostgreSQL"),
        (PG_URL, "Bad-Schema", "must match"),
    ],
)
def test_bad_settings_are_config_errors(url: str, schema: str | None, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Ledger(url, schema=schema)


def test_unreachable_database_error_masks_the_password() -> None:
    with pytest.raises(LedgerError) as caught:
        Ledger("postgresql+psycopg2://gen:hunter2@127.0.0.1:1/ledger")
    message = str(caught.value)
    assert "hunter2" not in message
    assert "postgresql+psycopg2://gen:***@127.0.0.1:1/ledger" in message


def test_bare_postgresql_url_uses_psycopg2(pg_schema: str) -> None:
    with Ledger(PG_URL.replace("+psycopg2", ""), schema=pg_schema) as ledger:
        assert ledger.url.drivername == "postgresql+psycopg2"
        assert ledger.plan([character_key(WORLD, 0)])


def test_ledger_resource_in_a_run_logs_only_the_masked_url(pg_schema: str) -> None:
    url = PG_URL.replace("postgres@", "postgres:pw-not-for-logs@")  # trust auth ignores it

    @asset
    def touches_ledger(ledger: LedgerResource) -> int:
        ledger.ledger.record_text(character_key(WORLD, 0), {"name": "Ada"})
        return len(ledger.ledger.units(WORLD, "characters"))

    with DagsterInstance.ephemeral() as instance:
        result = materialize(
            [touches_ledger],
            resources={"ledger": LedgerResource(url=url, db_schema=pg_schema)},
            instance=instance,
        )
        assert result.success
        assert result.output_for_node("touches_ledger") == 1
        logs = " ".join(entry.user_message for entry in instance.all_logs(result.run_id))
    assert "generation ledger: postgresql+psycopg2://postgres:***@" in logs
    assert "pw-not-for-logs" not in logs


def test_ledger_resource_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'from-env.sqlite'}"
    monkeypatch.setenv("GENERIA_LEDGER_URL", url)
    resource = LedgerResource.from_env()

    @asset
    def uses_env_ledger(ledger: LedgerResource) -> str:
        return ledger.ledger.display_url

    with DagsterInstance.ephemeral() as instance:
        result = materialize([uses_env_ledger], resources={"ledger": resource}, instance=instance)
    assert result.output_for_node("uses_env_ledger") == url
    monkeypatch.delenv("GENERIA_LEDGER_URL")
    assert LedgerResource.from_env().url == ""
    with pytest.raises(RuntimeError, match="only usable inside a Dagster run"):
        _ = LedgerResource().ledger

"""Chaos harness: populate several worlds through the real jobs while every dependency fails.

``run_chaos(ChaosConfig(...), workdir)`` starts the local stack with the Runware and text
stand-ins, injects faults at the configured rate on every dependency, and runs
``populate_world`` and ``daily_posts`` for N worlds x D days through Dagster (step retries
from the assets' retry policies, then re-runs of the failed partitions, a bounded number of
rounds). It then audits what the platform, the ledger and the stand-ins say and returns a
:class:`ChaosReport` (figures dict, printable table, list of violated properties).

The faults, each at ``rate`` unless overridden:

- gRPC (every method): UNAVAILABLE before the commit, the response lost after the commit,
  the answer delayed past the client's deadline after the commit (DEADLINE_EXCEEDED);
  ConfirmUpload fails with INTERNAL instead of UNAVAILABLE (not retried by the client);
- object store PUT: 503, truncated body (400 IncompleteBody), answer lost after storing;
  presigned URLs that expire before the PUT arrives;
- Runware: provider errors, dropped WebSocket connections, authentications never answered,
  image bytes that do not decode;
- text (OpenAI-compatible stand-in): 429/500, latency, invalid JSON, schema-violating JSON,
  replies cut at the token limit.

Used by ``tests/chaos/test_chaos.py`` (CI size) and ``bench/chaos.py`` (large size).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml
from dagster import DagsterInstance, Definitions, in_process_executor

from generia_pipelines.automation import daily_posts, populate_world
from generia_pipelines.definitions import ASSETS
from generia_pipelines.ledger import Ledger
from generia_pipelines.local.runware_standin import RunwareComponent
from generia_pipelines.local.stack import StackConfig, ThreadedStack
from generia_pipelines.local.text_standin import TextComponent
from generia_pipelines.partitions import world_day_key
from generia_pipelines.resources.catalog import CatalogResource
from generia_pipelines.resources.grpc import (
    CharacterResource,
    MediaResource,
    PostResource,
    WorldResource,
)
from generia_pipelines.resources.ledger import LedgerResource
from generia_pipelines.resources.runware import RunwareResource
from generia_pipelines.resources.text import TextGenerationResource

THEMES = (
    ("Neon Harbor", "A rain-soaked port city where smugglers and poets share the same bars"),
    ("Glass Steppe", "Nomad caravans crossing a plain of fused glass under two suns"),
    ("Moss Library", "A library city grown over by moss, run by archivists and beekeepers"),
    ("Salt Orbit", "A ring station of salt miners, gossip and zero-gravity gardens"),
    ("Lantern Delta", "River towns on stilts where festivals follow the tides"),
    ("Copper Vale", "A mountain valley of clockmakers, goats and steam trains"),
    ("Ash Market", "A night market on a cooled volcano, famous for spices and songs"),
    ("Tide Monastery", "An island monastery of cartographers cut off at high tide"),
)
MEDIA_AVATAR = 3
MEDIA_POST_IMAGE = 4
_SUSPECT = re.compile(r"suspected duplicate .*?for ((?:characters|posts)/[^\s:()]+)")
_GIVEN_UP = re.compile(r"(?:did not finish within|lost the connection).*taskUUID=([0-9a-f-]{36})")


class GivenUpRequests(logging.Handler):
    """Collects the Runware requests the client gave up on (timeout, lost connection).

    The SDK cannot withdraw a request: one it had queued may still be sent, generated and
    billed after the client retried it under a new taskUUID.
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.tasks: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        match = _GIVEN_UP.search(record.getMessage())
        if match:
            self.tasks.add(match.group(1))


@contextmanager
def given_up_requests() -> Iterator[GivenUpRequests]:
    handler = GivenUpRequests()
    logger = logging.getLogger("generia_pipelines.clients.runware")
    logger.addHandler(handler)
    level = logger.level
    if logger.getEffectiveLevel() > logging.WARNING:
        logger.setLevel(logging.WARNING)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@dataclass(frozen=True)
class ChaosConfig:
    """Size, fault rate (of each fault kind, on every dependency) and retry bounds of a run."""

    worlds: int = 2
    characters: int = 4
    posts: int = 6
    days: int = 1
    rate: float = 0.1
    honour_idempotency: bool = True
    seed: int = 7
    #: Runs per partition: the first and its re-runs (each with the assets' step retries).
    max_rounds: int = 5
    first_day: date = date(2026, 11, 20)
    grpc_deadline_s: float = 0.5
    #: Per-fault overrides of ``rate`` (see :func:`fault_rates` for the names).
    overrides: tuple[tuple[str, float], ...] = ()

    def rates(self) -> dict[str, float]:
        return fault_rates(self.rate, dict(self.overrides))

    @property
    def world_ids(self) -> list[str]:
        return [f"chaos-w{index}" for index in range(self.worlds)]

    @property
    def day_list(self) -> list[date]:
        return [self.first_day + timedelta(days=offset) for offset in range(self.days)]


FAULT_KINDS = (
    "grpc_unavailable",
    "grpc_lost_response",
    "grpc_late_response",
    "confirm_upload_error",
    "store_5xx",
    "store_truncated",
    "store_lost_response",
    "url_expired",
    "runware_error",
    "runware_drop",
    "runware_auth_hang",
    "runware_garbage",
    "text_http_error",
    "text_latency",
    "text_invalid_json",
    "text_schema_violation",
    "text_truncated",
)


def fault_rates(rate: float, overrides: dict[str, float] | None = None) -> dict[str, float]:
    """Every fault kind at ``rate``, then the overrides (unknown names are refused)."""
    rates = dict.fromkeys(FAULT_KINDS, rate)
    unknown = set(overrides or {}) - set(rates)
    if unknown:
        raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {FAULT_KINDS}")
    rates.update(overrides or {})
    for kind, value in rates.items():
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"fault rate {kind}={value} must be within [0, 1]")
    return rates


@dataclass
class RunRecord:
    """One Dagster run: how it ended, its step retries and why, its warnings."""

    job: str
    partition: str
    round: int
    success: bool
    seconds: float
    step_retries: int
    failure: str = ""
    retried: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class ChaosReport:
    """Figures of one chaos run; ``violations`` lists every property that does not hold."""

    config: ChaosConfig
    figures: dict[str, Any] = field(default_factory=dict)
    runs: list[RunRecord] = field(default_factory=list)
    suspected: dict[str, list[str]] = field(default_factory=dict)
    given_up: set[str] = field(default_factory=set)
    orphans: list[dict[str, Any]] = field(default_factory=list)
    duplicates: list[dict[str, Any]] = field(default_factory=list)

    def violations(self) -> list[str]:
        """The properties a correct pipeline guarantees when the server honours keys."""
        f = self.figures
        found = []
        if not f["all_runs_succeeded"]:
            found.append(f"partitions still failing after {self.config.max_rounds} rounds")
        if not f["characters_exact"]:
            found.append(f"characters off target: {f['characters_by_world']}")
        if not f["posts_exact"]:
            found.append(f"posts off target: {f['posts_by_world_day']}")
        for name in (
            "duplicate_characters",
            "duplicate_posts",
            "ledger_duplicates",
            "posts_with_bad_image",
            "characters_without_confirmed_avatar",
            "images_paid_twice",
            "images_unaccounted",
        ):
            if f[name]:
                found.append(f"{name} = {f[name]}")
        if not f["costs_match"]:
            found.append(
                f"ledger cost {f['cost_ledger_usd']} + never used {f['cost_never_used_usd']} != "
                f"reported {f['cost_reported_usd']}"
            )
        return found

    def table(self) -> str:
        """The figures as an aligned two-column table."""
        f = self.figures
        rows: list[tuple[str, Any]] = [
            ("size", f["size"]),
            ("fault rate (each kind)", f["rate"]),
            ("server honours idempotency keys", f["honour_idempotency"]),
            ("wall time s", f["wall_s"]),
            ("runs (failed, re-run)", f"{f['runs']} ({f['failed_runs']})"),
            ("step retries", f["step_retries"]),
            ("all partitions done", f["all_runs_succeeded"]),
            ("characters by world (target)", f"{f['characters_by_world']} ({f['target_chars']})"),
            ("posts by world/day (target)", f"{f['posts_by_world_day']} ({f['target_posts']})"),
            ("characters exactly at target", f["characters_exact"]),
            ("posts exactly at target", f["posts_exact"]),
            ("duplicate characters on platform", f["duplicate_characters"]),
            ("duplicate posts on platform", f["duplicate_posts"]),
            ("ledger duplicates", f["ledger_duplicates"]),
            ("suspected duplicates logged", f["suspected_logged"]),
            ("duplicates not named in the log", f["duplicates_unlogged"]),
            ("posts with unconfirmed/foreign image", f["posts_with_bad_image"]),
            ("characters without confirmed avatar", f["characters_without_confirmed_avatar"]),
            ("images needed", f["images_needed"]),
            ("images generated by Runware", f["images_generated"]),
            ("  discarded: bytes did not decode", f["images_garbage"]),
            ("  billed, lost with the connection", f["images_undelivered"]),
            (
                "  billed twice: one request resent by the SDK",
                f"{f['images_resent_by_sdk']} (requests resent: {f['sdk_repeated_requests']})",
            ),
            (
                "  billed twice: given up by the client, sent by the SDK",
                f["images_given_up_then_sent"],
            ),
            ("  paid twice by the pipeline", f["images_paid_twice"]),
            ("  ...their taskUUIDs", f["paid_twice_tasks"]),
            ("  good, delivered, unaccounted for", f["images_unaccounted"]),
            ("orphan uploads (presigned/uploaded/confirmed)", f["orphans_by_state"]),
            ("cost in ledger USD", f["cost_ledger_usd"]),
            ("cost reported by Runware USD", f["cost_reported_usd"]),
            ("  of which billed, never used USD", f["cost_never_used_usd"]),
            ("costs match (ledger + never used = reported)", f["costs_match"]),
            ("faults injected", f["faults_injected"]),
        ]
        width = max(len(name) for name, _ in rows)
        lines = [f"{name.ljust(width)}  {value}" for name, value in rows]
        if self.orphans:
            lines.append("orphan uploads:")
            lines.extend(
                f"  {o['media_id']} {o['state']:<10} {o['media_type']:<6} {o['unit']}"
                for o in self.orphans
            )
        if self.duplicates:
            lines.append("duplicates on the platform:")
            lines.extend(
                f"  {d['kind']} {d['unit']}: {d['ids']} (logged: {d['logged']})"
                for d in self.duplicates
            )
        return "\n".join(lines)


# --------------------------------------------------------------------------- the bed


@dataclass
class ChaosBed:
    """The running stack, its stand-ins and where the run keeps its files."""

    stack: ThreadedStack
    runware: RunwareComponent
    text: TextComponent
    workdir: Path

    @property
    def ledger_url(self) -> str:
        return f"sqlite:///{self.workdir / 'ledger.sqlite'}"

    @property
    def worlds_file(self) -> Path:
        return self.workdir / "worlds.yaml"

    def admin(self, path: str) -> Any:
        response = httpx.get(f"{self.stack.http_url}/_admin/{path}", timeout=30)
        response.raise_for_status()
        return response.json()


@contextmanager
def chaos_bed(config: ChaosConfig, workdir: Path) -> Iterator[ChaosBed]:
    """The stack (ports 0) with both stand-ins; stopped on exit whatever happened."""
    workdir.mkdir(parents=True, exist_ok=True)
    runware = RunwareComponent(seed=config.seed)
    text = TextComponent(seed=config.seed)
    stack_config = StackConfig(
        data_dir=workdir / "stack", honour_idempotency=config.honour_idempotency, seed=config.seed
    )
    stack = ThreadedStack(stack_config, [runware, text]).start()
    try:
        yield ChaosBed(stack, runware, text, workdir)
    finally:
        stack.stop()


def install_faults(bed: ChaosBed, config: ChaosConfig) -> None:
    """Every dependency fails at its configured rate (see the module docstring)."""
    rates = config.rates()
    late = config.grpc_deadline_s + 0.5
    faults = bed.stack.faults
    faults.set(
        "*",
        error_rate=rates["grpc_unavailable"],
        drop_after_commit_rate=rates["grpc_lost_response"],
        latency_s=late,
        latency_rate=rates["grpc_late_response"],
        latency_after_commit=True,
    )
    faults.set(
        "media.ConfirmUpload",
        error_rate=rates["confirm_upload_error"],
        error_code="INTERNAL",
        drop_after_commit_rate=rates["grpc_lost_response"],
        latency_s=late,
        latency_rate=rates["grpc_late_response"],
        latency_after_commit=True,
    )
    faults.set(
        "object_store.PUT",
        error_rate=rates["store_5xx"],
        truncate_rate=rates["store_truncated"],
        drop_after_commit_rate=rates["store_lost_response"],
    )
    faults.set_early_expiry_rate(rates["url_expired"])
    assert bed.runware.standin is not None and bed.text.standin is not None
    bed.runware.standin.faults.set(
        error_rate=rates["runware_error"],
        drop_rate=rates["runware_drop"],
        silent_auth_rate=rates["runware_auth_hang"],
        garbage_rate=rates["runware_garbage"],
    )
    bed.text.standin.faults.set(
        error_rate=rates["text_http_error"],
        latency_s=0.2,
        latency_rate=rates["text_latency"],
        invalid_json_rate=rates["text_invalid_json"],
        schema_violation_rate=rates["text_schema_violation"],
        truncated_rate=rates["text_truncated"],
    )


def resources(bed: ChaosBed, config: ChaosConfig) -> dict[str, Any]:
    """The pipeline's resources on the bed, with deadlines short enough for a test."""
    env = bed.stack.env
    grpc: dict[str, Any] = {
        "deadline_s": config.grpc_deadline_s,
        "honours_idempotency": config.honour_idempotency,
    }
    return {
        "catalog": CatalogResource(worlds_file=str(bed.worlds_file)),
        "world": WorldResource(),
        "character": CharacterResource(address=env["GENERIA_CHARACTER_ADDR"], **grpc),
        "media": MediaResource(address=env["GENERIA_MEDIA_ADDR"], upload_timeout_s=10, **grpc),
        "post": PostResource(address=env["GENERIA_POST_ADDR"], **grpc),
        "runware": RunwareResource(
            api_key=env["RUNWARE_API_KEY"],
            url=env["RUNWARE_URL"],
            connect_timeout_s=1.0,
            request_timeout_s=3.0,
            backoff_initial_s=0.05,
            backoff_max_s=0.5,
        ),
        "text": TextGenerationResource(
            backend=env["GENERIA_TEXT_BACKEND"],
            base_url=env["GENERIA_TEXT_BASE_URL"],
            api_key=env["GENERIA_TEXT_API_KEY"],
            model=env["GENERIA_TEXT_MODEL"],
            timeout_s=10.0,
        ),
        "ledger": LedgerResource(url=bed.ledger_url),
    }


def write_worlds(bed: ChaosBed, config: ChaosConfig) -> None:
    worlds = []
    for index, world_id in enumerate(config.world_ids):
        name, prompt = THEMES[index % len(THEMES)]
        worlds.append(
            {
                "id": world_id,
                "name": name if index < len(THEMES) else f"{name} {index}",
                "prompt": prompt,
                "characters": config.characters,
                "posts_per_day": config.posts,
            }
        )
    bed.worlds_file.write_text(yaml.safe_dump({"worlds": worlds}))


# --------------------------------------------------------------------------- running


QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
_FAILURES = ("STEP_FAILURE", "RESOURCE_INIT_FAILURE", "PIPELINE_FAILURE", "RUN_FAILURE")


def _run(
    defs: Definitions, instance: DagsterInstance, job: str, partition: str, round_no: int
) -> tuple[RunRecord, list[str]]:
    """One run as Dagster would make it; returns its record and its warning messages."""
    started = time.monotonic()
    result = defs.resolve_job_def(job).execute_in_process(
        partition_key=partition, instance=instance, raise_on_error=False, run_config=QUIET
    )
    events = result.all_events
    retried = [_error_line(e) for e in events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    failures = [_error_line(e) for e in events if e.event_type_value in _FAILURES]
    warnings = [
        entry.user_message
        for entry in instance.all_logs(result.run_id)
        if entry.dagster_event is None and _level(entry.level) >= logging.WARNING
    ]
    record = RunRecord(
        job,
        partition,
        round_no,
        result.success,
        time.monotonic() - started,
        len(retried),
        failures[0] if failures else "",
        retried,
        warnings,
    )
    return record, warnings


def _level(level: str | int) -> int:
    return level if isinstance(level, int) else logging.getLevelNamesMapping().get(level, 0)


def _error_line(event: Any) -> str:
    """The first line of an event's error (what a person reads first in the UI)."""
    error = getattr(event.event_specific_data, "error", None)
    while error is not None and "RetryRequested" in str(error.message) and error.cause:
        error = error.cause  # a retry's own message only says that a retry was requested
    text = str(getattr(error, "message", None) or event.message or "").strip()
    return text.splitlines()[0][:300] if text else ""


def run_partitions(
    defs: Definitions,
    instance: DagsterInstance,
    job: str,
    partitions: list[str],
    config: ChaosConfig,
    report: ChaosReport,
    say: Callable[[str], None],
) -> list[str]:
    """Run every partition, then re-run the failed ones, at most ``max_rounds`` times each."""
    pending = list(partitions)
    for round_no in range(1, config.max_rounds + 1):
        failed = []
        for partition in pending:
            record, warnings = _run(defs, instance, job, partition, round_no)
            report.runs.append(record)
            for message in warnings:
                match = _SUSPECT.search(message)
                if match:
                    report.suspected.setdefault(match.group(1), []).append(message)
            state = "ok" if record.success else f"FAILED: {record.failure}"
            say(
                f"  {job} {partition} round {round_no}: {state} "
                f"({record.seconds:.1f} s, {record.step_retries} step retries)"
            )
            for reason in record.retried:
                say(f"    step retried: {reason}")
            if not record.success:
                failed.append(partition)
        pending = failed
        if not pending:
            break
    return pending


def run_chaos(
    config: ChaosConfig, workdir: Path, *, say: Callable[[str], None] = lambda _: None
) -> ChaosReport:
    """Populate ``config.worlds`` worlds under chaos, then audit; see the module docstring."""
    report = ChaosReport(config)
    started = time.monotonic()
    with (
        chaos_bed(config, workdir) as bed,
        DagsterInstance.ephemeral() as instance,
        given_up_requests() as given_up,
    ):
        write_worlds(bed, config)
        install_faults(bed, config)
        defs = Definitions(
            assets=ASSETS,
            jobs=[populate_world, daily_posts],
            resources=resources(bed, config),
            executor=in_process_executor,
        )
        instance.add_dynamic_partitions("worlds", config.world_ids)
        say(f"chaos: {describe(config)}")
        left = run_partitions(
            defs, instance, "populate_world", config.world_ids, config, report, say
        )
        days = [str(world_day_key(w, d)) for d in config.day_list for w in config.world_ids]
        left += run_partitions(defs, instance, "daily_posts", days, config, report, say)
        wall = time.monotonic() - started
        report.given_up = given_up.tasks
        audit(bed, config, report, wall_s=wall, unfinished=left)
    return report


def describe(config: ChaosConfig) -> str:
    return (
        f"{config.worlds} worlds x {config.characters} characters x {config.posts} posts x "
        f"{config.days} days"
    )


# --------------------------------------------------------------------------- the audit


def _meta_key(character: dict[str, Any]) -> str:
    try:
        return str(json.loads(character.get("meta") or "{}").get("unit_key", "?"))
    except ValueError:
        return "?"


def _owned(media: dict[str, Any] | None, owner: str, media_type: int) -> bool:
    """The media exists, is confirmed, belongs to ``owner`` and is of the right type."""
    return bool(
        media
        and media["confirmed"]
        and media["character_id"] == owner
        and media["media_type"] == media_type
    )


@dataclass
class WorldAudit:
    """One world as the platform has it, checked against the ledger."""

    characters: int = 0
    posts_by_day: dict[str, int] = field(default_factory=dict)
    duplicate_characters: int = 0
    duplicate_posts: int = 0
    posts_with_bad_image: int = 0
    characters_without_avatar: int = 0
    images_used: set[str] = field(default_factory=set)
    tasks_used: set[str] = field(default_factory=set)
    cost_usd: float = 0.0
    ledger_duplicates: int = 0


def audit_world(
    bed: ChaosBed, ledger: Ledger, world_id: str, config: ChaosConfig, report: ChaosReport
) -> WorldAudit:
    """Characters, posts and media of one world; duplicates and orphans go to ``report``."""
    found = WorldAudit()
    characters = bed.admin(f"worlds/{world_id}/characters")
    posts = bed.admin(f"worlds/{world_id}/posts")
    media = {m["media_id"]: m for m in bed.admin(f"worlds/{world_id}/media")}
    post_units = {u.media_id: u for u in ledger.units(world_id, "posts") if u.media_id}
    for kind in ("avatars", "posts"):
        for unit in ledger.units(world_id, kind):
            if unit.image is not None:
                found.images_used.add(str(unit.image.meta.get("image_uuid")))
                found.tasks_used.add(str(unit.image.meta.get("task_uuid")))

    found.characters = len(characters)
    by_unit: dict[str, list[str]] = {}
    for character in characters:
        by_unit.setdefault(_meta_key(character), []).append(character["id"])
        avatar = media.get(character.get("avatar_media_id") or "")
        found.characters_without_avatar += not _owned(avatar, character["id"], MEDIA_AVATAR)
    by_media: dict[str, list[str]] = {}
    for post in posts:
        by_media.setdefault(post["media_id"], []).append(post["post_id"])
        image = media.get(post["media_id"])
        found.posts_with_bad_image += not _owned(image, post["character_id"], MEDIA_POST_IMAGE)

    duplicated = [("character", key, ids) for key, ids in by_unit.items() if len(ids) > 1]
    for media_id, ids in by_media.items():
        if len(ids) > 1:
            owner = post_units.get(media_id)
            duplicated.append(("post", owner.key if owner else f"media {media_id}", ids))
    for kind, key, ids in duplicated:
        if kind == "character":
            found.duplicate_characters += len(ids) - 1
        else:
            found.duplicate_posts += len(ids) - 1
        logged = key in report.suspected
        report.duplicates.append({"kind": kind, "unit": key, "ids": ids, "logged": logged})

    day_of = {media_id: unit.partition for media_id, unit in post_units.items()}
    for day in config.day_list:
        found.posts_by_day[f"{world_id}/{day.isoformat()}"] = sum(
            1 for post in posts if day_of.get(post["media_id"]) == day.isoformat()
        )

    used = {p["media_id"] for p in posts} | {c["avatar_media_id"] for c in characters}
    for media_id, record in media.items():
        if media_id in used:
            continue
        state = "confirmed" if record["confirmed"] else "uploaded" if record["uploaded"] else ""
        report.orphans.append(
            {
                "media_id": media_id,
                "state": state or "presigned",
                "media_type": "avatar" if record["media_type"] == MEDIA_AVATAR else "post",
                # The uploader names the file after the unit key ('/' made '_').
                "unit": record["filename"].rsplit(".", 1)[0].replace("_", "/"),
            }
        )
    found.cost_usd = ledger.cost(world_id)
    found.ledger_duplicates = len(ledger.duplicates(world_id))
    return found


def audit(
    bed: ChaosBed,
    config: ChaosConfig,
    report: ChaosReport,
    *,
    wall_s: float,
    unfinished: list[str],
) -> None:
    """Count what exists on the platform, in the ledger and at the stand-ins."""
    with Ledger(bed.ledger_url) as ledger:
        worlds = {w: audit_world(bed, ledger, w, config, report) for w in config.world_ids}
    assert bed.runware.standin is not None and bed.text.standin is not None
    runware = bed.runware.standin.stats.snapshot()
    text = bed.text.standin.stats.snapshot()
    grpc_stats: dict[str, dict[str, int]] = bed.admin("stats")["methods"]
    fired = bed.stack.faults.snapshot().get("fired", {})

    needed = config.worlds * (config.characters + config.posts * config.days)
    delivered_good = runware.images_generated - runware.images_undelivered - runware.garbage_images
    used_images = set().union(*(w.images_used for w in worlds.values()))
    used_tasks = set().union(*(w.tasks_used for w in worlds.values()))
    # A request answered twice was sent twice by the SDK (it resends its pending requests
    # after a reconnect, answered or not): Runware bills both answers, the pipeline awaits one.
    resent = set(runware.resent_uuids) | used_tasks
    unused = [d for d in runware.delivered if d[3] and d[0] not in used_images]
    twice = [task for _, task, _, _ in unused if task not in resent]
    # A request the client gave up on (bounded wait) that the SDK sent anyway: the price of
    # bounded waits on an API with no cancel; anything else the pipeline paid twice itself.
    abandoned = [task for task in twice if task in report.given_up]
    paid_twice = [task for task in twice if task not in report.given_up]
    # Undecodable bytes of a request whose later answer was used never reached the pipeline
    # (seen ones make it give the request up): billed, and outside the ledger like ``unused``.
    unseen_garbage = [d for d in runware.delivered if not d[3] and d[1] in used_tasks]
    never_used_usd = sum(d[2] for d in (*unused, *unseen_garbage))
    cost_ledger = sum(w.cost_usd for w in worlds.values())
    posts_by_day = {k: v for w in worlds.values() for k, v in w.posts_by_day.items()}
    dup_posts = sum(w.duplicate_posts for w in worlds.values())
    store = grpc_stats.get("object_store.PUT", {})
    services = {k: v for k, v in grpc_stats.items() if not k.startswith("object_store.")}
    injected = {
        "grpc_errors": sum(v["injected_errors"] for v in services.values()),
        "grpc_lost_responses": sum(v["dropped_responses"] for v in services.values()),
        "grpc_idempotent_replays": sum(v["replays"] for v in services.values()),
        "delayed_calls": fired.get("delayed_calls", 0),
        "store_5xx_or_truncated": store.get("injected_errors", 0),
        "store_truncated": fired.get("truncated_uploads", 0),
        "store_lost_responses": store.get("dropped_responses", 0),
        "urls_expired_early": fired.get("early_expired_urls", 0),
        "runware_errors": sum(runware.errors.values()),
        "runware_drops": runware.drops,
        "runware_auth_hangs": runware.silent_auths,
        "runware_garbage": runware.garbage_images,
        **{f"text_{k}": v for k, v in sorted(text.injected.items())},
    }
    report.figures = {
        "size": describe(config),
        "rate": config.rate,
        "honour_idempotency": config.honour_idempotency,
        "wall_s": round(wall_s, 1),
        "runs": len(report.runs),
        "failed_runs": sum(1 for r in report.runs if not r.success),
        "step_retries": sum(r.step_retries for r in report.runs),
        "all_runs_succeeded": not unfinished,
        "unfinished": unfinished,
        "target_chars": config.characters,
        "target_posts": config.posts,
        "characters_by_world": {w: a.characters for w, a in worlds.items()},
        "posts_by_world_day": posts_by_day,
        "characters_exact": all(a.characters == config.characters for a in worlds.values()),
        "posts_exact": all(n == config.posts for n in posts_by_day.values()) and not dup_posts,
        "duplicate_characters": sum(w.duplicate_characters for w in worlds.values()),
        "duplicate_posts": dup_posts,
        "ledger_duplicates": sum(w.ledger_duplicates for w in worlds.values()),
        "suspected_logged": len(report.suspected),
        "duplicates_unlogged": sorted(d["unit"] for d in report.duplicates if not d["logged"]),
        "posts_with_bad_image": sum(w.posts_with_bad_image for w in worlds.values()),
        "characters_without_confirmed_avatar": sum(
            w.characters_without_avatar for w in worlds.values()
        ),
        "images_needed": needed,
        "images_generated": runware.images_generated,
        "images_garbage": runware.garbage_images,
        "images_undelivered": runware.images_undelivered,
        "images_resent_by_sdk": len(unused) - len(twice) + len(unseen_garbage),
        "images_given_up_then_sent": len(abandoned),
        "sdk_repeated_requests": runware.resent_tasks,
        "images_paid_twice": len(paid_twice),
        "images_unaccounted": delivered_good - needed - len(unused),
        "paid_twice_tasks": paid_twice,
        "orphan_uploads": len(report.orphans),
        "orphans_by_state": dict(Counter(o["state"] for o in report.orphans)),
        "cost_ledger_usd": round(cost_ledger, 6),
        "cost_reported_usd": round(runware.cost_reported_usd, 6),
        "cost_never_used_usd": round(never_used_usd, 6),
        "costs_match": abs(cost_ledger + never_used_usd - runware.cost_reported_usd) < 1e-9,
        "text_requests": text.requests,
        "faults_injected": injected,
    }


#: Reports of this process, titled, for the test session's closing summary.
REPORTS: list[tuple[str, ChaosReport]] = []


def record_report(title: str, report: ChaosReport) -> None:
    REPORTS.append((title, report))

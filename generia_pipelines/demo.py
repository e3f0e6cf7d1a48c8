"""``generia-pipelines demo``: the whole pipeline in one command, against a local stack.

Starts the local Generia stack with the Runware stand-in (its object store on the port
``dev`` uses, so the image previews in the UI keep working), writes a worlds file
with one demo world, then materializes ``populate_world`` and ``daily_posts`` through a
persistent Dagster instance (so the runs appear in the UI afterwards, e.g. with
``generia-pipelines dev --dir .generia/demo``), prints a summary and writes the world's
feed as a self-contained HTML page.

Everything persists under one directory (default ``.generia/demo``): the stack's SQLite
files and objects (``stack/``), the Dagster instance and the generation ledger
(``dagster_home/``), the worlds file. A second run therefore reuses what the first made: the
platform still knows the characters, the ledger knows what was paid for, and nothing is
created or paid twice.

Days: ``--days N`` materializes the N days ending **yesterday**. The daily partitions end
at the last complete day (that is what the daily schedule fills each morning), so today has
no partition yet. The first day must not precede the partitions' start date
(``GENERIA_POSTS_START_DATE``).

The demo is offline and self-contained: variables that would point it elsewhere (a remote
platform, another ledger, a paid text model) are removed from its environment for the
duration of the run, and restored afterwards.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml

# Dagster, gRPC and the pipeline are imported where used: the CLI imports this module to
# build its parser, and ``generia-pipelines stack`` should not pay for them.

DEFAULT_DIR = Path(".generia/demo")
#: The local object store's port for the demo: the same as ``dev``'s (cli.DEFAULT_PORTS).
DEMO_HTTP_PORT = 8700
DEFAULT_WORLD_ID = "neon-harbor"
DEFAULT_WORLD_NAME = "Neon Harbor"
DEFAULT_PROMPT = (
    "A rain-soaked harbour megacity of neon signs, night markets and container stacks, "
    "where smugglers, street poets, noodle cooks, dock mechanics and underground DJs share "
    "the same flooded alleys between typhoons; retro-futuristic, humid, glowing, tender."
)
DEFAULT_CHARACTERS = 8
DEFAULT_POSTS = 12
DEFAULT_DAYS = 1
MAX_DAYS = 366
DAGSTER_YAML = """\
# Written by generia-pipelines (demo/dev). A local instance: SQLite storage in this
# directory; the generation ledger (generia_ledger.sqlite) lives here too.
telemetry:
  enabled: false
# No newsletter dialog (an iframe from dagster.io) in a UI served on localhost.
nux:
  enabled: false
"""
#: Variables that would point a local run away from the local stack and its ledger.
PLATFORM_VARIABLES = (
    "GENERIA_WORLD_ADDR",
    "GENERIA_GRPC_TLS",
    "GENERIA_GRPC_CA_FILE",
    "GENERIA_GRPC_TOKEN",
    "GENERIA_LEDGER_URL",
)
#: The demo also stays offline and free: the local text model, the default image settings.
DEMO_CLEARED_VARIABLES = (
    *PLATFORM_VARIABLES,
    "GENERIA_TEXT_BACKEND",
    "GENERIA_TEXT_BASE_URL",
    "GENERIA_TEXT_API_KEY",
    "GENERIA_TEXT_MODEL",
    "RUNWARE_IMAGE_MODEL",
    "RUNWARE_ENHANCE_PROMPT",
)
#: Quiet: the summary names the cause of a failure; the full logs stay in the instance (UI).


class DemoError(Exception):
    """The demo cannot run as asked; the message says what to change."""


@dataclass(frozen=True)
class StateDirs:
    """Where a local run (``demo``, ``dev``) keeps its state: by default the stack's data
    and the Dagster home side by side under one root."""

    root: Path
    data_dir: Path | None = None
    dagster_home: Path | None = None

    @property
    def stack_dir(self) -> Path:
        return self.data_dir or self.root / "stack"

    @property
    def home(self) -> Path:
        return self.dagster_home or self.root / "dagster_home"


@dataclass(frozen=True)
class DemoOptions(StateDirs):
    """What the demo populates and where it keeps its state."""

    root: Path = DEFAULT_DIR
    world_id: str = DEFAULT_WORLD_ID
    world_name: str = ""
    prompt: str = DEFAULT_PROMPT
    #: The world's language (``ru``, ``en``); empty: detected from the name and prompt.
    language: str = ""
    characters: int = DEFAULT_CHARACTERS
    posts: int = DEFAULT_POSTS
    days: int = DEFAULT_DAYS
    #: The last day to populate; None means yesterday (the latest daily partition).
    last_day: date | None = None
    feed_path: Path | None = None
    host: str = "127.0.0.1"
    #: The object store's port. Fixed by default (the one ``dev`` uses), because the image
    #: previews Dagster keeps for the demo world point at it: on a free port they would
    #: break once the stack restarts. 0 picks a free one.
    http_port: int = DEMO_HTTP_PORT
    verbose: bool = False

    @property
    def feed(self) -> Path:
        return self.feed_path or self.root / "feed.html"

    @property
    def worlds_file(self) -> Path:
        return self.root / "worlds.yaml"

    @property
    def name(self) -> str:
        if self.world_name:
            return self.world_name
        if self.world_id == DEFAULT_WORLD_ID:
            return DEFAULT_WORLD_NAME
        return self.world_id.replace("-", " ").title()


@dataclass(frozen=True)
class RunOutcome:
    """One Dagster run the demo launched."""

    job: str
    partition: str
    run_id: str
    status: str
    seconds: float
    error: str | None = None

    @property
    def success(self) -> bool:
        return self.status == "SUCCESS"


@dataclass(frozen=True)
class DemoReport:
    """What the demo did; ``new_*`` and ``*_this_run`` are this run's share of the totals."""

    world_id: str
    world_name: str
    days: tuple[str, ...]
    language: str = ""
    characters: int = 0
    new_characters: int = 0
    avatars: int = 0
    posts: int = 0
    new_posts: int = 0
    images_paid: int = 0
    ledger_images: int = 0
    cost_usd_this_run: float = 0.0
    cost_usd_total: float = 0.0
    wall_s: float = 0.0
    runs: tuple[RunOutcome, ...] = ()
    feed_path: Path | None = None
    feed_images: int = 0
    dagster_home: Path = field(default_factory=Path)
    data_dir: Path = field(default_factory=Path)
    #: How to open these runs in the Dagster UI against the same stack and ledger.
    dev_command: str = ""
    error: str | None = None

    @property
    def success(self) -> bool:
        return self.error is None and bool(self.runs) and all(r.success for r in self.runs)


def demo_days(days: int, last_day: date | None = None, start: str | None = None) -> list[date]:
    """The ``days`` days ending at ``last_day`` (default yesterday), oldest first; refuses a
    day before the world × date partitions' start date."""
    from generia_pipelines.partitions import parse_day, posts_start_date

    if not 1 <= days <= MAX_DAYS:
        raise DemoError(f"--days must be within 1..{MAX_DAYS}, got {days}")
    last = last_day or date.today() - timedelta(days=1)
    first = last - timedelta(days=days - 1)
    start_day = parse_day(posts_start_date(start))
    if first < start_day:
        allowed = (last - start_day).days + 1
        hint = f"use --days {allowed} or less" if allowed >= 1 else "no day is available yet"
        raise DemoError(
            f"--days {days} reaches back to {first}, before the posts partitions start on "
            f"{start_day} (GENERIA_POSTS_START_DATE): {hint}"
        )
    return [first + timedelta(days=i) for i in range(days)]


def validate_options(options: DemoOptions) -> None:
    """Refuse what the pipeline would refuse later, with the flag to change."""
    from generia_pipelines.catalog import MAX_CHARACTERS, MAX_POSTS_PER_DAY
    from generia_pipelines.generation.language import language_code
    from generia_pipelines.partitions import validate_world_key

    try:
        validate_world_key(options.world_id)
    except ValueError as exc:
        raise DemoError(f"--world-id: {exc}") from None
    if options.language:
        try:
            language_code(options.language)
        except ValueError as exc:
            raise DemoError(f"--language: {exc}") from None
    if not 1 <= options.characters <= MAX_CHARACTERS:
        raise DemoError(f"--characters must be within 1..{MAX_CHARACTERS}")
    if not 1 <= options.posts <= MAX_POSTS_PER_DAY:
        raise DemoError(f"--posts must be within 1..{MAX_POSTS_PER_DAY}")
    if not options.prompt.strip():
        raise DemoError("--prompt must not be empty")


def ensure_dagster_home(path: Path) -> Path:
    """Create ``path`` with a minimal ``dagster.yaml`` unless one exists; return it absolute."""
    home = Path(path).absolute()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML, encoding="utf-8")
    elif "nux:" not in (text := config.read_text(encoding="utf-8")):
        # An instance written before the dialog was switched off.
        config.write_text(text.rstrip("\n") + "\nnux:\n  enabled: false\n", encoding="utf-8")
    return home


def write_worlds_file(path: Path, worlds: Sequence[Mapping[str, Any]]) -> Path:
    """Write a worlds catalog in the documented format; return its absolute path."""
    path = Path(path).absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump({"worlds": [dict(w) for w in worlds]}, sort_keys=False, width=88)
    path.write_text(text, encoding="utf-8")
    return path


@contextlib.contextmanager
def patched_environ(values: Mapping[str, str], unset: Sequence[str] = ()) -> Iterator[None]:
    """Set and unset variables for the block, then restore the environment exactly."""
    saved = {name: os.environ.get(name) for name in (*values, *unset)}
    try:
        for name in unset:
            os.environ.pop(name, None)
        os.environ.update(values)
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def world_language(worlds_file: Path) -> str:
    """The demo world's language as the pipeline will see it (given, or detected); a world
    whose language cannot be told is refused here, before the stack starts."""
    from generia_pipelines.catalog import WorldsFileError, load_worlds_file

    try:
        [world] = load_worlds_file(worlds_file)
    except WorldsFileError as exc:
        raise DemoError(f"{exc} (pass --language)") from None
    return world.language


def dev_hint(options: DemoOptions) -> str:
    """The ``dev`` command that opens the demo's runs in the UI on the same stack and ledger."""
    import shlex

    if options.data_dir is None and options.dagster_home is None:
        args = ["--dir", str(options.root)]
    else:
        args = [
            "--data-dir",
            str(options.stack_dir),
            "--dagster-home",
            str(options.home),
            "--worlds-file",
            str(options.worlds_file),
        ]
    return shlex.join(["generia-pipelines", "dev", *args])


def _language_label(code: str) -> str:
    from generia_pipelines.generation.language import LANGUAGES

    return LANGUAGES[code].label if code in LANGUAGES else "?"


def format_summary(report: DemoReport) -> str:
    """The summary a person reads after the demo (no secrets: no keys, no URLs with them)."""

    def row(label: str, text: str) -> str:
        return f"  {label:<13}{text}"

    lines = [
        f"Generia demo: world {report.world_id} ({report.world_name}), "
        f"days {', '.join(report.days)}",
        row("language", _language_label(report.language)),
        row(
            "characters",
            f"{report.characters} on the platform ({report.new_characters} new), "
            f"{report.avatars} with an avatar",
        ),
        row("posts", f"{report.posts} on the platform ({report.new_posts} new)"),
        row(
            "images paid",
            f"{report.images_paid} this run (Runware stand-in); "
            f"{report.ledger_images} in total (ledger)",
        ),
        row(
            "cost",
            f"${report.cost_usd_this_run:.4f} this run; "
            f"${report.cost_usd_total:.4f} in total (ledger)",
        ),
        row("wall time", f"{report.wall_s:.1f} s"),
        row("runs", "" if report.runs else "(none)"),
    ]
    width_job = max((len(r.job) for r in report.runs), default=0)
    width_part = max((len(r.partition) for r in report.runs), default=0)
    for run in report.runs:
        lines.append(
            f"    {run.job:<{width_job}}  {run.partition:<{width_part}}  {run.status:<8} "
            f"{run.seconds:5.1f} s  {run.run_id or '-'}"
        )
        if run.error:
            lines.append(f"      error: {run.error}")
    if report.feed_path is not None:
        lines.append(row("feed", f"{report.feed_path} ({report.feed_images} images embedded)"))
    lines.append(row("dagster home", str(report.dagster_home)))
    lines.append(row("stack data", str(report.data_dir)))
    if report.dev_command:
        lines.append(row("in the UI", report.dev_command))
    return "\n".join(line.rstrip() for line in lines)

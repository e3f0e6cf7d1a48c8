"""``generia-pipelines demo`` and ``dev``: the demo in-process against a real local stack,
twice (the second run must reuse everything); ``dev`` up to the command it launches."""

from __future__ import annotations

import html
import os
import re
import socket
import sys
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from dagster import AssetKey, DagsterInstance, DagsterRunStatus

import generia_pipelines.definitions as definitions
import generia_pipelines.dev as dev
from generia_pipelines.catalog import load_worlds_file
from generia_pipelines.cli import build_parser, dev_options
from generia_pipelines.demo import (
    DemoError,
    DemoOptions,
    demo_days,
    ensure_dagster_home,
    format_summary,
)
from generia_pipelines.demo_run import main_demo, run_demo
from generia_pipelines.feed import Feed, FeedCharacter, FeedPost, render_feed
from generia_pipelines.local.stack import StackConfig, ThreadedStack
from generia_pipelines.resources.runware import RunwareResource

REPO = Path(__file__).resolve().parents[2]
WORLD = "tide-market"


def _options(root: Path, **overrides: Any) -> DemoOptions:
    values: dict[str, Any] = {
        "root": root,
        "world_id": WORLD,
        "characters": 3,
        "posts": 4,
        "days": 1,
        "http_port": 0,  # tests run side by side; the fixed port is tested on its own
    }
    values.update(overrides)
    return DemoOptions(**values)


def _feed_text(path: Path | None) -> str:
    assert path is not None and path.exists()
    return path.read_text(encoding="utf-8")


def test_demo_twice_populates_then_reuses_everything(tmp_path: Path) -> None:
    environ_before = dict(os.environ)
    first = run_demo(_options(tmp_path))
    assert first.success, first.error
    assert [(r.job, r.status) for r in first.runs] == [
        ("populate_world", "SUCCESS"),
        ("daily_posts", "SUCCESS"),
    ]
    assert first.runs[1].partition.endswith(f"|{WORLD}")
    assert (first.characters, first.new_characters, first.avatars) == (3, 3, 3)
    assert (first.posts, first.new_posts) == (4, 4)
    assert first.images_paid == first.ledger_images == 3 + 4
    assert first.cost_usd_this_run == pytest.approx(first.cost_usd_total)
    assert first.cost_usd_total > 0
    assert dict(os.environ) == environ_before  # the demo's variables do not leak

    page = _feed_text(first.feed_path)
    assert first.feed_path == (tmp_path / "feed.html").resolve()
    ledger_path = tmp_path / "dagster_home" / "generia_ledger.sqlite"
    assert ledger_path.exists() and (tmp_path / "stack" / "character.db").exists()
    assert page.count("data:image/") >= 3 + 4 and first.feed_images == 7
    assert "http://" not in page  # nothing points at the stopped stack
    captions = _captions_and_names(tmp_path)
    for text in captions:
        assert html.escape(text) in page

    summary = format_summary(first)
    assert "3 on the platform (3 new)" in summary and "7 this run" in summary
    assert "local-runware-key" not in summary

    second = run_demo(_options(tmp_path))
    assert second.success, second.error
    # A new stack process on new ports: the platform remembers (SQLite in the data dir)
    # and the ledger remembers, so nothing is created or paid again.
    assert (second.characters, second.new_characters, second.avatars) == (3, 0, 3)
    assert (second.posts, second.new_posts) == (4, 0)
    assert second.images_paid == 0
    assert second.ledger_images == 7
    assert second.cost_usd_this_run == 0
    assert second.cost_usd_total == pytest.approx(first.cost_usd_total)
    assert _captions_and_names(tmp_path) == captions

    # The runs went through the persistent instance, so the UI will list them.
    with DagsterInstance.from_config(str(tmp_path / "dagster_home")) as instance:
        runs = instance.get_runs()
        assert len(runs) == 4
        assert {r.status for r in runs} == {DagsterRunStatus.SUCCESS}
        assert instance.get_dynamic_partitions("worlds") == [WORLD]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_demos_image_previews_load_after_the_stack_restarts(tmp_path: Path) -> None:
    """Reopened in ``dev`` (a new stack process on the same directory and object store
    port), every preview the UI shows for the demo world loads."""
    port = _free_port()
    report = run_demo(_options(tmp_path, http_port=port))
    assert report.success, report.error
    with DagsterInstance.from_config(str(tmp_path / "dagster_home")) as instance:
        urls = []
        for asset in ("character_avatars", "post_images", "posts"):
            event = instance.get_latest_materialization_event(AssetKey(asset))
            assert event is not None and event.asset_materialization is not None
            previews = event.asset_materialization.metadata["previews"].value
            urls += re.findall(r"\]\((http[^)]+)\)", str(previews))
    assert len(urls) >= 3 and all(f":{port}/" in url for url in urls)
    stack = ThreadedStack(StackConfig(data_dir=tmp_path / "stack", http_port=port), []).start()
    try:
        for url in urls:
            answer = httpx.get(url, timeout=10)
            assert answer.status_code == 200, url
            assert answer.headers["content-type"].startswith("image/")
    finally:
        stack.stop()


def _captions_and_names(root: Path) -> list[str]:
    """Names and captions as the platform stores them, read from the stack's SQLite files."""
    import sqlite3

    texts: list[str] = []
    with sqlite3.connect(root / "stack" / "character.db") as db:
        texts += [name for (name,) in db.execute("SELECT display_name FROM characters")]
    with sqlite3.connect(root / "stack" / "post.db") as db:
        texts += [caption for (caption,) in db.execute("SELECT caption FROM posts")]
    return sorted(texts)


def test_failed_run_exits_non_zero_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = definitions.resources_from_env

    def wrong_key() -> dict[str, Any]:
        resources = real()
        resources["runware"] = RunwareResource(
            api_key="not-the-key", url=os.environ["RUNWARE_URL"], backoff_initial_s=0.01
        )
        return resources

    monkeypatch.setattr(definitions, "resources_from_env", wrong_key)
    code = main_demo(_options(tmp_path, characters=1, posts=1))
    out, err = capsys.readouterr()
    assert code == 1
    assert "populate_world" in out and "FAILURE" in out
    assert f"error: populate_world {WORLD} failed" in err
    assert "not-the-key" not in out + err


def test_demo_days_end_yesterday_and_respect_the_start_date() -> None:
    assert demo_days(3, date(2026, 11, 23), "2026-11-01") == [
        date(2026, 11, 21),
        date(2026, 11, 22),
        date(2026, 11, 23),
    ]
    with pytest.raises(DemoError, match="--days 23 or less"):
        demo_days(30, date(2026, 11, 23), "2026-11-01")
    with pytest.raises(DemoError, match="within 1"):
        demo_days(0)


@pytest.mark.parametrize(
    ("overrides", "flag"),
    [
        ({"world_id": "Bad|id"}, "--world-id"),
        ({"characters": 41}, "--characters"),
        ({"language": "fr"}, "--language: 'fr' \\(French\\) is not a supported language"),
        ({"prompt": "海港城市", "world_name": "港湾"}, "field 'language'.*pass --language"),
    ],
)
def test_bad_options_fail_before_starting_anything(
    tmp_path: Path, overrides: dict[str, Any], flag: str
) -> None:
    with pytest.raises(DemoError, match=flag):
        run_demo(_options(tmp_path, **overrides))
    assert not (tmp_path / "stack").exists()


KANALY_PROMPT = "Город каналов, где стеклодувы и ночные паромщики делят одни и те же мосты"


def test_demo_takes_the_language_and_writes_the_world_in_it(tmp_path: Path) -> None:
    """``--language ru`` on a world whose name is English: names, bios, captions and tags in
    Russian, the feed page in Russian (and declared so), image prompts in English."""
    args = build_parser().parse_args(["demo", "--language", "ru", "--world-id", "kanaly"])
    assert args.language == "ru"
    report = run_demo(
        _options(
            tmp_path,
            world_id="kanaly",
            world_name="Canal City",
            prompt=KANALY_PROMPT,
            language="ru",
            characters=2,
            posts=3,
        )
    )
    assert report.success, report.error
    assert report.language == "ru"
    assert "language     ru (Russian)" in format_summary(report)
    [world] = load_worlds_file(tmp_path / "worlds.yaml")
    assert world.language == "ru"  # written to the catalog, not left to detection

    texts = _captions_and_names(tmp_path)
    assert len(texts) == 2 + 3
    for text in texts:  # only the world's own (English) name may be in Latin letters
        latin = re.findall(r"[A-Za-z]+", text)
        assert set(latin) <= {"Canal", "City"}, text
        assert re.search("[а-яё]", text, re.IGNORECASE), text
    page = _feed_text(report.feed_path)
    assert '<html lang="ru">' in page and '<meta charset="utf-8">' in page
    assert "<h2>Лента</h2>" in page and "2 персонажа · 3 поста" in page
    tags = re.findall(r"<li>#([^<]+)</li>", page)
    assert tags and all(re.fullmatch(r"[а-яё0-9_]+|canal_city", tag) for tag in tags), tags


def test_feed_escapes_text_and_refuses_non_image_uris() -> None:
    pixel = "data:image/png;base64,iVBORw0KGgo="
    feed = Feed(
        world_id="w",
        world_name="<World & co>",
        characters=(FeedCharacter("c1", 'Ann "<b>"', avatar=pixel),),
        posts=(
            FeedPost("p1", "c1", 'Ann "<b>"', "<script>alert(1)</script>", ("a&b",), pixel),
            FeedPost("p2", "c1", "x", "ok", image='data:text/html,"><script>'),
        ),
    )
    page = render_feed(feed)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;World &amp; co&gt;" in page and "#a&amp;b" in page
    assert page.count(pixel) == 2  # the avatar once (CSS), the post image once
    assert "data:text/html" not in page and "image unavailable" in page


def _env_stack() -> dict[str, str]:
    return {
        "GENERIA_CHARACTER_ADDR": "127.0.0.1:50051",
        "GENERIA_MEDIA_ADDR": "127.0.0.1:50052",
        "GENERIA_POST_ADDR": "127.0.0.1:50053",
        "GENERIA_WORLD_ADDR": "127.0.0.1:50054",
        "GENERIA_STACK_URL": "http://127.0.0.1:8700",
        "RUNWARE_URL": "ws://127.0.0.1:8701/v1",
        "RUNWARE_API_KEY": "local-runware-key",
    }


def test_dev_launches_dagster_dev_pointed_at_the_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./worlds.yaml here: the sample gets written
    args = build_parser().parse_args(["dev", "--ui-port", "3100", "--", "--log-level", "debug"])
    options = dev_options(args)
    assert options.ports["character"] == 50051 and options.ports["runware"] == 8701
    caller = {"PATH": "/bin", "GENERIA_LEDGER_URL": "postgresql://x", "GENERIA_GRPC_TLS": "1"}
    launch = dev.prepare_launch(options, _env_stack(), caller)

    assert launch.command == [
        sys.executable,
        "-m",
        "dagster",
        "dev",
        "-m",
        "generia_pipelines.definitions",
        "-h",
        "127.0.0.1",
        "-p",
        "3100",
        "--log-level",
        "debug",
    ]
    home = tmp_path / ".generia" / "dev" / "dagster_home"
    assert launch.env["DAGSTER_HOME"] == str(home)
    assert (home / "dagster.yaml").exists()
    worlds = Path(launch.env["GENERIA_WORLDS_FILE"])
    assert worlds == tmp_path / ".generia" / "dev" / "worlds.yaml"
    assert [w.id for w in load_worlds_file(worlds)] == ["neon-harbor", "verdant-reach"]
    assert launch.env["GENERIA_CHARACTER_ADDR"] == "127.0.0.1:50051"
    assert launch.env["RUNWARE_URL"] == "ws://127.0.0.1:8701/v1"
    assert launch.env["PATH"] == "/bin"
    for dropped in ("GENERIA_WORLD_ADDR", "GENERIA_LEDGER_URL", "GENERIA_GRPC_TLS"):
        assert dropped not in launch.env

    service = dev_options(build_parser().parse_args(["dev", "--world-service", "--dir", "x"]))
    env = dev.prepare_launch(service, _env_stack(), {}).env
    assert env["GENERIA_WORLD_ADDR"] == "127.0.0.1:50054"
    assert env["DAGSTER_HOME"] == str(tmp_path / "x" / "dagster_home")


def test_dev_passes_the_backfill_days_to_the_sensor(tmp_path: Path) -> None:
    parsed = build_parser().parse_args(["dev", "--dir", str(tmp_path), "--backfill-days", "3"])
    env = dev.prepare_launch(dev_options(parsed), _env_stack(), {}).env
    assert env["GENERIA_BACKFILL_DAYS"] == "3"
    unset = dev_options(build_parser().parse_args(["dev", "--dir", str(tmp_path)]))
    kept = dev.prepare_launch(unset, _env_stack(), {"GENERIA_BACKFILL_DAYS": "5"}).env
    assert kept["GENERIA_BACKFILL_DAYS"] == "5"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["dev", "--backfill-days", "soon"])


def test_dev_and_demo_start_without_dagsters_noise(tmp_path: Path) -> None:
    parsed = build_parser().parse_args(["dev", "--dir", str(tmp_path)])
    env = dev.prepare_launch(dev_options(parsed), _env_stack(), {"PYTHONWARNINGS": "error"}).env
    assert env["PYTHONWARNINGS"] == f"error,{dev.SUPERSEDED_DEV_WARNING}"
    old = tmp_path / "old_home"
    old.mkdir()
    (old / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    for home in (tmp_path / "new_home", old):
        config = yaml.safe_load((ensure_dagster_home(home) / "dagster.yaml").read_text())
        assert config["nux"] == {"enabled": False} and config["telemetry"] == {"enabled": False}


def test_dev_worlds_file_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    options = dev.DevOptions(root=Path("state"))
    (tmp_path / "worlds.yaml").write_text("worlds: []\n")
    assert dev.resolve_worlds_file(options, {}) == (tmp_path / "worlds.yaml", False)
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "worlds.yaml").write_text("worlds: []\n")
    assert dev.resolve_worlds_file(options, {}) == (tmp_path / "state" / "worlds.yaml", False)
    env = {"GENERIA_WORLDS_FILE": "/etc/w.yaml"}
    assert dev.resolve_worlds_file(options, env) == (Path("/etc/w.yaml"), False)
    explicit = dev.DevOptions(root=Path("state"), worlds_file=Path("mine.yaml"))
    assert dev.resolve_worlds_file(explicit, env) == (tmp_path / "mine.yaml", True)


def test_dev_runs_the_child_against_a_live_stack_and_stops_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real lifecycle with a stand-in child instead of ``dagster dev``."""
    probe = (
        "import os, socket; host, port = os.environ['GENERIA_CHARACTER_ADDR'].rsplit(':', 1);"
        "socket.create_connection((host, int(port)), timeout=5).close();"
        "open(os.environ['DAGSTER_HOME'] + '/probe', 'w').write("
        "os.environ['GENERIA_CHARACTER_ADDR'])"
    )
    monkeypatch.setattr(dev, "dev_command", lambda options: [sys.executable, "-c", probe])
    options = dev.DevOptions(root=tmp_path / "dev", worlds_file=REPO / "worlds.yaml")
    assert dev.run_dev(options) == 0
    address = (tmp_path / "dev" / "dagster_home" / "probe").read_text()
    host, port = address.rsplit(":", 1)
    with pytest.raises(OSError):  # the stack is gone
        socket.create_connection((host, int(port)), timeout=1).close()


def test_repository_catalog_and_workspace() -> None:
    worlds = load_worlds_file(REPO / "worlds.yaml")
    assert len(worlds) == 2 and all(w.prompt and w.characters for w in worlds)
    workspace = yaml.safe_load((REPO / "workspace.yaml").read_text())
    assert workspace == {"load_from": [{"python_module": "generia_pipelines.definitions"}]}

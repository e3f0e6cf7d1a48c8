"""Populate one world (default 25 characters, 150 posts) on the local stack, through Dagster.

Run: .venv/bin/python bench/populate_world.py [--characters 25] [--posts 150]

The stack and the Runware stand-in run in a separate process (``generia-pipelines stack``),
so this process's CPU time is the pipeline's own: Dagster, the assets, the clients, the
ledger. Prints wall time, runs, images paid, cost and CPU milliseconds per generated item.
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

WORLD = "bench-harbor"
DAY = "2026-11-23"


def _start_stack(data_dir: Path) -> tuple[subprocess.Popen[str], dict[str, str]]:
    command = [
        sys.executable, "-m", "generia_pipelines.cli", "stack",
        "--port-base", "0", "--data-dir", str(data_dir),
    ]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    env: dict[str, str] = {}
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while "RUNWARE_API_KEY" not in env or "RUNWARE_URL" not in env:
        if time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("the local stack did not start in 30 s")
        line = proc.stdout.readline()
        if not line:
            raise SystemExit("the local stack exited early")
        name, _, value = line.removeprefix("export ").strip().partition("=")
        env[name] = shlex.split(value)[0] if value else ""
    return proc, env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--characters", type=int, default=25)
    parser.add_argument("--posts", type=int, default=150)
    opts = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        proc, env = _start_stack(root / "stack")
        try:
            worlds = root / "worlds.yaml"
            worlds.write_text(
                yaml.safe_dump(
                    {
                        "worlds": [
                            {
                                "id": WORLD,
                                "name": "Bench Harbor",
                                "prompt": "A foggy harbour town of lighthouse keepers and "
                                "smugglers",
                                "characters": opts.characters,
                                "posts_per_day": opts.posts,
                                "budget": {"daily": {"images": opts.posts * 2}},
                            }
                        ]
                    }
                )
            )
            env.pop("GENERIA_WORLD_ADDR", None)  # the catalog is the worlds file here
            os.environ.update(env)
            os.environ["GENERIA_WORLDS_FILE"] = str(worlds)
            os.environ["DAGSTER_HOME"] = str(root / "dagster_home")
            (root / "dagster_home").mkdir()
            run(opts.characters, opts.posts, env["GENERIA_STACK_URL"])
        finally:
            proc.terminate()
            proc.wait(timeout=15)


def run(characters: int, posts: int, stack_url: str) -> None:
    from dagster import DagsterInstance

    from generia_pipelines.definitions import defs
    from generia_pipelines.ledger import Ledger, default_ledger_url
    from generia_pipelines.partitions import world_day_key

    instance = DagsterInstance.get()
    instance.add_dynamic_partitions("worlds", [WORLD])
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    wall0 = time.perf_counter()
    runs = []
    setup = defs.resolve_job_def("populate_world").execute_in_process(
        partition_key=WORLD, instance=instance, raise_on_error=False
    )
    runs.append(("populate_world", setup.success, time.perf_counter() - wall0))
    wall1 = time.perf_counter()
    daily = defs.resolve_job_def("daily_posts").execute_in_process(
        partition_key=world_day_key(WORLD, DAY), instance=instance, raise_on_error=False
    )
    runs.append(("daily_posts", daily.success, time.perf_counter() - wall1))
    wall = time.perf_counter() - wall0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)

    made_characters = len(httpx.get(f"{stack_url}/_admin/worlds/{WORLD}/characters").json())
    made_posts = len(httpx.get(f"{stack_url}/_admin/worlds/{WORLD}/posts").json())
    with Ledger(default_ledger_url()) as ledger:
        images = sum(
            1
            for kind in ("avatars", "posts")
            for unit in ledger.units(WORLD, kind)
            if unit.image is not None or unit.media_id
        )
        cost = ledger.cost(WORLD)
    items = made_characters * 2 + made_posts  # characters, avatars, posts
    for name, ok, seconds in runs:
        print(f"run {name}: {'success' if ok else 'FAILED'} in {seconds:.1f} s")
    print(
        f"world of {characters} characters and {posts} posts: wall {wall:.1f} s, "
        f"{len(runs)} runs, characters {made_characters}, posts {made_posts}, "
        f"images paid {images}, cost ${cost:.4f}"
    )
    print(
        f"pipeline process CPU {cpu:.1f} s for {items} items = {cpu / items * 1000:.1f} ms/item "
        f"(Dagster, assets, clients, ledger; the stack runs in another process)"
    )
    if not all(ok for _, ok, _ in runs):
        raise SystemExit(1)


if __name__ == "__main__":
    main()

"""Images per second through the real runware SDK (via RunwareImages) against the stand-in.

The stand-in runs in its own process by default, so its drawing and encoding do not compete
with the client for the GIL; ``--standin thread`` keeps everything in one process.

    .venv/bin/python bench/runware_throughput.py -n 120
    .venv/bin/python bench/runware_throughput.py -n 120 --latency-ms 200
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from generia_pipelines.clients.runware import RunwareImages, RunwareSettings
from generia_pipelines.local.runware_standin import (
    DEFAULT_API_KEY,
    ThreadedRunwareStandin,
)


@contextlib.contextmanager
def standin_process(latency_ms: float) -> Iterator[str]:
    """Run ``python -m generia_pipelines.local.runware_standin``; yield its ws:// URL."""
    command = [
        sys.executable,
        "-m",
        "generia_pipelines.local.runware_standin",
        "--latency-ms",
        str(latency_ms),
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        if not url.startswith("ws://"):
            raise RuntimeError(f"the stand-in did not start (said {url!r})")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@contextlib.contextmanager
def standin_thread(latency_ms: float) -> Iterator[str]:
    with ThreadedRunwareStandin() as server:
        server.faults.set(latency_s=latency_ms / 1000)
        yield server.url


async def run_level(
    url: str, images: int, concurrency: int, args: argparse.Namespace
) -> tuple[float, list[float]]:
    settings = RunwareSettings(
        api_key=DEFAULT_API_KEY,
        url=url,
        concurrency=concurrency,
        output_type=args.output_type,
        output_format=args.format,
        width=args.size,
        height=args.size,
        enhance_prompt=args.enhance,
    )
    latencies: list[float] = []
    # Same cap as the client's, so the latencies measure calls, not queueing.
    gate = asyncio.Semaphore(concurrency)

    async def one(seed: int) -> None:
        async with gate:
            started = time.perf_counter()
            await generator.generate(f"benchmark world, scene {seed % 7}", seed=seed)
            latencies.append(time.perf_counter() - started)

    async with RunwareImages(settings) as generator:
        await generator.generate("warm-up", seed=1)
        started = time.perf_counter()
        await asyncio.gather(*(one(seed) for seed in range(2, images + 2)))
        elapsed = time.perf_counter() - started
    return elapsed, latencies


async def main_async(url: str, args: argparse.Namespace) -> None:
    print(
        f"{args.images} images of {args.size}x{args.size} {args.format} as {args.output_type}, "
        f"stand-in latency {args.latency_ms:g} ms ({args.standin}), "
        f"enhance={'on' if args.enhance else 'off'}"
    )
    print(f"{'concurrency':>11} {'images/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'total s':>8}")
    for concurrency in args.concurrency:
        elapsed, latencies = await run_level(url, args.images, concurrency, args)
        p50 = statistics.median(latencies) * 1000
        p95 = statistics.quantiles(latencies, n=20)[-1] * 1000 if len(latencies) > 1 else p50
        print(
            f"{concurrency:>11} {args.images / elapsed:>9.1f} {p50:>8.1f} {p95:>8.1f} "
            f"{elapsed:>8.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-n", "--images", type=int, default=120, help="images per level")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="stand-in added latency")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 10, 30])
    parser.add_argument(
        "--output-type", default="base64Data", choices=["base64Data", "dataURI", "URL"]
    )
    parser.add_argument("--format", default="PNG", choices=["PNG", "JPG", "WEBP"])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--enhance", action="store_true", help="promptEnhance before each image")
    parser.add_argument("--standin", choices=["process", "thread"], default="process")
    args = parser.parse_args()
    launcher = standin_process if args.standin == "process" else standin_thread
    with launcher(args.latency_ms) as url:
        asyncio.run(main_async(url, args))


if __name__ == "__main__":
    main()

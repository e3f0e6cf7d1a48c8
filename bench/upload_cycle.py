"""Latency of one create → presign → upload → confirm cycle against the local Generia stack.

Run: .venv/bin/python bench/upload_cycle.py [--cycles 100] [--image-size 512]
Prints the median, p90 and max over the cycles, each cycle run alone (no concurrency), so the
figure is the pipeline's per-item floor on this machine before any injected latency.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from PIL import Image

from generia_pipelines.clients.grpc_base import ChannelSettings
from generia_pipelines.clients.platform import CharacterClient, MediaClient
from generia_pipelines.clients.records import MediaType
from generia_pipelines.clients.upload import PresignedUploader
from generia_pipelines.local.stack import StackConfig, ThreadedStack


def _image(size: int) -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise((size, size), 40).convert("RGB").save(buffer, format="PNG")
    return buffer.getvalue()


async def _run(env: dict[str, str], cycles: int, data: bytes) -> list[float]:
    character = CharacterClient(ChannelSettings(env["GENERIA_CHARACTER_ADDR"]))
    media = MediaClient(ChannelSettings(env["GENERIA_MEDIA_ADDR"]))
    timings: list[float] = []
    async with character, media, httpx.AsyncClient() as http:
        uploader = PresignedUploader(media, http)
        for i in range(cycles):
            start = time.perf_counter()
            made = await character.create_ai_character(
                "bench-world", f"Bench {i}", idempotency_key=f"characters/bench-world/{i}"
            )
            uploaded = await uploader.upload(
                world_id="bench-world",
                character_id=made.id,
                media_type=MediaType.CHARACTER_AVATAR,
                filename="avatar.png",
                content_type="image/png",
                data=data,
                idempotency_key=f"avatars/bench-world/{made.id}",
            )
            await media.confirm(uploaded.media_id, made.id, world_id="bench-world")
            timings.append(time.perf_counter() - start)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=100)
    parser.add_argument("--image-size", type=int, default=512)
    opts = parser.parse_args()
    data = _image(opts.image_size)
    with (
        tempfile.TemporaryDirectory() as tmp,
        ThreadedStack(StackConfig(data_dir=Path(tmp))) as stack,
    ):
        timings = asyncio.run(_run(stack.env, opts.cycles, data))
    ms = sorted(t * 1000 for t in timings)
    print(
        f"create-presign-upload-confirm, {opts.cycles} cycles, {opts.image_size}px PNG "
        f"({len(data)} bytes): median {statistics.median(ms):.1f} ms, "
        f"p90 {ms[int(0.9 * (len(ms) - 1))]:.1f} ms, max {ms[-1]:.1f} ms"
    )


if __name__ == "__main__":
    main()

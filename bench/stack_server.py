"""The local Generia stack for benchmarks: all services, Runware and text stand-ins, one process.

Run by ``bench/harness.py`` as a child process, so the pipeline's CPU time is measured apart
from the test bed's. It prints one JSON line with the environment that points the pipeline
at it, then takes JSON commands on stdin, one per line, and answers each with a JSON line:

- ``{"latency": {"text": 0.4, "image": 1.0, "grpc": 0.005, "upload": 0.02}}``: injected
  latency per dependency in seconds (missing ones unchanged); gRPC covers every method of
  the four services, upload the object store's PUT.
- ``{"cpu": null}``: this process's CPU seconds so far (the test bed's share of the machine).
- ``{"stop": null}``: shut down cleanly.

Latency is set at run time, so a benchmark can set worlds up fast and then time the part
it measures against the same data.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
from pathlib import Path
from typing import Any

from generia_pipelines.local.runware_standin import RunwareComponent
from generia_pipelines.local.stack import LocalStack, StackConfig
from generia_pipelines.local.text_standin import TextComponent

#: Which latency knob injects where.
DEPENDENCIES = ("text", "image", "grpc", "upload")


def apply_latency(
    stack: LocalStack, runware: RunwareComponent, text: TextComponent, latency: dict[str, float]
) -> None:
    """Set the injected latency of each named dependency (seconds)."""
    unknown = set(latency) - set(DEPENDENCIES)
    if unknown:
        raise ValueError(f"unknown dependencies {sorted(unknown)}; known: {DEPENDENCIES}")
    if "grpc" in latency:
        stack.faults.set("*", latency_s=latency["grpc"])
    if "upload" in latency:
        stack.faults.set("object_store.PUT", latency_s=latency["upload"])
    if "image" in latency:
        assert runware.standin is not None
        runware.standin.faults.set(latency_s=latency["image"])
    if "text" in latency:
        assert text.standin is not None
        text.standin.faults.set(latency_s=latency["text"], latency_rate=1.0)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def serve(data_dir: Path) -> None:
    runware, text = RunwareComponent(), TextComponent()
    stack = LocalStack(StackConfig(data_dir=data_dir), [runware, text])
    await stack.start()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print(json.dumps({"env": stack.env}), flush=True)
    try:
        while line := await reader.readline():
            answer: dict[str, Any] = {"ok": True}
            try:
                command = json.loads(line)
                if "latency" in command:
                    apply_latency(stack, runware, text, command["latency"])
                if "cpu" in command:
                    answer["cpu_s"] = cpu_seconds()
                if "stop" in command:
                    break
            except (ValueError, TypeError) as exc:
                answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            print(json.dumps(answer), flush=True)
    finally:
        await asyncio.wait_for(stack.stop(), timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    asyncio.run(serve(parser.parse_args().data_dir))


if __name__ == "__main__":
    main()

"""What the contract check costs a run: opening the four clients with and without it.

Side by side in one process against one local stack (its servers share the two cores):
``open()`` of the Character, Media, Post and World clients, ``GENERIA_CONTRACT_CHECK=off``
against ``warn`` on the specification and on the drifted revision, wall and CPU time.

    .venv/bin/python bench/contract_check.py [--rounds 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import tempfile
import time
from pathlib import Path

from generia_pipelines.clients.contract import ContractMode
from generia_pipelines.clients.grpc_base import ChannelSettings
from generia_pipelines.clients.platform import CharacterClient, MediaClient, PostClient, WorldClient
from generia_pipelines.local.revisions import Revision
from generia_pipelines.local.stack import StackConfig, ThreadedStack

CLIENTS = (
    (CharacterClient, "GENERIA_CHARACTER_ADDR"),
    (MediaClient, "GENERIA_MEDIA_ADDR"),
    (PostClient, "GENERIA_POST_ADDR"),
    (WorldClient, "GENERIA_WORLD_ADDR"),
)


async def _open_all(env: dict[str, str], mode: ContractMode) -> None:
    clients = [cls(ChannelSettings(env[var], contract_mode=mode)) for cls, var in CLIENTS]
    for client in clients:
        await client.open()
    for client in clients:
        await client.close()


def measure(env: dict[str, str], mode: ContractMode, rounds: int) -> dict[str, float]:
    async def run() -> None:
        for _ in range(rounds):
            await _open_all(env, mode)

    wall, cpu = time.perf_counter(), time.process_time()
    asyncio.run(run())
    return {
        "wall_ms_per_run": round((time.perf_counter() - wall) / rounds * 1000, 2),
        "cpu_ms_per_run": round((time.process_time() - cpu) / rounds * 1000, 2),
    }


def main() -> None:
    logging.disable(logging.WARNING)  # the drift warnings are the point elsewhere, not here
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=50)
    rounds = parser.parse_args().rounds
    results = {}
    for revision in (Revision.SPEC, Revision.DRIFTED):
        with tempfile.TemporaryDirectory() as data:
            with ThreadedStack(StackConfig(Path(data), revision=revision)) as stack:
                for mode in (ContractMode.OFF, ContractMode.WARN):
                    measure(stack.env, mode, 3)  # warm up
                    results[f"{revision.value}/{mode.value}"] = measure(stack.env, mode, rounds)
    print(json.dumps({"rounds": rounds, "open_four_clients": results}, indent=2))


if __name__ == "__main__":
    main()

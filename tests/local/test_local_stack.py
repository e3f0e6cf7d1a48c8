"""Lifecycle of the stack: env, ports, restart on the same data, components, bounded stop."""

from __future__ import annotations

import socket
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from stack_helpers import WORLD, open_api

from generia_pipelines.local.stack import (
    LocalStack,
    ServerComponent,
    StackConfig,
    ThreadedStack,
)
from generia_pipelines.proto import character_pb2, character_pb2_grpc

ENV_KEYS = {
    "GENERIA_CHARACTER_ADDR",
    "GENERIA_MEDIA_ADDR",
    "GENERIA_POST_ADDR",
    "GENERIA_WORLD_ADDR",
    "GENERIA_STACK_URL",
}


def _accepts(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


def test_threaded_stack_env_ports_and_files(tmp_path: Path) -> None:
    with ThreadedStack(StackConfig(data_dir=tmp_path)) as stack:
        env = stack.env
        assert set(env) == ENV_KEYS
        addresses = [v for k, v in env.items() if k.endswith("_ADDR")]
        assert len(set(addresses)) == 4 and all(_accepts(a) for a in addresses)
        assert env["GENERIA_STACK_URL"].startswith("http://127.0.0.1:")
        for name in ("character.db", "media.db", "post.db", "world.db"):
            assert (tmp_path / name).is_file()
        assert (tmp_path / "objects").is_dir()
    assert not any(_accepts(a) for a in addresses)
    with pytest.raises(RuntimeError, match="not running"):
        _ = stack.env


def test_stop_is_fast_and_idempotent(tmp_path: Path) -> None:
    stack = ThreadedStack(StackConfig(data_dir=tmp_path)).start()
    started = time.monotonic()
    stack.stop()
    stack.stop()
    assert time.monotonic() - started < 5


def test_a_taken_port_fails_start_cleanly(stack: ThreadedStack, tmp_path: Path) -> None:
    taken = int(stack.env["GENERIA_CHARACTER_ADDR"].rsplit(":", 1)[1])
    other = ThreadedStack(StackConfig(data_dir=tmp_path / "other", character_port=taken))
    with pytest.raises(OSError, match="character"):
        other.start()
    other.stop()


async def test_data_survives_a_restart(stack_factory: Any, tmp_path: Path) -> None:
    config = StackConfig(data_dir=tmp_path / "persistent")
    async with AsyncExitStack() as exits:
        api = await open_api(stack_factory(config), exits)
        ada = await api.create_character()
        media_id = await api.upload(ada.id)
    async with AsyncExitStack() as exits:
        api = await open_api(stack_factory(config), exits)  # new ports, same files
        fetched = await api.character.GetCharacter(
            character_pb2.GetCharacterRequest(character_id=ada.id)
        )
        assert fetched.id == ada.id
        [media] = await api.admin(WORLD, "media")
        assert media["media_id"] == media_id and media["confirmed"]
        original = media["variants"][0]["url"]
        assert original.startswith(api.base)  # URLs follow the new port
        assert (await api.http.get(original)).status_code == 200


async def test_local_stack_runs_in_the_current_loop(tmp_path: Path) -> None:
    stack = LocalStack(StackConfig(data_dir=tmp_path))
    with pytest.raises(RuntimeError):
        _ = stack.env
    await stack.start()
    try:
        async with grpc.aio.insecure_channel(stack.env["GENERIA_CHARACTER_ADDR"]) as channel:
            stub = character_pb2_grpc.CharacterServiceStub(channel)
            health = await stub.HealthCheck(character_pb2.HealthCheckRequest(), timeout=5)
            assert health.status == "SERVING"
    finally:
        await stack.stop()
    assert not stack.running


@dataclass
class _FakeHandle:
    url: str
    stopped: bool = False

    async def stop(self) -> None:
        self.stopped = True


async def test_extra_components_join_env_and_stop_with_the_stack(tmp_path: Path) -> None:
    seen: list[tuple[str, int]] = []
    handle = _FakeHandle("ws://127.0.0.1:1/v1")

    async def start_fake(host: str, port: int) -> _FakeHandle:
        seen.append((host, port))
        return handle

    component = ServerComponent("runware", start_fake, "RUNWARE_URL", port=0)
    stack = LocalStack(StackConfig(data_dir=tmp_path), components=[component])
    await stack.start()
    assert stack.env["RUNWARE_URL"] == handle.url and component.handle is handle
    assert seen == [("127.0.0.1", 0)]
    await stack.stop()
    assert handle.stopped


async def test_a_failing_component_undoes_the_start(tmp_path: Path) -> None:
    async def broken(host: str, port: int) -> _FakeHandle:
        raise OSError("cannot bind")

    stack = LocalStack(
        StackConfig(data_dir=tmp_path), components=[ServerComponent("x", broken, "X_URL")]
    )
    with pytest.raises(OSError, match="cannot bind"):
        await stack.start()
    assert not stack.running
    # everything was closed: a fresh stack on the same directory starts
    stack2 = LocalStack(StackConfig(data_dir=tmp_path))
    await stack2.start()
    await stack2.stop()


def test_faults_can_be_set_from_another_thread(stack: ThreadedStack) -> None:
    stack.faults.set("GetCharacter", times=1)
    with grpc.insecure_channel(stack.env["GENERIA_CHARACTER_ADDR"]) as channel:
        stub = character_pb2_grpc.CharacterServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.GetCharacter(character_pb2.GetCharacterRequest(character_id="x"), timeout=5)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
    assert stack.stats.get("character.GetCharacter").injected_errors == 1

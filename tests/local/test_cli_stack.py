"""``generia-pipelines stack``: argument parsing and a real foreground run with SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import httpx
import pytest

from generia_pipelines.cli import build_parser, parse_fault, stack_ports
from generia_pipelines.clients.contract import ServiceContract, Status
from generia_pipelines.clients.grpc_base import ChannelSettings
from generia_pipelines.clients.platform import CharacterClient, PostClient
from generia_pipelines.proto import world_pb2, world_pb2_grpc


def test_parse_fault() -> None:
    assert parse_fault("CreateCharacter:error_rate=0.2,error_code=UNAVAILABLE") == {
        "method": "CreateCharacter",
        "error_rate": 0.2,
        "error_code": "UNAVAILABLE",
    }
    assert parse_fault("object_store.PUT:latency_s=1.5,times=3") == {
        "method": "object_store.PUT",
        "latency_s": 1.5,
        "times": 3,
    }
    assert parse_fault("GetWorld") == {"method": "GetWorld"}
    for bad in ("GetWorld:speed=1", "GetWorld:times=x", ":times=1", "GetWorld:times"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_fault(bad)


def test_ports() -> None:
    parser = build_parser()
    defaults = stack_ports(parser.parse_args(["stack"]))
    assert defaults == {
        "character": 50051,
        "media": 50052,
        "post": 50053,
        "world": 50054,
        "http": 8700,
        "runware": 8701,
    }
    shifted = stack_ports(parser.parse_args(["stack", "--port-base", "6000"]))
    assert list(shifted.values()) == [6000, 6001, 6002, 6003, 6004, 6005]
    free = stack_ports(parser.parse_args(["stack", "--port-base", "0", "--http-port", "9000"]))
    assert free == {
        "character": 0,
        "media": 0,
        "post": 0,
        "world": 0,
        "http": 9000,
        "runware": 0,
    }


def test_stack_options() -> None:
    args = build_parser().parse_args(
        ["stack", "--token", "t", "--no-idempotency", "--fault", "GetWorld:times=1"]
    )
    assert (
        args.token == "t"
        and args.no_idempotency
        and args.fault == [{"method": "GetWorld", "times": 1}]
    )
    assert args.data_dir == Path(".generia/stack")
    assert (args.revision, args.no_reflection, args.no_lookups) == ("spec", False, False)
    served = build_parser().parse_args(["stack", "--revision", "drifted", "--no-lookups"])
    assert (served.revision, served.no_lookups) == ("drifted", True)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["stack", "--revision", "head"])


def _exports(proc: subprocess.Popen[str], count: int = 7) -> dict[str, str]:
    """The ``export NAME=value`` lines the stack prints once it listens."""
    assert proc.stdout is not None
    env: dict[str, str] = {}
    deadline = time.monotonic() + 20
    while len(env) < count and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        assert line.startswith("export "), line
        name, _, value = line[len("export ") :].strip().partition("=")
        env[name] = value
    return env


def test_stack_serves_the_drifted_revision_when_asked(tmp_path: Path) -> None:
    command = [
        sys.executable, "-m", "generia_pipelines.cli", "stack", "--port-base", "0",
        "--data-dir", str(tmp_path / "data"), "--no-runware",
        "--revision", "drifted", "--no-lookups",
    ]  # fmt: skip
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path
    )

    async def contracts(env: dict[str, str]) -> tuple[ServiceContract, ServiceContract]:
        async with (
            CharacterClient(ChannelSettings(env["GENERIA_CHARACTER_ADDR"])) as character,
            PostClient(ChannelSettings(env["GENERIA_POST_ADDR"])) as post,
        ):
            return character.contract, post.contract

    try:
        character, post = asyncio.run(contracts(_exports(proc, count=5)))
        assert character.status is Status.BRIDGED
        assert "Character.meta" in character.summary()
        assert post.has_method("GetPost") is False
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_stack_runs_in_the_foreground_until_sigterm(tmp_path: Path) -> None:
    command = [
        sys.executable, "-m", "generia_pipelines.cli",
        "stack", "--port-base", "0", "--data-dir", str(tmp_path / "data"),
        "--fault", "GetWorld:times=1,error_code=INTERNAL",
    ]  # fmt: skip
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path
    )
    try:
        env = _exports(proc)
        assert set(env) == {
            "GENERIA_CHARACTER_ADDR",
            "GENERIA_MEDIA_ADDR",
            "GENERIA_POST_ADDR",
            "GENERIA_WORLD_ADDR",
            "GENERIA_STACK_URL",
            "RUNWARE_URL",
            "RUNWARE_API_KEY",
        }, proc.stderr.read() if proc.stderr else ""
        with grpc.insecure_channel(env["GENERIA_WORLD_ADDR"]) as channel:
            stub = world_pb2_grpc.WorldServiceStub(channel)
            with pytest.raises(grpc.RpcError) as info:
                stub.GetWorld(world_pb2.GetWorldRequest(world_id="x"), timeout=5)
            assert info.value.code() == grpc.StatusCode.INTERNAL  # type: ignore[attr-defined]
        assert httpx.get(env["GENERIA_STACK_URL"] + "/healthz", timeout=5).status_code == 200
        assert env["RUNWARE_URL"].startswith("ws://127.0.0.1:")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert (tmp_path / "data" / "world.db").is_file()
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_a_bad_fault_fails_before_starting(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable, "-m", "generia_pipelines.cli",
            "stack", "--port-base", "0", "--data-dir", str(tmp_path), "--fault", "Nope:times=1",
        ],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 2 and "unknown method" in result.stderr

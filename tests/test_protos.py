"""The committed stubs are what protos/ generates, and the contract keeps the seed's numbers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from generia_pipelines.proto import character_pb2, media_pb2, post_pb2, world_pb2

ROOT = Path(__file__).resolve().parent.parent


def test_committed_stubs_match_protos() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def _numbers(message: type) -> dict[str, int]:
    return {f.name: f.number for f in message.DESCRIPTOR.fields}  # type: ignore[attr-defined]


def test_seed_field_numbers_and_packages() -> None:
    assert character_pb2.DESCRIPTOR.package == "generia.character"
    assert media_pb2.DESCRIPTOR.package == "media"
    assert post_pb2.DESCRIPTOR.package == "post"
    assert world_pb2.DESCRIPTOR.package == "world"
    assert _numbers(character_pb2.CreateCharacterRequest) == {
        "world_id": 1,
        "real_user_id": 2,
        "display_name": 3,
        "avatar_media_id": 4,
        "meta": 5,
    }
    assert _numbers(media_pb2.GetPresignedUploadURLRequest) == {
        "character_id": 1,
        "world_id": 2,
        "filename": 3,
        "content_type": 4,
        "size": 5,
        "media_type": 6,
    }
    assert _numbers(media_pb2.ConfirmUploadRequest) == {"media_id": 1, "character_id": 2}
    assert _numbers(post_pb2.CreateAIPostRequest) == {
        "character_id": 1,
        "caption": 2,
        "media_id": 3,
        "world_id": 4,
        "tags": 5,
    }
    assert _numbers(world_pb2.WorldResponse)["params"] == 15
    assert media_pb2.MediaType.Value("MEDIA_TYPE_POST_IMAGE") == 4

"""A client built only from the seed's proto text drives the stack end to end.

The seed's messages are copied verbatim from the specification; only what it leaves out
is added (``syntax``/``package`` lines, and messages it references without defining).
They are compiled with ``grpc_tools.protoc`` into a temporary directory and used from a
separate interpreter (the seed's message names would clash with the project's in one
descriptor pool). If the contract had renumbered a field, the values read back through
the project's own stubs would not match what the seed client sent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import grpc
from grpc_tools import protoc

from generia_pipelines.local.stack import ThreadedStack
from generia_pipelines.proto import character_pb2, character_pb2_grpc, post_pb2, post_pb2_grpc

SEED_CHARACTER = """syntax = "proto3";

package generia.character;

service CharacterService {
  rpc CreateCharacter(CreateCharacterRequest) returns (Character);
  rpc GetCharacter(GetCharacterRequest) returns (Character);
  rpc GetUserCharactersInWorld(GetUserCharactersInWorldRequest) returns (CharacterList);
}

message CreateCharacterRequest {
  string world_id = 1;
  optional string real_user_id = 2; // Оставить пустым для AI-персонажа
  string display_name = 3;
  optional string avatar_media_id = 4;
  optional string meta = 5; // JSON строка с дополнительными данными
}


// Character representation
message Character {
  string id = 1;
  string world_id = 2;
  optional string real_user_id = 3; // Empty for AI characters
  bool is_ai = 4;
  string display_name = 5;
  optional string avatar_media_id = 6;
  optional string meta = 7; // JSON string
  string created_at = 8;
}

// Not in the seed but referenced by its service: minimal definitions so it compiles.
message GetCharacterRequest { string character_id = 1; }
message GetUserCharactersInWorldRequest { string user_id = 1; string world_id = 2; }
message CharacterList { repeated Character characters = 1; }
"""

SEED_MEDIA = """syntax = "proto3";

package media;

// MediaService предоставляет API для управления медиафайлами
service MediaService {
  // Получение предподписанного URL для прямой загрузки в хранилище
  rpc GetPresignedUploadURL(GetPresignedUploadURLRequest) returns (GetPresignedUploadURLResponse);

  // Подтверждение загрузки файла через предподписанный URL
  rpc ConfirmUpload(ConfirmUploadRequest) returns (ConfirmUploadResponse);

}


message GetPresignedUploadURLRequest {
  string character_id = 1;
  string world_id = 2;
  string filename = 3;
  string content_type = 4;
  int64 size = 5;
}

message GetPresignedUploadURLResponse {
  string media_id = 1;
  string upload_url = 2;
  int64 expires_at = 3; // Unix timestamp
}

message ConfirmUploadRequest {
  string media_id = 1;
  string character_id = 2;
}

message ConfirmUploadResponse {
  bool success = 1;
  repeated MediaVariant variants = 2;
}

// Used by the seed without a definition.
message MediaVariant { string name = 1; string url = 2; int32 width = 3; int32 height = 4; }
"""

SEED_POST = """syntax = "proto3";

package post;

service PostService {
  // Создание AI поста (внутренний метод для AI генератора)
  rpc CreateAIPost(CreateAIPostRequest) returns (CreatePostResponse);
}

message CreateAIPostRequest {
  string character_id = 1;
  string caption = 2;
  string media_id = 3;
  string world_id = 4;
  repeated string tags = 5;
}

message CreatePostResponse {
  string post_id = 1;
  string created_at = 2;
}
"""

# Runs in a fresh interpreter with only the seed's stubs importable.
SEED_CLIENT = r"""
import io, json, os, sys, urllib.request
import grpc
from PIL import Image
import character_pb2, character_pb2_grpc, media_pb2, media_pb2_grpc, post_pb2, post_pb2_grpc

assert "media_type" not in media_pb2.GetPresignedUploadURLRequest.DESCRIPTOR.fields_by_name
world = "seed-world"
chars = character_pb2_grpc.CharacterServiceStub(
    grpc.insecure_channel(os.environ["GENERIA_CHARACTER_ADDR"]))
media = media_pb2_grpc.MediaServiceStub(grpc.insecure_channel(os.environ["GENERIA_MEDIA_ADDR"]))
posts = post_pb2_grpc.PostServiceStub(grpc.insecure_channel(os.environ["GENERIA_POST_ADDR"]))

character = chars.CreateCharacter(character_pb2.CreateCharacterRequest(
    world_id=world, display_name="Seed Painter", meta=json.dumps({"style": "ink"})), timeout=10)
assert character.is_ai and character.world_id == world and not character.HasField("real_user_id")

buf = io.BytesIO()
Image.new("RGB", (400, 300), (200, 80, 40)).save(buf, "JPEG")
data = buf.getvalue()
presigned = media.GetPresignedUploadURL(media_pb2.GetPresignedUploadURLRequest(
    character_id=character.id, world_id=world, filename="seed.jpg",
    content_type="image/jpeg", size=len(data)), timeout=10)
put = urllib.request.Request(presigned.upload_url, data=data, method="PUT",
                             headers={"Content-Type": "image/jpeg"})
with urllib.request.urlopen(put, timeout=10) as response:
    assert response.status == 200

confirmed = media.ConfirmUpload(media_pb2.ConfirmUploadRequest(
    media_id=presigned.media_id, character_id=character.id), timeout=10)
assert confirmed.success
variants = {v.name: [v.width, v.height, v.url] for v in confirmed.variants}

post = posts.CreateAIPost(post_pb2.CreateAIPostRequest(
    character_id=character.id, caption="Ink at dawn", media_id=presigned.media_id,
    world_id=world, tags=["ink", "dawn"]), timeout=10)
print(json.dumps({"character_id": character.id, "media_id": presigned.media_id,
                  "post_id": post.post_id, "expires_at": presigned.expires_at,
                  "variants": variants}))
"""


def _compile_seed(root: Path) -> Path:
    protos, out = root / "protos", root / "stubs"
    protos.mkdir()
    out.mkdir()
    for name, text in (
        ("character.proto", SEED_CHARACTER),
        ("media.proto", SEED_MEDIA),
        ("post.proto", SEED_POST),
    ):
        (protos / name).write_text(text, encoding="utf-8")
    include = Path(protoc.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{protos}",
        f"-I{include}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        *(str(p) for p in sorted(protos.glob("*.proto"))),
    ]
    assert protoc.main(args) == 0, "protoc failed on the seed's proto text"
    return out


def test_seed_client_creates_character_uploads_and_posts(
    stack: ThreadedStack, tmp_path: Path
) -> None:
    stubs = _compile_seed(tmp_path)
    script = tmp_path / "seed_client.py"
    script.write_text(SEED_CLIENT, encoding="utf-8")
    env = {**os.environ, **stack.env, "PYTHONPATH": str(stubs)}
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(seen["media_id"]) == 32
    assert seen["variants"]["original"][:2] == [400, 300]
    assert seen["variants"]["medium"][:2] == [256, 192]
    assert f"/seed-world/{seen['character_id']}/posts/" in seen["variants"]["original"][2]

    # Read back through the project's stubs: every field must land where the seed put it.
    env_addr = stack.env
    with grpc.insecure_channel(env_addr["GENERIA_CHARACTER_ADDR"]) as channel:
        character = character_pb2_grpc.CharacterServiceStub(channel).GetCharacter(
            character_pb2.GetCharacterRequest(character_id=seen["character_id"]), timeout=10
        )
    assert (character.world_id, character.display_name) == ("seed-world", "Seed Painter")
    assert json.loads(character.meta) == {"style": "ink"} and character.is_ai
    with grpc.insecure_channel(env_addr["GENERIA_POST_ADDR"]) as channel:
        post = post_pb2_grpc.PostServiceStub(channel).GetPost(
            post_pb2.GetPostRequest(post_id=seen["post_id"]), timeout=10
        )
    assert (post.character_id, post.media_id, post.world_id) == (
        seen["character_id"],
        seen["media_id"],
        "seed-world",
    )
    assert post.caption == "Ink at dawn" and list(post.tags) == ["ink", "dawn"]

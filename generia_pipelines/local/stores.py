"""The rows of the local platform (characters, media, posts, worlds) and their SQLite stores.

Stores know nothing of gRPC: services validate, stores persist. Media variants are stored
as object keys, not URLs, so the URLs follow the object store's address after a restart.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from generia_pipelines.local.db import Database, utc_now


@dataclass(frozen=True)
class CharacterRecord:
    id: str
    world_id: str
    real_user_id: str | None
    display_name: str
    avatar_media_id: str | None
    avatar_url: str | None
    meta: str | None
    created_at: str
    updated_at: str

    @property
    def is_ai(self) -> bool:
        return not self.real_user_id


@dataclass(frozen=True)
class VariantRecord:
    """One stored rendition of a media; ``key`` is its object key in the store."""

    name: str
    key: str
    width: int
    height: int


@dataclass(frozen=True)
class MediaRecord:
    media_id: str
    world_id: str
    character_id: str
    filename: str
    content_type: str
    size: int
    media_type: int
    object_key: str
    expires_at: int
    created_at: str
    uploaded_at: str | None = None
    etag: str | None = None
    confirmed_at: str | None = None
    variants: tuple[VariantRecord, ...] = field(default=())

    @property
    def confirmed(self) -> bool:
        return self.confirmed_at is not None


@dataclass(frozen=True)
class PostRecord:
    post_id: str
    character_id: str
    world_id: str
    caption: str
    media_id: str
    tags: tuple[str, ...]
    created_at: str
    likes_count: int = 0
    comments_count: int = 0


@dataclass(frozen=True)
class WorldRecord:
    id: str
    name: str
    description: str
    prompt: str
    creator_id: str
    generation_status: str
    status: str
    characters_count: int
    users_count: int
    posts_count: int
    params: str | None
    image_media_id: str | None
    icon_media_id: str | None
    created_at: str
    updated_at: str


class CharacterStore:
    SCHEMA = """
    CREATE TABLE IF NOT EXISTS characters (
        id TEXT PRIMARY KEY,
        world_id TEXT NOT NULL,
        real_user_id TEXT,
        display_name TEXT NOT NULL,
        avatar_media_id TEXT,
        avatar_url TEXT,
        meta TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS characters_world ON characters (world_id, real_user_id);
    """

    def __init__(self, path: Path) -> None:
        self.db = Database(path, self.SCHEMA)

    def create(
        self,
        *,
        world_id: str,
        real_user_id: str | None,
        display_name: str,
        avatar_media_id: str | None,
        meta: str | None,
    ) -> CharacterRecord:
        now = utc_now()
        record = CharacterRecord(
            str(uuid.uuid4()), world_id, real_user_id, display_name, avatar_media_id, None, meta,
            now, now,
        )  # fmt: skip
        self.db.execute(
            "INSERT INTO characters (id, world_id, real_user_id, display_name, avatar_media_id,"
            " avatar_url, meta, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.id, record.world_id, record.real_user_id, record.display_name,
                record.avatar_media_id, record.avatar_url, record.meta, now, now,
            ),
        )  # fmt: skip
        return record

    def get(self, character_id: str) -> CharacterRecord | None:
        row = self.db.one("SELECT * FROM characters WHERE id = ?", (character_id,))
        return _character(row) if row else None

    def of_user(self, user_id: str, world_id: str) -> list[CharacterRecord]:
        rows = self.db.all(
            "SELECT * FROM characters WHERE real_user_id = ? AND world_id = ? ORDER BY rowid",
            (user_id, world_id),
        )
        return [_character(row) for row in rows]

    def of_world(self, world_id: str) -> list[CharacterRecord]:
        rows = self.db.all(
            "SELECT * FROM characters WHERE world_id = ? ORDER BY rowid", (world_id,)
        )
        return [_character(row) for row in rows]

    def update(
        self,
        character_id: str,
        *,
        display_name: str | None = None,
        avatar_media_id: str | None = None,
        avatar_url: str | None = None,
        meta: str | None = None,
    ) -> CharacterRecord | None:
        """Change the given fields only; ``None`` when the character does not exist."""
        changes = {
            name: value
            for name, value in (
                ("display_name", display_name),
                ("avatar_media_id", avatar_media_id),
                ("avatar_url", avatar_url),
                ("meta", meta),
            )
            if value is not None
        }
        changes["updated_at"] = utc_now()
        assignments = ", ".join(f"{name} = ?" for name in changes)
        cursor = self.db.execute(
            f"UPDATE characters SET {assignments} WHERE id = ?",
            (*changes.values(), character_id),
        )
        return self.get(character_id) if cursor.rowcount else None

    def close(self) -> None:
        self.db.close()


def _character(row: sqlite3.Row) -> CharacterRecord:
    return CharacterRecord(
        id=row["id"],
        world_id=row["world_id"],
        real_user_id=row["real_user_id"],
        display_name=row["display_name"],
        avatar_media_id=row["avatar_media_id"],
        avatar_url=row["avatar_url"],
        meta=row["meta"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class MediaStore:
    SCHEMA = """
    CREATE TABLE IF NOT EXISTS media (
        media_id TEXT PRIMARY KEY,
        world_id TEXT NOT NULL,
        character_id TEXT NOT NULL,
        filename TEXT NOT NULL,
        content_type TEXT NOT NULL,
        size INTEGER NOT NULL,
        media_type INTEGER NOT NULL,
        object_key TEXT NOT NULL UNIQUE,
        expires_at INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        uploaded_at TEXT,
        etag TEXT,
        confirmed_at TEXT,
        variants TEXT NOT NULL DEFAULT '[]'
    );
    CREATE INDEX IF NOT EXISTS media_world ON media (world_id);
    """

    def __init__(self, path: Path) -> None:
        self.db = Database(path, self.SCHEMA)

    def create(self, record: MediaRecord) -> MediaRecord:
        self.db.execute(
            "INSERT INTO media (media_id, world_id, character_id, filename, content_type, size,"
            " media_type, object_key, expires_at, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.media_id, record.world_id, record.character_id, record.filename,
                record.content_type, record.size, record.media_type, record.object_key,
                record.expires_at, record.created_at,
            ),
        )  # fmt: skip
        return record

    def get(self, media_id: str) -> MediaRecord | None:
        row = self.db.one("SELECT * FROM media WHERE media_id = ?", (media_id,))
        return _media(row) if row else None

    def of_world(self, world_id: str) -> list[MediaRecord]:
        rows = self.db.all("SELECT * FROM media WHERE world_id = ? ORDER BY rowid", (world_id,))
        return [_media(row) for row in rows]

    def mark_uploaded(self, media_id: str, etag: str) -> None:
        self.db.execute(
            "UPDATE media SET uploaded_at = ?, etag = ? WHERE media_id = ?",
            (utc_now(), etag, media_id),
        )

    def confirm(self, media_id: str, variants: list[VariantRecord]) -> MediaRecord:
        encoded = json.dumps(
            [{"name": v.name, "key": v.key, "width": v.width, "height": v.height} for v in variants]
        )
        self.db.execute(
            "UPDATE media SET confirmed_at = ?, variants = ? WHERE media_id = ?",
            (utc_now(), encoded, media_id),
        )
        record = self.get(media_id)
        assert record is not None, "confirmed a media that does not exist"
        return record

    def close(self) -> None:
        self.db.close()


def _media(row: sqlite3.Row) -> MediaRecord:
    return MediaRecord(
        media_id=row["media_id"],
        world_id=row["world_id"],
        character_id=row["character_id"],
        filename=row["filename"],
        content_type=row["content_type"],
        size=row["size"],
        media_type=row["media_type"],
        object_key=row["object_key"],
        expires_at=row["expires_at"],
        created_at=row["created_at"],
        uploaded_at=row["uploaded_at"],
        etag=row["etag"],
        confirmed_at=row["confirmed_at"],
        variants=tuple(VariantRecord(**v) for v in json.loads(row["variants"])),
    )


class PostStore:
    SCHEMA = """
    CREATE TABLE IF NOT EXISTS posts (
        post_id TEXT PRIMARY KEY,
        character_id TEXT NOT NULL,
        world_id TEXT NOT NULL,
        caption TEXT NOT NULL,
        media_id TEXT NOT NULL,
        tags TEXT NOT NULL,
        created_at TEXT NOT NULL,
        likes_count INTEGER NOT NULL DEFAULT 0,
        comments_count INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX IF NOT EXISTS posts_world ON posts (world_id);
    """

    def __init__(self, path: Path) -> None:
        self.db = Database(path, self.SCHEMA)

    def create(
        self, *, character_id: str, world_id: str, caption: str, media_id: str, tags: list[str]
    ) -> PostRecord:
        record = PostRecord(
            str(uuid.uuid4()), character_id, world_id, caption, media_id, tuple(tags), utc_now()
        )
        self.db.execute(
            "INSERT INTO posts (post_id, character_id, world_id, caption, media_id, tags,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                record.post_id, character_id, world_id, caption, media_id,
                json.dumps(list(tags)), record.created_at,
            ),
        )  # fmt: skip
        return record

    def get(self, post_id: str) -> PostRecord | None:
        row = self.db.one("SELECT * FROM posts WHERE post_id = ?", (post_id,))
        return _post(row) if row else None

    def of_world(self, world_id: str) -> list[PostRecord]:
        rows = self.db.all("SELECT * FROM posts WHERE world_id = ? ORDER BY rowid", (world_id,))
        return [_post(row) for row in rows]

    def close(self) -> None:
        self.db.close()


def _post(row: sqlite3.Row) -> PostRecord:
    return PostRecord(
        post_id=row["post_id"],
        character_id=row["character_id"],
        world_id=row["world_id"],
        caption=row["caption"],
        media_id=row["media_id"],
        tags=tuple(json.loads(row["tags"])),
        created_at=row["created_at"],
        likes_count=row["likes_count"],
        comments_count=row["comments_count"],
    )


class WorldStore:
    SCHEMA = """
    CREATE TABLE IF NOT EXISTS worlds (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        description TEXT NOT NULL,
        prompt TEXT NOT NULL,
        creator_id TEXT NOT NULL,
        generation_status TEXT NOT NULL,
        status TEXT NOT NULL,
        characters_count INTEGER NOT NULL,
        users_count INTEGER NOT NULL,
        posts_count INTEGER NOT NULL,
        params TEXT,
        image_media_id TEXT,
        icon_media_id TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    """

    def __init__(self, path: Path) -> None:
        self.db = Database(path, self.SCHEMA)

    def create(
        self,
        *,
        name: str,
        description: str,
        prompt: str,
        creator_id: str,
        characters_count: int,
        posts_count: int,
    ) -> WorldRecord:
        now = utc_now()
        record = WorldRecord(
            id=str(uuid.uuid4()),
            name=name,
            description=description,
            prompt=prompt,
            creator_id=creator_id,
            generation_status="pending",
            status="active",
            characters_count=characters_count,
            users_count=0,
            posts_count=posts_count,
            params=None,
            image_media_id=None,
            icon_media_id=None,
            created_at=now,
            updated_at=now,
        )
        self.db.execute(
            "INSERT INTO worlds (id, name, description, prompt, creator_id, generation_status,"
            " status, characters_count, users_count, posts_count, params, image_media_id,"
            " icon_media_id, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.id, name, description, prompt, creator_id, record.generation_status,
                record.status, characters_count, 0, posts_count, None, None, None, now, now,
            ),
        )  # fmt: skip
        return record

    def get(self, world_id: str) -> WorldRecord | None:
        row = self.db.one("SELECT * FROM worlds WHERE id = ?", (world_id,))
        return _world(row) if row else None

    def page(self, *, limit: int, offset: int, status: str) -> tuple[list[WorldRecord], int]:
        """One page in creation order and the total matching ``status`` (empty: all)."""
        where, params = ("WHERE status = ?", [status]) if status else ("", [])
        total_row = self.db.one(f"SELECT COUNT(*) AS n FROM worlds {where}", params)
        rows = self.db.all(
            f"SELECT * FROM worlds {where} ORDER BY rowid LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        return [_world(row) for row in rows], int(total_row["n"]) if total_row else 0

    def update_params(
        self, world_id: str, *, params: str | None, name: str | None,
        users_count: int | None, posts_count: int | None,
    ) -> None:  # fmt: skip
        changes = {
            key: value
            for key, value in (
                ("params", params),
                ("name", name),
                ("users_count", users_count),
                ("posts_count", posts_count),
            )
            if value is not None
        }
        self._update(world_id, changes)

    def update_images(
        self, world_id: str, *, image_media_id: str | None, icon_media_id: str | None
    ) -> None:
        changes = {
            key: value
            for key, value in (("image_media_id", image_media_id), ("icon_media_id", icon_media_id))
            if value is not None
        }
        self._update(world_id, changes)

    def _update(self, world_id: str, changes: Mapping[str, object]) -> None:
        columns = {**changes, "updated_at": utc_now()}
        assignments = ", ".join(f"{name} = ?" for name in columns)
        self.db.execute(
            f"UPDATE worlds SET {assignments} WHERE id = ?",
            (*columns.values(), world_id),
        )

    def close(self) -> None:
        self.db.close()


def _world(row: sqlite3.Row) -> WorldRecord:
    return WorldRecord(**{name: row[name] for name in row.keys()})

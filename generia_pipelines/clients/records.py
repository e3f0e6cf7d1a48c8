"""Typed records returned by the platform clients, so asset code never touches protobuf."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class MediaType(enum.IntEnum):
    """Mirror of ``media.MediaType``: decides where the platform stores an object."""

    UNKNOWN = 0
    WORLD_HEADER = 1
    WORLD_ICON = 2
    CHARACTER_AVATAR = 3
    POST_IMAGE = 4


@dataclass(frozen=True)
class Character:
    id: str
    world_id: str
    display_name: str
    is_ai: bool
    real_user_id: str | None = None
    avatar_media_id: str | None = None
    meta: str | None = None
    created_at: str = ""


@dataclass(frozen=True)
class PresignedUpload:
    media_id: str
    upload_url: str
    expires_at: int  # Unix seconds


@dataclass(frozen=True)
class MediaVariant:
    name: str
    url: str
    width: int
    height: int


@dataclass(frozen=True)
class ConfirmedUpload:
    media_id: str
    variants: tuple[MediaVariant, ...]

    def url(self, name: str = "original") -> str:
        """URL of the named variant, falling back to the first one."""
        for variant in self.variants:
            if variant.name == name:
                return variant.url
        return self.variants[0].url if self.variants else ""


@dataclass(frozen=True)
class Media:
    media_id: str
    character_id: str
    world_id: str
    filename: str
    content_type: str
    size: int
    media_type: MediaType
    variants: tuple[MediaVariant, ...] = ()
    created_at: str = ""


@dataclass(frozen=True)
class CreatedPost:
    post_id: str
    created_at: str


@dataclass(frozen=True)
class Post:
    post_id: str
    character_id: str
    world_id: str
    caption: str
    media_id: str
    media_url: str
    tags: tuple[str, ...] = ()
    created_at: str = ""


@dataclass(frozen=True)
class World:
    id: str
    name: str
    description: str
    prompt: str
    users_count: int = 0
    posts_count: int = 0
    status: str = ""
    generation_status: str = ""
    params: str | None = None
    image_url: str = ""
    icon_url: str = ""
    created_at: str = ""
    updated_at: str = ""


@dataclass(frozen=True)
class WorldPage:
    worlds: tuple[World, ...] = field(default_factory=tuple)
    total: int = 0

"""A world's feed as one self-contained HTML page: the demo's visible result.

The page is read after the local stack has stopped, so every image is fetched while the
stack runs and embedded as a ``data:`` URI; there is no external URL, script or font. All
text comes from generated content and is escaped with ``html.escape``.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

#: Variants the local stack makes (see ``local/images.py``); the smaller, the lighter the page.
AVATAR_VARIANTS = ("thumbnail", "medium", "original")
POST_VARIANTS = ("medium", "original")
#: Only these become ``data:`` URIs: anything else would not render as an image anyway.
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/gif"})
_DATA_URI_RE = re.compile(r"data:image/(?:png|jpeg|webp|gif);base64,[A-Za-z0-9+/]+=*")


@dataclass(frozen=True)
class FeedCharacter:
    """A character card: name, bio and avatar (a ``data:`` URI, or None when missing)."""

    id: str
    name: str
    bio: str = ""
    avatar: str | None = None


@dataclass(frozen=True)
class FeedPost:
    """One post as shown: author, image, caption, tags and the day it belongs to."""

    id: str
    character_id: str
    author: str
    caption: str
    tags: tuple[str, ...] = ()
    image: str | None = None
    day: str = ""
    created_at: str = ""


@dataclass(frozen=True)
class Feed:
    """Everything the page shows, already fetched (no I/O left when rendering)."""

    world_id: str
    world_name: str
    prompt: str = ""
    characters: tuple[FeedCharacter, ...] = ()
    posts: tuple[FeedPost, ...] = ()
    generated_at: str = field(
        default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    )

    @property
    def images(self) -> int:
        """How many images the page embeds (avatars and post pictures)."""
        return sum(c.avatar is not None for c in self.characters) + sum(
            p.image is not None for p in self.posts
        )


def _admin_list(client: httpx.Client, base: str, world_id: str, what: str) -> list[dict[str, Any]]:
    response = client.get(f"{base}/_admin/worlds/{world_id}/{what}")
    response.raise_for_status()
    items = response.json()
    if not isinstance(items, list):
        raise ValueError(f"/_admin/worlds/{world_id}/{what} did not return a list")
    return [item for item in items if isinstance(item, dict)]


def _variant_url(media: Mapping[str, Any] | None, preferred: Sequence[str]) -> str | None:
    if not media:
        return None
    by_name = {v.get("name"): v.get("url") for v in media.get("variants") or ()}
    for name in preferred:
        url = by_name.get(name)
        if isinstance(url, str) and url:
            return url
    return None


def data_uri(client: httpx.Client, url: str | None, fallback_type: str = "") -> str | None:
    """The image at ``url`` as a ``data:`` URI; None when missing or not an image."""
    if not url:
        return None
    try:
        response = client.get(url)
        response.raise_for_status()
    except httpx.HTTPError:
        return None
    content_type = response.headers.get("content-type", fallback_type).split(";")[0].strip()
    if content_type not in IMAGE_TYPES or not response.content:
        return None
    return f"data:{content_type};base64,{base64.b64encode(response.content).decode('ascii')}"


def _bio(meta: object) -> str:
    """The bio from a character's meta (the pipeline stores its profile there as JSON)."""
    if isinstance(meta, str):
        try:
            meta = json.loads(meta)
        except ValueError:
            return ""
    if isinstance(meta, dict):
        bio = meta.get("bio")
        return bio if isinstance(bio, str) else ""
    return ""


def fetch_feed(
    stack_url: str,
    world_id: str,
    *,
    world_name: str = "",
    prompt: str = "",
    post_days: Mapping[str, str] | None = None,
    timeout_s: float = 10.0,
) -> Feed:
    """Read a world's characters, posts and media from the stack's admin endpoints and
    download their images (``post_days`` maps post ids to their day, from the ledger)."""
    base = stack_url.rstrip("/")
    days = post_days or {}
    with httpx.Client(timeout=timeout_s) as client:
        people = _admin_list(client, base, world_id, "characters")
        media = {m["media_id"]: m for m in _admin_list(client, base, world_id, "media")}
        published = _admin_list(client, base, world_id, "posts")

        characters = []
        for person in sorted(people, key=lambda p: (str(p.get("created_at")), str(p["id"]))):
            avatar_media = media.get(person.get("avatar_media_id") or "")
            characters.append(
                FeedCharacter(
                    id=str(person["id"]),
                    name=str(person.get("display_name") or ""),
                    bio=_bio(person.get("meta")),
                    avatar=data_uri(
                        client,
                        _variant_url(avatar_media, AVATAR_VARIANTS),
                        str((avatar_media or {}).get("content_type") or ""),
                    ),
                )
            )
        names = {c.id: c.name for c in characters}

        posts = []
        for post in published:
            post_media = media.get(post.get("media_id") or "")
            post_id = str(post["post_id"])
            character_id = str(post.get("character_id") or "")
            posts.append(
                FeedPost(
                    id=post_id,
                    character_id=character_id,
                    author=str(post.get("display_name") or names.get(character_id, "")),
                    caption=str(post.get("caption") or ""),
                    tags=tuple(str(t) for t in post.get("tags") or ()),
                    image=data_uri(
                        client,
                        _variant_url(post_media, POST_VARIANTS) or post.get("media_url"),
                        str((post_media or {}).get("content_type") or ""),
                    ),
                    day=days.get(post_id, ""),
                    created_at=str(post.get("created_at") or ""),
                )
            )
    # Newest day first; within a day, in publication order reversed (newest on top).
    posts.sort(key=lambda p: (p.day, p.created_at, p.id), reverse=True)
    return Feed(
        world_id=world_id,
        world_name=world_name or world_id,
        prompt=prompt,
        characters=tuple(characters),
        posts=tuple(posts),
    )


_CSS = """
:root { --bg: #f4f1ec; --card: #fff; --ink: #1d1d1f; --muted: #6b6b70; --accent: #d9480f; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header { background: #1d1d1f; color: #fff; padding: 28px 16px; }
header .inner, main { max-width: 640px; margin: 0 auto; }
header h1 { margin: 0 0 6px; font-size: 26px; }
header p { margin: 0; color: #c9c9ce; }
header .stats { margin-top: 10px; font-size: 13px; color: #9d9da3; }
main { padding: 16px; }
h2 { font-size: 14px; text-transform: uppercase; letter-spacing: .08em; color: var(--muted); }
.cast { display: grid; grid-template-columns: repeat(auto-fill, minmax(180px, 1fr)); gap: 10px; }
.person { background: var(--card); border-radius: 12px; padding: 10px; display: flex; gap: 10px;
  align-items: flex-start; box-shadow: 0 1px 2px rgba(0,0,0,.06); }
.person .bio { font-size: 12px; color: var(--muted); margin: 2px 0 0; }
.avatar { width: 44px; height: 44px; border-radius: 50%; flex: none; display: inline-block;
  background: #ddd center / cover no-repeat; }
.avatar.none { display: inline-flex; align-items: center; justify-content: center;
  font-weight: 600; color: #fff; background: #9aa0a6; }
.post { background: var(--card); border-radius: 14px; margin: 0 0 18px; overflow: hidden;
  box-shadow: 0 1px 3px rgba(0,0,0,.08); }
.post .head { display: flex; gap: 10px; align-items: center; padding: 10px 12px; }
.post .head .when { margin-left: auto; font-size: 12px; color: var(--muted); }
.post .picture { display: block; width: 100%; aspect-ratio: 1 / 1; object-fit: cover;
  background: #e6e2dc; }
.post .missing { display: flex; align-items: center; justify-content: center;
  color: var(--muted); }
.post .body { padding: 10px 12px 14px; }
.post .caption { margin: 0 0 8px; white-space: pre-wrap; }
.tags { display: flex; flex-wrap: wrap; gap: 6px; margin: 0; padding: 0; list-style: none; }
.tags li { font-size: 12px; color: var(--accent); background: #fdeee6; border-radius: 999px;
  padding: 1px 8px; }
.empty { color: var(--muted); }
footer { text-align: center; color: var(--muted); font-size: 12px; padding: 8px 0 32px; }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _safe_image(uri: str | None) -> str | None:
    """``uri`` if it is a base64 image ``data:`` URI, else None. Such a URI has no character
    that HTML or CSS would interpret, so it may go into a ``<style>`` block, where entity
    escaping does not apply."""
    return uri if uri and _DATA_URI_RE.fullmatch(uri) else None


def _avatar_classes(characters: Sequence[FeedCharacter]) -> dict[str, str]:
    """One CSS class per character with an avatar: each image is embedded once, however
    many posts show it."""
    return {c.id: f"av{i}" for i, c in enumerate(characters) if _safe_image(c.avatar)}


def _avatar(classes: Mapping[str, str], character_id: str, name: str) -> str:
    css = classes.get(character_id)
    if css:
        return f'<span class="avatar {css}" role="img" aria-label="{_e(name)}"></span>'
    initial = name.strip()[:1].upper() or "?"
    return f'<span class="avatar none" aria-hidden="true">{_e(initial)}</span>'


def render_feed(feed: Feed) -> str:
    """The page's HTML: a header, the cast, then the posts, newest first."""
    classes = _avatar_classes(feed.characters)
    avatar_css = "\n".join(
        f'.{classes[c.id]} {{ background-image: url("{c.avatar}"); }}'
        for c in feed.characters
        if c.id in classes
    )
    cast = "\n".join(
        '<div class="person">'
        f"{_avatar(classes, c.id, c.name)}"
        f"<div><strong>{_e(c.name)}</strong>"
        + (f'<p class="bio">{_e(c.bio)}</p>' if c.bio else "")
        + "</div></div>"
        for c in feed.characters
    )
    cards = []
    for post in feed.posts:
        when = f'<span class="when">{_e(post.day)}</span>' if post.day else ""
        image = _safe_image(post.image)
        if image:
            alt = f"Picture posted by {post.author}"
            picture = f'<img class="picture" src="{image}" alt="{_e(alt)}">'
        else:
            picture = '<div class="picture missing">image unavailable</div>'
        tags = "".join(f"<li>#{_e(tag.lstrip('#'))}</li>" for tag in post.tags)
        cards.append(
            '<article class="post">'
            f'<div class="head">{_avatar(classes, post.character_id, post.author)}'
            f"<strong>{_e(post.author)}</strong>{when}</div>"
            f"{picture}"
            f'<div class="body"><p class="caption">{_e(post.caption)}</p>'
            + (f'<ul class="tags">{tags}</ul>' if tags else "")
            + "</div></article>"
        )
    posts_html = "\n".join(cards) or '<p class="empty">No posts yet.</p>'
    cast_html = cast or '<p class="empty">No characters yet.</p>'
    prompt = f"<p>{_e(feed.prompt)}</p>" if feed.prompt else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(feed.world_name)} · Generia feed</title>
<style>{_CSS}
{avatar_css}
</style>
</head>
<body>
<header><div class="inner">
<h1>{_e(feed.world_name)}</h1>
{prompt}
<div class="stats">{len(feed.characters)} characters · {len(feed.posts)} posts · world \
<code>{_e(feed.world_id)}</code></div>
</div></header>
<main>
<h2>Characters</h2>
<section class="cast">
{cast_html}
</section>
<h2>Feed</h2>
<section class="feed">
{posts_html}
</section>
</main>
<footer>Generated by generia-pipelines on {_e(feed.generated_at)}; images embedded.</footer>
</body>
</html>
"""


def write_feed(feed: Feed, path: Path) -> Path:
    """Write the page (creating its directory) and return its absolute path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_feed(feed), encoding="utf-8")
    return path.resolve()

"""Helpers of the text generation tests: a scripted OpenAI-compatible server and fixtures data.

The server is aiohttp on port 0, started on the test's own event loop. Each request takes
the next scripted reply (the last one repeats) and is recorded with its headers, so tests
can check what the client sent as well as how it handled what came back.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from generia_pipelines.clients.records import World
from generia_pipelines.clients.text import TextTask
from generia_pipelines.generation.prompts import render_post_draft
from generia_pipelines.generation.schemas import CharacterProfile, PostDraft, WorldBrief

API_KEY = "sk-test-9f3c2b7e41"

WORLD = World(
    id="lantern-harbour",
    name="Lantern Harbour",
    description="A foggy fishing town where the lighthouses gossip at night.",
    prompt="Steampunk fishing village with brass lighthouses, eels, tea smugglers and fog.",
)


@dataclass
class Step:
    """One scripted HTTP reply."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


def completion(
    content: str | None,
    *,
    finish_reason: str = "stop",
    prompt_tokens: int = 120,
    completion_tokens: int = 40,
    cost: float | None = None,
    refusal: str | None = None,
) -> Step:
    """A 200 chat completion in the OpenAI shape (``usage.cost`` as OpenRouter sends it)."""
    usage: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    if cost is not None:
        usage["cost"] = cost
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if refusal is not None:
        message["refusal"] = refusal
    return Step(
        body={
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
            "usage": usage,
        }
    )


def as_json(value: Any) -> str:
    return json.dumps(value)


VALID_POST: dict[str, Any] = {
    "caption": "Fog rolled over the brass lighthouse at dawn; the eels were early too.",
    "tags": ["fog", "lighthouse", "dawn_watch"],
    "image_prompt": "A brass lighthouse in thick fog at dawn, small fishing boats below",
}


class ChatServer:
    """A scripted ``/v1/chat/completions`` endpoint that records every request."""

    def __init__(self) -> None:
        self.script: list[Step] = []
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    def reply(self, *steps: Step) -> None:
        self.script.extend(steps)

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests.append(await request.json())
        self.headers.append(dict(request.headers))
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if step.delay_s:
                await asyncio.sleep(step.delay_s)
        finally:
            self.in_flight -= 1
        text = step.body if isinstance(step.body, str) else json.dumps(step.body)
        return web.Response(
            status=step.status, text=text, headers=step.headers, content_type="application/json"
        )

    async def start(self) -> ChatServer:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}/v1"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


BRIEF = WorldBrief(
    summary="A fishing village of brass lighthouses where everybody knows the tides.",
    setting="Cobbled quays, steam winches, smugglers' tea houses and lighthouses that talk.",
    tone="wry and warm",
    visual_style="35mm film photography, sepia and teal, foggy light",
    themes=["fishing", "smuggling", "weather"],
    motifs=["brass lighthouses", "eel traps", "tea crates"],
)

PROFILE = CharacterProfile(
    display_name="Mira Vale",
    bio="Lighthouse keeper. I count ships and eels.",
    personality="Stubborn, patient, secretly sentimental.",
    interests=["tides", "tea", "old maps"],
    speaking_style="Short plain sentences.",
    appearance="Woman in her fifties, grey braid, oilskin coat, brass spyglass.",
)


def post_task(unit: str = "posts/lantern-harbour/2026-11-24/0") -> TextTask[PostDraft]:
    """A post-draft task as the ``post_drafts`` asset would build it."""
    prompt = render_post_draft(WORLD, BRIEF, PROFILE, ["Foggy again."], "2026-11-24")
    return TextTask(PostDraft, prompt, world_id=WORLD.id, unit_key=unit)

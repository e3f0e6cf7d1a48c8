"""A tiny OpenAI-compatible chat endpoint for pipeline tests, on its own thread and port 0.

It answers every schema the pipeline asks for (by ``response_format.json_schema.name``) with
a valid object, checks the bearer key, and records what it was sent. A wrong key gets a 401
whose message echoes the key it was given, as real providers do ("Incorrect API key provided:
sk-..."), so a test can check that the client never passes that text on.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import threading
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from aiohttp import web

_COUNT = re.compile(r"Plan (\d+) new inhabitants")
START_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Seen:
    """One request as it arrived: the JSON body and the Authorization header."""

    body: dict[str, Any]
    authorization: str


class OpenAIStandin:
    """``with OpenAIStandin(api_key) as server:`` then point ``GENERIA_TEXT_BASE_URL`` at it."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.seen: list[Seen] = []
        self.base_url = ""
        self._names = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    def __enter__(self) -> Self:
        self._thread = threading.Thread(target=self._serve, name="openai-standin", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S) or not self.base_url:
            raise RuntimeError(f"the OpenAI stand-in did not start within {START_TIMEOUT_S}s")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        loop, runner, thread = self._loop, self._runner, self._thread
        if loop is None or thread is None:
            return
        if runner is not None:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(START_TIMEOUT_S)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(START_TIMEOUT_S)

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._start())
        finally:
            self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._complete)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}/v1"

    async def _complete(self, request: web.Request) -> web.Response:
        body = await request.json()
        authorization = request.headers.get("Authorization", "")
        self.seen.append(Seen(body, authorization))
        if authorization != f"Bearer {self.api_key}":
            presented = authorization.removeprefix("Bearer ")
            error = {
                "message": f"Incorrect API key provided: {presented}. Find your key in settings.",
                "type": "invalid_request_error",
                "code": "invalid_api_key",
            }
            return web.json_response({"error": error}, status=401)
        schema = body["response_format"]["json_schema"]["name"]
        user = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
        value = self._answer(schema, user)
        if value is None:
            return web.json_response({"error": {"message": f"no {schema}"}}, status=400)
        message = {"role": "assistant", "content": json.dumps(value)}
        return web.json_response(
            {
                "id": "chatcmpl-standin",
                "object": "chat.completion",
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150},
            }
        )

    def _answer(self, schema: str, user: str) -> dict[str, Any] | None:
        """A valid object of ``schema``; names and captions numbered so none repeats."""
        if schema == "WorldBrief":
            return {
                "summary": "A salt harbour where ropewalks hum and tide clocks rule the day.",
                "setting": "Stone quays, ropewalks, gull-crowded roofs and a tide-clock tower.",
                "tone": "salty and warm",
                "visual_style": "overcast film photography, teal and rust",
                "themes": ["tides", "rope", "gulls"],
                "motifs": ["tide clocks", "coiled rope", "gull feathers"],
            }
        if schema == "CharacterBatchPlan":
            found = _COUNT.search(user)
            count = int(found.group(1)) if found else 1
            return {
                "characters": [
                    {
                        "display_name": f"Ada Quill {next(self._names)}",
                        "role": "ropewalker of the harbour",
                        "hook": "counts gulls to predict the weather",
                    }
                    for _ in range(count)
                ]
            }
        if schema == "CharacterProfile":
            return {
                "display_name": f"Ada Quill {next(self._names)}",
                "bio": "I walk rope and read tides.",
                "personality": "patient, dry humour",
                "interests": ["tides", "rope"],
                "speaking_style": "short sentences, no emoji",
                "appearance": "weathered face, oilskin coat, rope-burned hands",
            }
        if schema == "AvatarPrompt":
            return {"prompt": "Portrait of a weathered ropewalker in an oilskin coat, film photo"}
        if schema == "PostDraft":
            return {
                "caption": f"The tide clock struck early today, entry {next(self._names)}.",
                "tags": ["tides", "harbour"],
                "image_prompt": "A stone harbour at dawn with a tall tide clock and gulls",
            }
        return None

"""Text generation through the Runware SDK's ``textInference`` (WebSocket API).

The native task has no structured-output parameter, so the JSON schema is spelled out in
the system prompt (``settings.systemPrompt``) and the reply is validated and re-asked like
any other chat backend. ``includeCost`` gives the real price of each call.

The SDK's traps (see DESIGN.md, section 6) shape this module: the SDK is loaded through
:func:`generia_pipelines.clients.runware.runware_sdk` (which keeps global logging intact and
scrubs the key from the SDK's own logs), ``connect()`` is bounded by a timeout because it
can wait forever, a rejected key is a setup error, a fresh request object is built per call
(the SDK writes the task UUID back into it), and one client serves one event loop. The SDK
retries dropped connections itself; this module only bounds how long a call may take.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from generia_pipelines.clients.runware import (
    DEFAULT_RUNWARE_URL,
    close_sdk_client,
    new_sdk_client,
    redact,
    runware_sdk,
)
from generia_pipelines.clients.text.base import TextTask
from generia_pipelines.clients.text.errors import TextProviderError
from generia_pipelines.clients.text.structured import DEFAULT_MAX_REASKS, ChatGenerator, ChatReply
from generia_pipelines.errors import ConfigError

API_KEY_VAR = "RUNWARE_API_KEY"
URL_VAR = "RUNWARE_URL"
MODEL_VAR = "GENERIA_TEXT_MODEL"
#: Finish reasons meaning the reply hit the token limit.
_TRUNCATED = {"length", "max_tokens", "maxtokens"}


def _field(obj: Any, name: str) -> Any:
    """Read a field from an SDK dataclass or a plain dict (the SDK returns either)."""
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class RunwareTextGenerator(ChatGenerator):
    """Structured generation on a Runware text model (an AIR id such as ``minimax:m2.7@0``)."""

    backend = "runware"

    def __init__(
        self,
        *,
        api_key: str,
        model: str,
        url: str | None = None,
        timeout_s: float = 60.0,
        connect_timeout_s: float = 15.0,
        max_reasks: int = DEFAULT_MAX_REASKS,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> None:
        if not (api_key or "").strip():
            raise ConfigError(f"{API_KEY_VAR} is not set: the runware text backend needs a key")
        if not (model or "").strip():
            raise ConfigError(f"{MODEL_VAR} is not set: name the Runware text model (AIR id)")
        if timeout_s <= 0 or connect_timeout_s <= 0:
            raise ConfigError("the Runware text timeouts must be positive")
        super().__init__(model=model.strip(), max_reasks=max_reasks, schema_in_prompt=True)
        self._api_key = api_key.strip()
        self.url = (url or "").strip() or None
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.temperature = temperature
        self.max_tokens = max_tokens
        self._client: Any = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"RunwareTextGenerator(url={self.url!r}, model={self.model!r})"

    def _scrub(self, text: str) -> str:
        text = redact(text)
        return text.replace(self._api_key, "***") if len(self._api_key) >= 4 else text

    async def _connected(self) -> Any:
        async with self._lock:
            if self._client is not None:
                return self._client
            client = new_sdk_client(self._api_key, self.url or DEFAULT_RUNWARE_URL)
            where = self.url or "the Runware API"
            try:
                await asyncio.wait_for(client.connect(), self.connect_timeout_s)
            except TimeoutError:
                await self._quietly_disconnect(client)
                raise TextProviderError(
                    backend=self.backend,
                    details=f"no authentication reply from {where} in {self.connect_timeout_s}s",
                    retryable=True,
                ) from None
            except Exception as exc:
                await self._quietly_disconnect(client)
                raise TextProviderError(
                    backend=self.backend,
                    details=f"could not connect to {where}: {self._scrub(str(exc))}",
                    retryable=True,
                ) from None
            rejected = getattr(client, "_invalidAPIkey", None)
            if rejected:
                await self._quietly_disconnect(client)
                raise ConfigError(
                    f"{API_KEY_VAR} was rejected by {where}: {self._scrub(str(rejected))}"
                )
            if not client.isAuthenticated():
                await self._quietly_disconnect(client)
                raise TextProviderError(
                    backend=self.backend, details=f"could not connect to {where}", retryable=True
                )
            self._client = client
            return client

    @staticmethod
    async def _quietly_disconnect(client: Any) -> None:
        """Stop the SDK's background reconnect loop after a failed connect."""
        await close_sdk_client(client, 5.0)

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await self._quietly_disconnect(client)

    def _request(self, messages: Sequence[dict[str, str]], task: TextTask[Any]) -> Any:
        sdk = runware_sdk()
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        temperature = task.temperature if task.temperature is not None else self.temperature
        max_tokens = task.max_tokens if task.max_tokens is not None else self.max_tokens
        return sdk.ITextInference(
            model=self.model,
            messages=[
                sdk.ITextInferenceMessage(role=m["role"], content=m["content"])
                for m in messages
                if m["role"] != "system"
            ],
            seed=task.effective_seed,
            includeCost=True,
            includeUsage=True,
            settings=sdk.ISettings(
                systemPrompt=system, temperature=temperature, maxTokens=max_tokens
            ),
        )

    async def _complete(self, messages: Sequence[dict[str, str]], task: TextTask[Any]) -> ChatReply:
        client = await self._connected()
        api_error = runware_sdk().RunwareAPIError
        try:
            results = await asyncio.wait_for(
                client.textInference(self._request(messages, task)), self.timeout_s
            )
        except TimeoutError:
            raise TextProviderError(
                backend=self.backend,
                details=f"no reply within {self.timeout_s}s",
                retryable=True,
            ) from None
        except api_error as exc:
            data = exc.error_data if isinstance(exc.error_data, dict) else {}
            details = f"{data.get('code') or 'error'}: {data.get('message') or exc}"
            raise TextProviderError(backend=self.backend, details=self._scrub(details)) from None
        except ConnectionError as exc:
            raise TextProviderError(
                backend=self.backend, details=self._scrub(str(exc)), retryable=True
            ) from None
        if not isinstance(results, list) or not results:
            raise TextProviderError(backend=self.backend, details="textInference returned no text")
        item = results[0]
        usage = _field(item, "usage")
        finish = _field(item, "finishReason")
        cost = _field(item, "cost")
        return ChatReply(
            text=_field(item, "text") or "",
            finish_reason="length" if str(finish).lower() in _TRUNCATED else finish,
            prompt_tokens=_count(_field(usage, "promptTokens")),
            completion_tokens=_count(_field(usage, "completionTokens")),
            cost_usd=float(cost) if isinstance(cost, int | float) else None,
        )

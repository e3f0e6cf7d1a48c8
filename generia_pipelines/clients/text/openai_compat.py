"""Text generation over any OpenAI-compatible chat completions endpoint.

OpenRouter, OpenAI, vLLM, Ollama and Runware's own ``/v1/chat/completions`` all speak it.
The schema goes out as ``response_format: json_schema`` (strict); replies are still
validated here, because not every server enforces the schema. Rate limits (429), timeouts
(408), server errors (5xx) and connection failures are retried with exponential backoff and
jitter, honouring ``Retry-After``; other 4xx fail at once. The API key travels only in the
``Authorization`` header: it is kept out of reprs, logs and error messages.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlparse

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from generia_pipelines.clients.text.base import TextTask
from generia_pipelines.clients.text.errors import TextProviderError
from generia_pipelines.clients.text.structured import (
    DEFAULT_MAX_REASKS,
    ChatGenerator,
    ChatReply,
    strict_json_schema,
)
from generia_pipelines.errors import ConfigError

log = logging.getLogger(__name__)

BASE_URL_VAR = "GENERIA_TEXT_BASE_URL"
API_KEY_VAR = "GENERIA_TEXT_API_KEY"
MODEL_VAR = "GENERIA_TEXT_MODEL"
#: Besides every 5xx: request timeout and rate limit are worth another try.
_RETRYABLE_STATUSES = frozenset({408, 429})


class _Secret:
    """A string that never shows itself in a repr, a log line or a traceback."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    __str__ = __repr__


class _Transient(Exception):
    """A failure worth retrying (429, 5xx), with the server's Retry-After hint if any."""

    def __init__(self, status: int | None, details: str, retry_after: float | None) -> None:
        super().__init__(details)
        self.status = status
        self.details = details
        self.retry_after = retry_after


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}]
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


class OpenAICompatibleGenerator(ChatGenerator):
    """Structured generation on an OpenAI-compatible ``/chat/completions`` endpoint."""

    backend = "openai"

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        model: str,
        timeout_s: float = 60.0,
        max_reasks: int = DEFAULT_MAX_REASKS,
        max_attempts: int = 4,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 20.0,
        temperature: float | None = None,
        max_tokens: int | None = None,
        schema_in_prompt: bool = False,
        extra_headers: Mapping[str, str] | None = None,
        http: httpx.AsyncClient | None = None,
        max_connections: int = 16,
    ) -> None:
        base_url = (base_url or "").strip()
        if not base_url:
            raise ConfigError(
                f"{BASE_URL_VAR} is not set: give the endpoint's base URL, "
                "e.g. https://openrouter.ai/api/v1"
            )
        parsed = urlparse(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ConfigError(f"{BASE_URL_VAR}={base_url!r} is not an http(s) URL")
        if not (model or "").strip():
            raise ConfigError(f"{MODEL_VAR} is not set: name the model the endpoint should run")
        if not (api_key or "").strip():
            raise ConfigError(
                f"{API_KEY_VAR} is not set: give the endpoint's API key "
                "(any placeholder for a server that needs none)"
            )
        if timeout_s <= 0:
            raise ConfigError(f"the text request timeout must be positive, got {timeout_s}")
        if max_attempts < 1:
            raise ConfigError(f"max_attempts must be at least 1, got {max_attempts}")
        super().__init__(
            model=model.strip(), max_reasks=max_reasks, schema_in_prompt=schema_in_prompt
        )
        base = base_url.rstrip("/")
        self.url = base if base.endswith("/chat/completions") else f"{base}/chat/completions"
        self._key = _Secret(api_key.strip())
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self._backoff = wait_exponential_jitter(
            multiplier=backoff_initial_s, jitter=backoff_initial_s, max=backoff_max_s
        )
        self.temperature = temperature
        self.max_tokens = max_tokens
        self._extra_headers = dict(extra_headers or {})
        self._owns_http = http is None
        # As many connections as calls in flight, all kept alive: a larger pool only costs
        # httpcore a scan of every idle connection per request.
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self._http = http or httpx.AsyncClient(timeout=httpx.Timeout(timeout_s), limits=limits)

    def __repr__(self) -> str:
        return f"OpenAICompatibleGenerator(url={self.url!r}, model={self.model!r})"

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    def _scrub(self, text: str) -> str:
        key = self._key.reveal()
        return text.replace(key, "***") if len(key) >= 4 else text

    def _body(self, messages: Sequence[dict[str, str]], task: TextTask[Any]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": list(messages),
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": task.schema_name,
                    "schema": strict_json_schema(task.schema, task.prompt.inputs.world.lang),
                    "strict": True,
                },
            },
            "seed": task.effective_seed,
        }
        temperature = task.temperature if task.temperature is not None else self.temperature
        if temperature is not None:
            body["temperature"] = temperature
        max_tokens = task.max_tokens if task.max_tokens is not None else self.max_tokens
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        return body

    def _error_details(self, response: httpx.Response) -> str:
        try:
            data = response.json()
        except ValueError:
            data = None
        message: Any = None
        if isinstance(data, dict):
            error = data.get("error")
            message = error.get("message") if isinstance(error, dict) else error
            message = message or data.get("message")
        text = str(message) if message else response.text
        text = " ".join(text.split())[:300] or response.reason_phrase
        if response.status_code in (401, 403):
            text += f" (check {API_KEY_VAR})"
        return self._scrub(text)

    async def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        headers = {**self._extra_headers, "Authorization": f"Bearer {self._key.reveal()}"}
        response = await self._http.post(self.url, json=body, headers=headers)
        status = response.status_code
        if status in _RETRYABLE_STATUSES or status >= 500:
            raise _Transient(status, self._error_details(response), _retry_after(response))
        if status >= 400:
            raise TextProviderError(
                backend=self.backend, status=status, details=self._error_details(response)
            )
        try:
            data = response.json()
        except ValueError:
            raise TextProviderError(
                backend=self.backend, status=status, details="the response body is not JSON"
            ) from None
        if not isinstance(data, dict):
            raise TextProviderError(
                backend=self.backend, status=status, details="the response is not a JSON object"
            )
        error = data.get("error")
        if error:  # some gateways report upstream failures inside a 200
            code = error.get("code") if isinstance(error, dict) else None
            message = error.get("message") if isinstance(error, dict) else error
            details = self._scrub(" ".join(str(message).split())[:300])
            if isinstance(code, int) and (code == 429 or code >= 500):
                raise _Transient(code, details, None)
            raise TextProviderError(backend=self.backend, status=status, details=details)
        return data

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Transient) and exc.retry_after is not None:
            return min(exc.retry_after, self.backoff_max_s)
        return float(self._backoff(state))

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        reason = f"HTTP {exc.status}" if isinstance(exc, _Transient) else type(exc).__name__
        log.warning(
            "text request to %s failed (%s), attempt %d of %d; retrying",
            urlparse(self.url).netloc,
            reason,
            state.attempt_number,
            self.max_attempts,
        )

    async def _complete(self, messages: Sequence[dict[str, str]], task: TextTask[Any]) -> ChatReply:
        body = self._body(messages, task)
        data: dict[str, Any] = {}
        attempts = 0
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=self._wait,
            retry=retry_if_exception_type((_Transient, httpx.TransportError)),
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    data = await self._post(body)
        except _Transient as exc:
            raise TextProviderError(
                backend=self.backend,
                status=exc.status,
                details=exc.details,
                attempts=attempts,
                retryable=True,
            ) from None
        except httpx.TransportError as exc:
            details = self._scrub(f"{type(exc).__name__}: {exc}".rstrip(": "))
            raise TextProviderError(
                backend=self.backend, details=details, attempts=attempts, retryable=True
            ) from None
        return self._reply(data, attempts)

    def _reply(self, data: dict[str, Any], requests: int) -> ChatReply:
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise TextProviderError(backend=self.backend, details="the response has no choices")
        choice = choices[0]
        message = choice.get("message")
        message = message if isinstance(message, dict) else {}
        usage = data.get("usage")
        usage = usage if isinstance(usage, dict) else {}
        refusal = message.get("refusal")
        return ChatReply(
            text=_content_text(message.get("content")),
            finish_reason=choice.get("finish_reason"),
            prompt_tokens=int(_number(usage.get("prompt_tokens")) or 0),
            completion_tokens=int(_number(usage.get("completion_tokens")) or 0),
            cost_usd=_number(usage.get("cost")),
            requests=requests,
            refusal=str(refusal) if refusal else None,
        )

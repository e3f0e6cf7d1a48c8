"""Offline stand-in for the Runware WebSocket API, good enough for the real ``runware`` SDK.

Speaks the protocol the SDK (0.5.x) uses: JSON arrays of tasks in, ``{"data": [...]}`` or
``{"errors": [...]}`` out, each answer matched by ``taskUUID``. Supports authentication
(a wrong key gets the API's ``invalidApiKey`` error), ping/pong, ``imageInference``
(outputType URL / base64Data / dataURI, outputFormat PNG / JPG / WEBP, numberResults, seed,
includeCost, NSFW flag) and ``promptEnhance``. Images are drawn with Pillow from the prompt
and the seed: the same pair always gives the same bytes, different prompts look different.
URL outputs are served over plain HTTP GET on the same port as the WebSocket.

Like Runware it enforces ``taskUUID`` uniqueness: every task it accepted is remembered (per
server, in memory), a task sent again under a used taskUUID is answered with the error
``conflictTaskUUID`` (nothing generated, nothing billed), and ``getResponse`` returns the
results of an accepted task, each item with ``status`` ``processing`` (still generating) or
``success``; ``getTaskDetails`` returns its request and response. A task answered with an
error (validation, a transient failure) or whose connection was dropped before it was
processed is not kept: its taskUUID may be used again.

Faults are settable at run time from any thread (:class:`Faults`): latency, transient errors,
dropping the connection mid-call, losing the answer of a billed image (the "answer lost"
window), an auth that never answers, garbage bytes, images of the wrong size or format,
results without image data or without a cost (each by rate or for the next N), and NSFW
flags for the next N images.

``await start()`` runs it on the current loop; :class:`ThreadedRunwareStandin` runs it on
its own thread for synchronous code (Dagster's ``materialize``, benchmarks).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import random
import re
import threading
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import Any, Self

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from generia_pipelines.local.runware_standin.drawing import enhance_texts, render_image
from generia_pipelines.local.runware_standin.faults import Faults, Stats
from generia_pipelines.local.runware_standin.protocol import (
    BULKY_FIELDS,
    DEFAULT_API_KEY,
    ENHANCE_COST_USD,
    EXTENSIONS,
    FORMATS,
    KEPT_IMAGES,
    KEPT_UUIDS,
    MAX_SEED,
    MODEL_COSTS,
    OTHER_FORMAT,
    OUTPUT_TYPES,
    TaskError,
    error_entry,
    int_param,
    is_uuid,
    unknown_task_error,
)

log = logging.getLogger(__name__)
_API_KEY_FIELD = re.compile(r"""(['"]apiKey['"]\s*:\s*['"])[^'"]*""")


class _RedactApiKeys(logging.Filter):
    """websockets logs every frame at debug; the auth frame carries the key."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        cleaned = _API_KEY_FIELD.sub(r"\1***", message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_ws_log = logging.getLogger(f"{__name__}.ws")
_ws_log.addFilter(_RedactApiKeys())


class RunwareStandin:
    """The server; create it with :func:`start`."""

    def __init__(self, *, api_key: str = DEFAULT_API_KEY, seed: int = 0) -> None:
        self.api_key = api_key
        self.faults = Faults(_rng=random.Random(seed))
        self.stats = Stats()
        self._rng = random.Random(seed)
        self._server: Server | None = None
        self._host = "127.0.0.1"
        self._port = 0
        self._images: OrderedDict[str, tuple[bytes, str]] = OrderedDict()
        #: Accepted tasks by taskUUID: a task sent again under one gets ``conflictTaskUUID``.
        self._tasks: OrderedDict[str, _TaskRecord] = OrderedDict()
        #: The records still holding their results' bytes, oldest first.
        self._with_items: deque[_TaskRecord] = deque()
        #: taskUUIDs answered (with images or an error), to spot one sent again.
        self._answered: OrderedDict[str, None] = OrderedDict()

    def __repr__(self) -> str:
        return f"RunwareStandin(url={self.url!r})"

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """The WebSocket URL to give the SDK (``Runware(api_key, url=...)``)."""
        return f"ws://{self._host}:{self._port}/v1"

    @property
    def http_url(self) -> str:
        return f"http://{self._host}:{self._port}"

    async def _start(self, host: str, port: int) -> None:
        self._server = await serve(
            self._handle,
            host,
            port,
            process_request=self._process_request,
            max_size=2**20,
            logger=_ws_log,
        )
        sockname = next(iter(self._server.sockets)).getsockname()
        self._port = int(sockname[1])
        self._host = "127.0.0.1" if host in ("", "0.0.0.0") else host
        log.info("Runware stand-in listening on %s", self.url)

    async def stop(self, timeout_s: float = 5.0, grace_s: float = 0.5) -> None:
        """Close every connection and stop listening (bounded).

        A peer that does not answer the closing handshake within ``grace_s`` (a client
        gone mid-authentication, say) has its connection aborted rather than waited for.
        """
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        try:
            await asyncio.wait_for(asyncio.shield(server.wait_closed()), grace_s)
        except TimeoutError:
            for connection in list(server.all_connections):  # closing ones included
                connection.transport.abort()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), timeout_s)

    # -- HTTP: image downloads -----------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path.startswith("/images/"):
            image_uuid = path.rsplit("/", 1)[-1].split(".", 1)[0]
            entry = self._images.get(image_uuid)
            if entry is None:
                return connection.respond(HTTPStatus.NOT_FOUND, "no such image\n")
            body, content_type = entry
            response = connection.respond(HTTPStatus.OK, "")
            del response.headers["Content-Type"]
            del response.headers["Content-Length"]
            response.headers["Content-Type"] = content_type
            response.headers["Content-Length"] = str(len(body))
            response.body = body
            return response
        if path == "/health":
            return connection.respond(HTTPStatus.OK, "ok\n")
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
        return None

    def _keep_image(self, image_uuid: str, body: bytes, content_type: str) -> str:
        self._images[image_uuid] = (body, content_type)
        while len(self._images) > KEPT_IMAGES:
            self._images.popitem(last=False)
        extension = EXTENSIONS.get(content_type, "bin")
        return f"{self.http_url}/images/{image_uuid}.{extension}"

    # -- WebSocket ----------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        self.stats.bump("connections")
        self.stats.bump("open_connections")
        authenticated = False
        running: set[asyncio.Task[None]] = set()
        try:
            async for raw in ws:
                try:
                    payload = json.loads(raw)
                except (TypeError, ValueError):
                    await self._send_errors(
                        ws,
                        [
                            error_entry(
                                "invalidJSON",
                                "The message is not valid JSON.",
                                task_type=None,
                                task_uuid=None,
                            )
                        ],
                    )
                    continue
                for task in payload if isinstance(payload, list) else [payload]:
                    if not isinstance(task, dict):
                        await self._send_errors(
                            ws,
                            [
                                error_entry(
                                    "invalidTask",
                                    "Each task must be an object.",
                                    task_type=None,
                                    task_uuid=None,
                                )
                            ],
                        )
                        continue
                    task_type = str(task.get("taskType"))
                    self.stats.count("calls", task_type)
                    if task_type == "authentication":
                        authenticated = await self._authenticate(ws, task) or authenticated
                    elif task_type == "ping":
                        await self._send(ws, {"data": [{"taskType": "ping", "pong": True}]})
                    elif not authenticated:
                        await self._send_errors(
                            ws,
                            [
                                error_entry(
                                    "missingApiKey",
                                    "Authenticate before sending tasks.",
                                    task_type=task_type,
                                    task_uuid=task.get("taskUUID"),
                                )
                            ],
                        )
                    else:
                        job = asyncio.create_task(self._run_task(ws, task))
                        running.add(job)
                        job.add_done_callback(running.discard)
        except ConnectionClosed:
            pass
        finally:
            self.stats.bump("open_connections", -1)
            for job in running:
                job.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    async def _authenticate(self, ws: ServerConnection, task: dict[str, Any]) -> bool:
        if self.faults.silent_auth or self.faults.draw("silent_auth_rate"):
            self.stats.bump("silent_auths")
            return False
        if task.get("apiKey") != self.api_key:
            self.stats.bump("auth_failures")
            await self._send_errors(
                ws,
                [
                    error_entry(
                        "invalidApiKey",
                        "Invalid API key. Get one at https://my.runware.ai/signup",
                        task_type="authentication",
                        task_uuid=None,
                        parameter="apiKey",
                    )
                ],
            )
            return False
        session = task.get("connectionSessionUUID")
        if not is_uuid(session):
            session = str(uuid.uuid4())
        await self._send(
            ws, {"data": [{"taskType": "authentication", "connectionSessionUUID": session}]}
        )
        return True

    async def _send(self, ws: ServerConnection, message: dict[str, Any]) -> bool:
        """Send one message; False when the connection is already gone."""
        try:
            await ws.send(json.dumps(message))
        except ConnectionClosed:
            return False
        return True

    async def _send_errors(self, ws: ServerConnection, errors: list[dict[str, Any]]) -> None:
        for error in errors:
            self.stats.count("errors", error["code"])
        await self._send(ws, {"errors": errors})

    async def _run_task(self, ws: ServerConnection, task: dict[str, Any]) -> None:
        task_type = str(task.get("taskType"))
        task_uuid = task.get("taskUUID")
        if not is_uuid(task_uuid):
            await self._send_errors(
                ws,
                [
                    error_entry(
                        "invalidTaskUUID",
                        "Invalid value for taskUUID parameter: must be a UUID v4 string.",
                        task_type=task_type,
                        task_uuid=task_uuid if isinstance(task_uuid, str) else None,
                        parameter="taskUUID",
                    )
                ],
            )
            return
        if task_type == "getResponse":
            await self._get_response(ws, task_uuid)
            return
        if task_type == "getTaskDetails":
            await self._get_task_details(ws, task_uuid)
            return
        if task_uuid in self._answered:
            self.stats.record_resend(task_uuid)
        if task_uuid in self._tasks:
            self.stats.bump("conflicts")
            await self._send_errors(
                ws,
                [
                    error_entry(
                        "conflictTaskUUID",
                        "A task with this taskUUID was already submitted; use getResponse "
                        "to retrieve its results.",
                        task_type=task_type,
                        task_uuid=task_uuid,
                        parameter="taskUUID",
                    )
                ],
            )
            return
        try:
            if task_type == "imageInference":
                await self._image_inference(ws, task, task_uuid)
            elif task_type == "promptEnhance":
                await self._prompt_enhance(ws, task, task_uuid)
            else:
                raise TaskError(
                    "unsupportedTaskType",
                    f"Task type {task_type!r} is not supported by the local Runware stand-in.",
                    "taskType",
                )
        except TaskError as exc:
            self._forget(task_uuid)  # a failed task bills nothing and frees its taskUUID
            await self._send_errors(
                ws,
                [
                    error_entry(
                        exc.code,
                        exc.message,
                        task_type=task_type,
                        task_uuid=task_uuid,
                        parameter=exc.parameter,
                    )
                ],
            )
            self._mark_answered(task_uuid)
        except BaseException:
            # Cancelled with its connection before anything was generated: not kept.
            record = self._tasks.get(task_uuid)
            if record is not None and not record.generated:
                self._forget(task_uuid)
            raise

    def _mark_answered(self, task_uuid: str) -> None:
        self._answered[task_uuid] = None
        while len(self._answered) > KEPT_UUIDS:
            self._answered.popitem(last=False)

    def _accept(self, task_uuid: str, task: dict[str, Any], expected: list[str]) -> _TaskRecord:
        """Remember a validated task: from now on its taskUUID is used."""
        request = {k: v for k, v in task.items() if k != "apiKey"}
        record = _TaskRecord(
            task_type=str(task.get("taskType")), request=request, expected=expected
        )
        self._tasks[task_uuid] = record
        while len(self._tasks) > KEPT_UUIDS:
            self._tasks.popitem(last=False)
        return record

    def _forget(self, task_uuid: str) -> None:
        self._tasks.pop(task_uuid, None)

    def _keep_items(self, record: _TaskRecord) -> None:
        """Results are kept for the latest tasks only (they carry the image bytes)."""
        self._with_items.append(record)
        while len(self._with_items) > KEPT_IMAGES:
            old = self._with_items.popleft()
            old.items = [
                {k: v for k, v in item.items() if k not in BULKY_FIELDS} for item in old.items
            ]

    async def _faults_before_answer(self, ws: ServerConnection) -> bool:
        """Latency, then maybe drop or fail; False when the task must not be answered."""
        if self.faults.latency_s > 0:
            await asyncio.sleep(self.faults.latency_s)
        if self.faults.take("drop_next") or self.faults.draw("drop_rate"):
            self.stats.bump("drops")
            ws.transport.abort()
            return False
        if self.faults.take_error():
            raise TaskError(
                self.faults.error_code,
                "The provider did not answer in time; please retry.",
            )
        return True

    async def _image_inference(
        self, ws: ServerConnection, task: dict[str, Any], task_uuid: str
    ) -> None:
        """Answer one image task (or, faults permitting, only generate and bill it)."""
        model = task.get("model")
        if model not in MODEL_COSTS:
            raise TaskError(
                "invalidModel",
                f"Invalid value for model parameter: {model!r} is not an available model AIR id.",
                "model",
            )
        prompt = task.get("positivePrompt")
        if not isinstance(prompt, str) or not 2 <= len(prompt.strip()) <= 3000:
            raise TaskError(
                "invalidPositivePrompt",
                "Invalid value for positivePrompt parameter: must have 2..3000 characters.",
                "positivePrompt",
            )
        sizes = {}
        for name in ("width", "height"):
            value = task.get(name, 512)
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or value % 64
                or not 128 <= value <= 2048
            ):
                raise TaskError(
                    f"invalid{name.capitalize()}",
                    f"Invalid value for {name} parameter: "
                    "must be a multiple of 64 within 128..2048.",
                    name,
                )
            sizes[name] = value
        count = int_param(task, "numberResults", 1, 1, 20)
        seed = int_param(task, "seed", self._rng.randrange(1, MAX_SEED), 1, MAX_SEED)
        output_format = task.get("outputFormat", "JPG")
        if output_format not in FORMATS:
            raise TaskError(
                "invalidOutputFormat",
                "Invalid value for outputFormat parameter: use PNG, JPG or WEBP.",
                "outputFormat",
            )
        raw_types = task.get("outputType", "URL")
        output_types = raw_types if isinstance(raw_types, list) else [raw_types]
        if not output_types or any(t not in OUTPUT_TYPES for t in output_types):
            raise TaskError(
                "invalidOutputType",
                "Invalid value for outputType parameter: use URL, base64Data or dataURI.",
                "outputType",
            )
        record = self._accept(task_uuid, task, [str(uuid.uuid4()) for _ in range(count)])
        if not await self._faults_before_answer(ws):
            self._forget(task_uuid)  # dropped before it was processed: never taken
            return
        safety = task.get("safety")
        check_content = bool(isinstance(safety, dict) and safety.get("checkContent")) or bool(
            task.get("checkNSFW")
        )
        content_type = FORMATS[output_format][1]
        faults = self.faults
        lose_answer = faults.take("lose_answer_next") or faults.draw("lose_answer_rate")
        for index in range(count):
            image_seed = (seed + index - 1) % MAX_SEED + 1
            width, height = sizes["width"], sizes["height"]
            drawn_format = output_format
            if faults.take("wrong_size_next"):
                height = max(64, height // 2)
            if faults.take("wrong_format_next"):
                drawn_format = OTHER_FORMAT[output_format]
            body = await asyncio.to_thread(
                render_image, prompt, image_seed, width, height, drawn_format
            )
            garbage = faults.take("garbage_next") or faults.draw("garbage_rate")
            if garbage:
                body = hashlib.sha256(body).digest() * 8
            image_uuid = record.expected[index]
            item: dict[str, Any] = {
                "taskType": "imageInference",
                "taskUUID": task_uuid,
                "imageUUID": image_uuid,
                "seed": image_seed,
            }
            if not faults.take("no_data_next"):
                for output_type in output_types:
                    if output_type == "URL":
                        item["imageURL"] = self._keep_image(image_uuid, body, content_type)
                    elif output_type == "base64Data":
                        item["imageBase64Data"] = base64.b64encode(body).decode()
                    else:
                        encoded = base64.b64encode(body).decode()
                        item["imageDataURI"] = f"data:{content_type};base64,{encoded}"
            nsfw = faults.take("nsfw_next")
            if check_content or nsfw:
                item["NSFWContent"] = nsfw
            cost = MODEL_COSTS[model]
            omit_cost = faults.take("no_cost_next") or faults.omit_cost
            if task.get("includeCost") and not omit_cost:
                item["cost"] = cost
            # Generated: billed from here on, whatever happens to the answer.
            self.stats.bump("images_generated")
            self.stats.bump("billed_usd", cost)
            record.generated = True
            record.items.append(item)
            record.decodable.append(not garbage)
            if index == count - 1:
                record.status = "success"
                self._keep_items(record)
            if lose_answer:
                self.stats.bump("answers_lost")
                self.stats.bump("images_undelivered")
                continue
            if not await self._send(ws, {"data": [item]}):
                self.stats.bump("images_undelivered")
                continue
            self._delivered(record, len(record.items) - 1)
        self._mark_answered(task_uuid)
        if lose_answer:  # billed and kept for getResponse; the answer never leaves
            ws.transport.abort()

    def _delivered(self, record: _TaskRecord, index: int) -> None:
        """The item reached a socket for the first time: its cost is now reported."""
        if index in record.sent:
            return
        record.sent.add(index)
        item = record.items[index]
        if "cost" in item:
            self.stats.bump("cost_reported_usd", item["cost"])
        if not record.decodable[index]:
            self.stats.bump("garbage_images")
        self.stats.record_delivery(
            str(item.get("imageUUID", "")),
            str(item.get("taskUUID", "")),
            item.get("cost", 0.0),
            record.decodable[index],
        )

    async def _get_response(self, ws: ServerConnection, task_uuid: str) -> None:
        """``getResponse``: the task's results so far, each ``processing`` or ``success``."""
        self.stats.bump("get_responses")
        record = self._tasks.get(task_uuid)
        if record is None:
            await self._send_errors(ws, [unknown_task_error("getResponse", task_uuid)])
            return
        items = self._status_items(record, task_uuid)
        if not await self._send(ws, {"data": items}) or record.task_type != "imageInference":
            return
        for index in range(len(record.items)):
            if index not in record.sent and self.stats.images_undelivered > 0:
                self.stats.bump("images_undelivered", -1)  # lost once, delivered now
            self._delivered(record, index)

    def _status_items(self, record: _TaskRecord, task_uuid: str) -> list[dict[str, Any]]:
        if record.status == "success":
            return [{**item, "status": "success"} for item in record.items]
        # Still generating: one item per generation, identified by its imageUUID.
        return [
            {
                "taskType": record.task_type,
                "taskUUID": task_uuid,
                **({"imageUUID": image_uuid} if record.task_type == "imageInference" else {}),
                "status": "processing",
            }
            for image_uuid in record.expected
        ]

    async def _get_task_details(self, ws: ServerConnection, task_uuid: str) -> None:
        """``getTaskDetails``: the task's request and response, as sent and received."""
        self.stats.bump("task_details")
        record = self._tasks.get(task_uuid)
        if record is None:
            await self._send_errors(ws, [unknown_task_error("getTaskDetails", task_uuid)])
            return
        details = {
            "taskType": "getTaskDetails",
            "taskUUID": task_uuid,
            "request": [record.request],
            "response": {"data": self._status_items(record, task_uuid)},
        }
        await self._send(ws, {"data": [details]})

    async def _prompt_enhance(
        self, ws: ServerConnection, task: dict[str, Any], task_uuid: str
    ) -> None:
        prompt = task.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise TaskError(
                "invalidPrompt", "Invalid value for prompt parameter: must not be empty.", "prompt"
            )
        max_length = int_param(task, "promptMaxLength", 380, 12, 400)
        versions = int_param(task, "promptVersions", 1, 1, 5)
        record = self._accept(task_uuid, task, [])
        if not await self._faults_before_answer(ws):
            self._forget(task_uuid)
            return
        texts = enhance_texts(prompt, versions, max_length)
        record.generated = True
        for index, text in enumerate(texts):
            item: dict[str, Any] = {
                "taskType": "promptEnhance",
                "taskUUID": task_uuid,
                "text": text,
            }
            if task.get("includeCost"):
                item["cost"] = ENHANCE_COST_USD
                self.stats.bump("billed_usd", ENHANCE_COST_USD)
            record.items.append(item)
            record.decodable.append(True)
            if index == len(texts) - 1:
                record.status = "success"
                self._keep_items(record)
            if await self._send(ws, {"data": [item]}):
                record.sent.add(index)
                if "cost" in item:
                    self.stats.bump("cost_reported_usd", item["cost"])
        self._mark_answered(task_uuid)


@dataclass(eq=False)
class _TaskRecord:
    """An accepted task: its request, its results so far and which ones reached a socket."""

    task_type: str
    request: dict[str, Any]
    #: imageUUIDs of the generations, assigned on acceptance.
    expected: list[str]
    status: str = "processing"
    generated: bool = False
    items: list[dict[str, Any]] = field(default_factory=list)
    decodable: list[bool] = field(default_factory=list)
    sent: set[int] = field(default_factory=set)


async def start(
    host: str = "127.0.0.1", port: int = 0, *, api_key: str = DEFAULT_API_KEY, seed: int = 0
) -> RunwareStandin:
    """Start a stand-in on the running loop; ``port=0`` picks a free port (see ``.url``)."""
    standin = RunwareStandin(api_key=api_key, seed=seed)
    await standin._start(host, port)
    return standin


class RunwareComponent:
    """The stand-in as a part of the local stack: exports ``RUNWARE_URL`` and its key."""

    name = "runware"

    def __init__(self, port: int = 0, *, api_key: str = DEFAULT_API_KEY, seed: int = 0) -> None:
        self.port = port
        self.api_key = api_key
        self.seed = seed
        self.standin: RunwareStandin | None = None

    async def start(self, host: str) -> dict[str, str]:
        self.standin = await start(host, self.port, api_key=self.api_key, seed=self.seed)
        return {"RUNWARE_URL": self.standin.url, "RUNWARE_API_KEY": self.api_key}

    async def stop(self) -> None:
        if self.standin is not None:
            standin, self.standin = self.standin, None
            await standin.stop()


class ThreadedRunwareStandin:
    """A stand-in on its own thread and loop, for synchronous callers; bounded start/stop."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        api_key: str = DEFAULT_API_KEY,
        seed: int = 0,
        timeout_s: float = 10.0,
    ) -> None:
        self._args = (host, port, api_key, seed)
        self._timeout_s = timeout_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._standin: RunwareStandin | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None

    @property
    def standin(self) -> RunwareStandin:
        if self._standin is None:
            raise RuntimeError("the stand-in is not running; call start() first")
        return self._standin

    @property
    def url(self) -> str:
        return self.standin.url

    @property
    def faults(self) -> Faults:
        return self.standin.faults

    @property
    def stats(self) -> Stats:
        return self.standin.stats

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._run, name="runware-standin", daemon=True)
        self._thread.start()
        if not self._ready.wait(self._timeout_s):
            raise RuntimeError(f"the Runware stand-in did not start within {self._timeout_s}s")
        if self._failure is not None:
            raise RuntimeError("the Runware stand-in failed to start") from self._failure
        return self

    def _run(self) -> None:
        host, port, api_key, seed = self._args
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._standin = loop.run_until_complete(start(host, port, api_key=api_key, seed=seed))
        except BaseException as exc:
            self._failure = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def stop(self) -> None:
        loop, standin, thread = self._loop, self._standin, self._thread
        if loop is None or thread is None or loop.is_closed():
            return
        if standin is not None:
            future = asyncio.run_coroutine_threadsafe(standin.stop(), loop)
            with contextlib.suppress(Exception):
                future.result(self._timeout_s)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(self._timeout_s)
        if thread.is_alive():
            raise RuntimeError(f"the Runware stand-in did not stop within {self._timeout_s}s")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    """``python -m generia_pipelines.local.runware_standin``: serve until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    async def serve_forever() -> None:
        standin = await start(args.host, args.port, api_key=args.api_key, seed=args.seed)
        standin.faults.set(latency_s=args.latency_ms / 1000)
        print(standin.url, flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await standin.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_forever())

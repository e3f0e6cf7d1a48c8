"""The two tasks that generate and bill: ``imageInference`` and ``promptEnhance``.

Each validates its parameters (a :class:`~.protocol.TaskError` refuses the task), is accepted
into the task memory, passes the faults that strike before an answer, then sends one message
per result. An image counts as generated and billed as soon as it is drawn, whatever happens
to its answer afterwards; that is the window the ``lose_answer`` fault opens on purpose.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import random
import uuid
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.server import ServerConnection

from generia_pipelines.local.runware_standin.downloads import ImageStore
from generia_pipelines.local.runware_standin.drawing import enhance_texts, render_image
from generia_pipelines.local.runware_standin.faults import Faults, Stats
from generia_pipelines.local.runware_standin.protocol import (
    ENHANCE_COST_USD,
    FORMATS,
    MAX_SEED,
    MODEL_COSTS,
    OTHER_FORMAT,
    OUTPUT_TYPES,
    TaskError,
    int_param,
    size_param,
)
from generia_pipelines.local.runware_standin.replies import send
from generia_pipelines.local.runware_standin.tasks import TaskMemory, report_delivery


@dataclass(frozen=True)
class ImageRequest:
    """An ``imageInference`` task's parameters, validated."""

    model: str
    prompt: str
    width: int
    height: int
    count: int
    #: The first image's seed; the next ones count up from it.
    seed: int
    output_format: str
    output_types: list[str]
    check_content: bool
    include_cost: bool


def parse_image_request(task: dict[str, Any], rng: random.Random) -> ImageRequest:
    """Validate an image task in Runware's order; a random seed is drawn even if one is given,
    so the server's RNG advances the same way for every valid-so-far task."""
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
    width, height = size_param(task, "width"), size_param(task, "height")
    count = int_param(task, "numberResults", 1, 1, 20)
    seed = int_param(task, "seed", rng.randrange(1, MAX_SEED), 1, MAX_SEED)
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
    safety = task.get("safety")
    check_content = bool(isinstance(safety, dict) and safety.get("checkContent")) or bool(
        task.get("checkNSFW")
    )
    return ImageRequest(
        model=model,
        prompt=prompt,
        width=width,
        height=height,
        count=count,
        seed=seed,
        output_format=output_format,
        output_types=output_types,
        check_content=check_content,
        include_cost=bool(task.get("includeCost")),
    )


class Generator:
    """Runs the generating tasks against the server's faults, stats, memory and images."""

    def __init__(
        self,
        *,
        faults: Faults,
        stats: Stats,
        rng: random.Random,
        memory: TaskMemory,
        images: ImageStore,
    ) -> None:
        self._faults = faults
        self._stats = stats
        self._rng = rng
        self._memory = memory
        self._images = images

    async def image_inference(
        self, ws: ServerConnection, task: dict[str, Any], task_uuid: str
    ) -> None:
        """Answer one image task (or, faults permitting, only generate and bill it)."""
        request = parse_image_request(task, self._rng)
        image_uuids = [str(uuid.uuid4()) for _ in range(request.count)]
        record = self._memory.accept(task_uuid, task, image_uuids)
        if not await self._before_answer(ws):
            self._memory.forget(task_uuid)  # dropped before it was processed: never taken
            return
        faults, stats = self._faults, self._stats
        lose_answer = faults.take("lose_answer_next") or faults.draw("lose_answer_rate")
        for index, image_uuid in enumerate(image_uuids):
            item, decodable = await self._draw(request, task_uuid, image_uuid, index)
            # Generated: billed from here on, whatever happens to the answer.
            stats.bump("images_generated")
            stats.bump("billed_usd", MODEL_COSTS[request.model])
            record.generated = True
            record.items.append(item)
            record.decodable.append(decodable)
            if index == request.count - 1:
                record.status = "success"
                self._memory.keep_items(record)
            if lose_answer:
                stats.bump("answers_lost")
                stats.bump("images_undelivered")
                continue
            if not await send(ws, {"data": [item]}):
                stats.bump("images_undelivered")
                continue
            report_delivery(record, len(record.items) - 1, stats)
        self._memory.mark_answered(task_uuid)
        if lose_answer:  # billed and kept for getResponse; the answer never leaves
            ws.transport.abort()

    async def _draw(
        self, request: ImageRequest, task_uuid: str, image_uuid: str, index: int
    ) -> tuple[dict[str, Any], bool]:
        """One image's result item, the per-image faults applied; and whether it decodes."""
        faults = self._faults
        image_seed = (request.seed + index - 1) % MAX_SEED + 1
        height, drawn_format = request.height, request.output_format
        if faults.take("wrong_size_next"):
            height = max(64, height // 2)
        if faults.take("wrong_format_next"):
            drawn_format = OTHER_FORMAT[request.output_format]
        body = await asyncio.to_thread(
            render_image, request.prompt, image_seed, request.width, height, drawn_format
        )
        garbage = faults.take("garbage_next") or faults.draw("garbage_rate")
        if garbage:
            body = hashlib.sha256(body).digest() * 8
        item: dict[str, Any] = {
            "taskType": "imageInference",
            "taskUUID": task_uuid,
            "imageUUID": image_uuid,
            "seed": image_seed,
        }
        if not faults.take("no_data_next"):
            item.update(self._image_data(request, image_uuid, body))
        nsfw = faults.take("nsfw_next")
        if request.check_content or nsfw:
            item["NSFWContent"] = nsfw
        omit_cost = faults.take("no_cost_next") or faults.omit_cost
        if request.include_cost and not omit_cost:
            item["cost"] = MODEL_COSTS[request.model]
        return item, not garbage

    def _image_data(self, request: ImageRequest, image_uuid: str, body: bytes) -> dict[str, str]:
        """The image in each outputType asked for, labelled with the outputFormat asked for."""
        content_type = FORMATS[request.output_format][1]
        data: dict[str, str] = {}
        for output_type in request.output_types:
            if output_type == "URL":
                data["imageURL"] = self._images.keep(image_uuid, body, content_type)
            elif output_type == "base64Data":
                data["imageBase64Data"] = base64.b64encode(body).decode()
            else:
                encoded = base64.b64encode(body).decode()
                data["imageDataURI"] = f"data:{content_type};base64,{encoded}"
        return data

    async def prompt_enhance(
        self, ws: ServerConnection, task: dict[str, Any], task_uuid: str
    ) -> None:
        """Answer one prompt task with its enhanced versions, one message each."""
        prompt = task.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise TaskError(
                "invalidPrompt", "Invalid value for prompt parameter: must not be empty.", "prompt"
            )
        max_length = int_param(task, "promptMaxLength", 380, 12, 400)
        versions = int_param(task, "promptVersions", 1, 1, 5)
        record = self._memory.accept(task_uuid, task, [])
        if not await self._before_answer(ws):
            self._memory.forget(task_uuid)
            return
        texts = enhance_texts(prompt, versions, max_length)
        record.generated = True
        for index, text in enumerate(texts):
            item = self._enhanced_item(task, task_uuid, text)
            record.items.append(item)
            record.decodable.append(True)
            if index == len(texts) - 1:
                record.status = "success"
                self._memory.keep_items(record)
            if await send(ws, {"data": [item]}):
                record.sent.add(index)
                if "cost" in item:
                    self._stats.bump("cost_reported_usd", item["cost"])
        self._memory.mark_answered(task_uuid)

    def _enhanced_item(self, task: dict[str, Any], task_uuid: str, text: str) -> dict[str, Any]:
        """One enhanced prompt's result; billed when its cost is asked for."""
        item: dict[str, Any] = {"taskType": "promptEnhance", "taskUUID": task_uuid, "text": text}
        if task.get("includeCost"):
            item["cost"] = ENHANCE_COST_USD
            self._stats.bump("billed_usd", ENHANCE_COST_USD)
        return item

    async def _before_answer(self, ws: ServerConnection) -> bool:
        """Latency, then maybe drop or fail; False when the task must not be answered."""
        faults = self._faults
        if faults.latency_s > 0:
            await asyncio.sleep(faults.latency_s)
        if faults.take("drop_next") or faults.draw("drop_rate"):
            self._stats.bump("drops")
            ws.transport.abort()
            return False
        if faults.take_error():
            raise TaskError(faults.error_code, "The provider did not answer in time; please retry.")
        return True

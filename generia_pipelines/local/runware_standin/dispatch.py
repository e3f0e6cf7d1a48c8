"""One authenticated task from receipt to answer, by its taskUUID.

The taskUUID must be a UUID. ``getResponse`` and ``getTaskDetails`` read the task memory; any
other task under a remembered taskUUID is a ``conflictTaskUUID`` and generates nothing. A task
refused or failed is forgotten (it billed nothing, its taskUUID may be used again), and so is
one cancelled with its connection before it generated anything.
"""

from __future__ import annotations

from typing import Any

from websockets.asyncio.server import ServerConnection

from generia_pipelines.local.runware_standin.faults import Stats
from generia_pipelines.local.runware_standin.generation import Generator
from generia_pipelines.local.runware_standin.protocol import (
    TaskError,
    is_uuid,
    unknown_task_error,
)
from generia_pipelines.local.runware_standin.replies import refuse, send, send_errors
from generia_pipelines.local.runware_standin.tasks import TaskMemory, report_delivery


class TaskDispatcher:
    """Routes a task to its lookup or its generator, keeping the task memory consistent."""

    def __init__(self, *, stats: Stats, memory: TaskMemory, generator: Generator) -> None:
        self._stats = stats
        self._memory = memory
        self._generator = generator

    async def run(self, ws: ServerConnection, task: dict[str, Any]) -> None:
        """Answer one task (its connection authenticated)."""
        task_type = str(task.get("taskType"))
        task_uuid = task.get("taskUUID")
        if not is_uuid(task_uuid):
            await refuse(
                ws,
                self._stats,
                "invalidTaskUUID",
                "Invalid value for taskUUID parameter: must be a UUID v4 string.",
                task_type=task_type,
                task_uuid=task_uuid if isinstance(task_uuid, str) else None,
                parameter="taskUUID",
            )
            return
        if task_type == "getResponse":
            await self._get_response(ws, task_uuid)
            return
        if task_type == "getTaskDetails":
            await self._get_task_details(ws, task_uuid)
            return
        if self._memory.was_answered(task_uuid):
            self._stats.record_resend(task_uuid)
        if task_uuid in self._memory:
            self._stats.bump("conflicts")
            await refuse(
                ws,
                self._stats,
                "conflictTaskUUID",
                "A task with this taskUUID was already submitted; use getResponse "
                "to retrieve its results.",
                task_type=task_type,
                task_uuid=task_uuid,
                parameter="taskUUID",
            )
            return
        await self._generate(ws, task, task_type, task_uuid)

    async def _generate(
        self, ws: ServerConnection, task: dict[str, Any], task_type: str, task_uuid: str
    ) -> None:
        """Run a generating task; a refusal is answered, a cancellation forgets the task."""
        try:
            if task_type == "imageInference":
                await self._generator.image_inference(ws, task, task_uuid)
            elif task_type == "promptEnhance":
                await self._generator.prompt_enhance(ws, task, task_uuid)
            else:
                raise TaskError(
                    "unsupportedTaskType",
                    f"Task type {task_type!r} is not supported by the local Runware stand-in.",
                    "taskType",
                )
        except TaskError as exc:
            self._memory.forget(task_uuid)  # a failed task bills nothing and frees its taskUUID
            await refuse(
                ws,
                self._stats,
                exc.code,
                exc.message,
                task_type=task_type,
                task_uuid=task_uuid,
                parameter=exc.parameter,
            )
            self._memory.mark_answered(task_uuid)
        except BaseException:
            # Cancelled with its connection before anything was generated: not kept.
            record = self._memory.get(task_uuid)
            if record is not None and not record.generated:
                self._memory.forget(task_uuid)
            raise

    async def _get_response(self, ws: ServerConnection, task_uuid: str) -> None:
        """``getResponse``: the task's results so far, each ``processing`` or ``success``."""
        self._stats.bump("get_responses")
        record = self._memory.get(task_uuid)
        if record is None:
            await send_errors(ws, self._stats, [unknown_task_error("getResponse", task_uuid)])
            return
        items = record.status_items(task_uuid)
        if not await send(ws, {"data": items}) or record.task_type != "imageInference":
            return
        for index in range(len(record.items)):
            if index not in record.sent and self._stats.images_undelivered > 0:
                self._stats.bump("images_undelivered", -1)  # lost once, delivered now
            report_delivery(record, index, self._stats)

    async def _get_task_details(self, ws: ServerConnection, task_uuid: str) -> None:
        """``getTaskDetails``: the task's request and response, as sent and received."""
        self._stats.bump("task_details")
        record = self._memory.get(task_uuid)
        if record is None:
            await send_errors(ws, self._stats, [unknown_task_error("getTaskDetails", task_uuid)])
            return
        details = {
            "taskType": "getTaskDetails",
            "taskUUID": task_uuid,
            "request": [record.request],
            "response": {"data": record.status_items(task_uuid)},
        }
        await send(ws, {"data": [details]})

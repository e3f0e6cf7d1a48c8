"""The stand-in's memory of tasks by taskUUID, which makes it enforce uniqueness as Runware does.

A task is remembered from the moment it is validated (``accept``) and forgotten again if it
ends without generating anything (``forget``): refused, failed transiently, or cut off with
its connection. A remembered taskUUID sent again is a conflict; ``getResponse`` and
``getTaskDetails`` read the record. Separately, every taskUUID answered at all (with results
or an error) is noted, so that a task sent again can be counted as a resend.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from generia_pipelines.local.runware_standin.faults import Stats
from generia_pipelines.local.runware_standin.protocol import BULKY_FIELDS, KEPT_IMAGES, KEPT_UUIDS


@dataclass(eq=False)
class TaskRecord:
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

    def status_items(self, task_uuid: str) -> list[dict[str, Any]]:
        """The results as ``getResponse`` shows them: all ``success``, or one per generation
        still ``processing`` (named by its imageUUID for an image task)."""
        if self.status == "success":
            return [{**item, "status": "success"} for item in self.items]
        return [
            {
                "taskType": self.task_type,
                "taskUUID": task_uuid,
                **({"imageUUID": image_uuid} if self.task_type == "imageInference" else {}),
                "status": "processing",
            }
            for image_uuid in self.expected
        ]


class TaskMemory:
    """Accepted tasks and answered taskUUIDs, each bounded to the latest ``KEPT_UUIDS``."""

    def __init__(self) -> None:
        self._records: OrderedDict[str, TaskRecord] = OrderedDict()
        #: The records still holding their results' bytes, oldest first.
        self._with_items: deque[TaskRecord] = deque()
        self._answered: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, task_uuid: str) -> bool:
        return task_uuid in self._records

    def get(self, task_uuid: str) -> TaskRecord | None:
        return self._records.get(task_uuid)

    def accept(self, task_uuid: str, task: dict[str, Any], expected: list[str]) -> TaskRecord:
        """Remember a validated task: from now on its taskUUID is used."""
        request = {k: v for k, v in task.items() if k != "apiKey"}
        record = TaskRecord(task_type=str(task.get("taskType")), request=request, expected=expected)
        self._records[task_uuid] = record
        while len(self._records) > KEPT_UUIDS:
            self._records.popitem(last=False)
        return record

    def forget(self, task_uuid: str) -> None:
        """The task generated nothing: its taskUUID is free again."""
        self._records.pop(task_uuid, None)

    def keep_items(self, record: TaskRecord) -> None:
        """Results are kept for the latest tasks only (they carry the image bytes)."""
        self._with_items.append(record)
        while len(self._with_items) > KEPT_IMAGES:
            old = self._with_items.popleft()
            old.items = [
                {k: v for k, v in item.items() if k not in BULKY_FIELDS} for item in old.items
            ]

    def mark_answered(self, task_uuid: str) -> None:
        self._answered[task_uuid] = None
        while len(self._answered) > KEPT_UUIDS:
            self._answered.popitem(last=False)

    def was_answered(self, task_uuid: str) -> bool:
        return task_uuid in self._answered


def report_delivery(record: TaskRecord, index: int, stats: Stats) -> None:
    """An image result reached a socket: the first time, its cost is reported and counted."""
    if index in record.sent:
        return
    record.sent.add(index)
    item = record.items[index]
    if "cost" in item:
        stats.bump("cost_reported_usd", item["cost"])
    if not record.decodable[index]:
        stats.bump("garbage_images")
    stats.record_delivery(
        str(item.get("imageUUID", "")),
        str(item.get("taskUUID", "")),
        item.get("cost", 0.0),
        record.decodable[index],
    )

"""What the stand-in's messages look like: prices, formats, limits, error shapes, parameters.

Nothing here does I/O, so every other module of the stand-in may import it.
"""

from __future__ import annotations

import uuid
from typing import Any, Final, TypeGuard

DEFAULT_API_KEY: Final = "local-runware-key"
#: Model AIR id -> USD per image reported with includeCost.
MODEL_COSTS: Final[dict[str, float]] = {
    "runware:100@1": 0.0006,
    "runware:101@1": 0.0038,
    "runware:97@2": 0.0019,
}
ENHANCE_COST_USD: Final = 0.0002
MAX_SEED: Final = 9_223_372_036_854_775_807
#: outputFormat -> (Pillow format, content type, file extension).
FORMATS: Final[dict[str, tuple[str, str, str]]] = {
    "PNG": ("PNG", "image/png", "png"),
    "JPG": ("JPEG", "image/jpeg", "jpg"),
    "WEBP": ("WEBP", "image/webp", "webp"),
}
#: Content type -> file extension of the download URL.
EXTENSIONS: Final = {content_type: extension for _, content_type, extension in FORMATS.values()}
#: outputFormat -> the format an image of the ``wrong_format`` fault is drawn in.
OTHER_FORMAT: Final = {"PNG": "JPG", "JPG": "PNG", "WEBP": "PNG"}
OUTPUT_TYPES: Final = ("URL", "base64Data", "dataURI")
#: Result fields holding image bytes, dropped from the results of older tasks.
BULKY_FIELDS: Final = frozenset({"imageBase64Data", "imageDataURI"})
#: How many images (and results with their bytes) are kept; memory stays bounded.
KEPT_IMAGES: Final = 4096
#: How many taskUUIDs (accepted, answered, delivered) are remembered.
KEPT_UUIDS: Final = 100_000
DOCS_URL: Final = "https://runware.ai/docs/en/image-inference/api-reference"


class TaskError(Exception):
    """A task refused: becomes one entry of an ``{"errors": [...]}`` answer."""

    def __init__(self, code: str, message: str, parameter: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.parameter = parameter


def error_entry(
    code: str,
    message: str,
    *,
    task_type: str | None,
    task_uuid: str | None,
    parameter: str | None = None,
) -> dict[str, Any]:
    """One error as Runware words it; a parameter's error links to its documentation."""
    error: dict[str, Any] = {"code": code, "message": message}
    if parameter:
        error["parameter"] = parameter
        error["documentation"] = f"{DOCS_URL}#request-{parameter.lower()}"
    if task_type:
        error["taskType"] = task_type
    if task_uuid:
        error["taskUUID"] = task_uuid
    return error


def unknown_task_error(task_type: str, task_uuid: str) -> dict[str, Any]:
    """The answer to a lookup of a taskUUID that no accepted task holds."""
    return error_entry(
        "taskNotFound",
        "No task with this taskUUID was found; it was never accepted or has expired.",
        task_type=task_type,
        task_uuid=task_uuid,
        parameter="taskUUID",
    )


def is_uuid(value: Any) -> TypeGuard[str]:
    """True for a string the ``uuid`` module parses (taskUUIDs, session UUIDs)."""
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def int_param(task: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    """The integer parameter ``name`` within ``low..high``; refused as ``invalid<Name>``."""
    value = task.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise TaskError(
            f"invalid{name[0].upper()}{name[1:]}",
            f"Invalid value for {name} parameter: must be an integer within {low}..{high}.",
            name,
        )
    return value


def size_param(task: dict[str, Any], name: str) -> int:
    """``width`` or ``height``: a multiple of 64 within 128..2048, 512 when not given."""
    value = task.get(name, 512)
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value % 64
        or not 128 <= value <= 2048
    ):
        raise TaskError(
            f"invalid{name.capitalize()}",
            f"Invalid value for {name} parameter: must be a multiple of 64 within 128..2048.",
            name,
        )
    return value

"""Sending answers on a WebSocket: one JSON message each, errors counted in the stats.

A peer may be gone by the time its answer is ready; sending then reports False rather than
raising, because what happens next (an image billed but undelivered) is the caller's to count.
"""

from __future__ import annotations

import json
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from generia_pipelines.local.runware_standin.faults import Stats
from generia_pipelines.local.runware_standin.protocol import error_entry


async def send(ws: ServerConnection, message: dict[str, Any]) -> bool:
    """Send one message; False when the connection is already gone."""
    try:
        await ws.send(json.dumps(message))
    except ConnectionClosed:
        return False
    return True


async def send_errors(ws: ServerConnection, stats: Stats, errors: list[dict[str, Any]]) -> None:
    """Send ``{"errors": [...]}``, counting each error's code."""
    for error in errors:
        stats.count("errors", error["code"])
    await send(ws, {"errors": errors})


async def refuse(
    ws: ServerConnection,
    stats: Stats,
    code: str,
    message: str,
    *,
    task_type: str | None,
    task_uuid: str | None,
    parameter: str | None = None,
) -> None:
    """Send a single error (see :func:`~.protocol.error_entry` for its shape)."""
    entry = error_entry(
        code, message, task_type=task_type, task_uuid=task_uuid, parameter=parameter
    )
    await send_errors(ws, stats, [entry])

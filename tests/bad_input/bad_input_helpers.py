"""Helpers of the bad-input tests: what a failed run said, and what it did before failing."""

from __future__ import annotations

from typing import Any

from dagster import DagsterEvent, ExecuteInProcessResult

GOOD_ID = "neon-harbor"
GOOD_WORLD: dict[str, Any] = {
    "id": GOOD_ID,
    "name": "Neon Harbor",
    "prompt": "A rain-soaked port city where smugglers and poets share the same bars",
    "characters": 2,
    "posts_per_day": 3,
}
DAY = "2026-11-21"
#: What every error that stops retries says (assets/common.py).
NOT_RETRIED = "not retried: a retry would fail the same way; finished work is kept"


def _messages(event: DagsterEvent) -> list[str]:
    error = getattr(event.event_specific_data, "error", None)
    messages = []
    while error is not None:
        messages.append(error.message.strip())
        error = error.cause
    return messages


def failure_text(result: ExecuteInProcessResult) -> str:
    """Every failure message of the run (step and resource failures, with their causes)."""
    kinds = {"STEP_FAILURE", "RESOURCE_INIT_FAILURE"}
    return "\n".join(
        message
        for event in result.all_events
        if event.event_type_value in kinds
        for message in _messages(event)
    )


def step_retries(result: ExecuteInProcessResult) -> int:
    """How many times Dagster retried a step of the run."""
    return sum(1 for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY")


def steps_started(result: ExecuteInProcessResult) -> list[str]:
    return [str(e.step_key) for e in result.all_events if e.event_type_value == "STEP_START"]

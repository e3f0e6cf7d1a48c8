"""Per-method call counters of the local stack, read by tests and the admin endpoint.

They let a test assert what the platform really saw (one CreateCharacter, not two) rather
than what the client believes it sent.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import asdict, dataclass


@dataclass
class MethodStats:
    """Counters of one method; ``failures`` are non-injected errors (validation, not found)."""

    calls: int = 0
    injected_errors: int = 0
    dropped_responses: int = 0
    failures: int = 0
    replays: int = 0


class CallStats:
    """Thread-safe counters keyed by qualified method name (``character.CreateCharacter``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_method: defaultdict[str, MethodStats] = defaultdict(MethodStats)

    def _bump(self, method: str, field: str) -> None:
        with self._lock:
            stats = self._by_method[method]
            setattr(stats, field, getattr(stats, field) + 1)

    def call(self, method: str) -> None:
        self._bump(method, "calls")

    def injected_error(self, method: str) -> None:
        self._bump(method, "injected_errors")

    def dropped(self, method: str) -> None:
        self._bump(method, "dropped_responses")

    def failure(self, method: str) -> None:
        self._bump(method, "failures")

    def replay(self, method: str) -> None:
        self._bump(method, "replays")

    def get(self, method: str) -> MethodStats:
        """A copy of one method's counters (zeros if never called)."""
        with self._lock:
            found = self._by_method.get(method)
            return MethodStats(**asdict(found)) if found else MethodStats()

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {name: asdict(stats) for name, stats in sorted(self._by_method.items())}

    def reset(self) -> None:
        with self._lock:
            self._by_method.clear()

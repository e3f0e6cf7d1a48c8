"""The stand-in's knobs and its tally: faults settable while it serves, and what it has done.

Both are read and written from any thread (a test's, the server's loop), hence the locks.
"""

from __future__ import annotations

import random
import threading
from collections import Counter, deque
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from generia_pipelines.local.runware_standin.protocol import KEPT_UUIDS


@dataclass
class Faults:
    """What to break, changeable while serving; counters hit exactly the next N calls,
    rates a share of calls drawn from the seeded RNG (for chaos runs)."""

    latency_s: float = 0.0
    error_rate: float = 0.0
    error_code: str = "timeoutProvider"
    fail_next: int = 0
    drop_next: int = 0
    silent_auth: bool = False
    nsfw_next: int = 0
    garbage_next: int = 0
    #: Share of tasks whose connection is dropped before they are answered.
    drop_rate: float = 0.0
    #: Share of images whose bytes are replaced by ones that do not decode.
    garbage_rate: float = 0.0
    #: Share of connections whose authentication is never answered.
    silent_auth_rate: float = 0.0
    #: Image tasks that are generated and billed, then have their connection dropped before
    #: the answer is sent: the result waits for ``getResponse`` (or a resubmission).
    lose_answer_next: int = 0
    lose_answer_rate: float = 0.0
    #: Images rendered at half the height asked for.
    wrong_size_next: int = 0
    #: Images encoded in another format than outputFormat (labelled as the one asked for).
    wrong_format_next: int = 0
    #: Results delivered without any image data (no imageURL/imageBase64Data/imageDataURI).
    no_data_next: int = 0
    #: Results delivered without a ``cost`` field although includeCost was set.
    no_cost_next: int = 0
    omit_cost: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    _rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def set(self, **values: Any) -> None:
        """Set several faults at once (unknown names are refused, not ignored)."""
        names = {f.name for f in fields(self) if not f.name.startswith("_")}
        unknown = set(values) - names
        if unknown:
            raise ValueError(f"unknown fault(s) {sorted(unknown)}; known: {sorted(names)}")
        with self._lock:
            for name, value in values.items():
                setattr(self, name, value)

    def reset(self) -> None:
        """Back to a healthy server."""
        self.set(
            **{
                f.name: f.default
                for f in fields(self)
                if not f.name.startswith("_") and f.default is not MISSING
            }
        )

    def draw(self, rate: str) -> bool:
        """True for the given share (``*_rate`` attribute) of calls."""
        with self._lock:
            value = float(getattr(self, rate))
            return value > 0 and self._rng.random() < value

    def take(self, counter: str) -> bool:
        """Consume one unit of a ``*_next`` counter; True when this call is hit."""
        with self._lock:
            left = getattr(self, counter)
            if left > 0:
                setattr(self, counter, left - 1)
                return True
            return False

    def take_error(self) -> bool:
        """Whether this task fails transiently: the next N first, then ``error_rate``."""
        with self._lock:
            if self.fail_next > 0:
                self.fail_next -= 1
                return True
            return self.error_rate > 0 and self._rng.random() < self.error_rate


@dataclass
class Stats:
    """What the stand-in has done; read a consistent copy with :meth:`snapshot`.

    ``images_generated`` counts every image drawn (each would be billed); the cost is
    *reported* only with an answer that reached the socket, so an image whose connection
    died first is counted in ``images_undelivered`` instead. ``garbage_images`` were
    delivered with bytes that do not decode (a client must discard and regenerate them).
    ``delivered`` keeps ``(imageUUID, taskUUID, cost, decodable)`` of the latest images
    delivered, so an audit can name the ones billed but never used. ``resent_tasks`` counts
    tasks sent again under a taskUUID already answered, with images or an error (the SDK
    resends its pending tasks after a reconnect, answered or not), and ``resent_uuids`` names
    them. A resent task under a taskUUID Runware accepted is answered ``conflictTaskUUID``
    and billed nothing (``conflicts``); ``billed_usd`` is the cost of every image generated,
    delivered or not; ``answers_lost`` counts images billed whose answer was dropped on
    purpose (the ``lose_answer`` fault); ``get_responses`` and ``task_details`` count the
    ``getResponse`` and ``getTaskDetails`` calls served.
    """

    images_generated: int = 0
    cost_reported_usd: float = 0.0
    calls: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    connections: int = 0
    open_connections: int = 0
    auth_failures: int = 0
    drops: int = 0
    silent_auths: int = 0
    garbage_images: int = 0
    images_undelivered: int = 0
    resent_tasks: int = 0
    resent_uuids: deque[str] = field(default_factory=lambda: deque(maxlen=KEPT_UUIDS))
    delivered: deque[tuple[str, str, float, bool]] = field(
        default_factory=lambda: deque(maxlen=KEPT_UUIDS)
    )
    billed_usd: float = 0.0
    conflicts: int = 0
    answers_lost: int = 0
    get_responses: int = 0
    task_details: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def snapshot(self) -> Stats:
        """A copy taken under the lock, so its fields agree with each other."""
        with self._lock:
            return Stats(
                images_generated=self.images_generated,
                cost_reported_usd=self.cost_reported_usd,
                calls=Counter(self.calls),
                errors=Counter(self.errors),
                connections=self.connections,
                open_connections=self.open_connections,
                auth_failures=self.auth_failures,
                drops=self.drops,
                silent_auths=self.silent_auths,
                garbage_images=self.garbage_images,
                images_undelivered=self.images_undelivered,
                resent_tasks=self.resent_tasks,
                resent_uuids=deque(self.resent_uuids, maxlen=KEPT_UUIDS),
                delivered=deque(self.delivered, maxlen=KEPT_UUIDS),
                billed_usd=self.billed_usd,
                conflicts=self.conflicts,
                answers_lost=self.answers_lost,
                get_responses=self.get_responses,
                task_details=self.task_details,
            )

    def bump(self, name: str, amount: float = 1) -> None:
        """Add ``amount`` to the number field ``name`` (negative to take back)."""
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    def count(self, counter: str, key: str) -> None:
        """One more ``key`` (a task type, an error code) in the Counter ``counter``."""
        with self._lock:
            getattr(self, counter)[key] += 1

    def record_resend(self, task_uuid: str) -> None:
        """A task came again under a taskUUID already answered."""
        with self._lock:
            self.resent_tasks += 1
            self.resent_uuids.append(task_uuid)

    def record_delivery(
        self, image_uuid: str, task_uuid: str, cost: float, decodable: bool
    ) -> None:
        """An image reached a socket for the first time."""
        with self._lock:
            self.delivered.append((image_uuid, task_uuid, cost, decodable))

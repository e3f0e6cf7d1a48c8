"""Run-time fault injection for the local stack: latency, errors, lost responses, expired URLs,
truncated uploads.

Deterministic on purpose: a seeded RNG drives the rates and ``times=N`` hits exactly the
next N calls, so a failing chaos test or benchmark replays the same way. Thread-safe, because
tests set faults from their own thread while the stack serves from another.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import grpc

from generia_pipelines.proto import character_pb2, media_pb2, post_pb2, world_pb2

#: Full gRPC service name -> the short prefix used in qualified method names.
SERVICE_PREFIXES: dict[str, str] = {
    "generia.character.CharacterService": "character",
    "media.MediaService": "media",
    "post.PostService": "post",
    "world.WorldService": "world",
}
OBJECT_STORE_METHODS = ("object_store.PUT", "object_store.GET")
WILDCARD = "*"


def _known_methods() -> frozenset[str]:
    names = set(OBJECT_STORE_METHODS)
    for module in (character_pb2, media_pb2, post_pb2, world_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            prefix = SERVICE_PREFIXES[service.full_name]
            names.update(f"{prefix}.{method.name}" for method in service.methods)
    return frozenset(names)


#: Every qualified method name a fault can target, e.g. ``character.CreateCharacter``.
KNOWN_METHODS = _known_methods()
_BARE_METHODS = frozenset(
    name.split(".", 1)[1] for name in KNOWN_METHODS if not name.startswith("object_store.")
)


def qualified_name(grpc_path: str) -> str:
    """``/media.MediaService/ConfirmUpload`` -> ``media.ConfirmUpload`` (unknown: unchanged)."""
    service, _, method = grpc_path.lstrip("/").rpartition("/")
    prefix = SERVICE_PREFIXES.get(service)
    return f"{prefix}.{method}" if prefix else grpc_path


def normalize_method(name: str) -> str:
    """Accept ``CreateCharacter``, ``character.CreateCharacter``, a gRPC path or ``*``.

    Unknown names are refused so that a typo does not silently inject nothing.
    """
    name = name.strip()
    if name == WILDCARD:
        return name
    if name.startswith("/"):
        name = qualified_name(name)
    if name in KNOWN_METHODS or name in _BARE_METHODS:
        return name
    raise ValueError(
        f"unknown method {name!r}: use a gRPC method name such as 'CreateCharacter' or "
        "'character.CreateCharacter', or 'object_store.PUT' / 'object_store.GET'"
    )


@dataclass(frozen=True)
class FaultSpec:
    """What to inject on one method (as given to :meth:`FaultInjector.set`)."""

    latency_s: float = 0.0
    error_rate: float = 0.0
    error_code: str = "UNAVAILABLE"
    drop_after_commit_rate: float = 0.0
    times: int | None = None
    #: Share of calls that get ``latency_s`` (1.0: every call, the original behaviour).
    latency_rate: float = 1.0
    #: Apply the latency after the handler committed (a slow answer, not a slow queue):
    #: past the client's deadline this is a lost response with DEADLINE_EXCEEDED.
    latency_after_commit: bool = False
    #: ``object_store.PUT`` only: the store gets a short body and answers 400 IncompleteBody.
    truncate_rate: float = 0.0


@dataclass(frozen=True)
class FaultDecision:
    """The outcome for one call, decided once when the call arrives."""

    latency_s: float = 0.0
    error_code: grpc.StatusCode | None = None
    drop_after_commit: bool = False
    latency_after_commit: bool = False
    truncate_body: bool = False


NO_FAULT = FaultDecision()


class FaultInjector:
    """Per-method fault rules, set and cleared at run time from any thread."""

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._rules: dict[str, FaultSpec] = {}
        self._remaining: dict[str, int] = {}
        self._expire_urls = False
        self._url_ttl_s: int | None = None
        self._early_expiry_rate = 0.0
        #: How often each rate-drawn fault fired (latency, truncation, early expiry).
        self._fired: Counter[str] = Counter()

    def set(
        self,
        method: str,
        *,
        latency_s: float = 0.0,
        error_rate: float = 0.0,
        error_code: str = "UNAVAILABLE",
        drop_after_commit_rate: float = 0.0,
        times: int | None = None,
        latency_rate: float = 1.0,
        latency_after_commit: bool = False,
        truncate_rate: float = 0.0,
    ) -> None:
        """Install (or replace) the rule of ``method``.

        Without ``times`` the rates apply to every call, drawn from the seeded RNG; the
        latency hits a ``latency_rate`` share of them. With ``times=N`` exactly the next N
        calls are hit, then the rule is removed: each gets the latency and, with certainty,
        the error (when ``error_rate`` > 0, or when no other fault is given), the truncated
        body (when ``truncate_rate`` > 0) or the lost response (when
        ``drop_after_commit_rate`` > 0). ``object_store.*`` errors are HTTP 503 whatever
        ``error_code`` says.
        """
        key = normalize_method(method)
        code = error_code.strip().upper()
        if code not in grpc.StatusCode.__members__ or code == "OK":
            raise ValueError(f"error_code {error_code!r} is not a gRPC status name other than OK")
        if latency_s < 0:
            raise ValueError("latency_s must be >= 0")
        for label, rate in (
            ("error_rate", error_rate),
            ("drop_after_commit_rate", drop_after_commit_rate),
            ("latency_rate", latency_rate),
            ("truncate_rate", truncate_rate),
        ):
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{label} must be within [0, 1], got {rate}")
        if times is not None and times < 1:
            raise ValueError(f"times must be >= 1, got {times}")
        if (
            times is not None
            and error_rate == 0
            and drop_after_commit_rate == 0
            and truncate_rate == 0
            and latency_s == 0
        ):
            error_rate = 1.0
        spec = FaultSpec(
            latency_s,
            error_rate,
            code,
            drop_after_commit_rate,
            times,
            latency_rate,
            latency_after_commit,
            truncate_rate,
        )
        with self._lock:
            if spec == FaultSpec(error_code=code):
                self._rules.pop(key, None)
                self._remaining.pop(key, None)
                return
            self._rules[key] = spec
            if times is None:
                self._remaining.pop(key, None)
            else:
                self._remaining[key] = times

    def clear(self, method: str | None = None) -> None:
        """Remove one method's rule, or every rule, the URL-expiry settings and the counts."""
        with self._lock:
            if method is None:
                self._rules.clear()
                self._remaining.clear()
                self._expire_urls = False
                self._url_ttl_s = None
                self._early_expiry_rate = 0.0
                self._fired.clear()
                return
            key = normalize_method(method)
            self._rules.pop(key, None)
            self._remaining.pop(key, None)

    def expire_urls_early(self, enabled: bool = True) -> None:
        """Make every presigned URL issued from now on already expired."""
        with self._lock:
            self._expire_urls = enabled

    def set_url_ttl(self, seconds: int | None) -> None:
        """Override the presigned URL lifetime (``None`` restores the configured one)."""
        if seconds is not None and seconds < 0:
            raise ValueError("the URL TTL must be >= 0")
        with self._lock:
            self._url_ttl_s = seconds

    def set_early_expiry_rate(self, rate: float) -> None:
        """Sign this share of presigned URLs already expired while the Media service still
        reports the normal ``expires_at``: the URL dies before the client's PUT arrives."""
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"the early expiry rate must be within [0, 1], got {rate}")
        with self._lock:
            self._early_expiry_rate = rate

    def url_expires_early(self) -> bool:
        """Draw whether the URL being signed now is one that expires before its PUT."""
        with self._lock:
            early = self._hit(self._early_expiry_rate)
            if early:
                self._fired["early_expired_urls"] += 1
            return early

    def effective_url_ttl(self, default_s: int) -> int:
        """Seconds a new presigned URL stays valid; negative means born expired."""
        with self._lock:
            if self._expire_urls:
                return -1
            return default_s if self._url_ttl_s is None else self._url_ttl_s

    def decide(self, qualified: str) -> FaultDecision:
        """The fault for one call of ``qualified`` (e.g. ``character.CreateCharacter``)."""
        bare = qualified.split(".", 1)[1] if "." in qualified else qualified
        with self._lock:
            for key in (qualified, bare, WILDCARD):
                spec = self._rules.get(key)
                if spec is not None:
                    return self._draw(key, spec)
        return NO_FAULT

    def _draw(self, key: str, spec: FaultSpec) -> FaultDecision:
        if spec.times is not None:
            left = self._remaining.get(key, 0) - 1
            if left <= 0:
                self._rules.pop(key, None)
                self._remaining.pop(key, None)
            else:
                self._remaining[key] = left
            error = spec.error_rate > 0
            truncate = not error and spec.truncate_rate > 0
            drop = not error and not truncate and spec.drop_after_commit_rate > 0
            slow = True
        else:
            error = self._hit(spec.error_rate)
            truncate = not error and self._hit(spec.truncate_rate)
            drop = not error and not truncate and self._hit(spec.drop_after_commit_rate)
            slow = spec.latency_s > 0 and (spec.latency_rate >= 1.0 or self._hit(spec.latency_rate))
        if slow and spec.latency_s > 0:
            self._fired["delayed_calls"] += 1
        if truncate:
            self._fired["truncated_uploads"] += 1
        return FaultDecision(
            latency_s=spec.latency_s if slow else 0.0,
            error_code=grpc.StatusCode[spec.error_code] if error else None,
            drop_after_commit=drop,
            latency_after_commit=spec.latency_after_commit,
            truncate_body=truncate,
        )

    def _hit(self, rate: float) -> bool:
        # No draw for a zero rate, so an unused knob does not shift the others' sequences.
        return rate > 0 and self._rng.random() < rate

    def apply(self, command: Mapping[str, Any]) -> None:
        """Apply one JSON-style command (HTTP control endpoint, CLI ``--fault``).

        ``{"method": ..., "latency_s": ..., ...}`` sets a rule; ``{"expire_urls_early": bool}``,
        ``{"url_ttl_s": int | null}`` and ``{"early_expiry_rate": float}`` change the
        presigned URL lifetime.
        """
        command = dict(command)
        if "expire_urls_early" in command:
            self.expire_urls_early(bool(command.pop("expire_urls_early")))
        if "early_expiry_rate" in command:
            self.set_early_expiry_rate(float(command.pop("early_expiry_rate")))
        if "url_ttl_s" in command:
            ttl = command.pop("url_ttl_s")
            self.set_url_ttl(None if ttl is None else int(ttl))
        if not command:
            return
        method = command.pop("method", None)
        if not isinstance(method, str):
            raise ValueError("a fault needs a 'method' string")
        unknown = set(command) - set(FaultSpec.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        times = command.get("times")
        self.set(
            method,
            latency_s=float(command.get("latency_s", 0.0)),
            error_rate=float(command.get("error_rate", 0.0)),
            error_code=str(command.get("error_code", "UNAVAILABLE")),
            drop_after_commit_rate=float(command.get("drop_after_commit_rate", 0.0)),
            times=None if times is None else int(times),
            latency_rate=float(command.get("latency_rate", 1.0)),
            latency_after_commit=bool(command.get("latency_after_commit", False)),
            truncate_rate=float(command.get("truncate_rate", 0.0)),
        )

    def snapshot(self) -> dict[str, Any]:
        """The current rules, for the control endpoint and for logs."""
        with self._lock:
            rules = {}
            for key, spec in sorted(self._rules.items()):
                rule = asdict(spec)
                if spec.times is not None:
                    rule["remaining"] = self._remaining.get(key, 0)
                rules[key] = rule
            snapshot: dict[str, Any] = {
                "rules": rules,
                "expire_urls_early": self._expire_urls,
                "url_ttl_s": self._url_ttl_s,
            }
            if self._early_expiry_rate:  # the newer knobs show only once used
                snapshot["early_expiry_rate"] = self._early_expiry_rate
            if self._fired:
                snapshot["fired"] = dict(self._fired)
            return snapshot

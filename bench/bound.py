"""The critical-path bound: the least time any schedule could take to populate worlds.

Pure arithmetic over the latencies, the work's dependency order and the concurrency limits
in force; no I/O. It is a lower bound: it ignores every cost of the pipeline itself (Dagster,
the ledger, CPU) and every barrier the pipeline adds between its assets, so the ratio of a
measured wall time to it says how much of the wall time the design and the code add.

What it honours, per item (the platform's order of calls):

- setup of a world: brief → character plans (one per batch of 10, each seeing the ones
  before) → a character's profile → CreateCharacter → avatar prompt → image → presign →
  PUT → ConfirmUpload → UpdateCharacter;
- a post: draft → image → presign → PUT → ConfirmUpload → CreateAIPost (its author exists).

Two bounds, over different limits:

- :func:`account_bound`, the one the benchmarks compare against: the account-wide limits
  (:class:`Account`: image and text calls in flight across all runs together) and a world's
  posts after its setup (a post's author must exist). It knows nothing of runs, so it is the
  same whether the work runs as one run per world-day or as batched runs of many partitions:
  the ratio to it says what the run structure and the code add.
- :func:`scenario_bound`, the earlier one: at most ``runs`` runs at once and one run per world
  at a time, so a world's setup run and its day runs follow each other; within a run at most
  ``texts_per_run`` text calls, ``images_per_run`` image calls and ``grpc_per_run`` gRPC
  calls in flight. It charges every run's critical path to a run slot, so it is a bound for
  one run per world-day only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

#: Characters planned per text call (the platform's batch size).
BATCH = 10


@dataclass(frozen=True)
class Latency:
    """Seconds per call of each dependency."""

    text: float = 0.4
    image: float = 1.0
    grpc: float = 0.005
    upload: float = 0.02

    @property
    def after_image(self) -> float:
        """presign → PUT → confirm → create (or attach): the least time after an image."""
        return 3 * self.grpc + self.upload


@dataclass(frozen=True)
class Limits:
    """Concurrency in force."""

    runs: int = 8
    texts_per_run: int = 16
    images_per_run: int = 10
    grpc_per_run: int = 100


@dataclass(frozen=True)
class RunWork:
    """One Dagster run: a world's setup (``characters`` > 0) or one day of its posts."""

    characters: int = 0
    posts: int = 0

    def texts(self) -> int:
        if self.characters:
            return 1 + math.ceil(self.characters / BATCH) + 2 * self.characters
        return self.posts

    def images(self) -> int:
        return self.characters or self.posts

    def grpc_calls(self) -> int:
        # setup: create, presign, confirm, attach; a post: presign, confirm, create
        return 4 * self.characters if self.characters else 3 * self.posts


@dataclass(frozen=True)
class Terms:
    """The bound and the terms it is the maximum of (seconds), for the report."""

    seconds: float
    terms: dict[str, float] = field(default_factory=dict)

    @property
    def binding(self) -> str:
        """The name of the term that sets the bound."""
        return max(self.terms, key=lambda name: self.terms[name])


def _waves(count: int, width: int) -> int:
    return math.ceil(count / max(1, width))


def run_bound(run: RunWork, lat: Latency, lim: Limits) -> Terms:
    """The least time one run could take."""
    images, texts = run.images(), run.texts()
    if run.characters:
        plans = math.ceil(run.characters / BATCH)
        # brief, the plans in a chain, a profile, create, avatar prompt
        before_image = (1 + plans + 1) * lat.text + lat.grpc + lat.text
        first_image = (1 + 1 + 1) * lat.text + lat.grpc + lat.text  # after the first plan
        path = before_image + lat.image + lat.after_image
    else:
        first_image = lat.text  # the draft
        path = lat.text + lat.image + lat.after_image
    terms = {
        "critical path": path,
        "image calls": first_image
        + _waves(images, lim.images_per_run) * lat.image
        + lat.after_image,
        "text calls": _waves(texts, lim.texts_per_run) * lat.text + lat.image + lat.after_image,
        "grpc calls": _waves(run.grpc_calls(), lim.grpc_per_run) * lat.grpc,
    }
    return Terms(max(terms.values()), terms)


def scenario_bound(worlds: Sequence[Sequence[RunWork]], lat: Latency, lim: Limits) -> Terms:
    """The least time for all worlds, each a sequence of runs done one after another."""
    if not worlds:
        return Terms(0.0, {"nothing to do": 0.0})
    bounds = [[run_bound(run, lat, lim).seconds for run in runs] for runs in worlds]
    slots = min(lim.runs, len(worlds))
    runs = [run for world in worlds for run in world]
    images = sum(run.images() for run in runs)
    texts = sum(run.texts() for run in runs)
    terms = {
        "slowest world": max(sum(world) for world in bounds),
        "run slots": sum(sum(world) for world in bounds) / slots,
        "image calls": lat.text
        + _waves(images, slots * lim.images_per_run) * lat.image
        + lat.after_image,
        "text calls": _waves(texts, slots * lim.texts_per_run) * lat.text
        + lat.image
        + lat.after_image,
    }
    return Terms(max(terms.values()), terms)


@dataclass(frozen=True)
class Account:
    """Calls in flight across all runs at once: what the provider accounts allow (the
    deployment's runs times each run's own limit, split however the runs are cut)."""

    images: int = 80
    texts: int = 128
    grpc: int = 800

    def per_run(self, runs_at_once: int) -> Limits:
        """Each of ``runs_at_once`` runs' share: the per-run limits that keep the sum within."""
        share = max(1, runs_at_once)
        return Limits(
            runs=share,
            texts_per_run=max(1, self.texts // share),
            images_per_run=max(1, self.images // share),
            grpc_per_run=max(1, self.grpc // share),
        )


def account_bound(worlds: Sequence[Sequence[RunWork]], lat: Latency, account: Account) -> Terms:
    """The least time for all worlds under the account-wide limits, however runs are cut.

    Each world is a sequence of work done in order (its setup, then its days); a world alone
    may use the whole account. The maximum of: the slowest world's chain; every image call
    over the account's image limit, after the earliest an image can start and before the
    calls after the last; the same for text calls.
    """
    if not worlds:
        return Terms(0.0, {"nothing to do": 0.0})
    whole = Limits(
        runs=1,
        texts_per_run=account.texts,
        images_per_run=account.images,
        grpc_per_run=account.grpc,
    )
    runs = [run for world in worlds for run in world]
    images = sum(run.images() for run in runs)
    texts = sum(run.texts() for run in runs)
    # The earliest image: a day's first draft, or in a world to set up, after its first plan.
    setup_first = (1 + 1 + 1) * lat.text + lat.grpc + lat.text
    first_image = min(setup_first if world[0].characters else lat.text for world in worlds)
    terms = {
        "slowest world": max(sum(run_bound(run, lat, whole).seconds for run in w) for w in worlds),
        "image calls": first_image + _waves(images, account.images) * lat.image + lat.after_image,
        "text calls": _waves(texts, account.texts) * lat.text + lat.image + lat.after_image,
    }
    return Terms(max(terms.values()), terms)


def naive_seconds(worlds: Sequence[Sequence[RunWork]], lat: Latency) -> float:
    """The time of the original service's way: every call in sequence, nothing in parallel."""
    total = 0.0
    for runs in worlds:
        for run in runs:
            total += run.texts() * lat.text + run.images() * lat.image
            total += run.grpc_calls() * lat.grpc + run.images() * lat.upload
    return total

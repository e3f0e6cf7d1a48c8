"""Spending limits per world, checked before every paid call.

Budgets are per *period*: the world's setup (period ``""``: brief, characters, avatars) and
each day of posts (period ``YYYY-MM-DD``). A per-period cap bounds what one materialization
(and all its retries and re-runs) can spend, while a world that posts daily for a year is
never stopped by what it legitimately spent last month.

Defaults are derived from the world's counts with a retry margin (failed paid calls and
re-asked text calls count against the budget too); a world's catalog entry overrides them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from generia_pipelines.errors import GeneriaError

#: Runware ``runware:100@1`` at 512×512 costs about this per image (DESIGN.md §8).
IMAGE_USD = 0.0006
#: A generous guess per call for a small hosted chat model; the local backend costs nothing.
TEXT_USD = 0.001
#: Paid images allowed per expected image (Runware failures and lost uploads are retried).
IMAGE_MARGIN = 1.5
#: Text calls allowed per expected call (invalid structured output is re-asked).
TEXT_MARGIN = 2.0
#: Added to every derived limit so tiny worlds still tolerate a couple of failures.
SLACK = 2
#: Characters planned per text call (the platform's batch size).
CHARACTER_BATCH = 10

SETUP_PERIOD = ""


class BudgetLimits(BaseModel):
    """Overrides of some limits; a field left out keeps its derived default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    images: Annotated[int, Field(strict=True, ge=0)] | None = None
    text_calls: Annotated[int, Field(strict=True, ge=0)] | None = None
    usd: Annotated[float, Field(strict=True, ge=0)] | None = None


class BudgetOverrides(BaseModel):
    """A world's budget overrides: ``setup`` (characters, avatars) and ``daily`` (posts)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    setup: BudgetLimits | None = None
    daily: BudgetLimits | None = None


@dataclass(frozen=True)
class Spend:
    """Paid work, spent or requested."""

    images: int = 0
    text_calls: int = 0
    usd: float = 0.0

    def __add__(self, other: Spend) -> Spend:
        return Spend(
            self.images + other.images, self.text_calls + other.text_calls, self.usd + other.usd
        )


@dataclass(frozen=True)
class Budget:
    """Limits for one world and period; ``None`` means no limit on that figure."""

    images: int | None
    text_calls: int | None
    usd: float | None

    @classmethod
    def for_setup(
        cls,
        characters: int,
        overrides: BudgetOverrides | None = None,
        *,
        image_usd: float = IMAGE_USD,
        text_usd: float = TEXT_USD,
    ) -> Budget:
        """Setup: an avatar per character plus header and icon; per character a detail and
        an avatar prompt, a plan call per batch of 10, and the world brief."""
        images = characters + 2
        text_calls = 1 + math.ceil(characters / CHARACTER_BATCH) + 2 * characters
        return cls._derived(images, text_calls, image_usd, text_usd).override(
            overrides.setup if overrides else None
        )

    @classmethod
    def for_day(
        cls,
        posts_per_day: int,
        overrides: BudgetOverrides | None = None,
        *,
        image_usd: float = IMAGE_USD,
        text_usd: float = TEXT_USD,
    ) -> Budget:
        """A day of posts: an image and a draft call per post, plus one planning call."""
        return cls._derived(posts_per_day, posts_per_day + 1, image_usd, text_usd).override(
            overrides.daily if overrides else None
        )

    @classmethod
    def _derived(cls, images: int, text_calls: int, image_usd: float, text_usd: float) -> Budget:
        max_images = math.ceil(images * IMAGE_MARGIN) + SLACK
        max_text = math.ceil(text_calls * TEXT_MARGIN) + SLACK
        usd = math.ceil((max_images * image_usd + max_text * text_usd) * 10_000) / 10_000
        return cls(max_images, max_text, usd)

    def override(self, limits: BudgetLimits | None) -> Budget:
        """This budget with the figures ``limits`` sets replaced."""
        if limits is None:
            return self
        return Budget(
            images=self.images if limits.images is None else limits.images,
            text_calls=self.text_calls if limits.text_calls is None else limits.text_calls,
            usd=self.usd if limits.usd is None else limits.usd,
        )

    def overruns(self, spent: Spend, requested: Spend) -> list[str]:
        """What ``spent + requested`` would exceed, one phrase per figure (empty if none)."""
        problems = []
        if self.images is not None and spent.images + requested.images > self.images:
            problems.append(
                f"images {spent.images} spent + {requested.images} requested > limit {self.images}"
            )
        if self.text_calls is not None and spent.text_calls + requested.text_calls > (
            self.text_calls
        ):
            problems.append(
                f"text calls {spent.text_calls} spent + {requested.text_calls} requested > "
                f"limit {self.text_calls}"
            )
        # A micro-dollar of tolerance: sums of floats must not refuse an exact fit.
        if self.usd is not None and spent.usd + requested.usd > self.usd + 1e-9:
            problems.append(
                f"USD {spent.usd:.4f} spent + {requested.usd:.4f} requested > limit {self.usd:.4f}"
            )
        return problems

    def describe(self) -> str:
        def show(value: float | None, fmt: str = "{}") -> str:
            return "unlimited" if value is None else fmt.format(value)

        return (
            f"images {show(self.images)}, text calls {show(self.text_calls)}, "
            f"USD {show(self.usd, '{:.4f}')}"
        )


def period_label(period: str) -> str:
    """How a period reads in messages."""
    return "setup" if period == SETUP_PERIOD else f"day {period}"


class BudgetExceeded(GeneriaError):
    """A paid call was refused because it would exceed the world's budget; nothing was spent."""

    retryable = False  # the budget is what it is until someone raises it

    def __init__(
        self,
        world_id: str,
        period: str,
        budget: Budget,
        spent: Spend,
        requested: Spend,
        overruns: list[str],
        *,
        reserved: Spend | None = None,
    ) -> None:
        self.world_id = world_id
        self.reserved = reserved or Spend()
        self.period = period
        self.budget = budget
        self.spent = spent
        self.requested = requested
        self.overruns = overruns
        section = "setup" if period == SETUP_PERIOD else "daily"
        held = self.reserved
        in_flight = (
            f"; held by calls in flight now: {held.images} images, {held.text_calls} text "
            f"calls, USD {held.usd:.4f} (returned if they are not billed)"
            if held.images or held.text_calls
            else ""
        )
        super().__init__(
            f"budget of world {world_id!r} ({period_label(period)}) exceeded: "
            f"{'; '.join(overruns)}. Spent so far: {spent.images} images, "
            f"{spent.text_calls} text calls, USD {spent.usd:.4f}{in_flight}; limits: "
            f"{budget.describe()}. "
            f"Nothing was spent on this request and finished work is kept; raise "
            f"budget.{section} for this world in the catalog to continue."
        )

"""How ``RunwareImages.generate`` gets a usable image after a billed but unusable one.

A result flagged NSFW is drawn again once, with a seed derived from the first (a second
flag is final); an image whose bytes fail the checks is drawn again up to ``max_attempts``
times. Whatever ends the attempt carries everything paid for on the way.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field

from generia_pipelines.clients.runware.errors import (
    RunwareError,
    RunwareInvalidImage,
    RunwareNSFWError,
)
from generia_pipelines.clients.runware.settings import MAX_SEED

# The package's logger, as before it was split: handlers attach to it by that name.
log = logging.getLogger(__package__)


def next_seed(seed: int) -> int:
    """A different seed derived from the last one, so a regeneration stays reproducible."""
    digest = hashlib.sha256(f"generia-regenerate:{seed}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % MAX_SEED + 1


@dataclass
class Regeneration:
    """What ``generate`` has tried and paid for so far on its way to one usable image."""

    seed: int
    enhance_cost: float | None
    max_attempts: int
    discarded: float = 0.0
    nsfw_rounds: int = 0
    invalid_rounds: int = 0
    first_seed: int = field(init=False)

    def __post_init__(self) -> None:
        self.first_seed = self.seed

    def charge(self, error: RunwareError) -> RunwareError:
        """``error`` carrying everything billed anyway: discarded images, the enhancement."""
        error.paid_usd = self.discarded + (self.enhance_cost or 0.0)
        error.enhance_cost_usd = self.enhance_cost
        return error

    def draws_again(self, exc: RunwareNSFWError | RunwareInvalidImage) -> bool:
        """After ``exc``, whether to draw the image again (under ``seed``).

        If not, ``exc`` is charged with what was paid and should be raised; after a second
        NSFW flag the error saying so is raised here.
        """
        self.discarded += exc.paid_usd or 0.0
        if isinstance(exc, RunwareNSFWError):
            self.nsfw_rounds += 1
            if self.nsfw_rounds == 1:
                log.warning(
                    "Runware flagged image %s (seed %d) as NSFW; regenerating once",
                    exc.task_uuid,
                    self.seed,
                )
                self.seed = next_seed(self.seed)
                return True
            raise self.charge(
                RunwareNSFWError(
                    f"Runware flagged the image as NSFW twice (seeds {self.first_seed} and "
                    f"{self.seed}); not using it",
                    task_uuid=exc.task_uuid,
                )
            ) from None
        self.invalid_rounds += 1
        if self.invalid_rounds < self.max_attempts:
            log.warning("Runware image unusable, regenerating: %s", exc)
            return True
        exc.attempts = self.invalid_rounds
        self.charge(exc)
        return False

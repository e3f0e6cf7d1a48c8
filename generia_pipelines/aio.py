"""``async with`` for the pipeline's objects that hold connections or tasks.

One mixin instead of the same ``__aenter__``/``__aexit__`` pair in every client: an object
opens in :meth:`open` (nothing, by default) and releases in :meth:`aclose`, which leaving
the block always calls, whether it ends in an error or not.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self


class AsyncClosing:
    """Mixin: ``async with obj:`` awaits ``obj.open()``, then ``obj.aclose()`` on the way out."""

    async def open(self) -> Self:
        """Acquire what the object needs; the default has nothing to acquire."""
        return self

    async def aclose(self) -> None:
        """Release what the object holds."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

"""The one asyncio boundary of the twin: model requests made from the synchronous physics loop.

A :class:`ModelRunner` owns one event loop and runs coroutines on it to completion
(:meth:`run`, :meth:`run_all` for a batch sent concurrently). Requests that go through
:meth:`slot` are at most ``max_in_flight`` at once, and each waits until the model is free
(an embedded model may still be generating an answer abandoned after a timeout), so a
request's timeout counts model time only. Everything that asks a model on one client (the
humans, the supervisor's triage) shares that client's runner.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Awaitable, Sequence, TypeVar

from agents.llm.backend import model_busy

T = TypeVar("T")
BUSY_POLL_S = 0.05  # [s] how often a request waiting for a busy model looks again


async def _together(coroutines: Sequence[Awaitable[T]]) -> list[T]:
    return list(await asyncio.gather(*coroutines))


class ModelRunner:
    """One event loop and its request slots for one model client."""

    def __init__(self, client: Any = None, max_in_flight: int = 1) -> None:
        self.client = client
        self.max_in_flight = max_in_flight
        self.loop = asyncio.new_event_loop()
        self._slots: asyncio.Semaphore | None = None  # made on the loop, at first use

    def run(self, coroutine: Awaitable[T]) -> T:
        """Run ``coroutine`` to completion on the runner's loop (not from inside a running loop)."""
        return self.loop.run_until_complete(coroutine)

    def run_all(self, coroutines: Sequence[Awaitable[T]]) -> list[T]:
        """Run ``coroutines`` concurrently; their results in order."""
        return self.run(_together(coroutines))

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """A request slot: at most ``max_in_flight`` held at once, entered when the model is free."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_in_flight)
        async with self._slots:
            while model_busy(self.client):
                await asyncio.sleep(BUSY_POLL_S)
            yield

    def close(self) -> None:
        """Close the loop (idempotent)."""
        if not self.loop.is_closed():
            self.loop.close()

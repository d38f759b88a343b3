"""The one asyncio boundary of the twin: model requests made from the synchronous physics loop.

Every model call of the process runs on one event loop, kept in a background thread: a
model client (an OpenAI client's connection pool, for one) is bound to the loop it first
ran on, and the live inspector's forks, its page threads, the humans and the supervisor's
triage all share clients. A :class:`ModelRunner` submits coroutines to that loop and waits
for them (:meth:`run`, :meth:`run_all` for a batch sent concurrently). Requests that go
through :meth:`slot` are at most ``max_in_flight`` at once, and each waits until the model
is free (an embedded model may still be generating an answer abandoned after a timeout),
so a request's timeout counts model time only. Everything that asks a model on one client
shares that client's runner.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Awaitable, Sequence, TypeVar

from agents.llm.backend import model_busy

T = TypeVar("T")
BUSY_POLL_S = 0.05  # [s] how often a request waiting for a busy model looks again

_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def model_loop() -> asyncio.AbstractEventLoop:
    """The process's event loop for model calls (started on first use, in a daemon thread)."""
    global _loop
    with _loop_lock:
        if _loop is None or _loop.is_closed():
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="model-loop", daemon=True).start()
        return _loop


async def _together(coroutines: Sequence[Awaitable[T]]) -> list[T]:
    return list(await asyncio.gather(*coroutines))


class ModelRunner:
    """Request slots for one model client, on the process's model loop."""

    def __init__(self, client: Any = None, max_in_flight: int = 1) -> None:
        self.client = client
        self.max_in_flight = max_in_flight
        self.loop = model_loop()
        self._slots: asyncio.Semaphore | None = None  # made on the loop, at first use

    def run(self, coroutine: Awaitable[T]) -> T:
        """Run ``coroutine`` on the model loop and wait for its result (from any thread but
        the loop's own)."""
        if threading.current_thread().name == "model-loop":
            raise RuntimeError("ModelRunner.run called from inside the model loop; await the coroutine instead")
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()  # type: ignore[arg-type]

    def submit(self, coroutine: Awaitable[T]) -> "concurrent.futures.Future[T]":
        """Start ``coroutine`` on the model loop without waiting; its future."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)  # type: ignore[arg-type]

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

"""One agent's memories as an autogen ``Memory``, so the twin's store plugs into any autogen agent.

``AgentMemory(store, "commuter_late#0")`` reads and writes that agent's memories in a
:class:`memory.stream.MemoryStore`; give it to an ``AssistantAgent(memory=[...])`` and the
agent's model context gets its best memories for the latest message, ranked like the twin's
humans rank theirs (recency, importance, relevance). Text memories only.

    from autogen_agentchat.agents import AssistantAgent
    agent = AssistantAgent("driver", model_client, memory=[AgentMemory(store, "commuter_late#0")])
"""

from __future__ import annotations

from typing import Any

from autogen_core import CancellationToken
from autogen_core.memory import Memory, MemoryContent, MemoryMimeType, MemoryQueryResult, UpdateContextResult
from autogen_core.model_context import ChatCompletionContext
from autogen_core.models import SystemMessage

from memory.stream import KINDS, MemoryStore


class AgentMemory(Memory):
    """The memories of ``agent`` in ``store``, through autogen's ``Memory`` interface.

    ``add`` takes the memory's ``kind`` (default ``observation``), ``time_s`` [s], ``importance``
    (1-10) and ``episode`` from the content's metadata; ``query`` and ``update_context`` recall
    the ``k`` best at ``now_s`` [s] (the newest memory's time unless given)."""

    def __init__(self, store: MemoryStore, agent: str, k: int = 3) -> None:
        self.store, self.agent, self.k = store, agent, k

    async def add(self, content: MemoryContent, cancellation_token: CancellationToken | None = None) -> None:
        meta = dict(content.metadata or {})
        kind = str(meta.get("kind", "observation"))
        if kind not in KINDS:
            raise ValueError(f"memory kind {kind!r} is not one of {', '.join(KINDS)}")
        self.store.add(self.agent, str(content.content), kind, float(meta.get("time_s", self._now())),  # type: ignore[arg-type]
                       importance=meta.get("importance"), episode=int(meta.get("episode", 0)))

    async def query(self, query: str | MemoryContent, cancellation_token: CancellationToken | None = None,
                    **kwargs: Any) -> MemoryQueryResult:
        text = query.content if isinstance(query, MemoryContent) else query
        now = float(kwargs.get("now_s", self._now()))
        found = self.store.retrieve(self.agent, str(text), now_s=now, k=int(kwargs.get("k", self.k)))
        return MemoryQueryResult(results=[
            MemoryContent(content=m.text, mime_type=MemoryMimeType.TEXT,
                          metadata={"id": m.id, "kind": m.kind, "time_s": m.time_s, "importance": m.importance,
                                    "episode": m.episode, "score": m.score})
            for m in found])

    async def update_context(self, model_context: ChatCompletionContext) -> UpdateContextResult:
        messages = await model_context.get_messages()
        last = next((m.content for m in reversed(messages) if isinstance(getattr(m, "content", None), str)), "")
        result = await self.query(last) if last else MemoryQueryResult(results=[])
        if result.results:
            lines = "\n".join(f"- {m.content}" for m in result.results)
            await model_context.add_message(SystemMessage(content=f"You remember:\n{lines}"))
        return UpdateContextResult(memories=result)

    async def clear(self) -> None:
        self.store.forget(self.agent)

    async def close(self) -> None:
        """The store belongs to whoever made it; closing one agent's view leaves it open."""

    def _now(self) -> float:
        newest = self.store.recent(self.agent, 1)
        return newest[0].time_s if newest else 0.0

"""A scripted model client: answers computed from the request, no model (tests, benchmarks, demos
that must not depend on a model's speed or wording)."""

from __future__ import annotations

import asyncio
from typing import Any, AsyncGenerator, Callable, Sequence

from autogen_core.models import CreateResult, RequestUsage
from autogen_ext.models.replay import ReplayChatCompletionClient

from agents.llm.backend import MODEL_INFO

DRIVER = '{"lane": "as_usual", "speed": "faster", "following": "closer", "at_gap": "go", "amber": "go", "reason": "late"}'
PEDESTRIAN = '{"action": "wait", "pace": "slower", "attention": "attentive", "reason": "careful"}'
OPERATOR = ('{"signal_plan": "keep", "speed_limit_kmh": 0, "close_lane": "", "open_lane": "", "advisory": "", '
            '"reason": "fine"}')


def by_role(system: str, prompt: str) -> str:
    """A well-formed answer for whichever role the system message describes."""
    if "You are a driver" in system:
        return DRIVER
    if "You are a pedestrian" in system:
        return PEDESTRIAN
    return OPERATOR


class ScriptedClient(ReplayChatCompletionClient):
    """Answers ``script(system, prompt)``; records every request; optional ``delay_s`` [s]."""

    def __init__(self, script: Callable[[str, str], str] = by_role, delay_s: float = 0.0) -> None:
        super().__init__([], model_info=MODEL_INFO)
        self.script, self.delay_s = script, delay_s
        self.requests: list[tuple[str, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0

    async def create(self, messages: Sequence[Any], **kwargs: Any) -> CreateResult:
        system, prompt = messages[0].content, messages[-1].content
        self.requests.append((system, prompt))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            text = self.script(system, prompt)
        finally:
            self.in_flight -= 1
        return CreateResult(finish_reason="stop", content=text, usage=RequestUsage(prompt_tokens=0, completion_tokens=0),
                            cached=False)

    async def create_stream(self, messages: Sequence[Any], **kwargs: Any) -> AsyncGenerator[str | CreateResult, None]:
        """The answer as one chunk, then the result (as a streaming server would)."""
        result = await self.create(messages, **kwargs)
        yield result.content
        yield result

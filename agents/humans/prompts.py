"""The one prompt builder of a human: what it is asked when it decides and when it is interviewed.

Both start from the same context: the scene it reads (``agents.humans.scene``) and its own
recent decisions. A decision adds the advisories it received and asks what it does now,
with recalled memories fitted to the token budget (memories give way, never the scene); an
interview adds the memories the question recalls and the interviewer's question. Text from
others (advisories, memories, questions) is quoted as data, never as instructions.
"""

from __future__ import annotations

from typing import Any

from agents.humans.config import MemoryConfig
from agents.humans.roster import RECENT_DECISIONS, Human
from agents.humans.scene import quote


def _context(h: Human, scene: str) -> list[str]:
    parts = [scene]
    if h.recent:
        parts.append("Your recent decisions: " + quote("; ".join(h.recent)))
    return parts


def _recall(h: Human, memory: Any, query: str, k: int, now_s: float, episode: int) -> list:
    """The ``k`` best memories for ``query``, leaving out the decisions the prompt already
    lists under "Your recent decisions" (the same words twice cost tokens and tell nothing)."""
    shown = {entry.split(" s:", 1)[0] for entry in h.recent}
    recalled = memory.retrieve(h.identity, query, now_s=now_s, k=k + RECENT_DECISIONS, episode=episode)
    fresh = [m for m in recalled
             if not (m.kind == "decision" and m.episode == episode and f"{m.time_s:.0f}" in shown)]
    return fresh[:k]


def decision_prompt(h: Human, scene: str, memory: Any, config: MemoryConfig, now_s: float,
                    episode: int) -> tuple[str, list[dict[str, str]]]:
    """The request text of a decision and the memories recalled into it (id and text)."""
    parts = _context(h, scene)
    if h.advisories:
        parts.append("Advisories received: " + " ".join(quote(a) for a in h.advisories))
    parts.append("What do you do now?")
    if memory is None or config.recall == 0:
        return "\n".join(parts), []
    from memory.budget import count_tokens, fit_prompt

    recalled = _recall(h, memory, scene, config.recall, now_s, episode)
    budget = config.prompt_budget_tokens - count_tokens(h.agent.system_message)
    budget = max(budget, count_tokens("\n\n".join(parts)))  # memories are what gives way, never the scene
    prompt, used = fit_prompt(parts, [quote(m.text) for m in recalled], budget, header="You remember:")
    return prompt, [{"id": recalled[i].id, "text": recalled[i].text} for i in used]


def interview_prompt(h: Human, scene: str, question: str, memory: Any, config: MemoryConfig, now_s: float,
                     episode: int) -> tuple[str, list]:
    """The request text of an interview and the memories the question recalled."""
    parts = _context(h, scene)
    recalled = []
    if memory is not None and config.recall:
        recalled = _recall(h, memory, question, config.recall, now_s, episode)
        if recalled:
            parts.append("You remember: " + " ".join(quote(m.text) for m in recalled))
    parts.append("Interviewer: " + quote(question))
    return "\n".join(parts), recalled

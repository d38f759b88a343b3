"""Reusing recorded LLM decisions across episodes where the situation is the same.

The model's answer cache (``llm_cache.jsonl``) is keyed by the exact request, and a
request holds the clock, exact distances and recalled memories, so a new episode never
hits it. A ``SituationCache`` keys a decision by what the decision is about instead: the
role, the persona and the decision's situation features (``agents.humans.surrogate``: speed,
gap, time to collision, signal, trigger, ...) rounded to ``resolution``. When the same
persona meets the same situation again, in this episode or a later one, the recorded
intent is executed with no model call; otherwise the model answers and its decision is
added. Only the model's own choices are kept: fallbacks are never reused.

What the key leaves out: the recalled memories, recent decisions and advisories in the
prompt. A reused decision is what the persona chose in that situation once, not what it
would choose with today's memories. Each reused decision's record says ``source: reuse``.

With a ``path`` the cache is a JSON-lines file shared by every episode, env process and
run that names it (lines are appended, each under 4 KiB so concurrent appends do not
interleave); without one it lives in memory for one env or run.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

Key = tuple[str, str, tuple[int, ...]]


class SituationCache:
    """Recorded intents keyed by (role, persona, rounded situation features)."""

    def __init__(self, path: str | Path | None = None, resolution: float = 0.25, read_only: bool = False) -> None:
        if resolution <= 0:
            raise ValueError(f"resolution must be > 0, not {resolution}")
        self.path = Path(path) if path is not None else None
        self.resolution = resolution
        self.read_only = read_only
        self.entries: dict[Key, dict[str, Any]] = {}
        self.hits = 0
        self.misses = 0
        if self.path is not None and self.path.exists():
            for n, line in enumerate(self.path.read_text().splitlines()):
                try:
                    r = json.loads(line)
                    self.entries.setdefault(self._key(r["role"], r["persona"], r["features"]), r)
                except (ValueError, KeyError, TypeError):
                    log.warning("%s:%d: unreadable situation line skipped", self.path, n + 1)

    def _key(self, role: str, persona: str, features: list[float]) -> Key:
        return role, persona, tuple(int(round(float(x) / self.resolution)) for x in features)

    def lookup(self, role: str, persona: str, features: list[float] | None) -> dict[str, Any] | None:
        """The recorded decision (``intent`` fields and the model's ``answer``) for this
        situation, or None."""
        if features is None:
            return None
        entry = self.entries.get(self._key(role, persona, features))
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        return entry

    def add(self, role: str, persona: str, features: list[float] | None, intent: dict[str, Any], answer: str) -> None:
        """Record the model's decision for this situation (the first one recorded stays)."""
        if features is None:
            return
        key = self._key(role, persona, features)
        if key in self.entries:
            return
        record = {"role": role, "persona": persona, "features": list(features), "intent": intent,
                  "answer": answer}
        self.entries[key] = record
        if self.path is not None and not self.read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as f:
                f.write(json.dumps(record) + "\n")

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def hit_rate(self) -> float:
        """Share of lookups answered from the cache (0 before any lookup)."""
        return self.hits / max(self.hits + self.misses, 1)

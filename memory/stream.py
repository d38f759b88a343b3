"""The memory stream of the simulated humans (the generative-agents scheme).

Every agent writes what it saw, decided and was told into one shared chromadb collection
(its name in each memory's metadata). Retrieval ranks an agent's own memories by

    score = w_recency * recency + w_importance * importance / 10 + w_relevance * relevance

    recency   = DECAY_PER_MINUTE ** age_min
    age_min   = (now_s - time_s) / 60 + EPISODE_GAP_MIN * (current_episode - episode), >= 0
    relevance = 1 - cosine_distance(query, memory), clipped to [0, 1]

and a ``Reflector`` condenses recent memories into a "reflection" memory once enough
importance has piled up since the last one. A ``PersistentClient`` path reused by a later
``MemoryStore`` sees the earlier memories: that is how a persona remembers across episodes.

One writer per store path at a time: each ``MemoryStore`` keeps a per-agent index (order,
importance, kind, text and embedding of every memory) that it loads from the store on
first use and then updates itself. Retrieval searches that index exactly (an agent's
memories are a few thousand vectors: one matrix-vector product), so recall stays fast
however many memories the whole store holds; chromadb is the store of record.
"""

from __future__ import annotations

import bisect
import logging
import threading
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import chromadb
import numpy as np
from chromadb.api.types import EmbeddingFunction
from chromadb.config import Settings
from pydantic import BaseModel, Field

log = logging.getLogger(__name__)

MemoryKind = Literal["observation", "decision", "advisory", "near_miss", "hazard", "reflection"]
KINDS: tuple[str, ...] = get_args(MemoryKind)

DEFAULT_IMPORTANCE: dict[str, float] = {
    "observation": 2.0,
    "decision": 3.0,
    "advisory": 6.0,
    "near_miss": 8.0,
    "hazard": 9.0,
    "reflection": 7.0,
}
"""Importance (1..10) given to a memory of each kind when the caller does not rate it."""

DECAY_PER_MINUTE = 0.99
"""Recency factor per simulated minute of age: 0.99 keeps ~0.55 after an hour."""

EPISODE_GAP_MIN = 60.0
"""Each episode before the current one adds this many simulated minutes to a memory's age."""

MAX_REFLECTION_CHARS = 300
"""Longest insight accepted from a summariser; longer answers fall back to the rule."""


class Memory(BaseModel):
    """One remembered event of one agent. ``score``/``recency``/``relevance`` are set by retrieval."""

    id: str
    agent: str
    text: str
    kind: MemoryKind
    importance: float = Field(ge=1.0, le=10.0)
    time_s: float  # simulation time of the event, seconds since its episode's start
    episode: int = 0
    score: float = 0.0
    recency: float | None = None  # 0..1, the recency part of ``score`` before weighting
    relevance: float | None = None  # 0..1, the relevance part of ``score`` before weighting


@dataclass(frozen=True, order=True)
class _Entry:
    """Sort key and bookkeeping of one stored memory (ordered by episode, time, sequence)."""

    episode: int
    time_s: float
    seq: int
    importance: float
    kind: str


def _seq_of(memory_id: str) -> int:
    return int(memory_id.rsplit(":", 1)[1])


class _AgentIndex:
    """One agent's memories in memory: entries in (episode, time, sequence) order, and each
    memory's text and unit embedding by row (rows in the order they were added)."""

    def __init__(self, dim: int) -> None:
        self.entries: list[_Entry] = []
        self.texts: list[str] = []
        self.row_entries: list[_Entry] = []
        self._vectors = np.zeros((16, dim), np.float32)
        self.rows_of: dict[int, int] = {}  # sequence -> row

    @property
    def vectors(self) -> np.ndarray:
        return self._vectors[:len(self.texts)]

    @classmethod
    def restored(cls, rows: list[_Entry], texts: list[str], vectors: np.ndarray) -> "_AgentIndex":
        """An index holding exactly these rows (unit vectors taken as they are, not normalised again)."""
        index = cls(vectors.shape[1] if vectors.ndim == 2 and vectors.shape[1] else 384)
        index.texts, index.row_entries = list(texts), list(rows)
        index._vectors = np.array(vectors, np.float32) if len(vectors) else index._vectors
        index.rows_of = {e.seq: n for n, e in enumerate(rows)}
        index.entries = sorted(rows)
        return index

    def add(self, entry: _Entry, text: str, vector: np.ndarray) -> None:
        n = len(self.texts)
        if n == len(self._vectors):
            self._vectors = np.concatenate([self._vectors, np.zeros_like(self._vectors)])
        norm = float(np.linalg.norm(vector)) or 1.0
        self._vectors[n] = np.asarray(vector, np.float32) / norm
        self.texts.append(text)
        self.row_entries.append(entry)
        self.rows_of[entry.seq] = n
        bisect.insort(self.entries, entry)


class MemoryStore:
    """Memories of many agents in one chromadb collection (cosine space).

    ``path`` None keeps the memories in memory only, private to this instance. ``embedding``
    defaults to ``MiniLMEmbedding``; a persisted collection must be reopened with the
    embedding it was built with (chromadb raises otherwise). IDs are ``"{agent}:{n}"``
    with ``n`` counting that agent's memories from 0, so identical runs give identical stores.
    """

    def __init__(self, path: str | Path | None, embedding: EmbeddingFunction | None = None,
                 collection: str = "memories", *, w_recency: float = 1.0,
                 w_importance: float = 1.0, w_relevance: float = 1.0) -> None:
        if embedding is None:
            from memory.embedding import MiniLMEmbedding

            embedding = MiniLMEmbedding()
        self.embedding = embedding
        self.weights = (float(w_recency), float(w_importance), float(w_relevance))
        settings = Settings(anonymized_telemetry=False)
        self._ephemeral = path is None
        if path is None:
            # chromadb shares one in-memory system per process: a private collection name
            self._client = chromadb.EphemeralClient(settings=settings)
            collection = f"{collection}-{uuid.uuid4().hex[:12]}"
        else:
            Path(path).mkdir(parents=True, exist_ok=True)
            self._client = chromadb.PersistentClient(path=str(path), settings=settings)
        self._collection = self._client.get_or_create_collection(
            collection, embedding_function=embedding, configuration={"hnsw": {"space": "cosine"}})
        self._max_batch = int(self._client.get_max_batch_size())
        self._index: dict[str, _AgentIndex] = {}
        self._unwritten: list[tuple] = []  # memories given by set_state, not yet in chromadb
        self._all_indexed = False  # whether every agent in chromadb has its index (after get_state, set_state)
        self._lock = threading.RLock()

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Release the chromadb client (an in-memory store's memories are dropped)."""
        if not self._ephemeral:
            with self._lock:
                self._write_restored()
        if self._ephemeral:
            try:
                self._client.delete_collection(self._collection.name)
            except Exception:  # already gone
                pass
        self._client.close()

    def __enter__(self) -> "MemoryStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def forget(self, agent: str) -> int:
        """Delete every memory of ``agent``; returns how many there were."""
        with self._lock:
            self._write_restored()
            n = len(self._entries(agent))
            if n:
                self._collection.delete(where={"agent": agent})
            self._index.pop(agent, None)
            return n

    # -- saved state: forks from any moment ---------------------------------------------------

    def get_state(self) -> dict[str, Any]:
        """Every memory of the store (its index rows: texts, unit embeddings, bookkeeping) as a
        saved copy; ``set_state`` puts exactly these memories into this or another store, so a
        fork recalls what the saved humans recalled."""
        with self._lock:
            if not self._all_indexed:  # once: every agent indexed, the index is the whole state from then on
                self._write_restored()
                for agent in {str(m["agent"]) for m in self._collection.get(include=["metadatas"])["metadatas"]}:
                    self._agent_index(agent)
                self._all_indexed = True
            return {agent: {"rows": list(index.row_entries), "texts": list(index.texts),
                            "vectors": index.vectors.copy()} for agent, index in self._index.items()}

    def set_state(self, state: dict[str, Any]) -> None:
        """Replace every memory of this store by those saved in ``state`` (``get_state``). Recall
        works from the index at once; the memories reach chromadb when something reads it there
        (a fork that only recalls and adds never pays for writing what it was given)."""
        with self._lock:
            existing = self._collection.get(include=[])["ids"]
            for start in range(0, len(existing), self._max_batch):
                self._collection.delete(ids=existing[start:start + self._max_batch])
            self._index = {agent: _AgentIndex.restored(saved["rows"], saved["texts"], saved["vectors"])
                           for agent, saved in state.items()}
            self._all_indexed = True
            self._unwritten = [(f"{agent}:{e.seq}", vector, text, {"agent": agent, "kind": e.kind,
                                                                   "importance": e.importance, "time_s": e.time_s,
                                                                   "episode": e.episode})
                               for agent, saved in state.items()
                               for e, text, vector in zip(saved["rows"], saved["texts"], saved["vectors"])]

    def _write_restored(self) -> None:
        """Write the memories a ``set_state`` gave into chromadb (before anything reads it there)."""
        rows, self._unwritten = self._unwritten, []
        for start in range(0, len(rows), self._max_batch):
            chunk = rows[start:start + self._max_batch]
            self._collection.add(ids=[r[0] for r in chunk], embeddings=[r[1] for r in chunk],
                                 documents=[r[2] for r in chunk], metadatas=[r[3] for r in chunk])

    # -- per-agent index -------------------------------------------------------------------

    def _entries(self, agent: str) -> list[_Entry]:
        """This agent's memories in (episode, time, sequence) order, loaded once from the store."""
        return self._agent_index(agent).entries

    def _agent_index(self, agent: str) -> _AgentIndex:
        index = self._index.get(agent)
        if index is None:
            self._write_restored()
            got = self._collection.get(where={"agent": agent}, include=["metadatas", "documents", "embeddings"])
            index = _AgentIndex(len(got["embeddings"][0]) if len(got["ids"]) else 384)
            rows = sorted(zip(got["ids"], got["metadatas"], got["documents"], got["embeddings"]),
                          key=lambda row: _seq_of(row[0]))
            for i, m, text, vector in rows:
                index.add(_Entry(int(m["episode"]), float(m["time_s"]), _seq_of(i), float(m["importance"]),
                                 str(m["kind"])), text, np.asarray(vector))
            self._index[agent] = index
        return index

    def _next_seq(self, agent: str) -> int:
        entries = self._entries(agent)
        return 1 + max((e.seq for e in entries), default=-1)

    def latest_episode(self, agent: str) -> int:
        """The newest episode among this agent's memories (0 when it has none)."""
        entries = self._entries(agent)
        return entries[-1].episode if entries else 0

    def importance_since_reflection(self, agent: str) -> float:
        """Summed importance of this agent's non-reflection memories after its last reflection."""
        with self._lock:
            total = 0.0
            for e in reversed(self._entries(agent)):
                if e.kind == "reflection":
                    break
                total += e.importance
            return total

    # -- writing ---------------------------------------------------------------------------

    def add(self, agent: str, text: str, kind: MemoryKind, time_s: float,
            importance: float | None = None, episode: int = 0) -> Memory:
        """Store one memory; ``importance`` (1..10, clipped) defaults to ``DEFAULT_IMPORTANCE[kind]``."""
        return self.add_many([dict(agent=agent, text=text, kind=kind, time_s=time_s,
                                   importance=importance, episode=episode)])[0]

    def add_many(self, items: Sequence[Mapping[str, Any]]) -> list[Memory]:
        """Store many memories with one embedding call; each item has ``add``'s arguments as keys."""
        if not items:
            return []
        with self._lock:
            next_seq: dict[str, int] = {}
            memories: list[Memory] = []
            for item in items:
                agent, kind = str(item["agent"]), str(item["kind"])
                if kind not in KINDS:
                    raise ValueError(f"unknown memory kind {kind!r} (one of {', '.join(KINDS)})")
                importance = item.get("importance")
                importance = DEFAULT_IMPORTANCE[kind] if importance is None else float(importance)
                if agent not in next_seq:
                    next_seq[agent] = self._next_seq(agent)
                seq = next_seq[agent]
                next_seq[agent] = seq + 1
                memories.append(Memory(
                    id=f"{agent}:{seq}", agent=agent, text=str(item["text"]), kind=kind,
                    importance=min(10.0, max(1.0, importance)), time_s=float(item["time_s"]),
                    episode=int(item.get("episode", 0))))
            vectors = self.embedding([m.text for m in memories])
            for start in range(0, len(memories), self._max_batch):
                chunk = memories[start:start + self._max_batch]
                self._collection.add(
                    ids=[m.id for m in chunk],
                    embeddings=vectors[start:start + self._max_batch],
                    documents=[m.text for m in chunk],
                    metadatas=[{"agent": m.agent, "kind": m.kind, "importance": m.importance,
                                "time_s": m.time_s, "episode": m.episode} for m in chunk])
                for m, vector in zip(chunk, vectors[start:start + self._max_batch]):
                    # the index follows what chromadb has accepted
                    self._agent_index(m.agent).add(_Entry(m.episode, m.time_s, _seq_of(m.id), m.importance, m.kind),
                                                   m.text, np.asarray(vector))
            return memories

    # -- reading ---------------------------------------------------------------------------

    def count(self, agent: str | None = None) -> int:
        """Number of memories of ``agent``, or of all agents when None."""
        if agent is None:
            with self._lock:
                self._write_restored()
                return int(self._collection.count())
        with self._lock:
            return len(self._entries(agent))

    def recent(self, agent: str, n: int, exclude: Iterable[str] = ()) -> list[Memory]:
        """This agent's ``n`` newest memories (by episode, then time), newest first."""
        skip = set(exclude)
        with self._lock:
            picked = [e for e in reversed(self._entries(agent)) if e.kind not in skip][:max(0, n)]
        return self._fetch(agent, picked)

    def _fetch(self, agent: str, entries: Sequence[_Entry]) -> list[Memory]:
        index = self._agent_index(agent)
        return [self._from_index(agent, index, index.rows_of[e.seq]) for e in entries]

    @staticmethod
    def _from_index(agent: str, index: _AgentIndex, row: int) -> Memory:
        e = index.row_entries[row]
        return Memory(id=f"{agent}:{e.seq}", agent=agent, text=index.texts[row], kind=e.kind,
                      importance=e.importance, time_s=e.time_s, episode=e.episode)

    @staticmethod
    def _memory(memory_id: str, text: str, meta: Mapping[str, Any]) -> Memory:
        return Memory(id=memory_id, agent=str(meta["agent"]), text=text, kind=meta["kind"],
                      importance=float(meta["importance"]), time_s=float(meta["time_s"]),
                      episode=int(meta["episode"]))

    def retrieve(self, agent: str, query: str, now_s: float, k: int = 5, candidates: int = 50,
                 *, episode: int | None = None, recent_extra: int = 3) -> list[Memory]:
        """The ``k`` best memories of ``agent`` for ``query`` at simulation time ``now_s`` (s).

        Candidates are the ``candidates`` nearest memories of this agent in embedding space
        plus its ``recent_extra`` newest ones (so a fresh event is never missed for lack of
        similarity). Each is scored as in the module docstring against ``episode`` (default:
        the agent's newest); best first, ties broken by id.
        """
        if k <= 0 or not self.count(agent):
            return []
        qv = np.asarray(self.embedding.embed_query([query])[0], dtype=np.float32)
        with self._lock:
            index = self._agent_index(agent)
            entries = index.entries
            current = self.latest_episode(agent) if episode is None else int(episode)
            newest = [index.rows_of[e.seq] for e in entries[-recent_extra:]] if recent_extra > 0 else []
            n = min(max(1, candidates), len(entries))
            cosines = index.vectors @ (qv / (float(np.linalg.norm(qv)) or 1.0))
            nearest = np.argpartition(-cosines, n - 1)[:n] if n < len(cosines) else np.arange(len(cosines))
            rows = list(dict.fromkeys([*nearest.tolist(), *newest]))
            found = {row: (self._from_index(agent, index, row), float(cosines[row])) for row in rows}
        w_rec, w_imp, w_rel = self.weights
        scored = []
        for mem, cos in found.values():
            age_min = max(0.0, (now_s - mem.time_s) / 60.0
                          + EPISODE_GAP_MIN * max(0, current - mem.episode))
            mem.recency = DECAY_PER_MINUTE ** age_min
            mem.relevance = min(1.0, max(0.0, cos))
            mem.score = w_rec * mem.recency + w_imp * mem.importance / 10.0 + w_rel * mem.relevance
            scored.append(mem)
        scored.sort(key=lambda m: (-m.score, m.id))
        return scored[:k]


Summariser = Callable[[list[Memory]], Awaitable[str | None]]
"""Async callable turning memories (oldest first) into one short insight, or None."""

_PLURAL = {"observation": ("observation", "observations"), "decision": ("decision", "decisions"),
           "advisory": ("advisory", "advisories"), "near_miss": ("near miss", "near misses"),
           "hazard": ("hazard", "hazards")}
_REPORT_ORDER = ("near_miss", "hazard", "advisory", "decision", "observation")


def rule_insight(memories: Sequence[Memory]) -> str:
    """A deterministic one-line insight: counts by kind and the most important memory's text."""
    counts = Counter(m.kind for m in memories)
    parts = [f"{counts[k]} {_PLURAL[k][counts[k] != 1]}" for k in _REPORT_ORDER if counts[k]]
    top = max(memories, key=lambda m: (m.importance, m.episode, m.time_s))
    text = f"Recently I had {', '.join(parts) or 'nothing notable'}; most notable: {top.text}"
    if len(text) > MAX_REFLECTION_CHARS:
        text = text[:MAX_REFLECTION_CHARS - 3].rstrip() + "..."
    return text


class Reflector:
    """Turns an agent's recent memories into a "reflection" memory when enough has happened.

    ``due`` once the summed importance of the agent's memories since its last reflection
    reaches ``threshold``; ``reflect`` summarises the ``window`` newest non-reflection memories.
    The last reflection is found from the store itself, so this survives a restart.
    """

    def __init__(self, store: MemoryStore, threshold: float = 30.0, window: int = 20) -> None:
        self.store = store
        self.threshold = float(threshold)
        self.window = int(window)

    def due(self, agent: str) -> bool:
        """True when this agent has gathered ``threshold`` importance since its last reflection."""
        return self.store.importance_since_reflection(agent) >= self.threshold

    async def reflect(self, agent: str, now_s: float, summarise: Summariser | None = None,
                      *, episode: int | None = None) -> Memory | None:
        """Store and return one reflection made at ``now_s`` (s), or None with nothing to reflect on.

        ``summarise`` (e.g. an LLM call) gets the memories oldest first; its answer is used if
        it is a non-empty string of at most ``MAX_REFLECTION_CHARS`` characters. Otherwise
        (None, junk, too long, or an exception) the insight is ``rule_insight``'s.
        """
        memories = self.store.recent(agent, self.window, exclude=("reflection",))
        if not memories:
            return None
        memories.reverse()
        insight: str | None = None
        if summarise is not None:
            try:
                answer = await summarise(memories)
            except Exception as exc:  # a failing summariser must not stop the simulation
                log.warning("reflection summariser failed for %s: %s", agent, exc)
                answer = None
            if isinstance(answer, str) and 0 < len(answer.strip()) <= MAX_REFLECTION_CHARS:
                insight = answer.strip()
        if insight is None:
            insight = rule_insight(memories)
        ep = self.store.latest_episode(agent) if episode is None else episode
        return self.store.add(agent, insight, "reflection", now_s, episode=ep)

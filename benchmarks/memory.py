"""Speed of the memory stream: bulk insertion and retrieval latency at scale.

For each size N: a fresh persistent store in a temporary directory receives N synthetic
traffic memories spread over ``--agents`` agents (``add_many`` in batches), then
``--queries`` random retrievals (random agent, random query text) are timed one by one.
Reported: insertion wall time and rate (and the share spent embedding), retrieval p50/p95
latency in ms, store size on disk.

    python -m benchmarks.memory [--sizes 10000 100000] [--embedding minilm|hash]
                                [--queries 200] [--agents 100] [--batch 2000] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from memory.stream import MemoryStore

PLACES = ["the crosswalk on Main Street", "the highway on-ramp", "lane 2 of the motorway",
          "the roundabout", "the school zone", "the junction by the station", "the bus stop",
          "the toll plaza", "the bridge", "the exit ramp", "the cycle lane", "the car park exit"]
ACTORS = ["a pedestrian", "a cyclist", "a delivery truck", "a bus", "a motorbike", "a taxi",
          "an ambulance", "a child", "an elderly man", "a white van", "a tractor", "a scooter"]
TEMPLATES = [
    ("observation", "I saw {actor} near {place} at {speed} km/h"),
    ("observation", "Traffic was slow around {place}; {actor} was ahead of me"),
    ("decision", "I changed lanes near {place} to pass {actor}"),
    ("decision", "I slowed to {speed} km/h approaching {place}"),
    ("advisory", "The traffic centre warned of congestion at {place}"),
    ("near_miss", "{actor} cut in front of me at {place} and I braked hard"),
    ("hazard", "There was debris on the road at {place}; {actor} swerved around it"),
]
QUERIES = ["pedestrian at the crosswalk", "merging onto the highway", "cyclist in my lane",
           "congestion ahead", "someone braked hard in front of me", "debris on the road",
           "school zone speed", "passing a slow truck", "what happened at the roundabout",
           "emergency vehicle approaching"]


def synthetic(n: int, agents: int, seed: int) -> list[dict[str, Any]]:
    """``n`` memories for ``agents`` agents, round robin, one every 2 simulated seconds per agent."""
    rng = random.Random(seed)
    items = []
    for i in range(n):
        kind, template = rng.choice(TEMPLATES)
        text = template.format(actor=rng.choice(ACTORS), place=rng.choice(PLACES),
                               speed=rng.randrange(10, 131, 5))
        items.append(dict(agent=f"agent-{i % agents:03d}", text=text[0].upper() + text[1:],
                          kind=kind, time_s=2.0 * (i // agents), episode=0))
    return items


class _TimedEmbedding:
    """Wraps an embedding function and adds up the seconds spent in it."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.seconds = inner, 0.0

    def __call__(self, texts: Sequence[str]) -> Any:
        start = time.perf_counter()
        try:
            return self.inner(texts)
        finally:
            self.seconds += time.perf_counter() - start

    def embed_query(self, texts: Sequence[str]) -> Any:
        return self.inner.embed_query(texts)


def _embedding(name: str) -> Any:
    from memory.embedding import HashEmbedding, MiniLMEmbedding

    return {"minilm": MiniLMEmbedding, "hash": HashEmbedding}[name]()


def _dir_size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def measure(n: int, embedding: str, agents: int, queries: int, batch: int, k: int,
            candidates: int, seed: int, console: Console | None) -> dict[str, Any]:
    """Insert ``n`` memories into a fresh persistent store and time ``queries`` retrievals."""
    items = synthetic(n, agents, seed)
    root = Path(tempfile.mkdtemp(prefix="memory-bench-"))
    try:
        store = MemoryStore(root / "store", embedding=_embedding(embedding))
        timed = _TimedEmbedding(store.embedding)
        store.embedding = timed  # add_many embeds through this; chromadb gets the vectors
        start = time.perf_counter()
        with Progress(TextColumn(f"insert {n:,} ({embedding})"), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), console=console, disable=console is None,
                      transient=True) as bar:
            task = bar.add_task("insert", total=n)
            for lo in range(0, n, batch):
                store.add_many(items[lo:lo + batch])
                bar.advance(task, min(batch, n - lo))
        insert_s = time.perf_counter() - start
        assert store.count() == n

        rng = random.Random(seed + 1)
        now_s = max(it["time_s"] for it in items) + 60.0
        plan = [(f"agent-{rng.randrange(agents):03d}", rng.choice(QUERIES)) for _ in range(queries)]
        for agent, query in plan[:5]:  # warm-up (caches, per-agent index loads)
            store.retrieve(agent, query, now_s, k=k, candidates=candidates)
        latencies = []
        for agent, query in plan:
            t0 = time.perf_counter()
            got = store.retrieve(agent, query, now_s, k=k, candidates=candidates)
            latencies.append(time.perf_counter() - t0)
            assert got and all(m.agent == agent for m in got)
        ms = np.asarray(latencies) * 1000.0
        store.close()
        return {"memories": n, "agents": agents, "embedding": embedding,
                "insert_s": insert_s, "insert_per_s": n / insert_s,
                "embed_s": timed.seconds, "queries": queries, "k": k, "candidates": candidates,
                "retrieve_p50_ms": float(np.percentile(ms, 50)),
                "retrieve_p95_ms": float(np.percentile(ms, 95)),
                "retrieve_mean_ms": float(ms.mean()), "disk_mb": _dir_size_mb(root)}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Run the benchmark from command-line arguments; print a table (or JSON) and return the rows."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks.memory", description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000], help="memories per run")
    ap.add_argument("--embedding", choices=["minilm", "hash"], default="minilm")
    ap.add_argument("--queries", type=int, default=200, help="timed retrievals per size")
    ap.add_argument("--agents", type=int, default=100)
    ap.add_argument("--batch", type=int, default=2000, help="memories per add_many call")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--candidates", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = ap.parse_args(argv)

    console = Console(stderr=True)
    rows = [measure(n, args.embedding, args.agents, args.queries, args.batch, args.k,
                    args.candidates, args.seed, console) for n in args.sizes]
    if args.json:
        print(json.dumps(rows, indent=2))
        return rows
    table = Table(title=f"memory stream: {args.embedding}, {args.agents} agents, retrieve k={args.k} "
                        f"of {args.candidates} candidates, {args.queries} queries",
                  caption="insert: add_many wall time (embed: its embedding part); "
                          "p50/p95: retrieve latency incl. query embedding")
    for col in ("memories", "insert s", "per s", "embed s", "p50 ms", "p95 ms", "disk MB"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(f"{r['memories']:,}", f"{r['insert_s']:.1f}", f"{r['insert_per_s']:,.0f}",
                      f"{r['embed_s']:.1f}", f"{r['retrieve_p50_ms']:.2f}",
                      f"{r['retrieve_p95_ms']:.2f}", f"{r['disk_mb']:.0f}")
    Console().print(table)
    return rows


if __name__ == "__main__":
    main()

"""Runs per minute of one fixed sweep against the number of workers, in local processes and on a
local Ray instance (``compute``).

The sweep: the intersection at signal compliance 0.6, 0.8 and 1.0, 4 seeds each, ``minutes``
simulated minutes per run (12 runs). Each executor runs it once per round, the executors
interleaved, after a short warm-up run in this process (so that no row pays for loading the
kernels first); a row is the median over the rounds. A Ray instance is started before each of its
runs and its start-up time is reported on its own. Every run must give the same results.

    python run.py bench sweep [--minutes 2] [--rounds 4] [--json out.json]
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

SCENARIO = "intersection"
GRID = {"drivers.signal_compliance": [0.6, 0.8, 1.0]}
SEEDS = [0, 1, 2, 3]


def run_sweep_benchmark(minutes: float = 2.0, workers: tuple[int, ...] = (1, 2), rounds: int = 4,
                        json_path: Path | None = None, ray: bool = True) -> dict[str, Any]:
    """One row per executor (local and Ray, each with ``workers``): median wall time and runs per minute."""
    from twin.sweep import run_one

    console = Console()
    if ray:
        from compute import ComputeError
        from compute.executor import import_ray

        try:
            import_ray()
        except ComputeError as exc:  # Ray is an optional extra: the local rows alone
            console.print(f"[yellow]no Ray rows: {exc}[/yellow]")
            ray = False
    run_one(SCENARIO, {"seed": 0}, 0.05)  # warm-up: kernels loaded in this process (and in forked workers)
    kinds = [("local", w) for w in workers] + ([("ray", w) for w in workers] if ray else [])
    timings: dict[tuple[str, int], list[dict[str, Any]]] = {kind: [] for kind in kinds}
    reference = None
    for k in range(rounds):
        for kind, n in kinds:
            with console.status(f"round {k + 1}/{rounds}: {kind}, {n} workers"):
                result, start_s = _once(kind, n, minutes)
            reference = reference or result["results"]
            timings[(kind, n)].append({"wall_s": result["wall_s"], "start_s": start_s,
                                       "same_runs": result["results"] == reference})
    rows = []
    for (kind, n), runs in timings.items():
        wall = statistics.median(r["wall_s"] for r in runs)
        starts = [r["start_s"] for r in runs if r["start_s"] is not None]
        rows.append({"executor": kind, "workers": n, "runs": len(reference), "wall_s": round(wall, 2),
                     "runs_per_minute": round(60 * len(reference) / wall, 1),
                     "start_s": round(statistics.median(starts), 1) if starts else None,
                     "same_runs": all(r["same_runs"] for r in runs), "walls_s": [r["wall_s"] for r in runs]})
    base = rows[0]["runs_per_minute"]
    table = Table(title=f"sweep of {SCENARIO}: compliance 0.6, 0.8, 1.0 x {len(SEEDS)} seeds x {minutes:g} min, "
                        f"median of {rounds} rounds")
    for column in ("executor", "workers", "runs", "wall [s]", "runs per minute", "speed-up", "start [s]", "same runs"):
        table.add_column(column, justify="left" if column == "executor" else "right")
    for r in rows:
        table.add_row(r["executor"], str(r["workers"]), str(r["runs"]), f"{r['wall_s']:.1f}",
                      f"{r['runs_per_minute']:.0f}", f"{r['runs_per_minute'] / base:.2f}x",
                      "" if r["start_s"] is None else f"{r['start_s']:.1f}", "yes" if r["same_runs"] else "NO")
    console.print(table)
    out = {"scenario": SCENARIO, "grid": GRID, "seeds": SEEDS, "minutes": minutes, "rounds": rounds, "rows": rows}
    if json_path:
        Path(json_path).write_text(json.dumps(out, indent=2) + "\n")
    return out


def _once(kind: str, workers: int, minutes: float) -> tuple[dict[str, Any], float | None]:
    """The sweep on one executor, and the seconds a Ray instance took to start (None: local)."""
    from compute.executor import connect, import_ray
    from twin.sweep import sweep

    if kind == "local":
        return sweep(SCENARIO, GRID, SEEDS, minutes, workers=workers), None
    ray = import_ray()
    started = time.perf_counter()
    connect(ray, "local", workers)
    start_s = time.perf_counter() - started
    try:
        return sweep(SCENARIO, GRID, SEEDS, minutes, workers=workers, ray="local"), start_s
    finally:
        ray.shutdown()

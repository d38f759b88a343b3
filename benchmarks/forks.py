"""Cost of a fork: saving the world and its supervisor (``get_state``) and restoring them into
another world (``set_state``) at later and later ticks, against stepping the world.

A fork starts from saved state, so its cost must not grow with the tick it starts at (a
replay from t = 0 would). Each scenario runs with its supervisor; at each of ``ticks_min``
[simulated minutes] the state is saved and restored ``repeats`` times and the median taken.

    python run.py bench forks [--minutes 20] [--json out.json]
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

REPEATS = 5


def scenarios() -> dict[str, str]:
    """The built-in families, and SUMO's A10KW interchange when SUMO is installed."""
    from envs.roads.sumo import shipped_scenarios

    out = {"highway": "highway", "intersection": "intersection", "crosswalk": "crosswalk"}
    game = shipped_scenarios()
    if game is not None:
        out["A10KW"] = str(game / "A10KW.sumocfg")
    return out


def measure(scenario: str, ticks_min: list[float]) -> list[dict[str, Any]]:
    """Save and restore times [ms] of world and supervisor at each of ``ticks_min``."""
    from agents.supervisor.supervisor import Supervisor, SupervisorConfig
    from envs.world import World
    from twin.scenario import load_scenario

    config = load_scenario(scenario, {"ego.controlled": 0})
    world, supervisor = World(config), Supervisor(SupervisorConfig())
    target, spare_supervisor = World(config), Supervisor(SupervisorConfig())
    rows = []
    step_s = 0.0
    steps = 0
    for minute in ticks_min:
        until = int(round(minute * 60 * config.sim_hz))
        t0 = time.perf_counter()
        while steps < until:
            world.step()
            supervisor.after_step(world)
            steps += 1
        step_s += time.perf_counter() - t0
        saves, restores, world_saves = [], [], []
        for _ in range(REPEATS):
            t0 = time.perf_counter()
            saved_world = world.get_state()
            world_saves.append(time.perf_counter() - t0)
            saved = saved_world, supervisor.get_state()
            saves.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            target.set_state(saved[0])
            spare_supervisor.set_state(saved[1])
            restores.append(time.perf_counter() - t0)
        rows.append({"tick_min": minute, "vehicles": len(world.vehicles), "events": len(supervisor.events),
                     "save_ms": round(1000 * statistics.median(saves), 2),
                     "world_save_ms": round(1000 * statistics.median(world_saves), 2),
                     "restore_ms": round(1000 * statistics.median(restores), 2),
                     "step_ms": round(1000 * step_s / max(steps, 1), 3)})
    return rows


def run_forks_benchmark(minutes: float = 20.0, json_path: Path | None = None) -> dict[str, Any]:
    console = Console()
    ticks = sorted({round(minutes * f, 2) for f in (0.05, 0.25, 0.5, 1.0)})
    results = {}
    table = Table(title="a fork's cost: save (get_state) and restore (set_state) of world + supervisor [ms]")
    for column in ("scenario", "tick [min]", "vehicles", "supervisor events", "save", "of it the world's", "restore",
                   "one physics step"):
        table.add_column(column, justify="right" if column != "scenario" else "left")
    for name, scenario in scenarios().items():
        with console.status(f"{name}: running {minutes:g} simulated minutes"):
            rows = measure(scenario, ticks)
        results[name] = rows
        for row in rows:
            table.add_row(name, f"{row['tick_min']:g}", str(row["vehicles"]), str(row["events"]),
                          f"{row['save_ms']:.1f}", f"{row['world_save_ms']:.1f}", f"{row['restore_ms']:.1f}",
                          f"{row['step_ms']:.2f}")
    console.print(table)
    if json_path:
        Path(json_path).write_text(json.dumps(results, indent=2) + "\n")
    return results

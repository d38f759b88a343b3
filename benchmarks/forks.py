"""Cost of a fork: saving the world and its supervisor (``get_state``) and restoring them into
another world (``set_state``) at later and later ticks, against stepping the world. The
``intersection + LLM humans`` row saves and restores the whole episode (``Episode.get_state``):
world, supervisor and the scenario's LLM humans (a scripted model, so the model's speed is not
measured) with their memories (hashed embeddings) and pending decisions.

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


def _episode(config: Any, humans: bool) -> Any:
    from agents.supervisor.supervisor import Supervisor, SupervisorConfig
    from envs.world import World
    from twin.episode import Episode

    world = World(config)
    if not humans:
        return Episode(world, supervisor=Supervisor(config.supervisor))
    from agents.humans.population import Population
    from agents.llm.scripted import ScriptedClient
    from memory.embedding import HashEmbedding
    from memory.stream import MemoryStore
    from twin import assemble

    population = Population(world, config.humans, client=ScriptedClient(),
                            memory=MemoryStore(None, embedding=HashEmbedding()), seed=config.seed)
    return Episode(world, population, assemble.supervisor(config, population))


def measure(scenario: str, ticks_min: list[float], humans: bool = False) -> list[dict[str, Any]]:
    """Save and restore times [ms] of the episode (world, supervisor, with ``humans`` the LLM
    humans too) at each of ``ticks_min``."""
    from twin.scenario import load_scenario

    config = load_scenario(scenario, {"ego.controlled": 0, "supervisor.foresight.futures": 0,  # forks, not foresight
                                      **({"humans.memory.embedding": "hash"} if humans else {"humans": {}})})
    episode, target = _episode(config, humans), _episode(config, humans)
    rows = []
    step_s = 0.0
    steps = 0
    for minute in ticks_min:
        until = int(round(minute * 60 * config.sim_hz))
        t0 = time.perf_counter()
        while steps < until:
            episode.step()
            steps += 1
        step_s += time.perf_counter() - t0
        saves, restores, world_saves = [], [], []
        for _ in range(REPEATS):
            t0 = time.perf_counter()
            episode.world.get_state()
            world_saves.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            saved = episode.get_state()
            saves.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            target.set_state(saved)
            restores.append(time.perf_counter() - t0)
        memories = episode.population.memory.count() if humans else 0
        rows.append({"tick_min": minute, "vehicles": len(episode.world.vehicles),
                     "events": len(episode.supervisor.events), "memories": memories,
                     "save_ms": round(1000 * statistics.median(saves), 2),
                     "world_save_ms": round(1000 * statistics.median(world_saves), 2),
                     "restore_ms": round(1000 * statistics.median(restores), 2),
                     "step_ms": round(1000 * step_s / max(steps, 1), 3)})
    for e in (episode, target):
        e.close()
    return rows


def run_forks_benchmark(minutes: float = 20.0, json_path: Path | None = None) -> dict[str, Any]:
    console = Console()
    ticks = sorted({round(minutes * f, 2) for f in (0.05, 0.25, 0.5, 1.0)})
    results = {}
    table = Table(title="a fork's cost: save (get_state) and restore (set_state) of the episode [ms]")
    for column in ("scenario", "tick [min]", "vehicles", "supervisor events", "memories", "save", "the world's save",
                   "restore", "one step"):
        table.add_column(column, justify="right" if column != "scenario" else "left")
    cases = [(name, scenario, False) for name, scenario in scenarios().items()]
    cases.insert(2, ("intersection + LLM humans", "intersection", True))
    for name, scenario, humans in cases:
        with console.status(f"{name}: running {minutes:g} simulated minutes"):
            rows = measure(scenario, ticks, humans)
        results[name] = rows
        for row in rows:
            table.add_row(name, f"{row['tick_min']:g}", str(row["vehicles"]), str(row["events"]),
                          str(row["memories"]), f"{row['save_ms']:.1f}", f"{row['world_save_ms']:.1f}", f"{row['restore_ms']:.1f}",
                          f"{row['step_ms']:.2f}")
    console.print(table)
    if json_path:
        Path(json_path).write_text(json.dumps(results, indent=2) + "\n")
    return results

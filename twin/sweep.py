"""``run.py sweep``: one scenario over a grid of its fields and a list of seeds, run in local
processes or on a Ray cluster (``compute``); per grid point the collisions, red-light runs and
the supervisor's events.

Every run is the world and its supervisor without the scenario's persona humans; the grid key
``persona`` puts rule-based humans of each persona at the wheel instead (their traits set their
driving; no model: LLM humans would make a sweep a benchmark of the model). Results do not depend
on the number of workers or the executor: each run is seeded by its own grid point and seed.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from typing import Any, Callable

from compute import describe, run_jobs


def parse_grid(items: list[str]) -> dict[str, list[Any]]:
    """``key=v1,v2,...`` items as {field: values}; values are read as YAML (numbers, booleans)."""
    import yaml

    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key or not values:
            raise ValueError(f"--grid {item!r}: expected KEY=V1,V2,... (e.g. drivers.signal_compliance=0.6,0.8)")
        grid[key.strip()] = [yaml.safe_load(v) for v in values.split(",")]
    return grid


PERSONA = "persona"  # a grid key of its own: persona_count rule-based humans of that persona, each at a wheel


def jobs(scenario: str, grid: dict[str, list[Any]], seeds: list[int], minutes: float,
         persona_count: int = 4) -> list[tuple]:
    """(scenario, overrides, minutes) for every grid point and seed, checked before anything runs.
    A ``persona`` key makes the scenario's drivers ``persona_count`` humans of that persona, driving
    by its traits (no model), each embodying the next car that enters."""
    from twin.scenario import load_scenario

    if PERSONA in grid:
        _check_personas(grid[PERSONA])
    keys = list(grid)
    out = []
    for combo in itertools.product(*(grid[k] for k in keys)) if keys else [()]:
        point = dict(zip(keys, combo))
        load_scenario(scenario, _overrides(point, persona_count))  # a typo in a field fails here, naming it
        out += [(scenario, {**point, "seed": seed}, minutes, persona_count) for seed in seeds]
    return out


def _check_personas(names: list[Any]) -> None:
    from agents.humans.persona import PersonaError, get_persona, load_personas

    library = load_personas(strict=False)
    for name in names:
        persona = get_persona(str(name), library)  # an unknown one raises PersonaError naming the library's
        if persona.role != "driver":
            raise PersonaError(f"--grid persona={name}: a {persona.role}, not a driver")


def _overrides(point: dict[str, Any], persona_count: int) -> dict[str, Any]:
    # a sweep counts events and alerts, not their triage: no futures at alerts unless the grid asks
    base = {"ego.controlled": 0, "humans": {}, "supervisor.foresight.futures": 0}
    fields = {k: v for k, v in point.items() if k != PERSONA}
    if PERSONA in point:
        base["humans.drivers"] = [{"persona": str(point[PERSONA]), "count": persona_count, "llm": False}]
    return {**base, **fields}


def run_one(scenario: str, overrides: dict[str, Any], minutes: float, persona_count: int = 4) -> dict[str, Any]:
    """One run of the sweep: its overrides and what happened in it."""
    from agents.supervisor.supervisor import Supervisor
    from envs.world import World
    from twin import assemble
    from twin.episode import Episode
    from twin.scenario import load_scenario

    config = load_scenario(scenario, _overrides(overrides, persona_count))
    world, supervisor = World(config), Supervisor(config.supervisor)
    episode = Episode(world, assemble.population(world, config, rule_only=True), supervisor)
    for _ in range(int(round(minutes * 60 * config.sim_hz))):
        episode.step()
    kinds = Counter(e.kind for e in world.events)
    return {"overrides": overrides, "collisions": kinds["collision"], "red_light": kinds["red_light"],
            "off_road": kinds["off_road"], "events": dict(Counter(e.category for e in supervisor.events)),
            "alerts": len(supervisor.alerts), "vehicles_entered": world.stats["vehicles_entered"]}


def sweep(scenario: str, grid: dict[str, list[Any]], seeds: list[int], minutes: float, workers: int = 1,
          progress: Callable[[int, int], None] | None = None, ray: str | None = None,
          persona_count: int = 4) -> dict[str, Any]:
    """Every run of the grid and seeds, grouped by grid point, and the runs per minute of wall time;
    in ``workers`` local processes, or on the Ray cluster at ``ray`` (``"local"``: started here).
    A ``persona`` grid key sweeps over who drives (``jobs``)."""
    todo = jobs(scenario, grid, seeds, minutes, persona_count)
    start = time.perf_counter()
    results = run_jobs(run_one, todo, workers=workers, ray=ray, progress=progress)
    wall = time.perf_counter() - start
    points: dict[str, dict[str, Any]] = {}
    for r in results:
        key = ", ".join(f"{k}={v}" for k, v in r["overrides"].items() if k != "seed") or "(as configured)"
        p = points.setdefault(key, {"runs": 0, "collisions": 0, "red_light": 0, "alerts": 0})
        p["runs"] += 1
        for name in ("collisions", "red_light", "alerts"):
            p[name] += r[name]
    return {"scenario": scenario, "minutes": minutes, "workers": workers, "executor": describe(workers, ray),
            "runs": len(results), "wall_s": round(wall, 2),
            "runs_per_minute": round(60 * len(results) / wall, 2) if wall else None, "points": points, "results": results}

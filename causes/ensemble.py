"""Ensembles of futures: from one saved moment, K futures that differ only where the twin is
uncertain, and the probability of a collision in the next seconds.

Each future restores the saved world (``World.get_state``) and then draws its own:

- random streams (arrivals, who runs a red light among new drivers, sensor noise): reseeded;
- behaviour parameters of every human driver: time headway, reaction time, desired speed
  factor and minimum gap each times ``exp(N(0, BEHAVIOUR_SD))``; what the twin knows of a
  driver is a prior, not the person.

It runs ``horizon_s`` and reports whether a collision happened (and which actors), and whether
a near miss did (``envs.state.near_miss``). Futures run in local processes (``workers``); the
probability comes with a Wilson 95% interval, and the actor most often in a collision is named.
"""

from __future__ import annotations

import math
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

BEHAVIOUR_SD = 0.1  # sd of the log of each perturbed behaviour parameter (about +-10%)
PERTURBED = ("headway", "reaction_time", "speed_factor", "min_gap")
Z95 = 1.96


@dataclass(frozen=True)
class Outcome:
    """One future."""

    seed: int
    collision: bool
    collision_s: float | None  # [s] world time of its first collision
    actors: tuple[int, ...]  # of its first collision
    near_miss: bool


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial share."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def perturb(world: Any, seed: int, sd: float = BEHAVIOUR_SD) -> None:
    """Give ``world`` its own random streams and drivers drawn around their parameters."""
    from envs.actors import HUMAN

    world.rng.bit_generator.state = np.random.PCG64([seed, 1]).state  # shared by arrivals and the schedule
    world._sensor_rng.bit_generator.state = np.random.PCG64([seed, 2]).state
    if sd <= 0 or not len(world.vehicles):
        return
    veh = world.vehicles
    draws = np.random.default_rng([seed, 3]).normal(0.0, sd, (len(PERTURBED), len(veh)))
    human = veh.driver == HUMAN
    for k, name in enumerate(PERTURBED):
        column = getattr(veh, name)
        column[human] = column[human] * np.exp(draws[k][human])


def run_future(saved: Any, seed: int, horizon_s: float, sd: float = BEHAVIOUR_SD) -> Outcome:
    """One future of ``saved`` (a ``World.get_state``) with its own ``seed``."""
    from envs.state import near_miss
    from envs.world import World

    world = World.from_state(saved)
    perturb(world, seed, sd)
    until = world.time + horizon_s
    missed = False
    veh = world.vehicles
    while world.time < until - 1e-9:
        for event in world.step():
            if event.kind == "collision":
                return Outcome(seed, True, round(event.time, 3), tuple(sorted(event.actors)), missed)
        veh = world.vehicles
        has = world.leader >= 0
        if has.any() and not missed:
            closing = veh.v[has] - veh.v[world.leader[has]]
            missed = bool(near_miss(world.leader_gap[has], closing).any())
    return Outcome(seed, False, None, (), missed)


def _run(args: tuple) -> Outcome:
    return run_future(*args)


def ensemble(saved: Any, futures: int = 20, horizon_s: float = 10.0, seed: int = 0, workers: int | None = 1,
             sd: float = BEHAVIOUR_SD) -> dict[str, Any]:
    """``futures`` futures of ``saved``: the collision and near-miss probabilities with their
    95% intervals, the actors most often in a collision, and every future's outcome."""
    seeds = [seed * 100_003 + k for k in range(futures)]
    jobs = [(saved, s, horizon_s, sd) for s in seeds]
    if workers == 1:
        outcomes = [_run(job) for job in jobs]
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            outcomes = list(pool.map(_run, jobs))
    hits = sum(o.collision for o in outcomes)
    close = sum(o.collision or o.near_miss for o in outcomes)
    involved = Counter(a for o in outcomes for a in o.actors)
    return {"time_s": round(saved.time, 3), "horizon_s": horizon_s, "futures": futures,
            "p_collision": hits / futures, "ci95_collision": [round(x, 4) for x in wilson(hits, futures)],
            "p_collision_or_near_miss": close / futures,
            "ci95_collision_or_near_miss": [round(x, 4) for x in wilson(close, futures)],
            "most_involved": [{"actor": a, "futures": n} for a, n in involved.most_common(3)],
            "outcomes": [o.__dict__ for o in outcomes]}

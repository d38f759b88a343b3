"""Futures of a world: continuations of one saved moment that differ only where the twin is uncertain.

Each future restores the saved world (``World.get_state``) and then draws its own:

- random streams (arrivals, who runs a red light among new drivers, sensor noise): ``World.reseed``;
- behaviour parameters of every human driver: time headway, reaction time, desired speed
  factor and minimum gap each times ``exp(N(0, BEHAVIOUR_SD))``; what the twin knows of a
  driver is a prior, not the person.

It runs ``horizon_s`` and reports whether a collision happened (and which actors), and whether a
near miss did (``envs.state.near_miss``). ``outlook`` sums K of them up: the probability of a
collision with its Wilson 95% interval and the actors most often in one. Used by the ensembles of
``run.py ensemble`` and ``explain`` (``causes/``) and by the supervisor's foresight at an alert.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from envs.actors import HUMAN
from envs.state import near_miss

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
    world.reseed(seed)
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
    from envs.world import World

    world = World.from_state(saved)
    perturb(world, seed, sd)
    until = world.time + horizon_s
    missed = False
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


def outlook(outcomes: Sequence[Outcome], horizon_s: float) -> dict[str, Any]:
    """K futures summed up: the collision and near-miss probabilities with their 95% intervals and
    the actors most often in a collision."""
    futures = len(outcomes)
    hits = sum(o.collision for o in outcomes)
    close = sum(o.collision or o.near_miss for o in outcomes)
    involved = Counter(a for o in outcomes for a in o.actors)
    return {"horizon_s": horizon_s, "futures": futures, "collisions": hits,
            "p_collision": hits / futures if futures else 0.0,
            "ci95_collision": [round(x, 4) for x in wilson(hits, futures)],
            "p_collision_or_near_miss": close / futures if futures else 0.0,
            "ci95_collision_or_near_miss": [round(x, 4) for x in wilson(close, futures)],
            "most_involved": [{"actor": a, "futures": n} for a, n in involved.most_common(3)]}

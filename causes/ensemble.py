"""Ensembles of futures: from one saved moment, K futures that differ only where the twin is
uncertain (``envs.futures``: reseeded random streams, drivers drawn around their parameters), and
the probability of a collision in the next seconds.

Futures run in local processes (``workers``) or on a Ray cluster (``ray``, see ``compute``); the
probability comes with a Wilson 95% interval, and the actor most often in a collision is named.
"""

from __future__ import annotations

from typing import Any

from compute import run_jobs
from envs.futures import BEHAVIOUR_SD, Outcome, outlook, run_future


def ensemble(saved: Any, futures: int = 20, horizon_s: float = 10.0, seed: int = 0, workers: int | None = 1,
             sd: float = BEHAVIOUR_SD, ray: str | None = None) -> dict[str, Any]:
    """``futures`` futures of ``saved``: the collision and near-miss probabilities with their
    95% intervals, the actors most often in a collision, and every future's outcome. They run in
    ``workers`` local processes (None: one per core), or on the Ray cluster at ``ray``."""
    seeds = [seed * 100_003 + k for k in range(futures)]
    jobs = [(saved, s, horizon_s, sd) for s in seeds]
    outcomes: list[Outcome] = run_jobs(run_future, jobs, workers=workers, ray=ray)
    return {"time_s": round(saved.time, 3), **outlook(outcomes, horizon_s), "outcomes": [o.__dict__ for o in outcomes]}

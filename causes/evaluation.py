"""How well ``explain`` names injected faults as causes, on the supervisor suite's fault cases.

For every fault case and seed, the case runs for the suite's duration; each collision in it is
explained (``causes.counterfactual``). The truth comes from a second run of the same case from
t = 0 without any fault: a collision whose pair collides there too would have happened anyway,
the others were caused by the faults. Recall: the caused collisions for which explain names a
fault as but-for; precision: of the collisions where it names a fault as but-for, those caused.
The suite's faults cause every collision of their cases, so ``DECOYS`` adds cases whose
collisions come from behaviour (red-light runners) with a fault that has nothing to do with
them: explain must not name it.

    python run.py evaluate causes [--json F]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from causes.counterfactual import explain_collision

DECOYS = [  # (SuiteCase fields) collisions planted by behaviour, a fault beside them
    {"name": "red_light_runners_and_a_noisy_sensor", "scenario": "intersection",
     "overrides": {"drivers.signal_compliance": 0.67},
     "faults": [{"kind": "sensor_noise", "at_s": 5, "actor": "fastest", "sd_m": 0.3}]},
    {"name": "red_light_runners_and_a_stopped_pedestrian", "scenario": "intersection",
     "overrides": {"drivers.signal_compliance": 0.67, "demand.pedestrians_per_hour": 600},
     "faults": [{"kind": "pedestrian_stop", "at_s": 10, "actor": "crossing", "duration_s": 5}]},
]


def _collisions(config: Any, duration_s: float) -> list[dict]:
    from envs.world import World

    world = World(config)
    steps = int(round(duration_s * config.sim_hz))
    events = []
    for _ in range(steps):
        events += [{"time_s": e.time, "actors": sorted(e.actors)} for e in world.step() if e.kind == "collision"]
    return events


def evaluate_causes(suite_path: Path | None = None, seeds: list[int] | None = None,
                    progress: Callable[[str], None] | None = None, futures: int = 0) -> dict[str, Any]:
    from agents.supervisor.suite import SUITE_PATH, SuiteCase, _overrides, load_suite
    from twin.scenario import load_scenario

    suite = load_suite(suite_path or SUITE_PATH)
    rows = []
    for case in [*suite.cases, *(SuiteCase(**decoy) for decoy in DECOYS)]:
        if not case.faults:
            continue
        for seed in seeds or case.seeds or suite.seeds:
            config = load_scenario(case.scenario, _overrides(case, seed))
            duration = case.duration_s or suite.duration_s
            clean = load_scenario(case.scenario, {**_overrides(case, seed), "faults": []})
            anyway = {tuple(c["actors"]) for c in _collisions(clean, duration)}
            for k, collision in enumerate(_collisions(config, duration)):
                result = explain_collision(config, k, collision, 10.0, 15.0, futures)
                named = [c["cause"] for c in result["causes"] if c["cause"].startswith("fault:")
                         and c["class"] == "but_for" and "+" not in c["cause"]]
                caused = tuple(collision["actors"]) not in anyway
                prevented = [c["prevented"] for c in result["causes"] if c["cause"] in named]
                rows.append({"case": case.name, "seed": seed, "time_s": collision["time_s"],
                             "actors": collision["actors"], "caused_by_fault": caused, "fault_named": bool(named),
                             "named": named, "prevented": prevented, "happens_in": result.get("happens_in")})
                if progress:
                    progress(f"{case.name} seed {seed}: collision at {collision['time_s']:.1f} s "
                             f"{'caused' if caused else 'would happen anyway'}, fault named: {bool(named)}")
    caused = [r for r in rows if r["caused_by_fault"]]
    named = [r for r in rows if r["fault_named"]]
    shares = [int(p.split("/")[0]) / int(p.split("/")[1]) for r in named for p in r["prevented"] if futures]
    return {"collisions": len(rows), "caused_by_fault": len(caused), "fault_named": len(named),
            "futures": futures, "mean_prevented_share": round(sum(shares) / len(shares), 3) if shares else None,
            "recall": round(sum(r["fault_named"] for r in caused) / len(caused), 3) if caused else None,
            "precision": round(sum(r["caused_by_fault"] for r in named) / len(named), 3) if named else None,
            "rows": rows}

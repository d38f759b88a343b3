"""Does the twin reproduce the described crash? Run a built scenario, read the first collision it
has, check it against the report's facts, and search the uncertain parameters when it does not.

Facts checked (each reproduced or not):

- ``collision``: the striking and struck road users of the report collide;
- ``type``: the crash type, read from the geometry at first contact (headings within 30 degrees:
  rear-end when one is behind the other, else sideswipe; more than 150 degrees apart: head-on;
  between: angle; a pedestrian: pedestrian);
- ``roles``: who struck whom (rear-end: the one behind; angle: the one whose front meets the
  other's side; sideswipe: the one moving sideways; pedestrian: the vehicle);
- ``sequence``: the scripted pre-crash actions all began before the collision, and those that
  stage a step of the report's sequence (a stop, a lane change, a signal run) in its order;
- ``only``: no other collision came first (the run goes on past others' collisions).

The search is optuna's TPE sampler, seeded, over the bounds of :func:`scenarios.build.knobs`, for
at most ``budget`` runs; its objective is the number of facts reproduced, with the smallest
distance between the two road users as a tie-breaker, so it walks towards contact.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from scenarios.build import build, knobs, nominal, unsupported
from scenarios.spec import CrashSpec

FACTS = ("collision", "type", "roles", "sequence", "only")
SAME_DIRECTION_DEG = 30.0
OPPOSITE_DEG = 150.0
log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """One run of a staged crash."""

    values: dict[str, float]
    collided: bool = False
    pair: tuple[str, str] | None = None  # (striking, struck) as the twin saw it, by report id
    crash_type: str | None = None
    time_s: float | None = None
    closest_m: float = math.inf  # [m] nearest the two came (centre to centre)
    reproduced: list[str] = field(default_factory=list)
    not_reproduced: list[str] = field(default_factory=list)

    @property
    def score(self) -> float:
        """Facts reproduced, then nearness (for the search)."""
        return len(self.reproduced) - min(self.closest_m, 100.0) / 100.0

    @property
    def complete(self) -> bool:
        return not self.not_reproduced


def run(spec: CrashSpec, values: dict[str, float], seed: int = 0) -> Outcome:
    """Stage ``spec`` with ``values`` and check the facts."""
    from envs.world import World
    from twin.scenario import load_scenario

    scenario, _ = build(spec, values, seed=seed)
    config = load_scenario(scenario)
    world = World(config)
    names = {actor_id: entry["name"] for actor_id, entry in zip(world.placed_ids, scenario["actors"])}
    outcome = Outcome(values=dict(values))
    pair_ids = set(world.placed_ids[:2])
    first_any = first = None
    steps = int(round(config.duration_s * config.sim_hz))
    for _ in range(steps):
        events = world.step()
        _track_distance(world, outcome)
        for hit in (e for e in events if e.kind == "collision"):
            first_any = first_any or hit
            if set(hit.actors) == pair_ids:
                first = hit
                break
        if first is not None:
            outcome.collided = True
            outcome.time_s = round(first.time, 3)
            outcome.crash_type, striking_id, struck_id = classify(world, first.actors)
            outcome.pair = (names.get(striking_id, str(striking_id)), names.get(struck_id, str(struck_id)))
            break
    if first is None and first_any is not None:  # only others collided: report the first of those
        outcome.collided = True
        outcome.time_s = round(first_any.time, 3)
        outcome.pair = tuple(names.get(i, str(i)) for i in first_any.actors)  # type: ignore[assignment]
    _check(spec, world, scenario, first, first_any, outcome, names)
    return outcome


def _track_distance(world: Any, outcome: Outcome) -> None:
    veh, ped = world.vehicles, world.pedestrians
    points = [(veh.x[r], veh.y[r]) for r in range(len(veh)) if veh.id[r] in world.placed_ids[:2]]
    points += [(ped.x[r], ped.y[r]) for r in range(len(ped)) if ped.id[r] in world.placed_ids[:2]]
    if len(points) == 2:
        outcome.closest_m = min(outcome.closest_m, math.dist(points[0], points[1]))


def classify(world: Any, actors: tuple[int, ...]) -> tuple[str, int, int]:
    """(crash type, striking id, struck id) of a collision between ``actors``, from the geometry now."""
    veh = world.vehicles
    if len(actors) == 2 and not (veh.id == actors[1]).any():  # vehicle and pedestrian
        return "pedestrian", actors[0], actors[1]
    a, b = (int(np.flatnonzero(veh.id == i)[0]) for i in actors)
    diff = abs((math.degrees(veh.heading[a] - veh.heading[b]) + 180.0) % 360.0 - 180.0)

    def ahead(i: int, j: int) -> tuple[float, float]:
        """j's centre in i's frame: along, across [m]."""
        dx, dy = veh.x[j] - veh.x[i], veh.y[j] - veh.y[i]
        c, s = math.cos(veh.heading[i]), math.sin(veh.heading[i])
        return dx * c + dy * s, -dx * s + dy * c

    along_ab, across_ab = ahead(a, b)
    if diff < SAME_DIRECTION_DEG:
        overlap = abs(across_ab) < 0.5 * (veh.width[a] + veh.width[b]) - 0.6
        if overlap:
            return ("rear_end", int(veh.id[a]), int(veh.id[b])) if along_ab > 0 else \
                ("rear_end", int(veh.id[b]), int(veh.id[a]))
        sideways = [abs(float(veh.psi[i])) + abs(float(veh.d[i] - world.network.lane_offset[veh.target_lane[i]]))
                    for i in (a, b)]
        i, j = (a, b) if sideways[0] >= sideways[1] else (b, a)
        return "sideswipe", int(veh.id[i]), int(veh.id[j])
    if diff > OPPOSITE_DEG:
        return "head_on", int(veh.id[a]), int(veh.id[b])

    def front_to_box(i: int, j: int) -> float:
        """Distance [m] from the middle of i's front to j's box (0: inside it)."""
        fx = veh.x[i] + 0.5 * veh.length[i] * math.cos(veh.heading[i])
        fy = veh.y[i] + 0.5 * veh.length[i] * math.sin(veh.heading[i])
        c, s = math.cos(veh.heading[j]), math.sin(veh.heading[j])
        dx, dy = fx - veh.x[j], fy - veh.y[j]
        along, across = dx * c + dy * s, -dx * s + dy * c
        return math.hypot(max(abs(along) - 0.5 * veh.length[j], 0.0), max(abs(across) - 0.5 * veh.width[j], 0.0))

    # the striking one's front is in (or nearest) the other's body
    striker, struck = (a, b) if front_to_box(a, b) <= front_to_box(b, a) else (b, a)
    return "angle", int(veh.id[striker]), int(veh.id[struck])


STEP_OF_FAULT = {"hard_brake": ("stopped", "slowing", "braked"), "lane_change": ("changing_lanes",),
                 "runs_signal": ("ran_signal", "ran_stop_sign")}  # scripted fault -> the report's steps it stages


def _check(spec: CrashSpec, world: Any, scenario: dict, first: Any, first_any: Any, outcome: Outcome,
           names: dict[int, str]) -> None:
    want = (spec.crash.striking, spec.crash.struck)
    facts: dict[str, bool] = {}
    facts["collision"] = first is not None and set(outcome.pair or ()) == set(want)
    facts["type"] = facts["collision"] and outcome.crash_type == spec.crash.type
    facts["roles"] = facts["collision"] and outcome.pair == want
    crash_t = outcome.time_s if first is not None else math.inf
    started = []  # (start time, the report's step index it stages) of each scripted action
    for entry in world.faults.log:
        actor = names.get(entry["actors"][0], "") if entry["actors"] else ""
        steps = [k for k, step in enumerate(spec.sequence)
                 if step.actor == actor and step.action in STEP_OF_FAULT.get(entry["kind"], ())]
        started.append((entry["start_s"], steps[0] if steps else None))
    expected = sum(1 for f in scenario["faults"] if f.get("actor") in (0, 1))
    in_time = len([t for t, _ in started if t <= crash_t]) >= expected
    ordered = [k for _, k in sorted(started, key=lambda item: item[0]) if k is not None]
    facts["sequence"] = facts["collision"] and in_time and ordered == sorted(ordered)
    facts["only"] = facts["collision"] and first_any is first
    for name in FACTS:
        (outcome.reproduced if facts[name] else outcome.not_reproduced).append(_fact_text(name, spec, outcome))


def _fact_text(name: str, spec: CrashSpec, outcome: Outcome) -> str:
    c = spec.crash
    return {"collision": f"{c.striking} and {c.struck} collide",
            "type": f"crash type {c.type.replace('_', '-')}" + (f" (twin: {outcome.crash_type})" if outcome.crash_type and
                                                              outcome.crash_type != c.type else ""),
            "roles": f"{c.striking} strikes {c.struck}",
            "sequence": "the pre-crash actions happen before the collision",
            "only": "no other collision first"}[name]


@dataclass
class Reproduction:
    """The result of staging a crash: the best run, how many runs it took, the parameters used."""

    reproduced: bool
    best: Outcome | None
    runs: int
    why_not: str | None = None
    trials: list[dict[str, Any]] = field(default_factory=list)

    def facts(self, spec: CrashSpec) -> dict[str, list[str]]:
        if self.best is None:
            return {"reproduced": [], "not_reproduced": [_fact_text(n, spec, Outcome(values={})) for n in FACTS]}
        return {"reproduced": self.best.reproduced, "not_reproduced": self.best.not_reproduced}


def reproduce(spec: CrashSpec, budget: int = 60, seed: int = 0,
              progress: Callable[[int, Outcome], None] | None = None,
              plausible: Callable[[dict[str, float]], bool] | None = None) -> Reproduction:
    """Stage ``spec`` at its nominal values; when the crash is not reproduced, search its uncertain
    parameters (optuna TPE, seeded) for at most ``budget`` runs in all. With ``plausible``, a
    reproduction whose parameters it rejects is kept only until a plausible one is found (the
    search goes on for one while the budget lasts)."""
    ok = plausible or (lambda values: True)
    why = unsupported(spec)
    if why:
        return Reproduction(False, None, 0, why_not=why)
    space = knobs(spec)
    best = run(spec, nominal(space), seed=seed)
    trials = [{"values": best.values, "facts": len(best.reproduced), "closest_m": round(best.closest_m, 2)}]
    if progress:
        progress(1, best)
    runs = 1
    if (best.complete and ok(best.values)) or budget <= 1:
        return Reproduction(best.complete, best, runs, trials=trials)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    varied = {name: knob for name, knob in space.items() if knob.high > knob.low}
    study.add_trial(optuna.trial.create_trial(  # the nominal run, already made, tells the sampler where it started
        params={name: knob.nominal for name, knob in varied.items()},
        distributions={name: optuna.distributions.FloatDistribution(k.low, k.high) for name, k in varied.items()},
        value=best.score))
    fixed = {name: knob.nominal for name, knob in space.items() if knob.high <= knob.low}
    while runs < budget:
        trial = study.ask()
        values = {**fixed, **{name: trial.suggest_float(name, k.low, k.high) for name, k in varied.items()}}
        outcome = run(spec, values, seed=seed)
        runs += 1
        study.tell(trial, outcome.score)
        trials.append({"values": {k: round(v, 3) for k, v in values.items()}, "facts": len(outcome.reproduced),
                       "closest_m": round(outcome.closest_m, 2)})
        if progress:
            progress(runs, outcome)
        rank = lambda o: (o.complete and ok(o.values), o.score)  # noqa: E731 - plausible reproductions first
        if rank(outcome) > rank(best):
            best = outcome
        if best.complete and ok(best.values):
            break
    return Reproduction(best.complete, best, runs, trials=trials)

"""Why a collision happened, by rerunning the world without each candidate cause.

For each collision of a run, the world is rebuilt from the run's scenario, run to
``before_s`` before the collision and saved (``World.get_state``). From there it is forked once
unchanged, which must reproduce the collision, and once per candidate cause taken away:

- each injected fault or scripted manoeuvre active at the fork or starting before the
  collision: not injected (``fault:KIND#N``; one that ended before the fork is not a candidate);
- a slippery road: dry (``road_friction``);
- each involved driver: a careful one (``driver:ID``: time headway ``CAREFUL_HEADWAY_S``,
  reaction ``CAREFUL_REACTION_S``, obeys signals, the speed limit at most).

A cause is ``but_for`` when the collision of the same pair does not happen in its fork within
``horizon_s``, ``contributing`` when it still happens but at least ``SHIFT_S`` later, else
``irrelevant``. When no single cause is but-for, pairs of causes are taken away together. With
``futures`` K, each cause is also taken away in K futures of the ensemble (other random streams,
drivers drawn around their parameters): "prevents the collision in 9 of 10 futures" says how
robust the cause is, beyond the one exact counterfactual.

Scope: runs whose scenario has no persona humans (the supervisor suite's cases, staged crashes
of ``run.py scenario``). LLM humans and their memories have no saved state yet, so their runs
are refused with that reason.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CAREFUL_HEADWAY_S = 2.0  # [s]
CAREFUL_REACTION_S = 0.3  # [s]
SHIFT_S = 0.5  # [s] a collision this much later counts as changed by the cause
DRY = 1.0  # tyre-road friction of a dry road in the twin's scale


class ExplainError(ValueError):
    """A run that cannot be explained; the message says why."""


@dataclass
class Cause:
    cause: str
    what: str
    cls: str = "irrelevant"  # but_for, contributing, irrelevant
    prevented: str = "0/1"
    evidence: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"cause": self.cause, "what": self.what, "class": self.cls, "prevented": self.prevented,
                "evidence_runs": self.evidence}


def load_run(run_dir: str | Path) -> tuple[Any, list[dict]]:
    """The scenario and the collisions of a run directory."""
    from twin.scenario import load_scenario

    run_dir = Path(run_dir)
    if not (run_dir / "scenario.yaml").exists() or not (run_dir / "events.jsonl").exists():
        raise ExplainError(f"{run_dir}: not a run directory (scenario.yaml and events.jsonl needed)")
    config = load_scenario(run_dir / "scenario.yaml")
    humans = config.humans
    if any(slot.count for slot in (*humans.drivers, *humans.pedestrians, *humans.operators)):
        raise ExplainError(f"{run_dir}: its scenario has persona humans, whose state (memories, pending decisions) "
                           "cannot be saved yet; explain runs without them (humans: {})")
    collisions = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines() if line.strip()]
    return config, [e for e in collisions if e.get("kind") == "collision"]


def explain(run_dir: str | Path, incident: int | None = None, before_s: float = 10.0,
            horizon_s: float = 15.0, futures: int = 0) -> dict[str, Any]:
    """The causes of each collision of ``run_dir`` (or of collision number ``incident``), as JSON."""
    config, collisions = load_run(run_dir)
    if incident is not None:
        if not 0 <= incident < len(collisions):
            raise ExplainError(f"--incident {incident}: the run has {len(collisions)} collisions (0 to "
                               f"{len(collisions) - 1})")
        chosen = [(incident, collisions[incident])]
    else:
        chosen = list(enumerate(collisions))
    return {"incidents": [explain_collision(config, k, event, before_s, horizon_s, futures) for k, event in chosen]}


def explain_collision(config: Any, k: int, event: dict, before_s: float = 10.0, horizon_s: float = 15.0,
                      futures: int = 0) -> dict[str, Any]:
    """The causes of collision number ``k`` (``event``: ``time_s`` [s], ``actors``) of a run of
    ``config``, forking ``before_s`` [s] before it and watching each fork ``horizon_s`` [s] on.
    With ``futures`` K > 0, each cause is also taken away in K futures that differ where the twin
    is uncertain (``causes.ensemble``): ``prevented`` is then "k/K", how robust the cause is, and
    ``happens_in`` says in how many of K futures with nothing taken away the collision happens."""
    from envs.world import World

    time_s, pair = float(event["time_s"]), tuple(sorted(event["actors"]))
    world = World(config)
    start = max(time_s - before_s, 0.0)
    while world.time < start - 1e-9:
        world.step()
    saved = world.get_state()
    base = _fork(config, saved, pair, horizon_s + (time_s - world.time), [])
    if base["collided_at_s"] is None or abs(base["collided_at_s"] - time_s) > 2e-3:  # (times kept to 1 ms)
        raise ExplainError(f"collision {k} at {time_s:.2f} s is not reproduced by rerunning the run's scenario "
                           f"(got {base['collided_at_s']}): was it recorded with other code or humans?")
    candidates = _candidates(config, world, pair, time_s)
    seconds = horizon_s + (time_s - world.time)
    causes = []
    for cause in candidates:
        run = _fork(config, saved, pair, seconds, [cause])
        causes.append(_classified(cause, run, time_s))
        if futures:
            hits = sum(_fork(config, saved, pair, seconds, [cause], seed=n)["collided_at_s"] is not None
                       for n in range(1, futures + 1))
            cause.prevented = f"{futures - hits}/{futures}"
    if not any(c.cls == "but_for" for c in causes):
        for a, b in itertools.combinations(candidates, 2):
            run = _fork(config, saved, pair, horizon_s + (time_s - world.time), [a, b])
            combined = _classified(Cause(f"{a.cause} + {b.cause}", f"{a.what}; and {b.what}"), run, time_s)
            if combined.cls != "irrelevant":
                causes.append(combined)
    result = {"id": k, "kind": "collision", "time_s": time_s, "actors": list(pair), "fork_at_s": round(world.time, 3),
              "causes": [c.to_dict() for c in causes]}
    if futures:
        hits = sum(_fork(config, saved, pair, seconds, [], seed=n)["collided_at_s"] is not None
                   for n in range(1, futures + 1))
        result["happens_in"] = f"{hits}/{futures}"
    return result


def _candidates(config: Any, world: Any, pair: tuple[int, ...], time_s: float) -> list[Cause]:
    causes = []
    injector = world.faults
    for n, fault in enumerate(injector.faults):  # (one that ended before the fork cannot be taken away there)
        if fault.at_s <= time_s and injector.live(n):
            who = f" on {fault.actor}" if hasattr(fault, "actor") else ""
            causes.append(Cause(f"fault:{fault.kind}#{n}", f"{fault.kind} from {fault.at_s:g} s{who}"))
    if world.friction < DRY:
        causes.append(Cause("road_friction", f"road friction {world.friction:g} (dry is {DRY:g})"))
    for actor in pair:
        if (world.vehicles.id == actor).any():
            causes.append(Cause(f"driver:{actor}", f"vehicle {actor}'s driving (a careful driver instead)"))
    return causes


def _fork(config: Any, saved: Any, pair: tuple[int, ...], seconds: float, removed: list[Cause],
          seed: int | None = None) -> dict[str, Any]:
    """Run a fork of ``saved`` with ``removed`` taken away (and, with a ``seed``, the twin's
    uncertain parts drawn anew: ``causes.ensemble.perturb``); when (if) ``pair`` collides."""
    from envs.world import World

    world = World.from_state(saved)
    for cause in removed:
        _take_away(world, cause.cause)
    if seed is not None:
        from causes.ensemble import perturb

        perturb(world, seed)
    until = world.time + seconds
    while world.time < until - 1e-9:
        for event in world.step():
            if event.kind == "collision" and tuple(sorted(event.actors)) == pair:
                return {"removed": [c.cause for c in removed], "collided_at_s": round(event.time, 3)}
    return {"removed": [c.cause for c in removed], "collided_at_s": None}


def _take_away(world: Any, cause: str) -> None:
    if cause.startswith("fault:"):
        world.faults.remove(int(cause.rsplit("#", 1)[1]))
    elif cause == "road_friction":
        world.set_friction(DRY)
    elif cause.startswith("driver:"):
        actor = int(cause.split(":", 1)[1])
        world.set_vehicle_params(actor, headway=CAREFUL_HEADWAY_S, reaction_time=CAREFUL_REACTION_S, compliance=1.0,
                                 runs_red=False, speed_factor=1.0)


def _classified(cause: Cause, run: dict[str, Any], time_s: float) -> Cause:
    cause.evidence = [run]
    when = run["collided_at_s"]
    if when is None:
        cause.cls, cause.prevented = "but_for", "1/1"
    elif when - time_s >= SHIFT_S:
        cause.cls = "contributing"
    return cause

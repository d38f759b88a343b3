"""Why a collision happened, by rerunning the world without each candidate cause.

For each collision of a run, the run's episode (world, humans with their memories, supervisor
where it acts on the world) is rebuilt from the run's scenario and recorded model answers, run
to ``before_s`` before the collision and saved (``Episode.get_state``). From there it is forked
once unchanged, which must reproduce the collision, and once per candidate cause taken away:

- each injected fault or scripted manoeuvre active at the fork or starting before the
  collision: not injected (``fault:KIND#N``; one that ended before the fork is not a candidate);
- a slippery road: dry (``road_friction``);
- the signal timing at a signalised junction: all-red clearances ``ALL_RED_EXTRA_S`` longer
  (``signal_timing``);
- each involved driver without a persona: a careful one (``driver:ID``: time headway
  ``CAREFUL_HEADWAY_S``, reaction ``CAREFUL_REACTION_S``, obeys signals, the speed limit at most);
- each involved vehicle braking a reaction time earlier: a reaction time of ``QUICK_REACTION_S``
  (``reaction:ID``);
- each involved persona human: a careful persona instead (``persona:IDENTITY``), each of its
  traits that is worse than ``NEUTRAL_TRAITS`` set to the neutral value
  (``trait:IDENTITY:distraction``, ``risk_tolerance``, ``patience``), and, for an LLM human that
  decided before the collision, the persona's rule-based intent instead of the model's decisions
  from the fork on (``llm:IDENTITY``).

A cause is ``but_for`` when the collision of the same pair does not happen in its fork within
``horizon_s``, ``contributing`` when it still happens but at least ``SHIFT_S`` later, else
``irrelevant``. When no single cause is but-for, pairs of causes are taken away together. With
``futures`` K, each cause is also taken away in K futures of the ensemble (other random streams,
drivers drawn around their parameters): "prevents the collision in 9 of 10 futures" says how
robust the cause is, beyond the one exact counterfactual.

LLM humans decide in the forks through the run's recorded answers (``llm_cache.jsonl``): an
unchanged situation gets the recorded answer, a changed one asks the scenario's model (or,
``replay_only``, falls back to the persona's rule and is counted as a ``replay_miss``).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

CAREFUL_HEADWAY_S = 2.0  # [s]
CAREFUL_REACTION_S = 0.3  # [s]
QUICK_REACTION_S = 0.1  # [s] "braking a reaction time earlier": the shortest reaction the driver model takes
SHIFT_S = 0.5  # [s] a collision this much later counts as changed by the cause
MAX_PAIRED = 10  # candidates tried in pairs when none alone is but-for (faults, road and signals come first)
DRY = 1.0  # tyre-road friction of a dry road in the twin's scale
ALL_RED_EXTRA_S = 2.0  # [s] added to each all-red clearance for the signal-timing counterfactual
CAREFUL_PERSONA = {"driver": "cautious_elderly", "pedestrian": "elderly_pedestrian"}
NEUTRAL_TRAITS = {"distraction": 0.1, "risk_tolerance": 0.3, "patience": 0.7}  # worse: above, above, below


CAUSES_FILE = "causes.json"  # a run directory's explained incidents (run.py explain, the inspector's Why?)

log = logging.getLogger(__name__)


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
    collisions = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines() if line.strip()]
    return config, [e for e in collisions if e.get("kind") == "collision"]


def read_causes(run_dir: Path) -> dict[int, dict]:
    """The incidents of ``run_dir/causes.json`` by id ({} when there is none or it is unreadable)."""
    path = Path(run_dir) / CAUSES_FILE
    if not path.exists():
        return {}
    try:
        incidents = json.loads(path.read_text())["incidents"]
        return {int(i["id"]): i for i in incidents}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("%s is not explain's JSON (%s); explaining again", path, exc)
        return {}


def write_causes(run_dir: Path, incidents: dict[int, dict]) -> None:
    """Write ``incidents`` to ``run_dir/causes.json`` (sorted by id; replaced in one rename)."""
    path = Path(run_dir) / CAUSES_FILE
    tmp = path.with_name(CAUSES_FILE + ".tmp")
    tmp.write_text(json.dumps({"incidents": [incidents[k] for k in sorted(incidents)]}, indent=2))
    os.replace(tmp, path)


class Forks:
    """Episodes of one run's scenario, built alike for the main rerun and every fork: the world,
    its humans (one model client over the run's recorded answers, a fresh in-memory store per
    episode for their memories) and the supervisor where it acts on the world (alerts reaching
    operators). ``close`` removes the temporary copy of the answers."""

    def __init__(self, config: Any, run_dir: Path | None = None, model_client: Any = None,
                 replay_only: bool = False, watch_hazards: bool = False) -> None:
        import tempfile

        from agents.llm.runner import ModelRunner
        from twin import assemble

        memory = config.humans.memory
        if config.humans.llm_count and memory.enabled and memory.persist and memory.directory:
            raise ExplainError("the run's humans remember earlier episodes (humans.memory.persist): their memories "
                               "at the run's start are not recorded, so the run cannot be rebuilt to explain it; "
                               "record it with humans.memory.persist off")
        self.config, self.run_dir = config, run_dir
        self.client = self.runner = self.embedding = None
        self._temp = tempfile.TemporaryDirectory(prefix="explain-")
        humans = config.humans
        self.supervised = bool(config.supervisor.enabled and config.supervisor.alert_operator
                               and any(slot.count for slot in humans.operators))
        if humans.llm_count or (self.supervised and config.supervisor.asks_model):
            cache = Path(self._temp.name) / "llm_cache.jsonl"
            recorded = run_dir / "llm_cache.jsonl" if run_dir is not None else None
            if recorded is not None and recorded.exists():
                shutil.copyfile(recorded, cache)  # the forks' new answers never enter the run's own cache
            self.client, self.config = assemble.model_client(config, cache, run_dir if replay_only else None,
                                                             model_client)
            self.runner = ModelRunner(self.client, humans.model.max_in_flight)
        if humans.llm_count and humans.memory.enabled:
            from memory.embedding import HashEmbedding, MiniLMEmbedding

            self.embedding = MiniLMEmbedding() if humans.memory.embedding == "minilm" else HashEmbedding()
        if watch_hazards and not self.supervised:  # a supervisor that only watches: rules, no futures, no model
            sup = self.config.supervisor
            quiet = sup.model_copy(update={"triage": "template", "foresight": sup.foresight.model_copy(update={"futures": 0})})
            self.config = self.config.model_copy(update={"supervisor": quiet})
            self.supervised = True
        self.episode_number = None
        if run_dir is not None and (run_dir / "summary.json").exists():
            self.episode_number = json.loads((run_dir / "summary.json").read_text()).get("episode")

    def episode(self) -> Any:
        """A new episode of the scenario at t = 0."""
        from envs.world import World
        from twin import assemble
        from twin.episode import Episode

        world = World(self.config)
        memory = None
        if self.embedding is not None:
            from memory.stream import MemoryStore

            memory = MemoryStore(None, embedding=self.embedding)
        situations = assemble.situation_cache(self.config, None, self.run_dir) if self.run_dir is not None else None
        population = assemble.population(world, self.config, self.client, memory, False, situations, self.runner,
                                         episode=self.episode_number)
        supervisor = assemble.supervisor(self.config, population, self.client, self.runner) if self.supervised else None
        return Episode(world, population, supervisor)

    def close(self) -> None:
        self._temp.cleanup()


def high_hazards(run_dir: Path) -> list[dict]:
    """The run's high-severity hazards between two actors (``hazards.jsonl``) as incidents to explain:
    ``kind``, ``time_s`` (their start), ``actors``."""
    path = Path(run_dir) / "hazards.jsonl"
    events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    return [{"kind": e["kind"], "time_s": e["start_s"], "actors": e["actors"]} for e in events
            if e.get("category") == "hazard" and e.get("severity") == "high" and len(e.get("actors", [])) == 2]


def explain(run_dir: str | Path, incident: int | None = None, before_s: float = 10.0,
            horizon_s: float = 15.0, futures: int = 0, model_client: Any = None,
            replay_only: bool = False, hazards: bool = False) -> dict[str, Any]:
    """The causes of each collision of ``run_dir`` (and with ``hazards``, of each high-severity hazard
    between two actors, numbered after the collisions), or of incident number ``incident``, as JSON."""
    run_dir = Path(run_dir)
    config, collisions = load_run(run_dir)
    incidents = [{"kind": "collision", **e} for e in collisions] + (high_hazards(run_dir) if hazards else [])
    if incident is not None:
        if not 0 <= incident < len(incidents):
            what = "collisions and high hazards" if hazards else "collisions"
            raise ExplainError(f"--incident {incident}: the run has {len(incidents)} {what} (0 to "
                               f"{len(incidents) - 1})")
        chosen = [(incident, incidents[incident])]
    else:
        chosen = list(enumerate(incidents))
    forks = Forks(config, run_dir, model_client, replay_only, watch_hazards=hazards)
    try:
        return {"incidents": [explain_collision(config, k, event, before_s, horizon_s, futures, forks)
                              for k, event in chosen]}
    finally:
        forks.close()


def explain_collision(config: Any, k: int, event: dict, before_s: float = 10.0, horizon_s: float = 15.0,
                      futures: int = 0, forks: Forks | None = None) -> dict[str, Any]:
    """The causes of collision number ``k`` (``event``: ``time_s`` [s], ``actors``) of a run of
    ``config``, forking ``before_s`` [s] before it and watching each fork ``horizon_s`` [s] on.
    With ``futures`` K > 0, each cause is also taken away in K futures that differ where the twin
    is uncertain (``causes.ensemble``): ``prevented`` is then "k/K", how robust the cause is, and
    ``happens_in`` says in how many of K futures with nothing taken away the collision happens.
    ``forks`` builds the episodes (default: the scenario's own, without a recorded run)."""
    own = forks is None
    forks = forks or Forks(config)
    try:
        return _explained(forks, k, event, before_s, horizon_s, futures)
    finally:
        if own:
            forks.close()


def _explained(forks: Forks, k: int, event: dict, before_s: float, horizon_s: float, futures: int) -> dict[str, Any]:
    time_s, pair = float(event["time_s"]), tuple(sorted(event["actors"]))
    kind = event.get("kind", "collision")
    if kind != "collision" and not forks.supervised:
        raise ExplainError(f"incident {k} is a {kind} hazard: explaining hazards needs forks with a supervisor "
                           "(Forks(..., watch_hazards=True))")
    main = forks.episode()
    try:
        return _explained_from(forks, main, k, time_s, (kind, pair), before_s, horizon_s, futures)
    finally:
        main.close()


def _explained_from(forks: Forks, main: Any, k: int, time_s: float, incident: tuple[str, tuple[int, ...]],
                    before_s: float, horizon_s: float, futures: int) -> dict[str, Any]:
    kind, pair = incident
    start = max(time_s - before_s, 0.0)
    while main.world.time < start - 1e-9:
        main.step()
    saved = main.get_state()
    seconds = horizon_s + (time_s - main.world.time)
    at_collision: list[Any] = []
    base = _fork(forks, saved, incident, seconds, [], at_collision=at_collision.append)
    if base["collided_at_s"] is None or abs(base["collided_at_s"] - time_s) > 2e-3:  # (times kept to 1 ms)
        raise ExplainError(f"{kind} {k} at {time_s:.2f} s is not reproduced by rerunning the run's scenario "
                           f"(got {base['collided_at_s']}): was it recorded with other code, humans or answers?")
    candidates = _candidates(main.world, at_collision[0], pair, time_s)
    fork_at = round(main.world.time, 3)
    causes = []
    for cause in candidates:
        run = _fork(forks, saved, incident, seconds, [cause])
        causes.append(_classified(cause, run, time_s))
        if futures:
            hits = sum(_fork(forks, saved, incident, seconds, [cause], seed=n)["collided_at_s"] is not None
                       for n in range(1, futures + 1))
            cause.prevented = f"{futures - hits}/{futures}"
    if not any(c.cls == "but_for" for c in causes):  # overdetermined? pairs of the first MAX_PAIRED candidates
        for a, b in itertools.combinations(candidates[:MAX_PAIRED], 2):
            run = _fork(forks, saved, incident, seconds, [a, b])
            combined = _classified(Cause(f"{a.cause} + {b.cause}", f"{a.what}; and {b.what}"), run, time_s)
            if combined.cls != "irrelevant":
                causes.append(combined)
    result = {"id": k, "kind": kind, "time_s": time_s, "actors": list(pair), "fork_at_s": fork_at,
              "causes": [c.to_dict() for c in causes]}
    context: dict[str, Any] = {"causes": result["causes"]}
    if futures:
        hits = sum(_fork(forks, saved, incident, seconds, [], seed=n)["collided_at_s"] is not None
                   for n in range(1, futures + 1))
        result["happens_in"] = f"{hits}/{futures}"
        context["futures"] = _outlook(hits, futures, seconds, pair) | {"from_s": fork_at}
    result["triage"] = _triage(result, context)
    return result


def _outlook(hits: int, futures: int, horizon_s: float, pair: tuple[int, ...]) -> dict[str, Any]:
    """How often the pair's collision happens in futures from the fork, as the supervisor's foresight tells it."""
    from envs.futures import wilson

    return {"futures": futures, "collisions": hits, "horizon_s": round(horizon_s, 1), "p_collision": hits / futures,
            "ci95_collision": [round(x, 4) for x in wilson(hits, futures)],
            "most_involved": [{"actor": a, "futures": hits} for a in pair]}


def _triage(incident: dict[str, Any], context: dict[str, Any]) -> str:
    """The supervisor's template triage of the collision, told its counterfactual causes and (with
    futures) how often it happens in futures from the fork; every sentence is backed by them."""
    from agents.supervisor.triage_rules import template_triage

    event = {"kind": "collision", "actors": incident["actors"], "start_s": incident["time_s"],
             "end_s": incident["time_s"], "severity": "high", "category": "incident"}
    return template_triage([event], context).explanation


def _candidates(at_fork: Any, at_collision: dict[str, Any], pair: tuple[int, ...], time_s: float) -> list[Cause]:
    """The causes to take away: faults and the road from the world at the fork, the involved actors
    and who embodied them from the unchanged fork at the collision (``at_collision``: its world
    and the LLM humans that decided before it)."""
    world = at_fork
    causes = []
    injector = world.faults
    for n, fault in enumerate(injector.faults):  # (one that ended before the fork cannot be taken away there)
        if fault.at_s <= time_s and injector.live(n):
            who = f" on {fault.actor}" if hasattr(fault, "actor") else ""
            causes.append(Cause(f"fault:{fault.kind}#{n}", f"{fault.kind} from {fault.at_s:g} s{who}"))
    if world.friction < DRY:
        causes.append(Cause("road_friction", f"road friction {world.friction:g} (dry is {DRY:g})"))
    vehicles = set(at_collision["world"].vehicles.id.tolist())
    if _all_red_intervals(world) and vehicles & set(pair):
        causes.append(Cause("signal_timing", f"the signal timing (all-red clearances {ALL_RED_EXTRA_S:g} s longer "
                                             "instead)"))
    embodied = at_collision["humans"]
    for actor in pair:
        vehicle = actor in vehicles
        h = embodied.get(actor)
        if h is None:
            if vehicle:
                causes.append(Cause(f"driver:{actor}", f"vehicle {actor}'s driving (a careful driver instead)"))
        else:
            careful = CAREFUL_PERSONA.get(h.role)
            if careful and h.persona.id != careful:
                causes.append(Cause(f"persona:{h.identity}", f"{h.identity} on actor {actor} (persona {careful} "
                                                             "instead)"))
            for trait, neutral in NEUTRAL_TRAITS.items():
                value = getattr(h.persona.traits, trait)
                if (value < neutral) if trait == "patience" else (value > neutral):
                    causes.append(Cause(f"trait:{h.identity}:{trait}", f"{h.identity}'s {trait.replace('_', ' ')} "
                                                                       f"{value:g} ({neutral:g} instead)"))
            if h.identity in at_collision["deciders"]:
                causes.append(Cause(f"llm:{h.identity}", f"{h.identity}'s model decisions from the fork on (its "
                                                         "persona's rule-based intent instead)"))
        if vehicle:
            causes.append(Cause(f"reaction:{actor}", f"vehicle {actor}'s reaction time (braking a reaction time "
                                                     "earlier)"))
    return causes


def _all_red_intervals(world: Any) -> list[int]:
    """The all-red clearances of a built-in layout's signal plan (an imported network's signal
    programs have none that can be lengthened here: [])."""
    cycle = getattr(world.signals, "cycle", None) or []
    return [k for k, interval in enumerate(cycle) if getattr(interval, "name", "") == "all red"]


def _fork(forks: Forks, saved: Any, incident: tuple[str, tuple[int, ...]], seconds: float, removed: list[Cause],
          seed: int | None = None, at_collision: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run a fork of ``saved`` (an ``Episode.get_state``) with ``removed`` taken away (and, with a
    ``seed``, the twin's uncertain parts drawn anew: ``envs.futures.perturb``); when (if) the
    ``incident`` (kind, pair) happens: the pair's collision, or for a hazard kind the supervisor
    flagging it between the pair at high severity (``collided_at_s`` is then when the event starts). A change to an actor
    not yet in the world is made when it enters. ``at_collision`` is told the fork's world and
    humans when the incident happens."""
    kind, pair = incident
    episode = forks.episode()
    try:
        episode.set_state(saved)
        waiting = [c.cause for c in removed if not _take_away(episode, c.cause)]
        if seed is not None:
            from envs.futures import perturb

            perturb(episode.world, seed)
        world = episode.world
        checks = episode.supervisor.checks if episode.supervisor is not None else 0
        start, until = world.time, world.time + seconds
        while world.time < until - 1e-9:
            events, records = episode.step()
            waiting = [c for c in waiting if not _take_away(episode, c)]
            if kind == "collision":
                when = next((e.time for e in events if e.kind == "collision" and tuple(sorted(e.actors)) == pair), None)
            elif episode.supervisor.checks != checks:  # a check ran: has the pair's hazard of this kind become high?
                checks = episode.supervisor.checks
                when = next((e.start_s for e in episode.supervisor.events if e.kind == kind and e.severity == "high"
                             and tuple(sorted(e.actors)) == pair and e.start_s >= start - 1e-9), None)
            else:
                when = None
            if when is not None:
                if at_collision is not None:
                    at_collision(_who(episode, records))
                return {"removed": [c.cause for c in removed], "collided_at_s": round(when, 3)}
        return {"removed": [c.cause for c in removed], "collided_at_s": None}
    finally:
        episode.close()


def _who(episode: Any, records: list[dict]) -> dict[str, Any]:
    """The world at a collision, who embodies which actor, and which LLM humans had decided."""
    population = episode.population
    humans = {h.actor_id: h for h in population.humans if h.actor_id is not None} if population is not None else {}
    deciders = {r["human"] for r in [*(population.records if population is not None else []), *records]
                if r["source"] == "llm"}
    # and those whose model decided before the fork (their intents live on; the records are the fork's own)
    deciders |= {h.identity for h in (population.humans if population is not None else []) if h.llm and h.recent}
    return {"world": episode.world, "humans": humans, "deciders": deciders}


def _take_away(episode: Any, cause: str) -> bool:
    """Take ``cause`` away in ``episode``; False when its actor has not entered yet (try again later)."""
    world, population = episode.world, episode.population
    kind, _, what = cause.partition(":")
    if kind == "fault":
        world.faults.remove(int(cause.rsplit("#", 1)[1]))
    elif kind == "road_friction":
        world.set_friction(DRY)
    elif kind == "signal_timing":
        for k in _all_red_intervals(world):
            world.signals.durations[k] += ALL_RED_EXTRA_S
    elif kind == "driver":
        return world.set_vehicle_params(int(what), headway=CAREFUL_HEADWAY_S, reaction_time=CAREFUL_REACTION_S,
                                        compliance=1.0, runs_red=False, speed_factor=1.0)
    elif kind == "reaction":
        actor = int(what)
        for h in population.humans if population is not None else ():
            if h.actor_id == actor:  # its next decisions keep the earlier braking
                h.prior["reaction_time"] = QUICK_REACTION_S
        return world.set_vehicle_params(actor, reaction_time=QUICK_REACTION_S)
    elif kind == "persona":
        from agents.humans.persona import get_persona, load_personas

        human = next(h for h in population.humans if h.identity == what)
        population.set_persona(what, get_persona(CAREFUL_PERSONA[human.role], load_personas(strict=False)))
    elif kind == "trait":
        identity, trait = what.rsplit(":", 1)
        human = next(h for h in population.humans if h.identity == identity)
        traits = human.persona.traits.model_copy(update={trait: NEUTRAL_TRAITS[trait]})
        # another id: decisions recorded or reused for the persona as it was are not this one's
        population.set_persona(identity, human.persona.model_copy(
            update={"traits": traits, "id": f"{human.persona.id}_neutral_{trait}"}))
    elif kind == "llm":
        population.use_rules(what)
    else:
        raise ExplainError(f"unknown cause {cause!r}")
    return True


def _classified(cause: Cause, run: dict[str, Any], time_s: float) -> Cause:
    cause.evidence = [run]
    when = run["collided_at_s"]
    if when is None:
        cause.cls, cause.prevented = "but_for", "1/1"
    elif when - time_s >= SHIFT_S:
        cause.cls = "contributing"
    return cause

"""A scenario the inspector runs step by step: pause, step, run, interview a human, fork a what-if.

The main run writes ``main/`` under the live directory like ``run.py simulate`` does, and
each fork ``fork-N/`` (with ``fork.json``: where it starts and what it changes). The main
run saves its state (``ScenarioRun.get_state``: world, humans with their memories and pending
decisions, supervisor) every ``CHECKPOINT_TICKS`` trace ticks. A fork is a second run of the
same scenario restored from the last saved state at or before the fork tick, whose model cache
starts as a copy of the main run's, so the few steps it replays up to the fork tick meet the
same situations and get the same recorded answers: its state there is the main run's, bit for
bit, and a fork costs the same at any tick. Then one change is applied (another persona for a
human, the road friction, a fault) and both futures run on together. A fork's trace file
starts at its saved state.

"Why?" explains the main run's collisions so far (``causes.counterfactual.explain_collision``
from the scenario, its humans deciding through the main run's recorded answers and this session's
model; cached in ``main/causes.json``).
"""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path
from typing import Any, get_args

from pydantic import TypeAdapter

from envs.faults import Fault
from envs.scenario import FRICTION_RANGE
from twin.scenario import load_scenario
from twin.run import ScenarioRun
from envs.trace import read_trace
from inspector.explanations import CAUSES_FILE, Explanations
from inspector.junctions import with_junction_index

FAULT_KINDS = tuple(m.model_fields["kind"].default for m in get_args(get_args(Fault)[0]))
SIGNAL_FAULTS = ("signal_stuck", "signal_dark")
MAX_STEP_S = 60.0  # [s] the most one step request may simulate
CHECKPOINT_TICKS = 16  # the main run saves its state every this many trace ticks (about 8.5 s)


class LiveError(ValueError):
    """A request the live twin cannot carry out; the message says why."""


class LiveTwin:
    """The main run, at most one fork, and a lock that serialises the page's requests."""

    def __init__(self, scenario: str | Path, out: Path, overrides: dict[str, Any] | None = None,
                 model_client: Any = None) -> None:
        # memories stay within the session: a fork must start from the same (empty) store as the main run
        self.config = load_scenario(scenario, {"ego.controlled": 0, **(overrides or {}), "humans.memory.persist": False})
        self.out = Path(out)
        self.model_client = model_client
        self.main = ScenarioRun(self.config, self.out / "main", model_client=model_client, keep_ticks=True,
                                checkpoint_ticks=CHECKPOINT_TICKS)
        self.header, _ = read_trace(self.main.out)
        with_junction_index(self.header)
        self.fork: ScenarioRun | None = None
        self.fork_tick = 0  # index of the fork's first tick, in its own and in the main run's tick list
        self.fork_description = ""
        self.forks = 0  # forks made so far (fork-1/, fork-2/, ... under the live directory)
        self.lock = threading.Lock()
        (self.main.out / CAUSES_FILE).unlink(missing_ok=True)  # an earlier session's, in a reused directory
        self.explanations = Explanations(self.main.out)

    # ---- the page's requests ----------------------------------------------------------------
    def step(self, seconds: float) -> dict[str, Any]:
        """Advance the main run (and the fork) by ``seconds`` [s] of simulated time."""
        if not 0 < seconds <= MAX_STEP_S:
            raise LiveError(f"seconds must be in (0, {MAX_STEP_S}], not {seconds}")
        with self.lock:
            self.main.advance(seconds)
            if self.fork is not None:
                self._catch_up(self.fork)
            return {"total": len(self.main.ticks), "fork_total": self._fork_total()}

    def interview(self, human: str, question: str) -> dict[str, Any]:
        """Ask a human of the main run in character; the simulation does not change."""
        question = (question or "").strip()
        if not question:
            raise LiveError("the question is empty")
        if self.main.population is None:
            raise LiveError("this scenario has no humans to interview")
        with self.lock:
            try:
                return self.main.population.interview(human, question[:500])
            except (KeyError, ValueError) as exc:
                raise LiveError(exc.args[0]) from None

    def fork_at(self, tick: int, change: dict[str, Any]) -> dict[str, Any]:
        """Start a what-if from main tick ``tick`` with one ``change``; replaces an earlier fork
        (which stays in place if this one cannot be made)."""
        with self.lock:
            if not 0 <= tick < len(self.main.ticks):
                raise LiveError(f"tick must be in [0, {len(self.main.ticks) - 1}], not {tick}")
            apply, description = self._change(change)
            path = self.out / f"fork-{self.forks + 1}"  # each what-if keeps its own run directory
            if path.exists():
                shutil.rmtree(path)
            path.mkdir(parents=True)
            if (self.main.out / "llm_cache.jsonl").exists():
                shutil.copyfile(self.main.out / "llm_cache.jsonl", path / "llm_cache.jsonl")
            fork = ScenarioRun(self.main.config, path, model_client=self._raw_client(), keep_ticks=True)
            try:
                start = max(k for k in self.main.checkpoints if k <= tick + 1)
                fork.set_state(self.main.checkpoints[start], self.main.ticks[:start])
                while len(fork.ticks) <= tick:  # the same steps as the main run, up to that tick
                    fork.step()
                apply(fork)
            except (KeyError, ValueError) as exc:
                fork.close()
                shutil.rmtree(path, ignore_errors=True)
                raise LiveError(exc.args[0] if exc.args else str(exc)) from None
            if self.fork is not None:
                self._finish(self.fork)
            self.forks += 1
            t_fork = fork.ticks[tick]["t"]
            self.fork, self.fork_tick = fork, tick
            self.fork_description = f"{description} at t = {t_fork:.1f} s"
            (fork.out / "fork.json").write_text(json.dumps({"main_tick": tick, "t": t_fork, "change": change,
                                                           "description": self.fork_description}, indent=2))
            self._catch_up(fork)
            return {"fork_total": self._fork_total(), "description": self.fork_description}

    def explain(self, incident: int | None) -> dict[str, Any]:
        """The causes of the main run's collision ``incident`` so far (all of them when None), in
        explain's JSON. The forks rebuild the episode from the scenario: the main run goes on meanwhile."""
        from causes.counterfactual import Forks, explain_collision

        with self.lock:
            collisions = self._collisions()
        if incident is not None and not 0 <= incident < len(collisions):
            raise LiveError(f"incident {incident}: the main run has {len(collisions)} collisions so far"
                            + (f" (0 to {len(collisions) - 1})" if collisions else ""))

        def explain_one(k: int) -> dict[str, Any]:
            # the humans decide in the forks through the main run's answers so far, on this session's model
            forks = Forks(self.main.config, self.main.out, model_client=self._raw_client())
            try:
                return explain_collision(self.main.config, k, collisions[k], forks=forks)
            finally:
                forks.close()

        return self.explanations.get([incident] if incident is not None else list(range(len(collisions))), explain_one)

    def _collisions(self) -> list[dict[str, Any]]:
        """The main run's collisions so far, as explain reads them from events.jsonl."""
        return [{"id": k, "time_s": round(float(e.time), 3), "actors": sorted(int(a) for a in e.actors)}
                for k, e in enumerate(e for e in self.main.world.events if e.kind == "collision")]

    def ticks(self, session: str, start: int) -> dict[str, Any]:
        with self.lock:
            if session == "fork":
                if self.fork is None:
                    raise LiveError("there is no fork yet")
                ticks = self.fork.ticks[self.fork_tick:]
            elif session == "main":
                ticks = self.main.ticks
            else:
                raise LiveError(f"session must be main or fork, not {session!r}")
            return {"ticks": ticks[max(start, 0):], "total": len(ticks)}

    def describe(self) -> dict[str, Any]:
        from agents.humans.persona import load_personas

        with self.lock:
            return {"mode": "live", "run_dir": str(self.out), "header": self.header, "summary": None,
                    "hazards": [e.to_dict() for e in self.main.supervisor.events],
                    "alerts": list(self.main.supervisor.alerts), "personas": sorted(load_personas(strict=False)),
                    "fault_kinds": list(FAULT_KINDS), "collisions": self._collisions(),
                    "causes": self.explanations.cached(),
                    "fork": None if self.fork is None else {"description": self.fork_description,
                                                            "tick": self.fork_tick}}

    def close(self) -> None:
        """Finish both runs: each directory gets its events, hazards, alerts and summary."""
        with self.lock:
            for run in (self.main, self.fork):
                if run is not None:
                    self._finish(run)

    @staticmethod
    def _finish(run: ScenarioRun) -> None:
        if not run.finished:
            summary = run.finish()
            (run.out / "summary.json").write_text(json.dumps(summary, indent=2))

    # ---- helpers ----------------------------------------------------------------------------
    def _fork_total(self) -> int | None:
        return None if self.fork is None else len(self.fork.ticks) - self.fork_tick

    def _raw_client(self) -> Any:
        """The model behind the main run's cache (shared, so a fork loads no second model)."""
        if self.model_client is not None:
            return self.model_client
        population, agent = self.main.population, self.main.supervisor.agent
        client = population.client if population is not None else None
        if client is None and agent is not None:
            client = agent.model_client
        return getattr(client, "client", client)

    def _catch_up(self, run: ScenarioRun) -> None:
        """Step ``run`` until it has made as many physics steps as the main run."""
        while run.steps < self.main.steps:
            run.step()

    def _change(self, change: dict[str, Any]):
        """The function that applies ``change`` to a fork, and its description."""
        kind = change.get("kind")
        if kind == "persona":
            human, persona = change.get("human"), change.get("persona")
            if not human or not persona:
                raise LiveError("a persona change needs 'human' and 'persona'")
            if self.main.population is None:
                raise LiveError("this scenario has no humans")
            try:  # checked before the fork replays its past
                self.main.population.persona_for(human, persona)
            except (KeyError, ValueError) as exc:
                raise LiveError(exc.args[0]) from None
            return (lambda run: run.population.change_persona(human, persona)), f"{human} becomes {persona}"
        if kind == "friction":
            try:
                value = float(change.get("value"))
            except (TypeError, ValueError):
                raise LiveError("a friction change needs a number 'value' (1 dry, 0.5 wet, 0.2 snow)") from None
            if not FRICTION_RANGE[0] <= value <= FRICTION_RANGE[1]:
                raise LiveError(f"road friction must be in {list(FRICTION_RANGE)}, not {value}")
            return (lambda run: run.world.set_friction(value)), f"road friction {value:g}"
        if kind == "fault":
            spec = dict(change.get("fault") or {})
            if spec.get("kind") in SIGNAL_FAULTS:
                spec.pop("actor", None)
            try:
                fault = TypeAdapter(Fault).validate_python({**spec, "at_s": 0.0})
            except Exception as exc:  # noqa: BLE001 - pydantic names the bad field
                raise LiveError(f"fault: {str(exc).splitlines()[0]} {str(exc).splitlines()[-1].strip()}") from None

            def inject(run: ScenarioRun) -> None:
                run.world.faults.add(fault.model_copy(update={"at_s": run.world.time}))

            return inject, f"fault {spec.get('kind')}"
        raise LiveError(f"change kind must be persona, friction or fault, not {kind!r}")

"""A scenario the inspector runs step by step: pause, step, run, interview a human, fork a what-if.

The main run writes ``main/`` under the live directory like ``run.py simulate`` does. A fork
is a second run of the same scenario and seed whose model cache starts as a copy of the
main run's, so up to the fork step it meets the same situations and gets the same recorded
answers: its state there is the main run's, bit for bit. Then one change is applied
(another persona for a human, the road friction, a fault) and both futures run on together.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from envs.faults import Fault
from envs.scenario import load_scenario
from envs.simulation import ScenarioRun

FAULT_KINDS = ("brake_failure", "sensor_dropout", "sensor_noise", "erratic_driver", "pedestrian_stop",
               "signal_stuck", "signal_dark")
SIGNAL_FAULTS = ("signal_stuck", "signal_dark")
MAX_STEP_S = 60.0  # [s] the most one step request may simulate


class LiveError(ValueError):
    """A request the live twin cannot carry out; the message says why."""


class LiveTwin:
    """The main run, at most one fork, and a lock that serialises the page's requests."""

    def __init__(self, scenario: str | Path, out: Path, overrides: dict[str, Any] | None = None,
                 model_client: Any = None) -> None:
        self.config = load_scenario(scenario, {"ego.controlled": 0, **(overrides or {})})
        self.out = Path(out)
        self.model_client = model_client
        self.main = ScenarioRun(self.config, self.out / "main", model_client=model_client, keep_ticks=True)
        self.fork: ScenarioRun | None = None
        self.fork_tick = 0  # main tick index the fork starts at
        self.fork_description = ""
        self.lock = threading.Lock()

    # ---- the page's requests ----------------------------------------------------------------
    def step(self, seconds: float) -> dict[str, Any]:
        """Advance the main run (and the fork) by ``seconds`` [s] of simulated time."""
        if not 0 < seconds <= MAX_STEP_S:
            raise LiveError(f"seconds must be in (0, {MAX_STEP_S}], not {seconds}")
        with self.lock:
            self.main.advance(seconds)
            if self.fork is not None:
                self._catch_up(self.fork, self.main.world.time)
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
                raise LiveError(str(exc).strip("'\"")) from None

    def fork_at(self, tick: int, change: dict[str, Any]) -> dict[str, Any]:
        """Start a what-if from main tick ``tick`` with one ``change``; replaces an earlier fork."""
        with self.lock:
            if not 0 <= tick < len(self.main.ticks):
                raise LiveError(f"tick must be in [0, {len(self.main.ticks) - 1}], not {tick}")
            apply, description = self._change(change)
            if self.fork is not None:
                self.fork.close()
            path = self.out / "fork"
            if path.exists():
                shutil.rmtree(path)
            path.mkdir(parents=True)
            if (self.out / "main" / "llm_cache.jsonl").exists():
                shutil.copyfile(self.out / "main" / "llm_cache.jsonl", path / "llm_cache.jsonl")
            fork = ScenarioRun(self.config, path, model_client=self._raw_client(), keep_ticks=True)
            t_fork = self.main.ticks[tick]["t"]
            self._catch_up(fork, t_fork)
            try:
                apply(fork)
            except (KeyError, ValueError) as exc:
                fork.close()
                raise LiveError(str(exc).strip("'\"")) from None
            self.fork, self.fork_tick = fork, len(fork.ticks) - 1
            self.fork_description = f"{description} at t = {t_fork:.1f} s"
            self._catch_up(fork, self.main.world.time)
            return {"fork_total": self._fork_total(), "description": self.fork_description}

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
        from agents.persona import load_personas
        from envs.trace import read_trace

        header, _ = read_trace(self.main.out)
        return {"mode": "live", "run_dir": str(self.out), "header": header, "summary": None,
                "hazards": [e.to_dict() for e in self.main.supervisor.events], "alerts": self.main.supervisor.alerts,
                "personas": sorted(load_personas()), "fault_kinds": list(FAULT_KINDS),
                "fork": None if self.fork is None else {"description": self.fork_description, "tick": self._fork_main_tick()}}

    def close(self) -> None:
        for run in (self.main, self.fork):
            if run is not None:
                run.close()

    # ---- helpers ----------------------------------------------------------------------------
    def _fork_total(self) -> int | None:
        return None if self.fork is None else len(self.fork.ticks) - self.fork_tick

    def _fork_main_tick(self) -> int:
        t = self.fork.ticks[self.fork_tick]["t"]
        return next(k for k, tick in enumerate(self.main.ticks) if abs(tick["t"] - t) < 1e-6)

    def _raw_client(self) -> Any:
        """The model behind the main run's cache (shared, so a fork loads no second model)."""
        if self.model_client is not None:
            return self.model_client
        population = self.main.population
        client = population.client if population is not None else None
        return getattr(client, "client", client)

    @staticmethod
    def _catch_up(run: ScenarioRun, until_s: float) -> None:
        while run.world.time + 1e-9 < until_s:
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
            return (lambda run: run.population.change_persona(human, persona)), f"{human} becomes {persona}"
        if kind == "friction":
            try:
                value = float(change.get("value"))
            except (TypeError, ValueError):
                raise LiveError("a friction change needs a number 'value' (1 dry, 0.5 wet, 0.2 snow)") from None
            if not 0.05 <= value <= 1.5:
                raise LiveError(f"road friction must be in [0.05, 1.5], not {value}")
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

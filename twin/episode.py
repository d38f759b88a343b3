"""One episode of the twin: a world with whoever lives in it, and the one step order.

Every driver of the twin (``run.py simulate``, the Gym and PettingZoo factories, the live
inspector, the supervisor suite and the benchmarks) steps through :meth:`Episode.step`,
so they all see the same order within a physics step:

1. the world integrates one step (faults, signals, perception, IDM/MOBIL, spawning);
2. controllers acting on the world (an RL signal controller) see the new state;
3. the supervisor checks it (hazards, violations, anomalies; triage and alerts);
4. the humans embody new actors and make the decisions that are due.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

from envs.occupants import StepObserver
from envs.world import World, WorldEvent


class Episode:
    """A world, its humans (a ``Population`` or None) and its supervisor (or None)."""

    def __init__(self, world: World, population: Any = None, supervisor: Any = None) -> None:
        self.world, self.population, self.supervisor = world, population, supervisor
        self.physics_s = 0.0  # [s] wall time spent in the world's own step

    def step(self, controllers: Sequence[StepObserver] = ()) -> tuple[list[WorldEvent], list[dict[str, Any]]]:
        """One physics step in the order of the module docstring; returns the world's events
        and the decision records the humans made."""
        started = time.perf_counter()
        events = self.world.step()
        self.physics_s += time.perf_counter() - started
        for controller in controllers:
            controller.after_step(self.world)
        if self.supervisor is not None:
            self.supervisor.after_step(self.world)
        records = self.population.after_step() if self.population is not None else []
        return events, records

    def get_state(self) -> dict[str, Any]:
        """A saved copy of the world, the humans (with their memories and pending decisions) and
        the supervisor: ``set_state`` on an episode of the same scenario goes on from here exactly
        as this one does (given the same model answers)."""
        return {"world": self.world.get_state(),
                "population": self.population.get_state() if self.population is not None else None,
                "supervisor": self.supervisor.get_state() if self.supervisor is not None else None}

    def set_state(self, state: dict[str, Any]) -> None:
        """Become the episode saved in ``state`` (``get_state``); each part must be there on both
        sides (a world saved with humans cannot go on without them)."""
        for name in ("population", "supervisor"):
            if (getattr(self, name) is None) != (state[name] is None):
                raise ValueError(f"set_state: the saved episode {'has' if state[name] is not None else 'has no'} "
                                 f"{name} and this one {'has none' if state[name] is not None else 'has one'}")
        self.world.set_state(state["world"])
        if self.population is not None:
            self.population.set_state(state["population"])
        if self.supervisor is not None:
            self.supervisor.set_state(state["supervisor"])

    def close(self, close_memory: bool = True) -> None:
        """Release the supervisor's agent, the humans' runner and (``close_memory``) their memory
        store; a Gym env keeps its store across episodes and closes it itself."""
        if self.supervisor is not None and self.supervisor.agent is not None:
            self.supervisor.agent.close()
        if self.population is not None:
            self.population.close()
            if close_memory and self.population.memory is not None:
                self.population.memory.close()

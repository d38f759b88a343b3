"""The occupants of a Gym or PettingZoo view: the scenario's humans and its supervisor.

Implements ``envs.occupants.Occupants``. ``humans="rule"`` (the default of the views)
embodies the scenario's persona slots with their behaviour parameters and no model:
persona diversity at no cost per step. ``humans="llm"`` lets the LLM slots decide with
the scenario's model backend, or with ``model_client`` (one client per env, reused across
episodes, answers cached in memory or in ``llm_cache``; with ``humans.reuse`` decisions
are also reused across episodes where the situation is the same; with ``memory.persist``
and a ``directory`` the humans remember across episodes and envs). ``humans="off"``
leaves only the scenario's background distributions. The supervisor
(``supervisor.enabled``) is new each episode; LLM triage gets a model client whatever the
humans are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from agents.llm.runner import ModelRunner
from envs.occupants import StepObserver
from envs.world import World, WorldEvent
from twin import assemble
from twin.episode import Episode
from twin.scenario import ScenarioConfig

HUMAN_MODES = ("off", "rule", "llm")


class TwinOccupants:
    """One env's humans and supervisor: a fresh episode each reset on a shared model client."""

    def __init__(self, config: ScenarioConfig, humans: str = "rule", llm_cache: str | Path | None = None,
                 model_client: Any = None) -> None:
        if humans not in HUMAN_MODES:
            raise ValueError(f"humans must be one of {HUMAN_MODES}, not {humans!r}")
        self.config, self.mode = config, humans
        self.llm_cache = Path(llm_cache) if llm_cache is not None else None
        self.episode: Episode | None = None
        self.decisions = 0  # LLM decisions made in this env so far
        self._given_client = model_client
        self._client = None  # built on first need, kept for the env's life
        self._runner: ModelRunner | None = None  # one event loop for the env's client
        self._memory = None
        self._persist = False
        self._personas = None
        self.situations = None  # decisions reused across this env's episodes (humans.reuse)
        uses_llm = humans == "llm" and config.humans.llm_count > 0
        if humans != "off" and config.humans.any:
            from agents.humans.persona import load_personas

            self._personas = load_personas(strict=False)
        if uses_llm:
            self.situations = assemble.situation_cache(config)
        self._uses_llm = uses_llm

    @property
    def population(self) -> Any:
        """This episode's humans (an ``agents.humans.population.Population``), or None."""
        return self.episode.population if self.episode is not None else None

    @property
    def supervisor(self) -> Any:
        """This episode's supervisor, or None."""
        return self.episode.supervisor if self.episode is not None else None

    def client(self) -> Any:
        """The env's model client behind its answer cache (built on first call)."""
        if self._client is None:
            self._client, self.config = assemble.model_client(self.config, self.llm_cache, client=self._given_client)
        if self._runner is None:
            self._runner = ModelRunner(self._client, self.config.humans.model.max_in_flight)
        return self._client

    def start(self, world: World) -> None:
        """Embody the humans and a new supervisor in a new episode's ``world`` (seeded with
        the world's seed, so each episode draws its own persona habits)."""
        self.end_episode()
        population = None
        if self.mode != "off":
            if self._uses_llm:
                client = self.client()
                if self.config.humans.memory.enabled and not self._persist:  # else: the store that remembers
                    self._close_memory()
                    self._memory, self._persist = assemble.memory_store(self.config, None)
                population = assemble.population(world, self.config, client, self._memory, self._persist,
                                                 self.situations, self._runner, self._personas)
            else:
                population = assemble.population(world, self.config, personas=self._personas, rule_only=True)
        triage_client = None
        humans_client = population.client if population is not None else None
        if self.config.supervisor.asks_model and humans_client is None:
            triage_client = self.client()  # rule-based or no humans: the triage still gets the scenario's model
        supervisor = assemble.supervisor(self.config, population, triage_client, self._runner)
        self.episode = Episode(world, population, supervisor)

    def advance(self, world: World, steps: int, controllers: Sequence[StepObserver] = ()) -> list[WorldEvent]:
        events: list[WorldEvent] = []
        for _ in range(steps):
            new, records = self.episode.step(controllers)
            events += new
            self.decisions += len(records)
        return events

    def step_info(self, world: World, actor_ids: Sequence[int | None], since_s: float) -> dict[int | None, dict]:
        supervisor = self.supervisor
        if supervisor is None:
            return {}
        supervisor.check_now(world)
        window = supervisor.take_window()
        info = {}
        for actor in actor_ids:
            noticed = supervisor.step_info(window, actor, since_s)
            info[actor] = {"supervisor": noticed, "cost": noticed["cost"]}
        return info

    def end_episode(self) -> None:
        """End the episode's humans and supervisor (the env's client, loop and memory stay)."""
        if self.episode is None:
            return
        self.episode.close(close_memory=False)
        self.episode = None

    def _close_memory(self) -> None:
        if self._memory is not None:
            self._memory.close()
            self._memory = None

    def close(self) -> None:
        """End the episode and release the env's memory store."""
        self.end_episode()
        self._close_memory()
        self._runner = None

"""The simulated humans inside the Gymnasium and PettingZoo views of the twin.

``humans="rule"`` (the default of the envs) embodies the scenario's persona slots with
their behaviour parameters and no model: persona diversity at no cost per step.
``humans="llm"`` lets the LLM slots decide with the scenario's model backend (one client
per env, reused across episodes, answers cached in memory or in ``llm_cache``; with
``humans.reuse`` decisions are also reused across episodes where the situation is the same).
``humans="off"`` leaves only the scenario's background distributions.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from agents.persona import load_personas
from agents.population import Population, rule_only

HUMAN_MODES = ("off", "rule", "llm")


class EnvHumans:
    """One env's humans: a fresh population per episode on a shared model client."""

    def __init__(self, config: Any, mode: str = "rule", llm_cache: str | Path | None = None) -> None:
        if mode not in HUMAN_MODES:
            raise ValueError(f"humans must be one of {HUMAN_MODES}, not {mode!r}")
        self.config, self.mode, self.llm_cache = config, mode, llm_cache
        self.population: Population | None = None
        self.decisions = 0  # LLM decisions made in this env so far
        self._client = None
        self._loop: asyncio.AbstractEventLoop | None = None  # one loop for the env's client
        self._personas = load_personas() if mode != "off" and config.humans.any else {}
        self.situations = None  # recorded decisions reused across this env's episodes (humans.reuse)
        if mode == "llm" and config.humans.reuse.enabled:
            from agents.situation_cache import SituationCache

            self.situations = SituationCache(config.humans.reuse.path, config.humans.reuse.resolution)

    def start(self, world: Any) -> None:
        """Embody the humans in a new episode's ``world`` (seeded with the world's seed, so each
        episode draws its own persona habits, such as who runs red lights)."""
        self.end_episode()
        humans = self.config.humans
        if self.mode == "off" or not humans.any:
            return
        if self.mode == "rule" or not humans.llm_count:
            self.population = Population(world, rule_only(humans), personas=self._personas, seed=world.seed)
            return
        from agents.backend import build_model_client, cached_client

        if self._client is None:
            self._client = cached_client(build_model_client(humans.model, seed=self.config.seed), self.llm_cache)
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        memory = None
        if humans.memory.enabled:
            from memory.embedding import HashEmbedding, MiniLMEmbedding
            from memory.stream import MemoryStore

            memory = MemoryStore(None, embedding=MiniLMEmbedding() if humans.memory.embedding == "minilm"
                                 else HashEmbedding())
        self.population = Population(world, humans, client=self._client, memory=memory, personas=self._personas,
                                     seed=world.seed, loop=self._loop, situations=self.situations)

    def advance(self, world: Any, steps: int, *observers: Any) -> list:
        """Run ``steps`` physics steps of ``world`` with the humans deciding; each of
        ``observers`` (the supervisor, a signal controller; None is skipped) has its
        ``after_step(world)`` called after every step. Returns the world's events."""
        events: list = []
        for _ in range(steps):
            events += world.step()
            for observer in observers:
                if observer is not None:
                    observer.after_step(world)
            if self.population is not None:
                self.decisions += len(self.population.after_step())
        return events

    def close(self) -> None:
        """End the episode and release the env's event loop."""
        self.end_episode()
        if self._loop is not None:
            self._loop.close()
            self._loop = None

    def end_episode(self) -> None:
        """End the episode's population (the env's model client and loop stay for the next)."""
        if self.population is not None:
            self.population.close()
            if self.population.memory is not None:
                self.population.memory.close()
            self.population = None

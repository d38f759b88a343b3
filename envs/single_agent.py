"""Gymnasium single-agent view of the twin: an RL agent drives one ego vehicle among the humans."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from envs.ego import EgoInterface
from envs.render import Renderer
from envs.scenario import ScenarioConfig, load_scenario, scenario_overrides
from envs.world import World


def new_supervisor(config: ScenarioConfig, humans):
    """A fresh supervisor for an episode (None when the scenario disables it)."""
    if not config.supervisor.enabled:
        return None
    from agents.supervisor import build_supervisor  # here: agents imports envs

    population = humans.population
    return build_supervisor(config, population, humans._client, humans._loop)


class TwinEnv(gym.Env):
    """One controlled vehicle in a scenario of the twin.

    Keyword arguments override scenario fields: shortcuts such as ``vehicles``, top-level
    fields such as ``sim_hz`` / ``policy_hz`` / ``duration_s``, and nested fields written
    with ``__`` (``network__lanes=3``) or passed in ``overrides={"network.lanes": 3}``.
    ``humans`` is ``"rule"`` (persona slots of the scenario with their parameters, no
    model; the default), ``"llm"`` (they decide with the scenario's model; answers cached
    in memory or in the ``llm_cache`` JSON-lines file) or ``"off"``.

    The scenario's supervisor watches every episode (``supervisor.enabled``): ``info["supervisor"]``
    holds the hazard, violation and anomaly events of the step that involve the ego vehicle,
    alerts about it and its safety cost, which is also ``info["cost"]`` (for safe RL).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 15}

    def __init__(
        self,
        scenario: str | ScenarioConfig = "highway",
        render_mode: str | None = None,
        overrides: dict[str, Any] | None = None,
        humans: str = "rule",
        llm_cache: str | None = None,
        **fields: Any,
    ) -> None:
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', not {render_mode!r}")
        self.config = load_scenario(scenario, scenario_overrides(overrides, fields, controlled=1))
        self.render_mode = render_mode
        from agents.env_humans import EnvHumans  # here: agents imports envs

        self.humans = EnvHumans(self.config, humans, llm_cache)
        self.metadata = dict(self.metadata, render_fps=self.config.policy_hz)
        self.ego = EgoInterface(self.config)
        self.observation_space = self.ego.observation_space
        self.action_space = self.ego.action_space
        self.world: World | None = None
        self.supervisor = None
        self._renderer: Renderer | None = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.world = World(self.config, seed=int(self.np_random.integers(2**31 - 1)))
        self.ego_id = self.world.controlled_ids[0]
        self.ego.start(self.world, [self.ego_id])
        self.humans.start(self.world)
        self.supervisor = new_supervisor(self.config, self.humans)
        state = self.world.snapshot()
        return self.ego.observe(state, self.ego_id), {"time_s": 0.0, "ego_id": self.ego_id}

    def step(self, action):
        if self.world is None:
            raise RuntimeError("call reset() before step()")
        self.ego.apply(self.world, self.ego_id, action)
        since = self.world.time
        events = self.humans.advance(self.world, self.config.substeps, self.supervisor)
        state = self.world.snapshot()
        reward, terminated, info = self.ego.outcome(self.world, state, self.ego_id, events)
        if self.supervisor is not None:
            self.supervisor.check_now(self.world)
            info["supervisor"] = self.supervisor.step_info(self.supervisor.take_window(), self.ego_id, since)
            info["cost"] = info["supervisor"]["cost"]
        truncated = not terminated and self.world.time >= self.config.duration_s - 1e-9
        return self.ego.observe(state, self.ego_id), reward, terminated, truncated, info

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array" or self.world is None:
            return None
        if self._renderer is None or self._renderer.network is not self.world.network:
            self._renderer = Renderer(self.world.network, self.config.render)
        return self._renderer.render(self.world.snapshot(), follow=self.ego_id)

    def close(self) -> None:
        self.humans.close()
        self.world = None

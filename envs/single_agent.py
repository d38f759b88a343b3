"""Gymnasium single-agent view of the twin: an RL agent drives one ego vehicle among the humans."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from envs.ego import EgoInterface
from envs.occupants import NoOccupants, Occupants
from envs.render import Renderer
from envs.scenario import WorldConfig
from envs.world import World


class TwinEnv(gym.Env):
    """One controlled vehicle in a world of the twin.

    ``config`` is the validated world (``twin.make_env`` / ``gym.make("twin/Highway-v0")``
    load one from a scenario with its overrides); ``occupants`` are whoever else lives in
    it (:class:`envs.occupants.NoOccupants` by default: physics only). When the occupants
    include a supervisor, ``info["supervisor"]`` holds the hazard, violation and anomaly
    events of the step that involve the ego vehicle, alerts about it and its safety cost,
    which is also ``info["cost"]`` (for safe RL).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 15}

    def __init__(self, config: WorldConfig, occupants: Occupants | None = None,
                 render_mode: str | None = None) -> None:
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', not {render_mode!r}")
        if config.ego.controlled < 1:
            raise ValueError("the ego view needs ego.controlled >= 1")
        self.config = config
        self.render_mode = render_mode
        self.occupants: Occupants = occupants if occupants is not None else NoOccupants()
        self.metadata = dict(self.metadata, render_fps=self.config.policy_hz)
        self.ego = EgoInterface(self.config)
        self.observation_space = self.ego.observation_space
        self.action_space = self.ego.action_space
        self.world: World | None = None
        self._renderer: Renderer | None = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.world = World(self.config, seed=int(self.np_random.integers(2**31 - 1)))
        self.ego_id = self.world.controlled_ids[0]
        self.ego.start(self.world, [self.ego_id])
        self.occupants.start(self.world)
        state = self.world.snapshot()
        return self.ego.observe(state, self.ego_id), {"time_s": 0.0, "ego_id": self.ego_id}

    def step(self, action):
        if self.world is None:
            raise RuntimeError("call reset() before step()")
        self.ego.apply(self.world, self.ego_id, action)
        since = self.world.time
        events = self.occupants.advance(self.world, self.config.substeps)
        state = self.world.snapshot()
        reward, terminated, info = self.ego.outcome(self.world, state, self.ego_id, events)
        info.update(self.occupants.step_info(self.world, [self.ego_id], since).get(self.ego_id, {}))
        truncated = not terminated and self.world.time >= self.config.duration_s - 1e-9
        return self.ego.observe(state, self.ego_id), reward, terminated, truncated, info

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array" or self.world is None:
            return None
        if self._renderer is None or self._renderer.network is not self.world.network:
            self._renderer = Renderer(self.world.network, self.config.render)
        return self._renderer.render(self.world.snapshot(), follow=self.ego_id)

    def close(self) -> None:
        self.occupants.close()
        self.world = None

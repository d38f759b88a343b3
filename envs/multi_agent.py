"""PettingZoo parallel view of the twin: several controlled vehicles act at once."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from pettingzoo import ParallelEnv

from envs.ego import EgoInterface
from envs.occupants import NoOccupants, Occupants
from envs.render import Renderer
from envs.scenario import WorldConfig
from envs.world import World


class TwinParallelEnv(ParallelEnv):
    """Controlled vehicles ``ego_0 .. ego_{n-1}`` (``config.ego.controlled`` of them) among the
    occupants; an agent leaves when it arrives or crashes. ``config`` and ``occupants`` as in
    :class:`envs.single_agent.TwinEnv` (``twin.parallel_env`` builds both from a scenario)."""

    metadata = {"render_modes": ["rgb_array"], "name": "twin_parallel_v0", "is_parallelizable": True}

    def __init__(self, config: WorldConfig, occupants: Occupants | None = None,
                 render_mode: str | None = None) -> None:
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', not {render_mode!r}")
        self.config = config
        self.render_mode = render_mode
        self.occupants: Occupants = occupants if occupants is not None else NoOccupants()
        self.ego = EgoInterface(self.config)
        self.possible_agents = [f"ego_{k}" for k in range(self.config.ego.controlled)]
        self.agents: list[str] = []
        self._rng = np.random.default_rng(self.config.seed)
        self.world: World | None = None
        self._renderer: Renderer | None = None

    @functools.lru_cache(maxsize=None)
    def observation_space(self, agent: str):
        return self.ego.observation_space

    @functools.lru_cache(maxsize=None)
    def action_space(self, agent: str):
        return self.ego.action_space

    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self.world = World(self.config, seed=int(self._rng.integers(2**31 - 1)))
        self.agents = list(self.possible_agents)
        self._ids = dict(zip(self.agents, self.world.controlled_ids))
        self.ego.start(self.world, list(self._ids.values()))
        self.occupants.start(self.world)
        state = self.world.snapshot()
        observations = {a: self.ego.observe(state, self._ids[a]) for a in self.agents}
        infos = {a: {"time_s": 0.0, "vehicle_id": self._ids[a]} for a in self.agents}
        return observations, infos

    def step(self, actions: dict[str, Any]):
        if self.world is None:
            raise RuntimeError("call reset() before step()")
        for agent, action in actions.items():
            if agent in self.agents:
                self.ego.apply(self.world, self._ids[agent], action)
        since = self.world.time
        events = self.occupants.advance(self.world, self.config.substeps)
        noticed = self.occupants.step_info(self.world, [self._ids[a] for a in self.agents], since)
        state = self.world.snapshot()
        out_of_time = self.world.time >= self.config.duration_s - 1e-9
        obs, rewards, terms, truncs, infos = {}, {}, {}, {}, {}
        for agent in self.agents:
            vid = self._ids[agent]
            rewards[agent], terms[agent], infos[agent] = self.ego.outcome(self.world, state, vid, events)
            infos[agent].update(noticed.get(vid, {}))
            truncs[agent] = out_of_time and not terms[agent]
            obs[agent] = self.ego.observe(state, vid)
        self.agents = [a for a in self.agents if not (terms[a] or truncs[a])]
        return obs, rewards, terms, truncs, infos

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array" or self.world is None:
            return None
        if self._renderer is None or self._renderer.network is not self.world.network:
            self._renderer = Renderer(self.world.network, self.config.render)
        return self._renderer.render(self.world.snapshot())

    def close(self) -> None:
        self.occupants.close()
        self.world = None

"""Gymnasium view for RL signal control: an agent chooses the intersection's phases.

``twin/SignalControl-v0`` runs the intersection scenario with its humans (rule-based
personas by default, ``humans="llm"`` for live LLM drivers and pedestrians) and no ego
vehicle. Every ``decision_s`` seconds the agent picks the phase to serve next: a green
for one approach (N, E, S, W) or the exclusive pedestrian walk. Changing phase always runs
the plan's clearance first (amber and all-red, or flashing don't-walk and all-red), so
the agent cannot produce conflicting greens. ``fixed_time=True`` ignores the actions and
runs the scenario's fixed-time plan: the baseline.

- Observation ``Box(0, 1, (17,))``: per approach the stopped and the moving vehicles on its
  entry lanes (/ 10), pedestrians waiting (/ 10) and the longest wait (/ 120 s), the current
  phase (one-hot of 5), the time in it (/ 60 s), whether a clearance is running.
- Reward: minus the vehicle-seconds stopped and ``pedestrian_weight`` times the
  pedestrian-seconds waiting during the decision period, / 100.
- ``info``: ``vehicle_delay_s`` and ``pedestrian_wait_s`` of the period, ``exited``, the
  supervisor's events and ``cost`` as in the driving envs.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.actors import WAIT
from envs.occupants import NoOccupants, Occupants
from envs.scenario import WorldConfig
from envs.world import PHASE_SUFFIXES, World

STOPPED_MPS = 0.5  # [m/s] a vehicle slower than this is counted as stopped
APPROACH_M = 120.0  # [m] how far upstream of the stop line an approach is observed


def phase_intervals(network) -> list[int]:
    """Indices of the signal plan's intervals that are phases (the rest are clearances)."""
    return [k for k, iv in enumerate(network.signal_cycle) if iv.name.endswith(PHASE_SUFFIXES)]


class SignalController:
    """Runs the phase an agent chose, through the plan's clearance intervals."""

    def __init__(self, world: World) -> None:
        cycle = world.network.signal_cycle
        self.world = world
        self.phases = phase_intervals(world.network)
        # the clearance intervals that follow each phase in the plan (until the next phase)
        self.clearance = {}
        for p in self.phases:
            k, chain = (p + 1) % len(cycle), []
            while k not in self.phases:
                chain.append(k)
                k = (k + 1) % len(cycle)
            self.clearance[p] = chain
        self.phase = self.phases[0]
        self.target = self.phase
        self._queue: list[int] = []
        world.signals.manual = True
        world.signals.set_interval(self.phase)

    @property
    def clearing(self) -> bool:
        return bool(self._queue) or self.world.signals.interval != self.phase

    def request(self, phase_index: int) -> None:
        """Serve ``self.phases[phase_index]`` next (after the current phase's clearance)."""
        target = self.phases[phase_index]
        if target != self.target and not self.clearing:
            self._queue = list(self.clearance[self.phase])
            self.target = target
            self._next()

    def _next(self) -> None:
        if self._queue:
            self.world.signals.set_interval(self._queue.pop(0))
        else:
            self.phase = self.target
            self.world.signals.set_interval(self.phase)

    def after_step(self, world: World) -> None:
        if world.signals.stuck:  # an injected controller fault holds whatever is showing
            return
        if world.signals.interval != self.phase or self._queue:
            elapsed = world.signals.clock_s
            if elapsed >= world.signals.durations[world.signals.interval] - 1e-9:
                self._next()


class SignalControlEnv(gym.Env):
    """RL signal control of the intersection (see the module docstring)."""

    metadata = {"render_modes": []}

    def __init__(self, config: WorldConfig, occupants: Occupants | None = None, decision_s: float = 5.0,
                 pedestrian_weight: float = 0.5, fixed_time: bool = False) -> None:
        if config.network.kind != "intersection":
            raise ValueError("signal control needs an intersection scenario")
        self.config = config
        self.occupants: Occupants = occupants if occupants is not None else NoOccupants()
        self.decision_s, self.pedestrian_weight, self.fixed_time = decision_s, pedestrian_weight, fixed_time
        self.steps_per_decision = max(1, int(round(decision_s * self.config.sim_hz)))
        self.action_space = spaces.Discrete(5)
        self.observation_space = spaces.Box(0.0, 1.0, (17,), dtype=np.float32)
        self.world: World | None = None
        self.controller: SignalController | None = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.world = World(self.config, seed=int(self.np_random.integers(2**31 - 1)))
        self.controller = None if self.fixed_time else SignalController(self.world)
        self.occupants.start(self.world)
        groups = self.world.network.lane_signal_group
        self._approach_lanes = [np.flatnonzero(groups == g) for g in range(self.world.network.signal_groups)]
        return self._observe(), {"time_s": 0.0}

    def step(self, action):
        if self.world is None:
            raise RuntimeError("call reset() before step()")
        if self.controller is not None:
            self.controller.request(int(action))
        world, dt = self.world, self.world.dt
        delay = wait = 0.0
        exited0 = world.stats["vehicles_exited"]
        since = world.time
        controllers = [self.controller] if self.controller is not None else []
        for _ in range(self.steps_per_decision):
            self.occupants.advance(world, 1, controllers)
            veh, ped = world.vehicles, world.pedestrians
            delay += float(((veh.v < STOPPED_MPS) & ~veh.crashed).sum()) * dt
            wait += float((ped.phase == WAIT).sum()) * dt
        reward = -(delay + self.pedestrian_weight * wait) / 100.0
        info = {"time_s": world.time, "vehicle_delay_s": delay, "pedestrian_wait_s": wait,
                "exited": world.stats["vehicles_exited"] - exited0,
                "collisions": sum(e.kind == "collision" for e in world.events if e.time >= since)}
        info.update(self.occupants.step_info(world, [None], since).get(None, {}))  # the controller answers for all
        truncated = world.time >= self.config.duration_s - 1e-9
        return self._observe(), float(reward), False, truncated, info

    def _observe(self) -> np.ndarray:
        world, net = self.world, self.world.network
        veh, ped = world.vehicles, world.pedestrians
        obs = np.zeros(17, dtype=np.float32)
        near = (net.lane_s_to[veh.lane] - veh.s) < APPROACH_M
        for g, lanes in enumerate(self._approach_lanes):
            on = np.isin(veh.lane, lanes) & near
            obs[2 * g] = min(float((on & (veh.v < STOPPED_MPS)).sum()) / 10.0, 1.0)
            obs[2 * g + 1] = min(float((on & (veh.v >= STOPPED_MPS)).sum()) / 10.0, 1.0)
        waiting = ped.phase == WAIT
        obs[8] = min(float(waiting.sum()) / 10.0, 1.0)
        obs[9] = min(float(ped.waited[waiting].max()) / 120.0, 1.0) if waiting.any() else 0.0
        phases = phase_intervals(net)
        current = self.controller.phase if self.controller is not None else world.signals.interval
        if current in phases:
            obs[10 + phases.index(current)] = 1.0
        obs[15] = min(world.signals.clock_s / 60.0, 1.0)
        obs[16] = float(self.controller.clearing) if self.controller is not None else float(world.signals.interval not in phases)
        return obs

    def close(self) -> None:
        self.occupants.close()
        self.world = None

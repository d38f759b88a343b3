"""Gymnasium view for RL signal control: an agent chooses a junction's phases.

``twin/SignalControl-v0`` runs the intersection scenario with its humans (rule-based
personas by default, ``humans="llm"`` for live LLM drivers and pedestrians) and no ego
vehicle. Every ``decision_s`` seconds the agent picks the phase to serve next: a green
for one approach (N, E, S, W) or the exclusive pedestrian walk. Changing phase always runs
the plan's clearance first (amber and all-red, or flashing don't-walk and all-red), so
the agent cannot produce conflicting greens. ``fixed_time=True`` ignores the actions and
runs the scenario's fixed-time plan: the baseline.

On an imported network (``network: {kind: sumo}``) the agent drives one traffic light
(``tls``, default: the one with the most links) the same way: its phases are the program's
phases that show a green and no amber, its clearances the ambers and reds that follow each
in the program; the other lights run their programs. Its approaches are the incoming
edges of the links the light controls.

- Observation ``Box(0, 1, (2 A + 2 + P + 2,))`` (17 on the intersection: A = 4 approaches,
  P = 5 phases): per approach the stopped and the moving vehicles on its entry lanes (/ 10),
  pedestrians waiting (/ 10) and the longest wait (/ 120 s), the current phase (one-hot of
  P), the time in it (/ 60 s), whether a clearance is running.
- Reward: minus the vehicle-seconds stopped (on an imported network: on the light's
  approach lanes and links) and ``pedestrian_weight`` times the pedestrian-seconds waiting
  during the decision period, / 100.
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


class CycleView:
    """A built-in layout's one signal cycle, as the controller sees it: intervals by index."""

    def __init__(self, world: World) -> None:
        self.signals = world.signals
        self.phases = phase_intervals(world.network)
        self.length = len(world.network.signal_cycle)
        self.signals.manual = True

    index = property(lambda self: self.signals.interval)
    elapsed_s = property(lambda self: self.signals.clock_s)
    stuck = property(lambda self: self.signals.stuck)

    def duration(self, index: int) -> float:
        return float(self.signals.durations[index])

    def show(self, index: int) -> None:
        self.signals.set_interval(index)


class ProgramView:
    """One traffic light's program on an imported network, as the controller sees it: its
    phases by index (greens are the phases; ambers and reds the clearances); the other lights
    keep running their programs."""

    def __init__(self, world: World, program: int) -> None:
        self.signals, self.program = world.signals, program
        self.phases = world.signals.green_phases(program)
        self.length = len(world.signals.programs[program].states)
        if not self.phases:
            raise ValueError(f"traffic light {world.signals.programs[program].name!r} has no green phase to serve")

    index = property(lambda self: int(self.signals.phase[self.program]))
    elapsed_s = property(lambda self: float(self.signals.in_phase_s[self.program]))
    stuck = property(lambda self: self.signals.stuck)

    def duration(self, index: int) -> float:
        return float(self.signals.program_durations[self.program][index])

    def show(self, index: int) -> None:
        self.signals.set_phase(self.program, index)


class SignalController:
    """Runs the phase an agent chose, through the plan's clearance intervals."""

    def __init__(self, world: World, view: CycleView | ProgramView | None = None) -> None:
        self.world = world
        self.view = view if view is not None else CycleView(world)
        self.phases = self.view.phases
        # the clearance intervals that follow each phase in the plan (until the next phase)
        self.clearance = {}
        for p in self.phases:
            k, chain = (p + 1) % self.view.length, []
            while k not in self.phases:
                chain.append(k)
                k = (k + 1) % self.view.length
            self.clearance[p] = chain
        self.phase = self.phases[0]
        self.target = self.phase
        self._queue: list[int] = []
        self.view.show(self.phase)

    @property
    def clearing(self) -> bool:
        return bool(self._queue) or self.view.index != self.phase

    def request(self, phase_index: int) -> None:
        """Serve ``self.phases[phase_index]`` next (after the current phase's clearance)."""
        target = self.phases[phase_index]
        if target != self.target and not self.clearing:
            self._queue = list(self.clearance[self.phase])
            self.target = target
            self._next()

    def _next(self) -> None:
        if self._queue:
            self.view.show(self._queue.pop(0))
        else:
            self.phase = self.target
            self.view.show(self.phase)

    def after_step(self, world: World) -> None:
        if self.view.stuck:  # an injected controller fault holds whatever is showing
            return
        if self.view.index != self.phase or self._queue:
            if self.view.elapsed_s >= self.view.duration(self.view.index) - 1e-9:
                self._next()


class SignalControlEnv(gym.Env):
    """RL signal control of the intersection (see the module docstring)."""

    metadata = {"render_modes": []}

    def __init__(self, config: WorldConfig, occupants: Occupants | None = None, decision_s: float = 5.0,
                 pedestrian_weight: float = 0.5, fixed_time: bool = False, tls: str | None = None) -> None:
        if config.network.kind not in ("intersection", "sumo"):
            raise ValueError("signal control needs an intersection scenario or a SUMO network with traffic lights")
        self.config = config
        self.occupants: Occupants = occupants if occupants is not None else NoOccupants()
        self.decision_s, self.pedestrian_weight, self.fixed_time = decision_s, pedestrian_weight, fixed_time
        self.steps_per_decision = max(1, int(round(decision_s * self.config.sim_hz)))
        self.world: World | None = None
        self.controller: SignalController | None = None
        self.tls = tls
        probe = World(config, populate=False)  # the junction's shape: its phases and approaches
        self._program, self._approach_lanes, self._junction_lanes, self._phases = self._junction(probe)
        size = 2 * len(self._approach_lanes) + 2 + len(self._phases) + 2
        self.action_space = spaces.Discrete(len(self._phases))
        self.observation_space = spaces.Box(0.0, 1.0, (size,), dtype=np.float32)

    def _junction(self, world: World) -> tuple[int | None, list[np.ndarray], np.ndarray | None, list[int]]:
        """The controlled light's program (None: the layout's cycle), its approaches (lanes per
        incoming edge), the lanes whose stopped vehicles count (None: all) and its phases."""
        net = world.network
        if self.config.network.kind == "intersection":
            groups = net.lane_signal_group
            return None, [np.flatnonzero(groups == g) for g in range(net.signal_groups)], None, phase_intervals(net)
        plan = world.signals
        if not getattr(plan, "programs", None):
            raise ValueError("signal control: this network has no traffic light")
        program = plan.index_of(self.tls) if self.tls is not None else \
            max(range(len(plan.programs)), key=lambda k: sum(g >= 0 for g in plan.programs[k].groups))
        groups = [g for g in plan.programs[program].groups if g >= 0]
        links = np.flatnonzero(np.isin(net.lane_entry_group, groups) & net.lane_is_link)
        entries = sorted({int(net.lane_link_from[k]) for k in links if net.lane_link_from[k] >= 0})
        by_edge: dict[int, list[int]] = {}
        for lane in entries:
            by_edge.setdefault(int(net.lane_edge[lane]), []).append(lane)
        self.tls = plan.programs[program].name
        approaches = [np.array(v) for _, v in sorted(by_edge.items())]
        return program, approaches, np.concatenate([np.array(entries, dtype=np.int64), links]), \
            plan.green_phases(program)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.world = World(self.config, seed=int(self.np_random.integers(2**31 - 1)))
        view = None if self._program is None else ProgramView(self.world, self._program)
        self.controller = None if self.fixed_time else SignalController(self.world, view)
        self.occupants.start(self.world)
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
            here = ~veh.crashed if self._junction_lanes is None else ~veh.crashed & np.isin(veh.lane, self._junction_lanes)
            delay += float(((veh.v < STOPPED_MPS) & here).sum()) * dt
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
        obs = np.zeros(self.observation_space.shape, dtype=np.float32)
        near = (net.lane_s_to[veh.lane] - veh.s) < APPROACH_M
        for g, lanes in enumerate(self._approach_lanes):
            on = np.isin(veh.lane, lanes) & near
            obs[2 * g] = min(float((on & (veh.v < STOPPED_MPS)).sum()) / 10.0, 1.0)
            obs[2 * g + 1] = min(float((on & (veh.v >= STOPPED_MPS)).sum()) / 10.0, 1.0)
        k = 2 * len(self._approach_lanes)
        waiting = ped.phase == WAIT
        obs[k] = min(float(waiting.sum()) / 10.0, 1.0)
        obs[k + 1] = min(float(ped.waited[waiting].max()) / 120.0, 1.0) if waiting.any() else 0.0
        if self.controller is not None:
            current, elapsed, clearing = self.controller.phase, self.controller.view.elapsed_s, self.controller.clearing
        elif self._program is None:
            current, elapsed = world.signals.interval, world.signals.clock_s
            clearing = world.signals.interval not in self._phases
        else:
            current, elapsed = int(world.signals.phase[self._program]), float(world.signals.in_phase_s[self._program])
            clearing = current not in self._phases
        if current in self._phases:
            obs[k + 2 + self._phases.index(current)] = 1.0
        obs[-2] = min(elapsed / 60.0, 1.0)
        obs[-1] = float(clearing)
        return obs

    def close(self) -> None:
        self.occupants.close()
        self.world = None

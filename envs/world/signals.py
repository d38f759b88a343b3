"""The signal plan of a world: which interval of the cycle shows, for how long, and its faults.

One plan per world today (the intersection's; highway and crosswalk have none). A plan
steps through its cycle of intervals (greens, ambers, all-reds, pedestrian walk and
flashing don't-walk), each with a planned duration an operator may retime. An external
controller (RL signal control) sets the interval itself (``manual``); injected faults
hold the current interval (``stuck``) or darken every head (``dark``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.network import AMBER, DONT_WALK, GREEN, RED, Network

PHASE_SUFFIXES = (" green", "pedestrians walk")  # signal intervals that are phases (the rest are clearances)
MIN_GREEN_S = 5.0  # [s] shortest green an operator's retiming may leave
DUE_TOLERANCE_S = 1e-6  # [s] a program this near its phase change is tested exactly (its clock and the countdown round apart)


class SignalPlan:
    """The state of a world's signals: current interval, time in it, planned durations, faults."""

    def __init__(self, network: Network) -> None:
        self.cycle = network.signal_cycle
        self.interval = 0  # index of the interval showing
        self.clock_s = 0.0  # [s] time spent in it
        self.durations = np.array([iv.duration for iv in self.cycle])  # [s] planned, retimable
        self.stuck = False  # injected fault: the controller no longer advances the plan
        self.dark = False  # injected fault: the heads are dark; drivers treat the junction as unsignalised
        self.manual = False  # an external controller (RL) sets the intervals; the plan does not advance
        self.group_state = np.full(network.signal_groups, GREEN, dtype=np.int64)  # per signal group (never rebound)
        self.crossing_signal = np.full(network.pedestrian_signals, DONT_WALK, dtype=np.int64)  # per pedestrian head
        self.apply()

    def apply(self) -> None:
        """Show the current interval on every head (all green and dark when the heads are dark)."""
        if self.cycle:
            self.group_state[:] = GREEN if self.dark else self.cycle[self.interval].groups
            self.crossing_signal[:] = DONT_WALK if self.dark else self.cycle[self.interval].crossings

    @property
    def name(self) -> str:
        """Name of the current interval ('' without signals)."""
        return self.cycle[self.interval].name if self.cycle else ""

    def is_phase(self, index: int) -> bool:
        """Whether interval ``index`` serves traffic (a green or the pedestrian walk), not a clearance."""
        return self.cycle[index].name.endswith(PHASE_SUFFIXES)

    @property
    def elapsed(self) -> tuple[float, float]:
        """Time [s] spent in the current interval, and its planned duration [s] (0, inf without signals)."""
        if not self.cycle:
            return 0.0, float("inf")
        if self.manual and self.is_phase(self.interval):
            return float(self.clock_s), float("inf")  # a controller's phase lasts as long as it decides
        return float(self.clock_s), float(self.durations[self.interval])

    def update(self, dt: float) -> None:
        """Advance the plan's clock by ``dt`` [s]; move to the next interval when this one is over."""
        if not self.cycle:
            return
        self.clock_s += dt
        # at most one interval per step: after a stuck controller recovers or a retiming, the
        # plan resumes with the next interval in full (an amber or all-red is never skipped)
        if not (self.stuck or self.manual) and self.clock_s >= self.durations[self.interval]:
            left = self.clock_s - self.durations[self.interval]
            self.clock_s = left if left < dt else 0.0
            self.interval = (self.interval + 1) % len(self.cycle)
            self.apply()

    def set_interval(self, index: int, elapsed_s: float = 0.0) -> None:
        """Jump to interval ``index`` with ``elapsed_s`` [s] already spent in it."""
        self.interval, self.clock_s = index, elapsed_s
        self.apply()

    def retime(self, green_factor: float = 1.0, pedestrian_factor: float = 1.0) -> None:
        """Scale the green intervals and the pedestrian walk interval (ambers and all-reds keep
        their safety durations). Applies at once: a running interval that is already longer
        than its new duration ends at the next step."""
        base = np.array([iv.duration for iv in self.cycle])
        names = [iv.name for iv in self.cycle]
        scale = np.array([green_factor if n.endswith(" green") else pedestrian_factor if n == "pedestrians walk"
                          else 1.0 for n in names])
        self.durations = np.maximum(base * scale, np.minimum(base, MIN_GREEN_S))


# SUMO's link states (``docs/web/docs/Simulation/Traffic_Lights.md``): what a driver sees, and
# whether a green is permissive (the link yields to the links its junction says it must)
LINK_STATES = {"G": (GREEN, False), "g": (GREEN, True), "y": (AMBER, False), "Y": (AMBER, False),
               "r": (RED, False), "u": (RED, False), "s": (GREEN, True), "o": (GREEN, True), "O": (GREEN, False)}


@dataclass
class Program:
    """One traffic light's fixed-time program on the world's signal groups: per phase, its
    duration [s] and the state of each of the light's links (``groups[k]`` is the world's
    signal group of the light's link index ``k``; -1 where no link of the network uses it)."""

    name: str
    groups: list[int]
    durations: list[float]  # [s]
    states: list[str]  # one character per link index, SUMO's link states
    offset_s: float = 0.0  # [s] the first phase begins at this time of the world (SUMO's offset less its begin)


class ProgramPlan:
    """The signals of a general network: one fixed-time program per traffic light, each on its
    own cycle and offset, showing SUMO's link states per link (``G`` green, ``g`` permissive
    green, ``y`` amber, ``r`` red, ...). The same controls as :class:`SignalPlan`: ``stuck``
    holds every light's phase, ``dark`` switches them all off (drivers yield as at an
    unsignalised junction), ``retime`` scales the greens."""

    def __init__(self, network: Network) -> None:
        self.programs: list[Program] = list(network.signal_programs)
        groups = network.signal_groups
        self.group_state = np.full(groups, GREEN, dtype=np.int64)  # never rebound
        self.group_permissive = np.zeros(groups, dtype=bool)
        self.crossing_signal = np.full(network.pedestrian_signals, DONT_WALK, dtype=np.int64)
        self._link_minor = network.lane_minor
        self._signalled = np.flatnonzero(network.lane_entry_group >= 0)  # links a light controls
        self._signalled_group = network.lane_entry_group[self._signalled]
        self._yield = network.lane_minor.copy()
        self.stuck = self.dark = self.manual = False
        self.base = [np.array(p.durations, float) for p in self.programs]
        self.program_durations = [b.copy() for b in self.base]
        # per program: the phase showing and the time [s] spent in it
        self.phase = np.zeros(len(self.programs), dtype=np.int64)
        self.in_phase_s = np.zeros(len(self.programs))
        self.held = np.zeros(len(self.programs), dtype=bool)  # programs an external controller sets (RL)
        self._due_in_s = 0.0  # [s] until the soonest phase change of a running program (0: look now)
        self._codes = [np.array([[LINK_STATES.get(c, (GREEN, True))[0] for c in st] for st in p.states], np.int64)
                       for p in self.programs]
        self._permissive = [np.array([[LINK_STATES.get(c, (GREEN, True))[1] for c in st] for st in p.states], bool)
                            for p in self.programs]
        self._groups = [np.array(p.groups, np.int64) for p in self.programs]
        self._used = [g >= 0 for g in self._groups]
        for k, program in enumerate(self.programs):  # the first phase begins at ``offset`` [s]
            t = (-program.offset_s) % max(float(self.base[k].sum()), 1e-9)
            while t >= self.base[k][self.phase[k]]:
                t -= self.base[k][self.phase[k]]
                self.phase[k] = (self.phase[k] + 1) % len(self.base[k])
            self.in_phase_s[k] = t
        self.apply()

    # the interface SignalPlan offers to the rest of the world
    interval = 0
    clock_s = 0.0
    name = ""

    @property
    def durations(self) -> np.ndarray:
        """[s] every program's phase durations, one after another."""
        return np.concatenate(self.program_durations) if self.programs else np.zeros(0)

    @property
    def elapsed(self) -> tuple[float, float]:
        return 0.0, float("inf")

    def is_phase(self, index: int) -> bool:
        return True

    def apply(self, only: list[int] | None = None) -> None:
        """Show each program's current phase (every program, or those in ``only``)."""
        for k in range(len(self.programs)) if only is None else only:
            groups, used = self._groups[k], self._used[k]
            if self.dark:
                self.group_state[groups[used]] = GREEN
                self.group_permissive[groups[used]] = True
            else:
                self.group_state[groups[used]] = self._codes[k][self.phase[k]][used]
                self.group_permissive[groups[used]] = self._permissive[k][self.phase[k]][used]

    def update(self, dt: float) -> None:
        """Advance every program's clock by ``dt`` [s], moving on the ones whose phase is over."""
        if not self.programs or self.stuck or self.manual:
            return
        self.in_phase_s += dt
        self._due_in_s -= dt
        if self._due_in_s > DUE_TOLERANCE_S:  # no phase can be over yet (the exact test below decides)
            return
        changed = []
        soonest = np.inf
        for k in range(len(self.programs)):
            if self.held[k]:
                continue
            planned = self.program_durations[k][self.phase[k]]
            if self.in_phase_s[k] >= planned:
                self.in_phase_s[k] -= planned
                self.phase[k] = (self.phase[k] + 1) % len(self.program_durations[k])
                changed.append(k)
                planned = self.program_durations[k][self.phase[k]]
            soonest = min(soonest, planned - self.in_phase_s[k])
        self._due_in_s = soonest
        if changed:
            self.apply(changed)

    def must_yield(self) -> np.ndarray:
        """Per lane: a junction link that yields now (a minor link, or a permissive or dark signal)."""
        if not len(self._signalled):
            return self._link_minor
        self._yield[self._signalled] = self.group_permissive[self._signalled_group]
        return self._yield

    def set_interval(self, index: int, elapsed_s: float = 0.0) -> None:
        raise NotImplementedError("a general network has a program per traffic light: use set_phase(program, phase)")

    def index_of(self, name: str) -> int:
        """The index of the program of traffic light ``name`` (a KeyError naming the lights if none)."""
        for k, program in enumerate(self.programs):
            if program.name == name:
                return k
        raise KeyError(f"no traffic light {name!r} (the network's: {', '.join(p.name for p in self.programs)})")

    def green_phases(self, program: int) -> list[int]:
        """The phases of ``program`` that serve traffic: a green and no amber (the rest clear)."""
        return [i for i, st in enumerate(self.programs[program].states) if ("G" in st or "g" in st)
                and "y" not in st.lower()]

    def set_phase(self, program: int, phase: int, hold: bool = True) -> None:
        """Show ``phase`` of ``program`` from now; ``hold`` keeps it until set again (an external
        controller drives that light; the others run their programs)."""
        self.phase[program], self.in_phase_s[program] = phase, 0.0
        self.held[program] = hold
        self._due_in_s = 0.0
        self.apply([program])

    def retime(self, green_factor: float = 1.0, pedestrian_factor: float = 1.0) -> None:
        """Scale the phases that show a green (and no amber) by ``green_factor``; others keep theirs."""
        self._due_in_s = 0.0
        for k, program in enumerate(self.programs):
            green = np.isin(np.arange(len(program.states)), self.green_phases(k))
            self.program_durations[k] = np.where(green, np.maximum(self.base[k] * green_factor,
                                                                   np.minimum(self.base[k], MIN_GREEN_S)), self.base[k])

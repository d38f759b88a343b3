"""The signal plan of a world: which interval of the cycle shows, for how long, and its faults.

One plan per world today (the intersection's; highway and crosswalk have none). A plan
steps through its cycle of intervals (greens, ambers, all-reds, pedestrian walk and
flashing don't-walk), each with a planned duration an operator may retime. An external
controller (RL signal control) sets the interval itself (``manual``); injected faults
hold the current interval (``stuck``) or darken every head (``dark``).
"""

from __future__ import annotations

import numpy as np

from envs.network import DONT_WALK, GREEN, Network

PHASE_SUFFIXES = (" green", "pedestrians walk")  # signal intervals that are phases (the rest are clearances)
MIN_GREEN_S = 5.0  # [s] shortest green an operator's retiming may leave


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

"""Label-free anomaly detection: behaviour the twin does not expect, and inconsistent signals and sensors.

Each check turns a residual per actor into a one-sided CUSUM score,
``S <- max(0, S + (residual - slack) * dt)``, so a single odd step raises nothing and a
persistent outlier grows until ``S / alarm`` passes 1 (low), 2 (medium) and 4 (high). The sum
is capped at ``CAP_SCORE`` x alarm, and once the residual is back under the slack it drains by
at least one alarm every ``RECOVERY_S``: an anomaly closes within a few seconds of the behaviour
it flags ending (a plain CUSUM drained at the slack alone kept a 3 s sensor dropout open for 52 s):

- ``behaviour``: human-driven vehicles whose acceleration differs from what the twin's
  behaviour model (IDM toward the leader and the next stopping point, with the driver's
  own parameters and reaction lag) commands given the true surroundings [m/s^2]
- ``pedestrian_stopped``: pedestrians on the carriageway moving slower than their walking
  speed (the share of it lost), from their displacement between updates
- ``sensor``: vehicles whose forward sensor reports a leader gap that disagrees with the
  twin's [m] (a dropout counts as ``dropout_residual_m``)
- ``signal_stuck``: the current signal interval has run longer than its planned duration [s]
- ``signal_conflict``: two signal groups whose paths through the junction cross are not both
  red (a conflict monitor); raised at once as high

No check needs labels or knows which faults were injected; the thresholds are in
``AnomalyThresholds`` (scenario YAML ``supervisor.anomaly``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numba import njit

from agents.supervisor.config import AnomalyThresholds
from agents.supervisor.hazards import Flag
from envs.actors import CROSS, HUMAN
from envs.network import RED, Network
from envs.state import WorldState


CAP_SCORE = 5.0  # the CUSUM sum stops at this many alarms (above "high", 4)
RECOVERY_S = 1.0  # [s] a residual back under the slack drains at least one alarm per this time


@dataclass
class Cusum:
    """One-sided CUSUM per actor id (ids kept sorted, with their sums)."""

    slack: float
    alarm: float
    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    sums: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def update(self, ids: np.ndarray, residual: np.ndarray, dt: float) -> np.ndarray:
        """Add ``residual`` for ``ids`` over ``dt`` [s]; forget absent ids; returns S / alarm aligned with ``ids``."""
        ids = np.asarray(ids, np.int64)
        new, ascending = _cusum_step(self.ids, self.sums, ids, np.asarray(residual, float), self.slack, dt,
                                     CAP_SCORE * self.alarm, self.alarm / RECOVERY_S)
        if ascending:  # actor ids are ascending in the world's columns: no sort needed
            self.ids, self.sums = ids, new
        else:
            order = np.argsort(ids)
            self.ids, self.sums = ids[order], new[order]
        return new / self.alarm


@njit(cache=True)
def _cusum_step(prev_ids, prev_sums, ids, residual, slack, dt, cap, recovery_rate):
    """New CUSUM sums for ``ids`` (previous sums looked up in the sorted ``prev_ids``), at most
    ``cap``, drained at least at ``recovery_rate`` [per s] while the residual is under the slack;
    and whether ``ids`` is ascending."""
    n = ids.shape[0]
    out = np.empty(n)
    ascending = True
    m = prev_ids.shape[0]
    for i in range(n):
        prev = 0.0
        if m:
            j = np.searchsorted(prev_ids, ids[i])
            if j < m and prev_ids[j] == ids[i]:
                prev = prev_sums[j]
        step = residual[i] - slack
        if step < 0.0:
            step = min(step, -recovery_rate)
        out[i] = min(max(0.0, prev + step * dt), cap)
        if i and ids[i] <= ids[i - 1]:
            ascending = False
    return out, ascending


@njit(cache=True)
def _vehicle_residuals(driver, crashed, a, expected, truth_gap, sensed_gap, dropout_residual):
    """Per vehicle: |acceleration - behaviour model's| [m/s^2] (0 for RL-driven and crashed
    vehicles) and |sensed - true leader gap| [m] (``dropout_residual`` when one side sees no leader)."""
    n = a.shape[0]
    accel, gap = np.zeros(n), np.zeros(n)
    for i in range(n):
        if driver[i] == HUMAN and not crashed[i]:
            accel[i] = abs(a[i] - expected[i])
        t_ok, s_ok = np.isfinite(truth_gap[i]), np.isfinite(sensed_gap[i])
        if t_ok and s_ok:
            gap[i] = abs(sensed_gap[i] - truth_gap[i])
        elif t_ok != s_ok:
            gap[i] = dropout_residual
    return accel, gap


def conflicting_groups(network: Network) -> np.ndarray:
    """(groups, groups) bool: signal groups with a pair of crossing paths through the junction."""
    n = network.signal_groups
    out = np.zeros((n, n), dtype=bool)
    group_of_path = {ln.next: ln.signal_group for ln in network.lanes if ln.signal_group >= 0 and ln.next >= 0}
    for a, ga in group_of_path.items():
        for b, gb in group_of_path.items():
            if ga != gb and network.lane_conflicts[a, b]:
                out[ga, gb] = True
    return out


@dataclass
class AnomalyDetector:
    """Raises anomaly flags from consecutive world states (see the module docstring)."""

    thresholds: AnomalyThresholds = field(default_factory=AnomalyThresholds)
    _last_time: float | None = None
    _last_ped: dict[int, tuple[float, float]] = field(default_factory=dict)
    _conflicts: np.ndarray | None = None

    def __post_init__(self) -> None:
        th = self.thresholds
        self.accel = Cusum(th.accel_slack_mps2, th.accel_alarm_mps)
        self.walk = Cusum(th.walk_slack, th.walk_alarm_s)
        self.gap = Cusum(th.gap_slack_m, th.gap_alarm_ms)

    def update(self, state: WorldState) -> list[Flag]:
        """Flags for ``state``; the first call only primes the detector."""
        dt = 0.0 if self._last_time is None else state.time - self._last_time
        self._last_time = state.time
        flags = self._vehicles(state, dt) + self._pedestrians(state, dt) + self._signals(state)
        return flags

    def _vehicles(self, state: WorldState, dt: float) -> list[Flag]:
        veh, th = state.vehicles, self.thresholds
        ids = veh["id"]
        if not len(ids) or len(state.expected_accel) != len(ids) or len(state.sensed_gap) != len(ids):
            return []
        accel, gap = _vehicle_residuals(veh["driver"], veh["crashed"], veh["a"], state.expected_accel, state.leader_gap,
                                        state.sensed_gap, th.dropout_residual_m)
        rows = np.arange(len(ids))
        return (self._flags("behaviour", self.accel.update(ids, accel, dt), veh, rows)
                + self._flags("sensor", self.gap.update(ids, gap, dt), veh, rows))

    def _pedestrians(self, state: WorldState, dt: float) -> list[Flag]:
        ped = state.pedestrians
        if not len(ped["id"]) and not len(self.walk.ids):  # nobody to watch, and nobody watched before
            self._last_ped = {}
            return []
        rows = (ped["phase"] == CROSS).nonzero()[0]
        ids = ped["id"][rows]
        residual = np.zeros(len(rows))
        for k, (r, pid) in enumerate(zip(rows.tolist(), ids.tolist())):
            last = self._last_ped.get(pid)
            if last is not None and dt > 0:
                moved = np.hypot(ped["x"][r] - last[0], ped["y"][r] - last[1]) / dt
                residual[k] = max(1.0 - moved / max(float(ped["speed"][r]), 0.1), 0.0)
        self._last_ped = {int(pid): (float(ped["x"][r]), float(ped["y"][r])) for r, pid in zip(rows, ids)}
        return self._flags("pedestrian_stopped", self.walk.update(ids, residual, dt), ped, rows)

    def _signals(self, state: WorldState) -> list[Flag]:
        flags = []
        overrun = state.signal_elapsed_s - state.signal_planned_s
        if np.isfinite(overrun) and overrun > 0:
            score = overrun / self.thresholds.signal_overrun_s
            if score >= 1.0:
                flags.append(Flag("signal_stuck", (), score, _level(score), worse_is_lower=False, category="anomaly"))
        if len(state.group_state) > 1:
            if self._conflicts is None or self._conflicts.shape[0] != len(state.group_state):
                self._conflicts = conflicting_groups(state.network)
            live = state.group_state != RED
            clash = self._conflicts & live[:, None] & live[None, :]
            if clash.any():
                flags.append(Flag("signal_conflict", (), float(clash.sum() // 2), 3, worse_is_lower=False,
                                  category="anomaly"))
        return flags

    @staticmethod
    def _flags(kind: str, scores: np.ndarray, cols: dict, rows: np.ndarray) -> list[Flag]:
        """Flags for the actors in ``rows`` whose score (aligned with ``rows``) reached 1."""
        out = []
        for k in (scores >= 1.0).nonzero()[0]:
            r, score = rows[k], float(scores[k])
            out.append(Flag(kind, (int(cols["id"][r]),), score, _level(score), float(cols["x"][r]), float(cols["y"][r]),
                            worse_is_lower=False, category="anomaly"))
        return out


def _level(score: float) -> int:
    return 3 if score >= 4.0 else 2 if score >= 2.0 else 1

"""Hazard events from surrogate safety measures, rule checks and world events, merged over time.

``HazardTracker.update(state)`` runs every physics step (or every few) on a ``WorldState``
and raises *flags*; a flag for one kind and one set of actors that repeats within
``merge_gap_s`` extends the same ``HazardEvent`` (one near miss is one event, not 40), which
keeps its first and last time, its worst value and the highest severity reached.

Categories and kinds (``worst`` is in the unit named):

- hazard: ``ttc`` time to collision behind the leader [s] with both keeping their current
  accelerations (the "modified TTC": a follower already braking enough raises nothing, a
  braking leader is seen at once), ``drac`` deceleration to avoid the collision [m/s^2],
  ``headway`` [s] while not falling back, ``crossing_conflict`` time
  until two vehicles on conflicting paths through a junction are both in it [s],
  ``pedestrian_conflict`` time until a vehicle that cannot stop comfortably reaches a
  crosswalk with a pedestrian on it [s], ``pet`` post-encroachment time at a crosswalk or a
  junction conflict area [s]
- violation: ``red_light``, ``speeding`` (speed over the posted limit, as a ratio - 1),
  ``fail_to_yield`` (a moving vehicle in a crosswalk a pedestrian is on), ``jaywalking``,
  ``unsafe_lane_change`` (the new follower's time headway [s])
- incident: ``collision``, ``off_road`` (from the twin's own events)
- anomaly: flags from ``agents.supervisor.anomaly.AnomalyDetector``, merged here the same way

Conflict areas are whole crosswalks and whole junction lanes, which is conservative (a
larger area gives a smaller PET: a pedestrian stepping on just behind a car in the far
lane counts), so by default PET events are graded low only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numba import njit

from agents.supervisor.config import SEVERITIES, HazardThresholds, Severity
from agents.supervisor.kinds import CATEGORY
from agents.supervisor.measures import leader_measures
from envs.state import WorldState



@dataclass
class Flag:
    """One check that fired at one instant; ``level`` 1..3 is low..high."""

    kind: str
    actors: tuple[int, ...]
    value: float
    level: int
    x_m: float = 0.0
    y_m: float = 0.0
    worse_is_lower: bool = True
    category: str = ""


@dataclass
class HazardEvent:
    """One hazard, violation, incident or anomaly over time (kinds: module docstring)."""

    kind: str
    actors: tuple[int, ...]
    start_s: float
    end_s: float
    worst: float  # the worst value of the measure; nan for pass-through events
    severity: Severity
    x_m: float = 0.0
    y_m: float = 0.0
    steps: int = 1
    category: str = "hazard"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "category": self.category, "actors": list(self.actors),
                "start_s": round(self.start_s, 3), "end_s": round(self.end_s, 3),
                "worst": None if np.isnan(self.worst) else round(float(self.worst), 3),
                "severity": self.severity, "x_m": round(self.x_m, 2), "y_m": round(self.y_m, 2)}

    def at_least(self, severity: Severity) -> bool:
        return SEVERITIES.index(self.severity) >= SEVERITIES.index(severity)


@dataclass
class HazardTracker:
    """Flags hazards each update and merges repeated flags into events."""

    thresholds: HazardThresholds = field(default_factory=HazardThresholds)
    open: dict[tuple, HazardEvent] = field(default_factory=dict)
    closed: list[HazardEvent] = field(default_factory=list)
    _events_seen: int = 0
    _crossing_ped_s: dict[int, tuple[float, int]] = field(default_factory=dict)  # crossing -> (last time, pedestrian)
    _crossing_veh: dict[int, tuple[float, int]] = field(default_factory=dict)  # crossing -> (last time, vehicle id)
    _lane_veh: dict[int, tuple[float, int]] = field(default_factory=dict)  # junction lane -> (last time, vehicle id)
    _on_lane: set = field(default_factory=set)  # (vehicle id, junction lane) at the last update
    _in_crossing: set = field(default_factory=set)  # (vehicle id, crossing) at the last update
    _ped_on: set = field(default_factory=set)  # (pedestrian id, crossing) at the last update
    _seen_crossing: set = field(default_factory=set)  # pedestrians already judged for jaywalking

    @property
    def events(self) -> list[HazardEvent]:
        """Every event so far, closed ones first."""
        return self.closed + list(self.open.values())

    def update(self, state: WorldState, extra: list[Flag] = ()) -> list[HazardEvent]:
        """Flag hazards in ``state`` (plus ``extra`` flags, e.g. anomalies); returns the events that started now."""
        flags = self.leader_flags(state) + self.junction_flags(state) + self.crosswalk_flags(state)
        flags += self.rule_flags(state) + list(extra)
        started = [ev for f in flags if (ev := self._merge(f, state.time)) is not None]
        for e in state.events[self._events_seen:]:
            ev = HazardEvent(e.kind, tuple(e.actors), e.time, e.time, float("nan"), "high", e.x, e.y,
                             category=CATEGORY.get(e.kind, "incident"))
            self.closed.append(ev)
            started.append(ev)
        self._events_seen = len(state.events)
        for key in [k for k, ev in self.open.items() if state.time - ev.end_s > self.thresholds.merge_gap_s]:
            self.closed.append(self.open.pop(key))
        return started

    # ---- checks -----------------------------------------------------------------------------
    def leader_flags(self, state: WorldState) -> list[Flag]:
        """TTC, DRAC, headway and unsafe lane changes between each vehicle and its leader."""
        th, veh = self.thresholds, state.vehicles
        m = leader_measures(state)
        if not len(m.row):
            return []
        levels = _leader_levels(m.ttc_accel_s, m.drac_mps2, m.headway_s, m.ttc_s, veh["v"], veh["lane"],
                                veh["target_lane"], m.row, state.leader[m.row], self._limits, th.min_speed_mps)
        flags = []
        for k, j in zip(*np.nonzero(levels)):
            kind, lower, pair = LEADER_KINDS[j]
            r = m.row[k]
            if veh["crashed"][r]:  # a crashed follower is at no further risk: its collision is the incident
                continue
            value = (m.ttc_accel_s, m.drac_mps2, m.headway_s, m.headway_s, m.ttc_s)[j][k]
            actors = (int(m.leader[k]), int(m.follower[k])) if pair else (int(m.follower[k]), int(m.leader[k]))
            flags.append(Flag(kind, actors, float(value), int(levels[k, j]), float(veh["x"][r]), float(veh["y"][r]),
                              lower))
        return flags

    @property
    def _limits(self) -> np.ndarray:
        th = self.thresholds
        return np.array([th.ttc_s, th.drac_mps2, th.headway_s, th.lane_change_headway_s], float)

    def junction_flags(self, state: WorldState) -> list[Flag]:
        """Vehicles on conflicting paths through a junction that will both be in it within the
        horizon (``crossing_conflict``), and PET when one enters a junction lane that a vehicle
        on a conflicting lane left a moment ago."""
        th, veh, net = self.thresholds, state.vehicles, state.network
        junction = self._junction_lanes(net)
        if not len(veh["id"]) or junction is None:
            return []
        lane = veh["lane"]
        on = junction[lane]
        flags: list[Flag] = []
        pairs = _junction_conflicts(lane, veh["s"], veh["v"], 0.5 * veh["length"], veh["crashed"], state.stop_distance,
                                    junction, net.lane_next, net.lane_s_from, net.lane_s_to, net.lane_conflicts,
                                    th.conflict_horizon_s, np.array(th.conflict_s, float))
        for i, j, value, level in pairs:
            actors = tuple(sorted((int(veh["id"][i]), int(veh["id"][j]))))
            flags.append(Flag("crossing_conflict", actors, value, level, float(veh["x"][i]), float(veh["y"][i])))
        # PET at junction lanes: entering a lane whose conflicting lanes were used a moment ago
        now = state.time
        for r in np.flatnonzero(on):
            ln, vid = int(lane[r]), int(veh["id"][r])
            if (vid, ln) not in self._on_lane:
                for other in np.flatnonzero(net.lane_conflicts[ln]):
                    seen = self._lane_veh.get(int(other))
                    if seen is not None and seen[1] != vid:
                        flags += self._pet_flag(now - seen[0], (seen[1], vid), veh["x"][r], veh["y"][r])
        for r in np.flatnonzero(on):
            self._lane_veh[int(lane[r])] = (now, int(veh["id"][r]))
        self._on_lane = {(int(veh["id"][r]), int(lane[r])) for r in np.flatnonzero(on)}
        return flags

    def _junction_lanes(self, net) -> np.ndarray | None:
        """Per lane: whether it is a junction lane with conflicts (None when the network has none)."""
        if getattr(self, "_junction_for", None) is not net:
            self._junction_for = net
            mask = net.lane_conflicts.any(axis=1)
            self._junction = mask if mask.any() else None
        return self._junction

    def crosswalk_flags(self, state: WorldState) -> list[Flag]:
        """Pedestrian conflicts, failures to yield and PET at crosswalks."""
        th, veh, ped, net = self.thresholds, state.vehicles, state.pedestrians, state.network
        now, flags = state.time, []
        if not len(net.zone_lane) or state.to_zone.shape != (len(veh["id"]), len(net.zone_lane)):
            return []
        crossing_peds: dict[int, list[int]] = {}
        for k in np.flatnonzero(ped["phase"] == 2):  # CROSS
            crossing_peds.setdefault(int(ped["crossing"][k]), []).append(int(ped["id"][k]))
        for c, peds in crossing_peds.items():
            self._crossing_ped_s[c] = (now, peds[0])
        dist, past = state.to_zone, state.past_zone
        inside = (dist <= 0.0) & ~past
        v = veh["v"]
        entered_now: set = set()
        relevant = inside
        if crossing_peds:  # vehicles approaching a crossing a pedestrian is on
            busy = np.isin(net.zone_crossing, list(crossing_peds))
            relevant = inside | ((dist > 0.0) & np.isfinite(dist) & ~past & busy[None, :])
        for r, z in zip(*np.nonzero(relevant)):
            c = int(net.zone_crossing[z])
            vid = int(veh["id"][r])
            peds = crossing_peds.get(c, [])
            xy = (float(veh["x"][r]), float(veh["y"][r]))
            if inside[r, z]:
                entered_now.add((vid, c))
                if peds and v[r] > 1.0:
                    flags.append(Flag("fail_to_yield", (vid, *peds), float(v[r]), 3, *xy, worse_is_lower=False))
                    flags.append(Flag("pedestrian_conflict", (vid, *peds), 0.0, 3, *xy))
                elif (vid, c) not in self._in_crossing and c in self._crossing_ped_s and not peds:
                    seen_s, pid = self._crossing_ped_s[c]
                    flags += self._pet_flag(now - seen_s, (vid, pid), *xy)
                self._crossing_veh[c] = (now, vid)
            elif peds and v[r] > 0.5:  # needs more than a comfortable stop, and is not braking that hard
                need = v[r] ** 2 / (2.0 * max(dist[r, z], 0.1))
                if need > th.comfortable_decel_mps2 and need > 0.5 - veh["a"][r]:
                    t = float(dist[r, z] / v[r])
                    level = max(int(_levels(np.array([t]), th.ttc_s, True)[0]), 1)
                    flags.append(Flag("pedestrian_conflict", (vid, *peds), t, level, *xy))
        # a pedestrian stepping on just after a vehicle left the crossing
        for c, peds in crossing_peds.items():
            seen = self._crossing_veh.get(c)
            if seen is not None and seen[0] < now and not any(k[1] == c for k in entered_now):
                for pid in peds:
                    if (pid, c) not in self._ped_on:
                        flags += self._pet_flag(now - seen[0], (seen[1], pid), 0.0, 0.0)
        self._in_crossing = entered_now
        self._ped_on = {(pid, c) for c, peds in crossing_peds.items() for pid in peds}
        return flags

    def rule_flags(self, state: WorldState) -> list[Flag]:
        """Speeding against the local limit and jaywalking (red-light running comes from the twin)."""
        th, veh, ped = self.thresholds, state.vehicles, state.pedestrians
        flags = []
        if len(veh["id"]) and len(state.speed_limit) == len(veh["id"]):
            rows, over, level = _speeding(veh["v"], state.speed_limit, veh["driver"], np.array(th.speeding, float),
                                          th.min_speed_mps)
            for r, value, lv in zip(rows.tolist(), over.tolist(), level.tolist()):
                flags.append(Flag("speeding", (int(veh["id"][r]),), value, lv, float(veh["x"][r]), float(veh["y"][r]),
                                  worse_is_lower=False))
        walking = (ped["phase"] == 2).nonzero()[0] if len(ped["id"]) else ()
        for k in walking:
            cr = state.network.crossings[int(ped["crossing"][k])]
            against = cr.signal >= 0 and len(state.crossing_signal) and state.crossing_signal[cr.signal] != 0
            pid = int(ped["id"][k])
            if pid in self._seen_crossing:
                continue  # judged once, when the pedestrian stepped on
            self._seen_crossing.add(pid)
            if bool(ped["jaywalker"][k]) or against:
                flags.append(Flag("jaywalking", (pid,), float("nan"), 1, float(ped["x"][k]), float(ped["y"][k])))
        return flags

    def _pet_flag(self, pet: float, actors: tuple[int, ...], x: float, y: float) -> list[Flag]:
        level = int(_levels(np.array([pet]), self.thresholds.pet_s, True)[0])
        return [Flag("pet", tuple(actors), float(pet), level, float(x), float(y))] if level else []

    # ---- merging ------------------------------------------------------------------------------
    def _merge(self, f: Flag, now: float) -> HazardEvent | None:
        key = (f.kind, f.actors)
        severity = SEVERITIES[f.level - 1]
        ev = self.open.get(key)
        if ev is not None and now - ev.end_s <= self.thresholds.merge_gap_s:
            ev.end_s, ev.steps = now, ev.steps + 1
            if not np.isnan(f.value):
                ev.worst = f.value if np.isnan(ev.worst) else (min(ev.worst, f.value) if f.worse_is_lower
                                                                  else max(ev.worst, f.value))
            if f.level - 1 > SEVERITIES.index(ev.severity):
                ev.severity = severity
            return None
        if ev is not None:
            self.closed.append(self.open.pop(key))
        ev = HazardEvent(f.kind, f.actors, now, now, f.value, severity, f.x_m, f.y_m,
                         category=f.category or CATEGORY.get(f.kind, "anomaly"))
        self.open[key] = ev
        return ev


@njit(cache=True)
def _junction_conflicts(lane, s, v, half, crashed, stop, junction, lane_next, lane_s_from, lane_s_to, conflicts,
                       horizon, limits):
    """(row, row, time until both are in the junction [s], level) for vehicles on crossing paths
    through a junction whose occupancy times overlap (1 s margin) within ``horizon`` [s]."""
    n = lane.shape[0]
    path = np.full(n, -1)
    t_in = np.zeros(n)
    t_out = np.zeros(n)
    for i in range(n):
        vi = max(v[i], 0.1)
        if junction[lane[i]]:
            path[i], t_in[i] = lane[i], 0.0
            t_out[i] = (lane_s_to[lane[i]] - s[i] + half[i]) / vi
        elif lane_next[lane[i]] >= 0 and junction[lane_next[lane[i]]]:
            to_entry = max(lane_s_to[lane[i]] - (s[i] + half[i]), 0.0)  # a front already over the line: now
            if stop[i] < to_entry + 0.5 or to_entry / vi >= horizon:
                continue  # it will stop before entering, or is too far
            nxt = lane_next[lane[i]]
            path[i], t_in[i] = nxt, to_entry / vi
            t_out[i] = t_in[i] + (lane_s_to[nxt] - lane_s_from[nxt] + 2 * half[i]) / vi
        if crashed[i]:
            path[i] = -1
    out = []
    for i in range(n):
        if path[i] < 0:
            continue
        for j in range(i + 1, n):
            if path[j] < 0 or not conflicts[path[i], path[j]]:
                continue
            if t_in[i] < t_out[j] + 1.0 and t_in[j] < t_out[i] + 1.0:
                both = max(t_in[i], t_in[j])
                level = (both < limits[0]) + (both < limits[1]) + (both < limits[2])
                if level:
                    out.append((i, j, both, level))
    return out


@njit(cache=True)
def _speeding(v, limit, driver, levels, min_speed):
    """Human-driven vehicles over their posted limit: rows, speed over the limit as a ratio - 1,
    and the level 1..3 it reaches (``levels``: the ratios of low, medium, high)."""
    rows, over, level = [], [], []
    for i in range(v.shape[0]):
        lim = limit[i] if not limit[i] < 0.1 else 0.1  # np.maximum(limit, 0.1), nan kept
        ratio = v[i] / lim - 1.0
        lv = (ratio > levels[0]) + (ratio > levels[1]) + (ratio > levels[2])
        if lv and v[i] > min_speed and driver[i] == 0:
            rows.append(i)
            over.append(ratio)
            level.append(lv)
    return np.array(rows, dtype=np.int64), np.array(over, dtype=np.float64), np.array(level, dtype=np.int64)


LEADER_KINDS = (("ttc", True, False), ("drac", False, False), ("headway", True, False),
                ("unsafe_lane_change", True, True), ("cut_in", True, True))  # kind, lower is worse, actors as (leader, follower)


@njit(cache=True)
def _leader_levels(ttc, drac, headway, ttc_cv, v, lane, target_lane, rows, lead_rows, limits, min_speed):
    """(pairs, 5) severity levels 0..3 of ttc, drac, headway (moving, not falling back), unsafe
    lane change (the leader is cutting into the follower's lane, by the new headway) and cut-in
    (the same moment by constant-speed TTC and DRAC: a follower braking already has no TTC at
    its current accelerations, yet the cut-in was dangerous)."""
    n = rows.shape[0]
    out = np.zeros((n, 5), dtype=np.int64)
    for k in range(n):
        f, ld = rows[k], lead_rows[k]
        watch = v[f] > min_speed and v[f] > v[ld] - 0.5
        cut_in = target_lane[ld] != lane[ld] and lane[f] == target_lane[ld]
        by_ttc, by_drac = 0, 0
        for c in range(3):
            out[k, 0] += ttc[k] < limits[0, c]
            out[k, 1] += drac[k] > limits[1, c]
            if watch:
                out[k, 2] += headway[k] < limits[2, c]
                if cut_in:
                    out[k, 3] += headway[k] < limits[3, c]
            if cut_in:
                by_ttc += ttc_cv[k] < limits[0, c]
                by_drac += drac[k] > limits[1, c]
        out[k, 4] = max(by_ttc, by_drac)
    return out


def _levels(values: np.ndarray, limits: tuple[float, float, float], lower_is_worse: bool) -> np.ndarray:
    """0 (no hazard) to 3 (high) per value."""
    values = np.asarray(values, float)
    a, b, c = limits
    if lower_is_worse:
        return (values < a).astype(np.int64) + (values < b) + (values < c)
    return (values > a).astype(np.int64) + (values > b) + (values > c)

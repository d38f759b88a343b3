"""Hazard events from surrogate safety measures and world events, merged over time.

Every physics step (or decision tick) ``HazardTracker.update`` looks at the state's
leader/follower measures and the world's new events. A hazard for one pair of actors and
one kind is one event from its first to its last flagged step (gaps shorter than
``merge_gap_s`` are bridged), with its worst value and the highest severity reached.
Collisions, off-road and red-light events of the twin pass through as hazards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from agents.measures import leader_measures
from envs.state import WorldState

Severity = Literal["low", "medium", "high"]
SEVERITIES = ("low", "medium", "high")


class HazardThresholds(BaseModel):
    """Thresholds per measure, from low to high severity."""

    model_config = ConfigDict(extra="forbid")

    ttc_s: tuple[float, float, float] = Field((3.0, 2.0, 1.0), description="time to collision below [s]")
    drac_mps2: tuple[float, float, float] = Field((2.0, 3.4, 6.0), description="deceleration to avoid collision above")
    headway_s: tuple[float, float, float] = Field((0.8, 0.5, 0.3), description="time headway below [s], when moving")
    merge_gap_s: float = Field(1.0, ge=0.0, description="flags closer than this in time are one event [s]")
    min_speed_mps: float = Field(2.0, ge=0.0, description="headway is judged only above this speed")


@dataclass
class HazardEvent:
    """One hazard: ``kind`` among ttc / drac / headway / collision / off_road / red_light."""

    kind: str
    actors: tuple[int, ...]
    start_s: float
    end_s: float
    worst: float  # the worst value of the measure [s or m/s^2]; nan for pass-through events
    severity: Severity
    x_m: float = 0.0
    y_m: float = 0.0
    steps: int = 1

    def to_dict(self) -> dict:
        return {"kind": self.kind, "actors": list(self.actors), "start_s": round(self.start_s, 3),
                "end_s": round(self.end_s, 3), "worst": None if np.isnan(self.worst) else round(float(self.worst), 3),
                "severity": self.severity, "x_m": round(self.x_m, 2), "y_m": round(self.y_m, 2)}


@dataclass
class HazardTracker:
    """Flags hazards each update and merges repeated flags into events."""

    thresholds: HazardThresholds = field(default_factory=HazardThresholds)
    open: dict[tuple, HazardEvent] = field(default_factory=dict)
    closed: list[HazardEvent] = field(default_factory=list)
    _events_seen: int = 0

    @property
    def events(self) -> list[HazardEvent]:
        """Every event so far, closed ones first."""
        return self.closed + list(self.open.values())

    def update(self, state: WorldState) -> list[HazardEvent]:
        """Flag hazards in ``state``; returns the events that started now."""
        th, now = self.thresholds, state.time
        started: list[HazardEvent] = []
        m = leader_measures(state)
        moving = state.vehicles["v"][m.row] > th.min_speed_mps
        everyone = np.ones(len(m.row), dtype=bool)
        for kind, values, limits, worse_is_lower, mask in (
            ("ttc", m.ttc_s, th.ttc_s, True, everyone),
            ("drac", m.drac_mps2, th.drac_mps2, False, everyone),
            ("headway", m.headway_s, th.headway_s, True, moving),
        ):
            level = _levels(values, limits, worse_is_lower) * mask
            for k in np.flatnonzero(level > 0):
                actors = (int(m.follower[k]), int(m.leader[k]))
                r = m.row[k]
                xy = (float(state.vehicles["x"][r]), float(state.vehicles["y"][r]))
                ev = self._flag(kind, actors, now, float(values[k]), SEVERITIES[level[k] - 1], worse_is_lower, xy)
                if ev is not None:
                    started.append(ev)
        for e in state.events[self._events_seen:]:
            ev = HazardEvent(e.kind, tuple(e.actors), e.time, e.time, float("nan"), "high", e.x, e.y)
            self.closed.append(ev)
            started.append(ev)
        self._events_seen = len(state.events)
        for key in [k for k, ev in self.open.items() if now - ev.end_s > th.merge_gap_s]:
            self.closed.append(self.open.pop(key))
        return started

    def _flag(self, kind, actors, now, value, severity, worse_is_lower, xy) -> HazardEvent | None:
        key = (kind, actors)
        ev = self.open.get(key)
        if ev is not None and now - ev.end_s <= self.thresholds.merge_gap_s:
            ev.end_s, ev.steps = now, ev.steps + 1
            ev.worst = min(ev.worst, value) if worse_is_lower else max(ev.worst, value)
            if SEVERITIES.index(severity) > SEVERITIES.index(ev.severity):
                ev.severity = severity
            return None
        if ev is not None:
            self.closed.append(self.open.pop(key))
        ev = HazardEvent(kind, actors, now, now, value, severity, *xy)
        self.open[key] = ev
        return ev


def _levels(values: np.ndarray, limits: tuple[float, float, float], lower_is_worse: bool) -> np.ndarray:
    """0 (no hazard) to 3 (high) per value."""
    values = np.asarray(values, float)
    if lower_is_worse:
        return sum((values < lim).astype(int) for lim in limits)
    return sum((values > lim).astype(int) for lim in limits)

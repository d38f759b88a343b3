"""Detectors of a world (imported networks): induction loops and lane-area detectors that
count, as SUMO's do, per aggregation period.

- an induction loop at station ``s`` of a lane counts the vehicles whose front passes it,
  their mean speed [m/s], and its occupancy: the share of the time [%] a vehicle body
  covers it (SUMO's e1 ``nVehContrib``, ``flow``, ``speed``, ``occupancy``);
- a lane-area detector over ``[s_from, s_to]`` reports the mean number of vehicles on it,
  their mean speed [m/s], the mean share of its length they cover [%] and the mean number
  standing (slower than ``HALTING_MPS``) (SUMO's e2 ``meanVehicleNumber``, ``meanSpeed``,
  ``meanOccupancy``, ``meanHaltingVehicles``).

Rows come out per detector and period (``rows``); ``envs.trace`` and ``twin.run`` write them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from envs.world.world import World

HALTING_MPS = 1.39  # [m/s] SUMO's jam threshold: a vehicle slower than this halts


@dataclass
class DetectorSpec:
    """Where a detector is on the world's network: ``lane`` (twin lane), stations [m], period [s]."""

    id: str
    kind: str  # "loop" or "area"
    lane: int
    s_from: float
    s_to: float
    period_s: float


class DetectorBank:
    """The running sums of a world's detectors and the rows of the periods done."""

    def __init__(self, specs: list[DetectorSpec]) -> None:
        self.specs = specs
        self.rows: list[dict] = []
        n = len(specs)
        self._start = np.zeros(n)  # [s] the current period's start, per detector
        self._count = np.zeros(n)  # loops: vehicles passed; areas: vehicle-steps on it
        self._speed = np.zeros(n)  # the sum of their speeds [m/s]
        self._covered = np.zeros(n)  # loops: time [s] covered; areas: the sum of covered shares
        self._halting = np.zeros(n)  # areas: the sum of halting vehicles per step
        self._steps = np.zeros(n)  # steps in the period

    def measure(self, world: "World", dt: float, before_id: np.ndarray, before_lane: np.ndarray,
                before_s: np.ndarray) -> None:
        """Add one step of ``dt`` [s]: the vehicles were at ``before_lane`` / ``before_s`` (by id
        ``before_id``) at its start and are where ``world.vehicles`` says now."""
        veh, net = world.vehicles, world.network
        front_now = veh.s + 0.5 * veh.length
        # each vehicle's row at the step's start (ids only grow, and rows keep their order)
        k = np.minimum(np.searchsorted(before_id, veh.id), max(len(before_id) - 1, 0))
        known = (k < len(before_id)) & (before_id[k] == veh.id) if len(before_id) else np.zeros(len(veh), bool)
        lane_before = np.where(known, before_lane[k] if len(before_id) else -1, -1)
        front_before = np.where(known, before_s[k] if len(before_id) else 0.0, 0.0) + 0.5 * veh.length
        for d, spec in enumerate(self.specs):
            on = veh.lane == spec.lane
            if spec.kind == "loop":
                # fronts that passed the loop: still on its lane, or handed over to the next lane
                onward = on | (net.lane_edge[veh.lane] != net.lane_edge[spec.lane])
                passed = (lane_before == spec.lane) & onward & (front_before < spec.s_from) & \
                    (~on | (spec.s_from <= front_now))
                self._count[d] += passed.sum()
                self._speed[d] += veh.v[passed].sum()
                body = on & (veh.s - 0.5 * veh.length <= spec.s_from) & (spec.s_from <= front_now)
                self._covered[d] += dt if body.any() else 0.0
            else:
                length = max(spec.s_to - spec.s_from, 1e-6)
                lo = np.maximum(veh.s - 0.5 * veh.length, spec.s_from)
                hi = np.minimum(front_now, spec.s_to)
                inside = on & (hi > lo)
                self._count[d] += inside.sum()
                self._speed[d] += veh.v[inside].sum()
                self._covered[d] += float((hi - lo)[inside].sum()) / length
                self._halting[d] += (inside & (veh.v < HALTING_MPS)).sum()
            self._steps[d] += 1
            if world.time + dt >= self._start[d] + spec.period_s - 1e-9:
                self._close(d, world.time + dt)

    def _close(self, d: int, end: float) -> None:
        spec, steps, span = self.specs[d], max(self._steps[d], 1), max(end - self._start[d], 1e-9)
        speed = self._speed[d] / self._count[d] if self._count[d] else None
        row = {"id": spec.id, "kind": spec.kind, "begin_s": round(self._start[d], 3), "end_s": round(end, 3)}
        if spec.kind == "loop":
            row.update(vehicles=int(self._count[d]), flow_veh_h=round(3600.0 * self._count[d] / span, 1),
                       speed_mps=None if speed is None else round(float(speed), 2),
                       occupancy_pct=round(100.0 * self._covered[d] / span, 2))
        else:
            row.update(mean_vehicles=round(self._count[d] / steps, 3),
                       speed_mps=None if speed is None else round(float(speed), 2),
                       occupancy_pct=round(100.0 * self._covered[d] / steps, 2),
                       mean_halting=round(self._halting[d] / steps, 3))
        self.rows.append(row)
        self._start[d] = end
        self._count[d] = self._speed[d] = self._covered[d] = self._halting[d] = self._steps[d] = 0.0

    def flush(self, now: float) -> None:
        """Close the periods under way at ``now`` [s] (the end of a run) that saw any step."""
        for d in range(len(self.specs)):
            if self._steps[d]:
                self._close(d, now)

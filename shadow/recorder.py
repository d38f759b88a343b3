"""A run's trajectories, written while it steps: SUMO FCD and the highD-style CSV.

``TrajectoryRecorder`` is a step observer (``after_step(world)``): after each physics step
it writes the vehicles' state when a sample is due, every physics step by default or every
``period_s`` seconds. Positions, speeds and leaders are those of the world after the step
(the leader and gap as perceived at that moment, ``World.perception_now``).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from envs.actors import VEHICLE_TYPES
from envs.world import World
from shadow.formats import FcdWriter, TrajectoryCsvWriter

log = logging.getLogger(__name__)


class TrajectoryRecorder:
    """Writes ``fcd`` (SUMO FCD XML) and/or ``csv`` (highD-style) as the world steps, a
    sample every ``period_s`` [s] (None: every physics step; a period is rounded to a whole
    number of physics steps, as SUMO's FCD period falls on its steps, with a warning)."""

    def __init__(self, fcd: str | Path | None = None, csv: str | Path | None = None,
                 period_s: float | None = None) -> None:
        if fcd is None and csv is None:
            raise ValueError("a trajectory recorder needs an FCD or a CSV file to write")
        if period_s is not None and not period_s > 0:
            raise ValueError(f"the trajectory period must be positive, not {period_s}")
        self.fcd = FcdWriter(fcd) if fcd is not None else None
        self.csv = TrajectoryCsvWriter(csv) if csv is not None else None
        self.period_s = period_s
        self.frames = 0
        self._every: int | None = None  # physics steps between samples
        self._steps = 0

    def after_step(self, world: World) -> None:
        """Write the state after this step when a sample is due."""
        if self._every is None:  # samples fall on physics steps: the period in whole steps
            self._every = max(1, int(round((self.period_s or world.dt) / world.dt)))
            if self.period_s is not None and abs(self._every * world.dt - self.period_s) > 1e-6:
                log.warning("trajectory period %g s is not a whole number of physics steps (%g s): samples every "
                            "%d steps (%.4g s)", self.period_s, world.dt, self._every, self._every * world.dt)
        self._steps += 1
        if (self._steps - 1) % self._every:
            return
        now = float(world.time)
        rows = vehicle_rows(world, leaders=self.csv is not None)
        if self.fcd is not None:
            self.fcd.timestep(now, rows)
        if self.csv is not None:
            self.csv.frame(self.frames, now, rows)
        self.frames += 1

    def close(self) -> None:
        for writer in (self.fcd, self.csv):
            if writer is not None:
                writer.close()


def vehicle_rows(world: World, leaders: bool = True) -> list[dict[str, Any]]:
    """Per vehicle now: its id, middle (``x``, ``y``) and front bumper (``front_x``, ``front_y``) [m],
    heading [rad] and navigational ``angle`` [deg], speed, acceleration, lane name, the
    front's distance along the lane ``pos`` [m], type, length and width, and (``leaders``)
    its leader's id and the bumper gap [m]."""
    veh, net = world.vehicles, world.network
    n = len(veh)
    if not n:
        return []
    lead, gap = (world.perception_now()[:2] if leaders else (np.full(n, -1), np.full(n, np.inf)))
    half = 0.5 * veh.length
    fx, fy = veh.x + half * np.cos(veh.heading), veh.y + half * np.sin(veh.heading)
    angle = np.mod(90.0 - np.degrees(veh.heading), 360.0)
    rows = []
    for r in range(n):
        lane = net.lanes[int(veh.lane[r])]
        rows.append({
            "id": str(int(veh.id[r])), "x": float(veh.x[r]), "y": float(veh.y[r]), "front_x": float(fx[r]),
            "front_y": float(fy[r]), "heading": float(veh.heading[r]), "angle": float(angle[r]),
            "speed": float(veh.v[r]), "acceleration": float(veh.a[r]), "lane": lane.name or str(int(veh.lane[r])),
            "pos": float(veh.s[r] + half[r] - lane.s_from), "type": VEHICLE_TYPES[int(veh.vtype[r])].name,
            "length": float(veh.length[r]), "width": float(veh.width[r]),
            "leader": str(int(veh.id[lead[r]])) if lead[r] >= 0 else "", "gap": float(gap[r]) if lead[r] >= 0 else math.inf,
        })
    return rows

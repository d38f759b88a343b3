"""Actors of the twin as structures of arrays: one numpy array per attribute, one row per actor.

Rows are kept compact (no gaps); an actor's stable identity is its ``id``. Every behaviour
parameter is a column, so a persona can set it per actor.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class VehicleType:
    """Dimensions [m] and limits of a class of vehicle."""

    name: str
    length: float  # [m]
    width: float  # [m]
    wheelbase: float  # [m]
    a_max: float  # [m/s^2] maximum acceleration
    b_comf: float  # [m/s^2] comfortable deceleration
    b_max: float  # [m/s^2] maximum (emergency) deceleration
    v_max: float  # [m/s] top speed


VEHICLE_TYPES = (
    VehicleType("car", 4.5, 1.8, 2.7, 2.0, 2.5, 8.0, 50.0),
    VehicleType("truck", 12.0, 2.5, 7.0, 1.0, 2.0, 6.0, 25.0),
    VehicleType("bus", 12.0, 2.55, 6.5, 1.2, 2.0, 6.0, 27.0),
)
TYPE_INDEX = {t.name: i for i, t in enumerate(VEHICLE_TYPES)}

HUMAN, META, CONTINUOUS = 0, 1, 2  # who drives a vehicle
ROUTE_HOPS = 16  # lane ends a vehicle's route looks ahead
ROUTE_END = -1  # in a route: the vehicle leaves the network at the end of its lane
ROUTE_LOST = -2  # in a route: the vehicle missed its route's lane (the world routes it again)

APPROACH, WAIT, CROSS, DEPART, HIT = 0, 1, 2, 3, 4  # pedestrian phases
PHASE_NAMES = ("approach", "wait", "cross", "depart", "hit")
PEDESTRIAN_RADIUS = 0.3  # [m]


class ActorArrays:
    """Columns named in ``FIELDS`` (name -> (dtype, trailing shape)).

    Each column is a view of the first rows of a larger buffer, so ``append`` writes one row
    instead of reallocating every column. A column that was rebound (``veh.a = ...``) or
    compacted by ``keep`` gets a fresh buffer on the next append, never one an earlier
    view still reads: a column held across ``append`` or ``keep`` keeps its values.
    """

    FIELDS: dict[str, tuple[type, tuple[int, ...]]] = {}
    MIN_CAPACITY = 16

    def __init__(self) -> None:
        # rows of a buffer past the column's length are zero: only a fresh buffer gets them
        self._buffers: dict[str, np.ndarray] = {}
        self._views: dict[str, np.ndarray] = {}  # the view of each buffer last bound to the column
        for name, (dtype, shape) in self.FIELDS.items():
            setattr(self, name, np.zeros((0, *shape), dtype=dtype))

    def __len__(self) -> int:
        return len(self.id)

    def __deepcopy__(self, memo: dict) -> "ActorArrays":
        """A copy whose columns are views of its own buffers, as this one's are of its own (a
        plain deepcopy would copy a column and its buffer apart, and the next ``append`` would
        bring back the buffer's stale rows)."""
        other = self.__class__.__new__(self.__class__)
        memo[id(self)] = other
        cols = self.__dict__
        other._buffers, other._views = {}, {}
        for name in self.FIELDS:
            col = cols[name]
            buf = self._buffers.get(name)
            if buf is not None and self._views.get(name) is col:
                buf = buf.copy()
                view = buf[:len(col)]
                other._buffers[name], other._views[name] = buf, view
            else:
                view = col.copy()
            other.__dict__[name] = view
            memo[id(col)] = view
        for key, value in cols.items():
            if key not in self.FIELDS and key not in ("_buffers", "_views"):
                other.__dict__[key] = copy.deepcopy(value, memo)
        return other

    def append(self, **values) -> int:
        """Add one actor; columns not given are zero. Returns its row."""
        unknown = values.keys() - self.FIELDS.keys()
        if unknown:
            raise KeyError(f"unknown actor fields: {sorted(unknown)}")
        n = len(self)
        cols, buffers, views = self.__dict__, self._buffers, self._views
        for name, (dtype, shape) in self.FIELDS.items():
            col = cols[name]
            buf = buffers.get(name)
            if buf is None or views[name] is not col or len(buf) <= n:
                buf = np.zeros((max(2 * n, self.MIN_CAPACITY), *shape), dtype=dtype)  # rows past n stay zero
                buf[:n] = col
                buffers[name] = buf
            cols[name] = views[name] = buf[:n + 1]
        for name, value in values.items():
            buffers[name][n] = value
        return n

    def extend(self, count: int, **values) -> None:
        """Add ``count`` actors at once; each value is a scalar (the same for all) or an array
        of ``count``; columns not given are zero."""
        unknown = values.keys() - self.FIELDS.keys()
        if unknown:
            raise KeyError(f"unknown actor fields: {sorted(unknown)}")
        cols = self.__dict__
        for name, (dtype, shape) in self.FIELDS.items():
            added = np.zeros((count, *shape), dtype=dtype)
            if name in values:
                added[...] = values[name]
            cols[name] = np.concatenate([cols[name], added])

    def keep(self, mask: np.ndarray) -> None:
        """Drop the rows where ``mask`` is False."""
        cols = self.__dict__
        for name in self.FIELDS:
            cols[name] = cols[name][mask]

    def row(self, actor_id: int) -> int:
        """Row of an actor id; KeyError if it is not present."""
        hits = np.flatnonzero(self.id == actor_id)
        if not len(hits):
            raise KeyError(f"no actor with id {actor_id}")
        return int(hits[0])


F, I, B = np.float64, np.int64, np.bool_


class Vehicles(ActorArrays):
    """Vehicles in lane (Frenet) coordinates plus derived world coordinates."""

    FIELDS = {
        "id": (I, ()),
        "vtype": (I, ()),
        "driver": (I, ()),  # HUMAN, META or CONTINUOUS
        "lane": (I, ()),
        "target_lane": (I, ()),
        # the route keys (+1; ``Network.lane_route_key``, an edge by default) of the lanes it
        # enters at its next lane ends, in order; 0: the lane's ``next`` (a vehicle without a
        # route); ROUTE_END, ROUTE_LOST; shifted by one at each lane end
        "route": (I, (ROUTE_HOPS,)),
        "s": (F, ()),  # [m] station of the centre along the lane's edge
        "d": (F, ()),  # [m] lateral offset from the edge's reference curve
        "psi": (F, ()),  # [rad] heading relative to the reference tangent
        "v": (F, ()),  # [m/s]
        "a": (F, ()),  # [m/s^2]
        "steer": (F, ()),  # [rad]
        "length": (F, ()),
        "width": (F, ()),
        "wheelbase": (F, ()),
        "a_max": (F, ()),
        "b_comf": (F, ()),
        "b_max": (F, ()),
        "v_max": (F, ()),
        # behaviour parameters (per driver, persona-settable)
        "speed_factor": (F, ()),  # desired speed / local limit
        "headway": (F, ()),  # [s] IDM time headway
        "min_gap": (F, ()),  # [m] IDM standstill gap
        "politeness": (F, ()),  # MOBIL politeness factor
        "reaction_time": (F, ()),  # [s] lag of the acceleration response
        "krauss": (B, ()),  # follows SUMO's Krauss model (an imported vType's default) instead of IDM
        "sigma": (F, ()),  # Krauss' driver imperfection (dawdling) in [0, 1]
        "compliance": (F, ()),  # probability of obeying a red signal
        "runs_red": (B, ()),  # drawn from compliance at spawn
        "amber_decel": (F, ()),  # [m/s^2] stops at amber if it can within this deceleration
        "wish_left": (F, ()),  # [m/s^2] intent bonus added to the MOBIL gain of a change to the left
        "wish_right": (F, ()),  # [m/s^2] the same to the right
        # commands of RL drivers
        "cmd_speed": (F, ()),
        "cmd_accel": (F, ()),
        "cmd_steer": (F, ()),
        # state flags and derived values
        "crashed": (B, ()),
        "crash_time": (F, ()),
        "kappa": (F, ()),  # [1/m] reference curvature at s
        "x": (F, ()),
        "y": (F, ()),
        "heading": (F, ()),
        "odometer": (F, ()),  # [m] distance travelled
        "standing_s": (F, ()),  # [s] how long it has stood still (envs.world.world.STUCK_REPORT_S)
        # [s] since when it has waited near the end of a lane it must leave for a lane change (NaN: not waiting)
        "waiting_since": (F, ()),
        # cooperative lane changing (imported networks): the driver this one falls in behind to
        # let it change into this lane (its id + 1; 0: none), until this time [s]
        "courtesy_for": (I, ()),
        "courtesy_until": (F, ()),
        # injected faults (envs/faults.py); nominal values are set when a vehicle is added
        "brake_limit": (F, ()),  # [m/s^2] hardest deceleration the brakes deliver (inf: sound)
        "sensor_dropout": (B, ()),  # the forward sensor reports no leader
        "gap_noise_sd": (F, ()),  # [m] noise on the sensed leader gap
        "forced_accel": (F, ()),  # [m/s^2] scripted acceleration overriding the driver (nan: none)
        "a_model": (F, ()),  # [m/s^2] the acceleration the behaviour model alone would have now
        "a_expected": (F, ()),  # [m/s^2] what the behaviour model commanded this step, given the truth
    }


class Pedestrians(ActorArrays):
    """Pedestrians walking a four-point path: sidewalk, curb, far curb, sidewalk."""

    FIELDS = {
        "id": (I, ()),
        "path": (F, (4, 2)),  # [m]
        "cum": (F, (4,)),  # [m] cumulative length at each path point
        "s": (F, ()),  # [m] distance walked along the path
        "phase": (I, ()),
        "crossing": (I, ()),
        "jaywalker": (B, ()),
        "speed": (F, ()),  # [m/s] walking speed
        "critical_gap": (F, ()),  # [s] smallest accepted time gap to approaching vehicles
        "compliance": (F, ()),  # probability of waiting for the walk signal
        "ignores_signal": (B, ()),
        "waited": (F, ()),  # [s] time spent at the curb
        "halted": (B, ()),  # injected fault: stands still wherever it is
        "x": (F, ()),
        "y": (F, ()),
        "heading": (F, ()),
    }

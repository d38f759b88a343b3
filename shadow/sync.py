"""Synchronising the twin with a log: the observed state at any time, and a world that holds it.

``ObservedTracks`` turns a matched log into the state of every vehicle at a time: where a
vehicle was recorded then, its record; where it was recorded before and after within
``MAX_GAP_S`` (a dropped record, a slower sensor), its position interpolated between the two
and marked ``inferred``. Speeds and accelerations a log lacks are taken from the vehicle's
motion between records; accelerations are averaged over the last ``ACCEL_WINDOW_S``.

``ShadowWorld`` is a world on the log's network without demand of its own: ``hold(state)``
puts exactly the observed vehicles on their lanes, at their stations, offsets and speeds,
with its signals at the state's time, and estimates the desired speed of each driver it
sees driving freely from its speed and acceleration (IDM's free-road term inverted);
``forecast`` lets its behaviour models drive them on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from envs.actors import HUMAN, VEHICLE_TYPES
from envs.world import World
from shadow.matching import MatchedLog, headings, middles, record_lengths

MAX_GAP_S = 2.0  # [s] a vehicle unrecorded for at most this long is interpolated across the gap
ACCEL_WINDOW_S = 2.0  # [s] a vehicle's acceleration is its mean over this much of its past
FOLLOWING_GAP_S = 6.0  # [s] a leader farther ahead than this, at the driver's speed, leaves it driving freely
FREE_MIN_MPS = 5.0  # [m/s] a driver slower than this shows nothing of its desired speed
SPEED_FACTOR_RANGE = (0.5, 1.5)  # desired speed estimated from the state, as a share of the limit


@dataclass
class ObservedState:
    """The observed vehicles at ``time_s`` [s]: their ids, twin lane, station [m] of the
    middle, lateral offset [m] from the lane centre, speed [m/s], acceleration [m/s^2],
    heading [rad], middle x, y [m], length [m], type, and whether the position was inferred."""

    time_s: float
    ids: list[str]
    lane: np.ndarray
    s: np.ndarray
    d: np.ndarray
    v: np.ndarray
    a: np.ndarray
    heading: np.ndarray
    x: np.ndarray
    y: np.ndarray
    length: np.ndarray
    vtype: list[str]
    inferred: np.ndarray


class ObservedTracks:
    """Each vehicle's matched records in time order, with speeds, accelerations and middles."""

    def __init__(self, matched: MatchedLog, type_lengths: dict[str, float] | None = None) -> None:
        """``type_lengths`` [m] by the log's type names (``vehicle_types``' lengths) where the
        log gives none; the twin's own types are known."""
        log = matched.log
        self.matched, self.log = matched, log
        self.length = record_lengths(log, type_lengths)
        self.heading = headings(log)
        self.x, self.y = middles(log, self.heading, self.length)
        self.speed, self.accel = log.speed.copy(), log.acceleration.copy()
        self.rows: list[np.ndarray] = []
        for k in range(len(log.ids)):
            rows = np.flatnonzero(log.vehicle == k)
            self.rows.append(rows)
            if len(rows) > 1:
                t = log.time_s[rows]
                moved = np.hypot(np.gradient(self.x[rows], t), np.gradient(self.y[rows], t))
                missing = ~np.isfinite(self.speed[rows])
                self.speed[rows[missing]] = moved[missing]
                rate = np.gradient(self.speed[rows], t)
                missing = ~np.isfinite(self.accel[rows])
                self.accel[rows[missing]] = rate[missing]
        self.speed = np.nan_to_num(self.speed)
        self.accel = self._smoothed(np.nan_to_num(self.accel))
        self.first = np.array([log.time_s[r[0]] for r in self.rows])
        self.last = np.array([log.time_s[r[-1]] for r in self.rows])

    def _smoothed(self, accel: np.ndarray) -> np.ndarray:
        """Each record's acceleration [m/s^2] as its vehicle's mean over the ``ACCEL_WINDOW_S``
        before it (the speed change over that time, from past records only): a driver's
        intent, without the step-to-step noise of a dawdling model or a sensor."""
        out = accel.copy()
        for rows in self.rows:
            t, v = self.log.time_s[rows], self.speed[rows]
            start = np.searchsorted(t, t - ACCEL_WINDOW_S - 1e-9)
            span = t - t[start]
            ok = span >= 0.5 * ACCEL_WINDOW_S
            out[rows[ok]] = (v[ok] - v[start[ok]]) / span[ok]
        return out

    def state_at(self, time_s: float) -> ObservedState:
        """Every vehicle recorded at ``time_s`` [s], or across a gap of at most ``MAX_GAP_S``
        around it (inferred), that lies on the network."""
        log, m = self.log, self.matched
        out: dict[str, list[Any]] = {k: [] for k in ("ids", "lane", "s", "d", "v", "a", "heading", "x", "y", "length",
                                                      "vtype", "inferred")}
        for k in np.flatnonzero((self.first <= time_s + 1e-6) & (self.last >= time_s - 1e-6)):
            rows = self.rows[k]
            t = log.time_s[rows]
            i = int(np.searchsorted(t, time_s - 1e-6))
            if i < len(rows) and abs(t[i] - time_s) <= 1e-6:
                r, inferred = rows[i], False
                lane, s, d, x, y = m.lane[r], m.s[r], m.d[r], self.x[r], self.y[r]
            else:
                before, after = rows[i - 1], rows[i]
                span = log.time_s[after] - log.time_s[before]
                if span > MAX_GAP_S:
                    continue
                w = (time_s - log.time_s[before]) / span
                r, inferred = before, True
                x = self.x[before] + w * (self.x[after] - self.x[before])
                y = self.y[before] + w * (self.y[after] - self.y[before])
                lane, d = m.lane[before], m.d[before]
                s = m.s[before] + np.hypot(x - self.x[before], y - self.y[before])  # on along its lane
            if lane < 0:
                continue  # off the network (reported by the matching)
            for name, value in (("ids", log.ids[k]), ("lane", lane), ("s", s), ("d", d), ("v", self.speed[r]),
                                ("a", self.accel[r]), ("heading", np.nan_to_num(self.heading[r])), ("x", x),
                                ("y", y), ("length", self.length[r]), ("vtype", log.vtype[r]),
                                ("inferred", inferred)):
                out[name].append(value)
        arrays = {k: np.array(v, dtype=float) for k, v in out.items() if k not in ("ids", "vtype", "lane", "inferred")}
        return ObservedState(time_s=float(time_s), ids=out["ids"], lane=np.array(out["lane"], dtype=np.int64),
                             vtype=out["vtype"], inferred=np.array(out["inferred"], dtype=bool), **arrays)

    def position_at(self, vehicle: int, time_s: float) -> tuple[float, float] | None:
        """The recorded middle (x, y) [m] of vehicle ``vehicle`` (index into the log's ids) at
        ``time_s`` [s] exactly, or None."""
        rows = self.rows[vehicle]
        t = self.log.time_s[rows]
        i = int(np.searchsorted(t, time_s - 1e-6))
        if i < len(rows) and abs(t[i] - time_s) <= 1e-6:
            return float(self.x[rows[i]]), float(self.y[rows[i]])
        return None


def vehicle_types(config: str) -> dict[str, dict[str, Any]]:
    """The vehicle types a SUMO configuration (or route-carrying scenario) defines, by id, in
    the twin's terms (``build.vtype_parameters``, with ``twin_type``): what a log of that
    network tells of its vehicles by their type names. Not their car-following model: the
    twin drives IDM whatever made the log. Empty for anything without route files."""
    from envs.roads import build, sumo

    if not str(config).endswith(".sumocfg"):
        return {}
    _, demand, _ = sumo.load(config)
    out = {}
    for name, vtype in (demand.vtypes.items() if demand else ()):
        size, params = build.vtype_parameters(vtype)
        out[name] = size | params | {"twin_type": build.TWIN_TYPES.get(vtype.vclass, "car")}
    return out


@dataclass
class Forecast:
    """The twin's prediction from a held state: per physics step ``times`` [s], and per held
    vehicle (its column: ``column`` by observed id) the middle ``x``, ``y`` [m] and speed
    ``v`` [m/s] (NaN once it has left the network)."""

    times: np.ndarray
    column: dict[str, int]
    x: np.ndarray
    y: np.ndarray
    v: np.ndarray

    def path(self, vehicle_id: str, times: np.ndarray) -> np.ndarray:
        """(x, y, speed) of ``vehicle_id`` at ``times`` [s], interpolated between steps; after
        it left the network, where it was last."""
        c = self.column[vehicle_id]
        known = np.isfinite(self.x[:, c])
        if not known.any():
            return np.full((len(times), 3), np.nan)
        t = self.times[known]
        return np.stack([np.interp(times, t, col[known, c]) for col in (self.x, self.y, self.v)], 1)


class ShadowWorld:
    """A world on the log's network with no demand of its own, holding observed states;
    ``types`` (``vehicle_types``) give the drivers of a known vehicle type its parameters."""

    def __init__(self, world: World, types: dict[str, dict[str, Any]] | None = None) -> None:
        self.world = world
        self.types = types or {}
        if world.schedule is not None:
            world.schedule = None  # the log's vehicles only
        world.arrivals.next_arrival[:] = np.inf
        world.arrivals.backlog[:] = 0
        world.vehicles.keep(np.zeros(len(world.vehicles), dtype=bool))
        world.pedestrians.keep(np.zeros(len(world.pedestrians), dtype=bool))
        self._signal_time = 0.0
        self._type_index = {t.name: k for k, t in enumerate(VEHICLE_TYPES)}
        self.mirrored_ids: dict[int, str] = {}  # twin id -> observed id of the vehicles mirrored
        self.rows_by_id: dict[str, int] = {}  # observed id -> twin id of the vehicles held
        self.held_xy: dict[int, tuple[float, float]] = {}  # twin id -> middle (x, y) [m] as held

    def hold(self, state: ObservedState, params: dict[str, dict[str, float]] | None = None) -> None:
        """Exactly the observed vehicles, where they were observed, with the signals at the
        state's time. ``params`` by vehicle id: behaviour parameters (``World.VEHICLE_PARAMS``
        and ``a_max``, ``b_comf``) replacing the drivers' means."""
        world, net = self.world, self.world.network
        self._signals_to(state.time_s)
        world.vehicles.keep(np.zeros(len(world.vehicles), dtype=bool))
        beh = world.config.drivers
        means = {"speed_factor": beh.desired_speed_factor.mean, "headway": beh.time_headway_s.mean,
                 "min_gap": beh.min_gap_m.mean, "politeness": beh.politeness.mean,
                 "reaction_time": beh.reaction_time_s.mean, "compliance": 1.0}
        veh = world.vehicles
        n = len(state.ids)
        columns = {name: np.full(n, value, dtype=float) for name, value in means.items()}
        limits = {name: np.full(n, np.nan) for name in ("a_max", "b_comf")}
        vtypes = []
        for k, vid in enumerate(state.ids):
            typed = self.types.get(state.vtype[k], {})
            own = {name: typed[name] for name in ("headway", "min_gap", "speed_factor", "a_max", "b_comf")
                   if name in typed} | dict((params or {}).get(vid, {}))
            for name, value in own.items():
                (limits if name in limits else columns)[name][k] = value
            vtypes.append(typed.get("twin_type") or (state.vtype[k] if state.vtype[k] in self._type_index else "car"))
        first = len(veh)
        ids = world.append_vehicles(state.lane, state.s, np.maximum(state.v, 0.0), vtypes, HUMAN, **columns)
        rows = slice(first, first + n)
        veh.d[rows] = net.lane_offset[state.lane] + state.d
        veh.length[rows] = state.length
        veh.a[rows] = veh.a_model[rows] = veh.a_expected[rows] = state.a
        for name, values in limits.items():
            given = np.isfinite(values)
            getattr(veh, name)[rows][given] = values[given]
        self.rows_by_id = dict(zip(state.ids, ids.tolist()))
        world.time = state.time_s
        world.refresh_world_coords()
        world.perceive()
        self._desired_speeds_from_state([vid for vid in state.ids if vid not in (params or {})])

    def mirror(self, state: ObservedState) -> None:
        """The world as observed at ``state``'s time, changed in place from the last mirrored
        state: vehicles still seen keep their twin id (the supervisor tracks them), move to
        where they were observed; those no longer seen leave, new ones enter. Signals run to
        the state's time. (``hold`` starts afresh instead, for a forecast.)"""
        world, net = self.world, self.world.network
        self._signals_to(state.time_s)
        veh = world.vehicles
        seen = set(state.ids)
        keep = np.array([self.mirrored_ids.get(int(i)) in seen for i in veh.id], dtype=bool)
        if len(veh) and not keep.all():
            for i in veh.id[~keep]:
                self.mirrored_ids.pop(int(i), None)
            veh.keep(keep)
        row_of = {self.mirrored_ids[int(i)]: r for r, i in enumerate(veh.id)}
        beh = world.config.drivers
        for k, vid in enumerate(state.ids):
            lane = int(state.lane[k])
            r = row_of.get(vid)
            if r is None:
                typed = self.types.get(state.vtype[k], {})
                vtype = typed.get("twin_type") or (state.vtype[k] if state.vtype[k] in self._type_index else "car")
                tid = world.append_vehicle(lane, float(state.s[k]), 0.0, vtype, HUMAN,
                                           speed_factor=beh.desired_speed_factor.mean, compliance=1.0)
                self.mirrored_ids[tid] = vid
                r = len(veh) - 1
            veh.lane[r] = veh.target_lane[r] = lane
            veh.s[r] = float(state.s[k])
            veh.d[r] = net.lane_offset[lane] + float(state.d[k])
            veh.psi[r] = 0.0
            veh.v[r] = float(max(state.v[k], 0.0))
            veh.a[r] = veh.a_model[r] = veh.a_expected[r] = float(state.a[k])
            veh.length[r] = float(state.length[k])
        world.time = state.time_s
        world.refresh_world_coords()
        world.perceive()

    def prior_for(self, vtype: str) -> dict[str, float]:
        """What a driver of the log's type ``vtype`` is before its trajectory says more: its
        SUMO type's parameters when the network's demand defines it, else the twin type's
        limits (``car`` when unknown) with the population's mean headway and minimum gap."""
        if vtype in self.types:
            return self.types[vtype]
        t = VEHICLE_TYPES[self._type_index.get(vtype, 0)]
        beh = self.world.config.drivers
        return {"headway": beh.time_headway_s.mean, "min_gap": beh.min_gap_m.mean, "a_max": t.a_max,
                "b_comf": t.b_comf}

    def _desired_speeds_from_state(self, ids: list[str]) -> None:
        """A driver seen driving freely (no leader within ``FOLLOWING_GAP_S`` at its speed),
        faster than ``FREE_MIN_MPS``, has the desired speed at which IDM's free road term gives
        its observed acceleration (its speed itself when it neither speeds up nor slows):
        ``v0 = v / (1 - a / a_max)^(1/4)``, as a share of its lane's limit within
        ``SPEED_FACTOR_RANGE``. The others keep the population's mean."""
        world = self.world
        veh = world.vehicles
        row_of = {int(i): r for r, i in enumerate(veh.id)}
        for vid in ids:
            r = row_of[self.rows_by_id[vid]]
            v, lead = float(veh.v[r]), int(world.leader[r])
            if v < FREE_MIN_MPS or (lead >= 0 and world.leader_gap[r] < FOLLOWING_GAP_S * v):
                continue
            share = min(max(float(veh.a[r]) / float(veh.a_max[r]), -1.0), 0.9)
            v0 = v / (1.0 - share) ** 0.25
            limit = float(world.lane_speed_limit[veh.lane[r]])
            veh.speed_factor[r] = min(max(v0 / limit, SPEED_FACTOR_RANGE[0]), SPEED_FACTOR_RANGE[1])

    def forecast(self, state: ObservedState, seconds: float, params: dict[str, dict[str, float]] | None = None,
                 stopped: set[str] | frozenset = frozenset(), on_hold: Callable[[], None] | None = None) -> "Forecast":
        """Hold ``state`` and let the behaviour models drive on for ``seconds`` [s], the
        signals then put back where they were: every held vehicle's middle and speed after
        each physics step (``Forecast``). The vehicles ``stopped`` (by observed id) stay where
        they stand (a breakdown). ``on_hold`` is called with the state held, before it moves."""
        self.hold(state, params)
        if on_hold is not None:
            on_hold()
        veh = self.world.vehicles
        for vid in stopped:
            rows = np.flatnonzero(veh.id == self.rows_by_id.get(vid, -1))
            veh.forced_accel[rows] = -veh.b_max[rows]
        self.held_xy = {int(i): (float(x), float(y)) for i, x, y in zip(veh.id, veh.x, veh.y)}
        held = veh.id.copy()  # ascending: ids are handed out in order, and nobody enters
        saved = self._signal_state()
        world = self.world
        dt = world.dt
        steps = int(round(seconds / dt))
        times = np.empty(steps)
        x, y, v = (np.full((steps, len(held)), np.nan) for _ in range(3))
        for k in range(steps):
            world.step(dt)
            veh = world.vehicles
            at = np.minimum(np.searchsorted(veh.id, held), max(len(veh) - 1, 0))
            present = (veh.id[at] == held) if len(veh) else np.zeros(len(held), dtype=bool)
            times[k] = world.time
            x[k, present], y[k, present], v[k, present] = veh.x[at[present]], veh.y[at[present]], veh.v[at[present]]
        self._restore_signals(saved)
        return Forecast(times, {vid: int(np.searchsorted(held, tid)) for vid, tid in self.rows_by_id.items()}, x, y, v)

    def _signals_to(self, time_s: float) -> None:
        """Run the signal programs (alone) to ``time_s`` [s] from where they were held last;
        a state earlier than that starts them again from time 0."""
        signals, dt = self.world.signals, self.world.dt
        if time_s + 1e-9 < self._signal_time:
            raise ValueError(f"states must be held in time order ({time_s:g} s after {self._signal_time:g} s)")
        while self._signal_time + 0.5 * dt <= time_s:
            signals.update(dt)
            self._signal_time += dt

    def _signal_state(self) -> dict[str, Any]:
        """The signals' state (copied) to put back after a forecast moved them on."""
        return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in vars(self.world.signals).items()
                if isinstance(v, (np.ndarray, int, float, bool)) and not k.startswith("__")}

    def _restore_signals(self, saved: dict[str, Any]) -> None:
        signals = self.world.signals
        for k, v in saved.items():
            if isinstance(v, np.ndarray):
                getattr(signals, k)[...] = v
            else:
                setattr(signals, k, v)

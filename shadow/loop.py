"""The closed loop: the twin coupled live to a running SUMO, its stand-in for the street.

SUMO (``libsumo``, in this process) steps; every ``SYNC_S`` the twin reads every vehicle
from it (position, heading, speed, acceleration, lane, type), places them on its network
(``matching``), holds that state and predicts ``HORIZON_S`` ahead (``ShadowWorld.forecast``).
A vehicle stopping where nothing makes it stop (braking hard, or standing for
``STOPPED_AFTER_S``, with no leader near and no stop line or junction ahead) is taken to come
to a stop and stay in the prediction: a breakdown. A
vehicle the prediction shows braking harder than ``HARD_BRAKE_MPS2`` behind a stopped one is a
hazard the twin flags; with ``mitigate``, every SUMO vehicle heading for a flagged stopped
vehicle gets an advisory: slow to ``ADVISORY_MPS`` braking at ``ADVISORY_DECEL_MPS2``
(``libsumo.vehicle.slowDown``), then keep to it.

The fault is injected on SUMO's side (``stopped_vehicle``: the fastest vehicle in flowing
traffic stops and stays, ``libsumo.vehicle.setSpeed(id, 0)``). SUMO's own outcome is measured
in SUMO for the vehicles heading for it (behind it on its edge, or routed onto that edge
within ``AHEAD_EDGES``): their hard braking (deceleration beyond ``HARD_BRAKE_MPS2``:
vehicle-seconds, distinct vehicles, the first time) and the time they lose against the
speed they would drive under the original limits. ``run_loop`` runs the same SUMO run with the loop acting and without it.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from envs.roads import sumo
from envs.world import World
from shadow.log import TrajectoryLog, empty_columns
from shadow.matching import LaneIndex, match_log, middles, record_lengths
from shadow.predict import hard_braking
from shadow.sync import ObservedState, ShadowWorld, vehicle_types
from twin.scenario import load_scenario

SYNC_S = 1.0  # [s] between the twin's syncs and predictions
HORIZON_S = 5.0  # [s] predicted ahead
HARD_BRAKE_MPS2 = 3.0  # [m/s^2] braking harder than this is a hazard (predicted in the twin, counted in SUMO)
STOPPED_AFTER_S = 2.0  # [s] standing for no reason this long: a stopped (broken-down) vehicle
STOPPING_DECEL_MPS2 = 2.0  # [m/s^2] braking this hard with nothing ahead to brake for...
STOPPING_FOR_S = 1.0  # [s] ...for this long: stopping (a breakdown)
REASON_M = 15.0  # [m] a leader or a stopping point this near is a reason to stand
ADVISORY_MPS = 5.0  # [m/s] the speed the mitigation advises the vehicles heading for a stopped one...
ADVISORY_DECEL_MPS2 = 1.5  # [m/s^2] ...reached braking this gently
FAULT_MIN_FROM_END_M = 40.0  # [m] the stopped vehicle stands at least this far before its lane's end


def run_loop(config: str | Path, minutes: float = 4.0, fault_at_s: float = 60.0, mitigate: bool = True,
             seed: int = 0) -> dict[str, Any]:
    """One SUMO run of ``config`` for ``minutes`` with a stopped vehicle from ``fault_at_s``,
    the twin following, predicting and (``mitigate``) acting; what it flagged and what SUMO did."""
    import libsumo

    config = Path(config)
    world = World(load_scenario(str(config), {"ego.controlled": 0}))
    types = vehicle_types(str(config))
    lengths = {name: t["length"] for name, t in types.items()}
    shadow = ShadowWorld(world, types)
    index = LaneIndex(world.network)
    with tempfile.TemporaryDirectory(prefix="shadow-loop-") as tmp:
        libsumo.start(["sumo", "-c", str(sumo.runnable_config(config, Path(tmp))), "--no-step-log", "true",
                       "--no-warnings", "true", "--time-to-teleport", "-1", "--seed", str(seed)])
        try:
            return _loop(libsumo, shadow, index, lengths, 60.0 * minutes, fault_at_s, mitigate)
        finally:
            libsumo.close()


def _loop(libsumo, shadow: ShadowWorld, index: LaneIndex, lengths: dict[str, float],
          seconds: float, fault_at_s: float, mitigate: bool) -> dict[str, Any]:
    dt = libsumo.simulation.getDeltaT()
    begin = libsumo.simulation.getTime()
    stopped_id, fault_time, standing_since = None, None, {}
    flags: list[dict[str, Any]] = []
    mitigations: list[dict[str, Any]] = []
    hard_brake_s, hard_brakers, first_hard_brake, time_lost, arrived = 0.0, set(), None, 0.0, 0
    stopped_edge, stopped_pos = None, 0.0  # where the stopped vehicle stands
    incidents: dict[str, tuple[str, float, float]] = {}  # flagged stopped vehicle -> (edge, position, time)
    advised: dict[str, float] = {}  # vehicles given the advisory -> when (-1: keeping to it)
    next_sync = begin
    while libsumo.simulation.getTime() < begin + seconds - 1e-9:
        libsumo.simulationStep()
        t = libsumo.simulation.getTime()
        ids = libsumo.vehicle.getIDList()
        arrived += libsumo.simulation.getArrivedNumber()
        for vid in ids:  # SUMO's own outcome, for the vehicles heading for the stopped one
            if vid == stopped_id or not _heading_for(libsumo, vid, stopped_edge, stopped_pos):
                continue
            if libsumo.vehicle.getAcceleration(vid) < -HARD_BRAKE_MPS2:
                hard_brake_s += dt
                hard_brakers.add(vid)
                if first_hard_brake is None:
                    first_hard_brake = t
            time_lost += dt * max(0.0, 1.0 - libsumo.vehicle.getSpeed(vid) / max(_free_speed(libsumo, vid), 0.1))
        if stopped_id is None and t >= fault_at_s:
            stopped_id = _pick_fault_vehicle(libsumo, ids)
            if stopped_id is not None:
                libsumo.vehicle.setSpeed(stopped_id, 0.0)
                fault_time = t
                stopped_edge = libsumo.vehicle.getRoadID(stopped_id)
                stopped_pos = libsumo.vehicle.getLanePosition(stopped_id)
        if t + 1e-9 < next_sync:
            continue
        next_sync = t + SYNC_S
        state = _observe(libsumo, ids, shadow, index, lengths, t)
        stopped = _standing_for_no_reason(shadow, state, standing_since, t)
        forecast = shadow.forecast(state, HORIZON_S, stopped=stopped)
        braking = set(hard_braking(forecast, HARD_BRAKE_MPS2))
        if braking and stopped:
            flags.append({"time_s": round(t, 2), "stopped": sorted(stopped), "hard_braking": sorted(braking)[:10]})
            for vid in stopped:
                if vid not in incidents:
                    incidents[vid] = (libsumo.vehicle.getRoadID(vid), libsumo.vehicle.getLanePosition(vid), t)
        if mitigate:  # an advisory to every vehicle heading for a flagged stopped one: slow down gently
            for vid in ids:
                if vid in incidents or vid in advised:
                    continue
                for edge, pos, since in incidents.values():
                    if _heading_for(libsumo, vid, edge, pos):
                        speed = libsumo.vehicle.getSpeed(vid)
                        if speed > ADVISORY_MPS:
                            libsumo.vehicle.slowDown(vid, ADVISORY_MPS, (speed - ADVISORY_MPS) / ADVISORY_DECEL_MPS2)
                        advised[vid] = t
                        mitigations.append({"time_s": round(t, 2), "vehicle": vid, "from_mps": round(speed, 2),
                                            "to_mps": ADVISORY_MPS, "incident_edge": edge})
                        break
            for vid, when in list(advised.items()):  # once slowed, keep to the advisory speed
                if vid in ids and libsumo.vehicle.getSpeed(vid) <= ADVISORY_MPS + 0.5 and when >= 0:
                    libsumo.vehicle.setMaxSpeed(vid, ADVISORY_MPS)
                    advised[vid] = -1.0
    first_flag = next((f["time_s"] for f in flags if stopped_id in f["stopped"]), None)
    return {"fault": {"kind": "stopped_vehicle", "vehicle": stopped_id, "time_s": fault_time},
            "first_flag_s": first_flag, "flags": len(flags), "mitigations": mitigations,
            "sumo": {"hard_braking_vehicle_s": round(hard_brake_s, 2), "vehicles_braking_hard": len(hard_brakers),
                     "first_hard_brake_after_fault_s": first_hard_brake, "time_lost_vehicle_s": round(time_lost, 1),
                     "arrived": arrived, "edge": stopped_edge},
            "lead_time_s": (round(first_hard_brake - first_flag, 2)
                            if first_flag is not None and first_hard_brake is not None else None)}


AHEAD_EDGES = 3  # a vehicle whose route reaches the stopped vehicle's edge within this many edges heads for it


def _heading_for(libsumo, vid: str, edge: str | None, pos: float) -> bool:
    """Whether vehicle ``vid`` is behind the stopped vehicle on its edge (before ``pos`` [m])
    or will enter that edge within ``AHEAD_EDGES`` of its route."""
    if edge is None:
        return False
    here = libsumo.vehicle.getRoadID(vid)
    if here == edge:
        return libsumo.vehicle.getLanePosition(vid) < pos
    route, at = libsumo.vehicle.getRoute(vid), libsumo.vehicle.getRouteIndex(vid)
    return edge in route[max(at, 0) + 1:max(at, 0) + 1 + AHEAD_EDGES]


def _free_speed(libsumo, vid: str) -> float:
    """[m/s] the speed a vehicle would drive on its lane (its type's top speed, not an advisory's)."""
    lane = libsumo.vehicle.getLaneID(vid)
    return min(libsumo.vehicletype.getMaxSpeed(libsumo.vehicle.getTypeID(vid)),
               libsumo.vehicle.getSpeedFactor(vid) * libsumo.lane.getMaxSpeed(lane))


def _pick_fault_vehicle(libsumo, ids) -> str | None:
    """The fastest vehicle (over 5 m/s: in flowing traffic) at least ``FAULT_MIN_FROM_END_M``
    before its lane's end (None: none yet)."""
    best, best_speed = None, 5.0
    for vid in ids:
        lane = libsumo.vehicle.getLaneID(vid)
        speed = libsumo.vehicle.getSpeed(vid)
        if lane.startswith(":") or speed <= best_speed:
            continue
        if libsumo.lane.getLength(lane) - libsumo.vehicle.getLanePosition(vid) >= FAULT_MIN_FROM_END_M:
            best, best_speed = vid, speed
    return best


def _observe(libsumo, ids, shadow: ShadowWorld, index: LaneIndex, lengths: dict[str, float],
             t: float) -> ObservedState:
    """SUMO's vehicles now as an observed state on the twin's network."""
    n = len(ids)
    cols = empty_columns(n)
    x, y = np.empty(n), np.empty(n)
    for k, vid in enumerate(ids):
        x[k], y[k] = libsumo.vehicle.getPosition(vid)
        cols["heading"][k] = math.radians(90.0 - libsumo.vehicle.getAngle(vid))
        cols["speed"][k] = libsumo.vehicle.getSpeed(vid)
        cols["acceleration"][k] = libsumo.vehicle.getAcceleration(vid)
        cols["lane"][k] = libsumo.vehicle.getLaneID(vid)
        cols["vtype"][k] = libsumo.vehicle.getTypeID(vid)
    log = TrajectoryLog(source="sumo (libsumo)", reference="front", time_s=np.full(n, t), vehicle=np.arange(n),
                        ids=list(ids), x=x, y=y, record=np.arange(n), record_name="vehicle", **cols)
    matched = match_log(log, shadow.world.network, index, lengths)
    on = np.flatnonzero(matched.lane >= 0)
    length = record_lengths(log, lengths)
    h = cols["heading"]
    mx, my = middles(log, h, length)
    return ObservedState(time_s=t, ids=[ids[k] for k in on], lane=matched.lane[on], s=matched.s[on], d=matched.d[on],
                          v=cols["speed"][on], a=cols["acceleration"][on], heading=h[on],
                          x=mx[on], y=my[on],
                          length=length[on], vtype=[cols["vtype"][k] for k in on], inferred=np.zeros(len(on), bool))


def _standing_for_no_reason(shadow: ShadowWorld, state: ObservedState, since: dict[str, float],
                            t: float) -> set[str]:
    """The observed vehicles stopping for nothing: braking harder than ``STOPPING_DECEL_MPS2``
    for ``STOPPING_FOR_S`` or standing for ``STOPPED_AFTER_S``, with no leader and no stopping
    point (stop line, junction, lane end) within ``REASON_M`` beyond their braking distance,
    away from junctions and lane ends (``since``: when each began to, updated)."""
    shadow.hold(state)
    world = shadow.world
    veh = world.vehicles
    stop = world.stop_distance()
    row_of = {int(i): r for r, i in enumerate(veh.id)}
    out = set()
    for k, vid in enumerate(state.ids):
        r = row_of[shadow.rows_by_id[vid]]
        v = float(state.v[k])
        reach = REASON_M + v * v / (2.0 * STOPPING_DECEL_MPS2)  # where a reason to stop would have to be
        reason = (world.leader[r] >= 0 and world.leader_gap[r] < reach) or stop[r] < reach
        if reason or (v >= 0.1 and state.a[k] > -STOPPING_DECEL_MPS2):
            since.pop(vid, None)
            continue
        lane = shadow.world.network.lanes[int(state.lane[k])]
        to_end = (lane.s_to if lane.s_to is not None else np.inf) - float(state.s[k])
        if lane.link or to_end < REASON_M:  # in a junction, or at a lane's end: SUMO's own reasons
            since.pop(vid, None)
            continue
        since.setdefault(vid, t)
        if t - since[vid] >= (STOPPING_FOR_S if v >= 0.1 else STOPPED_AFTER_S) - 1e-9:
            out.add(vid)
    return out


def compare(config: str | Path, minutes: float = 4.0, fault_at_s: float = 60.0, seed: int = 0) -> dict[str, Any]:
    """The same SUMO run with the stopped vehicle, without the loop acting and with it."""
    without = run_loop(config, minutes, fault_at_s, mitigate=False, seed=seed)
    with_loop = run_loop(config, minutes, fault_at_s, mitigate=True, seed=seed)
    return {"config": str(config), "minutes": minutes, "without_loop": without, "with_loop": with_loop,
            "flagged_before_sumo_showed_it_s": without["lead_time_s"]}

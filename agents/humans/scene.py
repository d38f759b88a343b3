"""The compact scene text an LLM human reads, derived from the twin's structured state.

Entities and relations with units, as a person in that seat would perceive them: own
speed and limit, the vehicle ahead (gap, time gap, time to collision), the signal and
stop line ahead, lanes beside; for a pedestrian the crossing, its signal and the time
gap to the next vehicle; for an operator the network's aggregate condition. Text that
came from other agents (advisories, reasons) is wrapped in ``<data>`` tags and stripped
of angle brackets, so it can never pose as part of the prompt.
"""

from __future__ import annotations

import numpy as np

from envs.actors import PHASE_NAMES, VEHICLE_TYPES
from envs.state import CLOSING_MIN_MPS, SIGNAL_NAMES, WALK_NAMES, WorldState, near_miss

KMH = 3.6  # [km/h per m/s]


def quote(text: str) -> str:
    """Untrusted text as inert data."""
    clean = str(text).replace("<", "(").replace(">", ")").replace("\n", " ")
    return f"<data>{clean}</data>"


def driver_scene(state: WorldState, vehicle_id: int) -> str | None:
    """What the driver of ``vehicle_id`` perceives now; None if it has left."""
    r = state.row_of(vehicle_id)
    if r < 0:
        return None
    v, net = state.vehicles, state.network
    lane = int(v["lane"][r])
    ln = net.lanes[lane]
    limit = float(state.lane_speed_limit[lane])
    lines = [f"Time {state.time:.0f} s. You drive a {VEHICLE_TYPES[v['vtype'][r]].name} in lane '{ln.name}' at "
             f"{v['v'][r] * KMH:.0f} km/h; the limit is {limit * KMH:.0f} km/h."]
    j = int(state.leader[r])
    if j >= 0:
        gap = float(state.leader_gap[r])
        closing = float(v["v"][r] - v["v"][j])
        ttc = gap / closing if closing > CLOSING_MIN_MPS else None
        time_gap = gap / max(float(v["v"][r]), 0.1)
        text = (f"Ahead: a {VEHICLE_TYPES[v['vtype'][j]].name} {gap:.0f} m away at {v['v'][j] * KMH:.0f} km/h "
                f"(time gap {min(time_gap, 99):.1f} s")
        text += f", time to collision {ttc:.1f} s)." if ttc is not None else ", not closing in)."
        if near_miss(gap, closing):
            text += " DANGER: you are closing in fast."
        lines.append(text)
    else:
        lines.append("Ahead: the road is clear.")
    group = int(net.lane_signal_group[lane])
    if group >= 0 and len(state.group_state):
        to_line = float(net.lane_s_to[lane] - v["s"][r] - 0.5 * v["length"][r])
        lines.append(f"Signal ahead: {SIGNAL_NAMES[state.group_state[group]]}, stop line in {max(to_line, 0):.0f} m.")
    stop = float(state.stop_distance[r])
    if np.isfinite(stop) and stop < 60:
        lines.append(f"You must stop within {max(stop, 0):.0f} m.")
    if ln.lane_change:
        sides = [name for name, k in (("left", ln.left), ("right", ln.right)) if k >= 0]
        lines.append("You can change lanes to the " + " or ".join(sides) + "." if sides else "No lane beside you.")
    return " ".join(lines)


def pedestrian_scene(state: WorldState, pedestrian_id: int, usual_gap_s: float) -> str | None:
    """What pedestrian ``pedestrian_id`` perceives now; None if it has left."""
    p = state.pedestrians
    hits = np.flatnonzero(p["id"] == pedestrian_id)
    if not len(hits):
        return None
    r = int(hits[0])
    c = int(p["crossing"][r])
    crossing = state.network.crossings[c]
    phase = PHASE_NAMES[p["phase"][r]]
    lines = [f"Time {state.time:.0f} s. You are a pedestrian ({phase}) at the crossing '{crossing.name}'."]
    if crossing.signal >= 0 and len(state.crossing_signal):
        lines.append(f"Pedestrian signal: {WALK_NAMES[state.crossing_signal[crossing.signal]].replace('_', ' ')}.")
    elif crossing.name == "jaywalk":
        lines.append("There is no crosswalk here.")
    gap = float(state.crossing_gap[c]) if c < len(state.crossing_gap) else np.inf
    lines.append(f"The next vehicle reaches your crossing in {gap:.1f} s." if np.isfinite(gap) else
                 "No vehicle is approaching.")
    lines.append(f"You usually cross when the gap is at least {usual_gap_s:.1f} s.")
    if p["waited"][r] > 0:
        lines.append(f"You have waited {p['waited'][r]:.0f} s.")
    return " ".join(lines)


def operator_scene(state: WorldState, recent_events: dict[str, int], variable_limit_mps: float | None,
                   closed_lanes: list[str]) -> str:
    """The network's condition as a traffic-management centre sees it."""
    v, p = state.vehicles, state.pedestrians
    n = len(v["id"])
    mean_speed = float(v["v"].mean()) * KMH if n else 0.0
    stopped = int((v["v"] < 0.5).sum()) if n else 0
    waiting = int((p["phase"] == 1).sum()) if len(p["id"]) else 0
    longest = float(p["waited"].max()) if len(p["id"]) else 0.0
    lines = [f"Time {state.time:.0f} s. {n} vehicles in the network, mean speed {mean_speed:.0f} km/h, "
             f"{stopped} stopped.", f"{waiting} pedestrians waiting, the longest for {longest:.0f} s."]
    if state.signal_interval:
        lines.append(f"Signal interval: {state.signal_interval}.")
    lines.append("Variable speed limit: " + (f"{variable_limit_mps * KMH:.0f} km/h." if variable_limit_mps else "off."))
    if closed_lanes:
        lines.append("Closed lanes: " + ", ".join(closed_lanes) + ".")
    lanes = [ln.name for ln in state.network.lanes if ln.lane_change]
    if lanes:
        lines.append("Lanes you may close: " + ", ".join(lanes) + ".")
    events = ", ".join(f"{k}: {c}" for k, c in sorted(recent_events.items()) if c) or "none"
    lines.append(f"In the last minute: {events}.")
    return " ".join(lines)

"""When a human decides: on its role's period and on events (a near miss, a new vehicle ahead,
a signal change, arriving at the curb, an advisory or a supervisor alert received, a
collision for the operator). An event triggers at most every ``MIN_EVENT_GAP_S`` seconds per
human, except a near miss, which is urgent.
"""

from __future__ import annotations

import numpy as np

from agents.humans.roster import Human
from agents.humans.scene import KMH
from envs.actors import WAIT
from envs.state import WorldState, near_miss

MIN_EVENT_GAP_S = 5.0  # [s] an event triggers a decision at most this often per human
EVENT_RANGE_M = 60.0  # [m] a new leader or a signal change farther away than this is no event


def driver_trigger(h: Human, state: WorldState, r: int, now: float, period_s: float, notes: list | None,
                   episode: int) -> str | None:
    """Why driver ``h`` (vehicle row ``r``) decides now, or None; a near miss adds a memory to ``notes``."""
    net = state.network
    leader = int(state.vehicles["id"][state.leader[r]]) if state.leader[r] >= 0 else -1
    group = int(net.lane_signal_group[state.vehicles["lane"][r]])
    signal = int(state.group_state[group]) if group >= 0 and len(state.group_state) else -1
    trigger = None
    closing = state.vehicles["v"][r] - state.vehicles["v"][state.leader[r]] if state.leader[r] >= 0 else 0.0
    in_near_miss = bool(near_miss(state.leader_gap[r], closing))
    if in_near_miss and not h.near_miss:  # one memory and one trigger per near miss
        trigger = "near_miss"
        if notes is not None:
            notes.append({"agent": h.identity, "kind": "near_miss", "time_s": now, "episode": episode,
                          "text": f"At {now:.0f} s I nearly hit the vehicle ahead in lane "
                                  f"'{net.lanes[state.vehicles['lane'][r]].name}' at "
                                  f"{state.vehicles['v'][r] * KMH:.0f} km/h."})
    h.near_miss = in_near_miss
    if trigger is None and h.triggers:
        trigger = h.triggers[0]
    first = h.last_decision_s == -np.inf
    lane = int(state.vehicles["lane"][r])
    near_line = net.lane_s_to[lane] - state.vehicles["s"][r] < EVENT_RANGE_M
    if trigger is None and not first and leader >= 0 and leader != h.last_leader \
            and state.leader_gap[r] < EVENT_RANGE_M:
        trigger = "new_leader"
    if trigger is None and not first and signal != h.last_signal and h.last_signal >= 0 and near_line:
        trigger = "signal_change"
    h.last_leader, h.last_signal = leader, signal
    if now - h.last_decision_s >= period_s or first:
        return trigger or "periodic"
    if trigger == "near_miss" or (trigger and now - h.last_decision_s >= MIN_EVENT_GAP_S):
        return trigger  # a near miss is urgent; other events wait MIN_EVENT_GAP_S after a decision
    return None


def pedestrian_trigger(h: Human, state: WorldState, r: int, now: float, period_s: float) -> str | None:
    """Why pedestrian ``h`` (row ``r``) decides now, or None: only while waiting at the curb."""
    phase = int(state.pedestrians["phase"][r])
    arrived = phase == WAIT and h.last_phase != WAIT
    h.last_phase = phase
    crossing = state.network.crossings[int(state.pedestrians["crossing"][r])]
    signal = int(state.crossing_signal[crossing.signal]) if crossing.signal >= 0 else -1
    changed = signal != h.last_signal and h.last_signal >= 0
    h.last_signal = signal
    if phase != WAIT:
        return None
    if arrived:
        return "at_curb"
    if changed and now - h.last_decision_s >= MIN_EVENT_GAP_S:
        return "signal_change"
    if h.triggers and now - h.last_decision_s >= MIN_EVENT_GAP_S:
        return h.triggers[0]
    if now - h.last_decision_s >= period_s:
        return "periodic"
    return None


def operator_trigger(h: Human, now: float, new_events: list, period_s: float) -> str | None:
    """Why operator ``h`` decides now, or None."""
    if now - h.last_decision_s >= period_s:
        return "periodic"
    if h.triggers and now - h.last_decision_s >= MIN_EVENT_GAP_S:
        return h.triggers[0]
    if any(e.kind == "collision" for e in new_events) and now - h.last_decision_s >= MIN_EVENT_GAP_S:
        return "collision"
    return None

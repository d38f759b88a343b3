"""Lane changes of human drivers: MOBIL over the neighbouring lanes, once per decision period.

Drivers reconsider their lane together on the slow clock (``DECISION_PERIOD_S``); a lane
wish from an intent or a closed lane adds to the incentive only, never to MOBIL's safety
criterion. Two drivers never claim the same stretch of a lane at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from envs import behaviour
from envs.actors import HUMAN

if TYPE_CHECKING:
    from envs.world.world import World

DECISION_PERIOD_S = 1.0  # [s] between lane-change decisions of a human driver
CLOSED_LANE_WISH = 3.0  # [m/s^2] MOBIL bonus for leaving a closed lane


def decide(world: "World", dt: float) -> None:
    """Start the lane changes MOBIL accepts, when the decision period comes round."""
    veh, net = world.vehicles, world.network
    # human drivers reconsider their lane together, once per decision period (the slow clock)
    tick = int((world.time + dt) / DECISION_PERIOD_S + 1e-9) > int(world.time / DECISION_PERIOD_S + 1e-9)
    if not tick or not len(veh):
        return
    settled = (np.abs(veh.d - net.lane_offset[veh.lane]) < 0.3) & (np.abs(veh.psi) < 0.05)
    due = (veh.driver == HUMAN) & ~veh.crashed & (veh.target_lane == veh.lane) & settled
    due &= (net.lane_change_ok[veh.lane] & (veh.v > 2.0)) | net.lane_dead_end[veh.lane]
    rows = np.flatnonzero(due)
    if not len(rows):
        return
    best_gain = np.full(len(rows), -np.inf)
    choice = np.full(len(rows), -1)
    for to_right, table in ((False, net.lane_left), (True, net.lane_right)):
        tgt = table[veh.lane[rows]]
        ok = tgt >= 0
        tg = np.maximum(tgt, 0)
        s = veh.s[rows]
        ok &= net.lane_change_ok[tg] & (net.lane_s_from[tg] <= s - 0.5 * veh.length[rows]) & (s + 30.0 <= net.lane_s_to[tg])
        ok &= ~world.lane_closed[tg]
        if not ok.any():
            continue
        wish = (veh.wish_right[rows] if to_right else veh.wish_left[rows])
        wish = wish + np.where(world.lane_closed[veh.lane[rows]], CLOSED_LANE_WISH, 0.0)
        gain, safe = mobil(world, rows, tg, to_right, wish)
        take = ok & safe & (gain > best_gain)
        best_gain = np.where(take, gain, best_gain)
        choice = np.where(take, tg, choice)
    changing = choice >= 0
    rows, choice = rows[changing], choice[changing]
    if not len(rows):
        return
    # two drivers must not claim the same stretch of a lane at once: the rear one waits
    # (nor may one claim a stretch that a driver already moving in occupies, checked by MOBIL)
    order = np.lexsort((veh.s[rows], choice))
    rows, choice = rows[order], choice[order]
    same = choice[1:] == choice[:-1]
    spacing = veh.s[rows[1:]] - veh.s[rows[:-1]] - 0.5 * (veh.length[rows[1:]] + veh.length[rows[:-1]])
    needed = veh.min_gap[rows[:-1]] + veh.v[rows[:-1]] * veh.headway[rows[:-1]]
    yield_rear = np.concatenate([same & (spacing < needed), [False]])
    veh.target_lane[rows[~yield_rear]] = choice[~yield_rear]
    world.perceive()  # the movers now also occupy their target lanes



def idm_for(world: "World", rows: np.ndarray, gap: np.ndarray, v_lead: np.ndarray) -> np.ndarray:
    veh = world.vehicles
    v0 = np.minimum(veh.speed_factor[rows] * world.lane_speed_limit[veh.lane[rows]], veh.v_max[rows])
    return behaviour.idm(veh.v[rows], v0, veh.headway[rows], veh.min_gap[rows], veh.a_max[rows], veh.b_comf[rows], gap, v_lead)



def mobil(world: "World", rows: np.ndarray, target: np.ndarray, to_right: bool, wish: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gain [m/s^2] and acceptance of moving vehicles ``rows`` into lanes ``target``; ``wish``
    [m/s^2] is the drivers' own preference for that side (intent), added to the incentive only."""
    veh = world.vehicles
    s = veh.s[rows]
    inf = np.full(len(rows), np.inf)

    def gap_between(back, front):  # bumper gap from row ``back`` to row ``front`` (inf if either missing)
        ok = (back >= 0) & (front >= 0)
        b, f = np.maximum(back, 0), np.maximum(front, 0)
        return np.where(ok, veh.s[f] - veh.s[b] - 0.5 * (veh.length[f] + veh.length[b]), inf)

    me = rows
    new_lead = world.query_ahead(target, s)
    new_follow = world.query_behind(target, s)
    old_lead = world.leader[rows]
    old_follow = world.query_behind(veh.lane[rows], s)
    speed = lambda r: np.where(r >= 0, veh.v[np.maximum(r, 0)], 0.0)  # noqa: E731
    a_self_now = world.idm_accel[rows]
    a_self_new = idm_for(world, me, gap_between(me, new_lead), speed(new_lead))
    nf = np.maximum(new_follow, 0)
    has_nf = new_follow >= 0
    a_nf_now = np.where(has_nf, idm_for(world, nf, gap_between(new_follow, new_lead), speed(new_lead)), 0.0)
    a_nf_new = np.where(has_nf, idm_for(world, nf, gap_between(new_follow, me), veh.v[me]), 0.0)
    of = np.maximum(old_follow, 0)
    has_of = old_follow >= 0
    a_of_now = np.where(has_of, idm_for(world, of, gap_between(old_follow, me), veh.v[me]), 0.0)
    a_of_new = np.where(has_of, idm_for(world, of, gap_between(old_follow, old_lead), speed(old_lead)), 0.0)
    room = (gap_between(me, new_lead) > veh.min_gap[rows]) & (gap_between(new_follow, me) > 1.0)
    gain = (a_self_new - a_self_now) + veh.politeness[rows] * ((a_nf_new - a_nf_now) + (a_of_new - a_of_now))
    accept = behaviour.mobil(a_self_now, a_self_new, a_nf_now, a_nf_new, a_of_now, a_of_new,
                             veh.politeness[rows], np.full(len(rows), to_right), bonus=wish)
    gain = gain + wish
    return gain, accept & room


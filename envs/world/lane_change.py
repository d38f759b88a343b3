"""Lane changes of human drivers: MOBIL over the neighbouring lanes, once per decision period.

Drivers reconsider their lane together on the slow clock (``DECISION_PERIOD_S``); a lane
wish from an intent, a closed lane or the route (a lane that leads on where the own lane
does not) adds to the incentive only, never to MOBIL's safety criterion. Two drivers never
claim the same stretch of a lane at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numba import njit

from envs import behaviour, kernels
from envs.actors import HUMAN
from envs.kernels import KEY_SCALE

if TYPE_CHECKING:
    from envs.world.world import World

DECISION_PERIOD_S = 1.0  # [s] between lane-change decisions of a human driver
CLOSED_LANE_WISH = 3.0  # [m/s^2] MOBIL bonus for leaving a closed lane
ROUTE_WISH = 4.0  # [m/s^2] MOBIL bonus, at its strongest, toward a lane that leads on along the route
MERGE_ROOM_M = 2.0  # [m] road ahead of its front in the target lane a driver that must change for its route needs
ROUTE_LOOKAHEAD = 8  # route keys (four edges with their junction links) strategic lane changes plan for
TURN_OUT_ROOM_M = 1.5  # [m] bumper gap to its own leader a driver needs to turn out of its lane (imported networks)
LEADER_HOPS = 3  # lanes beyond the target lane's end searched for the leader a change would bring
STRATEGIC_LOOKAHEAD_S = 10.0  # [s] how far ahead, at its speed, a driver plans a lane change its route needs (SUMO's LC2013)
ROUTE_WISH_RANGE_M = 300.0  # [m] before its lane's end where the route pulls in full


def decide(world: "World", dt: float) -> None:
    """Start the lane changes MOBIL accepts, when the decision period comes round."""
    veh, net = world.vehicles, world.network
    # human drivers reconsider their lane together, once per decision period (the slow clock)
    tick = int((world.time + dt) / DECISION_PERIOD_S + 1e-9) > int(world.time / DECISION_PERIOD_S + 1e-9)
    if not tick or not len(veh):
        return
    needs_change = world.changes_needed > 0 if len(world.changes_needed) == len(veh) else False
    # settled in the lane; a driver who must change for its route and stands (it cannot steer
    # back to the centre standing) goes on from where it is
    off_centre, angle = np.abs(veh.d - net.lane_offset[veh.lane]), np.abs(veh.psi)
    settled = (off_centre < 0.3) & (angle < 0.05) | (needs_change & (off_centre < 1.0) & (angle < 0.3))
    due = (veh.driver == HUMAN) & ~veh.crashed & (veh.target_lane == veh.lane) & settled
    routed_slow = (veh.route[:, 0] > 0) & (veh.v > 0.5)  # drivers with a route change in slow traffic too
    due &= (net.lane_change_ok[veh.lane] & ((veh.v > 2.0) | needs_change | routed_slow)) | net.lane_dead_end[veh.lane]
    rows = np.flatnonzero(due)
    if not len(rows):
        return
    # room the target lane must have ahead: 30 m, or (a driver that must leave its lane for
    # its route, perhaps waiting at the lane's end) enough for its own front
    ahead_needed = np.where(needs_change[rows], 0.5 * veh.length[rows] + MERGE_ROOM_M, 30.0) \
        if isinstance(needs_change, np.ndarray) else 30.0
    best_gain = np.full(len(rows), -np.inf)
    choice = np.full(len(rows), -1)
    for to_right, table in ((False, net.lane_left), (True, net.lane_right)):
        tgt = table[veh.lane[rows]]
        ok = tgt >= 0
        tg = np.maximum(tgt, 0)
        s = veh.s[rows]
        ok &= net.lane_change_ok[tg] & (net.lane_s_from[tg] <= s - 0.5 * veh.length[rows]) & (s + ahead_needed <= net.lane_s_to[tg])
        ok &= ~world.lane_closed[tg]
        if not ok.any():
            continue
        wish = (veh.wish_right[rows] if to_right else veh.wish_left[rows])
        wish = wish + np.where(world.lane_closed[veh.lane[rows]], CLOSED_LANE_WISH, 0.0)
        strategic = route_wish(world, rows, tg)
        wish = wish + strategic
        gain, safe = mobil(world, rows, tg, to_right, wish)
        if world.has_links:  # blocked where its route pulls in full: ask the follower there to fall back
            blocked = ok & ~safe & (strategic >= ROUTE_WISH)
            ask_follower(world, rows[blocked], tg[blocked])
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
    if world.has_links:  # and the rear one's braking distance beyond the front one's (SUMO's secure gap)
        rear, front = rows[:-1], rows[1:]
        secure = [behaviour.secure_gap(veh.v[r], veh.v[f], veh.headway[r], veh.b_comf[r], veh.b_comf[f])
                  for r, f in zip(rear, front)]
        needed = np.maximum(needed, veh.min_gap[rear] + np.array(secure))
    yield_rear = np.concatenate([same & (spacing < needed), [False]])
    veh.target_lane[rows[~yield_rear]] = choice[~yield_rear]
    world.perceive()  # the movers now also occupy their target lanes



COURTESY_HOLD_S = 3.0  # [s] how long a follower asked to make room falls in behind the driver that asked
ASK_MIN_MPS = 3.0  # [m/s] drivers slower than this do not ask (they wait at the lane's end for a courtesy stop)


def ask_follower(world: "World", rows: np.ndarray, target: np.ndarray) -> None:
    """Cooperative lane changing (SUMO's LC2013 informs its follower): drivers of ``rows`` that
    their route pulls in full into ``target`` but find no safe gap ask the driver behind them
    there to fall in behind them for ``COURTESY_HOLD_S`` (:func:`kernels.courtesy_leaders`),
    so that a gap opens beside them, if it can without braking harder than its ``b_comf``."""
    veh = world.vehicles
    for r, lane in zip(rows.tolist(), target.tolist()):
        if veh.v[r] < ASK_MIN_MPS:  # a slow driver at its lane's end gets a courtesy stop instead (World.stops)
            continue
        k = kernels._behind(world._sorted_keys, world._sorted_lane, world._sorted_veh, lane, veh.s[r], KEY_SCALE)
        if k < 0 or k == r or veh.driver[k] != HUMAN:
            continue
        gap = veh.s[r] - veh.s[k] - 0.5 * (veh.length[r] + veh.length[k])
        if gap > 0.0 and veh.v[k] ** 2 - veh.v[r] ** 2 <= 2.0 * veh.b_comf[k] * gap:  # it can, braking gently
            veh.courtesy_for[k] = veh.id[r] + 1
            veh.courtesy_until[k] = world.time + COURTESY_HOLD_S


def route_wish(world: "World", rows: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Strategic lane changes: per driver of ``rows``, the MOBIL bonus [m/s^2] for moving to
    ``target`` because that lane is nearer (in lane changes) to one that leads on along its
    route, or, as near, leaves fewer changes along the route ahead (``route_changes``: SUMO's
    "best lanes", over the next ``ROUTE_LOOKAHEAD`` route keys); negative the other way
    round, and prohibitive within reach of the deadline when it takes the driver farther
    from a lane that leads on. In full within reach of the deadline (the end of the stretch
    its lane leads along its route: SUMO's look-ahead, ``STRATEGIC_LOOKAHEAD_S`` at its speed,
    twice that for changes to the left, at least ``ROUTE_WISH_RANGE_M``, per change needed),
    weaker farther away; zero without a route."""
    veh, net = world.vehicles, world.network
    out = np.zeros(len(rows))
    for k in np.flatnonzero(veh.route[rows, 0] > 0):
        r, lane = rows[k], int(veh.lane[rows[k]])
        keys = _route_ahead(veh.route[r])
        here = (_changes_to(net, lane, keys[0]), route_changes(net, lane, keys))
        there = (_changes_to(net, int(target[k]), keys[0]), route_changes(net, int(target[k]), keys))
        if here != there:
            better = there < here
            # the deadline of the lane with more changes to make: this one, or the one it would move to
            to_end = _along_route(net, lane if better else int(target[k]), keys) - veh.s[r]
            needed = max(1, here[1], there[1])
            toward_left = (net.lane_left[lane] == target[k]) == better
            reach = max(ROUTE_WISH_RANGE_M, veh.v[r] * STRATEGIC_LOOKAHEAD_S * (2.0 if toward_left else 1.0)) * needed
            pull = ROUTE_WISH * min(1.0, max(0.25, 2.0 - to_end / reach))
            if better:
                out[k] = pull
            else:  # never give up, within reach, a lane nearer to the route's for one farther from it
                out[k] = -np.inf if (there[0] > here[0] or there[1] > here[1]) and to_end < reach else -pull
    return out


def _along_route(net, lane: int, keys: tuple[int, ...]) -> float:
    """The station [m] on ``lane``'s edge at which the stretch ends that a vehicle on ``lane``
    drives along its route ``keys`` without changing lanes (lanes ahead counted by length)."""
    extra, ln = 0.0, int(lane)
    for key in keys:
        k = kernels.turn_to(ln, key, net.lane_turn_ptr, net.lane_turn, net.lane_route_key)
        if k < 0:
            break
        ln = int(net.lane_turn[k])
        extra += net.lane_s_to[ln] - net.lane_s_from[ln]
        if extra > 1000.0:
            break
    return net.lane_s_to[lane] + extra


def _route_ahead(route: np.ndarray) -> tuple[int, ...]:
    """The route keys (not +1) a vehicle's route column names ahead, up to ``ROUTE_LOOKAHEAD``."""
    keys = []
    for value in route[:ROUTE_LOOKAHEAD]:
        if value <= 0:
            break
        keys.append(int(value) - 1)
    return tuple(keys)


def route_changes(net, lane: int, keys: tuple[int, ...]) -> int:
    """The fewest lane changes a vehicle on ``lane`` makes to drive the route keys ``keys``
    (each the route key of the lane entered at the next lane end), changing lanes only within
    an edge (99 and more: it cannot). Memoised on the network: routes repeat."""
    cache = net.__dict__.setdefault("_route_changes", {})
    found = cache.get((lane, keys))
    if found is not None:
        return found
    if not keys:
        cost = 0
    else:
        cost = 99 * len(keys)
        for side, k0 in _edge_lanes(net, lane):
            if k0 >= cost:
                continue
            for k in range(net.lane_turn_ptr[side], net.lane_turn_ptr[side + 1]):
                onto = int(net.lane_turn[k])
                if net.lane_route_key[onto] == keys[0]:
                    cost = min(cost, k0 + route_changes(net, onto, keys[1:]))
    if len(cache) > 200_000:
        cache.clear()
    cache[(lane, keys)] = cost
    return cost


def _edge_lanes(net, lane: int) -> list[tuple[int, int]]:
    """The lanes of ``lane``'s edge it can change to, with the number of changes to each."""
    out = [(int(lane), 0)]
    for table in (net.lane_left, net.lane_right):
        ln, k = int(table[lane]), 1
        while ln >= 0:
            out.append((ln, k))
            ln, k = int(table[ln]), k + 1
    return out


def _changes_to(net, lane: int, edge: int) -> int:
    """Lane changes from ``lane`` to one that leads to route key ``edge`` (99 if none does;
    memoised on the network, whose lanes never change)."""
    cache = net.__dict__.setdefault("_changes_to", {})
    found = cache.get((lane, edge))
    if found is None:
        found = cache[(int(lane), int(edge))] = _count_changes_to(net, lane, edge)
    return found


def _count_changes_to(net, lane: int, edge: int) -> int:
    best = 99
    for table in (net.lane_left, net.lane_right):
        ln, k = int(lane), 0
        while ln >= 0 and k < best:
            if _leads_to(net, ln, edge):
                best = k
                break
            ln, k = int(table[ln]), k + 1
    return best


def _leads_to(net, lane: int, edge: int) -> bool:
    """Whether ``lane`` leads to a lane of route key ``edge`` (an edge, or a junction movement)."""
    return kernels.turn_to(int(lane), int(edge), net.lane_turn_ptr, net.lane_turn, net.lane_route_key) >= 0


def mobil(world: "World", rows: np.ndarray, target: np.ndarray, to_right: bool, wish: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gain [m/s^2] and acceptance of moving vehicles ``rows`` into lanes ``target``; ``wish``
    [m/s^2] is the drivers' own preference for that side (intent), added to the incentive only."""
    veh = world.vehicles
    net = world.network
    return _mobil(rows, target, to_right, wish, world._sorted_keys, world._sorted_lane, world._sorted_veh, KEY_SCALE,
                  world.leader, world.idm_accel, veh.lane, veh.s, veh.v, veh.length, veh.speed_factor, veh.v_max,
                  veh.headway, veh.min_gap, veh.a_max, veh.b_comf, veh.politeness, world.lane_speed_limit,
                  net.link_in_ptr, net.link_in, net.lane_link_from, net.lane_s_from, net.lane_s_to, net.lane_next,
                  net.lane_next_station, TURN_OUT_ROOM_M if world.has_links else -np.inf, veh.krauss,
                  net.link_peer_ptr, net.link_peer, net.link_peer_merges)


@njit(cache=True)
def _mobil(rows, target, to_right, wish, keys, key_lane, key_veh, key_scale, leader, idm_accel, lane, s, v, length,
           speed_factor, v_max, headway, min_gap, a_max, b_comf, politeness, lane_limit, in_ptr, in_lane, link_from,
           lane_s_from, lane_s_to, lane_next, lane_next_station, turn_out_room, krauss, peer_ptr, peer_lane,
           peer_merges):
    """:func:`mobil` per driver: IDM of the changer and of its old and new followers, before
    and after, from the occupancy (``keys``, ``key_lane``, ``key_veh``) of the last perception.
    With no follower in the target lane, the new follower is the nearest vehicle on a junction
    link leading into it or on the lane before that link (``in_ptr``, ``in_lane``, ``link_from``:
    general networks; empty on the layouts). With no leader in the target lane, the new leader
    is searched on the lanes it leads to (``lane_next``, up to ``LEADER_HOPS`` lanes), and on
    a junction link among them, on the links that merge with it (``peer_ptr``, ``peer_lane``,
    ``peer_merges``: a vehicle nearer their common end, as :func:`kernels.link_leaders` sees it).
    A driver leaves a Krauss follower (``krauss``) at least its minimum gap (Krauss waits
    within it)."""
    n = rows.shape[0]
    gain, accept = np.empty(n), np.zeros(n, dtype=np.bool_)
    half = 0.5 * length

    def gap_between(back, front):  # bumper gap from row ``back`` to row ``front`` (inf if either missing)
        if back < 0 or front < 0:
            return np.inf
        return s[front] - s[back] - 0.5 * (length[front] + length[back])

    def speed(r):
        return v[r] if r >= 0 else 0.0

    def idm_for(r, gap, v_lead):
        v0 = min(speed_factor[r] * lane_limit[lane[r]], v_max[r])
        return behaviour.idm(v[r], v0, headway[r], min_gap[r], a_max[r], b_comf[r], gap, v_lead)

    for i in range(n):
        me, si = rows[i], s[rows[i]]
        new_lead = kernels._ahead(keys, key_lane, key_veh, target[i], si, key_scale)
        nl_gap = gap_between(me, new_lead)
        ln, station = target[i], si
        for _ in range(LEADER_HOPS if new_lead < 0 else 0):  # beyond the target lane's end
            nxt = lane_next[ln]
            if nxt < 0:
                break
            station = lane_next_station[ln] + station - lane_s_to[ln]
            ln = nxt
            c, g = kernels.merging_leader(keys, key_lane, key_veh, peer_ptr, peer_lane, peer_merges, lane_s_to, s,
                                          half, ln, station, me, half[me], key_scale)
            if c >= 0 and max(g, 0.0) < nl_gap:  # merging into the same lane ahead of it
                new_lead, nl_gap = c, max(g, 0.0)
            c = kernels._ahead(keys, key_lane, key_veh, ln, station, key_scale)
            if c >= 0 and s[c] - station - 0.5 * (length[c] + length[me]) < nl_gap:
                new_lead, nl_gap = c, s[c] - station - 0.5 * (length[c] + length[me])
            if new_lead >= 0:
                break
        new_follow = kernels._behind(keys, key_lane, key_veh, target[i], si, key_scale)
        nf_gap = gap_between(new_follow, me)
        if new_follow < 0:  # coming into the target lane over a junction link, behind its start
            for k in range(in_ptr[target[i]], in_ptr[target[i] + 1]):
                u = in_lane[k]
                c = kernels._behind(keys, key_lane, key_veh, u, lane_s_to[u] + 1.0e4, key_scale)
                back = 0.0  # [m] the link's length when the follower is on the lane before it
                if c < 0 and link_from[u] >= 0:
                    back = lane_s_to[u] - lane_s_from[u]
                    u = link_from[u]
                    c = kernels._behind(keys, key_lane, key_veh, u, lane_s_to[u] + 1.0e4, key_scale)
                if c >= 0:
                    g = back + (lane_s_to[u] - s[c]) + (si - lane_s_from[target[i]]) - 0.5 * (length[c] + length[me])
                    if g < nf_gap:
                        new_follow, nf_gap = c, g
        old_lead = leader[me]
        old_follow = kernels._behind(keys, key_lane, key_veh, lane[me], si, key_scale)
        a_self_now = idm_accel[me]
        a_self_new = idm_for(me, nl_gap, speed(new_lead))
        a_nf_now = a_nf_new = a_of_now = a_of_new = 0.0
        if new_follow >= 0:
            a_nf_now = idm_for(new_follow, nf_gap + length[me] + nl_gap, speed(new_lead))
            a_nf_new = idm_for(new_follow, nf_gap, v[me])
        if old_follow >= 0:
            a_of_now = idm_for(old_follow, gap_between(old_follow, me), v[me])
            a_of_new = idm_for(old_follow, gap_between(old_follow, old_lead), speed(old_lead))
        # room in the target lane, and to the own leader (turning out, the front corner swings toward it)
        room = nl_gap > min_gap[me] and nf_gap > 1.0 and gap_between(me, old_lead) > turn_out_room
        if room and new_follow >= 0 and krauss[new_follow]:
            room = nf_gap >= min_gap[new_follow]
        g = (a_self_new - a_self_now) + politeness[me] * ((a_nf_new - a_nf_now) + (a_of_new - a_of_now))
        accept[i] = room and behaviour.mobil(a_self_now, a_self_new, a_nf_now, a_nf_new, a_of_now, a_of_new,
                                             politeness[me], to_right, behaviour.MOBIL_SAFE_DECEL, wish[i])
        gain[i] = g + wish[i]
    return gain, accept

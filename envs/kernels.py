"""Compiled inner loops of the physics step (numba), over all actors at once.

Each kernel is a plain function of numpy arrays; ``envs.world`` owns the state and
decides what to call. Compiled on first use and cached next to this file.

About 440 lines: the kernels of one physics step share their small helpers (``_ahead``,
``_behind``, ``_project``) and are fused into few calls, so they stay in one module.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from envs import behaviour
from envs.actors import CONTINUOUS, HUMAN, META, ROUTE_END, ROUTE_LOST  # (numba folds them as constants)
from envs.network import AMBER, RED

INF = np.inf


KEY_SCALE = 1.0e5  # [m] lane index multiplier in the occupancy sort keys (longer than any lane)

@njit(cache=True)
def _ahead(keys, key_lane, key_veh, lane, s, key_scale):
    """Row of the nearest occupancy entry strictly ahead of ``s`` on ``lane`` (-1 if none)."""
    pos = np.searchsorted(keys, lane * key_scale + s, side="right")
    if pos < keys.shape[0] and key_lane[pos] == lane:
        return key_veh[pos]
    return -1


@njit(cache=True)
def _behind(keys, key_lane, key_veh, lane, s, key_scale):
    """Row of the nearest occupancy entry strictly behind ``s`` on ``lane`` (-1 if none)."""
    pos = np.searchsorted(keys, lane * key_scale + s, side="left") - 1
    if pos >= 0 and key_lane[pos] == lane:
        return key_veh[pos]
    return -1


@njit(cache=True)
def query(keys, key_lane, key_veh, lanes, s, key_scale, ahead):
    """Vectorised :func:`_ahead` / :func:`_behind` for many (lane, s) queries."""
    out = np.empty(lanes.shape[0], dtype=np.int64)
    for i in range(lanes.shape[0]):
        if ahead:
            out[i] = _ahead(keys, key_lane, key_veh, lanes[i], s[i], key_scale)
        else:
            out[i] = _behind(keys, key_lane, key_veh, lanes[i], s[i], key_scale)
    return out


@njit(cache=True, inline="always")
def turn_to(ln, edge, turn_ptr, turn_lane, lane_edge):
    """The index into ``turn_lane`` of the lane of ``edge`` that lane ``ln`` leads to, or -1."""
    for k in range(turn_ptr[ln], turn_ptr[ln + 1]):
        if lane_edge[turn_lane[k]] == edge:
            return k
    return -1


@njit(cache=True, inline="always")  # inlined: a call per vehicle and lane end would cost more than the work
def successor(route, i, h, ln, lane_next, lane_next_station, turn_ptr, turn_lane, turn_station, lane_edge):
    """The lane vehicle ``i`` enters at the end of lane ``ln``, ``h`` lane ends from now, and
    the station [m] where it joins it: the one on its route's edge, else ``ln``'s ``next``
    (-1: the network ends there, or the route does). Where several lanes of the route's edge
    follow (a lane that fans out), the one from which the route goes on (``_leads_on``). The
    lane arrays are ``Network.turns``."""
    if h < route.shape[1] and route[i, h] == ROUTE_END:
        return -1, 0.0
    want = route[i, h] - 1 if h < route.shape[1] else -1
    found = -1
    if want >= 0:
        for k in range(turn_ptr[ln], turn_ptr[ln + 1]):
            if lane_edge[turn_lane[k]] == want:
                if found < 0:
                    found = k
                if _leads_on(route, i, h + 1, turn_lane[k], lane_next, turn_ptr, turn_lane, lane_edge):
                    found = k
                    break
    if found >= 0:
        return turn_lane[found], turn_station[found]
    return lane_next[ln], lane_next_station[ln]


@njit(cache=True, inline="always")
def _leads_on(route, i, h, ln, lane_next, turn_ptr, turn_lane, lane_edge):
    """Whether lane ``ln`` (entered ``h`` lane ends from now) leads to the route's lane after it,
    or to the one after that through the one lane it must lead to (a junction link)."""
    if h >= route.shape[1] or route[i, h] <= 0:
        return True
    nxt = lane_next[ln]
    if turn_ptr[ln + 1] - turn_ptr[ln] == 1 and nxt >= 0:  # a lane with one way on (a junction link)
        if lane_edge[nxt] != route[i, h] - 1:
            return False
        if h + 1 >= route.shape[1] or route[i, h + 1] <= 0:
            return True
        return turn_to(nxt, route[i, h + 1] - 1, turn_ptr, turn_lane, lane_edge) >= 0
    return turn_to(ln, route[i, h] - 1, turn_ptr, turn_lane, lane_edge) >= 0


@njit(cache=True)
def leaders(keys, key_lane, key_veh, lane, target_lane, s, half, route, lane_next, lane_next_station, turn_ptr,
            turn_lane, turn_station, lane_edge, lane_s_to, lane_dead_end, hops, key_scale, min_hops, lookahead_m):
    """Leader row and bumper gap [m] of every vehicle, searching the lanes ahead: at least
    ``min_hops`` lanes, then on until ``lookahead_m`` [m] ahead are covered (so short
    junction-internal lanes do not shorten what a driver sees), at most ``hops`` lanes.

    Also returns the lanes of the look-ahead and the vehicle's station expressed on each
    (negative before that lane starts), for conflict-zone distances, and the lane each
    vehicle enters at the end of its own (its route's, else the lane's ``next``; -1: none).
    """
    n = lane.shape[0]
    lead = np.full(n, -1, dtype=np.int64)
    next_lane = np.full(n, -1, dtype=np.int64)
    gap = np.full(n, INF)
    hop_lane = np.full((n, hops), -1, dtype=np.int64)
    hop_s = np.zeros((n, hops))
    for i in range(n):
        ln, si = lane[i], s[i]
        for h in range(hops):
            hop_lane[i, h] = ln
            hop_s[i, h] = si
            if lead[i] < 0:
                j = _ahead(keys, key_lane, key_veh, ln, si, key_scale)
                if j >= 0:
                    lead[i] = j
                    gap[i] = s[j] - si - half[i] - half[j]
            if h < route.shape[1] and route[i, h] != 0:
                nxt, station = successor(route, i, h, ln, lane_next, lane_next_station, turn_ptr, turn_lane,
                                         turn_station, lane_edge)
            else:  # no route here: the lane's own next (the common case, kept cheap)
                nxt, station = lane_next[ln], lane_next_station[ln]
            if h == 0:
                next_lane[i] = nxt
            if nxt < 0 and lead[i] < 0 and h < route.shape[1] and route[i, h] == ROUTE_END:
                # its route ends with this lane: it leaves at the end, but sees who is beyond it until then
                beyond, at = lane_next[ln], lane_next_station[ln] + si - lane_s_to[ln]
                if beyond >= 0:
                    j = _ahead(keys, key_lane, key_veh, beyond, at, key_scale)
                    if j >= 0:
                        lead[i] = j
                        gap[i] = s[j] - at - half[i] - half[j]
            if nxt < 0 or lane_dead_end[ln] or (h + 1 >= min_hops and lane_s_to[ln] - si >= lookahead_m):
                break
            si = station + si - lane_s_to[ln]
            ln = nxt
        if target_lane[i] != lane[i]:  # changing lanes: also follow the target lane's leader
            j = _ahead(keys, key_lane, key_veh, target_lane[i], s[i], key_scale)
            if j >= 0:
                g = s[j] - s[i] - half[i] - half[j]
                if g < gap[i]:
                    lead[i] = j
                    gap[i] = g
    return lead, gap, hop_lane, hop_s, next_lane


@njit(cache=True)
def zone_distances(hop_lane, hop_s, half, zone_lane, zone_s_in, zone_s_out):
    """Front-bumper distance [m] to each conflict zone ahead (inf if not on the path) and
    whether the vehicle has already left it."""
    n, hops = hop_lane.shape
    nz = zone_lane.shape[0]
    to_zone = np.full((n, nz), INF)
    past = np.ones((n, nz), dtype=np.bool_)
    for i in range(n):
        for h in range(hops):
            ln = hop_lane[i, h]
            if ln < 0:
                break
            for z in range(nz):
                if zone_lane[z] == ln:
                    to_zone[i, z] = zone_s_in[z] - hop_s[i, h] - half[i]
                    past[i, z] = zone_s_out[z] - hop_s[i, h] + half[i] <= 0.0
    return to_zone, past


@njit(cache=True)
def placement(chain_s, chain_table, offsets, lengths, lane_edge, lane, s, d):
    """World position (x, y) [m] of vehicles at stations ``s`` [m] and offsets ``d`` [m] of their
    lanes' edges, with the reference frame there: tangent (cos h, sin h) and curvature [1/m]."""
    n = lane.shape[0]
    x, y, cos_h, sin_h, kappa = np.empty(n), np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    m = chain_s.shape[0]
    f = np.empty(5)
    for i in range(n):
        edge = lane_edge[lane[i]]
        g = offsets[edge] + min(max(s[i], 0.0), lengths[edge])
        k = np.searchsorted(chain_s, g, side="right")
        k = min(max(k, 1), m - 1)
        w = (g - chain_s[k - 1]) / max(chain_s[k] - chain_s[k - 1], 1e-9)
        for c in range(5):
            f[c] = chain_table[k - 1, c] + w * (chain_table[k, c] - chain_table[k - 1, c])
        x[i] = f[0] - d[i] * f[3]
        y[i] = f[1] + d[i] * f[2]
        cos_h[i], sin_h[i], kappa[i] = f[2], f[3], f[4]
    return x, y, cos_h, sin_h, kappa


@njit(cache=True)
def _project(cx, cy, ax, ay, wx, wy, nx, ny):
    """Interval of a box (centre, half-length axis, half-width axis) projected on (nx, ny)."""
    c = cx * nx + cy * ny
    r = abs(ax * nx + ay * ny) + abs(wx * nx + wy * ny)
    return c - r, c + r


@njit(cache=True)
def vehicle_collisions(x, y, heading, length, width, crashed):
    """Pairs (i, j), i < j, of oriented boxes that overlap, skipping pairs already both crashed,
    in order of i then j. Sweeps along x: only boxes whose x lie within their reaches are
    tested, so the cost grows with the vehicles, not with their pairs."""
    n = x.shape[0]
    out_i, out_j = [], []
    reach = np.empty(n)  # [m] half diagonal: boxes farther apart than the sum cannot touch
    for i in range(n):
        reach[i] = 0.5 * math.hypot(length[i], width[i])
    if n < 2:
        return np.array(out_i, dtype=np.int64), np.array(out_j, dtype=np.int64)
    max_reach = reach.max()
    order = np.argsort(x)
    for a in range(n):
        first = order[a]
        for b in range(a + 1, n):
            second = order[b]
            if x[second] - x[first] > reach[first] + max_reach:
                break
            i, j = min(first, second), max(first, second)
            if crashed[i] and crashed[j]:
                continue
            ri, rj = reach[i], reach[j]
            dx, dy = x[j] - x[i], y[j] - y[i]
            if dx * dx + dy * dy > (ri + rj) ** 2:
                continue
            ci, si = math.cos(heading[i]), math.sin(heading[i])
            cj, sj = math.cos(heading[j]), math.sin(heading[j])
            axes = ((ci, si), (-si, ci), (cj, sj), (-sj, cj))
            separated = False
            for nx, ny in axes:
                lo1, hi1 = _project(x[i], y[i], 0.5 * length[i] * ci, 0.5 * length[i] * si,
                                    -0.5 * width[i] * si, 0.5 * width[i] * ci, nx, ny)
                lo2, hi2 = _project(x[j], y[j], 0.5 * length[j] * cj, 0.5 * length[j] * sj,
                                    -0.5 * width[j] * sj, 0.5 * width[j] * cj, nx, ny)
                if hi1 < lo2 or hi2 < lo1:
                    separated = True
                    break
            if not separated:
                out_i.append(i)
                out_j.append(j)
    if len(out_i) > 1:  # in order of i, then j (as an all-pairs scan finds them)
        rank = np.argsort(np.array(out_i, dtype=np.int64) * n + np.array(out_j, dtype=np.int64))
        return np.array(out_i, dtype=np.int64)[rank], np.array(out_j, dtype=np.int64)[rank]
    return np.array(out_i, dtype=np.int64), np.array(out_j, dtype=np.int64)


@njit(cache=True)
def pedestrian_collisions(px, py, radius, active, x, y, heading, length, width):
    """Pairs (pedestrian, vehicle) where a circle of ``radius`` [m] touches a vehicle box."""
    out_p, out_v = [], []
    for p in range(px.shape[0]):
        if not active[p]:
            continue
        for v in range(x.shape[0]):
            dx, dy = px[p] - x[v], py[p] - y[v]
            reach = 0.5 * math.hypot(length[v], width[v]) + radius
            if dx * dx + dy * dy > reach * reach:
                continue
            c, s = math.cos(heading[v]), math.sin(heading[v])
            lx, ly = dx * c + dy * s, -dx * s + dy * c
            qx = min(max(lx, -0.5 * length[v]), 0.5 * length[v])
            qy = min(max(ly, -0.5 * width[v]), 0.5 * width[v])
            if math.hypot(lx - qx, ly - qy) <= radius:
                out_p.append(p)
                out_v.append(v)
    return np.array(out_p, dtype=np.int64), np.array(out_v, dtype=np.int64)


@njit(cache=True)
def occupancy(lane, target_lane, s, d, psi, length, width, lane_offset, lane_width, lane_left, lane_right, key_scale):
    """Lane occupancy entries sorted by (lane, station): every vehicle in its own lane, and
    again in the lane it is changing into and in those its body reaches into. Returns keys,
    lanes, rows."""
    n = lane.shape[0]
    ent_lane = np.empty(4 * n, dtype=np.int64)
    ent_veh = np.empty(4 * n, dtype=np.int64)
    m = 0
    for i in range(n):
        ln = lane[i]
        ent_lane[m] = ln
        ent_veh[m] = i
        m += 1
        if target_lane[i] != ln:
            ent_lane[m] = target_lane[i]
            ent_veh[m] = i
            m += 1
        side = d[i] - lane_offset[ln]
        half_extent = 0.5 * (length[i] * abs(math.sin(psi[i])) + width[i] * math.cos(psi[i]))
        reach = 0.5 * lane_width[ln] - half_extent
        for lean in (lane_left[ln] if side > reach else -1, lane_right[ln] if side < -reach else -1):
            if lean >= 0 and lean != target_lane[i]:  # (a body wider than its lane, turned, reaches into both)
                ent_lane[m] = lean
                ent_veh[m] = i
                m += 1
    keys = np.empty(m)
    for k in range(m):
        keys[k] = ent_lane[k] * key_scale + s[ent_veh[k]]
    order = np.argsort(keys, kind="mergesort")
    return keys[order], ent_lane[:m][order], ent_veh[:m][order]


@njit(cache=True)
def around(lane, target_lane, s, d, width, lane_edge, lane_offset, lane_width, at_lane, at_s):
    """Rows of the nearest vehicles ahead of (at or past) and behind station ``at_s`` [m] on
    ``at_lane``: those in it, changing into it, or whose body reaches into it from a lane
    beside it on the same edge, at their positions now (-1 where there is none). One pass
    over the vehicles, for a departure that looks before the occupancy is sorted again."""
    ahead, behind = -1, -1
    ahead_ds, behind_ds = INF, -INF
    edge, offset, at_width = lane_edge[at_lane], lane_offset[at_lane], lane_width[at_lane]
    for i in range(lane.shape[0]):
        if not (lane[i] == at_lane or target_lane[i] == at_lane
                or (lane_edge[lane[i]] == edge and abs(d[i] - offset) < 0.5 * (at_width + width[i]))):
            continue
        ds = s[i] - at_s
        if ds >= 0.0:
            if ds < ahead_ds:
                ahead, ahead_ds = i, ds
        elif ds > behind_ds:
            behind, behind_ds = i, ds
    return ahead, behind


@njit(cache=True)
def crossing_gaps(to_zone, past, v, zone_crossing, n_crossings):
    """Smallest time [s] until a vehicle reaches each crossing: 0 if one is in it, and
    stopped vehicles (under 0.1 m/s) never arrive."""
    gaps = np.full(n_crossings, INF)
    n, nz = to_zone.shape
    for i in range(n):
        for z in range(nz):
            dist = to_zone[i, z]
            if past[i, z] or not np.isfinite(dist):
                continue
            t = 0.0 if dist <= 0.0 else (dist / v[i] if v[i] > 0.1 else INF)
            c = zone_crossing[z]
            if t < gaps[c]:
                gaps[c] = t
    return gaps


@njit(cache=True)
def perception(lane, target_lane, s, d, psi, v, length, width, lane_offset, lane_width, lane_left, lane_right,
               route, lane_next, lane_next_station, turn_ptr, turn_lane, turn_station, lane_edge, lane_s_to,
               lane_dead_end, zone_lane, zone_s_in, zone_s_out, zone_crossing,
               n_crossings, hops, key_scale, min_hops, lookahead_m):
    """:func:`occupancy`, :func:`leaders`, :func:`zone_distances` and :func:`crossing_gaps` in one
    call. Returns the occupancy (keys, lanes, rows), leader rows and gaps [m], distances to the
    conflict zones [m] and whether each is passed, each crossing's time gap [s], the lane
    each vehicle enters next, and the lanes of each vehicle's look-ahead with its station on each."""
    keys, key_lane, key_veh = occupancy(lane, target_lane, s, d, psi, length, width, lane_offset, lane_width,
                                        lane_left, lane_right, key_scale)
    half = 0.5 * length
    lead, gap, hop_lane, hop_s, next_lane = leaders(keys, key_lane, key_veh, lane, target_lane, s, half, route,
                                                    lane_next, lane_next_station, turn_ptr, turn_lane, turn_station,
                                                    lane_edge, lane_s_to, lane_dead_end, hops, key_scale, min_hops,
                                                    lookahead_m)
    to_zone, past = zone_distances(hop_lane, hop_s, half, zone_lane, zone_s_in, zone_s_out)
    gaps = crossing_gaps(to_zone, past, v, zone_crossing, n_crossings)
    return keys, key_lane, key_veh, lead, gap, to_zone, past, gaps, next_lane, hop_lane, hop_s


@njit(cache=True)
def network_perception(lane, target_lane, s, d, psi, v, length, width, lane_offset, lane_width, lane_left, lane_right,
                       route, lane_next, lane_next_station, turn_ptr, turn_lane, turn_station, lane_edge, lane_s_to,
                       lane_dead_end, zone_lane, zone_s_in, zone_s_out, zone_crossing, n_crossings, hops, key_scale,
                       min_hops, lookahead_m, lane_s_from, peer_ptr, peer_lane, peer_merges, link_leader_hops,
                       b_comf, courtesy_for, courtesy_until, now, ids):
    """:func:`perception` on an imported network, with the leaders its junctions and lane
    changes add in one call (a call from Python costs more than this work on a few dozen
    vehicles): across links sharing a stretch of road (:func:`link_leaders`), of drivers
    changing lanes (:func:`changing_leaders`) and of drivers asked to make room
    (:func:`courtesy_leaders`). Returns what :func:`perception` returns."""
    seen = perception(lane, target_lane, s, d, psi, v, length, width, lane_offset, lane_width, lane_left, lane_right,
                      route, lane_next, lane_next_station, turn_ptr, turn_lane, turn_station, lane_edge, lane_s_to,
                      lane_dead_end, zone_lane, zone_s_in, zone_s_out, zone_crossing, n_crossings, hops, key_scale,
                      min_hops, lookahead_m)
    keys, key_lane, key_veh, lead, gap, hop_lane, hop_s = seen[0], seen[1], seen[2], seen[3], seen[4], seen[9], seen[10]
    half = 0.5 * length
    link_leaders(keys, key_lane, key_veh, hop_lane, hop_s, s, half, lead, gap, peer_ptr, peer_lane, peer_merges,
                 lane_s_from, lane_s_to, key_scale, link_leader_hops)
    changing_leaders(keys, key_lane, key_veh, lane, target_lane, s, half, v, b_comf, lead, gap, key_scale)
    courtesy_leaders(courtesy_for, courtesy_until, now, ids, lane, target_lane, s, half, v, b_comf, lane_left,
                     lane_right, lead, gap)
    return seen


@njit(cache=True)
def speed_limits(lane, s, v, length, lane_limit, curve_speed, next_lane, lane_s_to, zone_lane, zone_from, zone_to,
                 zone_limit, preview_s, approach_decel):
    """Speed [m/s] each driver may drive: limits, curves (slowing before the next lane's
    curve at ``approach_decel``) and speed zones up to ``preview_s`` seconds ahead."""
    n = lane.shape[0]
    out = np.empty(n)
    for i in range(n):
        ln = lane[i]
        lim = min(lane_limit[ln], curve_speed[ln])
        nxt = next_lane[i]
        if nxt >= 0:
            to_end = max(lane_s_to[ln] - s[i] - 0.5 * length[i], 0.0)
            lim = min(lim, math.sqrt(curve_speed[nxt] ** 2 + 2.0 * approach_decel * to_end))
        ahead = s[i] + preview_s * v[i] + 10.0
        for z in range(zone_lane.shape[0]):
            if zone_lane[z] == ln and zone_from[z] <= ahead and s[i] <= zone_to[z]:
                lim = min(lim, zone_limit[z])
        out[i] = lim
    return out


@njit(cache=True)
def stop_distances(lane, target_lane, s, v, length, runs_red, lane_group, lane_s_to, lane_dead_end, group_state,
                   to_zone, zone_crossing, occupied, margin, amber_decel, busy_decel, next_lane, junction_busy,
                   merge_room, dead_end_stops):
    """Distance [m] from each front bumper to where the vehicle must stop (inf if nowhere):
    a red or stoppable amber signal, a green one whose path through the junction is still
    used by a crossing vehicle, the end of a dead-end lane (if ``dead_end_stops``), an
    occupied crosswalk.
    ``amber_decel`` [m/s^2] is per driver; ``busy_decel`` [m/s^2] applies to busy junctions.
    (The junction links of general networks: :func:`junction_stops`.)"""
    n = lane.shape[0]
    out = np.full(n, INF)
    for i in range(n):
        ln = lane[i]
        front = s[i] + 0.5 * length[i]
        stop = INF
        g = lane_group[ln]
        if g >= 0 and group_state.shape[0] > 0:
            state = group_state[g]
            to_line = lane_s_to[ln] - margin - front
            stop_room = 2.0 * max(to_line, 0.0)
            stops_at_amber = state == AMBER and v[i] ** 2 <= amber_decel[i] * stop_room + 0.1
            nxt = next_lane[i]
            busy = nxt >= 0 and junction_busy[nxt] and v[i] ** 2 <= busy_decel * stop_room + 0.1
            if ((state == RED and not runs_red[i]) or stops_at_amber or busy) and to_line > -margin:
                stop = to_line
        if dead_end_stops and lane_dead_end[ln]:  # wait short of the end, keeping room to steer out once merging
            stop = min(stop, lane_s_to[ln] - front - (merge_room if target_lane[i] == ln else 0.0))
        for z in range(zone_crossing.shape[0]):
            if occupied[zone_crossing[z]] and to_zone[i, z] >= 0.0:
                stop = min(stop, to_zone[i, z] - margin)
        out[i] = stop
    return out


@njit(cache=True)
def link_leaders(keys, key_lane, key_veh, hop_lane, hop_s, s, half, lead, gap, peer_ptr, peer_lane, peer_merges,
                 lane_s_from, lane_s_to, key_scale, hops):
    """Leaders across junction links that share a stretch of road, in place of ``lead`` and
    ``gap`` [m] where nearer: a vehicle on a link leaving the same lane (a sibling, whose
    start it shares: the one nearest that start) or on a link entering the same lane (a merge:
    the one nearest the end, if nearer the end than this vehicle will be), within the first
    ``hops`` lanes of each vehicle's look-ahead."""
    n = hop_lane.shape[0]
    for i in range(n):
        for h in range(min(hops, hop_lane.shape[1])):
            j = hop_lane[i, h]
            if j < 0:
                break
            other, g = merging_leader(keys, key_lane, key_veh, peer_ptr, peer_lane, peer_merges, lane_s_to, s, half,
                                      j, hop_s[i, h], i, half[i], key_scale)
            if other >= 0 and g < gap[i]:
                lead[i] = other
                gap[i] = max(g, 0.0)
            for k in range(peer_ptr[j], peer_ptr[j + 1]):
                if peer_merges[k]:
                    continue
                f = peer_lane[k]  # a sibling: the one nearest the common start
                other = _ahead(keys, key_lane, key_veh, f, lane_s_from[f] - 1.0e4, key_scale)
                if other < 0 or other == i:
                    continue
                mine, theirs = hop_s[i, h] - lane_s_from[j], s[other] - lane_s_from[f]
                if theirs > mine:
                    g = theirs - mine - half[i] - half[other]
                    if g < gap[i]:
                        lead[i] = other
                        gap[i] = max(g, 0.0)


@njit(cache=True, inline="always")
def merging_leader(keys, key_lane, key_veh, peer_ptr, peer_lane, peer_merges, lane_s_to, s, half, ln, station, me,
                   me_half, key_scale):
    """Of the vehicles on the links that merge with link ``ln`` into the same lane, the one
    nearest the common end (on each such link), if nearer that end than station ``station``
    [m] of ``ln`` (ties: the lower row goes first), as a leader of row ``me`` (half length
    ``me_half`` [m], which may be on no lane of these): its row and the bumper gap [m]
    (negative where they overlap); -1 and inf if none."""
    best, best_gap = -1, INF
    for k in range(peer_ptr[ln], peer_ptr[ln + 1]):
        if not peer_merges[k]:
            continue
        f = peer_lane[k]
        other = _behind(keys, key_lane, key_veh, f, lane_s_to[f] + 1.0e4, key_scale)
        if other < 0 or other == me:
            continue
        mine, theirs = lane_s_to[ln] - station, lane_s_to[f] - s[other]
        if theirs < mine or (theirs == mine and other < me):
            g = mine - theirs - me_half - half[other]
            if g < best_gap:
                best, best_gap = other, g
    return best, best_gap


@njit(cache=True)
def _stops_sooner(gap_new, v_new, b_new, gap_now, v_now, b_now):
    """Whether a leader ``gap_new`` [m] ahead at ``v_new`` [m/s], braking at ``b_new`` [m/s^2],
    would come to a stop nearer than the one ``gap_now`` ahead at ``v_now`` braking at ``b_now``."""
    return gap_new + v_new * v_new / (2.0 * b_new) < gap_now + v_now * v_now / (2.0 * b_now)


@njit(cache=True)
def changing_leaders(keys, key_lane, key_veh, lane, target_lane, s, half, v, b_comf, lead, gap, key_scale):
    """A driver changing lanes follows, of its leader and the target lane's, the one whose
    stopping point (its gap [m] plus its braking distance at ``b_comf`` [m/s^2]) is nearer, in
    place of ``lead`` and ``gap`` (:func:`leaders` keeps the nearer one: a slow vehicle
    farther ahead in the target lane was missed until the driver was across)."""
    for i in range(lane.shape[0]):
        if target_lane[i] == lane[i]:
            continue
        j = _ahead(keys, key_lane, key_veh, target_lane[i], s[i], key_scale)
        if j < 0 or j == lead[i] or j == i:
            continue
        g = s[j] - s[i] - half[i] - half[j]
        if _stops_sooner(g, v[j], b_comf[j], gap[i], v[lead[i]] if lead[i] >= 0 else 0.0, b_comf[i]):
            lead[i] = j
            gap[i] = g


@njit(cache=True)
def courtesy_leaders(courtesy_for, courtesy_until, now, ids, lane, target_lane, s, half, v, b_comf, lane_left,
                     lane_right, lead, gap):
    """Cooperative lane changing, in place of ``lead`` and ``gap`` [m]: a driver asked to make
    room (``courtesy_for``: the asking driver's id + 1, until ``courtesy_until`` [s]) follows
    the asking driver beside it, while that one is still ahead in the next lane and not
    moving elsewhere, if it would stop sooner than its own leader (its gap plus its braking
    distance at ``b_comf`` [m/s^2]); the request ends when the asker is gone. ``ids`` ascend."""
    for k in range(lane.shape[0]):
        if courtesy_for[k] <= 0:
            continue
        i = np.searchsorted(ids, courtesy_for[k] - 1)
        keep = now < courtesy_until[k] and i < ids.shape[0] and ids[i] == courtesy_for[k] - 1
        if keep:
            beside = lane[i] == lane_left[lane[k]] or lane[i] == lane_right[lane[k]]
            keep = beside and (target_lane[i] == lane[i] or target_lane[i] == lane[k])
        g = s[i] - s[k] - half[i] - half[k] if keep else -1.0
        if not keep or g <= 0.0:
            courtesy_for[k] = 0
            continue
        if _stops_sooner(g, v[i], b_comf[i], gap[k], v[lead[k]] if lead[k] >= 0 else 0.0, b_comf[k]):
            lead[k] = i
            gap[k] = g


@njit(cache=True)
def lane_changes_needed(lane, route, turn_ptr, turn_lane, lane_key, lane_left, lane_right):
    """Per vehicle: how many lane changes it needs before its lane leads to its route's next
    lane (0: it does, or it has no route; -1: no lane of the edge does), and toward which side
    (1 left, -1 right, 0 none)."""
    n = lane.shape[0]
    out = np.zeros(n, dtype=np.int64)
    side_of = np.zeros(n, dtype=np.int64)
    for i in range(n):
        want = route[i, 0] - 1
        if want < 0:
            continue
        out[i] = -1
        for side in range(2):
            ln, k = lane[i], 0
            while ln >= 0:
                if turn_to(ln, want, turn_ptr, turn_lane, lane_key) >= 0:
                    if out[i] < 0 or k < out[i]:
                        out[i] = k
                        side_of[i] = 0 if k == 0 else (1 if side == 0 else -1)
                    break
                ln = lane_left[ln] if side == 0 else lane_right[ln]
                k += 1
    return out, side_of


COURTESY_FOLLOWERS = 4  # followers asked in turn to stop for a driver that must change lanes
COURTESY_DECEL = 4.0  # [m/s^2] the hardest a follower brakes to make room for it (MOBIL's b_safe)


@njit(cache=True)
def courtesy_stops(stop, lane, s, v, half, b_comf, needed, side, lane_left, lane_right, lane_s_to, keys, key_lane,
                   key_veh, key_scale, reach_m, slow_mps, room_m):
    """Cooperative lane changing, in place of ``stop`` [m]: the follower in the lane a slow
    driver near the end of its lane must change into (``needed`` > 0 toward ``side``) stops
    ``room_m`` [m] behind it, so that a gap opens beside it, if it can braking at
    ``COURTESY_DECEL`` (or its ``b_comf`` [m/s^2], if harder); else it drives on, and the one
    behind it stops."""
    for i in range(lane.shape[0]):
        if needed[i] <= 0 or v[i] > slow_mps or lane_s_to[lane[i]] - s[i] > reach_m:
            continue
        target = lane_left[lane[i]] if side[i] > 0 else lane_right[lane[i]]
        if target < 0:
            continue
        at = s[i]
        for _ in range(COURTESY_FOLLOWERS):
            k = _behind(keys, key_lane, key_veh, target, at, key_scale)
            if k < 0 or k == i:
                break
            gap = (s[i] - half[i]) - (s[k] + half[k]) - room_m
            if gap >= 0.0 and v[k] * v[k] <= 2.0 * max(b_comf[k], COURTESY_DECEL) * gap:  # the first that can stop
                stop[k] = min(stop[k], gap)
                break
            at = s[k] - 1e-6


@njit(cache=True)
def keep_on_links(lane, d, psi, is_link, lane_offset):
    """In place: a vehicle on a junction link follows the link's drawn path (its lateral
    position ``d`` [m] the link's offset, no heading ``psi`` [rad] of its own)."""
    for i in range(lane.shape[0]):
        if is_link[lane[i]]:
            d[i] = lane_offset[lane[i]]
            psi[i] = 0.0


@njit(cache=True)
def routes_need_care(route, low_column, check_low):
    """Whether any vehicle lost its route (``ROUTE_LOST`` first) or, with ``check_low``, has an
    empty route column at ``low_column`` (its route columns run low)."""
    for i in range(route.shape[0]):
        if route[i, 0] == ROUTE_LOST or (check_low and route[i, low_column] == 0):
            return True
    return False


@njit(cache=True)
def lane_ends(lane, target_lane, s, half, lane_s_to, lane_dead_end, merge_room):
    """Per vehicle: the distance [m] from its front to the end of a dead-end lane it is on,
    less ``merge_room`` [m] when it is not changing lanes (it waits there for a gap); inf
    elsewhere."""
    out = np.full(lane.shape[0], INF)
    for i in range(lane.shape[0]):
        ln = lane[i]
        if lane_dead_end[ln]:
            room = merge_room if target_lane[i] == ln else 0.0
            out[i] = lane_s_to[ln] - s[i] - half[i] - room
    return out


@njit(cache=True)
def route_waits(lane_end, needed, lane, target_lane, s, v, half, lane_s_to, waiting_since, now, merge_room, near_m,
                give_up_s):
    """Drivers whose lane does not lead on along their route, with one change to make and not
    yet begun, wait short of its end (``merge_room`` [m]) for a gap: ``lane_end`` [m] lowered
    there, in place. A driver slower than 0.5 m/s within ``near_m`` [m] of that point has
    waited since ``waiting_since`` [s] (NaN: not waiting; updated in place); after
    ``give_up_s`` [s] it drives on, misses its turn and is routed again. Returns who waits."""
    n = lane.shape[0]
    waits = np.zeros(n, dtype=np.bool_)
    for i in range(n):
        stuck = needed[i] == 1 and target_lane[i] == lane[i]
        if stuck and v[i] < 0.5 and lane_s_to[lane[i]] - s[i] - half[i] < merge_room + near_m:
            if math.isnan(waiting_since[i]):
                waiting_since[i] = now
            if now - waiting_since[i] > give_up_s:
                stuck = False
        else:
            waiting_since[i] = np.nan
        if stuck:
            waits[i] = True
            end = max(lane_s_to[lane[i]] - s[i] - half[i] - merge_room, 0.0)
            if end < lane_end[i]:
                lane_end[i] = end
    return waits


@njit(cache=True)
def count_standing(v, standing_s, dt, standing_mps, report_s):
    """Add ``dt`` [s] to how long each vehicle slower than ``standing_mps`` [m/s] has stood
    (``standing_s``, in place; 0 for the others). Returns the rows that reach ``report_s`` [s] now."""
    reached = []
    for i in range(v.shape[0]):
        standing_s[i] = standing_s[i] + dt if v[i] < standing_mps else 0.0
        if standing_s[i] >= report_s and standing_s[i] - dt < report_s:
            reached.append(i)
    return np.array(reached, dtype=np.int64)


@njit(cache=True)
def link_arrivals(hop_lane, hop_s, half, v, a_max, standing_s, lane_s_from, is_link):
    """Per lane, for the junction links (``is_link``): the soonest time [s] a vehicle's front
    reaches the link's start (0: a vehicle is on it; stopped vehicles, under 0.1 m/s, never
    arrive unless they wait at its line, within ``WAITING_AT_LINE_M``: they start off at their
    ``a_max`` [m/s^2] as soon as they may), whether a vehicle is on it now, and how long [s]
    the vehicle of that soonest arrival has stood waiting at the line (-1: it is moving, or on
    the link), from each vehicle's look-ahead lanes and ``standing_s`` [s]."""
    n_lanes = lane_s_from.shape[0]
    arrival = np.full(n_lanes, INF)
    occupied = np.zeros(n_lanes, dtype=np.bool_)
    waited = np.full(n_lanes, -1.0)
    n, hops = hop_lane.shape
    for i in range(n):
        for h in range(hops):
            ln = hop_lane[i, h]
            if ln < 0:
                break
            if not is_link[ln]:
                continue
            if h == 0:
                occupied[ln] = True
                arrival[ln] = 0.0
                waited[ln] = -1.0
                continue
            dist = lane_s_from[ln] - hop_s[i, h] - half[i]
            standing = False
            if dist <= 0.0:
                t = 0.0
            elif v[i] > 0.1:
                t = dist / v[i]
            elif dist < WAITING_AT_LINE_M:
                t = math.sqrt(2.0 * dist / max(a_max[i], 0.5))
                standing = True
            else:
                t = INF
            if t < arrival[ln]:
                arrival[ln] = t
                waited[ln] = standing_s[i] if standing else -1.0
    return arrival, occupied, waited


WAITING_AT_LINE_M = 5.0  # [m] a standing vehicle this near a junction link's start waits to enter it
CREEP_MPS = 2.0  # [m/s] a driver slower than this...
CREEP_M = 1.5  # [m] ...whose front crept less than this over a junction's line can still wait there


@njit(cache=True)
def lane_tails(keys, key_lane, key_veh, s, half, v, lane_s_from):
    """Per lane: the room [m] from its start to the rear of its rearmost vehicle (inf if
    none), and that vehicle's speed [m/s], from the sorted occupancy."""
    n_lanes = lane_s_from.shape[0]
    room = np.full(n_lanes, INF)
    speed = np.zeros(n_lanes)
    for k in range(keys.shape[0]):
        ln = key_lane[k]
        if room[ln] == INF:
            i = key_veh[k]
            room[ln] = s[i] - half[i] - lane_s_from[ln]
            speed[ln] = v[i]
    return room, speed


@njit(cache=True)
def junction_stops(hop_lane, hop_s, v, half, a_max, runs_red, amber_decel, is_link, lane_s_from, lane_s_to,
                   entry_group, group_state, must_yield, foe_ptr, foe_lane, response_ptr, response_lane, arrival,
                   occupied, margin, yield_decel, gap_margin_s, reach_m, lane_next, waited_s, impatience_s,
                   exit_room, exit_speed, min_gap, queue_mps, arrival_waited):
    """Distance [m] from each front bumper to the start of the first junction link ahead
    (within ``reach_m`` [m]) where it must wait (inf if none): a red signal, an amber it can
    stop for at its ``amber_decel`` [m/s^2], a link that crosses one a vehicle is on, or a link
    that must yield (``must_yield``: minor, permissive green) while a vehicle on a link it yields
    to (not held by a red) arrives before it would have crossed, plus ``gap_margin_s`` [s]
    (where the two links merge into one lane: before it would have reached the merge; the
    vehicle behind then follows). The margin shrinks to nothing as a driver's wait
    (``waited_s`` [s]) nears ``impatience_s`` [s], as SUMO's impatience does. A driver who
    cannot stop for a busy or yielding link at ``yield_decel`` [m/s^2] goes on. Nor does a
    driver enter a link whose exit lane has no room for it behind a vehicle slower than
    ``queue_mps`` [m/s] (``exit_room`` [m] from that lane's start to its rearmost vehicle,
    ``exit_speed``): it would stand across the junction (SUMO's junction blocking rule).
    Of two drivers at the lines of links that yield to each other (an all-way stop, right
    before left), one that moves, or has stood there longer, goes before one that stands
    (``arrival_waited`` [s]: how long the vehicle of each link's soonest arrival has stood at
    its line, -1: none or moving)."""
    n, hops = hop_lane.shape
    out = np.full(n, INF)
    for i in range(n):
        for h in range(1, hops):
            j = hop_lane[i, h]
            if j < 0:
                break
            if not is_link[j]:
                continue
            to_line = lane_s_from[j] - hop_s[i, h] - half[i] - margin
            if to_line > reach_m:
                break
            if to_line < -margin and (v[i] > CREEP_MPS or to_line < -margin - CREEP_M):
                continue  # past the line: committed (a slow driver that crept a little over it still waits)
            room = 2.0 * max(to_line, 0.0)
            g = entry_group[j]
            if g >= 0 and group_state.shape[0] > 0:
                state = group_state[g]
                if (state == RED and not runs_red[i]) or (state == AMBER and v[i] * v[i] <= amber_decel[i] * room + 0.1):
                    out[i] = to_line
                    break
            if v[i] * v[i] > 2.0 * yield_decel * (max(to_line, 0.0) + margin):  # cannot stop before the line
                continue
            out_lane = lane_next[j]
            blocked = out_lane >= 0 and exit_speed[out_lane] < queue_mps and \
                exit_room[out_lane] < 2.0 * half[i] + min_gap[i]
            for k in range(foe_ptr[j], foe_ptr[j + 1]):
                if occupied[foe_lane[k]]:
                    blocked = True
                    break
            if not blocked and must_yield[j] and response_ptr[j + 1] > response_ptr[j]:
                # time to drive to the line and clear the link with the own length, accelerating
                d = max(to_line, 0.0) + margin + lane_s_to[j] - lane_s_from[j]
                a = max(a_max[i], 0.5)
                t_merge = (-v[i] + math.sqrt(v[i] * v[i] + 2.0 * a * d)) / a
                d += 2.0 * half[i]
                t_clear = (-v[i] + math.sqrt(v[i] * v[i] + 2.0 * a * d)) / a
                for k in range(response_ptr[j], response_ptr[j + 1]):
                    f = response_lane[k]
                    gf = entry_group[f]
                    if gf >= 0 and group_state.shape[0] > 0 and group_state[gf] == RED:
                        continue
                    needed = t_merge if lane_next[f] == lane_next[j] else t_clear
                    if arrival_waited[f] >= 0.0 and must_yield[f] and \
                            (v[i] > 0.1 or waited_s[i] > arrival_waited[f] or (waited_s[i] == arrival_waited[f] and j < f)):
                        mutual = False
                        for m in range(response_ptr[f], response_ptr[f + 1]):
                            if response_lane[m] == j:
                                mutual = True
                                break
                        if mutual:
                            continue  # both yield to each other, the foe stands at its line: first come, first served
                    if arrival[f] < needed + gap_margin_s * max(0.0, 1.0 - waited_s[i] / impatience_s):
                        blocked = True
                        break
            if blocked:
                out[i] = to_line
                break
    return out


@njit(cache=True)
def network_stops(stop, lane, target_lane, s, v, half, a_max, b_comf, runs_red, amber_decel, standing_s, min_gap,
                  waiting_since, hop_lane, hop_s, keys, key_lane, key_veh, needed, side, now, route_waiting,
                  lane_s_from, lane_s_to, lane_dead_end, is_link, entry_group, lane_next, lane_left, lane_right,
                  foe_ptr, foe_lane, response_ptr, response_lane, group_state, must_yield, margin, merge_room,
                  yield_decel, gap_margin_s, reach_m, impatience_s, queue_mps, near_m, give_up_s, key_scale,
                  courtesy_reach_m, courtesy_slow_mps, courtesy_room_m):
    """The stopping points of an imported network's junctions and lane ends, in one call (a
    call from Python costs more than this work on a few dozen vehicles): ``stop`` [m] lowered
    in place by :func:`junction_stops` (with :func:`link_arrivals` and :func:`lane_tails`) and,
    with ``route_waiting``, by :func:`courtesy_stops` for the drivers :func:`route_waits`
    keeps waiting; returns ``lane_end`` [m] (:func:`lane_ends`, lowered by :func:`route_waits`)."""
    lane_end = lane_ends(lane, target_lane, s, half, lane_s_to, lane_dead_end, merge_room)
    arrival, occupied, arrival_waited = link_arrivals(hop_lane, hop_s, half, v, a_max, standing_s, lane_s_from,
                                                      is_link)
    exit_room, exit_speed = lane_tails(keys, key_lane, key_veh, s, half, v, lane_s_from)
    waits = junction_stops(hop_lane, hop_s, v, half, a_max, runs_red, amber_decel, is_link, lane_s_from, lane_s_to,
                           entry_group, group_state, must_yield, foe_ptr, foe_lane, response_ptr, response_lane,
                           arrival, occupied, margin, yield_decel, gap_margin_s, reach_m, lane_next, standing_s,
                           impatience_s, exit_room, exit_speed, min_gap, queue_mps, arrival_waited)
    for i in range(stop.shape[0]):
        stop[i] = min(stop[i], waits[i])
    if route_waiting:
        waiting = route_waits(lane_end, needed, lane, target_lane, s, v, half, lane_s_to, waiting_since, now,
                              merge_room, near_m, give_up_s)
        if waiting.any():
            courtesy_stops(stop, lane, s, v, half, b_comf, needed, side, lane_left, lane_right, lane_s_to, keys,
                           key_lane, key_veh, key_scale, courtesy_reach_m, courtesy_slow_mps, courtesy_room_m)
    return lane_end


@njit(cache=True)
def accelerations(v, a, speed_factor, speed_limit, v_max, headway, min_gap, a_max, b_comf, b_max, reaction_time,
                  leader, gap, stop, lane_end, driver, cmd_speed, cmd_accel, crashed, dt, meta_gain, a_now, krauss,
                  sigma, dawdle):
    """New acceleration [m/s^2] of every vehicle, and the IDM acceleration of its driver.

    Humans: IDM toward their desired speed (``speed_factor`` times the ``speed_limit`` they
    may drive, at most ``v_max``) behind the leader (bounded by the ACC model where IDM would
    brake harder than the leader's motion calls for) and before the stopping point, reached
    with a lag of their reaction time, from ``a``. RL drivers: speed tracking (meta actions) or
    the commanded value. ``a_now`` [m/s^2] is what every vehicle really does now: the leader's
    acceleration the ACC bound reckons with (whatever model ``a`` is of). ``lane_end`` [m]: the
    distance to where a driver must have left its lane (inf if nowhere), neared at a safe speed
    (:func:`behaviour.lane_end_approach`) rather than as IDM nears ``stop``. Humans with
    ``krauss`` set drive SUMO's Krauss model instead (:func:`behaviour.krauss`, ``headway`` its
    tau, dawdling ``sigma`` times ``dawdle``, a uniform draw per vehicle), without a lag: the
    IDM acceleration is still returned for them (lane-change incentives reckon in IDM).
    """
    n = v.shape[0]
    a_new = np.empty(n)
    a_idm = np.empty(n)
    for i in range(n):
        v0 = speed_factor[i] * speed_limit[i]
        if not (v0 <= v_max[i] or v0 != v0):  # np.minimum(v0, v_max): nan kept
            v0 = v_max[i]
        v_lead = v[leader[i]] if leader[i] >= 0 else 0.0
        follow = behaviour.idm(v[i], v0, headway[i], min_gap[i], a_max[i], b_comf[i], gap[i], v_lead)
        if leader[i] >= 0 and gap[i] < 1e9:  # a leader that cut in close: no harsher than the situation needs
            follow = behaviour.acc(follow, behaviour.cah(v[i], v_lead, a_now[leader[i]], gap[i], a_max[i]), b_comf[i],
                                   b_max[i])
        halt = behaviour.idm(v[i], v0, headway[i], min_gap[i], a_max[i], b_comf[i], stop[i] + min_gap[i], 0.0)
        if lane_end[i] < stop[i]:
            halt = min(halt, behaviour.lane_end_approach(v[i], lane_end[i], b_comf[i]))
        a_idm[i] = min(follow, halt)
        if driver[i] == META:
            cmd = meta_gain * (cmd_speed[i] - v[i])
        elif driver[i] == CONTINUOUS:
            cmd = cmd_accel[i]
        elif krauss[i]:
            gap_k, b_lead = (gap[i] - min_gap[i], b_comf[leader[i]]) if leader[i] >= 0 else (np.inf, b_comf[i])
            cmd = behaviour.krauss(v[i], v0, a_max[i], b_comf[i], headway[i], gap_k, v_lead, b_lead, stop[i],
                                   lane_end[i], sigma[i], dawdle[i], dt)
        else:
            cmd = a_idm[i]
        cmd = min(max(cmd, -b_max[i]), a_max[i])
        lag = min(1.0, dt / reaction_time[i]) if driver[i] == HUMAN and not krauss[i] else 1.0
        a_new[i] = 0.0 if crashed[i] else a[i] + lag * (cmd - a[i])
    return a_new, a_idm


@njit(cache=True)
def any_fault(brake_limit, forced_accel, a_model, a):
    """Whether a fault acts on the drivers' accelerations: a weak brake, a forced acceleration,
    or a driver whose acceleration departs from its behaviour model's (a fault just ended)."""
    for i in range(a.shape[0]):
        if np.isfinite(brake_limit[i]) or not np.isnan(forced_accel[i]) or a_model[i] != a[i]:
            return True
    return False


@njit(cache=True)
def any_sensor_fault(dropout, noise_sd):
    """Whether any forward sensor drops out or adds noise."""
    for i in range(dropout.shape[0]):
        if dropout[i] or noise_sd[i] != 0.0:
            return True
    return False


@njit(cache=True)
def integrate(dt, lane, target_lane, s, d, psi, v, a, steer, kappa, wheelbase, length, driver, cmd_steer, crashed,
              odometer, a_model, a_expected, lane_offset, lane_left, lane_right, lane_s_from, lane_s_to, route,
              lane_next, lane_next_station, turn_ptr, turn_lane, turn_station, lane_edge,
              lane_group, group_state, lane_dead_end, entry_group):
    """Advance every vehicle by ``dt`` [s] on a kinematic bicycle in lane (Frenet) coordinates,
    in place; update lane membership and hand over to the next lane at a lane's end. A vehicle
    that stands does not keep decelerating: neither do its behaviour model's accelerations
    (``a_model``, ``a_expected``, clamped at 0 in place).

    A vehicle whose lane does not lead to its route's next lane takes the lane's ``next`` and
    has its route marked ``ROUTE_LOST`` (the world routes it again).

    Returns the rows of the vehicles whose front bumper crossed a red stop line.
    """
    n = lane.shape[0]
    ran_red = np.zeros(n, dtype=np.bool_)
    for i in range(n):
        ln = lane[i]
        if driver[i] == CONTINUOUS:
            st = min(max(cmd_steer[i], -behaviour.MAX_STEER), behaviour.MAX_STEER)
        else:
            angle = behaviour.MAX_MERGE_ANGLE if lane_dead_end[ln] else behaviour.MAX_LANE_CHANGE_ANGLE
            yaw = behaviour.lane_keeping_yaw_rate(d[i], lane_offset[target_lane[i]], psi[i], v[i], kappa[i], angle)
            st = behaviour.steering_for_yaw_rate(yaw, v[i], wheelbase[i])
        steer[i] = st
        beta = math.atan(0.5 * math.tan(st))
        v_new = 0.0 if crashed[i] else max(v[i] + a[i] * dt, 0.0)
        vm = 0.5 * (v[i] + v_new)
        ds = vm * math.cos(psi[i] + beta) / max(1.0 - kappa[i] * d[i], 0.1) * dt
        d[i] += vm * math.sin(psi[i] + beta) * dt
        psi[i] += vm * math.cos(beta) * math.tan(st) / wheelbase[i] * dt - kappa[i] * ds
        g = lane_group[ln]
        if g >= 0 and group_state.shape[0] > 0 and group_state[g] == RED:
            front = s[i] + 0.5 * length[i]
            if front <= lane_s_to[ln] < front + ds:
                ran_red[i] = True
        s[i] += ds
        v[i] = v_new
        odometer[i] += abs(ds)
        if v_new <= 0.0:
            a[i] = max(a[i], 0.0)
            if a_model[i] < 0.0:
                a_model[i] = 0.0
            if a_expected[i] < 0.0:
                a_expected[i] = 0.0
        for nb in (lane_left[ln], lane_right[ln]):  # lateral lane membership within the edge
            if nb >= 0 and abs(d[i] - lane_offset[nb]) < abs(d[i] - lane_offset[ln]) \
                    and lane_s_from[nb] <= s[i] <= lane_s_to[nb]:
                ln = nb
        nxt, station = -1, 0.0
        if s[i] > lane_s_to[ln]:
            nxt, station = successor(route, i, 0, ln, lane_next, lane_next_station, turn_ptr, turn_lane, turn_station,
                                     lane_edge)
        if nxt >= 0:  # hand over to the next lane (of its route), and move the route on
            lost = route[i, 0] > 0 and lane_edge[nxt] != route[i, 0] - 1
            if entry_group[nxt] >= 0 and group_state.shape[0] > 0 and group_state[entry_group[nxt]] == RED:
                ran_red[i] = True
            s[i] = station + s[i] - lane_s_to[ln]
            d[i] = d[i] - lane_offset[ln] + lane_offset[nxt]
            if target_lane[i] == ln or driver[i] == HUMAN:
                target_lane[i] = nxt
            ln = nxt
            for h in range(route.shape[1] - 1):
                route[i, h] = route[i, h + 1]
            route[i, route.shape[1] - 1] = 0
            if lost:
                route[i, 0] = ROUTE_LOST
        lane[i] = ln
    return np.flatnonzero(ran_red)


@njit(cache=True)
def off_road(lane, s, d, length, width, crashed, lane_offset, lane_width, lane_dead_end, lane_s_to):
    """Rows of the vehicles not yet crashed whose body left their lane's paved band or ran off a dead end."""
    n = lane.shape[0]
    out = np.zeros(n, dtype=np.bool_)
    for i in range(n):
        ln = lane[i]
        beyond = abs(d[i] - lane_offset[ln]) > 0.5 * lane_width[ln] + 0.5 * width[i]
        past_end = lane_dead_end[ln] and s[i] - 0.5 * length[i] > lane_s_to[ln]
        out[i] = (beyond or past_end) and not crashed[i]
    return np.flatnonzero(out)


@njit(cache=True)
def departed(lane, s, driver, crashed, crash_time, now, clear_after, lane_s_to, lane_next, lane_dead_end, route):
    """Human-driven vehicles that left the network at an exit or at the end of their route or,
    crashed, are towed away: a flag per vehicle, and how many of them exited."""
    n = lane.shape[0]
    gone = np.zeros(n, dtype=np.bool_)
    exited = 0
    for i in range(n):
        if driver[i] != 0:
            continue
        ln = lane[i]
        out = s[i] > lane_s_to[ln] and (lane_next[ln] < 0 or route[i, 0] == ROUTE_END) and not lane_dead_end[ln]
        gone[i] = out or (crashed[i] and now - crash_time[i] > clear_after)
        exited += out
    return gone, exited

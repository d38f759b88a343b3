"""Map-matching: each observed position placed on the twin's network as a lane, a station
along it and a lateral offset from its centre.

Every lane's centre line is sampled (at the stations of its edge's reference curve) into one
k-d tree. A record's vehicle middle is projected onto the segments of its nearest samples;
of those, the lane whose centre it lies nearest, driving the way the record heads (within
``MAX_HEADING_ERROR_RAD``), wins, with the record's own lane id preferred when it names a lane
of the network (a log from the same SUMO network). A record farther than half its lane's width
plus ``OFF_LANE_TOLERANCE_M`` from every lane centre is off the network: it stays in the log,
unmatched, and is counted in the report by vehicle, never dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from envs.actors import VEHICLE_TYPES
from envs.network import Network
from shadow.log import DEFAULT_LENGTH_M, TrajectoryLog

SEARCH_RADIUS_M = 12.0  # [m] lane samples this near a record are candidates
CANDIDATES = 24  # nearest samples tried per record
SAMPLE_SPACING_M = 2.0  # [m] lane centre lines are sampled at least this densely
OFF_LANE_TOLERANCE_M = 1.0  # [m] beyond half a lane's width a record still counts as on it
MAX_HEADING_ERROR_RAD = np.radians(60.0)  # a lane heading farther from the record's is not its lane
HEADING_WEIGHT_M = 4.0  # [m per rad] how a heading error weighs against a lateral one
NAMED_LANE_BONUS_M = 2.0  # [m] a candidate on the lane the record names is preferred by this much


@dataclass
class MatchedLog:
    """Per row of ``log``: the twin lane (-1: off the network), the station [m] of the
    vehicle's middle on it, the lateral offset [m] from the lane's centre (left positive), and
    the heading error [rad] (NaN where the record has no heading)."""

    log: TrajectoryLog
    lane: np.ndarray
    s: np.ndarray
    d: np.ndarray
    heading_error: np.ndarray

    @property
    def matched(self) -> np.ndarray:
        return self.lane >= 0

    def report(self, examples: int = 5) -> dict[str, Any]:
        """Records matched and off the network, the vehicles with records off it (with the
        first such record's time and place in the file), and the lateral offsets."""
        log, off = self.log, np.flatnonzero(self.lane < 0)
        by_vehicle: dict[str, dict[str, Any]] = {}
        for r in off:
            entry = by_vehicle.setdefault(log.ids[log.vehicle[r]], {"records": 0, "first_time_s": float(log.time_s[r]),
                                                                   f"first_{log.record_name}": int(log.record[r])})
            entry["records"] += 1
        d = np.abs(self.d[self.matched])
        return {
            "records": len(log), "vehicles": len(log.ids), "matched": int(self.matched.sum()),
            "off_network": len(off), "off_network_share": round(len(off) / max(len(log), 1), 4),
            "vehicles_off_network": len(by_vehicle),
            "off_network_examples": dict(sorted(by_vehicle.items(), key=lambda kv: -kv[1]["records"])[:examples]),
            "lateral_offset_m": {"p50": round(float(np.percentile(d, 50)), 3) if len(d) else None,
                                 "p95": round(float(np.percentile(d, 95)), 3) if len(d) else None},
        }


class LaneIndex:
    """The network's lane centre lines as samples in a k-d tree, with their segments."""

    def __init__(self, network: Network) -> None:
        xs, ys, ss, lanes = [], [], [], []
        for k, ln in enumerate(network.lanes):
            path = network.edges[ln.edge]
            s_to = ln.s_to if ln.s_to is not None else path.length
            inner = path.s[(path.s > ln.s_from) & (path.s < s_to)]
            even = np.linspace(ln.s_from, s_to, max(2, int(np.ceil((s_to - ln.s_from) / SAMPLE_SPACING_M)) + 1))
            stations = np.unique(np.concatenate([even, inner]))
            h = np.interp(stations, path.s, path.heading)
            xs.append(np.interp(stations, path.s, path.x) - ln.offset * np.sin(h))
            ys.append(np.interp(stations, path.s, path.y) + ln.offset * np.cos(h))
            ss.append(stations)
            lanes.append(np.full(len(stations), k))
        self.x, self.y, self.s = np.concatenate(xs), np.concatenate(ys), np.concatenate(ss)
        self.lane = np.concatenate(lanes)
        n = len(self.lane)
        nxt = np.arange(1, n + 1)
        last = np.append(self.lane[1:] != self.lane[:-1], True)  # the last sample of its lane
        self.seg_a = np.where(last, np.arange(n) - 1, np.arange(n))  # each sample's segment, s increasing
        self.seg_b = np.where(last, np.arange(n), nxt)
        self.seg_a = np.maximum(self.seg_a, 0)
        self.tree = cKDTree(np.stack([self.x, self.y], 1))
        self.half_width = np.array([0.5 * ln.width for ln in network.lanes])
        self.names = {ln.name: k for k, ln in enumerate(network.lanes) if ln.name}


def match_log(log: TrajectoryLog, network: Network, index: LaneIndex | None = None,
              type_lengths: dict[str, float] | None = None) -> MatchedLog:
    """Place every record of ``log`` on ``network`` (see the module docstring).
    ``type_lengths`` [m] by vehicle type name turns front positions into middles where the log
    has no lengths (the twin's own types are known; others are ``DEFAULT_LENGTH_M`` long)."""
    index = index or LaneIndex(network)
    observed_heading = headings(log)
    x, y = middles(log, observed_heading, record_lengths(log, type_lengths))
    n = len(log)
    lane, s, d, herr = np.full(n, -1), np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    if not n:
        return MatchedLog(log, lane, s, d, herr)
    dist, cand = index.tree.query(np.stack([x, y], 1), k=CANDIDATES, distance_upper_bound=SEARCH_RADIUS_M)
    valid = np.isfinite(dist)
    cand = np.where(valid, cand, 0)
    a, b = index.seg_a[cand], index.seg_b[cand]
    ax, ay, bx, by = index.x[a], index.y[a], index.x[b], index.y[b]
    ux, uy = bx - ax, by - ay
    seg = np.maximum(ux * ux + uy * uy, 1e-12)
    px, py = x[:, None] - ax, y[:, None] - ay
    t = np.clip((px * ux + py * uy) / seg, 0.0, 1.0)
    norm = np.sqrt(seg)
    lateral = (ux * py - uy * px) / norm  # left of the lane's direction positive
    along = np.hypot(px - t * ux, py - t * uy)  # distance to the segment
    station = index.s[a] + t * (index.s[b] - index.s[a])
    cand_lane = index.lane[a]
    lane_heading = np.arctan2(uy, ux)
    heading = observed_heading[:, None]
    dh = np.abs(np.angle(np.exp(1j * (heading - lane_heading))))
    has_heading = np.isfinite(heading)
    cost = along + HEADING_WEIGHT_M * np.where(has_heading, dh, 0.0)
    named = np.array([index.names.get(name, -1) for name in log.lane])[:, None]
    cost = cost - NAMED_LANE_BONUS_M * (cand_lane == named)
    ok = valid & (along <= index.half_width[cand_lane] + OFF_LANE_TOLERANCE_M)
    ok &= ~has_heading | (dh <= MAX_HEADING_ERROR_RAD)
    cost = np.where(ok, cost, np.inf)
    best = np.argmin(cost, axis=1)
    rows = np.arange(n)
    found = np.isfinite(cost[rows, best])
    pick = best[found]
    lane[found] = cand_lane[rows[found], pick]
    s[found] = station[rows[found], pick]
    d[found] = lateral[rows[found], pick]
    herr[found] = np.where(has_heading[found, 0], dh[rows[found], pick], np.nan)
    _refine(network, lane, s, d, x, y)
    return MatchedLog(log, lane, s, d, herr)


REFINE_ITERATIONS = 4


def _refine(network: Network, lane: np.ndarray, s: np.ndarray, d: np.ndarray, x: np.ndarray, y: np.ndarray) -> None:
    """In place: each matched record's station and offset moved onto its lane's own curve
    (the foot of the perpendicular from the point to the edge's reference curve shifted by
    the lane's offset, by a few Newton steps from the sampled projection), so that the twin
    places a vehicle at (lane, s, d) exactly where it was observed, also on tight turns."""
    for k in np.unique(lane[lane >= 0]):
        rows = np.flatnonzero(lane == k)
        ln = network.lanes[int(k)]
        path = network.edges[ln.edge]
        s_to = ln.s_to if ln.s_to is not None else path.length
        st = s[rows].copy()
        for _ in range(REFINE_ITERATIONS):
            h = np.interp(st, path.s, path.heading)
            cx = np.interp(st, path.s, path.x) - ln.offset * np.sin(h)
            cy = np.interp(st, path.s, path.y) + ln.offset * np.cos(h)
            dx, dy = x[rows] - cx, y[rows] - cy
            st = np.clip(st + dx * np.cos(h) + dy * np.sin(h), ln.s_from, s_to)
        h = np.interp(st, path.s, path.heading)
        cx = np.interp(st, path.s, path.x) - ln.offset * np.sin(h)
        cy = np.interp(st, path.s, path.y) + ln.offset * np.cos(h)
        s[rows] = st
        d[rows] = -(x[rows] - cx) * np.sin(h) + (y[rows] - cy) * np.cos(h)


def record_lengths(log: TrajectoryLog, type_lengths: dict[str, float] | None = None) -> np.ndarray:
    """Each record's vehicle length [m]: the log's, else its type's (the twin's types, and
    ``type_lengths`` by the log's type names), else ``DEFAULT_LENGTH_M``."""
    lengths = {t.name: t.length for t in VEHICLE_TYPES} | (type_lengths or {})
    known = np.array([lengths.get(t, np.nan) for t in log.vtype], dtype=float) if len(log) else np.zeros(0)
    return np.where(np.isfinite(log.length), log.length, np.where(np.isfinite(known), known, DEFAULT_LENGTH_M))


def middles(log: TrajectoryLog, heading: np.ndarray, length: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each record's vehicle middle [m]: a front position moved back by half its ``length``
    [m] along its ``heading`` [rad] (not moved where the heading is unknown)."""
    if log.reference == "centre":
        return log.x, log.y
    back = np.where(np.isfinite(heading), 0.5 * length, 0.0)
    h = np.nan_to_num(heading)
    return log.x - back * np.cos(h), log.y - back * np.sin(h)


MOVING_M = 0.1  # [m] between neighbouring records: a vehicle moving this much shows its heading


def headings(log: TrajectoryLog) -> np.ndarray:
    """The log's headings [rad]; where a record has none, the direction of its vehicle's
    motion there (NaN where it does not move)."""
    heading = log.heading.copy()
    missing = np.flatnonzero(~np.isfinite(heading))
    for v in np.unique(log.vehicle[missing]):
        rows = np.flatnonzero(log.vehicle == v)
        if len(rows) < 2:
            continue
        gx, gy = np.gradient(log.x[rows]), np.gradient(log.y[rows])
        guess = np.where(np.hypot(gx, gy) >= MOVING_M, np.arctan2(gy, gx), np.nan)
        mask = ~np.isfinite(heading[rows])
        heading[rows[mask]] = guess[mask]
    return heading

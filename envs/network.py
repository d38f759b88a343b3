"""Road network of the twin: edges, lanes, crossings, speed zones and signal plans.

An *edge* is a reference curve; its *lanes* are parallel to it at a lateral offset ``d``
[m] (positive to the left of the direction of travel) and share its station ``s`` [m].
Lanes join end-to-start through ``next`` (a turning movement in a junction is a short
single-lane edge); a lane may lead to other lanes too (``successors``), taken by the
vehicles whose route goes there (``World.set_route``). The network also flattens
everything into numpy tables so that the world can look up geometry for all actors at once.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field

import numpy as np

from envs.geometry import Path

GREEN, AMBER, RED = 0, 1, 2  # vehicle signal states
WALK, FLASH, DONT_WALK = 0, 1, 2  # pedestrian signal states


@dataclass
class Lane:
    """One lane of an edge, usable between stations ``s_from`` and ``s_to`` [m]."""

    edge: int
    offset: float  # [m] lateral offset of the lane centre from the edge's reference curve
    width: float  # [m]
    speed_limit: float  # [m/s]
    s_from: float = 0.0  # [m]
    s_to: float | None = None  # [m]; None means the end of the edge
    next: int = -1  # lane entered at s_to, or -1 for an exit of the network
    next_station: float = 0.0  # [m] station on ``next`` where this lane joins it
    # other lanes entered at s_to by a vehicle whose route leads there, with the station [m]
    # where each joins (``next`` is where a vehicle without a route goes)
    successors: list[tuple[int, float]] = field(default_factory=list)
    dead_end: bool = False  # the lane stops at s_to (an acceleration lane)
    lane_change: bool = True  # lane changes to and from this lane are allowed
    signal_group: int = -1  # signal group controlling the stop line at s_to
    name: str = ""
    # a junction link (a movement across a junction from one lane to another): the signal group
    # controlling entry into it at its start (-1: none), and whether it always yields to the
    # links of ``Network.link_response`` (a minor link of an unsignalised junction)
    link: bool = False
    entry_group: int = -1
    minor: bool = False
    # what a route names to lead a vehicle onto this lane (default: its edge)
    route_key: int = -1
    # the junctions (indices of the source's) at the lane's start and end; a link's both are its
    # junction. Vehicles on lanes with no junction or edge in common are on different levels
    junctions: tuple[int, int] = (-1, -1)
    max_curvature: float | None = None  # [1/m] for curve speeds; None: from the edge's sampled curvature
    left: int = -1
    right: int = -1


@dataclass
class Crossing:
    """A place where pedestrians cross vehicle lanes (a marked crosswalk or a jaywalk line)."""

    polygon: np.ndarray  # (4, 2) corners [m]
    signal: int = -1  # index of the pedestrian signal, or -1 when unsignalised
    name: str = ""
    zones: list[tuple[int, float, float]] = field(default_factory=list)  # (lane, s_in, s_out)


@dataclass
class SpeedZone:
    """A reduced speed limit on a lane between two stations (a school zone)."""

    lane: int
    s_from: float
    s_to: float
    limit: float  # [m/s]


@dataclass
class Inlet:
    """Where traffic enters: ``rate`` [veh/s] shared by ``lanes`` with ``weights``."""

    lanes: list[int]
    weights: list[float]
    rate: float
    name: str = ""

    @property
    def cumulative_weights(self) -> np.ndarray:
        return np.cumsum(self.weights)


@dataclass
class SidewalkRoute:
    """A pedestrian trip: walk along side A (a0 -> a1), cross ``crossing`` to b0, walk to b1.

    With ``jaywalk_ok`` a pedestrian may leave side A anywhere and cross straight over.
    """

    a0: tuple[float, float]
    a1: tuple[float, float]
    b0: tuple[float, float]
    b1: tuple[float, float]
    crossing: int
    jaywalk_ok: bool = False


@dataclass
class SignalInterval:
    """One interval of a signal cycle: states per vehicle group and per pedestrian signal."""

    duration: float  # [s]
    groups: list[int]
    crossings: list[int]
    name: str = ""


@dataclass
class Network:
    """All static geometry and control of one scenario, with flat lookup tables."""

    edges: list[Path]
    lanes: list[Lane]
    crossings: list[Crossing] = field(default_factory=list)
    speed_zones: list[SpeedZone] = field(default_factory=list)
    inlets: list[Inlet] = field(default_factory=list)
    sidewalk_routes: list[SidewalkRoute] = field(default_factory=list)
    signal_cycle: list[SignalInterval] = field(default_factory=list)
    signal_groups: int = 0
    pedestrian_signals: int = 0
    sidewalks: list[np.ndarray] = field(default_factory=list)  # polylines for rendering
    sidewalk_width: float = 2.5  # [m]
    bounds: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)  # xmin, ymin, xmax, ymax
    # junction links of a general network (``envs.roads.build``): per link lane, the link lanes
    # that cross or merge with it (``link_foes``) and those it yields to (``link_response``)
    link_foes: dict[int, list[int]] = field(default_factory=dict)
    link_response: dict[int, list[int]] = field(default_factory=dict)
    signal_programs: list = field(default_factory=list)  # envs.world.signals.Program, one per traffic light
    trips: list = field(default_factory=list)  # envs.world.demand.Trip: scheduled departures with routes
    route_key_count: int = 0  # route keys in use (default: one per edge)
    edge_names: list[str] = field(default_factory=list)  # the source's id of each edge (imported networks)
    junction_shapes: list[np.ndarray] = field(default_factory=list)  # (n, 2) outlines [m] of imported junctions
    junction_names: list[str] = field(default_factory=list)  # their ids in the imported network, in the same order
    detectors: list = field(default_factory=list)  # envs.world.detectors.DetectorSpec (imported networks)

    def __post_init__(self) -> None:
        self._link_neighbours()
        self._build_tables()
        for crossing in self.crossings:
            crossing.zones = self.conflict_zones(crossing.polygon)
        self.rebuild_zones()
        self.lane_conflicts = self._foe_matrix() if self.link_foes else self._junction_conflicts()
        self.foe_ptr, self.foe_lane = _compressed(self.link_foes, len(self.lanes))
        self._link_peers()
        self.response_ptr, self.response_lane = _compressed(self.link_response, len(self.lanes))
        pts = np.concatenate([np.stack([p.x, p.y], 1) for p in self.edges])
        pad = 15.0
        self.bounds = (pts[:, 0].min() - pad, pts[:, 1].min() - pad, pts[:, 0].max() + pad, pts[:, 1].max() + pad)

    # ---- construction -------------------------------------------------------------
    def _link_neighbours(self) -> None:
        for lane in self.lanes:
            if lane.s_to is None:
                lane.s_to = self.edges[lane.edge].length
        by_edge: dict[int, list[int]] = {}
        for i, lane in enumerate(self.lanes):
            by_edge.setdefault(lane.edge, []).append(i)
        for ids in by_edge.values():
            ids = sorted(ids, key=lambda i: self.lanes[i].offset)  # right to left
            for right, left in zip(ids[:-1], ids[1:]):
                if abs(self.lanes[left].offset - self.lanes[right].offset) < 0.5 * (
                    self.lanes[left].width + self.lanes[right].width
                ) + 0.01:
                    self.lanes[right].left = left
                    self.lanes[left].right = right

    def _build_tables(self) -> None:
        lanes = self.lanes
        self.lane_edge = np.array([ln.edge for ln in lanes], dtype=np.int64)
        self.lane_offset = np.array([ln.offset for ln in lanes])
        self.lane_width = np.array([ln.width for ln in lanes])
        self.lane_speed_limit = np.array([ln.speed_limit for ln in lanes])
        self.lane_s_from = np.array([ln.s_from for ln in lanes])
        self.lane_s_to = np.array([ln.s_to for ln in lanes])
        self.lane_next = np.array([ln.next for ln in lanes], dtype=np.int64)
        self.lane_next_station = np.array([ln.next_station for ln in lanes])
        # every lane a lane leads to (``next`` first, then ``successors``), as compressed rows
        turns = [([(ln.next, ln.next_station)] if ln.next >= 0 else []) + list(ln.successors) for ln in lanes]
        self.lane_turn_ptr = np.cumsum([0] + [len(t) for t in turns]).astype(np.int64)
        self.lane_turn = np.array([lane for t in turns for lane, _ in t], dtype=np.int64)
        self.lane_turn_station = np.array([station for t in turns for _, station in t], dtype=float)
        self.lane_dead_end = np.array([ln.dead_end for ln in lanes])
        self.lane_change_ok = np.array([ln.lane_change for ln in lanes])
        self.lane_signal_group = np.array([ln.signal_group for ln in lanes], dtype=np.int64)
        self.lane_left = np.array([ln.left for ln in lanes], dtype=np.int64)
        self.lane_right = np.array([ln.right for ln in lanes], dtype=np.int64)
        self.lane_entry_group = np.array([ln.entry_group for ln in lanes], dtype=np.int64)
        self.lane_minor = np.array([ln.minor for ln in lanes], dtype=bool)
        self.lane_is_link = np.array([ln.link for ln in lanes], dtype=bool)
        self.lane_route_key = np.array([ln.edge if ln.route_key < 0 else ln.route_key for ln in lanes], dtype=np.int64)
        self.route_key_count = max(self.route_key_count, len(self.edges), int(self.lane_route_key.max(initial=-1)) + 1)
        self.lane_max_curvature = np.array([
            (np.abs(self.edges[ln.edge].curvature[(self.edges[ln.edge].s >= ln.s_from) & (self.edges[ln.edge].s <= ln.s_to)]).max(initial=0.0)
             / max(1.0 - abs(ln.offset) * np.abs(self.edges[ln.edge].curvature).max(), 0.1))
            if ln.max_curvature is None else ln.max_curvature
            for ln in lanes
        ])
        # edge reference curves laid end to end on one "chain" axis, 1 km apart
        offsets, pieces, pos = [], [], 0.0
        for path in self.edges:
            offsets.append(pos)
            table = np.stack([path.x, path.y, np.cos(path.heading), np.sin(path.heading), path.curvature], 1)
            pieces.append((path.s + pos, table))
            pos += path.length + 1000.0
        self.edge_chain_offset = np.array(offsets)
        self.edge_length = np.array([p.length for p in self.edges])
        self.chain_s = np.concatenate([p[0] for p in pieces])
        self.chain_table = np.concatenate([p[1] for p in pieces])

    @property
    def turns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """What the kernels need to follow a vehicle's route from lane to lane: each lane's
        default ``next`` and its station, the compressed rows of all the lanes it leads to and
        their stations, and each lane's route key (its edge, or what a route names it by)."""
        return (self.lane_next, self.lane_next_station, self.lane_turn_ptr, self.lane_turn, self.lane_turn_station,
                self.lane_route_key)

    def rebuild_zones(self) -> None:
        zones = [(lane, s_in, s_out, c) for c, cr in enumerate(self.crossings) for lane, s_in, s_out in cr.zones]
        arr = np.array(zones, dtype=float).reshape(-1, 4)
        self.zone_lane = arr[:, 0].astype(np.int64)
        self.zone_s_in = arr[:, 1]
        self.zone_s_out = arr[:, 2]
        self.zone_crossing = arr[:, 3].astype(np.int64)
        sz = self.speed_zones
        self.speed_zone_lane = np.array([z.lane for z in sz], dtype=np.int64)
        self.speed_zone_from = np.array([z.s_from for z in sz])
        self.speed_zone_to = np.array([z.s_to for z in sz])
        self.speed_zone_limit = np.array([z.limit for z in sz])

    def _junction_conflicts(self, clearance: float = 3.0) -> np.ndarray:
        """(lanes, lanes) bool: junction lanes (entered from a signalised stop line) whose
        centre lines come within ``clearance`` [m] of each other."""
        n = len(self.lanes)
        conflicts = np.zeros((n, n), dtype=bool)
        junction = sorted({ln.next for ln in self.lanes if ln.signal_group >= 0 and ln.next >= 0})
        lines = {j: resample(self.lane_polyline(j), 0.5) for j in junction}
        for a in junction:
            for b in junction:
                if a < b:
                    d = np.linalg.norm(lines[a][:, None, :] - lines[b][None, :, :], axis=2)
                    conflicts[a, b] = conflicts[b, a] = bool(d.min() < clearance)
        return conflicts

    def _link_peers(self) -> None:
        """Per junction link: the links that leave the same lane (siblings, sharing their start)
        and those that enter the same lane (merging at their end), as compressed rows
        (``link_peer_ptr``, ``link_peer``) with ``link_peer_merges`` telling which is which."""
        links = np.flatnonzero(self.lane_is_link)
        from_lane = {}
        for lane in range(len(self.lanes)):
            for k in range(self.lane_turn_ptr[lane], self.lane_turn_ptr[lane + 1]):
                if self.lane_is_link[self.lane_turn[k]]:
                    from_lane[int(self.lane_turn[k])] = lane
        by_from: dict[int, list[int]] = {}
        by_to: dict[int, list[int]] = {}
        for link in links.tolist():
            by_from.setdefault(from_lane.get(link, -1), []).append(link)
            by_to.setdefault(int(self.lane_next[link]), []).append(link)
        peers: dict[int, list[tuple[int, bool]]] = {}
        for link in links.tolist():
            siblings = [(o, False) for o in by_from.get(from_lane.get(link, -1), []) if o != link and link in from_lane]
            merges = [(o, True) for o in by_to.get(int(self.lane_next[link]), []) if o != link]
            if siblings or merges:
                peers[link] = siblings + merges
        self.lane_link_from = np.full(len(self.lanes), -1, dtype=np.int64)  # per link: the lane it leaves
        for link, lane in from_lane.items():
            self.lane_link_from[link] = lane
        self.link_in_ptr, self.link_in = _compressed(by_to, len(self.lanes))  # the links entering each lane
        self.link_peer_ptr, self.link_peer = _compressed({k: [o for o, _ in v] for k, v in peers.items()}, len(self.lanes))
        _, merges_flat = _compressed({k: [int(m) for _, m in v] for k, v in peers.items()}, len(self.lanes))
        self.link_peer_merges = merges_flat.astype(bool)

    def _foe_matrix(self) -> np.ndarray:
        """(lanes, lanes) bool from ``link_foes`` (what the supervisor's junction checks read)."""
        n = len(self.lanes)
        conflicts = np.zeros((n, n), dtype=bool)
        for a, foes in self.link_foes.items():
            conflicts[a, foes] = True
            conflicts[foes, a] = True
        return conflicts

    def may_touch(self, a: int, b: int) -> bool:
        """Whether vehicles on lanes ``a`` and ``b`` can touch. On the hand-built layouts, always.
        On an imported network, as SUMO sees a junction: on one lane or edge; on a junction link
        and the lane it leaves or enters; on two links that cross (foes), leave the same lane or
        enter the same lane; on two lanes that meet at a junction where a link joins them or
        links of theirs touch so. Other lanes pass over each other (an interchange's bridges)
        or only seem to touch where a drawn shape jumps sideways (a lane that splits in two, a
        lane that starts between two ending ones)."""
        la, lb = self.lanes[a], self.lanes[b]
        if a == b or la.junctions == (-1, -1) or lb.junctions == (-1, -1):
            return True
        if la.link or lb.link:
            if la.link and lb.link:
                peers = self.link_peer[self.link_peer_ptr[a]:self.link_peer_ptr[a + 1]]
                return b in self.link_foes.get(a, ()) or b in peers.tolist()
            link, other = (a, b) if la.link else (b, a)
            return other in (self.lane_link_from[link], self.lane_next[link])
        if la.edge == lb.edge:
            return True
        if not set(la.junctions) & set(lb.junctions) - {-1}:
            return False
        # two lanes that meet at a junction: where a link joins them, or links of theirs cross or
        # share a start or an end (a lane that starts between two ending ones touches neither)
        links_a, links_b = self._links_of(a), self._links_of(b)
        if not links_a or not links_b or links_a & links_b:
            return True
        return any(y in self.link_foes.get(x, ()) or y in self.link_peer[self.link_peer_ptr[x]:self.link_peer_ptr[x + 1]]
                   for x in links_a for y in links_b)

    def _links_of(self, lane: int) -> set[int]:
        """The junction links leaving and entering ``lane``."""
        out = {int(k) for k in self.lane_turn[self.lane_turn_ptr[lane]:self.lane_turn_ptr[lane + 1]]
               if self.lane_is_link[k]}
        return out | {int(k) for k in self.link_in[self.link_in_ptr[lane]:self.link_in_ptr[lane + 1]]}

    def signal_heads(self, into_m: float = 1.5) -> list[tuple[int, float, float]]:
        """Where each signalised junction link's head is drawn: (signal group, x, y) [m], a little
        way into the link, so that the heads of the links leaving one lane stand apart."""
        heads = []
        for k in np.flatnonzero(self.lane_is_link & (self.lane_entry_group >= 0)):
            s = self.lane_s_from[k] + min(into_m, 0.5 * (self.lane_s_to[k] - self.lane_s_from[k]))
            x, y, _ = self.lane_point(int(k), s)
            heads.append((int(self.lane_entry_group[k]), float(x), float(y)))
        return heads

    def route_keys(self, edges: list[int]) -> list[int]:
        """The route keys a vehicle on a lane of ``edges[0]`` follows to drive ``edges`` (for
        ``World.set_route``): on a network with junction links, the movement between each two
        edges, then the edge; else the edges after the first."""
        keys: list[int] = []
        for a, b in zip(edges, edges[1:]):
            move = -1
            for lane in np.flatnonzero(self.lane_edge == a):
                for k in range(self.lane_turn_ptr[lane], self.lane_turn_ptr[lane + 1]):
                    link = int(self.lane_turn[k])
                    if self.lane_is_link[link] and self.lane_next[link] >= 0 and self.lane_edge[self.lane_next[link]] == b:
                        move = int(self.lane_route_key[link])
            if move < 0 and not any(self.lane_edge[self.lane_turn[k]] == b for lane in np.flatnonzero(self.lane_edge == a)
                                    for k in range(self.lane_turn_ptr[lane], self.lane_turn_ptr[lane + 1])):
                raise ValueError(f"edge {a} does not lead to edge {b}")
            keys += [move, b] if move >= 0 else [b]
        return keys

    def add_crossing(self, crossing: Crossing) -> int:
        """Register a crossing (e.g. a jaywalk line) and its conflict zones; returns its index."""
        crossing.zones = self.conflict_zones(crossing.polygon)
        self.crossings.append(crossing)
        self.rebuild_zones()
        return len(self.crossings) - 1

    def conflict_zones(self, polygon: np.ndarray, margin: float = 0.5) -> list[tuple[int, float, float]]:
        """Stations (s_in, s_out) [m] where each lane's centre line passes through ``polygon``."""
        poly = np.asarray(polygon, float)
        centre = poly.mean(0)
        poly = centre + (poly - centre) * (1 + margin / max(np.linalg.norm(poly - centre, axis=1).min(), 1e-6))
        zones = []
        for i, lane in enumerate(self.lanes):
            path = self.edges[lane.edge]
            ss = np.arange(lane.s_from, lane.s_to, 0.25)
            h = np.interp(ss, path.s, path.heading)
            px = np.interp(ss, path.s, path.x) - lane.offset * np.sin(h)
            py = np.interp(ss, path.s, path.y) + lane.offset * np.cos(h)
            inside = _inside_convex(poly, px, py)
            if inside.any():
                zones.append((i, float(ss[inside].min()), float(ss[inside].max())))
        return zones

    def copy(self) -> "Network":
        """A copy that can gain and retire crossings without touching this one."""
        other = copy.copy(self)
        other.crossings = [dataclasses.replace(c, zones=list(c.zones)) for c in self.crossings]
        return other

    # ---- lookups -------------------------------------------------------------------
    def lane_polyline(self, lane: int, d: float = 0.0) -> np.ndarray:
        """(n, 2) points of a lane's centre line shifted by ``d`` [m]."""
        ln = self.lanes[lane]
        return self.edges[ln.edge].offset_polyline(ln.offset + d, ln.s_from, ln.s_to)

    def lane_point(self, lane: int, s: float) -> tuple[float, float, float]:
        """World (x, y, heading) of a lane centre at station ``s``."""
        ln = self.lanes[lane]
        path = self.edges[ln.edge]
        x, y = path.point(s, ln.offset)
        return x, y, float(np.interp(s, path.s, path.heading))


def _compressed(rows: dict[int, list[int]], n: int) -> tuple[np.ndarray, np.ndarray]:
    """``rows`` (lane -> lanes) as compressed rows: pointers (n + 1) and the lanes."""
    counts = np.zeros(n + 1, dtype=np.int64)
    for lane, others in rows.items():
        counts[lane + 1] = len(others)
    ptr = np.cumsum(counts)
    flat = np.zeros(int(ptr[-1]), dtype=np.int64)
    for lane, others in rows.items():
        flat[ptr[lane]:ptr[lane + 1]] = others
    return ptr, flat


def _inside_convex(poly: np.ndarray, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """Whether points lie inside a convex polygon given in either winding order."""
    signs = []
    for k in range(len(poly)):
        a, b = poly[k], poly[(k + 1) % len(poly)]
        signs.append((b[0] - a[0]) * (py - a[1]) - (b[1] - a[1]) * (px - a[0]))
    signs = np.array(signs)
    return np.all(signs >= 0, axis=0) | np.all(signs <= 0, axis=0)


def resample(points: np.ndarray, step: float) -> np.ndarray:
    """The polyline ``points`` resampled every ``step`` [m] of arc length."""
    seg = np.hypot(*np.diff(points, axis=0).T)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    ss = np.arange(0.0, s[-1] + step, step)
    return np.stack([np.interp(ss, s, points[:, 0]), np.interp(ss, s, points[:, 1])], 1)

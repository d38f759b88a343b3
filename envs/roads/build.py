"""The twin's :class:`envs.network.Network` built from a general :class:`RoadNetwork` (and its
demand), so that the world drives on any imported network as on the hand-built layouts.

- every normal edge becomes one twin edge: the centre line of its rightmost drivable lane is
  the reference curve, the other lanes lie at their offsets to the left of it (SUMO's lanes of
  an edge are parallel), each usable between the stations where its own shape starts and ends;
- every link becomes one junction lane of its own (``Lane.link``): from the end of its lane,
  along the junction-internal lane's shape, to the start of the lane it leads to. Its route key
  names the movement from one edge to the next, so a route is a list of movements and edges;
- a junction's foe relations (``<request>``) become ``Network.link_foes`` and
  ``link_response``, sparse per link; a link of an unsignalised junction that must yield is
  ``minor``; a signalised link gets a signal group per (traffic light, link index), and each
  traffic light's program becomes an ``envs.world.signals.Program``;
- departures become ``envs.world.demand.Trip`` objects with their routes as route keys.

Curve speeds: a junction lane keeps the speed SUMO gives it (``netconvert`` limits turning
speeds by the radius); a normal lane's curvature is measured over chords of
``CURVE_CHORD_M``, so it does not depend on how densely its polyline is sampled.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from envs.actors import ROUTE_END
from envs.geometry import Path
from envs.network import Lane, Network, resample
from envs.roads.model import KRAUSS_MODELS, Demand, Departure, Detector, Link, RoadNetwork, VehicleType
from envs.world.demand import Trip
from envs.world.detectors import DetectorSpec
from envs.world.signals import Program

if TYPE_CHECKING:
    from envs.scenario import SumoNetwork, WorldConfig

CURVE_CHORD_M = 40.0  # [m] arc over which a normal lane's curvature is measured (a polyline's kinks average out)
MAX_COMFORTABLE_DECEL = 3.0  # [m/s^2] IDM's b at most: SUMO's default decel (4.5) as IDM's b brakes late and hard
FOE_CLEARANCE_M = 2.5  # [m] links of an unregulated junction whose centre lines come this close cross
ROAD_CLASSES = ("passenger", "private", "taxi", "bus", "coach", "delivery", "truck", "trailer", "emergency",
                "authority", "army", "vip", "motorcycle", "moped", "evehicle", "hov", "custom1", "custom2")
TWIN_TYPES = {"truck": "truck", "trailer": "truck", "delivery": "truck", "bus": "bus", "coach": "bus"}
log = logging.getLogger(__name__)


@dataclass
class Built:
    """What building a twin network reports: what was left out, and why."""

    network: Network
    lane_of: dict[str, int]  # SUMO lane id -> twin lane
    edge_of: dict[str, int]  # SUMO edge id -> twin edge
    skipped_departures: dict[str, int] = field(default_factory=dict)  # reason -> departures


def twin_network(road: RoadNetwork, demand: Demand | None = None, begin_s: float = 0.0,
                 drivers: dict[str, float] | None = None, random_factor: float = 1.0,
                 detectors: list[Detector] | tuple = ()) -> Built:
    """The twin network of ``road`` with the trips of ``demand`` departing from ``begin_s`` [s]
    on (time 0 of the world is ``begin_s``)."""
    edges: list[Path] = []
    lanes: list[Lane] = []
    names: list[str] = []
    lane_of: dict[str, int] = {}
    edge_of: dict[str, int] = {}
    junction_index = {name: k for k, name in enumerate(road.junctions)}
    for edge in road.edges.values():
        if edge.function:
            continue
        drivable = [road.lanes[ln] for ln in edge.lanes if _drivable(road.lanes[ln].allowed)]
        if not drivable:
            continue
        ref = drivable[0]
        path = Path.from_points(ref.shape)
        if path.length < 0.1:
            continue
        e = len(edges)
        edges.append(path)
        names.append(edge.id)
        edge_of[edge.id] = e
        offset, prev = 0.0, None
        for lane_id in edge.lanes:
            lane = road.lanes[lane_id]
            if lane.index < ref.index:
                continue
            if prev is not None:
                offset += 0.5 * (prev.width + lane.width)
            prev = lane
            if not _drivable(lane.allowed):
                continue
            s_from, s_to = (0.0, path.length) if lane is ref else _stations(path, lane.shape)
            lane_of[lane_id] = len(lanes)
            lanes.append(Lane(edge=e, offset=offset, width=lane.width, speed_limit=max(lane.speed, 0.1),
                              s_from=s_from, s_to=s_to, name=lane_id, max_curvature=_curvature(lane.shape),
                              junctions=(junction_index.get(edge.from_junction, -1),
                                         junction_index.get(edge.to_junction, -1))))
    normal_edges = len(edges)
    moves: dict[tuple[int, int], int] = {}  # (from edge, to edge) -> route key
    groups: dict[tuple[str, int], int] = {}
    by_request: dict[tuple[str, int], int] = {}  # (junction, request index) -> link lane
    outgoing: dict[int, list[tuple[int, str]]] = {}
    at_junction: dict[str, list[tuple[int, int, int]]] = {}  # junction -> (link lane, from lane, to lane)
    for link in road.links:
        a, b = lane_of.get(link.from_lane), lane_of.get(link.to_lane)
        if a is None or b is None:
            continue
        shape = _link_shape(road, link, edges, lanes[a], lanes[b])
        path = Path.from_points(shape)
        move = moves.setdefault((lanes[a].edge, lanes[b].edge), len(moves))
        via = road.lanes.get(link.via)
        speed = via.speed if via is not None else min(road.lanes[link.to_lane].speed, road.lanes[link.from_lane].speed)
        group = groups.setdefault((link.tls, link.tl_index), len(groups)) if link.tls and link.tl_index >= 0 else -1
        junction = road.junctions.get(link.junction)
        minor = group < 0 and junction is not None and bool(junction.response.get(link.index))
        link_lane = len(lanes)
        edges.append(path)
        names.append(link.via or f"{link.from_lane}->{link.to_lane}")
        lanes.append(Lane(edge=len(edges) - 1, offset=0.0, width=via.width if via is not None else lanes[b].width,
                          speed_limit=max(speed, 0.1), lane_change=False, next=b, next_station=lanes[b].s_from,
                          name=names[-1], link=True, entry_group=group, minor=minor,
                          route_key=normal_edges + move, max_curvature=0.0,
                          junctions=(junction_index.get(link.junction, -1),) * 2))
        if link.index >= 0:
            by_request[(link.junction, link.index)] = link_lane
        at_junction.setdefault(link.junction, []).append((link_lane, a, b))
        outgoing.setdefault(a, []).append((link_lane, link.direction))
    route_key_count = normal_edges + len(moves)
    for edge_lanes in _lanes_by_edge(lanes, normal_edges).values():  # a lane that ends where its neighbours go on
        if any(ln in outgoing for ln in edge_lanes):
            for ln in edge_lanes:
                if ln not in outgoing:
                    lanes[ln].dead_end = True
    for lane_index, links in outgoing.items():
        links.sort(key=lambda item: item[1] != "s")  # straight on is where a vehicle without a route goes
        lane = lanes[lane_index]
        lane.next, lane.next_station = links[0][0], 0.0
        lane.successors = [(link_lane, 0.0) for link_lane, _ in links[1:]]
    foes: dict[int, list[int]] = {}
    response: dict[int, list[int]] = {}
    for (junction_id, index), link_lane in by_request.items():
        junction = road.junctions[junction_id]
        foes[link_lane] = sorted(by_request[(junction_id, j)] for j in junction.foes.get(index, ())
                                 if (junction_id, j) in by_request and by_request[(junction_id, j)] != link_lane)
        response[link_lane] = sorted(by_request[(junction_id, j)] for j in junction.response.get(index, ())
                                     if (junction_id, j) in by_request and by_request[(junction_id, j)] != link_lane)
    for junction_id, members in at_junction.items():  # no <request> (unregulated): crossing paths by geometry
        junction = road.junctions.get(junction_id)
        if junction is not None and not any(junction.foes.values()):
            _geometric_foes(members, edges, lanes, foes, response)
    foes = {k: v for k, v in foes.items() if v}
    response = {k: v for k, v in response.items() if v}
    programs = []
    for tls, program in road.programs.items():
        width = max((len(p.state) for p in program.phases), default=0)
        programs.append(Program(name=tls, groups=[groups.get((tls, k), -1) for k in range(width)],
                                durations=[max(p.duration, 0.1) for p in program.phases],
                                states=[p.state.ljust(width, "O") for p in program.phases],
                                offset_s=program.offset - begin_s))  # (the world's time 0 is SUMO's begin)
    outlined = [j for j in road.junctions.values() if j.type != "internal" and len(j.shape) >= 3]
    network = Network(edges=edges, lanes=lanes, signal_groups=len(groups), link_foes=foes, link_response=response,
                      signal_programs=programs, route_key_count=route_key_count, edge_names=names,
                      junction_shapes=[j.shape for j in outlined], junction_names=[j.id for j in outlined])
    built = Built(network=network, lane_of=lane_of, edge_of=edge_of)
    for det in detectors:  # SUMO's positions along the lane's own length, as stations of the twin lane
        if det.lane not in lane_of:
            log.warning("detector %r: lane %r carries no vehicles the twin drives; left out", det.id, det.lane)
            continue
        twin = lanes[lane_of[det.lane]]
        scale = (twin.s_to - twin.s_from) / max(road.lanes[det.lane].length, 1e-6)
        network.detectors.append(DetectorSpec(id=det.id, kind=det.kind, lane=lane_of[det.lane],
                                              s_from=twin.s_from + det.pos * scale,
                                              s_to=twin.s_from + det.end_pos * scale, period_s=det.period_s))
    if demand is not None:
        network.trips = _trips(road, demand, built, moves, normal_edges, begin_s, drivers or {}, random_factor)
    return built


def _geometric_foes(members: list[tuple[int, int, int]], edges: list[Path], lanes: list[Lane],
                    foes: dict[int, list[int]], response: dict[int, list[int]]) -> None:
    """Foes of the links of a junction without ``<request>`` data (SUMO's ``unregulated``):
    links whose centre lines come within ``FOE_CLEARANCE_M`` of each other (links leaving or
    entering the same lane excepted: drivers follow each other there); of two crossing links
    the later one yields, so that two vehicles never enter together."""
    lines = {link: resample(np.stack([edges[lanes[link].edge].x, edges[lanes[link].edge].y], 1), 1.0)
             for link, _, _ in members}
    for k, (a, a_from, a_to) in enumerate(members):
        for b, b_from, b_to in members[k + 1:]:
            if a_from == b_from or a_to == b_to:
                continue
            gap = np.hypot(*(lines[a][:, None, :] - lines[b][None, :, :]).transpose(2, 0, 1)).min()
            if gap < FOE_CLEARANCE_M:
                foes.setdefault(a, []).append(b)
                foes.setdefault(b, []).append(a)
                response.setdefault(b, []).append(a)
                lanes[b].minor = True


def _lanes_by_edge(lanes: list[Lane], normal_edges: int) -> dict[int, list[int]]:
    """The lanes of each normal edge."""
    out: dict[int, list[int]] = {}
    for k, lane in enumerate(lanes):
        if lane.edge < normal_edges:
            out.setdefault(lane.edge, []).append(k)
    return out


def _drivable(allowed: frozenset[str]) -> bool:
    return any(c in allowed for c in ROAD_CLASSES)


def _stations(path: Path, shape: np.ndarray) -> tuple[float, float]:
    """Stations [m] on ``path`` nearest the first and last point of ``shape``."""
    pts = np.stack([path.x, path.y], 1)

    def station(p: np.ndarray) -> float:
        a, b = pts[:-1], pts[1:]
        ab = b - a
        t = np.clip(((p - a) * ab).sum(1) / np.maximum((ab * ab).sum(1), 1e-12), 0.0, 1.0)
        d = np.hypot(*(a + t[:, None] * ab - p).T)
        k = int(d.argmin())
        return float(path.s[k] + t[k] * (path.s[k + 1] - path.s[k]))

    s_from, s_to = station(np.asarray(shape[0], float)), station(np.asarray(shape[-1], float))
    if s_to - s_from < 0.5:
        return 0.0, path.length
    return s_from, s_to


def _curvature(shape: np.ndarray, chord: float = CURVE_CHORD_M) -> float:
    """Largest curvature [1/m] of a polyline measured over chords of ``chord`` [m] (at most a
    quarter of its length, at least 5 m): the turn between the chord ending at a point and the
    chord starting there, over the chord length. Independent of how densely the line is
    sampled, and a kink between two straight pieces counts as a curve as long as the chord."""
    pts = np.asarray(shape, float)
    seg = np.hypot(*np.diff(pts, axis=0).T)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    chord = min(chord, 0.25 * s[-1])
    if chord < 5.0:
        return 0.0
    stations = np.arange(0.0, s[-1] + 1e-9, 1.0)
    x, y = np.interp(stations, s, pts[:, 0]), np.interp(stations, s, pts[:, 1])
    k = int(round(chord))
    h_in = np.arctan2(y[k:-k] - y[:-2 * k], x[k:-k] - x[:-2 * k])
    h_out = np.arctan2(y[2 * k:] - y[k:-k], x[2 * k:] - x[k:-k])
    turn = np.abs(np.angle(np.exp(1j * (h_out - h_in))))
    return float(turn.max(initial=0.0) / chord)


def _link_shape(road: RoadNetwork, link: Link, edges: list[Path], src: Lane, dst: Lane) -> np.ndarray:
    """The polyline of a link: from the end of its lane, along the internal lane, to the start
    of the lane it leads to."""
    start = np.array(edges[src.edge].point(src.s_to, src.offset))
    end = np.array(edges[dst.edge].point(dst.s_from, dst.offset))
    via = road.lanes.get(link.via)
    if via is not None and len(via.shape) >= 2:  # the internal lane's shape, its ends snapped onto the lanes'
        inner = np.asarray(via.shape, float)[1:-1]
        inner = inner[(np.hypot(*(inner - start).T) > 1.0) & (np.hypot(*(inner - end).T) > 1.0)]
        pts = np.concatenate([start[None], inner, end[None]])
    else:
        pts = np.stack([start, end])
    keep = np.concatenate([[True], np.hypot(*np.diff(pts, axis=0).T) > 0.05])
    pts = pts[keep]
    if len(pts) < 2:
        h = float(np.interp(src.s_to, edges[src.edge].s, edges[src.edge].heading))
        pts = np.array([start, start + 0.1 * np.array([np.cos(h), np.sin(h)])])
    return pts


def _trips(road: RoadNetwork, demand: Demand, built: Built, moves: dict[tuple[int, int], int], normal_edges: int,
           begin_s: float, drivers: dict[str, float], random_factor: float = 1.0) -> list[Trip]:
    """The departures of ``demand`` as trips on the twin network (times from ``begin_s``)."""
    net, trips = built.network, []
    for dep in demand.departures:
        edge_ids = [built.edge_of.get(e) for e in dep.edges]
        if any(e is None for e in edge_ids):
            _skip(built, "routes over edges no vehicle drives on (rail, bicycle or pedestrian only)", dep)
            continue
        keys: list[int] = []
        for a, b in zip(edge_ids, edge_ids[1:]):
            if (a, b) not in moves:
                _skip(built, "routes over edges the twin has no link between", dep)
                break
            keys += [normal_edges + moves[(a, b)], b]
        else:
            vtype = _vtype(demand, dep)
            first = [built.lane_of[ln] for ln in road.edges[dep.edges[0]].lanes
                     if ln in built.lane_of and road.lanes[ln].allows(vtype.vclass)]
            if not first:
                _skip(built, "routes starting on an edge their vehicle class may not use", dep)
                continue
            if dep.depart_lane.isdigit():
                index = int(dep.depart_lane)
                chosen = [built.lane_of[ln] for ln in road.edges[dep.edges[0]].lanes
                          if ln in built.lane_of and road.lanes[ln].index == index]
                first = chosen or first
            elif keys:  # "first", "best", "free", "random", ...: among the lanes that lead on along the route
                leads = [ln for ln in first if keys[0] in {int(net.lane_route_key[net.lane_turn[k]]) for k in
                                                           range(net.lane_turn_ptr[ln], net.lane_turn_ptr[ln + 1])}]
                first = leads or first
            trip = _trip(dep, vtype, first, keys + [ROUTE_END], edge_ids[-1], begin_s, drivers)
            if trip is not None:
                trip.random_factor = random_factor if dep.routed else 1.0
                trips.append(trip)
    for reason, count in built.skipped_departures.items():
        log.warning("%d departures left out: %s", count, reason)
    return trips


def _skip(built: Built, reason: str, dep: Departure) -> None:
    built.skipped_departures[reason] = built.skipped_departures.get(reason, 0) + max(dep.count, 1)


def _vtype(demand: Demand, dep: Departure) -> VehicleType:
    """The departure's vehicle type (of a distribution: its most likely member)."""
    if dep.vtype in demand.type_distributions:
        name = max(demand.type_distributions[dep.vtype], key=lambda m: m[1])[0]
        return demand.vtypes[name]
    return demand.vtypes[dep.vtype]


def vtype_parameters(vtype: VehicleType) -> tuple[dict[str, float], dict[str, float]]:
    """A SUMO vehicle type's size and limits (``length`` [m], ``v_max`` [m/s], ``a_max``,
    ``b_comf``, ``b_max`` [m/s^2]) and its drivers' parameters in the twin's terms
    (``headway`` [s]: its tau, ``min_gap`` [m], ``speed_factor``); not its car-following model."""
    size = {"length": vtype.length, "v_max": vtype.max_speed, "a_max": vtype.accel,
            "b_comf": min(vtype.decel, MAX_COMFORTABLE_DECEL), "b_max": max(vtype.emergency_decel, vtype.decel)}
    return size, {"headway": vtype.tau, "min_gap": vtype.min_gap, "speed_factor": vtype.speed_factor}


def _trip(dep: Departure, vtype: VehicleType, lanes: list[int], route: list[int], destination: int, begin_s: float,
          drivers: dict[str, float]) -> Trip | None:
    depart, count = dep.depart_s - begin_s, dep.count
    end = (dep.end_s if dep.end_s is not None else float("inf")) - begin_s
    if dep.probability is None and dep.period_s > 0 and depart < 0:  # a flow that began before: its rest
        skipped = int(np.ceil(-depart / dep.period_s - 1e-9))
        depart, count = depart + skipped * dep.period_s, count - skipped
    elif dep.probability is not None:
        depart = max(depart, 0.0)
    if (dep.probability is None and (count <= 0 or depart < 0)) or end <= 0:
        return None
    size, params = vtype_parameters(vtype)
    params = {**params, **({"krauss": 1.0, "sigma": vtype.sigma} if vtype.car_follow_model in KRAUSS_MODELS else {}),
              **drivers}
    return Trip(name=dep.id, lanes=lanes, route=route, destination=destination,
                vtype=TWIN_TYPES.get(vtype.vclass, "car"), size=size, params=params, depart_s=depart, count=count,
                period_s=dep.period_s, probability=dep.probability, end_s=end, depart_lane=dep.depart_lane,
                depart_speed=dep.depart_speed, depart_pos=dep.depart_pos)


def from_scenario(network: "SumoNetwork", config: "WorldConfig") -> Network:
    """The twin network (with its trips) of a scenario's ``network: {kind: sumo, ...}``;
    what the input holds that the twin does not model is logged."""
    from envs.roads import sumo

    additional = list(network.additional_files)
    routes = list(network.route_files)
    begin, random_factor = 0.0, 1.0
    net_file = network.net_file
    if network.config:
        cfg = sumo.read_config(network.config)
        for note in cfg.ignored:
            log.info("%s: option not used by the twin: %s", cfg.path.name, note)
        net_file = net_file or str(cfg.net_file)
        routes = [str(p) for p in cfg.route_files] + routes
        additional = [str(p) for p in cfg.additional_files] + additional
        begin, random_factor = cfg.begin_s, cfg.random_factor
    if network.begin_s is not None:
        begin = network.begin_s
    road, sumolib_net = sumo.read_network_and_sumolib(net_file, [a for a in additional if _has(a, "<tlLogic")])
    demand = sumo.read_routes(routes, road, sumolib_net, [a for a in additional if _has(a, "<vType") or
                                                         _has(a, "<route")]) if routes else None
    detectors = [d for a in additional if _has(a, "Detector") or _has(a, "inductionLoop")
                 for d in sumo.read_detectors(a, road)]
    for note in road.unsupported + (demand.unsupported if demand else []):
        log.warning("%s: %s", road.source, note)
    return twin_network(road, demand, begin, random_factor=random_factor, detectors=detectors).network


def _has(path: str, text: str) -> bool:
    """Whether an additional file mentions ``text`` (``<tlLogic``: programs; detectors)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return text in fh.read()
    except OSError:
        return True  # let the reader name the problem

"""The general road model: lanes as polylines joined by links through junctions, signal
programs per junction, and the demand that drives on them.

It follows SUMO's network model, the field's open standard (``docs/web/docs/Networks/
SUMO_Road_Networks.md`` in SUMO's repository), so that a ``.net.xml`` (and through
``netconvert`` an OpenStreetMap or OpenDRIVE map) maps onto it one to one:

- an *edge* is a road between two junctions; its *lanes* (index 0 the rightmost) each have
  their own centre line (``shape``, m), width, speed limit and allowed vehicle classes;
- a *link* leads from the end of a lane to the start of a lane of the next edge, through a
  junction-internal lane (``via``) that carries the movement across the junction; a lane
  usually has several links (40-77% of the lanes of SUMO's shipped city and interchange
  networks do);
- a *junction* has a type (``traffic_light``, ``priority``, ``right_before_left``,
  ``allway_stop``, ``zipper``, ...) and, per link it controls (its request index), the
  links that are its foes and the ones it must yield to (``response``);
- a *signal program* belongs to a traffic-light system: phases of one link-state
  character per controlled link (``G`` priority green, ``g`` permissive green that yields,
  ``y`` amber, ``r`` red, ``u`` red-amber, ``o`` / ``O`` off), with an offset.

This module has no SUMO dependency; :mod:`envs.roads.sumo` reads SUMO's files into it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

INTERNAL = "internal"  # an edge's function: a movement across a junction
WALKING_FUNCTIONS = ("crossing", "walkingarea")  # pedestrian-only edges


@dataclass
class RoadLane:
    """One lane: its centre line ``shape`` ((n, 2), m), ``width`` [m], ``speed`` limit [m/s],
    ``length`` along the shape [m] and the vehicle classes allowed on it."""

    id: str
    edge: str
    index: int  # 0 is the rightmost lane of its edge
    shape: np.ndarray
    width: float
    speed: float
    length: float
    allowed: frozenset[str]

    def allows(self, vclass: str) -> bool:
        return vclass in self.allowed


@dataclass
class RoadEdge:
    """A road between two junctions (or a junction-internal movement, a crossing, a walking
    area: see ``function``); ``lanes`` right to left."""

    id: str
    from_junction: str
    to_junction: str
    lanes: list[str]
    function: str = ""  # "" (normal), "internal", "crossing", "walkingarea", "connector"
    priority: int = -1
    name: str = ""

    @property
    def walking_only(self) -> bool:
        return self.function in WALKING_FUNCTIONS


@dataclass
class Link:
    """A movement from the end of ``from_lane`` to the start of ``to_lane`` across
    ``junction``, through the internal lane ``via`` ("" when the network has none)."""

    from_lane: str
    to_lane: str
    via: str
    direction: str  # s straight, l / r left / right, L / R partly, t turn
    state: str  # the link's state without a signal: M major, m minor, = zipper, % all-way stop, s stop...
    junction: str
    index: int  # the link's request index at its junction (-1 if it has none)
    tls: str = ""  # the traffic-light system controlling it
    tl_index: int = -1  # its position in that system's phase states


@dataclass
class Junction:
    """A junction of ``type`` with its outline ``shape`` ((n, 2), m); ``foes[i]`` are the
    request indices that cross link ``i``, ``response[i]`` those it must yield to."""

    id: str
    type: str
    x: float
    y: float
    shape: np.ndarray
    incoming_lanes: list[str]
    internal_lanes: list[str]
    foes: dict[int, frozenset[int]] = field(default_factory=dict)
    response: dict[int, frozenset[int]] = field(default_factory=dict)


@dataclass
class Phase:
    """One phase of a signal program: ``duration`` [s] and one state character per link."""

    duration: float
    state: str
    min_duration: float | None = None  # [s] actuated programs only
    max_duration: float | None = None  # [s]
    name: str = ""


@dataclass
class SignalProgram:
    """A traffic-light system's program: phases in order, starting ``offset`` [s] into the cycle."""

    tls: str
    program: str
    type: str  # static, actuated, delay_based, ...
    offset: float
    phases: list[Phase]

    @property
    def cycle_s(self) -> float:
        return float(sum(p.duration for p in self.phases))


@dataclass
class RoadNetwork:
    """Lanes, edges, links, junctions and signal programs of one network, read from
    ``source``; ``unsupported`` lists what the network holds that the twin does not model
    (named when the network is loaded, never dropped silently)."""

    source: str
    edges: dict[str, RoadEdge]
    lanes: dict[str, RoadLane]
    links: list[Link]
    junctions: dict[str, Junction]
    programs: dict[str, SignalProgram]  # the program in use per traffic-light system
    unsupported: list[str] = field(default_factory=list)
    _out: dict[str, list[Link]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._out = {}
        for link in self.links:
            self._out.setdefault(link.from_lane, []).append(link)

    def links_from(self, lane: str) -> list[Link]:
        """The links leaving the end of ``lane``."""
        return self._out.get(lane, [])

    def road_lanes(self) -> list[RoadLane]:
        """The lanes of normal edges (neither internal nor pedestrian-only)."""
        return [self.lanes[lane] for e in self.edges.values() if not e.function for lane in e.lanes]

    def internal_lanes(self) -> list[RoadLane]:
        return [self.lanes[lane] for e in self.edges.values() if e.function == INTERNAL for lane in e.lanes]

    def edge_links(self, from_edge: str, to_edge: str, vclass: str = "passenger") -> list[Link]:
        """The links from a lane of ``from_edge`` to a lane of ``to_edge`` that ``vclass`` may use."""
        found = []
        for lane in self.edges[from_edge].lanes:
            if not self.lanes[lane].allows(vclass):
                continue
            for link in self.links_from(lane):
                if self.lanes[link.to_lane].edge == to_edge and self.lanes[link.to_lane].allows(vclass):
                    found.append(link)
        return found

    def route_problem(self, edges: list[str], vclass: str = "passenger") -> str | None:
        """Why ``vclass`` cannot drive the route ``edges``, or None when it can."""
        if not edges:
            return "the route has no edges"
        for edge in edges:
            if edge not in self.edges:
                return f"edge {edge!r} is not in the network"
            if not any(self.lanes[lane].allows(vclass) for lane in self.edges[edge].lanes):
                return f"edge {edge!r} does not allow vehicle class {vclass!r}"
        for a, b in zip(edges, edges[1:]):
            if not self.edge_links(a, b, vclass):
                return f"edge {a!r} is not connected to edge {b!r} for vehicle class {vclass!r}"
        return None

    def summary(self) -> dict[str, object]:
        """Counts a user checks first: lanes, links, junction types, signal programs, and how
        much of the network the three hand-built layouts could not express."""
        road = self.road_lanes()
        internal = self.internal_lanes()
        several = sum(len({lk.to_lane for lk in self.links_from(lane.id)}) > 1 for lane in road)
        types: dict[str, int] = {}
        for j in self.junctions.values():
            if j.type != INTERNAL:
                types[j.type] = types.get(j.type, 0) + 1
        states = {c for p in self.programs.values() for ph in p.phases for c in ph.state}
        return {
            "source": self.source,
            "edges": sum(not e.function for e in self.edges.values()),
            "lanes": len(road),
            "lane_km": round(sum(lane.length for lane in road) / 1000.0, 2),
            "internal_lanes": len(internal),
            "internal_lanes_under_20_m": sum(lane.length < 20.0 for lane in internal),
            "links": len(self.links),
            "lanes_with_several_successors": several,
            "share_with_several_successors": round(several / len(road), 3) if road else 0.0,
            "junctions": dict(sorted(types.items())),
            "signal_programs": len(self.programs),
            "link_states_in_programs": "".join(sorted(states)),
            "unsupported": list(self.unsupported),
        }


@dataclass
class Detector:
    """A SUMO detector on ``lane``: an induction loop at ``pos`` [m] from the lane's start
    (``kind="loop"``, SUMO's ``inductionLoop`` / ``e1Detector``) or a lane-area detector from
    ``pos`` to ``end_pos`` [m] (``kind="area"``, ``laneAreaDetector`` / ``e2Detector``),
    aggregated every ``period_s`` [s]."""

    id: str
    kind: str
    lane: str
    pos: float
    end_pos: float
    period_s: float


KRAUSS_MODELS = ("Krauss", "KraussOrig1", "KraussPS")  # SUMO car-following models the twin drives as Krauss
IDM_MODELS = ("IDM", "IDMM")  # and those it drives as IDM (any other is driven as IDM, and listed when read)


@dataclass
class VehicleType:
    """A SUMO ``vType``: class, size [m], limits [m/s, m/s²] and car-following parameters."""

    id: str
    vclass: str = "passenger"
    length: float = 5.0
    min_gap: float = 2.5
    max_speed: float = 55.55
    accel: float = 2.6
    decel: float = 4.5
    emergency_decel: float = 9.0
    tau: float = 1.0  # [s] desired time headway
    speed_factor: float = 1.0
    car_follow_model: str = "Krauss"
    sigma: float = 0.5  # Krauss' driver imperfection (dawdling), in [0, 1]


@dataclass
class Departure:
    """One vehicle (or a flow's ``count`` vehicles, ``period_s`` apart from ``depart_s``)
    of ``vtype`` on the route ``edges``."""

    id: str
    vtype: str
    depart_s: float
    edges: list[str]
    depart_lane: str = "first"
    depart_speed: str = "0"
    depart_pos: str = "base"  # SUMO's departPos: base, random, free, random_free, last, or metres
    routed: bool = False  # a <trip> or from/to <flow>: its edges were found by routing (SUMO routes each vehicle)
    count: int = 1
    period_s: float = 0.0
    probability: float | None = None  # per second, for flows given by probability
    end_s: float | None = None

    def times(self) -> list[float]:
        """Departure times [s] of a fixed-count vehicle or flow (not of a probability flow)."""
        return [self.depart_s + k * self.period_s for k in range(self.count)]


@dataclass
class Demand:
    """Vehicle types (and distributions of them: a departure's ``vtype`` may name one),
    departures and the number of persons of one or more route files; ``unsupported`` as in
    :class:`RoadNetwork`."""

    vtypes: dict[str, VehicleType]
    departures: list[Departure]
    type_distributions: dict[str, list[tuple[str, float]]] = field(default_factory=dict)  # id: (vType, weight)
    persons: int = 0
    unsupported: list[str] = field(default_factory=list)

    def vehicles(self, until_s: float | None = None, since_s: float = 0.0) -> int:
        """Vehicles departing from ``since_s`` up to ``until_s`` [s] (probability flows: their
        expectation)."""
        total = 0.0
        for d in self.departures:
            if d.probability is not None:
                end = d.end_s if d.end_s is not None else until_s
                if end is not None:
                    stop = min(end, until_s) if until_s is not None else end
                    total += max(0.0, stop - max(d.depart_s, since_s)) * d.probability
                continue
            total += sum(1 for t in d.times() if t >= since_s and (until_s is None or t <= until_s))
        return int(round(total))

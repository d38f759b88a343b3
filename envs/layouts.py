"""Builders of the three scenario families' road networks from their configs.

Right-hand traffic everywhere: lanes sit to the right of their edge's reference curve
(negative offsets), lane 0 is the innermost (leftmost) lane.
"""

from __future__ import annotations

import numpy as np

from envs.geometry import Path
from envs.network import (
    AMBER,
    DONT_WALK,
    FLASH,
    GREEN,
    RED,
    WALK,
    Crossing,
    Inlet,
    Lane,
    Network,
    SidewalkRoute,
    SignalInterval,
    SpeedZone,
)
from envs.scenario import CrosswalkNetwork, HighwayNetwork, IntersectionNetwork, WorldConfig

SIDEWALK_WIDTH = 2.5  # [m]


def build_network(config: WorldConfig) -> Network:
    """The road network described by a scenario's ``network`` section."""
    net = config.network
    if net.kind == "sumo":
        from envs.roads.build import from_scenario  # (imports SUMO's reader only where it is used)

        return from_scenario(net, config)
    builder = {"highway": _highway, "intersection": _intersection, "crosswalk": _crosswalk}[net.kind]
    return builder(net, config)


def _rect(centre, along, across, half_along: float, lo_across: float, hi_across: float) -> np.ndarray:
    c, u, p = (np.asarray(v, float) for v in (centre, along, across))
    return np.array([
        c - half_along * u + lo_across * p,
        c + half_along * u + lo_across * p,
        c + half_along * u + hi_across * p,
        c - half_along * u + hi_across * p,
    ])


def _highway(net: HighwayNetwork, config: WorldConfig) -> Network:
    w, n = net.lane_width_m, net.lanes
    ref = Path.straight((0.0, 0.0), (net.curve_start_m, 0.0))
    ref = ref.arc_then(net.curve_radius_m, np.radians(net.curve_angle_deg))
    remaining = net.length_m - ref.length
    if remaining > 1.0:
        ref = ref.straight_then(remaining)
    edges = [ref]
    lanes = [
        Lane(edge=0, offset=-(k + 0.5) * w, width=w, speed_limit=net.speed_limit_mps, name=f"main_{k}")
        for k in range(n)
    ]
    rate = config.demand.vehicles_per_hour / 3600.0
    inlets = [Inlet(lanes=list(range(n)), weights=[1.0] * n, rate=rate, name="mainline")]
    if net.on_ramp:
        accel = len(lanes)
        lanes.append(Lane(
            edge=0, offset=-(n + 0.5) * w, width=w, speed_limit=net.ramp_speed_limit_mps,
            s_from=net.merge_at_m, s_to=net.merge_at_m + net.accel_lane_m, dead_end=True,
            lane_change=False, name="accel",
        ))
        end = ref.point(net.merge_at_m, -(n + 0.5) * w)
        start = (end[0] - net.ramp_length_m, end[1] - 30.0)
        edges.append(Path.bezier(start, 0.0, end, 0.0, tangent_scale=0.45))
        lanes.append(Lane(
            edge=1, offset=0.0, width=w, speed_limit=net.ramp_speed_limit_mps, next=accel,
            next_station=net.merge_at_m, lane_change=False, name="ramp",
        ))
        inlets.append(Inlet(lanes=[len(lanes) - 1], weights=[1.0], rate=config.demand.ramp_vehicles_per_hour / 3600.0, name="ramp"))
    return Network(edges=edges, lanes=lanes, inlets=inlets)


ARMS = {"N": (0.0, 1.0), "E": (1.0, 0.0), "S": (0.0, -1.0), "W": (-1.0, 0.0)}


def _intersection(net: IntersectionNetwork, config: WorldConfig) -> Network:
    w, L, cw = net.lane_width_m, net.arm_length_m, net.crosswalk_width_m
    n_in, n_out = 3, 2  # incoming: left / through / right; outgoing: inner / outer
    box = n_in * w + 8.0  # [m] half size of the junction box (turns happen inside it)
    cross_at = box + 0.5 * cw + 1.0  # [m] crosswalk centre from the junction centre
    stop_at = box + cw + 2.0  # [m] stop line from the junction centre
    speed = net.speed_limit_mps
    edges: list[Path] = []
    lanes: list[Lane] = []
    approach: dict[str, list[int]] = {}
    exit_lanes: dict[str, list[int]] = {}
    for g, (name, u) in enumerate(ARMS.items()):
        u = np.array(u)
        edges.append(Path.straight(tuple(u * L), tuple(u * stop_at)))
        e_in = len(edges) - 1
        edges.append(Path.straight(tuple(u * box), tuple(u * L)))
        e_out = len(edges) - 1
        approach[name] = []
        for k, move in enumerate(("left", "through", "right")):
            lanes.append(Lane(edge=e_in, offset=-(k + 0.5) * w, width=w, speed_limit=speed,
                              lane_change=False, signal_group=g, name=f"{name}_in_{move}"))
            approach[name].append(len(lanes) - 1)
        exit_lanes[name] = []
        for k in range(n_out):
            lanes.append(Lane(edge=e_out, offset=-(k + 0.5) * w, width=w, speed_limit=speed, name=f"{name}_out_{k}"))
            exit_lanes[name].append(len(lanes) - 1)
    names = list(ARMS)
    for i, name in enumerate(names):
        targets = {"left": (names[(i + 1) % 4], 0), "through": (names[(i + 2) % 4], 1), "right": (names[(i + 3) % 4], 1)}
        for k, move in enumerate(("left", "through", "right")):
            src = lanes[approach[name][k]]
            dst_arm, dst_k = targets[move]
            dst = lanes[exit_lanes[dst_arm][dst_k]]
            x0, y0, h0 = _lane_end(edges, src)
            x1, y1, h1 = _lane_start(edges, dst)
            # straight over the crosswalk to the junction box, then the turn inside the box
            xb, yb = x0 + (stop_at - box) * np.cos(h0), y0 + (stop_at - box) * np.sin(h0)
            path = Path.straight((x0, y0), (xb, yb))
            turn = Path.straight((xb, yb), (x1, y1)) if move == "through" else Path.bezier((xb, yb), h0, (x1, y1), h1, 0.55)
            path = path.extend(turn)
            edges.append(path)
            lanes.append(Lane(edge=len(edges) - 1, offset=0.0, width=w, speed_limit=speed, lane_change=False,
                              next=exit_lanes[dst_arm][dst_k], name=f"{name}_{move}"))
            src.next = len(lanes) - 1
    crossings, routes, sidewalks = [], [], []
    side_lo, side_hi = -n_out * w - 0.5 * SIDEWALK_WIDTH, n_in * w + 0.5 * SIDEWALK_WIDTH
    for c, (name, u) in enumerate(ARMS.items()):
        u = np.array(u)
        p = np.array([-u[1], u[0]])
        poly = _rect(u * cross_at, u, p, 0.5 * cw, -n_out * w - 0.3, n_in * w + 0.3)
        crossings.append(Crossing(polygon=poly, signal=c, name=f"{name}_crosswalk"))
        for lat in (side_lo, side_hi):
            sidewalks.append(np.array([u * box + p * lat, u * L + p * lat]))
        near = [tuple(u * cross_at + p * lat) for lat in (side_lo, side_hi)]
        far = [tuple(u * (L - 5.0) + p * lat) for lat in (side_lo, side_hi)]
        for a in (0, 1):
            b = 1 - a
            routes.append(SidewalkRoute(a0=far[a], a1=near[a], b0=near[b], b1=far[b], crossing=c))
    cycle = []
    for g, name in enumerate(names):
        states = [RED] * 4
        states[g] = GREEN
        cycle.append(SignalInterval(net.green_s, list(states), [DONT_WALK] * 4, f"{name} green"))
        states[g] = AMBER
        cycle.append(SignalInterval(net.amber_s, list(states), [DONT_WALK] * 4, f"{name} amber"))
        cycle.append(SignalInterval(net.all_red_s, [RED] * 4, [DONT_WALK] * 4, "all red"))
    cycle.append(SignalInterval(net.walk_s, [RED] * 4, [WALK] * 4, "pedestrians walk"))
    cycle.append(SignalInterval(net.flash_s, [RED] * 4, [FLASH] * 4, "pedestrians clear"))
    cycle.append(SignalInterval(net.all_red_s, [RED] * 4, [DONT_WALK] * 4, "all red"))
    t = config.demand.turns
    rate = config.demand.vehicles_per_hour / 3600.0
    inlets = [Inlet(lanes=approach[name], weights=[t.left, t.through, t.right], rate=rate, name=name) for name in names]
    return Network(edges=edges, lanes=lanes, crossings=crossings, inlets=inlets, sidewalk_routes=routes,
                   signal_cycle=cycle, signal_groups=4, pedestrian_signals=4, sidewalks=sidewalks,
                   sidewalk_width=SIDEWALK_WIDTH)


def _crosswalk(net: CrosswalkNetwork, config: WorldConfig) -> Network:
    w, L, X, cw = net.lane_width_m, net.length_m, net.crosswalk_at_m, net.crosswalk_width_m
    speed = net.speed_limit_mps
    edges = [Path.straight((0.0, 0.0), (L, 0.0)), Path.straight((L, 0.0), (0.0, 0.0))]
    lanes = [
        Lane(edge=0, offset=-0.5 * w, width=w, speed_limit=speed, name="eastbound"),
        Lane(edge=1, offset=-0.5 * w, width=w, speed_limit=speed, name="westbound"),
    ]
    zones = [
        SpeedZone(0, net.school_zone_from_m, net.school_zone_to_m, net.school_zone_limit_mps),
        SpeedZone(1, L - net.school_zone_to_m, L - net.school_zone_from_m, net.school_zone_limit_mps),
    ]
    poly = _rect((X, 0.0), (1.0, 0.0), (0.0, 1.0), 0.5 * cw, -w - 0.3, w + 0.3)
    crossings = [Crossing(polygon=poly, name="school_crosswalk")]
    ys = w + 0.5 * SIDEWALK_WIDTH
    routes = []
    for side in (-1.0, 1.0):
        for x_from in (max(X - 120.0, 5.0), min(X + 120.0, L - 5.0)):
            for x_to in (max(X - 120.0, 5.0), min(X + 120.0, L - 5.0)):
                routes.append(SidewalkRoute(a0=(x_from, side * ys), a1=(X, side * ys), b0=(X, -side * ys),
                                            b1=(x_to, -side * ys), crossing=0, jaywalk_ok=True))
    sidewalks = [np.array([[0.0, s * ys], [L, s * ys]]) for s in (-1.0, 1.0)]
    rate = config.demand.vehicles_per_hour / 3600.0
    inlets = [Inlet([0], [1.0], rate, "eastbound"), Inlet([1], [1.0], rate, "westbound")]
    return Network(edges=edges, lanes=lanes, crossings=crossings, speed_zones=zones, inlets=inlets,
                   sidewalk_routes=routes, sidewalks=sidewalks, sidewalk_width=SIDEWALK_WIDTH)


def _lane_end(edges: list[Path], lane: Lane) -> tuple[float, float, float]:
    path = edges[lane.edge]
    x, y = path.point(path.length, lane.offset)
    return x, y, float(path.heading[-1])


def _lane_start(edges: list[Path], lane: Lane) -> tuple[float, float, float]:
    path = edges[lane.edge]
    x, y = path.point(0.0, lane.offset)
    return x, y, float(path.heading[0])

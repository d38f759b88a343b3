"""Demand: the vehicles placed at reset, arrivals at the inlets and pedestrians on the sidewalks.

Arrivals are Poisson per inlet (and one stream of pedestrians), drawn as exponential gaps
from the world's random stream; an arrival that cannot enter waits in a short backlog.
"""

from __future__ import annotations

import bisect
import heapq
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from envs import kernels
from envs.kernels import KEY_SCALE
from envs.actors import CONTINUOUS, HUMAN, META, ROUTE_END, ROUTE_HOPS, ROUTE_LOST, TYPE_INDEX, VEHICLE_TYPES
from envs.network import Crossing, Network
from envs.world.lane_change import ROUTE_LOOKAHEAD, route_changes

if TYPE_CHECKING:
    from envs.scenario import Demand
    from envs.world.world import World

KEEP_LANE_WISH = 1e6  # [m/s^2] a placed vehicle that keeps its lane: minus this on every lane change's MOBIL gain
BACKLOG_CAP = 5  # vehicles waiting to enter at an inlet before arrivals are dropped
SHORTFALLS_TOLD: set[tuple[str, int]] = set()  # (network kind, vehicles asked for) already reported
log = logging.getLogger("envs.world")


class Arrivals:
    """The arrival processes of a world: rates, next arrival times, backlogs, vehicle mix."""

    def __init__(self, network: Network, demand: "Demand", rng: np.random.Generator) -> None:
        self.backlog = np.zeros(len(network.inlets))  # vehicles waiting per inlet
        rates = [inlet.rate for inlet in network.inlets] + [demand.pedestrians_per_hour / 3600.0]
        self.rates = np.maximum(np.array(rates), 1e-12)  # [1/s] vehicles per inlet, then pedestrians
        self.next_arrival = rng.exponential(1.0 / self.rates)  # [s]
        mix = demand.mix
        mix_p = np.array([mix.car, mix.truck, mix.bus])
        self.mix = mix_p / mix_p.sum() if mix_p.sum() > 0 else np.array([1.0, 0.0, 0.0])
        self.mix_cumulative = np.cumsum(self.mix).tolist()
        self.lanes = [np.asarray(inlet.lanes) for inlet in network.inlets]  # per inlet, as arrays
        self.lane_cumulative = [inlet.cumulative_weights.tolist() for inlet in network.inlets]  # per inlet


def place_controlled(world: "World", count: int, action: str = "meta") -> list[int]:
    """Place ``count`` RL-driven vehicles near the start of the network's inlets."""
    driver = META if action == "meta" else CONTINUOUS
    if not count:
        world.controlled_ids = []
        return []
    if not world.network.inlets:  # an imported network: each takes a trip of its demand, from its start
        if world.schedule is None:
            raise ValueError(f"ego.controlled={count}: this network has no demand to give controlled vehicles "
                             "a route (add route files), or set ego.controlled: 0")
        ids = []
        trips = world.schedule.trips
        for k in range(count):
            for _ in range(200):
                trip = trips[int(world.rng.integers(len(trips)))]
                vid = world.schedule.insert(world, trip, driver=driver, speed_factor=1.0)
                if vid is not None:
                    ids.append(vid)
                    break
            else:
                raise RuntimeError(f"no room to place controlled vehicle {k} at the start of a trip")
        world.controlled_ids = ids
        return ids
    lanes = controlled_lanes(world)
    ids = []
    for k in range(count):
        for _ in range(200):
            lane = int(lanes[world.rng.integers(len(lanes))])
            s = world.network.lane_s_from[lane] + float(world.rng.uniform(20.0, 100.0))
            v = min(world.lane_speed_limit[lane] * 0.8, 15.0)
            if world.clear_at(lane, s, 4.5, v, 1.5, 2.0):
                ids.append(world.add_vehicle(lane, s, v, driver=driver, speed_factor=1.0))
                break
        else:
            raise RuntimeError(f"no room to place controlled vehicle {k}")
    world.controlled_ids = ids
    return ids



def controlled_lanes(world: "World") -> np.ndarray:
    net = world.network
    wanted = world.config.ego.movement
    lanes = []
    for inlet in net.inlets:
        for lane in inlet.lanes:
            name = net.lanes[lane].name
            if net.lanes[lane].next >= 0 and net.lanes[net.lanes[lane].next].dead_end:
                continue  # not the on-ramp
            if net.lane_signal_group[lane] >= 0 and wanted != "random" and not name.endswith(wanted):
                continue
            lanes.append(lane)
    return np.array(lanes or [net.inlets[0].lanes[0]])



def place_actors(world: "World", actors: list) -> list[int]:
    """Place a scenario's ``actors:`` (``envs.scenario.PlacedVehicle``/``PlacedPedestrian``) where
    they say; the n-th gets id n when placed first. Returns their ids. A lane, route or station
    that is not in the network, or two vehicles placed on top of each other, is a ScenarioError."""
    from envs.scenario import ScenarioError

    try:
        return _place_actors(world, actors)
    except ValueError as exc:
        raise ScenarioError(f"actors: {exc}") from None


def _place_actors(world: "World", actors: list) -> list[int]:
    net = world.network
    names = {lane.name: k for k, lane in enumerate(net.lanes)}
    ids = []
    for k, actor in enumerate(actors):
        if actor.kind == "pedestrian":
            if not net.sidewalk_routes:
                raise ValueError(f"[{k}]: this network has no sidewalk routes for a pedestrian")
            if actor.route >= len(net.sidewalk_routes):
                raise ValueError(f"[{k}].route: {actor.route} is not one of the network's "
                                 f"{len(net.sidewalk_routes)} sidewalk routes")
            route = net.sidewalk_routes[actor.route]
            path = np.array([route.a0, route.a1, route.b0, route.b1], float)
            start = max(float(np.linalg.norm(path[1] - path[0])) - actor.to_curb_m, 0.0)
            params = {key: value for key, value in (("speed", actor.speed_mps), ("critical_gap", actor.critical_gap_s),
                                                    ("compliance", actor.compliance)) if value is not None}
            ids.append(world.add_pedestrian(path, route.crossing, s=start, **params))
            continue
        if actor.lane not in names:
            raise ValueError(f"[{k}].lane: no lane {actor.lane!r} in this network "
                             f"(lanes: {', '.join(sorted(n for n in names if n))})")
        lane = names[actor.lane]
        length = VEHICLE_TYPES[TYPE_INDEX[actor.vtype]].length
        s = actor.s_m if actor.s_m is not None else net.lane_s_to[lane] - actor.before_end_m - 0.5 * length
        if not net.lane_s_from[lane] <= s <= net.lane_s_to[lane]:
            raise ValueError(f"[{k}]: station {s:.1f} m is off lane {actor.lane!r} "
                             f"({net.lane_s_from[lane]:.1f} to {net.lane_s_to[lane]:.1f} m)")
        veh = world.vehicles
        for other in np.flatnonzero(veh.lane == lane):
            if abs(veh.s[other] - s) < 0.5 * (veh.length[other] + length):
                raise ValueError(f"[{k}] would overlap actor {int(veh.id[other])} on lane {actor.lane!r} "
                                 f"(stations {s:.1f} and {veh.s[other]:.1f} m)")
        params = {key: value for key, value in (
            ("speed_factor", actor.speed_factor), ("headway", actor.headway_s), ("min_gap", actor.min_gap_m),
            ("reaction_time", actor.reaction_time_s), ("compliance", actor.compliance)) if value is not None}
        if actor.keep_lane:  # MOBIL's gain of any change stays negative
            params.update(wish_left=-KEEP_LANE_WISH, wish_right=-KEEP_LANE_WISH)
        ids.append(world.add_vehicle(lane, float(s), actor.speed_mps, actor.vtype, **params))
    return ids


def populate(world: "World", count: int) -> None:
    """Place ``count`` background vehicles on the network's long lanes, safely spaced (built-in
    layouts: an imported network's vehicles come from its trips)."""
    net = world.network
    if world.config.network.kind == "sumo":
        return
    length = net.lane_s_to - net.lane_s_from
    usable = (length >= 60.0) & ~net.lane_dead_end
    is_connector = np.array([ln.edge >= 0 and net.edge_length[ln.edge] < 60.0 for ln in net.lanes])
    usable &= ~is_connector
    # skip the on-ramp: vehicles there would all arrive at the merge together
    usable &= ~((net.lane_next >= 0) & net.lane_dead_end[np.maximum(net.lane_next, 0)])
    candidates = np.flatnonzero(usable)
    if not len(candidates) or count <= 0:
        return
    per_lane = world.rng.multinomial(count, length[candidates] / length[candidates].sum())
    before = len(world.vehicles)
    for lane, k in zip(candidates, per_lane):
        lo, hi = net.lane_s_from[lane] + 10.0, net.lane_s_to[lane] - 25.0
        spacing = (hi - lo) / max(k, 1)  # [m] mean distance between placed vehicles
        s, ahead_len, s_ahead = hi - float(world.rng.uniform(0.0, 0.5 * spacing)), 0.0, 0.0
        for _ in range(k):  # from the downstream end backwards, each safely behind the last
            vtype = VEHICLE_TYPES[int(world.rng.choice(3, p=world.arrivals.mix))]
            v = world.lane_speed_limit[lane] * float(world.rng.uniform(0.6, 0.9))
            if net.lane_signal_group[lane] >= 0:  # able to stop comfortably at the line
                v = min(v, np.sqrt(2.0 * 1.5 * max(net.lane_s_to[lane] - s - 15.0, 0.0)))
            v = min(v, world.speed_limit_at(lane, s), max((0.75 * spacing - 9.0) / 2.0, 3.0))  # denser is slower
            if ahead_len:
                s = min(s, s_ahead - 0.5 * (ahead_len + vtype.length) - 3.0 - 2.0 * v)
            if s < lo:
                break
            if world.clear_at(lane, s, vtype.length, v, 2.0, 3.0):
                world.append_vehicle(int(lane), s, v, vtype.name, HUMAN)
                s_ahead, ahead_len = s, vtype.length
            s -= spacing * float(world.rng.uniform(0.5, 0.9))
    placed = len(world.vehicles) - before
    world.stats["background_not_placed"] = count - placed
    if placed < count and (world.config.network.kind, count) not in SHORTFALLS_TOLD:
        SHORTFALLS_TOLD.add((world.config.network.kind, count))  # once per process, not at every reset
        level = logging.WARNING if placed < 0.9 * count else logging.INFO
        log.log(level, "demand.vehicles: %d background vehicles asked for, %d fit on the network at safe gaps",
                count, placed)
    world.refresh_world_coords()
    world.perceive()



def spawn(world: "World", dt: float) -> None:
    net = world.network
    if world.schedule is not None:
        world.schedule.spawn(world, world.time + dt)
    # Poisson arrivals, drawn as exponential gaps; the last slot is the pedestrians'
    now = world.time + dt
    arrivals = world.arrivals.next_arrival
    while arrivals.min() <= now:
        k = int(arrivals.argmin())
        arrivals[k] += world.rng.exponential(1.0 / world.arrivals.rates[k])
        if k < len(net.inlets):
            world.arrivals.backlog[k] = min(world.arrivals.backlog[k] + 1, BACKLOG_CAP)
        elif net.sidewalk_routes:
            spawn_pedestrian(world)
    for k in range(len(net.inlets)):
        if world.arrivals.backlog[k] >= 1 and try_enter(world, k):
            world.arrivals.backlog[k] -= 1



def try_enter(world: "World", k: int) -> bool:
    """Let one vehicle in at inlet ``k`` if its entry is clear; returns whether it entered."""
    net, veh = world.network, world.vehicles
    inlet = net.inlets[k]
    cum = world.arrivals.lane_cumulative[k]
    closed = world.lane_closed[world.arrivals.lanes[k]]
    if closed.any():
        cum = np.cumsum(np.where(closed, 0.0, np.asarray(inlet.weights, float))).tolist()
    if cum[-1] <= 0:
        return False
    lane = int(inlet.lanes[min(bisect.bisect_left(cum, world.rng.random() * cum[-1]), len(cum) - 1)])
    j = first_vehicle(world, lane)
    room = veh.s[j] - 0.5 * veh.length[j] - net.lane_s_from[lane] if j >= 0 else np.inf
    if room < 20.0:  # not even a truck fits with a minimal gap
        return False
    vtype = VEHICLE_TYPES[min(bisect.bisect_left(world.arrivals.mix_cumulative, world.rng.random()), 2)]
    s0 = net.lane_s_from[lane] + 0.5 * vtype.length
    v = min(world.speed_limit_at(lane, s0) * 0.9, vtype.v_max)
    if j >= 0:
        gap = room - vtype.length
        v = min(v, veh.v[j] + max(gap - 30.0, 0.0) * 0.2)
        if gap < 3.0 + v * 1.5:
            v = min(v, veh.v[j])
            if gap < 3.0 + v * 1.5 or gap < 8.0:
                return False
    world.add_vehicle(lane, s0, v, vtype=vtype.name)
    return True



def first_vehicle(world: "World", lane: int) -> int:
    """Row of the vehicle nearest the start of ``lane`` (-1 if the lane is empty)."""
    start = world.network.lane_s_from[lane] - KEY_SCALE / 2
    return int(world.query_ahead(np.array([lane]), np.array([start]))[0])



def spawn_pedestrian(world: "World") -> None:
    net = world.network
    route = net.sidewalk_routes[int(world.rng.integers(len(net.sidewalk_routes)))]
    a0, a1, b0, b1 = (np.asarray(p, float) for p in (route.a0, route.a1, route.b0, route.b1))
    crossing = route.crossing
    jay = route.jaywalk_ok and world.rng.random() < world.config.demand.jaywalk_fraction
    if jay:
        f = float(world.rng.uniform(0.1, 0.8))
        a1 = a0 + f * (a1 - a0)
        b0 = a1 + (np.asarray(route.b0) - np.asarray(route.a1))
        along = (b0 - a1) / np.linalg.norm(b0 - a1)
        across = np.array([-along[1], along[0]])
        poly = np.array([a1 - across, a1 + across, b0 + across, b0 - across])
        crossing = net.add_crossing(Crossing(polygon=poly, name="jaywalk"))
        world.occupied = np.append(world.occupied, False)
        world.crossing_gap = np.append(world.crossing_gap, np.inf)
        world.perceive()
    path = np.array([a0, a1, b0, b1])
    start = float(world.rng.uniform(0.0, 0.6)) * np.linalg.norm(a1 - a0)
    world.add_pedestrian(path, crossing, s=start, jaywalker=jay)



# ---- general networks: scheduled trips with routes ------------------------------------------------
@dataclass
class Trip:
    """Departures of one vehicle or flow of an imported demand (a SUMO ``<vehicle>``, ``<trip>`` or
    ``<flow>``): when, on which lanes of its first edge, along which route, with which vehicle.

    ``route`` holds the route keys of the lanes entered after the first edge (junction
    movements and edges in turn, ``ROUTE_END`` last); ``params`` are behaviour parameters
    (``World.append_vehicle``) and ``size`` the vehicle's dimensions [m] and limits."""

    name: str
    lanes: list[int]
    route: list[int]
    destination: int  # the edge the route ends on
    vtype: str  # the twin's vehicle type (car, truck, bus)
    size: dict[str, float]
    params: dict[str, float]
    depart_s: float
    count: int = 1
    period_s: float = 0.0
    probability: float | None = None  # [1/s] for random flows
    end_s: float = float("inf")
    depart_lane: str = "first"
    depart_speed: str = "0"
    depart_pos: str = "base"
    random_factor: float = 1.0  # > 1: each vehicle is routed anew, edge costs disturbed by U(1, this) (SUMO's weights.random-factor)


WHEELBASE_SHARE = 0.6  # wheelbase / length of an imported vehicle type (a car: 2.7 m of 4.5 m)
LEADER_SEARCH_LANES = 3  # lanes after a departure's lane searched for its leader
FREE_POSITION_TRIES = 4  # random places tried for departPos="free"
INSERT_MARGIN_M = 1.0  # [m] more than the minimum gap a departing vehicle needs ahead and behind


class Schedule:
    """The departures of a network's trips: who is due, who still waits to be inserted (per
    first edge, in order, as SUMO's insertion queue), and inserting them where there is room."""

    def __init__(self, network: Network, config: "Demand", rng: np.random.Generator) -> None:
        self.trips: list[Trip] = network.trips
        self.next_s = np.array([t.depart_s for t in self.trips], float)  # [s] next departure per trip
        self.left = np.array([t.count if t.probability is None else np.iinfo(np.int64).max for t in self.trips])
        self.waiting: dict[tuple[int, ...], list[int]] = {}  # first-edge lanes -> trips due, oldest first
        self.rng = rng
        self._next_due = self._due()

    def _due(self) -> float:
        """The time [s] of the next departure to queue (inf: none left)."""
        left = self.left > 0
        return float(self.next_s[left].min()) if left.any() else np.inf

    @property
    def backlog(self) -> int:
        """Vehicles due that wait for room to enter."""
        return sum(len(q) for q in self.waiting.values())

    def spawn(self, world: "World", now: float) -> None:
        """Queue the departures due by ``now`` [s] and insert the first waiting one per edge."""
        if now >= self._next_due:
            self._queue_due(now)
            self._next_due = self._due()
        inserted = False
        for lanes, queue in self.waiting.items():
            if queue and self.insert(world, self.trips[queue[0]], perceive=False) is not None:
                queue.pop(0)
                inserted = True
        if inserted:  # once for all of this step's departures (each was placed at positions now)
            world.refresh_world_coords()
            world.perceive()

    def _queue_due(self, now: float) -> None:
        """Queue the departures due by ``now`` [s], each behind those waiting on its first edge."""
        for k in np.flatnonzero((self.next_s <= now) & (self.left > 0)):
            trip = self.trips[k]
            while self.next_s[k] <= now and self.left[k] > 0:
                if trip.probability is None:
                    self.waiting.setdefault(tuple(trip.lanes), []).append(int(k))
                    self.left[k] -= 1
                    self.next_s[k] += trip.period_s if trip.period_s > 0 else np.inf
                else:  # a random flow: a vehicle each second with its probability
                    if self.rng.random() < trip.probability:
                        self.waiting.setdefault(tuple(trip.lanes), []).append(int(k))
                    self.next_s[k] += 1.0
                if self.next_s[k] > trip.end_s:
                    self.left[k] = 0

    def insert(self, world: "World", trip: Trip, driver: int = HUMAN, perceive: bool = True,
               **params: float) -> int | None:
        """Insert one vehicle of ``trip`` on its first edge if it fits (``driver`` drives it,
        ``params`` override its driver's); returns its id, or None when there is no room.
        ``perceive=False``: the caller refreshes the world's perception after its insertions."""
        net, veh = world.network, world.vehicles
        lanes = [ln for ln in trip.lanes if not world.lane_closed[ln]]
        if trip.depart_lane == "random":
            lanes = [lanes[int(self.rng.integers(len(lanes)))]] if lanes else []
        elif trip.depart_lane not in ("free", "best", "allowed"):
            lanes = lanes[:1]  # "first" or a lane index: the trip's first lane (the builder chose it)
        elif trip.depart_lane == "best" and len(lanes) > 1:  # those that need the fewest changes along the route
            ahead = tuple(k for k in trip.route[:ROUTE_LOOKAHEAD] if k >= 0)
            changes = [route_changes(net, ln, ahead) for ln in lanes]
            lanes = [ln for ln, c in zip(lanes, changes) if c == min(changes)]
        best, best_v, best_s, best_room = -1, -1.0, 0.0, -1.0  # the fastest start; as fast: the most room ahead
        length, min_gap = trip.size["length"], trip.params.get("min_gap", 2.5)
        headway, b = trip.params.get("headway", 1.0), trip.size.get("b_comf", 2.5)
        for lane in lanes:
            for s0 in self._positions(world, lane, length, trip.depart_pos, trip):
                # (a random speed is drawn for every place tried, also where the vehicle does not fit:
                # the random stream, and with it the figures in the README, stay as they are)
                draw = self.rng.random()  # (the same double uniform(0, 1) gives, at a tenth of the cost)
                j, k = _around(veh, net, lane, s0)  # (positions now: the occupancy was sorted before this step moved them)
                ahead_m = veh.s[j] - s0 if j >= 0 else np.inf  # [m] centre to the leader's centre
                if j < 0:  # no leader on the lane: the nearest on the lanes after it, whichever way they lead
                    j, ahead_m = _leader_beyond(veh, net, lane, net.lane_s_to[lane] - s0)
                if j >= 0 and ahead_m - 0.5 * veh.length[j] - 0.5 * length - min_gap - INSERT_MARGIN_M < 0:
                    continue  # no room behind the leader (most tries of a waiting departure end here)
                v = self._depart_speed(world, trip, lane, s0, draw)
                if j >= 0:  # keep a safe gap to the leader: v * headway + the braking difference
                    gap = ahead_m - 0.5 * veh.length[j] - 0.5 * length - min_gap - INSERT_MARGIN_M
                    room = gap + veh.v[j] ** 2 / (2 * b)
                    v = min(v, b * (-headway + np.sqrt(headway ** 2 + 2.0 * room / b)))
                if not self._clear_behind(world, lane, s0, 0.5 * length, k):
                    continue
                if v > best_v or (v == best_v and ahead_m > best_room):
                    best, best_v, best_s, best_room = lane, v, s0, ahead_m
                break  # the first position that fits on this lane
        if best < 0:
            return None
        vid = world.append_vehicle(best, best_s, best_v, trip.vtype, driver, **{**self._drivers(world, trip), **params})
        row = len(world.vehicles) - 1
        for name, value in trip.size.items():
            getattr(world.vehicles, name)[row] = value
        world.vehicles.wheelbase[row] = WHEELBASE_SHARE * trip.size["length"]
        world.within_grip(row)  # the vehicle type's limits, within what the road's friction transmits
        route = trip.route
        if trip.random_factor > 1.0:
            path = world.routes.shortest_path(int(net.lane_route_key[best]), trip.destination, self.rng,
                                              trip.random_factor)
            if path is not None:
                route = path + [ROUTE_END]
        world.set_route(vid, route, trip.destination, perceive=False)
        if perceive:
            world.refresh_world_coords()
            world.perceive()
        world.departed_at[vid] = (world.time, trip.name)
        return vid

    @staticmethod
    def _depart_speed(world: "World", trip: Trip, lane: int, s0: float, draw: float) -> float:
        """The speed [m/s] a vehicle of ``trip`` departs with at station ``s0`` [m] of ``lane``,
        as SUMO's departSpeed says (a number, max, desired, speedLimit, avg, random: ``draw``,
        uniform in [0, 1), times the limit; else 0), within the lane's limit there and the
        vehicle's top speed."""
        limit = min(world.speed_limit_at(lane, s0) * trip.params.get("speed_factor", 1.0), trip.size["v_max"])
        named = trip.depart_speed
        if named in ("max", "desired", "speedLimit"):
            return limit
        if named == "avg":
            return 0.5 * limit
        if named == "random":
            return draw * limit
        try:
            return min(float(named), limit)
        except ValueError:
            return 0.0

    def _positions(self, world: "World", lane: int, length: float, depart_pos: str, trip: Trip) -> list[float]:
        """Stations [m] of a departing vehicle's centre to try on ``lane``, as SUMO's departPos
        says: the lane's start (base), close behind the lane's last vehicle or, on an empty lane,
        at its end (last, as SUMO's ``MSLane::lastInsertion``), a random
        place (random), a few random places (free,
        random_free), or its front that many metres from the start (negative: from the end)."""
        net, veh = world.network, world.vehicles
        if depart_pos == "base":
            return [float(net.lane_s_from[lane]) + 0.5 * length]
        lo, hi = net.lane_s_from[lane] + 0.5 * length, max(net.lane_s_to[lane] - 0.5 * length - 1.0,
                                                           net.lane_s_from[lane] + 0.5 * length)
        if depart_pos == "last":  # as close behind the lane's last vehicle as its speed allows (else: its end)
            on = np.flatnonzero(veh.lane == lane)
            if not len(on):
                return [hi]
            last = on[np.argmin(veh.s[on])]
            v = min(world.speed_limit_at(lane, lo), trip.size["v_max"])
            room = trip.params.get("min_gap", 2.5) + INSERT_MARGIN_M + v * trip.params.get("headway", 1.0)
            return [float(min(max(veh.s[last] - 0.5 * (veh.length[last] + length) - room, lo), hi))]
        if depart_pos == "random":
            return [float(self.rng.uniform(lo, hi))]
        if depart_pos in ("free", "random_free"):
            return [lo] + sorted(float(x) for x in self.rng.uniform(lo, hi, FREE_POSITION_TRIES))
        try:
            at = float(depart_pos)
        except ValueError:
            return [lo]  # base, last, stop, ...: the start
        at = net.lane_s_from[lane] + at if at >= 0 else net.lane_s_to[lane] + at  # where its front is, as in SUMO
        return [float(min(max(at - 0.5 * length, lo), hi))]

    def _drivers(self, world: "World", trip: Trip) -> dict[str, float]:
        """The trip's driver parameters (its vehicle type's means), each spread as the scenario's
        driver distribution of it spreads around its own mean."""
        beh = world.config.drivers
        spreads = {"speed_factor": beh.desired_speed_factor, "headway": beh.time_headway_s, "min_gap": beh.min_gap_m}
        out = dict(trip.params)
        for name, spread in spreads.items():
            if name in out and spread.mean > 0:
                out[name] = float(out[name] * max(self.rng.normal(1.0, spread.sd / spread.mean), 0.5))
        return out

    def _clear_behind(self, world: "World", lane: int, s0: float, half: float, k: int) -> bool:
        """Whether no vehicle behind station ``s0`` [m] on ``lane`` (the nearest: row ``k``), or
        coming into it over a junction link (on the link, or on the lane before it), is too
        close behind a vehicle of half length ``half`` [m] placed there."""
        net, veh = world.network, world.vehicles
        rear = s0 - half
        if k >= 0:
            gap = rear - (veh.s[k] + 0.5 * veh.length[k])
            if gap < veh.min_gap[k] + veh.v[k] * veh.headway[k] + INSERT_MARGIN_M:
                return False
            return True
        for before in net.link_in[net.link_in_ptr[lane]:net.link_in_ptr[lane + 1]]:
            _, j = _around(veh, net, before, net.lane_s_to[before] + 1e4)
            behind_link = 0.0  # [m] the link's length when the nearest vehicle is on the lane before it
            if j < 0 and net.lane_link_from[before] >= 0:
                behind_link = net.lane_s_to[before] - net.lane_s_from[before]
                before = net.lane_link_from[before]
                _, j = _around(veh, net, before, net.lane_s_to[before] + 1e4)
            if j < 0:
                continue
            gap = (net.lane_s_to[before] - veh.s[j] - 0.5 * veh.length[j]) + behind_link + (rear - net.lane_s_from[lane])
            if gap < veh.min_gap[j] + veh.v[j] * veh.headway[j] * 0.5 + INSERT_MARGIN_M:
                return False
        return True


def _leader_beyond(veh, net: Network, lane: int, to_end: float) -> tuple[int, float]:
    """The nearest vehicle on the lanes that follow ``lane`` (any of its successors, up to
    ``LEADER_SEARCH_LANES`` lanes on), ``to_end`` [m] from a departure's centre to the lane's
    end: its row and the distance [m] between the two centres (-1, inf if none)."""
    best, best_m = -1, np.inf
    frontier = [(int(lane), to_end)]
    for _ in range(LEADER_SEARCH_LANES):
        after = []
        for ln, offset in frontier:
            for k in range(net.lane_turn_ptr[ln], net.lane_turn_ptr[ln + 1]):
                nxt = int(net.lane_turn[k])
                j, _ = _around(veh, net, nxt, net.lane_s_from[nxt] - 1e4)
                if j >= 0:
                    m = offset + veh.s[j] - net.lane_s_from[nxt]
                    if m < best_m:
                        best, best_m = j, m
                else:
                    after.append((nxt, offset + net.lane_s_to[nxt] - net.lane_s_from[nxt]))
        frontier = after
        if not frontier:
            break
    return best, best_m


def _around(veh, net: Network, lane: int, s: float) -> tuple[int, int]:
    """Rows of the nearest vehicles ahead of and behind station ``s`` [m] on ``lane`` (in it,
    changing into it or reaching into it from beside) at their positions now; -1 where there
    is none."""
    return kernels.around(veh.lane, veh.target_lane, veh.s, veh.d, veh.width, net.lane_edge, net.lane_offset,
                          net.lane_width, lane, s)


class Routes:
    """The parts of vehicles' routes beyond their route columns (refilled as they drive on), and
    routing again the vehicles that missed their route's lane."""

    def __init__(self, network: Network) -> None:
        self.network = network
        self.rest: dict[int, list[int]] = {}  # vehicle id -> route keys (+1) after its column
        self.destination: dict[int, int] = {}  # vehicle id -> the edge its route ends on
        self.rerouted = 0
        self.stranded = 0  # vehicles with no way on to their destination: they leave where they come out
        self.stranded_ids: set[int] = set()  # (their ids: leaving, they have not arrived)
        self._moves: dict[int, list[tuple[int, int]]] | None = None
        self._times: np.ndarray | None = None

    @property
    def active(self) -> bool:
        return bool(self.rest) or bool(self.destination)

    def set(self, vehicle_id: int, rest: list[int], destination: int) -> None:
        self.rest.pop(vehicle_id, None)
        if rest:
            self.rest[vehicle_id] = list(rest)
        if destination >= 0:
            self.destination[vehicle_id] = destination

    def follow(self, world: "World") -> None:
        """Refill route columns that run low and route again the vehicles that lost their route."""
        veh = world.vehicles
        if not kernels.routes_need_care(veh.route, ROUTE_HOPS // 2, bool(self.rest)):
            return self._forget_gone(veh)
        lost = np.flatnonzero(veh.route[:, 0] == ROUTE_LOST)
        for r in lost:
            self._reroute(world, int(r))
        if self.rest:
            low = np.flatnonzero(veh.route[:, ROUTE_HOPS // 2] == 0)
            for r in low:
                rest = self.rest.get(int(veh.id[r]))
                if not rest:
                    continue
                filled = int(np.count_nonzero(veh.route[r]))
                take = min(ROUTE_HOPS - filled, len(rest))
                veh.route[r, filled:filled + take] = rest[:take]
                del rest[:take]
                if not rest:
                    del self.rest[int(veh.id[r])]
        self._forget_gone(veh)

    def _forget_gone(self, veh) -> None:
        if len(self.destination) > 4 * len(veh) + 64:  # forget the vehicles that have left
            present = set(veh.id.tolist())
            self.destination = {v: d for v, d in self.destination.items() if v in present}
            self.rest = {v: r for v, r in self.rest.items() if v in present}

    def _reroute(self, world: "World", row: int) -> None:
        """A new route for the vehicle at ``row`` from the edge its lane leads to, to its destination."""
        net, veh = self.network, world.vehicles
        vid = int(veh.id[row])
        self.rerouted += 1
        lane = int(veh.lane[row])
        after = int(net.lane_next[lane]) if net.lane_is_link[lane] else lane
        start = int(net.lane_route_key[after]) if after >= 0 else -1
        goal = self.destination.get(vid, -1)
        path = self.shortest_path(start, goal) if start >= 0 and goal >= 0 else None
        keys: list[int] = []
        if net.lane_is_link[lane]:
            keys.append(start + 1)
        if path is None:
            self.stranded += 1
            self.stranded_ids.add(vid)
            keys.append(ROUTE_END)
        else:
            keys += [k + 1 for k in path] + [ROUTE_END]
        veh.route[row] = 0
        veh.route[row, :min(len(keys), ROUTE_HOPS)] = keys[:ROUTE_HOPS]
        self.rest.pop(vid, None)
        if len(keys) > ROUTE_HOPS:
            self.rest[vid] = keys[ROUTE_HOPS:]

    def shortest_path(self, start: int, goal: int, rng: np.random.Generator | None = None,
                      random_factor: float = 1.0) -> list[int] | None:
        """Route keys (movements and edges) from edge ``start`` to edge ``goal`` by free-flow
        travel time, or None; with ``rng``, each edge's time disturbed by U(1, ``random_factor``)."""
        if start == goal:
            return []
        moves = self._edge_moves()
        lengths = self._edge_times()
        if rng is not None and random_factor > 1.0:
            lengths = lengths * rng.uniform(1.0, random_factor, len(lengths))
        best = {start: 0.0}
        back: dict[int, tuple[int, int]] = {}
        heap = [(0.0, start)]
        while heap:
            dist, edge = heapq.heappop(heap)
            if edge == goal:
                path: list[int] = []
                while edge != start:
                    prev, move = back[edge]
                    path = [move, edge] + path
                    edge = prev
                return path
            if dist > best.get(edge, np.inf):
                continue
            for to, move in moves.get(edge, []):
                d = dist + float(lengths[edge])
                if d < best.get(to, np.inf):
                    best[to] = d
                    back[to] = (edge, move)
                    heapq.heappush(heap, (d, to))
        return None

    def _edge_times(self) -> np.ndarray:
        """Free-flow travel time [s] of each edge: its length over its lanes' highest speed limit."""
        if self._times is None:
            net = self.network
            speed = np.full(len(net.edges), 0.1)
            np.maximum.at(speed, net.lane_edge, net.lane_speed_limit)
            self._times = net.edge_length / speed
        return self._times

    def _edge_moves(self) -> dict[int, list[tuple[int, int]]]:
        """Edge -> (edge it leads to, the movement's route key), from the lanes' turns."""
        if self._moves is None:
            net, moves = self.network, {}
            for lane in range(len(net.lanes)):
                if net.lane_is_link[lane]:
                    continue
                for k in range(net.lane_turn_ptr[lane], net.lane_turn_ptr[lane + 1]):
                    link = int(net.lane_turn[k])
                    to = int(net.lane_next[link])
                    if net.lane_is_link[link] and to >= 0:
                        moves.setdefault(int(net.lane_route_key[lane]), set()).add(
                            (int(net.lane_route_key[to]), int(net.lane_route_key[link])))
            self._moves = {e: sorted(m) for e, m in moves.items()}
        return self._moves

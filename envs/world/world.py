"""The twin's world: road network, actors and the vectorised physics step.

``World.step(dt)`` integrates every actor at once (physics clock, ``sim_hz``); humans'
behaviour models (IDM, MOBIL, gap acceptance) execute their current intents inside it.
``World.snapshot()`` returns the one structured state every other view is derived from.

The world owns the actors, its perception of them (leaders, gaps, conflict zones: what
``perceive`` computes), the operator controls and the step pipeline; the parts that own
state of their own live beside it: the signal plan (``envs.world.signals``), demand and
spawning (``envs.world.demand``), lane changes (``envs.world.lane_change``) and pedestrians
(``envs.world.pedestrians``), and collisions (``envs.world.collisions``).

About 440 lines: the actor columns, their perception and the operator controls all read and
write the same arrays every step, and keeping them in one class keeps the step pipeline
readable in one place.
"""

from __future__ import annotations

import copy
from collections import Counter
from typing import NamedTuple

import numpy as np

from envs import kernels
from envs.kernels import KEY_SCALE
from envs.actors import (
    APPROACH,
    DEPART,
    HIT,
    HUMAN,
    ROUTE_END,
    ROUTE_HOPS,
    TYPE_INDEX,
    VEHICLE_TYPES,
    WAIT,
    Pedestrians,
    Vehicles,
)
from envs.faults import FaultInjector
from envs.layouts import build_network
from envs.network import Network
from envs.scenario import FRICTION_RANGE, WorldConfig, Spread
from envs.state import WorldState
from envs.world import collisions, demand, lane_change, pedestrians
from envs.world.detectors import DetectorBank
from envs.world.events import WorldEvent
from envs.world.signals import PHASE_SUFFIXES, ProgramPlan, SignalPlan  # noqa: F401  (PHASE_SUFFIXES: re-exported)

LOOKAHEAD_M = 200.0  # [m] drivers search leaders and conflict zones this far ahead (a braking distance at 30 m/s)...
LOOKAHEAD_MIN_HOPS = 3  # ...and at least this many lanes ahead...
LOOKAHEAD_HOPS = 16  # ...and at most this many
LINK_LEADER_HOPS = 4  # lanes ahead in which drivers look for vehicles on junction links that share their road
STOP_MARGIN = 1.0  # [m] stopping point before a stop line or crosswalk
MERGE_ROOM = 15.0  # [m] drivers wait this far before the end of an ending lane for a gap
AMBER_STOP_DECEL = 3.5  # [m/s^2] drivers stop at amber if they can within this deceleration
YIELD_STOP_DECEL = 5.0  # [m/s^2] drivers wait at a junction's line if they can stop within this deceleration (else they go)
YIELD_GAP_MARGIN_S = 1.0  # [s] a yielding driver goes when it clears the link this long before a priority vehicle
STANDING_MPS = 0.1  # [m/s] a vehicle slower than this stands
STUCK_REPORT_S = 300.0  # [s] a vehicle standing this long is reported stuck (SUMO's time-to-teleport)
EXIT_QUEUE_MPS = 2.0  # [m/s] a vehicle this slow at the start of a junction's exit lane keeps others out of the junction
GIVE_UP_WAITING_S = 20.0  # [s] a driver standing at a lane's end for a lane change gives up after this and drives on
WAITING_NEAR_END_M = 10.0  # [m] beyond the merge room: where a driver's wait for a lane change counts
COURTESY_REACH_M = 60.0  # [m] a slow driver this near the end of a lane it must leave gets a gap made...
COURTESY_SLOW_MPS = 3.0  # [m/s] ...when slower than this...
COURTESY_ROOM_M = 3.0  # [m] ...by the follower in the target lane stopping this far behind it
IMPATIENCE_S = 60.0  # [s] after standing this long a yielding driver accepts gaps without the margin
JUNCTION_REACH_M = 120.0  # [m] drivers heed the junction links (signals, yielding) within this distance ahead
CRASH_CLEAR_S = 30.0  # [s] a crashed background vehicle is towed after this time
SPEED_PREVIEW_S = 3.0  # [s] how far ahead drivers look for a lower speed limit
LATERAL_COMFORT = 2.0  # [m/s^2] lateral acceleration drivers accept in a curve
CURVE_APPROACH_DECEL = 1.5  # [m/s^2] deceleration drivers plan for before a curve
META_SPEED_GAIN = 1.0 / 0.6  # [1/s] speed tracking gain of RL meta-action drivers
GRAVITY = 9.81  # [m/s^2]
DRY_FRICTION = 0.8  # tyre-road friction of dry asphalt; drivers brake less hard on anything slicker




class Perception(NamedTuple):
    """What is perceived at one moment: each vehicle's leader row (-1 none) and gap [m], its
    distance [m] to each crossing's conflict zone and whether it is past it, the time gap [s]
    each crossing offers, the lane each vehicle enters at the end of its own (-1 none), and
    the lanes it looks ahead on with its station [m] on each (-1: no more lanes)."""

    leader: np.ndarray
    leader_gap: np.ndarray
    zone_distance: np.ndarray
    past_zone: np.ndarray
    crossing_gap: np.ndarray
    next_lane: np.ndarray
    hop_lane: np.ndarray
    hop_s: np.ndarray


def _sample(rng: np.random.Generator, spread: Spread, low: float, high: float) -> float:
    """One draw of ``spread`` clipped to [low, high] (as ``np.clip``, without its dispatch)."""
    return float(min(max(rng.normal(spread.mean, spread.sd), low), high))


_NETWORKS: dict[str, Network] = {}


def _network_for(config: WorldConfig) -> Network:
    """A private copy of the scenario's network, built once per distinct config."""
    key = config.network.model_dump_json() + config.demand.model_dump_json()
    if key not in _NETWORKS:
        if len(_NETWORKS) > 32:
            _NETWORKS.clear()
        _NETWORKS[key] = build_network(config)
    return _NETWORKS[key].copy()


class World:
    """One running instance of the twin."""

    def __init__(self, config: WorldConfig, seed: int | None = None, populate: bool = True) -> None:
        self.config = config
        self.network = _network_for(config)
        self.seed = config.seed if seed is None else seed  # this world's own random stream
        self.rng = np.random.default_rng(self.seed)
        self.dt = 1.0 / config.sim_hz
        self._no_lanes = np.zeros(len(self.network.lanes), dtype=bool)
        self.has_links = bool(self.network.lane_is_link.any())  # an imported network: junction links, trips
        self.changes_needed = np.zeros(0, dtype=np.int64)  # per vehicle (imported networks): lane changes its route needs
        self.departed_at: dict[int, tuple[float, str]] = {}  # vehicle id -> when [s] it departed, on which trip
        self.travel_times: list[float] = []  # [s] of the trips that arrived
        self.travel_trips: list[str] = []  # the trip (vehicle or flow id) of each of them
        self._curve_speed = np.sqrt(LATERAL_COMFORT / np.maximum(self.network.lane_max_curvature, 1e-6))
        self.time = 0.0
        self.vehicles = Vehicles()
        self.pedestrians = Pedestrians()
        self.events: list[WorldEvent] = []
        self._next_id = 0
        self.stats: Counter[str] = Counter()  # vehicles/pedestrians entered, exited, crossed; waits [s]
        self.arrivals = demand.Arrivals(self.network, config.demand, self.rng)
        self.routes = demand.Routes(self.network)  # routes longer than the vehicles' route columns
        self.schedule = demand.Schedule(self.network, config.demand, self.rng) if self.network.trips else None
        self.detectors = DetectorBank(self.network.detectors) if self.network.detectors else None
        # [m/s] the limit in force per lane: the posted one (network.lane_speed_limit), or a lower variable limit
        self.lane_speed_limit = self.network.lane_speed_limit.copy()
        self.variable_speed_limit: float | None = None  # [m/s] set by an operator
        self.lane_closed = np.zeros(len(self.network.lanes), dtype=bool)
        self.signals = ProgramPlan(self.network) if self.has_links else SignalPlan(self.network)
        self.group_state = self.signals.group_state  # [per signal group] GREEN / AMBER / RED now (the plan's array)
        self.crossing_signal = self.signals.crossing_signal  # [per pedestrian head] WALK / FLASHING / DONT_WALK
        self.occupied = np.zeros(len(self.network.crossings), dtype=bool)
        self.crossing_gap = np.full(len(self.network.crossings), np.inf)
        self.perceived_gap = np.zeros(0)  # [m] per vehicle: the leader gap its own sensor reports
        self.next_lane = np.zeros(0, dtype=np.int64)  # per vehicle: the lane it enters at the end of its own
        self._sensor_rng = np.random.default_rng([self.seed, 104729])
        self.faults = FaultInjector(config.faults, self)
        self.friction = config.road_friction  # tyre-road friction coefficient (set_friction changes it)
        self.perceive()
        self.placed_ids: list[int] = []  # ids of the scenario's actors: (placed at reset), in order
        if populate:
            self.placed_ids = demand.place_actors(self, config.actors)
            self.place_controlled(config.ego.controlled, config.ego.action)
            self.populate(config.demand.vehicles)

    # ---- adding actors ------------------------------------------------------------------
    def place_controlled(self, count: int, action: str = "meta") -> list[int]:
        """Place ``count`` RL-driven vehicles near the start of the network's inlets (``envs.world.demand``)."""
        return demand.place_controlled(self, count, action)

    def populate(self, count: int) -> None:
        """Place ``count`` background vehicles on the network's long lanes, safely spaced (``envs.world.demand``)."""
        demand.populate(self, count)

    def new_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    def add_vehicle(self, lane: int, s: float, v: float = 0.0, vtype: str = "car", driver: int = HUMAN, **params) -> int:
        """Add a vehicle on ``lane`` at station ``s`` [m] with speed ``v`` [m/s]; returns its id.

        Behaviour parameters not given are drawn from the scenario's driver distributions.
        """
        vid = self.append_vehicle(lane, s, v, vtype, driver, **params)
        self.refresh_world_coords()
        self.perceive()
        return vid

    def append_vehicle(self, lane: int, s: float, v: float, vtype: str, driver: int, **params) -> int:
        t = VEHICLE_TYPES[TYPE_INDEX[vtype]]
        beh = self.config.drivers
        rng = self.rng
        values = dict(
            speed_factor=_sample(rng, beh.desired_speed_factor, 0.5, 1.5),
            headway=_sample(rng, beh.time_headway_s, 0.6, 3.5),
            min_gap=_sample(rng, beh.min_gap_m, 1.0, 5.0),
            politeness=_sample(rng, beh.politeness, 0.0, 1.0),
            reaction_time=_sample(rng, beh.reaction_time_s, 0.1, 1.5),
            compliance=beh.signal_compliance,
            amber_decel=AMBER_STOP_DECEL,
        )
        values.update(params)
        values["runs_red"] = bool(rng.random() >= values["compliance"])
        vid = self.new_id()
        net = self.network
        self.vehicles.append(
            id=vid, vtype=TYPE_INDEX[vtype], driver=driver, lane=lane, target_lane=lane, s=s,
            d=net.lane_offset[lane], v=v, cmd_speed=v, length=t.length, width=t.width, wheelbase=t.wheelbase,
            v_max=t.v_max, brake_limit=np.inf, forced_accel=np.nan, waiting_since=np.nan, **self._grip(t), **values,
        )
        self.stats["vehicles_entered"] += 1
        return vid

    def append_vehicles(self, lanes: np.ndarray, s: np.ndarray, v: np.ndarray, vtypes: list[str], driver: int,
                        **params: np.ndarray) -> np.ndarray:
        """Add many vehicles at once (``append_vehicle`` one by one costs a call each), every
        driver's parameters given (``speed_factor``, ``headway``, ``min_gap``, ``politeness``,
        ``reaction_time``, ``compliance``: arrays or scalars; nothing is drawn but who runs a
        red light, from ``compliance``). Returns their ids. The caller perceives afterwards."""
        n = len(lanes)
        if not n:
            return np.zeros(0, dtype=np.int64)
        missing = {"speed_factor", "headway", "min_gap", "politeness", "reaction_time", "compliance"} - params.keys()
        if missing:
            raise KeyError(f"append_vehicles needs every driver parameter: {sorted(missing)} missing")
        types = [VEHICLE_TYPES[TYPE_INDEX[t]] for t in vtypes]
        grips = [self._grip(t) for t in types]
        lanes = np.asarray(lanes, dtype=np.int64)
        ids = np.arange(self._next_id, self._next_id + n, dtype=np.int64)
        self._next_id += n
        compliance = np.broadcast_to(np.asarray(params["compliance"], float), (n,))
        self.vehicles.extend(
            n, id=ids, vtype=[TYPE_INDEX[t] for t in vtypes], driver=driver, lane=lanes, target_lane=lanes, s=s,
            d=self.network.lane_offset[lanes], v=v, cmd_speed=v, length=[t.length for t in types],
            width=[t.width for t in types], wheelbase=[t.wheelbase for t in types], v_max=[t.v_max for t in types],
            brake_limit=np.inf, forced_accel=np.nan, waiting_since=np.nan,
            **{k: [g[k] for g in grips] for k in ("a_max", "b_max", "b_comf")},
            amber_decel=AMBER_STOP_DECEL, runs_red=self.rng.random(n) >= compliance, **params)
        self.stats["vehicles_entered"] += n
        return ids

    def set_route(self, vehicle_id: int, edges: list[int], destination: int = -1, perceive: bool = True) -> None:
        """Make a vehicle follow ``edges``: the route keys (``Network.lane_route_key``: an edge,
        or on an imported network a junction movement) of the lanes it enters at its next lane
        ends, in order, of any length (``ROUTE_END`` last: it leaves the network there). Where a
        lane does not lead to the route's next key the vehicle takes the lane's ``next`` and, with
        a ``destination`` edge, is routed again from where it comes out (``envs.world.demand``)."""
        bad = [e for e in edges if not (0 <= e < self.network.route_key_count or e == ROUTE_END)]
        if bad:
            raise ValueError(f"edges {bad} are not in the network ({len(self.network.edges)} edges)")
        veh = self.vehicles
        row = veh.row(vehicle_id)
        keys = [e + 1 if e >= 0 else e for e in edges]
        veh.route[row] = 0
        veh.route[row, :min(len(keys), ROUTE_HOPS)] = keys[:ROUTE_HOPS]
        self.routes.set(vehicle_id, keys[ROUTE_HOPS:], destination)
        if perceive:  # (False: the caller perceives once after placing several vehicles)
            self.perceive()

    def add_pedestrian(self, path: np.ndarray, crossing: int, s: float = 0.0, jaywalker: bool = False, **params) -> int:
        """Add a pedestrian walking the 4-point ``path`` [m] over ``crossing``; returns its id."""
        beh = self.config.pedestrians
        rng = self.rng
        values = dict(
            speed=_sample(rng, beh.walking_speed_mps, 0.8, 2.5),
            critical_gap=_sample(rng, beh.critical_gap_s, 2.5, 12.0),
            compliance=beh.signal_compliance,
        )
        values.update(params)
        values["ignores_signal"] = bool(rng.random() >= values["compliance"])
        path = np.asarray(path, float)
        cum = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(path, axis=0).T))])
        pid = self.new_id()
        phase = APPROACH if s < cum[1] else WAIT
        self.pedestrians.append(id=pid, path=path, cum=cum, s=min(s, cum[1]), phase=phase, crossing=crossing,
                                jaywalker=jaywalker, **values)
        pedestrians.move(self, 0.0)
        pedestrians.decide(self, 0.0)
        self.stats["pedestrians_entered"] += 1
        return pid

    def clear_at(self, lane: int, s: float, length: float, v: float, headway: float, min_gap: float) -> bool:
        """Whether a vehicle fits at (lane, s) with safe gaps to the vehicles around it."""
        veh = self.vehicles
        same = (veh.lane == lane) | (veh.target_lane == lane)
        if not same.any():
            return True
        ds = veh.s[same] - s
        need_ahead = 0.5 * (veh.length[same] + length) + min_gap + v * headway
        need_behind = 0.5 * (veh.length[same] + length) + min_gap + veh.v[same] * headway
        ok = np.where(ds >= 0, ds > need_ahead, -ds > need_behind)
        return bool(ok.all())

    def legal_speed_limit(self) -> np.ndarray:
        """Per vehicle: the posted limit [m/s] where it is (lane limit, variable limit, speed zones)."""
        veh, net = self.vehicles, self.network
        limit = self.lane_speed_limit[veh.lane].copy()
        for k in range(len(net.speed_zone_lane)):
            inside = (veh.lane == net.speed_zone_lane[k]) & (veh.s >= net.speed_zone_from[k]) & (veh.s <= net.speed_zone_to[k])
            limit = np.where(inside, np.minimum(limit, net.speed_zone_limit[k]), limit)
        return limit

    def speed_limit_at(self, lane: int, s: float) -> float:
        net = self.network
        limit = float(self.lane_speed_limit[lane])
        if not len(net.speed_zone_lane):
            return limit
        hit = (net.speed_zone_lane == lane) & (net.speed_zone_from <= s) & (s <= net.speed_zone_to)
        return float(min(limit, net.speed_zone_limit[hit].min())) if hit.any() else limit

    # ---- physics --------------------------------------------------------------------
    def step(self, dt: float | None = None) -> list[WorldEvent]:
        """Advance the world by one physics step of ``dt`` [s]; returns the events it raised."""
        dt = self.dt if dt is None else dt
        n_events = len(self.events)
        self.faults.apply(self.time)
        self.signals.update(dt)
        self.perceive()
        pedestrians.decide(self, dt)
        self._longitudinal(dt)
        lane_change.decide(self, dt)
        before = (self.vehicles.id.copy(), self.vehicles.lane.copy(), self.vehicles.s.copy()) if self.detectors else None
        self._integrate_vehicles(dt)
        if before is not None:
            self.detectors.measure(self, dt, *before)
        if self.has_links:  # across a junction a vehicle follows its link's drawn path (SUMO's internal lane)
            self._keep_on_links()
        if self.routes.active:
            self.routes.follow(self)
        self._watch_standing(dt)
        pedestrians.move(self, dt)
        self.refresh_world_coords()
        collisions.detect(self)
        demand.spawn(self, dt)
        self._remove_finished()
        self.time += dt
        return self.events[n_events:]

    def advance(self, steps: int) -> list[WorldEvent]:
        """Run ``steps`` physics steps; returns all events raised."""
        events: list[WorldEvent] = []
        for _ in range(steps):
            events += self.step()
        return events

    # ---- operator controls and per-actor intents ------------------------------------
    VEHICLE_PARAMS = ("speed_factor", "headway", "min_gap", "politeness", "reaction_time", "compliance", "runs_red",
                      "amber_decel", "wish_left", "wish_right")
    PEDESTRIAN_PARAMS = ("speed", "critical_gap", "compliance", "ignores_signal")

    def _grip(self, t) -> dict[str, float]:
        """Acceleration limits [m/s^2] of vehicle type ``t`` on this road: tyres transmit at most
        friction x g, and drivers scale their comfortable braking with the friction below dry."""
        grip = self.friction * GRAVITY
        return {"a_max": min(t.a_max, grip), "b_max": min(t.b_max, grip),
                "b_comf": t.b_comf * min(1.0, self.friction / DRY_FRICTION)}

    def within_grip(self, row: int) -> None:
        """Bound the acceleration limits of the vehicle at ``row`` (given, e.g. by an imported
        vehicle type) by what the road's friction transmits, as ``_grip`` bounds a type's."""
        veh, grip = self.vehicles, self.friction * GRAVITY
        veh.a_max[row] = min(veh.a_max[row], grip)
        veh.b_max[row] = min(veh.b_max[row], grip)
        veh.b_comf[row] = min(veh.b_comf[row] * min(1.0, self.friction / DRY_FRICTION), veh.b_max[row])

    def reseed(self, seed: int) -> None:
        """Draw this world's randomness anew from ``seed`` from now on: arrivals, the choices of new
        drivers and pedestrians, and sensor noise (a future that differs where the twin is uncertain)."""
        self.rng.bit_generator.state = np.random.PCG64([seed, 1]).state  # shared by arrivals and the schedule
        self._sensor_rng.bit_generator.state = np.random.PCG64([seed, 2]).state

    def set_friction(self, friction: float) -> None:
        """Change the road's tyre-road friction coefficient (weather) for every vehicle, now and later."""
        if not FRICTION_RANGE[0] <= friction <= FRICTION_RANGE[1]:
            raise ValueError(f"road friction must be in {list(FRICTION_RANGE)}, not {friction}")
        self.friction = float(friction)
        veh = self.vehicles
        for r in range(len(veh)):
            for name, value in self._grip(VEHICLE_TYPES[veh.vtype[r]]).items():
                getattr(veh, name)[r] = value

    def set_vehicle_params(self, vehicle_id: int, **params: float) -> bool:
        """Set behaviour parameters of one vehicle (names in ``VEHICLE_PARAMS``); False if it has left."""
        return self._set_params(self.vehicles, self.VEHICLE_PARAMS, vehicle_id, params)

    def set_pedestrian_params(self, pedestrian_id: int, **params: float) -> bool:
        """Set behaviour parameters of one pedestrian (names in ``PEDESTRIAN_PARAMS``); False if gone."""
        return self._set_params(self.pedestrians, self.PEDESTRIAN_PARAMS, pedestrian_id, params)

    @staticmethod
    def _set_params(actors, allowed: tuple[str, ...], actor_id: int, params: dict) -> bool:
        unknown = set(params) - set(allowed)
        if unknown:
            raise KeyError(f"not settable behaviour parameters: {sorted(unknown)} (allowed: {allowed})")
        hits = np.flatnonzero(actors.id == actor_id)
        if not len(hits):
            return False
        for name, value in params.items():
            getattr(actors, name)[hits[0]] = value
        return True

    def set_speed_limit(self, limit_mps: float | None) -> None:
        """A variable speed limit [m/s] on every lane (``None`` lifts it); never above a lane's own limit."""
        self.variable_speed_limit = limit_mps
        limit = np.inf if limit_mps is None else limit_mps
        self.lane_speed_limit = np.minimum(self.network.lane_speed_limit, limit)

    def close_lane(self, lane: int, closed: bool = True) -> bool:
        """Close a lane to traffic (lane-control signal showing a red cross): no vehicle enters or
        changes into it, and drivers in it leave as soon as a gap allows. A lane without an open
        neighbour cannot be closed; returns whether the change was made."""
        net = self.network
        if closed:
            neighbours = [n for n in (net.lane_left[lane], net.lane_right[lane]) if n >= 0 and not self.lane_closed[n]]
            if not net.lane_change_ok[lane] or not neighbours:
                return False
        self.lane_closed[lane] = closed
        return True

    # perception: leaders, stop points, conflict zones
    def perceive(self) -> None:
        """Recompute what drivers and pedestrians perceive: each vehicle's leader and gap
        (``leader``, ``leader_gap`` [m], ``perceived_gap`` [m] through its sensor), the distance
        to every crossing's conflict zone ahead (``zone_distance`` [m], ``past_zone``) and the
        time gap each crossing offers (``crossing_gap`` [s]). Call after moving actors by hand."""
        (self._sorted_keys, self._sorted_lane, self._sorted_veh, self.leader, self.leader_gap, self.zone_distance,
         self.past_zone, self.crossing_gap, self.next_lane, self.hop_lane, self.hop_s) = self._perception()
        self.perceived_gap = self._sense_gaps()
        if self.has_links:  # imported networks: who must change lanes to stay on its route
            veh, net = self.vehicles, self.network
            self.changes_needed, self.change_side = kernels.lane_changes_needed(
                veh.lane, veh.route, net.lane_turn_ptr, net.lane_turn, net.lane_route_key, net.lane_left,
                net.lane_right)

    def _perception(self) -> tuple:
        veh, net = self.vehicles, self.network
        args = (veh.lane, veh.target_lane, veh.s, veh.d, veh.psi, veh.v, veh.length, veh.width, net.lane_offset,
                net.lane_width, net.lane_left, net.lane_right, veh.route, *net.turns, net.lane_s_to, net.lane_dead_end,
                net.zone_lane, net.zone_s_in, net.zone_s_out, net.zone_crossing, len(net.crossings), LOOKAHEAD_HOPS,
                KEY_SCALE, LOOKAHEAD_MIN_HOPS, LOOKAHEAD_M)
        if not self.has_links:
            return kernels.perception(*args)
        # junction links sharing a start or an end, lane changes and courtesy: leaders across them
        return kernels.network_perception(*args, net.lane_s_from, net.link_peer_ptr, net.link_peer,
                                          net.link_peer_merges, LINK_LEADER_HOPS, veh.b_comf, veh.courtesy_for,
                                          veh.courtesy_until, self.time, veh.id)

    def perception_now(self) -> "Perception":
        """Leaders, gaps [m] and zone distances [m] at the actors' positions and lane targets
        now. The drivers' own perception (``leader``, ``leader_gap``, ...) is taken at the start
        of a step, before it moves them; this one is taken when asked (a snapshot), so a
        snapshot pairs gaps with the positions and speeds it shows. Computing it (about 9 µs
        for 60 vehicles) changes nothing in the world."""
        return Perception(*self._perception()[3:])  # leaders ... the next lanes

    def _sense_gaps(self) -> np.ndarray:
        """The leader gap [m] each vehicle's forward sensor reports: the truth (the same array)
        unless a sensor fault is injected (dropout reports no leader, noise adds N(0, sd))."""
        veh = self.vehicles
        if not kernels.any_sensor_fault(veh.sensor_dropout, veh.gap_noise_sd):
            return self.leader_gap
        noise = self._sensor_rng.normal(0.0, 1.0, len(veh)) * veh.gap_noise_sd
        sensed = np.where(np.isfinite(self.leader_gap), np.maximum(self.leader_gap + noise, 0.0), self.leader_gap)
        return np.where(veh.sensor_dropout, np.inf, sensed)

    def query_ahead(self, lane: np.ndarray, s: np.ndarray) -> np.ndarray:
        """Row of the nearest vehicle strictly ahead of station ``s`` on ``lane`` (-1 if none)."""
        return kernels.query(self._sorted_keys, self._sorted_lane, self._sorted_veh, lane, s, KEY_SCALE, True)

    def query_behind(self, lane: np.ndarray, s: np.ndarray) -> np.ndarray:
        """Row of the nearest vehicle strictly behind station ``s`` on ``lane`` (-1 if none)."""
        return kernels.query(self._sorted_keys, self._sorted_lane, self._sorted_veh, lane, s, KEY_SCALE, False)

    def stop_distance(self, seen: "Perception | None" = None) -> np.ndarray:
        """Per vehicle: distance [m] from the front bumper to where it must stop (inf if nowhere).

        Red (and stoppable amber) signals, dead ends, and crosswalks with a pedestrian on them,
        as ``seen`` (default: the drivers' own perception, taken at the start of the step).
        """
        return np.minimum(*self.stops(seen))

    def stops(self, seen: "Perception | None" = None) -> tuple[np.ndarray, np.ndarray]:
        """Per vehicle, the distances [m] of :meth:`stop_distance` in two parts: where it must
        stop, and (imported networks; inf elsewhere) the end of a lane it must leave, a dead end
        or a lane that does not lead on along its route, which drivers near at a safe speed."""
        veh, net = self.vehicles, self.network
        zone_distance, next_lane, hop_lane, hop_s = (self.zone_distance, self.next_lane, self.hop_lane, self.hop_s) \
            if seen is None else (seen.zone_distance, seen.next_lane, seen.hop_lane, seen.hop_s)
        stop = kernels.stop_distances(veh.lane, veh.target_lane, veh.s, veh.v, veh.length, veh.runs_red,
                                      net.lane_signal_group, net.lane_s_to, net.lane_dead_end, self.group_state,
                                      zone_distance, net.zone_crossing, self.occupied, STOP_MARGIN, veh.amber_decel,
                                      AMBER_STOP_DECEL, next_lane, self.junction_busy(), MERGE_ROOM,
                                      not self.has_links)
        if not (self.has_links and len(veh)):
            return stop, np.full(len(veh), np.inf)
        # dead ends; junction links: signals, foes on them, yielding. A driver whose lane does not
        # lead on along its route waits short of its end (room to steer out) for a gap, as a SUMO
        # driver does; not once it has begun to change (one change to make; facing more, a driver
        # drives on, misses its turn and is routed again); who waits longer than
        # GIVE_UP_WAITING_S near that end gives up. The follower beside it makes room (courtesy).
        route_waiting = seen is None and len(self.changes_needed) == len(veh)
        needed, side = (self.changes_needed, self.change_side) if route_waiting else (np.zeros(0, np.int64),) * 2
        lane_end = kernels.network_stops(
            stop, veh.lane, veh.target_lane, veh.s, veh.v, 0.5 * veh.length, veh.a_max, veh.b_comf, veh.runs_red,
            veh.amber_decel, veh.standing_s, veh.min_gap, veh.waiting_since, hop_lane, hop_s, self._sorted_keys,
            self._sorted_lane, self._sorted_veh, needed, side, self.time, route_waiting, net.lane_s_from,
            net.lane_s_to, net.lane_dead_end, net.lane_is_link, net.lane_entry_group, net.lane_next, net.lane_left,
            net.lane_right, net.foe_ptr, net.foe_lane, net.response_ptr, net.response_lane, self.group_state,
            self.signals.must_yield(), STOP_MARGIN, MERGE_ROOM, YIELD_STOP_DECEL, YIELD_GAP_MARGIN_S,
            JUNCTION_REACH_M, IMPATIENCE_S, EXIT_QUEUE_MPS, WAITING_NEAR_END_M, GIVE_UP_WAITING_S, KEY_SCALE,
            COURTESY_REACH_M, COURTESY_SLOW_MPS, COURTESY_ROOM_M)
        return stop, lane_end

    def _exit_tails(self) -> tuple[np.ndarray, np.ndarray]:
        """Per lane: room [m] behind its rearmost vehicle, and that vehicle's speed [m/s]."""
        veh = self.vehicles
        return kernels.lane_tails(self._sorted_keys, self._sorted_lane, self._sorted_veh, veh.s, 0.5 * veh.length,
                                  veh.v, self.network.lane_s_from)

    def junction_busy(self) -> np.ndarray:
        """Per lane: a junction lane that crosses one a vehicle is on now (drivers wait for it to clear)."""
        net = self.network
        if not len(self.group_state) or self.has_links:  # (imported networks: the links' foes, in stop_distance)
            return self._no_lanes
        used = np.zeros(len(net.lanes), dtype=bool)
        used[self.vehicles.lane] = True
        return (net.lane_conflicts & used[None, :]).any(axis=1)

    def speed_limit(self) -> np.ndarray:
        """Per vehicle: the speed [m/s] allowed by limits and curves from here to a few seconds ahead."""
        veh, net = self.vehicles, self.network
        return kernels.speed_limits(veh.lane, veh.s, veh.v, veh.length, self.lane_speed_limit, self._curve_speed,
                                    self.next_lane, net.lane_s_to, net.speed_zone_lane, net.speed_zone_from,
                                    net.speed_zone_to, net.speed_zone_limit, SPEED_PREVIEW_S, CURVE_APPROACH_DECEL)

    # pedestrians
    # vehicles
    def _longitudinal(self, dt: float) -> None:
        """New accelerations: what each driver's behaviour model alone would do given the true
        surroundings (``a_expected``, carried forward in ``a_model`` with the driver's
        reaction lag), then what the driver does with injected faults."""
        veh = self.vehicles
        limit, (stop, lane_end) = self.speed_limit(), self.stops()

        # Krauss drivers' dawdling draws (none drawn in a world without them: its random stream stays)
        dawdle = self.rng.random(len(veh)) if veh.krauss.any() else np.zeros(len(veh))

        def command(a: np.ndarray, gap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return kernels.accelerations(
                veh.v, a, veh.speed_factor, limit, veh.v_max, veh.headway, veh.min_gap, veh.a_max, veh.b_comf,
                veh.b_max, veh.reaction_time, self.leader, gap, stop, lane_end, veh.driver, veh.cmd_speed,
                veh.cmd_accel, veh.crashed, dt, META_SPEED_GAIN, veh.a, veh.krauss, veh.sigma, dawdle)

        faulty = self.perceived_gap is not self.leader_gap or kernels.any_fault(veh.brake_limit, veh.forced_accel,
                                                                                 veh.a_model, veh.a)
        expected, self.idm_accel = command(veh.a_model, self.leader_gap)
        veh.a_expected = expected
        veh.a_model = expected.copy()
        if not faulty:
            veh.a = expected.copy()
            return
        veh.a, self.idm_accel = command(veh.a, self.perceived_gap)
        forced = ~np.isnan(veh.forced_accel) & ~veh.crashed
        veh.a = np.where(forced, veh.forced_accel, veh.a)
        veh.a = np.maximum(veh.a, -veh.brake_limit)

    def _integrate_vehicles(self, dt: float) -> None:
        veh, net = self.vehicles, self.network
        ran_red = kernels.integrate(
            dt, veh.lane, veh.target_lane, veh.s, veh.d, veh.psi, veh.v, veh.a, veh.steer, veh.kappa, veh.wheelbase,
            veh.length, veh.driver, veh.cmd_steer, veh.crashed, veh.odometer, veh.a_model, veh.a_expected,
            net.lane_offset, net.lane_left, net.lane_right, net.lane_s_from, net.lane_s_to, veh.route, *net.turns,
            net.lane_signal_group, self.group_state, net.lane_dead_end, net.lane_entry_group)
        for r in ran_red:
            self.events.append(WorldEvent("red_light", self.time, (int(veh.id[r]),), float(veh.x[r]), float(veh.y[r])))

    def _watch_standing(self, dt: float) -> None:
        """Count how long each vehicle has stood still; one ``stuck`` event, with its cause, when
        a vehicle reaches ``STUCK_REPORT_S`` (SUMO would teleport it then; the twin reports it)."""
        veh = self.vehicles
        if not len(veh):
            return
        for r in kernels.count_standing(veh.v, veh.standing_s, dt, STANDING_MPS, STUCK_REPORT_S):
            self.events.append(WorldEvent("stuck", self.time, (int(veh.id[r]),), float(veh.x[r]), float(veh.y[r]),
                                          self.waiting_cause(int(r))))

    def waiting_cause(self, row: int) -> str:
        """What the standing vehicle at ``row`` waits for: ``crashed``, ``queue`` (behind a
        standing vehicle), ``red signal``, ``lane change`` (its lane does not lead on along its
        route), ``junction`` (a foe on its link, or priority traffic), else ``unknown``."""
        veh, net = self.vehicles, self.network
        if veh.crashed[row]:
            return "crashed"
        lead = self.leader[row] if row < len(self.leader) else -1
        if lead >= 0 and self.leader_gap[row] < 10.0 and veh.v[lead] < STANDING_MPS:
            return "queue"
        if row < len(self.changes_needed) and self.changes_needed[row] > 0:
            return "lane change"
        hops = self.hop_lane[row] if row < len(self.hop_lane) else []
        for ln in hops[1:4]:
            if ln < 0:
                break
            group = net.lane_entry_group[ln] if net.lane_is_link[ln] else -1
            if group >= 0 and len(self.group_state) and self.group_state[group] != 0:
                return "red signal"
            if net.lane_is_link[ln]:
                return "junction"
        group = net.lane_signal_group[veh.lane[row]]
        if group >= 0 and len(self.group_state) and self.group_state[group] != 0:
            return "red signal"
        return "unknown"

    def _keep_on_links(self) -> None:
        veh, net = self.vehicles, self.network
        kernels.keep_on_links(veh.lane, veh.d, veh.psi, net.lane_is_link, net.lane_offset)

    def refresh_world_coords(self) -> None:
        veh, net = self.vehicles, self.network
        if not len(veh):
            return
        veh.x, veh.y, cos_h, sin_h, veh.kappa = kernels.placement(
            net.chain_s, net.chain_table, net.edge_chain_offset, net.edge_length, net.lane_edge, veh.lane, veh.s, veh.d)
        veh.heading = np.arctan2(sin_h, cos_h) + veh.psi  # numpy's arctan2, not libm's: the same bits as always

    # demand
    def _remove_finished(self) -> None:
        veh, ped, net = self.vehicles, self.pedestrians, self.network
        if len(veh):
            gone, exited = kernels.departed(veh.lane, veh.s, veh.driver, veh.crashed, veh.crash_time, self.time,
                                            CRASH_CLEAR_S, net.lane_s_to, net.lane_next, net.lane_dead_end, veh.route)
            if gone.any():
                self.stats["vehicles_exited"] += exited
                if self.departed_at:
                    for vid in veh.id[gone & veh.crashed].tolist():  # towed away: not arrived
                        self.departed_at.pop(vid, None)
                        self.routes.stranded_ids.discard(vid)
                    for vid in veh.id[gone & ~veh.crashed].tolist():
                        start = self.departed_at.pop(vid, None)
                        if vid in self.routes.stranded_ids:  # left the network off its route: not arrived
                            self.routes.stranded_ids.discard(vid)
                            self.stats["vehicles_left_off_route"] += 1
                        elif start is not None:
                            self.travel_times.append(self.time - start[0])
                            self.travel_trips.append(start[1])
                veh.keep(~gone)
                self.perceive()
        if len(ped):
            done = ((ped.phase == DEPART) & (ped.s >= ped.cum[:, 3])) | (ped.phase == HIT)
            if done.any():
                for c in set(ped.crossing[done & ped.jaywalker].tolist()):
                    net.crossings[c].zones = []
                    net.rebuild_zones()
                ped.keep(~done)
                if len(net.zone_lane) != self.zone_distance.shape[1]:
                    self.perceive()

    # ---- views ----------------------------------------------------------------------
    # ---- saved state: forks from any moment ---------------------------------------------------
    def get_state(self) -> "World":
        """A saved copy of everything that changes while this world runs: actors, perception,
        signals, demand with its queues and random streams, faults, detectors, clocks, events.
        ``set_state`` on this world or another of the same config makes it step on bit for bit
        as this one does from here. The config and the network's fixed parts are shared (the
        network's crossings, which jaywalkers add to, are copied); the run's history lists
        (events, travel times) are copied flat, so saving costs the same at any tick."""
        return copy.deepcopy(self, self._fork_memo(self))

    @classmethod
    def from_state(cls, state: "World") -> "World":
        """A new world that is the one saved in ``state`` (a fork of it)."""
        world = cls.__new__(cls)
        world.set_state(state)
        return world

    def set_state(self, state: "World") -> None:
        """Become the world saved in ``state`` (by ``get_state``); ``state`` stays usable for more forks.
        A world built from another config refuses it (``World.from_state`` makes a new one of any)."""
        if self.__dict__ and self.config != state.config:
            raise ValueError(f"set_state: the saved world is of scenario {state.config.name!r} with another config "
                             f"than this one ({self.config.name!r}); build the fork from the saved world's config")
        memo = self._fork_memo(state)
        memo[id(state)] = self  # what refers to the saved world (its fault injector) refers to this one
        restored = copy.deepcopy(state.__dict__, memo)
        self.__dict__.clear()
        self.__dict__.update(restored)

    @staticmethod
    def _fork_memo(world: "World") -> dict[int, object]:
        """deepcopy's memo for saving or restoring ``world``: shared config, a copied network, flat
        copies of the append-only histories."""
        net = world.network
        memo: dict[int, object] = {id(world.config): world.config, id(net): net.copy()}
        for fixed in (net.trips, net.lanes, net.edges):  # never changed while running: shared
            memo[id(fixed)] = fixed
        histories = [world.events, world.travel_times, world.travel_trips]
        if world.detectors is not None:
            histories.append(world.detectors.rows)  # one finished dict per detector and period
        for history in histories:
            memo[id(history)] = list(history)
        return memo

    def snapshot(self) -> WorldState:
        """The structured state of the world now (copies of everything that changes; safe to keep)."""
        return WorldState.capture(self)

"""The twin's world: road network, actors, signals and the vectorised physics step.

``World.step(dt)`` integrates every actor at once (physics clock, ``sim_hz``); humans'
behaviour models (IDM, MOBIL, gap acceptance) execute their current intents inside it.
``World.snapshot()`` returns the one structured state every other view is derived from.
"""

from __future__ import annotations

import logging

from collections import Counter
from dataclasses import dataclass

import numpy as np

from envs import behaviour, kernels
from envs.actors import (
    APPROACH,
    CONTINUOUS,
    CROSS,
    DEPART,
    HIT,
    HUMAN,
    META,
    PEDESTRIAN_RADIUS,
    TYPE_INDEX,
    VEHICLE_TYPES,
    WAIT,
    Pedestrians,
    Vehicles,
)
from envs.faults import FaultInjector
from envs.layouts import build_network
from envs.network import DONT_WALK, GREEN, WALK, Crossing, Network
from envs.scenario import FRICTION_RANGE, WorldConfig, Spread
from envs.state import WorldState
from envs.world.signals import PHASE_SUFFIXES, SignalPlan  # noqa: F401  (PHASE_SUFFIXES: re-exported)

KEY_SCALE = 1.0e5  # [m] lane index multiplier in sort keys (longer than any lane)
LOOKAHEAD_HOPS = 3  # lanes searched ahead for leaders and conflict zones
STOP_MARGIN = 1.0  # [m] stopping point before a stop line or crosswalk
MERGE_ROOM = 15.0  # [m] drivers wait this far before the end of an ending lane for a gap
AMBER_STOP_DECEL = 3.5  # [m/s^2] drivers stop at amber if they can within this deceleration
CRASH_CLEAR_S = 30.0  # [s] a crashed background vehicle is towed after this time
SPEED_PREVIEW_S = 3.0  # [s] how far ahead drivers look for a lower speed limit
LATERAL_COMFORT = 2.0  # [m/s^2] lateral acceleration drivers accept in a curve
CURVE_APPROACH_DECEL = 1.5  # [m/s^2] deceleration drivers plan for before a curve
META_SPEED_GAIN = 1.0 / 0.6  # [1/s] speed tracking gain of RL meta-action drivers
DECISION_PERIOD_S = 1.0  # [s] between lane-change decisions of a human driver
CLOSED_LANE_WISH = 3.0  # [m/s^2] MOBIL bonus for leaving a closed lane
BACKLOG_CAP = 5  # vehicles waiting to enter at an inlet before arrivals are dropped
GRAVITY = 9.81  # [m/s^2]
DRY_FRICTION = 0.8  # tyre-road friction of dry asphalt; drivers brake less hard on anything slicker


log = logging.getLogger(__name__)
_SHORTFALLS_TOLD: set[tuple[str, int]] = set()  # (network kind, vehicles asked for) already reported


@dataclass
class WorldEvent:
    """Something that happened in one physics step: ``collision``, ``off_road`` or ``red_light``."""

    kind: str
    time: float  # [s]
    actors: tuple[int, ...]
    x: float  # [m]
    y: float  # [m]


def _sample(rng: np.random.Generator, spread: Spread, low: float, high: float) -> float:
    return float(np.clip(rng.normal(spread.mean, spread.sd), low, high))


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
        self._curve_speed = np.sqrt(LATERAL_COMFORT / np.maximum(self.network.lane_max_curvature, 1e-6))
        self.time = 0.0
        self.vehicles = Vehicles()
        self.pedestrians = Pedestrians()
        self.events: list[WorldEvent] = []
        self._next_id = 0
        self.stats: Counter[str] = Counter()  # vehicles/pedestrians entered, exited, crossed; waits [s]
        self._backlog = np.zeros(len(self.network.inlets))
        rates = [inlet.rate for inlet in self.network.inlets] + [config.demand.pedestrians_per_hour / 3600.0]
        self._arrival_rates = np.maximum(np.array(rates), 1e-12)  # [1/s] vehicles per inlet, then pedestrians
        self._next_arrival = self.rng.exponential(1.0 / self._arrival_rates)  # [s]
        mix = config.demand.mix
        mix_p = np.array([mix.car, mix.truck, mix.bus])
        self._mix = mix_p / mix_p.sum() if mix_p.sum() > 0 else np.array([1.0, 0.0, 0.0])
        self._mix_cumulative = np.cumsum(self._mix)
        # [m/s] the limit in force per lane: the posted one (network.lane_speed_limit), or a lower variable limit
        self.lane_speed_limit = self.network.lane_speed_limit.copy()
        self.variable_speed_limit: float | None = None  # [m/s] set by an operator
        self.lane_closed = np.zeros(len(self.network.lanes), dtype=bool)
        self.signals = SignalPlan(self.network)
        self.group_state = self.signals.group_state  # [per signal group] GREEN / AMBER / RED now (the plan's array)
        self.crossing_signal = self.signals.crossing_signal  # [per pedestrian head] WALK / FLASHING / DONT_WALK
        self.occupied = np.zeros(len(self.network.crossings), dtype=bool)
        self.crossing_gap = np.full(len(self.network.crossings), np.inf)
        self.perceived_gap = np.zeros(0)  # [m] per vehicle: the leader gap its own sensor reports
        self._sensor_rng = np.random.default_rng([self.seed, 104729])
        self.faults = FaultInjector(config.faults, self)
        self.friction = config.road_friction  # tyre-road friction coefficient (set_friction changes it)
        self._perceive()
        if populate:
            self.place_controlled(config.ego.controlled, config.ego.action)
            self.populate(config.demand.vehicles)

    # ---- adding actors ------------------------------------------------------------------
    def new_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    def add_vehicle(self, lane: int, s: float, v: float = 0.0, vtype: str = "car", driver: int = HUMAN, **params) -> int:
        """Add a vehicle on ``lane`` at station ``s`` [m] with speed ``v`` [m/s]; returns its id.

        Behaviour parameters not given are drawn from the scenario's driver distributions.
        """
        vid = self._append_vehicle(lane, s, v, vtype, driver, **params)
        self._refresh_world_coords()
        self._perceive()
        return vid

    def _append_vehicle(self, lane: int, s: float, v: float, vtype: str, driver: int, **params) -> int:
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
            v_max=t.v_max, brake_limit=np.inf, forced_accel=np.nan, **self._grip(t), **values,
        )
        self.stats["vehicles_entered"] += 1
        return vid

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
        self._move_pedestrians(0.0)
        self._decide_pedestrians(0.0)
        self.stats["pedestrians_entered"] += 1
        return pid

    def place_controlled(self, count: int, action: str = "meta") -> list[int]:
        """Place ``count`` RL-driven vehicles near the start of the network's inlets."""
        driver = META if action == "meta" else CONTINUOUS
        lanes = self._controlled_lanes()
        ids = []
        for k in range(count):
            for _ in range(200):
                lane = int(lanes[self.rng.integers(len(lanes))])
                s = self.network.lane_s_from[lane] + float(self.rng.uniform(20.0, 100.0))
                v = min(self.lane_speed_limit[lane] * 0.8, 15.0)
                if self._clear(lane, s, 4.5, v, 1.5, 2.0):
                    ids.append(self.add_vehicle(lane, s, v, driver=driver, speed_factor=1.0))
                    break
            else:
                raise RuntimeError(f"no room to place controlled vehicle {k}")
        self.controlled_ids = ids
        return ids

    def _controlled_lanes(self) -> np.ndarray:
        net = self.network
        wanted = self.config.ego.movement
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

    def populate(self, count: int) -> None:
        """Place ``count`` background vehicles on the network's long lanes, safely spaced."""
        net = self.network
        length = net.lane_s_to - net.lane_s_from
        usable = (length >= 60.0) & ~net.lane_dead_end
        is_connector = np.array([ln.edge >= 0 and net.edge_length[ln.edge] < 60.0 for ln in net.lanes])
        usable &= ~is_connector
        # skip the on-ramp: vehicles there would all arrive at the merge together
        usable &= ~((net.lane_next >= 0) & net.lane_dead_end[np.maximum(net.lane_next, 0)])
        candidates = np.flatnonzero(usable)
        if not len(candidates) or count <= 0:
            return
        per_lane = self.rng.multinomial(count, length[candidates] / length[candidates].sum())
        before = len(self.vehicles)
        for lane, k in zip(candidates, per_lane):
            lo, hi = net.lane_s_from[lane] + 10.0, net.lane_s_to[lane] - 25.0
            spacing = (hi - lo) / max(k, 1)  # [m] mean distance between placed vehicles
            s, ahead_len, s_ahead = hi - float(self.rng.uniform(0.0, 0.5 * spacing)), 0.0, 0.0
            for _ in range(k):  # from the downstream end backwards, each safely behind the last
                vtype = VEHICLE_TYPES[int(self.rng.choice(3, p=self._mix))]
                v = self.lane_speed_limit[lane] * float(self.rng.uniform(0.6, 0.9))
                if net.lane_signal_group[lane] >= 0:  # able to stop comfortably at the line
                    v = min(v, np.sqrt(2.0 * 1.5 * max(net.lane_s_to[lane] - s - 15.0, 0.0)))
                v = min(v, self._speed_limit_at(lane, s), max((0.75 * spacing - 9.0) / 2.0, 3.0))  # denser is slower
                if ahead_len:
                    s = min(s, s_ahead - 0.5 * (ahead_len + vtype.length) - 3.0 - 2.0 * v)
                if s < lo:
                    break
                if self._clear(lane, s, vtype.length, v, 2.0, 3.0):
                    self._append_vehicle(int(lane), s, v, vtype.name, HUMAN)
                    s_ahead, ahead_len = s, vtype.length
                s -= spacing * float(self.rng.uniform(0.5, 0.9))
        placed = len(self.vehicles) - before
        self.stats["background_not_placed"] = count - placed
        if placed < count and (self.config.network.kind, count) not in _SHORTFALLS_TOLD:
            _SHORTFALLS_TOLD.add((self.config.network.kind, count))  # once per process, not at every reset
            level = logging.WARNING if placed < 0.9 * count else logging.INFO
            log.log(level, "demand.vehicles: %d background vehicles asked for, %d fit on the network at safe gaps",
                    count, placed)
        self._refresh_world_coords()
        self._perceive()

    def _clear(self, lane: int, s: float, length: float, v: float, headway: float, min_gap: float) -> bool:
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

    def _speed_limit_at(self, lane: int, s: float) -> float:
        net = self.network
        limit = float(self.lane_speed_limit[lane])
        hit = (net.speed_zone_lane == lane) & (net.speed_zone_from <= s) & (s <= net.speed_zone_to)
        return float(min(limit, net.speed_zone_limit[hit].min())) if hit.any() else limit

    # ---- physics --------------------------------------------------------------------
    def step(self, dt: float | None = None) -> list[WorldEvent]:
        """Advance the world by one physics step of ``dt`` [s]; returns the events it raised."""
        dt = self.dt if dt is None else dt
        n_events = len(self.events)
        self.faults.apply(self.time)
        self.signals.update(dt)
        self._perceive()
        self._decide_pedestrians(dt)
        self._longitudinal(dt)
        self._lane_change_decisions(dt)
        self._integrate_vehicles(dt)
        self._move_pedestrians(dt)
        self._refresh_world_coords()
        self._detect_collisions()
        self._spawn(dt)
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
    def _perceive(self) -> None:
        veh, net = self.vehicles, self.network
        half = 0.5 * veh.length
        self._sorted_keys, self._sorted_lane, self._sorted_veh = kernels.occupancy(
            veh.lane, veh.target_lane, veh.s, veh.d, veh.psi, veh.length, veh.width, net.lane_offset, net.lane_width, net.lane_left,
            net.lane_right, KEY_SCALE)
        # leaders along the lane sequence, and distances to crosswalk conflict zones ahead
        self.leader, self.leader_gap, hop_lane, hop_s = kernels.leaders(
            self._sorted_keys, self._sorted_lane, self._sorted_veh, veh.lane, veh.target_lane, veh.s, half,
            net.lane_next, net.lane_next_station, net.lane_s_to, net.lane_dead_end, LOOKAHEAD_HOPS, KEY_SCALE)
        self._to_zone, past_zone = kernels.zone_distances(
            hop_lane, hop_s, half, net.zone_lane, net.zone_s_in, net.zone_s_out)
        # time gap each crossing offers to a pedestrian
        self.crossing_gap = kernels.crossing_gaps(self._to_zone, past_zone, veh.v, net.zone_crossing,
                                                  len(net.crossings))
        self._past_zone = past_zone
        self.perceived_gap = self._sense_gaps()

    def _sense_gaps(self) -> np.ndarray:
        """The leader gap [m] each vehicle's forward sensor reports: the truth (the same array)
        unless a sensor fault is injected (dropout reports no leader, noise adds N(0, sd))."""
        veh = self.vehicles
        if not (veh.sensor_dropout.any() or veh.gap_noise_sd.any()):
            return self.leader_gap
        noise = self._sensor_rng.normal(0.0, 1.0, len(veh)) * veh.gap_noise_sd
        sensed = np.where(np.isfinite(self.leader_gap), np.maximum(self.leader_gap + noise, 0.0), self.leader_gap)
        return np.where(veh.sensor_dropout, np.inf, sensed)

    def _query_ahead(self, lane: np.ndarray, s: np.ndarray) -> np.ndarray:
        """Row of the nearest vehicle strictly ahead of station ``s`` on ``lane`` (-1 if none)."""
        return kernels.query(self._sorted_keys, self._sorted_lane, self._sorted_veh, lane, s, KEY_SCALE, True)

    def _query_behind(self, lane: np.ndarray, s: np.ndarray) -> np.ndarray:
        """Row of the nearest vehicle strictly behind station ``s`` on ``lane`` (-1 if none)."""
        return kernels.query(self._sorted_keys, self._sorted_lane, self._sorted_veh, lane, s, KEY_SCALE, False)

    def stop_distance(self) -> np.ndarray:
        """Per vehicle: distance [m] from the front bumper to where it must stop (inf if nowhere).

        Red (and stoppable amber) signals, dead ends, and crosswalks with a pedestrian on them.
        """
        veh, net = self.vehicles, self.network
        return kernels.stop_distances(veh.lane, veh.target_lane, veh.s, veh.v, veh.length, veh.runs_red,
                                      net.lane_signal_group, net.lane_s_to, net.lane_dead_end, self.group_state,
                                      self._to_zone, net.zone_crossing, self.occupied, STOP_MARGIN, veh.amber_decel,
                                      AMBER_STOP_DECEL, net.lane_next, self.junction_busy(), MERGE_ROOM)

    def junction_busy(self) -> np.ndarray:
        """Per lane: a junction lane that crosses one a vehicle is on now (drivers wait for it to clear)."""
        net = self.network
        if not len(self.group_state):
            return self._no_lanes
        used = np.zeros(len(net.lanes), dtype=bool)
        used[self.vehicles.lane] = True
        return (net.lane_conflicts & used[None, :]).any(axis=1)

    def speed_limit(self) -> np.ndarray:
        """Per vehicle: the speed [m/s] allowed by limits and curves from here to a few seconds ahead."""
        veh, net = self.vehicles, self.network
        return kernels.speed_limits(veh.lane, veh.s, veh.v, veh.length, self.lane_speed_limit, self._curve_speed,
                                    net.lane_next, net.lane_s_to, net.speed_zone_lane, net.speed_zone_from,
                                    net.speed_zone_to, net.speed_zone_limit, SPEED_PREVIEW_S, CURVE_APPROACH_DECEL)

    # pedestrians
    def _decide_pedestrians(self, dt: float) -> None:
        ped = self.pedestrians
        if len(ped):
            waiting = ped.phase == WAIT
            ped.waited += np.where(waiting, dt, 0.0)
            sig = np.array([self.network.crossings[c].signal for c in ped.crossing], dtype=np.int64)
            walk = np.where(sig >= 0, self.crossing_signal[np.maximum(sig, 0)] == WALK, True) if len(self.crossing_signal) else sig < 0
            allowed = walk | ped.ignores_signal
            go = waiting & allowed & behaviour.accepts_gap(self.crossing_gap[ped.crossing], ped.critical_gap)
            ped.phase = np.where(go, CROSS, ped.phase)
        occ = np.zeros(len(self.network.crossings), dtype=bool)
        if len(ped):
            occ[ped.crossing[ped.phase == CROSS]] = True
        self.occupied = occ

    def _move_pedestrians(self, dt: float) -> None:
        ped = self.pedestrians
        if not len(ped):
            return
        moving = ((ped.phase == APPROACH) | (ped.phase == CROSS) | (ped.phase == DEPART)) & ~ped.halted
        ped.s = ped.s + np.where(moving, ped.speed * dt, 0.0)
        arrive = (ped.phase == APPROACH) & (ped.s >= ped.cum[:, 1])
        ped.s = np.where(arrive, ped.cum[:, 1], ped.s)
        ped.phase = np.where(arrive, WAIT, ped.phase)
        crossed = (ped.phase == CROSS) & (ped.s >= ped.cum[:, 2])
        if crossed.any():
            self.stats["pedestrians_crossed"] += int(crossed.sum())
            self.stats["pedestrian_wait_s"] += float(ped.waited[crossed].sum())
            ped.phase = np.where(crossed, DEPART, ped.phase)
        seg = np.clip((ped.s[:, None] >= ped.cum[:, 1:3]).sum(1), 0, 2)
        rows = np.arange(len(ped))
        p0, p1 = ped.path[rows, seg], ped.path[rows, seg + 1]
        c0, c1 = ped.cum[rows, seg], ped.cum[rows, seg + 1]
        w = np.clip((ped.s - c0) / np.maximum(c1 - c0, 1e-9), 0.0, 1.0)[:, None]
        pos = p0 + w * (p1 - p0)
        ped.x, ped.y = pos[:, 0], pos[:, 1]
        ped.heading = np.arctan2(p1[:, 1] - p0[:, 1], p1[:, 0] - p0[:, 0])

    # vehicles
    def _longitudinal(self, dt: float) -> None:
        """New accelerations: what each driver's behaviour model alone would do given the true
        surroundings (``a_expected``, carried forward in ``a_model`` with the driver's
        reaction lag), then what the driver does with injected faults."""
        veh = self.vehicles
        v0 = np.minimum(veh.speed_factor * self.speed_limit(), veh.v_max)
        stop = self.stop_distance()

        def command(a: np.ndarray, gap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return kernels.accelerations(
                veh.v, a, v0, veh.headway, veh.min_gap, veh.a_max, veh.b_comf, veh.b_max, veh.reaction_time,
                self.leader, gap, stop, veh.driver, veh.cmd_speed, veh.cmd_accel, veh.crashed, dt, META_SPEED_GAIN)

        faulty = (self.perceived_gap is not self.leader_gap or np.isfinite(veh.brake_limit).any()
                  or not np.isnan(veh.forced_accel).all() or not np.array_equal(veh.a_model, veh.a))
        expected, self._a_idm = command(veh.a_model, self.leader_gap)
        veh.a_expected = expected
        veh.a_model = expected.copy()
        if not faulty:
            veh.a = expected.copy()
            return
        veh.a, self._a_idm = command(veh.a, self.perceived_gap)
        forced = ~np.isnan(veh.forced_accel) & ~veh.crashed
        veh.a = np.where(forced, veh.forced_accel, veh.a)
        veh.a = np.maximum(veh.a, -veh.brake_limit)

    def _lane_change_decisions(self, dt: float) -> None:
        veh, net = self.vehicles, self.network
        # human drivers reconsider their lane together, once per decision period (the slow clock)
        tick = int((self.time + dt) / DECISION_PERIOD_S + 1e-9) > int(self.time / DECISION_PERIOD_S + 1e-9)
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
            ok &= ~self.lane_closed[tg]
            if not ok.any():
                continue
            wish = (veh.wish_right[rows] if to_right else veh.wish_left[rows])
            wish = wish + np.where(self.lane_closed[veh.lane[rows]], CLOSED_LANE_WISH, 0.0)
            gain, safe = self._mobil(rows, tg, to_right, wish)
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
        self._perceive()  # the movers now also occupy their target lanes

    def _idm_for(self, rows: np.ndarray, gap: np.ndarray, v_lead: np.ndarray) -> np.ndarray:
        veh = self.vehicles
        v0 = np.minimum(veh.speed_factor[rows] * self.lane_speed_limit[veh.lane[rows]], veh.v_max[rows])
        return behaviour.idm(veh.v[rows], v0, veh.headway[rows], veh.min_gap[rows], veh.a_max[rows], veh.b_comf[rows], gap, v_lead)

    def _mobil(self, rows: np.ndarray, target: np.ndarray, to_right: bool, wish: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gain [m/s^2] and acceptance of moving vehicles ``rows`` into lanes ``target``; ``wish``
        [m/s^2] is the drivers' own preference for that side (intent), added to the incentive only."""
        veh = self.vehicles
        s = veh.s[rows]
        inf = np.full(len(rows), np.inf)

        def gap_between(back, front):  # bumper gap from row ``back`` to row ``front`` (inf if either missing)
            ok = (back >= 0) & (front >= 0)
            b, f = np.maximum(back, 0), np.maximum(front, 0)
            return np.where(ok, veh.s[f] - veh.s[b] - 0.5 * (veh.length[f] + veh.length[b]), inf)

        me = rows
        new_lead = self._query_ahead(target, s)
        new_follow = self._query_behind(target, s)
        old_lead = self.leader[rows]
        old_follow = self._query_behind(veh.lane[rows], s)
        speed = lambda r: np.where(r >= 0, veh.v[np.maximum(r, 0)], 0.0)  # noqa: E731
        a_self_now = self._a_idm[rows]
        a_self_new = self._idm_for(me, gap_between(me, new_lead), speed(new_lead))
        nf = np.maximum(new_follow, 0)
        has_nf = new_follow >= 0
        a_nf_now = np.where(has_nf, self._idm_for(nf, gap_between(new_follow, new_lead), speed(new_lead)), 0.0)
        a_nf_new = np.where(has_nf, self._idm_for(nf, gap_between(new_follow, me), veh.v[me]), 0.0)
        of = np.maximum(old_follow, 0)
        has_of = old_follow >= 0
        a_of_now = np.where(has_of, self._idm_for(of, gap_between(old_follow, me), veh.v[me]), 0.0)
        a_of_new = np.where(has_of, self._idm_for(of, gap_between(old_follow, old_lead), speed(old_lead)), 0.0)
        room = (gap_between(me, new_lead) > veh.min_gap[rows]) & (gap_between(new_follow, me) > 1.0)
        gain = (a_self_new - a_self_now) + veh.politeness[rows] * ((a_nf_new - a_nf_now) + (a_of_new - a_of_now))
        accept = behaviour.mobil(a_self_now, a_self_new, a_nf_now, a_nf_new, a_of_now, a_of_new,
                                 veh.politeness[rows], np.full(len(rows), to_right), bonus=wish)
        gain = gain + wish
        return gain, accept & room

    def _integrate_vehicles(self, dt: float) -> None:
        veh, net = self.vehicles, self.network
        ran_red = kernels.integrate(
            dt, veh.lane, veh.target_lane, veh.s, veh.d, veh.psi, veh.v, veh.a, veh.steer, veh.kappa, veh.wheelbase,
            veh.length, veh.driver, veh.cmd_steer, veh.crashed, veh.odometer, net.lane_offset, net.lane_left,
            net.lane_right, net.lane_s_from, net.lane_s_to, net.lane_next, net.lane_next_station,
            net.lane_signal_group, self.group_state, net.lane_dead_end)
        stopped = veh.v <= 0.0  # a standing vehicle does not keep decelerating: neither does its model
        veh.a_model = np.where(stopped, np.maximum(veh.a_model, 0.0), veh.a_model)
        veh.a_expected = np.where(stopped, np.maximum(veh.a_expected, 0.0), veh.a_expected)
        for r in np.flatnonzero(ran_red):
            self.events.append(WorldEvent("red_light", self.time, (int(veh.id[r]),), float(veh.x[r]), float(veh.y[r])))

    def _refresh_world_coords(self) -> None:
        veh, net = self.vehicles, self.network
        if not len(veh):
            return
        f = kernels.frames(net.chain_s, net.chain_table, net.edge_chain_offset, net.edge_length,
                           net.lane_edge[veh.lane], veh.s)
        veh.x = f[:, 0] - veh.d * f[:, 3]
        veh.y = f[:, 1] + veh.d * f[:, 2]
        veh.heading = np.arctan2(f[:, 3], f[:, 2]) + veh.psi
        veh.kappa = f[:, 4]

    def _detect_collisions(self) -> None:
        veh, ped = self.vehicles, self.pedestrians
        n = len(veh)
        i, j = kernels.vehicle_collisions(veh.x, veh.y, veh.heading, veh.length, veh.width, veh.crashed)
        for a, b in zip(i, j):
            self._crash(int(a))
            self._crash(int(b))
            self.events.append(WorldEvent("collision", self.time, (int(veh.id[a]), int(veh.id[b])),
                                          float(0.5 * (veh.x[a] + veh.x[b])), float(0.5 * (veh.y[a] + veh.y[b]))))
        if n and len(ped):
            p, v = kernels.pedestrian_collisions(ped.x, ped.y, PEDESTRIAN_RADIUS, ped.phase != HIT, veh.x, veh.y,
                                                 veh.heading, veh.length, veh.width)
            for a, b in zip(p, v):
                if ped.phase[a] == HIT:
                    continue
                ped.phase[a] = HIT
                self._crash(int(b))
                self.events.append(WorldEvent("collision", self.time, (int(veh.id[b]), int(ped.id[a])),
                                              float(ped.x[a]), float(ped.y[a])))
        net = self.network
        off = kernels.off_road(veh.lane, veh.s, veh.d, veh.length, veh.width, veh.crashed, net.lane_offset,
                               net.lane_width, net.lane_dead_end, net.lane_s_to)
        for r in np.flatnonzero(off):
            self._crash(int(r))
            self.events.append(WorldEvent("off_road", self.time, (int(veh.id[r]),), float(veh.x[r]), float(veh.y[r])))

    def _crash(self, row: int) -> None:
        veh = self.vehicles
        if not veh.crashed[row]:
            veh.crashed[row] = True
            veh.crash_time[row] = self.time
        veh.v[row] = 0.0
        veh.a[row] = 0.0
        veh.a_model[row] = 0.0

    # demand
    def _spawn(self, dt: float) -> None:
        net = self.network
        # Poisson arrivals, drawn as exponential gaps; the last slot is the pedestrians'
        now = self.time + dt
        arrivals = self._next_arrival
        while arrivals.min() <= now:
            k = int(arrivals.argmin())
            arrivals[k] += self.rng.exponential(1.0 / self._arrival_rates[k])
            if k < len(net.inlets):
                self._backlog[k] = min(self._backlog[k] + 1, BACKLOG_CAP)
            elif net.sidewalk_routes:
                self._spawn_pedestrian()
        for k in range(len(net.inlets)):
            if self._backlog[k] >= 1 and self._try_enter(net.inlets[k]):
                self._backlog[k] -= 1

    def _try_enter(self, inlet) -> bool:
        """Let one vehicle in at ``inlet`` if its entry is clear; returns whether it entered."""
        net, veh = self.network, self.vehicles
        cum = inlet.cumulative_weights
        closed = self.lane_closed[np.asarray(inlet.lanes)]
        if closed.any():
            cum = np.cumsum(np.where(closed, 0.0, np.asarray(inlet.weights, float)))
        if cum[-1] <= 0:
            return False
        lane = int(inlet.lanes[min(int(np.searchsorted(cum, self.rng.random() * cum[-1])), len(cum) - 1)])
        j = self._first_vehicle(lane)
        room = veh.s[j] - 0.5 * veh.length[j] - net.lane_s_from[lane] if j >= 0 else np.inf
        if room < 20.0:  # not even a truck fits with a minimal gap
            return False
        vtype = VEHICLE_TYPES[min(int(np.searchsorted(self._mix_cumulative, self.rng.random())), 2)]
        s0 = net.lane_s_from[lane] + 0.5 * vtype.length
        v = min(self._speed_limit_at(lane, s0) * 0.9, vtype.v_max)
        if j >= 0:
            gap = room - vtype.length
            v = min(v, veh.v[j] + max(gap - 30.0, 0.0) * 0.2)
            if gap < 3.0 + v * 1.5:
                v = min(v, veh.v[j])
                if gap < 3.0 + v * 1.5 or gap < 8.0:
                    return False
        self.add_vehicle(lane, s0, v, vtype=vtype.name)
        return True

    def _first_vehicle(self, lane: int) -> int:
        """Row of the vehicle nearest the start of ``lane`` (-1 if the lane is empty)."""
        start = self.network.lane_s_from[lane] - KEY_SCALE / 2
        return int(self._query_ahead(np.array([lane]), np.array([start]))[0])

    def _spawn_pedestrian(self) -> None:
        net = self.network
        route = net.sidewalk_routes[int(self.rng.integers(len(net.sidewalk_routes)))]
        a0, a1, b0, b1 = (np.asarray(p, float) for p in (route.a0, route.a1, route.b0, route.b1))
        crossing = route.crossing
        jay = route.jaywalk_ok and self.rng.random() < self.config.demand.jaywalk_fraction
        if jay:
            f = float(self.rng.uniform(0.1, 0.8))
            a1 = a0 + f * (a1 - a0)
            b0 = a1 + (np.asarray(route.b0) - np.asarray(route.a1))
            along = (b0 - a1) / np.linalg.norm(b0 - a1)
            across = np.array([-along[1], along[0]])
            poly = np.array([a1 - across, a1 + across, b0 + across, b0 - across])
            crossing = net.add_crossing(Crossing(polygon=poly, name="jaywalk"))
            self.occupied = np.append(self.occupied, False)
            self.crossing_gap = np.append(self.crossing_gap, np.inf)
            self._perceive()
        path = np.array([a0, a1, b0, b1])
        start = float(self.rng.uniform(0.0, 0.6)) * np.linalg.norm(a1 - a0)
        self.add_pedestrian(path, crossing, s=start, jaywalker=jay)

    def _remove_finished(self) -> None:
        veh, ped, net = self.vehicles, self.pedestrians, self.network
        if len(veh):
            exited, towed = kernels.departed(veh.lane, veh.s, veh.driver, veh.crashed, veh.crash_time, self.time,
                                             CRASH_CLEAR_S, net.lane_s_to, net.lane_next, net.lane_dead_end)
            gone = exited | towed
            if gone.any():
                self.stats["vehicles_exited"] += int(exited.sum())
                veh.keep(~gone)
                self._perceive()
        if len(ped):
            done = ((ped.phase == DEPART) & (ped.s >= ped.cum[:, 3])) | (ped.phase == HIT)
            if done.any():
                for c in set(ped.crossing[done & ped.jaywalker].tolist()):
                    net.crossings[c].zones = []
                    net._build_zone_tables()
                ped.keep(~done)
                if len(net.zone_lane) != self._to_zone.shape[1]:
                    self._perceive()

    # ---- views ----------------------------------------------------------------------
    def snapshot(self) -> WorldState:
        """The structured state of the world now (copies of everything that changes; safe to keep)."""
        return WorldState.capture(self)

"""Demand: the vehicles placed at reset, arrivals at the inlets and pedestrians on the sidewalks.

Arrivals are Poisson per inlet (and one stream of pedestrians), drawn as exponential gaps
from the world's random stream; an arrival that cannot enter waits in a short backlog.
"""

from __future__ import annotations

import bisect
import logging
from typing import TYPE_CHECKING

import numpy as np

from envs.kernels import KEY_SCALE
from envs.actors import CONTINUOUS, HUMAN, META, VEHICLE_TYPES
from envs.network import Crossing, Network

if TYPE_CHECKING:
    from envs.scenario import Demand
    from envs.world.world import World

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



def populate(world: "World", count: int) -> None:
    """Place ``count`` background vehicles on the network's long lanes, safely spaced."""
    net = world.network
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


"""Collisions and leaving the road: oriented-box contacts between vehicles, vehicles and
pedestrians, and vehicles whose body leaves the paved lanes. Each is a ``WorldEvent``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from envs import kernels
from envs.actors import HIT, PEDESTRIAN_RADIUS
from envs.world.events import WorldEvent

if TYPE_CHECKING:
    from envs.world.world import World


def detect(world: "World") -> None:
    """Vehicle-vehicle and vehicle-pedestrian contacts and vehicles off the road: crash them, record events."""
    veh, ped = world.vehicles, world.pedestrians
    n = len(veh)
    i, j = kernels.vehicle_collisions(veh.x, veh.y, veh.heading, veh.length, veh.width, veh.crashed)
    net = world.network
    for a, b in zip(i, j):
        if not net.may_touch(int(veh.lane[a]), int(veh.lane[b])):  # one passes over the other (a bridge)
            continue
        crash(world, int(a))
        crash(world, int(b))
        world.events.append(WorldEvent("collision", world.time, (int(veh.id[a]), int(veh.id[b])),
                                      float(0.5 * (veh.x[a] + veh.x[b])), float(0.5 * (veh.y[a] + veh.y[b]))))
    if n and len(ped):
        p, v = kernels.pedestrian_collisions(ped.x, ped.y, PEDESTRIAN_RADIUS, ped.phase != HIT, veh.x, veh.y,
                                             veh.heading, veh.length, veh.width)
        for a, b in zip(p, v):
            if ped.phase[a] == HIT:
                continue
            ped.phase[a] = HIT
            crash(world, int(b))
            world.events.append(WorldEvent("collision", world.time, (int(veh.id[b]), int(ped.id[a])),
                                          float(ped.x[a]), float(ped.y[a])))
    off = kernels.off_road(veh.lane, veh.s, veh.d, veh.length, veh.width, veh.crashed, net.lane_offset,
                           net.lane_width, net.lane_dead_end, net.lane_s_to)
    for r in off:
        crash(world, int(r))
        world.events.append(WorldEvent("off_road", world.time, (int(veh.id[r]),), float(veh.x[r]), float(veh.y[r])))



def crash(world: "World", row: int) -> None:
    """Vehicle ``row`` has crashed: it stops where it is (and is towed after ``CRASH_CLEAR_S``)."""
    veh = world.vehicles
    if not veh.crashed[row]:
        veh.crashed[row] = True
        veh.crash_time[row] = world.time
    veh.v[row] = 0.0
    veh.a[row] = 0.0
    veh.a_model[row] = 0.0


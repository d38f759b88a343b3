"""Pedestrians: waiting at the curb for the signal and an acceptable gap, then walking their path.

A pedestrian's path has four points (approach, curb, far curb, depart); phases are
``APPROACH``, ``WAIT``, ``CROSS``, ``DEPART`` (and ``HIT``). Gap acceptance compares the time
gap each crossing offers (from the world's perception) with the pedestrian's critical gap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from envs import behaviour
from envs.actors import APPROACH, CROSS, DEPART, WAIT
from envs.network import WALK

if TYPE_CHECKING:
    from envs.world.world import World


def decide(world: "World", dt: float) -> None:
    """Waiting pedestrians step off when the signal (or their disregard of it) and the gap allow."""
    ped = world.pedestrians
    if len(ped):
        waiting = ped.phase == WAIT
        ped.waited += np.where(waiting, dt, 0.0)
        sig = np.array([world.network.crossings[c].signal for c in ped.crossing], dtype=np.int64)
        walk = np.where(sig >= 0, world.crossing_signal[np.maximum(sig, 0)] == WALK, True) if len(world.crossing_signal) else sig < 0
        allowed = walk | ped.ignores_signal
        go = waiting & allowed & behaviour.accepts_gap(world.crossing_gap[ped.crossing], ped.critical_gap)
        ped.phase = np.where(go, CROSS, ped.phase)
    occ = np.zeros(len(world.network.crossings), dtype=bool)
    if len(ped):
        occ[ped.crossing[ped.phase == CROSS]] = True
    world.occupied = occ



def move(world: "World", dt: float) -> None:
    """Walk every moving pedestrian ``dt`` [s] along its path; count the crossings completed."""
    ped = world.pedestrians
    if not len(ped):
        return
    moving = ((ped.phase == APPROACH) | (ped.phase == CROSS) | (ped.phase == DEPART)) & ~ped.halted
    ped.s = ped.s + np.where(moving, ped.speed * dt, 0.0)
    arrive = (ped.phase == APPROACH) & (ped.s >= ped.cum[:, 1])
    ped.s = np.where(arrive, ped.cum[:, 1], ped.s)
    ped.phase = np.where(arrive, WAIT, ped.phase)
    crossed = (ped.phase == CROSS) & (ped.s >= ped.cum[:, 2])
    if crossed.any():
        world.stats["pedestrians_crossed"] += int(crossed.sum())
        world.stats["pedestrian_wait_s"] += float(ped.waited[crossed].sum())
        ped.phase = np.where(crossed, DEPART, ped.phase)
    seg = np.clip((ped.s[:, None] >= ped.cum[:, 1:3]).sum(1), 0, 2)
    rows = np.arange(len(ped))
    p0, p1 = ped.path[rows, seg], ped.path[rows, seg + 1]
    c0, c1 = ped.cum[rows, seg], ped.cum[rows, seg + 1]
    w = np.clip((ped.s - c0) / np.maximum(c1 - c0, 1e-9), 0.0, 1.0)[:, None]
    pos = p0 + w * (p1 - p0)
    ped.x, ped.y = pos[:, 0], pos[:, 1]
    ped.heading = np.arctan2(p1[:, 1] - p0[:, 1], p1[:, 0] - p0[:, 0])


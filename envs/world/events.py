"""What a physics step can raise: collisions, leaving the road, running a red light, standing stuck."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class WorldEvent:
    """Something that happened in one physics step: ``collision``, ``off_road``, ``red_light``,
    or ``stuck`` (a vehicle has stood still for ``envs.world.world.STUCK_REPORT_S``; ``cause``
    says what it waits for)."""

    kind: str
    time: float  # [s]
    actors: tuple[int, ...]
    x: float  # [m]
    y: float  # [m]
    cause: str = ""

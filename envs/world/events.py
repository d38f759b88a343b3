"""What a physics step can raise: collisions, leaving the road, running a red light."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class WorldEvent:
    """Something that happened in one physics step: ``collision``, ``off_road`` or ``red_light``."""

    kind: str
    time: float  # [s]
    actors: tuple[int, ...]
    x: float  # [m]
    y: float  # [m]

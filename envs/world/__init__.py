"""The world of the twin, split along the state each part owns.

- ``world``: :class:`World`, its actors and the physics step pipeline, read top to bottom.
- ``signals``: :class:`SignalPlan`, the signal plan (interval, clock, durations, faults).

``from envs.world import World`` is the way in.
"""

from envs.world.signals import PHASE_SUFFIXES, SignalPlan
from envs.world.world import World, WorldEvent

__all__ = ["PHASE_SUFFIXES", "SignalPlan", "World", "WorldEvent"]

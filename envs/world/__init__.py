"""The world of the twin, split along the state each part owns.

- ``world``: :class:`World`, its actors, perception, operator controls and the physics step
  pipeline, read top to bottom in ``World.step``.
- ``signals``: :class:`SignalPlan`, the signal plan (interval, clock, durations, faults).
- ``demand``: vehicles placed at reset, arrivals at the inlets, pedestrians on the sidewalks.
- ``lane_change``: MOBIL lane changes of human drivers.
- ``pedestrians``: gap acceptance at the curb and walking.
- ``collisions``: contacts and leaving the road; ``events``: :class:`WorldEvent`.

``from envs.world import World`` is the way in.
"""

from envs.world.signals import PHASE_SUFFIXES, SignalPlan
from envs.world.events import WorldEvent
from envs.world.world import World

__all__ = ["PHASE_SUFFIXES", "SignalPlan", "World", "WorldEvent"]

"""Who lives in the world, as the world's views see them: a small protocol at the seam.

The Gymnasium and PettingZoo views (``envs.single_agent``, ``envs.multi_agent``,
``envs.signal_control``) drive a :class:`World` through an :class:`Occupants` object: it
embodies whoever lives in the world at the start of an episode (simulated humans, a
supervisor), runs physics steps with them deciding, and reports what they noticed about
an actor. The world knows nothing more about them. :class:`NoOccupants` is the bare
twin: physics only, no import of any agent. The composition root (``twin.occupants``)
provides the one with LLM humans and the supervisor.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence, runtime_checkable

from envs.world import World, WorldEvent


@runtime_checkable
class StepObserver(Protocol):
    """Anything that acts right after each physics step (a signal controller)."""

    def after_step(self, world: World) -> Any: ...


@runtime_checkable
class Occupants(Protocol):
    """Whoever lives in the world of a view, seen through four calls."""

    def start(self, world: World) -> None:
        """Embody the occupants in a new episode's ``world``."""

    def advance(self, world: World, steps: int, controllers: Sequence[StepObserver] = ()) -> list[WorldEvent]:
        """Run ``steps`` physics steps of ``world``; after each, every controller's
        ``after_step(world)`` runs before the occupants act. Returns the world's events."""

    def step_info(self, world: World, actor_ids: Sequence[int | None], since_s: float) -> dict[int | None, dict]:
        """What the occupants noticed since ``since_s`` [s] about each actor (``None``: every
        road user), as ``info`` entries (``{"supervisor": ..., "cost": ...}``); empty when nobody watches."""

    def close(self) -> None:
        """Release what the occupants hold (model clients, event loops)."""


class NoOccupants:
    """The bare twin: physics and the controllers, nobody else."""

    def start(self, world: World) -> None:
        return None

    def advance(self, world: World, steps: int, controllers: Sequence[StepObserver] = ()) -> list[WorldEvent]:
        events: list[WorldEvent] = []
        for _ in range(steps):
            events += world.step()
            for controller in controllers:
                controller.after_step(world)
        return events

    def step_info(self, world: World, actor_ids: Sequence[int | None], since_s: float) -> dict[int | None, dict]:
        return {}

    def close(self) -> None:
        return None

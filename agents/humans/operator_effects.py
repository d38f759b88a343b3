"""What an operator's intent does to the world: retimed signals, a variable speed limit,
lanes closed or opened, an advisory broadcast to the drivers. Whatever cannot be done is
reported as ignored, never raised: an operator's answer is a model's answer."""

from __future__ import annotations

from typing import Callable

from agents.humans.intent import SIGNAL_PLANS, OperatorIntent
from agents.humans.scene import KMH
from envs.world import World

MIN_ADVISORY_WORDS = 3  # shorter advisories ("no", "none", "ok") are not broadcast


def operate(world: World, intent: OperatorIntent, broadcast: Callable[[str], None]) -> list[str]:
    """Carry out an operator's ``intent`` with the world's controls (signal plan, variable speed
    limit, lane closures) and ``broadcast`` its advisory; returns what changed, for the trace."""
    effects = []
    names = {ln.name: k for k, ln in enumerate(world.network.lanes)}
    if intent.signal_plan != "keep" and len(world.signals.durations):
        world.signals.retime(*SIGNAL_PLANS[intent.signal_plan])
        effects.append(f"signal plan: {intent.signal_plan}")
    if intent.speed_limit_kmh == -1 and world.variable_speed_limit is not None:
        world.set_speed_limit(None)
        effects.append("variable speed limit lifted")
    elif intent.speed_limit_kmh > 0:
        world.set_speed_limit(intent.speed_limit_kmh / KMH)
        effects.append(f"variable speed limit {intent.speed_limit_kmh} km/h")
    for name, closed in ((intent.close_lane, True), (intent.open_lane, False)):
        if not name:
            continue
        if name not in names:
            effects.append(f"ignored: no lane named {name[:40]!r}")
        elif world.close_lane(names[name], closed):
            effects.append(f"lane {name} {'closed' if closed else 'opened'}")
        else:
            effects.append(f"ignored: lane {name} cannot be closed")
    advisory = intent.advisory.strip()
    if len(advisory.split()) >= MIN_ADVISORY_WORDS:
        broadcast(advisory)
        effects.append("advisory broadcast")
    elif advisory:
        effects.append(f"ignored: advisory {advisory[:20]!r} says nothing")
    return effects

"""Who the humans of a scenario are, and which actor each one embodies.

A persona slot of the scenario (``humans.drivers: [{persona: commuter_late, count: 2}]``)
becomes human identities (``commuter_late#0``, ``commuter_late#1``). An identity embodies
the next matching vehicle (its persona's vehicle type) or pedestrian that enters the twin
and, when that actor leaves, the next one after it (the same person making another trip).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agents.humans.agent import HumanAgent
from agents.humans.config import HumansConfig
from agents.humans.intent import Intent
from agents.humans.persona import Persona, PersonaError, get_persona, load_personas
from envs.actors import HUMAN, VEHICLE_TYPES
from envs.world import World

RECENT_DECISIONS = 2  # own decisions repeated in the prompt


def rule_only(config: HumansConfig) -> HumansConfig:
    """The same humans with every persona slot rule-based (persona parameters, no model)."""
    return config.model_copy(update={group: [slot.model_copy(update={"llm": False}) for slot in getattr(config, group)]
                                     for group in ("drivers", "pedestrians", "operators")})


@dataclass
class Human:
    """One simulated person: persona, current body in the twin, current intent."""

    identity: str
    persona: Persona
    llm: bool
    agent: HumanAgent | None = None
    actor_id: int | None = None
    prior: dict[str, Any] = field(default_factory=dict)
    intent: Intent | None = None
    last_decision_s: float = -np.inf
    last_leader: int = -1
    last_signal: int = -1
    last_phase: int = -1
    near_miss: bool = False  # closing in on the vehicle ahead (envs.state.near_miss)
    signal_draw: float = 1.0  # uniform draw of this trip: it ignores signals when the draw >= its compliance
    triggers: list[str] = field(default_factory=list)
    advisories: deque = field(default_factory=lambda: deque(maxlen=3))
    recent: deque = field(default_factory=lambda: deque(maxlen=RECENT_DECISIONS))

    @property
    def role(self) -> str:
        return self.persona.role


def roster(config: HumansConfig, personas: dict[str, Persona] | None = None) -> list[Human]:
    """The human identities of the scenario's persona slots (errors name the slot)."""
    library = personas if personas is not None else load_personas(strict=False)
    humans: list[Human] = []
    for role, slots in (("driver", config.drivers), ("pedestrian", config.pedestrians),
                        ("operator", config.operators)):
        for n, slot in enumerate(slots):
            where = f"humans.{role}s.{n}.persona"
            try:
                persona = get_persona(slot.persona, library)
            except PersonaError as exc:
                raise PersonaError(f"{where}: {exc}") from None
            if persona.role != role:
                raise PersonaError(f"{where}: {slot.persona!r} is a {persona.role}, not a {role}")
            for _ in range(slot.count):
                k = sum(h.persona.id == persona.id for h in humans)
                humans.append(Human(identity=f"{persona.id}#{k}", persona=persona, llm=slot.llm))
    return humans


def newly_embodied(world: World, humans: list[Human], seen_id: int) -> tuple[list[tuple[Human, int]], int]:
    """Free humans paired with the actors that entered since actor id ``seen_id`` (ids only grow),
    and the newest actor id now."""
    veh, ped = world.vehicles, world.pedestrians
    newest = max(int(veh.id.max()) if len(veh) else -1, int(ped.id.max()) if len(ped) else -1)
    if newest <= seen_id:
        return [], seen_id
    free = [h for h in humans if h.role != "operator" and h.actor_id is None]
    pairs = []
    for r in np.flatnonzero((veh.id > seen_id) & (veh.driver == HUMAN)):
        vtype = VEHICLE_TYPES[veh.vtype[r]].name
        h = next((h for h in free if h.role == "driver" and h.persona.vehicle == vtype), None)
        if h is not None:
            free.remove(h)
            pairs.append((h, int(veh.id[r])))
    for r in np.flatnonzero(ped.id > seen_id):
        h = next((h for h in free if h.role == "pedestrian"), None)
        if h is not None:
            free.remove(h)
            pairs.append((h, int(ped.id[r])))
    return pairs, newest


def release_departed(world: World, humans: list[Human]) -> None:
    """Free the slots of humans whose actor has left (rule-only populations)."""
    veh_ids, ped_ids = set(world.vehicles.id.tolist()), set(world.pedestrians.id.tolist())
    for h in humans:
        if h.actor_id is not None and h.actor_id not in (veh_ids if h.role == "driver" else ped_ids):
            h.actor_id = None

"""The population of simulated humans and the scheduler of their decisions.

A scenario's ``humans:`` section lists persona slots; each becomes human identities that
embody actors as they enter (``agents.humans.roster``). Persona traits set the actor's
behaviour parameters; LLM humans also decide, on the slow clock, an intent that adjusts
them. When a human decides is ``agents.humans.triggers``; what an operator's intent does
is ``agents.humans.operator_effects``.

Decisions are due at a per-role period and on events (a new vehicle ahead, a signal
change, a near miss, an advisory received, arriving at the curb). A decision due at
simulated time t is sent at once (a future on the model loop, ``agents.llm.runner``) and
takes effect at t + the human's reaction time (``humans.reaction_s``); the physics steps on
meanwhile and waits for the answer only when that time comes, so when a decision lands
never depends on the model's speed. Between decisions the last intent keeps being executed
by the twin.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections import Counter, deque
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from autogen_core.models import ChatCompletionClient

from agents.llm.backend import request_failed, request_seed
from agents.llm.runner import ModelRunner
from agents.humans.config import HumansConfig
from agents.humans.agent import Decision, HumanAgent, rule_intent
from agents.humans.intent import (
    INTENTS,
    DriverIntent,
    Intent,
    PedestrianIntent,
    default_operator_intent,
)
from agents.humans.operator_effects import operate
from agents.humans.persona import Persona, PersonaError, get_persona, load_personas
from agents.humans.prompts import decision_prompt, interview_prompt
from agents.humans.roster import Human, newly_embodied, release_departed, roster
from agents.humans.triggers import driver_trigger, operator_trigger, pedestrian_trigger
from agents.humans.situation_cache import SituationCache
from agents.humans.scene import driver_scene, operator_scene, pedestrian_scene, quote
from agents.humans.surrogate import driver_features, operator_features, pedestrian_features
from envs.world import World


log = logging.getLogger(__name__)

CHECK_PERIOD_S = 0.5  # [s] how often due decisions are looked for
EVENT_WINDOW_S = 60.0  # [s] the operator's view of recent events


@dataclass
class PendingDecision:
    """A decision asked for at ``asked_s`` that takes effect at ``effect_s`` [s]."""

    human: Human
    actor_id: int | None  # the body it was asked for (a decision outlives no trip)
    trigger: str
    prompt: str
    memories: list
    features: list[float] | None
    source: str  # llm, reuse or surrogate
    asked_s: float
    effect_s: float
    result: Future | Decision  # a future while the model answers


class Population:
    """Every configured human of one world, and the loop that lets them decide."""

    def __init__(self, world: World, config: HumansConfig, client: ChatCompletionClient | None = None,
                 memory: Any = None, personas: dict[str, Persona] | None = None, seed: int = 0,
                 episode: int = 0, runner: ModelRunner | None = None,
                 situations: SituationCache | None = None) -> None:
        self.world, self.config, self.client, self.memory = world, config, client, memory
        self.episode = episode
        self.rng = np.random.default_rng(seed + 7919)  # own stream: does not disturb the world's
        self.humans: list[Human] = roster(config, personas)
        self.surrogate = None
        if config.surrogate.path:
            from agents.humans.surrogate import Surrogate

            if not Path(config.surrogate.path).exists():
                raise FileNotFoundError(f"humans.surrogate.path: {config.surrogate.path}: no such file "
                                        "(make one with python run.py distill RUN_DIR)")
            self.surrogate = Surrogate.load(Path(config.surrogate.path))
        self._surrogate_rng = np.random.default_rng(seed + 104723)
        if situations is None and config.reuse.enabled:
            situations = SituationCache(config.reuse.path, config.reuse.resolution)
        self.situations = situations  # recorded decisions reused where the situation is the same
        all_stand_in = self.surrogate is not None and config.surrogate.live_fraction == 0.0
        if any(h.llm for h in self.humans) and client is None and not all_stand_in:
            raise ValueError("LLM humans need a model client")
        for h in self.humans:
            if h.llm:
                h.agent = HumanAgent.for_model(h.identity.replace("#", "_"), h.persona, client, config.model)
            if h.role == "operator":
                h.intent = default_operator_intent()
        self.reflector = None
        if memory is not None:
            from memory.stream import Reflector

            self.reflector = Reflector(memory, threshold=config.memory.reflect_importance)
        self.stats: Counter[str] = Counter()
        self.latencies: list[float] = []  # [s] per model request, failed ones included
        self.model_wait_s = 0.0  # [s] wall time the physics waited for decisions
        self.records: list[dict[str, Any]] = []
        self._seen_id = -1
        self._next_check = 0.0
        self._events_seen = 0
        self._recent_events: deque = deque()
        self._pending: list[PendingDecision] = []  # asked for, in the order they take effect
        self.runner = runner or ModelRunner(client, config.model.max_in_flight)
        self._deciders = any(h.llm for h in self.humans)

    # ---- the world's side ---------------------------------------------------------------
    def after_step(self) -> list[dict[str, Any]]:
        """Call after every ``world.step()``: embodies new actors and runs due decisions;
        returns the decision records made now."""
        pairs, self._seen_id = newly_embodied(self.world, self.humans, self._seen_id)
        for h, actor_id in pairs:
            self._embody(h, actor_id)
        if self.world.time + 1e-9 >= self._next_check:
            self._next_check = self.world.time + CHECK_PERIOD_S
            if self._deciders:
                self._ask_due()
            else:
                release_departed(self.world, self.humans)
        return self._take_effect(self.world.time)

    def close(self) -> None:
        """Drop the decisions still pending (their answers are not waited for)."""
        for pending in self._pending:
            if isinstance(pending.result, Future):
                pending.result.cancel()
        self._pending = []

    def reaction_s(self, h: Human) -> float:
        """How long after ``h`` asks for a decision it takes effect [s]: its reaction time."""
        reaction = self.config.reaction_s
        if reaction.mode == "none":
            return 0.0
        if h.role == "driver":
            return float(h.prior.get("reaction_time", 1.0))
        return reaction.pedestrian if h.role == "pedestrian" else reaction.operator

    def _embody(self, h: Human, actor_id: int) -> None:
        h.actor_id, h.triggers, h.last_decision_s, h.near_miss = actor_id, [], -np.inf, False
        h.advisories.clear()  # a new trip: earlier advisories are in memory, not news
        h.last_leader = h.last_signal = h.last_phase = -1
        h.signal_draw = float(self.rng.random())
        self._apply(h, rule_intent(h.persona, self._prior(h)))
        self.stats[f"{h.role}s_embodied"] += 1

    def _prior(self, h: Human) -> dict[str, Any]:
        """Set ``h``'s actor's behaviour parameters from its persona and its trip's signal draw;
        returns them (``h.prior``)."""
        if h.role == "driver":
            prior = h.persona.driver_parameters()
            prior["runs_red"] = bool(h.signal_draw >= prior["compliance"])
            self.world.set_vehicle_params(h.actor_id, **prior)
        else:
            prior = h.persona.pedestrian_parameters()
            prior["ignores_signal"] = bool(h.signal_draw >= prior["compliance"])
            self.world.set_pedestrian_params(h.actor_id, **prior)
        h.prior = prior
        return prior

    # ---- saved state: forks from any moment ---------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """A saved copy of the humans: who embodies which actor, their priors, intents, triggers
        and recent decisions, the decisions asked for and not yet in effect (answers still in
        flight are waited for), the random streams, the reused situations and the memory store's
        contents. ``set_state`` makes this or another population of the same humans on the
        restored world decide on as this one does from here. The model client, its runner and
        the agents are not state: they stay with the population restored into."""
        pending = [(p.human.identity, p.actor_id, p.trigger, p.prompt, list(p.memories), p.features, p.source,
                    p.asked_s, p.effect_s, p.result.result() if isinstance(p.result, Future) else p.result)
                   for p in self._pending]
        agents = [h.agent for h in self.humans]  # not state: left out of the copy
        for h in self.humans:
            h.agent = None
        try:
            saved = copy.deepcopy({
                "identities": [h.identity for h in self.humans], "humans": self.humans, "pending": pending,
                "episode": self.episode, "rng": self.rng.bit_generator.state,
                "surrogate_rng": self._surrogate_rng.bit_generator.state, "stats": self.stats,
                "latencies": self.latencies, "model_wait_s": self.model_wait_s,
                "seen_id": self._seen_id, "next_check": self._next_check, "events_seen": self._events_seen,
                "recent_events": self._recent_events,
                "situations": None if self.situations is None else (self.situations.entries, self.situations.hits,
                                                                    self.situations.misses)})
        finally:
            for h, agent in zip(self.humans, agents):
                h.agent = agent
        return saved | {"memory": self.memory.get_state() if self.memory is not None else None}

    def set_state(self, state: dict[str, Any]) -> None:
        """Become the population saved in ``state`` (``get_state``; ``state`` stays usable). The
        decision records made before the save are not carried over: ``records`` holds this
        population's own. A human whose saved persona differs from its own here gets a new agent."""
        if state["identities"] != [h.identity for h in self.humans]:
            raise ValueError("set_state: the saved population has other humans than this one")
        saved = copy.deepcopy({k: v for k, v in state.items() if k != "memory"})
        agents = {h.identity: h.agent for h in self.humans}
        for h in saved["humans"]:
            agent = agents[h.identity]
            if agent is not None and agent.persona != h.persona:
                agent = HumanAgent.for_model(agent.name, h.persona, self.client, self.config.model)
            h.agent = agent
        self.humans = saved["humans"]
        by_identity = {h.identity: h for h in self.humans}
        self._pending = [PendingDecision(by_identity[identity], *rest) for identity, *rest in saved["pending"]]
        self.episode = saved["episode"]
        self.rng.bit_generator.state = saved["rng"]
        self._surrogate_rng.bit_generator.state = saved["surrogate_rng"]
        self.stats, self.latencies, self.model_wait_s = saved["stats"], saved["latencies"], saved["model_wait_s"]
        self.records = []
        self._seen_id, self._next_check = saved["seen_id"], saved["next_check"]
        self._events_seen, self._recent_events = saved["events_seen"], saved["recent_events"]
        if self.situations is not None:
            from agents.humans.situation_cache import SituationCache

            entries, hits, misses = saved["situations"] if saved["situations"] is not None else ({}, 0, 0)
            # a fork's situations live in memory only: it never writes the shared file
            self.situations = SituationCache(None, self.situations.resolution)
            self.situations.entries, self.situations.hits, self.situations.misses = entries, hits, misses
        if (self.memory is None) != (state["memory"] is None):
            raise ValueError(f"set_state: the saved population has {'no' if state['memory'] is None else 'a'} memory "
                             f"store and this one has {'one' if self.memory is not None else 'none'}")
        if self.memory is not None:
            self.memory.set_state(state["memory"])

    # ---- deciding -----------------------------------------------------------------------
    def _ask_due(self) -> None:
        """Ask for the decisions due now; each takes effect after its human's reaction time."""
        world = self.world
        state = world.snapshot()
        now = state.time
        new_events = world.events[self._events_seen:]
        self._events_seen = len(world.events)
        for e in new_events:
            self._recent_events.append((e.time, e.kind))
        while self._recent_events and self._recent_events[0][0] < now - EVENT_WINDOW_S:
            self._recent_events.popleft()
        waiting = {id(p.human) for p in self._pending}  # one decision at a time per human
        due: list[tuple[Human, str, str]] = []  # human, trigger, scene
        features: dict[str, list[float]] = {}  # the same situation as numbers, for distillation
        notes: list[dict[str, Any]] = []  # memories to store
        for h in self.humans:
            if h.role == "operator":
                trigger = operator_trigger(h, now, new_events, self.config.decision_period_s.operator)
                if trigger and h.llm and id(h) not in waiting:
                    due.append((h, trigger, self._operator_scene(state)))
                    features[h.identity] = self._operator_features(state, trigger)
                continue
            if h.actor_id is None:
                continue
            if h.role == "driver":
                r = state.row_of(h.actor_id)
                if r < 0:
                    h.actor_id = None
                    continue
                trigger = driver_trigger(h, state, r, now, self.config.decision_period_s.driver,
                                         notes if self.memory is not None else None, self.episode)
                scene = driver_scene(state, h.actor_id) if trigger else None
                if trigger and h.llm:
                    features[h.identity] = driver_features(state, r, trigger)
            else:
                hits = np.flatnonzero(state.pedestrians["id"] == h.actor_id)
                if not len(hits):
                    h.actor_id = None
                    continue
                trigger = pedestrian_trigger(h, state, int(hits[0]), now, self.config.decision_period_s.pedestrian)
                scene = pedestrian_scene(state, h.actor_id, h.prior["critical_gap"]) if trigger else None
                if trigger and h.llm:
                    features[h.identity] = pedestrian_features(state, int(hits[0]), trigger)
            if trigger and h.llm and scene and id(h) not in waiting:
                due.append((h, trigger, scene))
        if notes and self.memory is not None:
            self.memory.add_many(notes)
        if not due:
            return
        reused = [self.situations.lookup(h.role, h.persona.id, features.get(h.identity))
                  if self.situations is not None else None for h, _, _ in due]
        sources = ["reuse" if r is not None else "surrogate" if self._stands_in(h, features.get(h.identity))
                   else "llm" for (h, _, _), r in zip(due, reused)]
        live = [k for k, src in enumerate(sources) if src == "llm"]
        prompts = {k: decision_prompt(due[k][0], due[k][2], self.memory, self.config.memory, now, self.episode)
                   for k in live}  # the rest have no prompt
        answers = dict(zip(live, self._ask([due[k] for k in live], list(prompts.values())))) if live else {}
        for k, ((h, trigger, _), source, entry) in enumerate(zip(due, sources, reused)):
            result = answers[k] if source == "llm" else \
                Decision(intent=INTENTS[h.role](**entry["intent"]), answer=entry["answer"]) if source == "reuse" else \
                self._surrogate_decision(h, features[h.identity])
            prompt, used = prompts.get(k, ("", []))
            h.last_decision_s, h.triggers = now, []
            self._pending.append(PendingDecision(h, h.actor_id, trigger, prompt, used, features.get(h.identity),
                                                 source, now, now + self.reaction_s(h), result))
        self._pending.sort(key=lambda p: p.effect_s)  # stable: those asked together keep their order

    def _take_effect(self, now: float) -> list[dict[str, Any]]:
        """Execute the pending decisions whose time has come (waiting for the model only if an
        answer is not in yet); returns their records."""
        due = 0  # the pending list is in effect order: the ready ones are its head
        while due < len(self._pending) and self._pending[due].effect_s <= now + 1e-9:
            due += 1
        if not due:
            return []
        ready, self._pending = self._pending[:due], self._pending[due:]
        start = time.perf_counter()
        decisions = [p.result.result() if isinstance(p.result, Future) else p.result for p in ready]
        self.model_wait_s += time.perf_counter() - start
        records, memories = [], []
        for p, decision in zip(ready, decisions):
            h = p.human
            if p.source != "llm":
                self.stats[f"{p.source}_decisions"] += 1
            else:
                self._count(decision)
                if self.situations is not None and decision.fallback is None:
                    self.situations.add(h.role, h.persona.id, p.features, decision.intent.model_dump(),
                                        decision.answer)
            if h.role != "operator" and (h.actor_id is None or h.actor_id != p.actor_id):
                self.stats["decisions_after_leaving"] += 1  # its trip ended before the decision took effect
                effects = ["left before it took effect"]
            else:
                effects = self._apply(h, decision.intent)
            h.recent.append(f"{p.asked_s:.0f} s: {self._summary(decision.intent)}")
            record = {"time_s": round(p.asked_s, 3), "effect_s": round(p.effect_s, 3), "human": h.identity,
                      "persona": h.persona.id, "role": h.role, "actor": p.actor_id, "trigger": p.trigger,
                      "prompt": p.prompt, "answer": decision.answer, "answer_chars": decision.answer_chars,
                      "intent": decision.intent.model_dump(), "fallback": decision.fallback,
                      "detail": decision.detail, "clamped": decision.clamped, "memories": p.memories,
                      "effects": effects, "features": p.features, "source": p.source}
            records.append(record)
            memories.append({"agent": h.identity, "kind": "decision", "time_s": p.asked_s, "episode": self.episode,
                             "text": f"{p.asked_s:.0f} s, {p.trigger.replace('_', ' ')}: I chose "
                                     f"{self._summary(decision.intent)}"})
        if self.memory is not None:
            self.memory.add_many(memories)
            self._reflect(now, list({id(p.human): p.human for p in ready}.values()))
        self.records += records
        return records

    def _operator_scene(self, state) -> str:
        counts = Counter(kind for _, kind in self._recent_events)
        closed = [ln.name for k, ln in enumerate(state.network.lanes) if state.lane_closed[k]]
        return operator_scene(state, dict(counts), self.world.variable_speed_limit, closed)

    def _operator_features(self, state, trigger: str) -> list[float]:
        counts = Counter(kind for _, kind in self._recent_events)
        return operator_features(state, dict(counts), self.world.variable_speed_limit,
                                 int(self.world.lane_closed.sum()), trigger)

    def _stands_in(self, h: Human, features: list[float] | None) -> bool:
        """Whether the surrogate decides for ``h`` this time (``humans.surrogate.live_fraction``
        of the decisions stay with the LLM)."""
        if self.surrogate is None or features is None or h.role not in self.surrogate.roles:
            return False
        return bool(self._surrogate_rng.random() >= self.config.surrogate.live_fraction)

    def _surrogate_decision(self, h: Human, features: list[float]) -> Decision:
        fields = self.surrogate.predict(h.role, h.persona.id, features)
        return Decision(intent=INTENTS[h.role](**fields, reason="surrogate"), answer="")

    def _ask(self, due: list, prompts: list) -> list[Future]:
        """Decisions for ``due`` humans, sent at once without waiting (futures of decisions);
        identical requests (same persona, same prompt) are asked once: one answer, one cache
        entry, the same decision."""
        firsts: dict[tuple[str, str], int] = {}
        for i, ((h, _, _), (prompt, _)) in enumerate(zip(due, prompts)):
            firsts.setdefault((h.agent.system_message, prompt), i)
        # in order of system message: one persona's requests follow each other, so llama.cpp
        # (one request at a time) reuses the evaluated persona prefix
        futures = {key: self.runner.submit(self._decide(due[i][0], prompts[i][0]))
                   for key, i in sorted(firsts.items())}
        return [futures[(h.agent.system_message, prompt)] for (h, _, _), (prompt, _) in zip(due, prompts)]

    async def _decide(self, h: Human, prompt: str) -> Decision:
        """One decision; waits for a free model slot first, so its timeout counts model time only."""
        async with self.runner.slot():
            return await h.agent.decide(prompt, self._fallback(h))

    def _fallback(self, h: Human) -> Intent:
        return rule_intent(h.persona, h.prior)

    def _count(self, decision: Decision) -> None:
        self.stats["decisions"] += 1
        if decision.cached:
            self.stats["cache_hits"] += 1
        elif decision.fallback != "replay_miss":
            self.latencies.append(decision.latency_s)  # failed and timed-out requests cost waiting too
            self.stats["failed_calls" if request_failed(decision.fallback) else "llm_calls"] += 1
        if decision.fallback:
            self.stats["fallbacks"] += 1
            self.stats[f"fallback_{decision.fallback}"] += 1
        if decision.clamped:
            self.stats["clamped"] += 1

    # ---- executing intents ----------------------------------------------------------------
    def _apply(self, h: Human, intent: Intent) -> list[str]:
        """Execute ``intent`` through the twin's behaviour parameters and controls; returns
        what it changed (for the trace)."""
        h.intent = intent
        world = self.world
        if isinstance(intent, DriverIntent):
            world.set_vehicle_params(h.actor_id, **intent.parameters(h.prior))
            return []
        if isinstance(intent, PedestrianIntent):
            world.set_pedestrian_params(h.actor_id, **intent.parameters(h.prior))
            return []
        return operate(self.world, intent, lambda advisory: self.broadcast(advisory, source=h.identity))

    def interview(self, identity: str, question: str) -> dict[str, Any]:
        """Ask LLM human ``identity`` in character why it acts as it does. It answers from its
        persona, its current scene, its recent decisions and the memories the question recalls;
        nothing is stored and the simulation does not change."""
        h = self._human(identity)
        if h.agent is None:
            raise ValueError(f"{identity} is rule-based: there is no model to answer for it")
        state = self.world.snapshot()
        if h.role == "operator":
            scene = self._operator_scene(state)
        elif h.actor_id is None:
            scene = "You are not on the road right now."
        elif h.role == "driver":
            scene = driver_scene(state, h.actor_id) or "You have left the road."
        else:
            scene = pedestrian_scene(state, h.actor_id, h.prior["critical_gap"]) or "You have left the road."
        prompt, recalled = interview_prompt(h, scene, question, self.memory, self.config.memory, state.time,
                                            self.episode)
        answer, fallback = self.runner.run(h.agent.answer_question(prompt))
        self.stats["interviews"] += 1
        if fallback:
            self.stats[f"interview_fallback_{fallback}"] += 1
        return {"human": identity, "question": question, "t": round(state.time, 3), "prompt": prompt,
                "answer": answer, "fallback": fallback,
                "memories": [{"id": m.id, "text": m.text} for m in recalled]}

    def change_persona(self, identity: str, persona_id: str) -> None:
        """Give human ``identity`` another persona of the same role from now on (a what-if):
        new behaviour parameters for its current actor, a new system message for its model."""
        self.set_persona(identity, self.persona_for(identity, persona_id))

    def set_persona(self, identity: str, persona: Persona) -> None:
        """Give human ``identity`` ``persona`` (of its role; a library persona or one with other
        traits) from now on: new behaviour parameters for its current actor (its trip's signal
        draw kept) under the intent it follows, and a new system message for its model."""
        h = self._human(identity)
        if persona.role != h.role:
            raise PersonaError(f"{persona.id!r} is a {persona.role}, not a {h.role}")
        h.persona = persona
        if h.agent is not None:
            h.agent = HumanAgent.for_model(h.agent.name, persona, self.client, self.config.model)
        if h.actor_id is not None:
            prior = self._prior(h)
            self._apply(h, h.intent if h.intent is not None else rule_intent(persona, prior))

    def use_rules(self, identity: str) -> None:
        """Let human ``identity`` follow its persona's rule-based intent from now on instead of
        its model's decisions (those asked for and not yet in effect are dropped)."""
        h = self._human(identity)
        h.llm = False
        self._pending = [p for p in self._pending if p.human is not h]
        if h.actor_id is not None or h.role == "operator":
            self._apply(h, rule_intent(h.persona, h.prior))

    def persona_for(self, identity: str, persona_id: str) -> Persona:
        """Persona ``persona_id`` if human ``identity`` may take it on (same role); else raises
        ``KeyError`` (no such human) or ``PersonaError`` (unknown persona, other role)."""
        h = self._human(identity)
        persona = get_persona(persona_id, load_personas(strict=False))
        if persona.role != h.role:
            raise PersonaError(f"{persona_id!r} is a {persona.role}, not a {h.role}")
        return persona

    def _human(self, identity: str) -> Human:
        h = next((h for h in self.humans if h.identity == identity), None)
        if h is None:
            raise KeyError(f"no human {identity!r} (humans: {sorted(h.identity for h in self.humans)})")
        return h

    def alert_operators(self, text: str) -> int:
        """A supervisor's alert for the operators: it enters their next prompt (as data) and
        triggers a decision; returns how many operators received it."""
        operators = [h for h in self.humans if h.role == "operator"]
        for h in operators:
            h.advisories.append(f"Supervisor alert at {self.world.time:.0f} s: {text}")
            h.triggers.append("supervisor_alert")
        self.stats["supervisor_alerts"] += len(operators)
        return len(operators)

    def describe(self, actor_id: int) -> dict[str, str]:
        """Who embodies ``actor_id`` (persona identity) and what they currently intend, if anyone."""
        for h in self.humans:
            if h.actor_id == actor_id:
                out = {"persona": h.identity}
                if h.intent is not None:
                    out["intent"] = self._summary(h.intent)
                return out
        return {}

    def broadcast(self, advisory: str, source: str = "operator") -> None:
        """Send an advisory to every driver on the road: it enters their next prompt (as data),
        their memory, and triggers a decision."""
        now = self.world.time
        notes = []
        for h in self.humans:
            if h.role == "driver" and h.llm and h.actor_id is not None:
                h.advisories.append(advisory)
                h.triggers.append("advisory")
                notes.append({"agent": h.identity, "kind": "advisory", "time_s": now, "episode": self.episode,
                              "text": f"Advisory from {source} at {now:.0f} s: {advisory}"})
        self.stats["advisories"] += 1
        if notes and self.memory is not None:
            self.memory.add_many(notes)

    def _reflect(self, now: float, humans: list[Human]) -> None:
        if self.reflector is None:
            return
        due = [h for h in humans if self.reflector.due(h.identity)]
        if due:
            use_llm = self.config.memory.reflect_with_llm
            self.runner.run_all([
                self.reflector.reflect(h.identity, now, self._summariser(h) if use_llm else None, episode=self.episode)
                for h in due])
            self.stats["reflections"] += len(due)

    def _summariser(self, h: Human):
        """An LLM reflection for ``h``: one short insight from its recent memories (as data)."""

        async def summarise(memories) -> str | None:
            from autogen_core.models import SystemMessage, UserMessage

            text = "\n".join(quote(m.text) for m in memories)
            messages = [SystemMessage(content=h.persona.system_message()),
                        UserMessage(content=f"Your recent memories:\n{text}\nIn one short sentence, what have you "
                                            "learned about driving or walking here?", source="twin")]
            async with self.runner.slot():
                result = await asyncio.wait_for(
                    self.client.create(messages, extra_create_args={
                        "max_tokens": 48, "seed": request_seed(messages[0].content, messages[1].content)}),
                    timeout=self.config.model.timeout_s)
            return result.content if isinstance(result.content, str) else None

        return summarise

    @staticmethod
    def _summary(intent: Intent) -> str:
        data = intent.model_dump()
        reason = data.pop("reason", "")
        fields = ", ".join(f"{k} {v}" for k, v in data.items() if v not in ("", 0, "keep", "as_usual"))
        return (fields or "as usual") + (f" ({reason})" if reason else "")

"""The supervisor: watches the twin, flags hazards and anomalies, explains and escalates alerts.

Detection is deterministic and never needs a model: every ``every_steps`` physics steps the
supervisor takes a ``WorldState``, runs the anomaly detector (``agents.supervisor.anomaly``) and the
hazard tracker (``agents.supervisor.hazards``), and merges both into events. An event becomes an
*alert* the moment its severity reaches ``alert_severity``; each alert gets a triage
(``agents.supervisor.triage``): a template explanation, or the model's when ``triage: llm`` is set
(it sees flagged events and the involved actors, never the raw step stream). With
``alert_operator: true`` alerts that warrant it reach the scenario's operator agents.

The same object serves ``run.py simulate`` (trace: ``hazards.jsonl``, ``alerts.jsonl``), the
Gymnasium and PettingZoo views (``info["supervisor"]`` and a safety cost per vehicle) and
``run.py evaluate supervisor``.
"""

from __future__ import annotations

import copy
import time
from collections import Counter
from typing import Any, Callable

from agents.supervisor.anomaly import AnomalyDetector
from agents.supervisor.config import SupervisorConfig
from agents.supervisor.hazards import HazardEvent, HazardTracker
from envs.state import WorldState

COST_WEIGHTS = {"low": 0.1, "medium": 0.5, "high": 1.0}  # safety cost per active event, by severity
WINDOW_TRIM_EVENTS = 1000  # a window of events not taken for this long is trimmed...
WINDOW_KEEP_S = 60.0  # [s] ...to the events active in the last minute


class Supervisor:
    """One episode's supervisor (see the module docstring)."""

    def __init__(self, config: SupervisorConfig | None = None, agent: Any = None,
                 describe_actor: Callable[[int], dict] | None = None,
                 on_alert: Callable[[list[HazardEvent], Any], None] | None = None) -> None:
        self.config = config or SupervisorConfig()
        self.tracker = HazardTracker(self.config.hazards)
        self.detector = AnomalyDetector(self.config.anomaly)
        self.agent = agent  # an agents.supervisor.triage.SupervisorAgent, or None for template triage
        self.describe_actor = describe_actor
        self.on_alert = on_alert
        self.alerts: list[dict] = []  # one per alert: the event when alerted, and its triage
        self.started: list[HazardEvent] = []  # events that started at the last check
        self.seconds = 0.0  # [s] wall time spent checking (overhead)
        self.foresight_s = 0.0  # [s] wall time spent running futures at alerts
        self.foresight_skipped = 0  # alerts without futures: the world had more than foresight.max_vehicles
        self.checks = 0
        self._alerted: set[int] = set()
        self._window: dict[int, HazardEvent] = {}  # events active at any check since take_window()
        self._steps = 0
        self._now = 0.0

    @property
    def events(self) -> list[HazardEvent]:
        return self.tracker.events

    # ---- saved state: forks from any moment ---------------------------------------------------
    SHARED = ("config", "agent", "describe_actor", "on_alert")  # not state: kept, never copied

    def get_state(self) -> dict:
        """A saved copy of what this supervisor has seen and raised (events open and closed,
        anomaly sums, alerts, its clocks): ``set_state`` makes this or another supervisor of the
        same config check on as this one does from here. The triage agent and callbacks are not
        state and stay with the supervisor restored into."""
        return {**self._copied(self.__dict__), "_config": self.config}

    def set_state(self, state: dict) -> None:
        """Become the supervisor saved in ``state`` (``get_state``); ``state`` stays usable. Its own
        config stays: one that differs from the saved supervisor's is refused."""
        saved_config = state.get("_config")
        if saved_config is not None and saved_config != self.config:
            raise ValueError("set_state: the saved supervisor has another config than this one")
        self.__dict__.update({k: v for k, v in self._copied(state).items() if k != "_config"})

    def _copied(self, source: dict) -> dict:
        memo: dict[int, Any] = {}
        tracker = source["tracker"]
        # histories only grow and their entries never change again: closed events and alerts are
        # shared, their lists copied flat, so saving costs the same at any tick
        memo[id(tracker.closed)] = list(tracker.closed)
        memo[id(source["alerts"])] = list(source["alerts"])
        for item in (*tracker.closed, *source["alerts"]):
            memo[id(item)] = item
        junction_for = getattr(tracker, "_junction_for", None)
        if junction_for is not None:  # the world's network, which the tracker only remembers: shared
            memo[id(junction_for)] = junction_for
        state = copy.deepcopy({k: v for k, v in source.items() if k not in self.SHARED}, memo)
        # events are known by identity: the copies' identities replace the originals'
        state["_alerted"] = {id(memo[i]) for i in source["_alerted"] if i in memo}
        state["_window"] = {id(ev): ev for ev in state["_window"].values()}
        return state

    def after_step(self, world: Any) -> list[HazardEvent]:
        """Call after every physics step of ``world``; checks every ``every_steps`` steps."""
        self._steps += 1
        if not self.config.enabled or self._steps % self.config.every_steps:
            return []
        return self._check(world)

    def check_now(self, world: Any) -> None:
        """Check ``world`` unless the last check was at this very time (an env step that ends
        between two scheduled checks still gets its events and cost)."""
        if self.config.enabled and (self.checks == 0 or abs(world.time - self._now) > 1e-9):
            self._check(world)

    def _check(self, world: Any) -> list[HazardEvent]:
        t0 = time.perf_counter()
        state = world.snapshot()
        self.seconds += time.perf_counter() - t0  # the snapshot is the supervisor's cost too
        return self.observe(state, world)

    def observe(self, state: WorldState, world: Any = None) -> list[HazardEvent]:
        """Check one state; returns the events that started now (alerts are triaged inside, with
        futures run from ``world`` when it is given and ``foresight.futures`` is on)."""
        t0 = time.perf_counter()
        flags = self.detector.update(state)
        self.started = self.tracker.update(state, flags)
        self._now = state.time
        self.checks += 1
        current = self._current()
        self._window.update((id(ev), ev) for ev in current)
        if len(self._window) > WINDOW_TRIM_EVENTS:  # nobody takes the window (no RL loop): keep it bounded
            self._window = {k: ev for k, ev in self._window.items() if state.time - ev.end_s <= WINDOW_KEEP_S}
        new_alerts = [ev for ev in current
                      if id(ev) not in self._alerted and ev.at_least(self.config.alert_severity)
                      and ev.category in self.config.alert_categories]
        self.seconds += time.perf_counter() - t0
        if new_alerts:
            self._alert(new_alerts, state, world)
        return self.started

    def _alert(self, events: list[HazardEvent], state: WorldState, world: Any = None) -> None:
        from agents.supervisor.triage_rules import template_triage

        self._alerted.update(id(ev) for ev in events)
        dicts = [ev.to_dict() for ev in events]
        context = self._context(events, state)
        foresight = self.config.foresight
        if world is not None and foresight.futures and any(ev.category != "incident" for ev in events):
            # (a collision that has happened is no longer a probability: incidents alone get no futures)
            if len(world.vehicles) > foresight.max_vehicles:
                self.foresight_skipped += 1
            else:
                t0 = time.perf_counter()
                context["futures"] = self._foresee(world)
                self.foresight_s += time.perf_counter() - t0
        if self.agent is not None and self.config.triage == "llm":
            triage = self.agent.triage_sync(dicts, context)
        else:
            triage = template_triage(dicts, context, fallback="llm_off")
        if "futures" in context:
            triage = _weighed(triage, context["futures"], foresight)
        self.alerts.append({"time_s": round(state.time, 3), "events": dicts, "triage": triage.model_dump()})
        if self.on_alert is not None and self.config.alert_operator and triage.alert_operator:
            self.on_alert(events, triage)

    def _foresee(self, world: Any) -> dict:
        """``foresight.futures`` futures of ``world`` from now (seeded by the time, so a rerun sees
        the same), summed up by ``envs.futures.outlook``."""
        from envs.futures import outlook, run_future

        look = self.config.foresight
        saved = world.get_state()
        base = int(round(world.time * 1000)) * 1000
        outcomes = [run_future(saved, base + k, look.horizon_s) for k in range(look.futures)]
        return {k: v for k, v in outlook(outcomes, look.horizon_s).items() if "near_miss" not in k}

    def _context(self, events: list[HazardEvent], state: WorldState) -> dict:
        actors: dict[str, dict] = {}
        v, p = state.vehicles, state.pedestrians
        for aid in sorted({a for ev in events for a in ev.actors}):
            r = state.row_of(aid)
            if r >= 0:
                info = {"kind": ("car", "truck", "bus")[int(v["vtype"][r])], "speed_mps": round(float(v["v"][r]), 1)}
            elif aid in set(p["id"].tolist()):
                info = {"kind": "pedestrian"}
            else:
                info = {"kind": "gone"}
            if self.describe_actor is not None:
                info.update(self.describe_actor(aid))
            actors[str(aid)] = info
        return {"actors": actors, "signal_interval": state.signal_interval, "time_s": round(state.time, 1)}

    # ---- views for RL and the trace -------------------------------------------------------------
    def _current(self) -> list[HazardEvent]:
        """Events flagged at the last check: the open ones seen now and the pass-through ones."""
        now = self._now - 1e-9
        current = [ev for ev in self.tracker.open.values() if ev.end_s >= now]
        return current + [ev for ev in self.started if ev not in current]  # pass-through events: just now

    def take_window(self) -> list[HazardEvent]:
        """Events active at any check since the last call (an RL step's worth), then forgotten."""
        window = list(self._window.values())
        self._window.clear()
        return window

    def step_info(self, window: list[HazardEvent], actor_id: int | None, since_s: float) -> dict:
        """An RL agent's view of one step: the ``window`` events that involve ``actor_id`` (or no
        actor, such as signal faults; every event when ``actor_id`` is None), alerts about it
        after ``since_s`` [s], and the safety cost: severity-weighted count of those events
        (``COST_WEIGHTS``)."""
        mine = [ev for ev in window if actor_id is None or actor_id in ev.actors or not ev.actors]
        alerts = [a for a in self.alerts[-20:] if a["time_s"] > since_s
                  and (actor_id is None or any(actor_id in e["actors"] for e in a["events"]))]
        return {"events": [ev.to_dict() for ev in mine], "alerts": alerts,
                "cost": float(sum(COST_WEIGHTS[ev.severity] for ev in mine))}

    def summary(self) -> dict:
        """Counts of events by kind/severity and category, alerts, and the supervisor's wall time."""
        events = self.tracker.events
        return {
            "events": dict(sorted(Counter(f"{e.kind}/{e.severity}" for e in events).items())),
            "by_category": dict(sorted(Counter(e.category for e in events).items())),
            "alerts": len(self.alerts),
            "checks": self.checks,
            "seconds": round(self.seconds, 3),
            "foresight_s": round(self.foresight_s, 3),
            "foresight_skipped": self.foresight_skipped,
        }


def _weighed(triage: Any, futures: dict, foresight: Any) -> Any:
    """``triage`` with its severity raised to what the futures' collision probability calls for
    (``foresight.high_at``, ``medium_at``; never lowered: the events' own severity stands)."""
    from agents.supervisor.config import SEVERITIES

    p = futures["p_collision"]
    floor = "high" if p >= foresight.high_at else "medium" if p >= foresight.medium_at else "low"
    if SEVERITIES.index(floor) <= SEVERITIES.index(triage.severity):
        return triage
    return triage.model_copy(update={"severity": floor, "alert_operator": triage.alert_operator or floor == "high"})


def build_supervisor(config: Any, population: Any = None, client: Any = None, runner: Any = None) -> Supervisor:
    """The supervisor a scenario ``config`` asks for: persona-aware context when a ``population``
    is given, LLM triage on ``client`` when ``supervisor.triage`` is ``llm``, operator alerts when
    ``supervisor.alert_operator`` is set."""
    cfg = config.supervisor
    agent = None
    if cfg.asks_model:  # a disabled supervisor never triages: no model for it
        if client is None:
            raise ValueError("supervisor.triage: 'llm' needs a model client (the scenario's humans.model)")
        from agents.supervisor.triage import SupervisorAgent

        model = config.humans.model
        agent = SupervisorAgent(client, timeout_s=model.timeout_s, runner=runner, structured_output=model.request_mode)
    on_alert = None
    if population is not None and cfg.alert_operator:
        def on_alert(events: list[HazardEvent], triage: Any) -> None:
            population.alert_operators(f"{triage.explanation} Recommended: {triage.mitigation}.")
    return Supervisor(cfg, agent, population.describe if population is not None else None, on_alert)

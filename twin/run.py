"""Running a scenario with its humans for a while and summarising what happened.

Used by ``python run.py simulate``. A run directory gets the resolved scenario
(``scenario.yaml``), every world event (``events.jsonl``), every decision of an LLM
human with its prompt, answer, intent and fallback (``decisions.jsonl``), the LLM cache
(``llm_cache.jsonl``), the humans' memory (``memory/``), the trace of the world state,
intents, decisions and hazards per decision tick (``trace.jsonl.gz``, see ``docs/trace.md``), the supervisor's hazard, violation
and anomaly events (``hazards.jsonl``) and its triaged alerts (``alerts.jsonl``), the
summary (``summary.json``, with the injected faults and ``trace_sha256`` over events,
decisions, hazards, alerts and the trace's tick records) and, on request, an animation (``run.gif``).

``replay=RUN_DIR`` reruns a recorded run from its scenario and LLM cache with zero model
calls; the trace hash then equals the recorded one.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import json
import logging
import subprocess
from collections import Counter
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import yaml
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from envs.occupants import StepObserver
from envs.render import Renderer
from envs.state import near_miss
from envs.trace import TRACE_FILE, TraceWriter, tick_steps
from envs.world import World
from twin import assemble
from twin.episode import Episode
from twin.model_report import human_summary, model_summary
from envs.scenario import ScenarioError
from twin.occupants import HUMAN_MODES
from twin.scenario import ScenarioConfig, load_scenario

log = logging.getLogger(__name__)
try:
    VERSION = importlib.metadata.version("traffic-twin")
except importlib.metadata.PackageNotFoundError:  # run from a source tree that was never installed
    VERSION = None
GIF_FPS = 4  # GIF frames per second; frames are taken every simulated half second
CHECKPOINTS_KEPT = 32  # saved states kept at full density by a run that checkpoints (older ones thinned)
GIF_MAX_FRAMES = 600


class ScenarioRun:
    """A scenario running step by step with its humans and supervisor, writing a run directory.

    ``simulate`` drives one to the end; the live inspector steps one, interviews its humans
    and forks it. ``keep_ticks`` keeps every trace record in ``ticks`` as well."""

    def __init__(self, config: ScenarioConfig, out: Path, replay: Path | None = None, model_client: Any = None,
                 console: Console | None = None, keep_ticks: bool = False,
                 observers: Sequence[StepObserver] = (), checkpoint_ticks: int = 0) -> None:
        console = console or Console()
        self.config, self.out = config, Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        humans, client = config.humans, None
        needs_client = humans.llm_count or config.supervisor.asks_model
        if needs_client:  # a model server is probed here; the scenario written says what it takes
            client, config = assemble.model_client(config, self.out / "llm_cache.jsonl", replay, model_client, console)
            self.config = config
        (self.out / "scenario.yaml").write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
        self.world = world = World(config)
        memory, persist = None, False
        if humans.memory.enabled and humans.llm_count:
            memory, persist = assemble.memory_store(config, self.out, replay is not None)
        self.population = assemble.population(world, config, client, memory, persist,
                                              assemble.situation_cache(config, self.out, replay),
                                              episode=assemble.recorded_episode(replay))
        self.supervisor = assemble.supervisor(config, self.population, client, keep_disabled=True)
        self.episode = Episode(world, self.population, self.supervisor)
        self.observers = list(observers)  # after each physics step, before the supervisor (a trajectory recorder)
        self.decisions_file = (self.out / "decisions.jsonl").open("w")
        self.trace = TraceWriter(self.out / TRACE_FILE)
        self.trace.header(config, world.network, _trace_humans(self.population))
        self.ticks: list[dict] | None = [] if keep_ticks else None
        self.steps = 0
        self.speeds: list[float] = []
        self.near_misses, self._closing_in = 0, set()
        self._tick_steps = tick_steps(config.sim_hz)  # a trace tick every this many physics steps
        # the first physics step and the supervisor's first check compile (or load from numba's
        # cache) the kernels: their time is reported apart (the humans' first decisions are not in it)
        self.compile_s = 0.0
        self._first_check_timed = False
        self._pending: list[dict] = []  # decisions since the last trace tick
        self._seen_hazards: set[int] = set()  # supervisor events already in the trace
        self._events_traced = self._alerts_traced = 0  # world events and alerts already in the trace
        self._closed = False
        self.finished = False
        self.started = time.perf_counter()
        # saved states every checkpoint_ticks trace ticks, by the number of ticks traced before them
        self.checkpoint_ticks = checkpoint_ticks
        self.checkpoints: dict[int, dict[str, Any]] = {0: self.get_state()} if checkpoint_ticks else {}

    def step(self) -> None:
        """One physics step, the supervisor's check, the humans' due decisions, a trace tick when due."""
        world = self.world
        _, records = self.episode.step(self.observers)
        for record in records:
            self.decisions_file.write(json.dumps(record) + "\n")
            self._pending.append(record)
        if records:
            self.decisions_file.flush()
        if self.steps % self.config.sim_hz == 0:
            if len(world.vehicles):
                self.speeds.append(float(world.vehicles.v.mean()))
            self.near_misses, self._closing_in = _near_misses(world, self._closing_in, self.near_misses)
        if self.steps == 0:
            self.compile_s = self.episode.physics_s
        if not self._first_check_timed and self.supervisor.checks:
            self.compile_s += self.supervisor.seconds
            self._first_check_timed = True
        self.steps += 1
        if self.steps % self._tick_steps == 0:
            record = self._trace_tick()
            if self.ticks is not None:
                self.ticks.append(record)
            self._pending = []
            if self.checkpoint_ticks and self.trace.ticks % self.checkpoint_ticks == 0:
                self.checkpoints[self.trace.ticks] = self.get_state()
                self._thin_checkpoints()

    def _thin_checkpoints(self) -> None:
        """Keep the newest ``CHECKPOINTS_KEPT`` saved states; of the older ones every second goes
        each time the limit is passed (a fork far back replays a little longer; memory stays bounded)."""
        if len(self.checkpoints) <= 2 * CHECKPOINTS_KEPT:
            return
        ticks = sorted(self.checkpoints)
        for tick in ticks[1:-CHECKPOINTS_KEPT:2]:  # (tick 0 stays)
            del self.checkpoints[tick]

    def get_state(self) -> dict[str, Any]:
        """A saved copy of the run right after a trace tick (as checkpoints are taken): its episode
        (``Episode.get_state``) and what the run itself counts (steps, near misses, what is traced
        so far). A restored run takes every supervisor event so far as traced."""
        return {"episode": self.episode.get_state(), "steps": self.steps, "ticks": self.trace.ticks,
                "speeds": list(self.speeds), "near_misses": self.near_misses, "closing_in": set(self._closing_in),
                "pending": list(self._pending), "events_traced": self._events_traced,
                "alerts_traced": self._alerts_traced, "compile_s": self.compile_s,
                "first_check_timed": self._first_check_timed}

    def set_state(self, state: dict[str, Any], ticks: list[dict] | None = None) -> None:
        """Go on from the run saved in ``state`` (``get_state`` of a run of the same scenario);
        ``ticks``, the trace records before it, are kept in ``self.ticks``. This run's trace file
        goes on from there: the records before it are the saved run's."""
        self.episode.set_state(state["episode"])
        self.steps, self.trace.ticks = state["steps"], state["ticks"]
        self.speeds, self.near_misses = list(state["speeds"]), state["near_misses"]
        self._closing_in, self._pending = set(state["closing_in"]), list(state["pending"])
        self._events_traced, self._alerts_traced = state["events_traced"], state["alerts_traced"]
        self.compile_s, self._first_check_timed = state["compile_s"], state["first_check_timed"]
        self._seen_hazards = {id(e) for e in self.supervisor.events}  # traced by the saved run
        if self.ticks is not None:
            self.ticks = list(ticks or [])

    def _trace_tick(self) -> dict[str, Any]:
        """One trace record (written and returned): the state now and what happened since the previous tick."""
        world, population, supervisor = self.world, self.population, self.supervisor
        by_actor, intents = {}, {}
        if population is not None:
            for h in population.humans:
                if h.actor_id is not None:
                    by_actor[h.actor_id] = h.identity
                if h.intent is not None and (h.actor_id is not None or h.role == "operator"):
                    intents[h.identity] = h.intent.model_dump(exclude={"reason"})
        hazards = []
        for e in supervisor.events:
            if id(e) not in self._seen_hazards:
                self._seen_hazards.add(id(e))
                hazards.append(e.to_dict())
        events = [{"kind": e.kind, "time_s": round(e.time, 3), "actors": list(e.actors)}
                  for e in world.events[self._events_traced:]]
        alerts = supervisor.alerts[self._alerts_traced:]
        self._events_traced, self._alerts_traced = len(world.events), len(supervisor.alerts)
        return self.trace.tick(world.snapshot(), by_actor, intents, self._pending, hazards, events, alerts,
                               world.signals.dark)

    def advance(self, seconds: float) -> None:
        """Run ``seconds`` [s] of simulated time."""
        for _ in range(int(round(seconds * self.config.sim_hz))):
            self.step()

    def close(self) -> None:
        """Release the files, the model and the memory; an interrupted run keeps what it wrote."""
        if self._closed:
            return
        self._closed = True
        self.decisions_file.close()
        self.trace.close()
        self.episode.close()

    def finish(self) -> dict[str, Any]:
        """Close the run, write its events, hazards, alerts and return the summary."""
        self.close()
        self.finished = True
        wall = time.perf_counter() - self.started
        world, supervisor, out = self.world, self.supervisor, self.out
        with (out / "events.jsonl").open("w") as fh:
            for e in world.events:
                fh.write(json.dumps({"kind": e.kind, "time_s": round(e.time, 3), "actors": list(e.actors),
                                     "x_m": round(e.x, 2), "y_m": round(e.y, 2),
                                     **({"cause": e.cause} if e.cause else {})}) + "\n")
        if world.detectors is not None:  # imported networks with SUMO detectors: a row per detector and period
            world.detectors.flush(world.time)
            write_detector_rows(out / DETECTORS_FILE, world.detectors.rows)
        hazards = write_supervisor_files(out, supervisor)
        kinds = [e.kind for e in world.events]
        summary = {
            "scenario": self.config.name,
            "seed": self.config.seed,
            "simulated_s": round(world.time, 2),
            "wall_s": round(wall, 2),
            "compile_s": round(self.compile_s, 2),  # first step and check: numba compiles or loads the kernels
            "realtime_factor": round(world.time / max(wall - self.compile_s, 1e-9), 1),
            "vehicles_entered": world.stats["vehicles_entered"],
            "vehicles_exited": world.stats["vehicles_exited"],
            "vehicles_now": len(world.vehicles),
            **({"vehicles_waiting_to_depart": world.schedule.backlog,
                "mean_travel_time_s": round(float(np.mean(world.travel_times)), 1) if world.travel_times else None,
                "vehicles_rerouted": world.routes.rerouted} if world.schedule is not None else {}),
            "mean_speed_mps": round(float(np.mean(self.speeds)), 2) if self.speeds else None,
            "pedestrians_entered": world.stats["pedestrians_entered"],
            "pedestrians_crossed": world.stats["pedestrians_crossed"],
            "mean_pedestrian_wait_s": (round(world.stats["pedestrian_wait_s"] / world.stats["pedestrians_crossed"], 2)
                                       if world.stats["pedestrians_crossed"] else None),
            "collisions": kinds.count("collision"),
            "off_road": kinds.count("off_road"),
            "red_light_violations": kinds.count("red_light"),
            "stuck_vehicles": kinds.count("stuck"),  # stood still for envs.world.world.STUCK_REPORT_S
            "stuck_by_cause": dict(sorted(Counter(e.cause for e in world.events if e.kind == "stuck").items())),
            "near_misses": self.near_misses,
            "hazards": dict(sorted(hazards.items())),
            "violations": dict(sorted(Counter(h.kind for h in supervisor.events if h.category == "violation").items())),
            "anomalies": dict(sorted(Counter(h.kind for h in supervisor.events if h.category == "anomaly").items())),
            "alerts": len(supervisor.alerts),
            **({"detectors": len(world.detectors.specs), "detector_rows": len(world.detectors.rows)}
               if world.detectors is not None else {}),
            "supervisor_s": round(supervisor.seconds, 2),
            "foresight_s": round(supervisor.foresight_s, 2),  # futures run at alerts (supervisor.foresight)
            "foresight_skipped": supervisor.foresight_skipped,
            "faults": world.faults.log,
            "faults_never_started": [f.kind for f in world.faults.unstarted  # those whose time came
                                     if f.at_s <= world.faults.applied_until_s + 1e-9],
            "version": VERSION,
            "git_commit": _git_commit(),
        }
        if self.population is not None:
            summary.update(human_summary(self.population, world.time))
        summary.update(model_summary(self.config, self.population, supervisor.agent))
        summary["trace_sha256"] = _trace_hash(out)
        summary["trace_sha256_covers"] = [*HASHED_FILES, HASHED_TICKS]
        summary["trace_bytes"] = (out / TRACE_FILE).stat().st_size
        summary["run_dir"] = str(out)
        return summary


def simulate(
    scenario: str | Path,
    minutes: float | None = None,
    overrides: dict[str, Any] | None = None,
    out: Path | None = None,
    gif: bool = False,
    console: Console | None = None,
    replay: Path | None = None,
    model_client: Any = None,
    humans: str = "llm",
    observers: Sequence[StepObserver] = (),
) -> dict[str, Any]:
    """Simulate ``scenario`` (its configured humans, no RL vehicles) and return the summary.
    ``observers`` act after each physics step (``shadow.recorder.TrajectoryRecorder``).

    ``replay`` is a recorded run directory: its scenario, duration and LLM cache are used
    and no model is called. ``model_client`` replaces the configured backend (tests).
    ``humans`` is ``llm`` (as configured), ``rule`` (every persona slot without a model)
    or ``off`` (no persona humans)."""
    if humans not in HUMAN_MODES:
        raise ValueError(f"humans must be one of {HUMAN_MODES}, not {humans!r}")
    if replay is not None and humans != "llm":
        raise ScenarioError("--humans does not apply to a replay (it reruns the recorded humans)")
    console = console or Console()
    recorded: dict[str, Any] = {}
    if replay is not None:
        replay = Path(replay)
        if not (replay / "scenario.yaml").exists():
            raise FileNotFoundError(f"{replay}: not a run directory (no scenario.yaml)")
        scenario = replay / "scenario.yaml"
        recorded = json.loads((replay / "summary.json").read_text()) if (replay / "summary.json").exists() else {}
        if minutes is None and "simulated_s" in recorded:
            minutes = recorded["simulated_s"] / 60.0
    overrides = {"ego.controlled": 0, **(overrides or {})}
    config = with_humans(load_scenario(scenario, overrides), humans)
    if replay is not None and config.humans.llm_count and not (replay / "llm_cache.jsonl").exists():
        raise FileNotFoundError(f"{replay}: no llm_cache.jsonl, so its LLM humans cannot be replayed")
    duration = config.duration_s if minutes is None else 60.0 * minutes
    out = out or Path("runs") / f"{config.name}-{datetime.now():%Y%m%d-%H%M%S}"
    run = ScenarioRun(config, out, replay=replay, model_client=model_client, console=console, observers=observers)
    world = run.world
    steps = int(round(duration * config.sim_hz))
    frames = []
    renderer = Renderer(world.network, config.render) if gif else None
    frame_every = max(1, config.sim_hz // 2)
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[clock]}"),
               TextColumn("{task.fields[actors]}"), TimeRemainingColumn()]
    try:
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task(f"simulating {config.name}", total=steps, clock="", actors="")
            for k in range(steps):
                run.step()
                if k % config.sim_hz == 0:
                    progress.update(task, completed=k + 1, clock=f"t={world.time:7.1f} s",
                                    actors=f"{len(world.vehicles)} veh {len(world.pedestrians)} ped")
                if renderer is not None and k % frame_every == 0 and len(frames) < GIF_MAX_FRAMES:
                    frames.append(renderer.render(world.snapshot()))
    finally:  # an interrupted run keeps its decisions and trace so far and releases the model and memory
        run.close()
    summary = run.finish()
    if replay is not None and "trace_sha256" in recorded:
        with_ticks = HASHED_TICKS in recorded.get("trace_sha256_covers", [])
        digest = summary["trace_sha256"] if with_ticks else _trace_hash(out, ticks=False)
        summary["replay_identical"] = digest == recorded["trace_sha256"]
    if frames:
        from PIL import Image

        images = [Image.fromarray(f) for f in frames]
        images[0].save(out / "run.gif", save_all=True, append_images=images[1:], duration=1000 // GIF_FPS, loop=0)
        summary["gif"] = str(out / "run.gif")
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    if summary["faults_never_started"]:
        log.warning("faults that never found an actor to act on: %s", ", ".join(summary["faults_never_started"]))

    table = Table(title=f"{config.name}: {summary['simulated_s']:.0f} simulated s in {summary['wall_s']:.1f} s, "
                        f"{summary['compile_s']:.1f} s of it compiling ({summary['realtime_factor']}x real time)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in summary.items():
        if key not in ("scenario", "simulated_s", "wall_s", "realtime_factor", "trace_sha256", "trace_sha256_covers"):
            table.add_row(key, str(value))
    console.print(table)
    return summary


DETECTORS_FILE = "detectors.csv"
DETECTOR_COLUMNS = ("id", "kind", "begin_s", "end_s", "vehicles", "flow_veh_h", "mean_vehicles", "speed_mps",
                    "occupancy_pct", "mean_halting")


def write_supervisor_files(out: Path, supervisor: Any) -> Counter:
    """A run directory's ``hazards.jsonl`` (in order of start) and ``alerts.jsonl``; returns
    the hazards counted by ``kind/severity``."""
    with (out / "hazards.jsonl").open("w") as fh:
        for h in sorted(supervisor.events, key=lambda h: (h.start_s, h.kind, h.actors)):
            fh.write(json.dumps(h.to_dict()) + "\n")
    with (out / "alerts.jsonl").open("w") as fh:
        for alert in supervisor.alerts:
            fh.write(json.dumps(alert) + "\n")
    return Counter(f"{h.kind}/{h.severity}" for h in supervisor.events if h.category == "hazard")


def write_detector_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """The detectors' rows as CSV (``DETECTOR_COLUMNS``; a loop leaves the area's columns empty
    and the other way round)."""
    import csv

    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=DETECTOR_COLUMNS, restval="")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in row.items()})


def with_humans(config: ScenarioConfig, humans: str) -> ScenarioConfig:
    """``config`` with its humans as ``humans`` says (``llm``: unchanged; ``rule``: no model; ``off``: none)."""
    if humans == "llm":
        return config
    from agents.humans.roster import rule_only

    people = rule_only(config.humans) if humans == "rule" else config.humans.model_copy(
        update={"drivers": [], "pedestrians": [], "operators": []})
    return config.model_copy(update={"humans": people})


def _trace_humans(population) -> list[dict[str, Any]]:
    """The trace header's humans: identity, persona, role, whether an LLM decides, description."""
    if population is None:
        return []
    return [{"identity": h.identity, "persona": h.persona.id, "name": h.persona.name, "role": h.role, "llm": h.llm,
             "summary": h.persona.summary, "trip_purpose": h.persona.trip_purpose,
             "traits": h.persona.traits.model_dump()} for h in population.humans]


def _near_misses(world: World, closing_in: set, count: int) -> tuple[int, set]:
    """Count vehicles that newly are in a near miss with their leader (``envs.state.near_miss``;
    one per approach, not per second)."""
    veh = world.vehicles
    now: set = set()
    if len(veh):
        seen = world.perception_now()
        has = seen.leader >= 0
        closing = np.where(has, veh.v - veh.v[np.maximum(seen.leader, 0)], 0.0)
        risky = has & near_miss(seen.leader_gap, closing)
        now = set(veh.id[risky].tolist())
    return count + len(now - closing_in), now


def _git_commit() -> str | None:
    """The commit of the source tree the twin runs from (None when installed or not a git checkout)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


HASHED_FILES = ("events.jsonl", "decisions.jsonl", "hazards.jsonl", "alerts.jsonl")
HASHED_TICKS = "trace.jsonl.gz ticks"  # the decompressed tick records (world state per tick)


def _trace_hash(out: Path, ticks: bool = True) -> str:
    """SHA-256 over what a replay must reproduce: the events, decisions, hazards and alerts
    of a run and (``ticks``) the decompressed trace tick records, trajectories included.
    Summaries written before the ticks were covered have no ``trace_sha256_covers``; their
    replays are compared with ``ticks=False``."""
    digest = hashlib.sha256()
    for name in HASHED_FILES:
        path = out / name
        if path.exists():
            digest.update(path.read_bytes())
    if ticks and (out / TRACE_FILE).exists():
        with gzip.open(out / TRACE_FILE, "rb") as trace:
            trace.readline()  # the header: its paths and wall-clock fields differ between runs
            for line in trace:
                digest.update(line)
    return digest.hexdigest()

"""A shadow run directory: the log as the twin mirrors it, with the supervisor watching.

At every record time of the log the twin's world is set to the observed state
(``ShadowWorld.mirror``: vehicles keep their twin id while seen, appear and leave as
observed), the supervisor checks it (hazards, violations, anomalies, alerts), and a trace
tick is written every ``TICK_S``: the same run directory ``simulate`` writes (``trace.jsonl.gz``
with the network, ``hazards.jsonl``, ``alerts.jsonl``, ``summary.json``), so ``run.py inspect``
shows it like any run. A tick also lists, under ``inferred``, the vehicles whose position
there was interpolated across a gap in the log rather than observed, and ``observed_ids``
maps the twin's ids to the log's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from envs.trace import TICK_S, TRACE_FILE, TraceWriter
from shadow.sync import ObservedTracks, ShadowWorld
from twin import assemble
from twin.run import write_supervisor_files
from twin.scenario import ScenarioConfig


def write_shadow_run(tracks: ObservedTracks, shadow: ShadowWorld, config: ScenarioConfig, out: Path,
                     start_s: float | None = None, end_s: float | None = None) -> dict[str, Any]:
    """Mirror the log into ``shadow``'s world from ``start_s`` to ``end_s`` [s], the supervisor
    of ``config`` watching; write the run directory ``out``; return its summary."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "scenario.yaml").write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    supervisor = assemble.supervisor(config, keep_disabled=True)
    world = shadow.world
    trace = TraceWriter(out / TRACE_FILE)
    trace.header(config, world.network, [])
    times = [t for t in tracks.log.times if (start_s is None or t >= start_s - 1e-9) and (end_s is None or t <= end_s + 1e-9)]
    next_tick, seen_hazards, alerts_traced, inferred_records = None, set(), 0, 0
    vehicles_seen: set[str] = set()
    try:
        for t in times:
            state = tracks.state_at(float(t))
            shadow.mirror(state)
            vehicles_seen.update(state.ids)
            inferred_records += int(state.inferred.sum())
            supervisor.check_now(world)
            if next_tick is None or t + 1e-9 >= next_tick:
                next_tick = t + TICK_S
                hazards = []
                for e in supervisor.events:
                    if id(e) not in seen_hazards:
                        seen_hazards.add(id(e))
                        hazards.append(e.to_dict())
                alerts = supervisor.alerts[alerts_traced:]
                alerts_traced = len(supervisor.alerts)
                by_observed = {vid: tid for tid, vid in shadow.mirrored_ids.items()}
                trace.tick(world.snapshot(), {}, {}, [], hazards, [], alerts, world.signals.dark, extra={
                    "inferred": [by_observed[v] for v, inferred in zip(state.ids, state.inferred) if inferred],
                    "observed_ids": {str(tid): vid for tid, vid in shadow.mirrored_ids.items()}})
    finally:
        trace.close()
        if supervisor.agent is not None:
            supervisor.agent.close()
    hazards = write_supervisor_files(out, supervisor)
    summary = {"scenario": config.name, "shadow_of": tracks.log.source, "simulated_s": round(float(times[-1] - times[0]), 2)
               if times else 0.0, "vehicles_seen": len(vehicles_seen), "records_inferred": inferred_records,
               "hazards": dict(hazards),
               "alerts": len(supervisor.alerts), "collisions": 0, "faults_never_started": []}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary

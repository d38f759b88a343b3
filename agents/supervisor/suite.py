"""The supervisor's labelled evaluation suite (``python run.py evaluate supervisor``).

A suite (``configs/suites/supervisor.yaml``) lists cases: a shipped scenario, overrides and
planted trouble. Each case runs on each seed with the supervisor watching; then its alerts
are scored against the twin's own ground truth, which the supervisor never sees:

- a *collision* is recalled when an alert (any category but the collision itself) names
  one of its actors in the ``lead_window_s`` before it; the lead time is the collision time
  minus the first such alert's time
- an injected *fault* is detected when an anomaly alert names its actor (for signal faults,
  a signal anomaly) within ``detect_window_s`` of its onset; the lead time is the delay
- an alert is a true positive when it names an actor in trouble while it is: before a
  collision (the lead window), from a fault's onset to 10 s after it ends, around a red-light
  run (5 s before to 10 s after); while a signal fault lasts every alert at the junction is.
  Every other alert is a false positive, so precision counts the false alarms of the nominal
  cases too.
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from compute import run_jobs
from envs.faults import SCRIPTED_KINDS

SUITE_PATH = Path(__file__).resolve().parents[2] / "configs" / "suites" / "supervisor.yaml"
AFTER_FAULT_S = 10.0  # [s] alerts this long after a fault ends still count as caused by it
RED_LIGHT_WINDOW_S = (5.0, 10.0)  # [s] before and after a red-light run


class SuiteCase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    scenario: str
    overrides: dict[str, Any] = Field(default_factory=dict)
    faults: list[dict[str, Any]] = Field(default_factory=list)
    duration_s: float | None = Field(None, gt=0.0)
    seeds: list[int] | None = None


class Suite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seeds: list[int] = Field(default_factory=lambda: [0])
    duration_s: float = Field(90.0, gt=0.0)
    lead_window_s: float = Field(10.0, gt=0.0)
    detect_window_s: float = Field(30.0, gt=0.0)
    cases: list[SuiteCase]


def load_suite(path: str | Path = SUITE_PATH) -> Suite:
    """Read and validate a suite file; errors name the file and the field."""
    from envs.validation import ConfigFileError, describe_problems, read_mapping
    from twin.scenario import ScenarioError, load_scenario

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: suite file not found")
    try:
        suite = Suite.model_validate(read_mapping(path, "suite"))
    except ConfigFileError as exc:
        raise ScenarioError(str(exc)) from None
    except ValidationError as exc:
        raise ScenarioError(describe_problems(exc, str(path), Suite, "suite")) from None
    for k, case in enumerate(suite.cases):  # every case must make a valid scenario before anything runs
        try:
            load_scenario(case.scenario, _overrides(case, 0))
        except ScenarioError as exc:
            raise ScenarioError(f"{path}: cases.{k} ({case.name}): {exc}") from None
    return suite


def _overrides(case: SuiteCase, seed: int) -> dict[str, Any]:
    # the suite scores detection and alerts, not the triage: no futures at alerts unless a case asks
    return {"ego.controlled": 0, "humans": {}, "seed": seed, "faults": case.faults,
            "supervisor.foresight.futures": 0, **case.overrides}


def run_case(case: SuiteCase, seed: int, duration_s: float) -> dict:
    """Run one case on one seed; returns its ground truth, alerts and timings (JSON-ready)."""
    from agents.supervisor.supervisor import Supervisor
    from envs.world import World
    from twin.episode import Episode
    from twin.scenario import load_scenario

    config = load_scenario(case.scenario, _overrides(case, seed))
    world = World(config)
    supervisor = Supervisor(config.supervisor)
    episode = Episode(world, supervisor=supervisor)
    for _ in range(int(round(duration_s * config.sim_hz))):
        episode.step()
    physics = episode.physics_s
    return {
        "case": case.name, "seed": seed, "simulated_s": round(world.time, 2),
        "collisions": [{"time_s": e.time, "actors": list(e.actors)} for e in world.events if e.kind == "collision"],
        "red_light": [{"time_s": e.time, "actors": list(e.actors)} for e in world.events if e.kind == "red_light"],
        # scripted manoeuvres stage a crash (scenarios/): they are not failures to detect
        "faults": [f for f in world.faults.log if f["kind"] not in SCRIPTED_KINDS],
        "unstarted": [f.kind for f in world.faults.unstarted if f.kind not in SCRIPTED_KINDS],  # counted as missed
        "alerts": [{"time_s": a["time_s"], **{k: e[k] for k in ("kind", "category", "actors", "severity")}}
                   for a in supervisor.alerts for e in a["events"]],
        "events": len(supervisor.events),
        "physics_s": physics, "supervisor_s": supervisor.seconds, "checks": supervisor.checks,
    }


def score(runs: list[dict], suite: Suite) -> dict:
    """Recall, lead time and precision per kind over the runs of a suite (see the module docstring)."""
    labels: dict[str, list[float | None]] = defaultdict(list)  # kind -> lead time per label (None: missed)
    alert_hits: dict[str, list[bool]] = defaultdict(list)  # alert kind -> true/false per alert
    nominal_anomalies, nominal_alerts, nominal_s = 0, 0, 0.0
    for run in runs:
        alerts = [a for a in run["alerts"]]
        trouble = _trouble(run, suite)
        for c in run["collisions"]:
            t = c["time_s"]
            warn = [a["time_s"] for a in alerts if a["category"] != "incident" and set(a["actors"]) & set(c["actors"])
                    and t - suite.lead_window_s <= a["time_s"] < t - 1e-6]
            labels["collision"].append(t - min(warn) if warn else None)
        for f in run["faults"]:
            onset = f["start_s"]
            found = [a["time_s"] for a in alerts if a["category"] == "anomaly"
                     and onset - 1e-6 <= a["time_s"] <= onset + suite.detect_window_s
                     and (set(a["actors"]) & set(f["actors"]) if f["actors"] else a["kind"].startswith("signal_"))]
            labels[f["kind"]].append(min(found) - onset if found else None)
        for kind in run.get("unstarted", []):
            labels[kind].append(None)
        for a in alerts:
            alert_hits[a["kind"]].append(any(_explains(tr, a) for tr in trouble))
        if not run["faults"] and not run["collisions"] and not run["red_light"]:
            nominal_anomalies += sum(a["category"] == "anomaly" for a in alerts)
            nominal_alerts += len(alerts)
            nominal_s += run["simulated_s"]
    label_rows = {}
    for kind, leads in sorted(labels.items()):
        found = [x for x in leads if x is not None]
        label_rows[kind] = {"count": len(leads), "detected": len(found), "recall": round(len(found) / len(leads), 3),
                            "lead_median_s": round(float(np.median(found)), 2) if found else None,
                            "lead_min_s": round(float(np.min(found)), 2) if found else None}
    alert_rows = {kind: {"alerts": len(hits), "true": sum(hits), "precision": round(sum(hits) / len(hits), 3)}
                  for kind, hits in sorted(alert_hits.items())}
    all_hits = [h for hits in alert_hits.values() for h in hits]
    physics = sum(r["physics_s"] for r in runs)
    sup = sum(r["supervisor_s"] for r in runs)
    return {
        "labels": label_rows,
        "alerts": alert_rows,
        "precision": round(sum(all_hits) / len(all_hits), 3) if all_hits else None,
        "collision_recall": label_rows.get("collision", {}).get("recall"),
        "collision_lead_median_s": label_rows.get("collision", {}).get("lead_median_s"),
        "faults_detected": sum(r["detected"] for k, r in label_rows.items() if k != "collision"),
        "faults": sum(r["count"] for k, r in label_rows.items() if k != "collision"),
        "nominal": {"simulated_min": round(nominal_s / 60.0, 1), "alerts": nominal_alerts,
                    "anomaly_alerts": nominal_anomalies},
        "overhead": {"physics_s": round(physics, 2), "supervisor_s": round(sup, 2),
                     "share_of_physics": round(sup / physics, 3) if physics else None},
        "runs": len(runs),
    }


def _trouble(run: dict, suite: Suite) -> list[tuple[set, float, float]]:
    """(actors, from, to) windows in which alerts naming those actors are true; empty actors: anyone."""
    out = [(set(c["actors"]), c["time_s"] - suite.lead_window_s, c["time_s"] + 1.0) for c in run["collisions"]]
    out += [(set(r["actors"]), r["time_s"] - RED_LIGHT_WINDOW_S[0], r["time_s"] + RED_LIGHT_WINDOW_S[1])
            for r in run["red_light"]]
    for f in run["faults"]:
        end = f["end_s"] if f["end_s"] is not None else run["simulated_s"]
        out.append((set(f["actors"]), f["start_s"], end + AFTER_FAULT_S))
    return out


def _explains(trouble: tuple[set, float, float], alert: dict) -> bool:
    actors, t0, t1 = trouble
    return t0 <= alert["time_s"] <= t1 and (not actors or bool(actors & set(alert["actors"])))


def evaluate(suite_path: str | Path = SUITE_PATH, seeds: list[int] | None = None, workers: int | None = None,
             json_path: Path | None = None, console: Any = None, quick: bool = False, ray: str | None = None) -> dict:
    """Run every case of a suite on its seeds (in ``workers`` processes, or on the Ray cluster at
    ``ray``), print the tables and return the scores (also written to ``json_path``). ``quick``
    runs nominal cases for 3 minutes."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    console = console or Console()
    suite = load_suite(suite_path)
    jobs = []
    for case in suite.cases:
        duration = case.duration_s or suite.duration_s
        if quick:
            duration = min(duration, 180.0)
        for seed in seeds if seeds is not None else (case.seeds or suite.seeds):
            jobs.append((case, seed, duration))
    workers = workers or min(os.cpu_count() or 1, len(jobs))
    start = time.perf_counter()
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeRemainingColumn(), console=console, transient=True) as progress:
        task = progress.add_task("supervisor suite", total=len(jobs))
        runs = run_jobs(run_case, jobs, workers=workers, ray=ray,
                        progress=lambda done, total: progress.update(task, completed=done))
    result = score(runs, suite)
    result["wall_s"] = round(time.perf_counter() - start, 1)
    result["per_case"] = {case.name: _case_line([r for r in runs if r["case"] == case.name]) for case in suite.cases}
    _print(result, console)
    if json_path is not None:
        Path(json_path).write_text(json.dumps(result, indent=2))
    return result


def _case_line(runs: list[dict]) -> dict:
    return {"runs": len(runs), "collisions": sum(len(r["collisions"]) for r in runs),
            "faults": sum(len(r["faults"]) for r in runs), "alerts": sum(len(r["alerts"]) for r in runs)}


def _print(result: dict, console: Any) -> None:
    from rich.table import Table

    t = Table(title="labels: recall and lead time (collisions: warning before; faults: detection delay)")
    for col in ("label", "count", "detected", "recall", "lead median [s]", "lead min [s]"):
        t.add_column(col, justify="left" if col == "label" else "right")
    for kind, row in result["labels"].items():
        t.add_row(kind, str(row["count"]), str(row["detected"]), f"{row['recall']:.2f}", str(row["lead_median_s"]),
                  str(row["lead_min_s"]))
    console.print(t)
    t = Table(title="alerts: precision by kind")
    for col in ("alert kind", "alerts", "true", "precision"):
        t.add_column(col, justify="left" if col == "alert kind" else "right")
    for kind, row in result["alerts"].items():
        t.add_row(kind, str(row["alerts"]), str(row["true"]), f"{row['precision']:.2f}")
    t.add_row("all", str(sum(r["alerts"] for r in result["alerts"].values())),
              str(sum(r["true"] for r in result["alerts"].values())), str(result["precision"]))
    console.print(t)
    n, o = result["nominal"], result["overhead"]
    console.print(f"nominal traffic: {n['simulated_min']} simulated min, {n['alerts']} alerts "
                  f"({n['anomaly_alerts']} anomaly alerts = false alarms)")
    console.print(f"supervisor overhead: {o['supervisor_s']} s over {o['physics_s']} s of physics "
                  f"= {100 * (o['share_of_physics'] or 0):.0f}% of the physics step; suite wall time {result['wall_s']} s")

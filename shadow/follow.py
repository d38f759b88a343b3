"""``run.py shadow LOG --net NET``: the twin follows a log, predicts it and learns its drivers.

The log is read and checked (``formats``), placed on the network (``matching``), followed
sync point by sync point (``sync``: the observed state held in the twin, gaps interpolated
and marked), and from each sync point predicted ahead by the twin, by the twin with its
drivers' parameters learned so far (``tuner``), and by constant-velocity and
constant-acceleration baselines (``predict``). The figures: ADE, FDE and speed error at each
horizon, the placement error at horizon 0, the matching report, the drivers learned, and the
cost.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from envs.world import World
from shadow.formats import read_log
from shadow.matching import match_log
from shadow.predict import HORIZONS_S, METHODS, score
from shadow.sync import ObservedTracks, ShadowWorld, vehicle_types
from shadow.tuner import Tuner
from twin.scenario import load_scenario


def follow_log(log_path: str | Path, net: str | Path, period_s: float = 1.0,
               horizons: tuple[float, ...] = HORIZONS_S, start_s: float | None = None, end_s: float | None = None,
               learn: bool = True, frame_rate_hz: float | None = None, json_path: Path | None = None,
               console: Console | None = None, out: Path | None = None) -> dict[str, Any]:
    """Follow and predict ``log_path`` on the network ``net`` (a SUMO configuration or
    network, or a scenario); a table on ``console`` and the figures (``json_path`` too).
    ``out``: also write a run directory of the log as the twin mirrors it, the supervisor
    watching (``shadow.mirror``), which ``run.py inspect`` shows."""
    console = console or Console()
    started = time.perf_counter()
    log = read_log(log_path, frame_rate_hz)
    world = World(load_scenario(str(net), {"ego.controlled": 0}))
    types = vehicle_types(str(net))
    lengths = {name: t["length"] for name, t in types.items()}
    matched = match_log(log, world.network, type_lengths=lengths)
    matching = matched.report()
    read_s = time.perf_counter() - started
    tracks = ObservedTracks(matched, lengths)
    shadow = ShadowWorld(world, types)
    tuner = Tuner() if learn else None
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
               TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(f"following {Path(log_path).name}", total=None)
        scores, cost = score(tracks, shadow, period_s, tuple(horizons), tuner, start_s, end_s,
                             progress=lambda done, total: progress.update(task, completed=done, total=total))
    summary = scores.summary()
    followed_s = period_s * cost["sync_points"]
    figures = {
        "log": str(log_path), "network": str(net), "records": len(log), "vehicles": len(log.ids),
        "period_s": period_s, **summary,
        "matching": matching,
        "drivers_learned": len(tuner.estimates) if tuner else 0,
        "personas": _personas(tuner) if tuner else {},
        "drivers": {d: e.as_dict() for d, e in list(tuner.estimates.items())[:20]} if tuner else {},
        "cost": {"read_and_match_s": round(read_s, 2), "follow_predict_learn_s": round(cost["forecast_wall_s"], 2),
                 "sync_points": cost["sync_points"], "vehicle_forecasts": cost["vehicle_forecasts"],
                 "us_per_vehicle_forecast": round(1e6 * cost["forecast_wall_s"] / max(cost["vehicle_forecasts"], 1)),
                 "log_seconds_followed": round(followed_s, 1),
                 "realtime_factor": round(followed_s / max(cost["forecast_wall_s"], 1e-9), 1), "fits": cost["fits"]},
    }
    if out is not None:
        from shadow.mirror import write_shadow_run

        config = load_scenario(str(net), {"ego.controlled": 0})
        mirror = ShadowWorld(World(config), types)
        with console.status(f"writing the shadow run to {out}"):
            figures["run_dir"] = str(out)
            figures["shadow_run"] = write_shadow_run(tracks, mirror, config, Path(out), start_s, end_s)
    _print(console, figures)
    if json_path is not None:
        Path(json_path).write_text(json.dumps(figures, indent=2) + "\n")
    return figures


def _personas(tuner: Tuner) -> dict[str, Any]:
    """The population of learned drivers by the persona library's driver each resembles most
    (``tuner.nearest_personas``): counts, and the drivers' own (the first 20)."""
    from collections import Counter

    from agents.humans.persona import load_personas
    from shadow.tuner import nearest_personas

    library = {pid: p.driver_parameters() for pid, p in load_personas().items() if p.role == "driver"}
    nearest = nearest_personas(tuner.estimates, tuner.limits(), library)
    counts = Counter(pid for pid, _ in nearest.values())
    return {"counts": dict(counts.most_common()),
            "median_distance": round(float(np.median([d for _, d in nearest.values()])), 2) if nearest else None,
            "drivers": {d: {"persona": pid, "distance": round(dist, 2)} for d, (pid, dist) in list(nearest.items())[:20]}}


def _print(console: Console, figures: dict[str, Any]) -> None:
    horizons = figures["horizons_s"]
    table = Table(title=f"{Path(figures['log']).name} on {Path(figures['network']).name}: predictions from "
                        f"{figures['cost']['sync_points']} sync points every {figures['period_s']:g} s")
    table.add_column("method")
    for h in horizons:
        table.add_column(f"ADE / FDE at {h:g} s (m)", justify="right")
        table.add_column(f"speed error at {h:g} s (m/s)", justify="right")
    for method in METHODS:
        ade, fde, speed = (figures[k][method] for k in ("ade_m", "fde_m", "speed_error_mps"))
        if all(a is None for a in ade):
            continue
        cells = []
        for j in range(len(horizons)):
            cells += [f"{ade[j]:.3f} / {fde[j]:.3f}" if ade[j] is not None else "-",
                      f"{speed[j]:.3f}" if speed[j] is not None else "-"]
        table.add_row(method.replace("_", " "), *cells)
    console.print(table)
    m, c = figures["matching"], figures["cost"]
    console.print(f"matched {m['matched']:,} of {m['records']:,} records of {m['vehicles']} vehicles; "
                  f"{m['off_network']:,} off the network ({m['vehicles_off_network']} vehicles); "
                  f"held within {figures['sync_error_m']['mean']} m of where observed (mean); "
                  f"{figures['drivers_learned']} drivers learned (resembling, most: "
                  f"{', '.join(f'{k} {v}' for k, v in list(figures['personas'].get('counts', {}).items())[:3]) or '-'}); "
                  f"forecasts per horizon {figures['forecasts']}; "
                  f"{c['log_seconds_followed']:g} s of log followed in {c['follow_predict_learn_s']:g} s "
                  f"({c['realtime_factor']:g}x real time, {c['us_per_vehicle_forecast']:,} us per vehicle forecast)")
    h = figures.get("hazards_ahead") or {}
    if "twin" in h:
        lead = h["twin"]["lead_time_s"]["median"]
        console.print(f"hard braking ahead (over {h['threshold_mps2']:g} m/s^2): {h['observed_events']} events in the log, "
                      f"{100 * h['twin']['predicted_share']:.0f}% predicted before they happened (median "
                      f"{lead if lead is not None else '-'} s ahead); {h['twin']['predictions']} predictions, "
                      f"{100 * h['twin']['false_alarm_share']:.0f}% not followed by one")


def parse_horizons(text: str) -> tuple[float, ...]:
    """``"1,3,5"`` -> (1.0, 3.0, 5.0); positive seconds, a ValueError naming the bad one."""
    out = []
    for part in text.split(","):
        value = float(part)
        if not (value > 0 and np.isfinite(value)):
            raise ValueError(f"horizon {part!r}: must be a positive number of seconds")
        out.append(value)
    return tuple(sorted(set(out)))


def closed_loop(config: str | Path, minutes: float = 4.0, fault_at_s: float = 60.0, json_path: Path | None = None,
                console: Console | None = None) -> dict[str, Any]:
    """``run.py shadow --sumo``: ``shadow.loop.compare``, as a table (and ``json_path``)."""
    from shadow.loop import compare

    console = console or Console()
    with console.status(f"SUMO runs {Path(config).name} twice ({minutes:g} min, a vehicle stops at {fault_at_s:g} s), "
                        "the twin following"):
        figures = compare(config, minutes, fault_at_s)
    table = Table(title=f"{Path(config).name}: a vehicle stops at {fault_at_s:g} s; SUMO's outcome for the vehicles "
                        "heading for it")
    for column in ("run", "twin flags the stop at (s)", "hard braking (vehicle-s)", "vehicles braking hard",
                   "first hard brake (s)", "time lost (vehicle-s)", "advisories"):
        table.add_column(column, justify="left" if column == "run" else "right")
    for name, run in (("without the loop", figures["without_loop"]), ("with the loop acting", figures["with_loop"])):
        o = run["sumo"]
        table.add_row(name, str(run["first_flag_s"]), f"{o['hard_braking_vehicle_s']:g}", str(o["vehicles_braking_hard"]),
                      str(o["first_hard_brake_after_fault_s"]), f"{o['time_lost_vehicle_s']:,.0f}",
                      str(len(run["mitigations"])))
    console.print(table)
    if json_path is not None:
        Path(json_path).write_text(json.dumps(figures, indent=2) + "\n")
    return figures

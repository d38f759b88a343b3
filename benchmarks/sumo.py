"""SUMO itself on SUMO's shipped scenarios: the reference the twin is measured against.

``python run.py bench sumo`` runs the ``sumo`` binary of the ``eclipse-sumo`` wheel on each
shipped configuration (``ramp``, ``cross``, ``A10KW``, ``grid6``, ``bs3d`` under
``sumo/tools/game/``) for ``--minutes`` simulated minutes with teleporting off, as the
twin runs (a stuck vehicle stays stuck), and reports what it produced: vehicles inserted,
arrived and still running, collisions, mean travel time and its distribution per route
(a flow's vehicles together), and SUMO's vehicle updates per second.

The twin's side of the comparison (the same files in the twin, interleaved, and the ratio
of vehicle-steps per second) comes when the twin drives on these networks; until then
``vehicle_steps_per_s.twin`` and ``ratio`` are null and the table says so.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from envs.roads import sumo

CONFIGS = ("ramp", "cross", "A10KW", "grid6", "bs3d")


def run_sumo(config: Path, minutes: float, out: Path) -> dict[str, Any]:
    """One SUMO run of ``config`` for ``minutes`` from its begin time, teleporting off."""
    cfg = sumo.read_config(config)
    end = cfg.begin_s + 60.0 * minutes
    stats, trips = out / f"{config.stem}.stats.xml", out / f"{config.stem}.trips.xml"
    args = ["-c", str(_without_gui_options(config, out)), "--end", f"{end:g}", "--time-to-teleport", "-1",
            "--no-step-log", "true", "--no-warnings", "true", "--statistic-output", str(stats),
            "--tripinfo-output", str(trips), "--duration-log.statistics", "true", "--duration-log.disable", "false"]
    start = time.perf_counter()
    sumo.run_program("sumo", args, config, stats)
    wall = time.perf_counter() - start
    root = ET.parse(stats).getroot()
    vehicles, trip, safety, perf = (root.find(tag) for tag in ("vehicles", "vehicleTripStatistics", "safety",
                                                                "performance"))
    by_route: dict[str, list[float]] = {}  # a flow's vehicles ("flow.k") together; single vehicles as one group
    for t in ET.parse(trips).getroot().iter("tripinfo"):
        ident = t.get("id", "")
        by_route.setdefault(ident.rsplit(".", 1)[0] if "." in ident else "(vehicles)", []).append(
            float(t.get("duration", 0)))
    durations = np.array([d for ds in by_route.values() for d in ds])
    updates = float(perf.get("vehicleUpdatesPerSecond", 0)) if perf is not None else 0.0
    return {
        "config": config.name, "simulated_s": end - cfg.begin_s, "step_length_s": cfg.step_length_s,
        "inserted": int(vehicles.get("inserted", 0)), "arrived": int(trip.get("count", 0)),
        "running": int(vehicles.get("running", 0)), "waiting_to_enter": int(vehicles.get("waiting", 0)),
        "collisions": int(safety.get("collisions", 0)) if safety is not None else None,
        "travel_time_mean_s": round(float(durations.mean()), 1) if len(durations) else None,
        "travel_time_p50_s": round(float(np.percentile(durations, 50)), 1) if len(durations) else None,
        "travel_time_p90_s": round(float(np.percentile(durations, 90)), 1) if len(durations) else None,
        "routes": {route: {"arrived": len(ds), "travel_time_mean_s": round(float(np.mean(ds)), 1)}
                   for route, ds in sorted(by_route.items())},
        "vehicle_steps_per_s": round(updates),
        "wall_s": round(wall, 2),
    }


def _without_gui_options(config: Path, out: Path) -> Path:
    """A copy of ``config`` in ``out`` without its ``<gui_only>`` section (the plain ``sumo``
    binary refuses options such as ``osg-view``), its network and routes named by absolute
    path, and its additional files copied into ``out``: they may ask for outputs (the shipped
    ``input_additional.add.xml`` writes ``tlsstate.xml`` and ``netstate.xml`` beside itself),
    which must not land in the installed package."""
    root = ET.parse(config).getroot()
    for section in list(root):
        if section.tag == "gui_only":
            root.remove(section)
        elif section.tag == "input":
            for option in section:
                names = [(config.parent / n.strip()).resolve() for n in option.get("value", "").split(",") if n.strip()]
                if option.tag == "additional-files":
                    copies = []
                    for k, name in enumerate(names):
                        copies.append(out / f"{config.stem}.{k}.{name.name}")
                        shutil.copyfile(name, copies[-1])
                    names = copies
                option.set("value", ",".join(str(n) for n in names))
    copy = out / config.name
    ET.ElementTree(root).write(copy)
    return copy


def run_sumo_benchmark(minutes: float = 10.0, json_path: Path | None = None, configs: tuple[str, ...] = CONFIGS
                       ) -> dict[str, Any]:
    """SUMO on each shipped configuration; a table, and ``json_path`` when given."""
    console = Console()
    game = sumo.shipped_scenarios()
    if game is None:
        raise sumo.SumoInputError("bench sumo needs SUMO's shipped scenarios: pip install -e '.[sumo]'")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-sumo-") as tmp:
        for name in configs:
            with console.status(f"sumo {name}, {minutes:g} simulated minutes"):
                rows.append(run_sumo(game / f"{name}.sumocfg", minutes, Path(tmp)))
    version = _version()
    table = Table(title=f"SUMO {version} on its shipped scenarios, {minutes:g} simulated minutes, teleporting off")
    for column in ("network", "inserted", "arrived", "running", "collisions", "travel time mean / p50 / p90 [s]",
                   "vehicle-steps/s"):
        table.add_column(column, justify="left" if column == "network" else "right")
    for r in rows:
        table.add_row(r["config"].removesuffix(".sumocfg"), str(r["inserted"]), str(r["arrived"]), str(r["running"]),
                      str(r["collisions"]), f"{r['travel_time_mean_s']} / {r['travel_time_p50_s']} / "
                      f"{r['travel_time_p90_s']}", f"{r['vehicle_steps_per_s']:,}")
    console.print(table)
    console.print("the twin: not run yet (it does not drive on SUMO networks yet); its column and the ratio are null")
    figures = {"minutes": minutes, "sumo_version": version, "runs": rows,
               "vehicle_steps_per_s": {"twin": None, "sumo": {r["config"]: r["vehicle_steps_per_s"] for r in rows}},
               "ratio": None}
    if json_path:
        Path(json_path).write_text(json.dumps(figures, indent=2))
    return figures


def _version() -> str:
    try:
        done = subprocess.run([str(sumo.sumo_binary("sumo")), "--version"], capture_output=True, text=True)
        first = done.stdout.splitlines()[0] if done.stdout else ""
        return first.split()[-1] if first else "?"
    except (OSError, sumo.SumoInputError, IndexError):
        return "?"

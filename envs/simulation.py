"""Running a scenario with its humans for a while and summarising what happened.

Used by ``python run.py simulate``. A run directory gets the resolved scenario
(``scenario.yaml``), every world event (``events.jsonl``), the summary (``summary.json``)
and, on request, an animation (``run.gif``).
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from envs.render import Renderer
from envs.scenario import load_scenario
from envs.world import World

GIF_FPS = 4  # GIF frames per second; frames are taken every simulated half second
GIF_MAX_FRAMES = 600


def simulate(
    scenario: str | Path,
    minutes: float | None = None,
    overrides: dict[str, Any] | None = None,
    out: Path | None = None,
    gif: bool = False,
    console: Console | None = None,
) -> dict[str, Any]:
    """Simulate ``scenario`` (rule-based humans, no RL vehicles) and return the summary."""
    console = console or Console()
    overrides = {"ego.controlled": 0, **(overrides or {})}
    config = load_scenario(scenario, overrides)
    duration = config.duration_s if minutes is None else 60.0 * minutes
    out = out or Path("runs") / f"{config.name}-{datetime.now():%Y%m%d-%H%M%S}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "scenario.yaml").write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))

    world = World(config)
    steps = int(round(duration * config.sim_hz))
    speeds, frames = [], []
    renderer = Renderer(world.network, config.render) if gif else None
    frame_every = max(1, config.sim_hz // 2)
    start = time.perf_counter()
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[clock]}"),
               TextColumn("{task.fields[actors]}"), TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(f"simulating {config.name}", total=steps, clock="", actors="")
        for k in range(steps):
            world.step()
            if k % config.sim_hz == 0:
                if len(world.vehicles):
                    speeds.append(float(world.vehicles.v.mean()))
                progress.update(task, completed=k + 1, clock=f"t={world.time:7.1f} s",
                                actors=f"{len(world.vehicles)} veh {len(world.pedestrians)} ped")
            if renderer is not None and k % frame_every == 0 and len(frames) < GIF_MAX_FRAMES:
                frames.append(renderer.render(world.snapshot()))
    wall = time.perf_counter() - start

    with (out / "events.jsonl").open("w") as fh:
        for e in world.events:
            fh.write(json.dumps({"kind": e.kind, "time_s": round(e.time, 3), "actors": list(e.actors),
                                 "x_m": round(e.x, 2), "y_m": round(e.y, 2)}) + "\n")
    kinds = [e.kind for e in world.events]
    summary = {
        "scenario": config.name,
        "seed": config.seed,
        "simulated_s": round(world.time, 2),
        "wall_s": round(wall, 2),
        "realtime_factor": round(world.time / max(wall, 1e-9), 1),
        "vehicles_entered": world.stats["vehicles_entered"],
        "vehicles_exited": world.stats["vehicles_exited"],
        "vehicles_now": len(world.vehicles),
        "mean_speed_mps": round(float(np.mean(speeds)), 2) if speeds else 0.0,
        "pedestrians_entered": world.stats["pedestrians_entered"],
        "pedestrians_crossed": world.stats["pedestrians_crossed"],
        "mean_pedestrian_wait_s": round(world.stats["pedestrian_wait_s"] / max(world.stats["pedestrians_crossed"], 1), 2),
        "collisions": kinds.count("collision"),
        "off_road": kinds.count("off_road"),
        "red_light_violations": kinds.count("red_light"),
        "run_dir": str(out),
    }
    if frames:
        from PIL import Image

        images = [Image.fromarray(f) for f in frames]
        images[0].save(out / "run.gif", save_all=True, append_images=images[1:], duration=1000 // GIF_FPS, loop=0)
        summary["gif"] = str(out / "run.gif")
    (out / "summary.json").write_text(json.dumps(summary, indent=2))

    table = Table(title=f"{config.name}: {summary['simulated_s']:.0f} simulated s in {wall:.1f} s "
                        f"({summary['realtime_factor']}x real time)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in summary.items():
        if key not in ("scenario", "simulated_s", "wall_s", "realtime_factor"):
            table.add_row(key, str(value))
    console.print(table)
    return summary

"""The digital shadow against SUMO: ``python run.py bench shadow``.

SUMO (the ``sumo`` program of the ``eclipse-sumo`` wheel) drives SUMO's shipped ``A10KW``
(an OpenStreetMap motorway interchange) for ``--minutes`` simulated minutes, teleporting
off, once with its default car-following model (Krauss, with dawdling) and once with IDM,
writing FCD; the twin then follows each log (``shadow.follow``), not told which model made
it, and predicts it from a sync point every ``period_s`` seconds. The table gives, per log,
the average displacement error at 1, 3 and 5 s of the twin, the twin with its drivers
learned, constant velocity and constant acceleration, and the cost: log seconds followed
per wall second (with a prediction of the longest horizon, twice, at every sync point) and
microseconds per vehicle forecast.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from envs.roads import sumo

MODELS = ("Krauss", "IDM")
CONFIG = "A10KW"
WARM_UP_S = 30.0  # [s] of the log before the first sync point (the network fills)


def sumo_fcd(config: Path, minutes: float, model: str, out: Path) -> Path:
    """SUMO's FCD of ``config`` for ``minutes`` with car-following ``model``, teleporting off."""

    cfg = sumo.runnable_config(config, out)
    fcd = out / f"{config.stem}-{model}.fcd.xml"
    sumo.run_program("sumo", ["-c", str(cfg), "--end", f"{sumo.read_config(config).begin_s + 60.0 * minutes:g}",
                              "--time-to-teleport", "-1", "--no-step-log", "true", "--no-warnings", "true",
                              "--carfollow.model", model, "--fcd-output", str(fcd), "--fcd-output.acceleration",
                              "true"], cfg, fcd)
    return fcd


def run_shadow_benchmark(minutes: float = 4.0, period_s: float = 2.0, json_path: Path | None = None,
                         keep: Path | None = None) -> dict[str, Any]:
    """SUMO logs of ``CONFIG`` with each of ``MODELS``, followed by the twin; a table, and
    ``json_path`` when given. ``keep``: a folder to keep the FCD logs in."""
    from shadow.follow import follow_log

    console = Console()
    game = sumo.shipped_scenarios()
    if game is None:
        raise sumo.SumoInputError("bench shadow needs SUMO's shipped scenarios: pip install -e '.[sumo]'")
    config = game / f"{CONFIG}.sumocfg"
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-shadow-") as tmp:
        out = Path(keep) if keep else Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        for model in MODELS:
            with console.status(f"SUMO drives {CONFIG} with {model} for {minutes:g} simulated minutes"):
                fcd = sumo_fcd(config, minutes, model, out)
            results[model] = follow_log(fcd, config, period_s=period_s, start_s=WARM_UP_S,
                                        console=Console(quiet=True))
    table = Table(title=f"the twin following SUMO's {CONFIG} ({minutes:g} min, a sync point every {period_s:g} s "
                        f"from {WARM_UP_S:g} s): ADE in metres at 1 / 3 / 5 s")
    for column in ("SUMO's model", "twin", "twin, drivers learned", "constant velocity", "constant acceleration",
                   "vehicles", "x real time", "us per vehicle forecast"):
        table.add_column(column, justify="left" if column == "SUMO's model" else "right")
    for model, f in results.items():
        ade = f["ade_m"]
        table.add_row(model, *(" / ".join(f"{v:.2f}" for v in ade[m]) for m in
                               ("twin", "twin_learned", "constant_velocity", "constant_acceleration")),
                      str(f["vehicles"]), f"{f['cost']['realtime_factor']:g}", f"{f['cost']['us_per_vehicle_forecast']:,}")
    console.print(table)
    figures = {"config": CONFIG, "minutes": minutes, "period_s": period_s, "logs": results}
    if json_path:
        Path(json_path).write_text(json.dumps(figures, indent=2) + "\n")
    return figures

"""Is the ensemble's collision probability calibrated? Over many seeded situations, the ensemble
predicts the probability of a collision in the next ``horizon_s``; the run itself then goes on
(its own drivers and random streams, unperturbed) and a collision happens or not. Reliability
(observed frequency per bin of predicted probability), the Brier score and the Brier score of
always predicting the base rate are reported, with a reliability diagram.

Situations: the intersection with red-light runners (signal compliance 0.5, so collisions are
common enough to measure), every ``every_s`` seconds of each seed's run.

    python run.py bench ensemble [--minutes 4] [--json out.json]   # writes docs/ensemble-reliability.png
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

BINS = (0.0, 0.05, 0.2, 0.4, 0.6, 0.8, 1.0001)
FIGURE = Path(__file__).resolve().parent.parent / "docs" / "ensemble-reliability.png"


def situations(minutes: float, seeds: tuple[int, ...], every_s: float, horizon_s: float, futures: int,
               workers: int | None) -> list[dict[str, Any]]:
    """(predicted probability, observed outcome) per situation."""
    from causes.ensemble import ensemble
    from envs.world import World
    from twin.scenario import load_scenario

    rows = []
    for seed in seeds:
        config = load_scenario("intersection", {"ego.controlled": 0, "seed": seed, "drivers.signal_compliance": 0.5})
        world = World(config)
        t = every_s
        while t + horizon_s <= minutes * 60:
            while world.time < t - 1e-9:
                world.step()
            saved = world.get_state()
            predicted = ensemble(saved, futures=futures, horizon_s=horizon_s, seed=seed * 1000 + int(t), workers=workers)
            truth = World.from_state(saved)  # the run itself goes on, unperturbed
            observed = False
            while truth.time < t + horizon_s - 1e-9 and not observed:
                observed = any(e.kind == "collision" for e in truth.step())
            rows.append({"seed": seed, "time_s": round(t, 1), "p": predicted["p_collision"], "observed": observed})
            t += every_s
    return rows


def calibration(rows: list[dict[str, Any]]) -> dict[str, Any]:
    p = np.array([r["p"] for r in rows])
    o = np.array([r["observed"] for r in rows], float)
    bins = []
    for lo, hi in zip(BINS[:-1], BINS[1:]):
        inside = (p >= lo) & (p < hi)
        if inside.any():
            bins.append({"from": lo, "to": min(hi, 1.0), "situations": int(inside.sum()),
                         "predicted": round(float(p[inside].mean()), 3), "observed": round(float(o[inside].mean()), 3)})
    base = float(o.mean())
    return {"situations": len(rows), "base_rate": round(base, 3), "brier": round(float(np.mean((p - o) ** 2)), 4),
            "brier_of_base_rate": round(float(np.mean((base - o) ** 2)), 4), "bins": bins}


def plot(result: dict[str, Any], path: Path = FIGURE) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=120)
    ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--", label="perfect")
    xs = [b["predicted"] for b in result["bins"]]
    ys = [b["observed"] for b in result["bins"]]
    ax.plot(xs, ys, marker="o", label="ensemble")
    for b in result["bins"]:
        ax.annotate(str(b["situations"]), (b["predicted"], b["observed"]), textcoords="offset points", xytext=(5, -10),
                    fontsize=8)
    ax.set(xlabel="predicted probability of a collision", ylabel="observed frequency", xlim=(0, 1), ylim=(0, 1),
           title=f"Brier {result['brier']:.3f} (base rate alone {result['brier_of_base_rate']:.3f})")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def run_ensemble_benchmark(minutes: float = 4.0, json_path: Path | None = None, futures: int = 20,
                           horizon_s: float = 10.0, every_s: float = 5.0, seeds: tuple[int, ...] = (0, 1, 2),
                           workers: int | None = None) -> dict[str, Any]:
    console = Console()
    with console.status(f"{len(seeds)} seeds x {minutes:g} min, a situation every {every_s:g} s, {futures} futures "
                        f"of {horizon_s:g} s each"):
        rows = situations(minutes, seeds, every_s, horizon_s, futures, workers)
    result = calibration(rows)
    result["rows"] = rows
    table = Table(title=f"ensemble calibration: {result['situations']} situations, base rate {result['base_rate']:.2f}, "
                        f"Brier {result['brier']:.3f} (base rate alone {result['brier_of_base_rate']:.3f})")
    for column in ("predicted p", "situations", "mean predicted", "observed"):
        table.add_column(column, justify="right")
    for b in result["bins"]:
        table.add_row(f"{b['from']:.2f}-{b['to']:.2f}", str(b["situations"]), f"{b['predicted']:.3f}",
                      f"{b['observed']:.3f}")
    console.print(table)
    console.print(f"reliability diagram: {plot(result)}")
    if json_path:
        Path(json_path).write_text(json.dumps(result, indent=2) + "\n")
    return result

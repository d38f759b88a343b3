"""Traffic flow figures of a run directory (``run.py analyze RUN_DIR``): tables and plots.

From the trace's ticks (every vehicle's lane, speed and gap every half second):

- the fundamental diagram by Edie's definitions over space-time cells (each lane for
  ``WINDOW_S``): density = time spent / (lane length x window), flow = distance driven /
  (lane length x window), speed = flow / density;
- the distributions of speed and of time headway (gap / speed of the vehicles following one);
- lane use (the share of vehicle-time on each lane);
- travel times per route, a route being the lane a vehicle was first seen on and the one it
  was last seen on (the time between; vehicles still there at the end are left out).

Written as ``analysis.json`` and PNG plots (``fundamental_diagram.png``, ``distributions.png``,
``lane_use.png``) beside the trace, or in ``out``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from envs.trace import read_trace

WINDOW_S = 60.0  # [s] the time window of a fundamental-diagram cell
MIN_LANE_M = 20.0  # [m] shorter lanes (junction internals) are left out of the fundamental diagram
FOLLOWING_MPS = 1.0  # [m/s] slower vehicles give no time headway


def analyze(run_dir: str | Path, out: str | Path | None = None, console: Console | None = None) -> dict[str, Any]:
    """The flow figures of ``run_dir`` (see the module docstring)."""
    console = console or Console()
    header, ticks = read_trace(run_dir)
    ticks = [t for t in ticks if t.get("type") == "tick"]
    out = Path(out) if out is not None else Path(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    lanes = header["network"]["lanes"]
    lane_length = np.array([_length(ln["centre"]) for ln in lanes])
    names = [ln["name"] or str(k) for k, ln in enumerate(lanes)]
    dt = float(header["tick_s"])
    cells: dict[tuple[int, int], list[float]] = {}  # (lane, window) -> [vehicle-seconds, metres driven]
    speeds, headways, lane_time = [], [], np.zeros(len(lanes))
    first: dict[int, tuple[float, int]] = {}
    last: dict[int, tuple[float, int]] = {}
    for tick in ticks:
        v = tick["vehicles"]
        t = float(tick["t"])
        window = int(t // WINDOW_S)
        for vid, lane, speed, gap in zip(v["id"], v["lane"], v["v"], v["gap"]):
            cell = cells.setdefault((lane, window), [0.0, 0.0])
            cell[0] += dt
            cell[1] += speed * dt
            lane_time[lane] += dt
            speeds.append(speed)
            if gap is not None and speed > FOLLOWING_MPS:
                headways.append(gap / speed)
            first.setdefault(vid, (t, lane))
            last[vid] = (t, lane)
    end = float(ticks[-1]["t"]) if ticks else 0.0
    fd = [{"lane": names[lane], "window_start_s": w * WINDOW_S,
           "density_veh_km": 1000.0 * spent / (lane_length[lane] * WINDOW_S),
           "flow_veh_h": 3600.0 * driven / (lane_length[lane] * WINDOW_S),
           "speed_mps": driven / spent if spent > 0 else None}
          for (lane, w), (spent, driven) in sorted(cells.items()) if lane_length[lane] >= MIN_LANE_M]
    routes: dict[str, list[float]] = {}
    for vid, (t0, lane0) in first.items():
        t1, lane1 = last[vid]
        if t1 < end - 1e-6 and t1 > t0:  # left before the end: a whole trip seen
            routes.setdefault(f"{names[lane0]} -> {names[lane1]}", []).append(t1 - t0)
    speeds_a, headways_a = np.array(speeds), np.array(headways)
    share = lane_time / max(lane_time.sum(), 1e-9)
    top = np.argsort(-share)[:15]
    figures = {
        "run_dir": str(run_dir), "ticks": len(ticks), "vehicles": len(first),
        "speed_mps": _quantiles(speeds_a), "time_headway_s": _quantiles(headways_a),
        "fundamental_diagram": fd,
        "capacity_veh_h": round(max((c["flow_veh_h"] for c in fd), default=0.0), 1),
        "lane_use": {names[k]: round(float(share[k]), 4) for k in top if share[k] > 0},
        "travel_time_s": {route: {"trips": len(ts), "mean": round(float(np.mean(ts)), 1),
                                  "p90": round(float(np.percentile(ts, 90)), 1)}
                          for route, ts in sorted(routes.items(), key=lambda kv: -len(kv[1]))[:20]},
    }
    figures["plots"] = _plots(out, fd, speeds_a, headways_a, figures["lane_use"])
    (out / "analysis.json").write_text(json.dumps(figures, indent=2) + "\n")
    _print(console, figures)
    return figures


def _length(points: list) -> float:
    p = np.asarray(points, float)
    return float(np.hypot(*np.diff(p, axis=0).T).sum()) if len(p) > 1 else 0.0


def _quantiles(values: np.ndarray) -> dict[str, float | None]:
    if not len(values):
        return {"n": 0, "mean": None, "p10": None, "p50": None, "p90": None}
    return {"n": int(len(values)), "mean": round(float(values.mean()), 2),
            **{f"p{q}": round(float(np.percentile(values, q)), 2) for q in (10, 50, 90)}}


def _plots(out: Path, fd: list[dict], speeds: np.ndarray, headways: np.ndarray, lane_use: dict[str, float]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    k = np.array([c["density_veh_km"] for c in fd])
    q = np.array([c["flow_veh_h"] for c in fd])
    v = np.array([c["speed_mps"] or 0.0 for c in fd])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.scatter(k, q, s=10, alpha=0.6)
    ax1.set(xlabel="density (veh/km/lane)", ylabel="flow (veh/h/lane)", title="flow-density")
    ax2.scatter(k, 3.6 * v, s=10, alpha=0.6, color="tab:orange")
    ax2.set(xlabel="density (veh/km/lane)", ylabel="speed (km/h)", title="speed-density")
    fig.suptitle(f"fundamental diagram: {len(fd)} lane x {WINDOW_S:g} s cells (Edie)")
    fig.tight_layout()
    fig.savefig(out / "fundamental_diagram.png", dpi=110)
    plt.close(fig)
    files.append(str(out / "fundamental_diagram.png"))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.hist(3.6 * speeds, bins=40, color="tab:blue")
    ax1.set(xlabel="speed (km/h)", ylabel="vehicle samples", title="speeds")
    ax2.hist(np.clip(headways, 0, 10), bins=40, color="tab:green")
    ax2.set(xlabel="time headway (s, 10+ at 10)", ylabel="vehicle samples", title="time headways")
    fig.tight_layout()
    fig.savefig(out / "distributions.png", dpi=110)
    plt.close(fig)
    files.append(str(out / "distributions.png"))
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.barh(list(lane_use)[::-1], [100 * s for s in lane_use.values()][::-1])
    ax.set(xlabel="share of vehicle-time (%)", title="lane use (the busiest lanes)")
    fig.tight_layout()
    fig.savefig(out / "lane_use.png", dpi=110)
    plt.close(fig)
    files.append(str(out / "lane_use.png"))
    return files


def _print(console: Console, figures: dict[str, Any]) -> None:
    table = Table(title=f"{figures['run_dir']}: {figures['vehicles']} vehicles over {figures['ticks']} ticks")
    table.add_column("measure")
    table.add_column("mean", justify="right")
    table.add_column("p10 / p50 / p90", justify="right")
    for name, key in (("speed (m/s)", "speed_mps"), ("time headway (s)", "time_headway_s")):
        q = figures[key]
        table.add_row(name, str(q["mean"]), f"{q['p10']} / {q['p50']} / {q['p90']}")
    console.print(table)
    console.print(f"highest flow in a {WINDOW_S:g} s lane cell: {figures['capacity_veh_h']:,.0f} veh/h; "
                  f"{len(figures['travel_time_s'])} routes with whole trips; plots: "
                  + ", ".join(Path(p).name for p in figures["plots"]))

"""The run trace (``trace.jsonl.gz``): one record per decision tick, readable with gzip + json.

The format is documented in ``docs/trace.md`` (schema ``docs/trace.schema.json``). Line 1
is the header: format and version, scenario, seed, tick length, the network's geometry
(lane outlines, crossings, sidewalks, signal heads) and the humans (identity, persona,
role, description). Every further line is a tick: the world state at ``t`` [s] as
columns (vehicles, pedestrians, signals), the humans' current intents, and what happened
since the previous tick: decisions (with prompt, answer and recalled memories), the
supervisor's new hazard events and alerts, and the world's events.

Numbers are rounded to what a viewer needs (positions to 0.1 m, speeds to 0.1 m/s,
headings to 0.01 rad). The file is flushed every tick, so an interrupted run keeps a
readable trace up to its last tick (:func:`read_trace` stops at a truncated tail).
"""

from __future__ import annotations

import gzip
import logging
import json
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from envs.actors import PHASE_NAMES, VEHICLE_TYPES
from envs.state import SIGNAL_NAMES, WALK_NAMES, WorldState

log = logging.getLogger(__name__)
FORMAT = "traffic-twin-trace"
VERSION = 1
TICK_S = 0.5  # [s] the wanted time between trace ticks; a tick is a whole number of physics steps (tick_steps)
TRACE_FILE = "trace.jsonl.gz"


def tick_steps(sim_hz: int) -> int:
    """Physics steps per trace tick: the whole number nearest :data:`TICK_S` (at 15 Hz 8
    steps, 0.533 s; at 10 or 20 Hz exactly 0.5 s), so ticks are evenly spaced."""
    return max(1, round(TICK_S * sim_hz))


def _r(values: np.ndarray, digits: int) -> list:
    return np.round(np.asarray(values, float), digits).tolist()


def _pts(points: np.ndarray) -> list:
    return np.round(np.asarray(points, float), 2).tolist()


def network_geometry(network: Any) -> dict[str, Any]:
    """The static drawing of a network: outlines in world metres (x east, y north)."""
    lanes = []
    for k, ln in enumerate(network.lanes):
        left = network.lane_polyline(k, 0.5 * ln.width)
        right = network.lane_polyline(k, -0.5 * ln.width)
        x, y, _ = network.lane_point(k, ln.s_to)
        lanes.append({"name": ln.name, "outline": _pts(np.concatenate([left, right[::-1]])),
                      "centre": _pts(network.lane_polyline(k, 0.0)), "signal_group": int(ln.signal_group),
                      "stop_line": [round(float(x), 2), round(float(y), 2)], "lane_change": bool(ln.lane_change)})
    crossings = [{"name": c.name, "outline": _pts(c.polygon), "signal": int(c.signal)} for c in network.crossings]
    geometry = {"bounds": [round(float(b), 2) for b in network.bounds], "lanes": lanes, "crossings": crossings,
                "sidewalks": [_pts(s) for s in network.sidewalks], "sidewalk_width_m": float(network.sidewalk_width)}
    if network.junction_shapes:  # imported networks: junction areas, and a signal head per signalised link
        geometry["junctions"] = [_pts(shape) for shape in network.junction_shapes]
        geometry["junction_names"] = list(network.junction_names)
        geometry["signal_heads"] = [{"group": g, "at": [round(x, 2), round(y, 2)]} for g, x, y in network.signal_heads()]
    return geometry


def tick_state(state: WorldState, humans_by_actor: dict[int, str], signals_dark: bool = False) -> dict[str, Any]:
    """The world columns of one tick (see ``docs/trace.md``)."""
    v, p = state.vehicles, state.pedestrians
    has = state.leader >= 0
    closing = np.where(has, v["v"] - v["v"][np.maximum(state.leader, 0)], 0.0)
    gap = np.where(has, state.leader_gap, np.nan)
    ttc = np.where(has & (closing > 0.1), gap / np.maximum(closing, 0.1), np.nan)
    vehicles = {
        "id": v["id"].tolist(), "x": _r(v["x"], 1), "y": _r(v["y"], 1), "heading": _r(v["heading"], 2),
        "v": _r(v["v"], 1), "a": _r(v["a"], 1), "lane": v["lane"].tolist(), "type": v["vtype"].tolist(),
        "length": _r(v["length"], 1), "width": _r(v["width"], 1), "controlled": (v["driver"] != 0).astype(int).tolist(),
        "crashed": v["crashed"].astype(int).tolist(),
        "gap": [None if not np.isfinite(g) else round(float(g), 1) for g in gap],
        "ttc": [None if not np.isfinite(t) else round(float(t), 1) for t in ttc],
        "human": [humans_by_actor.get(int(i)) for i in v["id"]],
    }
    pedestrians = {
        "id": p["id"].tolist(), "x": _r(p["x"], 1), "y": _r(p["y"], 1), "phase": p["phase"].tolist(),
        "crossing": p["crossing"].tolist(), "jaywalker": p["jaywalker"].astype(int).tolist(),
        "waited": _r(p["waited"], 1), "human": [humans_by_actor.get(int(i)) for i in p["id"]],
    }
    return {"vehicles": vehicles, "pedestrians": pedestrians,
            "signals": {"groups": state.group_state.tolist(), "crossings": state.crossing_signal.tolist(),
                        "interval": state.signal_interval, "dark": bool(signals_dark)}}


class TraceWriter:
    """Writes ``trace.jsonl.gz`` for one run: :meth:`header` once, then :meth:`tick`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._file = gzip.open(self.path, "wt", compresslevel=6)
        self.ticks = 0

    def header(self, config: Any, network: Any, humans: list[dict[str, Any]]) -> None:
        record = {"type": "header", "format": FORMAT, "version": VERSION, "scenario": config.name,
                  "seed": config.seed, "tick_s": round(tick_steps(config.sim_hz) / config.sim_hz, 6),
                  "sim_hz": config.sim_hz, "network": network_geometry(network),
                  "humans": humans,
                  "legend": {"vehicle_types": [t.name for t in VEHICLE_TYPES], "pedestrian_phases": list(PHASE_NAMES),
                             "signal_states": list(SIGNAL_NAMES), "walk_states": list(WALK_NAMES)}}
        self._write(record)

    def tick(self, state: WorldState, humans_by_actor: dict[int, str], intents: dict[str, dict],
             decisions: list[dict], hazards: list[dict], events: list[dict], alerts: list[dict],
             signals_dark: bool = False, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """One tick record (written and returned); ``extra``: fields a kind of run adds (a
        shadow run's ``inferred`` and ``observed_ids``, ``docs/trace.md``)."""
        record = {"type": "tick", "t": round(state.time, 3), **tick_state(state, humans_by_actor, signals_dark),
                  "intents": intents, "decisions": decisions, "hazards": hazards, "events": events, "alerts": alerts,
                  **(extra or {})}
        self._write(record)
        self.ticks += 1
        return record

    def _write(self, record: dict) -> None:
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def read_trace(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The header and the ticks of a trace file (a run directory or the file itself)."""
    path = Path(path)
    if path.is_dir():
        path = path / TRACE_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path}: no trace (record one with python run.py simulate ...)")
    header, ticks, unreadable = None, [], []
    with gzip.open(path, "rt", errors="replace") as f:
        try:
            for n, line in enumerate(f, start=1):
                try:
                    record = json.loads(line)
                except ValueError:
                    unreadable.append(n)  # a run killed mid-line, or a damaged record: the rest is still read
                    continue
                if record.get("type") == "header":
                    header = record
                else:
                    ticks.append(record)
        except (EOFError, zlib.error, OSError):
            pass  # a run killed mid-write: keep what was flushed
    if header is None or header.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} file")
    if header.get("version", 0) > VERSION:
        raise ValueError(f"{path}: trace version {header['version']} is newer than this reader ({VERSION})")
    if unreadable:
        log.warning("%s: %d unreadable line%s skipped (line %s); %d ticks read", path, len(unreadable),
                    "s" * (len(unreadable) > 1), ", ".join(map(str, unreadable[:5])), len(ticks))
    return header, ticks

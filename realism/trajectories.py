"""``Trajectories``: vehicles' time series and world events, from a twin run or a trajectory log.

Sources (``load`` tells them apart):

- a twin run directory (or its ``trace.jsonl.gz``): the vehicles of every trace tick (middle
  x, y, heading, speed, acceleration, lane name from the header's network, length, width)
  and the world events of ``events.jsonl`` (or, when a killed run has none, of the ticks);
  pedestrians are not read;
- a trajectory log read by ``shadow.formats.read_log``: SUMO FCD XML, xml2csv's FCD CSV or
  the highD-style CSV. Front-bumper positions (FCD) are moved to the vehicle's middle; lengths
  and widths a log lacks come from the twin's vehicle type of that name, else 5.0 m x 1.8 m.
  A log has no world events: ``events`` is None ("not observed"), not zero.

Rows are sorted by vehicle, then time. Units: s, m, m/s, m/s^2, rad (counter-clockwise from +x).

Also here: ``resample`` (a common sampling period), and the perturbations used to check the
realism score and to make its floor: ``scale_speeds``, ``random_accelerations``,
``random_kinematics``. They move vehicles along their recorded paths (no new routes); a
vehicle that would run past the end of its path has left the observed area and its later
samples are dropped.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from envs.actors import VEHICLE_TYPES
from envs.trace import TRACE_FILE, read_trace
from shadow.formats import detect_format, read_log
from shadow.log import DEFAULT_LENGTH_M, LogError
from shadow.matching import headings, middles, record_lengths

DEFAULT_WIDTH_M = 1.8  # [m] a vehicle of unknown width
EVENT_KINDS = ("collision", "off_road", "red_light")  # world events counted (docs/trace.md)
EVENTS_FILE = "events.jsonl"
MAX_GAP_S = 2.0  # [s] a track is not interpolated across a longer gap in its samples
_TYPES = {t.name: t for t in VEHICLE_TYPES}


class TrajectoryError(ValueError):
    """Trajectories that cannot be loaded or used; the message names the file and the problem."""


@dataclass(frozen=True)
class Event:
    """A world event: ``kind`` (one of ``EVENT_KINDS``), time [s], the actors' ids."""

    kind: str
    time_s: float
    actors: tuple[str, ...]


@dataclass
class Trajectories:
    """Per-vehicle time series (rows sorted by vehicle, then time) and world events."""

    source: str  # where it came from, for messages
    kind: str  # "run" (twin run), "fcd", "fcd-csv", "csv" (logs), "synthetic", or "<kind>+<perturbation>"
    ids: list[str]  # vehicle ids
    vehicle: np.ndarray  # per row: index into ``ids``
    t: np.ndarray  # [s]
    x: np.ndarray  # [m] the vehicle's middle
    y: np.ndarray  # [m]
    speed: np.ndarray  # [m/s]
    heading: np.ndarray  # [rad] counter-clockwise from +x
    accel: np.ndarray  # [m/s^2] longitudinal (NaN: not observed; derived from speed when needed)
    lane: np.ndarray  # per row: lane name (str; "" unknown)
    length: np.ndarray  # per vehicle [m]
    width: np.ndarray  # per vehicle [m]
    events: list[Event] | None  # None: the source does not observe events
    duration_s: float  # [s] observed time span
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.t)

    @property
    def vehicle_count(self) -> int:
        """Vehicles observed at least once."""
        return len(np.unique(self.vehicle))

    def event_count(self, kind: str) -> int | None:
        """Events of ``kind`` (None: not observed)."""
        return None if self.events is None else sum(e.kind == kind for e in self.events)

    @property
    def collisions(self) -> int | None:
        return self.event_count("collision")

    @property
    def off_road(self) -> int | None:
        return self.event_count("off_road")

    @property
    def red_light(self) -> int | None:
        return self.event_count("red_light")

    def tracks(self) -> list[tuple[int, slice]]:
        """``(vehicle index, row slice)`` per vehicle with rows."""
        if not len(self):
            return []
        cuts = np.flatnonzero(np.diff(self.vehicle)) + 1
        starts = np.concatenate([[0], cuts])
        stops = np.concatenate([cuts, [len(self)]])
        return [(int(self.vehicle[a]), slice(int(a), int(b))) for a, b in zip(starts, stops)]

    @classmethod
    def from_rows(cls, source: str, kind: str, ids: Any, t: Any, x: Any, y: Any, speed: Any = None,
                  heading: Any = None, accel: Any = None, lane: Any = None, length: Any = None, width: Any = None,
                  events: list[Event] | None = None, duration_s: float | None = None,
                  notes: list[str] | None = None) -> "Trajectories":
        """Trajectories from one row per vehicle and time (any order): ``ids`` (vehicle id per
        row), ``t`` [s], ``x``, ``y`` [m] of the vehicle's middle,
        optional ``speed`` [m/s], ``heading`` [rad], ``accel`` [m/s^2], ``lane`` (names),
        ``length``, ``width`` [m] per row (NaN / None: unknown). Unknown headings and speeds are
        derived from the positions; a row repeating a vehicle and time is dropped."""
        n = len(t)
        row_ids = np.array([str(i) for i in ids], dtype=object)
        t = np.asarray(t, float)

        def column(values: Any, fill: float) -> np.ndarray:
            if values is None:
                return np.full(n, fill)
            return np.broadcast_to(np.asarray(values, float), (n,)).astype(float)

        x, y = column(x, math.nan), column(y, math.nan)
        speed, heading, accel = column(speed, math.nan), column(heading, math.nan), column(accel, math.nan)
        length_rows, width_rows = column(length, math.nan), column(width, math.nan)
        lanes = np.array(["" if v is None else str(v) for v in lane] if lane is not None else [""] * n, dtype=object)
        if n and not (np.isfinite(t).all() and np.isfinite(x).all() and np.isfinite(y).all()):
            raise TrajectoryError(f"{source}: times and positions must be numbers")
        names, vehicle = np.unique(row_ids, return_inverse=True) if n else (np.array([], object), np.zeros(0, int))
        order = np.lexsort((t, vehicle))
        vehicle, t = vehicle[order], t[order]
        keep = np.ones(n, bool)
        keep[1:] = ~((vehicle[1:] == vehicle[:-1]) & (np.abs(t[1:] - t[:-1]) < 1e-9))
        idx = order[keep]
        vehicle, t = vehicle[keep], t[keep]
        x, y, speed, heading, accel, lanes = x[idx], y[idx], speed[idx], heading[idx], accel[idx], lanes[idx]
        length_rows, width_rows = length_rows[idx], width_rows[idx]
        k = len(names)
        length_v, width_v = np.full(k, DEFAULT_LENGTH_M), np.full(k, DEFAULT_WIDTH_M)
        for dims, rows_dims in ((length_v, length_rows), (width_v, width_rows)):  # each vehicle's first known value
            known = np.flatnonzero(np.isfinite(rows_dims))
            first = known[np.unique(vehicle[known], return_index=True)[1]]
            dims[vehicle[first]] = rows_dims[first]
        traj = cls(source=str(source), kind=kind, ids=[str(s) for s in names], vehicle=vehicle.astype(np.int64), t=t,
                   x=x, y=y, speed=speed, heading=heading, accel=accel, lane=lanes, length=length_v, width=width_v,
                   events=events, duration_s=0.0, notes=list(notes or []))
        _derive_heading_speed(traj)
        traj.duration_s = float(duration_s) if duration_s is not None else _span(traj.t)
        return traj


def _span(t: np.ndarray) -> float:
    """Observed span [s]: first to last time plus one typical sampling interval."""
    if not len(t):
        return 0.0
    times = np.unique(t)
    step = float(np.median(np.diff(times))) if len(times) > 1 else 0.0
    return float(times[-1] - times[0] + step)


def _derive_heading_speed(traj: Trajectories) -> None:
    """Fill unknown headings (direction of motion) and speeds (|d position / dt|) per vehicle."""
    if np.isfinite(traj.heading).all() and np.isfinite(traj.speed).all():
        return
    for _, sl in traj.tracks():
        t, x, y = traj.t[sl], traj.x[sl], traj.y[sl]
        if len(t) > 1:
            vx, vy = np.gradient(x, t), np.gradient(y, t)
        else:
            vx = vy = np.zeros(len(t))
        h, v = traj.heading[sl], traj.speed[sl]
        moving = np.hypot(vx, vy) > 0.1
        derived_h = np.arctan2(vy, vx)
        if moving.any():  # a standing vehicle keeps the heading it last moved with
            last = np.maximum.accumulate(np.where(moving, np.arange(len(t)), -1))
            first = int(np.argmax(moving))
            derived_h = derived_h[np.where(last >= 0, last, first)]
        else:
            derived_h = np.zeros(len(t))
        traj.heading[sl] = np.where(np.isfinite(h), h, derived_h)
        traj.speed[sl] = np.where(np.isfinite(v), v, np.hypot(vx, vy))


# ---- loading -----------------------------------------------------------------------------------
def load(path: str | Path, frame_rate_hz: float | None = None) -> Trajectories:
    """A twin run directory (or its ``trace.jsonl.gz``) or a trajectory log (SUMO FCD XML,
    FCD CSV, highD-style CSV), detected. ``frame_rate_hz`` [Hz] turns a CSV's frames into
    times where it has no ``time_s``. Raises ``TrajectoryError`` (a ValueError) naming the file."""
    path = Path(path)
    if path.is_dir() or path.name == TRACE_FILE:
        return load_run(path)
    return load_log(path, frame_rate_hz)


def load_run(path: str | Path) -> Trajectories:
    """A twin run: its ``trace.jsonl.gz`` (vehicles per tick) and ``events.jsonl`` (world events)."""
    path = Path(path)
    trace_file = path / TRACE_FILE if path.is_dir() else path
    if not trace_file.is_file():
        raise TrajectoryError(f"{trace_file}: no such file (a twin run directory holds {TRACE_FILE}; "
                              "record one with python run.py simulate ...)")
    try:
        header, ticks = read_trace(trace_file)
    except (ValueError, OSError) as exc:
        raise TrajectoryError(f"{trace_file}: unreadable trace ({exc})") from None
    if not ticks:
        raise TrajectoryError(f"{trace_file}: a header but no ticks (the run recorded nothing)")
    lane_names = [ln.get("name") or str(k) for k, ln in enumerate(header.get("network", {}).get("lanes", []))]
    cols: dict[str, list] = {name: [] for name in ("id", "t", "x", "y", "v", "heading", "a", "lane", "length", "width")}
    for tick in ticks:
        veh = tick.get("vehicles") or {}
        ids = veh.get("id") or []
        cols["id"].extend(ids)
        cols["t"].extend([tick["t"]] * len(ids))
        for name in ("x", "y", "v", "heading", "a", "length", "width"):
            cols[name].extend(veh.get(name) or [math.nan] * len(ids))
        cols["lane"].extend(lane_names[k] if 0 <= k < len(lane_names) else str(k) for k in (veh.get("lane") or []))
    if not cols["id"]:
        raise TrajectoryError(f"{trace_file}: no vehicles in any of its {len(ticks)} ticks")
    events_file = trace_file.parent / EVENTS_FILE
    events = _read_events(events_file) if events_file.is_file() else [
        _event(e) for tick in ticks for e in tick.get("events") or []]
    tick_s = float(header.get("tick_s") or 0.5)
    duration = float(ticks[-1]["t"]) - float(ticks[0]["t"]) + tick_s
    notes = [] if events_file.is_file() else [f"no {EVENTS_FILE}: events from the trace's ticks"]
    nums = {k: np.array([math.nan if v is None else v for v in cols[k]], float)
            for k in ("t", "x", "y", "v", "heading", "a", "length", "width")}
    return Trajectories.from_rows(str(trace_file.parent if path.is_dir() else trace_file), "run", cols["id"],
                                  nums["t"], nums["x"], nums["y"], speed=nums["v"], heading=nums["heading"],
                                  accel=nums["a"], lane=cols["lane"], length=nums["length"], width=nums["width"],
                                  events=[e for e in events if e.kind in EVENT_KINDS], duration_s=duration,
                                  notes=notes)


def _event(record: dict[str, Any]) -> Event:
    return Event(str(record["kind"]), float(record.get("time_s", math.nan)),
                 tuple(str(a) for a in record.get("actors") or ()))


def _read_events(path: Path) -> list[Event]:
    events = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                events.append(_event(json.loads(line)))
            except (ValueError, KeyError, TypeError) as exc:
                raise TrajectoryError(f"{path}: line {n}: not a world event ({exc})") from None
    return events


def load_log(path: str | Path, frame_rate_hz: float | None = None) -> Trajectories:
    """A trajectory log (``shadow.formats.FORMATS``); its events are not observed (None)."""
    path = Path(path)
    if not path.is_file():
        raise TrajectoryError(f"{path}: no such file")
    try:
        log = read_log(path, frame_rate_hz)
    except LogError as exc:
        raise TrajectoryError(str(exc)) from None
    if not len(log):
        raise TrajectoryError(f"{path}: no vehicle rows (an empty log)")
    kind = detect_format(path)
    length = record_lengths(log)  # the log's, else its type's (the twin's types), else the default
    by_type_wid = np.array([_TYPES[v].width if v in _TYPES else math.nan for v in log.vtype], float)
    width = np.where(np.isfinite(log.width), log.width, by_type_wid)
    notes = list(log.notes) + ["a trajectory log: collisions, off-road and red-light events not observed"]
    if not np.isfinite(log.length).all():
        notes.append(f"lengths a log lacks: its type's or {DEFAULT_LENGTH_M:g} m; widths: {DEFAULT_WIDTH_M:g} m")
    heading = headings(log)
    x, y = middles(log, heading, length)  # FCD's front bumpers moved to the middles (shadow.matching)
    ids = np.asarray(log.ids, dtype=object)[log.vehicle]
    return Trajectories.from_rows(log.source, kind, ids, log.time_s, x, y, speed=log.speed, heading=heading,
                                  accel=log.acceleration, lane=log.lane, length=length, width=width, events=None,
                                  notes=notes)


# ---- resampling --------------------------------------------------------------------------------
def resample(traj: Trajectories, period_s: float = 0.5, max_gap_s: float = MAX_GAP_S) -> Trajectories:
    """The trajectories at times ``k * period_s`` [s] inside each vehicle's observed span:
    positions, speeds, accelerations and headings interpolated linearly, lanes from the
    nearest sample; not across gaps longer than ``max_gap_s`` [s]. Accelerations a vehicle's
    source lacks are the derivative of its resampled speed."""
    out: dict[str, list] = {k: [] for k in ("vehicle", "t", "x", "y", "speed", "heading", "accel", "lane")}
    for v, sl in traj.tracks():
        t = traj.t[sl]
        cuts = np.flatnonzero(np.diff(t) > max_gap_s) + 1
        for seg in np.split(np.arange(len(t)), cuts):
            ts = t[seg]
            k0, k1 = math.ceil(ts[0] / period_s - 1e-6), math.floor(ts[-1] / period_s + 1e-6)
            if k1 < k0:
                continue
            tg = np.arange(k0, k1 + 1) * period_s
            rows = seg + sl.start
            speed = np.interp(tg, ts, traj.speed[rows])
            acc = traj.accel[rows]
            if np.isfinite(acc).all():
                accel = np.interp(tg, ts, acc)
            else:
                accel = np.gradient(speed, tg) if len(tg) > 1 else np.zeros(len(tg))
            heading = np.interp(tg, ts, np.unwrap(traj.heading[rows]))
            near = np.clip(np.searchsorted(ts, tg), 1, max(len(ts) - 1, 1))
            nearest = np.where(np.abs(ts[near - 1] - tg) <= np.abs(ts[np.minimum(near, len(ts) - 1)] - tg),
                               near - 1, np.minimum(near, len(ts) - 1))
            out["vehicle"].append(np.full(len(tg), v))
            out["t"].append(tg)
            out["x"].append(np.interp(tg, ts, traj.x[rows]))
            out["y"].append(np.interp(tg, ts, traj.y[rows]))
            out["speed"].append(speed)
            out["heading"].append(np.angle(np.exp(1j * heading)))
            out["accel"].append(accel)
            out["lane"].append(traj.lane[rows][nearest])
    cat = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in out.items()}
    return replace(traj, vehicle=cat["vehicle"].astype(np.int64), t=cat["t"], x=cat["x"], y=cat["y"],
                   speed=cat["speed"], heading=cat["heading"], accel=cat["accel"],
                   lane=cat["lane"].astype(object) if len(cat["lane"]) else np.zeros(0, object),
                   notes=traj.notes + [f"resampled every {period_s:g} s"])


# ---- perturbations -----------------------------------------------------------------------------
def _cumtrapz(values: np.ndarray, t: np.ndarray) -> np.ndarray:
    if len(t) < 2:
        return np.zeros(len(t))
    return np.concatenate([[0.0], np.cumsum(0.5 * (values[1:] + values[:-1]) * np.diff(t))])


def _moved(traj: Trajectories, kind: str, new_speed: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]],
           events: list[Event] | None, note: str) -> Trajectories:
    """``traj`` with each vehicle moved along its recorded path: ``new_speed[vehicle index] =
    (speed, accel, station)`` per row, ``station`` [m] along the path from its first position."""
    keep = np.zeros(len(traj), bool)
    x, y, h, lane = traj.x.copy(), traj.y.copy(), traj.heading.copy(), traj.lane.copy()
    speed, accel = traj.speed.copy(), traj.accel.copy()
    for v, sl in traj.tracks():
        if v not in new_speed:
            continue
        sp, ac, station = new_speed[v]
        px, py = traj.x[sl], traj.y[sl]
        path = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(px), np.diff(py)))])
        station = np.maximum.accumulate(np.maximum(station, 0.0))
        inside = station <= path[-1] + 1e-6  # past the end of its path: it has left
        idx = np.clip(np.searchsorted(path, station, side="right") - 1, 0, len(path) - 1)
        x[sl] = np.interp(station, path, px)
        y[sl] = np.interp(station, path, py)
        h[sl] = np.angle(np.exp(1j * np.interp(station, path, np.unwrap(traj.heading[sl]))))
        lane[sl] = traj.lane[sl][idx]
        speed[sl], accel[sl] = sp, ac
        keep[sl] = inside
    return replace(traj, kind=f"{traj.kind}+{kind}", vehicle=traj.vehicle[keep], t=traj.t[keep], x=x[keep], y=y[keep],
                   speed=speed[keep], heading=h[keep], accel=accel[keep], lane=lane[keep], events=events,
                   notes=traj.notes + [note])


def scale_speeds(traj: Trajectories, factor: float) -> Trajectories:
    """Every speed (and acceleration) times ``factor``, positions integrated along each
    vehicle's recorded path (station + (factor - 1) x integral of speed); events kept."""
    if not factor >= 0:
        raise ValueError(f"a speed factor must be >= 0, not {factor}")
    moved = {}
    for v, sl in traj.tracks():
        t, sp = traj.t[sl], traj.speed[sl]
        path = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(traj.x[sl]), np.diff(traj.y[sl])))])
        moved[v] = (sp * factor, traj.accel[sl] * factor, path + (factor - 1.0) * _cumtrapz(sp, t))
    return _moved(traj, f"speed x{factor:g}", moved, traj.events, f"speeds x {factor:g}")


def random_accelerations(traj: Trajectories, sd_mps2: float, seed: int = 0) -> Trajectories:
    """White noise N(0, ``sd_mps2``^2) [m/s^2] added to each sample's acceleration and
    integrated into its speed (kept >= 0) and along its path; events kept."""
    rng = np.random.default_rng(seed)
    moved = {}
    for v, sl in traj.tracks():
        t, sp, ac = traj.t[sl], traj.speed[sl], traj.accel[sl]
        noise = rng.normal(0.0, sd_mps2, len(t))
        dv = np.concatenate([[0.0], np.cumsum(noise[1:] * np.diff(t))])
        new = np.maximum(sp + dv, 0.0)
        derived = np.gradient(new, t) if len(t) > 1 else np.zeros(len(t))
        new_ac = np.where((sp + dv < 0.0) | ~np.isfinite(ac), derived, ac + noise)
        path = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(traj.x[sl]), np.diff(traj.y[sl])))])
        moved[v] = (new, new_ac, path + _cumtrapz(new - sp, t))
    return _moved(traj, f"noise {sd_mps2:g} m/s2", moved, traj.events,
                  f"accelerations + N(0, {sd_mps2:g}^2) m/s^2, seed {seed}")


def random_kinematics(traj: Trajectories, accel_mps2: float = 3.0, seed: int = 0) -> Trajectories:
    """The random agent of the realism floor: each vehicle keeps its first position and path
    but starts at a speed drawn uniformly in [0, max observed speed] and accelerates at
    uniform random [-``accel_mps2``, ``accel_mps2``] [m/s^2] each sample (speed kept in
    [0, max observed speed]). Events are not observed (None)."""
    rng = np.random.default_rng(seed)
    vmax = float(np.nanmax(traj.speed)) if len(traj) else 0.0
    moved = {}
    for v, sl in traj.tracks():
        t = traj.t[sl]
        acc = rng.uniform(-accel_mps2, accel_mps2, len(t))
        sp = np.empty(len(t))
        sp[0] = rng.uniform(0.0, vmax)
        for k in range(1, len(t)):
            dt = t[k] - t[k - 1]
            sp[k] = min(max(sp[k - 1] + acc[k] * dt, 0.0), vmax)
            acc[k] = (sp[k] - sp[k - 1]) / dt  # what was applied, where a bound held it
        moved[v] = (sp, acc, _cumtrapz(sp, t))
    return _moved(traj, "random", moved, None,
                  f"random kinematics: start speed U[0, {vmax:.1f}] m/s, accelerations U[-{accel_mps2:g}, "
                  f"{accel_mps2:g}] m/s^2, seed {seed}")

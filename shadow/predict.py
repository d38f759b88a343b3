"""Predicting a log ahead and scoring the predictions: the twin against kinematic baselines.

At each sync point (every ``period_s`` seconds of the log) the twin holds the observed state
(``ShadowWorld.hold``) and drives it on with its behaviour models (IDM and MOBIL, each
vehicle with its parameters: the drivers' means, or learned ones); a constant-velocity and
a constant-acceleration prediction start from the same observed vehicles. Each is compared
with where the log shows the vehicles next, on the same forecasts: those of vehicles
observed (not inferred) at the sync point and at the horizon's end.

- ADE at horizon h: the mean over forecasts of the mean displacement [m] over the log's
  records in (t0, t0 + h];
- FDE at h: the mean displacement [m] at t0 + h;
- speed error at h: the mean absolute speed difference [m/s] at t0 + h;
- sync error: how far [m] the held vehicles stand from where they were observed (horizon 0:
  what placing them on the network costs);
- hazards ahead: hard braking (beyond ``HARD_BRAKE_MPS2``) the forecasts show, against the
  hard braking the log then shows: the share of observed events predicted before they
  happened, how early, and the share of predictions that no event followed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from shadow.sync import ObservedTracks, ShadowWorld
from shadow.tuner import MAX_SAMPLE_SPAN_S, Tuner

HORIZONS_S = (1.0, 3.0, 5.0)
METHODS = ("twin", "twin_learned", "constant_velocity", "constant_acceleration")


def constant_velocity(x: float, y: float, heading: float, v: float, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions [m] after ``tau`` [s] holding speed ``v`` [m/s] and ``heading`` [rad]."""
    return x + v * tau * np.cos(heading), y + v * tau * np.sin(heading)


def constant_acceleration(x: float, y: float, heading: float, v: float, a: float,
                          tau: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions [m] after ``tau`` [s] holding acceleration ``a`` [m/s^2] (a braking vehicle
    stops and stays), along ``heading`` [rad]."""
    stop = -v / a if a < 0 else np.inf
    t = np.minimum(tau, stop)
    dist = v * t + 0.5 * a * t * t
    return x + dist * np.cos(heading), y + dist * np.sin(heading)


@dataclass
class Scores:
    """Per method and horizon: the displacement and speed errors of every forecast."""

    horizons: tuple[float, ...]
    ade: dict[str, list[list[float]]] = field(default_factory=dict)
    fde: dict[str, list[list[float]]] = field(default_factory=dict)
    speed: dict[str, list[list[float]]] = field(default_factory=dict)
    sync_error: list[float] = field(default_factory=list)
    hazards: dict[str, Any] = field(default_factory=dict)  # ``HazardScores.summary``

    def __post_init__(self) -> None:
        for table in (self.ade, self.fde, self.speed):
            for method in METHODS:
                table[method] = [[] for _ in self.horizons]

    def summary(self) -> dict[str, Any]:
        def means(table: dict[str, list[list[float]]]) -> dict[str, list[float | None]]:
            return {m: [round(float(np.mean(v)), 3) if v else None for v in per_h] for m, per_h in table.items()}

        return {"horizons_s": list(self.horizons), "ade_m": means(self.ade), "fde_m": means(self.fde),
                "speed_error_mps": means(self.speed),
                "forecasts": [len(v) for v in self.fde["twin"]], "hazards_ahead": self.hazards,
                "sync_error_m": {"mean": round(float(np.mean(self.sync_error)), 4) if self.sync_error else None,
                                 "max": round(float(np.max(self.sync_error)), 4) if self.sync_error else None}}


HARD_BRAKE_MPS2 = 3.0  # [m/s^2] braking harder than this is a hazard, predicted or observed
EVENT_GAP_S = 2.0  # [s] hard braking of one vehicle this far apart is two events
MATCH_S = 1.0  # [s] a predicted hazard and an observed one this near in time are the same


def hard_braking(forecast, threshold: float = HARD_BRAKE_MPS2) -> dict[str, float]:
    """The vehicles a forecast shows braking harder than ``threshold`` [m/s^2], each with the
    time [s] it first does."""
    if len(forecast.times) < 2:
        return {}
    dv = np.diff(forecast.v, axis=0) / np.maximum(np.diff(forecast.times), 1e-9)[:, None]
    hard = np.where(np.isfinite(dv), dv, 0.0) < -threshold
    out = {}
    for vid, c in forecast.column.items():
        k = np.flatnonzero(hard[:, c])
        if len(k):
            out[vid] = float(forecast.times[k[0] + 1])
    return out


def observed_hard_braking(tracks: ObservedTracks, start_s: float, end_s: float) -> list[tuple[str, float]]:
    """(vehicle, time [s]) of each hard-braking event in the log between the two times: a
    record braking harder than ``HARD_BRAKE_MPS2`` (the speed change to the next record) at
    least ``EVENT_GAP_S`` after the vehicle's previous one."""
    log, out = tracks.log, []
    for k, rows in enumerate(tracks.rows):
        if len(rows) < 2:
            continue
        t, v = log.time_s[rows], tracks.speed[rows]
        decel = np.diff(v) / np.maximum(np.diff(t), 1e-9)
        last = -np.inf
        for j in np.flatnonzero(decel < -HARD_BRAKE_MPS2):
            if start_s <= t[j] <= end_s and t[j] - last >= EVENT_GAP_S:
                out.append((log.ids[k], float(t[j])))
            last = t[j]
    return out


@dataclass
class HazardScores:
    """Hard braking predicted at sync points (per method: vehicle, sync time, predicted time)
    against the hard braking the log shows."""

    predicted: dict[str, list[tuple[str, float, float]]] = field(default_factory=dict)

    def summary(self, observed: list[tuple[str, float]], horizon_s: float) -> dict[str, Any]:
        """Per method: the observed events, the share predicted before they happened (by a
        sync point within the horizon before, for the same vehicle, within ``MATCH_S``) with
        the lead times [s], and the predictions no observed event followed (false alarms)."""
        out = {"observed_events": len(observed), "threshold_mps2": HARD_BRAKE_MPS2}
        by_vehicle: dict[str, list[float]] = {}
        for vid, te in observed:
            by_vehicle.setdefault(vid, []).append(te)
        for method, preds in self.predicted.items():
            leads = []
            for vid, te in observed:
                early = [t0 for v, t0, tp in preds if v == vid and te - horizon_s <= t0 < te and abs(tp - te) <= MATCH_S]
                if early:
                    leads.append(te - min(early))
            false = sum(1 for v, t0, tp in preds if not any(abs(tp - te) <= MATCH_S for te in by_vehicle.get(v, [])))
            out[method] = {"predicted_share": round(len(leads) / max(len(observed), 1), 3),
                           "lead_time_s": {"mean": round(float(np.mean(leads)), 2) if leads else None,
                                           "median": round(float(np.median(leads)), 2) if leads else None},
                           "predictions": len(preds), "false_alarm_share": round(false / max(len(preds), 1), 3)}
        return out


def sync_points(tracks: ObservedTracks, period_s: float, start_s: float | None = None,
                end_s: float | None = None, horizon_s: float = 0.0) -> list[float]:
    """Log times about ``period_s`` [s] apart, from ``start_s`` to ``end_s`` less the horizon."""
    times = tracks.log.times
    if not len(times):
        return []
    lo = times[0] if start_s is None else start_s
    hi = (times[-1] if end_s is None else end_s) - horizon_s
    out, next_s = [], lo
    for t in times:
        if t > hi + 1e-9:
            break
        if t + 1e-9 >= next_s:
            out.append(float(t))
            next_s = t + period_s
    return out


def score(tracks: ObservedTracks, shadow: ShadowWorld, period_s: float = 1.0,
          horizons: tuple[float, ...] = HORIZONS_S, tuner: Tuner | None = None,
          start_s: float | None = None, end_s: float | None = None,
          progress: Callable[[int, int], None] | None = None) -> tuple[Scores, dict[str, float]]:
    """Forecasts from every sync point scored against the log (see the module docstring):
    the twin with its drivers' means, and (with a ``tuner``) with each driver's parameters
    learned from its trajectory up to the sync point. Also the wall time [s] spent
    following, learning and forecasting, and the counts."""
    scores = Scores(tuple(horizons))
    hazards = HazardScores()
    log, horizon = tracks.log, max(horizons)
    points = sync_points(tracks, period_s, start_s, end_s, horizon)
    index = {vid: k for k, vid in enumerate(log.ids)}
    wall, held = 0.0, 0
    pending: dict[str, tuple] = {}  # drivers' states held at the last sync point, waiting for what followed
    for n, t0 in enumerate(points):
        state = tracks.state_at(t0)
        started = time.perf_counter()
        learned: dict[str, dict[str, dict[str, float]]] = {}

        def learn() -> None:  # samples at the state held (the twin's perception of it), then a refit
            _learn(tuner, shadow, state, tracks, pending)
            learned["params"] = tuner.params(_limits(shadow, state))

        runs = {"twin": shadow.forecast(state, horizon, on_hold=learn if tuner is not None else None)}
        held_xy, rows_by_id = shadow.held_xy, dict(shadow.rows_by_id)
        if learned:
            runs["twin_learned"] = shadow.forecast(state, horizon, learned["params"])
        wall += time.perf_counter() - started
        held += len(state.ids)
        for method, forecast in runs.items():  # hazards ahead: who the twin sees braking hard, and when
            hazards.predicted.setdefault(method, []).extend(
                (vid, t0, tp) for vid, tp in hard_braking(forecast).items() if tp <= log.times[-1])
        for k, vid in enumerate(state.ids):
            if state.inferred[k]:
                continue
            rows = tracks.rows[index[vid]]
            t = log.time_s[rows]
            ahead = rows[(t > t0 + 1e-6) & (t <= t0 + horizon + 1e-6)]
            if not len(ahead):
                continue
            tau = log.time_s[ahead] - t0
            truth = np.stack([tracks.x[ahead], tracks.y[ahead]], 1)
            paths = {"constant_velocity": np.stack(constant_velocity(state.x[k], state.y[k], state.heading[k],
                                                                     state.v[k], tau) + (np.full(len(tau), state.v[k]),), 1),
                     "constant_acceleration": np.stack(constant_acceleration(
                         state.x[k], state.y[k], state.heading[k], state.v[k], state.a[k], tau)
                         + (np.maximum(state.v[k] + state.a[k] * tau, 0.0),), 1)}
            for name, forecast in runs.items():
                paths[name] = forecast.path(vid, log.time_s[ahead])
            for j, h in enumerate(horizons):
                end = np.flatnonzero(np.abs(tau - h) <= 1e-6)
                if not len(end):
                    continue  # not observed at the horizon's end: not scored at this horizon
                within = tau <= h + 1e-6
                for method, path in paths.items():
                    errors = np.hypot(path[:, 0] - truth[:, 0], path[:, 1] - truth[:, 1])
                    scores.ade[method][j].append(float(errors[within].mean()))
                    scores.fde[method][j].append(float(errors[end[0]]))
                    scores.speed[method][j].append(float(abs(path[end[0], 2] - tracks.speed[ahead[end[0]]])))
        for k, vid in enumerate(state.ids):  # the held positions against the observed ones (horizon 0)
            x, y = held_xy[rows_by_id[vid]]
            scores.sync_error.append(float(np.hypot(x - state.x[k], y - state.y[k])))
        if progress is not None:
            progress(n + 1, len(points))
    observed = observed_hard_braking(tracks, points[0], points[-1] + horizon) if points else []
    scores.hazards = hazards.summary(observed, horizon)
    return scores, {"forecast_wall_s": wall, "vehicle_forecasts": held, "sync_points": len(points),
                    "fits": tuner.fits if tuner is not None else 0}


STOP_REACH_M = 20.0  # [m] beyond its braking distance, a stopping point this near makes a driver's sample not IDM's


def _learn(tuner: Tuner, shadow: ShadowWorld, state, tracks: ObservedTracks,
           pending: dict[str, tuple]) -> None:
    """Learning at a sync point, from the past only. Each driver's state held at the previous
    sync point (speed, gap and closing speed to the leader the twin perceived there, the
    lane's limit) becomes a sample with the acceleration that followed it, to the driver's
    next record (which the log has shown by now); then the drivers are refitted, and the
    states held now wait for theirs. A driver that may be braking for something other than
    its leader (a stop line, a junction it yields at, the end of its lane: within its braking
    distance at 1.5 m/s^2 plus ``STOP_REACH_M``), or under a curve's or a zone's lower limit,
    gives no sample then: IDM's car following would be fitted to it."""
    log = tracks.log
    index = {vid: k for k, vid in enumerate(log.ids)}
    for vid, (t_prev, v, gap, dv, limit, prior) in list(pending.items()):
        rows = tracks.rows[index[vid]]
        t = log.time_s[rows]
        i = int(np.searchsorted(t, t_prev + 1e-6))
        if i < len(rows) and t[i] <= min(state.time_s, t_prev + MAX_SAMPLE_SPAN_S) + 1e-6:
            accel = (tracks.speed[rows[i]] - v) / (t[i] - t_prev)
            tuner.add(vid, v, float(accel), gap, dv, limit, prior)
        del pending[vid]
    tuner.refit([vid for vid in state.ids])
    world = shadow.world
    veh = world.vehicles
    row_of = {int(i): r for r, i in enumerate(veh.id)}
    stop = world.stop_distance()
    limit_here = world.speed_limit()
    for k, vid in enumerate(state.ids):
        if state.inferred[k]:
            continue
        r = row_of[shadow.rows_by_id[vid]]
        v = float(veh.v[r])
        if stop[r] < v * v / 3.0 + STOP_REACH_M or limit_here[r] < world.lane_speed_limit[veh.lane[r]] - 1e-6:
            continue
        lead = int(world.leader[r])
        gap = float(world.leader_gap[r]) if lead >= 0 else np.inf
        dv = float(veh.v[r] - veh.v[lead]) if lead >= 0 else 0.0
        pending[vid] = (state.time_s, v, gap, dv, float(world.lane_speed_limit[veh.lane[r]]),
                        shadow.prior_for(state.vtype[k]))


def _limits(shadow: ShadowWorld, state) -> dict[str, float]:
    """The speed limit [m/s] of each held vehicle's lane."""
    world, veh = shadow.world, shadow.world.vehicles
    row_of = {int(i): r for r, i in enumerate(veh.id)}
    return {vid: float(world.lane_speed_limit[veh.lane[row_of[shadow.rows_by_id[vid]]]]) for vid in state.ids}

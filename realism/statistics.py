"""A statistical realism score in the manner of the Waymo Open Sim Agents Challenge (WOSAC) meta-metric.

Both the run being assessed and the reference are resampled every ``PERIOD_S`` (0.5 s) and
turned into samples of each feature (``FEATURES``):

- kinematic: ``speed`` [m/s]; ``acceleration`` [m/s^2] (the source's longitudinal acceleration,
  or d speed / dt where it has none); ``jerk`` [m/s^3] (d acceleration / dt between consecutive samples);
- interactive: ``time_headway`` [s] (bumper gap to the leader / own speed, moving vehicles
  only, > 1 m/s); ``ttc`` [s] (gap / closing speed, only while closing in); ``nearest_distance``
  [m] (clearance to the nearest other vehicle: both taken as boxes aligned with the vehicle's
  own heading, the distance between them, 0 when they overlap); ``collision_rate``;
- map-based: ``lane_change_rate`` [per vehicle-minute] (lane changes of a vehicle in each whole
  ``LANE_CHANGE_WINDOW_S`` of its track, scaled to a minute); ``off_road_rate``; ``red_light_rate``.

The leader is the nearest vehicle ahead (along the follower's heading) in the same lane when
both lanes are known, else within the follower's corridor (lateral offset under the mean of
the two widths); the gap is the distance ahead minus the two half lengths. A lane change is a
change of lane within one road: SUMO-style names ``<edge>_<index>`` with the same edge, or
integer lane ids; moving onto another edge (a junction, a merge from an acceleration lane)
is not counted.

Score of a histogram feature: the run's samples make a histogram with fixed, feature-specific
bins (``FEATURES``; values outside are counted in the end bins) and ``PSEUDOCOUNT`` added to every
bin; ``ll_run`` is the mean log probability of the reference's samples under it, ``ll_self``
the same under the reference's own (equally smoothed) histogram. The component's value is
``exp(ll_run - ll_self)`` clipped to [0, 1], about ``exp(-KL(reference || run))``: 1 when the
run's distribution is the reference's, towards 0 as it puts no mass where the reference lies.

Event rates (collisions, off-road, red-light violations per vehicle-hour) are single counts,
not distributions: the run's smoothed rate ``(k_run + RATE_PRIOR_EVENTS) / (exposure_run +
RATE_PRIOR_HOURS)`` [per vehicle-hour] predicts a Poisson count over the reference's exposure
[vehicle-hours]; the value is the probability of the reference's count under it divided by
that under the reference's own smoothed rate, clipped to [0, 1]. (With no events on either
side it is about 1; a run with collisions against a reference without scores about
``exp(-(rate_run - rate_ref) x exposure_ref)``.) A source that does not observe events (a trajectory log)
leaves these components "not observed": they get no weight and the others are renormalised.

The meta score is the weighted mean of the observed components (``WEIGHTS``). Next to it:
the real-vs-real baseline (the reference's vehicles split alternately, in order of first
appearance, into two halves; features are computed on the whole reference, so every vehicle
keeps its neighbours, and half A is scored against half B) and the random floor (the
reference's vehicles on their own paths with random kinematics,
``trajectories.random_kinematics``, scored against the reference; it observes no events).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from rich.table import Table

from realism.trajectories import EVENT_KINDS, Trajectories, random_kinematics, resample

PERIOD_S = 0.5  # [s] common sampling period
PSEUDOCOUNT = 0.1  # additive smoothing: samples added to every histogram bin
RATE_PRIOR_EVENTS = 0.02  # smoothing of an event rate: these many events ...
RATE_PRIOR_HOURS = 0.1  # ... in this many vehicle-hours [h] are added to every count and exposure
MIN_HEADWAY_SPEED_MPS = 1.0  # [m/s] time headway only of vehicles at least this fast
LANE_CHANGE_WINDOW_S = 20.0  # [s] lane changes are counted in whole windows this long per vehicle
FLOOR_ACCEL_MPS2 = 3.0  # [m/s^2] the random floor's accelerations are uniform in +- this
FLOOR_SEED = 0

_LC_PER_MIN = 60.0 / LANE_CHANGE_WINDOW_S  # one lane change in a window, per vehicle-minute


@dataclass(frozen=True)
class Feature:
    """A component: its WOSAC-style group, unit and histogram bin edges (None: an event rate)."""

    group: str  # kinematic, interactive, map-based
    unit: str
    edges: tuple[float, ...] | None


def _edges(lo: float, hi: float, step: float) -> tuple[float, ...]:
    return tuple(np.round(np.arange(lo, hi + 0.5 * step, step), 6).tolist())


FEATURES: dict[str, Feature] = {
    "speed": Feature("kinematic", "m/s", _edges(0.0, 50.0, 1.0)),
    "acceleration": Feature("kinematic", "m/s^2", _edges(-8.0, 8.0, 0.25)),
    "jerk": Feature("kinematic", "m/s^3", _edges(-10.0, 10.0, 0.5)),
    "time_headway": Feature("interactive", "s", _edges(0.0, 10.0, 0.25)),
    "ttc": Feature("interactive", "s", _edges(0.0, 30.0, 1.0)),
    "nearest_distance": Feature("interactive", "m", _edges(0.0, 60.0, 1.0)),
    "collision_rate": Feature("interactive", "per vehicle-hour", None),
    "lane_change_rate": Feature("map-based", "per vehicle-minute",
                                tuple((np.arange(6) - 0.5) * _LC_PER_MIN)),  # 0, 1, 2, 3, >= 4 per window
    "off_road_rate": Feature("map-based", "per vehicle-hour", None),
    "red_light_rate": Feature("map-based", "per vehicle-hour", None),
}
RATE_EVENT = {"collision_rate": "collision", "off_road_rate": "off_road", "red_light_rate": "red_light"}

# Meta-score weights (sum 1). As in WOSAC, the interactive group weighs most and safety events
# more than any single kinematic distribution; WOSAC's own (linear/angular speed and acceleration,
# distance to objects and road edge, collisions, off-road, TTC, red lights) do not map one to one
# onto these features, so these are this project's choice: kinematic 0.25, interactive 0.45, map-based 0.30.
WEIGHTS: dict[str, float] = {
    "speed": 0.10,
    "acceleration": 0.10,
    "jerk": 0.05,
    "time_headway": 0.10,
    "ttc": 0.10,
    "nearest_distance": 0.10,
    "collision_rate": 0.15,
    "lane_change_rate": 0.10,
    "off_road_rate": 0.10,
    "red_light_rate": 0.10,
}


# ---- features ----------------------------------------------------------------------------------
@dataclass
class Samples:
    """Feature samples of one set of trajectories, each with the vehicle it belongs to."""

    ids: list[str]
    values: dict[str, np.ndarray]  # histogram feature -> samples
    owners: dict[str, np.ndarray]  # histogram feature -> vehicle index (into ids) per sample
    vehicle_hours: np.ndarray  # per vehicle [h] observed (resampled)
    vehicle_km: np.ndarray  # per vehicle [km] driven
    lane_changes: np.ndarray  # per vehicle, count
    events: dict[str, list[tuple[str, ...]] | None]  # event kind -> actors of each event (None: not observed)

    def subset(self, vehicles: np.ndarray) -> "Samples":
        """The samples of the vehicles with indices ``vehicles``; an event belongs to the
        subset when one of its actors does."""
        chosen = np.zeros(len(self.ids), bool)
        chosen[vehicles] = True
        ids = {self.ids[k] for k in np.flatnonzero(chosen)}
        return Samples(self.ids, {f: v[chosen[self.owners[f]]] for f, v in self.values.items()},
                       {f: o[chosen[o]] for f, o in self.owners.items()},
                       np.where(chosen, self.vehicle_hours, 0.0), np.where(chosen, self.vehicle_km, 0.0),
                       np.where(chosen, self.lane_changes, 0),
                       {k: None if e is None else [a for a in e if ids.intersection(a)] for k, e in self.events.items()})

    def count(self, kind: str) -> int | None:
        e = self.events[kind]
        return None if e is None else len(e)


def _is_lane_change(a: str, b: str) -> bool:
    if a == b or not a or not b:
        return False
    if a.lstrip("-").isdigit() and b.lstrip("-").isdigit():
        return True
    ea, _, ka = a.rpartition("_")
    eb, _, kb = b.rpartition("_")
    return bool(ea) and ea == eb and ka.isdigit() and kb.isdigit()


def features(traj: Trajectories, period_s: float = PERIOD_S) -> Samples:
    """Every feature's samples of ``traj``, resampled every ``period_s`` [s]."""
    g = resample(traj, period_s)
    n_veh = len(g.ids)
    k = np.round(g.t / period_s).astype(np.int64)
    veh = g.vehicle
    values: dict[str, list] = {f: [] for f in FEATURES if FEATURES[f].edges is not None}
    owners: dict[str, list] = {f: [] for f in values}
    values["speed"].append(g.speed)
    owners["speed"].append(veh)
    values["acceleration"].append(g.accel)
    owners["acceleration"].append(veh)
    consecutive = (veh[1:] == veh[:-1]) & (np.diff(k) == 1)
    values["jerk"].append((np.diff(g.accel) / period_s)[consecutive])
    owners["jerk"].append(veh[1:][consecutive])

    # lane changes: a flag on the later of two consecutive samples of a vehicle
    flag = np.zeros(len(g), bool)
    if len(g) > 1:
        pairs = {(a, b) for a, b in zip(g.lane[:-1][consecutive], g.lane[1:][consecutive]) if a != b}
        changes = {p for p in pairs if _is_lane_change(*p)}
        if changes:
            moved = np.array([(a, b) in changes for a, b in zip(g.lane[:-1], g.lane[1:])])
            flag[1:] = consecutive & moved
    lane_changes = np.bincount(veh[flag], minlength=n_veh)
    window = max(1, int(round(LANE_CHANGE_WINDOW_S / period_s)))
    starts = np.flatnonzero(np.concatenate([[True], ~consecutive]))  # each run of consecutive samples
    stops = np.concatenate([starts[1:], [len(g)]])
    for a, b in zip(starts, stops):
        whole = (b - a) // window
        if whole:
            counts = flag[a:a + whole * window].reshape(whole, window).sum(axis=1)
            values["lane_change_rate"].append(counts * _LC_PER_MIN)
            owners["lane_change_rate"].append(np.full(whole, veh[a]))

    # interactions, time by time
    order = np.argsort(k, kind="stable")
    cuts = np.flatnonzero(np.diff(k[order])) + 1
    length, width = g.length[veh], g.width[veh]
    lane_known = g.lane != ""
    for rows in np.split(order, cuts):
        if len(rows) < 2:
            continue
        x, y, h, v = g.x[rows], g.y[rows], g.heading[rows], g.speed[rows]
        ln, wd, lanes, known = length[rows], width[rows], g.lane[rows], lane_known[rows]
        c, s = np.cos(h)[:, None], np.sin(h)[:, None]
        dx, dy = x[None, :] - x[:, None], y[None, :] - y[:, None]
        along, across = dx * c + dy * s, -dx * s + dy * c  # j relative to i, in i's frame
        half_len, half_wid = 0.5 * (ln[:, None] + ln[None, :]), 0.5 * (wd[:, None] + wd[None, :])
        clear = np.hypot(np.maximum(np.abs(along) - half_len, 0.0), np.maximum(np.abs(across) - half_wid, 0.0))
        np.fill_diagonal(clear, np.inf)
        values["nearest_distance"].append(clear.min(axis=1))
        owners["nearest_distance"].append(veh[rows])
        both = known[:, None] & known[None, :]
        same = np.where(both, lanes[:, None] == lanes[None, :], np.abs(across) < half_wid)
        ahead = same & (along > 0.0)
        np.fill_diagonal(ahead, False)
        has = ahead.any(axis=1)
        if not has.any():
            continue
        lead = np.argmin(np.where(ahead, along, np.inf), axis=1)
        i = np.flatnonzero(has)
        j = lead[i]
        gap = np.maximum(along[i, j] - half_len[i, j], 0.0)
        moving = v[i] > MIN_HEADWAY_SPEED_MPS
        values["time_headway"].append(gap[moving] / v[i][moving])
        owners["time_headway"].append(veh[rows][i][moving])
        closing = v[i] - v[j] * np.cos(h[j] - h[i])
        inn = closing > 0.0
        values["ttc"].append(gap[inn] / closing[inn])
        owners["ttc"].append(veh[rows][i][inn])

    hours = np.bincount(veh, minlength=n_veh) * period_s / 3600.0
    km = np.bincount(veh, weights=g.speed * period_s, minlength=n_veh) / 1000.0
    events = {kind: None if traj.events is None else [e.actors for e in traj.events if e.kind == kind]
              for kind in EVENT_KINDS}
    return Samples(g.ids, {f: np.concatenate(v) if v else np.zeros(0) for f, v in values.items()},
                   {f: np.concatenate(o).astype(np.int64) if o else np.zeros(0, np.int64) for f, o in owners.items()},
                   hours, km, lane_changes, events)


# ---- scoring -----------------------------------------------------------------------------------
@dataclass
class Component:
    """One feature's score: ``value`` in [0, 1] (None: not observed), its ``weight`` in the meta
    score (renormalised over the observed components) and ``contribution`` = value x weight."""

    name: str
    group: str
    value: float | None
    weight: float
    contribution: float
    run_samples: int
    reference_samples: int
    unit: str = ""
    nominal_weight: float = 0.0  # WEIGHTS[name]
    log_likelihood: float | None = None  # mean log probability of the reference under the run
    self_log_likelihood: float | None = None  # ... under the reference itself
    statistic: str = ""  # what run_statistic and reference_statistic are: "median" (samples) or "rate" (events)
    run_statistic: float | None = None
    reference_statistic: float | None = None
    note: str = ""


@dataclass
class Score:
    """A meta score with its components (the run's, the baseline's or the floor's)."""

    score: float
    components: list[Component]
    method: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"score": _num(self.score), "method": self.method,
                "components": [{k: _num(v) for k, v in asdict(c).items()} for c in self.components]}


@dataclass
class RealismReport:
    """The run's realism score against the reference, with the real-vs-real baseline and the random floor."""

    score: float
    components: list[Component]
    baseline: Score
    floor: Score
    run: dict[str, Any] = field(default_factory=dict)  # what was assessed (source, vehicles, exposure, events)
    reference: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def relative(self) -> float | None:
        """Where the score lies between floor (0) and baseline (1); None if baseline <= floor."""
        span = self.baseline.score - self.floor.score
        return (self.score - self.floor.score) / span if span > 1e-9 else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"score": _num(self.score), "relative": _num(self.relative),
                "components": [{k: _num(v) for k, v in asdict(c).items()} for c in self.components],
                "baseline": self.baseline.to_dict(), "floor": self.floor.to_dict(),
                "run": self.run, "reference": self.reference, "settings": self.settings}


def _num(v: Any) -> Any:
    if isinstance(v, (float, np.floating)):
        return None if not math.isfinite(float(v)) else round(float(v), 6)
    if isinstance(v, np.integer):
        return int(v)
    return v


def _histogram(samples: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Smoothed bin probabilities (values outside the edges counted in the end bins)."""
    counts = np.bincount(_bins(samples, edges), minlength=len(edges) - 1).astype(float)
    counts += PSEUDOCOUNT
    return counts / counts.sum()


def _bins(samples: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return np.clip(np.searchsorted(edges, samples, side="right") - 1, 0, len(edges) - 2)


def _histogram_component(name: str, run: np.ndarray, ref: np.ndarray) -> Component:
    f = FEATURES[name]
    edges = np.asarray(f.edges, float)
    run, ref = run[np.isfinite(run)], ref[np.isfinite(ref)]
    base = dict(name=name, group=f.group, weight=0.0, contribution=0.0, run_samples=len(run),
                reference_samples=len(ref), unit=f.unit, nominal_weight=WEIGHTS[name],
                statistic="median", run_statistic=float(np.median(run)) if len(run) else None,
                reference_statistic=float(np.median(ref)) if len(ref) else None)
    if not len(run) or not len(ref):
        return Component(value=None, note=f"no samples in the {'run' if not len(run) else 'reference'}", **base)
    b = _bins(ref, edges)
    ll_run = float(np.mean(np.log(_histogram(run, edges)[b])))
    ll_self = float(np.mean(np.log(_histogram(ref, edges)[b])))
    value = float(np.clip(math.exp(ll_run - ll_self), 0.0, 1.0))
    return Component(value=value, log_likelihood=ll_run, self_log_likelihood=ll_self, **base)


def _poisson_log(k: int, mu: float) -> float:
    return k * math.log(mu) - mu - math.lgamma(k + 1)


def _rate_component(name: str, run: Samples, ref: Samples) -> Component:
    f, kind = FEATURES[name], RATE_EVENT[name]
    k_run, k_ref = run.count(kind), ref.count(kind)
    e_run, e_ref = float(run.vehicle_hours.sum()), float(ref.vehicle_hours.sum())
    base = dict(name=name, group=f.group, weight=0.0, contribution=0.0, run_samples=k_run or 0,
                reference_samples=k_ref or 0, unit=f.unit, nominal_weight=WEIGHTS[name],
                statistic="rate", run_statistic=k_run / e_run if k_run is not None and e_run > 0 else None,
                reference_statistic=k_ref / e_ref if k_ref is not None and e_ref > 0 else None)
    if k_run is None or k_ref is None:
        return Component(value=None, note=f"not observed in the {'run' if k_run is None else 'reference'}", **base)
    if e_run <= 0 or e_ref <= 0:
        return Component(value=None, note="no exposure", **base)
    rate_run = (k_run + RATE_PRIOR_EVENTS) / (e_run + RATE_PRIOR_HOURS)
    rate_ref = (k_ref + RATE_PRIOR_EVENTS) / (e_ref + RATE_PRIOR_HOURS)
    ll_run = _poisson_log(k_ref, rate_run * e_ref)
    ll_self = _poisson_log(k_ref, rate_ref * e_ref)
    value = float(np.clip(math.exp(ll_run - ll_self), 0.0, 1.0))
    return Component(value=value, log_likelihood=ll_run, self_log_likelihood=ll_self,
                     note=f"{k_run} vs {k_ref} events", **base)


def score_samples(run: Samples, reference: Samples, method: str = "") -> Score:
    """The meta score of ``run``'s samples against ``reference``'s (see the module docstring)."""
    components = [_rate_component(name, run, reference) if f.edges is None
                  else _histogram_component(name, run.values[name], reference.values[name])
                  for name, f in FEATURES.items()]
    total = sum(WEIGHTS[c.name] for c in components if c.value is not None)
    for c in components:
        if c.value is not None and total > 0:
            c.weight = WEIGHTS[c.name] / total
            c.contribution = c.weight * c.value
    return Score(float(np.clip(sum(c.contribution for c in components), 0.0, 1.0)), components, method)


def _summary(traj: Trajectories, s: Samples) -> dict[str, Any]:
    hours, km = float(s.vehicle_hours.sum()), float(s.vehicle_km.sum())
    events = {}
    for kind in EVENT_KINDS:
        n = s.count(kind)
        events[kind] = "not observed" if n is None else {"count": n, "per_vehicle_hour": _num(n / hours) if hours else None,
                                                         "per_vehicle_km": _num(n / km) if km else None}
    return {"source": traj.source, "kind": traj.kind, "vehicles": traj.vehicle_count,
            "duration_s": _num(traj.duration_s), "vehicle_hours": _num(hours), "vehicle_km": _num(km),
            "lane_changes_per_vehicle_minute": _num(float(s.lane_changes.sum()) / (60 * hours)) if hours else None,
            "events": events, "notes": list(traj.notes)}


def halves(samples: Samples, first_seen: np.ndarray) -> tuple[Samples, Samples]:
    """The samples split by vehicle into two halves, alternately in order of first appearance."""
    order = np.argsort(first_seen, kind="stable")
    return samples.subset(order[0::2]), samples.subset(order[1::2])


def assess(run: Trajectories, reference: Trajectories, period_s: float = PERIOD_S) -> RealismReport:
    """The realism of ``run`` against ``reference`` (module docstring), with the baseline and the floor."""
    if not len(run) or not len(reference):
        raise ValueError(f"{run.source if not len(run) else reference.source}: no vehicle samples to assess")
    s_run, s_ref = features(run, period_s), features(reference, period_s)
    main = score_samples(s_run, s_ref)
    first_seen = np.full(len(reference.ids), np.inf)
    np.minimum.at(first_seen, reference.vehicle, reference.t)
    half_a, half_b = halves(s_ref, first_seen)
    baseline = score_samples(half_a, half_b, "the reference's vehicles split alternately (by first appearance) "
                                             "into halves A and B; A scored against B")
    floor_traj = random_kinematics(reference, FLOOR_ACCEL_MPS2, FLOOR_SEED)
    floor = score_samples(features(floor_traj, period_s), s_ref, floor_traj.notes[-1] +
                          "; on each vehicle's recorded path; scored against the reference (events not observed)")
    settings = {"period_s": period_s, "pseudocount": PSEUDOCOUNT, "rate_prior_events": RATE_PRIOR_EVENTS,
                "rate_prior_vehicle_hours": RATE_PRIOR_HOURS,
                "weights": dict(WEIGHTS), "lane_change_window_s": LANE_CHANGE_WINDOW_S,
                "min_headway_speed_mps": MIN_HEADWAY_SPEED_MPS,
                "bins": {n: {"from": f.edges[0], "to": f.edges[-1], "bins": len(f.edges) - 1}
                         for n, f in FEATURES.items() if f.edges is not None}}
    return RealismReport(main.score, main.components, baseline, floor, _summary(run, s_run),
                         _summary(reference, s_ref), settings)


def table(report: RealismReport) -> Table:
    """The report as a rich table: each component's value, weight and contribution, next to
    the baseline's and the floor's values."""
    rel = report.relative
    title = (f"realism {report.score:.3f} (real-vs-real baseline {report.baseline.score:.3f}, random floor "
             f"{report.floor.score:.3f}" + (f"; {rel:.0%} of the way from floor to baseline)" if rel is not None else ")"))
    t = Table(title=title)
    for name, justify in (("component", "left"), ("group", "left"), ("value", "right"), ("weight", "right"),
                          ("contribution", "right"), ("run", "right"), ("reference", "right"),
                          ("samples run/ref", "right"), ("baseline", "right"), ("floor", "right")):
        t.add_column(name, justify=justify)  # type: ignore[arg-type]
    base = {c.name: c for c in report.baseline.components}
    floor = {c.name: c for c in report.floor.components}

    def val(c: Component | None) -> str:
        return "not observed" if c is None or c.value is None else f"{c.value:.3f}"

    def stat(c: Component, v: float | None) -> str:
        return "" if v is None else f"{c.statistic} {v:.3g} {c.unit}"

    for c in report.components:
        t.add_row(c.name, c.group, val(c), f"{c.weight:.3f}", f"{c.contribution:.3f}", stat(c, c.run_statistic),
                  stat(c, c.reference_statistic), f"{c.run_samples}/{c.reference_samples}", val(base.get(c.name)),
                  val(floor.get(c.name)))
    t.add_row("meta score", "", f"{report.score:.3f}", "1.000", f"{report.score:.3f}", "", "", "",
              f"{report.baseline.score:.3f}", f"{report.floor.score:.3f}", style="bold")
    missing = [c.name for c in report.components if c.value is None]
    if missing:
        t.caption = f"not observed (no weight): {', '.join(missing)}"
    return t

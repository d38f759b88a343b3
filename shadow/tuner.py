"""Learning the drivers: each observed driver's IDM parameters estimated from its trajectory.

IDM (Treiber, Hennecke and Helbing 2000) gives a driver's acceleration from its speed v, the
bumper gap s to its leader and the closing speed dv:

    a = a_max * (1 - (v / v0)^4 - (s*(v, dv) / s)^2),   s* = s0 + v T + v dv / (2 sqrt(a_max b))

with desired speed v0 [m/s], time headway T [s], minimum gap s0 [m], maximum acceleration
a_max [m/s^2] and comfortable deceleration b [m/s^2]. A driver's samples (v, dv, s and its
observed acceleration) are fitted by regularised least squares: the residuals of the model's
acceleration, plus a prior pulling each parameter toward the population's value (weak: it
only decides what the samples do not show, such as the headway of a driver who never
followed anyone). The uncertainty is the posterior standard deviation from the fit's
Jacobian. ``Tuner`` collects samples as a log is followed and refits each driver as its
samples grow; ``params`` gives them in the twin's terms for ``ShadowWorld.hold``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares

from envs import behaviour

PARAMS = ("v0", "T", "s0", "a_max", "b")
PRIOR = np.array([30.0, 1.5, 2.0, 1.5, 2.0])  # the population's values (v0: each driver's speed limit in ``Tuner``)
PRIOR_SD = np.array([10.0, 0.8, 1.5, 1.0, 1.5])  # how far a driver may be from them before the samples must say so
LOWER = np.array([1.0, 0.3, 0.5, 0.3, 0.5])
UPPER = np.array([60.0, 4.0, 8.0, 5.0, 6.0])
ACCEL_NOISE = 0.3  # [m/s^2] how well a driver's acceleration follows the model (the residuals' scale)
FOLLOWING_GAP_S = 6.0  # [s] a leader farther ahead than this (at the driver's speed) does not count: free driving
REFIT_EVERY = 10  # new samples between two fits of a driver
MAX_SAMPLE_SPAN_S = 1.0  # [s] a state and the acceleration that followed it: the next record at most this later
MIN_SAMPLES = 5


def idm(theta: np.ndarray, v: np.ndarray, gap: np.ndarray, dv: np.ndarray) -> np.ndarray:
    """The twin's IDM (``envs.behaviour.idm``) for parameters ``theta`` (``PARAMS``), speeds
    ``v`` [m/s], bumper gaps ``gap`` [m] (inf: no leader) and closing speeds ``dv`` [m/s]."""
    v0, T, s0, a_max, b = theta
    return behaviour.idm(v, v0, T, s0, a_max, b, gap, v - dv)


def idm_gradient(theta: np.ndarray, v: np.ndarray, gap: np.ndarray, dv: np.ndarray) -> np.ndarray:
    """(n, 5): the derivatives of :func:`idm` by each of ``PARAMS``, per sample."""
    v0, T, s0, a_max, b = theta
    root = np.sqrt(a_max * b)
    z = v * T + v * dv / (2.0 * root)
    active = (z > 0.0).astype(float)
    s_star = s0 + active * z
    follows = np.isfinite(gap)
    s = np.where(follows, np.maximum(gap, 0.05), 1.0)
    interaction = np.where(follows, (s_star / s) ** 2, 0.0)
    d_interaction = np.where(follows, 2.0 * s_star / s ** 2, 0.0)  # by s*
    d_star_a = -active * v * dv / (4.0 * a_max * root)
    d_star_b = -active * v * dv / (4.0 * b * root)
    return np.stack([
        a_max * 4.0 * v ** 4 / v0 ** 5,
        -a_max * d_interaction * active * v,
        -a_max * d_interaction,
        1.0 - (v / v0) ** 4 - interaction - a_max * d_interaction * d_star_a,
        -a_max * d_interaction * d_star_b,
    ], axis=1)


def prior_vector(given: dict[str, float], base: np.ndarray = PRIOR) -> np.ndarray:
    """``PARAMS`` as a prior: ``base`` with what a vehicle type says (``headway`` [s],
    ``min_gap`` [m], ``a_max``, ``b_comf`` [m/s^2]) in place, within the bounds."""
    theta = base.copy()
    for k, name in ((1, "headway"), (2, "min_gap"), (3, "a_max"), (4, "b_comf")):
        if name in given:
            theta[k] = float(np.clip(given[name], LOWER[k], UPPER[k]))
    return theta


@dataclass
class DriverEstimate:
    """A driver's IDM parameters (``PARAMS``) and their standard deviations, from ``samples``."""

    mean: np.ndarray
    sd: np.ndarray
    samples: int

    def as_dict(self) -> dict[str, dict[str, float]]:
        return {name: {"mean": round(float(m), 3), "sd": round(float(s), 3)}
                for name, m, s in zip(PARAMS, self.mean, self.sd)} | {"samples": self.samples}


def fit_idm(v: np.ndarray, accel: np.ndarray, gap: np.ndarray, dv: np.ndarray, prior: np.ndarray = PRIOR,
            start: np.ndarray | None = None) -> DriverEstimate:
    """The regularised least-squares IDM fit of one driver's samples (see the module docstring)."""
    gap = np.where(np.isfinite(gap) & (gap < FOLLOWING_GAP_S * np.maximum(v, 5.0)), gap, np.inf)

    def residuals(theta: np.ndarray) -> np.ndarray:
        return np.concatenate([(idm(theta, v, gap, dv) - accel) / ACCEL_NOISE, (theta - prior) / PRIOR_SD])

    def jacobian(theta: np.ndarray) -> np.ndarray:
        return np.vstack([idm_gradient(theta, v, gap, dv) / ACCEL_NOISE, np.diag(1.0 / PRIOR_SD)])

    x0 = np.clip(prior if start is None else start, LOWER + 1e-6, UPPER - 1e-6)
    fit = least_squares(residuals, x0, jac=jacobian, bounds=(LOWER, UPPER), method="trf", x_scale=PRIOR_SD,
                        max_nfev=60)
    jac = fit.jac
    try:
        cov = np.linalg.inv(jac.T @ jac)
        sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    except np.linalg.LinAlgError:
        sd = PRIOR_SD.copy()
    return DriverEstimate(fit.x, np.minimum(sd, PRIOR_SD), len(v))


@dataclass
class Tuner:
    """Samples per observed driver as a log is followed, and their fits."""

    prior: np.ndarray = field(default_factory=lambda: PRIOR.copy())
    samples: dict[str, list[tuple[float, float, float, float, float]]] = field(default_factory=dict)
    estimates: dict[str, DriverEstimate] = field(default_factory=dict)
    fitted_at: dict[str, int] = field(default_factory=dict)
    priors: dict[str, np.ndarray] = field(default_factory=dict)  # per driver, from its vehicle type
    fits: int = 0

    def add(self, driver: str, v: float, accel: float, gap: float, dv: float, limit: float,
            prior: dict[str, float] | None = None) -> None:
        """One observation of ``driver``: speed [m/s], acceleration [m/s^2], gap [m] to its
        leader (inf: none), closing speed [m/s], and the speed limit [m/s] where it drives
        (the prior of its desired speed). ``prior``, when a driver is first seen: what its
        vehicle type says (``headway`` [s], ``min_gap`` [m], ``a_max``, ``b_comf`` [m/s^2])."""
        if driver not in self.samples and prior:
            self.priors[driver] = prior_vector(prior, self.prior)
        self.samples.setdefault(driver, []).append((v, accel, gap, dv, limit))

    def refit(self, drivers: list[str] | None = None) -> None:
        """Fit the drivers whose samples grew by ``REFIT_EVERY`` since their last fit."""
        for driver in drivers if drivers is not None else list(self.samples):
            rows = self.samples.get(driver, [])
            if len(rows) < MIN_SAMPLES or len(rows) - self.fitted_at.get(driver, 0) < REFIT_EVERY:
                continue
            v, accel, gap, dv, limit = (np.array(c) for c in zip(*rows))
            prior = self.priors.get(driver, self.prior).copy()
            prior[0] = float(np.mean(limit))  # a driver's desired speed: the limit, unless its samples say otherwise
            previous = self.estimates.get(driver)
            self.estimates[driver] = fit_idm(v, accel, gap, dv, prior, previous.mean if previous else None)
            self.fitted_at[driver] = len(rows)
            self.fits += 1

    def limits(self) -> dict[str, float]:
        """Each driver's mean speed limit [m/s] over its samples."""
        return {d: float(np.mean([row[4] for row in rows])) for d, rows in self.samples.items() if rows}

    def params(self, speed_limits: dict[str, float]) -> dict[str, dict[str, float]]:
        """The learned drivers in the twin's terms (``speed_factor`` of the limit [m/s] each
        drives under now, ``headway``, ``min_gap``, ``a_max``, ``b_comf``)."""
        out = {}
        for driver, est in self.estimates.items():
            v0, T, s0, a_max, b = est.mean
            limit = speed_limits.get(driver)
            if not limit:
                continue
            out[driver] = {"speed_factor": float(v0 / limit), "headway": float(T), "min_gap": float(s0),
                           "a_max": float(a_max), "b_comf": float(b)}
        return out


def learn_from_log(tracks, drivers: list[str] | None = None,
                   priors: dict[str, dict[str, float]] | None = None) -> dict[str, DriverEstimate]:
    """Each driver's IDM fit from all its records, offline, where the log itself names the
    leader and the gap (the twin's CSV; SUMO's FCD with ``--fcd-output.leader``): per record,
    speed, gap and closing speed (from the leader's record at the same time), and the
    acceleration that followed, to its next record (a log's acceleration at t is the one of
    the step that ended at t, decided before it). A record without a leader is free
    driving. ``tracks``: ``sync.ObservedTracks``."""
    log = tracks.log
    index = {vid: k for k, vid in enumerate(log.ids)}
    speed_at: dict[tuple[int, float], float] = {}
    for r in range(len(log)):
        speed_at[(int(log.vehicle[r]), round(float(log.time_s[r]), 6))] = float(tracks.speed[r])
    out = {}
    for vid in drivers if drivers is not None else log.ids:
        rows = tracks.rows[index[vid]]
        v, a, gap, dv = [], [], [], []
        for r, after in zip(rows[:-1], rows[1:]):  # a state, and the acceleration that followed it
            span = float(log.time_s[after] - log.time_s[r])
            if not 0.0 < span <= MAX_SAMPLE_SPAN_S:
                continue
            leader = log.leader[r]
            lead_v = speed_at.get((index[leader], round(float(log.time_s[r]), 6))) if leader in index else None
            v.append(float(tracks.speed[r]))
            a.append((float(tracks.speed[after]) - float(tracks.speed[r])) / span)
            if lead_v is None or not np.isfinite(log.gap[r]):
                gap.append(np.inf)
                dv.append(0.0)
            else:
                gap.append(float(log.gap[r]))
                dv.append(float(tracks.speed[r]) - lead_v)
        prior = prior_vector((priors or {}).get(vid, {}))
        prior[0] = float(np.max(v)) if len(v) else PRIOR[0]
        out[vid] = fit_idm(np.array(v), np.array(a), np.array(gap), np.array(dv), prior)
    return out


PERSONA_SPREAD = {"speed_factor": 0.05, "headway": 0.15, "min_gap": 0.3}  # how far a driver may sit from its persona


def nearest_personas(estimates: dict[str, DriverEstimate], limits: dict[str, float],
                     personas: dict[str, dict[str, float]]) -> dict[str, tuple[str, float]]:
    """Which persona each learned driver resembles: the driver persona (``personas``: id ->
    ``Persona.driver_parameters()``) nearest in desired speed (as a share of the driver's
    ``limits`` [m/s]), headway and minimum gap, each difference scaled by the estimate's
    standard deviation and ``PERSONA_SPREAD`` together; per driver the persona and that
    distance (about 1: as near as a persona's own drivers are)."""
    out = {}
    for driver, est in estimates.items():
        limit = limits.get(driver)
        if not limit:
            continue
        v0, T, s0 = est.mean[:3]
        sd_v0, sd_t, sd_s0 = est.sd[:3]
        got = {"speed_factor": (v0 / limit, sd_v0 / limit), "headway": (T, sd_t), "min_gap": (s0, sd_s0)}
        best, best_d = "", np.inf
        for pid, params in personas.items():
            d = np.sqrt(sum((got[n][0] - params[n]) ** 2 / (got[n][1] ** 2 + PERSONA_SPREAD[n] ** 2) for n in got) / 3.0)
            if d < best_d:
                best, best_d = pid, float(d)
        out[driver] = (best, best_d)
    return out

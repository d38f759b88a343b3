"""Surrogate safety measures between each vehicle and its leader, vectorised over a
``WorldState`` (the supervisor's deterministic layer; no LLM involved).

For follower f behind leader l at bumper gap g [m], speeds v [m/s], accelerations a [m/s^2]:

- time to collision, constant velocity: ``g / (v_f - v_l)`` when closing, else inf [s]
- time to collision with current accelerations: smallest t > 0 with
  ``g + (v_l - v_f) t + 0.5 (a_l - a_f) t^2 = 0`` (speeds kept >= 0), else inf [s]
- time headway: ``g / v_f`` [s]
- deceleration rate to avoid collision (DRAC): ``(v_f - v_l)^2 / (2 g)`` when closing [m/s^2]
- RSS safe longitudinal distance (Shalev-Shwartz et al., 2017), with response time
  ``RSS_RESPONSE_S``, the follower's worst-case acceleration during it ``RSS_ACCEL_MAX``,
  its least braking ``RSS_BRAKE_MIN`` and the leader's hardest braking ``RSS_BRAKE_MAX``:
  ``max(0, v_f rho + a rho^2 / 2 + (v_f + a rho)^2 / (2 b_min) - v_l^2 / (2 b_max))`` [m];
  a gap below it is an RSS violation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from envs.state import WorldState

RSS_RESPONSE_S = 0.5  # [s] rho: response time of the follower
RSS_ACCEL_MAX = 2.0  # [m/s^2] worst-case acceleration of the follower during rho
RSS_BRAKE_MIN = 4.0  # [m/s^2] least braking the follower applies after rho
RSS_BRAKE_MAX = 8.0  # [m/s^2] hardest braking the leader may apply
CLOSING_EPS = 0.05  # [m/s] closing speeds below this count as not closing
TTC_HORIZON_S = 10.0  # [s] time to collision with accelerations is searched this far ahead
TTC_STEP_S = 0.05  # [s] and to this resolution


@dataclass
class LeaderMeasures:
    """Measures for every vehicle with a leader (arrays aligned with ``follower``)."""

    row: np.ndarray  # follower rows in the state's vehicle columns
    follower: np.ndarray  # vehicle ids
    leader: np.ndarray  # vehicle ids
    gap_m: np.ndarray
    ttc_s: np.ndarray  # constant velocity
    ttc_accel_s: np.ndarray  # with current accelerations
    headway_s: np.ndarray
    drac_mps2: np.ndarray
    rss_distance_m: np.ndarray

    @property
    def rss_violation(self) -> np.ndarray:
        return self.gap_m < self.rss_distance_m


def leader_measures(state: WorldState) -> LeaderMeasures:
    """Surrogate safety measures of every leader/follower pair in ``state``."""
    v = state.vehicles
    rows, lead, gap, ttc, ttc_accel, headway, drac, rss = _pair_measures(state.leader, state.leader_gap, v["v"], v["a"])
    return LeaderMeasures(row=rows, follower=v["id"][rows], leader=v["id"][lead], gap_m=gap, ttc_s=ttc,
                          ttc_accel_s=ttc_accel, headway_s=headway, drac_mps2=drac, rss_distance_m=rss)


@njit(cache=True)
def _pair_measures(leader, leader_gap, v, a):
    """All measures of the module docstring for each vehicle with a leader, in one pass: the
    follower rows, leader rows, bumper gaps [m] (at least 0), then the measures."""
    rows = np.flatnonzero(leader >= 0)
    n = rows.shape[0]
    lead, gap = leader[rows], np.empty(n)
    ttc, ttc_a, hw, drac, rss = np.empty(n), np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    for i in range(n):
        f, ld = rows[i], lead[i]
        g = leader_gap[f]
        gap[i] = g if g >= 0.0 or g != g else 0.0  # np.maximum(g, 0.0): nan and -0.0 kept
        vf, vl = v[f], v[ld]
        closing = vf - vl
        ttc[i] = gap[i] / max(closing, CLOSING_EPS) if closing > CLOSING_EPS else np.inf
        hw[i] = gap[i] / max(vf, 0.1) if vf > 0.1 else np.inf
        drac[i] = closing * closing / (2.0 * max(gap[i], 0.05)) if closing > CLOSING_EPS else 0.0
        rss[i] = _rss(vf, vl)
        ttc_a[i] = _first_contact(gap[i], vf, vl, a[f], a[ld], TTC_HORIZON_S, TTC_STEP_S)
    return rows, lead, gap, ttc, ttc_a, hw, drac, rss


@njit(cache=True)
def _rss(vf, vl):
    rho, acc = RSS_RESPONSE_S, RSS_ACCEL_MAX
    d = vf * rho + 0.5 * acc * rho * rho + (vf + acc * rho) ** 2 / (2.0 * RSS_BRAKE_MIN) - vl * vl / (2.0 * RSS_BRAKE_MAX)
    return max(d, 0.0)


@njit(cache=True)
def _first_contact(gap, vf, vl, af, al, horizon_s, step_s):
    """Smallest sampled t > 0 [s] at which the gap closes at constant accelerations (inf if none).
    Two vehicles already touching (gap 0, a crashed pair) collide again only if still closing."""
    if gap <= 0.0:
        return step_s if vf - vl > CLOSING_EPS or (vf > vl - CLOSING_EPS and af > al) else np.inf
    if gap > max(vf - vl, 0.0) * horizon_s + 0.5 * max(af - al, 0.0) * horizon_s * horizon_s:
        return np.inf  # cannot close within the horizon
    k = 1
    while k * step_s <= horizon_s + 1e-9:
        t = k * step_s
        if gap + _travel_at(vl, al, t) - _travel_at(vf, af, t) <= 0.0:
            return t
        k += 1
    return np.inf


@njit(cache=True)
def _travel_at(v0, a, t):
    tt = min(t, v0 / -a) if a < 0.0 else t
    return v0 * tt + 0.5 * a * tt * tt


def rss_distance(v_follower: np.ndarray, v_leader: np.ndarray) -> np.ndarray:
    """RSS minimum safe longitudinal distance [m] (constants in the module docstring)."""
    vf, vl = np.asarray(v_follower, float), np.asarray(v_leader, float)
    return np.array([_rss(a, b) for a, b in zip(vf, vl)])


def ttc_with_accelerations(gap, vf, vl, af, al, horizon_s: float = TTC_HORIZON_S,
                           step_s: float = TTC_STEP_S) -> np.ndarray:
    """Smallest t > 0 [s] at which the gap closes if both keep their accelerations (inf if
    none within ``horizon_s``), to ``step_s``. A braking vehicle stops and stays stopped."""
    return np.array([_first_contact(*map(float, x), horizon_s, step_s) for x in zip(gap, vf, vl, af, al)])

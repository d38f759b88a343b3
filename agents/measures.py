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

from envs.state import WorldState

RSS_RESPONSE_S = 0.5  # [s] rho: response time of the follower
RSS_ACCEL_MAX = 2.0  # [m/s^2] worst-case acceleration of the follower during rho
RSS_BRAKE_MIN = 4.0  # [m/s^2] least braking the follower applies after rho
RSS_BRAKE_MAX = 8.0  # [m/s^2] hardest braking the leader may apply
CLOSING_EPS = 0.05  # [m/s] closing speeds below this count as not closing


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
    rows = np.flatnonzero(state.leader >= 0)
    lead = state.leader[rows]
    gap = np.maximum(state.leader_gap[rows], 0.0)
    vf, vl = v["v"][rows], v["v"][lead]
    af, al = v["a"][rows], v["a"][lead]
    closing = vf - vl
    ttc = np.where(closing > CLOSING_EPS, gap / np.maximum(closing, CLOSING_EPS), np.inf)
    return LeaderMeasures(
        row=rows, follower=v["id"][rows], leader=v["id"][lead], gap_m=gap, ttc_s=ttc,
        ttc_accel_s=ttc_with_accelerations(gap, vf, vl, af, al),
        headway_s=np.where(vf > 0.1, gap / np.maximum(vf, 0.1), np.inf),
        drac_mps2=np.where(closing > CLOSING_EPS, closing ** 2 / (2.0 * np.maximum(gap, 0.05)), 0.0),
        rss_distance_m=rss_distance(vf, vl),
    )


def rss_distance(v_follower: np.ndarray, v_leader: np.ndarray) -> np.ndarray:
    """RSS minimum safe longitudinal distance [m] (constants in the module docstring)."""
    rho, acc = RSS_RESPONSE_S, RSS_ACCEL_MAX
    d = (v_follower * rho + 0.5 * acc * rho ** 2 + (v_follower + acc * rho) ** 2 / (2.0 * RSS_BRAKE_MIN)
         - v_leader ** 2 / (2.0 * RSS_BRAKE_MAX))
    return np.maximum(d, 0.0)


def ttc_with_accelerations(gap, vf, vl, af, al, horizon_s: float = 10.0, step_s: float = 0.05) -> np.ndarray:
    """Smallest t > 0 [s] at which the gap closes if both keep their accelerations (inf if
    none within ``horizon_s``), to ``step_s``. A braking vehicle stops and stays stopped."""
    gap, vf, vl, af, al = (np.asarray(x, float)[:, None] for x in (gap, vf, vl, af, al))
    t = np.arange(step_s, horizon_s + 1e-9, step_s)[None, :]
    closes = gap + _travel(vl, al, t) - _travel(vf, af, t) <= 0.0
    first = np.argmax(closes, axis=1)
    return np.where(closes.any(axis=1), t[0, first], np.inf)


def _travel(v0: np.ndarray, a: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Distance [m] covered by time ``t`` from speed ``v0`` at constant acceleration ``a``, never reversing."""
    t_stop = np.where(a < 0.0, v0 / np.maximum(-a, 1e-9), np.inf)
    tt = np.minimum(t, t_stop)
    return v0 * tt + 0.5 * a * tt ** 2

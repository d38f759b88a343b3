"""Behaviour models that execute the humans' intents: IDM (with the ACC model's bound on
over-reactions), MOBIL, lane keeping, gap acceptance.

Pure functions (IDM element-wise over arrays or scalars, the rest per driver, compiled by
numba); the world decides whom to apply them to.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

IDM_DELTA = 4.0  # acceleration exponent of IDM
MOBIL_SAFE_DECEL = 4.0  # [m/s^2] b_safe: the most a new follower may be made to brake
MOBIL_THRESHOLD = 0.2  # [m/s^2] smallest advantage worth a lane change
MOBIL_KEEP_RIGHT = 0.15  # [m/s^2] bias toward the right lane
LATERAL_GAIN = 1.0  # [1/s] lateral offset error -> lateral speed
MAX_LATERAL_SPEED = 1.2  # [m/s] during a lane change
HEADING_GAIN = 6.0  # [1/s] heading error -> yaw rate
MAX_STEER = 0.6  # [rad]
MAX_LANE_CHANGE_ANGLE = 0.2  # [rad] largest heading relative to the lane while changing lanes
MAX_MERGE_ANGLE = 0.5  # [rad] the same when squeezing out of an ending lane at low speed


@njit(cache=True)
def idm(v, v0, headway, min_gap, a_max, b_comf, gap, v_lead):
    """IDM acceleration [m/s^2] for speed ``v`` behind a leader at bumper gap ``gap`` [m].

    ``gap`` may be ``inf`` for a free road. Scalars or arrays (element-wise).
    """
    s_star = min_gap + np.maximum(0.0, v * headway + v * (v - v_lead) / (2.0 * np.sqrt(a_max * b_comf)))
    return a_max * (1.0 - (v / np.maximum(v0, 1e-3)) ** IDM_DELTA - (s_star / np.maximum(gap, 0.05)) ** 2)


LANE_END_TAU_S = 1.0  # [s] reaction time of the safe-speed approach to a lane's end (Krauss' tau)


@njit(cache=True)
def safe_speed(distance: float, b: float, tau: float) -> float:
    """The fastest speed [m/s] from which a driver still stops within ``distance`` [m],
    braking at ``b`` [m/s^2] after reacting for ``tau`` [s] (Gipps; SUMO's Krauss model)."""
    bt = b * tau
    return -bt + math.sqrt(bt * bt + 2.0 * b * max(distance, 0.0))


@njit(cache=True)
def lane_end_approach(v: float, distance: float, b_comf: float) -> float:
    """Acceleration [m/s^2] toward the safe speed (Gipps, Krauss) that still stops, braking at
    ``b_comf`` [m/s^2] after a reaction of ``LANE_END_TAU_S``, ``distance`` [m] ahead: how a
    driver nears the end of a lane it must leave (an acceleration lane, a lane that does not
    lead on along its route). Unlike IDM's approach to a standing obstacle it keeps
    accelerating while the end is far, as SUMO's drivers do on acceleration lanes."""
    return (safe_speed(distance, b_comf, LANE_END_TAU_S) - v) / LANE_END_TAU_S


@njit(cache=True)
def secure_gap(v: float, v_lead: float, tau: float, b: float, b_lead: float) -> float:
    """The gap [m] beyond its minimum gap a Krauss driver at ``v`` [m/s] needs behind a leader
    at ``v_lead`` [m/s] to keep its speed (its safe speed is ``v`` there): its braking distance
    after reacting for ``tau`` [s] at ``b`` [m/s^2] less the leader's at ``b_lead``."""
    return max(v * tau + v * v / (2.0 * b) - v_lead * v_lead / (2.0 * b_lead), 0.0)


@njit(cache=True)
def krauss(v: float, v0: float, a_max: float, b: float, tau: float, gap: float, v_lead: float, b_lead: float,
           stop: float, lane_end: float, sigma: float, dawdle: float, dt: float) -> float:
    """SUMO's Krauss model (its default ``carFollowModel``): the acceleration [m/s^2] to the
    speed for the next ``dt`` [s]: the desired ``v0`` [m/s], at most ``a_max`` [m/s^2] more
    than now, no faster than stops behind the point where a leader ``gap`` [m] ahead (beyond
    the minimum gap; no faster than now within it) braking at ``b_lead`` would stop, nor than
    stops before ``stop`` [m] or the ``lane_end`` [m] a driver must leave; then less by
    dawdling: ``sigma`` [0, 1] times ``a_max`` times ``dt`` times ``dawdle`` (uniform in [0, 1))."""
    target = min(v0, v + a_max * dt)
    if gap < 1e9:
        target = min(target, safe_speed(gap + v_lead * v_lead / (2.0 * b_lead), b, tau))
        if gap < 0.0:  # within the minimum gap (a leader cut in, or one across a junction link): no faster
            target = min(target, v)
    target = min(target, safe_speed(stop, b, tau), safe_speed(lane_end, b, LANE_END_TAU_S))
    target = max(target - sigma * a_max * dt * dawdle, 0.0)
    return (target - v) / dt


ACC_COOLNESS = 0.99  # c of the ACC model: how much a driver trusts the leader not to brake harder


@njit(cache=True)
def cah(v: float, v_lead: float, a_lead: float, gap: float, a_max: float) -> float:
    """The constant-acceleration heuristic [m/s^2] (Kesting, Treiber, Helbing 2010): the
    deceleration that avoids a collision if the leader keeps its acceleration ``a_lead``
    (at most ``a_max``) and nobody reacts late; for a leader cutting in at constant speed it
    is the kinematic DRAC, (v - v_lead)^2 / (2 gap)."""
    a_l = min(a_lead, a_max)
    gap = max(gap, 0.05)
    if a_l < 0.0 and v_lead * (v - v_lead) <= -2.0 * gap * a_l:  # a braking leader stops before we catch up
        return v * v * a_l / (v_lead * v_lead - 2.0 * gap * a_l)
    closing = max(v - v_lead, 0.0)
    return a_l - closing * closing / (2.0 * gap)


@njit(cache=True)
def acc(a_idm: float, a_cah: float, b_comf: float, b_max: float) -> float:
    """The ACC model's acceleration [m/s^2]: IDM's, unless IDM brakes harder than the CAH
    says the situation needs (a leader that cut in close but is not closing fast); then a
    blend that brakes at most about ``b_comf`` beyond the CAH instead of IDM's over-reaction
    (IDM's own value counted at most at the maximum deceleration ``b_max``)."""
    if a_idm >= a_cah:  # (with IDM's own value: the clip below only bounds the blend)
        return a_idm
    a_idm = max(a_idm, -b_max)
    return (1.0 - ACC_COOLNESS) * a_idm + ACC_COOLNESS * (a_cah + b_comf * math.tanh((a_idm - a_cah) / b_comf))


@njit(cache=True)
def mobil(a_self_now: float, a_self_new: float, a_new_follower_now: float, a_new_follower_new: float,
          a_old_follower_now: float, a_old_follower_new: float, politeness: float, to_right: bool,
          b_safe: float = MOBIL_SAFE_DECEL, bonus: float = 0.0) -> bool:
    """MOBIL decision for one driver: whether a lane change is safe and worth it.

    Safe: the new follower would brake no harder than ``b_safe`` [m/s^2], nor would the
    changer itself. Worth it: own gain plus ``politeness`` times the followers' gains
    beats the threshold, with a bias toward the right lane; ``bonus`` [m/s^2] is the
    driver's own wish for this side (an intent), which never relaxes the safety criterion.
    """
    safe = a_new_follower_new >= -b_safe and a_self_new >= -b_safe
    gain = (a_self_new - a_self_now) + politeness * (
        (a_new_follower_new - a_new_follower_now) + (a_old_follower_new - a_old_follower_now)
    )
    threshold = MOBIL_THRESHOLD + (-MOBIL_KEEP_RIGHT if to_right else MOBIL_KEEP_RIGHT)
    return safe and gain + bonus > threshold


@njit(cache=True)
def lane_keeping_yaw_rate(d: float, d_target: float, psi: float, v: float, kappa: float, max_angle: float) -> float:
    """Yaw rate [rad/s] that steers lateral offset ``d`` toward ``d_target`` [m] on a curve,
    never heading more than ``max_angle`` [rad] off the lane."""
    v_lat = min(max(-LATERAL_GAIN * (d - d_target), -MAX_LATERAL_SPEED), MAX_LATERAL_SPEED)
    psi_cmd = math.asin(min(max(v_lat / max(v, 1.0), -math.sin(max_angle)), math.sin(max_angle)))
    curve = kappa / max(1.0 - kappa * d, 0.1) * v * math.cos(psi)  # yaw rate that follows the offset curve
    return HEADING_GAIN * (psi_cmd - psi) + curve


@njit(cache=True)
def steering_for_yaw_rate(yaw_rate: float, v: float, wheelbase: float) -> float:
    """Front-wheel angle [rad] of a kinematic bicycle that yields ``yaw_rate`` at speed ``v``."""
    return min(max(math.atan(wheelbase * yaw_rate / max(v, 0.5)), -MAX_STEER), MAX_STEER)


def accepts_gap(time_gap, critical_gap):
    """Gap acceptance: a pedestrian crosses when the time gap [s] is at least its critical gap."""
    return time_gap >= critical_gap

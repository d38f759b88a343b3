"""How an RL agent drives a controlled (ego) vehicle: action spaces, observations, reward.

Shared by the Gymnasium single-agent env and the PettingZoo parallel env. Observations
are a view of :class:`~envs.state.WorldState`, normalised to [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from gymnasium import spaces

from envs.actors import HUMAN, PHASE_NAMES, ROUTE_END
from envs.behaviour import MAX_STEER
from envs.network import AMBER, RED
from envs.scenario import WorldConfig
from envs.state import WorldState
from envs.world import World

IDLE, FASTER, SLOWER, LANE_LEFT, LANE_RIGHT = range(5)
META_ACTIONS = ("keep", "faster", "slower", "lane_left", "lane_right")
FEATURES = ("presence", "pedestrian", "x", "y", "vx", "vy", "cos_h", "sin_h")
SPEED_SCALE = 40.0  # [m/s] speed normalisation
ACCEL_SCALE = 5.0  # [m/s^2] continuous action 1.0 means this acceleration
JERK_SCALE = 5.0  # [m/s^3] jerk at which the comfort penalty saturates
ARRIVAL_MARGIN = 30.0  # [m] before the end of an exit lane counts as arrived


@dataclass
class EgoStatus:
    """Per-vehicle bookkeeping across policy steps."""

    speed_index: int = 0
    last_accel: float = 0.0
    last_odometer: float = 0.0
    done: bool = False
    arrived: bool = False
    events: list = field(default_factory=list)


class EgoInterface:
    """Spaces, action application, observation and reward of controlled vehicles."""

    def __init__(self, config: WorldConfig) -> None:
        self.config = config
        ego = config.ego
        self.continuous = ego.action == "continuous"
        self.target_speeds = np.array(sorted(ego.target_speeds_mps), float)
        self.k = ego.observed_actors
        self.range = ego.observation_range_m
        self.policy_dt = 1.0 / config.policy_hz
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(self.k + 2, len(FEATURES)), dtype=np.float32)
        if self.continuous:
            self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        else:
            self.action_space = spaces.Discrete(len(META_ACTIONS))
        self.status: dict[int, EgoStatus] = {}

    def start(self, world: World, ids: list[int]) -> None:
        """Begin an episode for the controlled vehicles ``ids``."""
        veh = world.vehicles
        self.status = {}
        for vid in ids:
            r = veh.row(vid)
            idx = int(np.argmin(np.abs(self.target_speeds - veh.v[r])))
            veh.cmd_speed[r] = self.target_speeds[idx]
            self.status[vid] = EgoStatus(speed_index=idx, last_odometer=float(veh.odometer[r]))

    # ---- acting ------------------------------------------------------------------------
    def apply(self, world: World, vid: int, action) -> None:
        """Turn an RL action into the vehicle's commands (target lane, speed, or accel/steer)."""
        veh, net = world.vehicles, world.network
        r = veh.row(vid)
        st = self.status[vid]
        if self.continuous:
            a = np.clip(np.asarray(action, dtype=float).reshape(2), -1.0, 1.0)
            veh.cmd_accel[r] = a[0] * ACCEL_SCALE
            veh.cmd_steer[r] = a[1] * MAX_STEER
            return
        act = int(action)
        if act == FASTER:
            st.speed_index = min(st.speed_index + 1, len(self.target_speeds) - 1)
        elif act == SLOWER:
            st.speed_index = max(st.speed_index - 1, 0)
        elif act in (LANE_LEFT, LANE_RIGHT) and veh.target_lane[r] == veh.lane[r]:
            nb = (net.lane_left if act == LANE_LEFT else net.lane_right)[veh.lane[r]]
            if nb >= 0 and net.lane_s_from[nb] <= veh.s[r] <= net.lane_s_to[nb] and net.lane_change_ok[veh.lane[r]]:
                veh.target_lane[r] = nb
        veh.cmd_speed[r] = self.target_speeds[st.speed_index]

    # ---- observing -----------------------------------------------------------------------
    def observe(self, state: WorldState, vid: int) -> np.ndarray:
        """(k + 2, 8) array: ego row, context row, then the k nearest actors in the ego frame."""
        v, p, net = state.vehicles, state.pedestrians, state.network
        obs = np.zeros(self.observation_space.shape, dtype=np.float32)
        r = state.row_of(vid)
        if r < 0:
            return obs
        lane = v["lane"][r]
        h = v["heading"][r]
        c, s = np.cos(h), np.sin(h)
        speed = v["v"][r]
        psi_rel = v["psi"][r]
        lat = (v["d"][r] - net.lane_offset[lane]) / net.lane_width[lane]
        obs[0] = [1.0, 0.0, lat, 0.0, speed / SPEED_SCALE, 0.0, np.cos(psi_rel), np.sin(psi_rel)]
        group = net.lane_signal_group[lane]
        if group < 0 and len(state.next_lane) > r and state.next_lane[r] >= 0:  # a signalised junction link next
            group = net.lane_entry_group[state.next_lane[r]]
        red = float(group >= 0 and len(state.group_state) > 0 and state.group_state[group] in (RED, AMBER))
        stop = state.stop_distance[r]
        to_line = net.lane_s_to[lane] - v["s"][r] if group >= 0 else self.range
        progress = min(v["odometer"][r] / 1000.0, 1.0)
        obs[1] = [1.0, 0.0, min(stop, self.range) / self.range, red, min(to_line, self.range) / self.range,
                  state.lane_speed_limit[lane] / SPEED_SCALE, float(net.lane_left[lane] >= 0) - float(net.lane_right[lane] >= 0),
                  progress]
        # others: vehicles then pedestrians, nearest first
        xs = np.concatenate([v["x"], p["x"]])
        ys = np.concatenate([v["y"], p["y"]])
        hs = np.concatenate([v["heading"], p["heading"]])
        moving = np.array([PHASE_NAMES[k] in ("approach", "cross", "depart") for k in p["phase"]], dtype=bool)
        sp = np.concatenate([v["v"], np.where(moving, 1.0, 0.0) * 1.35])
        ped = np.concatenate([np.zeros(len(v["x"])), np.ones(len(p["x"]))])
        dx, dy = xs - v["x"][r], ys - v["y"][r]
        dist = np.hypot(dx, dy)
        dist[r] = np.inf
        near = np.flatnonzero(dist < self.range)
        near = near[np.argsort(dist[near])][: self.k]
        if len(near):
            lx = (dx[near] * c + dy[near] * s) / self.range
            ly = (-dx[near] * s + dy[near] * c) / self.range
            vx = sp[near] * np.cos(hs[near]) - speed * c
            vy = sp[near] * np.sin(hs[near]) - speed * s
            rvx = (vx * c + vy * s) / SPEED_SCALE
            rvy = (-vx * s + vy * c) / SPEED_SCALE
            rel_h = hs[near] - h
            obs[2 : 2 + len(near)] = np.stack(
                [np.ones(len(near)), ped[near], lx, ly, rvx, rvy, np.cos(rel_h), np.sin(rel_h)], 1
            )
        return np.clip(obs, -1.0, 1.0)

    # ---- judging -------------------------------------------------------------------------
    def outcome(self, world: World, state: WorldState, vid: int, events: list) -> tuple[float, bool, dict]:
        """Reward, terminated flag and info for one controlled vehicle after a policy step."""
        cfg = self.config.reward
        net = world.network
        st = self.status[vid]
        r = state.row_of(vid)
        mine = [e for e in events if vid in e.actors]
        crashed = bool(state.vehicles["crashed"][r]) if r >= 0 else True
        # progress: distance driven relative to the fastest allowed speed
        v_ref = float(state.lane_speed_limit.max())
        odo = float(state.vehicles["odometer"][r]) if r >= 0 else st.last_odometer
        progress = np.clip((odo - st.last_odometer) / (v_ref * self.policy_dt), 0.0, 1.0)
        st.last_odometer = odo
        accel = float(state.vehicles["a"][r]) if r >= 0 else 0.0
        jerk = abs(accel - st.last_accel) / self.policy_dt
        st.last_accel = accel
        hazards = [e.kind for e in mine if e.kind in ("red_light",)]
        ttc = self.time_to_collision(state, r)
        if ttc is not None and ttc < cfg.time_to_collision_hazard_s:
            hazards.append("time_to_collision")
        lane = state.vehicles["lane"][r] if r >= 0 else 0
        row = world.vehicles.row(vid) if vid in world.vehicles.id else -1
        route_ends = row >= 0 and world.vehicles.route[row, 0] == ROUTE_END  # an imported trip's last lane
        arrived = (
            r >= 0 and not crashed and (net.lane_next[lane] < 0 or route_ends) and not net.lane_dead_end[lane]
            and state.vehicles["s"][r] >= net.lane_s_to[lane] - ARRIVAL_MARGIN
        )
        reward = cfg.progress * progress - cfg.comfort * min(jerk / JERK_SCALE, 1.0) - cfg.hazard * len(hazards)
        if crashed:
            reward -= cfg.collision
        terminated = bool(crashed or arrived)
        st.done, st.arrived = terminated, bool(arrived)
        info = {
            "time_s": state.time,
            "speed_mps": float(state.vehicles["v"][r]) if r >= 0 else 0.0,
            "crashed": crashed,
            "arrived": bool(arrived),
            "hazards": hazards,
            "cost": float(len(hazards) + crashed),
            "events": [{"kind": e.kind, "time_s": e.time, "actors": list(e.actors)} for e in mine],
            "time_to_collision_s": ttc,
        }
        if arrived:
            world.vehicles.driver[world.vehicles.row(vid)] = HUMAN  # hand the car back to a rule-based driver
        return float(reward), terminated, info

    @staticmethod
    def time_to_collision(state: WorldState, r: int) -> float | None:
        """Constant-speed time to collision [s] with the leader, or None when not closing."""
        if r < 0 or state.leader[r] < 0:
            return None
        closing = state.vehicles["v"][r] - state.vehicles["v"][state.leader[r]]
        gap = state.leader_gap[r]
        return float(max(gap, 0.0) / closing) if closing > 1e-6 else None

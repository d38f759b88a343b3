"""The one structured state of the twin, captured from a world at an instant.

``WorldState`` holds copies of the actor columns (cheap, used by the RL observation
builder and the renderer) and gives typed per-entity records (pydantic) for the views
that want entities and relations: the LLM scene text, the trace, the inspector.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import BaseModel

from envs.actors import HUMAN, PHASE_NAMES, VEHICLE_TYPES, WAIT
from envs.network import Network

if TYPE_CHECKING:
    from envs.world import World

NEAR_MISS_TTC_S = 1.5  # [s] a vehicle closing in on its leader with a time to collision below this is in a near miss
CLOSING_MIN_MPS = 0.1  # [m/s] slower closing than this is not closing in


def near_miss(gap_m, closing_mps):
    """Whether a follower at ``gap_m`` [m] behind its leader, closing at ``closing_mps`` [m/s], is in a
    near miss (the one definition: the run summary, the humans' triggers and their scene text use it).
    Works on floats and on numpy arrays alike."""
    return (closing_mps > CLOSING_MIN_MPS) & (gap_m < NEAR_MISS_TTC_S * np.maximum(closing_mps, CLOSING_MIN_MPS))


def _copies(actors, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Copies of the named actor columns; empty ones are shared (nothing can be written to them)."""
    if not len(actors):
        return {k: getattr(actors, k) for k in names}
    return {k: getattr(actors, k).copy() for k in names}


SIGNAL_NAMES = ("green", "amber", "red")
WALK_NAMES = ("walk", "flashing", "dont_walk")


class ActorState(BaseModel):
    """One actor at one instant, in world coordinates (x east, y north)."""

    id: int
    kind: Literal["car", "truck", "bus", "pedestrian"]
    x_m: float
    y_m: float
    heading_rad: float
    speed_mps: float
    accel_mps2: float = 0.0
    length_m: float
    width_m: float
    lane: str | None = None
    station_m: float | None = None
    controlled: bool = False
    crashed: bool = False
    phase: str | None = None  # pedestrians: approach / wait / cross / depart


class Relation(BaseModel):
    """A relation between two actors: ``leader`` (object is ahead of subject in its path)."""

    kind: Literal["leader"]
    subject: int
    object: int
    gap_m: float
    closing_speed_mps: float
    time_to_collision_s: float | None


class SignalState(BaseModel):
    group: int
    state: Literal["green", "amber", "red"]


class CrossingState(BaseModel):
    name: str
    signal: Literal["walk", "flashing", "dont_walk"] | None
    occupied: bool
    time_gap_s: float | None  # smallest time [s] until a vehicle reaches it


def _sensed_now(world: "World", gap_now: np.ndarray) -> np.ndarray:
    """The gap [m] each vehicle's sensor reports, moved to the positions ``gap_now`` is of: the
    sensor read at the start of the step, its error (noise, a dropout's inf) is kept."""
    if world.perceived_gap is world.leader_gap:  # no sensor fault: the sensors read the truth
        return gap_now.copy()
    both = np.isfinite(world.perceived_gap) & np.isfinite(world.leader_gap)
    error = np.zeros(len(both))
    error[both] = world.perceived_gap[both] - world.leader_gap[both]
    sensed = np.where(np.isfinite(gap_now), np.maximum(gap_now + error, 0.0), gap_now)
    return np.where(world.vehicles.sensor_dropout, np.inf, sensed)


@dataclass
class WorldState:
    """The world at ``time`` [s]: actor columns (numpy) plus signals, crossings and events."""

    time: float
    network: Network  # the road network (shared: its geometry; a run adds only temporary jaywalk crossings)
    vehicles: dict[str, np.ndarray]
    pedestrians: dict[str, np.ndarray]
    leader: np.ndarray  # row of each vehicle's leader, -1 if none
    leader_gap: np.ndarray  # [m]
    stop_distance: np.ndarray  # [m] front bumper to the point it must stop at
    group_state: np.ndarray
    crossing_signal: np.ndarray
    crossing_occupied: np.ndarray
    crossing_gap: np.ndarray
    signal_interval: str
    events: list = field(default_factory=list)
    expected_accel: np.ndarray = field(default_factory=lambda: np.zeros(0))  # [m/s^2] behaviour model, given the truth
    sensed_gap: np.ndarray = field(default_factory=lambda: np.zeros(0))  # [m] leader gap each vehicle's sensor reports
    speed_limit: np.ndarray = field(default_factory=lambda: np.zeros(0))  # [m/s] posted limit where each vehicle is
    to_zone: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # [m] front bumper to each crossing zone
    past_zone: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=bool))  # already left that zone
    lane_speed_limit: np.ndarray = field(default_factory=lambda: np.zeros(0))  # [m/s] limit in force per lane
    lane_closed: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))  # per lane: closed by an operator
    signal_elapsed_s: float = 0.0  # [s] time in the current signal interval
    signal_planned_s: float = float("inf")  # [s] its planned duration
    next_lane: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # lane each vehicle enters next (-1)

    VEHICLE_COLUMNS = ("id", "vtype", "driver", "lane", "target_lane", "s", "d", "psi", "v", "a", "length", "width", "x",
                       "y", "heading", "crashed", "odometer", "steer")
    PEDESTRIAN_COLUMNS = ("id", "x", "y", "heading", "speed", "phase", "crossing", "jaywalker", "waited")

    @classmethod
    def capture(cls, world: "World") -> "WorldState":
        veh, ped = world.vehicles, world.pedestrians
        elapsed, planned = world.signals.elapsed
        seen = world.perception_now()  # of the positions this snapshot shows
        return cls(
            time=world.time,
            network=world.network,
            vehicles=_copies(veh, cls.VEHICLE_COLUMNS),
            pedestrians=_copies(ped, cls.PEDESTRIAN_COLUMNS),
            leader=seen.leader.copy(),
            leader_gap=seen.leader_gap.copy(),
            stop_distance=world.stop_distance(seen),
            group_state=world.group_state.copy(),
            crossing_signal=world.crossing_signal.copy(),
            crossing_occupied=world.occupied.copy(),
            crossing_gap=seen.crossing_gap.copy(),
            signal_interval=world.signals.name,
            events=list(world.events),
            expected_accel=veh.a_expected.copy(),
            sensed_gap=_sensed_now(world, seen.leader_gap),
            speed_limit=world.legal_speed_limit(),
            to_zone=seen.zone_distance.copy(),
            past_zone=seen.past_zone.copy(),
            lane_speed_limit=world.lane_speed_limit.copy(),
            lane_closed=world.lane_closed.copy(),
            signal_elapsed_s=elapsed,
            signal_planned_s=planned,
            next_lane=seen.next_lane.copy(),
        )

    def actors(self) -> list[ActorState]:
        """Every vehicle and pedestrian as a typed record."""
        v, p, net = self.vehicles, self.pedestrians, self.network
        out = [
            ActorState(
                id=int(v["id"][i]), kind=VEHICLE_TYPES[v["vtype"][i]].name, x_m=float(v["x"][i]), y_m=float(v["y"][i]),
                heading_rad=float(v["heading"][i]), speed_mps=float(v["v"][i]), accel_mps2=float(v["a"][i]),
                length_m=float(v["length"][i]), width_m=float(v["width"][i]), lane=net.lanes[v["lane"][i]].name,
                station_m=float(v["s"][i]), controlled=bool(v["driver"][i] != HUMAN), crashed=bool(v["crashed"][i]),
            )
            for i in range(len(v["id"]))
        ]
        out += [
            ActorState(
                id=int(p["id"][i]), kind="pedestrian", x_m=float(p["x"][i]), y_m=float(p["y"][i]),
                heading_rad=float(p["heading"][i]), speed_mps=float(p["speed"][i]) if p["phase"][i] != WAIT else 0.0,
                length_m=0.6, width_m=0.6, phase=PHASE_NAMES[p["phase"][i]],
            )
            for i in range(len(p["id"]))
        ]
        return out

    def relations(self) -> list[Relation]:
        """Leader/follower pairs with gap [m], closing speed [m/s] and time to collision [s]."""
        v = self.vehicles
        out = []
        for i in np.flatnonzero(self.leader >= 0):
            j = self.leader[i]
            closing = float(v["v"][i] - v["v"][j])
            gap = float(self.leader_gap[i])
            out.append(Relation(kind="leader", subject=int(v["id"][i]), object=int(v["id"][j]), gap_m=gap,
                                closing_speed_mps=closing,
                                time_to_collision_s=gap / closing if closing > 1e-6 and gap > 0 else None))
        return out

    def signals(self) -> list[SignalState]:
        return [SignalState(group=g, state=SIGNAL_NAMES[s]) for g, s in enumerate(self.group_state)]

    def crossings(self) -> list[CrossingState]:
        out = []
        for c, cr in enumerate(self.network.crossings):
            if not cr.zones:
                continue
            sig = WALK_NAMES[self.crossing_signal[cr.signal]] if cr.signal >= 0 else None
            gap = float(self.crossing_gap[c]) if c < len(self.crossing_gap) else float("inf")
            out.append(CrossingState(name=cr.name, signal=sig, occupied=bool(self.crossing_occupied[c]),
                                     time_gap_s=gap if np.isfinite(gap) else None))
        return out

    def row_of(self, actor_id: int) -> int:
        """Vehicle row of an id, or -1."""
        hits = np.flatnonzero(self.vehicles["id"] == actor_id)
        return int(hits[0]) if len(hits) else -1

"""Fault injection: planned failures of vehicles, sensors, signals and pedestrians.

A scenario's ``faults:`` list names each fault's ``kind``, when it starts (``at_s``), how
long it lasts (``duration_s``, default to the end) and, for actor faults, on whom: an
actor ``id`` or a selection rule applied at onset:

- ``closest_follower``: the moving vehicle with the shortest time headway to its leader
- ``approaching_stop``: the moving vehicle nearest a point where it must stop (a red
  signal, a queue's stopping point) that can still stop comfortably
- ``fastest``: the fastest vehicle
- ``crossing``: a pedestrian on the carriageway (for ``pedestrian_stop``)

A fault whose actor is not there yet (or whose rule matches nobody) starts at the first
step after ``at_s`` when one is.

Kinds: ``brake_failure`` (brakes deliver at most ``max_decel_mps2``), ``sensor_dropout``
(the forward sensor reports no leader), ``sensor_noise`` (N(0, ``sd_m``) on the sensed leader
gap), ``erratic_driver`` (scripted brake checks: ``brake_mps2`` for ``brake_s`` every
``period_s``), ``pedestrian_stop`` (stands still in the road), ``signal_stuck`` (the plan
stops advancing), ``signal_dark`` (heads dark: drivers treat the junction as unsignalised
and yield only to vehicles already in it; pedestrians see don't walk).

Scripted manoeuvres (a reconstructed crash's pre-crash actions; they name their actor by id):
``hard_brake`` (the driver brakes at ``decel_mps2`` while it lasts, then drives on; without a
duration it stays stopped), ``inattention`` (eyes off the road: the driver holds its speed and
reacts to nothing, not its leader, a signal or a pedestrian, while it lasts), ``lane_change``
(changes to the lane on its ``direction`` at once, without looking), ``runs_signal`` (ignores
red signals while it lasts).

What actually happened (actor ids, onset and end times) is kept in ``FaultInjector.log``:
these are the ground-truth labels the supervisor is evaluated against.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from envs.actors import CROSS, HUMAN

if TYPE_CHECKING:
    from envs.world import World

VehicleSelector = Union[int, Literal["closest_follower", "approaching_stop", "fastest"]]
PedestrianSelector = Union[int, Literal["crossing"]]


class _Fault(BaseModel):
    model_config = ConfigDict(extra="forbid")

    at_s: float = Field(..., ge=0.0, description="onset [s]")
    duration_s: float | None = Field(None, gt=0.0, description="how long it lasts [s]; None: to the end")


class _VehicleFault(_Fault):
    actor: VehicleSelector = "closest_follower"


class BrakeFailure(_VehicleFault):
    kind: Literal["brake_failure"] = "brake_failure"
    max_decel_mps2: float = Field(0.5, ge=0.0, le=10.0, description="deceleration the brakes still deliver")


class SensorDropout(_VehicleFault):
    kind: Literal["sensor_dropout"] = "sensor_dropout"


class SensorNoise(_VehicleFault):
    kind: Literal["sensor_noise"] = "sensor_noise"
    sd_m: float = Field(8.0, gt=0.0, le=100.0, description="standard deviation of the gap noise [m]")


class ErraticDriver(_VehicleFault):
    kind: Literal["erratic_driver"] = "erratic_driver"
    brake_mps2: float = Field(6.0, gt=0.0, le=10.0, description="deceleration of each brake check")
    brake_s: float = Field(1.5, gt=0.0, description="length of each brake check [s]")
    period_s: float = Field(6.0, gt=0.0, description="time between brake checks [s]")


class HardBrake(_VehicleFault):
    kind: Literal["hard_brake"] = "hard_brake"
    decel_mps2: float = Field(6.0, gt=0.0, le=10.0, description="[m/s^2] deceleration")


class Inattention(_VehicleFault):
    kind: Literal["inattention"] = "inattention"


class ForcedLaneChange(_VehicleFault):
    kind: Literal["lane_change"] = "lane_change"
    direction: Literal["left", "right"] = "left"


class RunsSignal(_VehicleFault):
    kind: Literal["runs_signal"] = "runs_signal"


class PedestrianStop(_Fault):
    kind: Literal["pedestrian_stop"] = "pedestrian_stop"
    actor: PedestrianSelector = "crossing"


class SignalStuck(_Fault):
    kind: Literal["signal_stuck"] = "signal_stuck"


class SignalDark(_Fault):
    kind: Literal["signal_dark"] = "signal_dark"


Fault = Annotated[Union[BrakeFailure, SensorDropout, SensorNoise, ErraticDriver, PedestrianStop, SignalStuck, SignalDark,
                        HardBrake, Inattention, ForcedLaneChange, RunsSignal],
                  Field(discriminator="kind")]
FAULT_KINDS = ("brake_failure", "sensor_dropout", "sensor_noise", "erratic_driver", "pedestrian_stop", "signal_stuck",
               "signal_dark", "hard_brake", "inattention", "lane_change", "runs_signal")
SCRIPTED_KINDS = ("hard_brake", "inattention", "lane_change", "runs_signal")  # staged manoeuvres, not failures to detect
RECOVER_ACCEL = 1.0  # [m/s^2] an erratic driver's acceleration right after a brake check
RECOVER_S = 1.0  # [s] how long it lasts


class FaultInjector:
    """Applies a scenario's faults to a world at the start of each physics step."""

    def __init__(self, faults: list, world: "World") -> None:
        self.faults = sorted(faults, key=lambda f: f.at_s)
        self.world = world
        self.log: list[dict] = []  # one entry per fault that started: kind, actors, start_s, end_s
        self._active: list[tuple[object, dict]] = []
        self._pending = list(self.faults)
        self.applied_until_s = -float("inf")  # [s] the last time faults were looked at (a step's start)
        self._own_runs_red: dict[int, bool] = {}  # actor id -> its own runs_red, while a runs_signal overrides it

    @property
    def unstarted(self) -> list:
        """Faults not started yet: their time has not come, or no actor matched their selection."""
        return list(self._pending)

    def live(self, index: int) -> bool:
        """Whether fault ``index`` is still to start or active (one that ended is past undoing)."""
        fault = self.faults[index]
        return fault in self._pending or any(active is fault for active, _ in self._active)

    def remove(self, index: int) -> None:
        """Take fault ``index`` (of ``faults``, in onset order) away: never started, or ended now
        with what it did undone (a counterfactual without it)."""
        fault = self.faults[index]
        if fault in self._pending:
            self._pending.remove(fault)
            return
        for active, entry in list(self._active):
            if active is fault:
                self._active.remove((active, entry))
                self._stop(active, entry)
                entry["end_s"] = round(self.applied_until_s, 3)

    def add(self, fault) -> None:
        """Schedule one more fault (a what-if injected while the twin runs)."""
        self.faults = sorted([*self.faults, fault], key=lambda f: f.at_s)
        self._pending.append(fault)

    def apply(self, now: float) -> None:
        """Start the faults due by ``now`` [s], drive the scripted ones and end the expired ones."""
        self.applied_until_s = now
        for fault in [f for f in self._pending if f.at_s <= now + 1e-9]:
            entry = self._start(fault, now)
            if entry is None:
                continue  # nobody matches its selection yet: try again next step
            self._pending.remove(fault)
            self.log.append(entry)
            self._active.append((fault, entry))
            if entry["actors"]:
                self._set(fault, entry["actors"][0], on=True)
        for fault, entry in list(self._active):
            ends = fault.duration_s is not None and now >= entry["start_s"] + fault.duration_s - 1e-9
            if ends or not self._present(fault, entry):
                self._active.remove((fault, entry))
                self._stop(fault, entry)
                entry["end_s"] = round(now, 3)
            elif isinstance(fault, ErraticDriver):
                self._brake_check(fault, entry, now)


    # ---- onset and end ----------------------------------------------------------------------
    def _start(self, fault, now: float) -> dict | None:
        w = self.world
        entry = {"kind": fault.kind, "actors": [], "start_s": round(now, 3), "end_s": None}
        if isinstance(fault, (SignalStuck, SignalDark)):
            if isinstance(fault, SignalStuck):
                w.signals.stuck = True
            else:
                w.signals.dark = True
                w.signals.apply()
            return entry
        actor = self._select(fault)
        if actor is None:
            return None
        entry["actors"] = [actor]
        return entry

    def _stop(self, fault, entry: dict) -> None:
        w = self.world
        if isinstance(fault, SignalStuck):
            w.signals.stuck = False
        elif isinstance(fault, SignalDark):
            w.signals.dark = False
            w.signals.apply()
        elif entry["actors"]:
            self._set(fault, entry["actors"][0], on=False)

    def _present(self, fault, entry: dict) -> bool:
        if isinstance(fault, (SignalStuck, SignalDark)):
            return True
        if not entry["actors"]:
            return False
        pool = self.world.pedestrians if isinstance(fault, PedestrianStop) else self.world.vehicles
        return bool((pool.id == entry["actors"][0]).any())

    def _set(self, fault, actor: int, on: bool) -> None:
        """Apply ``fault`` to ``actor`` (``on``: it has just joined the active faults) or take it
        off (it has just left them). What a vehicle's columns hold follows from all the faults
        still active on it, so one ending never undoes another."""
        w = self.world
        if isinstance(fault, PedestrianStop):
            rows = np.flatnonzero(w.pedestrians.id == actor)
            w.pedestrians.halted[rows] = any(isinstance(f, PedestrianStop) for f in self._on(actor))
            return
        veh = w.vehicles
        rows = np.flatnonzero(veh.id == actor)
        if isinstance(fault, ForcedLaneChange):
            if on and len(rows):
                table = w.network.lane_left if fault.direction == "left" else w.network.lane_right
                target = table[veh.lane[rows[0]]]
                if target >= 0:
                    veh.target_lane[rows[0]] = target
        else:
            mine = self._on(actor)
            brakes = [f.max_decel_mps2 for f in mine if isinstance(f, BrakeFailure)]
            veh.brake_limit[rows] = min(brakes) if brakes else np.inf
            veh.sensor_dropout[rows] = any(isinstance(f, (SensorDropout, Inattention)) for f in mine)
            noise = [f.sd_m for f in mine if isinstance(f, SensorNoise)]
            veh.gap_noise_sd[rows] = max(noise) if noise else 0.0
            hard = [f.decel_mps2 for f in mine if isinstance(f, HardBrake)]
            blind = any(isinstance(f, Inattention) for f in mine)
            veh.forced_accel[rows] = -max(hard) if hard else 0.0 if blind else np.nan  # (erratic: its brake checks)
            if any(isinstance(f, RunsSignal) for f in mine):
                self._own_runs_red.setdefault(actor, bool(veh.runs_red[rows].any()))
                veh.runs_red[rows] = True
            elif actor in self._own_runs_red:
                veh.runs_red[rows] = self._own_runs_red.pop(actor)
        w.perceive()

    def _on(self, actor: int) -> list:
        """The faults active on ``actor`` now."""
        return [f for f, entry in self._active if entry["actors"] and entry["actors"][0] == actor]

    def _brake_check(self, fault: ErraticDriver, entry: dict, now: float) -> None:
        veh = self.world.vehicles
        rows = np.flatnonzero(veh.id == entry["actors"][0])
        phase = (now - entry["start_s"]) % fault.period_s
        if phase < fault.brake_s:
            veh.forced_accel[rows] = -fault.brake_mps2
        elif phase < fault.brake_s + RECOVER_S:
            veh.forced_accel[rows] = RECOVER_ACCEL
        else:
            veh.forced_accel[rows] = np.nan

    # ---- selection ----------------------------------------------------------------------------
    def _select(self, fault) -> int | None:
        w = self.world
        if isinstance(fault.actor, int):
            pool = w.pedestrians if isinstance(fault, PedestrianStop) else w.vehicles
            return fault.actor if (pool.id == fault.actor).any() else None
        if fault.actor == "crossing":
            ped = w.pedestrians
            rows = np.flatnonzero((ped.phase == CROSS) & ~ped.halted)
            if not len(rows):
                return None
            # the one furthest into the road: least walked share of the crossing left behind it
            share = (ped.s[rows] - ped.cum[rows, 1]) / np.maximum(ped.cum[rows, 2] - ped.cum[rows, 1], 1e-9)
            return int(ped.id[rows[np.argmin(np.abs(share - 0.5))]])
        veh = w.vehicles
        ok = (veh.driver == HUMAN) & ~veh.crashed & (veh.v > 3.0) & np.isinf(veh.brake_limit)
        if fault.actor == "closest_follower":
            score = np.where(ok & (w.leader >= 0), w.leader_gap / np.maximum(veh.v, 0.1), np.inf)
        elif fault.actor == "approaching_stop":
            stop = w.stop_distance()
            comfortable = veh.v ** 2 / (2.0 * veh.b_comf) + 5.0
            score = np.where(ok & np.isfinite(stop) & (stop > comfortable), stop, np.inf)
        else:  # fastest
            score = np.where(ok, -veh.v, np.inf)
        if not len(score) or not np.isfinite(score.min()):
            return None
        return int(veh.id[int(np.argmin(score))])

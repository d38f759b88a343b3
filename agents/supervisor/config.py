"""The supervisor's configuration: the scenario's ``supervisor:`` section and its thresholds.

Only pydantic here, so loading a scenario never imports the supervisor's kernels.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Severity = Literal["low", "medium", "high"]
SEVERITIES = ("low", "medium", "high")


class HazardThresholds(BaseModel):
    """Thresholds per measure, from low to high severity."""

    model_config = ConfigDict(extra="forbid")

    ttc_s: tuple[float, float, float] = Field((3.0, 2.0, 1.0), description="time to collision below [s]")
    drac_mps2: tuple[float, float, float] = Field((2.0, 3.4, 6.0), description="deceleration to avoid collision above")
    headway_s: tuple[float, float, float] = Field((0.8, 0.5, 0.3), description="time headway below [s], when moving")
    conflict_s: tuple[float, float, float] = Field((3.0, 2.0, 1.0), description="time to a junction conflict below [s]")
    pet_s: tuple[float, float, float] = Field((1.0, 0.0, 0.0), description="post-encroachment time below [s]; "
                                              "low only by default: conflict areas are whole crossings and lanes")
    speeding: tuple[float, float, float] = Field((0.1, 0.2, 0.3), description="speed over the limit above, as a ratio")
    lane_change_headway_s: tuple[float, float, float] = Field((0.6, 0.4, 0.2),
                                                             description="new follower's headway below [s]")
    comfortable_decel_mps2: float = Field(3.4, gt=0.0, description="a driver who needs more cannot stop comfortably")
    conflict_horizon_s: float = Field(4.0, gt=0.0, description="junction conflicts looked for this far ahead [s]")
    merge_gap_s: float = Field(1.0, ge=0.0, description="flags closer than this in time are one event [s]")
    min_speed_mps: float = Field(2.0, ge=0.0, description="headway and speeding are judged only above this speed")


class AnomalyThresholds(BaseModel):
    """Slack (residual tolerated for ever) and alarm (CUSUM level of score 1) per check."""

    model_config = ConfigDict(extra="forbid")

    accel_slack_mps2: float = Field(0.5, ge=0.0)
    accel_alarm_mps: float = Field(1.0, gt=0.0, description="[m/s^2 * s]")
    walk_slack: float = Field(0.3, ge=0.0, description="share of the walking speed lost")
    walk_alarm_s: float = Field(1.0, gt=0.0, description="[share * s]")
    gap_slack_m: float = Field(1.0, ge=0.0)
    gap_alarm_ms: float = Field(5.0, gt=0.0, description="[m * s]")
    dropout_residual_m: float = Field(20.0, gt=0.0, description="residual of a gap reported missing [m]")
    signal_overrun_s: float = Field(3.0, gt=0.0, description="an interval this much over its plan scores 1 [s]")


class Foresight(BaseModel):
    """Futures run from the moment of each alert (``envs.futures``): the collision probability in
    the next seconds goes into the triage's facts and sets a floor on its severity."""

    model_config = ConfigDict(extra="forbid")

    futures: int = Field(8, ge=0, le=200, description="futures per alert (0: none)")
    horizon_s: float = Field(8.0, gt=0.0, le=60.0, description="how far each future runs [s]")
    high_at: float = Field(0.5, ge=0.0, le=1.0, description="a collision probability from this on makes the alert high")
    medium_at: float = Field(0.2, ge=0.0, le=1.0, description="from this on, at least medium")
    max_vehicles: int = Field(150, ge=0, description="a world with more vehicles gets no futures (their cost grows "
                                                    "with the vehicles); such alerts are counted as foresight_skipped")


class SupervisorConfig(BaseModel):
    """The scenario's ``supervisor:`` section."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    every_steps: int = Field(3, ge=1, le=100, description="physics steps between checks (3: 5 Hz at 15 Hz)")
    alert_severity: Severity = Field("medium", description="events reaching this severity are alerts")
    alert_categories: list[Literal["hazard", "violation", "incident", "anomaly"]] = Field(
        default_factory=lambda: ["hazard", "incident", "anomaly"],
        description="categories that raise alerts (violations are recorded, not alerted, by default)")
    triage: Literal["template", "llm"] = Field("template", description="who explains alerts: rules or the model")
    alert_operator: bool = Field(False, description="alerts that warrant it reach the operator agents")
    hazards: HazardThresholds = HazardThresholds()
    anomaly: AnomalyThresholds = AnomalyThresholds()
    foresight: Foresight = Foresight()

    @property
    def asks_model(self) -> bool:
        """Whether this supervisor explains alerts with a model (it is on and its triage is ``llm``)."""
        return self.enabled and self.triage == "llm"

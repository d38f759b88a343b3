"""The typed specification of a crash described in words (a report, a narrative, a typology entry).

A :class:`CrashSpec` holds what the description says about the road, the conditions, the actors,
the pre-crash sequence and the crash. Where each value came from is kept beside it, not in it:
:class:`Evidence` per field path (``"road.speed_limit_mps"``, ``"actors.V1.speed_mps"``) says
whether the text stated it (``text``, with the quoted words), the extractor filled a default
(``default``) or inferred it from other facts (``inferred``, with the reason).

Units: speeds [m/s], lengths [m], grades [%]. Actor ids are the report's own (``V1``, ``V2``, ``P1``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

CrashType = Literal["rear_end", "angle", "sideswipe", "head_on", "pedestrian", "single_vehicle"]
CRASH_TYPES: tuple[str, ...] = CrashType.__args__  # type: ignore[attr-defined]
Junction = Literal["none", "four_way", "t_junction", "driveway", "roundabout"]
Control = Literal["none", "signal", "stop_sign", "yield_sign"]
Light = Literal["daylight", "dawn_dusk", "dark_lit", "dark_unlit"]
Weather = Literal["clear", "rain", "snow", "fog"]
Surface = Literal["dry", "wet", "snow", "ice"]
ActorKind = Literal["car", "truck", "bus", "motorcycle", "pedestrian"]
Direction = Literal["north", "south", "east", "west", "unknown"]
Manoeuvre = Literal["straight", "stopped", "slowing", "turning_left", "turning_right", "changing_lanes",
                    "crossing", "backing"]
Impairment = Literal["none", "alcohol", "drugs", "fatigue"]
Source = Literal["text", "default", "inferred"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RoadLayout(_Strict):
    lanes_per_direction: int = Field(1, ge=1, le=6)
    divided: bool = False
    grade_percent: float = Field(0.0, ge=-15.0, le=15.0, description="[%] uphill positive")
    curve: bool = False
    junction: Junction = "none"
    control: Control = "none"
    speed_limit_mps: float | None = Field(None, gt=0.0, le=60.0, description="[m/s] posted limit")


class Conditions(_Strict):
    light: Light = "daylight"
    weather: Weather = "clear"
    surface: Surface = "dry"


class Actor(_Strict):
    """One road user of the report. ``speed_mps`` is the stated speed [m/s]; a stated range
    (``35-40 mph``) gives ``speed_low_mps``/``speed_high_mps`` too."""

    id: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    kind: ActorKind = "car"
    direction: Direction = "unknown"
    lane: int | None = Field(None, ge=1, le=6, description="lane number counted from the right (1: rightmost)")
    speed_mps: float | None = Field(None, ge=0.0, le=90.0)
    speed_low_mps: float | None = Field(None, ge=0.0, le=90.0)
    speed_high_mps: float | None = Field(None, ge=0.0, le=90.0)
    manoeuvre: Manoeuvre = "straight"
    age_years: int | None = Field(None, ge=1, le=110)
    impairment: Impairment = "none"
    distracted: bool = False
    hurry: bool = False


class Step(_Strict):
    """One step of the pre-crash sequence, in the order the report tells it."""

    actor: str
    action: Manoeuvre | Literal["braked", "ran_signal", "ran_stop_sign", "failed_to_yield", "entered_road",
                                "lost_control", "accelerated"]


class Crash(_Strict):
    type: CrashType
    striking: str = Field(description="actor id of the one that struck")
    struck: str = Field(description="actor id of the one that was struck (for single_vehicle: the striking one)")


class CrashSpec(_Strict):
    road: RoadLayout = RoadLayout()
    conditions: Conditions = Conditions()
    actors: list[Actor]
    sequence: list[Step] = Field(default_factory=list)
    crash: Crash

    def actor(self, actor_id: str) -> Actor:
        for a in self.actors:
            if a.id == actor_id:
                return a
        raise KeyError(f"no actor {actor_id!r} (actors: {[a.id for a in self.actors]})")


class Evidence(_Strict):
    source: Source
    quote: str = Field("", description="the words of the text it came from (text), or why (inferred, default)")

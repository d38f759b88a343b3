"""What a simulated human may decide: one typed intent schema per role.

An LLM fills an intent; it never sets positions. Options are small categorical
adjustments relative to the persona's prior behaviour parameters (``as_usual`` keeps
them), which small models choose reliably. The twin's behaviour models (IDM, MOBIL,
gap acceptance, signal plans) execute the result, so every trajectory stays physically
valid whatever the model answers. Free text (``reason``, ``advisory``) is data: it is
truncated, stored and shown, never interpreted as an instruction.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

REASON_CHARS = 60  # longest reason kept
REASON_HINT = "a few words: why"
ADVISORY_CHARS = 200  # longest advisory broadcast
LANE_NAME_CHARS = 40  # longest lane name an operator may give

# intent -> behaviour parameter factors (relative to the persona's prior)
SPEED_FACTORS = {"slower": 0.85, "as_usual": 1.0, "faster": 1.12}
FOLLOWING_FACTORS = {"closer": 0.75, "as_usual": 1.0, "further": 1.4}
LANE_WISH = 0.6  # [m/s^2] MOBIL bonus toward the side a driver wants (never relaxes safety)
STAY_WISH = -0.6  # [m/s^2] the same against any change when a driver wants to stay
POLITENESS_SHIFT = 0.3  # yield raises, go lowers the MOBIL politeness
AMBER_DECEL = {"stop": 6.0, "go": 2.0}  # [m/s^2] braking a driver accepts to stop at amber
PACE_FACTORS = {"slower": 0.8, "as_usual": 1.0, "faster": 1.25}
WAIT_GAP_FACTOR = 1.5  # "wait": holds out for a gap this much longer than the usual one
DISTRACTED_GAP_FACTOR = 0.75  # a distracted pedestrian misjudges gaps as this much longer

SPEED_LIMIT_RANGE_KMH = (20, 130)  # a variable speed limit is clamped into this range
SPEED_LIMIT_ABSURD_KMH = 300  # beyond this (or negative) an answer is rejected, not clamped

Role = Literal["driver", "pedestrian", "operator"]
Adjust = Literal["slower", "as_usual", "faster"]


class Intent(BaseModel):
    """Base of all intents. Every field is required, so the JSON-schema grammar makes a model
    choose each one; ``reason`` (last, so it does not steer the choices) is the agent's own
    words: data, never instructions."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("reason", mode="before", check_fields=False)
    @classmethod
    def _short_reason(cls, value: object) -> str:
        return str(value if value is not None else "")[:REASON_CHARS]


class DriverIntent(Intent):
    """A driver's choice for the next seconds."""

    lane: Literal["as_usual", "stay", "left", "right"] = Field(description="lane wish")
    speed: Adjust = Field(description="desired speed relative to your usual")
    following: Literal["closer", "as_usual", "further"] = Field(description="distance to the car ahead")
    at_gap: Literal["go", "yield"] = Field(description="take or give way at a merge or gap")
    amber: Literal["stop", "go"] = Field(description="at an amber light")
    reason: str = Field(description=REASON_HINT, max_length=REASON_CHARS)

    def parameters(self, prior: dict[str, float]) -> dict[str, float]:
        """Vehicle behaviour parameters for this intent, from the persona's ``prior`` ones."""
        wish_left = {"left": LANE_WISH, "right": -LANE_WISH, "stay": STAY_WISH}.get(self.lane, 0.0)
        wish_right = {"right": LANE_WISH, "left": -LANE_WISH, "stay": STAY_WISH}.get(self.lane, 0.0)
        shift = POLITENESS_SHIFT if self.at_gap == "yield" else -POLITENESS_SHIFT
        follow = FOLLOWING_FACTORS[self.following]
        return {
            "speed_factor": _clip(prior["speed_factor"] * SPEED_FACTORS[self.speed], 0.5, 1.5),
            "headway": _clip(prior["headway"] * follow, 0.6, 3.5),
            "min_gap": _clip(prior["min_gap"] * follow, 1.0, 5.0),
            "politeness": _clip(prior["politeness"] + shift, 0.0, 1.0),
            "amber_decel": AMBER_DECEL[self.amber],
            "wish_left": wish_left,
            "wish_right": wish_right,
        }


class PedestrianIntent(Intent):
    """A pedestrian's choice at the curb."""

    action: Literal["cross", "wait", "jaywalk"] = Field(
        description="cross at the next safe gap, wait for a clearly larger gap, or cross against the signal")
    pace: Adjust = Field(description="walking speed relative to your usual")
    attention: Literal["attentive", "distracted"]
    reason: str = Field(description=REASON_HINT, max_length=REASON_CHARS)

    def parameters(self, prior: dict[str, float]) -> dict[str, float]:
        """Pedestrian behaviour parameters for this intent, from the persona's ``prior`` ones."""
        gap = prior["critical_gap"] * (WAIT_GAP_FACTOR if self.action == "wait" else 1.0)
        gap *= DISTRACTED_GAP_FACTOR if self.attention == "distracted" else 1.0
        return {
            "speed": _clip(prior["speed"] * PACE_FACTORS[self.pace], 0.5, 3.0),
            "critical_gap": _clip(gap, 2.0, 15.0),
            "ignores_signal": self.action == "jaywalk",
        }


class OperatorIntent(Intent):
    """A traffic operator's control actions; ``keep`` / 0 / empty mean no change."""

    signal_plan: Literal["keep", "longer_pedestrian_phase", "shorter_cycle", "longer_cycle", "default"]
    speed_limit_kmh: int = Field(description="variable speed limit in km/h, 0 for no change, -1 to lift it",
                                 ge=-1, le=SPEED_LIMIT_ABSURD_KMH)
    close_lane: str = Field(description="name of a lane to close, or empty", max_length=LANE_NAME_CHARS)
    open_lane: str = Field(description="name of a closed lane to reopen, or empty", max_length=LANE_NAME_CHARS)
    advisory: str = Field(description="short message broadcast to drivers, or empty", max_length=ADVISORY_CHARS)
    reason: str = Field(description=REASON_HINT, max_length=REASON_CHARS)

    @field_validator("advisory", "close_lane", "open_lane", mode="before")
    @classmethod
    def _short_text(cls, value: object, info: ValidationInfo) -> str:
        limit = ADVISORY_CHARS if info.field_name == "advisory" else LANE_NAME_CHARS
        return str(value if value is not None else "")[:limit]

    def clamped(self) -> tuple["OperatorIntent", list[str]]:
        """This intent with values clamped to what the twin can do, and the fields clamped."""
        lo, hi = SPEED_LIMIT_RANGE_KMH
        if self.speed_limit_kmh > 0 and not lo <= self.speed_limit_kmh <= hi:
            limit = min(max(self.speed_limit_kmh, lo), hi)
            return self.model_copy(update={"speed_limit_kmh": limit}), ["speed_limit_kmh"]
        return self, []


def default_operator_intent(reason: str = "no change") -> OperatorIntent:
    """An operator intent that changes nothing."""
    return OperatorIntent(signal_plan="keep", speed_limit_kmh=0, close_lane="", open_lane="", advisory="",
                          reason=reason)


INTENTS: dict[str, type[Intent]] = {"driver": DriverIntent, "pedestrian": PedestrianIntent, "operator": OperatorIntent}

# retiming factors per signal plan choice: (green factor, pedestrian walk factor)
SIGNAL_PLANS = {
    "default": (1.0, 1.0),
    "longer_pedestrian_phase": (1.0, 1.6),
    "shorter_cycle": (0.7, 1.0),
    "longer_cycle": (1.35, 1.0),
}


def _clip(value: float, low: float, high: float) -> float:
    return float(min(max(value, low), high))

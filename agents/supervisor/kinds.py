"""The one table of the supervisor's event kinds: for each, its category (hazard, violation,
incident, anomaly), how the rule-based triage reads it, the measure its ``worst`` value holds
and the mitigation it calls for. ``agents.supervisor.hazards`` takes the categories from here,
``agents.supervisor.triage`` the readings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Mitigation = Literal["none", "speed_advisory", "lower_speed_limit", "extend_all_red", "close_lane",
                     "dispatch_responder", "signal_maintenance"]
# when several events call for different mitigations, the first of these wins
MITIGATION_PRIORITY: tuple[Mitigation, ...] = ("dispatch_responder", "signal_maintenance", "close_lane",
                                               "extend_all_red", "lower_speed_limit", "speed_advisory", "none")


@dataclass(frozen=True)
class KindRule:
    """One kind of event: its category, how the template reads it and what it suggests against it."""

    category: str  # hazard, violation, incident or anomaly
    text: str | None  # what happened, with {a} and {b} for the first and second actor (None: no template reading)
    measure: str = ""  # the measure ``worst`` holds ("" when it holds none)
    unit: str = ""
    mitigation: Mitigation = "none"  # suggested from medium severity on (or always)
    high: Mitigation | None = None  # suggested at high severity instead, where it differs
    always: bool = False  # the mitigation applies at any severity
    roles: tuple[str, ...] = ("vehicle", "vehicle")  # what the actors are when the context does not say


KINDS: dict[str, KindRule] = {
    "crossing_conflict": KindRule("hazard", "{a} and {b} were on crossing paths through the junction",
                                  "time until both are in the junction", "s", mitigation="extend_all_red"),
    "ttc": KindRule("hazard", "{a} closed on {b}", "time to collision", "s", mitigation="speed_advisory"),
    "ttc_accel": KindRule("hazard", "{a} closed on {b}", "time to collision at current accelerations", "s",
                          mitigation="speed_advisory"),
    "drac": KindRule("hazard", "{a} had to brake hard behind {b}", "deceleration rate to avoid collision", "m/s^2",
                     mitigation="speed_advisory"),
    "headway": KindRule("hazard", "{a} followed {b} too closely", "time headway", "s", mitigation="speed_advisory"),
    "pet": KindRule("hazard", "{a} and {b} passed the same conflict point", "post-encroachment time", "s",
                    mitigation="extend_all_red"),
    "pedestrian_conflict": KindRule("hazard", "{a} came close to {b}", "time to reach the crossing", "s", mitigation="lower_speed_limit",
                                    roles=("vehicle", "pedestrian")),
    "fail_to_yield": KindRule("violation", "{a} failed to yield to {b}", "speed", "m/s", mitigation="lower_speed_limit",
                              roles=("vehicle", "pedestrian")),
    "red_light": KindRule("violation", "{a} ran a red light", mitigation="extend_all_red", always=True),
    "speeding": KindRule("violation", "{a} was speeding", "excess over the limit (fraction)", "", mitigation="speed_advisory"),
    "jaywalking": KindRule("violation", "{a} crossed against the signal or away from a crossing", mitigation="lower_speed_limit",
                           roles=("pedestrian",)),
    "cut_in": KindRule("hazard", "{a} cut in front of {b}", "time to collision at constant speeds when cutting in", "s",
                       mitigation="speed_advisory"),
    "unsafe_lane_change": KindRule("violation", "{a} changed lanes unsafely in front of {b}", "new follower's time headway", "s",
                                   mitigation="speed_advisory"),
    "collision": KindRule("incident", "{a} collided with {b}", mitigation="dispatch_responder", always=True,
                          roles=("vehicle", "road user")),
    "off_road": KindRule("incident", "{a} left the road", mitigation="dispatch_responder", always=True),
    "behaviour": KindRule("anomaly", "{a} accelerated unlike its behaviour model predicts", "anomaly score (1 = alarm)", "",
                          mitigation="speed_advisory"),
    "pedestrian_stopped": KindRule("anomaly", "{a} stopped in the carriageway", "anomaly score (1 = alarm)", "", mitigation="speed_advisory",
                                   high="close_lane", roles=("pedestrian",)),
    "signal_stuck": KindRule("anomaly", "the signal controller stopped advancing{interval}", "anomaly score (1 = alarm)", "",
                             mitigation="signal_maintenance", always=True, roles=()),
    "signal_conflict": KindRule("anomaly", "conflicting signal groups showed green together{interval}",
                                mitigation="signal_maintenance", always=True, roles=()),
    # a vehicle's own sensor (an actor is named) or a roadside detector (none is)
    "sensor": KindRule("anomaly", "the forward sensor of {a} misreports the gap ahead", "anomaly score (1 = alarm)", "",
                       mitigation="speed_advisory", roles=("vehicle",)),
}
ROADSIDE_SENSOR = KindRule("anomaly", "a roadside detector misreports traffic", "error", "", mitigation="signal_maintenance",
                           always=True, roles=())


#: category of every hazard, violation and incident kind (anomaly flags carry their own)
CATEGORY = {kind: rule.category for kind, rule in KINDS.items() if rule.category != "anomaly"}

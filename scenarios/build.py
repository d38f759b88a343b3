"""From a :class:`scenarios.spec.CrashSpec` to a runnable scenario of the twin (a scenario mapping,
written as YAML), with the uncertain parameters the reproduction search may vary.

Each crash type has a layout of the twin's own road model that can hold it:

- ``rear_end``: a straight (or curved) one-way road with the report's lanes; the struck vehicle
  ahead (stopped: it brakes to a standstill and stays; slowing: it brakes hard at ``brake_at_s``),
  the striking one behind at ``gap_m`` with a late reaction (``inattention`` for ``glance_s``);
- ``sideswipe``: a road of at least two lanes; the striking vehicle changes lanes at once, without
  looking, into the lane of the struck one, ``offset_m`` beside it;
- ``angle``: the four-arm signalised intersection; the struck vehicle comes on green from the
  north arm, the striking one from a crossing arm (or the opposite arm when one turns left) and
  ignores the red (``runs_signal``) when the report says so or the control is a signal, and does
  not look while it crosses (``inattention`` from ``glance_at_s`` for ``glance_s``); stop or
  yield control and no control are the same junction with its heads dark from the start
  (drivers yield to vehicles already in it only); arrival times follow from ``before_m``;
- ``pedestrian``: a two-lane street with a crosswalk; the pedestrian steps off the curb
  accepting any gap (``critical_gap_s`` 0, a dart-out) and the vehicle comes at ``before_m``;
- ``head_on`` and ``single_vehicle`` are not buildable in the twin (no driving in an opposing
  lane, no loss of control): :func:`unsupported` says so and the scenario holds the road users
  only, so the result reports the crash not reproduced rather than staging something else.

Staged vehicles keep the lanes the report puts them in (``keep_lane``): only a scripted
``lane_change`` moves them. Conditions map to the twin: tyre-road friction from the surface (wet 0.5, snow 0.25, ice 0.12);
reaction time from light (dark +0.3 s, dusk +0.15 s), fog (+0.2 s), impairment (alcohol +0.5 s,
drugs +0.4 s, fatigue +0.6 s) on top of the persona's. People the report describes take a persona
from the library (distracted: ``phone_distracted``; in a hurry: ``commuter_late``; under 25:
``aggressive_young``; 70 and over: ``cautious_elderly``; a truck: ``truck_driver``; a child on
foot: ``child_to_school``; an elderly pedestrian: ``elderly_pedestrian``), whose traits set their
behaviour parameters (``agents.humans.persona.Persona.driver_parameters``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agents.humans.persona import get_persona
from envs.actors import TYPE_INDEX, VEHICLE_TYPES
from scenarios.spec import Actor, CrashSpec

FRICTION = {"dry": 1.0, "wet": 0.5, "snow": 0.25, "ice": 0.12}  # tyre-road friction by surface
LIGHT_REACTION_S = {"daylight": 0.0, "dawn_dusk": 0.15, "dark_lit": 0.2, "dark_unlit": 0.3}  # [s] added
FOG_REACTION_S = 0.2  # [s]
IMPAIRMENT_REACTION_S = {"none": 0.0, "alcohol": 0.5, "drugs": 0.4, "fatigue": 0.6}  # [s]
DEFAULT_LIMIT_MPS = {"none": 25.0, "four_way": 13.9, "t_junction": 13.9, "driveway": 13.9, "roundabout": 11.1}
ARM_OF = {"north": "S", "south": "N", "east": "W", "west": "E"}  # a vehicle heading north comes from the south arm
DURATION_S = 30.0  # [s] a reconstructed crash's scenario length
UNSTATED_SPEED_HIGH = 1.5  # an unstated speed is searched up to this times the limit (over 1.3x is flagged)
SUPPORTED = ("rear_end", "sideswipe", "angle", "pedestrian")



@dataclass(frozen=True)
class Knob:
    """An uncertain parameter the search may vary: its nominal value and bounds."""

    nominal: float
    low: float
    high: float
    unit: str = ""


def unsupported(spec: CrashSpec) -> str | None:
    """Why the twin cannot stage this crash (None: it can)."""
    kind = spec.crash.type
    if kind == "head_on":
        return "the twin's drivers never enter an opposing lane, so a head-on crash cannot be staged"
    if kind == "single_vehicle":
        return "the twin's drivers never lose control, so a road departure cannot be staged"
    if kind not in SUPPORTED:
        return f"crash type {kind!r} has no layout"
    roles = {spec.actor(spec.crash.striking).kind, spec.actor(spec.crash.struck).kind}
    if kind == "pedestrian" and ("pedestrian" not in roles or len(roles) != 2):
        return "a pedestrian crash needs a vehicle and a pedestrian, one striking the other"
    if kind != "pedestrian" and "pedestrian" in roles:
        return f"a {kind.replace('_', '-')} crash is between vehicles, but a pedestrian is named in it"
    return None


def _length(actor: Actor) -> float:
    """[m] the twin's vehicle for this road user (a motorcycle is staged as a car)."""
    return VEHICLE_TYPES[TYPE_INDEX.get(actor.kind, TYPE_INDEX["car"])].length


def _speed(actor: Actor, limit: float) -> Knob:
    """An actor's speed [m/s]: the stated one (its range, or +-10%), else around the limit."""
    if actor.kind == "pedestrian":  # a pedestrian in a crash was on the move (walking, running, darting)
        stated = actor.speed_mps if actor.speed_mps and actor.speed_mps <= 8.0 else None
        if stated:
            return Knob(stated, 0.9 * stated, 1.1 * stated, "m/s")
        persona = persona_for(actor)
        walk = get_persona(persona).pedestrian_parameters()["speed"] if persona else 1.4
        return Knob(walk, min(1.0, walk), 3.5, "m/s")
    if actor.manoeuvre == "stopped":
        return Knob(0.0, 0.0, 0.0, "m/s")
    if actor.speed_low_mps is not None and actor.speed_high_mps is not None:
        return Knob(0.5 * (actor.speed_low_mps + actor.speed_high_mps), actor.speed_low_mps, actor.speed_high_mps, "m/s")
    if actor.speed_mps is not None:
        return Knob(actor.speed_mps, 0.9 * actor.speed_mps, 1.1 * actor.speed_mps, "m/s")
    low = 0.3 if actor.manoeuvre in ("turning_left", "turning_right", "slowing") else 0.7
    return Knob(limit, low * limit, UNSTATED_SPEED_HIGH * limit, "m/s")


def knobs(spec: CrashSpec) -> dict[str, Knob]:
    """The uncertain parameters of ``spec``'s scenario, nominal values from the text."""
    limit = spec.road.speed_limit_mps or DEFAULT_LIMIT_MPS[spec.road.junction]
    striking, struck = spec.actor(spec.crash.striking), spec.actor(spec.crash.struck)
    out = {"striking_speed": _speed(striking, limit), "struck_speed": _speed(struck, limit)}
    kind = spec.crash.type
    distracted = striking.distracted or striking.impairment != "none"
    if kind == "rear_end":
        out["gap_m"] = Knob(40.0, 8.0, 150.0, "m")  # bumper to bumper
        out["glance_s"] = Knob(2.5 if distracted else 1.0, 0.0, 5.0 if distracted else 2.5, "s")
        out["glance_at_s"] = Knob(1.0, 0.0, 6.0, "s")
        out["brake_at_s"] = Knob(2.0, 0.0, 8.0, "s")
        out["struck_decel"] = Knob(4.0, 2.0, 8.0, "m/s^2")
    elif kind == "sideswipe":
        reach = 0.5 * (_length(striking) + _length(struck))
        out["offset_m"] = Knob(0.0, -reach - 3.0, reach + 3.0, "m")  # the struck one's middle ahead (+) or behind
        out["change_at_s"] = Knob(2.0, 0.5, 6.0, "s")
    elif kind == "angle":
        out["striking_before_m"] = Knob(60.0, 10.0, 150.0, "m")
        out["struck_before_m"] = Knob(60.0, 10.0, 150.0, "m")
        out["glance_at_s"] = Knob(1.0, 0.0, 5.0, "s")  # the striking driver does not look while crossing
        out["glance_s"] = Knob(3.0, 0.0, 6.0, "s")
    elif kind == "pedestrian":
        out["before_m"] = Knob(40.0, 8.0, 120.0, "m")
        out["to_curb_m"] = Knob(3.0, 0.0, 10.0, "m")
        out["glance_s"] = Knob(1.5 if distracted else 0.0, 0.0, 4.0 if distracted else 1.5, "s")
    return out


def nominal(space: dict[str, Knob]) -> dict[str, float]:
    return {name: knob.nominal for name, knob in space.items()}


def persona_for(actor: Actor) -> str | None:
    """The library persona closest to how the report describes this road user (None: nothing said)."""
    if actor.kind == "pedestrian":
        if actor.age_years is not None and actor.age_years < 14:
            return "child_to_school"
        if actor.age_years is not None and actor.age_years >= 70:
            return "elderly_pedestrian"
        return None
    if actor.distracted:
        return "phone_distracted"
    if actor.hurry:
        return "commuter_late"
    if actor.age_years is not None and actor.age_years < 25:
        return "aggressive_young"
    if actor.age_years is not None and actor.age_years >= 70:
        return "cautious_elderly"
    if actor.kind in ("truck", "bus"):
        return "truck_driver"
    return None


def _driver(actor: Actor, spec: CrashSpec) -> tuple[dict[str, float], list[str]]:
    """Behaviour parameters of a driver (persona, conditions) and notes on where they came from."""
    params: dict[str, float] = {}
    notes = []
    persona = persona_for(actor)
    if persona:
        params = get_persona(persona).driver_parameters()
        notes.append(f"{actor.id}: persona {persona}")
    reaction = params.get("reaction_time", 0.4)
    extra = LIGHT_REACTION_S[spec.conditions.light] + IMPAIRMENT_REACTION_S[actor.impairment]
    extra += FOG_REACTION_S if spec.conditions.weather == "fog" else 0.0
    if extra:
        notes.append(f"{actor.id}: reaction time +{extra:.2f} s ({spec.conditions.light}, {spec.conditions.weather}, "
                     f"impairment {actor.impairment})")
    params["reaction_time"] = min(reaction + extra, 5.0)
    return params, notes


def _vehicle(actor: Actor, spec: CrashSpec, lane: str, speed: float, **place: Any) -> tuple[dict[str, Any], list[str]]:
    params, notes = _driver(actor, spec)
    entry: dict[str, Any] = {"kind": "vehicle", "name": actor.id, "vtype": actor.kind if actor.kind in ("truck", "bus")
                             else "car", "lane": lane, "speed_mps": round(float(speed), 3), "keep_lane": True, **place}
    names = {"speed_factor": "speed_factor", "headway": "headway_s", "min_gap": "min_gap_m",
             "reaction_time": "reaction_time_s", "compliance": "compliance"}
    for key, value in params.items():
        if key in names:
            entry[names[key]] = round(float(value), 3)
    return entry, notes


def build(spec: CrashSpec, values: dict[str, float] | None = None, name: str = "crash", seed: int = 0,
          description: str = "") -> tuple[dict[str, Any], list[str]]:
    """The scenario (a mapping ``twin.scenario.load_scenario`` reads) staging ``spec`` with the
    uncertain parameters at ``values`` (default: nominal), and notes on how it was built.
    Actor ids in the scenario: the striking one is 0, the struck one 1, the rest after."""
    space = knobs(spec) if not unsupported(spec) else {}
    v = {**nominal(space), **(values or {})}
    limit = spec.road.speed_limit_mps or DEFAULT_LIMIT_MPS[spec.road.junction]
    scenario: dict[str, Any] = {
        "name": name, "description": description[:300], "seed": seed, "duration_s": DURATION_S,
        "road_friction": FRICTION[spec.conditions.surface],
        "demand": {"vehicles": 0, "vehicles_per_hour": 0.0, "ramp_vehicles_per_hour": 0.0, "pedestrians_per_hour": 0.0},
        "ego": {"controlled": 0}, "actors": [], "faults": [],
    }
    notes = [f"road friction {FRICTION[spec.conditions.surface]} ({spec.conditions.surface})"]
    striking, struck = spec.actor(spec.crash.striking), spec.actor(spec.crash.struck)
    why = unsupported(spec)
    kind = spec.crash.type
    actors, faults = scenario["actors"], scenario["faults"]
    if why or kind in ("rear_end", "sideswipe"):
        lanes = max(spec.road.lanes_per_direction, 2 if kind == "sideswipe" else 1)
        curve = 25.0 if spec.road.curve else 0.0
        scenario["network"] = {"kind": "highway", "lanes": lanes, "length_m": 1200.0, "on_ramp": False,
                               "speed_limit_mps": round(limit, 3), "curve_start_m": 450.0, "curve_angle_deg": curve,
                               "curve_radius_m": 400.0}
        if why:
            notes.append(f"not staged: {why}")
            for k, actor in enumerate(a for a in spec.actors if a.kind != "pedestrian"):
                entry, more = _vehicle(actor, spec, "main_0", _speed(actor, limit).nominal, s_m=100.0 + 60.0 * k)
                actors.append(entry)
                notes += more
            return scenario, notes
        if kind == "rear_end":  # both in the lane the report gives either of them (lanes count from the right)
            lane = f"main_{lanes - min(struck.lane or striking.lane or 1, lanes)}"
            centres = 0.5 * (_length(striking) + _length(struck))
            entry, more = _vehicle(striking, spec, lane, v["striking_speed"], s_m=300.0 - v["gap_m"] - centres)
            actors.append(entry)
            notes += more
            entry, more = _vehicle(struck, spec, lane, v["struck_speed"], s_m=300.0)
            actors.append(entry)
            notes += more
            stopped = struck.manoeuvre == "stopped" or v["struck_speed"] < 0.5
            faults.append({"kind": "hard_brake", "actor": 1, "at_s": 0.0 if stopped else round(v["brake_at_s"], 3),
                           "decel_mps2": round(v["struck_decel"], 3)})
            if v["glance_s"] > 0.05:
                faults.append({"kind": "inattention", "actor": 0, "at_s": round(v["glance_at_s"], 3),
                               "duration_s": round(v["glance_s"], 3)})
        else:
            def beside(lane: int) -> int:
                return lane + 1 if lane < lanes else lane - 1

            from_lane = min(striking.lane or (beside(struck.lane) if struck.lane else 1), lanes)
            to_lane = min(struck.lane or beside(from_lane), lanes)
            if abs(from_lane - to_lane) != 1:
                to_lane = beside(from_lane)
            direction = "left" if to_lane > from_lane else "right"
            entry, more = _vehicle(striking, spec, f"main_{lanes - from_lane}", v["striking_speed"], s_m=300.0)
            actors.append(entry)
            notes += more
            entry, more = _vehicle(struck, spec, f"main_{lanes - to_lane}", v["struck_speed"], s_m=300.0 + v["offset_m"])
            actors.append(entry)
            notes += more
            faults.append({"kind": "lane_change", "actor": 0, "at_s": round(v["change_at_s"], 3), "direction": direction})
    elif kind == "angle":
        scenario["network"] = {"kind": "intersection", "speed_limit_mps": round(limit, 3), "arm_length_m": 250.0}
        arms = _angle_arms(striking, struck)
        for actor, arm, before in ((striking, arms[0], v["striking_before_m"]), (struck, arms[1], v["struck_before_m"])):
            move = {"turning_left": "left", "turning_right": "right"}.get(actor.manoeuvre, "through")
            entry, more = _vehicle(actor, spec, f"{arm}_in_{move}", v["striking_speed" if actor is striking else
                                                                         "struck_speed"], before_end_m=round(before, 3))
            actors.append(entry)
            notes += more
        if spec.road.control == "signal" or spec.road.junction == "none":
            runner = next((s.actor for s in spec.sequence if s.action in ("ran_signal", "ran_stop_sign")
                           and s.actor in (striking.id, struck.id)), striking.id)
            faults.append({"kind": "runs_signal", "actor": 0 if runner == striking.id else 1, "at_s": 0.0})
            notes.append(f"{runner} runs the red light" + ("" if any(s.action == "ran_signal" and s.actor == runner
                                                                     for s in spec.sequence)
                                                           else " (inferred: the striking vehicle at a signal)"))
        else:
            faults.append({"kind": "signal_dark", "at_s": 0.0})
            notes.append(f"{spec.road.control} control: the junction's signals are dark from the start (unsignalised)")
        if v["glance_s"] > 0.05:
            faults.append({"kind": "inattention", "actor": 0, "at_s": round(v["glance_at_s"], 3),
                           "duration_s": round(v["glance_s"], 3)})
    elif kind == "pedestrian":
        scenario["network"] = {"kind": "crosswalk", "speed_limit_mps": round(limit, 3), "length_m": 400.0,
                               "crosswalk_at_m": 200.0, "school_zone_limit_mps": round(limit, 3)}
        vehicle, person = (striking, struck) if struck.kind == "pedestrian" else (struck, striking)
        entry, more = _vehicle(vehicle, spec, "eastbound", v["striking_speed" if vehicle is striking else "struck_speed"],
                               s_m=round(200.0 - v["before_m"], 3))
        actors.append(entry)
        notes += more
        walker: dict[str, Any] = {"kind": "pedestrian", "name": person.id, "route": 0, "to_curb_m": round(v["to_curb_m"], 3),
                                  "speed_mps": round(v["struck_speed" if person is struck else "striking_speed"], 3),
                                  "critical_gap_s": 0.0, "compliance": 0.0}
        persona = persona_for(person)
        if persona:
            notes.append(f"{person.id}: persona {persona} (its walking speed is the search's starting point; "
                         "it steps out accepting any gap)")
        actors.append(walker)
        if v["glance_s"] > 0.05:
            faults.append({"kind": "inattention", "actor": 0, "at_s": 0.0, "duration_s": round(v["glance_s"], 3)})
    return scenario, notes


def _angle_arms(striking: Actor, struck: Actor) -> tuple[str, str]:
    """Arms of the intersection for the striking and struck vehicles: the struck one from the
    north (green at the start), the striking one from a crossing arm, or from the opposite arm when
    either turns left across the other's path; stated directions keep their relation."""
    left_turn = "turning_left" in (striking.manoeuvre, struck.manoeuvre)
    if striking.direction != "unknown" and struck.direction != "unknown":
        order = ["N", "E", "S", "W"]
        a, b = order.index(ARM_OF[striking.direction]), order.index(ARM_OF[struck.direction])
        turn = (a - b) % 4
        if turn:
            return order[turn], "N"
    return ("S" if left_turn else "E"), "N"

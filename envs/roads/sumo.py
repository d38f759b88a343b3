"""SUMO's files in: networks (``.net.xml``), traffic-light programs in additional files,
demand (``.rou.xml``) and configurations (``.sumocfg``), read with ``sumolib`` into
:mod:`envs.roads.model`; OpenStreetMap and OpenDRIVE maps through SUMO's ``netconvert``.

Every problem is a :class:`SumoInputError` naming the file, the element and what is wrong:
a file that is missing or not XML, a route over edges that do not exist or do not connect,
a vehicle class an edge forbids, a program for a traffic light the network lacks. What the
files hold that the twin does not model is listed in ``unsupported`` when they are read.

``sumolib`` comes from PyPI; ``netconvert`` and the networks shipped under
``sumo/tools/game/`` come with the ``eclipse-sumo`` wheel (``pip install -e ".[sumo]"``).
"""

from __future__ import annotations

import gzip
import importlib.util
import math
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
import xml.sax
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from envs.roads.model import (IDM_MODELS, INTERNAL, KRAUSS_MODELS, Demand, Departure, Detector, Junction, Link,
                              Phase, RoadEdge, RoadLane, RoadNetwork, SignalProgram, VehicleType)

# junction types the twin's road model is built for; others are listed as unsupported
JUNCTION_TYPES = {"traffic_light", "traffic_light_unregulated", "priority", "priority_stop", "right_before_left",
                  "left_before_right", "allway_stop", "zipper", "dead_end", "unregulated", INTERNAL}
RAIL_CLASSES = {"rail", "rail_urban", "rail_electric", "rail_fast", "tram", "subway", "cable_car"}
ROAD_CLASSES = {"passenger", "private", "taxi", "bus", "coach", "delivery", "truck", "trailer", "emergency",
                "authority", "army", "vip", "motorcycle", "moped", "evehicle", "hov", "custom1", "custom2"}
STATIC_PROGRAMS = {"static"}
DEFAULT_VTYPE = "DEFAULT_VEHTYPE"
DEFAULT_VTYPES = {  # SUMO's built-in types: class and the sizes [m] and top speed [m/s] that differ from a car's
    DEFAULT_VTYPE: ("passenger", {}),
    "DEFAULT_BIKETYPE": ("bicycle", {"length": 1.6, "min_gap": 0.5, "max_speed": 5.56}),
    "DEFAULT_PEDTYPE": ("pedestrian", {"length": 0.215, "min_gap": 0.25, "max_speed": 10.44}),
    "DEFAULT_TAXITYPE": ("taxi", {}),
    "DEFAULT_RAILTYPE": ("rail", {"length": 67.0, "max_speed": 44.44}),
    "DEFAULT_CONTAINERTYPE": ("ignoring", {}),
}
CLASS_SIZES = {  # SUMO's defaults per vehicle class where a vType gives no length / minGap / maxSpeed
    "truck": {"length": 7.1, "max_speed": 36.11}, "trailer": {"length": 16.5, "max_speed": 36.11},
    "bus": {"length": 12.0, "max_speed": 27.78}, "coach": {"length": 14.0, "max_speed": 27.78},
    "motorcycle": {"length": 2.2, "max_speed": 55.55}, "moped": {"length": 2.1, "max_speed": 12.5},
    "bicycle": {"length": 1.6, "min_gap": 0.5, "max_speed": 5.56}, "delivery": {"length": 6.5},
}
NETWORK_SUFFIXES = (".net.xml", ".net.xml.gz")
FLOW_END_S = 86400.0  # [s] SUMO's default end of a flow
MAP_CONVERTERS = {".osm": "--osm-files", ".xml": "--osm-files", ".xodr": "--opendrive-files"}


class SumoInputError(ValueError):
    """A SUMO input that cannot be used; the message names the file, element and problem."""


def sumo_time(text: str) -> float:
    """A SUMO time value in seconds: a number of seconds, or a clock time ``h:m:s`` or
    ``d:h:m:s`` (SUMO accepts both wherever it reads a time); a ValueError otherwise."""
    parts = text.strip().split(":")
    if len(parts) == 1:
        return float(parts[0])
    if len(parts) not in (3, 4):
        raise ValueError(f"not a time: {text!r}")
    seconds = 0.0
    for value, unit in zip(reversed(parts), (1.0, 60.0, 3600.0, 86400.0)):
        seconds += float(value) * unit
    return seconds


# ---- where SUMO is ------------------------------------------------------------------------------
def sumo_home() -> Path | None:
    """SUMO's installation: the ``eclipse-sumo`` wheel's package folder, else ``$SUMO_HOME``."""
    spec = importlib.util.find_spec("sumo")
    if spec is not None and spec.submodule_search_locations:
        home = Path(list(spec.submodule_search_locations)[0])
        if (home / "bin").is_dir():
            return home
    env = os.environ.get("SUMO_HOME")
    return Path(env) if env and Path(env).is_dir() else None


def shipped_scenarios() -> Path | None:
    """``sumo/tools/game/`` of the ``eclipse-sumo`` wheel: real networks with demand."""
    home = sumo_home()
    folder = home / "tools" / "game" if home else None
    return folder if folder is not None and folder.is_dir() else None


def sumo_binary(name: str) -> Path:
    """A SUMO program (``netconvert``, ``sumo``, ``duarouter``), or a clear error."""
    home = sumo_home()
    for candidate in ([home / "bin" / name] if home else []) + ([Path(p)] if (p := shutil.which(name)) else []):
        if candidate.exists():
            return candidate
    raise SumoInputError(f"{name} is not installed: pip install -e '.[sumo]' (the eclipse-sumo wheel ships it)")


def run_program(name: str, args: list[str], what: str | Path, makes: Path) -> None:
    """Run SUMO's program ``name`` with ``args``; a non-zero exit, or no ``makes`` file
    afterwards, is an error about ``what`` quoting the program's last lines."""
    done = subprocess.run([str(sumo_binary(name)), *args], capture_output=True, text=True)
    if done.returncode != 0 or not makes.exists():
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise SumoInputError(f"{what}: {name} failed: {' | '.join(lines[-5:]) or done.returncode}")


def _sumolib() -> Any:
    try:
        import sumolib
    except ImportError:  # pragma: no cover - depends on the install
        raise SumoInputError("reading SUMO files needs sumolib: pip install -e '.[sumo]'") from None
    return sumolib


def _existing(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise SumoInputError(f"{path}: {what} not found")
    return path


def _xml(path: Path) -> ET.Element:
    """The root element of an XML file (gzipped when it ends in .gz, as SUMO reads it)."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path) as fh:
                return ET.parse(fh).getroot()
        return ET.parse(path).getroot()
    except (OSError, EOFError) as exc:
        raise SumoInputError(f"{path}: cannot be read: {exc}") from None
    except ET.ParseError as exc:
        line, column = exc.position
        raise SumoInputError(f"{path}: line {line}, column {column}: not well-formed XML") from None


# ---- networks -----------------------------------------------------------------------------------
def read_network(path: str | Path, additional: list[str | Path] | tuple = ()) -> RoadNetwork:
    """The network of a ``.net.xml`` with the traffic-light programs of ``additional`` files
    (a ``<tlLogic>`` there replaces the network's program of that light, as in SUMO)."""
    network, _ = read_network_and_sumolib(path, additional)
    return network


def read_network_and_sumolib(path: str | Path, additional: list[str | Path] | tuple = ()) -> tuple[RoadNetwork, Any]:
    """:func:`read_network` and sumolib's own network object (for routing trips)."""
    path = _existing(path, "network file")
    sumolib = _sumolib()
    try:
        net = sumolib.net.readNet(str(path), withInternal=True, withPrograms=True, withPedestrianConnections=True)
    except xml.sax.SAXParseException as exc:
        raise SumoInputError(f"{path}: line {exc.getLineNumber()}, column {exc.getColumnNumber()}: "
                             f"not well-formed XML ({exc.getMessage()})") from None
    except (KeyError, ValueError, AttributeError, TypeError) as exc:
        raise SumoInputError(f"{path}: not a SUMO network ({type(exc).__name__}: {exc})") from None
    if not net.getEdges():
        raise SumoInputError(f"{path}: no <edge> in the file: not a SUMO network")
    unsupported: list[str] = []
    edges, lanes = _edges_and_lanes(net, unsupported)
    links = _links(net, edges)
    junctions = _junctions(net, unsupported)
    programs = {tl.getID(): _program(tl) for tl in net.getTrafficLights() if tl.getPrograms()}
    for extra in additional:
        programs.update(read_signal_programs(extra, set(programs) | {tl.getID() for tl in net.getTrafficLights()}))
    for program in programs.values():
        if program.type not in STATIC_PROGRAMS:
            unsupported.append(f"traffic light {program.tls!r}: program {program.program!r} is {program.type}; "
                               "it runs as its base plan (fixed phase durations)")
    return RoadNetwork(source=str(path), edges=edges, lanes=lanes, links=links, junctions=junctions,
                       programs=programs, unsupported=unsupported), net


def _edges_and_lanes(net: Any, unsupported: list[str]) -> tuple[dict[str, RoadEdge], dict[str, RoadLane]]:
    edges: dict[str, RoadEdge] = {}
    lanes: dict[str, RoadLane] = {}
    rail = bicycle = 0
    for e in net.getEdges(withInternal=True):
        function = e.getFunction() or ""
        ids = []
        for lane in e.getLanes():
            allowed = frozenset(lane.getPermissions())
            shape = np.asarray(lane.getShape(), dtype=float)[:, :2]
            lanes[lane.getID()] = RoadLane(id=lane.getID(), edge=e.getID(), index=lane.getIndex(), shape=shape,
                                           width=float(lane.getWidth()), speed=float(lane.getSpeed()),
                                           length=float(lane.getLength()), allowed=allowed)
            ids.append(lane.getID())
            if not function and allowed and allowed <= RAIL_CLASSES:
                rail += 1
            elif not function and allowed == frozenset({"bicycle"}):
                bicycle += 1
        from_node, to_node = e.getFromNode(), e.getToNode()
        edges[e.getID()] = RoadEdge(id=e.getID(), from_junction=from_node.getID() if from_node else "",
                                    to_junction=to_node.getID() if to_node else "", lanes=ids, function=function,
                                    priority=-1 if e.getPriority() is None else int(e.getPriority()),
                                    name=e.getName() or "")
    if rail:
        unsupported.append(f"{rail} rail or tram lanes: rail traffic is not modelled")
    if bicycle:
        unsupported.append(f"{bicycle} bicycle lanes: bicycles on their own lanes are not modelled")
    return edges, lanes


def _links(net: Any, edges: dict[str, RoadEdge]) -> list[Link]:
    links = []
    for e in net.getEdges(withInternal=False):
        if edges[e.getID()].function:
            continue
        for lane in e.getLanes():
            for c in lane.getOutgoing():
                to_lane = c.getToLane()
                if edges[to_lane.getEdge().getID()].function:
                    continue  # towards a walking area
                junction = c.getJunction()
                links.append(Link(from_lane=lane.getID(), to_lane=to_lane.getID(), via=c.getViaLaneID() or "",
                                  direction=c.getDirection(), state=c.getState() or "",
                                  junction=junction.getID() if junction is not None else "",
                                  index=int(c.getJunctionIndex()) if c.getJunctionIndex() is not None else -1,
                                  tls=c.getTLSID() or "", tl_index=int(c.getTLLinkIndex())))
    return links


def _junctions(net: Any, unsupported: list[str]) -> dict[str, Junction]:
    junctions = {}
    other_types: dict[str, int] = {}
    for node in net.getNodes():
        kind = node.getType()
        if kind not in JUNCTION_TYPES:
            other_types[kind] = other_types.get(kind, 0) + 1
        foes, response = {}, {}
        for index, bits in getattr(node, "_foes", {}).items():  # sumolib keeps <request> bit strings there
            foes[index] = frozenset(j for j in range(len(bits)) if node.areFoes(index, j))
        for index, bits in getattr(node, "_prohibits", {}).items():
            response[index] = frozenset(j for j, bit in enumerate(reversed(bits)) if bit == "1")
        shape = np.asarray(node.getShape() or [node.getCoord()], dtype=float)[:, :2]
        x, y = node.getCoord()[:2]
        junctions[node.getID()] = Junction(
            id=node.getID(), type=kind, x=float(x), y=float(y), shape=shape,
            incoming_lanes=[lane.getID() for e in node.getIncoming() for lane in e.getLanes()],
            internal_lanes=list(node.getInternal()), foes=foes, response=response)
    for kind, n in sorted(other_types.items()):
        unsupported.append(f"{n} junction(s) of type {kind!r}: not modelled (vehicles pass them unregulated)")
    return junctions


def _program(tl: Any) -> SignalProgram:
    programs = tl.getPrograms()
    program = programs.get("0") or next(iter(programs.values()))
    return SignalProgram(tls=tl.getID(), program=str(program._id) if hasattr(program, "_id") else "0",
                         type=str(program.getType()), offset=float(program.getOffset()),
                         phases=[Phase(duration=float(p.duration), state=p.state,
                                       min_duration=_number(p.minDur), max_duration=_number(p.maxDur),
                                       name=p.name or "") for p in program.getPhases()])


def _number(value: Any) -> float | None:
    try:
        return None if value is None or float(value) < 0 else float(value)
    except (TypeError, ValueError):
        return None


def read_signal_programs(path: str | Path, known: set[str]) -> dict[str, SignalProgram]:
    """The ``<tlLogic>`` programs of an additional file, keyed by traffic light; a program
    for a light that ``known`` lacks is an error."""
    path = _existing(path, "additional file")
    programs = {}
    for element in _xml(path).iter("tlLogic"):
        tls = element.get("id", "")
        where = f"{path}: <tlLogic id={tls!r}>"
        if tls not in known:
            raise SumoInputError(f"{where}: the network has no traffic light {tls!r}")
        phases = []
        for p in element.iter("phase"):
            try:
                phases.append(Phase(duration=float(p.get("duration", "")), state=p.get("state", ""),
                                    min_duration=_number(p.get("minDur")), max_duration=_number(p.get("maxDur")),
                                    name=p.get("name", "")))
            except ValueError:
                raise SumoInputError(f"{where}: a <phase> without a numeric duration") from None
        if not phases:
            raise SumoInputError(f"{where}: no <phase>")
        try:
            offset = float(element.get("offset", 0))
        except ValueError:
            raise SumoInputError(f"{where}: offset={element.get('offset')!r} is not a time in seconds") from None
        programs[tls] = SignalProgram(tls=tls, program=element.get("programID", "0"),
                                      type=element.get("type", "static"), offset=offset, phases=phases)
    return programs


# ---- detectors ----------------------------------------------------------------------------------
LOOP_TAGS = ("inductionLoop", "e1Detector")
AREA_TAGS = ("laneAreaDetector", "e2Detector")


def read_detectors(path: str | Path, network: RoadNetwork) -> list[Detector]:
    """The induction loops and lane-area detectors of an additional file; a lane the network
    lacks, a position off the lane or a period that is not a positive time is an error."""
    path = _existing(path, "additional file")
    found = []
    for element in _xml(path):
        if element.tag not in LOOP_TAGS + AREA_TAGS:
            continue
        ident, lane_id = element.get("id", ""), element.get("lane", "")
        where = f"{path}: <{element.tag} id={ident!r}>"
        lane = network.lanes.get(lane_id)
        if lane is None:
            raise SumoInputError(f"{where}: lane {lane_id!r} is not in the network")
        try:
            period = float(element.get("period") or element.get("freq") or 900.0)
            pos = float(element.get("pos", 0.0))
            pos = lane.length + pos if pos < 0 else pos
            if element.tag in AREA_TAGS:
                if element.get("endPos") is not None:
                    end = float(element.get("endPos", 0.0))
                    end = lane.length + end if end < 0 else end
                else:
                    end = pos + float(element.get("length", lane.length - pos))
            else:
                end = pos
        except ValueError:
            raise SumoInputError(f"{where}: pos, endPos, length and period must be numbers") from None
        if period <= 0:
            raise SumoInputError(f"{where}: period={period:g} is not a positive time in seconds")
        if not (0.0 <= pos <= end <= lane.length + 0.01):
            raise SumoInputError(f"{where}: positions {pos:g} to {end:g} m are off lane {lane_id!r} "
                                 f"({lane.length:.1f} m)")
        found.append(Detector(id=ident, kind="area" if element.tag in AREA_TAGS else "loop", lane=lane_id, pos=pos,
                              end_pos=end, period_s=period))
    return found


# ---- demand -------------------------------------------------------------------------------------
def read_routes(paths: list[str | Path] | tuple, network: RoadNetwork, sumolib_net: Any | None = None,
                additional: list[str | Path] | tuple = ()) -> Demand:
    """Vehicle types and departures of route files. Trips (``from`` / ``to``) are routed on
    the network (fastest path for their vehicle class); every route is checked. Vehicle types,
    their distributions and named routes may also be defined in ``additional`` files, which
    SUMO reads before the route files. Vehicles of classes the twin does not drive (bicycles,
    pedestrians, rail) are left out and counted in ``unsupported``; so are persons."""
    vtypes: dict[str, VehicleType] = {name: VehicleType(name, vclass=vclass, **sizes)
                                      for name, (vclass, sizes) in DEFAULT_VTYPES.items()}
    departures: list[Departure] = []
    named_routes: dict[str, list[str]] = {}
    distributions: dict[str, list[tuple[str, float]]] = {}
    persons = 0
    undriven: dict[str, int] = {}  # vehicle class -> departures left out
    unsupported: list[str] = []

    def define(element: ET.Element, path: Path) -> bool:
        """Read a definition (vehicle type, distribution, named route); whether it was one."""
        tag = element.tag
        if tag == "vType":
            vtypes[element.get("id", "")] = vtype = _vtype(element, path)
            if vtype.car_follow_model not in KRAUSS_MODELS + IDM_MODELS:
                unsupported.append(f"{path.name}: <vType id={vtype.id!r}>: carFollowModel "
                                   f"{vtype.car_follow_model!r} is driven as IDM")
        elif tag == "vTypeDistribution":
            distributions[element.get("id", "")] = _distribution(element, path, vtypes)
        elif tag == "route" and element.get("id"):
            named_routes[element.get("id", "")] = element.get("edges", "").split()
        else:
            return False
        return True

    for raw in additional:
        path = _existing(raw, "additional file")
        for element in _xml(path):
            define(element, path)
    for raw in paths:
        path = _existing(raw, "route file")
        root = _xml(path)
        for element in root:
            tag = element.tag
            if define(element, path):
                continue
            if tag in ("vehicle", "trip", "flow"):
                if _routed_by_stops(element):
                    unsupported.append(f"{path.name}: <{tag}> routed by its stops only (no route, from or to): "
                                       "not modelled; left out")
                    continue
                departure = _departure(element, path, vtypes, distributions, named_routes, network, sumolib_net)
                vclass = _undriven_class(element, vtypes, distributions)  # (its route checked all the same)
                if vclass:
                    undriven[vclass] = undriven.get(vclass, 0) + _count(element)
                    continue
                departures.append(departure)
            elif tag in ("person", "personFlow"):
                persons += _count(element)
            elif tag in ("container", "containerFlow", "interval", "routeDistribution"):
                unsupported.append(f"{path.name}: <{tag}> elements are not read")
    if persons:
        unsupported.append(f"{persons} person(s) in the route files: walking on SUMO's sidewalks, crossings and "
                           "walking areas is not modelled yet")
    for vclass, count in sorted(undriven.items()):
        unsupported.append(f"{count} {vclass} departure(s) in the route files: vehicle class {vclass!r} is not "
                           "driven by the twin; left out")
    return Demand(vtypes=vtypes, departures=departures, type_distributions=distributions, persons=persons,
                  unsupported=sorted(set(unsupported)))


def _routed_by_stops(element: ET.Element) -> bool:
    """Whether a vehicle, trip or flow names no route, only stops (SUMO routes it through them)."""
    named = element.get("route") or element.get("from") or element.get("to") or element.get("fromJunction") \
        or element.get("fromTaz") or element.find("route") is not None
    return not named and element.find("stop") is not None


UNDRIVEN_CLASSES = RAIL_CLASSES | {"bicycle", "pedestrian", "ship"}  # vehicle classes the twin does not drive


def _undriven_class(element: ET.Element, vtypes: dict[str, VehicleType],
                    distributions: dict[str, list[tuple[str, float]]]) -> str | None:
    """The class of a vehicle, trip or flow the twin does not drive (all of its type's
    classes: a distribution that mixes in a driven class is driven), else None."""
    vtype = element.get("type", DEFAULT_VTYPE)
    members = [m for m, _ in distributions[vtype]] if vtype in distributions else [vtype]
    classes = {vtypes[m].vclass for m in members if m in vtypes}
    if classes and classes <= UNDRIVEN_CLASSES:
        return sorted(classes)[0]
    return None


def _distribution(element: ET.Element, path: Path, vtypes: dict[str, VehicleType]) -> list[tuple[str, float]]:
    """The members of a ``<vTypeDistribution>`` and their weights (inline ``<vType>`` elements
    with ``probability``, or ``vTypes`` with ``probabilities``); inline types are registered."""
    where = f"{path}: <vTypeDistribution id={element.get('id')!r}>"
    members = []
    try:
        for member in element.iter("vType"):
            vtypes[member.get("id", "")] = _vtype(member, path)
            members.append((member.get("id", ""), float(member.get("probability", 1.0))))
        names = element.get("vTypes", "").split()
        weights = [float(w) for w in element.get("probabilities", "").split()] or [1.0] * len(names)
    except ValueError:
        raise SumoInputError(f"{where}: a probability that is not a number") from None
    if len(weights) != len(names):
        raise SumoInputError(f"{where}: {len(names)} vTypes but {len(weights)} probabilities")
    for name, weight in zip(names, weights):
        if name not in vtypes:
            raise SumoInputError(f"{where}: vehicle type {name!r} is not defined")
        members.append((name, weight))
    return members


def _distribution_mean(text: str) -> float:
    """A SUMO value that may be a distribution (``normc(1.2,0.1,0.2,2)``, ``uniform(0.8,1.2)``):
    its mean, or the number itself."""
    text = text.strip()
    if "(" not in text:
        return float(text)
    name, args = text.split("(", 1)
    values = [float(a) for a in args.rstrip(")").split(",") if a.strip()]
    if name.strip() == "uniform" and len(values) >= 2:
        return 0.5 * (values[0] + values[1])
    return values[0]


def _vtype(element: ET.Element, path: Path) -> VehicleType:
    where = f"{path}: <vType id={element.get('id')!r}>"
    numbers = {"length": "length", "minGap": "min_gap", "maxSpeed": "max_speed", "accel": "accel", "decel": "decel",
               "emergencyDecel": "emergency_decel", "tau": "tau", "speedFactor": "speed_factor",
               "sigma": "sigma"}
    values: dict[str, Any] = {}
    for attribute, name in numbers.items():
        if element.get(attribute) is not None:
            try:
                values[name] = _distribution_mean(element.get(attribute, ""))
            except ValueError:
                raise SumoInputError(f"{where}: {attribute}={element.get(attribute)!r} is not a number") from None
    vclass = element.get("vClass", "passenger")
    return VehicleType(id=element.get("id", ""), vclass=vclass, car_follow_model=element.get("carFollowModel", "Krauss"),
                       **{**CLASS_SIZES.get(vclass, {}), **values})


def _count(element: ET.Element) -> int:
    if element.tag.endswith("Flow") or element.tag == "flow":
        if element.get("number"):
            return int(float(element.get("number", 0)))
        begin, end = sumo_time(element.get("begin", "0")), sumo_time(element.get("end", str(FLOW_END_S)))
        period = element.get("period", "")
        if period and not period.startswith("exp("):
            return math.ceil((end - begin) / float(period) - 1e-9)
        rate = element.get("vehsPerHour") or element.get("personsPerHour")
        if rate:
            return math.ceil((end - begin) / (3600.0 / float(rate)) - 1e-9)
        return 0
    return 1


def _departure(element: ET.Element, path: Path, vtypes: dict[str, VehicleType],
               distributions: dict[str, list[tuple[str, float]]], named_routes: dict[str, list[str]],
               network: RoadNetwork, sumolib_net: Any | None) -> Departure:
    tag, ident = element.tag, element.get("id", "")
    where = f"{path}: <{tag} id={ident!r}>"
    vtype = element.get("type", DEFAULT_VTYPE)
    if vtype in distributions:
        classes = [vtypes[member].vclass for member, _ in distributions[vtype]]
    elif vtype in vtypes:
        classes = [vtypes[vtype].vclass]
    else:
        raise SumoInputError(f"{where}: vehicle type {vtype!r} is not defined (no <vType id={vtype!r}> before it)")
    classes = [c for c in classes if c not in UNDRIVEN_CLASSES] or classes  # (bicycles in a mix: not driven)
    edges = _route_edges(element, where, named_routes, network, sumolib_net, classes[0])
    for vclass in dict.fromkeys(classes):
        problem = network.route_problem(edges, vclass)
        if problem:
            raise SumoInputError(f"{where}: {problem}")
    depart_attr = "begin" if tag == "flow" else "depart"
    try:
        depart = sumo_time(element.get(depart_attr, "0"))
    except ValueError:
        raise SumoInputError(f"{where}: {depart_attr}={element.get(depart_attr)!r} is not a time (seconds, or h:m:s)") from None
    common = {"id": ident, "vtype": vtype, "depart_s": depart, "edges": edges,
              "routed": element.find("route") is None and not element.get("route") and not element.get("via"),
              "depart_lane": element.get("departLane", "first"), "depart_speed": element.get("departSpeed", "0"),
              "depart_pos": element.get("departPos", "base")}
    if tag != "flow":
        return Departure(**common)
    try:
        return _flow(element, common, depart)
    except SumoInputError as exc:
        raise SumoInputError(f"{where}: {exc}") from None
    except (ValueError, ZeroDivisionError):
        raise SumoInputError(f"{where}: its rate (vehsPerHour, period, probability or number) is not a "
                             "positive number") from None


def _flow(element: ET.Element, common: dict[str, Any], depart: float) -> Departure:
    """A ``<flow>`` as SUMO inserts it: at ``begin + k * period`` while before ``end``
    (default 24 h), or ``number`` of them spread over ``[begin, end)``; ``period="exp(r)"`` and
    ``probability`` are random (``r`` and ``probability`` vehicles per second)."""
    end = sumo_time(element.get("end", str(FLOW_END_S)))
    period_text = element.get("period", "")
    if period_text.startswith("exp("):
        return Departure(**common, count=0, probability=float(period_text[4:].rstrip(")")), end_s=end)
    if element.get("probability"):
        return Departure(**common, count=0, probability=float(element.get("probability", 0)), end_s=end)
    if period_text or element.get("vehsPerHour"):
        period = float(period_text) if period_text else 3600.0 / float(element.get("vehsPerHour", 1))
        if period <= 0:
            raise ValueError("period")
        count = int(element.get("number") or max(0, math.ceil((end - depart) / period - 1e-9)))
    elif element.get("number"):
        count = int(element.get("number", 1))
        period = (end - depart) / max(count, 1)
    else:
        raise SumoInputError("a flow needs vehsPerHour, period, probability or number")
    return Departure(**common, count=count, period_s=period, end_s=end)


def _route_edges(element: ET.Element, where: str, named_routes: dict[str, list[str]], network: RoadNetwork,
                 sumolib_net: Any | None, vclass: str) -> list[str]:
    inline = element.find("route")
    if inline is not None:
        return inline.get("edges", "").split()
    if element.get("route"):
        name = element.get("route", "")
        if name not in named_routes:
            raise SumoInputError(f"{where}: route {name!r} is not defined (no <route id={name!r}> before it)")
        return named_routes[name]
    if element.get("from") and element.get("to"):
        stops = [element.get("from", ""), *element.get("via", "").split(), element.get("to", "")]
        for edge in stops:
            if edge not in network.edges:
                raise SumoInputError(f"{where}: edge {edge!r} is not in the network")
        if sumolib_net is None:
            raise SumoInputError(f"{where}: a trip needs routing on the network it was read with")
        edges: list[str] = []
        for a, b in zip(stops, stops[1:]):
            path, _ = sumolib_net.getFastestPath(sumolib_net.getEdge(a), sumolib_net.getEdge(b), vClass=vclass)
            if path is None:
                raise SumoInputError(f"{where}: no route from edge {a!r} to edge {b!r} for vehicle class {vclass!r}")
            ids = [e.getID() for e in path]
            edges += ids if not edges else ids[1:]
        return edges
    raise SumoInputError(f"{where}: no route (give route=, a <route> inside, or from= and to=)")


# ---- configurations -----------------------------------------------------------------------------
@dataclass
class SumoConfig:
    """A ``.sumocfg``'s inputs (absolute paths) and times [s]; ``ignored`` names the options
    the twin does not use (GUI-only settings among them)."""

    path: Path
    net_file: Path
    route_files: list[Path]
    additional_files: list[Path]
    begin_s: float = 0.0
    end_s: float | None = None
    step_length_s: float = 1.0
    random_factor: float = 1.0  # weights.random-factor: trips are routed with edge costs disturbed by U(1, this)
    ignored: list[str] = field(default_factory=list)


def read_config(path: str | Path) -> SumoConfig:
    """A SUMO configuration; a file it names that does not exist is an error naming the option."""
    path = _existing(path, "SUMO configuration")
    root = _xml(path)
    values: dict[str, str] = {}
    ignored = []
    for section in root:
        if section.get("value") is not None:  # an option straight under the root, as SUMO also accepts
            values[section.tag] = section.get("value", "")
        for option in section:
            if section.tag == "gui_only":
                ignored.append(f"{option.tag} (GUI only)")
                continue
            values[option.tag] = option.get("value", "")
    used = {"net-file", "route-files", "additional-files", "begin", "end", "step-length", "weights.random-factor"}
    ignored += sorted(k for k in values if k not in used)
    if not values.get("net-file"):
        raise SumoInputError(f"{path}: <net-file> is missing: a configuration needs a network")

    def files(option: str) -> list[Path]:
        found = []
        for name in filter(None, (v.strip() for v in values.get(option, "").split(","))):
            file = (path.parent / name).resolve()
            if not file.is_file():
                raise SumoInputError(f"{path}: <{option} value={values[option]!r}>: file not found: {file}")
            found.append(file)
        return found

    def seconds(option: str, default: float | None) -> float | None:
        try:
            return sumo_time(values[option]) if values.get(option) else default
        except ValueError:
            raise SumoInputError(f"{path}: <{option} value={values[option]!r}>: not a time (seconds, or h:m:s)") from None

    return SumoConfig(path=path, net_file=files("net-file")[0], route_files=files("route-files"),
                      additional_files=files("additional-files"), begin_s=seconds("begin", 0.0) or 0.0,
                      end_s=seconds("end", None), step_length_s=seconds("step-length", 1.0) or 1.0,
                      random_factor=max(seconds("weights.random-factor", 1.0) or 1.0, 1.0), ignored=ignored)


def load(path: str | Path) -> tuple[RoadNetwork, Demand | None, SumoConfig | None]:
    """A ``.sumocfg`` (network, demand and configuration) or a bare ``.net.xml`` (no demand)."""
    path = Path(path)
    if path.suffix == ".sumocfg":
        config = read_config(path)
        network, net = read_network_and_sumolib(config.net_file, config.additional_files)
        return network, read_routes(config.route_files, network, net, config.additional_files), config
    if not path.name.endswith(NETWORK_SUFFIXES):
        raise SumoInputError(f"{path}: expected a .sumocfg or a .net.xml file")
    return read_network(path), None, None


def runnable_config(config: Path, out: Path) -> Path:
    """A copy of ``config`` in ``out`` without its ``<gui_only>`` section (the plain ``sumo``
    binary refuses options such as ``osg-view``), its network and routes named by absolute
    path, and its additional files copied into ``out``: they may ask for outputs (the shipped
    ``input_additional.add.xml`` writes ``tlsstate.xml`` and ``netstate.xml`` beside itself),
    which must not land in the installed package."""
    root = ET.parse(config).getroot()
    for section in list(root):
        if section.tag == "gui_only":
            root.remove(section)
        elif section.tag == "input":
            for option in section:
                names = [(config.parent / n.strip()).resolve() for n in option.get("value", "").split(",") if n.strip()]
                if option.tag == "additional-files":
                    copies = []
                    for k, name in enumerate(names):
                        copies.append(out / f"{config.stem}.{k}.{name.name}")
                        shutil.copyfile(name, copies[-1])
                    names = copies
                option.set("value", ",".join(str(n) for n in names))
    copy = out / config.name
    ET.ElementTree(root).write(copy)
    return copy


# ---- importing maps ------------------------------------------------------------------------------
def import_map(source: str | Path, out: str | Path, extra_options: list[str] | tuple = ()) -> RoadNetwork:
    """Convert an OpenStreetMap (``.osm``) or OpenDRIVE (``.xodr``) file to a SUMO network at
    ``out`` with ``netconvert`` (junctions joined, ramps guessed, signals and crossings kept as
    mapped), then read it."""
    source, out = _existing(source, "map file"), Path(out)
    option = MAP_CONVERTERS.get(source.suffix.lower())
    if option is None:
        raise SumoInputError(f"{source}: expected an OpenStreetMap .osm or an OpenDRIVE .xodr file")
    args = [option, str(source), "-o", str(out), "--no-warnings", "true"]
    if option == "--osm-files":
        args += ["--geometry.remove", "--ramps.guess", "--junctions.join", "--tls.guess-signals", "--tls.join",
                 "--crossings.guess"]
    out.parent.mkdir(parents=True, exist_ok=True)
    run_program("netconvert", args + list(extra_options), source, out)
    return read_network(out)

"""The world's part of a scenario: typed configuration, loaded from YAML and overridable from code.

A world names its road network family (``highway``, ``intersection``, ``crosswalk``),
the traffic demand, the behaviour distributions of the background drivers and
pedestrians, the controlled (ego) vehicles, the faults and the two clocks
(:class:`WorldConfig`). Who lives in the world (LLM humans, the supervisor) is configured
one layer up (``twin.scenario.ScenarioConfig`` extends this model). Unknown fields and
out-of-range values are rejected with a :class:`ScenarioError` that names the field and
the file.
"""

from __future__ import annotations

from pathlib import Path as FilePath
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, model_validator

from envs.faults import Fault
from envs.validation import ConfigFileError, describe_problems, read_mapping

SCENARIO_DIR = FilePath(__file__).resolve().parent.parent / "configs" / "scenarios"
FRICTION_RANGE = (0.05, 1.5)  # tyre-road friction coefficients the twin accepts (ice to racing tyres)

#: keyword shortcuts accepted by ``gym.make`` / ``parallel_env`` and their config paths
SHORTCUTS = {
    "vehicles": "demand.vehicles",
    "pedestrians_per_hour": "demand.pedestrians_per_hour",
    "vehicles_per_hour": "demand.vehicles_per_hour",
    "ramp_vehicles_per_hour": "demand.ramp_vehicles_per_hour",
    "controlled": "ego.controlled",
    "action": "ego.action",
}


class ScenarioError(ValueError):
    """A scenario file or override that cannot be used; the message names the field."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Spread(Strict):
    """A normal distribution, clipped to [low, high] when sampled."""

    mean: float
    sd: float = Field(0.0, ge=0.0)


class HighwayNetwork(Strict):
    kind: Literal["highway"] = "highway"
    lanes: int = Field(4, ge=1, le=8)
    length_m: float = Field(1000.0, ge=300.0, le=20000.0)
    lane_width_m: float = Field(3.7, ge=2.5, le=5.0)
    speed_limit_mps: float = Field(30.0, gt=0.0, le=60.0)
    curve_start_m: float = Field(650.0, ge=0.0, description="where the curved section starts")
    curve_radius_m: float = Field(900.0, ge=100.0)
    curve_angle_deg: float = Field(12.0, ge=-90.0, le=90.0)
    on_ramp: bool = True
    merge_at_m: float = Field(250.0, ge=50.0, description="station where the acceleration lane starts")
    accel_lane_m: float = Field(200.0, ge=50.0)
    ramp_length_m: float = Field(180.0, ge=50.0)
    ramp_speed_limit_mps: float = Field(22.0, gt=0.0, le=60.0)

    @model_validator(mode="after")
    def _fits(self) -> "HighwayNetwork":
        if self.on_ramp and self.merge_at_m + self.accel_lane_m > self.curve_start_m:
            raise ValueError("merge_at_m + accel_lane_m must not exceed curve_start_m")
        if self.curve_start_m >= self.length_m:
            raise ValueError("curve_start_m must be less than length_m")
        return self


class IntersectionNetwork(Strict):
    kind: Literal["intersection"] = "intersection"
    arm_length_m: float = Field(150.0, ge=60.0, le=2000.0)
    lane_width_m: float = Field(3.5, ge=2.5, le=5.0)
    speed_limit_mps: float = Field(13.9, gt=0.0, le=40.0)
    crosswalk_width_m: float = Field(4.0, ge=2.0, le=8.0)
    green_s: float = Field(18.0, ge=5.0, le=120.0, description="green time of each approach")
    amber_s: float = Field(4.0, ge=2.0, le=8.0)
    all_red_s: float = Field(2.5, ge=0.0, le=10.0)
    walk_s: float = Field(8.0, ge=3.0, le=60.0)
    flash_s: float = Field(16.0, ge=5.0, le=60.0, description="flashing don't-walk clearance")


class CrosswalkNetwork(Strict):
    kind: Literal["crosswalk"] = "crosswalk"
    length_m: float = Field(400.0, ge=150.0, le=5000.0)
    lane_width_m: float = Field(3.5, ge=2.5, le=5.0)
    speed_limit_mps: float = Field(13.9, gt=0.0, le=40.0)
    crosswalk_at_m: float = Field(200.0, ge=30.0)
    crosswalk_width_m: float = Field(4.0, ge=2.0, le=8.0)
    school_zone_from_m: float = Field(110.0, ge=0.0)
    school_zone_to_m: float = Field(290.0, ge=0.0)
    school_zone_limit_mps: float = Field(8.3, gt=0.0, le=40.0)

    @model_validator(mode="after")
    def _fits(self) -> "CrosswalkNetwork":
        if not (0 <= self.school_zone_from_m <= self.crosswalk_at_m <= self.school_zone_to_m <= self.length_m):
            raise ValueError("need 0 <= school_zone_from_m <= crosswalk_at_m <= school_zone_to_m <= length_m")
        return self


class SumoNetwork(Strict):
    """A real network in SUMO's formats: a ``.sumocfg`` (its network, routes and additional
    files), or a ``.net.xml`` with route and additional files. Relative paths in a scenario
    file are relative to that file."""

    kind: Literal["sumo"] = "sumo"
    config: str | None = Field(None, description="a SUMO configuration (.sumocfg)")
    net_file: str | None = Field(None, description="a SUMO network (.net.xml); with config: replaces its network")
    route_files: list[str] = Field(default_factory=list, description="demand (.rou.xml), added to the config's")
    additional_files: list[str] = Field(default_factory=list, description="e.g. <tlLogic> programs (.add.xml)")
    begin_s: float | None = Field(None, ge=0.0, description="SUMO time of the world's time 0 (default: the config's begin)")

    @model_validator(mode="after")
    def _has_network(self) -> "SumoNetwork":
        if not self.config and not self.net_file:
            raise ValueError("give config (a .sumocfg) or net_file (a .net.xml)")
        return self


class VehicleMix(Strict):
    car: float = Field(0.85, ge=0.0)
    truck: float = Field(0.10, ge=0.0)
    bus: float = Field(0.05, ge=0.0)


class TurnRatios(Strict):
    left: float = Field(0.2, ge=0.0)
    through: float = Field(0.6, ge=0.0)
    right: float = Field(0.2, ge=0.0)


class Demand(Strict):
    vehicles: int = Field(20, ge=0, le=5000, description="background vehicles placed at reset")
    vehicles_per_hour: float = Field(600.0, ge=0.0, le=20000.0, description="inflow per entry road [veh/h]")
    ramp_vehicles_per_hour: float = Field(300.0, ge=0.0, le=5000.0)
    pedestrians_per_hour: float = Field(0.0, ge=0.0, le=20000.0)
    jaywalk_fraction: float = Field(0.0, ge=0.0, le=1.0)
    mix: VehicleMix = VehicleMix()
    turns: TurnRatios = TurnRatios()


class DriverBehaviour(Strict):
    """Distributions of the per-driver behaviour parameters."""

    desired_speed_factor: Spread = Spread(mean=1.0, sd=0.07)  # times the speed limit
    time_headway_s: Spread = Spread(mean=1.5, sd=0.2)
    min_gap_m: Spread = Spread(mean=2.0, sd=0.3)
    politeness: Spread = Spread(mean=0.3, sd=0.1)
    reaction_time_s: Spread = Spread(mean=0.4, sd=0.1)
    signal_compliance: float = Field(1.0, ge=0.0, le=1.0)


class PedestrianBehaviour(Strict):
    walking_speed_mps: Spread = Spread(mean=1.35, sd=0.2)
    critical_gap_s: Spread = Spread(mean=5.0, sd=1.0)
    signal_compliance: float = Field(1.0, ge=0.0, le=1.0)


class EgoConfig(Strict):
    controlled: int = Field(1, ge=0, le=64, description="number of RL-controlled vehicles")
    action: Literal["meta", "continuous"] = "meta"
    target_speeds_mps: list[float] = Field(default_factory=lambda: [0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0])
    observed_actors: int = Field(10, ge=1, le=64)
    observation_range_m: float = Field(100.0, gt=0.0)
    movement: Literal["left", "through", "right", "random"] = "through"


class RewardConfig(Strict):
    progress: float = 1.0
    comfort: float = 0.05
    collision: float = 1.0
    hazard: float = 0.2
    time_to_collision_hazard_s: float = Field(1.5, gt=0.0)


class PlacedVehicle(Strict):
    """A vehicle placed at reset where a scenario says (a reconstructed crash, a test case).

    The n-th entry of ``actors:`` gets actor id n (before any RL or background vehicle), so
    ``faults:`` can name it by that id. Behaviour parameters not given are drawn as for any driver."""

    kind: Literal["vehicle"] = "vehicle"
    name: str = Field("", description="the source's name for it (e.g. V1 of a crash report)")
    vtype: Literal["car", "truck", "bus"] = "car"
    lane: str = Field(..., description="lane name in the network (e.g. main_0, N_in_left, eastbound)")
    s_m: float | None = Field(None, ge=0.0, description="[m] station of its centre along the lane's edge (a lane "
                                                        "that starts part-way along its edge starts at a station > 0)")
    before_end_m: float | None = Field(None, ge=0.0, description="[m] its front this far before the lane's end "
                                                                 "(a stop line); instead of s_m")
    speed_mps: float = Field(0.0, ge=0.0, le=90.0, description="[m/s] speed at reset")
    speed_factor: float | None = Field(None, gt=0.0, le=3.0, description="desired speed / speed limit")
    headway_s: float | None = Field(None, gt=0.0, le=10.0)
    min_gap_m: float | None = Field(None, gt=0.0, le=20.0)
    reaction_time_s: float | None = Field(None, ge=0.0, le=5.0)
    compliance: float | None = Field(None, ge=0.0, le=1.0, description="probability of obeying a red signal")
    keep_lane: bool = Field(False, description="never changes lanes of its own accord (a scripted lane_change still does)")

    @model_validator(mode="after")
    def _one_place(self) -> "PlacedVehicle":
        if (self.s_m is None) == (self.before_end_m is None):
            raise ValueError("give exactly one of s_m and before_end_m")
        return self


class PlacedPedestrian(Strict):
    """A pedestrian placed at reset on one of the network's sidewalk routes (by index), this far
    before the curb, walking at ``speed_mps``."""

    kind: Literal["pedestrian"] = "pedestrian"
    name: str = ""
    route: int = Field(0, ge=0, description="index of the network's sidewalk route (its crossing)")
    to_curb_m: float = Field(5.0, ge=0.0, description="[m] distance to the curb at reset")
    speed_mps: float | None = Field(None, gt=0.0, le=8.0, description="[m/s] walking speed")
    critical_gap_s: float | None = Field(None, ge=0.0, le=20.0, description="[s] smallest time gap it accepts")
    compliance: float | None = Field(None, ge=0.0, le=1.0, description="probability of waiting for the walk signal")


def _actor_kind(value: Any) -> str:
    kind = value.get("kind", "vehicle") if isinstance(value, dict) else getattr(value, "kind", "vehicle")
    return kind if kind in ("vehicle", "pedestrian") else "vehicle"


PlacedActor = Annotated[Union[Annotated[PlacedVehicle, Tag("vehicle")], Annotated[PlacedPedestrian, Tag("pedestrian")]],
                        Discriminator(_actor_kind)]


class RenderConfig(Strict):
    width_px: int = Field(640, ge=64, le=4096)
    height_px: int = Field(480, ge=64, le=4096)
    px_per_m: float | None = Field(None, gt=0.0, description="None fits the whole network")
    follow_ego: bool = False


Network = Annotated[Union[HighwayNetwork, IntersectionNetwork, CrosswalkNetwork, SumoNetwork],
                    Field(discriminator="kind")]


class WorldConfig(Strict):
    """Everything the world needs to build and run one scenario (no humans, no supervisor)."""

    name: str
    description: str = ""
    seed: int = 0
    sim_hz: int = Field(15, ge=1, le=200, description="physics rate [Hz]")
    policy_hz: int = Field(1, ge=1, le=200, description="decision rate [Hz]")
    duration_s: float = Field(40.0, gt=0.0, description="episode length [s]")
    road_friction: float = Field(1.0, ge=FRICTION_RANGE[0], le=FRICTION_RANGE[1],
                                 description="tyre-road friction coefficient (weather): 1 dry, 0.5 wet, 0.2 snow")
    network: Network
    demand: Demand = Demand()
    drivers: DriverBehaviour = DriverBehaviour()
    pedestrians: PedestrianBehaviour = PedestrianBehaviour()
    ego: EgoConfig = EgoConfig()
    reward: RewardConfig = RewardConfig()
    render: RenderConfig = RenderConfig()
    faults: list[Fault] = Field(default_factory=list, description="injected faults (envs/faults.py)")
    actors: list[PlacedActor] = Field(default_factory=list, description="actors placed at reset; the n-th has id n")

    @model_validator(mode="after")
    def _clocks(self) -> "WorldConfig":
        if self.sim_hz % self.policy_hz:
            raise ValueError(f"policy_hz ({self.policy_hz}) must divide sim_hz ({self.sim_hz})")
        return self

    @property
    def substeps(self) -> int:
        """Physics steps per policy step."""
        return self.sim_hz // self.policy_hz


NETWORK_VARIANTS = {"highway": HighwayNetwork, "intersection": IntersectionNetwork, "crosswalk": CrosswalkNetwork,
                    "sumo": SumoNetwork}
SUMO_SUFFIXES = (".sumocfg", ".net.xml", ".net.xml.gz")  # files simulate runs directly


def sumo_scenario(path: FilePath) -> dict[str, Any]:
    """A scenario (as a mapping) that runs a SUMO configuration or network directly: its network
    and demand, for as long as the configuration says (default one hour)."""
    path = FilePath(path)
    if not path.exists():
        raise ScenarioError(f"{path}: file not found")
    name = path.name.split(".")[0]
    network: dict[str, Any] = {"kind": "sumo"}
    duration = 3600.0
    if path.suffix == ".sumocfg":
        from envs.roads.sumo import SumoInputError, read_config

        try:
            sumo = read_config(path)
        except SumoInputError as exc:
            raise ScenarioError(str(exc)) from None
        network["config"] = str(path.resolve())
        if sumo.end_s is not None and sumo.end_s > sumo.begin_s:
            duration = sumo.end_s - sumo.begin_s
    else:
        network["net_file"] = str(path.resolve())
    return {"name": name, "description": f"SUMO input {path}", "duration_s": duration, "network": network,
            "demand": {"vehicles": 0}}


SUMO_GAME_PREFIX = "sumo-game:"  # a path under the eclipse-sumo wheel's sumo/tools/game/ (shipped networks)


def _resolve_sumo_paths(data: dict, folder: FilePath) -> None:
    """Make a scenario file's SUMO paths absolute: relative ones against the file's folder,
    ``sumo-game:NAME`` against the networks shipped in the eclipse-sumo wheel."""
    network = data.get("network")
    if not isinstance(network, dict) or network.get("kind") != "sumo":
        return

    def resolve(path: Any) -> Any:
        if not isinstance(path, str):
            return path
        if path.startswith(SUMO_GAME_PREFIX):
            from envs.roads.sumo import shipped_scenarios

            game = shipped_scenarios()
            if game is None:
                raise ScenarioError(f"network: {path!r} names a network shipped with SUMO, which is not installed: "
                                    "pip install -e '.[sumo]'")
            return str(game / path[len(SUMO_GAME_PREFIX):])
        return path if FilePath(path).is_absolute() else str((folder / path).resolve())

    for key in ("config", "net_file"):
        network[key] = resolve(network.get(key))
    for key in ("route_files", "additional_files"):
        if isinstance(network.get(key), list):
            network[key] = [resolve(p) for p in network[key]]


def resolve_scenario_path(scenario: str | FilePath) -> FilePath:
    """A YAML path, or the name of a shipped scenario (``highway`` -> configs/scenarios/highway.yaml)."""
    path = FilePath(scenario)
    if path.suffix in (".yaml", ".yml"):
        if not path.exists():
            raise ScenarioError(f"{path}: scenario file not found")
        return path
    shipped = SCENARIO_DIR / f"{scenario}.yaml"
    if shipped.exists():
        return shipped
    names = sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))
    raise ScenarioError(f"{scenario}: no such scenario file or shipped scenario (shipped: {', '.join(names)})")


def load_config(scenario: str | FilePath | dict | WorldConfig, overrides: dict[str, Any] | None = None,
                schema: type[WorldConfig] = WorldConfig) -> WorldConfig:
    """Load and validate ``schema`` from a path, shipped name, dict or config, then apply overrides.

    ``overrides`` maps dotted field paths (``"network.lanes"``) or the :data:`SHORTCUTS`
    (``"vehicles"``) to values. ``schema`` is :class:`WorldConfig` or a model extending it
    (the full scenario of ``twin.scenario``).
    """
    source = "<dict>"
    if isinstance(scenario, WorldConfig):
        data, source = scenario.model_dump(), f"<scenario {scenario.name}>"
    elif isinstance(scenario, dict):
        data = dict(scenario)
    elif str(scenario).endswith(SUMO_SUFFIXES):
        data, source = sumo_scenario(FilePath(scenario)), str(scenario)
    else:
        path = resolve_scenario_path(scenario)
        source = str(path)
        try:
            data = read_mapping(path, "scenario")
        except ConfigFileError as exc:
            raise ScenarioError(str(exc)) from None
        _resolve_sumo_paths(data, path.parent)
    overridden = [SHORTCUTS.get(key, key) for key in (overrides or {})]
    for key, value in (overrides or {}).items():
        set_dotted(data, SHORTCUTS.get(key, key), value)
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(describe_problems(exc, source, schema, "scenario", NETWORK_VARIANTS, overridden)) from None


def scenario_overrides(overrides: dict[str, Any] | None, fields: dict[str, Any], **forced: Any) -> dict[str, Any]:
    """Merge an ``overrides`` dict with keyword fields (``a__b`` means ``a.b``) and forced shortcuts."""
    merged = dict(overrides or {})
    merged.update({key.replace("__", "."): value for key, value in fields.items()})
    merged.update(forced)
    return merged


def set_dotted(data: dict, dotted: str, value: Any) -> None:
    """Set ``data["a"]["b"] = value`` for ``dotted`` = ``"a.b"``, creating sections as needed."""
    keys = dotted.split(".")
    node = data
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ScenarioError(f"override {dotted!r}: {key!r} is not a section")
    node[keys[-1]] = value

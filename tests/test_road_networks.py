"""The world on imported road networks (envs/roads/build.py): SUMO's shipped networks drive
with their demand, and at each junction type of a small network built with netconvert the
right vehicle yields and nobody crashes."""

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sumolib")
from envs.roads import sumo  # noqa: E402
from envs.world import World  # noqa: E402
from twin.scenario import load_scenario  # noqa: E402

GAME = sumo.shipped_scenarios()
needs_sumo = pytest.mark.skipif(GAME is None, reason="the eclipse-sumo wheel is not installed (pip install -e '.[sumo]')")

ARMS = {"W": (-150.0, 0.0), "E": (150.0, 0.0), "S": (0.0, -150.0), "N": (0.0, 150.0)}


def junction_world(tmp_path: Path, kind: str) -> World:
    """An empty world on a four-arm junction ``C`` of type ``kind`` (one lane each way, 50 km/h;
    W-E is the major road), built by netconvert."""
    nodes = [f'<node id="C" x="0" y="0" type="{kind}"/>'] + [
        f'<node id="{a}" x="{x}" y="{y}" type="priority"/>' for a, (x, y) in ARMS.items()]
    edges = []
    for a in ARMS:
        priority = 2 if a in "WE" else 1
        edges.append(f'<edge id="{a}C" from="{a}" to="C" numLanes="1" speed="13.89" priority="{priority}"/>')
        edges.append(f'<edge id="C{a}" from="C" to="{a}" numLanes="1" speed="13.89" priority="{priority}"/>')
    (tmp_path / "j.nod.xml").write_text("<nodes>" + "".join(nodes) + "</nodes>")
    (tmp_path / "j.edg.xml").write_text("<edges>" + "".join(edges) + "</edges>")
    net = tmp_path / "j.net.xml"
    sumo.run_program("netconvert", ["--node-files", str(tmp_path / "j.nod.xml"), "--edge-files",
                                    str(tmp_path / "j.edg.xml"), "--no-turnarounds", "true", "-o", str(net)],
                     "junction", net)
    config = load_scenario({"name": kind, "network": {"kind": "sumo", "net_file": str(net)},
                            "ego": {"controlled": 0}, "demand": {"vehicles": 0}})
    return World(config)


def drive(world: World, route: list[str], to_line_m: float, v: float) -> int:
    """A car on the first edge of ``route`` (SUMO edge ids), ``to_line_m`` [m] before its end."""
    net = world.network
    edges = [net.edge_names.index(e) for e in route]
    lane = int(np.flatnonzero(net.lane_edge == edges[0])[0])
    vid = world.add_vehicle(lane, net.lane_s_to[lane] - to_line_m, v, speed_factor=1.0, reaction_time=0.3)
    world.set_route(vid, net.route_keys(edges) + [-1], edges[-1])
    return vid


def run(world: World, seconds: float, ids: list[int]) -> dict[int, dict]:
    """Run the world; per vehicle: when it entered the junction (its first link lane), its
    lowest speed before that, and whether it crashed."""
    seen = {vid: {"entered": None, "min_v": np.inf} for vid in ids}
    net = world.network
    for _ in range(int(seconds / world.dt)):
        world.step()
        veh = world.vehicles
        for vid in ids:
            if vid not in veh.id:
                continue
            r = veh.row(vid)
            if seen[vid]["entered"] is None:
                if net.lane_is_link[veh.lane[r]]:
                    seen[vid]["entered"] = world.time
                else:
                    seen[vid]["min_v"] = min(seen[vid]["min_v"], float(veh.v[r]))
    assert not [e for e in world.events if e.kind == "collision"]
    return seen


@needs_sumo
def test_priority_junction_the_minor_road_yields(tmp_path):
    world = junction_world(tmp_path, "priority")
    major = drive(world, ["WC", "CE"], 60.0, 13.0)
    minor = drive(world, ["SC", "CN"], 45.0, 10.0)  # would reach the junction first
    seen = run(world, 25.0, [major, minor])
    assert seen[major]["entered"] < seen[minor]["entered"]
    assert seen[minor]["min_v"] < 4.0  # it slowed for the major road, from 10 m/s
    assert seen[major]["min_v"] > 11.0  # the major road did not brake for it


@needs_sumo
def test_right_before_left_the_vehicle_from_the_right_goes_first(tmp_path):
    world = junction_world(tmp_path, "right_before_left")
    from_west = drive(world, ["WC", "CE"], 40.0, 9.0)  # has the northbound car on its right
    from_south = drive(world, ["SC", "CN"], 45.0, 9.0)
    seen = run(world, 25.0, [from_west, from_south])
    assert seen[from_south]["entered"] < seen[from_west]["entered"]
    assert seen[from_west]["min_v"] < 4.0


@needs_sumo
def test_all_way_stop_lets_both_through_one_after_the_other(tmp_path):
    world = junction_world(tmp_path, "allway_stop")
    a = drive(world, ["WC", "CE"], 40.0, 9.0)
    b = drive(world, ["SC", "CN"], 40.0, 9.0)
    seen = run(world, 30.0, [a, b])
    assert seen[a]["entered"] is not None and seen[b]["entered"] is not None
    assert abs(seen[a]["entered"] - seen[b]["entered"]) > 1.5


@needs_sumo
def test_a_permissive_left_turn_yields_to_oncoming_traffic(tmp_path):
    world = junction_world(tmp_path, "traffic_light")
    net = world.network
    turn_link = link_between(net, "WC", "CN")
    plan = world.signals
    # run the programs until the westbound left turn shows a permissive green
    for _ in range(int(120 / world.dt)):
        if plan.group_permissive[net.lane_entry_group[turn_link]] and world.group_state[net.lane_entry_group[turn_link]] == 0:
            break
        world.step()
    else:
        pytest.fail("the program never shows a permissive green for the left turn")
    turner = drive(world, ["WC", "CN"], 30.0, 8.0)
    oncoming = drive(world, ["EC", "CW"], 55.0, 13.0)
    seen = run(world, 15.0, [turner, oncoming])
    assert seen[oncoming]["entered"] is not None
    assert seen[turner]["entered"] is None or seen[oncoming]["entered"] < seen[turner]["entered"]
    assert seen[oncoming]["min_v"] > 11.0


def link_between(net, from_edge: str, to_edge: str) -> int:
    """The junction link lane from a lane of ``from_edge`` to a lane of ``to_edge``."""
    for lane in np.flatnonzero(net.lane_edge == net.edge_names.index(from_edge)):
        for link in net.lane_turn[net.lane_turn_ptr[lane]:net.lane_turn_ptr[lane + 1]]:
            if net.edge_names[net.lane_edge[net.lane_next[link]]] == to_edge:
                return int(link)
    raise AssertionError(f"no link from {from_edge} to {to_edge}")


# ---- SUMO's shipped networks -------------------------------------------------------------------
@needs_sumo
@pytest.mark.parametrize("name", ["ramp", "cross", "A10KW", "grid6", "bs3d"])
def test_shipped_networks_become_twin_networks_with_their_trips(name):
    config = load_scenario(str(GAME / f"{name}.sumocfg"), {"ego.controlled": 0})
    world = World(config)
    net = world.network
    assert net.trips, "the demand became trips"
    links = np.flatnonzero(net.lane_is_link)
    assert len(links) and (net.lane_next[links] >= 0).all()  # every link leads on to a lane
    for trip in net.trips[:200]:
        assert trip.route[-1] == -1 and all(0 <= k < net.route_key_count for k in trip.route[:-1])


@needs_sumo
@pytest.mark.parametrize("name", ["ramp", "cross"])
def test_shipped_networks_drive_their_demand_without_collisions(name):
    config = load_scenario(str(GAME / f"{name}.sumocfg"), {"ego.controlled": 0})
    world = World(config)
    for _ in range(int(120 / world.dt)):
        world.step()
    assert world.stats["vehicles_entered"] > 20
    assert world.stats["vehicles_exited"] > 10
    assert not [e for e in world.events if e.kind == "collision"]


@needs_sumo
def test_the_twin_matches_sumos_arrivals_on_cross(tmp_path):
    """`bench sumo`'s twin side on the same files SUMO runs: on `cross` (one signal phase
    green for the whole run, as the shipped game program holds it) as many vehicles arrive
    as in SUMO, within 10%, in about the same time; counts add up; nobody collides."""
    from benchmarks.sumo import run_side_by_side

    reference, twin = run_side_by_side(GAME / "cross.sumocfg", 10.0, tmp_path)
    assert reference["simulated_s"] == 600 and reference["collisions"] == 0
    assert twin["collisions"] == 0 and twin["simulated_s"] == pytest.approx(600.0, abs=0.1)
    assert twin["inserted"] == twin["arrived"] + twin["running"]
    assert abs(twin["arrived"] - reference["arrived"]) <= 0.1 * reference["arrived"]
    assert abs(twin["travel_time_mean_s"] - reference["travel_time_mean_s"]) <= 0.2 * reference["travel_time_mean_s"]
    assert sum(r["arrived"] for r in twin["routes"].values()) == twin["arrived"]
    assert twin["vehicle_steps_per_s"] > 0


@needs_sumo
def test_a_vehicle_standing_for_five_minutes_is_reported_with_its_cause():
    """cross's game program keeps three approaches red for the whole run: their first vehicles
    are reported stuck at a red signal, the ones behind them in a queue."""
    world = World(load_scenario(str(GAME / "cross.sumocfg"), {"ego.controlled": 0}))
    while world.time < 420.0:
        world.step()
    stuck = [e for e in world.events if e.kind == "stuck"]
    causes = {e.cause for e in stuck}
    assert "red signal" in causes and "queue" in causes and causes <= {"red signal", "queue"}
    for e in stuck:  # each at most once, after standing 300 s
        assert [x.actors for x in stuck].count(e.actors) == 1 and e.time >= 300.0


@needs_sumo
def test_simulate_runs_a_sumo_configuration_directly(tmp_path):
    from run import main

    out = tmp_path / "run"
    code = main(["-q", "simulate", str(GAME / "cross.sumocfg"), "--minutes", "1", "--humans", "rule", "--out",
                 str(out), "--json", str(tmp_path / "summary.json")])
    assert code == 0
    import json

    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["vehicles_entered"] > 10 and summary["collisions"] == 0
    assert {"vehicles_waiting_to_depart", "mean_travel_time_s", "stuck_vehicles"} <= summary.keys()
    assert (out / "trace.jsonl.gz").exists()


@needs_sumo
def test_a_scenario_file_names_a_network_shipped_with_sumo_and_keeps_its_humans():
    config = load_scenario("sumo_highway", {"humans.drivers": [{"persona": "truck_driver", "count": 1, "llm": False}]})
    assert config.network.kind == "sumo" and config.network.net_file.endswith("highway/highway.net.xml")
    world = World(config)
    assert world.network.trips and world.schedule is not None


def test_a_sumo_network_without_a_file_is_refused_naming_the_field():
    from envs.scenario import ScenarioError

    with pytest.raises(ScenarioError, match="network"):
        load_scenario({"name": "x", "network": {"kind": "sumo"}})


@needs_sumo
def test_departing_vehicles_never_overlap_the_ones_already_there():
    """departPos="free"/"random" (SUMO's ramp) inserts along the lane: every new vehicle keeps
    at least its minimum gap to the vehicles around it, in its lane or reaching into it."""
    world = World(load_scenario(str(GAME / "ramp.sumocfg"), {"ego.controlled": 0}))
    seen: set[int] = set()
    for _ in range(int(240 / world.dt)):
        world.step()
        veh = world.vehicles
        for r in np.flatnonzero(~np.isin(veh.id, list(seen))):
            seen.add(int(veh.id[r]))
            same = (veh.lane == veh.lane[r]) & (np.arange(len(veh)) != r)
            gaps = np.abs(veh.s[same] - veh.s[r]) - 0.5 * (veh.length[same] + veh.length[r])
            assert (gaps > 1.0).all(), f"vehicle {veh.id[r]} departed {gaps.min():.1f} m from another"
    assert not [e for e in world.events if e.kind == "collision"]


def test_curvature_of_a_lane_does_not_depend_on_how_densely_it_is_drawn():
    from envs.roads.build import _curvature

    radii = []
    for points in (12, 60, 600):
        a = np.linspace(0.0, np.pi / 2, points)
        radii.append(1.0 / _curvature(np.stack([100.0 * np.cos(a), 100.0 * np.sin(a)], 1)))
    assert max(radii) - min(radii) < 5.0 and abs(radii[-1] - 100.0) < 2.0


@needs_sumo
def test_the_gym_view_drives_an_ego_on_its_trip_through_an_imported_network():
    """An ego takes a trip of the network's demand (its route) from the trip's start; the
    Gymnasium checker passes; driven by the rule-based speed keeping it makes progress and
    neither crashes nor leaves its route."""
    from gymnasium.utils.env_checker import check_env

    from twin.gym import make_env

    env = make_env(str(GAME / "A10KW.sumocfg"), duration_s=40)
    check_env(env, skip_render_check=True)
    obs, info = env.reset(seed=3)
    world = env.world
    row = world.vehicles.row(info["ego_id"])
    assert world.vehicles.route[row, 0] != 0  # it has a route
    total = 0.0
    for _ in range(40):
        obs, reward, terminated, truncated, info = env.step(1)
        total += reward
        if terminated or truncated:
            break
    assert not info["crashed"] and total > 5.0 and obs.shape == env.observation_space.shape
    env.close()


@needs_sumo
def test_the_pettingzoo_view_passes_its_api_test_on_an_imported_network():
    from pettingzoo.test import parallel_api_test

    from twin.gym import parallel_env

    parallel_api_test(parallel_env(str(GAME / "cross.sumocfg"), duration_s=20), num_cycles=20)


@needs_sumo
def test_signal_control_drives_any_traffic_light_of_an_imported_network_through_its_clearances():
    """twin/SignalControl on grid6: the agent's phases are the program's greens, every change
    between them shows the program's amber first, the other lights keep their programs, and
    the Gymnasium checker passes."""
    from gymnasium.utils.env_checker import check_env

    from twin.gym import make_signal_env

    env = make_signal_env(str(GAME / "grid6.sumocfg"), duration_s=120, decision_s=4.0)
    check_env(env, skip_render_check=True)
    env.reset(seed=0)
    plan, program = env.world.signals, env._program
    states = plan.programs[program].states
    others = [k for k in range(len(plan.programs)) if k != program]
    shown, other_phases = [], set()
    for k in range(30):
        env.controller.request(k % env.action_space.n)
        for _ in range(env.steps_per_decision):
            env.occupants.advance(env.world, 1, [env.controller])
            shown.append(states[plan.phase[program]])
            other_phases.update(int(plan.phase[o]) for o in others)
    green_phases = {states[i] for i in env._phases}
    assert len({s for s in shown if s in green_phases}) >= 2  # it served more than one phase
    last_green, amber_since = None, False
    for state in shown:  # between two different greens the program's amber shows
        if state in green_phases:
            assert state == last_green or last_green is None or amber_since, f"{last_green} -> {state} without amber"
            last_green, amber_since = state, False
        elif "y" in state.lower():
            amber_since = True
    assert len(other_phases) > 1 and not [e for e in env.world.events if e.kind == "collision"]


def chain_network(folder: Path, flow: str) -> Path:
    """A one-way road A-B-C (two 200 m edges, one lane, 50 km/h) through a priority
    junction, built by netconvert into ``folder``, with a flow of ``flow``'s attributes in
    ``c.rou.xml``; returns the network file."""
    (folder / "c.nod.xml").write_text('<nodes><node id="A" x="0" y="0"/><node id="B" x="200" y="0" type="priority"/>'
                                      '<node id="C" x="400" y="0"/></nodes>')
    (folder / "c.edg.xml").write_text('<edges><edge id="AB" from="A" to="B" numLanes="1" speed="13.89"/>'
                                      '<edge id="BC" from="B" to="C" numLanes="1" speed="13.89"/></edges>')
    (folder / "c.rou.xml").write_text(f'<routes><flow id="f" {flow} from="AB" to="BC" departSpeed="max"/></routes>')
    net = folder / "c.net.xml"
    sumo.run_program("netconvert", ["--node-files", str(folder / "c.nod.xml"), "--edge-files",
                                    str(folder / "c.edg.xml"), "-o", str(net)], "chain", net)
    return net


@needs_sumo
def test_a_network_with_no_conflicts_and_no_lights_drives(tmp_path):
    """A plain road through a priority junction (no foes, no traffic light): vehicles drive
    through it and arrive."""
    net = chain_network(tmp_path, 'begin="0" end="60" period="6"')
    world = World(load_scenario({"name": "chain", "ego": {"controlled": 0}, "network": {
        "kind": "sumo", "net_file": str(net), "route_files": [str(tmp_path / "c.rou.xml")]}}))
    for _ in range(int(90 / world.dt)):
        world.step()
    assert len(world.travel_times) >= 8 and not [e for e in world.events if e.kind == "collision"]


@needs_sumo
def test_the_trace_and_the_renderer_draw_junctions_and_a_signal_head_per_link():
    from envs.render import Renderer
    from envs.trace import network_geometry

    world = World(load_scenario(str(GAME / "cross.sumocfg"), {"ego.controlled": 0}))
    geometry = network_geometry(world.network)
    heads = geometry["signal_heads"]
    assert geometry["junctions"] and len(heads) == 12  # cross: one light with 12 links
    assert {h["group"] for h in heads} == set(range(world.network.signal_groups))
    assert len({tuple(h["at"]) for h in heads}) == len(heads)  # the heads of one lane's links stand apart
    image = Renderer(world.network, world.config.render).render(world.snapshot())
    assert image.shape == (world.config.render.height_px, world.config.render.width_px, 3)


@needs_sumo
def test_detectors_count_the_vehicles_that_pass_and_write_a_csv(tmp_path):
    """An induction loop and a lane-area detector from an additional file: the loop counts
    every vehicle that passes it (a flow of 10, one lane, no overtaking), at about the speed
    they drive; the area sees vehicles on it; simulate writes detectors.csv. A detector on a
    lane the network lacks is an error naming the file and the element."""
    import csv

    net = chain_network(tmp_path, 'begin="0" number="10" period="5"')
    (tmp_path / "d.add.xml").write_text('<additional><inductionLoop id="loop" lane="BC_0" pos="100" period="60" '
                                        'file="x.xml"/><laneAreaDetector id="area" lane="AB_0" pos="20" '
                                        'endPos="150" period="60" file="y.xml"/></additional>')
    scenario = tmp_path / "chain.yaml"
    scenario.write_text("name: chain\nduration_s: 120\nego: {controlled: 0}\nnetwork: {kind: sumo, net_file: c.net.xml, "
                        "route_files: [c.rou.xml], additional_files: [d.add.xml]}\n")
    from twin.run import simulate

    summary = simulate(scenario, out=tmp_path / "run", humans="off")
    rows = list(csv.DictReader((tmp_path / "run" / "detectors.csv").open()))
    loop = [r for r in rows if r["id"] == "loop"]
    assert sum(int(r["vehicles"]) for r in loop) == 10 and summary["detectors"] == 2
    speeds = [float(r["speed_mps"]) for r in loop if r["speed_mps"]]
    assert speeds and all(10.0 < s < 15.0 for s in speeds)
    area = [r for r in rows if r["id"] == "area"]
    assert area and float(area[0]["mean_vehicles"]) > 0 and float(area[0]["occupancy_pct"]) > 0
    (tmp_path / "bad.add.xml").write_text('<additional><inductionLoop id="x" lane="nowhere_0" pos="1"/></additional>')
    with pytest.raises(sumo.SumoInputError, match="bad.add.xml.*inductionLoop id='x'.*not in the network"):
        sumo.read_detectors(tmp_path / "bad.add.xml", sumo.read_network(net))


@needs_sumo
def test_faults_select_their_actors_on_an_imported_network(tmp_path):
    """The scenario's faults: on a SUMO network work as on the layouts: actor faults pick
    their vehicle by the same rules, a dark signal switches every light off, and the
    supervisor flags the sensor that dropped out."""
    from twin.run import simulate

    faults = [{"kind": "brake_failure", "at_s": 20, "actor": "approaching_stop"},
              {"kind": "sensor_dropout", "at_s": 25, "actor": "closest_follower", "duration_s": 10},
              {"kind": "signal_dark", "at_s": 40, "duration_s": 20}]
    summary = simulate(str(GAME / "grid6.sumocfg"), minutes=1.5, out=tmp_path, humans="off",
                       overrides={"faults": faults})
    assert summary["faults_never_started"] == []
    started = {f["kind"]: f for f in summary["faults"]}
    assert started["brake_failure"]["actors"] and started["sensor_dropout"]["actors"]
    assert started["signal_dark"]["start_s"] == 40.0 and summary["anomalies"].get("sensor", 0) >= 1


def straight_road_world(tmp_path: Path, vtypes: str, vehicles: str, speed_mps: float = 30.0) -> World:
    """A 2 km one-lane road built by netconvert, with the given ``<vType>`` and ``<vehicle>``
    elements as its demand."""
    (tmp_path / "r.nod.xml").write_text('<nodes><node id="A" x="0" y="0"/><node id="B" x="2000" y="0"/></nodes>')
    (tmp_path / "r.edg.xml").write_text(f'<edges><edge id="AB" from="A" to="B" numLanes="1" speed="{speed_mps}"/></edges>')
    net = tmp_path / "r.net.xml"
    sumo.run_program("netconvert", ["--node-files", str(tmp_path / "r.nod.xml"), "--edge-files",
                                    str(tmp_path / "r.edg.xml"), "-o", str(net)], "road", net)
    routes = tmp_path / "r.rou.xml"
    routes.write_text(f'<routes>{vtypes}<route id="r" edges="AB"/>{vehicles}</routes>')
    return World(load_scenario({"name": "road", "network": {"kind": "sumo", "net_file": str(net),
                                                             "route_files": [str(routes)]},
                                "ego": {"controlled": 0}, "demand": {"vehicles": 0}}))


@needs_sumo
def test_a_vehicle_type_drives_the_car_following_model_it_names(tmp_path):
    """SUMO's default carFollowModel (Krauss) is driven as Krauss, with the type's sigma; a type
    that names IDM drives IDM."""
    world = straight_road_world(tmp_path, '<vType id="k" sigma="0.3"/><vType id="i" carFollowModel="IDM"/>',
                                '<vehicle id="a" type="k" route="r" depart="0"/>'
                                '<vehicle id="b" type="i" route="r" depart="5"/>')
    for _ in range(int(8 / world.dt)):
        world.step()
    veh = world.vehicles
    assert len(veh) == 2
    first, second = np.argsort(veh.id)
    assert veh.krauss[first] and veh.sigma[first] == pytest.approx(0.3)
    assert not veh.krauss[second]


@needs_sumo
def test_a_krauss_follower_settles_at_its_time_headway_behind_a_slower_leader(tmp_path):
    """Krauss' safe speed lets a follower close up to its minimum gap plus tau times its speed
    behind a leader at the same speed (IDM keeps farther back): a slow leader (speedFactor 0.5
    of 30 m/s) and a faster follower without dawdling (sigma 0), neither hitting the other."""
    world = straight_road_world(
        tmp_path, '<vType id="slow" sigma="0" speedFactor="0.5" tau="1.2" minGap="2.5"/>'
                  '<vType id="fast" sigma="0" speedFactor="1" tau="1.2" minGap="2.5"/>',
        '<vehicle id="lead" type="slow" route="r" depart="0" departSpeed="max"/>'
        '<vehicle id="follow" type="fast" route="r" depart="4" departSpeed="max"/>')
    world.config.drivers.desired_speed_factor.sd = 0.0
    for _ in range(int(50 / world.dt)):
        world.step()
    veh = world.vehicles
    lead, follow = np.argsort(veh.id)
    gap = veh.s[lead] - veh.s[follow] - 0.5 * (veh.length[lead] + veh.length[follow])
    assert veh.v[follow] == pytest.approx(veh.v[lead], abs=0.2)
    # (each driver's tau and minimum gap spread around its type's, as the scenario's drivers do)
    assert gap == pytest.approx(veh.min_gap[follow] + veh.headway[follow] * veh.v[follow], abs=0.5)
    assert veh.headway[follow] == pytest.approx(1.2, rel=0.5)
    assert not [e for e in world.events if e.kind == "collision"]


@needs_sumo
def test_a_lane_that_starts_between_two_ending_ones_touches_only_the_one_that_leads_to_it():
    """A10KW's 256366925 (two lanes) widens into 240042192#0 (three): the middle new lane is
    drawn between the two old ones but only the right one leads to it; vehicles on the left
    one pass it without contact (as in SUMO), those on a lane and its link may touch."""
    world = World(load_scenario(str(GAME / "A10KW.sumocfg"), {"ego.controlled": 0, "demand.vehicles": 0}))
    net = world.network

    def lane(edge: str, index: int) -> int:
        return next(k for k, ln in enumerate(net.lanes) if ln.name == f"{edge}_{index}")

    middle = lane("240042192#0", 1)
    assert net.may_touch(lane("256366925", 0), middle)
    assert not net.may_touch(lane("256366925", 1), middle)
    assert net.may_touch(lane("256366925", 1), lane("240042192#0", 2))


@needs_sumo
def test_the_follower_in_the_target_lane_falls_back_for_a_driver_whose_route_needs_that_lane(tmp_path):
    """Cooperative lane changing (SUMO's LC2013 informs its follower): two lanes narrow to one
    that only the left lane leads to; a driver in the right lane with a car alongside-behind in
    the left one asks it to fall in behind, and changes lanes while moving instead of
    standing at its lane's end waiting for a gap."""
    files = {"n.nod.xml": '<nodes><node id="A" x="0" y="0"/><node id="B" x="300" y="0"/>'
                          '<node id="C" x="600" y="0"/></nodes>',
             "n.edg.xml": '<edges><edge id="AB" from="A" to="B" numLanes="2" speed="15"/>'
                          '<edge id="BC" from="B" to="C" numLanes="1" speed="15"/></edges>',
             "n.con.xml": '<connections><connection from="AB" to="BC" fromLane="1" toLane="0"/></connections>'}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    net = tmp_path / "n.net.xml"
    sumo.run_program("netconvert", ["--node-files", str(tmp_path / "n.nod.xml"), "--edge-files",
                                    str(tmp_path / "n.edg.xml"), "--connection-files", str(tmp_path / "n.con.xml"),
                                    "-o", str(net)], "narrowing", net)
    routes = tmp_path / "n.rou.xml"
    routes.write_text('<routes><vType id="k" sigma="0"/><route id="r" edges="AB BC"/>'
                      '<vehicle id="right" type="k" route="r" depart="0" departLane="0" departPos="60" departSpeed="15"/>'
                      '<vehicle id="left" type="k" route="r" depart="0" departLane="1" departPos="53" departSpeed="15"/>'
                      '</routes>')
    world = World(load_scenario({"name": "narrowing", "network": {"kind": "sumo", "net_file": str(net),
                                                                   "route_files": [str(routes)]},
                                 "ego": {"controlled": 0}, "demand": {"vehicles": 0}}))
    drivers = world.config.drivers  # alike drivers: without cooperation they would drive on side by side
    for spread in (drivers.desired_speed_factor, drivers.time_headway_s, drivers.min_gap_m):
        spread.sd = 0.0
    world.step()
    veh = world.vehicles
    assert len(veh) == 2
    right = int(veh.id[np.argmax(veh.s)])
    lane_end = float(world.network.lane_s_to[veh.lane[veh.row(right)]])
    slowest, changed_at = np.inf, None
    for _ in range(int(25 / world.dt)):
        world.step()
        veh = world.vehicles
        r = veh.row(right)
        if veh.target_lane[r] != veh.lane[r]:
            changed_at = float(veh.s[r])
            break
        slowest = min(slowest, float(veh.v[r]))
    # (without the follower's courtesy it brakes to about 8 m/s near the end and merges behind)
    assert changed_at is not None and lane_end - changed_at > 100.0 and slowest > 14.0
    assert not [e for e in world.events if e.kind == "collision"]

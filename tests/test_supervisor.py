"""The supervisor on hand-built situations, injected faults, the env interfaces and the suite scoring."""

import numpy as np
import pytest

from agents.supervisor.supervisor import COST_WEIGHTS, Supervisor, SupervisorConfig
from agents.supervisor.suite import Suite, SuiteCase, load_suite, run_case, score
from envs.actors import CROSS
from envs.faults import FaultInjector
from twin.scenario import ScenarioError, load_scenario
from envs.world import World
from tests.conftest import bare_world


def _watch(world: World, seconds: float, supervisor: Supervisor | None = None, stop_on=None) -> Supervisor:
    supervisor = supervisor or Supervisor(SupervisorConfig(every_steps=1))
    for _ in range(int(seconds * world.config.sim_hz)):
        events = world.step()
        supervisor.after_step(world)
        if stop_on and any(e.kind == stop_on for e in events):
            break
    return supervisor


def _kinds(supervisor: Supervisor, category: str | None = None) -> list[str]:
    return [e.kind for e in supervisor.events if category is None or e.category == category]


def test_red_light_runner_is_flagged_once(lane_named):
    world = bare_world("intersection")
    lane = lane_named(world, "N_in_through")
    world.signals.set_interval(3)  # east green: north is red
    vid = world.add_vehicle(lane, 60.0, 12.0, compliance=0.0)
    world.set_vehicle_params(vid, runs_red=True)
    sup = _watch(world, 12.0)
    red = [e for e in sup.events if e.kind == "red_light"]
    assert len(red) == 1 and red[0].actors == (vid,) and red[0].category == "violation"


def _pedestrian_crossing(world):
    route = world.network.sidewalk_routes[0]
    path = np.array([route.a0, route.a1, route.b0, route.b1])
    pid = world.add_pedestrian(path, route.crossing, s=np.linalg.norm(path[1] - path[0]) + 0.5, speed=0.8)
    world.pedestrians.phase[world.pedestrians.row(pid)] = CROSS
    return pid


def test_car_that_does_not_slow_for_a_pedestrian_is_flagged_before_it_reaches_the_crosswalk(lane_named):
    world = bare_world("crosswalk")
    lane = lane_named(world, "eastbound")
    zone_in = min(s_in for ln, s_in, _ in world.network.crossings[0].zones if ln == lane)
    pid = _pedestrian_crossing(world)
    vid = world.add_vehicle(lane, zone_in - 45.0, 12.0, speed_factor=1.5)
    world.vehicles.brake_limit[world.vehicles.row(vid)] = 0.0  # it does not slow at all
    sup = _watch(world, 8.0)
    conflicts = [e for e in sup.events if e.kind == "pedestrian_conflict" and e.actors == (vid, pid)]
    entered = [e for e in sup.events if e.kind == "fail_to_yield"]
    assert conflicts and entered
    assert conflicts[0].start_s < entered[0].start_s - 1.0  # a warning well before it enters
    assert conflicts[0].severity == "high"
    assert any(a["events"][0]["kind"] == "pedestrian_conflict" for a in sup.alerts)


def test_car_that_stops_for_a_pedestrian_raises_nothing(lane_named):
    world = bare_world("crosswalk")
    lane = lane_named(world, "eastbound")
    zone_in = min(s_in for ln, s_in, _ in world.network.crossings[0].zones if ln == lane)
    _pedestrian_crossing(world)
    world.add_vehicle(lane, zone_in - 60.0, 8.0)
    sup = _watch(world, 15.0)
    assert not [k for k in _kinds(sup) if k in ("pedestrian_conflict", "fail_to_yield", "collision")]


def _faulty_world(scenario: str, faults: list[dict], **overrides) -> World:
    return World(load_scenario(scenario, {"ego.controlled": 0, "faults": faults, **overrides}))


def test_brake_failure_is_an_anomaly_flagged_before_the_rear_end_collision():
    world = _faulty_world("intersection", [{"kind": "brake_failure", "at_s": 20, "actor": "closest_follower"}])
    sup = _watch(world, 60.0, Supervisor(), stop_on="collision")
    culprit = world.faults.log[0]["actors"][0]
    crash = [e for e in world.events if e.kind == "collision"]
    assert crash and culprit in crash[0].actors
    anomaly = [a for a in sup.alerts for e in a["events"] if e["kind"] == "behaviour" and e["actors"] == [culprit]]
    assert anomaly and anomaly[0]["time_s"] < crash[0].time
    warned = [a["time_s"] for a in sup.alerts for e in a["events"]
              if e["category"] == "hazard" and culprit in e["actors"]]
    assert warned and crash[0].time - min(warned) >= 1.5


def test_stuck_signal_is_an_anomaly_and_a_working_one_is_not():
    world = _faulty_world("intersection", [{"kind": "signal_stuck", "at_s": 5}], **{"demand.vehicles": 0})
    sup = _watch(world, 60.0, Supervisor())
    stuck = [e for e in sup.events if e.kind == "signal_stuck"]
    assert len(stuck) == 1 and stuck[0].severity == "high" and stuck[0].category == "anomaly"
    planned = max(world.signals.durations)
    assert stuck[0].start_s <= 5.0 + planned + 3.5  # within the overrun allowance of the plan
    healthy = _watch(bare_world("intersection"), 120.0, Supervisor())
    assert "signal_stuck" not in _kinds(healthy) and "signal_conflict" not in _kinds(healthy)


def test_dark_signal_sensor_dropout_and_stopped_pedestrian_are_detected():
    dark = _watch(_faulty_world("intersection", [{"kind": "signal_dark", "at_s": 3}]), 6.0, Supervisor())
    assert "signal_conflict" in _kinds(dark, "anomaly")
    world = _faulty_world("intersection", [{"kind": "sensor_dropout", "at_s": 5, "actor": "closest_follower"}])
    sup = _watch(world, 15.0, Supervisor())
    culprit = world.faults.log[0]["actors"][0]
    assert any(e.kind == "sensor" and e.actors == (culprit,) for e in sup.events)
    world = bare_world("crosswalk")
    pid = _pedestrian_crossing(world)
    world.faults = FaultInjector(load_scenario("crosswalk", {"faults": [
        {"kind": "pedestrian_stop", "at_s": 1.0, "actor": pid, "duration_s": 10}]}).faults, world)
    sup = _watch(world, 8.0, Supervisor())
    stopped = [e for e in sup.events if e.kind == "pedestrian_stopped"]
    assert stopped and stopped[0].actors == (pid,) and stopped[0].start_s < 4.0


def test_fault_config_typos_name_the_field():
    with pytest.raises(ScenarioError, match=r"faults\.0.*max_decel"):
        load_scenario("intersection", {"faults": [{"kind": "brake_failure", "at_s": 5, "max_decel": 1.0}]})
    with pytest.raises(ScenarioError, match="faults"):
        load_scenario("intersection", {"faults": [{"kind": "meteor", "at_s": 5}]})
    with pytest.raises(ScenarioError, match="supervisor.alert_severity"):
        load_scenario("intersection", {"supervisor.alert_severity": "urgent"})


@pytest.mark.slow
def test_normal_traffic_for_30_minutes_raises_no_anomaly_alert():
    world = World(load_scenario("intersection", {"ego.controlled": 0, "demand.pedestrians_per_hour": 400,
                                                 "seed": 3}))
    sup = _watch(world, 1800.0, Supervisor())
    false_alarms = [e for a in sup.alerts for e in a["events"] if e["category"] == "anomaly"]
    assert false_alarms == []
    assert world.stats["vehicles_exited"] > 300  # it was traffic, not an empty junction


def test_env_info_carries_the_supervisors_events_and_cost():
    from twin.gym import make_env

    env = make_env("intersection", humans="off",
                  faults=[{"kind": "signal_dark", "at_s": 2}], vehicles=10)
    env.reset(seed=0)
    costs, seen = [], []
    for _ in range(6):
        _, _, terminated, truncated, info = env.step(0)
        sup = info["supervisor"]
        assert info["cost"] == pytest.approx(sum(COST_WEIGHTS[e["severity"]] for e in sup["events"]))
        costs.append(info["cost"])
        seen += [e["kind"] for e in sup["events"]]
        if terminated or truncated:
            break
    assert "signal_conflict" in seen and max(costs) >= COST_WEIGHTS["high"]  # a junction-wide fault costs everyone
    off = make_env("intersection", humans="off", supervisor__enabled=False)
    off.reset(seed=0)
    assert "supervisor" not in off.step(0)[4]


def test_suite_scoring_counts_recall_lead_time_and_false_alarms():
    suite = Suite(cases=[SuiteCase(name="x", scenario="intersection")], lead_window_s=10.0, detect_window_s=30.0)
    run = {"case": "x", "seed": 0, "simulated_s": 100.0, "red_light": [], "physics_s": 1.0, "supervisor_s": 0.2,
           "checks": 1, "events": 0,
           "collisions": [{"time_s": 50.0, "actors": [1, 2]}, {"time_s": 80.0, "actors": [7, 8]}],
           "faults": [{"kind": "brake_failure", "actors": [1], "start_s": 40.0, "end_s": None},
                      {"kind": "sensor_noise", "actors": [5], "start_s": 10.0, "end_s": 20.0}],
           "alerts": [
               {"time_s": 47.0, "kind": "ttc", "category": "hazard", "actors": [1, 2], "severity": "high"},
               {"time_s": 41.0, "kind": "behaviour", "category": "anomaly", "actors": [1], "severity": "medium"},
               {"time_s": 80.0, "kind": "collision", "category": "incident", "actors": [7, 8], "severity": "high"},
               {"time_s": 60.0, "kind": "headway", "category": "hazard", "actors": [3, 4], "severity": "medium"},
           ]}
    result = score([run], suite)
    # the culprit's anomaly at 41 s is the first warning of the 50 s collision; the one at 80 s had none
    assert result["labels"]["collision"] == {"count": 2, "detected": 1, "recall": 0.5, "lead_median_s": 9.0,
                                             "lead_min_s": 9.0}
    assert result["labels"]["brake_failure"]["recall"] == 1.0 and result["labels"]["brake_failure"]["lead_median_s"] == 1.0
    assert result["labels"]["sensor_noise"]["recall"] == 0.0
    assert result["alerts"]["headway"]["precision"] == 0.0  # actors 3 and 4 were in no trouble
    assert result["precision"] == 0.75
    assert result["overhead"]["share_of_physics"] == 0.2


def test_shipped_suite_loads_and_a_case_runs():
    suite = load_suite()
    assert {c.name for c in suite.cases} >= {"rear_end_brake_failure", "dark_signal", "nominal_intersection"}
    case = next(c for c in suite.cases if c.name == "dark_signal")
    run = run_case(case, seed=0, duration_s=20.0)
    result = score([run], suite)
    assert result["labels"]["signal_dark"]["recall"] == 1.0


def test_a_recovered_stuck_signal_still_runs_its_amber_and_all_red():
    world = _faulty_world("intersection", [{"kind": "signal_stuck", "at_s": 5, "duration_s": 40}],
                          **{"demand.vehicles": 0})
    cycle, runs = world.network.signal_cycle, []
    for _ in range(90 * world.config.sim_hz):
        world.step()
        name = cycle[world.signals.interval].name
        if runs and runs[-1][0] == name:
            runs[-1][1] += world.dt
        else:
            runs.append([name, world.dt])
    after = runs[1:4]  # the stuck green, then the plan resumes
    assert runs[0][1] > 40 and after[0][0].endswith("amber") and after[0][1] >= 4.0 - 1e-6
    assert after[1][0] == "all red" and after[1][1] >= 2.5 - 1e-6


def test_an_anomaly_closes_within_seconds_of_its_fault_ending():
    # a 3 s sensor dropout used to keep its anomaly open for 52 s (the CUSUM drained at the slack
    # alone), and charging the RL cost all that time
    world = _faulty_world("highway", [{"kind": "sensor_dropout", "at_s": 10, "actor": "closest_follower",
                                       "duration_s": 3}])
    sup = _watch(world, 18.0, Supervisor())
    culprit, fault_end = world.faults.log[0]["actors"][0], world.faults.log[0]["end_s"]
    sup.take_window()
    _watch(world, 22.0, sup)
    assert sup.step_info(sup.take_window(), culprit, since_s=18.0)["cost"] == 0.0
    sensor = [e for e in sup.events if e.kind == "sensor" and e.actors == (culprit,)]
    assert sensor and sensor[0].severity == "high"
    assert max(e.end_s for e in sensor) <= fault_end + 4.0


def _staged(actors: list[dict], faults: list[dict], network: dict | None = None) -> World:
    return World(load_scenario({"name": "staged", "duration_s": 60, "ego": {"controlled": 0},
                                "demand": {"vehicles": 0, "vehicles_per_hour": 0, "ramp_vehicles_per_hour": 0},
                                "network": network or {"kind": "highway", "lanes": 2, "on_ramp": False,
                                                       "curve_angle_deg": 0},
                                "actors": actors, "faults": faults}))


def test_a_crashed_pair_raises_no_more_hazards_while_it_waits_for_the_tow():
    world = _staged([{"lane": "main_1", "s_m": 200, "speed_mps": 20, "keep_lane": True},
                     {"lane": "main_1", "s_m": 260, "speed_mps": 0}],
                    [{"kind": "hard_brake", "actor": 1, "at_s": 0}, {"kind": "inattention", "actor": 0, "at_s": 0}])
    sup = _watch(world, 25.0, Supervisor())
    crash = [e for e in world.events if e.kind == "collision"]
    assert crash and set(crash[0].actors) == {0, 1}
    later = [e for e in sup.events if e.category == "hazard" and e.end_s > crash[0].time + 1.0]
    assert later == []  # used to be TTC at gap 0 until the tow 30 s later


def test_crossing_conflict_values_are_never_negative():
    world = World(load_scenario("intersection", {"ego.controlled": 0, "drivers.signal_compliance": 0.5,
                                                 "demand.vehicles_per_hour": 900}))
    sup = _watch(world, 180.0, Supervisor())
    conflicts = [e.worst for e in sup.events if e.kind == "crossing_conflict"]
    assert conflicts and min(conflicts) >= 0.0


def test_a_close_cut_in_is_flagged_although_the_follower_already_brakes():
    # 8 m ahead, 5 m/s slower: the follower brakes at once, so TTC at current accelerations is
    # infinite at the 5 Hz check; the cut-in itself is the hazard
    world = _staged([{"lane": "main_0", "s_m": 300, "speed_mps": 20, "keep_lane": True},
                     {"lane": "main_1", "s_m": 317.5, "speed_mps": 15, "keep_lane": True}],  # 8 m gap at 1 s
                    [{"kind": "lane_change", "actor": 1, "at_s": 1.0, "direction": "left"}])
    sup = _watch(world, 8.0, Supervisor())
    cut = [e for e in sup.events if e.kind == "cut_in"]
    assert cut and cut[0].actors == (1, 0) and cut[0].severity in ("medium", "high")
    assert 0.0 < cut[0].worst < 2.0  # constant-speed TTC about 8 m / 5 m/s at the cut-in: medium
    assert not [e for e in world.events if e.kind == "collision"]


def test_alerts_carry_the_futures_collision_probability_and_it_raises_their_severity():
    from agents.supervisor.config import Foresight

    world = _faulty_world("intersection", [{"kind": "brake_failure", "at_s": 20, "actor": "closest_follower"}])
    sup = _watch(world, 60.0, Supervisor(SupervisorConfig(foresight=Foresight(futures=6, horizon_s=6.0))),
                 stop_on="collision")
    culprit = world.faults.log[0]["actors"][0]
    crash = next(e for e in world.events if e.kind == "collision")
    before = [a for a in sup.alerts if a["time_s"] < crash.time and any(culprit in e["actors"] for e in a["events"])]
    assert before
    last = before[-1]  # just before the crash: every future of a car without brakes collides
    assert "In 6 of 6 futures run from now a collision follows within 6 s" in last["triage"]["explanation"]
    assert last["triage"]["severity"] == "high" and last["triage"]["alert_operator"]
    assert sup.summary()["foresight_s"] > 0
    # the same run without foresight: the same alerts, the explanations without the futures
    world = _faulty_world("intersection", [{"kind": "brake_failure", "at_s": 20, "actor": "closest_follower"}])
    blind = _watch(world, 60.0, Supervisor(SupervisorConfig(foresight=Foresight(futures=0))), stop_on="collision")
    assert [a["time_s"] for a in blind.alerts] == [a["time_s"] for a in sup.alerts]
    assert not any("futures" in a["triage"]["explanation"] for a in blind.alerts)
    raised = [(a, b) for a, b in zip(sup.alerts, blind.alerts) if a["triage"]["severity"] != b["triage"]["severity"]]
    assert all(a["triage"]["severity"] == "high" for a, _ in raised)  # raised, never lowered


def test_foresight_leaves_the_world_as_it_was():
    from agents.supervisor.config import Foresight

    runs = []
    for futures in (0, 4):
        world = _faulty_world("intersection", [{"kind": "brake_failure", "at_s": 20, "actor": "closest_follower"}])
        sup = _watch(world, 40.0, Supervisor(SupervisorConfig(foresight=Foresight(futures=futures))))
        runs.append((world.time, world.vehicles.x.copy(), [(e.kind, e.time, e.actors) for e in world.events]))
    assert sup.foresight_s > 0 and any("futures run from now" in a["triage"]["explanation"] for a in sup.alerts)
    assert runs[0][0] == runs[1][0] and (runs[0][1] == runs[1][1]).all() and runs[0][2] == runs[1][2]


def test_a_world_too_large_for_futures_is_triaged_without_them_and_counted():
    from agents.supervisor.config import Foresight

    world = _faulty_world("intersection", [{"kind": "brake_failure", "at_s": 20, "actor": "closest_follower"}])
    sup = _watch(world, 40.0, Supervisor(SupervisorConfig(foresight=Foresight(futures=4, max_vehicles=5))))
    assert sup.alerts and not any("futures" in a["triage"]["explanation"] for a in sup.alerts)
    assert sup.summary()["foresight_skipped"] == sum(
        any(e["category"] != "incident" for e in a["events"]) for a in sup.alerts) > 0

"""Surrogate safety measures and hazard events on hand-built situations."""

import numpy as np
import pytest

from agents.supervisor.hazards import HazardTracker
from agents.supervisor.measures import leader_measures, rss_distance, ttc_with_accelerations
from tests.conftest import bare_world


def test_measures_of_a_car_closing_on_a_slower_one(lane_named):
    world = bare_world("highway")
    lane = lane_named(world, "main_1")
    follower = world.add_vehicle(lane, 100.0, v=30.0)
    world.add_vehicle(lane, 150.0, v=20.0)
    m = leader_measures(world.snapshot())
    k = list(m.follower).index(follower)
    gap = 50.0 - 4.5  # centre distance minus two half car lengths
    assert m.gap_m[k] == pytest.approx(gap, abs=0.01)
    assert m.ttc_s[k] == pytest.approx(gap / 10.0, rel=1e-3)
    assert m.headway_s[k] == pytest.approx(gap / 30.0, rel=1e-3)
    assert m.drac_mps2[k] == pytest.approx(100.0 / (2 * gap), rel=1e-3)
    assert m.rss_violation[k]  # 45 m at 30 m/s behind a 20 m/s car is closer than RSS allows


def test_ttc_with_accelerations_and_rss():
    # leader braking to a stop: the constant-velocity TTC is infinite, the accelerated one is not
    assert ttc_with_accelerations([20.0], [10.0], [10.0], [0.0], [-5.0])[0] == pytest.approx(3.0, abs=0.06)
    assert np.isinf(ttc_with_accelerations([20.0], [10.0], [10.0], [0.0], [0.0])[0])
    # RSS grows with the follower's speed and shrinks with the leader's
    assert rss_distance(np.array([30.0]), np.array([0.0]))[0] > rss_distance(np.array([20.0]), np.array([0.0]))[0]
    assert rss_distance(np.array([20.0]), np.array([40.0]))[0] == 0.0  # leader much faster: no constraint


def test_a_car_closing_on_a_stopped_car_is_flagged_once_before_the_collision(lane_named):
    world = bare_world("highway", **{"network.lanes": 1, "network.on_ramp": False})
    lane = lane_named(world, "main_0")
    # an inattentive driver: does not brake (reaction far too slow, no headway)
    follower = world.add_vehicle(lane, 100.0, v=25.0, headway=0.0, min_gap=0.0, reaction_time=1.5)
    world.add_vehicle(lane, 180.0, v=0.0)
    world.set_vehicle_params(follower, speed_factor=1.5)
    world.vehicles.b_max[world.vehicles.row(follower)] = 0.5  # brake failure
    world.vehicles.b_comf[world.vehicles.row(follower)] = 0.5
    world.vehicles.a_max[world.vehicles.row(follower)] = 0.01
    tracker = HazardTracker()
    crash_time = None
    for _ in range(10 * world.config.sim_hz):
        events = world.step()
        tracker.update(world.snapshot())
        if any(e.kind == "collision" for e in events):
            crash_time = world.time
            break
    assert crash_time is not None, "the scenario must end in a collision"
    ttc = [e for e in tracker.events if e.kind == "ttc" and e.actors[0] == follower]
    assert len(ttc) == 1  # one near miss is one event, not one per step
    assert crash_time - ttc[0].start_s >= 1.5  # flagged well before the crash
    assert ttc[0].severity == "high" and ttc[0].worst < 1.0
    assert any(e.kind == "collision" for e in tracker.events)


def test_normal_following_raises_no_hazard(lane_named):
    world = bare_world("highway", **{"network.lanes": 1, "network.on_ramp": False})
    lane = lane_named(world, "main_0")
    world.add_vehicle(lane, 100.0, v=25.0)
    world.add_vehicle(lane, 160.0, v=25.0)
    tracker = HazardTracker()
    for _ in range(20 * world.config.sim_hz):
        world.step()
        tracker.update(world.snapshot())
    assert tracker.events == []

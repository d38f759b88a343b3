"""The structured snapshot every view is derived from."""

import numpy as np

from twin.scenario import load_scenario
from envs.world import World
from tests.conftest import bare_world


def test_snapshot_gives_typed_actors_relations_signals_and_crossings():
    world = World(load_scenario("intersection", {"ego.controlled": 1}), seed=4)
    world.advance(20 * 15)
    state = world.snapshot()
    actors = state.actors()
    kinds = {a.kind for a in actors}
    assert {"car", "pedestrian"} <= kinds
    assert sum(a.controlled for a in actors) == 1
    assert len(actors) == len(world.vehicles) + len(world.pedestrians)
    for rel in state.relations():
        assert rel.gap_m > -0.5  # no overlap among followers
        if rel.time_to_collision_s is not None:
            assert rel.closing_speed_mps > 0 and abs(rel.time_to_collision_s * rel.closing_speed_mps - rel.gap_m) < 1e-6
    assert len(state.signals()) == 4 and {s.state for s in state.signals()} <= {"green", "amber", "red"}
    assert {c.name for c in state.crossings()} == {"N_crosswalk", "E_crosswalk", "S_crosswalk", "W_crosswalk"}


def test_snapshot_is_a_copy_that_does_not_move_with_the_world(lane_named):
    world = bare_world("crosswalk")
    world.add_vehicle(lane_named(world, "eastbound"), 50.0, 8.0)
    state = world.snapshot()
    x0 = state.vehicles["x"].copy()
    world.advance(15)
    np.testing.assert_array_equal(state.vehicles["x"], x0)
    assert world.vehicles.x[0] > x0[0] + 5.0


def test_leader_relation_names_the_car_ahead(lane_named):
    world = bare_world("highway")
    lane = lane_named(world, "main_2")
    back = world.add_vehicle(lane, 100.0, 25.0)
    front = world.add_vehicle(lane, 140.0, 20.0)
    rel = {r.subject: r for r in world.snapshot().relations()}
    assert rel[back].object == front
    assert abs(rel[back].gap_m - (40.0 - 4.5)) < 1e-6
    assert abs(rel[back].time_to_collision_s - 35.5 / 5.0) < 1e-6


def test_an_old_snapshot_keeps_the_limits_and_closures_it_saw():
    world = bare_world("highway")
    before = world.snapshot()
    posted = before.lane_speed_limit.copy()
    world.set_speed_limit(10.0)
    lane = next(k for k in range(len(world.network.lanes)) if world.close_lane(k))
    after = world.snapshot()
    assert np.array_equal(before.lane_speed_limit, posted) and not before.lane_closed.any()
    assert after.lane_speed_limit.max() == 10.0 and after.lane_closed[lane]
    assert np.array_equal(world.network.lane_speed_limit, posted)  # the network itself is never changed

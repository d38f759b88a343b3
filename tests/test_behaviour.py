"""Behaviour models on bare worlds: each test builds the exact situation it checks."""

import numpy as np
import pytest

from envs.actors import CROSS, WAIT
from envs.behaviour import MOBIL_SAFE_DECEL, idm
from tests.conftest import bare_world


def test_idm_stops_at_min_gap_behind_stopped_car(lane_named):
    world = bare_world("highway", **{"network.lanes": 1, "network.on_ramp": False})
    lane = lane_named(world, "main_0")
    world.add_vehicle(lane, 400.0, 0.0, speed_factor=0.0)  # a car that stays stopped
    follower = world.add_vehicle(lane, 150.0, 28.0, min_gap=2.0, headway=1.5, speed_factor=1.0)
    world.advance(60 * 15)
    r = world.vehicles.row(follower)
    assert world.vehicles.v[r] < 0.05
    assert abs(world.leader_gap[r] - 2.0) < 0.3
    assert not [e for e in world.events if e.kind == "collision"]


def test_mobil_never_forces_new_follower_beyond_safe_braking(lane_named):
    rng = np.random.default_rng(1)
    changes = 0
    for trial in range(40):
        world = bare_world("highway", seed=trial)
        lanes = [lane_named(world, f"main_{k}") for k in range(4)]
        for _ in range(40):
            lane, s, v = int(rng.choice(lanes)), float(rng.uniform(20, 900)), float(rng.uniform(5, 30))
            if world.clear_at(lane, s, 4.5, v, 0.8, 2.0):
                world.add_vehicle(lane, s, v)
        before = world.vehicles.target_lane.copy()
        world.step(1.0 / 15)  # t=0 -> first decision tick happens at t=0 crossing; force one below
        world.time = 0.999
        world.step(1.0 / 15)
        veh = world.vehicles
        for r in np.flatnonzero(veh.target_lane != veh.lane):
            if before[r] == veh.target_lane[r]:
                continue
            changes += 1
            behind = world.query_behind(veh.target_lane[r : r + 1], veh.s[r : r + 1])[0]
            if behind < 0 or behind == r:
                continue
            gap = veh.s[r] - veh.s[behind] - 0.5 * (veh.length[r] + veh.length[behind])
            v0 = veh.speed_factor[behind] * 30.0
            a = idm(veh.v[behind], v0, veh.headway[behind], veh.min_gap[behind], veh.a_max[behind],
                    veh.b_comf[behind], gap, veh.v[r])
            assert a >= -MOBIL_SAFE_DECEL - 0.3, (trial, r, a)
    assert changes > 10  # the property was exercised


def test_mobil_refuses_change_in_front_of_fast_close_follower(lane_named):
    two_lanes = {"network.lanes": 2, "network.on_ramp": False}
    world = bare_world("highway", **two_lanes)
    l0, l1 = lane_named(world, "main_0"), lane_named(world, "main_1")
    world.add_vehicle(l1, 330.0, 5.0, speed_factor=5.0 / 30.0, politeness=0.0)  # slow leader: reason to leave lane 1
    me = world.add_vehicle(l1, 300.0, 20.0)
    world.add_vehicle(l0, 292.0, 30.0)  # fast car right beside-behind in the target lane
    world.time = 0.99
    world.step()
    assert world.vehicles.target_lane[world.vehicles.row(me)] == l1
    # without the fast follower the same driver changes
    world = bare_world("highway", **two_lanes)
    world.add_vehicle(l1, 330.0, 5.0, speed_factor=5.0 / 30.0, politeness=0.0)
    me = world.add_vehicle(l1, 300.0, 20.0)
    world.time = 0.99
    world.step()
    assert world.vehicles.target_lane[world.vehicles.row(me)] == l0


def test_vehicle_stops_at_red_and_goes_on_green(lane_named):
    world = bare_world("intersection")
    lane = lane_named(world, "N_in_through")
    world.signals.set_interval(3)  # E green: north is red
    vid = world.add_vehicle(lane, 60.0, 12.0)
    world.advance(15 * 15)
    r = world.vehicles.row(vid)
    front = world.vehicles.s[r] + 0.5 * world.vehicles.length[r]
    line = world.network.lane_s_to[lane]
    assert world.vehicles.v[r] < 0.05 and 0.0 <= line - front < 3.0
    world.signals.set_interval(0)  # N green
    world.advance(15 * 10)
    assert world.vehicles.lane[world.vehicles.row(vid)] != lane
    assert not [e for e in world.events if e.kind in ("red_light", "collision")]


def _pedestrian_at_curb(world, critical_gap, speed=1.3):
    route = world.network.sidewalk_routes[0]
    path = np.array([route.a0, route.a1, route.b0, route.b1])
    approach = np.linalg.norm(path[1] - path[0])
    return world.add_pedestrian(path, route.crossing, s=approach, critical_gap=critical_gap, speed=speed)


def test_pedestrian_waits_below_critical_gap_and_crosses_above(lane_named):
    world = bare_world("crosswalk")
    lane = lane_named(world, "eastbound")
    zone_in = min(s_in for ln, s_in, _ in world.network.crossings[0].zones if ln == lane)
    # car arriving in about 3 s at a constant 8 m/s: gap below the 5 s threshold
    world.add_vehicle(lane, zone_in - 2.25 - 24.0, 8.0, speed_factor=8.0 / 8.3)
    ped = _pedestrian_at_curb(world, critical_gap=5.0)
    world.step()
    assert world.pedestrians.phase[world.pedestrians.row(ped)] == WAIT
    world = bare_world("crosswalk")
    world.add_vehicle(lane, zone_in - 2.25 - 64.0, 8.0, speed_factor=8.0 / 8.3)  # about 8 s away
    ped = _pedestrian_at_curb(world, critical_gap=5.0)
    world.step()
    assert world.pedestrians.phase[world.pedestrians.row(ped)] == CROSS


def test_vehicles_yield_to_pedestrian_in_crosswalk(lane_named):
    world = bare_world("crosswalk")
    lane = lane_named(world, "eastbound")
    ped = _pedestrian_at_curb(world, critical_gap=2.5, speed=0.9)
    world.step()
    assert world.pedestrians.phase[world.pedestrians.row(ped)] == CROSS
    zone_in = min(s_in for ln, s_in, _ in world.network.crossings[0].zones if ln == lane)
    vid = world.add_vehicle(lane, zone_in - 30.0, 8.0)
    stopped_before_zone = False
    front = 0.0
    while world.time < 40.0 and front < zone_in + 10.0:
        world.step()
        r = world.vehicles.row(vid)
        front = world.vehicles.s[r] + 2.25
        if world.occupied[0]:
            assert front <= zone_in + 0.01, "entered the crosswalk while a pedestrian was on it"
            stopped_before_zone |= world.vehicles.v[r] < 0.05
    assert stopped_before_zone
    assert front >= zone_in + 10.0  # and went on once the pedestrian had crossed
    assert not [e for e in world.events if e.kind == "collision"]


def test_a_cut_in_close_ahead_is_met_with_plausible_braking_not_idms_overreaction(lane_named):
    """A car cuts in 8 m ahead, 5 m/s slower, and keeps its speed: the kinematic need is
    (5 m/s)^2 / (2 x 8 m) = 1.56 m/s^2. Plain IDM asks for far more (clamped only at the
    maximum deceleration); the ACC model's bound keeps the follower within about its
    comfortable deceleration beyond that need, and nobody collides."""
    from envs.behaviour import acc, cah

    world = bare_world("highway", **{"network.lanes": 1, "network.on_ramp": False})
    lane = lane_named(world, "main_0")
    follower = world.add_vehicle(lane, 300.0, 20.0, speed_factor=1.0)
    r = world.vehicles.row(follower)
    length = float(world.vehicles.length[r])
    world.add_vehicle(lane, 300.0 + length + 8.0, 15.0, speed_factor=15.0 / 30.0)  # the cut-in, at its own pace
    veh = world.vehicles
    b_comf, b_max = float(veh.b_comf[r]), float(veh.b_max[r])
    raw = float(idm(20.0, 30.0, veh.headway[r], veh.min_gap[r], veh.a_max[r], b_comf, 8.0, 15.0))
    need = cah(20.0, 15.0, 0.0, 8.0, float(veh.a_max[r]))
    assert need == np.float64(-25.0 / 16.0) and raw < -b_max  # IDM alone would brake at the maximum
    assert -need - 1e-9 <= -acc(raw, need, b_comf, b_max) <= -need + b_comf + 0.01 * b_max + 1e-9
    decelerations = []
    for _ in range(5 * 15):
        world.step()
        decelerations.append(-float(world.vehicles.a[world.vehicles.row(follower)]))
    assert max(decelerations) <= -need + b_comf + 0.1  # never beyond the need plus its comfortable deceleration
    assert max(decelerations) >= -need * 0.8  # and it does brake for the cut-in
    assert not [e for e in world.events if e.kind == "collision"]


def test_drivers_see_a_leader_beyond_a_chain_of_short_junction_lanes():
    """Real junctions are chains of short internal lanes: the leader search goes on by
    distance (LOOKAHEAD_M), not only a fixed number of lanes."""
    from envs import kernels
    from envs.actors import ROUTE_HOPS
    from envs.world.world import LOOKAHEAD_HOPS, LOOKAHEAD_M, LOOKAHEAD_MIN_HOPS

    n_lanes = 6  # six 10 m lanes in a row; a car on the first, its leader on the last
    lane, s = np.array([0, 5]), np.array([1.0, 5.0])
    length, width = np.array([4.0, 4.0]), np.array([1.8, 1.8])
    none = np.full(n_lanes, -1)
    keys, key_lane, key_veh = kernels.occupancy(lane, lane, s, np.zeros(2), np.zeros(2), length, width,
                                                np.zeros(n_lanes), np.full(n_lanes, 3.5), none, none,
                                                kernels.KEY_SCALE)
    nxt = np.array([1, 2, 3, 4, 5, -1])
    turns = (nxt, np.zeros(n_lanes), np.array([0, 1, 2, 3, 4, 5, 5]), nxt[:5], np.zeros(5), np.arange(n_lanes))
    no_route = np.zeros((2, ROUTE_HOPS), dtype=np.int64)

    def leader(min_hops, lookahead_m):
        lead, gap, _, _, _ = kernels.leaders(keys, key_lane, key_veh, lane, lane, s, 0.5 * length, no_route, *turns,
                                          np.full(n_lanes, 10.0), np.zeros(n_lanes, dtype=bool), LOOKAHEAD_HOPS,
                                          kernels.KEY_SCALE, min_hops, lookahead_m)
        return int(lead[0]), float(gap[0])

    assert leader(LOOKAHEAD_MIN_HOPS, LOOKAHEAD_M) == (1, 50.0 + 5.0 - 1.0 - 4.0)
    assert leader(LOOKAHEAD_MIN_HOPS, 0.0)[0] == -1  # three lanes only (30 m): what drivers saw before


def _world_on(monkeypatch, lanes, edges):
    """An empty world on a network of ``lanes`` over the ``edges`` (envs.geometry paths)."""
    import envs.world.world as world_module
    from envs.network import Network
    from envs.world import World
    from twin.scenario import load_scenario

    monkeypatch.setattr(world_module, "_network_for", lambda config: Network(edges=edges, lanes=lanes))
    empty = {"ego.controlled": 0, "demand.vehicles": 0, "demand.vehicles_per_hour": 0,
             "demand.ramp_vehicles_per_hour": 0}
    return World(load_scenario("highway", empty), populate=False)


def _fork_world(monkeypatch):
    """A lane that leads straight on (its ``next``) and also off to the right (a successor)."""
    from envs.geometry import Path
    from envs.network import Lane

    lanes = [Lane(edge=0, offset=0.0, width=3.5, speed_limit=20.0, next=1, successors=[(2, 0.0)], name="in"),
             Lane(edge=1, offset=0.0, width=3.5, speed_limit=20.0, name="straight"),
             Lane(edge=2, offset=0.0, width=3.5, speed_limit=20.0, name="off")]
    edges = [Path.straight((0.0, 0.0), (100.0, 0.0)), Path.straight((100.0, 0.0), (200.0, 0.0)),
             Path.straight((100.0, 0.0), (180.0, -60.0))]
    return _world_on(monkeypatch, lanes, edges)


def test_a_vehicle_follows_its_route_where_a_lane_leads_to_several(monkeypatch):
    world = _fork_world(monkeypatch)
    plain = world.add_vehicle(0, 20.0, 15.0)
    routed = world.add_vehicle(0, 50.0, 15.0)
    world.set_route(routed, [2])
    parked = world.add_vehicle(2, 60.0, 0.0, speed_factor=0.0)  # stands on the off lane
    lanes = {}
    for _ in range(25 * 15):
        world.step()
        veh = world.vehicles
        for vid in (plain, routed):
            if vid in veh.id:
                r = veh.row(vid)
                lanes.setdefault(vid, []).append(world.network.lanes[veh.lane[r]].name)
                if vid == routed and veh.lane[r] == 0:
                    assert world.leader[r] == veh.row(parked)  # seen across the fork, on its route
                if vid == plain and veh.lane[r] == 0:
                    assert world.leader[r] != veh.row(parked)
    assert lanes[plain][-1] == "straight" and "off" not in lanes[plain]
    assert lanes[routed][-1] == "off"
    r = world.vehicles.row(routed)
    assert world.vehicles.v[r] < 0.5 and not [e for e in world.events if e.kind == "collision"]  # stopped behind it
    with pytest.raises(ValueError, match="not in the network"):
        world.set_route(plain, [7])


def _exit_world(monkeypatch):
    """A two-lane road whose right lane leads to an exit and whose left lane goes straight on."""
    from envs.geometry import Path
    from envs.network import Lane

    lanes = [Lane(edge=0, offset=-1.75, width=3.5, speed_limit=20.0, next=2, name="right"),
             Lane(edge=0, offset=1.75, width=3.5, speed_limit=20.0, next=3, name="left"),
             Lane(edge=2, offset=0.0, width=3.5, speed_limit=20.0, name="exit"),
             Lane(edge=1, offset=0.0, width=3.5, speed_limit=20.0, name="on")]
    edges = [Path.straight((0.0, 0.0), (300.0, 0.0)), Path.straight((300.0, 1.75), (500.0, 1.75)),
             Path.straight((300.0, -1.75), (400.0, -60.0))]
    return _world_on(monkeypatch, lanes, edges)


def test_a_routed_driver_changes_to_a_lane_that_leads_on_before_its_own_ends(monkeypatch):
    world = _exit_world(monkeypatch)
    names = [ln.name for ln in world.network.lanes]
    leaving = world.add_vehicle(names.index("left"), 20.0, 15.0, politeness=0.2)
    staying = world.add_vehicle(names.index("left"), 60.0, 15.0, politeness=0.2)
    world.set_route(leaving, [2])  # the exit's edge: only the right lane leads there
    world.set_route(staying, [1])  # straight on: only the left lane does (keeping right would miss it)
    seen = {leaving: set(), staying: set()}
    for _ in range(22 * 15):
        world.step()
        veh = world.vehicles
        for vid in seen:
            if vid in veh.id:
                seen[vid].add(names[veh.lane[veh.row(vid)]])
    assert "exit" in seen[leaving] and "on" not in seen[leaving]
    assert "on" in seen[staying] and "exit" not in seen[staying]
    assert not [e for e in world.events if e.kind == "collision"]


def test_the_collision_sweep_finds_exactly_the_overlapping_pairs_an_all_pairs_test_finds():
    """The broad phase sorts along x and tests only near boxes; on crowds of random boxes (some
    turned, some crashed) it must find every overlapping pair and no other, in the order of
    an all-pairs scan, with the separating-axis test deciding."""
    from envs import kernels

    def corners(x, y, h, length, width):
        c, s = np.cos(h), np.sin(h)
        along, across = np.array([c, s]) * length / 2, np.array([-s, c]) * width / 2
        centre = np.array([x, y])
        return [centre + a * along + b * across for a, b in ((1, 1), (1, -1), (-1, -1), (-1, 1))]

    def overlap(p, q):
        for poly in (p, q):
            for k in range(4):
                edge = poly[(k + 1) % 4] - poly[k]
                axis = np.array([-edge[1], edge[0]])
                a, b = [axis @ c for c in p], [axis @ c for c in q]
                if max(a) < min(b) or max(b) < min(a):
                    return False
        return True

    rng = np.random.default_rng(7)
    found_any = 0
    for _ in range(40):
        n = int(rng.integers(2, 60))
        x, y = rng.uniform(0, 60, n), rng.uniform(0, 20, n)
        heading = rng.uniform(-np.pi, np.pi, n)
        length, width = rng.choice([4.5, 12.0], n), rng.choice([1.8, 2.5], n)
        crashed = rng.random(n) < 0.2
        boxes = [corners(x[k], y[k], heading[k], length[k], width[k]) for k in range(n)]
        expected = [(i, j) for i in range(n) for j in range(i + 1, n)
                    if not (crashed[i] and crashed[j]) and overlap(boxes[i], boxes[j])]
        i, j = kernels.vehicle_collisions(x, y, heading, length, width, crashed)
        assert list(zip(i.tolist(), j.tolist())) == expected
        found_any += len(expected)
    assert found_any > 50  # the crowds were dense enough to test the narrow phase

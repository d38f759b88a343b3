"""The statistical realism score (``realism.statistics``) and its trajectories (``realism.trajectories``)."""

from __future__ import annotations

import gzip
import json
import math

import numpy as np
import pytest
from rich.console import Console

from realism.statistics import WEIGHTS, assess, features, table
from realism.trajectories import (Event, TrajectoryError, Trajectories, load, random_accelerations, random_kinematics,
                                  scale_speeds)
from shadow.recorder import TrajectoryRecorder
from twin.run import simulate


@pytest.fixture(scope="module")
def highway(tmp_path_factory):
    """A minute of the highway scenario (rule-based humans): its run directory and its FCD."""
    out = tmp_path_factory.mktemp("realism")
    recorder = TrajectoryRecorder(fcd=out / "run.fcd.xml")
    try:
        simulate("highway", minutes=1.0, out=out / "run", humans="rule", console=Console(quiet=True),
                 observers=[recorder])
    finally:
        recorder.close()
    return out / "run", out / "run.fcd.xml"


@pytest.fixture(scope="module")
def run(highway):
    return load(highway[0])


@pytest.fixture(scope="module")
def self_report(run):
    return assess(run, run)


def _values(report) -> dict[str, float | None]:
    return {c.name: c.value for c in report.components}


def test_a_run_against_itself_scores_one_and_the_baseline_is_near_it(run, self_report):
    assert run.kind == "run" and run.vehicle_count > 50 and run.collisions == 0
    assert self_report.score == pytest.approx(1.0)
    assert all(v == pytest.approx(1.0) for v in _values(self_report).values())
    assert sum(c.weight for c in self_report.components) == pytest.approx(1.0)
    assert sum(c.contribution for c in self_report.components) == pytest.approx(self_report.score)
    assert 0.85 < self_report.baseline.score <= 1.0
    assert self_report.floor.score < self_report.baseline.score - 0.2


def test_faster_speeds_score_clearly_lower(run, self_report):
    report = assess(scale_speeds(run, 1.5), run)
    assert report.score < self_report.baseline.score - 0.05
    assert _values(report)["speed"] < 0.1
    assert report.floor.score == pytest.approx(self_report.floor.score)  # the floor depends on the reference only


def test_random_accelerations_score_clearly_lower(run, self_report):
    report = assess(random_accelerations(run, 2.0, seed=1), run)
    assert report.score < self_report.baseline.score - 0.1
    values = _values(report)
    assert values["acceleration"] < 0.5 and values["jerk"] < 0.5
    assert report.floor.score < report.score  # a random rollout is worse still


def test_a_twin_run_and_its_fcd_give_nearly_the_same_distributions(highway, run):
    fcd = load(highway[1])
    assert fcd.kind == "fcd" and fcd.events is None and fcd.collisions is None
    assert set(fcd.ids) == set(run.ids)
    report = assess(fcd, run)
    values = _values(report)
    for name in ("collision_rate", "off_road_rate", "red_light_rate"):  # a log does not observe events
        assert values[name] is None
        assert next(c for c in report.components if c.name == name).weight == 0.0
    observed = {k: v for k, v in values.items() if v is not None}
    assert min(observed.values()) > 0.85, observed
    assert report.score > 0.95
    assert report.run["events"]["collision"] == "not observed"
    a, b = features(run), features(fcd)
    for name in ("speed", "time_headway", "nearest_distance"):
        assert np.median(a.values[name]) == pytest.approx(np.median(b.values[name]), rel=0.05, abs=0.1)


def test_the_report_is_json_ready_and_prints(self_report):
    data = json.loads(json.dumps(self_report.to_dict()))
    assert data["score"] == pytest.approx(1.0)
    assert {c["name"] for c in data["components"]} == set(WEIGHTS)
    assert data["baseline"]["score"] > data["floor"]["score"]
    console = Console(record=True, width=200)
    console.print(table(self_report))
    text = console.export_text()
    assert "meta score" in text and "baseline" in text and "time_headway" in text


# ---- synthetic trajectories --------------------------------------------------------------------
def _platoon(speeds: tuple[float, ...] = (20.0, 20.0), gap_m: float = 30.0, seconds: float = 20.0,
             events: list[Event] | None = None, lanes: tuple[str, ...] | None = None) -> Trajectories:
    """Vehicles on a straight road along +x, each ``gap_m`` behind the one before, sampled at 10 Hz."""
    t = np.arange(0.0, seconds + 1e-9, 0.1)
    ids, ts, xs, ys, vs, ls = [], [], [], [], [], []
    for k, v in enumerate(speeds):
        ids += [str(k)] * len(t)
        ts.append(t)
        xs.append(1000.0 - k * gap_m + v * t)
        ys.append(np.zeros(len(t)))
        vs.append(np.full(len(t), v))
        ls += [(lanes[k] if lanes else "road_0")] * len(t)
    return Trajectories.from_rows("synthetic", "synthetic", ids, np.concatenate(ts), np.concatenate(xs),
                                  np.concatenate(ys), speed=np.concatenate(vs), lane=ls, length=4.5, width=1.8,
                                  events=[] if events is None else events)


def test_headway_ttc_and_nearest_distance_of_a_platoon():
    s = features(_platoon(speeds=(20.0, 25.0), gap_m=30.0, seconds=2.0))
    # the follower (25 m/s) closes in on the leader (20 m/s) 30 m ahead at t = 0
    assert s.values["time_headway"][0] == pytest.approx((30.0 - 4.5) / 25.0, rel=1e-6)
    assert s.values["ttc"][0] == pytest.approx((30.0 - 4.5) / 5.0, rel=1e-6)
    assert s.values["nearest_distance"].min() == pytest.approx(30.0 - 4.5 - 5.0 * 2.0, abs=1e-6)
    assert len(s.values["ttc"]) == len(s.values["time_headway"])  # only the follower has a leader
    beside = features(_platoon(speeds=(20.0, 20.0), gap_m=0.0, seconds=2.0, lanes=("road_0", "road_1")))
    assert len(beside.values["time_headway"]) == 0  # different lanes: no leader


def test_lane_changes_are_counted_within_a_road_not_across_edges():
    t = np.arange(0.0, 40.0, 0.5)
    lanes = ["a_0"] * 20 + ["a_1"] * 20 + ["b_0"] * 40  # one lane change, then onto another edge
    traj = Trajectories.from_rows("synthetic", "synthetic", ["v"] * len(t), t, 20.0 * t, np.zeros(len(t)),
                                  speed=np.full(len(t), 20.0), lane=lanes, events=[])
    s = features(traj)
    assert s.lane_changes.sum() == 1
    assert sorted(s.values["lane_change_rate"]) == [0.0, 3.0]  # per vehicle-minute, in two 20-s windows


def test_scale_speeds_integrates_positions_along_the_path():
    base = _platoon(speeds=(20.0,), seconds=10.0)
    fast = scale_speeds(base, 1.5)
    assert np.allclose(fast.speed, 30.0)
    assert np.allclose(fast.x, 1000.0 + 30.0 * fast.t, atol=1e-6)
    assert fast.t.max() == pytest.approx(200.0 / 30.0, abs=0.1)  # it leaves at the end of its 200 m path
    assert fast.events == [] and "speed x1.5" in fast.kind


def test_random_perturbations_are_seeded_and_keep_speeds_non_negative():
    base = _platoon(speeds=(5.0, 20.0), gap_m=50.0)
    a, b = random_accelerations(base, 3.0, seed=4), random_accelerations(base, 3.0, seed=4)
    assert np.array_equal(a.x, b.x) and (a.speed >= 0).all()
    assert not np.allclose(a.speed[: len(a.speed) // 2], 5.0)
    floor = random_kinematics(base, seed=0)
    assert floor.events is None and (floor.speed <= 20.0 + 1e-9).all() and (floor.speed >= 0).all()


def test_collisions_in_the_run_but_not_in_the_reference_score_low():
    crashes = [Event("collision", 5.0, ("0", "1")), Event("collision", 8.0, ("2", "3"))]
    speeds = tuple(20.0 + (k % 3) for k in range(8))
    reference = _platoon(speeds=speeds, gap_m=40.0, seconds=60.0)
    report = assess(_platoon(speeds=speeds, gap_m=40.0, seconds=60.0, events=crashes), reference)
    collision = next(c for c in report.components if c.name == "collision_rate")
    assert collision.value < 0.5 and collision.run_samples == 2 and collision.reference_samples == 0
    assert collision.run_statistic == pytest.approx(2 / (8 * 60.0 / 3600.0), rel=0.05)  # per vehicle-hour
    assert _values(report)["off_road_rate"] == pytest.approx(1.0, abs=0.01)


def test_missing_and_empty_files_are_named(tmp_path):
    for path in (tmp_path / "nowhere.fcd.xml", tmp_path / "empty.csv", tmp_path / "run", tmp_path / "bad"):
        if path.name == "empty.csv":
            path.write_text("")
        elif path.name == "run":
            path.mkdir()
        elif path.name == "bad":
            path.mkdir()
            with gzip.open(path / "trace.jsonl.gz", "wt") as fh:
                fh.write("")
        with pytest.raises(TrajectoryError) as err:
            load(path)
        assert isinstance(err.value, ValueError)
        assert path.name in str(err.value)
    header_only = tmp_path / "header.csv"
    header_only.write_text("frame,time_s,id,x,y\n")
    with pytest.raises(ValueError, match="header.csv"):
        load(header_only)
    assert math.isclose(sum(WEIGHTS.values()), 1.0)

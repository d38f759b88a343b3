"""``run.py explain``: causes of a collision found by forking the world without each of them."""

from __future__ import annotations

import json

import pytest

from causes.counterfactual import ExplainError, explain
from causes.evaluation import DECOYS, _collisions
from scenarios.build import build
from scenarios.spec import CrashSpec
from scenarios.evaluation import DATA, read_set
from twin.run import simulate
from twin.scenario import load_scenario


@pytest.fixture(scope="module")
def staged_rear_end(tmp_path_factory):
    """rear_end_01 staged: a texting driver (inattention) into a stopped car (hard_brake)."""
    import yaml

    report = next(r for r in read_set(DATA / "reports.jsonl") if r["id"] == "rear_end_01")
    scenario, _ = build(CrashSpec.model_validate(report["label"]), {"glance_s": 4.0, "glance_at_s": 1.0})
    folder = tmp_path_factory.mktemp("explain")
    (folder / "crash.yaml").write_text(yaml.safe_dump(scenario))
    simulate(folder / "crash.yaml", out=folder / "run", humans="off")
    return folder / "run"


def test_the_drivers_inattention_is_the_but_for_cause_of_a_staged_rear_end(staged_rear_end, tmp_path):
    from run import main

    assert main(["explain", str(staged_rear_end), "--json", str(tmp_path / "causes.json")]) == 0
    incident = json.loads((tmp_path / "causes.json").read_text())["incidents"][0]
    assert incident["kind"] == "collision" and incident["actors"] == [0, 1]
    classes = {c["cause"].split("#")[0]: c["class"] for c in incident["causes"]}
    assert classes["fault:inattention"] == "but_for"
    but_for = next(c for c in incident["causes"] if c["cause"].startswith("fault:inattention"))
    assert but_for["prevented"] == "10/10" and but_for["evidence_runs"][0]["collided_at_s"] is None
    assert incident["happens_in"] == "10/10"  # the collision itself is robust to the twin's uncertainty
    assert classes["driver:1"] == "irrelevant"  # the stopped car's driving has nothing to do with it


def test_a_fault_beside_a_collision_planted_by_behaviour_is_not_named():
    config = load_scenario(DECOYS[0]["scenario"], {"ego.controlled": 0, "humans": {}, "seed": 2,
                                                   **DECOYS[0]["overrides"], "faults": DECOYS[0]["faults"]})
    from causes.counterfactual import explain_collision

    collision = _collisions(config, 15.0)[0]
    result = explain_collision(config, 0, collision, 10.0, 15.0)
    named = {c["cause"]: c["class"] for c in result["causes"]}
    assert named["fault:sensor_noise#0"] == "irrelevant"


def test_runs_that_cannot_be_explained_say_why(tmp_path):
    with pytest.raises(ExplainError, match="not a run directory"):
        explain(tmp_path)
    out = tmp_path / "llm"
    simulate("intersection", minutes=0.05, out=out, humans="rule")
    with pytest.raises(ExplainError, match="persona humans"):
        explain(out)


def test_an_ensemble_is_the_same_in_one_process_or_two_and_names_who_collides():
    from causes.ensemble import ensemble
    from envs.world import World

    config = load_scenario("intersection", {"ego.controlled": 0, "drivers.signal_compliance": 0.5})
    world = World(config)
    world.advance(65 * config.sim_hz)  # seed 0: a red-light runner is about to cross
    saved = world.get_state()
    serial = ensemble(saved, futures=8, horizon_s=20.0, workers=1)
    parallel = ensemble(saved, futures=8, horizon_s=20.0, workers=2)
    assert serial["outcomes"] == parallel["outcomes"]
    assert 0.0 < serial["p_collision"] < 1.0  # the futures differ where the twin is uncertain
    lo, hi = serial["ci95_collision"]
    assert lo < serial["p_collision"] < hi
    assert serial["most_involved"] and serial["most_involved"][0]["futures"] >= 1
    assert saved.time == world.time and len(saved.vehicles) == len(world.vehicles)  # the saved state is left as it was


def test_a_certain_collision_has_probability_one_and_its_interval_says_how_sure(staged_rear_end):
    from causes.ensemble import ensemble, wilson
    from envs.world import World

    config, _ = __import__("causes.counterfactual", fromlist=["load_run"]).load_run(staged_rear_end)
    world = World(config)
    world.advance(15)  # 1 s: the texting driver will look up too late in every future
    result = ensemble(world.get_state(), futures=10, horizon_s=10.0)
    assert result["p_collision"] == 1.0 and result["most_involved"][0]["actor"] in (0, 1)
    assert wilson(10, 10)[0] == pytest.approx(0.722, abs=1e-3) and wilson(0, 10)[1] == pytest.approx(0.278, abs=1e-3)

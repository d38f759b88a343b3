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
    assert json.loads((staged_rear_end / "causes.json").read_text())["incidents"] == [incident]  # for the inspector
    assert incident["kind"] == "collision" and incident["actors"] == [0, 1]
    classes = {c["cause"].split("#")[0]: c["class"] for c in incident["causes"]}
    assert classes["fault:inattention"] == "but_for"
    but_for = next(c for c in incident["causes"] if c["cause"].startswith("fault:inattention"))
    assert but_for["prevented"] == "10/10" and but_for["evidence_runs"][0]["collided_at_s"] is None
    assert incident["happens_in"] == "10/10"  # the collision itself is robust to the twin's uncertainty
    assert classes["driver:1"] == "irrelevant"  # the stopped car's driving has nothing to do with it
    # the supervisor's triage of the collision is told the causes and the futures, and only backed sentences
    from agents.supervisor.triage import backed_sentences

    assert "Without inattention from 1 s on 0, the collision of actor 0 and actor 1 does not happen, prevented in " \
           "10/10 futures." in incident["triage"]
    assert "In 10 of 10 futures run from 0 s a collision follows" in incident["triage"]
    event = {"kind": "collision", "actors": [0, 1], "start_s": incident["time_s"], "end_s": incident["time_s"],
             "severity": "high", "category": "incident"}
    context = {"causes": incident["causes"], "futures": {"futures": 10, "collisions": 10, "from_s": 0.0,
                                                         "horizon_s": 17.5, "p_collision": 1.0,
                                                         "ci95_collision": [0.7225, 1.0],
                                                         "most_involved": [{"actor": 0, "futures": 10}]}}
    assert backed_sentences(incident["triage"], [event], context)[1] == 0
    invented = "Without the rain, the collision of actor 0 and actor 1 does not happen, prevented in 7/10 futures."
    assert backed_sentences(invented, [event], context)[1] == 1


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
    run = tmp_path / "run"
    simulate("intersection", minutes=0.1, out=run, humans="off")
    with pytest.raises(ExplainError, match="--incident 3: the run has 0 collisions"):
        explain(run, incident=3)
    events = run / "events.jsonl"  # a collision the scenario never produces: recorded with other code
    events.write_text(events.read_text() + json.dumps({"kind": "collision", "time_s": 5.0, "actors": [0, 1]}) + "\n")
    with pytest.raises(ExplainError, match="not reproduced"):
        explain(run, futures=0)


def _answers(system: str, prompt: str) -> str:
    """A model whose drivers speed up and close in (the scripted driver answer), varied by prompt."""
    from agents.llm.scripted import by_role

    return by_role(system, prompt)


@pytest.fixture(scope="module")
def llm_rear_end(tmp_path_factory):
    """rear_end_01 staged with LLM humans (scripted model, remembering): a phone-distracted driver
    embodies the striking car, a commuter the one ahead."""
    import yaml

    from agents.llm.scripted import ScriptedClient

    report = next(r for r in read_set(DATA / "reports.jsonl") if r["id"] == "rear_end_01")
    scenario, _ = build(CrashSpec.model_validate(report["label"]), {"glance_s": 4.0, "glance_at_s": 1.0})
    scenario["humans"] = {"drivers": [{"persona": "phone_distracted", "count": 1},
                                      {"persona": "commuter_late", "count": 1}],
                          "memory": {"embedding": "hash"}, "decision_period_s": {"driver": 2.0}}
    folder = tmp_path_factory.mktemp("explain-llm")
    (folder / "crash.yaml").write_text(yaml.safe_dump(scenario))
    client = ScriptedClient(_answers)
    simulate(folder / "crash.yaml", out=folder / "run", humans="llm", model_client=client)
    (folder / "run" / "asked.json").write_text(json.dumps(client.requests))  # what the run asked its model
    return folder / "run"


def test_a_run_with_llm_humans_is_explained_from_its_recorded_answers(llm_rear_end):
    from agents.llm.scripted import ScriptedClient

    decisions = [json.loads(line) for line in (llm_rear_end / "decisions.jsonl").read_text().splitlines()]
    assert decisions, "the humans decided before the crash"
    client = ScriptedClient(_answers)
    result = explain(llm_rear_end, futures=0, model_client=client)
    incident = result["incidents"][0]
    causes = {c["cause"]: c for c in incident["causes"]}
    assert {"persona:phone_distracted#0", "trait:phone_distracted#0:distraction", "llm:phone_distracted#0",
            "persona:commuter_late#0", "reaction:0", "reaction:1"} <= set(causes)
    assert "driver:0" not in causes  # a persona drives it: the persona and its traits are the candidates
    assert causes["persona:phone_distracted#0"]["evidence_runs"][0]["removed"] == ["persona:phone_distracted#0"]
    inattention = next(c for name, c in causes.items() if name.startswith("fault:inattention"))
    assert inattention["class"] == "but_for"  # the glance at the phone, not the person, is what the crash needs
    # situations the run met were answered from its recorded answers: the model was asked only new ones
    recorded = {tuple(request) for request in json.loads((llm_rear_end / "asked.json").read_text())}
    assert client.requests and not recorded & set(client.requests)


def test_replay_only_explains_without_a_model(llm_rear_end):
    result = explain(llm_rear_end, futures=0, replay_only=True)
    causes = {c["cause"]: c["class"] for c in result["incidents"][0]["causes"]}
    assert causes["fault:inattention#1"] == "but_for" and "llm:phone_distracted#0" in causes


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
    from causes.ensemble import ensemble
    from envs.futures import wilson
    from envs.world import World

    config, _ = __import__("causes.counterfactual", fromlist=["load_run"]).load_run(staged_rear_end)
    world = World(config)
    world.advance(15)  # 1 s: the texting driver will look up too late in every future
    result = ensemble(world.get_state(), futures=10, horizon_s=10.0)
    assert result["p_collision"] == 1.0 and result["most_involved"][0]["actor"] in (0, 1)
    assert wilson(10, 10)[0] == pytest.approx(0.722, abs=1e-3) and wilson(0, 10)[1] == pytest.approx(0.278, abs=1e-3)


def test_a_high_hazard_is_explained_like_a_collision(staged_rear_end):
    """The staged rear-end's close following before the crash (a high headway hazard): the texting
    glance is but-for, the supervisor in the unchanged fork flags it when the run did."""
    from causes.counterfactual import high_hazards

    hazards = high_hazards(staged_rear_end)
    headway = next(k for k, h in enumerate(hazards) if h["kind"] == "headway")
    collisions = 1
    result = explain(staged_rear_end, incident=collisions + headway, hazards=True, futures=0)
    incident = result["incidents"][0]
    assert incident["kind"] == "headway" and incident["actors"] == [0, 1]
    classes = {c["cause"].split("#")[0]: c["class"] for c in incident["causes"]}
    assert classes["fault:inattention"] == "but_for" and classes["driver:1"] == "irrelevant"
    with pytest.raises(ExplainError, match="collisions and high hazards"):
        explain(staged_rear_end, incident=99, hazards=True)

"""``run.py realism``: the statistical score and the language model's judgement together, and what they flag."""

from __future__ import annotations

import json

import pytest

from agents.llm.scripted import ScriptedClient
from realism.report import before, realism
from realism.trajectories import load
from twin.run import simulate


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("realism") / "run"
    simulate("highway", minutes=0.5, out=out, humans="rule")
    return out


def test_a_run_against_itself_scores_one_and_flags_nothing(run_dir, tmp_path):
    from run import main

    assert main(["realism", str(run_dir), "--reference", str(run_dir), "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "realism.json").read_text())
    assert result["statistics"]["score"] == pytest.approx(1.0)
    assert result["flags"] == [] and "judge" not in result


def test_nothing_to_assess_with_is_an_error(run_dir, tmp_path, capsys):
    from run import main

    assert main(["realism", str(run_dir), "--out", str(tmp_path)]) == 2
    assert "--reference" in capsys.readouterr().err


def test_a_stable_no_from_the_model_flags_the_run_and_says_why(run_dir, tmp_path):
    client = ScriptedClient(lambda system, prompt: '{"realistic": "no", "reason": "cars overlap"}')
    result = realism(run_dir, None, tmp_path, model_client=client, scenes=2, repeats=2, perturbations=1)
    assert result["judge"]["stable"] and result["judge"]["realistic_share_original"] == 0.0
    assert any(flag.startswith("language model: unrealistic") for flag in result["flags"])


def test_a_model_that_mostly_fails_flags_nothing(run_dir, tmp_path):
    client = ScriptedClient(lambda system, prompt: "I cannot say.")
    result = realism(run_dir, None, tmp_path, model_client=client, scenes=1, repeats=2, perturbations=1)
    assert result["flags"] == [] and result["judge"]["verdict"].startswith("inconclusive")


def test_the_lead_up_of_a_crash_is_cut_before_it_and_leaves_events_unobserved(run_dir):
    traj = load(run_dir)
    cut = before(traj, 10.0)
    assert cut.t.max() < 10.0 and cut.events is None and cut.vehicle_count <= traj.vehicle_count
    assert len(cut.ids) == len(cut.length) == cut.vehicle_count


def test_speeds_scaled_by_one_and_a_half_are_flagged_by_their_component(run_dir):
    from realism.report import statistical_flags
    from realism.statistics import assess
    from realism.trajectories import scale_speeds

    reference = load(run_dir)
    assert statistical_flags(assess(reference, reference)) == []
    flags = statistical_flags(assess(scale_speeds(reference, 1.5), reference))
    assert any(flag.startswith("statistics: speed scores") for flag in flags)


def test_one_scenario_as_target_and_reference_runs_two_seeds_in_two_folders(tmp_path):
    result = realism("highway", "configs/scenarios/highway.yaml", tmp_path, minutes=0.25)
    assert result["target"].endswith("target/seed0") and result["reference"].endswith("reference/seed1")
    assert result["statistics"]["score"] < 1.0

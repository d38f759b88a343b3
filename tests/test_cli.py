"""The command line on bad input: one clear line naming the problem, exit code 2, nothing run."""

from __future__ import annotations

import json

import pytest
import yaml

from run import main
from twin.scenario import load_scenario

NO_PERSONAS = ["--set", "humans.drivers=[]", "--set", "humans.pedestrians=[]", "--set", "humans.operators=[]"]


def _error(capsys, argv) -> str:
    with pytest.raises(SystemExit) as exc:
        code = main(argv)
        raise SystemExit(code)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize("minutes", ["-1", "-2", "0", "nan", "inf", "ten"])
def test_minutes_must_be_positive_and_finite(capsys, minutes, tmp_path):
    err = _error(capsys, ["simulate", "highway", "--minutes", minutes, "--out", str(tmp_path / "r")])
    assert "--minutes" in err
    assert not (tmp_path / "r").exists()


def test_a_binary_scenario_file_is_named(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"\x00\xff\xfe binary")
    assert "not a text file" in _error(capsys, ["simulate", str(bad)])


def test_a_key_given_twice_is_refused(capsys, tmp_path):
    twice = tmp_path / "twice.yaml"
    twice.write_text("name: x\nseed: 1\nnetwork: {kind: highway}\nseed: 2\n")
    assert "'seed' appears twice" in _error(capsys, ["simulate", str(twice)])


def test_a_set_typo_is_blamed_on_the_override_not_the_file(capsys):
    err = _error(capsys, ["simulate", "highway", "--set", "demand.vehicels=3"])
    assert "demand.vehicels: unknown field (did you mean 'vehicles'?) [set by an override" in err


def test_a_replay_without_its_answer_cache_is_refused(capsys, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    config = load_scenario("intersection").model_dump(mode="json")
    (run / "scenario.yaml").write_text(yaml.safe_dump(config))
    assert "no llm_cache.jsonl" in _error(capsys, ["simulate", "--replay", str(run), "--out", str(tmp_path / "o")])
    (run / "llm_cache.jsonl").write_bytes(bytes(range(256)) * 4)
    assert "not a JSON-lines answer cache" in _error(capsys, ["simulate", "--replay", str(run), "--out",
                                                              str(tmp_path / "o2")])


def test_training_typos_and_a_missing_resume_are_one_line(capsys, tmp_path):
    err = _error(capsys, ["train", "ppo_highway", "--set", "hyperparams.learning_rat=0.1", "--out", str(tmp_path / "a")])
    assert "hyperparams.learning_rat: not a keyword of PPO (did you mean 'learning_rate'?)" in err
    err = _error(capsys, ["train", "ppo_highway", "--set", "env_kwargs.vehicels=3", "--out", str(tmp_path / "b")])
    assert "env_kwargs" in err and "vehicels" in err and len(err.splitlines()) <= 4
    assert "nothing to resume" in _error(capsys, ["train", "ppo_highway", "--resume", "--out", str(tmp_path / "none")])


def test_humans_off_and_meaningless_figures_are_null(tmp_path):
    out = tmp_path / "run"
    assert main(["simulate", "highway", "--minutes", "0.2", "--humans", "off", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert "humans" not in summary  # no persona humans at all
    assert summary["mean_pedestrian_wait_s"] is None  # nobody crossed: no mean, not 0.0
    assert "version" in summary and "git_commit" in summary
    assert summary["trace_sha256_covers"][-1] == "trace.jsonl.gz ticks"


def test_a_fault_that_never_finds_its_actor_is_reported(tmp_path, caplog):
    out = tmp_path / "run"
    faults = "faults=[{kind: brake_failure, at_s: 1, actor: 99999}]"
    assert main(["simulate", "highway", "--minutes", "0.2", *NO_PERSONAS, "--set", faults, "--out", str(out)]) == 2
    assert json.loads((out / "summary.json").read_text())["faults_never_started"] == ["brake_failure"]
    assert "never found an actor" in caplog.text


@pytest.mark.parametrize("content", [b"", bytes(range(256)) * 8])
def test_inspect_refuses_a_trace_that_is_not_one(capsys, tmp_path, content):
    (tmp_path / "trace.jsonl.gz").write_bytes(content)
    assert "not a traffic-twin-trace file" in _error(capsys, ["inspect", str(tmp_path)])


def test_simulate_json_prints_the_summary_alone(capsys, tmp_path):
    assert main(["simulate", "crosswalk", "--minutes", "0.2", "--humans", "off", "--json", "-",
                 "--out", str(tmp_path / "run")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["simulated_s"] == 12.0 and 0.0 <= summary["compile_s"] <= summary["wall_s"]


def test_a_fault_due_after_the_last_step_is_not_blamed_and_a_disabled_llm_triage_needs_no_model(tmp_path):
    late = "faults=[{kind: signal_stuck, at_s: 11.99}]"  # the run ends at 12 s, before a step looks at it
    assert main(["simulate", "crosswalk", "--minutes", "0.2", "--humans", "rule", "--set", late,
                 "--set", "supervisor.enabled=false", "--set", "supervisor.triage=llm",
                 "--out", str(tmp_path / "run")]) == 0
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["faults_never_started"] == []

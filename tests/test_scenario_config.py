import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest

import twin  # noqa: F401  (registers the Gymnasium ids)
from twin.scenario import ScenarioError, load_scenario

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", ["highway", "intersection", "crosswalk"])
def test_shipped_scenarios_load(name):
    config = load_scenario(ROOT / "configs" / "scenarios" / f"{name}.yaml")
    assert config.network.kind == name
    assert config.substeps == config.sim_hz // config.policy_hz


def test_typo_names_field_file_and_suggestion(tmp_path):
    bad = tmp_path / "typo.yaml"
    bad.write_text("name: t\nnetwork: {kind: highway, lanez: 3}\n")
    with pytest.raises(ScenarioError) as err:
        load_scenario(bad)
    msg = str(err.value)
    assert str(bad) in msg and "network.lanez" in msg and "did you mean 'lanes'" in msg


def test_out_of_range_value_names_field(tmp_path):
    bad = tmp_path / "range.yaml"
    bad.write_text("name: t\nnetwork: {kind: intersection, lane_width_m: 9}\n")
    with pytest.raises(ScenarioError, match=r"network.lane_width_m: Input should be less than or equal to 5"):
        load_scenario(bad)
    bad.write_text("name: t\nsim_hz: 15\npolicy_hz: 4\nnetwork: {kind: intersection}\n")
    with pytest.raises(ScenarioError, match=r"policy_hz \(4\) must divide sim_hz \(15\)"):
        load_scenario(bad)


def test_bad_file_gives_one_clear_error_without_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: t\nnetwork: {kind: crosswalk}\ndemand: {vehicles: -3}\n")
    proc = subprocess.run([sys.executable, "run.py", "simulate", str(bad)], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2
    assert "demand.vehicles" in proc.stderr and str(bad) in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ScenarioError, match="not found"):
        load_scenario(tmp_path / "nope.yaml")


def test_gym_make_keywords_override_fields():
    env = gym.make("twin/Highway-v0", vehicles=7, sim_hz=10, policy_hz=2, duration_s=12, network__lanes=3)
    cfg = env.unwrapped.config
    assert (cfg.demand.vehicles, cfg.sim_hz, cfg.policy_hz, cfg.duration_s, cfg.network.lanes) == (7, 10, 2, 12, 3)
    with pytest.raises(ScenarioError, match="unknown field"):
        gym.make("twin/Highway-v0", vehicels=7)


def test_scenario_keyword_takes_a_yaml_path():
    env = gym.make("twin/Highway-v0", scenario=str(ROOT / "configs" / "scenarios" / "crosswalk.yaml"))
    assert env.unwrapped.config.network.kind == "crosswalk"

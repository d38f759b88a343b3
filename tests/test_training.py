"""Training with stable-baselines3: config errors, learning something real, kill -9 and resume."""

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import yaml

import twin  # noqa: F401  (registers the Gymnasium ids)
from agents.controllers.training import TrainingError, load_training, train

ROOT = Path(__file__).resolve().parent.parent
# the ego alone on the highway: driving on at the limit is the whole task
EMPTY_ROAD = {"vehicles": 0, "vehicles_per_hour": 0, "ramp_vehicles_per_hour": 0, "duration_s": 20, "humans": "off",
              "supervisor__enabled": False}


def _children(pid: int) -> list[int]:
    """Child process ids of ``pid`` (Linux)."""
    tasks = Path(f"/proc/{pid}/task")
    return [int(c) for t in tasks.iterdir() for c in (t / "children").read_text().split()] if tasks.exists() else []


def _config(**fields) -> dict:
    base = {"name": "test", "algorithm": "PPO", "env": "twin/Highway-v0", "env_kwargs": EMPTY_ROAD, "n_envs": 1,
            "vec_env": "dummy", "hyperparams": {"n_steps": 256, "batch_size": 64, "learning_rate": 0.001, "gamma": 0.8},
            "checkpoint_every": 100_000}
    return base | fields


def test_training_config_errors_name_the_field():
    with pytest.raises(TrainingError, match="algorithm"):
        load_training(_config(algorithm="A3C"))
    with pytest.raises(TrainingError, match="timestep"):
        load_training(_config(timestep=10))
    with pytest.raises(TrainingError, match="no such training config"):
        load_training("nope")
    assert load_training("ppo_highway").algorithm == "PPO"  # the shipped configs load


def _mean_return(policy, episodes: int = 3) -> float:
    env = gym.make("twin/Highway-v0", **EMPTY_ROAD)
    returns = []
    for ep in range(episodes):
        obs, _ = env.reset(seed=100 + ep)
        done, total = False, 0.0
        while not done:
            obs, reward, terminated, truncated, _ = env.step(policy(obs))
            total += reward
            done = terminated or truncated
        returns.append(total)
    return float(np.mean(returns))


def test_a_short_ppo_run_learns_to_beat_a_random_policy(tmp_path):
    from stable_baselines3 import PPO

    summary = train(load_training(_config(timesteps=2048)), out=tmp_path / "run", progress=False)
    assert summary["timesteps"] == 2048 and summary["episodes"] > 50
    model = PPO.load(tmp_path / "run" / "final.zip")
    rng = np.random.default_rng(0)
    random_return = _mean_return(lambda obs: rng.integers(5))
    trained_return = _mean_return(lambda obs: model.predict(obs, deterministic=True)[0])
    assert trained_return > 1.4 * random_return, (trained_return, random_return)
    assert (tmp_path / "run" / "tb").exists()  # tensorboard logs
    # evaluate policy: the same seeded episodes for the policy, the rule-based ego and random actions
    from rich.console import Console

    from agents.controllers.policy_eval import evaluate_policy

    result = evaluate_policy(tmp_path / "run", episodes=2, json_path=tmp_path / "e.json", png_path=tmp_path / "e.png",
                             console=Console(file=io.StringIO()))
    assert json.loads((tmp_path / "e.json").read_text())["policy"]["episodes"] == 2
    assert (tmp_path / "e.png").read_bytes()[:4] == b"\x89PNG"
    assert result["policy"]["mean_speed_mps"] > result["random"]["mean_speed_mps"]
    assert result["rule"]["collision_rate"] == 0.0 and result["rule"]["mean_speed_mps"] > 20.0
    # LLM humans: one env per driver (one model, one memory) in one process; more workers are refused
    with pytest.raises(ValueError, match="one process"):
        evaluate_policy(tmp_path / "run", episodes=1, humans="llm", workers=2, console=Console(file=io.StringIO()))


def test_a_run_killed_with_sigkill_resumes_with_the_same_step_count(tmp_path):
    config = _config(timesteps=2048, checkpoint_every=256, env_kwargs=EMPTY_ROAD | {"supervisor__enabled": True},
                     n_envs=2, vec_env="subproc", hyperparams={"n_steps": 128, "batch_size": 64, "learning_rate": 0.001,
                                                               "gamma": 0.8})
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "run.py", "train", str(path), "--out", str(out), "--no-progress"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    state = out / "checkpoints" / "state.json"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if state.exists() and json.loads(state.read_text())["timesteps"] >= 256:
            break
        time.sleep(0.1)
    assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read().decode()[-500:]}"
    workers = _children(proc.pid)
    assert len(workers) == 2  # the env workers
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 10
    while time.time() < deadline and any(Path(f"/proc/{w}").exists() for w in workers):
        time.sleep(0.1)
    assert not [w for w in workers if Path(f"/proc/{w}").exists()], "env workers outlived the killed training run"
    checkpointed = json.loads(state.read_text())["timesteps"] if state.exists() else \
        json.loads((out / "checkpoints.old" / "state.json").read_text())["timesteps"]
    assert 256 <= checkpointed < 2048
    summary = train(load_training(yaml.safe_load(path.read_text())), out=out, resume=True, progress=False)
    assert summary["resumed_from"] == checkpointed and summary["timesteps"] == 2048
    with (out / "episodes.csv").open() as fh:
        steps = [int(r["timesteps"]) for r in csv.DictReader(fh)]
    assert steps == sorted(steps) and steps[-1] <= 2048  # the log was cut back to the checkpoint, then continued
    with pytest.raises(TrainingError, match="exists"):
        train(load_training(yaml.safe_load(path.read_text())), out=out, progress=False)  # never overwrite a run


def test_a_save_interrupted_at_any_moment_leaves_a_checkpoint(tmp_path):
    from agents.controllers.training import _latest_checkpoint

    def complete(name: str, steps: int) -> None:
        d = tmp_path / name
        d.mkdir()
        (d / "model.zip").write_bytes(b"zip")
        (d / "state.json").write_text(json.dumps({"timesteps": steps}))

    complete("checkpoints.old", 100)  # killed after moving the last checkpoint aside ...
    complete("checkpoints.tmp", 200)  # ... with the new one complete but not yet in place
    latest = _latest_checkpoint(tmp_path)
    assert latest == tmp_path / "checkpoints" and json.loads((latest / "state.json").read_text())["timesteps"] == 200
    (tmp_path / "checkpoints.tmp").mkdir()
    (tmp_path / "checkpoints.tmp" / "model.zip").write_bytes(b"half")  # killed while writing: no state.json
    assert json.loads((_latest_checkpoint(tmp_path) / "state.json").read_text())["timesteps"] == 200

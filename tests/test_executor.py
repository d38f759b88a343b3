"""``compute``: one executor for many runs, in this process, in local processes or on Ray, with the
same results in job order wherever the jobs ran."""

from __future__ import annotations

import builtins
import sys
import time

import pytest

from compute import ComputeError, run_jobs
from twin.sweep import parse_grid, sweep


def square_after(x: int, delay_s: float) -> tuple[int, int]:
    time.sleep(delay_s)
    return x, x * x


def test_results_come_back_in_job_order_and_progress_counts_them():
    jobs = [(k, 0.05 * (3 - k)) for k in range(4)]  # the first jobs finish last
    for workers in (1, 2):
        calls = []
        results = run_jobs(square_after, jobs, workers=workers, progress=lambda done, total: calls.append((done, total)))
        assert results == [(k, k * k) for k in range(4)]
        assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert run_jobs(square_after, [], workers=2) == []


def test_a_local_pool_gives_what_one_process_gives():
    from envs.futures import run_future
    from envs.world import World
    from twin.scenario import load_scenario

    world = World(load_scenario("intersection", {"ego.controlled": 0, "humans": {}, "drivers.signal_compliance": 0.5}))
    world.advance(20)
    jobs = [(world.get_state(), seed, 5.0) for seed in range(4)]
    assert run_jobs(run_future, jobs, workers=1) == run_jobs(run_future, jobs, workers=2)


def test_ray_missing_says_how_to_install_it(monkeypatch):
    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "ray", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(ComputeError, match=r'pip install -e "\.\[ray\]"'):
        run_jobs(square_after, [(1, 0.0)], ray="local")
    with pytest.raises(ComputeError, match="not installed"):
        sweep("intersection", parse_grid(["drivers.signal_compliance=1.0"]), [0], minutes=0.1, ray="auto")


def test_the_cli_reports_a_missing_ray_as_bad_input(monkeypatch, capsys):
    import compute.executor
    import run

    def missing() -> None:
        raise ComputeError('--ray needs Ray, which is not installed here: pip install -e ".[ray]"')

    monkeypatch.setattr(compute.executor, "import_ray", missing)
    code = run.main(["sweep", "intersection", "--grid", "drivers.signal_compliance=1.0", "--seeds", "0", "--minutes",
                     "0.1", "--ray", "local"])
    assert code == 2 and 'pip install -e ".[ray]"' in capsys.readouterr().err


def test_an_unreachable_cluster_names_the_fix():
    pytest.importorskip("ray")
    import ray

    if ray.is_initialized():
        pytest.skip("a Ray instance is running in this process")
    started = time.perf_counter()
    with pytest.raises(ComputeError, match=r"no Ray cluster reachable there.*ray start --head"):
        run_jobs(square_after, [(1, 0.0)], ray="127.0.0.1:1")  # nothing listens on port 1
    assert time.perf_counter() - started < 30  # refused at once, not after Ray's minutes of retries


def test_policy_episodes_are_the_same_in_one_process_or_two(tmp_path):
    """``evaluate policy``: every episode of every driver is a job on an env of its own."""
    import io

    import gymnasium as gym
    import yaml
    from rich.console import Console
    from stable_baselines3 import PPO

    import twin  # noqa: F401  (registers the Gymnasium ids)
    from agents.controllers.policy_eval import evaluate_policy
    from agents.controllers.training import load_training

    road = {"vehicles": 2, "vehicles_per_hour": 0, "ramp_vehicles_per_hour": 0, "duration_s": 8, "humans": "off"}
    config = load_training({"name": "tiny", "algorithm": "PPO", "env": "twin/Highway-v0", "env_kwargs": road,
                            "n_envs": 1, "vec_env": "dummy", "timesteps": 64})
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(config.model_dump(mode="json")))
    PPO("MlpPolicy", gym.make("twin/Highway-v0", **road), seed=0, device="cpu").save(run / "final.zip")
    quiet = {"console": Console(file=io.StringIO())}
    one = evaluate_policy(run, episodes=2, workers=1, **quiet)
    two = evaluate_policy(run, episodes=2, workers=2, **quiet)
    assert one["episodes"] == two["episodes"] and len(one["episodes"]["rule"]) == 2
    assert [r["seed"] for r in one["episodes"]["random"]] == [1000, 1001]


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray instance with 2 CPUs, started once for this module (the executor uses it and leaves it running)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="warning")
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_keeps_job_order_and_calls_progress(local_ray):
    calls = []
    results = run_jobs(square_after, [(k, 0.05 * (3 - k)) for k in range(4)], ray="local",
                       progress=lambda done, total: calls.append(done))
    assert results == [(k, k * k) for k in range(4)] and calls == [1, 2, 3, 4]
    assert local_ray.is_initialized()  # started by the fixture, so left running


@pytest.mark.slow
def test_a_sweep_is_the_same_in_one_process_two_processes_and_on_ray(local_ray):
    grid = parse_grid(["drivers.signal_compliance=0.6,1.0"])
    one = sweep("intersection", grid, [0, 1], minutes=0.5, workers=1)
    two = sweep("intersection", grid, [0, 1], minutes=0.5, workers=2)
    on_ray = sweep("intersection", grid, [0, 1], minutes=0.5, workers=2, ray="local")
    assert one["runs"] == 4 and one["results"] == two["results"] == on_ray["results"]
    assert one["points"] == two["points"] == on_ray["points"]
    assert on_ray["executor"] == "ray local (2 CPUs)"

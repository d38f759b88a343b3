"""Speed of the twin against highway-env on the same configuration.

Configuration (both sides): 50 background vehicles, 4 lanes, 15 Hz physics, 1 Hz policy,
random ego actions, no rendering, episodes reset when they end. Measured: policy steps/s,
actor-steps/s (actors times physics steps), and the throughput of a batch of twin
environments (Gymnasium ``AsyncVectorEnv``, one process each).

    python run.py bench twin [--seconds 20] [--vector 2] [--json out.json]
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
from rich.console import Console
from rich.table import Table

CONFIG = dict(vehicles=50, sim_hz=15, policy_hz=1, duration_s=40)
LANES = 4


def _make_twin():
    import twin  # noqa: F401  (registers the Gymnasium ids)

    return gym.make("twin/Highway-v0", **CONFIG, network__lanes=LANES)


def measure_twin(seconds: float, seed: int = 0) -> dict[str, float]:
    """Policy steps/s and actor-steps/s of one twin environment with random actions."""
    env = _make_twin()
    env.action_space.seed(seed)
    env.reset(seed=seed)
    world = env.unwrapped.world
    substeps = CONFIG["sim_hz"] // CONFIG["policy_hz"]
    steps = actor_steps = episodes = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        world = env.unwrapped.world
        steps += 1
        actor_steps += substeps * (len(world.vehicles) + len(world.pedestrians))
        if terminated or truncated:
            episodes += 1
            env.reset()
    wall = time.perf_counter() - start
    return {"policy_steps_per_s": steps / wall, "actor_steps_per_s": actor_steps / wall,
            "episodes": episodes, "policy_steps": steps}


def measure_twin_vector(seconds: float, n_envs: int, seed: int = 0) -> dict[str, float]:
    """Total policy steps/s of ``n_envs`` twin environments stepped as one batch."""
    vec = gym.vector.AsyncVectorEnv([_make_twin for _ in range(n_envs)])
    vec.action_space.seed(seed)
    vec.reset(seed=seed)
    steps = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        vec.step(vec.action_space.sample())
        steps += n_envs
    wall = time.perf_counter() - start
    vec.close()
    return {"policy_steps_per_s": steps / wall, "n_envs": n_envs}


def measure_highway_env(seconds: float, seed: int = 0) -> dict[str, float] | None:
    """Policy steps/s of highway-env's highway-v0 on the same configuration, if installed."""
    try:
        import highway_env  # noqa: F401
    except ImportError:
        return None
    env = gym.make("highway-v0", config={
        "vehicles_count": CONFIG["vehicles"], "lanes_count": LANES, "simulation_frequency": CONFIG["sim_hz"],
        "policy_frequency": CONFIG["policy_hz"], "duration": CONFIG["duration_s"],
    })
    env.action_space.seed(seed)
    env.reset(seed=seed)
    steps = actor_steps = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        steps += 1
        actor_steps += CONFIG["sim_hz"] // CONFIG["policy_hz"] * len(env.unwrapped.road.vehicles)
        if terminated or truncated:
            env.reset()
    wall = time.perf_counter() - start
    return {"policy_steps_per_s": steps / wall, "actor_steps_per_s": actor_steps / wall, "policy_steps": steps}


def run_twin_benchmark(seconds: float = 20.0, vector: int = 2, json_path: Path | None = None,
                       peer: bool = True) -> dict[str, Any]:
    """Run all measurements, print a table, optionally write JSON; returns the figures."""
    console = Console()
    console.print(f"[bold]twin benchmark[/]: {CONFIG} lanes={LANES}, {seconds:.0f} s per measurement")
    results: dict[str, Any] = {"config": {**CONFIG, "lanes": LANES}, "seconds": seconds}
    with console.status("twin, one environment..."):
        results["twin"] = measure_twin(seconds)
    if vector > 1:
        with console.status(f"twin, {vector} environments batched..."):
            results["twin_vector"] = measure_twin_vector(seconds, vector)
    if peer:
        with console.status("highway-env highway-v0..."):
            results["highway_env"] = measure_highway_env(seconds)
    table = Table(title="policy steps per second (higher is better)")
    for col in ("environment", "policy steps/s", "actor-steps/s", "vs highway-v0"):
        table.add_column(col, justify="right" if col != "environment" else "left")
    peer_rate = (results.get("highway_env") or {}).get("policy_steps_per_s")
    rows = [("twin/Highway-v0", results["twin"])]
    if "twin_vector" in results:
        rows.append((f"twin/Highway-v0 x{vector} (AsyncVectorEnv)", results["twin_vector"]))
    if results.get("highway_env"):
        rows.append(("highway-env highway-v0", results["highway_env"]))
    for name, r in rows:
        ratio = f"{r['policy_steps_per_s'] / peer_rate:.0f}x" if peer_rate else "n/a"
        actor = f"{r['actor_steps_per_s']:,.0f}" if "actor_steps_per_s" in r else ""
        table.add_row(name, f"{r['policy_steps_per_s']:.1f}", actor, ratio)
    if peer_rate:
        results["speedup_vs_highway_env"] = results["twin"]["policy_steps_per_s"] / peer_rate
    elif peer:
        console.print("highway-env is not installed: pip install highway-env (or '.[bench]') to compare")
    console.print(table)
    if json_path:
        Path(json_path).write_text(json.dumps(results, indent=2, default=float))
    return results


if __name__ == "__main__":
    run_twin_benchmark()

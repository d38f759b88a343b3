"""Speed of the twin against highway-env on the same configuration.

Configuration (both sides): 50 background vehicles, 4 lanes, 15 Hz physics, 1 Hz policy,
random ego actions, no rendering, episodes reset when they end. Measured: policy steps/s,
actor-steps/s (actors times physics steps), and the throughput of a batch of twin
environments (Gymnasium ``AsyncVectorEnv``, one process each).

What the views cost is measured against the bare world on the same configuration: the
world alone (``World.advance``, physics steps/s), the Gym view over it with nobody else in it
(``TwinEnv`` with ``NoOccupants``), and ``twin/Highway-v0`` as registered (rule-based persona
humans and the supervisor on). The single-environment rows and highway-env run in
``--rounds`` interleaved rounds, so a busy machine slows all of them alike.

    python run.py bench twin [--seconds 20] [--rounds 4] [--vector 2] [--json out.json]
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


def _twin_config():
    from envs.scenario import scenario_overrides
    from twin.scenario import load_scenario

    return load_scenario("highway", scenario_overrides(None, dict(CONFIG, network__lanes=LANES), controlled=1))


def measure_bare_world(seconds: float, seed: int = 0, episode_steps: float | None = None) -> dict[str, float]:
    """Physics steps/s of the bare world (no view, no humans, no supervisor). A new world
    every ``episode_steps`` policy steps (the Gym view's mean episode length, so both pay for
    the same resets), else at the scenario's duration."""
    from envs.world import World

    config = _twin_config()
    world, steps, substeps = World(config, seed=seed), 0, config.substeps
    episode_end = config.duration_s if not episode_steps else min(config.duration_s, episode_steps / config.policy_hz)
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        world.advance(substeps)
        steps += substeps
        if world.time >= episode_end - 1e-9:
            seed += 1
            world = World(config, seed=seed)
    wall = time.perf_counter() - start
    return {"physics_steps_per_s": steps / wall, "policy_steps_per_s": steps / substeps / wall}


def _drive(env, seconds: float, seed: int) -> dict[str, float]:
    env.action_space.seed(seed)
    env.reset(seed=seed)
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
    return {"policy_steps_per_s": steps / wall, "physics_steps_per_s": steps * substeps / wall,
            "actor_steps_per_s": actor_steps / wall, "episodes": episodes, "policy_steps": steps}


def measure_bare_view(seconds: float, seed: int = 0) -> dict[str, float]:
    """Policy steps/s of the Gym view over the bare world (``NoOccupants``: physics only)."""
    from envs.single_agent import TwinEnv

    return _drive(TwinEnv(_twin_config()), seconds, seed)


def measure_twin(seconds: float, seed: int = 0) -> dict[str, float]:
    """Policy steps/s and actor-steps/s of ``twin/Highway-v0`` (persona humans, supervisor on)."""
    return _drive(_make_twin(), seconds, seed)


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


def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]}


def run_twin_benchmark(seconds: float = 20.0, vector: int = 2, json_path: Path | None = None,
                       peer: bool = True, rounds: int = 4) -> dict[str, Any]:
    """Run all measurements (``seconds`` each, the single-env ones in ``rounds`` interleaved
    rounds), print a table, optionally write JSON; returns the figures."""
    console = Console()
    console.print(f"[bold]twin benchmark[/]: {CONFIG} lanes={LANES}, {seconds:.0f} s per measurement")
    results: dict[str, Any] = {"config": {**CONFIG, "lanes": LANES}, "seconds": seconds, "rounds": rounds}
    measures = {"bare_view": measure_bare_view, "bare_world": measure_bare_world, "twin": measure_twin}
    if peer:
        measures["highway_env"] = measure_highway_env
    with console.status("compiling and warming up..."):
        for measure in measures.values():
            measure(min(1.0, seconds / rounds))
    samples: dict[str, list] = {name: [] for name in measures}
    with console.status("measuring, interleaved...") as status:
        for k in range(rounds):
            for name, measure in measures.items():
                status.update(f"round {k + 1}/{rounds}: {name}")
                if name == "bare_world":  # as many resets as the view's random policy caused this round
                    view = samples["bare_view"][-1]
                    samples[name].append(measure(seconds / rounds, seed=k,
                                                 episode_steps=view["policy_steps"] / max(view["episodes"], 1)))
                else:
                    samples[name].append(measure(seconds / rounds, seed=k))
    for name, rows in samples.items():
        results[name] = _mean(rows) if rows and rows[0] is not None else None
    if vector > 1:
        with console.status(f"twin, {vector} environments batched..."):
            results["twin_vector"] = measure_twin_vector(seconds, vector)
    bare = results["bare_world"]["physics_steps_per_s"]
    results["view_cost"] = 1.0 - results["bare_view"]["physics_steps_per_s"] / bare
    results["occupants_cost"] = 1.0 - results["twin"]["physics_steps_per_s"] / bare
    table = Table(title="steps per second (higher is better)")
    for col in ("environment", "policy steps/s", "physics steps/s", "vs bare world", "vs highway-v0"):
        table.add_column(col, justify="right" if col != "environment" else "left")
    peer_rate = (results.get("highway_env") or {}).get("policy_steps_per_s")
    rows = [("bare World.advance", results["bare_world"]), ("Gym view, no occupants", results["bare_view"]),
            ("twin/Highway-v0 (personas, supervisor)", results["twin"])]
    if "twin_vector" in results:
        rows.append((f"twin/Highway-v0 x{vector} (AsyncVectorEnv)", results["twin_vector"]))
    if results.get("highway_env"):
        rows.append(("highway-env highway-v0", results["highway_env"]))
    for name, r in rows:
        ratio = f"{r['policy_steps_per_s'] / peer_rate:.0f}x" if peer_rate else "n/a"
        physics = r.get("physics_steps_per_s")
        share = f"{physics / bare:.0%}" if physics and name != "highway-env highway-v0" else ""
        table.add_row(name, f"{r['policy_steps_per_s']:.1f}", f"{physics:,.0f}" if physics else "", share, ratio)
    if peer_rate:
        results["speedup_vs_highway_env"] = results["twin"]["policy_steps_per_s"] / peer_rate
    elif peer:
        console.print("highway-env is not installed: pip install highway-env (or '.[bench]') to compare")
    console.print(table)
    console.print(f"the Gym view costs {results['view_cost']:.1%} of the bare world's speed; "
                  f"persona humans and the supervisor {results['occupants_cost']:.1%} in all")
    if json_path:
        Path(json_path).write_text(json.dumps(results, indent=2, default=float))
    return results


if __name__ == "__main__":
    run_twin_benchmark()

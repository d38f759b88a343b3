"""Evaluating a trained driving policy against the rule-based ego (``run.py evaluate policy``).

The policy and the baseline drive the same seeded episodes. The baseline hands the ego
vehicle to the twin's own IDM/MOBIL driver; ``random`` picks uniform actions. Per policy:

- success rate: episodes ending without a collision (arrived, or still driving at the end)
- collision rate
- hazards per km: the supervisor's hazard events that involve the ego, per km driven
- mean speed [m/s]
- comfort: mean absolute jerk [m/s^3] of the ego over physics steps

Humans the policy was not trained with (other personas, live LLM humans) come in through
``env_kwargs`` overrides and ``humans``.

Every episode of every driver is a job (``run_episode``) on an env of its own, seeded by its
episode seed, so the episodes run in local processes or on a Ray cluster (``compute``) with the
same rows as in one process.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np

from compute import run_jobs
from envs.actors import HUMAN

BASELINES = ("rule", "random")


def episode_metrics(env, act: Callable[[np.ndarray], Any] | str, seed: int) -> dict:
    """Drive one episode of ``env`` (a TwinEnv, possibly wrapped) with ``act`` (obs -> action,
    or ``"rule"`` for the twin's own driver, ``"random"``); returns its metrics."""
    twin = env.unwrapped
    obs, _ = env.reset(seed=seed)
    if act == "rule":
        twin.world.vehicles.driver[twin.world.vehicles.row(twin.ego_id)] = HUMAN
    rng = np.random.default_rng(seed)
    dt = 1.0 / twin.config.sim_hz
    speeds, jerks, hazard_keys = [], [], set()
    odo0 = _ego(twin, "odometer") or 0.0
    odo, last_a = odo0, _ego(twin, "a") or 0.0
    done, info, steps = False, {}, 0
    while not done:
        if act == "rule":  # the twin's driver ignores the action; a neutral one keeps the env's checks happy
            action = 0 if hasattr(env.action_space, "n") else np.zeros(env.action_space.shape, np.float32)
        elif act == "random":
            action = env.action_space.sample() if not hasattr(env.action_space, "n") else int(rng.integers(env.action_space.n))
        else:
            action = act(obs)
        obs, _, terminated, truncated, info = env.step(action)
        steps += 1
        a = _ego(twin, "a")
        if a is not None:
            jerks.append(abs(a - last_a) / (dt * twin.config.substeps))
            last_a = a
            odo = _ego(twin, "odometer")
        speeds.append(info.get("speed_mps", 0.0))
        for e in info.get("supervisor", {}).get("events", []):
            if e["category"] == "hazard":
                hazard_keys.add((e["kind"], tuple(e["actors"]), e["start_s"]))
        done = terminated or truncated
    km = max((odo - odo0) / 1000.0, 1e-6)
    # from the twin's own events: an ego handed to the rule-based driver leaves the road at the
    # exit, which the env would otherwise report as a crash
    crashed = any(twin.ego_id in e.actors for e in twin.world.events if e.kind in ("collision", "off_road"))
    return {"seed": seed, "success": not crashed, "collision": crashed, "arrived": bool(info.get("arrived", False)),
            "km": round(km, 4), "hazards": len(hazard_keys), "hazards_per_km": len(hazard_keys) / km,
            "mean_speed_mps": float(np.mean(speeds)) if speeds else 0.0,
            "mean_jerk_mps3": float(np.mean(jerks)) if jerks else 0.0, "steps": steps}


def signal_episode_metrics(env, act: Callable[[np.ndarray], Any] | str, seed: int) -> dict:
    """One episode of ``twin/SignalControl-v0``: vehicle delay and pedestrian wait per hour of
    operation, throughput, collisions. ``act`` is obs -> action, ``"random"``, or anything
    for a fixed-time env (which ignores actions)."""
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    totals = {"return": 0.0, "vehicle_delay_s": 0.0, "pedestrian_wait_s": 0.0, "exited": 0, "collisions": 0}
    done, hours = False, 0.0
    while not done:
        action = int(rng.integers(5)) if not callable(act) else act(obs)
        obs, reward, terminated, truncated, info = env.step(action)
        totals["return"] += reward
        for key in ("vehicle_delay_s", "pedestrian_wait_s", "exited", "collisions"):
            totals[key] += info[key]
        done = terminated or truncated
    hours = env.unwrapped.world.time / 3600.0
    return {"seed": seed, "return": totals["return"], "vehicle_delay_h_per_h": totals["vehicle_delay_s"] / 3600 / hours,
            "pedestrian_wait_h_per_h": totals["pedestrian_wait_s"] / 3600 / hours,
            "throughput_veh_per_h": totals["exited"] / hours, "collisions": totals["collisions"]}


def _ego(twin, column: str) -> float | None:
    veh = twin.world.vehicles
    hits = np.flatnonzero(veh.id == twin.ego_id)
    return float(getattr(veh, column)[hits[0]]) if len(hits) else None


def summarise(rows: list[dict]) -> dict:
    n = len(rows)
    return {"episodes": n, "llm_decisions": sum(r.get("llm_decisions", 0) for r in rows),
            "success_rate": round(sum(r["success"] for r in rows) / n, 3),
            "collision_rate": round(sum(r["collision"] for r in rows) / n, 3),
            "hazards_per_km": round(sum(r["hazards"] for r in rows) / max(sum(r["km"] for r in rows), 1e-6), 2),
            "mean_speed_mps": round(float(np.mean([r["mean_speed_mps"] for r in rows])), 2),
            "mean_jerk_mps3": round(float(np.mean([r["mean_jerk_mps3"] for r in rows])), 2)}


DRIVING_METRICS = ("success_rate", "collision_rate", "hazards_per_km", "mean_speed_mps", "mean_jerk_mps3")
SIGNAL_METRICS = ("mean_return", "vehicle_delay_h_per_h", "pedestrian_wait_h_per_h", "throughput_veh_per_h",
                  "collisions")
LABELS = {"success_rate": "success", "collision_rate": "collisions", "hazards_per_km": "hazards/km",
          "mean_speed_mps": "speed [m/s]", "mean_jerk_mps3": "jerk [m/s^3]", "mean_return": "return",
          "vehicle_delay_h_per_h": "vehicle delay [h/h]", "pedestrian_wait_h_per_h": "pedestrian wait [h/h]",
          "throughput_veh_per_h": "throughput [veh/h]", "collisions": "collisions"}


def summarise_signals(rows: list[dict]) -> dict:
    return {"episodes": len(rows), "mean_return": round(float(np.mean([r["return"] for r in rows])), 2),
            **{k: round(float(np.mean([r[k] for r in rows])), 2)
               for k in ("vehicle_delay_h_per_h", "pedestrian_wait_h_per_h", "throughput_veh_per_h")},
            "collisions": int(sum(r["collisions"] for r in rows))}


_MODELS: dict[tuple[str, str], Any] = {}  # (algorithm, model path) -> model, loaded once per process
_KEPT_ENVS: dict[str, Any] = {}  # driver -> env kept across episodes (LLM humans: one model and memory per env)


def run_episode(env_id: str, kwargs: dict, driver: str, seed: int, algorithm: str, model_path: str,
                keep_env: bool = False) -> dict:
    """One seeded episode of ``driver`` (policy, rule, random, fixed_time) on a new env (or, with
    ``keep_env``, on this driver's env kept in this process): its metrics (a job of
    ``evaluate_policy``; everything it needs is in its arguments)."""
    import gymnasium as gym

    import twin  # noqa: F401  (registers the Gymnasium ids)

    signals = "SignalControl" in env_id
    env = _KEPT_ENVS.get(driver) if keep_env else None
    if env is None:
        env = gym.make(env_id, **((kwargs | {"fixed_time": True}) if driver == "fixed_time" else kwargs))
        if keep_env:
            _KEPT_ENVS[driver] = env
    env.action_space.seed(seed)  # random actions of a continuous space: the same wherever the episode runs
    try:
        if driver == "policy":
            if (algorithm, model_path) not in _MODELS:
                import stable_baselines3 as sb3

                _MODELS[(algorithm, model_path)] = getattr(sb3, algorithm).load(model_path, device="cpu")
            model = _MODELS[(algorithm, model_path)]
            act: Any = lambda obs: model.predict(obs, deterministic=True)[0]  # noqa: E731
        else:
            act = "fixed" if driver == "fixed_time" else driver
        humans_of = getattr(env.unwrapped, "humans", None)
        asked = humans_of.decisions if humans_of is not None else 0
        row = (signal_episode_metrics if signals else episode_metrics)(env, act, seed)
        row["llm_decisions"] = (humans_of.decisions if humans_of is not None else 0) - asked
    finally:
        if not keep_env:
            env.close()
    return row


def load_policy(checkpoint: str | Path):
    """A trained model and its training config from a run directory or a model ``.zip`` inside one."""
    import stable_baselines3 as sb3

    from agents.controllers.training import TrainingError, load_training

    path = Path(checkpoint)
    run_dir = path if path.is_dir() else path.parent
    for candidate in (run_dir, run_dir.parent):
        if (candidate / "config.yaml").exists():
            config = load_training(candidate / "config.yaml")
            break
    else:
        raise TrainingError(f"{checkpoint}: no config.yaml in the run directory (or above the model file)")
    model_path = path if path.suffix == ".zip" else next(
        (p for p in (run_dir / "final.zip", run_dir / "best" / "best_model.zip", run_dir / "checkpoints" / "model.zip")
         if p.exists()), None)
    if model_path is None:
        raise TrainingError(f"{checkpoint}: no final.zip, best/best_model.zip or checkpoints/model.zip")
    return getattr(sb3, config.algorithm).load(model_path, device="cpu"), config, model_path


def evaluate_policy(checkpoint: str | Path, episodes: int = 20, seed: int = 1000, env_kwargs: dict | None = None,
                    humans: str | None = None, json_path: Path | None = None, png_path: Path | None = None,
                    console: Any = None, workers: int | None = 1, ray: str | None = None) -> dict:
    """Run the policy, the rule-based ego and a random policy on the same seeded episodes (in
    ``workers`` local processes, or on the Ray cluster at ``ray``); print a table, write JSON and a
    PNG bar chart; return the summaries."""
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    import twin  # noqa: F401  (registers the Gymnasium ids)

    console = console or Console()
    model, config, model_path = load_policy(checkpoint)
    kwargs = dict(config.env_kwargs) | dict(env_kwargs or {})
    if humans is not None:
        kwargs["humans"] = humans
    kwargs.setdefault("supervisor__enabled", True)
    signals = "SignalControl" in config.env
    _MODELS[(config.algorithm, str(model_path))] = model  # in this process, the loaded one
    # the baseline of signal control is the scenario's fixed-time plan; of driving, the twin's own driver
    drivers = ("policy", "fixed_time", "random") if signals else ("policy", "rule", "random")
    metrics = SIGNAL_METRICS if signals else DRIVING_METRICS
    # LLM humans: one env per driver in this process (one model client, answer cache and memory, as in
    # training), not one per episode
    llm = kwargs.get("humans") == "llm"
    if llm and ((workers or 1) > 1 or ray):
        raise ValueError("evaluate policy with LLM humans runs in one process (--workers 1, no --ray): each "
                         "driver keeps one env, with its model and the humans' memory, across its episodes")
    jobs = [(config.env, kwargs, name, seed + k, config.algorithm, str(model_path), llm)
            for k in range(episodes) for name in drivers]
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("evaluating", total=len(jobs))
        try:
            done = run_jobs(run_episode, jobs, workers=workers, ray=ray,
                            progress=lambda n, total: progress.update(task, completed=n))
        finally:
            while _KEPT_ENVS:
                _KEPT_ENVS.popitem()[1].close()
    rows: dict[str, list[dict]] = {name: [row for job, row in zip(jobs, done) if job[2] == name] for name in drivers}
    summarise_rows = summarise_signals if signals else summarise
    result = {"checkpoint": str(model_path), "env": config.env, "env_kwargs": kwargs, "seed": seed,
              **{name: summarise_rows(r) for name, r in rows.items()}, "episodes": rows}
    decisions = sum(r["llm_decisions"] for driver_rows in rows.values() for r in driver_rows)
    table = Table(title=f"{config.name} on {config.env}: {episodes} seeded episodes each",
                  caption=f"{decisions} decisions of LLM humans" if decisions else None)
    labels = LABELS
    table.add_column("driver")
    for m in metrics:
        table.add_column(labels[m], justify="right")
    for name in drivers:
        table.add_row(name, *(str(result[name][m]) for m in metrics))
    console.print(table)
    if json_path is not None:
        Path(json_path).write_text(json.dumps(result, indent=2, default=float))
    if png_path is not None:
        plot(result, Path(png_path), list(drivers), metrics)
    return result


def plot(result: dict, path: Path, drivers: list[str], metrics: tuple[str, ...]) -> None:
    """One bar chart per metric, drivers side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.2))
    colours = ["#1f77b4", "#7f7f7f", "#d62728"]  # policy, baseline, random
    for ax, m in zip(axes, metrics):
        values = [result[d][m] for d in drivers]
        ax.bar(drivers, values, color=colours[: len(drivers)])
        ax.set_title(LABELS.get(m, m), fontsize=9)
        ax.tick_params(labelsize=8)
    fig.suptitle(f"{Path(result['checkpoint']).name} on {result['env']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

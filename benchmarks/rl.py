"""Wall-clock for SB3 PPO to reach a success rate: the twin against highway-env's highway-fast-v0.

Both sides train PPO with the settings of highway-env's own SB3 PPO script (MlpPolicy
[256, 256], learning rate 5e-4, batch 64, 10 epochs, gamma 0.8, ``n_steps`` = 64 * 12 /
envs) on ``envs`` ``SubprocVecEnv`` workers, in the same run. The twin runs
``twin/Highway-v0`` shaped like highway-fast-v0: 3 lanes, 20 vehicles, 30 s episodes, 1 Hz
policy, rule-based persona humans and the supervisor on. Every ``eval_every`` steps the
policy drives ``eval_episodes`` deterministic episodes on fresh seeds; success means no
collision until the episode ends at a mean speed of at least ``SUCCESS_SPEED_MPS`` (both
envs reward speeds up to 30 m/s; an untrained policy that crawls along does not count). Reported: training wall-clock (evaluation excluded) and
steps until the success rate first reaches ``threshold``, and training steps/s.

    python run.py bench rl [--minutes 10] [--threshold 0.9] [--json out.json]

``humans_speed`` (``run.py bench rl --humans-seconds S``) measures training-time steps/s of
``twin/Intersection-v0`` with random ego actions and the scenario's persona slots off,
rule-based, and deciding live with the embedded LLM. ``reuse_speed`` (``--reuse-episodes N``)
runs N episodes of live LLM humans with ``humans.reuse`` on and reports, per episode, the
share of decisions taken from earlier episodes' recorded situations.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import gymnasium as gym
from rich.console import Console
from rich.table import Table

TWIN_KWARGS = {"network__lanes": 3, "vehicles": 20, "duration_s": 30, "humans": "rule"}
SUCCESS_SPEED_MPS = 25.0  # [m/s] mean speed an episode needs to count as a success
PPO_KWARGS = {"learning_rate": 5e-4, "batch_size": 64, "n_epochs": 10, "gamma": 0.8,
              "policy_kwargs": {"net_arch": dict(pi=[256, 256], vf=[256, 256])}}


def _make(env_id: str, seed: int):
    def build():
        import twin  # noqa: F401  (registers the Gymnasium ids)

        if env_id.startswith("twin/"):
            env = gym.make(env_id, **TWIN_KWARGS)
        else:
            import highway_env  # noqa: F401

            env = gym.make(env_id)
        env.reset(seed=seed)
        return env

    return build


def success_rate(model, env_id: str, episodes: int, seed: int) -> float:
    env = _make(env_id, seed)()
    wins = 0
    for k in range(episodes):
        obs, _ = env.reset(seed=seed + k)
        done, crashed, speeds = False, False, []
        while not done:
            obs, _, terminated, truncated, info = env.step(model.predict(obs, deterministic=True)[0])
            crashed = crashed or bool(info.get("crashed", False))
            speeds.append(float(info.get("speed_mps", info.get("speed", 0.0))))
            done = terminated or truncated
        wins += not crashed and sum(speeds) / max(len(speeds), 1) >= SUCCESS_SPEED_MPS
    env.close()
    return wins / episodes


def time_to_success(env_id: str, minutes: float, threshold: float, n_envs: int = 2, eval_every: int = 2048,
                    eval_episodes: int = 10, seed: int = 0) -> dict:
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import SubprocVecEnv

    vec = SubprocVecEnv([_make(env_id, seed + k) for k in range(n_envs)])
    model = PPO("MlpPolicy", vec, n_steps=64 * 12 // n_envs, seed=seed, verbose=0, device="cpu", **PPO_KWARGS)
    train_s, curve, reached = 0.0, [], None
    while train_s < 60.0 * minutes:
        t0 = time.perf_counter()
        model.learn(eval_every, reset_num_timesteps=False)
        train_s += time.perf_counter() - t0
        rate = success_rate(model, env_id, eval_episodes, seed=10_000 + len(curve) * eval_episodes)
        curve.append({"steps": int(model.num_timesteps), "train_s": round(train_s, 1), "success": rate})
        if rate >= threshold and reached is None:
            reached = curve[-1]
            break
    vec.close()
    return {"env": env_id, "reached": reached, "curve": curve, "steps": int(model.num_timesteps),
            "train_s": round(train_s, 1), "steps_per_s": round(model.num_timesteps / max(train_s, 1e-9), 1)}


def humans_speed(seconds: float = 60.0, seed: int = 0, surrogate: Path | None = None,
                 live_fraction: float = 0.1) -> list[dict]:
    """Policy steps/s of the intersection env with each humans mode, ``seconds`` of wall time
    each; with a ``surrogate`` file also the LLM slots on it (``live_fraction`` still live)."""
    import twin  # noqa: F401  (registers the Gymnasium ids)

    modes: list[tuple[str, str, dict]] = [("off", "off", {}), ("rule", "rule", {}), ("llm", "llm", {})]
    if surrogate is not None:
        modes.append((f"surrogate ({live_fraction:.0%} live)", "llm",
                      {"humans.surrogate.path": str(surrogate), "humans.surrogate.live_fraction": live_fraction}))
    rows = []
    for label, mode, overrides in modes:
        env = gym.make("twin/Intersection-v0", humans=mode, overrides=overrides)
        env.reset(seed=seed)
        env.action_space.seed(seed)
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            steps += 1
            if terminated or truncated:
                env.reset()
        wall = time.perf_counter() - start
        decisions = env.unwrapped.occupants.decisions
        env.close()
        rows.append({"humans": label, "policy_steps": steps, "wall_s": round(wall, 1),
                     "steps_per_s": round(steps / wall, 2), "llm_decisions": decisions})
    return rows


def reuse_speed(episodes: int = 5, duration_s: float = 30.0, seed: int = 0, resolution: float = 0.25,
                scripted: bool = False) -> list[dict]:
    """LLM humans with ``humans.reuse`` on, episode after episode of the intersection env
    (random ego actions, a new seed each): how many decisions were reused and the steps/s.

    ``scripted`` answers every request at once with a fixed intent per role (the test
    suite's scripted model) instead of the embedded LLM: how often situations recur does
    not depend on the answers' content, and hundreds of episodes then take minutes."""
    import twin  # noqa: F401  (registers the Gymnasium ids)

    from agents.llm.scripted import ScriptedClient  # the repository's scripted model client

    env = gym.make("twin/Intersection-v0", humans="llm", duration_s=duration_s,
                   model_client=ScriptedClient() if scripted else None,
                   overrides={"humans.reuse.enabled": True, "humans.reuse.resolution": resolution,
                              "humans.memory.enabled": not scripted})
    env.action_space.seed(seed)
    humans = env.unwrapped.occupants
    rows = []
    for episode in range(episodes):
        env.reset(seed=seed + episode)
        hits, misses, start, steps, done = humans.situations.hits, humans.situations.misses, time.perf_counter(), 0, False
        while not done:
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            steps, done = steps + 1, terminated or truncated
        wall = time.perf_counter() - start
        reused, asked = humans.situations.hits - hits, humans.situations.misses - misses
        rows.append({"episode": episode + 1, "decisions": reused + asked, "reused": reused,
                     "reuse_share": round(reused / max(reused + asked, 1), 2), "situations_known": len(humans.situations),
                     "policy_steps": steps, "wall_s": round(wall, 1), "steps_per_s": round(steps / wall, 2)})
    env.close()
    return rows


def run_rl_benchmark(minutes: float = 10.0, threshold: float = 0.9, json_path: Path | None = None,
                     humans_seconds: float = 0.0, surrogate: Path | None = None,
                     reuse_episodes: int = 0, reuse_resolution: float = 0.25, reuse_scripted: bool = False) -> list[dict]:
    console = Console()
    if reuse_episodes > 0:
        who = "a scripted model" if reuse_scripted else "the live LLM"
        with console.status(f"{reuse_episodes} episodes of humans on {who} reusing recorded situations"):
            reuse = reuse_speed(reuse_episodes, resolution=reuse_resolution, scripted=reuse_scripted)
        table = Table(title=f"twin/Intersection-v0, humans on {who} with humans.reuse (30 s episodes, "
                            f"resolution {reuse_resolution})")
        for col in ("episodes", "decisions", "reused", "reuse share", "situations known", "policy steps/s"):
            table.add_column(col, justify="right")
        block = -(-len(reuse) // 20)  # at most 20 rows, each summing a block of episodes
        for k in range(0, len(reuse), block):
            rows = reuse[k:k + block]
            decisions, reused = sum(r["decisions"] for r in rows), sum(r["reused"] for r in rows)
            steps, wall = sum(r["policy_steps"] for r in rows), sum(r["wall_s"] for r in rows)
            span = f"{rows[0]['episode']}-{rows[-1]['episode']}" if len(rows) > 1 else str(rows[0]["episode"])
            table.add_row(span, str(decisions), str(reused), f"{reused / max(decisions, 1):.2f}",
                          str(rows[-1]["situations_known"]), f"{steps / max(wall, 1e-9):.2f}")
        console.print(table)
        if minutes <= 0 and humans_seconds <= 0:
            if json_path is not None:
                Path(json_path).write_text(json.dumps(reuse, indent=2))
            return reuse
    if humans_seconds > 0:
        with console.status("training steps/s with each kind of humans"):
            speed = humans_speed(humans_seconds, surrogate=surrogate)
        table = Table(title="twin/Intersection-v0 steps/s by humans (random ego actions)")
        for col in ("humans", "policy steps/s", "steps", "LLM decisions"):
            table.add_column(col, justify="left" if col == "humans" else "right")
        for r in speed:
            table.add_row(r["humans"], str(r["steps_per_s"]), str(r["policy_steps"]), str(r["llm_decisions"]))
        console.print(table)
        if minutes <= 0:
            if json_path is not None:
                Path(json_path).write_text(json.dumps(speed, indent=2))
            return speed
    rows = []
    for env_id in ("twin/Highway-v0", "highway-fast-v0"):
        with console.status(f"PPO on {env_id} (up to {minutes:g} min of training)"):
            rows.append(time_to_success(env_id, minutes, threshold))
    table = Table(title=f"SB3 PPO: training wall-clock to {threshold:.0%} success (no collision, mean speed "
                        f">= {SUCCESS_SPEED_MPS:g} m/s)")
    for col in ("env", "reached at [s]", "steps then", "training steps/s", "best success"):
        table.add_column(col, justify="left" if col == "env" else "right")
    for r in rows:
        hit = r["reached"]
        table.add_row(r["env"], str(hit["train_s"]) if hit else f"not in {r['train_s']}",
                      str(hit["steps"]) if hit else "-", str(r["steps_per_s"]),
                      f"{max(c['success'] for c in r['curve']):.2f}" if r["curve"] else "-")
    console.print(table)
    if json_path is not None:
        Path(json_path).write_text(json.dumps(rows, indent=2))
    return rows


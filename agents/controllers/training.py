"""RL controllers trained against the twin with stable-baselines3 (``python run.py train CONFIG``).

A training config (``configs/training/*.yaml``, validated like scenarios) names the
algorithm (PPO, DQN, SAC), the Gymnasium id and its keyword overrides, the budget, the
number of vectorised envs (SB3 ``SubprocVecEnv``), the seed, the policy and its kwargs,
hyperparameters, evaluation and checkpoint intervals, and how the supervisor's safety
cost enters (``cost.weight`` times ``info["cost"]`` subtracted from the reward; 0 logs it
only).

A run directory holds ``config.yaml``, ``checkpoints/`` (model, replay buffer for
off-policy algorithms, ``state.json`` with the step count; written atomically),
``episodes.csv`` (per episode: return, length, collisions, cost and supervisor events by
kind), ``tb/`` (tensorboard), ``eval/evaluations.npz`` and ``best/`` (with ``eval``), and
``final.zip``. ``--resume`` continues from
the last checkpoint after any interruption (``kill -9`` included): same step count, the
episode log cut back to the checkpoint, nothing lost beyond one checkpoint interval.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from envs.scenario import set_dotted
from envs.validation import ConfigFileError, describe_problems, read_mapping

TRAINING_DIR = Path(__file__).resolve().parents[2] / "configs" / "training"
EPISODE_FIELDS = ("timesteps", "env", "return", "length", "collisions", "cost", "arrived", "events")


class TrainingError(ValueError):
    """A training config that cannot be used; the message names the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CostConfig(_Strict):
    weight: float = Field(0.0, ge=0.0, description="reward -= weight * info['cost'] (0: log the cost only)")


class EvalConfig(_Strict):
    every_steps: int = Field(0, ge=0, description="evaluate every this many timesteps (0: never)")
    episodes: int = Field(5, ge=1, le=1000)


class TrainingConfig(_Strict):
    """Everything a training run needs."""

    name: str
    algorithm: Literal["PPO", "DQN", "SAC"] = "PPO"
    env: str = Field("twin/Highway-v0", description="Gymnasium id (twin/Highway-v0, twin/Intersection-v0, ...)")
    env_kwargs: dict[str, Any] = Field(default_factory=dict, description="gym.make keyword overrides")
    timesteps: int = Field(100_000, ge=1)
    n_envs: int = Field(2, ge=1, le=64)
    vec_env: Literal["subproc", "dummy"] = "subproc"
    seed: int = 0
    policy: str = "MlpPolicy"
    policy_kwargs: dict[str, Any] = Field(default_factory=dict)
    hyperparams: dict[str, Any] = Field(default_factory=dict, description="keyword arguments of the SB3 algorithm")
    checkpoint_every: int = Field(10_000, ge=1, description="timesteps between checkpoints")
    eval: EvalConfig = EvalConfig()
    cost: CostConfig = CostConfig()
    device: str = "cpu"


def load_training(source: str | Path | dict, overrides: dict[str, Any] | None = None) -> TrainingConfig:
    """A training config from a YAML path, a shipped name or a dict, with dotted overrides."""
    name = "<dict>"
    if isinstance(source, dict):
        data = dict(source)
    else:
        path = Path(source)
        if path.suffix not in (".yaml", ".yml"):
            path = TRAINING_DIR / f"{source}.yaml"
        if not path.exists():
            shipped = sorted(p.stem for p in TRAINING_DIR.glob("*.yaml"))
            raise TrainingError(f"{source}: no such training config (shipped: {', '.join(shipped)})")
        name = str(path)
        try:
            data = read_mapping(path, "training")
        except ConfigFileError as exc:
            raise TrainingError(str(exc)) from None
    for key, value in (overrides or {}).items():
        set_dotted(data, key, value)
    try:
        config = TrainingConfig.model_validate(data)
    except ValidationError as exc:
        raise TrainingError(describe_problems(exc, name, TrainingConfig, "training config",
                                              overridden=list(overrides or {}))) from None
    if config.env not in gym.registry and not config.env.startswith("twin/"):
        raise TrainingError(f"{name}: env: {config.env!r} is not a registered Gymnasium id")
    return config


def check_hyperparams(config: TrainingConfig, algo_cls: type) -> None:
    """Every ``hyperparams`` key must be a keyword of the algorithm (a typo names the key)."""
    import difflib
    import inspect

    known = [p for p in inspect.signature(algo_cls.__init__).parameters if p not in ("self", "env", "policy")]
    for key in config.hyperparams:
        if key not in known:
            hint = difflib.get_close_matches(key, known, n=1)
            raise TrainingError(f"hyperparams.{key}: not a keyword of {config.algorithm}"
                                + (f" (did you mean {hint[0]!r}?)" if hint else ""))


def check_env_kwargs(config: TrainingConfig) -> None:
    """Build the env once here, so a bad ``env_kwargs`` is one clear line, not a traceback per worker."""
    import twin  # noqa: F401  (registers the Gymnasium ids)
    from envs.scenario import ScenarioError

    try:
        gym.make(config.env, **config.env_kwargs).close()
    except (ScenarioError, TypeError, ValueError) as exc:
        raise TrainingError(f"env_kwargs: {exc}") from None


# ---- environments ---------------------------------------------------------------------------
class CostPenalty(gym.Wrapper):
    """Subtracts ``weight * info["cost"]`` (the supervisor's safety cost) from the reward."""

    def __init__(self, env: gym.Env, weight: float) -> None:
        super().__init__(env)
        self.weight = weight

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward - self.weight * float(info.get("cost", 0.0)), terminated, truncated, info


def make_env(config: TrainingConfig, rank: int = 0):
    """A thunk building env ``rank`` of a config (picklable for ``SubprocVecEnv``)."""

    def build() -> gym.Env:
        import twin  # noqa: F401  (registers the Gymnasium ids)
        from stable_baselines3.common.monitor import Monitor

        env = gym.make(config.env, **config.env_kwargs)
        if config.cost.weight > 0:
            env = CostPenalty(env, config.cost.weight)
        env = Monitor(env)
        env.reset(seed=config.seed + rank)
        env.action_space.seed(config.seed + rank)
        return env

    return build


PR_SET_PDEATHSIG = 1  # Linux prctl option: the signal a process gets when its parent dies


def dying_with_parent(thunk, parent_pid: int):
    """``thunk`` run in an env worker that is killed when the training process dies, even by
    SIGKILL (a forked worker otherwise waits forever on a pipe its siblings keep open)."""

    def build() -> gym.Env:
        if sys.platform.startswith("linux"):
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent_pid:  # the parent died before the line above
            os._exit(1)
        return thunk()

    return build


def make_vec_env(config: TrainingConfig):
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    thunks = [make_env(config, k) for k in range(config.n_envs)]
    if config.vec_env == "subproc" and config.n_envs > 1:
        workers = [dying_with_parent(t, os.getpid()) for t in thunks]
        return SubprocVecEnv(workers, start_method="fork" if hasattr(os, "fork") else "spawn")
    return DummyVecEnv(thunks)


# ---- callbacks ------------------------------------------------------------------------------
def _callbacks(config: TrainingConfig, out: Path, resumed_at: int):
    from stable_baselines3.common.callbacks import BaseCallback

    class SafetyLog(BaseCallback):
        """Per episode and env: return, length, collisions, summed cost and the supervisor's
        events by kind, to ``episodes.csv`` and tensorboard (``safety/*``)."""

        def _on_training_start(self) -> None:
            n = self.training_env.num_envs
            self.ret, self.length, self.cost = np.zeros(n), np.zeros(n, int), np.zeros(n)
            self.collisions = np.zeros(n, int)
            self.kinds = [Counter() for _ in range(n)]
            self.seen: list[set] = [set() for _ in range(n)]
            path = out / "episodes.csv"
            new = not path.exists()
            self.file = path.open("a", newline="")
            self.writer = csv.DictWriter(self.file, fieldnames=EPISODE_FIELDS)
            if new:
                self.writer.writeheader()

        def _on_step(self) -> bool:
            rewards, dones, infos = self.locals["rewards"], self.locals["dones"], self.locals["infos"]
            for k, info in enumerate(infos):
                self.ret[k] += rewards[k]
                self.length[k] += 1
                self.cost[k] += float(info.get("cost", 0.0))
                self.collisions[k] += int(info.get("collisions", 0))  # signal control counts them per step
                for e in info.get("supervisor", {}).get("events", []):
                    key = (e["kind"], tuple(e["actors"]), e["start_s"])
                    if key not in self.seen[k]:
                        self.seen[k].add(key)
                        self.kinds[k][e["kind"]] += 1
                if dones[k]:
                    collisions = int(self.collisions[k]) + int(info.get("crashed", False))
                    row = {"timesteps": self.num_timesteps, "env": k, "return": round(float(self.ret[k]), 4),
                           "length": int(self.length[k]), "collisions": collisions,
                           "cost": round(float(self.cost[k]), 3), "arrived": int(info.get("arrived", False)),
                           "events": json.dumps(dict(sorted(self.kinds[k].items())))}
                    self.writer.writerow(row)
                    self.logger.record_mean("safety/collisions", collisions)
                    self.logger.record_mean("safety/cost", row["cost"])
                    for kind, count in self.kinds[k].items():
                        self.logger.record_mean(f"safety/{kind}", count)
                    self.ret[k], self.length[k], self.cost[k], self.collisions[k] = 0.0, 0, 0.0, 0
                    self.kinds[k], self.seen[k] = Counter(), set()
            return True

        def sync(self) -> None:
            if getattr(self, "file", None) is None or self.file.closed:
                return
            self.file.flush()
            os.fsync(self.file.fileno())

        def _on_rollout_end(self) -> None:
            self.file.flush()

        def _on_training_end(self) -> None:
            self.file.close()

    class Checkpoints(BaseCallback):
        """Every ``checkpoint_every`` timesteps: model (+ replay buffer) and state, atomically."""

        def __init__(self) -> None:
            super().__init__()
            self.next_at = (resumed_at // config.checkpoint_every + 1) * config.checkpoint_every

        def _on_step(self) -> bool:
            if self.num_timesteps >= self.next_at:
                safety.sync()  # the episodes up to now reach the disk before the checkpoint
                save_checkpoint(self.model, out, self.num_timesteps)
                self.next_at += config.checkpoint_every
            return True

    class Steps(BaseCallback):
        """Training steps/s to tensorboard (``time/steps_per_s``)."""

        def _on_training_start(self) -> None:
            self.t0, self.n0 = time.perf_counter(), self.num_timesteps

        def _on_rollout_end(self) -> None:
            dt = time.perf_counter() - self.t0
            if dt > 0:
                self.logger.record("time/steps_per_s", (self.num_timesteps - self.n0) / dt)

        def _on_step(self) -> bool:
            return True

    safety = SafetyLog()
    callbacks = [safety, Checkpoints(), Steps()]
    if config.eval.every_steps:
        import warnings

        from stable_baselines3.common.callbacks import EvalCallback

        warnings.filterwarnings("ignore", message="Training and eval env are not of the same type")

        eval_env = make_vec_env(config.model_copy(update={"n_envs": 1, "vec_env": "dummy", "seed": config.seed + 10_000}))
        callbacks.append(EvalCallback(eval_env, n_eval_episodes=config.eval.episodes,
                                      eval_freq=max(config.eval.every_steps // config.n_envs, 1),
                                      log_path=str(out / "eval"), best_model_save_path=str(out / "best"),
                                      deterministic=True, verbose=0))
    return callbacks


# ---- checkpoints --------------------------------------------------------------------------
def _complete(d: Path) -> bool:
    return (d / "state.json").exists() and (d / "model.zip").exists()  # state.json is written last


def _promote(out: Path) -> None:
    """Make ``checkpoints/`` the newest complete checkpoint, whatever moment a kill interrupted
    a save at (``checkpoints.tmp`` is newer than ``checkpoints.old``)."""
    final = out / "checkpoints"
    if _complete(final):
        return
    for name in ("checkpoints.tmp", "checkpoints.old"):
        candidate = out / name
        if _complete(candidate):
            shutil.rmtree(final, ignore_errors=True)
            candidate.rename(final)
            return


def save_checkpoint(model, out: Path, timesteps: int) -> Path:
    """Write ``checkpoints/`` so that a kill at any moment leaves a complete checkpoint: the new
    one is written to ``checkpoints.tmp`` (state.json last) and renamed into place."""
    final, tmp, old = out / "checkpoints", out / "checkpoints.tmp", out / "checkpoints.old"
    _promote(out)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save(tmp / "model.zip")
    if hasattr(model, "replay_buffer") and model.replay_buffer is not None:
        model.save_replay_buffer(tmp / "replay_buffer.pkl")
    (tmp / "state.json").write_text(json.dumps({"timesteps": int(timesteps), "time": time.time()}))
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def _latest_checkpoint(out: Path) -> Path | None:
    """The newest complete checkpoint, whichever moment of a save a kill interrupted."""
    _promote(out)
    final = out / "checkpoints"
    return final if _complete(final) else None


def _truncate_episodes(out: Path, timesteps: int) -> None:
    """Drop episode rows logged after the checkpoint being resumed (they will be played again)."""
    path = out / "episodes.csv"
    if not path.exists():
        return
    with path.open(newline="") as fh:  # a row cut short by a kill has empty fields: dropped
        rows = [r for r in csv.DictReader(fh) if None not in r.values() and r.get("events")
                and r["timesteps"].isdigit() and int(r["timesteps"]) <= timesteps]
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=EPISODE_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


# ---- training -------------------------------------------------------------------------------
def train(config: TrainingConfig, out: Path | None = None, resume: bool = False, progress: bool = True) -> dict:
    """Train (or resume) and return a summary; see the module docstring for the run directory."""
    import stable_baselines3 as sb3

    out = Path(out or Path("runs") / "train" / config.name)
    algo_cls = getattr(sb3, config.algorithm)
    if resume and not (out / "config.yaml").exists():
        raise TrainingError(f"{out}: nothing to resume (no training run there); drop --resume to start one")
    check_hyperparams(config, algo_cls)
    check_env_kwargs(config)
    checkpoint = _latest_checkpoint(out) if resume else None
    if resume and checkpoint is None and (out / "config.yaml").exists():
        print(f"{out}: no checkpoint yet, starting from step 0")
    if not resume and out.exists() and any(out.iterdir()):
        raise TrainingError(f"{out}: run directory exists; pass --resume to continue it or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    if resume and (out / "config.yaml").exists():
        saved = TrainingConfig.model_validate(yaml.safe_load((out / "config.yaml").read_text()))
        if saved.model_dump(exclude={"timesteps"}) != config.model_dump(exclude={"timesteps"}):
            raise TrainingError(f"{out}: --resume with a different config than the run was started with "
                                "(only timesteps may change, to extend a run)")
    (out / "config.yaml").write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    env = make_vec_env(config)
    done = 0
    try:
        if checkpoint is not None:
            done = json.loads((checkpoint / "state.json").read_text())["timesteps"]
            model = algo_cls.load(checkpoint / "model.zip", env=env, device=config.device,
                                  tensorboard_log=str(out / "tb"))
            if (checkpoint / "replay_buffer.pkl").exists():
                model.load_replay_buffer(checkpoint / "replay_buffer.pkl")
            model.num_timesteps = done
            _truncate_episodes(out, done)
        else:
            _truncate_episodes(out, 0)
            model = algo_cls(config.policy, env, seed=config.seed, policy_kwargs=config.policy_kwargs or None,
                             tensorboard_log=str(out / "tb"), device=config.device, verbose=0, **config.hyperparams)
        remaining = max(config.timesteps - done, 0)
        start = time.perf_counter()
        if remaining:
            model.learn(total_timesteps=remaining, callback=_callbacks(config, out, done),
                        reset_num_timesteps=checkpoint is None, tb_log_name=config.algorithm, progress_bar=progress)
        wall = time.perf_counter() - start
        save_checkpoint(model, out, model.num_timesteps)
        model.save(out / "final.zip")
    finally:
        env.close()
    summary = {"name": config.name, "timesteps": int(model.num_timesteps), "resumed_from": done,
               "wall_s": round(wall, 1), "steps_per_s": round(remaining / wall, 1) if remaining and wall else None,
               "run_dir": str(out), **episode_stats(out)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def episode_stats(out: Path, last: int = 50) -> dict:
    """Mean return, collision rate and cost of the last ``last`` episodes logged in ``out``."""
    path = out / "episodes.csv"
    if not path.exists():
        return {"episodes": 0}
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    tail = rows[-last:]
    if not tail:
        return {"episodes": 0}
    rows = [r for r in rows if None not in r.values()]
    return {"episodes": len(rows),
            "mean_return_last": round(float(np.mean([float(r["return"]) for r in tail])), 3),
            "collision_rate_last": round(float(np.mean([int(r["collisions"]) for r in tail])), 3),
            "mean_cost_last": round(float(np.mean([float(r["cost"]) for r in tail])), 3)}

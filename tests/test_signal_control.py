"""RL signal control: API conformance, safe phase changes, the fixed-time baseline."""

import gymnasium as gym
import numpy as np
from gymnasium.utils.env_checker import check_env

import twin  # noqa: F401  (registers the Gymnasium ids)
from twin.gym import make_signal_env


def _intervals(env, actions) -> list[tuple[str, float]]:
    """(signal interval name, seconds) runs while stepping the env with ``actions``."""
    controller = env.unwrapped.controller
    cycle = env.unwrapped.world.network.signal_cycle
    runs: list[list] = []
    run_controller = controller.after_step

    def watched(world):  # the interval the step just ran with, before the controller moves on
        name = cycle[world.signals.interval].name
        if runs and runs[-1][0] == name:
            runs[-1][1] += world.dt
        else:
            runs.append([name, world.dt])
        run_controller(world)

    controller.after_step = watched
    for a in actions:
        env.step(int(a))
    return [(n, round(t, 2)) for n, t in runs]


def test_signal_control_env_passes_the_gymnasium_checker():
    check_env(make_signal_env(duration_s=30.0, humans="off"))


def test_phase_changes_always_run_amber_and_all_red_and_never_conflict():
    env = gym.make("twin/SignalControl-v0", duration_s=400.0)
    env.reset(seed=0)
    rng = np.random.default_rng(1)
    runs = _intervals(env, rng.integers(5, size=60))
    net = env.unwrapped.world.network
    amber = next(iv.duration for iv in net.signal_cycle if iv.name.endswith("amber"))
    all_red = next(iv.duration for iv in net.signal_cycle if iv.name == "all red")
    greens = [k for k, (name, _) in enumerate(runs) if name.endswith(" green") or name == "pedestrians walk"]
    assert len(greens) >= 5  # random requests do change the phase
    for a, b in zip(greens, greens[1:]):
        between = runs[a + 1:b]
        assert between, f"{runs[a][0]} -> {runs[b][0]} without clearance"
        assert between[-1][0] == "all red" and between[-1][1] >= all_red - 1e-6
        if runs[a][0].endswith(" green"):
            assert between[0][0].endswith("amber") and between[0][1] >= amber - 1e-6
    sup = env.unwrapped.occupants.supervisor
    # a long phase is no fault, and queues starting and stopping are what the behaviour model expects
    assert not [e for e in sup.events if e.kind in ("signal_conflict", "signal_stuck", "behaviour")]


def test_fixed_time_baseline_runs_the_plan_and_beats_random_phases():
    def delay(fixed: bool) -> float:
        env = gym.make("twin/SignalControl-v0", duration_s=240.0, fixed_time=fixed)
        rng = np.random.default_rng(0)
        total = 0.0
        for seed in (0, 1):
            env.reset(seed=seed)
            done = False
            while not done:
                _, reward, terminated, truncated, info = env.step(int(rng.integers(5)))
                total += info["vehicle_delay_s"]
                done = terminated or truncated
        return total

    assert delay(fixed=True) < delay(fixed=False)

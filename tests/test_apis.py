import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from pettingzoo.test import parallel_api_test, parallel_seed_test
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import twin
from envs import render

IDS = list(twin.SCENARIO_IDS)


@pytest.mark.parametrize("env_id", IDS)
def test_gymnasium_and_sb3_check_env(env_id):
    gym_check_env(gym.make(env_id).unwrapped)
    sb3_check_env(gym.make(env_id).unwrapped, warn=False)


def test_continuous_action_option_passes_checks():
    env = gym.make("twin/Crosswalk-v0", action="continuous")
    assert isinstance(env.action_space, gym.spaces.Box) and env.action_space.shape == (2,)
    gym_check_env(env.unwrapped)


@pytest.mark.parametrize("scenario", ["highway", "intersection"])
def test_pettingzoo_parallel_api(scenario):
    parallel_api_test(twin.parallel_env(scenario, controlled=3), num_cycles=40)


def test_pettingzoo_seed():
    parallel_seed_test(lambda: twin.parallel_env("crosswalk", controlled=2), num_cycles=20)


@pytest.mark.parametrize("env_id", IDS)
def test_same_seed_same_trajectory(env_id):
    runs = []
    for _ in range(2):
        env = gym.make(env_id)
        obs, _ = env.reset(seed=42)
        trace = [obs]
        for k in range(8):
            obs, reward, term, trunc, _ = env.step(k % 3)
            trace.append(obs)
            if term or trunc:
                break
        world = env.unwrapped.world
        runs.append((np.array(trace), world.vehicles.x.copy(), world.pedestrians.x.copy()))
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)
    other = gym.make(env_id)
    other.reset(seed=43)
    first = gym.make(env_id)
    first.reset(seed=42)
    assert not np.array_equal(other.unwrapped.world.vehicles.x, first.unwrapped.world.vehicles.x)


@pytest.mark.parametrize("env_id", IDS)
def test_rgb_array_render_is_headless_image(env_id):
    env = gym.make(env_id, render_mode="rgb_array")
    env.reset(seed=0)
    env.step(0)
    frame = env.render()
    cfg = env.unwrapped.config.render
    assert frame.dtype == np.uint8 and frame.shape == (cfg.height_px, cfg.width_px, 3)
    colours = {tuple(c) for c in np.unique(frame.reshape(-1, 3), axis=0)}
    assert render.ASPHALT in colours and render.EGO_COLOUR in colours  # the road and the ego are drawn


def test_collision_terminates_with_penalty():
    env = gym.make("twin/Highway-v0", vehicles=0, vehicles_per_hour=0, ramp_vehicles_per_hour=0)
    env.reset(seed=0)
    world = env.unwrapped.world
    r = world.vehicles.row(env.unwrapped.ego_id)
    world.add_vehicle(int(world.vehicles.lane[r]), float(world.vehicles.s[r]) + 60.0, 0.0, speed_factor=0.0)
    for _ in range(20):
        obs, reward, terminated, truncated, info = env.step(1)  # faster, straight into the stopped car
        if terminated:
            break
    assert terminated and info["crashed"] and reward < 0
    assert any(e["kind"] == "collision" for e in info["events"])


def test_truncated_on_time():
    env = gym.make("twin/Crosswalk-v0", duration_s=3)
    env.reset(seed=0)
    flags = [env.step(0)[3] for _ in range(3)]
    assert flags == [False, False, True]


def test_parallel_agents_leave_when_done():
    env = twin.parallel_env("crosswalk", controlled=2, duration_s=4)
    obs, _ = env.reset(seed=0)
    assert set(obs) == {"ego_0", "ego_1"}
    for _ in range(4):
        env.step({a: 0 for a in env.agents})
    assert env.agents == []

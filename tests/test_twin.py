"""The composition root: one wiring of client, memory and supervisor for every way of running the twin."""

from __future__ import annotations

import gymnasium as gym

import twin  # noqa: F401  (registers the Gymnasium ids)
from agents.llm.scripted import ScriptedClient, by_role
from envs.occupants import NoOccupants, Occupants
from twin.occupants import TwinOccupants
from twin.scenario import load_scenario


def test_gym_env_with_llm_triage_gets_a_model_client_like_simulate():
    env = gym.make("twin/Intersection-v0", duration_s=10, overrides={"supervisor.triage": "llm"},
                   model_client=ScriptedClient(by_role))
    env.reset(seed=0)  # used to raise "needs a model client" with rule-based humans
    assert env.unwrapped.occupants.supervisor.agent is not None
    env.step(0)
    env.close()


def test_gym_env_memory_persists_across_envs_when_configured(tmp_path):
    kwargs = dict(duration_s=20, humans="llm", model_client=ScriptedClient(by_role),
                  overrides={"humans.memory.persist": True, "humans.memory.directory": str(tmp_path / "mem"),
                             "humans.memory.embedding": "hash"})
    first = gym.make("twin/Intersection-v0", **kwargs)
    first.reset(seed=1)
    for _ in range(20):
        _, _, terminated, truncated, _ = first.step(0)  # keep lane and speed
        if terminated or truncated:
            break
    remembered = first.unwrapped.occupants.population.memory.count()
    first.close()
    assert remembered > 0
    second = gym.make("twin/Intersection-v0", **kwargs)
    second.reset(seed=2)
    population = second.unwrapped.occupants.population
    assert population.memory.count() >= remembered and population.episode >= 1  # it remembers the last episode
    second.close()


def test_both_occupants_satisfy_the_protocol_the_views_drive():
    config = load_scenario("highway")
    assert isinstance(NoOccupants(), Occupants)
    assert isinstance(TwinOccupants(config, humans="off"), Occupants)

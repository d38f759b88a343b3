"""The composition root of the traffic twin: a scenario is a world plus who lives in it.

- ``twin.scenario``: the full scenario schema (world + ``humans:`` + ``supervisor:``) and its loader.
- ``twin.assemble``: model client, memory, reused decisions, humans and supervisor from a scenario.
- ``twin.episode``: :class:`~twin.episode.Episode`, the one step order.
- ``twin.occupants``: the humans and supervisor as the Gym/PettingZoo views see them.
- ``twin.run``: a run directory (``run.py simulate``, the live inspector).
- ``twin.gym``: the Gymnasium and PettingZoo factories.

Importing this package registers the Gymnasium ids (:data:`ENV_IDS`); nothing heavier is
imported until an env is made.
"""

from __future__ import annotations

from typing import Any

#: Gymnasium id -> (factory in twin.gym, the scenario it runs)
ENV_IDS = {
    "twin/Highway-v0": ("make_env", "highway"),
    "twin/Intersection-v0": ("make_env", "intersection"),
    "twin/Crosswalk-v0": ("make_env", "crosswalk"),
    "twin/SignalControl-v0": ("make_signal_env", "intersection"),
}
SCENARIO_IDS = {env_id: scenario for env_id, (factory, scenario) in ENV_IDS.items() if factory == "make_env"}


def register_envs() -> None:
    """Register the twin's Gymnasium ids (idempotent)."""
    from gymnasium.envs.registration import register, registry

    for env_id, (factory, scenario) in ENV_IDS.items():
        if env_id not in registry:
            register(id=env_id, entry_point=f"twin.gym:{factory}", kwargs={"scenario": scenario})


def parallel_env(scenario: str = "highway", **overrides: Any):
    """A PettingZoo ``ParallelEnv`` of the twin (see :func:`twin.gym.parallel_env`)."""
    from twin.gym import parallel_env as make

    return make(scenario, **overrides)


register_envs()

"""The twin: road networks, actors, physics, and its Gymnasium / PettingZoo views.

Importing this package registers the Gymnasium ids ``twin/Highway-v0``,
``twin/Intersection-v0``, ``twin/Crosswalk-v0`` (an RL-driven ego vehicle) and
``twin/SignalControl-v0`` (RL signal control of the intersection).
"""

from gymnasium.envs.registration import register, registry

SCENARIO_IDS = {"twin/Highway-v0": "highway", "twin/Intersection-v0": "intersection", "twin/Crosswalk-v0": "crosswalk"}

for _env_id, _scenario in SCENARIO_IDS.items():
    if _env_id not in registry:
        register(id=_env_id, entry_point="envs.single_agent:TwinEnv", kwargs={"scenario": _scenario})
if "twin/SignalControl-v0" not in registry:
    register(id="twin/SignalControl-v0", entry_point="envs.signal_control:SignalControlEnv",
             kwargs={"scenario": "intersection"})


def parallel_env(scenario: str = "highway", **overrides):
    """A PettingZoo ``ParallelEnv`` of the twin; keyword arguments override scenario fields."""
    from envs.multi_agent import TwinParallelEnv

    return TwinParallelEnv(scenario, **overrides)

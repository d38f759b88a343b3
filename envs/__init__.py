"""The world of the twin: road networks, actors, physics, faults, and the views over it.

This package imports nothing above it (no agents, no memory, no composition root).
The Gymnasium / PettingZoo views (``envs.single_agent.TwinEnv``,
``envs.multi_agent.TwinParallelEnv``, ``envs.signal_control.SignalControlEnv``) take a
validated :class:`envs.scenario.WorldConfig` and whoever lives in the world through the
``envs.occupants.Occupants`` protocol; the registered ids (``twin/Highway-v0``, ...) and
the scenario files with their humans live in the composition root, the ``twin`` package.
"""

from pathlib import Path as _Path

from envs.kernel_cache import drop_stale as _drop_stale

_drop_stale(_Path(__file__).parent)

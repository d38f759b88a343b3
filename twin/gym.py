"""The Gymnasium and PettingZoo factories of the twin (what the registered ids build).

Keyword arguments override scenario fields: shortcuts such as ``vehicles``, top-level
fields such as ``sim_hz`` / ``policy_hz`` / ``duration_s``, and nested fields written with
``__`` (``network__lanes=3``) or passed in ``overrides={"network.lanes": 3}``. ``humans``
is ``"rule"`` (the default), ``"llm"`` or ``"off"`` (see ``twin.occupants``);
``model_client`` is any autogen ``ChatCompletionClient`` the LLM humans and the
supervisor's triage use instead of the scenario's backend; ``llm_cache`` a JSON-lines file
of answers shared across runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from envs.multi_agent import TwinParallelEnv
from envs.scenario import scenario_overrides
from envs.signal_control import SignalControlEnv
from envs.single_agent import TwinEnv
from twin.occupants import TwinOccupants
from twin.scenario import ScenarioConfig, load_scenario


def make_env(scenario: str | Path | ScenarioConfig = "highway", render_mode: str | None = None,
             overrides: dict[str, Any] | None = None, humans: str = "rule", llm_cache: str | Path | None = None,
             model_client: Any = None, **fields: Any) -> TwinEnv:
    """One RL-driven ego vehicle among the scenario's humans (``twin/Highway-v0`` and friends)."""
    config = load_scenario(scenario, scenario_overrides(overrides, fields, controlled=1))
    return TwinEnv(config, TwinOccupants(config, humans, llm_cache, model_client), render_mode)


def parallel_env(scenario: str | Path | ScenarioConfig = "highway", render_mode: str | None = None,
                 overrides: dict[str, Any] | None = None, humans: str = "rule", llm_cache: str | Path | None = None,
                 model_client: Any = None, **fields: Any) -> TwinParallelEnv:
    """A PettingZoo ``ParallelEnv`` of ``controlled`` ego vehicles (default 2) among the humans."""
    fields.setdefault("controlled", 2)
    config = load_scenario(scenario, scenario_overrides(overrides, fields))
    return TwinParallelEnv(config, TwinOccupants(config, humans, llm_cache, model_client), render_mode)


def make_signal_env(scenario: str | Path | ScenarioConfig = "intersection", decision_s: float = 5.0,
                    pedestrian_weight: float = 0.5, fixed_time: bool = False, humans: str = "rule",
                    llm_cache: str | Path | None = None, model_client: Any = None,
                    overrides: dict[str, Any] | None = None, tls: str | None = None,
                    **fields: Any) -> SignalControlEnv:
    """RL signal control among the humans (``twin/SignalControl-v0``): of the intersection, or
    of one traffic light (``tls``; default the largest) of a SUMO network."""
    config = load_scenario(scenario, scenario_overrides(overrides, fields, controlled=0))
    return SignalControlEnv(config, TwinOccupants(config, humans, llm_cache, model_client),
                            decision_s=decision_s, pedestrian_weight=pedestrian_weight, fixed_time=fixed_time,
                            tls=tls)

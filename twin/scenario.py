"""The full scenario: the world (``envs.scenario.WorldConfig``) plus who lives in it.

A scenario file holds the world's fields and two sections configured here, one layer
above the world: ``humans:`` (personas, LLM backend, memory; ``agents.humans.config``) and
``supervisor:`` (hazard and anomaly thresholds, triage; ``agents.supervisor.supervisor``). Errors
name the field and the file, as the world's loader does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agents.humans.config import HumansConfig
from agents.supervisor.config import SupervisorConfig
from envs.scenario import ScenarioError, WorldConfig, load_config

__all__ = ["ScenarioConfig", "ScenarioError", "load_scenario"]


class ScenarioConfig(WorldConfig):
    """Everything needed to build and run one scenario of the twin: the world, its humans, its supervisor."""

    humans: HumansConfig = HumansConfig()
    supervisor: SupervisorConfig = SupervisorConfig()


def load_scenario(scenario: str | Path | dict | WorldConfig, overrides: dict[str, Any] | None = None) -> ScenarioConfig:
    """Load and validate a scenario from a path, shipped name, dict or config, then apply
    ``overrides`` (dotted field paths or the shortcuts of ``envs.scenario.SHORTCUTS``)."""
    return load_config(scenario, overrides, schema=ScenarioConfig)

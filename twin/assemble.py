"""Building who lives in a world from a scenario: model client, memory, reused decisions,
humans and supervisor. The one place this wiring is written; ``twin.run`` (run directories)
and ``twin.occupants`` (the Gym and PettingZoo views) both call it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from rich.console import Console

from envs.world import World
from twin.scenario import ScenarioConfig


def model_client(config: ScenarioConfig, cache: Path | None, replay: Path | None = None,
                 client: Any = None, console: Console | None = None) -> tuple[Any, ScenarioConfig]:
    """The scenario's model client behind its answer cache (``cache``, a JSON-lines file, or
    None for memory only), and the scenario with what the model server takes filled in.

    ``replay`` is a recorded run directory: its cache is copied to ``cache`` and read over a
    client that never calls a model. ``client`` replaces the configured backend (a scripted
    client in tests, a shared one in the live inspector). A server built here is probed first
    (:func:`probed`): a dead one raises ``BackendError`` before the run."""
    from agents.llm.backend import ReplayOnlyClient, build_model_client, cached_client

    if replay is not None:
        recorded = replay / "llm_cache.jsonl"
        if cache is not None and recorded.exists() and recorded.resolve() != cache.resolve():
            shutil.copyfile(recorded, cache)
        return cached_client(ReplayOnlyClient(), cache, read_only=True), config
    if client is None:
        with (console or Console()).status(f"loading the {config.humans.model.backend} model"):
            client = build_model_client(config.humans.model, seed=config.seed)
        config = probed(config, client, console)
    return cached_client(client, cache), config


def probed(config: ScenarioConfig, client: Any, console: Console | None = None) -> ScenarioConfig:
    """``config`` with ``humans.model.structured_output`` and ``concurrency`` as the server
    takes them (probed through the uncached ``client`` unless both are configured); the
    embedded model needs no probe."""
    model = config.humans.model
    if model.backend == "embedded" or (model.structured_output != "auto" and model.concurrency):
        return config
    from agents.humans.intent import DriverIntent
    from agents.llm.probe import probe_server
    from agents.llm.runner import ModelRunner

    console = console or Console()
    with console.status(f"probing the model server at {model.base_url}"):
        report = ModelRunner(client).run(probe_server(
            client, DriverIntent, model.structured_output, model.concurrency, model.base_url, model.timeout_s,
            model.max_tokens))
    console.print(report.line(model.base_url))
    resolved = model.model_copy(update={"structured_output": report.structured_output, "concurrency": report.slots})
    return config.model_copy(update={"humans": config.humans.model_copy(update={"model": resolved})})


def memory_store(config: ScenarioConfig, run_dir: Path | None, replay: bool = False) -> tuple[Any, bool]:
    """The humans' memory store and whether it persists across episodes (``memory.persist``
    with a ``directory``; never while replaying). A run's own store (``run_dir/memory``)
    starts empty so reruns and replays match; with no run directory it lives in memory."""
    from memory.embedding import HashEmbedding, MiniLMEmbedding
    from memory.stream import MemoryStore

    memory = config.humans.memory
    persist = bool(memory.persist and memory.directory and not replay)
    path = Path(memory.directory) if persist else (run_dir / "memory" if run_dir is not None else None)
    if not persist and path is not None and path.exists():
        shutil.rmtree(path)
    embedding = MiniLMEmbedding() if memory.embedding == "minilm" else HashEmbedding()
    return MemoryStore(path, embedding=embedding), persist


def situation_cache(config: ScenarioConfig, run_dir: Path | None = None, replay: Path | None = None) -> Any:
    """The cache of reusable decisions (``humans.reuse``), or None. In a run directory the
    shared file is copied as it was at the start (``situations_start.jsonl``), and a replay
    reads that copy without writing, so it meets the situations the recorded run did."""
    reuse = config.humans.reuse
    if not reuse.enabled:
        return None
    from agents.humans.situation_cache import SituationCache

    if replay is not None:
        recorded = replay / "situations_start.jsonl"
        if run_dir is not None and recorded.exists() and replay.resolve() != run_dir.resolve():
            shutil.copyfile(recorded, run_dir / "situations_start.jsonl")
        return SituationCache(recorded if recorded.exists() else None, reuse.resolution, read_only=True)
    if run_dir is not None and reuse.path and Path(reuse.path).exists():
        shutil.copyfile(reuse.path, run_dir / "situations_start.jsonl")
    return SituationCache(reuse.path, reuse.resolution)


def population(world: World, config: ScenarioConfig, client: Any = None, memory: Any = None,
               persist: bool = False, situations: Any = None, runner: Any = None,
               personas: dict | None = None, rule_only: bool = False, episode: int | None = None) -> Any:
    """The scenario's humans embodied in ``world`` (None when it configures none).
    ``rule_only`` keeps every persona slot with its behaviour parameters and no model.
    With a persistent memory the episode number continues from what the store remembers."""
    from agents.humans.population import Population
    from agents.humans.roster import rule_only as without_llm

    humans = config.humans
    if not humans.any:
        return None
    if rule_only or not humans.llm_count:
        return Population(world, without_llm(humans), personas=personas, seed=world.seed)
    built = Population(world, humans, client=client, memory=memory, personas=personas, seed=world.seed,
                       runner=runner, situations=situations)
    if memory is not None and persist:  # the next episode of persona identities that remember
        built.episode = 1 + max(memory.latest_episode(h.identity) if memory.count(h.identity) else -1
                                for h in built.humans)
    elif episode is not None:
        built.episode = episode
    return built


def supervisor(config: ScenarioConfig, population: Any = None, client: Any = None,
               runner: Any = None, keep_disabled: bool = False) -> Any:
    """The scenario's supervisor; LLM triage shares the humans' client and model runner when
    they have one. When ``supervisor.enabled`` is off: None, or with ``keep_disabled`` a
    supervisor that records nothing (a run directory still gets its empty files)."""
    if not (config.supervisor.enabled or keep_disabled):
        return None
    from agents.supervisor.supervisor import build_supervisor

    if population is not None and population.client is not None:
        client, runner = population.client, population.runner
    return build_supervisor(config, population, client, runner)


def recorded_episode(replay: Path | None) -> int | None:
    """The episode number a recorded run's humans were in (None when not recorded)."""
    if replay is None or not (replay / "summary.json").exists():
        return None
    return json.loads((replay / "summary.json").read_text()).get("episode", 0)

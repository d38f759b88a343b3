"""Cost and character of the LLM humans with the embedded model.

``cost``: the intersection scenario with 10 LLM humans (7 drivers, 2 pedestrians, 1
operator) for a few simulated minutes: LLM calls per simulated agent-minute, decision
latency p50/p95 (model time), cache hit rate and fallback rate; then a replay of the
same run (all answers from the cache, zero model calls) for the hit rate and speed.

``separation``: aggressive vs cautious drivers (6 LLM drivers at the intersection) and
child vs elderly pedestrians (10 LLM pedestrians at the school-zone zebra crossing); the
distributions of time headway [s] and speed [m/s] of the drivers (sampled every
simulated second while moving), and of the gaps [s] and walking speeds [m/s] pedestrians
chose when they stepped off the curb; compared with a two-sided Mann-Whitney U test
(scipy).

``throughput``: the README's main scenario (the intersection with its 8 LLM humans) with
the embedded model in-process, then behind llama-cpp-python's local server: real-time
factor, decisions/s, prompt and answer tokens per decision, latency p50/p95 (failed
requests included), fallbacks, the wall time the physics waited, and the model's ceiling:
the same requests sent straight to it, one after another, with no twin around them.

    python run.py bench humans [--minutes 3] [--separation-minutes 10] [--throughput-minutes 2] [--json out.json]

``--minutes 0``, ``--separation-minutes 0`` or ``--throughput-minutes 0`` skips that part.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

COST_HUMANS = {
    "drivers": [{"persona": p, "count": 1} for p in ("commuter_late", "aggressive_young", "cautious_elderly",
                                                     "phone_distracted", "learner", "taxi_driver", "tourist")],
    "pedestrians": [{"persona": "child_to_school", "count": 1}, {"persona": "elderly_pedestrian", "count": 1}],
    "operators": [{"persona": "tmc_operator", "count": 1}],
}
SEPARATION_DRIVERS = {  # on the intersection
    "drivers": [{"persona": "aggressive_young", "count": 3}, {"persona": "cautious_elderly", "count": 3}],
    "decision_period_s": {"driver": 20},
    "memory": {"enabled": False},
}
SEPARATION_PEDESTRIANS = {  # at the school-zone zebra crossing, where crossing is a gap decision
    "pedestrians": [{"persona": "child_to_school", "count": 5}, {"persona": "elderly_pedestrian", "count": 5}],
    "decision_period_s": {"pedestrian": 10},
    "memory": {"enabled": False},
}
PAIRS = [("aggressive_young", "cautious_elderly", "headway_s"), ("aggressive_young", "cautious_elderly", "speed_mps"),
         ("child_to_school", "elderly_pedestrian", "accepted_gap_s"),
         ("child_to_school", "elderly_pedestrian", "walking_speed_mps")]


def measure_cost(minutes: float, out: Path, console: Console) -> dict[str, Any]:
    """Record a run with 10 LLM humans, then replay it; returns the figures of both."""
    from twin.run import simulate

    record = simulate("intersection", minutes=minutes, overrides={"humans": COST_HUMANS}, out=out / "record",
                      console=console)
    replay = simulate(None, replay=out / "record", out=out / "replay", console=console)
    decisions = max(record["llm_decisions"], 1)
    return {
        "llm_humans": record["llm_humans"],
        "simulated_s": record["simulated_s"],
        "calls_per_agent_minute": record["calls_per_agent_minute"],
        "decision_latency_p50_s": record["decision_latency_p50_s"],
        "decision_latency_p95_s": record["decision_latency_p95_s"],
        "cache_hit_rate_record": round(record["cache_hits"] / decisions, 3),
        "fallback_rate": round(record["fallbacks"] / decisions, 3),
        "fallbacks_by_kind": record["fallbacks_by_kind"],
        "record_wall_s": record["wall_s"],
        "replay_cache_hit_rate": round(replay["cache_hits"] / max(replay["llm_decisions"], 1), 3),
        "replay_model_calls": replay["llm_calls"],
        "replay_identical": replay.get("replay_identical"),
        "replay_wall_s": replay["wall_s"],
    }


CROWD_HUMANS = {  # 20 LLM humans at the intersection, for the throughput target "20 LLM humans at 1x real time"
    "drivers": [{"persona": "commuter_late", "count": 3}, {"persona": "aggressive_young", "count": 2},
                {"persona": "cautious_elderly", "count": 2}, {"persona": "phone_distracted", "count": 2},
                {"persona": "taxi_driver", "count": 2, "llm": True}, {"persona": "learner", "count": 2},
                {"persona": "tourist", "count": 1}],
    "pedestrians": [{"persona": "child_to_school", "count": 2}, {"persona": "elderly_pedestrian", "count": 1},
                    {"persona": "jogger", "count": 1, "llm": True}, {"persona": "phone_commuter", "count": 1}],
    "operators": [{"persona": "tmc_operator", "count": 1}],
}
# a throughput row: its model (embedded in-process, or behind llama-cpp-python's server) and
# its humans (None: the scenario's own 8)
THROUGHPUT_RUNS = {"embedded": ("embedded", None), "server": ("server", None), "embedded-20": ("embedded", CROWD_HUMANS)}
THROUGHPUT_BACKENDS = tuple(THROUGHPUT_RUNS)
CEILING_REQUESTS = 16  # requests of the run sent again, straight to the model, for its ceiling


def _tokens_per_decision(cache: Path) -> tuple[float | None, float | None]:
    """Mean prompt and answer tokens of the answers in a run's cache."""
    records = [json.loads(line) for line in cache.read_text().splitlines() if line.strip()] if cache.exists() else []
    usage = [r["value"].get("usage") or {} for r in records if "value" in r]
    usage = [u for u in usage if u.get("prompt_tokens")]  # a streaming server may report none
    if not usage:
        return None, None
    return (round(float(np.mean([u.get("prompt_tokens", 0) for u in usage])), 1),
            round(float(np.mean([u.get("completion_tokens", 0) for u in usage])), 1))


def _ceiling(run_dir: Path, config: Any, client: Any, requests: int) -> dict[str, Any]:
    """Decisions/s of the model alone: the run's first ``requests`` LLM decisions asked again
    through ``client`` (uncached), one after another."""
    from agents.humans.agent import HumanAgent, rule_intent
    from agents.humans.persona import get_persona, load_personas
    from agents.llm.runner import ModelRunner

    records = [json.loads(line) for line in (run_dir / "decisions.jsonl").read_text().splitlines()]
    records = [r for r in records if r["source"] == "llm" and r["prompt"]][:requests]
    personas = load_personas(strict=False)
    model = config.humans.model
    runner = ModelRunner(client)
    start = time.perf_counter()
    fallbacks = 0
    for r in records:
        persona = get_persona(r["persona"], personas)
        agent = HumanAgent.for_model("ceiling", persona, client, model)
        decision = runner.run(agent.decide(r["prompt"], rule_intent(persona, {})))
        fallbacks += decision.fallback is not None
    wall = time.perf_counter() - start
    return {"requests": len(records), "decisions_per_s": round(len(records) / wall, 3) if records else None,
            "seconds_per_decision": round(wall / len(records), 3) if records else None, "fallbacks": fallbacks}


def measure_throughput(name: str, minutes: float, out: Path, console: Console) -> dict[str, Any]:
    """The README's main scenario as the :data:`THROUGHPUT_RUNS` row ``name`` says (the
    embedded model in-process or behind llama-cpp-python's local server; its own humans or
    20), then the model's ceiling."""
    from contextlib import nullcontext

    from agents.llm.backend import build_model_client
    from agents.llm.local_server import LocalModelServer
    from twin.run import simulate
    from twin.scenario import load_scenario

    backend, humans = THROUGHPUT_RUNS[name]
    run_dir = out / f"throughput-{name}"
    with (LocalModelServer() if backend == "server" else nullcontext()) as server:
        overrides: dict[str, Any] = {} if server is None else {"humans.model.backend": "openai",
                                                               "humans.model.base_url": server.base_url}
        overrides.update({f"humans.{role}": people for role, people in (humans or {}).items()})
        summary = simulate("intersection", minutes=minutes, overrides=overrides, out=run_dir, console=console)
    config = load_scenario(run_dir / "scenario.yaml")  # as probed
    # the ceiling on a fresh model (or server): nothing of the run's prompt cache helps it
    with (LocalModelServer() if backend == "server" else nullcontext()) as server, \
            console.status(f"{backend}: the model's ceiling"):
        model = config.humans.model if server is None else config.humans.model.model_copy(
            update={"base_url": server.base_url})
        ceiling = _ceiling(run_dir, config, build_model_client(model, seed=config.seed), CEILING_REQUESTS)
    prompt_tokens, answer_tokens = _tokens_per_decision(run_dir / "llm_cache.jsonl")
    busy_s = max(summary["wall_s"] - summary["compile_s"], 1e-9)
    rate = summary["llm_calls"] / busy_s
    return {
        "backend": name, "structured_output": summary.get("structured_output"),
        "llm_humans": summary["llm_humans"], "simulated_s": summary["simulated_s"],
        "realtime_factor": summary["realtime_factor"], "decisions": summary["llm_decisions"],
        "decisions_per_s": round(rate, 3), "prompt_tokens_per_decision": prompt_tokens,
        "answer_tokens_per_decision": answer_tokens,
        "decision_latency_p50_s": summary["decision_latency_p50_s"],
        "decision_latency_p95_s": summary["decision_latency_p95_s"], "model_wait_s": summary["model_wait_s"],
        "fallbacks": summary["fallbacks"], "fallbacks_by_kind": summary["fallbacks_by_kind"],
        "ceiling_decisions_per_s": ceiling["decisions_per_s"],
        "share_of_ceiling": round(rate / ceiling["decisions_per_s"], 2) if ceiling["decisions_per_s"] else None,
        "ceiling_fallbacks": ceiling["fallbacks"],
    }


def measure_separation(minutes: float, console: Console, seed: int = 1) -> dict[str, Any]:
    """Samples per persona over ``minutes`` of drivers at the intersection and pedestrians at the
    crosswalk, compared pairwise with a two-sided Mann-Whitney U test."""
    from scipy.stats import mannwhitneyu

    samples: dict[str, dict[str, list[float]]] = {}
    stats = {"decisions": 0, "fallbacks": 0}
    for scenario, humans, extra in (("intersection", SEPARATION_DRIVERS, {}),
                                    ("crosswalk", SEPARATION_PEDESTRIANS, {"demand.pedestrians_per_hour": 900})):
        run_stats = _separation_run(scenario, humans, extra, minutes, console, seed, samples)
        for key in stats:
            stats[key] += run_stats[key]
    result: dict[str, Any] = {"simulated_min_per_scenario": minutes, **stats, "pairs": {}}
    for a, b, measure in PAIRS:
        xa, xb = samples.get(a, {}).get(measure, []), samples.get(b, {}).get(measure, [])
        entry = {"n": [len(xa), len(xb)], "median": [_median(xa), _median(xb)]}
        if len(xa) >= 3 and len(xb) >= 3:
            entry["mann_whitney_p"] = float(mannwhitneyu(xa, xb, alternative="two-sided").pvalue)
        result["pairs"][f"{a} vs {b}: {measure}"] = entry
    return result


def _separation_run(scenario: str, humans: dict, extra: dict, minutes: float, console: Console, seed: int,
                    samples: dict) -> dict[str, int]:
    from agents.llm.backend import build_model_client, cached_client
    from agents.humans.population import Population
    from envs.actors import CROSS, WAIT
    from envs.world import World
    from twin.episode import Episode
    from twin.scenario import load_scenario

    config = load_scenario(scenario, {"ego.controlled": 0, "seed": seed, "humans": humans, **extra})
    world = World(config)
    with tempfile.TemporaryDirectory() as tmp:
        client = cached_client(build_model_client(config.humans.model, seed=seed), Path(tmp) / "cache.jsonl")
        population = Population(world, config.humans, client=client, seed=seed)
        episode = Episode(world, population)
        last_phase: dict[int, int] = {}
        steps = int(minutes * 60 * config.sim_hz)
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(f"persona separation: {scenario}", total=steps)
            for k in range(steps):
                episode.step()
                _sample(world, population, samples, last_phase, WAIT, CROSS, every_second=k % config.sim_hz == 0)
                progress.update(task, completed=k + 1)
        population.close()
    return {"decisions": population.stats["decisions"], "fallbacks": population.stats["fallbacks"]}


def _sample(world, population, samples, last_phase, wait: int, cross: int, every_second: bool) -> None:
    """Driver speed and time headway once a second while moving; a pedestrian's accepted gap
    and walking speed at the step off the curb."""
    veh, ped = world.vehicles, world.pedestrians
    for h in population.humans:
        if h.actor_id is None:
            continue
        bucket = samples.setdefault(h.persona.id, {})
        if h.role == "driver":
            if not every_second:
                continue
            hits = np.flatnonzero(veh.id == h.actor_id)
            if not len(hits):
                continue
            r = int(hits[0])
            if veh.v[r] > 3.0:
                bucket.setdefault("speed_mps", []).append(float(veh.v[r]))
                seen = world.perception_now()
                if seen.leader[r] >= 0 and seen.leader_gap[r] < 60.0:
                    bucket.setdefault("headway_s", []).append(float(seen.leader_gap[r] / veh.v[r]))
        else:
            hits = np.flatnonzero(ped.id == h.actor_id)
            if not len(hits):
                continue
            r = int(hits[0])
            phase = int(ped.phase[r])
            if phase == cross and last_phase.get(h.actor_id) == wait:
                gap = float(world.crossing_gap[ped.crossing[r]])
                bucket.setdefault("accepted_gap_s", []).append(min(gap, 60.0))
                bucket.setdefault("walking_speed_mps", []).append(float(ped.speed[r]))
            last_phase[h.actor_id] = phase


def _median(values: list[float]) -> float | None:
    return round(float(np.median(values)), 2) if values else None


def run_humans_benchmark(minutes: float = 3.0, separation_minutes: float = 10.0, json_path: Path | None = None,
                         out: Path | None = None, throughput_minutes: float = 0.0,
                         backends: tuple[str, ...] = THROUGHPUT_BACKENDS) -> dict[str, Any]:
    console = Console()
    out = out or Path(tempfile.mkdtemp(prefix="bench-humans-"))
    start = time.perf_counter()
    figures: dict[str, Any] = {}
    if throughput_minutes > 0:
        figures["throughput"] = [measure_throughput(b, throughput_minutes, out, console) for b in backends]
        table = Table(title=f"LLM humans' throughput: the intersection, {throughput_minutes:g} simulated minutes")
        table.add_column("measure")
        for row in figures["throughput"]:
            table.add_column(row["backend"], justify="right")
        for key in figures["throughput"][0]:
            if key != "backend":
                table.add_row(key, *[str(row[key]) for row in figures["throughput"]])
        console.print(table)
    if minutes > 0:
        figures["cost"] = measure_cost(minutes, out, console)
        table = Table(title="LLM humans, embedded SmolLM2-135M, intersection, 10 LLM humans")
        table.add_column("measure")
        table.add_column("value", justify="right")
        for key, value in figures["cost"].items():
            table.add_row(key, str(value))
        console.print(table)
    if separation_minutes > 0:
        figures["separation"] = measure_separation(separation_minutes, console)
        sep = Table(title=f"persona separation over {separation_minutes:g} simulated minutes (Mann-Whitney U)")
        for col in ("pair: measure", "n", "median", "p"):
            sep.add_column(col)
        for name, entry in figures["separation"]["pairs"].items():
            p = entry.get("mann_whitney_p")
            sep.add_row(name, str(entry["n"]), str(entry["median"]), f"{p:.2g}" if p is not None else "-")
        console.print(sep)
    figures["wall_s"] = round(time.perf_counter() - start, 1)
    if json_path:
        Path(json_path).write_text(json.dumps(figures, indent=2))
    return figures

"""What a run's model did, for its summary: the humans' decisions, and how the model's
requests went (the humans' decisions and the supervisor's triage together), with the
verdict ``model_failed`` when more of them failed than ``humans.model.max_failure_share``."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from twin.scenario import ScenarioConfig

UNASKED_TRIAGE = ("llm_off", "no_events")  # template triages that never asked the model


def _percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values else None


def _kinds(stats: Counter, prefix: str = "fallback_") -> dict[str, int]:
    return {k.removeprefix(prefix): v for k, v in sorted(stats.items()) if k.startswith(prefix)}


def human_summary(population: Any, simulated_s: float) -> dict[str, Any]:
    """The humans' part of a run summary. Latencies [s] cover every request sent to the
    model, failed and timed-out ones included; ``model_wait_s`` is the wall time the physics
    waited for decisions."""
    stats = population.stats
    llm_humans = sum(h.llm for h in population.humans)
    return {
        "humans": len(population.humans),
        "llm_humans": llm_humans,
        "llm_decisions": stats["decisions"],
        "llm_calls": stats["llm_calls"],
        "failed_calls": stats["failed_calls"],
        "cache_hits": stats["cache_hits"],
        "reused_decisions": stats["reuse_decisions"],
        "surrogate_decisions": stats["surrogate_decisions"],
        "fallbacks": stats["fallbacks"],
        "fallbacks_by_kind": _kinds(stats),
        "interviews": stats["interviews"],
        "interview_fallbacks_by_kind": _kinds(stats, "interview_fallback_"),
        "calls_per_agent_minute": round(stats["decisions"] / max(llm_humans * simulated_s / 60.0, 1e-9), 2),
        "decision_latency_p50_s": _percentile(population.latencies, 50),
        "decision_latency_p95_s": _percentile(population.latencies, 95),
        "decision_latency_max_s": round(max(population.latencies), 3) if population.latencies else None,
        "model_wait_s": round(population.model_wait_s, 2),
        "episode": population.episode,
        "advisories": stats["advisories"],
        "reflections": stats["reflections"],
    }


def model_summary(config: ScenarioConfig, population: Any = None, triage_agent: Any = None) -> dict[str, Any]:
    """How the model's requests went: asked, failed (any fallback), their share, and whether
    the run counts as failed by its model. Empty when nothing asked a model."""
    asked = failed = 0
    if population is not None and population.client is not None:
        asked += population.stats["decisions"] + population.stats["interviews"]
        failed += population.stats["fallbacks"] + sum(_kinds(population.stats, "interview_fallback_").values())
    out: dict[str, Any] = {}
    if triage_agent is not None:
        stats = triage_agent.stats
        unasked = sum(stats[f"fallback_{k}"] for k in UNASKED_TRIAGE)
        triage_failed = stats["fallbacks"] - unasked
        asked += stats["calls"] - unasked
        failed += triage_failed
        out.update({"triage_calls": stats["calls"] - unasked, "triage_fallbacks": triage_failed,
                    "triage_fallbacks_by_kind": {k: v for k, v in _kinds(stats).items() if k not in UNASKED_TRIAGE},
                    "triage_latency_p95_s": _percentile(triage_agent.latencies, 95),
                    "triage_sentences": stats["sentences"], "triage_dropped_sentences": stats["dropped_sentences"]})
    if not asked:
        return out
    model = config.humans.model
    share = failed / asked
    return {**out, "model_backend": model.backend, "structured_output": model.request_mode,
            "model_requests": asked, "model_failures": failed, "model_failure_share": round(share, 3),
            "model_failed": share > model.max_failure_share}

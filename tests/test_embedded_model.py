"""The embedded model for real (SmolLM2-135M via llama.cpp, offline): a short scenario
completes and its trace holds real model answers that became intents."""

import json

import pytest

from twin.run import simulate


@pytest.mark.slow
def test_short_scenario_with_the_embedded_model(tmp_path):
    humans = {
        "drivers": [{"persona": "aggressive_young", "count": 1}, {"persona": "cautious_elderly", "count": 1}],
        "decision_period_s": {"driver": 10},
        "model": {"backend": "embedded", "timeout_s": 120, "max_tokens": 80},
    }
    summary = simulate("crosswalk", minutes=0.5, overrides={"humans": humans}, out=tmp_path)
    assert summary["llm_calls"] >= 2
    decisions = [json.loads(line) for line in (tmp_path / "decisions.jsonl").read_text().splitlines()]
    answered = [d for d in decisions if d["fallback"] is None]
    assert answered, [d["detail"] for d in decisions]
    for d in answered:  # the model's own text, parsed into the executed intent
        assert json.loads(d["answer"])["lane"] == d["intent"]["lane"]
    cache = (tmp_path / "llm_cache.jsonl").read_text().splitlines()
    assert len(cache) == summary["llm_calls"]

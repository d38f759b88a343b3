"""Distilling recorded LLM decisions into surrogate humans."""

import json

import pytest

from agents.humans.population import Population
from agents.humans.surrogate import TRIGGERS, Surrogate, distill
from twin.scenario import load_scenario
from envs.world import World
from agents.llm.scripted import DRIVER, ScriptedClient, by_role


def red_means_slower(system: str, prompt: str) -> str:
    """A model whose speed choice depends on the situation: slower before a red signal."""
    if "You are a driver" in system:
        answer = json.loads(DRIVER)
        answer["speed"] = "slower" if "Signal ahead: red" in prompt else "faster"
        return json.dumps(answer)
    return by_role(system, prompt)


def _record(tmp_path, seconds: float = 150.0):
    slots = [{"persona": p, "count": 3} for p in ("commuter_late", "cautious_elderly")]
    config = load_scenario("intersection", {"ego.controlled": 0, "humans": {
        "drivers": slots, "decision_period_s": {"driver": 5.0}, "memory": {"enabled": False}}})
    world = World(config)
    pop = Population(world, config.humans, client=ScriptedClient(red_means_slower), seed=0)
    records = []
    for _ in range(int(seconds * config.sim_hz)):
        world.step()
        records += pop.after_step()
    path = tmp_path / "decisions.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return records, path


def test_decisions_carry_features_and_a_surrogate_learns_the_models_choices(tmp_path):
    records, path = _record(tmp_path)
    drivers = [r for r in records if r["role"] == "driver"]
    assert len(drivers) > 40
    assert all(len(r["features"]) == 14 + len(TRIGGERS) for r in drivers)
    assert {r["intent"]["speed"] for r in drivers} == {"slower", "faster"}  # both situations occurred
    report = distill([path], tmp_path / "s.pkl", holdout=0.3)
    agree = report["agreement"]["driver"]
    assert agree["speed"] >= 0.95 and agree["all_fields"] >= 0.95
    assert agree["speed"] > report["majority_baseline"]["driver"]["speed"]
    surrogate = Surrogate.load(tmp_path / "s.pkl")
    red = next(r for r in drivers if r["intent"]["speed"] == "slower")
    assert surrogate.predict("driver", red["persona"], red["features"])["speed"] == "slower"
    # a file saved before the agents were grouped by who acts names the class agents.surrogate.Surrogate
    old = tmp_path / "old.pkl"
    old.write_bytes(_pickled_under_the_old_module_name(surrogate))
    assert b"agents.surrogate" in old.read_bytes() and b"agents.humans.surrogate" not in old.read_bytes()
    assert Surrogate.load(old).predict("driver", red["persona"], red["features"])["speed"] == "slower"


def _pickled_under_the_old_module_name(surrogate) -> bytes:
    import pickle
    import sys
    import types

    from agents.humans import surrogate as module

    classes = [c for c in vars(module).values() if isinstance(c, type) and c.__module__ == module.__name__]
    legacy = types.ModuleType("agents.surrogate")
    for c in classes:
        setattr(legacy, c.__name__, c)
        c.__module__ = "agents.surrogate"
    sys.modules["agents.surrogate"] = legacy
    try:
        return pickle.dumps(surrogate)
    finally:
        del sys.modules["agents.surrogate"]
        for c in classes:
            c.__module__ = module.__name__


def test_a_surrogate_file_that_would_run_code_is_refused(tmp_path):
    import os
    import pickle

    class Hostile:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(Hostile()))
    with pytest.raises(ValueError, match="not allowed"):
        Surrogate.load(tmp_path / "evil.pkl")
    assert not (tmp_path / "pwned").exists()


def test_distill_needs_enough_recorded_decisions(tmp_path):
    (tmp_path / "decisions.jsonl").write_text("")
    with pytest.raises(ValueError, match="usable LLM decisions"):
        distill([tmp_path], tmp_path / "s.pkl")


def test_a_population_on_the_surrogate_asks_the_model_only_for_its_live_share(tmp_path):
    _, path = _record(tmp_path, seconds=90.0)
    distill([path], tmp_path / "s.pkl")
    slots = [{"persona": p, "count": 3} for p in ("commuter_late", "cautious_elderly")]
    for live, client in ((0.0, None), (0.3, ScriptedClient(red_means_slower))):
        config = load_scenario("intersection", {"ego.controlled": 0, "seed": 5, "humans": {
            "drivers": slots, "decision_period_s": {"driver": 5.0}, "memory": {"enabled": False},
            "surrogate": {"path": str(tmp_path / "s.pkl"), "live_fraction": live}}})
        world = World(config)
        pop = Population(world, config.humans, client=client, seed=5)
        records = []
        for _ in range(60 * config.sim_hz):
            world.step()
            records += pop.after_step()
        by_surrogate = [r for r in records if r["source"] == "surrogate"]
        assert by_surrogate and all(r["intent"]["reason"] == "surrogate" for r in by_surrogate)
        if live == 0.0:
            assert len(by_surrogate) == len(records) and pop.stats["llm_calls"] == 0
        else:
            share = 1 - len(by_surrogate) / len(records)
            assert 0.1 < share < 0.6 and len(client.requests) == len(records) - len(by_surrogate)
        # the surrogate executes what the model would: slower before red, faster otherwise
        assert all((r["intent"]["speed"] == "slower") == bool(r["features"][10]) for r in by_surrogate)


def test_a_missing_surrogate_file_names_the_field(tmp_path):
    config = load_scenario("intersection", {"ego.controlled": 0, "humans": {
        "drivers": [{"persona": "commuter_late", "count": 1}], "surrogate": {"path": str(tmp_path / "none.pkl")}}})
    with pytest.raises(FileNotFoundError, match="humans.surrogate.path"):
        Population(World(config), config.humans, client=ScriptedClient(), seed=0)


def _episode(config, client, situations, seed: int, seconds: float = 60.0):
    world = World(config.model_copy(update={"seed": seed}))
    pop = Population(world, config.humans, client=client, seed=seed, situations=situations)
    records = []
    for _ in range(int(seconds * config.sim_hz)):
        world.step()
        records += pop.after_step()
    return records


def test_recorded_decisions_are_reused_across_episodes_where_the_situation_is_the_same(tmp_path):
    from agents.humans.situation_cache import SituationCache

    slots = [{"persona": p, "count": 3} for p in ("commuter_late", "cautious_elderly")]
    config = load_scenario("intersection", {"ego.controlled": 0, "humans": {
        "drivers": slots, "operators": [{"persona": "tmc_operator"}], "memory": {"enabled": False},
        "decision_period_s": {"driver": 5.0, "operator": 10.0},
        "reuse": {"enabled": True, "path": str(tmp_path / "situations.jsonl")}}})
    client = ScriptedClient(red_means_slower)
    cache = SituationCache(tmp_path / "situations.jsonl")
    first = _episode(config, client, cache, seed=1)
    asked_first = len(client.requests)
    assert asked_first > 0 and len(cache) > 0
    # the same episode again: every situation was seen, no model call, the same decisions
    again = _episode(config, client, cache, seed=1)
    assert len(client.requests) == asked_first
    assert all(r["source"] == "reuse" for r in again)
    assert any(r["role"] == "operator" for r in again)  # the operator's situations are recorded too
    assert [r["intent"] for r in again] == [r["intent"] for r in first]
    # another episode, from the file in a new process's cache: some situations recur, some are new
    reloaded = SituationCache(tmp_path / "situations.jsonl")
    assert len(reloaded) == len(cache)
    other = _episode(config, client, reloaded, seed=2)
    sources = {r["source"] for r in other}
    assert sources == {"reuse", "llm"}
    # a reused decision is the model's choice for that situation: slower before red
    for r in other:
        red = r["features"][10] == 1.0  # the signal-ahead-is-red feature
        if r["source"] == "reuse" and r["role"] == "driver":
            assert r["intent"]["speed"] == ("slower" if red else "faster")


def test_fallbacks_are_never_reused():
    from agents.humans.situation_cache import SituationCache

    slots = [{"persona": "commuter_late", "count": 2}]
    config = load_scenario("intersection", {"ego.controlled": 0, "humans": {
        "drivers": slots, "decision_period_s": {"driver": 5.0}, "memory": {"enabled": False}}})
    cache = SituationCache()
    records = _episode(config, ScriptedClient(lambda s, p: "not json"), cache, seed=1, seconds=30.0)
    assert records and all(r["fallback"] for r in records)
    assert len(cache) == 0

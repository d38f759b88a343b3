"""Forks from saved state: a world (and its supervisor) restored from ``get_state`` at tick k steps
on bit for bit as the main run does from k, for every scenario family and an imported network."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from agents.supervisor.supervisor import Supervisor, SupervisorConfig
from envs.roads.sumo import shipped_scenarios
from envs.world import World
from twin.scenario import load_scenario

SAVE_AT = 450  # physics steps (30 s at 15 Hz)
AFTER = 300  # steps compared after the fork


def _digest(world: World) -> str:
    """Every actor column, the clock, the signals and the events so far."""
    h = hashlib.sha256()
    for actors in (world.vehicles, world.pedestrians):
        for name in actors.FIELDS:
            h.update(np.ascontiguousarray(getattr(actors, name)).tobytes())
    h.update(np.float64(world.time).tobytes())
    h.update(world.group_state.tobytes())
    h.update(repr([(e.kind, e.time, e.actors) for e in world.events]).encode())
    return h.hexdigest()


def _cases() -> dict[str, tuple[str, dict]]:
    cases = {"highway": ("highway", {}),
             "intersection": ("intersection", {"demand.pedestrians_per_hour": 600, "drivers.signal_compliance": 0.8}),
             "crosswalk": ("crosswalk", {"demand.pedestrians_per_hour": 900, "demand.jaywalk_fraction": 0.3})}
    game = shipped_scenarios()
    if game is not None:
        cases["sumo_cross"] = (str(game / "cross.sumocfg"), {})
    return cases


@pytest.mark.parametrize("name", list(_cases()))
def test_a_fork_from_saved_state_equals_the_main_run_bit_for_bit(name):
    scenario, overrides = _cases()[name]
    config = load_scenario(scenario, {"ego.controlled": 0, **overrides})
    main = World(config)
    main.advance(SAVE_AT)
    saved = main.get_state()
    expected = []
    for _ in range(AFTER):
        main.step()
        expected.append(_digest(main))
    fork = World(config)  # another world of the same config, itself at tick 0
    fork.set_state(saved)
    assert [(fork.step(), _digest(fork))[1] for _ in range(AFTER)] == expected
    main.set_state(saved)  # the saved state is not used up: the main world goes back and runs again
    assert [(main.step(), _digest(main))[1] for _ in range(AFTER)] == expected


def test_a_forked_supervisor_raises_what_the_main_one_raises():
    config = load_scenario("intersection", {"ego.controlled": 0, "drivers.signal_compliance": 0.6,
                                            "faults": [{"kind": "sensor_dropout", "at_s": 20, "duration_s": 20}]})
    world, supervisor = World(config), Supervisor(SupervisorConfig())
    for _ in range(SAVE_AT):
        world.step()
        supervisor.after_step(world)
    saved_world, saved_supervisor = world.get_state(), supervisor.get_state()

    def run_on(w: World, s: Supervisor) -> tuple[list, list]:
        for _ in range(AFTER * 2):
            w.step()
            s.after_step(w)
        events = [repr((e.kind, e.actors, e.start_s, e.end_s, e.worst, e.severity)) for e in s.events]  # (nan: by repr)
        return events, [(a["time_s"], [e["kind"] for e in a["events"]]) for a in s.alerts]

    expected = run_on(world, supervisor)
    assert expected[0] and expected[1]  # something to compare: events and alerts after the fork
    fork_world, fork_supervisor = World(config), Supervisor(SupervisorConfig())
    fork_world.set_state(saved_world)
    fork_supervisor.set_state(saved_supervisor)
    assert run_on(fork_world, fork_supervisor) == expected


def test_an_altered_fork_leaves_the_main_run_alone():
    config = load_scenario("highway", {"ego.controlled": 0})
    main = World(config)
    main.advance(SAVE_AT)
    saved = main.get_state()
    fork = World(config)
    fork.set_state(saved)
    fork.set_friction(0.2)
    fork.vehicles.v[:] = 0.0
    fork.advance(60)
    main.advance(60)
    assert main.friction == 1.0 and main.vehicles.v.max() > 10.0
    again = World(config)
    again.set_state(saved)
    assert again.friction == 1.0 and np.array_equal(again.vehicles.v, saved.vehicles.v)


def test_a_saved_world_is_refused_by_a_world_of_another_config():
    highway = World(load_scenario("highway", {"ego.controlled": 0}))
    crossing = World(load_scenario("intersection", {"ego.controlled": 0}))
    with pytest.raises(ValueError, match="another config"):
        crossing.set_state(highway.get_state())


def _llm_episode(config, script):
    """A world with LLM humans (scripted model, hashed-embedding memory) and its supervisor."""
    from agents.humans.population import Population
    from agents.llm.scripted import ScriptedClient
    from memory.embedding import HashEmbedding
    from memory.stream import MemoryStore
    from twin import assemble
    from twin.episode import Episode

    world = World(config)
    population = Population(world, config.humans, client=ScriptedClient(script),
                            memory=MemoryStore(None, embedding=HashEmbedding()), seed=config.seed)
    return Episode(world, population, assemble.supervisor(config, population))


def _varied(system: str, prompt: str) -> str:
    """Answers that depend on the whole prompt (scene, recalled memories, recent decisions): a fork
    whose humans remembered or intended anything else would be told something else."""
    import json

    from agents.llm.scripted import by_role

    answer = json.loads(by_role(system, prompt))
    pick = int(hashlib.sha256(prompt.encode()).hexdigest(), 16) % 3
    if "speed" in answer:
        answer["speed"] = ("slower", "as_usual", "faster")[pick]
    if "pace" in answer:
        answer["pace"] = ("slower", "as_usual", "faster")[pick]
    return json.dumps(answer)


def _decisions(records):
    return [(r["time_s"], r["human"], r["prompt"], r["intent"], r["memories"]) for r in records]


def test_a_fork_with_llm_humans_their_memories_and_pending_decisions_equals_the_main_run():
    humans = {"drivers": [{"persona": "commuter_late", "count": 3}, {"persona": "phone_distracted", "count": 2}],
              "pedestrians": [{"persona": "jogger", "count": 2}], "operators": [{"persona": "tmc_operator", "count": 1}],
              "memory": {"embedding": "hash", "reflect_importance": 12}, "decision_period_s": {"driver": 4.0}}
    config = load_scenario("intersection", {"ego.controlled": 0, "humans": humans,
                                            "demand.pedestrians_per_hour": 600})
    main = _llm_episode(config, _varied)
    for _ in range(SAVE_AT):
        main.step()
    assert main.population._pending, "the save must fall while decisions are pending"
    assert main.population.memory.count() > 0
    saved = main.get_state()
    expected, decided = [], []
    for _ in range(AFTER):
        decided += main.step()[1]
        expected.append(_digest(main.world))
    assert decided, "the humans decide after the fork"
    remembered = main.population.memory.get_state()

    fork = _llm_episode(config, _varied)
    fork.set_state(saved)
    forked, fork_decided = [], []
    for _ in range(AFTER):
        fork_decided += fork.step()[1]
        forked.append(_digest(fork.world))
    assert forked == expected
    assert _decisions(fork_decided) == _decisions(decided)
    again = fork.population.memory.get_state()
    assert {a: s["texts"] for a, s in again.items()} == {a: s["texts"] for a, s in remembered.items()}
    assert [e.to_dict() for e in fork.supervisor.events] == [e.to_dict() for e in main.supervisor.events]
    for episode in (main, fork):
        episode.close()


def test_a_saved_population_refuses_other_humans():
    config = load_scenario("intersection", {"ego.controlled": 0, "humans": {
        "drivers": [{"persona": "commuter_late", "count": 2}], "memory": {"embedding": "hash"}}})
    other = load_scenario("intersection", {"ego.controlled": 0, "humans": {
        "drivers": [{"persona": "cautious_elderly", "count": 2}], "memory": {"embedding": "hash"}}})
    saved = _llm_episode(config, _varied).get_state()
    with pytest.raises(ValueError, match="other humans"):
        _llm_episode(other, _varied).population.set_state(saved["population"])
    with pytest.raises(ValueError, match="has no population and this one has one"):
        _llm_episode(config, _varied).set_state({**saved, "population": None})


def test_a_run_that_checkpoints_keeps_the_newest_densely_and_thins_the_older(tmp_path):
    from twin.run import CHECKPOINTS_KEPT, ScenarioRun

    config = load_scenario("highway", {"ego.controlled": 0, "humans": {}})
    run = ScenarioRun(config, tmp_path / "run", checkpoint_ticks=1)
    while run.trace.ticks < 3 * CHECKPOINTS_KEPT:
        run.step()
    ticks = sorted(run.checkpoints)
    assert ticks[0] == 0 and len(ticks) <= 2 * CHECKPOINTS_KEPT + 1
    assert ticks[-CHECKPOINTS_KEPT:] == list(range(run.trace.ticks - CHECKPOINTS_KEPT + 1, run.trace.ticks + 1))
    run.close()


def test_an_imported_network_has_no_all_red_to_lengthen():
    from causes.counterfactual import _all_red_intervals

    game = shipped_scenarios()
    if game is None:
        pytest.skip("SUMO's networks are not installed")
    assert _all_red_intervals(World(load_scenario(str(game / "cross.sumocfg"), {"ego.controlled": 0}))) == []
    assert _all_red_intervals(World(load_scenario("intersection", {"ego.controlled": 0})))

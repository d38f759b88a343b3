"""``run.py sweep``: a grid of fields and seeds in local processes, the same whatever the workers."""

from __future__ import annotations

import pytest

from envs.scenario import ScenarioError
from twin.sweep import parse_grid, sweep


def test_a_sweep_gives_the_same_runs_in_one_process_or_two():
    grid = parse_grid(["drivers.signal_compliance=0.6,1.0"])
    one = sweep("intersection", grid, [0, 1], minutes=0.5, workers=1)
    two = sweep("intersection", grid, [0, 1], minutes=0.5, workers=2)
    assert one["results"] == two["results"] and one["runs"] == 4
    assert set(one["points"]) == {"drivers.signal_compliance=0.6", "drivers.signal_compliance=1.0"}
    assert one["points"]["drivers.signal_compliance=1.0"]["red_light"] == 0
    assert one["points"]["drivers.signal_compliance=0.6"]["red_light"] > 0


def test_a_grid_typo_names_the_field_before_anything_runs():
    with pytest.raises(ScenarioError, match="did you mean 'signal_compliance'"):
        sweep("intersection", parse_grid(["drivers.signal_complianse=0.6"]), [0], minutes=0.5)
    with pytest.raises(ValueError, match="KEY=V1,V2"):
        parse_grid(["drivers.signal_compliance"])


def test_a_sweep_over_personas_puts_rule_based_drivers_of_each_at_the_wheel():
    from agents.humans.persona import PersonaError

    grid = parse_grid(["persona=cautious_elderly,aggressive_young"])
    result = sweep("intersection", grid, [0, 1], minutes=1.0, workers=1, persona_count=6)
    assert set(result["points"]) == {"persona=cautious_elderly", "persona=aggressive_young"}
    by_persona = {p: [r for r in result["results"] if r["overrides"]["persona"] == p]
                  for p in ("cautious_elderly", "aggressive_young")}
    def flagged(runs):
        return sum(sum(r["events"].values()) for r in runs)

    # who drives changes what happens: the young risk-takers are flagged, the careful elderly drivers not
    assert flagged(by_persona["aggressive_young"]) > flagged(by_persona["cautious_elderly"]) == 0
    assert sweep("intersection", grid, [0, 1], minutes=1.0, workers=2, persona_count=6)["results"] == result["results"]
    with pytest.raises(PersonaError, match="tmc_operator"):
        sweep("intersection", parse_grid(["persona=tmc_operator"]), [0], minutes=0.5)
    with pytest.raises(PersonaError):
        sweep("intersection", parse_grid(["persona=nobody_at_all"]), [0], minutes=0.5)

"""With rule-based humans only, 30 simulated minutes of each scenario at default demand
have zero collisions among them."""

import pytest

from twin.scenario import load_scenario
from envs.world import World


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["highway", "intersection", "crosswalk"])
def test_thirty_minutes_without_collisions(scenario):
    world = World(load_scenario(scenario, {"ego.controlled": 0}))
    world.advance(30 * 60 * world.config.sim_hz)
    bad = [e for e in world.events if e.kind in ("collision", "off_road")]
    assert bad == [], bad[:5]
    assert world.stats["vehicles_exited"] > 100  # traffic really flowed
    if world.config.demand.pedestrians_per_hour:
        assert world.stats["pedestrians_crossed"] > 20

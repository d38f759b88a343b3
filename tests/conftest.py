import pytest

from twin.scenario import load_scenario
from envs.world import World


def bare_world(scenario: str, **overrides) -> World:
    """A world of ``scenario`` with no demand, no background and no controlled vehicles."""
    base = {"ego.controlled": 0, "demand.vehicles": 0, "demand.vehicles_per_hour": 0,
            "demand.ramp_vehicles_per_hour": 0, "demand.pedestrians_per_hour": 0}
    base.update(overrides)
    return World(load_scenario(scenario, base))


@pytest.fixture
def lane_named():
    def find(world: World, name: str) -> int:
        return next(i for i, ln in enumerate(world.network.lanes) if ln.name == name)

    return find

"""SUMO itself on SUMO's shipped scenarios: the reference the twin is measured against.

``python run.py bench sumo`` runs SUMO through ``libsumo`` (SUMO as a library, in this
process) on each shipped configuration (``ramp``, ``cross``, ``A10KW``, ``grid6``, ``bs3d``
under ``sumo/tools/game/``) for ``--minutes`` simulated minutes with teleporting off, as the
twin runs (a stuck vehicle stays stuck), and the twin on the same files beside it,
interleaved: SUMO advances ``CHUNK_S`` simulated seconds, then the twin the same, and so on,
each side's stepping timed on its own, so a busy moment of the machine falls on both. Both
drive the car-following model each ``vType`` names (SUMO's default Krauss on the shipped
files). It reports what each produced: vehicles inserted, arrived and still running,
collisions, mean travel time and its distribution per route (a flow's vehicles together),
and vehicle-steps per second (the vehicles present summed over the steps, over the wall
time spent stepping); ``ratio`` is the twin's over SUMO's. The twin runs rule-based drivers
only (no humans, no supervisor). The two step at their own rates (SUMO at the
configuration's step length, the twin at its ``sim_hz``), so the table also gives simulated
seconds per wall second.
"""

from __future__ import annotations

import json
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from envs.roads import sumo

CONFIGS = ("ramp", "cross", "A10KW", "grid6", "bs3d")
SCALING_COUNTS = (50, 200, 800)  # vehicles at which the twin's cost per step is measured on bs3d
CHUNK_S = 10.0  # simulated seconds each side advances before the other takes its turn


class SumoRun:
    """SUMO on ``config`` through libsumo, from its begin time for ``minutes``, teleporting
    off; :meth:`advance` steps it, :meth:`finish` closes it and reads its outputs."""

    def __init__(self, config: Path, minutes: float, out: Path) -> None:
        try:
            import libsumo
        except ImportError as error:
            raise sumo.SumoInputError("bench sumo needs libsumo: pip install -e '.[sumo]'") from error
        self._libsumo = libsumo
        cfg = sumo.read_config(config)
        self.config, self.begin_s, self.step_length_s = config, cfg.begin_s, cfg.step_length_s
        self.end_s = cfg.begin_s + 60.0 * minutes
        self._stats, self._trips = out / f"{config.stem}.stats.xml", out / f"{config.stem}.trips.xml"
        args = ["sumo", "-c", str(sumo.runnable_config(config, out)), "--end", f"{self.end_s:g}",
                "--time-to-teleport", "-1", "--no-step-log", "true", "--no-warnings", "true", "--verbose", "false",
                "--duration-log.disable", "true",
                "--statistic-output", str(self._stats), "--tripinfo-output", str(self._trips)]
        try:
            libsumo.start(args)
        except libsumo.TraCIException as error:
            raise sumo.SumoInputError(f"{config}: SUMO (libsumo) could not start it: {error}") from error
        self.vehicle_steps, self.wall_s = 0, 0.0

    @property
    def time_s(self) -> float:
        """SUMO's simulated time [s]."""
        return float(self._libsumo.simulation.getTime())

    def advance(self, until_s: float) -> None:
        """Step until simulated time ``until_s`` [s] (or the end), timing only the stepping."""
        libsumo, until_s = self._libsumo, min(until_s, self.end_s)
        steps, vehicles = 0, 0
        start = time.perf_counter()
        while libsumo.simulation.getTime() < until_s - 1e-9:
            vehicles += libsumo.vehicle.getIDCount()  # the vehicles this step moves
            libsumo.simulationStep()
            steps += 1
        self.wall_s += time.perf_counter() - start
        self.vehicle_steps += vehicles

    def finish(self) -> dict[str, Any]:
        """Close SUMO (it writes its statistics and trip infos then) and read what it produced."""
        simulated = self.time_s - self.begin_s
        self._libsumo.close()
        root = ET.parse(self._stats).getroot()
        vehicles, trip, safety = (root.find(tag) for tag in ("vehicles", "vehicleTripStatistics", "safety"))
        by_route: dict[str, list[float]] = {}  # a flow's vehicles ("flow.k") together; single vehicles as one group
        for t in ET.parse(self._trips).getroot().iter("tripinfo"):
            ident = t.get("id", "")
            by_route.setdefault(ident.rsplit(".", 1)[0] if "." in ident else "(vehicles)", []).append(
                float(t.get("duration", 0)))
        return {
            "config": self.config.name, "simulated_s": round(simulated, 1), "step_length_s": self.step_length_s,
            "inserted": int(vehicles.get("inserted", 0)), "arrived": int(trip.get("count", 0)),
            "running": int(vehicles.get("running", 0)), "waiting_to_enter": int(vehicles.get("waiting", 0)),
            "collisions": int(safety.get("collisions", 0)) if safety is not None else None,
            **_travel_figures(by_route),
            "vehicle_steps_per_s": round(self.vehicle_steps / max(self.wall_s, 1e-9)),
            "wall_s": round(self.wall_s, 2),
        }


class TwinRun:
    """The twin on ``config`` for ``minutes``, rule-based drivers only; the same figures as
    :class:`SumoRun`."""

    def __init__(self, config: Path, minutes: float) -> None:
        from envs.world import World
        from twin.scenario import load_scenario

        self.config = config
        self.world = World(load_scenario(str(config), {"ego.controlled": 0}))
        self.begin_s = self.world.time
        self._steps_left = int(round(60.0 * minutes * self.world.config.sim_hz))
        self.vehicle_steps, self.wall_s = 0, 0.0

    @property
    def time_s(self) -> float:
        """The twin's simulated time [s]."""
        return float(self.world.time)

    def advance(self, until_s: float) -> None:
        """Step until simulated time ``until_s`` [s] (or the end), timing only the stepping."""
        world, vehicles = self.world, 0
        start = time.perf_counter()
        while self._steps_left > 0 and world.time < until_s - 0.5 * world.dt:
            vehicles += len(world.vehicles)
            world.step()
            self._steps_left -= 1
        self.wall_s += time.perf_counter() - start
        self.vehicle_steps += vehicles

    def finish(self) -> dict[str, Any]:
        """What the run produced."""
        world = self.world
        kinds = [e.kind for e in world.events]
        return {
            "config": self.config.name, "simulated_s": round(world.time - self.begin_s, 1),
            "step_length_s": round(world.dt, 4), "inserted": world.stats["vehicles_entered"],
            "arrived": len(world.travel_times), "running": len(world.vehicles),
            "waiting_to_enter": world.schedule.backlog if world.schedule is not None else 0,
            "collisions": kinds.count("collision"), "stuck": kinds.count("stuck"),
            **_travel_figures(_by_trip(world.travel_trips, world.travel_times)),
            "vehicle_steps_per_s": round(self.vehicle_steps / max(self.wall_s, 1e-9)),
            "wall_s": round(self.wall_s, 2),
        }


def run_sumo(config: Path, minutes: float, out: Path) -> dict[str, Any]:
    """One SUMO run of ``config`` for ``minutes`` from its begin time, teleporting off."""
    run = SumoRun(config, minutes, out)
    run.advance(run.end_s)
    return run.finish()


def run_twin(config: Path, minutes: float) -> dict[str, Any]:
    """The twin on ``config`` for ``minutes``: the same figures as :func:`run_sumo`."""
    run = TwinRun(config, minutes)
    run.advance(np.inf)
    return run.finish()


def run_side_by_side(config: Path, minutes: float, out: Path, chunk_s: float = CHUNK_S) -> tuple[dict, dict]:
    """SUMO and the twin on ``config``, interleaved ``chunk_s`` simulated seconds at a time;
    their figures (SUMO's, the twin's)."""
    twin = TwinRun(config, minutes)  # built first: reading the network is not stepping
    reference = SumoRun(config, minutes, out)
    elapsed = 0.0
    while elapsed < 60.0 * minutes - 1e-9:
        elapsed = min(elapsed + chunk_s, 60.0 * minutes)
        reference.advance(reference.begin_s + elapsed)
        twin.advance(twin.begin_s + elapsed)
    return reference.finish(), twin.finish()


def _travel_figures(by_route: dict[str, list[float]]) -> dict[str, Any]:
    """Mean, median and 90th percentile travel time [s] of the arrived vehicles, and per route."""
    durations = np.array([d for ds in by_route.values() for d in ds])
    if not len(durations):
        return {"travel_time_mean_s": None, "travel_time_p50_s": None, "travel_time_p90_s": None, "routes": {}}
    return {
        "travel_time_mean_s": round(float(durations.mean()), 1),
        "travel_time_p50_s": round(float(np.percentile(durations, 50)), 1),
        "travel_time_p90_s": round(float(np.percentile(durations, 90)), 1),
        "routes": {route: {"arrived": len(ds), "travel_time_mean_s": round(float(np.mean(ds)), 1)}
                   for route, ds in sorted(by_route.items())},
    }


def _by_trip(trips: list[str], durations: list[float]) -> dict[str, list[float]]:
    """The travel times [s] of the arrived vehicles, by trip (vehicle or flow id)."""
    out: dict[str, list[float]] = {}
    for trip, duration in zip(trips, durations):
        out.setdefault(trip, []).append(duration)
    return out


def step_cost_by_vehicles(config: Path, counts: tuple[int, ...] = SCALING_COUNTS, steps: int = 60,
                          seed: int = 0) -> dict[str, Any]:
    """How the twin's cost per physics step grows with the vehicles on ``config``'s network:
    for each count, a world filled with that many vehicles of its trips (departing at random
    places along their first lanes), then ``steps`` steps timed. Per count: the vehicles, the
    mean step time [us] and the cost per vehicle-step [us]."""
    import dataclasses

    from envs.world import World
    from twin.scenario import load_scenario

    rows = []
    for count in counts:
        world = World(load_scenario(str(config), {"ego.controlled": 0, "seed": seed}))
        schedule, rng, net = world.schedule, np.random.default_rng(seed), world.network
        template = schedule.trips[0]
        lanes = [k for k in range(len(net.lanes)) if not net.lane_is_link[k] and net.lane_s_to[k] - net.lane_s_from[k] > 30]
        edges = sorted({int(net.lane_edge[k]) for k in lanes})
        tries = 0
        while len(world.vehicles) < count and tries < 20 * count:  # random trips from anywhere to anywhere
            tries += 1
            lane, goal = lanes[int(rng.integers(len(lanes)))], edges[int(rng.integers(len(edges)))]
            path = world.routes.shortest_path(int(net.lane_edge[lane]), goal)
            if not path:
                continue
            trip = dataclasses.replace(template, lanes=[lane], route=path + [-1], destination=goal,
                                       depart_pos="random", depart_lane="first")
            schedule.insert(world, trip)
        schedule.next_s[:] = np.inf  # no more departures: the count stays (vehicles may arrive)
        world.step()  # compiled and warm
        start = time.perf_counter()
        for _ in range(steps):
            world.step()
        step_us = 1e6 * (time.perf_counter() - start) / steps
        n = len(world.vehicles)
        rows.append({"asked": count, "vehicles": n, "step_us": round(step_us, 1),
                     "us_per_vehicle_step": round(step_us / max(n, 1), 2)})
    return {"config": config.name, "steps": steps, "rows": rows}


def run_sumo_benchmark(minutes: float = 10.0, json_path: Path | None = None, configs: tuple[str, ...] = CONFIGS,
                       twin: bool = True, scaling: bool = True) -> dict[str, Any]:
    """SUMO and the twin side by side on each shipped configuration; a table, and ``json_path`` when given."""
    console = Console()
    game = sumo.shipped_scenarios()
    if game is None:
        raise sumo.SumoInputError("bench sumo needs SUMO's shipped scenarios: pip install -e '.[sumo]'")
    rows, twins = [], []
    with tempfile.TemporaryDirectory(prefix="bench-sumo-") as tmp:
        for name in configs:
            config = game / f"{name}.sumocfg"
            if twin:
                with console.status(f"{name}: SUMO and the twin, {minutes:g} simulated minutes, interleaved"):
                    reference, twin_figures = run_side_by_side(config, minutes, Path(tmp))
                rows.append(reference)
                twins.append(twin_figures)
            else:
                with console.status(f"{name}: SUMO, {minutes:g} simulated minutes"):
                    rows.append(run_sumo(config, minutes, Path(tmp)))
    version = _version()
    table = Table(title=f"SUMO {version} and the twin on SUMO's shipped scenarios, {minutes:g} simulated minutes, "
                        "teleporting off")
    for column in ("network", "run", "inserted", "arrived", "running", "collisions",
                   "travel time mean / p50 / p90 [s]", "vehicle-steps/s", "simulated s per s"):
        table.add_column(column, justify="left" if column in ("network", "run") else "right")
    for k, r in enumerate(rows):
        for who, x in (("SUMO", r), ("twin", twins[k] if twins else None)):
            if x is None:
                continue
            table.add_row(r["config"].removesuffix(".sumocfg") if who == "SUMO" else "", who, str(x["inserted"]),
                          str(x["arrived"]), str(x["running"]), str(x["collisions"]),
                          f"{x['travel_time_mean_s']} / {x['travel_time_p50_s']} / {x['travel_time_p90_s']}",
                          f"{x['vehicle_steps_per_s']:,}", f"{x['simulated_s'] / max(x['wall_s'], 1e-9):,.0f}")
    console.print(table)
    sumo_speed = {r["config"]: r["vehicle_steps_per_s"] for r in rows}
    twin_speed = {t["config"]: t["vehicle_steps_per_s"] for t in twins} if twins else None
    figures = {"minutes": minutes, "sumo_version": version, "runs": rows, "twin_runs": twins,
               "vehicle_steps_per_s": {"twin": twin_speed, "sumo": sumo_speed},
               "ratio": ({name: round(twin_speed[name] / max(sumo_speed[name], 1), 3) for name in sumo_speed}
                         if twin_speed else None),
               "arrived_ratio": ({r["config"]: round(t["arrived"] / max(r["arrived"], 1), 3)
                                  for r, t in zip(rows, twins)} if twins else None)}
    if twin and scaling:
        with console.status("twin: cost per step on bs3d at " + ", ".join(map(str, SCALING_COUNTS)) + " vehicles"):
            figures["step_cost"] = step_cost_by_vehicles(game / "bs3d.sumocfg")
        cost = Table(title="the twin's cost per physics step on bs3d (a part of Braunschweig)")
        for column in ("vehicles", "step [us]", "per vehicle-step [us]"):
            cost.add_column(column, justify="right")
        for row in figures["step_cost"]["rows"]:
            cost.add_row(str(row["vehicles"]), f"{row['step_us']:,.0f}", f"{row['us_per_vehicle_step']:.2f}")
        console.print(cost)
    if json_path:
        Path(json_path).write_text(json.dumps(figures, indent=2))
    return figures


def _version() -> str:
    """libsumo's SUMO version ("1.28.0"), or "?"."""
    try:
        import libsumo

        return str(libsumo.getVersion()[1]).split()[-1]
    except (ImportError, IndexError):
        return "?"

"""The digital shadow's data path (shadow/): trajectories out as SUMO FCD and a highD-style
CSV, read back, placed on the network; bad logs get errors naming the record."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from envs.roads import sumo
from envs.world import World
from shadow.formats import FORMATS, read_log
from shadow.log import LogError
from shadow.matching import match_log
from shadow.recorder import TrajectoryRecorder, vehicle_rows
from twin.scenario import load_scenario

GAME = sumo.shipped_scenarios()
needs_sumo = pytest.mark.skipif(GAME is None, reason="the eclipse-sumo wheel is not installed (pip install -e '.[sumo]')")


def recorded_run(tmp_path: Path, scenario: str, seconds: float, period_s: float | None = None):
    """A world stepped ``seconds`` with a recorder writing FCD and CSV; also the truth: per
    step, each vehicle's front and middle, lane name and station."""
    world = World(load_scenario(scenario, {"ego.controlled": 0, "seed": 3}))
    recorder = TrajectoryRecorder(fcd=tmp_path / "run.fcd.xml", csv=tmp_path / "run.csv", period_s=period_s)
    truth = {}
    for _ in range(int(round(seconds * world.config.sim_hz))):
        world.step()
        recorder.after_step(world)
        for row, r in zip(vehicle_rows(world, leaders=False), range(len(world.vehicles))):
            truth[(round(world.time, 3), row["id"])] = (row, int(world.vehicles.lane[r]), float(world.vehicles.s[r]))
    recorder.close()
    return world, truth


def test_a_run_exported_and_read_back_reproduces_its_trajectories(tmp_path):
    """FCD (front bumpers, navigational angles) and the CSV (middles, radians) read back give
    every vehicle at every physics step within 0.1 m of where the run had it, and the
    map-matching puts each on the lane and station the world had it on."""
    world, truth = recorded_run(tmp_path, "configs/scenarios/intersection.yaml", 20.0)
    for name, point in (("run.fcd.xml", ("front_x", "front_y")), ("run.csv", ("x", "y"))):
        log = read_log(tmp_path / name)
        assert len(log) == len(truth) and len(log.times) == 20 * world.config.sim_hz
        errors, headings = [], []
        for r in range(len(log)):
            row, _, _ = truth[(round(float(log.time_s[r]), 3), log.ids[log.vehicle[r]])]
            errors.append(np.hypot(log.x[r] - row[point[0]], log.y[r] - row[point[1]]))
            headings.append(abs(np.angle(np.exp(1j * (log.heading[r] - row["heading"])))))
        assert max(errors) < 0.1 and max(headings) < 1e-3
        matched = match_log(log, world.network)
        assert matched.matched.all()
        lanes = [truth[(round(float(log.time_s[r]), 3), log.ids[log.vehicle[r]])][1] for r in range(len(log))]
        stations = [truth[(round(float(log.time_s[r]), 3), log.ids[log.vehicle[r]])][2] for r in range(len(log))]
        assert np.mean(matched.lane == np.array(lanes)) > 0.99
        on_lane = matched.lane == np.array(lanes)
        assert np.percentile(np.abs(matched.s - np.array(stations))[on_lane], 99) < 0.1


def test_a_chosen_period_samples_the_run_every_period(tmp_path, caplog):
    """0.4 s at 15 Hz is every 6th step; 0.5 s is not a whole number of steps: every 8th
    (0.533 s), said in a warning, never samples alternating 0.467 / 0.533 s apart."""
    recorded_run(tmp_path, "configs/scenarios/intersection.yaml", 10.0, period_s=0.4)
    log = read_log(tmp_path / "run.csv")
    assert np.allclose(np.diff(log.times), 0.4, atol=2e-3) and len(log.times) == 25
    recorded_run(tmp_path, "configs/scenarios/intersection.yaml", 10.0, period_s=0.5)
    log = read_log(tmp_path / "run.csv")
    assert np.allclose(np.diff(log.times), 8 / 15, atol=2e-3) and "every 8 steps" in caplog.text


@needs_sumo
def test_the_fcd_written_is_valid_against_sumos_schema_and_xml2csv_reads_it(tmp_path):
    """The file SUMO's own tools read: valid against fcd_file.xsd of the eclipse-sumo wheel;
    converted by SUMO's xml2csv, it reads back as the same log."""
    xmlschema = pytest.importorskip("xmlschema")
    recorded_run(tmp_path, "configs/scenarios/intersection.yaml", 5.0)
    home = sumo.sumo_home()
    xmlschema.XMLSchema(str(home / "data" / "xsd" / "fcd_file.xsd")).validate(str(tmp_path / "run.fcd.xml"))
    subprocess.run([sys.executable, str(home / "tools" / "xml" / "xml2csv.py"), str(tmp_path / "run.fcd.xml"),
                    "-o", str(tmp_path / "fcd.csv"), "-x", str(home / "data" / "xsd" / "fcd_file.xsd")], check=True)
    xml_log, csv_log = read_log(tmp_path / "run.fcd.xml"), read_log(tmp_path / "fcd.csv")
    assert csv_log.ids == xml_log.ids and np.allclose(csv_log.x, xml_log.x) and np.allclose(csv_log.pos, xml_log.pos)
    assert list(csv_log.lane) == list(xml_log.lane) and np.allclose(csv_log.heading, xml_log.heading)


@needs_sumo
def test_sumos_own_fcd_of_a_shipped_network_is_placed_on_the_twins_lanes(tmp_path):
    """A log SUMO made (A10KW, two minutes): every record lands on a lane of the twin's
    network, almost always the lane SUMO named, with lateral offsets of centimetres; without
    the lane names (a log from elsewhere), geometry alone finds the same lanes."""

    config = sumo.runnable_config(GAME / "A10KW.sumocfg", tmp_path)
    fcd = tmp_path / "a10kw.fcd.xml"
    sumo.run_program("sumo", ["-c", str(config), "--end", "60", "--time-to-teleport", "-1", "--no-step-log", "true",
                              "--fcd-output", str(fcd)], config, fcd)
    log = read_log(fcd)
    world = World(load_scenario(str(GAME / "A10KW.sumocfg"), {"ego.controlled": 0}))
    matched = match_log(log, world.network)
    report = matched.report()
    assert report["off_network"] == 0 and report["lateral_offset_m"]["p95"] < 0.2
    names = np.array([world.network.lanes[k].name for k in matched.lane])
    assert np.mean(names == log.lane) > 0.98
    log.lane[:] = ""
    geometric = match_log(log, world.network)
    assert np.mean(geometric.lane == matched.lane) > 0.95


def test_records_off_the_network_are_reported_by_vehicle_not_dropped(tmp_path):
    world, _ = recorded_run(tmp_path, "configs/scenarios/intersection.yaml", 5.0)
    text = (tmp_path / "run.csv").read_text().splitlines()
    header, rows = text[0], text[1:]
    moved = []
    for line in rows:
        cols = line.split(",")
        if cols[2] == "1":  # vehicle 1 drives 500 m off to the east
            cols[3] = f"{float(cols[3]) + 500.0:.3f}"
        moved.append(",".join(cols))
    (tmp_path / "off.csv").write_text("\n".join([header, *moved]) + "\n")
    log = read_log(tmp_path / "off.csv")
    matched = match_log(log, world.network)
    report = matched.report()
    assert report["records"] == len(log) and report["vehicles_off_network"] == 1
    assert report["off_network"] == len(log.track("1")) == report["off_network_examples"]["1"]["records"]
    assert report["off_network_examples"]["1"]["first_line"] == 1 + 1 + int(np.flatnonzero(log.vehicle == log.ids.index("1"))[0])


@pytest.mark.parametrize("name, text, message", [
    ("a.txt", "hello world\n", "not a trajectory log the twin reads"),
    ("b.csv", "time_s,id,x\n0,a,1\n", "missing column(s) y"),
    ("c.csv", "frame,id,x,y\n0,a,1,2\n", "give the frame rate"),
    ("d.csv", "time_s,id,x,y\n0,a,1,2\n1,a,2,2\n0.5,b,3,3\n", "line 4: time goes backwards (0.5 s after 1 s)"),
    ("e.csv", "time_s,id,x,y\n0,a,1,2\n0,a,2,2\n", "line 3: vehicle 'a' is listed twice at t = 0 s"),
    ("f.csv", "time_s,id,x,y\n0,a,one,2\n", "line 2: x='one' is not a number"),
    ("g.xml", '<fcd-export><timestep time="0"><vehicle id="a" y="1"/></timestep></fcd-export>',
     "line 1: <vehicle> id='a': no x attribute"),
    ("h.xml", '<fcd-export><timestep time="0"><vehicle id="a" x="1" y="1"></timestep></fcd-export>',
     "not well-formed XML"),
    ("i.xml", '<fcd-export>\n<timestep time="2"/>\n<timestep time="1">\n<vehicle id="a" x="1" y="1"/>\n'
              '</timestep>\n<timestep time="3"><vehicle id="a" x="1" y="1"/><vehicle id="b" x="1" y="1"/>'
              '</timestep>\n<timestep time="2.5"><vehicle id="a" x="1" y="1"/></timestep></fcd-export>',
     "line 7: time goes backwards (2.5 s after 3 s)"),
])
def test_a_bad_log_is_an_error_naming_the_file_the_record_and_the_problem(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(LogError) as error:
        read_log(path)
    assert str(error.value).startswith(str(path)) and message in str(error.value)


def test_a_highd_style_csv_with_frames_reads_at_the_rate_given(tmp_path):
    path = tmp_path / "tracks.csv"
    path.write_text("frame,id,x,y,speed\n0,7,0.0,1.0,10\n1,7,0.4,1.0,10\n2,7,0.8,1.0,10\n")
    log = read_log(path, frame_rate_hz=25.0)
    assert np.allclose(log.time_s, [0, 0.04, 0.08]) and log.reference == "centre" and "csv" in FORMATS
    assert np.all(np.isnan(log.heading)) and log.notes == ["times from frames at 25 Hz"]


def test_simulate_writes_trajectories_from_the_command_line(tmp_path):
    from run import main

    out = tmp_path / "run"
    assert main(["simulate", "highway", "--minutes", "0.1", "--humans", "off", "--out", str(out),
                 "--fcd", str(tmp_path / "t" / "run.fcd.xml.gz"), "--trajectories", str(tmp_path / "run.csv"),
                 "--trajectory-period", "0.2"]) == 0
    fcd, csv_log = read_log(tmp_path / "t" / "run.fcd.xml.gz"), read_log(tmp_path / "run.csv")
    assert len(fcd.times) == len(csv_log.times) == 30 and fcd.ids == csv_log.ids and len(fcd) > 100
    with pytest.raises(SystemExit):
        main(["simulate", "highway", "--fcd", str(tmp_path / "x.xml"), "--trajectory-period", "0"])


def platoon_log(tmp_path: Path, drivers: dict[int, dict[str, float]], seconds: float = 150.0) -> Path:
    """A one-lane road; a leader that slows from 25 to 12 m/s and back every 25 s, and
    followers with known IDM parameters; the run written as the highD-style CSV."""
    from envs.actors import HUMAN

    world = World(load_scenario("highway", {"ego.controlled": 0, "network.lanes": 1, "network.on_ramp": False,
                                            "network.length_m": 6000, "network.curve_angle_deg": 0,
                                            "demand.vehicles": 0, "demand.vehicles_per_hour": 0,
                                            "demand.ramp_vehicles_per_hour": 0}))
    lane = 0
    leader = world.append_vehicle(lane, 200.0, 25.0, "car", HUMAN, speed_factor=25.0 / 30.0, reaction_time=0.1)
    ids = {}
    for k, params in drivers.items():
        vid = world.append_vehicle(lane, 200.0 - 40.0 * (k + 1), 24.0, "car", HUMAN, reaction_time=0.1,
                                   speed_factor=params["v0"] / 30.0, headway=params["T"], min_gap=params["s0"],
                                   politeness=0.0)
        row = world.vehicles.row(vid)
        world.vehicles.a_max[row], world.vehicles.b_comf[row] = params["a_max"], params["b"]
        ids[k] = vid
    world.refresh_world_coords()
    world.perceive()
    recorder = TrajectoryRecorder(csv=tmp_path / "platoon.csv")
    for step in range(int(seconds * world.config.sim_hz)):
        slow = (step // (25 * world.config.sim_hz)) % 2 == 1
        world.set_vehicle_params(leader, speed_factor=(12.0 if slow else 25.0) / 30.0)
        world.step()
        recorder.after_step(world)
    recorder.close()
    return tmp_path / "platoon.csv"


def test_the_drivers_parameters_are_recovered_from_their_trajectories(tmp_path):
    """Followers made by the twin with known IDM parameters (reaction 0.1 s) behind a leader
    that slows from 25 to 12 m/s and back are given back as a log (150 s, 15 Hz): the fit
    recovers desired speed within 5%, headway within 10%, maximum acceleration and
    comfortable deceleration within 10%, and minimum gap (never shown standing) within
    1.2 m; each error within two of its standard deviations, where that is not already tiny.
    (Measured: v0 -3.4 / -0.3 / -1.4%, T -9 / -4 / -2%, s0 +1.1 / +0.85 / +0.3 m, a_max
    0 / -1 / -4%, b -1 / -2 / -4%; 0.07 s for the three fits.)"""
    from shadow.sync import ObservedTracks
    from shadow.tuner import PARAMS, learn_from_log

    drivers = {0: {"v0": 33.0, "T": 1.0, "s0": 2.0, "a_max": 1.5, "b": 2.0},
               1: {"v0": 27.0, "T": 1.8, "s0": 3.0, "a_max": 1.0, "b": 1.5},
               2: {"v0": 36.0, "T": 1.3, "s0": 1.5, "a_max": 2.0, "b": 2.5}}
    log = read_log(platoon_log(tmp_path, drivers))
    world = World(load_scenario("highway", {"ego.controlled": 0, "network.lanes": 1, "network.on_ramp": False,
                                            "network.length_m": 6000, "network.curve_angle_deg": 0}))
    tracks = ObservedTracks(match_log(log, world.network))
    fitted = learn_from_log(tracks, drivers=[log.ids[k + 1] for k in drivers])
    for k, truth in drivers.items():
        est = fitted[log.ids[k + 1]]
        got = dict(zip(PARAMS, est.mean))
        sd = dict(zip(PARAMS, est.sd))
        assert abs(got["v0"] - truth["v0"]) < 0.05 * truth["v0"], (k, got)
        assert abs(got["T"] - truth["T"]) < 0.1 * truth["T"], (k, got)
        assert abs(got["s0"] - truth["s0"]) < 1.2, (k, got)
        assert abs(got["a_max"] - truth["a_max"]) < 0.1 * truth["a_max"], (k, got)
        assert abs(got["b"] - truth["b"]) < 0.1 * truth["b"], (k, got)
        for name in ("v0", "s0"):
            assert abs(got[name] - truth[name]) < 2.0 * sd[name], (k, name, got, sd)


def test_the_shadow_of_a_run_holds_it_exactly_and_predicts_it_better_than_constant_velocity(tmp_path):
    """A twin run exported as FCD and followed: every vehicle held within a centimetre of
    where the run had it (horizon 0), and the twin's predictions at 1, 3 and 5 s closer to
    what happened than a constant-velocity extrapolation's."""
    from shadow.follow import follow_log

    world, _ = recorded_run(tmp_path, "configs/scenarios/intersection.yaml", 40.0, period_s=0.2)
    figures = follow_log(tmp_path / "run.fcd.xml", "intersection", period_s=1.0, json_path=tmp_path / "shadow.json")
    assert figures["sync_error_m"]["max"] < 0.01 and figures["matching"]["off_network"] == 0
    assert figures["horizons_s"] == [1.0, 3.0, 5.0] and min(figures["forecasts"]) > 100
    ade, cv = figures["ade_m"]["twin"], figures["ade_m"]["constant_velocity"]
    assert all(a < c for a, c in zip(ade, cv)), figures["ade_m"]
    written = __import__("json").loads((tmp_path / "shadow.json").read_text())
    assert set(written["ade_m"]) == {"twin", "twin_learned", "constant_velocity", "constant_acceleration"}
    assert set(written["fde_m"]) == set(written["ade_m"]) and written["cost"]["realtime_factor"] > 0
    ahead = written["hazards_ahead"]
    assert ahead["observed_events"] >= 0 and 0 <= ahead["twin"]["predicted_share"] <= 1
    assert 0 <= ahead["twin"]["false_alarm_share"] <= 1


@needs_sumo
def test_the_shadow_of_a_sumo_run_predicts_better_than_kinematics_and_better_again_learned(tmp_path):
    """SUMO drives A10KW with IDM (the twin is not told): from 30 s on, every 3 s, the twin's
    predictions at 3 s are closer than constant velocity's and constant acceleration's, and
    closer again once it has learned its drivers' parameters from their trajectories."""
    from shadow.follow import follow_log

    config = sumo.runnable_config(GAME / "A10KW.sumocfg", tmp_path)
    fcd = tmp_path / "a10kw.fcd.xml"
    sumo.run_program("sumo", ["-c", str(config), "--end", "120", "--time-to-teleport", "-1", "--no-step-log", "true",
                              "--carfollow.model", "IDM", "--fcd-output", str(fcd), "--fcd-output.acceleration",
                              "true"], config, fcd)
    figures = follow_log(fcd, GAME / "A10KW.sumocfg", period_s=3.0, start_s=30.0)
    at3 = {method: values[1] for method, values in figures["ade_m"].items()}
    assert at3["twin"] < at3["constant_velocity"] and at3["twin"] < at3["constant_acceleration"], at3
    assert at3["twin_learned"] < at3["twin"], at3
    assert figures["drivers_learned"] > 100 and figures["matching"]["off_network"] == 0


def test_a_shadow_run_shows_the_log_with_the_supervisor_watching_it(tmp_path):
    """The log of a run, mirrored into a run directory the inspector reads: every vehicle at
    every tick where the log had it, named by its log id, and each hazard the supervisor
    flagged in the original run flagged again on the mirrored state (same kind, same
    vehicles by their log ids, within half a second)."""
    import json

    from rich.console import Console

    from envs.trace import read_trace
    from inspector.server import RecordedRun
    from shadow.follow import follow_log
    from twin.run import simulate

    quiet = Console(quiet=True)
    recorder = TrajectoryRecorder(fcd=tmp_path / "hw.fcd.xml")
    simulate("highway", minutes=1.0, out=tmp_path / "run", humans="off", console=quiet, observers=[recorder])
    recorder.close()
    follow_log(tmp_path / "hw.fcd.xml", "highway", period_s=10.0, console=quiet, out=tmp_path / "shadow")
    header, ticks = read_trace(tmp_path / "shadow")
    assert header["network"]["lanes"] and len(ticks) > 100 and RecordedRun(tmp_path / "shadow").describe()["header"]
    log = read_log(tmp_path / "hw.fcd.xml")
    for tick in ticks[::20]:
        observed = {log.ids[log.vehicle[r]] for r in log.rows_at(tick["t"])}
        shown = {tick["observed_ids"][str(i)] for i in tick["vehicles"]["id"]}
        assert shown == observed and tick["inferred"] == []
    names = {}
    for tick in ticks:
        names.update(tick["observed_ids"])
    original = [json.loads(line) for line in (tmp_path / "run" / "hazards.jsonl").read_text().splitlines()]
    mirrored = [json.loads(line) for line in (tmp_path / "shadow" / "hazards.jsonl").read_text().splitlines()]
    assert original, "the run should have flagged something to find again"
    for h in original:
        assert any(m["kind"] == h["kind"] and [names[str(a)] for a in m["actors"]] == [str(a) for a in h["actors"]]
                   and abs(m["start_s"] - h["start_s"]) <= 0.5 for m in mirrored), (h, mirrored)


@needs_sumo
def test_the_closed_loop_flags_a_stopped_vehicle_in_sumo_before_sumo_shows_it_and_its_advisory_helps():
    """SUMO runs cross; a moving vehicle stops there at 60 s. The twin, following SUMO live,
    flags it within 2 s, before the first vehicle behind it brakes hard in SUMO; acting on it
    (an advisory to the vehicles heading for it: slow down gently) SUMO's vehicles brake hard
    for less time and lose less time than in the same run without the loop."""
    from shadow.loop import compare

    figures = compare(GAME / "cross.sumocfg", minutes=3.0, fault_at_s=60.0)
    without, acting = figures["without_loop"], figures["with_loop"]
    assert without["fault"]["vehicle"] == acting["fault"]["vehicle"] is not None
    assert without["first_flag_s"] <= without["fault"]["time_s"] + 2.0
    assert without["first_flag_s"] < without["sumo"]["first_hard_brake_after_fault_s"]
    assert without["mitigations"] == [] and acting["mitigations"]
    assert acting["sumo"]["hard_braking_vehicle_s"] < 0.5 * without["sumo"]["hard_braking_vehicle_s"]
    assert acting["sumo"]["time_lost_vehicle_s"] < without["sumo"]["time_lost_vehicle_s"]


def test_analyze_gives_the_flow_figures_of_a_run(tmp_path):
    """Edie's fundamental diagram conserves what the trace holds (vehicle-time summed over the
    cells equals the ticks' vehicle count times the tick), its speeds are the cells' mean
    speeds, lane shares add up to one, and the plots are written."""
    from rich.console import Console

    from envs.trace import read_trace
    from run import main
    from shadow.analysis import WINDOW_S, analyze

    assert main(["simulate", "highway", "--minutes", "2", "--humans", "off", "--out", str(tmp_path / "run")]) == 0
    figures = analyze(tmp_path / "run", console=Console(quiet=True))
    header, ticks = read_trace(tmp_path / "run")
    lanes = {ln["name"]: ln for ln in header["network"]["lanes"]}
    spent = sum(c["density_veh_km"] / 1000.0 * WINDOW_S * float(np.hypot(*np.diff(np.array(lanes[c["lane"]]["centre"]),
                                                                                      axis=0).T).sum())
                for c in figures["fundamental_diagram"])
    in_ticks = sum(len(t["vehicles"]["id"]) for t in ticks) * header["tick_s"]
    assert spent == pytest.approx(in_ticks, rel=0.02)  # (lanes under 20 m are left out)
    for c in figures["fundamental_diagram"]:
        assert c["flow_veh_h"] == pytest.approx(3.6 * c["density_veh_km"] * c["speed_mps"], rel=1e-6)
        assert 0 <= c["flow_veh_h"] < 2500 and 0 <= c["speed_mps"] < 40  # (a queue at a lane end stands)
    assert sum(figures["lane_use"].values()) == pytest.approx(1.0, abs=0.01)
    assert figures["time_headway_s"]["p50"] > 0.5 and figures["travel_time_s"]
    for name in ("fundamental_diagram.png", "distributions.png", "lane_use.png", "analysis.json"):
        assert (tmp_path / "run" / name).stat().st_size > 1000


def test_learned_drivers_are_recognised_as_the_personas_that_made_them(tmp_path):
    """Followers driven with the behaviour parameters of two library personas (a cautious
    elderly driver, a young risk-taker) are matched, from their learned IDM parameters, to
    those very personas."""
    from agents.humans.persona import load_personas
    from shadow.sync import ObservedTracks
    from shadow.tuner import learn_from_log, nearest_personas

    library = {pid: p.driver_parameters() for pid, p in load_personas().items() if p.role == "driver"}
    made_by = {0: "cautious_elderly", 1: "aggressive_young"}
    drivers = {k: {"v0": 30.0 * library[p]["speed_factor"], "T": library[p]["headway"], "s0": library[p]["min_gap"],
                   "a_max": 2.0, "b": 2.5} for k, p in made_by.items()}
    log = read_log(platoon_log(tmp_path, drivers))
    world = World(load_scenario("highway", {"ego.controlled": 0, "network.lanes": 1, "network.on_ramp": False,
                                            "network.length_m": 6000, "network.curve_angle_deg": 0}))
    ids = [log.ids[k + 1] for k in made_by]
    fitted = learn_from_log(ObservedTracks(match_log(log, world.network)), drivers=ids)
    nearest = nearest_personas(fitted, {vid: 30.0 for vid in ids}, library)
    assert [nearest[vid][0] for vid in ids] == list(made_by.values()), nearest

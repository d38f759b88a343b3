"""A small OpenAI-compatible chat server for tests: answers each role well-formed (as
``agents.llm.scripted.by_role``), refuses the structured-output ways it is told to, and breaks
a share of its answers in every way a real server or a hostile one can. Every request and what
was done to it is logged, so a test can compare the twin's counts with the server's."""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from agents.llm.scripted import by_role

BREAKS = ("prose", "malformed", "wrong_type", "missing_field", "extra_field", "out_of_range", "empty", "refused",
          "cut", "http_500", "timeout")


def broken(kind: str, good: str) -> tuple[int, str, str]:
    """(HTTP status, content, finish_reason) of a ``kind`` of broken answer to ``good``."""
    data = json.loads(good)
    first = next(iter(data))
    if kind == "prose":
        return 200, "Keep calm and drive on.", "stop"
    if kind == "malformed":
        return 200, good[: len(good) // 2] + "}", "stop"
    if kind == "wrong_type":
        return 200, json.dumps({**data, first: 3}), "stop"
    if kind == "missing_field":
        return 200, json.dumps({first: data[first]}), "stop"
    if kind == "extra_field":
        return 200, json.dumps({**data, "exec": "rm -rf /"}), "stop"
    if kind == "out_of_range":
        return 200, json.dumps({**data, first: "warp"}), "stop"
    if kind == "empty":
        return 200, "", "stop"
    if kind == "refused":
        return 200, "I'm sorry, I can't help with that.", "stop"
    if kind == "cut":
        return 200, good[:10], "length"
    if kind == "http_500":
        return 500, "", "stop"
    raise ValueError(kind)


class ModelServer:
    """``with ModelServer(...) as server:`` serves ``server.base_url`` in a thread.

    ``refuse``: structured-output ways answered with HTTP 500 (``json_schema``,
    ``json_object``, ``tools``); ``break_share``: share of the twin's requests broken (which
    ones: from the request's hash), by the kinds of ``BREAKS`` in turn, so that every kind
    comes up once ``len(BREAKS)`` requests were broken; ``busy_first``: answer each
    request first with HTTP 429; ``delay_s``: time per answer, one answer at a time;
    ``timeout_s``: how long a ``timeout`` break keeps the client waiting."""

    def __init__(self, refuse: tuple[str, ...] = (), break_share: float = 0.0, busy_first: bool = False,
                 delay_s: float = 0.0, timeout_s: float = 3.0) -> None:
        self.refuse, self.break_share, self.busy_first = refuse, break_share, busy_first
        self.delay_s, self.timeout_s = delay_s, timeout_s
        self.log: list[dict[str, Any]] = []  # one per request: way, role, what was done
        self._seen: set[str] = set()
        self._breaks = itertools.count()  # the kind of the next broken answer: BREAKS in turn
        self._lock = threading.Lock()  # one answer at a time, like llama-cpp-python's server
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> "ModelServer":
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()

    def broken_by_kind(self) -> dict[str, int]:
        """How many distinct requests were broken, by kind (the twin asks each request once)."""
        counts: dict[str, int] = {}
        for entry in self.log:
            if entry["done"] not in ("ok", "refused_way", "busy") and not entry["retry"]:
                counts[entry["done"]] = counts.get(entry["done"], 0) + 1
        return counts

    def _answer(self, body: dict) -> tuple[int, dict, float]:
        """(status, JSON body, seconds to wait before sending it)."""
        messages = body.get("messages", [])
        system = messages[0].get("content", "") if messages else ""
        prompt = messages[-1].get("content", "") if messages else ""
        way = "tools" if body.get("tools") else (body.get("response_format") or {}).get("type", "prompt")
        key = hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()
        retry = key in self._seen
        self._seen.add(key)
        entry = {"way": way, "probe": "JSON interface" in system, "retry": retry, "done": "ok"}
        self.log.append(entry)
        if way in self.refuse:
            entry["done"] = "refused_way"
            return 500, {"error": {"message": f"{way} is not supported", "type": "internal_server_error"}}, 0.0
        if self.busy_first and not retry:
            entry["done"] = "busy"
            return 429, {"error": {"message": "busy", "type": "rate_limit"}}, 0.0
        good = _probe_answer() if entry["probe"] else by_role(system, prompt)
        status, content, finish, wait_s = 200, good, "stop", 0.0
        share = int(key[:8], 16) / 0xFFFFFFFF
        if not entry["probe"] and share < self.break_share:
            kind = BREAKS[next(self._breaks) % len(BREAKS)]
            entry["done"] = kind
            if kind == "timeout":
                wait_s = self.timeout_s
            else:
                status, content, finish = broken(kind, good)
        if status != 200:
            return status, {"error": {"message": "boom", "type": "internal_server_error"}}, 0.0
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if way == "tools":
            message = {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "answer", "arguments": content}}]}
            finish = "tool_calls" if finish == "stop" else finish
        return 200, {"id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": body.get("model", "m"),
                     "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                     "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}}, wait_s

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real servers do (a client's pool is reused)

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                with server._lock:
                    if server.delay_s:
                        time.sleep(server.delay_s)
                    status, payload, wait_s = server._answer(body)
                time.sleep(wait_s)  # a late answer keeps only its own client waiting
                stream = bool(body.get("stream")) and status == 200
                data = (_events(payload) if stream else json.dumps(payload)).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "text/event-stream" if stream else "application/json")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout)
                    pass

        return Handler


def _probe_answer() -> str:
    return by_role("You are a driver", "")


def _events(payload: dict) -> str:
    """A chat completion as the server-sent events of a stream: one delta, then usage, then done."""
    choice = payload["choices"][0]
    message = choice["message"]
    delta: dict[str, Any] = {"role": "assistant", "content": message["content"]}
    if message.get("tool_calls"):
        delta["tool_calls"] = [{**call, "index": k} for k, call in enumerate(message["tool_calls"])]
    base = {"id": payload["id"], "object": "chat.completion.chunk", "created": 0, "model": payload["model"]}
    chunks = [{**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
              {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}]},
              {**base, "choices": [], "usage": payload["usage"]}]
    return "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"

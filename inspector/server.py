"""The inspector's local web server (standard library only), bound to 127.0.0.1.

Routes: ``/`` the page, ``/static/<file>`` its scripts and styles, and a JSON API:

- ``GET /api/run``: mode, the trace header (geometry, humans; an imported network's junctions
  named, with centres: ``inspector.junctions``), summary, hazards, alerts, the run's collisions
  (``id``: their number for explain) and the causes explained so far (``inspector.explanations``)
- ``GET /api/ticks?session=main|fork&from=N``: trace records from index N
- ``POST /api/explain {"incident": N}``: the counterfactual causes of collision N (all of them
  without N), in ``run.py explain``'s JSON, plus ``cached``; cached in ``RUN_DIR/causes.json``
- live only: ``POST /api/step {"seconds"}``, ``POST /api/interview {"human", "question"}``,
  ``POST /api/fork {"tick", "change"}``

A bad request is answered with HTTP 400 and ``{"error": message}``. Requests whose Host or
Origin is not this server on localhost are refused (403), and actions must be sent as
``application/json``, so no other website can drive or read the inspector.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from causes import counterfactual
from envs.trace import read_trace
from inspector.explanations import Explanations
from inspector.junctions import with_junction_index

STATIC = Path(__file__).parent / "static"
HOST = "127.0.0.1"  # never reachable from another machine
MAX_BODY = 64 * 1024  # [bytes] largest request body accepted
HEADER_TIMEOUT_S = 5.0  # [s] a connection whose request does not arrive within this is closed

log = logging.getLogger(__name__)


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


class RecordedRun:
    """A finished (or interrupted) run directory, served read-only."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        if not self.run_dir.is_dir():
            raise FileNotFoundError(f"{self.run_dir}: no such run directory")
        self.header, self.main_ticks = read_trace(self.run_dir)
        with_junction_index(self.header)
        summary = self.run_dir / "summary.json"
        self.summary = json.loads(summary.read_text()) if summary.exists() else None
        self.hazards = _jsonl(self.run_dir / "hazards.jsonl")
        self.alerts = _jsonl(self.run_dir / "alerts.jsonl")
        if not self.hazards:  # an interrupted run: its hazards are in the trace only
            self.hazards = [h for tick in self.main_ticks for h in tick["hazards"]]
        events = _jsonl(self.run_dir / "events.jsonl") or [e for t in self.main_ticks for e in t.get("events", [])]
        self.collisions = [{"id": k, "time_s": e["time_s"], "actors": sorted(e["actors"])}  # numbered as explain does
                           for k, e in enumerate(e for e in events if e.get("kind") == "collision")]
        self.explanations = Explanations(self.run_dir)

    def describe(self) -> dict[str, Any]:
        return {"mode": "recorded", "run_dir": str(self.run_dir), "header": self.header, "summary": self.summary,
                "hazards": self.hazards, "alerts": self.alerts, "personas": [], "fault_kinds": [], "fork": None,
                "collisions": self.collisions, "causes": self.explanations.cached()}

    def explain(self, incident: int | None) -> dict[str, Any]:
        """The causes of collision ``incident`` (all collisions when None), in explain's JSON;
        explained once, then served from ``causes.json``."""
        if incident is not None and incident not in self.explanations.incidents:
            counterfactual.load_run(self.run_dir)  # a run explain refuses is refused before the index
            if not 0 <= incident < len(self.collisions):
                n = len(self.collisions)
                raise counterfactual.ExplainError(f"incident {incident}: the run has {n} collisions"
                                                  + (f" (0 to {n - 1})" if n else ""))
        ids = [incident] if incident is not None else [c["id"] for c in self.collisions]
        # from the run's recorded answers only: a click loads no model (a situation the run never met
        # gets the persona's rule); run.py explain asks the scenario's model and runs futures
        return self.explanations.get(ids, lambda k: counterfactual.explain(self.run_dir, incident=k, futures=0,
                                                                            replay_only=True)["incidents"][0])

    def ticks(self, session: str, start: int) -> dict[str, Any]:
        if session != "main":
            raise ValueError("a recorded run has no fork (use --live)")
        return {"ticks": self.main_ticks[max(start, 0):], "total": len(self.main_ticks)}


def _incident(value: Any) -> int | None:
    """An incident number from a request (None: all incidents)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).lstrip("-").isdigit():
        raise ValueError(f"incident must be a collision's number (0, 1, ...), not {value!r}")
    return int(value)


class _Handler(BaseHTTPRequestHandler):
    source: Any = None  # RecordedRun or inspector.live.LiveTwin, set by make_server
    timeout = HEADER_TIMEOUT_S  # socket reads and writes: a partial request no longer holds a thread forever

    def log_message(self, fmt: str, *args: Any) -> None:  # quiet: the console shows the address only
        log.debug(fmt, *args)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, data: Any, status: int = 200) -> None:
        self._send(status, json.dumps(data, separators=(",", ":")).encode(), "application/json")

    def _same_origin(self) -> bool:
        """Whether the request comes from this page: the Host is this server on localhost (no DNS
        rebinding) and a browser's Origin, when sent, is too (no other website driving it)."""
        port = self.server.server_address[1]
        local = {f"127.0.0.1:{port}", f"localhost:{port}"}
        origin = self.headers.get("Origin")
        return self.headers.get("Host") in local and (origin is None or urlparse(origin).netloc in local)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if not self._same_origin():
            return self._json({"error": "requests must come from the inspector's own page on 127.0.0.1"}, 403)
        url = urlparse(self.path)
        if url.path in ("/", "/index.html"):
            return self._file(STATIC / "index.html")
        if url.path.startswith("/static/"):
            name = url.path.removeprefix("/static/")
            target = (STATIC / name).resolve()
            if STATIC.resolve() not in target.parents:
                return self._json({"error": "not found"}, 404)
            return self._file(target)
        query = parse_qs(url.query)
        try:
            if url.path == "/api/run":
                return self._json(self.source.describe())
            if url.path == "/api/ticks":
                session = query.get("session", ["main"])[0]
                start = int(query.get("from", ["0"])[0])
                return self._json(self.source.ticks(session, start))
        except ValueError as exc:
            return self._json({"error": str(exc)}, 400)
        except Exception as exc:  # noqa: BLE001 - the page gets a reason, the server keeps serving
            log.exception("inspector: %s failed", url.path)
            return self._json({"error": f"{type(exc).__name__}: {exc}"}, 500)
        self._json({"error": f"no such page: {url.path}"}, 404)

    def do_POST(self) -> None:  # noqa: N802
        url = urlparse(self.path)
        if not self._same_origin():
            return self._json({"error": "requests must come from the inspector's own page on 127.0.0.1"}, 403)
        if not hasattr(self.source, "step") and url.path != "/api/explain":
            return self._json({"error": "a recorded run cannot be changed (start the inspector with --live)"}, 400)
        if (self.headers.get("Content-Type") or "").split(";")[0].strip() != "application/json":
            return self._json({"error": "send the request body as application/json"}, 415)
        length = self.headers.get("Content-Length") or "0"
        if not length.isdigit() or int(length) > MAX_BODY:
            return self._json({"error": f"the request body must be 0 to {MAX_BODY} bytes"}, 400)
        length = int(length)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
            if not isinstance(body, dict):
                raise ValueError("the request body must be a JSON object")
            if url.path == "/api/step":
                return self._json(self.source.step(float(body.get("seconds", 0.5))))
            if url.path == "/api/interview":
                return self._json(self.source.interview(str(body.get("human", "")), str(body.get("question", ""))))
            if url.path == "/api/fork":
                return self._json(self.source.fork_at(int(body.get("tick", -1)), dict(body.get("change") or {})))
            if url.path == "/api/explain":
                return self._json(self.source.explain(_incident(body.get("incident"))))
        except (ValueError, TypeError, RecursionError) as exc:
            return self._json({"error": str(exc) or type(exc).__name__}, 400)
        except Exception as exc:  # noqa: BLE001 - the page gets a reason, the server keeps serving
            log.exception("inspector: %s failed", url.path)
            return self._json({"error": f"{type(exc).__name__}: {exc}"}, 500)
        self._json({"error": f"no such action: {url.path}"}, 404)

    def _file(self, path: Path) -> None:
        try:
            found = path.is_file()
        except OSError:  # a name too long for the file system, say
            found = False
        if not found:
            return self._json({"error": "not found"}, 404)
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        self._send(200, path.read_bytes(), kind + ("; charset=utf-8" if kind.startswith("text/") or
                                                   kind.endswith("javascript") else ""))


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A browser tab closed mid-answer (or a client that went away) is routine, not a traceback."""
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            log.debug("inspector: client %s went away", client_address)
            return
        super().handle_error(request, client_address)


def make_server(source: Any, port: int = 0) -> ThreadingHTTPServer:
    """A server for ``source`` on 127.0.0.1 (``port`` 0: any free port; see ``server_address``)."""
    handler = type("InspectorHandler", (_Handler,), {"source": source})
    server = _Server((HOST, port), handler)
    server.daemon_threads = True
    return server

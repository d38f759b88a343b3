"""The embedded model's client: llama.cpp in-process, with a fast path for flat JSON answers.

A human's answer is a flat JSON object whose fields are either one of a few strings (an
enum) or a short free string (``reason``). Asked through llama.cpp's grammar, every one of
its ~45 tokens is sampled with the grammar checked against the whole 49k-token vocabulary
(about 9 ms a token on 2 cores), although most of them (braces, keys, quotes) admit only
one continuation. The fast path writes those forced pieces itself and evaluates them in one
batch ("jump-forward" decoding), and samples only where the model has a choice:

- an enum value: among the tokens that continue one of the allowed values (a token trie),
  with the same top-k / top-p / min-p / temperature filters llama.cpp applies after its
  grammar;
- a free string: from the tokens a JSON string may hold, ended by a token that holds a quote
  (the text before the quote is kept) or at the schema's ``maxLength``.

An answer that finishes (``stop``) is valid JSON of the schema; one cut at ``max_tokens`` is
not (``length``: a ``cut`` answer). The enum choices are drawn as with the grammar, from each
value's usual tokenisation; a free string is drawn from the tokens a JSON string may hold.
Sampling is seeded by the request's ``seed``; ``temperature`` (default 0.2, as llama.cpp's)
and ``max_tokens`` are read from the request, llama.cpp's other sampling options are not.
Any other request (free text, a schema with numbers, tools) goes to llama.cpp's own
``create_chat_completion``.

Before evaluating a prompt the client restores the saved key-value state of its system
message (one sequence's state, about 23 kB per token, not the full llama.cpp state with its
logits), so each persona's system message is evaluated once, not once per decision, even
when personas take turns; and an answer depends on the request alone, not on what the
model evaluated before.
"""

from __future__ import annotations

import asyncio
import ctypes
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
from autogen_core import CancellationToken
from autogen_core.models import CreateResult, LLMMessage, RequestUsage, SystemMessage, UserMessage
from autogen_ext.models.llama_cpp import LlamaCppChatCompletionClient
from pydantic import BaseModel

TOP_K, TOP_P, MIN_P = 40, 0.95, 0.05  # llama-cpp-python's defaults for chat completions
PREFIX_STATES = 32  # system-message states kept (about 6 MB each at 260 tokens)
DEFAULT_STRING_CHARS = 200


@dataclass(frozen=True)
class Field:
    """One field of a flat answer: its name and its allowed values (None: a free string of at
    most ``max_chars`` characters)."""

    name: str
    options: tuple[str, ...] | None
    max_chars: int


def flat_fields(answer_type: type[BaseModel]) -> list[Field] | None:
    """The fields of ``answer_type`` if each is a string enum or a plain string, else None."""
    schema = answer_type.model_json_schema()
    fields = []
    for name, prop in schema.get("properties", {}).items():
        if "$ref" in prop or prop.get("type") != "string":
            return None
        options = prop.get("enum") or ([prop["const"]] if "const" in prop else None)  # Literal["x"]: a const
        if options is not None and not all(isinstance(o, str) and o and '"' not in o and "\\" not in o
                                           for o in options):
            return None
        fields.append(Field(name, tuple(options) if options else None,
                            int(prop.get("maxLength", DEFAULT_STRING_CHARS))))
    return fields or None


class EmbeddedChatCompletionClient(LlamaCppChatCompletionClient):
    """autogen's llama.cpp client with the fast path for flat JSON answers and the cache of
    system-message states described in the module docstring."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        llm = self.llm
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = llm.metadata.get("tokenizer.chat_template")
        tokens = {"eos_token": llm.detokenize([llm.token_eos()], special=True).decode(),
                  "bos_token": llm.detokenize([llm.token_bos()], special=True).decode()}
        self._formatter = Jinja2ChatFormatter(template=template, **tokens) if template else None
        self._system_formatter = (Jinja2ChatFormatter(template=template, add_generation_prompt=False, **tokens)
                                  if template else None)
        self._lock = threading.Lock()
        self._serialise()
        # each token's text (0.15 s for 49k tokens); the tokens a free string may hold (no control
        # characters, nothing empty such as end of turn); those that start with a quote
        self._pieces = [llm.detokenize([t]) for t in range(llm.n_vocab())]
        self._string_tokens = np.array([bool(p) and min(p) >= 0x20 for p in self._pieces])
        self._quote_tokens = np.array([t for t, p in enumerate(self._pieces) if p.startswith(b'"')])
        self._tries: dict[tuple[str, ...], dict] = {}
        self._prefix_states: OrderedDict[tuple[int, ...], bytes] = OrderedDict()
        self._completion_tokens = 0
        self._unevaluated: list[int] = []

    @property
    def busy(self) -> bool:
        """Whether llama.cpp is still answering (e.g. a request abandoned after its timeout)."""
        return self._lock.locked()

    def _serialise(self) -> None:
        """llama.cpp runs one request at a time: autogen runs each call in a worker thread, and
        a call abandoned after its timeout must not overlap the next one."""
        create, lock = self.llm.create_chat_completion, self._lock

        def locked(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return create(*args, **kwargs)

        self.llm.create_chat_completion = locked

    async def create(self, messages: Sequence[LLMMessage], *, tools: Sequence[Any] = [],
                     tool_choice: Any = "auto", json_output: Any = None,
                     extra_create_args: Mapping[str, Any] = {},
                     cancellation_token: CancellationToken | None = None) -> CreateResult:
        fields = (flat_fields(json_output) if isinstance(json_output, type) and issubclass(json_output, BaseModel)
                  else None)
        if fields is None or tools or self._formatter is None:
            return await super().create(messages, tools=tools, tool_choice=tool_choice, json_output=json_output,
                                        extra_create_args=extra_create_args, cancellation_token=cancellation_token)
        prompt = self._prompt(messages)
        args = dict(extra_create_args)
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(None, lambda: self._answer(
            prompt, fields, int(args.get("max_tokens") or 256), float(args.get("temperature", 0.2)),
            int(args.get("seed") or 0)))
        if cancellation_token:
            cancellation_token.link_future(future)
        text, finish, prompt_tokens, completion_tokens = await future
        self._total_usage["prompt_tokens"] += prompt_tokens
        self._total_usage["completion_tokens"] += completion_tokens
        return CreateResult(finish_reason=finish, content=text, cached=False,
                            usage=RequestUsage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens))

    # ---- prompt --------------------------------------------------------------------------
    def _prompt(self, messages: Sequence[LLMMessage]) -> list[dict[str, str]]:
        converted = []
        for message in messages:
            if not isinstance(message.content, str):
                raise ValueError("the embedded model takes text messages only")
            role = "system" if isinstance(message, SystemMessage) else "user" if isinstance(message, UserMessage) \
                else "assistant"
            converted.append({"role": role, "content": message.content})
        return converted

    def _tokens(self, messages: list[dict[str, str]]) -> tuple[list[int], int]:
        """The prompt's tokens and how many of them are the system message's (its prefix)."""
        llm = self.llm
        full = self._formatter(messages=messages).prompt
        tokens = llm.tokenize(full.encode(), add_bos=True, special=True)
        prefix = 0
        if messages and messages[0]["role"] == "system" and len(messages) > 1:
            system_only = self._system_formatter(messages=messages[:1]).prompt
            head = llm.tokenize(system_only.encode(), add_bos=True, special=True)
            if tokens[:len(head)] == head:
                prefix = len(head)
        return tokens, prefix

    # ---- decoding ------------------------------------------------------------------------
    def _answer(self, messages: list[dict[str, str]], fields: list[Field], max_tokens: int, temperature: float,
                seed: int) -> tuple[str, str, int, int]:
        with self._lock:
            tokens, prefix = self._tokens(messages)
            self._load_prompt(tokens, prefix)
            text, finish = self._decode(fields, max_tokens, temperature, np.random.default_rng(seed))
            return text, finish, len(tokens), self._completion_tokens

    def _load_prompt(self, tokens: list[int], prefix: int) -> None:
        """Evaluate ``tokens`` the same way whatever was asked before: the system message
        (its first ``prefix`` tokens) from its saved state, or evaluated alone and saved; then
        the rest in one batch. So an answer depends on the request only, not on llama.cpp's
        cache, and each persona's system message is evaluated once."""
        llm = self.llm
        key = tuple(tokens[:prefix])
        if not prefix or prefix >= len(tokens):
            llm.n_tokens = 0
            llm.eval(tokens)
            return
        if key in self._prefix_states:
            self._restore(key)
            self._prefix_states.move_to_end(key)
        else:
            llm.n_tokens = 0
            llm.eval(tokens[:prefix])
            self._save(key)
        llm.eval(tokens[prefix:])

    def _save(self, key: tuple[int, ...]) -> None:
        import llama_cpp

        ctx = self.llm._ctx.ctx
        size = llama_cpp.llama_state_seq_get_size(ctx, 0)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(ctx, buffer, size, 0)
        self._prefix_states[key] = bytes(buffer[:written])
        while len(self._prefix_states) > PREFIX_STATES:
            self._prefix_states.popitem(last=False)

    def _restore(self, key: tuple[int, ...]) -> None:
        import llama_cpp

        llm = self.llm
        data = self._prefix_states[key]
        llm._ctx.kv_cache_seq_rm(0, 0, -1)
        buffer = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
        if llama_cpp.llama_state_seq_set_data(llm._ctx.ctx, buffer, len(data), 0) != len(data):
            raise RuntimeError("llama.cpp could not restore a saved prompt state")
        llm.input_ids[:len(key)] = key
        llm.n_tokens = len(key)

    def _logits(self) -> np.ndarray:
        """The next token's logits, after evaluating the tokens written so far in one batch."""
        llm = self.llm
        if self._unevaluated:
            llm.eval(self._unevaluated)
            self._unevaluated = []
        return np.ctypeslib.as_array(llm._ctx.get_logits_ith(-1), shape=(llm.n_vocab(),))

    def _write(self, tokens: list[int]) -> None:
        """Append ``tokens`` to the answer; they are evaluated when logits are next needed."""
        self._unevaluated += tokens
        self._completion_tokens += len(tokens)

    def _feed(self, text: str) -> None:
        self._write(self.llm.tokenize(text.encode(), add_bos=False, special=False))

    def _decode(self, fields: list[Field], max_tokens: int, temperature: float,
                rng: np.random.Generator) -> tuple[str, str]:
        self._completion_tokens, self._unevaluated = 0, []
        out: list[str] = []
        for i, field in enumerate(fields):
            forced = ('{"' if i == 0 else '", "') + f'{field.name}": "'
            self._feed(forced)  # the previous value's closing quote, this field's key, its opening quote
            out.append(forced)
            if self._completion_tokens >= max_tokens:
                return "".join(out), "length"
            if field.options is not None:
                out.append(self._choose(field.options, temperature, rng))
            else:
                out.append(self._string(field.max_chars, max_tokens, temperature, rng))
                if self._completion_tokens >= max_tokens:
                    return "".join(out), "length"
        out.append('"}')
        return "".join(out), "stop"

    def _trie(self, options: tuple[str, ...]) -> dict:
        """Token trie of ``options``: ``{token: subtrie}``; a leaf's ``None`` key holds the value."""
        trie = self._tries.get(options)
        if trie is None:
            trie = {}
            for option in options:
                node = trie
                for token in self.llm.tokenize(option.encode(), add_bos=False, special=False):
                    node = node.setdefault(token, {})
                node[None] = option
            self._tries[options] = trie
        return trie

    def _choose(self, options: tuple[str, ...], temperature: float, rng: np.random.Generator) -> str:
        """Sample one of ``options`` token by token, evaluating each chosen token."""
        node = self._trie(options)
        while True:
            candidates = [t for t in node if t is not None] + ([None] if None in node else [])
            if len(candidates) == 1:
                token = candidates[0]
            else:
                logits = self._logits()
                # ending here (a value that is a prefix of another) is weighed by every token that
                # starts with the closing quote
                quoted = logits[self._quote_tokens]
                end = float(quoted.max() + np.log(np.exp(quoted - quoted.max()).sum()))
                scores = np.array([logits[t] if t is not None else end for t in candidates])
                token = candidates[_sample(scores, temperature, rng)]
            if token is None:
                return node[None]
            self._write([token])
            node = node[token]

    def _string(self, max_chars: int, max_tokens: int, temperature: float, rng: np.random.Generator) -> str:
        """Sample a free string of at most ``max_chars``, among the tokens a JSON string may
        hold. A token with a quote or backslash ends it: the text before that is kept (and
        evaluated, so the model reads what the answer says), the closing quote is written as
        forced text; so does reaching ``max_chars``."""
        pieces = self._pieces
        value = b""
        while self._completion_tokens < max_tokens:
            logits = np.where(self._string_tokens, self._logits(), -np.inf)
            token = _sample_vocab(logits, temperature, rng)
            piece = pieces[token]
            ends = b'"' in piece or b"\\" in piece
            if ends or len(_text(value + piece)) >= max_chars:
                kept = piece.split(b'"')[0].split(b"\\")[0] if ends else piece
                before = _text(value)
                text = _text(value + kept)[:max_chars]
                if text[len(before):]:
                    self._feed(text[len(before):])
                return text
            value += piece
            self._write([token])
        return _text(value)[:max_chars]


def _text(data: bytes) -> str:
    """``data`` as text without control characters JSON would reject."""
    text = data.decode("utf-8", errors="ignore")
    return "".join(c if c >= " " else " " for c in text)


def _filter(scores: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities after llama.cpp's top-k, top-p, min-p and temperature, over ``scores``."""
    order = np.argsort(-scores, kind="stable")[:TOP_K]
    kept = scores[order]
    p = np.exp(kept - kept[0])
    p /= p.sum()
    cut = int(np.searchsorted(np.cumsum(p), TOP_P) + 1)
    order, kept, p = order[:cut], kept[:cut], p[:cut]
    keep = p >= MIN_P * p[0]
    order, kept = order[keep], kept[keep]
    if temperature <= 0:
        probs = np.zeros(len(order))
        probs[0] = 1.0
    else:
        probs = np.exp((kept - kept[0]) / temperature)
        probs /= probs.sum()
    full = np.zeros(len(scores))
    full[order] = probs
    return full


def _sample(scores: np.ndarray, temperature: float, rng: np.random.Generator) -> int:
    probs = _filter(np.asarray(scores, dtype=np.float64), temperature)
    return int(rng.choice(len(probs), p=probs))


def _sample_vocab(logits: np.ndarray, temperature: float, rng: np.random.Generator) -> int:
    top = np.argpartition(-logits, TOP_K)[:TOP_K]
    return int(top[_sample(logits[top], temperature, rng)])

"""The ways a request can ask a model server for an answer in a given JSON shape.

Servers differ: OpenAI and vLLM take ``response_format`` ``json_schema``; llama-cpp-python's
server takes only ``json_object`` (with the schema beside it); llama.cpp's server and
llama-cpp-python take a GBNF ``grammar``; most servers with function calling take a forced
tool call; any server can be told the shape in the prompt alone (the system message always
tells it, see :func:`agents.llm.answers.answer_format`). ``native`` is the in-process model:
autogen's llama.cpp client turns the pydantic type into its own grammar.

:func:`structured_request` builds the arguments of ``ChatCompletionClient.create`` for one
way; :func:`answer_text` reads the answer back whichever way was used. ``agents.llm.probe``
finds the first way a server accepts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from autogen_core.models import CreateResult
from autogen_core.tools import ToolSchema
from pydantic import BaseModel

STRUCTURED_OUTPUTS = ("json_schema", "json_object", "grammar", "tool", "prompt")  # in the order a probe tries them
NATIVE = "native"  # the embedded model: the pydantic type itself
ANSWER_TOOL = "answer"  # the function a ``tool`` request forces the model to call


@dataclass(frozen=True)
class StructuredRequest:
    """Keyword arguments of ``ChatCompletionClient.create`` that ask for one answer shape."""

    json_output: Any = None  # a pydantic type (native), or None
    extra_create_args: dict[str, Any] = field(default_factory=dict)
    tools: list[ToolSchema] = field(default_factory=list)

    @property
    def tool_choice(self) -> str:
        return "required" if self.tools else "auto"


def structured_request(mode: str, answer_type: type[BaseModel] | None) -> StructuredRequest:
    """How to ask for ``answer_type`` the ``mode`` way (free text when ``answer_type`` is None).

    Raises ValueError for an unknown mode, and for ``grammar`` when llama-cpp-python (which
    writes the GBNF grammar from the schema) is not installed."""
    if answer_type is None or mode == "prompt":
        return StructuredRequest()
    if mode == NATIVE:
        return StructuredRequest(json_output=answer_type)
    schema = answer_type.model_json_schema()
    name = answer_type.__name__
    if mode == "json_schema":
        return StructuredRequest(extra_create_args={"response_format": {
            "type": "json_schema", "json_schema": {"name": name, "schema": schema}}})
    if mode == "json_object":
        return StructuredRequest(extra_create_args={"response_format": {"type": "json_object", "schema": schema}})
    if mode == "grammar":
        return StructuredRequest(extra_create_args={"extra_body": {"grammar": gbnf_grammar(schema)}})
    if mode == "tool":
        tool = ToolSchema(name=ANSWER_TOOL, description=f"Give your answer as a {name}.", parameters=schema)
        return StructuredRequest(tools=[tool])
    raise ValueError(f"structured output must be one of {(NATIVE, *STRUCTURED_OUTPUTS)}, not {mode!r}")


def gbnf_grammar(schema: dict[str, Any]) -> str:
    """The GBNF grammar of a JSON schema (written by llama-cpp-python's converter)."""
    try:
        from llama_cpp.llama_grammar import json_schema_to_gbnf
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ValueError(f"structured output 'grammar' needs llama-cpp-python to write the grammar: {exc}") from exc
    return json_schema_to_gbnf(json.dumps(schema))


def answer_text(result: CreateResult) -> str:
    """The answer's text: the content, or the arguments of the forced tool call."""
    content = result.content
    if isinstance(content, str):
        return content
    calls = [c for c in content if getattr(c, "name", None) == ANSWER_TOOL] or list(content)
    return str(getattr(calls[0], "arguments", "")) if calls else ""

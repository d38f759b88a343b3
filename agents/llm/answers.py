"""Reading a model's answer: the answer format told in the system message, and the parse of
what came back into a pydantic model, with the kind of failure when it cannot be used:

- ``empty``: no text; ``prose``: text with no JSON object in it; ``refused``: prose that declines;
- ``malformed``: broken JSON, or JSON that is not an object;
- ``wrong_type``, ``missing_field``, ``extra_field``: an object that does not fit the schema;
- ``out_of_range``: a value outside the allowed options or bounds;
- ``cut``: an answer that does not parse because it stopped at ``max_tokens``.

Shared by the humans' intents and the supervisor's triage."""

from __future__ import annotations

import json
import re
from typing import TypeVar

from autogen_core.models import CreateResult
from pydantic import BaseModel, ValidationError

from agents.llm.structured import answer_text

Answer = TypeVar("Answer", bound=BaseModel)
REFUSAL = re.compile(r"\b(i can(no|')t|i am unable|i'm unable|sorry|as an ai)\b", re.IGNORECASE)
RANGE_ERRORS = {"literal_error", "enum", "greater_than", "greater_than_equal", "less_than", "less_than_equal",
                "value_error", "string_too_long", "too_long"}
ANSWER_KINDS = ("empty", "prose", "refused", "malformed", "wrong_type", "missing_field", "extra_field",
                "out_of_range", "cut")


def answer_format(intent_type: type[BaseModel]) -> str:
    """One line per field with its allowed values, for the system message."""
    lines = []
    for name, info in intent_type.model_fields.items():
        schema = intent_type.model_json_schema()["properties"][name]
        options = schema.get("enum")
        what = " | ".join(options) if options else schema.get("type", "string")
        lines.append(f'- "{name}": {what}' + (f" ({info.description})" if info.description else ""))
    return "Answer with one JSON object with these fields:\n" + "\n".join(lines)


def parse_answer(text: str, answer_type: type[Answer]) -> tuple[Answer | None, str | None, str, list[str]]:
    """Parse a model answer into ``answer_type``: (answer, fallback kind, detail, clamped fields).
    Never raises: anything unparseable is ``malformed``. A model with a ``clamped()`` method
    (an operator's intent) brings its values into range and says which it changed."""
    try:
        return _parse(text, answer_type)
    except Exception as exc:  # noqa: BLE001 - e.g. RecursionError on absurdly nested JSON
        return None, "malformed", f"{type(exc).__name__}", []


def _parse(text: str, answer_type: type[Answer]) -> tuple[Answer | None, str | None, str, list[str]]:
    if not text or not text.strip():
        return None, "empty", "no text", []
    try:
        data = json.loads(text, strict=False)  # a raw newline inside a string (small models write them)
    except json.JSONDecodeError:
        match = re.search(r"\{.*\}", text, re.DOTALL)
        try:
            data = json.loads(match.group(0), strict=False) if match else None
        except json.JSONDecodeError:
            data = None
        if data is None:
            kind = "refused" if REFUSAL.search(text) else "malformed" if "{" in text else "prose"
            return None, kind, f"not JSON: {text[:80]!r}", []
    if not isinstance(data, dict):
        return None, "malformed", f"not an object: {type(data).__name__}", []
    try:
        answer = answer_type.model_validate(data)
    except ValidationError as exc:
        kind = _schema_kind(exc.errors())
        first = exc.errors()[0]
        return None, kind, f"{'.'.join(map(str, first['loc']))}: {first['msg']}", []
    clamped: list[str] = []
    if callable(getattr(answer, "clamped", None)):
        answer, clamped = answer.clamped()
    return answer, None, "", clamped


def _schema_kind(errors: list) -> str:
    """The fallback kind of an object that failed validation with these pydantic errors (an
    option given as a number or a list is a wrong type, an unknown word is out of range)."""
    error_types = {e["type"] for e in errors}
    if any(e["type"] == "literal_error" and not isinstance(e.get("input"), str) for e in errors):
        error_types.add("wrong_type")
    if "missing" in error_types:
        return "missing_field"
    if "extra_forbidden" in error_types:
        return "extra_field"
    if error_types <= RANGE_ERRORS:
        return "out_of_range"
    return "wrong_type"


def read_answer(result: CreateResult, answer_type: type[Answer]) -> tuple[Answer | None, str | None, str, list[str]]:
    """:func:`parse_answer` of a model's result (its text, or its tool call's arguments); an
    answer that does not parse because it stopped at ``max_tokens`` is ``cut``."""
    text = answer_text(result)
    answer, kind, detail, clamped = parse_answer(text, answer_type)
    if answer is None and result.finish_reason == "length":
        kind, detail = "cut", f"answer stopped at max_tokens after {len(text)} characters"
    return answer, kind, detail, clamped

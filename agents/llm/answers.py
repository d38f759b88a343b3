"""Reading a model's answer: the answer format told in the system message, and the parse of
what came back into a pydantic model, with the kind of failure when it cannot be used
(``empty``, ``malformed``, ``out_of_range``, ``refused``). Shared by the humans' intents and
the supervisor's triage."""

from __future__ import annotations

import json
import re
from typing import TypeVar

from pydantic import BaseModel, ValidationError

Answer = TypeVar("Answer", bound=BaseModel)
REFUSAL = re.compile(r"\b(i can(no|')t|i am unable|i'm unable|sorry|as an ai)\b", re.IGNORECASE)
RANGE_ERRORS = {"literal_error", "enum", "greater_than", "greater_than_equal", "less_than", "less_than_equal",
                "value_error"}


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
        data = json.loads(text)
    except json.JSONDecodeError:
        match = re.search(r"\{.*\}", text, re.DOTALL)
        try:
            data = json.loads(match.group(0)) if match else None
        except json.JSONDecodeError:
            data = None
        if data is None:
            kind = "refused" if REFUSAL.search(text) else "malformed"
            return None, kind, f"not JSON: {text[:80]!r}", []
    if not isinstance(data, dict):
        return None, "malformed", f"not an object: {type(data).__name__}", []
    try:
        answer = answer_type.model_validate(data)
    except ValidationError as exc:
        kinds = {e["type"] for e in exc.errors()}
        kind = "out_of_range" if kinds <= RANGE_ERRORS else "malformed"
        first = exc.errors()[0]
        return None, kind, f"{'.'.join(map(str, first['loc']))}: {first['msg']}", []
    clamped: list[str] = []
    if callable(getattr(answer, "clamped", None)):
        answer, clamped = answer.clamped()
    return answer, None, "", clamped

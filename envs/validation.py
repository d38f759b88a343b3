"""Turning pydantic validation errors into one line per problem that names the field,
with a "did you mean" for unknown fields. Shared by every YAML-backed config."""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ValidationError


def field_problems(exc: ValidationError, root: type[BaseModel],
                   variants: dict[str, type[BaseModel]] | None = None) -> list[tuple[str, str]]:
    """``(dotted.field, message)`` per error of ``exc`` raised validating ``root``.

    ``variants`` maps the tags pydantic puts in the location of a discriminated union to
    their models (they are left out of the field path)."""
    variants = variants or {}
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"] if p not in variants or len(err["loc"]) == 1]
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
            hint = closest_field(root, err["loc"], variants)
            if hint:
                msg += f" (did you mean {hint!r}?)"
        out.append((".".join(loc) or "(top level)", msg))
    return out


def closest_field(root: type[BaseModel], loc: tuple, variants: dict[str, type[BaseModel]] | None = None) -> str | None:
    """The field name nearest to the unknown one at ``loc``, if any is close."""
    model: Any = root
    for part in loc[:-1]:
        if variants and part in variants:
            model = variants[part]
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return None
        model = field.annotation
    match = difflib.get_close_matches(str(loc[-1]), list(getattr(model, "model_fields", {})), n=1)
    return match[0] if match else None

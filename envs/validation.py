"""Reading YAML config files strictly, and turning pydantic validation errors into one
line per problem that names the field, with a "did you mean" for unknown fields. Shared
by every YAML-backed config (scenarios, personas, training configs, suites)."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError


class ConfigFileError(ValueError):
    """A config file that cannot be read as YAML; the message names the file and why."""


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader that refuses a key given twice in one mapping (the later one would silently win)."""


def _no_duplicates(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} appears twice (lines {seen[key]} and {key_node.start_mark.line + 1})",
                key_node.start_mark)
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def read_yaml(path: str | Path) -> Any:
    """The YAML document in ``path``; binary content, invalid YAML and duplicate keys raise
    :class:`ConfigFileError` naming the file."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigFileError(f"{path}: not a text file (binary content)") from None
    except OSError as exc:
        raise ConfigFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if "\x00" in text:
        raise ConfigFileError(f"{path}: not a text file (binary content)")
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        raise ConfigFileError(f"{path}: not valid YAML: {exc}") from None


def read_mapping(path: str | Path, what: str) -> dict:
    """The YAML mapping in ``path`` (a config of ``what``: scenario, training, suite, persona)."""
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigFileError(f"{path}: expected a mapping of {what} fields at the top level")
    return data


def describe_problems(exc: ValidationError, source: str, root: type[BaseModel], what: str,
                      variants: dict[str, type[BaseModel]] | None = None, overridden: list[str] | None = None) -> str:
    """The one error format of every config: ``source: invalid what (n problems)`` and a line
    per problem naming the field, with "did you mean" for unknown fields; a field set by an
    override (``--set``, a keyword argument) says so instead of blaming the file."""
    problems = field_problems(exc, root, variants)
    lines = [f"{source}: invalid {what} ({len(problems)} problem{'s' * (len(problems) > 1)})"]

    def origin(field: str) -> str:
        hit = any(field == key or field.startswith(key + ".") or key.startswith(field + ".") for key in overridden or ())
        return " [set by an override, not in the file]" if hit else ""

    return "\n".join(lines + [f"  - {field}: {msg}{origin(field)}" for field, msg in problems])


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

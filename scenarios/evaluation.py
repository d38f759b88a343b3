"""Scoring text to scenario on a labelled set of crash descriptions (``tests/data/crash_reports``).

For each report: the extraction's per-field agreement with the label, and whether the twin
reproduces the crash from the extracted spec and from the label itself (a perfect extractor,
which isolates building and reproduction from extraction). Bad inputs (not a crash,
contradictory, impossible, hostile) are checked for a refusal or a flagged partial scenario.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

from scenarios.extract import Extraction, Extractor
from scenarios.reproduce import reproduce
from scenarios.spec import CrashSpec

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "crash_reports"
SPEED_TOLERANCE_MPS = 0.5  # [m/s] a speed within this of the label's counts as right
FORM_FIELDS = ("crash.type", "crash.striking", "crash.struck", "road.junction", "road.control", "conditions.light",
               "conditions.weather", "conditions.surface", "actor.kind", "actor.manoeuvre")


def read_set(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(float(a), float(b), abs_tol=SPEED_TOLERANCE_MPS)
    return a == b


def field_agreement(spec: CrashSpec | None, label: CrashSpec) -> dict[str, list[bool]]:
    """Per field (actor fields pooled as ``actor.NAME``): does ``spec`` say what ``label`` says?
    Every field of the label counts, its defaults included; no spec gets every field wrong."""
    out: dict[str, list[bool]] = defaultdict(list)
    got = spec.model_dump() if spec else None
    want = label.model_dump()
    for section in ("road", "conditions"):
        for name, value in want[section].items():
            out[f"{section}.{name}"].append(got is not None and _same(got[section][name], value))
    for name, value in want["crash"].items():
        out[f"crash.{name}"].append(got is not None and _same(got["crash"][name], value))
    actors = {a["id"]: a for a in got["actors"]} if got else {}
    for actor in want["actors"]:
        mine = actors.get(actor["id"])
        for name, value in actor.items():
            if name != "id":
                out[f"actor.{name}"].append(mine is not None and _same(mine[name], value))
    out["sequence"].append(got is not None and got["sequence"] == want["sequence"])
    return dict(out)


def model_agreement(extraction: Extraction, label: CrashSpec) -> dict[str, list[bool]]:
    """The model's own choices (before the text's words overrule them) against the label."""
    answer = extraction.model_answer
    if not answer:
        return {}
    want = label.model_dump()
    out: dict[str, list[bool]] = defaultdict(list)
    for path in ("crash.type", "crash.striking", "crash.struck", "road.junction", "road.control", "conditions.light",
                 "conditions.weather", "conditions.surface"):
        section, name = path.split(".")
        out[path].append(answer.get(path) == want[section][name])
    for actor in want["actors"]:
        for name in ("kind", "manoeuvre"):
            out[f"actor.{name}"].append(answer.get(f"actors.{actor['id']}.{name}") == actor[name])
    return out


def evaluate(extractor: Extractor, data: Path = DATA, budget: int = 40, seed: int = 0,
             progress: Callable[[str], None] | None = None, reports_file: str = "reports.jsonl") -> dict[str, Any]:
    """Extraction accuracy per field, reproduction shares and the bad inputs' handling.
    ``reports_file``: ``reports.jsonl`` (the set the reader was developed on) or ``heldout.jsonl``
    (written afterwards without access to the reader: the fair measurement)."""
    reports = read_set(data / reports_file)
    fields: dict[str, list[bool]] = defaultdict(list)
    model_fields: dict[str, list[bool]] = defaultdict(list)
    rows = []
    for report in reports:
        label = CrashSpec.model_validate(report["label"])
        extraction = extractor.extract(report["text"])
        for key, value in field_agreement(extraction.spec, label).items():
            fields[key] += value
        for key, value in model_agreement(extraction, label).items():
            model_fields[key] += value
        from_label = reproduce(label, budget=budget, seed=seed)
        from_text = reproduce(extraction.spec, budget=budget, seed=seed) if extraction.spec else None
        rows.append({"id": report["id"], "type": label.crash.type, "refused": extraction.refused,
                     "reproduced_from_label": from_label.reproduced, "runs_from_label": from_label.runs,
                     "reproduced_from_text": bool(from_text and from_text.reproduced),
                     "runs_from_text": from_text.runs if from_text else 0,
                     "why_not": from_label.why_not})
        if progress:
            progress(f"{report['id']}: from label {'yes' if from_label.reproduced else 'no'} ({from_label.runs} runs), "
                     f"from text {'yes' if rows[-1]['reproduced_from_text'] else 'no'}")
    bad = []
    for case in read_set(data / "bad.jsonl"):
        extraction = extractor.extract(case["text"])
        if extraction.refused and extraction.spec is None:
            handled = "refuse"
        elif extraction.flagged:
            handled = "flag"
        else:
            handled = "accepted"
        followed = any(p.kind == "instructions" for p in extraction.problems)
        bad.append({"id": case["id"], "kind": case["kind"], "expect": case["expect"], "got": handled,
                    "ok": handled == case["expect"], "reason": extraction.refused or "; ".join(
                        p.message for p in extraction.problems)[:200], "instructions_cut": followed})
    share = lambda key: round(sum(r[key] for r in rows) / len(rows), 3)  # noqa: E731
    return {
        "reports_file": reports_file,
        "reports": len(rows),
        "fields": {k: round(sum(v) / len(v), 3) for k, v in sorted(fields.items())},
        "model_fields": {k: round(sum(v) / len(v), 3) for k, v in sorted(model_fields.items())},
        "reproduced_from_label": share("reproduced_from_label"),
        "reproduced_from_text": share("reproduced_from_text"),
        "refused": sum(1 for r in rows if r["refused"]),
        "rows": rows,
        "bad": bad,
        "bad_ok": sum(b["ok"] for b in bad),
        "model": dict(extractor.stats),
    }


def print_report(console: Any, result: dict[str, Any]) -> None:
    """The evaluation as tables: fields, reproduction per report, bad inputs."""
    from rich.table import Table

    table = Table(title=f"extraction on {result['reports']} reports: share of fields right")
    table.add_column("field")
    table.add_column("combined", justify="right")
    table.add_column("model alone", justify="right")
    for name, share in result["fields"].items():
        model = result["model_fields"].get(name)
        table.add_row(name, f"{share:.2f}", "" if model is None else f"{model:.2f}")
    console.print(table)
    console.print(f"crash reproduced: {result['reproduced_from_label']:.0%} of reports from the label (a perfect "
                  f"extraction), {result['reproduced_from_text']:.0%} from the extracted spec; "
                  f"{result['refused']} refused")
    bad = Table(title=f"bad inputs: {result['bad_ok']}/{len(result['bad'])} handled as expected")
    for column in ("id", "expected", "got", "reason"):
        bad.add_column(column)
    for case in result["bad"]:
        bad.add_row(case["id"], case["expect"], case["got"] if case["ok"] else f"[red]{case['got']}[/]", case["reason"][:90])
    console.print(bad)

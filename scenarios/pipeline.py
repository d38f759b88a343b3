"""``run.py scenario from-text`` and ``from-report``: words to a checked, runnable scenario.

Extract the spec (:mod:`scenarios.extract`), stage and reproduce the crash (:mod:`scenarios.build`,
:mod:`scenarios.reproduce`), write the scenario YAML of the best run, run it once through the twin
with its supervisor into a run directory (``run.py inspect`` shows it), and write the family of
variants (faster, wetter, more distracted) as scenarios of their own, each run once to say whether
it still crashes. The result is the JSON the issue asks for, so a batch can be scored by a script.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn

from scenarios.build import FRICTION, build, knobs, nominal, unsupported
from scenarios.extract import Extraction, Extractor
from scenarios.reproduce import Reproduction, reproduce, run
from scenarios.spec import CrashSpec

WETTER = {"dry": "wet", "wet": "snow", "snow": "ice", "ice": "ice"}
VARIANT_SPEED_FACTOR = 1.15  # "faster": the moving road users 15% faster


def from_text(text: str, extractor: Extractor, out: Path, budget: int = 60, seed: int = 0,
              console: Console | None = None, name: str = "crash", realism: bool = True) -> dict[str, Any]:
    """Everything ``scenario from-text`` does; returns the result (also written to ``out/result.json``).
    ``realism``: also score the staged lead-up against ordinary traffic on the same road."""
    console = console or Console(stderr=True)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with console.status("reading the description"):
        extraction = extractor.extract(text)
    result: dict[str, Any] = {**extraction.to_dict(), "crash": None, "reproduced": False,
                              "facts": {"reproduced": [], "not_reproduced": []}, "runs": 0, "scenario": None,
                              "run_dir": None, "variants": []}
    if extraction.spec is None:
        _write(out, result)
        return result
    spec = extraction.spec
    result["crash"] = {"type": spec.crash.type, "striking": spec.crash.striking, "struck": spec.crash.struck}
    reproduction = _reproduce(spec, budget, seed, console)
    result.update(reproduced=reproduction.reproduced, facts=reproduction.facts(spec), runs=reproduction.runs,
                  why_not=reproduction.why_not,
                  parameters=reproduction.best.values if reproduction.best else nominal(knobs(spec)) if not
                  unsupported(spec) else {})
    scenario, notes = build(spec, result["parameters"], name=name, seed=seed, description=extraction.text)
    result["build_notes"] = notes
    path = out / f"{name}.yaml"
    path.write_text(_yaml(scenario, extraction, reproduction))
    result["scenario"] = str(path)
    run_dir = out / "run"
    from twin.run import simulate

    summary = simulate(path, out=run_dir, humans="off", console=Console(stderr=True, quiet=True))
    result["run_dir"] = str(run_dir)
    result["run"] = {"collisions": summary["collisions"], "hazards": summary.get("hazards")}
    if realism and not reproduction.why_not:
        result["realism"] = _realism(spec, scenario, run_dir, reproduction, out, console)
    if reproduction.reproduced:
        result["variants"] = _variants(spec, result["parameters"], out, name, seed)
        result["suite"] = str(_suite(out, path, result["variants"], seed))
    _write(out, result)
    return result


def _realism(spec: CrashSpec, scenario: dict[str, Any], run_dir: Path, reproduction: Reproduction, out: Path,
             console: Console) -> dict[str, Any]:
    """The staged lead-up scored against the same road with ordinary traffic (its default demand,
    no placed actors, no faults, two minutes), and the searched parameters checked against what
    people do (:func:`implausible_parameters`). Only the parameters flag: a lead-up to a crash is
    unlike ordinary traffic by construction (a stopped car, a driver not reacting), so its score
    compares variants and staged crashes with each other rather than passing or failing one."""
    from realism.report import lead_up
    from twin.run import simulate

    ordinary = {key: value for key, value in scenario.items() if key not in ("actors", "faults", "demand", "ego")}
    ordinary.update(name=f"{scenario['name']}_ordinary", duration_s=120.0, ego={"controlled": 0})
    path = out / "reference.yaml"
    path.write_text(yaml.safe_dump(ordinary, sort_keys=False))
    with console.status("simulating ordinary traffic on the same road (the realism reference)"):
        simulate(path, out=out / "reference", humans="off", console=Console(stderr=True, quiet=True))
    crash_time = reproduction.best.time_s if reproduction.best else None
    flags = implausible_parameters(reproduction.best.values if reproduction.best else {}, scenario, spec)
    try:
        report = lead_up(run_dir, out / "reference", crash_time)
    except ValueError as exc:  # e.g. a crash at once: no lead-up to score
        return {"flagged": bool(flags), "flags": flags, "score": None, "skipped": str(exc)}
    return {"flagged": bool(flags), "flags": flags, "score": round(report.score, 4), "baseline": round(report.baseline.score, 4),
            "floor": round(report.floor.score, 4), "relative": None if report.relative is None else
            round(report.relative, 4), "reference": str(out / "reference"),
            "components": {c.name: round(c.value, 4) for c in report.components if c.weight > 0}}


LONG_GLANCE_S = 3.0  # [s] eyes off the road longer than this is rare (glances over 2 s already double crash risk)
HARD_BRAKE_MPS2 = 7.0  # [m/s^2] harder than drivers brake on dry asphalt without an emergency ahead
UNSTATED_SPEEDING = 1.3  # an unstated speed above this times the limit is an assumption worth a flag


def implausible_parameters(values: dict[str, float], scenario: dict[str, Any], spec: CrashSpec) -> list[str]:
    """What in a staged crash's searched parameters few people would do (a speed the report
    states is a fact, never flagged)."""
    flags = []
    if values.get("glance_s", 0.0) > LONG_GLANCE_S:
        flags.append(f"the striking driver looks away for {values['glance_s']:.1f} s (over {LONG_GLANCE_S:.0f} s is rare)")
    if values.get("struck_decel", 0.0) > HARD_BRAKE_MPS2:
        flags.append(f"the struck vehicle brakes at {values['struck_decel']:.1f} m/s^2 with nothing ahead of it")
    limit = scenario.get("network", {}).get("speed_limit_mps")
    stated = {a.id for a in spec.actors if a.speed_mps is not None}
    for actor in scenario.get("actors", []):
        if limit and actor.get("kind") == "vehicle" and actor.get("name") not in stated \
                and actor.get("speed_mps", 0.0) > UNSTATED_SPEEDING * limit:
            flags.append(f"{actor['name']} at {actor['speed_mps']:.1f} m/s on a {limit:.1f} m/s road")
    return flags


def _reproduce(spec: CrashSpec, budget: int, seed: int, console: Console) -> Reproduction:
    with Progress(TextColumn("staging the crash"), BarColumn(), TextColumn("{task.completed}/{task.total} runs"),
                  TextColumn("{task.description}"), console=console, transient=True) as bar:
        task = bar.add_task("", total=budget)

        def progress(runs: int, outcome: Any) -> None:
            bar.update(task, completed=runs, description=f"best so far: {len(outcome.reproduced)}/5 facts")

        def plausible(values: dict[str, float]) -> bool:
            return not implausible_parameters(values, build(spec, values)[0], spec)

        return reproduce(spec, budget=budget, seed=seed, progress=progress, plausible=plausible)


def _variants(spec: CrashSpec, values: dict[str, float], out: Path, name: str, seed: int) -> list[dict[str, Any]]:
    """The reproduced crash's family: faster, wetter, more distracted; each run once."""
    family = []
    faster = {k: v * VARIANT_SPEED_FACTOR if k.endswith("_speed") else v for k, v in values.items()}
    wetter = spec.model_copy(update={"conditions": spec.conditions.model_copy(
        update={"surface": WETTER[spec.conditions.surface]})})
    distracted = {**values}
    if "glance_s" in values:
        distracted["glance_s"] = values["glance_s"] + 1.0  # a second longer than the reproduction's
    for label, variant_spec, variant_values in (("faster", spec, faster), ("wetter", wetter, values),
                                                ("more_distracted", spec, distracted)):
        if label == "more_distracted" and "glance_s" not in values:
            continue
        scenario, _ = build(variant_spec, variant_values, name=f"{name}_{label}", seed=seed,
                            description=f"the staged crash {label.replace('_', ' ')}")
        path = out / "variants" / f"{label}.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(yaml.safe_dump(scenario, sort_keys=False))
        outcome = run(variant_spec, variant_values, seed=seed)
        family.append({"variant": label, "scenario": str(path), "crash": outcome.collided,
                       "same_crash": outcome.complete, "friction": FRICTION[variant_spec.conditions.surface]})
    return family


def _suite(out: Path, crash: Path, variants: list[dict[str, Any]], seed: int) -> Path:
    """The crash and its variants as a supervisor suite (``run.py evaluate supervisor --suite``);
    each case repeats its scenario's faults, as a suite case's faults replace the scenario's."""
    cases = []
    for label, path in [("crash", crash)] + [(v["variant"], Path(v["scenario"])) for v in variants]:
        scenario = yaml.safe_load(path.read_text())
        cases.append({"name": label, "description": scenario.get("description", "")[:120],
                      "scenario": str(path.resolve()), "faults": scenario.get("faults", [])})
    suite = {"seeds": [seed], "duration_s": float(yaml.safe_load(crash.read_text())["duration_s"]), "cases": cases}
    path = out / "suite.yaml"
    path.write_text("# The staged crash and its variants as a supervisor suite: python run.py evaluate supervisor "
                    f"--suite {path}\n" + yaml.safe_dump(suite, sort_keys=False))
    return path


def _yaml(scenario: dict[str, Any], extraction: Extraction, reproduction: Reproduction) -> str:
    head = ["# Staged from a crash description by `run.py scenario` (scenarios/pipeline.py).",
            f"# reproduced: {reproduction.reproduced} after {reproduction.runs} runs"]
    if reproduction.why_not:
        head.append(f"# not staged: {reproduction.why_not}")
    for problem in extraction.problems:
        head.append(f"# flagged ({problem.kind}): {problem.message}")
    return "\n".join(head) + "\n" + yaml.safe_dump(scenario, sort_keys=False)


def _write(out: Path, result: dict[str, Any]) -> None:
    (out / "result.json").write_text(json.dumps(result, indent=2, default=str) + "\n")


def exit_code(result: dict[str, Any]) -> int:
    """0 reproduced; 1 built but not reproduced; 2 refused (no scenario could be made)."""
    if result.get("spec") is None:
        return 2
    return 0 if result["reproduced"] else 1

"""``run.py realism``: how real a run, a log or a scenario looks, by statistics and by a language model.

The target and the reference are each a run directory, a trajectory log or a scenario (a YAML
file or a shipped name, simulated first with rule-based humans into a run directory beside the
result). The statistical score (:mod:`realism.statistics`) needs the reference; the language
model's judgement (:mod:`realism.judge`) needs only the target's trace and a model.

A target is *flagged* when its score lies in the lower half between the random floor and the
real-vs-real baseline (``relative`` < ``FLAG_RELATIVE``), for each component that scores under half its
real-vs-real value (speeds x1.5 leave the meta score near the baseline, as speed weighs 0.1, but
not the speed component), or when the judge finds it unrealistic in
most answers with a stable judgement; a judgement whose model mostly failed flags nothing and
says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from realism.statistics import RealismReport, assess, table
from realism.trajectories import Trajectories, load

FLAG_RELATIVE = 0.5  # a score below floor + this x (baseline - floor) is flagged
FLAG_COMPONENT = 0.5  # ... and so is a component scoring under this share of its real-vs-real value
FLAG_REALISTIC_SHARE = 0.5  # a stable judgement calling fewer originals realistic than this is flagged


def materialise(target: str | Path, work: Path, minutes: float, seed: int, console: Console) -> Path:
    """A run directory or log file for ``target``: as given, or a scenario simulated into ``work``."""
    path = Path(target)
    if path.is_dir() or (path.is_file() and path.suffix not in (".yaml", ".yml")):
        return path
    work.mkdir(parents=True, exist_ok=True)
    from twin.run import simulate

    run_dir = work / f"seed{seed}"
    with console.status(f"simulating {target} for {minutes:g} min (seed {seed}) into {run_dir}"):
        simulate(str(target), minutes=minutes, overrides={"seed": seed}, out=run_dir, humans="rule",
                 console=Console(quiet=True))
    return run_dir


def _same_scenario(a: str | Path, b: str | Path) -> bool:
    """Whether two targets name one scenario (a shipped name or its file, or one file twice)."""
    from envs.scenario import ScenarioError, resolve_scenario_path

    try:
        return resolve_scenario_path(a).resolve() == resolve_scenario_path(b).resolve()
    except ScenarioError:
        return False


def realism(target: str | Path, reference: str | Path | None, out: Path, model_client: Any = None,
            minutes: float = 2.0, seed: int = 0, scenes: int = 3, repeats: int = 5, perturbations: int = 3,
            console: Console | None = None, timeout_s: float = 30.0, structured_output: str = "native"
            ) -> dict[str, Any]:
    """The statistical score against ``reference`` (if given) and the model's judgement (if a
    client is given, asked the ``structured_output`` way within ``timeout_s`` [s]) of ``target``,
    with what is flagged. Scenarios are simulated into ``out/target`` and ``out/reference``; one
    scenario as both runs with seeds ``seed`` and ``seed + 1``."""
    console = console or Console(stderr=True)
    out.mkdir(parents=True, exist_ok=True)
    target_path = materialise(target, out / "target", minutes, seed, console)
    result: dict[str, Any] = {"target": str(target_path), "flags": []}
    if reference is not None:
        same = _same_scenario(target, reference) if not Path(reference).is_dir() else False
        reference_path = materialise(reference, out / "reference", minutes, seed + 1 if same else seed, console)
        report = assess(load(target_path), load(reference_path))
        result["reference"] = str(reference_path)
        result["statistics"] = report.to_dict()
        console.print(table(report))
        result["flags"] += statistical_flags(report)
    if model_client is not None:
        if not (Path(target_path) / "trace.jsonl.gz").exists():
            result["judge"] = {"verdict": "no judgement: the target has no run trace (a log); simulate it first"}
        else:
            from realism.judge import RealismJudge, scenes_from_run

            judge = RealismJudge(model_client, repeats=repeats, perturbations=perturbations, timeout_s=timeout_s,
                                 structured_output=structured_output)
            with console.status(f"asking the model about {scenes} scenes ({repeats} asks each, "
                                f"{perturbations} perturbed copies)"):
                judgement = judge.judge(scenes_from_run(target_path, count=scenes))
            result["judge"] = judgement.to_dict()
            console.print(f"language model: {judgement.verdict}")
            share = judgement.realistic_share_original
            if judgement.stable and share is not None and share < FLAG_REALISTIC_SHARE \
                    and judgement.failure_share < 0.5:
                result["flags"].append(f"language model: {judgement.verdict}")
    for flag in result["flags"]:
        console.print(f"[yellow]flagged:[/] {flag}")
    return result


def before(traj: Trajectories, until_s: float) -> Trajectories:
    """``traj`` up to ``until_s`` [s] (exclusive), its events left unobserved: the kinematics
    of a staged crash's lead-up, which the crash itself would dominate."""
    keep = traj.t < until_s
    kept = np.unique(traj.vehicle[keep])
    index = {int(v): k for k, v in enumerate(kept)}
    return Trajectories(source=traj.source, kind=traj.kind + "+before", ids=[traj.ids[int(v)] for v in kept],
                        vehicle=np.array([index[int(v)] for v in traj.vehicle[keep]], dtype=np.int64),
                        t=traj.t[keep], x=traj.x[keep], y=traj.y[keep], speed=traj.speed[keep],
                        heading=traj.heading[keep], accel=traj.accel[keep], lane=traj.lane[keep],
                        length=traj.length[kept], width=traj.width[kept], events=None,
                        duration_s=float(min(traj.duration_s, until_s)), notes=[*traj.notes, f"cut at {until_s:.2f} s"])


def lead_up(run_dir: Path, reference_dir: Path, crash_time_s: float | None) -> RealismReport:
    """The statistical realism of a staged crash's lead-up (before ``crash_time_s``) against a
    reference run of ordinary traffic."""
    run = load(run_dir)
    return assess(before(run, crash_time_s) if crash_time_s is not None else run, load(reference_dir))


def statistical_flags(report: RealismReport) -> list[str]:
    """What in a statistical report is unlike the reference (see the module docstring)."""
    flags = []
    if report.relative is not None and report.relative < FLAG_RELATIVE:
        flags.append(f"statistics: score {report.score:.3f} lies {report.relative:.0%} of the way from the random "
                     f"floor ({report.floor.score:.3f}) to real-vs-real ({report.baseline.score:.3f})")
    baseline = {c.name: c.value for c in report.baseline.components}
    for c in report.components:
        real = baseline.get(c.name)
        if c.weight > 0 and c.value is not None and real is not None and c.value < FLAG_COMPONENT * real:
            flags.append(f"statistics: {c.name} scores {c.value:.2f} (real-vs-real {real:.2f}; run median "
                         f"{c.run_statistic if c.run_statistic is None else round(c.run_statistic, 2)} vs reference "
                         f"{c.reference_statistic if c.reference_statistic is None else round(c.reference_statistic, 2)}"
                         f" {c.unit})")
    return flags

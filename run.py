#!/usr/bin/env python3
"""The one command of the traffic twin.

    python run.py simulate configs/scenarios/intersection.yaml --minutes 5
    python run.py train ppo_highway
    python run.py evaluate supervisor
    python run.py inspect runs/<run>
    python run.py bench twin
    python run.py network inspect my.net.xml
"""

from __future__ import annotations

import argparse
import logging
import math
import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml

EXAMPLES = {
    "shadow": "examples:\n"
              "  python run.py simulate intersection --minutes 3 --humans rule --fcd run.fcd.xml\n"
              "  python run.py shadow run.fcd.xml --net intersection --json shadow.json\n"
              "  sumo -c A10KW.sumocfg --fcd-output a10.fcd.xml --end 300 --time-to-teleport -1\n"
              "  python run.py shadow a10.fcd.xml --net A10KW.sumocfg --period 2\n"
              "  python run.py shadow --sumo cross.sumocfg --minutes 4   # the closed loop with SUMO",
    "simulate": "examples:\n  python run.py simulate configs/scenarios/intersection.yaml --minutes 5 --set demand.pedestrians_per_hour=600\n"
                "  python run.py simulate intersection --minutes 2 --out runs/a\n"
                "  python run.py simulate --replay runs/a --out runs/a-replay   # zero model calls, same trace\n"
                "  python run.py simulate my.sumocfg --minutes 10 --humans rule    # a SUMO configuration (pip install -e '.[sumo]')\n"
                "  python run.py simulate sumo_highway --minutes 5                  # a scenario on a SUMO network",
    "train": "examples:\n  python run.py train ppo_highway                      # configs/training/ppo_highway.yaml\n"
             "  python run.py train ppo_highway --resume             # continue after an interruption\n"
             "  python run.py train dqn_highway --set timesteps=20000 --out runs/train/dqn-short\n"
             "  tensorboard --logdir runs/train",
    "evaluate": "examples:\n  python run.py evaluate supervisor                 # the shipped labelled suite\n"
                "  python run.py evaluate policy runs/train/ppo_highway --episodes 20\n"
                "  python run.py evaluate policy runs/train/ppo_highway --set vehicles=60 --humans llm --episodes 3\n"
                "  python run.py evaluate supervisor --quick --json supervisor.json\n"
                "  python run.py evaluate supervisor --suite my_suite.yaml --seeds 0 1",
    "inspect": "examples:\n  python run.py inspect runs/a                          # a recorded run in the browser\n"
               "  python run.py inspect intersection --live             # step, interview and fork from the page\n"
               "  python run.py inspect intersection --live --set humans.model.backend=openai --port 8765\n"
               "  python run.py inspect runs/a --export runs/a/replay.gif --speed 8",
    "distill": "examples:\n  python run.py distill runs/a runs/b --out surrogate.pkl\n"
               "  python run.py simulate intersection --set humans.surrogate.path=surrogate.pkl",
    "network": "examples:\n  python run.py network inspect \"$(python -c 'from envs.roads.sumo import shipped_scenarios as s; "
               "print(s())')/A10KW.sumocfg\"\n"
               "  python run.py network inspect my.net.xml --json network.json --png network.png\n"
               "  python run.py network import map.osm --out map.net.xml      # OpenStreetMap, via netconvert\n"
               "  python run.py network import road.xodr --out road.net.xml   # OpenDRIVE",
    "scenario": "examples:\n"
                "  python run.py scenario from-text \"V1 was traveling north at 40 mph and struck the rear of V2, which was "
                "stopped.\" --out runs/crash1\n"
                "  python run.py scenario from-report report.txt --out runs/crash2 --json crash2.json\n"
                "  python run.py scenario from-report report.txt --llm openai --base-url http://localhost:8000/v1 "
                "--model-name my-model\n"
                "  python run.py scenario from-report report.txt --llm off     # the deterministic reader alone\n"
                "  python run.py evaluate crashes --json crashes.json       # the labelled set in tests/data/crash_reports",
    "realism": "examples:\n"
               "  python run.py realism runs/a --reference runs/b                 # two run directories\n"
               "  python run.py realism highway --reference highway --minutes 2   # a scenario against another seed\n"
               "  python run.py realism runs/a --reference a10.fcd.xml            # against a SUMO run or an observed log\n"
               "  python run.py realism runs/crash1/run --llm embedded            # the language model's judgement",
    "bench": "examples:\n  python run.py bench twin --seconds 20 --vector 2\n"
             "  python run.py bench humans --minutes 3 --separation-minutes 10 --json humans.json\n"
             "  python run.py bench humans --minutes 0 --separation-minutes 0 --throughput-minutes 2\n"
             "  python run.py bench memory --sizes 10000 100000\n"
             "  python run.py bench supervisor --minutes 5\n"
             "  python run.py bench rl --minutes 10 --threshold 0.9\n"
             "  python run.py bench sumo --minutes 10 --json sumo.json      # SUMO and the twin on SUMO's shipped scenarios\n"
             "  python run.py bench sweep --json sweep.json    # runs per minute: local processes and Ray, 1 and 2 workers",
}


def _minutes(text: str) -> float:
    """``--minutes``: a positive, finite number of simulated minutes."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of minutes, not {text}")
    return value


def _shipped(folder: str) -> str:
    """The names of the shipped configs in ``configs/<folder>/``."""
    return ", ".join(sorted(p.stem for p in (Path(__file__).resolve().parent / "configs" / folder).glob("*.yaml")))


def _count(least: int) -> Any:
    """An argparse type: a whole number of at least ``least``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"{value} is less than {least}")
        return value
    return parse


def _model_options(parser: argparse.ArgumentParser, prefix: str, default: str = "embedded") -> None:
    """``--llm`` and its server options (the model that reads descriptions, or judges scenes)."""
    parser.add_argument("--llm", choices=["embedded", "openai", "off"], default=default,
                        help=prefix + f"the model asked: embedded SmolLM2-135M, an OpenAI-compatible server, or off "
                                      f"(the deterministic reader alone; no judgement) (default {default})")
    parser.add_argument("--base-url", default=None, help=prefix + "--llm openai: the server (e.g. http://localhost:8000/v1)")
    parser.add_argument("--model-name", default=None, help=prefix + "--llm openai: the model name")
    parser.add_argument("--structured-output", default="auto",
                        choices=["auto", "json_schema", "json_object", "grammar", "tool", "prompt"],
                        help=prefix + "--llm openai: how the server is asked for JSON (auto: probe)")
    parser.add_argument("--timeout", type=float, default=120.0, help=prefix + "seconds a model answer may take")


def _parse_sets(items: list[str]) -> dict:
    """``key=value`` overrides; values are parsed as YAML (numbers, booleans, lists)."""
    out = {}
    for item in items:
        if "=" not in item:
            raise SystemExit(f"error: --set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)
    return out


def _positive_seconds(text: str) -> float:
    """A positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text!r}: must be a positive number of seconds")
    return value


def cmd_simulate(args: argparse.Namespace) -> int:
    from twin.run import simulate

    overrides = _parse_sets(args.set)
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.scenario is None and args.replay is None:
        raise SystemExit("error: simulate needs a SCENARIO (or --replay RUN_DIR)")
    from rich.console import Console

    to_stdout = args.json is not None and str(args.json) == "-"  # then the table goes to stderr
    observers = []
    if args.fcd is not None or args.trajectories is not None:
        from shadow.recorder import TrajectoryRecorder

        observers.append(TrajectoryRecorder(fcd=args.fcd, csv=args.trajectories, period_s=args.trajectory_period))
    try:
        summary = simulate(args.scenario, minutes=args.minutes, overrides=overrides, out=args.out, gif=args.gif,
                           replay=args.replay, humans=args.humans, console=Console(stderr=to_stdout),
                           observers=observers)
    finally:  # an interrupted run keeps the trajectories written so far, as well-formed files
        for observer in observers:
            observer.close()
    if args.json is not None:
        text = json.dumps(summary, indent=2)
        print(text) if to_stdout else args.json.write_text(text + "\n")
    if summary.get("replay_identical") is False:
        print("replay: the trace differs from the recorded one", file=sys.stderr)
        return 1
    if summary.get("model_failed") and not args.allow_fallbacks:
        Console(stderr=True).print(f"[bold red]error: the model failed {summary['model_failures']} of its "
                               f"{summary['model_requests']} requests ({100 * summary['model_failure_share']:.0f}%, "
                               f"more than humans.model.max_failure_share); by kind: "
                               f"{summary.get('fallbacks_by_kind', {})} {summary.get('triage_fallbacks_by_kind', {})}"
                               " (see decisions.jsonl; --allow-fallbacks accepts the run)[/]")
        return 3
    if summary["faults_never_started"]:  # an actor id that never existed, a rule that matched nobody
        print(f"error: faults that never found an actor to act on: {', '.join(summary['faults_never_started'])}",
              file=sys.stderr)
        return 2
    return 0 if summary["collisions"] == 0 or args.allow_collisions else 1


def cmd_analyze(args: argparse.Namespace) -> int:
    from shadow.analysis import analyze

    analyze(args.run_dir, args.out)
    return 0


def cmd_shadow(args: argparse.Namespace) -> int:
    from shadow.follow import follow_log, parse_horizons

    if args.sumo is not None:
        from shadow.follow import closed_loop

        closed_loop(args.sumo, minutes=args.minutes, fault_at_s=args.fault_at, json_path=args.json)
        return 0
    if args.log is None or args.net is None:
        raise SystemExit("error: shadow needs a LOG and --net NET (or --sumo CONFIG.sumocfg for the closed loop)")

    try:
        horizons = parse_horizons(args.horizons)
    except ValueError as exc:
        raise SystemExit(f"error: --horizons {args.horizons!r}: {exc}") from None
    follow_log(args.log, args.net, period_s=args.period, horizons=horizons, start_s=args.start, end_s=args.end,
               learn=not args.no_learn, frame_rate_hz=args.frame_rate, json_path=args.json, out=args.out)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from agents.controllers.training import load_training, train

    config = load_training(args.config, _parse_sets(args.set))
    summary = train(config, out=args.out, resume=args.resume, progress=not args.no_progress)
    print(json.dumps(summary, indent=2))
    return 0


def cmd_distill(args: argparse.Namespace) -> int:
    from agents.humans.surrogate import distill

    try:
        report = distill(args.runs, args.out, holdout=args.holdout, seed=args.seed)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    if args.target == "causes":
        from rich.console import Console

        from causes.evaluation import evaluate_causes

        result = evaluate_causes(args.suite, seeds=args.seeds, progress=Console(stderr=True).print, futures=10)
        print(f"explain on the suite's fault cases and decoys: {result['collisions']} collisions, "
              f"{result['caused_by_fault']} caused by a fault; recall {result['recall']}, precision {result['precision']}; "
              f"a named fault prevents the collision in {result['mean_prevented_share']:.0%} of 10 futures on average")
        if args.json is not None:
            args.json.write_text(json.dumps(result, indent=2) + "\n")
        return 0
    if args.target == "crashes":
        from rich.console import Console

        from scenarios.evaluation import evaluate as evaluate_crashes, print_report

        console = Console(stderr=True)
        result = evaluate_crashes(_extractor(args), budget=args.budget, progress=console.print,
                                  reports_file=args.reports, seed=0 if args.seed == 1000 else args.seed)
        print_report(console, result)
        if args.json is not None:
            args.json.write_text(json.dumps(result, indent=2) + "\n")
        if args.print_json:
            print(json.dumps(result, indent=2))
        return 0
    if args.target == "policy":
        from agents.controllers.policy_eval import evaluate_policy

        if args.checkpoint is None:
            raise SystemExit("error: evaluate policy needs a CHECKPOINT (a training run directory or model .zip)")
        out = Path(args.checkpoint)
        out = out if out.is_dir() else out.parent
        from compute import ComputeError

        try:
            result = evaluate_policy(args.checkpoint, episodes=args.episodes, seed=args.seed,
                                     env_kwargs=_parse_sets(args.set), humans=args.humans,
                                     json_path=args.json or out / "evaluation.json",
                                     png_path=args.png or out / "evaluation.png", workers=args.workers or 1, ray=args.ray)
        except (ComputeError, ValueError) as exc:  # (a TrainingError is a ValueError too)
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"wrote {args.json or out / 'evaluation.json'} and {args.png or out / 'evaluation.png'}")
        if args.print_json:
            print(json.dumps({k: v for k, v in result.items() if k != "episodes"}, indent=2))
        return 0
    from agents.supervisor.suite import SUITE_PATH, evaluate
    from compute import ComputeError

    try:
        result = evaluate(args.suite or SUITE_PATH, seeds=args.seeds, workers=args.workers, json_path=args.json,
                          quick=args.quick, ray=args.ray)
    except ComputeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.print_json:
        print(json.dumps(result, indent=2))
    return 0


def _model_client(args: argparse.Namespace, answer_type: Any) -> tuple[Any, str]:
    """The client ``--llm`` names and how to ask it for ``answer_type`` answers (a server is
    probed with that type when ``--structured-output`` is auto)."""
    from agents.llm.backend import build_model_client
    from agents.llm.config import ModelConfig

    config = ModelConfig(backend=args.llm, base_url=args.base_url, model=args.model_name or "SmolLM2-135M-Instruct",
                         structured_output=args.structured_output, temperature=0.0, timeout_s=args.timeout)
    client = build_model_client(config, seed=args.seed)
    mode = config.request_mode
    if args.llm == "openai" and args.structured_output == "auto":
        from agents.llm.probe import probe_server
        from agents.llm.runner import ModelRunner

        mode = ModelRunner(client).run(probe_server(client, answer_type, "auto", 1, args.base_url, args.timeout,
                                                    256)).structured_output
    return client, mode


def _extractor(args: argparse.Namespace) -> Any:
    """The crash-description reader with the model ``--llm`` names (off: the deterministic reader alone)."""
    from scenarios.extract import Extractor, model_form

    if args.llm == "off":
        return Extractor(None)
    client, mode = _model_client(args, model_form(["V1", "V2"]))
    return Extractor(client, timeout_s=args.timeout, structured_output=mode)


def cmd_scenario(args: argparse.Namespace) -> int:
    from rich.console import Console

    from scenarios.pipeline import exit_code, from_text

    if args.source == "from-report":
        path = Path(args.input)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such report file")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            print(f"error: {path}: not a text file (not UTF-8)", file=sys.stderr)
            return 2
    else:
        text = args.input
    out = args.out or Path("runs") / f"crash-{time.strftime('%Y%m%d-%H%M%S')}"
    console = Console(stderr=True)
    result = from_text(text, _extractor(args), out, budget=args.budget, seed=args.seed, console=console)
    _print_crash(console, result)
    if args.json is not None:
        text_out = json.dumps({k: result.get(k) for k in ("spec", "evidence", "crash", "reproduced", "facts", "runs",
                                                            "refused", "problems", "disagreements", "realism",
                                                            "scenario", "run_dir", "variants")},
                              indent=2, default=str)
        print(text_out) if str(args.json) == "-" else args.json.write_text(text_out + "\n")
    return exit_code(result)


def _print_crash(console: Any, result: dict) -> None:
    from rich.table import Table

    if result.get("refused") and result.get("spec") is None:
        console.print(f"[bold red]refused:[/] {result['refused']}")
    for problem in result.get("problems", []):
        console.print(f"[yellow]flagged ({problem['kind']}):[/] {problem['message']}"
                      + (f"  [dim]\"{problem['quote'][:80]}\"[/]" if problem.get("quote") else ""))
    if result.get("disagreements"):
        console.print(f"the model chose otherwise than the text on {len(result['disagreements'])} fields; the text's "
                      "words were used (result.json lists them)")
    if result.get("spec") is None:
        return
    table = Table(title=f"{result['crash']['type']}: {result['crash']['striking']} strikes {result['crash']['struck']}"
                        f" - {'reproduced' if result['reproduced'] else 'NOT reproduced'} after {result['runs']} runs")
    table.add_column("fact")
    table.add_column("twin")
    for fact in result["facts"]["reproduced"]:
        table.add_row(fact, "[green]yes[/]")
    for fact in result["facts"]["not_reproduced"]:
        table.add_row(fact, "[red]no[/]")
    console.print(table)
    if result.get("why_not"):
        console.print(f"[red]not staged:[/] {result['why_not']}")
    realism = result.get("realism")
    if realism:
        for flag in realism["flags"]:
            console.print(f"[yellow]flagged (realism):[/] {flag}")
        if realism.get("score") is not None:
            console.print(f"lead-up realism against ordinary traffic on this road: {realism['score']:.3f} (real-vs-real "
                          f"{realism['baseline']:.3f}, random {realism['floor']:.3f})")
    for variant in result.get("variants", []):
        console.print(f"variant {variant['variant']}: {'crash' if variant['crash'] else 'no crash'} ({variant['scenario']})")
    if result.get("scenario"):
        console.print(f"scenario {result['scenario']}; run directory {result['run_dir']} (python run.py inspect "
                      f"{result['run_dir']})")


def cmd_explain(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from agents.llm.backend import BackendError
    from causes.counterfactual import ExplainError, explain, read_causes, write_causes

    try:
        result = explain(args.run_dir, incident=args.incident, before_s=args.before, horizon_s=args.horizon,
                         futures=args.futures, replay_only=args.replay_only, hazards=args.hazards)
    except (ExplainError, BackendError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:  # kept beside the run: the inspector's "Why?" shows these without forking again
        write_causes(args.run_dir, {**read_causes(args.run_dir), **{i["id"]: i for i in result["incidents"]}})
    except OSError as exc:
        print(f"warning: could not write {args.run_dir / 'causes.json'}: {exc}", file=sys.stderr)
    console = Console()
    if not result["incidents"]:
        console.print("no collision in this run")
    for incident in result["incidents"]:
        robust = f"; it happens in {incident['happens_in']} futures" if "happens_in" in incident else ""
        table = Table(title=f"{incident['kind']} {incident['id']} at {incident['time_s']:.2f} s between "
                            f"{' and '.join(map(str, incident['actors']))} (forks from {incident['fork_at_s']:.2f} s"
                            f"{robust})")
        for column in ("cause", "what", "class", "prevented", f"{incident['kind']} in the fork"):
            table.add_column(column)
        for cause in incident["causes"]:
            when = cause["evidence_runs"][0]["collided_at_s"]
            table.add_row(cause["cause"], cause["what"], cause["class"], cause["prevented"],
                          "none" if when is None else f"at {when:.2f} s")
        console.print(table)
    if args.json is not None:
        text = json.dumps(result, indent=2)
        print(text) if str(args.json) == "-" else args.json.write_text(text + "\n")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from twin.sweep import parse_grid, sweep

    try:
        grid = parse_grid(args.grid)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from agents.humans.persona import PersonaError
    from compute import ComputeError

    try:
        with Progress(console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("sweep", total=None)
            result = sweep(args.scenario, grid, args.seeds, args.minutes, workers=args.workers, ray=args.ray,
                           progress=lambda done, total: bar.update(task, completed=done, total=total),
                           persona_count=args.persona_count)
    except (ComputeError, PersonaError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    table = Table(title=f"{args.scenario}: {result['runs']} runs of {args.minutes:g} min, {result['executor']}, "
                        f"{result['runs_per_minute']} runs per minute")
    for column in ("grid point", "runs", "collisions", "red-light runs", "alerts"):
        table.add_column(column, justify="left" if column == "grid point" else "right")
    for point, row in result["points"].items():
        table.add_row(point, str(row["runs"]), str(row["collisions"]), str(row["red_light"]), str(row["alerts"]))
    Console().print(table)
    if args.json is not None:
        text = json.dumps(result, indent=2)
        print(text) if str(args.json) == "-" else args.json.write_text(text + "\n")
    return 0


def cmd_ensemble(args: argparse.Namespace) -> int:
    from causes.counterfactual import ExplainError, load_run
    from causes.ensemble import ensemble
    from envs.world import World
    from twin.scenario import load_scenario

    if Path(args.target).is_dir():
        try:
            config, _ = load_run(args.target)
        except ExplainError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    else:
        config = load_scenario(args.target, {"ego.controlled": 0, "humans": {}, **_parse_sets(args.set)})
    world = World(config)
    while world.time < args.at - 1e-9:
        world.step()
    from compute import ComputeError

    try:
        result = ensemble(world.get_state(), futures=args.futures, horizon_s=args.horizon, seed=args.seed,
                          workers=args.workers, ray=args.ray)
    except ComputeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    lo, hi = result["ci95_collision"]
    involved = ", ".join(f"{m['actor']} ({m['futures']} futures)" for m in result["most_involved"]) or "nobody"
    print(f"at {result['time_s']:.1f} s, {args.futures} futures of {args.horizon:g} s: collision probability "
          f"{result['p_collision']:.2f} (95% {lo:.2f}-{hi:.2f}), with near misses "
          f"{result['p_collision_or_near_miss']:.2f}; most often in a collision: {involved}")
    if args.json is not None:
        text = json.dumps(result, indent=2)
        print(text) if str(args.json) == "-" else args.json.write_text(text + "\n")
    return 0


def cmd_realism(args: argparse.Namespace) -> int:
    from rich.console import Console

    from realism.report import realism
    from realism.trajectories import TrajectoryError

    if args.reference is None and args.llm == "off":
        print("error: realism needs --reference (the statistical score) or a model (--llm) for the judge",
              file=sys.stderr)
        return 2
    client, mode = (None, "native")
    if args.llm != "off":
        from realism.judge import RealismAnswer

        client, mode = _model_client(args, RealismAnswer)
    out = args.out or Path("runs") / f"realism-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        result = realism(args.target, args.reference, out, model_client=client, minutes=args.minutes, seed=args.seed,
                         scenes=args.scenes, repeats=args.repeats, perturbations=args.perturbations,
                         console=Console(stderr=True), timeout_s=args.timeout, structured_output=mode)
    except TrajectoryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(result, indent=2)
    (out / "realism.json").write_text(text + "\n")
    if args.json is not None:
        print(text) if str(args.json) == "-" else args.json.write_text(text + "\n")
    return 1 if result["flags"] else 0


def cmd_bench(args: argparse.Namespace) -> int:
    args.minutes_given = args.minutes is not None
    if args.minutes is None:
        args.minutes = 10.0 if args.target == "sumo" else 3.0
    if args.target == "sumo":
        from benchmarks.sumo import run_sumo_benchmark

        run_sumo_benchmark(minutes=args.minutes, json_path=args.json)
        return 0
    if args.target == "ensemble":
        from benchmarks.ensemble import run_ensemble_benchmark

        run_ensemble_benchmark(minutes=args.minutes if args.minutes_given else 4.0, json_path=args.json)
        return 0
    if args.target == "sweep":
        from benchmarks.sweep_workers import run_sweep_benchmark

        run_sweep_benchmark(minutes=args.minutes if args.minutes_given else 2.0, rounds=args.rounds, json_path=args.json)
        return 0
    if args.target == "forks":
        from benchmarks.forks import run_forks_benchmark

        run_forks_benchmark(minutes=args.minutes if args.minutes_given else 20.0, json_path=args.json)
        return 0
    if args.target == "shadow":
        from benchmarks.shadow import run_shadow_benchmark

        run_shadow_benchmark(minutes=args.minutes if args.minutes_given else 4.0, json_path=args.json)
        return 0
    if args.target == "humans":
        from benchmarks.humans import run_humans_benchmark

        run_humans_benchmark(minutes=args.minutes, separation_minutes=args.separation_minutes, json_path=args.json,
                             throughput_minutes=args.throughput_minutes)
        return 0
    if args.target == "rl":
        from benchmarks.rl import run_rl_benchmark

        run_rl_benchmark(minutes=args.minutes, threshold=args.threshold, json_path=args.json,
                         humans_seconds=args.humans_seconds, surrogate=args.surrogate,
                         reuse_episodes=args.reuse_episodes, reuse_resolution=args.reuse_resolution,
                         reuse_scripted=args.reuse_scripted)
        return 0
    if args.target == "supervisor":
        from benchmarks.supervisor import run_supervisor_benchmark

        run_supervisor_benchmark(minutes=args.minutes, json_path=args.json)
        return 0
    if args.target == "memory":
        from benchmarks.memory import main as memory_main

        results = memory_main(["--sizes", *map(str, args.sizes), "--embedding", args.embedding])
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
        return 0
    from benchmarks.twin import run_twin_benchmark

    run_twin_benchmark(seconds=args.seconds, vector=args.vector, json_path=args.json, peer=not args.no_peer,
                       rounds=args.rounds)
    return 0


def cmd_network(args: argparse.Namespace) -> int:
    """Read a SUMO network (or configuration) and report it, or import a map into one."""
    from rich.console import Console
    from rich.table import Table

    from envs.roads import sumo

    console = Console(stderr=args.json == Path("-"))
    if args.action == "import":
        if args.out is None:
            raise sumo.SumoInputError("network import needs --out FILE.net.xml")
        with console.status(f"netconvert {args.path.name}"):
            network = sumo.import_map(args.path, args.out)
        console.print(f"wrote {args.out}")
        demand, config = None, None
    else:
        with console.status(f"reading {args.path.name}"):
            network, demand, config = sumo.load(args.path)
    figures = network.summary()
    if demand is not None:
        end = config.end_s if config is not None else None
        begin = config.begin_s if config is not None else 0.0
        figures["demand"] = {"departures": len(demand.departures), "vehicles": demand.vehicles(end, begin),
                             "vehicle_types": len(demand.vtypes), "persons": demand.persons,
                             "until_s": end, "unsupported": demand.unsupported}
    if config is not None:
        figures["ignored_options"] = config.ignored
    table = Table(title=f"road network: {figures['source']}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in figures.items():
        if key not in ("source", "unsupported"):
            if isinstance(value, dict):
                value = {k: v for k, v in value.items() if k != "unsupported"}  # printed below, once
            table.add_row(key, json.dumps(value) if isinstance(value, (dict, list)) else str(value))
    console.print(table)
    for item in figures["unsupported"] + (figures.get("demand", {}).get("unsupported") or []):
        console.print(f"[yellow]not modelled:[/yellow] {item}")
    if args.png:
        from envs.roads.figure import draw_network

        with console.status(f"drawing {args.png}"):
            console.print(f"wrote {draw_network(network, args.png)}")
    if args.json:
        text = json.dumps(figures, indent=2)
        sys.stdout.write(text + "\n") if args.json == Path("-") else args.json.write_text(text)
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from inspector.server import HOST, RecordedRun, make_server

    if args.export is not None:
        from inspector.export import export_gif

        result = export_gif(Path(args.target), args.export, speed=args.speed)
        print(f"wrote {result['path']}: {result['frames']} frames, t = {result['from_s']:.1f} to {result['to_s']:.1f} s")
        return 0
    live = None
    if args.live:
        from datetime import datetime

        from inspector.live import LiveTwin

        out = args.out or Path("runs") / f"live-{Path(args.target).stem}-{datetime.now():%Y%m%d-%H%M%S}"
        print(f"starting {args.target} (run directory {out}) ...", flush=True)
        live = source = LiveTwin(args.target, out, overrides=_parse_sets(args.set))
    else:
        if args.set:
            raise SystemExit("error: --set applies to --live only (a recorded run is shown as it was)")
        if not Path(args.target).is_dir():
            raise SystemExit(f"error: {args.target}: not a run directory (for a scenario, add --live)")
        try:
            source = RecordedRun(Path(args.target))
        except ValueError as exc:  # not a trace, or a newer format
            print(f"error: {exc}", file=sys.stderr)
            return 2
    server = make_server(source, args.port)
    print(f"inspector at http://{HOST}:{server.server_address[1]}/  (Ctrl-C to stop)", flush=True)

    def stop(*_: object) -> None:
        raise KeyboardInterrupt  # a plain kill ends the inspector like Ctrl-C: live runs are finished

    signal.signal(signal.SIGTERM, stop)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    try:
        serving.start()  # the page can load while the first decisions are made (its requests wait for them)
        if live is not None:
            started = time.perf_counter()
            print("the humans make their first decisions (t = 0) ...", flush=True)
            live.step(0.5)
            print(f"ready at t = 0.5 s after {time.perf_counter() - started:.1f} s", flush=True)
        while serving.is_alive():
            serving.join(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        if serving.is_alive():
            server.shutdown()
        server.server_close()
        if live is not None:
            live.close()
            print(f"live runs finished in {live.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Traffic digital twin with LLM-simulated humans.",
                                     epilog="exit codes: 0 ok; 1 the run had collisions (see simulate --allow-collisions) "
                                            "or its replay differs; 2 bad input (a dead model server included); 3 the model "
                                            "failed more of its requests than humans.model.max_failure_share")
    parser.add_argument("-v", "--verbose", action="store_true", help="also print informational messages")
    parser.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    fmt = argparse.RawDescriptionHelpFormatter

    sim = sub.add_parser("simulate", help="run a scenario with its (LLM) humans and print a summary",
                         epilog=EXAMPLES["simulate"], formatter_class=fmt)
    sim.add_argument("scenario", nargs="?", default=None,
                     help=f"scenario YAML path or shipped name ({_shipped('scenarios')}), or a SUMO .sumocfg / .net.xml")
    sim.add_argument("--minutes", type=_minutes, default=None, help="simulated minutes (default: the scenario's duration)")
    sim.add_argument("--humans", choices=["llm", "rule", "off"], default="llm",
                     help="llm: the scenario's humans as configured (default); rule: every persona slot without a "
                          "model; off: no persona humans, only the background traffic")
    sim.add_argument("--seed", type=int, default=None)
    sim.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a scenario field")
    sim.add_argument("--out", type=Path, default=None, help="run directory (default: runs/<scenario>-<time>)")
    sim.add_argument("--gif", action="store_true", help="also write an animated GIF of the run")
    sim.add_argument("--replay", type=Path, default=None, metavar="RUN_DIR",
                     help="rerun a recorded run from its scenario and LLM cache, with zero model calls")
    sim.add_argument("--allow-collisions", action="store_true", help="exit 0 even if humans collided")
    sim.add_argument("--allow-fallbacks", action="store_true",
                     help="exit 0 even if the model failed more requests than humans.model.max_failure_share")
    sim.add_argument("--json", type=Path, default=None, metavar="FILE",
                     help="also write the summary as JSON to FILE ('-': print it)")
    sim.add_argument("--fcd", type=Path, default=None, metavar="FILE",
                     help="write the vehicles' trajectories as SUMO FCD XML (.xml, or .xml.gz)")
    sim.add_argument("--trajectories", type=Path, default=None, metavar="FILE",
                     help="write the vehicles' trajectories as a highD-style CSV (docs/trajectories.md)")
    sim.add_argument("--trajectory-period", type=_positive_seconds, default=None, metavar="S",
                     help="seconds between trajectory samples (default: every physics step)")
    sim.set_defaults(func=cmd_simulate)

    tr = sub.add_parser("train", help="train an RL controller with stable-baselines3 (YAML training config)",
                        epilog=EXAMPLES["train"], formatter_class=fmt)
    tr.add_argument("config", help=f"training YAML path or shipped name ({_shipped('training')})")
    tr.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a training field")
    tr.add_argument("--out", type=Path, default=None, help="run directory (default: runs/train/<name>)")
    tr.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    tr.add_argument("--no-progress", action="store_true", help="no progress bar")
    tr.set_defaults(func=cmd_train)

    ds = sub.add_parser("distill", help="fit fast surrogate humans on recorded LLM decisions; report agreement",
                        epilog=EXAMPLES["distill"], formatter_class=fmt)
    ds.add_argument("runs", nargs="+", type=Path, help="run directories (or decisions.jsonl files) with LLM humans")
    ds.add_argument("--out", type=Path, default=Path("surrogate.pkl"), help="where to save the surrogate")
    ds.add_argument("--holdout", type=float, default=0.2, help="share of decisions held out for the agreement")
    ds.add_argument("--seed", type=int, default=0)
    ds.set_defaults(func=cmd_distill)

    ev = sub.add_parser("evaluate", help="score the supervisor on its labelled suite, or a trained policy against the baselines",
                        epilog=EXAMPLES["evaluate"], formatter_class=fmt)
    ev.add_argument("target", choices=["supervisor", "policy", "crashes", "causes"],
                    help="what to evaluate (crashes: text to scenario on tests/data/crash_reports; causes: explain "
                         "on the supervisor suite's fault cases)")
    ev.add_argument("checkpoint", nargs="?", default=None, help="policy: a training run directory or model .zip")
    ev.add_argument("--episodes", type=int, default=20, help="policy: seeded episodes per driver")
    ev.add_argument("--seed", type=int, default=1000, help="policy: first episode seed (crashes: the search's seed, "
                                                           "0 unless given)")
    ev.add_argument("--humans", choices=["off", "rule", "llm"], default=None,
                    help="policy: humans in the env (default: as trained; llm = live LLM humans)")
    ev.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="policy: env keyword override (e.g. vehicles=60)")
    ev.add_argument("--png", type=Path, default=None, help="policy: bar chart path (default: RUN/evaluation.png)")
    ev.add_argument("--suite", type=Path, default=None, help="suite YAML (default: configs/suites/supervisor.yaml)")
    ev.add_argument("--seeds", type=int, nargs="+", default=None, help="seeds for every case (default: the suite's)")
    ev.add_argument("--workers", type=int, default=None,
                    help="local processes (supervisor: default one per core; policy: default 1, one episode a job)")
    ev.add_argument("--ray", default=None, metavar="ADDRESS",
                    help="supervisor, policy: on a Ray cluster instead of local processes: auto, HOST:PORT, "
                         "ray://HOST:PORT, or local (one started here with --workers CPUs); pip install -e '.[ray]'")
    ev.add_argument("--quick", action="store_true", help="nominal cases run 3 simulated minutes instead of 30")
    ev.add_argument("--json", type=Path, default=None, help="also write the scores to this JSON file")
    ev.add_argument("--print-json", action="store_true", help="also print the scores as JSON")
    _model_options(ev, "crashes: ")
    ev.add_argument("--budget", type=int, default=40, help="crashes: runs per report for the reproduction search")
    ev.add_argument("--reports", default="reports.jsonl", choices=["reports.jsonl", "heldout.jsonl"],
                    help="crashes: the development set, or the held-out set written without access to the reader")
    ev.set_defaults(func=cmd_evaluate)

    ex = sub.add_parser("explain", help="why each collision of a run happened: the run forked from before it "
                                        "without each candidate cause (faults, road friction, signal timing, the "
                                        "drivers involved, their personas, traits and model decisions)")
    ex.add_argument("run_dir", type=Path, help="a run directory (run.py simulate, run.py scenario, the supervisor "
                                              "suite's cases), with or without persona and LLM humans")
    ex.add_argument("--incident", type=int, default=None, help="only collision number N of the run (0 first)")
    ex.add_argument("--before", type=_positive_seconds, default=10.0, help="fork this long before the collision [s]")
    ex.add_argument("--horizon", type=_positive_seconds, default=15.0, help="watch each fork this long after it [s]")
    ex.add_argument("--futures", type=_count(0), default=10,
                    help="futures per cause, drawn where the twin is uncertain, to say how robust it is (0: none)")
    ex.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the causes as JSON ('-': stdout)")
    ex.add_argument("--hazards", action="store_true",
                    help="also the run's high-severity hazards between two actors (hazards.jsonl; numbered after the "
                         "collisions): taken away, a cause prevents the supervisor flagging it")
    ex.add_argument("--replay-only", action="store_true",
                    help="LLM humans: answers only from the run's recorded ones; a situation the run never met gets "
                         "the persona's rule-based intent (no model is loaded)")
    ex.set_defaults(func=cmd_explain)

    sw = sub.add_parser("sweep", help="one scenario over a grid of its fields, personas and seeds, in local "
                                      "processes or on a Ray cluster (world and supervisor; swept personas drive "
                                      "by their traits, no model)")
    sw.add_argument("scenario", help="a scenario file or shipped name")
    sw.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                    help="a field and its values, e.g. drivers.signal_compliance=0.6,0.8,1.0 (repeatable); "
                         "persona=P1,P2 puts --persona-count rule-based drivers of each persona at the wheel")
    sw.add_argument("--persona-count", type=_count(1), default=4, help="drivers of a swept persona (default 4)")
    sw.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of every grid point (default 0 1 2)")
    sw.add_argument("--minutes", type=_minutes, default=2.0, help="simulated minutes per run (default 2)")
    sw.add_argument("--workers", type=_count(1), default=1, help="local processes (default 1)")
    sw.add_argument("--ray", default=None, metavar="ADDRESS",
                    help="on a Ray cluster instead of local processes: auto, HOST:PORT, ray://HOST:PORT, "
                         "or local (one started here with --workers CPUs); pip install -e '.[ray]'")
    sw.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write every run as JSON ('-': stdout)")
    sw.set_defaults(func=cmd_sweep)

    en = sub.add_parser("ensemble", help="K futures from one moment, differing only where the twin is uncertain: "
                                         "the probability of a collision in the next seconds, with its interval")
    en.add_argument("target", help="a scenario (run without persona humans) or a run directory whose scenario has none")
    en.add_argument("--at", type=float, default=30.0, help="the moment [s] the futures start from (default 30)")
    en.add_argument("--futures", type=_count(1), default=20, help="K (default 20)")
    en.add_argument("--horizon", type=_positive_seconds, default=10.0, help="seconds each future runs (default 10)")
    en.add_argument("--workers", type=_count(1), default=None, help="local processes (default: one per core)")
    en.add_argument("--ray", default=None, metavar="ADDRESS",
                    help="on a Ray cluster instead of local processes: auto, HOST:PORT, ray://HOST:PORT, "
                         "or local (one started here with --workers CPUs); pip install -e '.[ray]'")
    en.add_argument("--seed", type=int, default=0, help="seed of the futures' random draws")
    en.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="scenario override")
    en.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the result as JSON ('-': stdout)")
    en.set_defaults(func=cmd_ensemble)

    rl = sub.add_parser("realism", help="how real a run, log or scenario looks: a WOSAC-style statistical score "
                                        "against a reference, and a language model's judgement with its stability",
                        epilog=EXAMPLES["realism"], formatter_class=fmt)
    rl.add_argument("target", help="a run directory, a trajectory log (FCD, CSV) or a scenario (simulated first)")
    rl.add_argument("--reference", default=None,
                    help="what counts as real: a run directory, a log (a SUMO run's FCD, an observed log) or a scenario")
    rl.add_argument("--minutes", type=_minutes, default=2.0, help="simulated minutes of a scenario target or reference")
    rl.add_argument("--seed", type=int, default=0, help="seed of a simulated target (its reference: seed + 1)")
    rl.add_argument("--scenes", type=_count(1), default=3, help="judge: moments of the run described to the model")
    rl.add_argument("--repeats", type=_count(1), default=5, help="judge: asks per scene (different sampling seeds)")
    rl.add_argument("--perturbations", type=_count(0), default=3, help="judge: perturbed copies of each scene")
    rl.add_argument("--out", type=Path, default=None, help="where realism.json and simulated runs go")
    rl.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the result as JSON ('-': stdout)")
    _model_options(rl, "judge: ", default="off")
    rl.set_defaults(func=cmd_realism)

    sc = sub.add_parser("scenario", help="a crash description in words becomes a runnable scenario, checked by "
                                         "reproducing the crash in the twin", epilog=EXAMPLES["scenario"],
                        formatter_class=fmt)
    sc.add_argument("source", choices=["from-text", "from-report"], help="from-text TEXT or from-report FILE")
    sc.add_argument("input", help="the description (from-text) or a text file holding it (from-report)")
    sc.add_argument("--out", type=Path, default=None, metavar="DIR",
                    help="where the scenario YAML, its run directory, variants and result.json go "
                         "(default runs/crash-TIMESTAMP)")
    sc.add_argument("--json", type=Path, default=None, metavar="FILE",
                    help="write {spec, evidence, crash, reproduced, facts, runs} as JSON ('-': stdout)")
    sc.add_argument("--budget", type=int, default=60, help="most runs of the reproduction search (default 60)")
    sc.add_argument("--seed", type=int, default=0, help="seed of the twin and of the search")
    _model_options(sc, "")
    sc.set_defaults(func=cmd_scenario)

    ins = sub.add_parser("inspect", help="look at a run in the browser (or run a scenario live, with interviews "
                                         "and what-if forks); export it as a GIF",
                         epilog=EXAMPLES["inspect"], formatter_class=fmt)
    ins.add_argument("target", help="a run directory; with --live a scenario YAML path or shipped name")
    ins.add_argument("--live", action="store_true", help="run the scenario step by step from the page")
    ins.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="live: override a scenario field")
    ins.add_argument("--out", type=Path, default=None, help="live: run directory (default: runs/live-<scenario>-<time>)")
    ins.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free port)")
    ins.add_argument("--export", type=Path, default=None, metavar="OUT.gif",
                     help="write the run as an animated GIF instead of serving the page")
    ins.add_argument("--speed", type=float, default=4.0, help="export: simulated seconds per second of GIF")
    ins.set_defaults(func=cmd_inspect)

    net = sub.add_parser("network", help="read a SUMO network or configuration and report it; import an "
                                         "OpenStreetMap or OpenDRIVE map through netconvert",
                         epilog=EXAMPLES["network"], formatter_class=fmt)
    net.add_argument("action", choices=["inspect", "import"])
    net.add_argument("path", type=Path, help="inspect: a .net.xml or .sumocfg; import: a .osm or .xodr map")
    net.add_argument("--out", type=Path, default=None, help="import: the SUMO network to write")
    net.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file ('-': stdout)")
    net.add_argument("--png", type=Path, default=None, help="also draw the network to this PNG file")
    net.set_defaults(func=cmd_network)

    bench = sub.add_parser("bench", help="measure speed: the twin (vs highway-env), LLM humans, memory, supervisor, RL training", epilog=EXAMPLES["bench"],
                           formatter_class=fmt)
    bench.add_argument("target", choices=["twin", "humans", "memory", "supervisor", "rl", "sumo", "shadow", "forks",
                                                "ensemble", "sweep"],
                       help="twin: physics vs highway-env; humans: LLM cost and persona separation; memory: recall "
                            "latency; supervisor: its share of the physics step; rl: PPO wall-clock to a success "
                            "rate vs highway-fast-v0")
    bench.add_argument("--threshold", type=float, default=0.9, help="rl: success rate to reach")
    bench.add_argument("--throughput-minutes", type=float, default=0.0,
                       help="humans: also run the main scenario this long with the embedded model in-process and "
                            "as a local server, with the model's ceiling (0 skips)")
    bench.add_argument("--humans-seconds", type=float, default=0.0,
                       help="rl: also time env steps/s with humans off / rule / live LLM, this many s each "
                            "(--minutes 0 skips the PPO race)")
    bench.add_argument("--surrogate", type=Path, default=None,
                       help="rl: with --humans-seconds, also time the LLM slots on this distilled surrogate")
    bench.add_argument("--reuse-episodes", type=int, default=0,
                       help="rl: run this many 30 s episodes of live LLM humans with humans.reuse and report how "
                            "many decisions were reused (--minutes 0 skips the PPO race)")
    bench.add_argument("--reuse-scripted", action="store_true",
                       help="rl: with --reuse-episodes, answer with the tests' scripted model instead of the LLM "
                            "(how often situations recur, over many episodes)")
    bench.add_argument("--reuse-resolution", type=float, default=0.25,
                       help="rl: with --reuse-episodes, the step situation features are rounded to")
    bench.add_argument("--seconds", type=float, default=20.0, help="wall seconds per measurement")
    bench.add_argument("--vector", type=int, default=2, help="environments in the batched (vector) measurement")
    bench.add_argument("--rounds", type=int, default=4,
                       help="twin: interleaved rounds the single-env measurements take; sweep: rounds of every executor")
    bench.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    bench.add_argument("--no-peer", action="store_true", help="skip highway-env even if installed")
    bench.add_argument("--minutes", type=float, default=None,
                       help="humans: simulated minutes of the cost run (0 skips it; default 3); supervisor: per "
                            "row (3); rl: training minutes per env at most (3); sumo: simulated minutes (10); shadow: "
                            "minutes of SUMO's logs (4); sweep: per run (2)")
    bench.add_argument("--separation-minutes", type=float, default=10.0,
                       help="humans: simulated minutes of the persona-separation run (0 skips it)")
    bench.add_argument("--sizes", type=int, nargs="+", default=[10000, 100000], help="memory: store sizes")
    bench.add_argument("--embedding", choices=["minilm", "hash"], default="minilm", help="memory: embedding")
    bench.set_defaults(func=cmd_bench)

    sh = sub.add_parser("shadow", help="follow an observed trajectory log on a network: predictions against the log "
                                       "(ADE/FDE at 1, 3, 5 s), drivers learned", epilog=EXAMPLES["shadow"],
                        formatter_class=fmt)
    sh.add_argument("log", type=Path, nargs="?", default=None,
                    help="SUMO FCD XML, xml2csv's FCD CSV or a highD-style CSV (docs/trajectories.md)")
    sh.add_argument("--net", default=None,
                    help="the log's network: a SUMO .sumocfg (its vehicle types are known) or .net.xml, or a scenario")
    sh.add_argument("--sumo", type=Path, default=None, metavar="CONFIG.sumocfg",
                    help="the closed loop instead of a log: the twin coupled live to SUMO running CONFIG (libsumo), "
                         "a vehicle stopping on SUMO's side at --fault-at; the run with and without the loop acting")
    sh.add_argument("--minutes", type=_minutes, default=4.0, help="--sumo: simulated minutes (default 4)")
    sh.add_argument("--fault-at", type=float, default=60.0, help="--sumo: when a vehicle stops in SUMO [s] (default 60)")
    sh.add_argument("--period", type=_positive_seconds, default=1.0, help="seconds between sync points (default 1)")
    sh.add_argument("--horizons", default="1,3,5", help="prediction horizons in seconds (default 1,3,5)")
    sh.add_argument("--start", type=float, default=None, help="first sync point [s of the log] (default: its start)")
    sh.add_argument("--end", type=float, default=None, help="last log time used [s] (default: its end)")
    sh.add_argument("--no-learn", action="store_true", help="do not learn the drivers' parameters")
    sh.add_argument("--frame-rate", type=_positive_seconds, default=None, metavar="HZ",
                    help="a CSV with frames but no time_s column: its frame rate (highD: 25)")
    sh.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the figures as JSON")
    sh.add_argument("--out", type=Path, default=None, metavar="RUN_DIR",
                    help="also write the log as the twin mirrors it, the supervisor watching, as a run directory "
                         "(run.py inspect RUN_DIR shows it)")
    sh.set_defaults(func=cmd_shadow)

    an = sub.add_parser("analyze", help="traffic flow figures of a run directory: fundamental diagram, speed and "
                                        "headway distributions, lane use, travel times (tables, JSON, PNG plots)")
    an.add_argument("run_dir", type=Path, help="a run directory (simulate --out, shadow --out)")
    an.add_argument("--out", type=Path, default=None, help="where to write analysis.json and the plots (default: RUN_DIR)")
    an.set_defaults(func=cmd_analyze)

    args = parser.parse_args(argv)
    level = logging.ERROR if args.quiet else logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s")
    logging.captureWarnings(True)
    from agents.llm.backend import BackendError
    from agents.humans.persona import PersonaError
    from agents.controllers.training import TrainingError
    from envs.scenario import ScenarioError
    from envs.roads.sumo import SumoInputError
    from shadow.log import LogError

    try:
        return args.func(args)
    except (ScenarioError, PersonaError, BackendError, TrainingError, SumoInputError, LogError,
            FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError, FileExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

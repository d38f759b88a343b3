"""The installed package: a non-editable wheel works without the source tree.

Builds the wheel, installs it (no dependencies) into a new virtual environment whose only
other packages are this environment's dependencies, and from another directory: makes a
registered Gymnasium id in a process that imported nothing of the twin, and runs a short
``simulate`` of a shipped scenario through the console script's entry point.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _build_wheel(out: Path) -> Path:
    """The wheel of a clean copy of the source tree (no stale ``build/`` of an earlier build leaks in)."""
    source = out.parent / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", "build", "dist", "runs", "*.egg-info",
                                                                "__pycache__", ".pytest_cache"))
    base = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(source)]
    if subprocess.run(base + ["--no-build-isolation"], capture_output=True).returncode != 0:
        subprocess.run(base, check=True, capture_output=True)  # setuptools from PyPI in an isolated build
    return next(out.glob("traffic_twin-*.whl"))


@pytest.mark.slow
def test_the_wheel_runs_a_gym_id_and_simulate_outside_the_source_tree(tmp_path):
    wheel = _build_wheel(tmp_path / "wheel")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               capture_output=True, text=True, check=True).stdout.strip())
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    # the dependencies come from this environment (a path line: its .pth files, the editable install's among them, are not run)
    (site / "zz_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    gym_id = """
import gymnasium as gym
env = gym.make("twin/Highway-v0", duration_s=3)
env.reset(seed=0)
env.step(env.action_space.sample())
import envs, twin
print(envs.__file__)
print(twin.__file__)
"""
    out = subprocess.run([str(python), "-c", gym_id], cwd=elsewhere, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert all(line.startswith(str(site)) for line in out.stdout.split()), out.stdout

    cli = """
import sys
from importlib.metadata import entry_points
(script,) = [e for e in entry_points(group="console_scripts") if e.name == "traffic-twin" and e.dist.locate_file("").samefile(sys.argv[1])]
sys.exit(script.load()(["simulate", "crosswalk", "--minutes", "0.2", "--out", "run"]))
"""
    out = subprocess.run([str(python), "-c", cli, str(site)], cwd=elsewhere, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:] + out.stdout[-3000:]
    assert (elsewhere / "run" / "summary.json").exists() and (elsewhere / "run" / "trace.jsonl.gz").exists()

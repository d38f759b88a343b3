"""The layers: the world (``envs/``) imports nothing above it, and runs bare."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ABOVE_THE_WORLD = {"agents", "memory", "inspector", "twin", "shadow", "scenarios", "realism", "causes", "benchmarks", "run", "tests"}


def _imported_top_levels(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_no_module_under_envs_imports_a_layer_above_it():
    offenders = {str(p.relative_to(ROOT)): sorted(_imported_top_levels(p) & ABOVE_THE_WORLD)
                 for p in sorted((ROOT / "envs").rglob("*.py"))}
    assert {p: names for p, names in offenders.items() if names} == {}


def test_a_bare_world_and_its_views_run_without_any_agent_import():
    code = """
import sys
from envs.scenario import load_config
from envs.single_agent import TwinEnv
from envs.world import World
config = load_config({"name": "bare", "network": {"kind": "highway"}, "duration_s": 5})
world = World(config)
world.advance(30)
env = TwinEnv(config)
env.reset(seed=0)
for _ in range(3):
    env.step(0)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {"agents", "memory", "twin", "autogen_agentchat", "chromadb"})
print(loaded)
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"

"""Registers the twin's Gymnasium ids in any process of an environment the twin is installed in.

Gymnasium 1.x no longer loads plugins from entry points, so ``gym.make("twin/Highway-v0")``
in a process that never imported ``twin`` (a fresh interpreter, a forkserver or spawn
worker) would not find the ids. The installed ``twin_gym_ids.pth`` imports this module at
interpreter start; it only waits for ``gymnasium`` to be imported and then registers the
ids by name (``import twin``: strings only, no model, no physics). It imports nothing at
start-up itself and never fails the interpreter.
"""

from __future__ import annotations

import importlib.util
import sys
from importlib.abc import MetaPathFinder


class _RegisterAfterGymnasium(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != "gymnasium":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run_module = spec.loader.exec_module

        def exec_module(module):
            run_module(module)
            try:
                import twin  # noqa: F401  (registers the ids)
            except Exception:  # a broken twin install must not break gymnasium
                pass

        spec.loader.exec_module = exec_module
        return spec


if "gymnasium" not in sys.modules and not any(isinstance(f, _RegisterAfterGymnasium) for f in sys.meta_path):
    sys.meta_path.insert(0, _RegisterAfterGymnasium())

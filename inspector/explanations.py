"""The inspector's "Why?": counterfactual causes of a run's collisions, cached per run.

Explaining one collision forks the world tens of times (``causes.counterfactual``), so it takes
seconds. Each answer is kept in memory and, when the run has a directory, in
``RUN_DIR/causes.json`` in ``run.py explain``'s format (``{"incidents": [...]}``, merged by
incident id), which is served as it is the next time, also after a restart.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Callable

from causes.counterfactual import CAUSES_FILE, read_causes, write_causes

log = logging.getLogger(__name__)

class Explanations:
    """Explained incidents of one run: in memory, and in ``run_dir/causes.json`` when given.

    One explanation runs at a time (a second request for the same incident then finds it
    cached); reading the cache never waits for one."""

    def __init__(self, run_dir: Path | None) -> None:
        self.run_dir = None if run_dir is None else Path(run_dir)
        self.incidents: dict[int, dict] = read_causes(self.run_dir) if self.run_dir is not None else {}
        self._working = threading.Lock()

    def cached(self) -> dict[str, Any]:
        """The incidents explained so far, in explain's format."""
        incidents = dict(self.incidents)
        return {"incidents": [incidents[k] for k in sorted(incidents)]}

    def get(self, ids: list[int], explain_one: Callable[[int], dict]) -> dict[str, Any]:
        """Incidents ``ids`` in explain's format, explaining (``explain_one(k)``) those not cached;
        ``cached`` says whether all of them were."""
        if all(k in self.incidents for k in ids):
            return {"incidents": [self.incidents[k] for k in ids], "cached": True}
        with self._working:
            missing = [k for k in ids if k not in self.incidents]
            try:
                for k in missing:
                    self.incidents[k] = explain_one(k)
            finally:  # (those explained before a failure are kept too)
                if any(k in self.incidents for k in missing):
                    self._save()
            return {"incidents": [self.incidents[k] for k in ids], "cached": not missing}

    def _save(self) -> None:
        if self.run_dir is None:
            return
        try:  # merged with the file as it is now (run.py explain --json may have written it)
            write_causes(self.run_dir, {**read_causes(self.run_dir), **self.incidents})
        except OSError as exc:  # a read-only run directory: the answers stay in memory
            log.warning("inspector: could not write %s: %s", self.run_dir / CAUSES_FILE, exc)

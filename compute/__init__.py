"""Where many independent runs execute: in this process, in local processes, or on a Ray cluster.

``compute`` imports nothing of the twin: it maps a picklable top-level function over job tuples
(``compute.executor.run_jobs``); sweeps, the supervisor suite and ensembles hand it their runs.
"""

from compute.executor import INSTALL_RAY, ComputeError, describe, run_jobs

__all__ = ["INSTALL_RAY", "ComputeError", "describe", "run_jobs"]

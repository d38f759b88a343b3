"""One executor for the twin's many-run jobs.

``run_jobs(fn, jobs, workers, ray)`` calls ``fn(*job)`` for every job tuple and returns the
results in job order, calling ``progress(done, total)`` as results arrive:

- ``ray`` given: Ray tasks (``ray.init(address=...)``). ``"local"`` starts a Ray instance on this
  machine with ``workers`` CPUs; ``"auto"``, ``"HOST:PORT"`` or ``"ray://HOST:PORT"`` join a
  running cluster (every node needs the twin installed). A Ray already initialised in this
  process is used as it is, and left running;
- else ``workers`` > 1 (``None``: one per core): a local process pool;
- else this process.

``fn`` must be a top-level function and the jobs picklable. Results do not depend on where a job
ran: each job carries everything that seeds it.
"""

from __future__ import annotations

import os
import socket
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, Callable, Sequence, TypeVar

T = TypeVar("T")
Progress = Callable[[int, int], None]
INSTALL_RAY = 'pip install -e ".[ray]"'


class ComputeError(RuntimeError):
    """The executor asked for cannot run (Ray missing, a cluster out of reach); says how to fix it."""


def describe(workers: int | None = 1, ray: str | None = None) -> str:
    """Where ``run_jobs`` with these arguments runs, in words (for tables and JSON)."""
    if ray is not None:
        return f"ray {ray}" + (f" ({workers} CPUs)" if ray == "local" and workers else "")
    workers = workers or os.cpu_count() or 1
    return "in-process" if workers == 1 else f"{workers} local processes"


def run_jobs(fn: Callable[..., T], jobs: Sequence[tuple], workers: int | None = 1, ray: str | None = None,
             progress: Progress | None = None) -> list[T]:
    """``[fn(*job) for job in jobs]``, run where ``workers`` and ``ray`` say (see the module docstring)."""
    jobs = list(jobs)
    if ray is not None:
        return _on_ray(fn, jobs, ray, workers, progress)
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(jobs) <= 1:
        results = []
        for job in jobs:
            results.append(fn(*job))
            if progress:
                progress(len(results), len(jobs))
        return results
    return _in_processes(fn, jobs, min(workers, len(jobs)), progress)


def _in_processes(fn: Callable[..., T], jobs: list[tuple], workers: int, progress: Progress | None) -> list[T]:
    results: list[Any] = [None] * len(jobs)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        index = {pool.submit(fn, *job): k for k, job in enumerate(jobs)}
        for done, future in enumerate(as_completed(index), 1):
            results[index[future]] = future.result()
            if progress:
                progress(done, len(jobs))
    return results


def _on_ray(fn: Callable[..., T], jobs: list[tuple], address: str, workers: int | None,
            progress: Progress | None) -> list[T]:
    ray = import_ray()
    started = connect(ray, address, workers)
    try:
        task = ray.remote(fn)
        index = {task.remote(*job): k for k, job in enumerate(jobs)}
        results: list[Any] = [None] * len(jobs)
        pending = list(index)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            results[index[ready[0]]] = ray.get(ready[0])
            if progress:
                progress(len(jobs) - len(pending), len(jobs))
        return results
    finally:
        if started:
            ray.shutdown()


def import_ray() -> Any:
    """The ``ray`` module, or a ``ComputeError`` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ComputeError(f"--ray needs Ray, which is not installed here: {INSTALL_RAY}") from None
    return ray


def connect(ray: Any, address: str, workers: int | None = None) -> bool:
    """Initialise Ray for ``address`` (``"local"``: a new instance with ``workers`` CPUs); True if
    this call did it, False if Ray was already initialised in this process."""
    if ray.is_initialized():
        return False
    try:
        if address == "local":
            ray.init(num_cpus=workers, include_dashboard=False, logging_level="warning")
        else:
            _reachable(address)
            ray.init(address=address, logging_level="warning")
    except (OSError, RuntimeError, ValueError) as exc:  # ConnectionError and TimeoutError are OSErrors
        raise ComputeError(f"--ray {address}: no Ray cluster reachable there ({exc}). Start one with `ray start --head` "
                           f"and pass its address (or `auto` on one of its nodes; with token authentication, "
                           f"RAY_AUTH_MODE=token), or use `--ray local`; every node needs the twin and Ray: "
                           f"{INSTALL_RAY}") from None
    return True


def _reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast on a HOST:PORT nothing listens on (Ray itself would retry for minutes)."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if address == "auto" or not sep or not port.isdigit():
        return  # Ray finds (or refuses) it itself
    with socket.create_connection((host, int(port)), timeout=timeout_s):
        pass

"""numba's on-disk cache of the compiled kernels, kept in step with their sources.

``@njit(cache=True)`` keys a compiled kernel on its own source file only: a kernel that
inlines a function of another module (``kernels.accelerations`` calls ``behaviour.krauss``)
would keep running the old code after that other module changed (an upgrade in place, an
edit). :func:`drop_stale` removes every cached kernel of the package when any module with
kernels changed since the cache was written; they compile again on first use."""

from __future__ import annotations

import hashlib
from pathlib import Path

STAMP = "kernel_sources.sha256"  # in the package's __pycache__: the hash the cached kernels were built from


def drop_stale(package: Path) -> bool:
    """Delete ``package``'s cached numba kernels (``*.nbi``, ``*.nbc`` in its ``__pycache__``
    folders) if the sources of its kernel modules (those with ``@njit``) changed since the
    last call; returns whether it did. A read-only install is left as it is."""
    digest = hashlib.sha256()
    for source in sorted(package.rglob("*.py")):
        text = source.read_bytes()
        if b"@njit" in text:
            digest.update(str(source.relative_to(package)).encode() + b"\0" + text)
    stamp = package / "__pycache__" / STAMP
    try:
        if stamp.exists() and stamp.read_text() == digest.hexdigest():
            return False
        for cached in [*package.rglob("__pycache__/*.nbi"), *package.rglob("__pycache__/*.nbc")]:
            cached.unlink(missing_ok=True)
        stamp.parent.mkdir(exist_ok=True)
        stamp.write_text(digest.hexdigest())
    except OSError:
        return False
    return True

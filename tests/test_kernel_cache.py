"""The compiled-kernel cache follows its sources: a change to any module with kernels drops
every cached kernel (numba alone would keep one that inlines the changed module's code)."""

from pathlib import Path

from envs.kernel_cache import drop_stale


def package(tmp_path: Path) -> Path:
    root = tmp_path / "pkg"
    (root / "__pycache__").mkdir(parents=True)
    (root / "physics.py").write_text("@njit(cache=True)\ndef f(x):\n    return x + 1\n")
    (root / "uses.py").write_text("@njit(cache=True)\ndef g(x):\n    return f(x)\n")
    (root / "plain.py").write_text("X = 1\n")
    return root


def cached(root: Path) -> list[Path]:
    for name in ("uses.g-1.py311.nbi", "uses.g-1.py311.1.nbc"):
        (root / "__pycache__" / name).write_bytes(b"compiled")
    return sorted((root / "__pycache__").glob("*.nb?"))


def test_a_changed_kernel_module_drops_the_cached_kernels_of_every_module(tmp_path):
    root = package(tmp_path)
    drop_stale(root)
    files = cached(root)
    assert not drop_stale(root) and all(f.exists() for f in files)  # nothing changed: kept
    (root / "physics.py").write_text("@njit(cache=True)\ndef f(x):\n    return x + 2\n")
    assert drop_stale(root) and not any(f.exists() for f in files)


def test_a_change_to_a_module_without_kernels_keeps_the_cache(tmp_path):
    root = package(tmp_path)
    drop_stale(root)
    files = cached(root)
    (root / "plain.py").write_text("X = 2\n")
    assert not drop_stale(root) and all(f.exists() for f in files)

"""Shared by the benchmarks: one core, one BLAS thread, and the machine facts a figure needs.

Import it before numpy (directly or through simspec): importing it sets the
BLAS/OpenMP thread counts to 1, which only takes effect before numpy loads.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

__all__ = ["pin_one_core", "pin_cores", "cpu_model", "simspec_version", "blas_info"]


def pin_one_core(cpu: int | None) -> dict:
    """Pin this process to one CPU (Linux); returns what was done."""
    info: dict = {"cpu_count": os.cpu_count()}
    if not hasattr(os, "sched_setaffinity"):
        info["pinned"] = None
        info["note"] = "os.sched_setaffinity unavailable: not pinned (threads still limited to 1)"
        return info
    allowed = sorted(os.sched_getaffinity(0))
    info["cpus_allowed_before"] = len(allowed)
    chosen = allowed[0] if cpu is None else cpu
    os.sched_setaffinity(0, {chosen})
    info["pinned"] = chosen
    info["cpus_allowed_after"] = len(os.sched_getaffinity(0))
    return info


def pin_cores(n: int) -> dict:
    """Pin this process to the first ``n`` CPUs it may use (Linux; ``n = 1``: :func:`pin_one_core`)."""
    if n <= 1:
        return pin_one_core(None)
    info: dict = {"cpu_count": os.cpu_count()}
    if not hasattr(os, "sched_setaffinity"):
        info["pinned"] = None
        return info
    allowed = sorted(os.sched_getaffinity(0))
    if n > len(allowed):
        raise SystemExit(f"--cores {n}: this process may use only {len(allowed)} CPUs")
    os.sched_setaffinity(0, set(allowed[:n]))
    info["pinned"] = allowed[:n]
    info["cpus_allowed_after"] = len(os.sched_getaffinity(0))
    return info


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def simspec_version(module) -> dict:
    """simspec's installed version and, where it is a git checkout, the commit and whether the tree is dirty."""
    import subprocess
    from importlib import metadata

    out: dict = {}
    try:
        out["version"] = metadata.version("simspec")
    except metadata.PackageNotFoundError:
        out["version"] = getattr(module, "__version__", "unknown")
    root = Path(module.__file__).resolve().parent.parent
    try:
        run = lambda *cmd: subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=10, check=True).stdout
        out["commit"] = run("git", "rev-parse", "HEAD").strip()
        out["dirty"] = bool(run("git", "status", "--porcelain", "--untracked-files=no").strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def blas_info() -> dict:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return {
            "threadpoolctl": "not installed: BLAS thread count not verified; "
            "OMP/OPENBLAS/MKL_NUM_THREADS=1 were set before numpy was imported and the process is pinned to one CPU",
        }
    pools = threadpool_info()
    return {
        "threadpoolctl": "installed",
        "pools": [
            {k: p.get(k) for k in ("user_api", "internal_api", "num_threads", "version", "filepath")} for p in pools
        ],
    }

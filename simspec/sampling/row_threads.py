"""Batches of long rows verified on several threads: numpy lets go of the GIL inside its passes over a row.

A batched verification over a large vocabulary (``(m, V)`` laws, ``V`` at least
:data:`THREAD_MIN_ENTRIES`) is memory-bound: each row is megabytes streamed
from memory and shares nothing with the next, so on one core a batch can only
match a loop of single calls.  Rows are independent, though, and numpy releases
the GIL inside each pass (minimum, sums, running sums), so the rows split into
contiguous chunks that run on threads -- as BLAS splits a matrix product.

Results do not depend on the number of threads: a batched step draws its
random numbers for all rows before any row is touched, and each row's
arithmetic is the same on any thread.  Bad input raises what one thread would
raise: the error of the first bad row.

Threads: ``SIMSPEC_NUM_THREADS`` if set (``1`` turns this off), else the CPUs
this process may run on, at most :data:`MAX_THREADS`.

>>> chunks(10, 3)  # rows 0..9 on three threads
[(0, 4), (4, 7), (7, 10)]
>>> 1 <= num_threads() <= MAX_THREADS or "SIMSPEC_NUM_THREADS" in __import__("os").environ
True
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from ..errors import InvalidParameterError

__all__ = ["THREAD_MIN_ENTRIES", "MAX_THREADS", "num_threads", "chunks", "run_row_chunks"]

#: rows at least this long go to threads (below it a row costs tens of microseconds, mostly Python that holds the
#: GIL, and two threads ran no faster than one: measured in ``benchmarks/bench_sampling.py``)
THREAD_MIN_ENTRIES = 1 << 16
#: at most this many threads by default: a memory-bound pass stops gaining long before a large machine's core count
MAX_THREADS = 8

_ENV = "SIMSPEC_NUM_THREADS"
_pool: tuple[int, int, ThreadPoolExecutor] | None = None  # (process id, workers, pool): a forked child makes its own


def num_threads() -> int:
    """Threads a batch of long rows uses: ``SIMSPEC_NUM_THREADS``, else this process's CPUs (at most 8)."""
    raw = os.environ.get(_ENV)
    if raw is None or not raw.strip():
        try:
            cpus = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            cpus = os.cpu_count() or 1
        return max(1, min(cpus, MAX_THREADS))
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise InvalidParameterError(f"{_ENV}={raw!r} must be an integer >= 1 (1: one thread, no pool); "
                                    f"set it to a number of threads or unset it")
    return n


def chunks(m: int, threads: int) -> list[tuple[int, int]]:
    """``m`` rows as ``threads`` contiguous ``(lo, hi)`` ranges, the first ones a row longer where it is uneven."""
    t = max(1, min(threads, m))
    base, extra = divmod(m, t)
    out, lo = [], 0
    for i in range(t):
        hi = lo + base + (i < extra)
        out.append((lo, hi))
        lo = hi
    return out


def _executor(workers: int) -> ThreadPoolExecutor:
    global _pool
    pid = os.getpid()
    if _pool is None or _pool[0] != pid or _pool[1] < workers:
        if _pool is not None and _pool[0] == pid:
            _pool[2].shutdown(wait=False)
        _pool = (pid, workers, ThreadPoolExecutor(max_workers=workers, thread_name_prefix="simspec-rows"))
    return _pool[2]


def run_row_chunks(work: Callable[[int, int], None], m: int, v: int) -> None:
    """``work(lo, hi)`` over rows ``0..m-1``: on one thread, or on contiguous chunks on several when rows are long.

    ``work`` handles rows ``lo..hi-1`` in order, writing only their entries of its outputs, and raises at its first
    bad row.  With several chunks every chunk runs to its end or its first error, and the error of the lowest
    chunk that failed is raised: the first bad row's, as one thread would have raised.
    """
    threads = num_threads() if v >= THREAD_MIN_ENTRIES and m > 1 else 1
    if threads == 1:
        work(0, m)
        return
    parts = chunks(m, threads)
    pool = _executor(len(parts) - 1)
    futures = [pool.submit(work, lo, hi) for lo, hi in parts[1:]]
    first: BaseException | None = None
    try:
        work(*parts[0])
    except BaseException as exc:  # noqa: BLE001 -- re-raised below, after the other chunks are done
        first = exc
    errors = [f.exception() for f in futures]  # waits for every chunk: none keeps reading the caller's arrays
    if first is not None:
        raise first
    for exc in errors:
        if exc is not None:
            raise exc

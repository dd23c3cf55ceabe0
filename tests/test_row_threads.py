"""Batches of long rows on several threads (``simspec.sampling.row_threads``): the same results, the same errors.

A batched verification over rows of at least ``THREAD_MIN_ENTRIES`` entries splits its rows into contiguous
chunks, one per thread.  These tests pin the split, that the results are byte for byte those of one thread for
every thread count, that a batch with several bad rows raises the first bad row's error whatever chunk it falls
in, that short rows never leave the calling thread, and that a forked child does not wait on its parent's
(absent) threads.  Speed is measured in ``benchmarks/bench_sampling.py``, never asserted here.
"""

from __future__ import annotations

import multiprocessing
import threading

import numpy as np
import pytest

from simspec.errors import DistributionError, InvalidParameterError
from simspec.sampling import core, row_threads, std

V = row_threads.THREAD_MIN_ENTRIES  # the shortest row that goes to threads


@pytest.fixture
def threads(monkeypatch):
    def use(n: int) -> None:
        monkeypatch.setenv("SIMSPEC_NUM_THREADS", str(n))
    return use


def laws(m: int, v: int = V, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    g = np.random.default_rng(seed)
    return g.dirichlet(np.full(v, 0.3), size=m), g.dirichlet(np.full(v, 0.3), size=m)


@pytest.mark.parametrize("m, t, expected", [
    (10, 3, [(0, 4), (4, 7), (7, 10)]),
    (7, 3, [(0, 3), (3, 5), (5, 7)]),
    (2, 8, [(0, 1), (1, 2)]),  # never more chunks than rows
    (5, 1, [(0, 5)]),
])
def test_rows_split_into_contiguous_chunks_the_first_ones_longer(m, t, expected):
    assert row_threads.chunks(m, t) == expected


def test_long_rows_run_on_the_pool_and_the_first_chunk_on_the_calling_thread(threads):
    threads(3)
    seen = []
    row_threads.run_row_chunks(lambda lo, hi: seen.append((lo, hi, threading.current_thread().name)), 7, V)
    assert sorted(s[:2] for s in seen) == [(0, 3), (3, 5), (5, 7)]
    names = {(lo, hi): name for lo, hi, name in seen}
    assert names[(0, 3)] == threading.current_thread().name
    assert names[(3, 5)].startswith("simspec-rows") and names[(5, 7)].startswith("simspec-rows")


@pytest.mark.parametrize("m, v", [(7, V - 1), (1, V)])
def test_short_rows_or_one_row_stay_on_the_calling_thread(threads, m, v):
    threads(4)
    seen = []
    row_threads.run_row_chunks(lambda lo, hi: seen.append((lo, hi, threading.current_thread().name)), m, v)
    assert seen == [(0, m, threading.current_thread().name)]


@pytest.mark.parametrize("raw", ["0", "-2", "two", "1.5"])
def test_a_bad_thread_count_says_what_to_set(threads, raw):
    threads(raw)
    with pytest.raises(InvalidParameterError, match=r"SIMSPEC_NUM_THREADS=.* must be an integer >= 1"):
        row_threads.num_threads()


def test_without_the_variable_threads_are_this_processs_cpus_at_most_eight(monkeypatch):
    import os

    monkeypatch.delenv("SIMSPEC_NUM_THREADS", raising=False)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    assert row_threads.num_threads() == max(1, min(cpus, row_threads.MAX_THREADS))


def outcome(s) -> tuple:
    return tuple(None if f is None else np.asarray(f).tobytes() for f in (s.proposal, s.accepted, s.emitted,
                                                                          s.acceptance))


def test_results_do_not_depend_on_the_number_of_threads(threads):
    P, Q = laws(5)
    Q[3] = P[3]  # a row with p = r: the residual is p itself
    runs = {}
    for t in (1, 2, 3, 5):
        threads(t)
        runs[t] = (
            outcome(std.sample(np.random.default_rng(9), P, Q)),
            outcome(std.sample(np.random.default_rng(9), P, Q, acceptance=True)),
            outcome(core.sample_step(np.random.default_rng(9), P, Q)),
            std.acceptance(P, Q).tobytes(),
            core.acceptance(P, Q).tobytes(),
        )
    assert runs[2] == runs[1] and runs[3] == runs[1] and runs[5] == runs[1]
    # and each row's α is that row's alone
    assert std.acceptance(P, Q).tolist() == [float(std.acceptance(P[i], Q[i])) for i in range(5)]


@pytest.mark.parametrize("t", [1, 2, 3])
@pytest.mark.parametrize("call", ["sample", "acceptance", "sample_alpha"])
def test_several_bad_rows_raise_the_first_ones_error_on_any_number_of_threads(threads, t, call):
    """Rows 1 (q sums to 0.5) and 4 (a negative in p) are bad: with 3 threads they fall in different chunks,
    and the chunk of row 4 finishes first or not; the error is row 1's.  With row 1 mended, row 4's."""
    threads(t)
    P, Q = laws(5)
    Q[1] *= 0.5
    P[4, 7] = -0.01
    run = {"sample": lambda: std.sample(np.random.default_rng(1), P, Q),
           "acceptance": lambda: std.acceptance(P, Q),
           "sample_alpha": lambda: std.sample(np.random.default_rng(1), P, Q, acceptance=True)}[call]
    with pytest.raises(DistributionError, match=r"q must sum to 1 along its last axis, but a row sums to 0\.5"):
        run()
    Q[1] *= 2.0
    with pytest.raises(DistributionError, match=r"^p has negative or non-finite entries"):
        run()


def _child(conn) -> None:
    P, Q = laws(4, seed=3)
    conn.send(std.sample(np.random.default_rng(5), P, Q).emitted.tolist())
    conn.close()


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="no fork on this platform")
def test_a_forked_child_makes_its_own_threads(threads):
    """A pool's threads do not survive ``fork``; a child that reused its parent's pool would wait forever."""
    threads(2)
    P, Q = laws(4, seed=3)
    expected = std.sample(np.random.default_rng(5), P, Q).emitted.tolist()  # the parent's pool exists now
    ctx = multiprocessing.get_context("fork")
    here, there = ctx.Pipe()
    child = ctx.Process(target=_child, args=(there,))
    child.start()
    try:
        assert here.poll(60), "the forked child's batch did not finish"
        assert here.recv() == expected
    finally:
        child.join(10)
        if child.is_alive():
            child.kill()
    assert child.exitcode == 0

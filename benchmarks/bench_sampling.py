#!/usr/bin/env python
"""Benchmark token-level verification at LLM vocabulary size, and dense vs sparse RDK as the vocabulary grows.

Measured side by side, in one process pinned to ONE core, with BLAS/OpenMP
limited to one thread:

(a) one context at a time, ``|T| = 50,000`` target tokens, a drafter of
    ``|D| = 32,000`` tokens sharing ``|I| = 24,000`` with the target: per
    verification, the acceptance closed form and one verification step
    (proposal, accept/reject, residual sample) for

    * std: ``core.acceptance(p, q)`` + ``core.sample_step(rng, p, q)``
      (a drafter over the target's own vocabulary);
    * TLI: ``tli.tli_proposal(q, vm)`` + ``core.acceptance`` + ``core.sample_step``
      (``VocabularyMap`` built once, outside the timing);
    * RDK-approx: ``rdk.rdk_proposal(q, vm, SparseKernel)`` (scatter-add, ``K = 8`` and ``32``)
      + ``core.acceptance`` + ``core.sample_step``;

    and, as a second column, the public one-call API a user would reach for
    (``std.acceptance`` + ``std.sample``, ``tli.tli_acceptance`` + ``tli.tli_sample``,
    ``rdk.rdk_acceptance`` + ``rdk.rdk_sample(n=1)``, which validate their inputs);
    each call takes the next context of a pool, so the data is not cache-resident;
(b) batched: ``m`` contexts at once as ``(m, V)`` arrays, through the same functions
    with 2-D arguments where the library supports them (``core.sample_step`` with
    2-D ``p, r``); ``rdk.rdk_proposal`` with a ``SparseKernel`` and 2-D ``q`` loops
    over rows in Python, and ``rdk.rdk_sample`` does not take 2-D ``q`` — the script
    records what it raises.  A benchmark-local reference (``q' @ M̃`` with
    ``M̃`` a ``scipy.sparse`` CSR matrix; NOT library code) says what a vectorised
    batched sparse proposal would cost;
(c) dense vs sparse RDK as ``N = |T| = |D|`` grows (500 ... 8000, dense ``M`` is
    ``N × N`` float64): per call ``rdk_proposal(q, vm, M)`` vs
    ``rdk_proposal(q, vm, SparseKernel.from_dense(M, K))``, their ratio, and the
    log-log slope of each time against ``N`` (dense ``O(N²)``, sparse ``O(N·K)``);
    the dense time is split into ``check_kernel`` (validation on every call) and
    ``q' @ M``.  The sparse kernel is timed as ``SparseKernel.from_dense`` returns
    it (its ``index`` is a strided view into an ``N × N`` array, copied on every
    call) and with a contiguous copy of the same entries.  Sparse-only sizes
    beyond 8000 (kernel built directly) show the linear regime once per-call
    overhead is amortised.  Building ``M`` and the kernels is not timed;
(d) the public API (``std.acceptance``, ``std.sample``) and ``core`` against a
    ten-line numpy verification written here (``naive_step``: cumsum +
    searchsorted, no checks), at ``V`` = 1,000, 32,000 and 262,144, one context
    per call and batched (``(m, V)`` arrays vs a Python loop of single calls);
    the methods' repeats are interleaved.  ``--only-naive`` runs (d) alone;
    ``--before-tree PATH`` also times the ``simspec/`` of another checkout in
    the same interleaved repeats (before and after side by side in one run).

Verifications per second = 1 / time per call in (a), ``m`` / time per call in
(b).  Best and median over ``--repeats`` repeats; each repeat runs enough calls
to last ``--min-time`` seconds.  Speed is measured here and only here; no test
asserts it (machines differ and are noisy).

Usage::

    python benchmarks/bench_sampling.py                    # full run
    python benchmarks/bench_sampling.py --quick            # smoke run
    python benchmarks/bench_sampling.py --json out.json    # also write the figures as JSON
    python benchmarks/bench_sampling.py --only-naive       # (d) only: API vs core vs naive numpy, ~2-5 min
    python benchmarks/bench_sampling.py --only-naive --before-tree /tmp/old   # ... and an older checkout, interleaved
"""

from __future__ import annotations

import os

import _machine  # first: one BLAS thread, set before numpy is imported (directly or by simspec)

import argparse
import gc
import json
import platform
import statistics
import sys
import time
from pathlib import Path


# --------------------------------------------------------------------------------------------
# machine facts (as in bench_heatmap.py)
# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# timing
# --------------------------------------------------------------------------------------------


def time_per_call(fn, repeats: int, min_time: float) -> dict:
    """Seconds per call of ``fn``: ``repeats`` repeats of ``number`` calls each (``number`` so a repeat lasts ``min_time``)."""
    t0 = time.perf_counter()
    fn()  # warm-up (first call: allocations, caches)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-7)
    number = max(1, int(min_time / one))
    per_call, cpu = [], []
    for _ in range(repeats):
        c0 = time.process_time()
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        per_call.append((time.perf_counter() - t0) / number)
        cpu.append((time.process_time() - c0) / number)
    return {
        "first_s": first,
        "best_s": min(per_call),
        "median_s": statistics.median(per_call),
        "max_s": max(per_call),
        "repeats": repeats,
        "calls_per_repeat": number,
        "all_s": per_call,
        "cpu_best_s": min(cpu),  # process CPU time: steadier than wall time on a shared machine
        "cpu_median_s": statistics.median(cpu),
    }


def time_interleaved(fns: dict, repeats: int, min_time: float) -> dict:
    """:func:`time_per_call` for several functions, their repeats alternating (a, b, c, a, b, c, ...).

    On a shared machine the load drifts during a run; alternating puts every
    function through the same spells, so their ratios are steadier than those of
    back-to-back measurements.
    """
    number, first = {}, {}
    for k, fn in fns.items():
        t0 = time.perf_counter()
        fn()
        first[k] = time.perf_counter() - t0
        t0 = time.perf_counter()
        fn()
        number[k] = max(1, int(min_time / max(time.perf_counter() - t0, 1e-7)))
    per_call = {k: [] for k in fns}
    cpu = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            c0 = time.process_time()
            t0 = time.perf_counter()
            for _ in range(number[k]):
                fn()
            per_call[k].append((time.perf_counter() - t0) / number[k])
            cpu[k].append((time.process_time() - c0) / number[k])
    return {k: {"first_s": first[k], "best_s": min(per_call[k]), "median_s": statistics.median(per_call[k]),
                "max_s": max(per_call[k]), "repeats": repeats, "calls_per_repeat": number[k], "all_s": per_call[k],
                "cpu_best_s": min(cpu[k]), "cpu_median_s": statistics.median(cpu[k])} for k in fns}


def _fmt_t(s: float) -> str:
    if s < 1e-3:
        return f"{s * 1e6:.0f} us"
    if s < 1.0:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def loglog_slope(ns, ts) -> float:
    import numpy as np

    return float(np.polyfit(np.log(np.asarray(ns, float)), np.log(np.asarray(ts, float)), 1)[0])


# --------------------------------------------------------------------------------------------
# synthetic vocabularies, distributions and kernels (built once, not timed)
# --------------------------------------------------------------------------------------------


def make_vocab_pair(n_target: int, n_drafter: int, n_shared: int, rng):
    """A target of ``n_target`` tokens and a drafter of ``n_drafter`` sharing ``n_shared`` (random) with it."""
    from simspec.sampling.vocab import Vocabulary, VocabularyMap

    target = Vocabulary(tuple(f"t{i}" for i in range(n_target)))
    shared = rng.choice(n_target, size=n_shared, replace=False)
    drafter = Vocabulary(tuple([f"t{i}" for i in shared] + [f"d{i}" for i in range(n_drafter - n_shared)]))
    return VocabularyMap(target, drafter)


def make_distributions(vm, m: int, rng, zipf_s: float = 1.1, sigma_p: float = 1.5, beta: float = 0.85,
                       sigma_q: float = 0.8):
    """Zipf-like target laws ``P (m, |T|)``, a same-vocabulary drafter ``Q_std (m, |T|)``, a drafter ``Q (m, |D|)``.

    A global Zipf(``zipf_s``) ranking of the target's tokens (shared tokens
    tend to be the frequent ones, as in real vocabulary pairs), times per-context
    log-normal noise (``sigma_p``), normalised.  A drafter is the target's law
    tempered (``** beta``) times its own log-normal noise (``sigma_q``); the
    drafter's own tokens take random ranks in the tail.
    """
    import numpy as np

    V, D = len(vm.target), len(vm.drafter)
    d2t = vm.drafter_to_target
    inside = d2t >= 0
    w = np.arange(1, V + 1, dtype=float) ** -zipf_s
    is_shared = np.zeros(V, bool)
    is_shared[d2t[inside]] = True
    key = rng.random(V) * np.where(is_shared, 0.3, 1.0)
    rank = np.empty(V, dtype=np.int64)
    rank[np.argsort(key)] = np.arange(V)
    P = w[rank] * rng.lognormal(0.0, sigma_p, (m, V))
    P /= P.sum(axis=1, keepdims=True)
    Q_std = P**beta * rng.lognormal(0.0, sigma_q, (m, V))
    Q_std /= Q_std.sum(axis=1, keepdims=True)
    base = np.empty((m, D))
    base[:, inside] = P[:, d2t[inside]]
    n_only = int((~inside).sum())
    own_rank = rng.integers(V // 5, V, size=n_only)
    base[:, ~inside] = w[own_rank] / w.sum() * rng.lognormal(0.0, sigma_p, (m, n_only))
    Q = base**beta * rng.lognormal(0.0, sigma_q, (m, D))
    Q /= Q.sum(axis=1, keepdims=True)
    return P, Q_std, Q


def make_sparse_kernel(vm, k: int, rng, own: float = 0.6):
    """A :class:`SparseKernel` built directly (``|D| × K``): own target token ``own``, ``K − 1`` random others.

    Rows of drafter-only tokens spread over ``K`` random target tokens.  No
    dense ``|D| × |T|`` matrix (32,000 × 50,000 float64 would be 12.8 GB).
    ``dropped`` is 0 (timing does not depend on it).
    """
    import numpy as np

    from simspec.sampling.rdk import SparseKernel

    D, V = len(vm.drafter), len(vm.target)
    d2t = vm.drafter_to_target
    inside = d2t >= 0
    index = rng.integers(0, V, size=(D, k)).astype(np.int64)
    weight = rng.dirichlet(np.ones(k), size=D)
    if k > 1:
        index[inside, 0] = d2t[inside]
        weight[inside, 0] = own
        rest = rng.dirichlet(np.ones(k - 1), size=int(inside.sum()))
        weight[inside, 1:] = (1.0 - own) * rest
    return SparseKernel(index, weight, np.zeros(D), V)


def make_dense_kernel(vm, rng, own: float = 0.5):
    """A dense row-stochastic ``|D| × |T|`` float64 kernel: ``own`` on the drafter token's own target token."""
    import numpy as np

    D, V = len(vm.drafter), len(vm.target)
    M = rng.random((D, V))
    M **= 4  # a few large entries per row, a long tail
    M /= M.sum(axis=1, keepdims=True)
    inside = np.flatnonzero(vm.drafter_to_target >= 0)
    M[inside] *= 1.0 - own
    M[inside, vm.drafter_to_target[inside]] += own
    return M


# --------------------------------------------------------------------------------------------
# the measurements
# --------------------------------------------------------------------------------------------


def bench_one_context(P, Q_std, Q, vm, kernels, rng, repeats, min_time) -> dict:
    """(a) one context per call, cycling over the rows of P, Q_std, Q."""
    from simspec.sampling import core, rdk, std, tli

    n = P.shape[0]
    state = {"i": 0}

    def nxt() -> int:
        i = state["i"]
        state["i"] = (i + 1) % n
        return i

    def std_core():
        i = nxt()
        p, q = P[i], Q_std[i]
        core.acceptance(p, q)
        core.sample_step(rng, p, q)

    def std_api():
        i = nxt()
        std.acceptance(P[i], Q_std[i])
        std.sample(rng, P[i], Q_std[i])

    def tli_core():
        i = nxt()
        p = P[i]
        r = tli.tli_proposal(Q[i], vm)
        core.acceptance(p, r)
        core.sample_step(rng, p, r)

    def tli_api():
        i = nxt()
        tli.tli_acceptance(P[i], Q[i], vm)
        tli.tli_sample(rng, P[i], Q[i], vm)

    def rdk_core(sk):
        def f():
            i = nxt()
            p = P[i]
            r = rdk.rdk_proposal(Q[i], vm, sk)
            core.acceptance(p, r)
            core.sample_step(rng, p, r)
        return f

    def rdk_api(sk):
        def f():
            i = nxt()
            rdk.rdk_acceptance(P[i], Q[i], vm, sk)
            rdk.rdk_sample(rng, P[i], Q[i], vm, sk, 1)
        return f

    cases = {"std": (std_core, std_api), "tli": (tli_core, tli_api)}
    for k, sk in kernels.items():
        cases[f"rdk_k{k}"] = (rdk_core(sk), rdk_api(sk))
    out = {}
    # where one verification's time goes (std, first context; tli/rdk proposals)
    p0, qs0, q0 = P[0], Q_std[0], Q[0]
    res0 = core.residual(p0, qs0)
    parts = {
        "core.acceptance": lambda: core.acceptance(p0, qs0),
        "core.sample_step": lambda: core.sample_step(rng, p0, qs0),
        "  of which core.residual": lambda: core.residual(p0, qs0),
        "  of which core.sample_categorical (one draw; done twice)": lambda: core.sample_categorical(rng, res0),
        "tli.tli_proposal": lambda: tli.tli_proposal(q0, vm),
        "core.check_distribution (one |T| vector)": lambda: core.check_distribution("p", p0),
    }
    for k, sk in kernels.items():
        parts[f"rdk.rdk_proposal (SparseKernel K={k})"] = lambda sk=sk: rdk.rdk_proposal(q0, vm, sk)
    out["breakdown"] = {label: time_per_call(fn, repeats, min_time) for label, fn in parts.items()}
    for name, (fc, fa) in cases.items():
        c = time_per_call(fc, repeats, min_time)
        a = time_per_call(fa, repeats, min_time)
        out[name] = {
            "core": {**c, "verif_per_s_best": 1.0 / c["best_s"], "verif_per_s_median": 1.0 / c["median_s"]},
            "api": {**a, "verif_per_s_best": 1.0 / a["best_s"], "verif_per_s_median": 1.0 / a["median_s"]},
        }
    return out


def _csr_kernel(sk):
    """``M̃`` as a scipy CSR matrix (benchmark-local reference, not library code)."""
    import numpy as np
    import scipy.sparse as sp

    D, k = sk.index.shape
    return sp.csr_matrix((sk.weight.ravel(), sk.index.ravel(), np.arange(0, D * k + 1, k)), shape=(D, sk.n_target))


def bench_batched(P, Q_std, Q, vm, kernels, rng, batches, repeats, min_time) -> dict:
    """(b) m contexts per call as (m, V) arrays."""
    import numpy as np

    from simspec.sampling import core, rdk, std, tli

    out: dict = {}
    for m in batches:
        Pm, Qsm, Qm = P[:m], Q_std[:m], Q[:m]
        res: dict = {}

        def std_core():
            core.acceptance(Pm, Qsm)
            core.sample_step(rng, Pm, Qsm)

        def std_api():
            std.acceptance(Pm, Qsm)
            std.sample(rng, Pm, Qsm)

        def tli_core():
            r = tli.tli_proposal(Qm, vm)
            core.acceptance(Pm, r)
            core.sample_step(rng, Pm, r)

        def tli_api():
            tli.tli_acceptance(Pm, Qm, vm)
            tli.tli_sample(rng, Pm, Qm, vm)

        cases = {"std": {"core": std_core, "api": std_api}, "tli": {"core": tli_core, "api": tli_api}}
        for k, sk in kernels.items():
            csr = _csr_kernel(sk)
            inside = vm.drafter_to_target >= 0

            def rdk_core(sk=sk):
                r = rdk.rdk_proposal(Qm, vm, sk)  # library: Python loop over the m rows
                core.acceptance(Pm, r)
                core.sample_step(rng, Pm, r)

            def rdk_csr(csr=csr):  # benchmark-local reference: vectorised proposal, then the same core calls
                qd = np.where(inside, Qm, 0.0)
                qd /= qd.sum(axis=1, keepdims=True)
                r = np.asarray(qd @ csr)
                core.acceptance(Pm, r)
                core.sample_step(rng, Pm, r)

            def rdk_prop_only(sk=sk):
                rdk.rdk_proposal(Qm, vm, sk)

            def csr_prop_only(csr=csr):
                qd = np.where(inside, Qm, 0.0)
                qd /= qd.sum(axis=1, keepdims=True)
                np.asarray(qd @ csr)

            cases[f"rdk_k{k}"] = {"core": rdk_core, "reference_scipy_csr": rdk_csr,
                                  "proposal_only_library": rdk_prop_only, "proposal_only_scipy_csr": csr_prop_only}
        for name, fns in cases.items():
            res[name] = {}
            for label, fn in fns.items():
                t = time_per_call(fn, repeats, min_time)
                res[name][label] = {**t, "verif_per_s_best": m / t["best_s"], "verif_per_s_median": m / t["median_s"]}
        out[m] = res
    return out


def api_support(P, Q, vm, kernels, rng) -> dict:
    """What the public API does with (m, V) arguments (recorded, not timed)."""
    from simspec.sampling import rdk, std, tli

    sk = next(iter(kernels.values()))
    probes = {
        "std.sample(2-D)": lambda: std.sample(rng, P[:2], P[:2]),
        "tli.tli_sample(2-D)": lambda: tli.tli_sample(rng, P[:2], Q[:2], vm),
        "rdk.rdk_proposal(2-D q, SparseKernel)": lambda: rdk.rdk_proposal(Q[:2], vm, sk),
        "rdk.rdk_sample(2-D p, q, SparseKernel)": lambda: rdk.rdk_sample(rng, P[:2], Q[:2], vm, sk, 2),
    }
    out = {}
    for name, fn in probes.items():
        try:
            r = fn()
            shape = getattr(getattr(r, "emitted", r), "shape", None)
            out[name] = f"ok, result shape {shape}"
        except Exception as e:  # noqa: BLE001 - recording what the API raises is the point
            out[name] = f"raises {type(e).__name__}: {e}"
    return out


def sanity(P, Q_std, Q, vm, kernels, rng, m: int, steps: int) -> dict:
    """Closed-form acceptance over the contexts, and the batched Monte Carlo acceptance rate against it (untimed)."""
    import numpy as np

    from simspec.sampling import core, rdk, tli

    inside = vm.drafter_to_target >= 0
    out = {
        "p_of_I_mean": float(P[:, vm.drafter_to_target[inside]].sum(axis=1).mean()),
        "q_of_I_mean": float(Q[:, inside].sum(axis=1).mean()),
    }
    props = {"std": Q_std[:m], "tli": tli.tli_proposal(Q[:m], vm)}
    for k, sk in kernels.items():
        props[f"rdk_k{k}"] = rdk.rdk_proposal(Q[:m], vm, sk)
    for name, r in props.items():
        alpha = core.acceptance(P[:m], r)
        acc = np.mean([core.sample_step(rng, P[:m], r).accepted.mean() for _ in range(steps)])
        out[name] = {"alpha_mean": float(alpha.mean()), "monte_carlo_accept_rate": float(acc),
                     "monte_carlo_steps": steps * m}
    return out


def _root_nbytes(a) -> int:
    """Bytes of the array at the bottom of ``a``'s chain of views (what ``a`` keeps alive)."""
    while getattr(a, "base", None) is not None:
        a = a.base
    return int(a.nbytes)


def bench_dense_vs_sparse(sizes, sparse_extra, ks, overlap, rng, repeats, min_time) -> dict:
    """(c) rdk_proposal per call, dense N × N kernel vs SparseKernel, as N grows.

    ``sparse_k{K}`` is ``SparseKernel.from_dense(M, K)`` as the library returns
    it; its ``index`` is a strided view into the full ``N × N`` argpartition
    result, which ``proposal`` copies (``ravel``) on every call.
    ``sparse_k{K}_contiguous`` is the same entries with a contiguous copy of
    ``index`` (benchmark-local, through the public constructor), i.e. what an
    ``O(N·K)`` proposal costs; the sparse-only sizes are built that way too.
    """
    import numpy as np

    from simspec.sampling import rdk

    rows = []
    for n in sizes:
        vm = make_vocab_pair(n, n, int(round(overlap * n)), rng)
        M = make_dense_kernel(vm, rng)
        sks = {k: rdk.SparseKernel.from_dense(M, k) for k in ks}
        P, _, Q = make_distributions(vm, 1, rng)
        p, q = P[0], Q[0]
        qd = rdk.drafter_q_prime(q, vm)  # q' over drafter tokens, to time the bare product below
        row: dict = {"n": n, "dense_bytes": M.nbytes}
        row["dense"] = time_per_call(lambda: rdk.rdk_proposal(q, vm, M), repeats, min_time)
        row["dense_check_kernel"] = time_per_call(lambda: rdk.check_kernel(M, vm), repeats, min_time)
        row["dense_matvec"] = time_per_call(lambda: qd @ M, repeats, min_time)
        a_dense = float(rdk.rdk_acceptance(p, q, vm, M))
        for k, sk in sks.items():
            skc = rdk.SparseKernel(np.ascontiguousarray(sk.index), np.ascontiguousarray(sk.weight), sk.dropped,
                                   sk.n_target)
            for key, kern in ((f"sparse_k{k}", sk), (f"sparse_k{k}_contiguous", skc)):
                t = time_per_call(lambda kern=kern: rdk.rdk_proposal(q, vm, kern), repeats, min_time)
                row[key] = {
                    **t,
                    "ratio_dense_over_sparse_best": row["dense"]["best_s"] / t["best_s"],
                    "ratio_dense_over_sparse_median": row["dense"]["median_s"] / t["median_s"],
                    "index_c_contiguous": bool(kern.index.flags["C_CONTIGUOUS"]),
                    "index_bytes": int(kern.index.nbytes),
                    "index_retained_bytes": _root_nbytes(kern.index),
                }
            row[f"sparse_k{k}"].update({
                "alpha_dense": a_dense,
                "alpha_sparse": float(rdk.rdk_acceptance(p, q, vm, sk)),
                "bound": sk.bound(qd),
            })
        rows.append(row)
        del M, sks
        gc.collect()
    extra = []
    for n in sparse_extra:
        vm = make_vocab_pair(n, n, int(round(overlap * n)), rng)
        _, _, Q = make_distributions(vm, 1, rng)
        q = Q[0]
        row = {"n": n}
        for k in ks:
            sk = make_sparse_kernel(vm, k, rng)
            row[f"sparse_k{k}_contiguous"] = time_per_call(lambda sk=sk: rdk.rdk_proposal(q, vm, sk), repeats, min_time)
        extra.append(row)

    ns = [r["n"] for r in rows]
    slopes: dict = {}
    keys = ["dense", "dense_check_kernel", "dense_matvec"]
    keys += [f"sparse_k{k}{c}" for k in ks for c in ("", "_contiguous")]
    for key in keys:
        ts = [r[key]["best_s"] for r in rows]
        big = [(n, t) for n, t in zip(ns, ts) if n >= 2000]
        slopes[key] = {"all": loglog_slope(ns, ts)}
        if len(big) >= 2:
            slopes[key]["n_ge_2000"] = loglog_slope(*zip(*big))
    for k in ks:
        key = f"sparse_k{k}_contiguous"
        if extra:
            all_n = ns + [r["n"] for r in extra]
            all_t = [r[key]["best_s"] for r in rows] + [r[key]["best_s"] for r in extra]
            slopes[key]["with_sparse_only_sizes"] = loglog_slope(all_n, all_t)
            big = [(n, t) for n, t in zip(all_n, all_t) if n >= 8000]
            if len(big) >= 2:
                slopes[key]["n_ge_8000_with_sparse_only_sizes"] = loglog_slope(*zip(*big))
    slopes["ratio_dense_over_sparse"] = {
        f"k{k}{c}": loglog_slope(ns, [r[f"sparse_k{k}{c}"]["ratio_dense_over_sparse_best"] for r in rows])
        for k in ks for c in ("", "_contiguous")
    }
    return {"overlap": overlap, "rows": rows, "sparse_only": extra, "slopes": slopes}


# --------------------------------------------------------------------------------------------
# (d) the public API and the core against a naive numpy verification, side by side
# --------------------------------------------------------------------------------------------


def naive_acceptance(p, q):
    """Benchmark-local reference, NOT library code: ``α = Σ min(p, q)``, no input checks."""
    import numpy as np

    return np.minimum(p, q).sum()


def naive_step(rng, p, q):
    """Benchmark-local reference, NOT library code: one verification step the way a user writes it in numpy.

    Draw ``x ~ q`` by inverse CDF (cumsum + searchsorted), accept with
    ``min(1, p(x)/q(x))``, else draw from ``(p − q)_+`` the same way.  No input
    checks, no result object: what the library has to be at least as fast as.
    """
    import numpy as np

    cq = np.cumsum(q)
    x = int(np.searchsorted(cq, rng.random() * cq[-1], side="right"))
    if rng.random() < min(1.0, p[x] / q[x]):
        return x, True, x
    cr = np.cumsum(np.maximum(p - q, 0.0))
    return x, False, int(np.searchsorted(cr, rng.random() * cr[-1], side="right"))


def make_same_vocab(V: int, m: int, rng):
    """``m`` target laws over ``V`` tokens and a drafter over the same tokens (as :func:`make_distributions`)."""
    import numpy as np

    w = np.arange(1, V + 1, dtype=float) ** -1.1
    P = w[rng.permutation(V)] * rng.lognormal(0.0, 1.5, (m, V))
    P /= P.sum(axis=1, keepdims=True)
    Q = P**0.85 * rng.lognormal(0.0, 0.8, (m, V))
    Q /= Q.sum(axis=1, keepdims=True)
    return P, Q


def import_before(tree: Path):
    """``simspec.sampling``'s ``core`` and ``std`` from another checkout, imported as package ``simspec_before``.

    ``tree`` is the folder holding its ``simspec/`` (e.g. ``git archive <commit> | tar -x -C /tmp/old``).
    simspec imports itself only relatively, so the two versions live side by side in one process and
    their repeats can be interleaved.
    """
    import importlib
    import importlib.util

    init = Path(tree) / "simspec" / "__init__.py"
    spec = importlib.util.spec_from_file_location("simspec_before", init,
                                                  submodule_search_locations=[str(init.parent)])
    mod = importlib.util.module_from_spec(spec)
    sys.modules["simspec_before"] = mod
    spec.loader.exec_module(mod)
    return (importlib.import_module("simspec_before.sampling.core"),
            importlib.import_module("simspec_before.sampling.std"))


def bench_vs_naive(sizes, pool: int, batch: int, rng, repeats, min_time, before=None) -> dict:
    """(d) per V: naive numpy vs ``core`` vs the public API (``std``), one context per call and batched.

    Two units of work: ``step`` (one verification step: proposal, accept/reject,
    residual draw on rejection) and ``alpha+step`` (the acceptance closed form as
    well: two calls, ``acceptance`` then ``sample``; and, where the library has it,
    one call, ``sample(..., acceptance=True)``, timed as ``*_one_call``).  The methods of one unit are timed
    with their repeats interleaved (:func:`time_interleaved`).  One context per call cycles over
    ``pool`` contexts; batched calls take ``batch`` contexts as ``(m, V)`` arrays (``core.sample_step`` /
    ``std.sample`` with 2-D arguments) and are compared with a Python loop of
    single calls over the same rows.  Speed ratios are naive time / method time
    (> 1: the method is faster) and loop time / batched time (> 1: batching pays).
    ``before``: ``(core, std)`` of another version (:func:`import_before`), timed in the same
    interleaved repeats as ``*_before`` (so before and after see the same spells of load).
    """
    import inspect

    import numpy as np

    from simspec.sampling import core, std

    libs = [("", core, std)] + ([("_before", *before)] if before is not None else [])
    out: dict = {}
    for V in sizes:
        P, Q = make_same_vocab(V, max(pool, batch), np.random.default_rng([V, 7]))  # the same laws in every run
        Pm, Qm = P[:batch], Q[:batch]
        rows = range(batch)
        state = {"i": 0}

        def nxt() -> int:
            i = state["i"]
            state["i"] = (i + 1) % pool
            return i

        def one(f):
            def g():
                i = nxt()
                f(P[i], Q[i])
            return g

        single = {
            "step": {"naive": one(lambda p, q: naive_step(rng, p, q))},
            "alpha+step": {"naive": one(lambda p, q: (naive_acceptance(p, q), naive_step(rng, p, q)))},
        }
        batched = {
            "step": {"naive_loop": lambda: [naive_step(rng, Pm[i], Qm[i]) for i in rows]},
            "alpha+step": {"naive_loop": lambda: [(naive_acceptance(Pm[i], Qm[i]), naive_step(rng, Pm[i], Qm[i]))
                                                  for i in rows]},
        }
        whos = []
        for tag, c, s in libs:
            one_call = "acceptance" in inspect.signature(s.sample).parameters  # not in older versions
            single["step"].update({
                f"core{tag}": one(lambda p, q, c=c: c.sample_step(rng, p, q)),
                f"api{tag}": one(lambda p, q, s=s: s.sample(rng, p, q)),
            })
            single["alpha+step"].update({
                f"core{tag}": one(lambda p, q, c=c: (c.acceptance(p, q), c.sample_step(rng, p, q))),
                f"api{tag}": one(lambda p, q, s=s: (s.acceptance(p, q), s.sample(rng, p, q))),
            })
            batched["step"].update({
                f"core{tag}_loop": lambda c=c: [c.sample_step(rng, Pm[i], Qm[i]) for i in rows],
                f"core{tag}_batched": lambda c=c: c.sample_step(rng, Pm, Qm),
                f"api{tag}_loop": lambda s=s: [s.sample(rng, Pm[i], Qm[i]) for i in rows],
                f"api{tag}_batched": lambda s=s: s.sample(rng, Pm, Qm),
            })
            batched["alpha+step"].update({
                f"core{tag}_loop": lambda c=c: [(c.acceptance(Pm[i], Qm[i]), c.sample_step(rng, Pm[i], Qm[i]))
                                                for i in rows],
                f"core{tag}_batched": lambda c=c: (c.acceptance(Pm, Qm), c.sample_step(rng, Pm, Qm)),
                f"api{tag}_loop": lambda s=s: [(s.acceptance(Pm[i], Qm[i]), s.sample(rng, Pm[i], Qm[i]))
                                               for i in rows],
                f"api{tag}_batched": lambda s=s: (s.acceptance(Pm, Qm), s.sample(rng, Pm, Qm)),
            })
            whos += [f"core{tag}", f"api{tag}"]
            if not tag:  # acceptance alone: what the second call of the two costs, in a loop and in a batch
                batched["alpha+step"].update({
                    "core_acc_loop": lambda c=c: [c.acceptance(Pm[i], Qm[i]) for i in rows],
                    "core_acc_batched": lambda c=c: c.acceptance(Pm, Qm),
                    "api_acc_loop": lambda s=s: [s.acceptance(Pm[i], Qm[i]) for i in rows],
                    "api_acc_batched": lambda s=s: s.acceptance(Pm, Qm),
                })
            if one_call:
                single["alpha+step"].update({
                    f"core_one_call{tag}": one(lambda p, q, c=c: c.sample_step(rng, p, q, acceptance=True)),
                    f"api_one_call{tag}": one(lambda p, q, s=s: s.sample(rng, p, q, acceptance=True)),
                })
                batched["alpha+step"].update({
                    f"core_one_call{tag}_loop": lambda c=c: [c.sample_step(rng, Pm[i], Qm[i], acceptance=True)
                                                             for i in rows],
                    f"core_one_call{tag}_batched": lambda c=c: c.sample_step(rng, Pm, Qm, acceptance=True),
                    f"api_one_call{tag}_loop": lambda s=s: [s.sample(rng, Pm[i], Qm[i], acceptance=True)
                                                            for i in rows],
                    f"api_one_call{tag}_batched": lambda s=s: s.sample(rng, Pm, Qm, acceptance=True),
                })
                whos += [f"core_one_call{tag}", f"api_one_call{tag}"]
        res: dict = {"single": {}, "batched": {}, "alpha_mean": float(core.acceptance(P, Q).mean())}

        def read(i, add=np.add.reduce):
            add(Pm[i])
            add(Qm[i])

        # the memory hierarchy alone: a second read of a row's p and q right after the first (as a loop of
        # acceptance() then sample() does), or after the whole batch was read (as two batched calls do)
        t = time_interleaved({"once": lambda: [read(i) for i in rows],
                              "twice_per_row": lambda: [(read(i), read(i)) for i in rows],
                              "batch_twice": lambda: ([read(i) for i in rows], [read(i) for i in rows])},
                             repeats, min_time)
        res["reread_per_row"] = {"after_the_row": (t["twice_per_row"]["median_s"] - t["once"]["median_s"]) / batch,
                                 "after_the_batch": (t["batch_twice"]["median_s"] - t["once"]["median_s"]) / batch,
                                 "first_read": t["once"]["median_s"] / batch}
        for unit, fns in single.items():
            t = time_interleaved(fns, repeats, min_time)
            nv = t["naive"]["best_s"]
            res["single"][unit] = {k: {**v, "verif_per_s_best": 1.0 / v["best_s"],
                                       "speed_vs_naive_best": nv / v["best_s"],
                                       "speed_vs_naive_median": t["naive"]["median_s"] / v["median_s"]}
                                   for k, v in t.items()}
        for unit, fns in batched.items():
            t = time_interleaved(fns, repeats, min_time)
            nv = t["naive_loop"]["best_s"]
            r = {k: {**v, "verif_per_s_best": batch / v["best_s"], "speed_vs_naive_best": nv / v["best_s"],
                     "speed_vs_naive_median": t["naive_loop"]["median_s"] / v["median_s"]}
                 for k, v in t.items()}
            for who in whos + ["core_acc", "api_acc"]:
                if f"{who}_batched" not in r:
                    continue
                loop_t, batch_t = t[f"{who}_loop"], t[f"{who}_batched"]
                r[f"{who}_batched"]["speed_vs_own_loop_best"] = loop_t["best_s"] / batch_t["best_s"]
                r[f"{who}_batched"]["speed_vs_own_loop_median"] = loop_t["median_s"] / batch_t["median_s"]
            if unit == "alpha+step":  # sample() after acceptance() on the same rows, per row: both calls - the first
                res["second_call_per_row"] = {
                    f"{who}_{form}": (t[f"{who}_{form}"]["median_s"] - t[f"{who}_acc_{form}"]["median_s"]) / batch
                    for who in ("core", "api") for form in ("loop", "batched")}
            res["batched"][unit] = r
        out[V] = res
        del P, Q, Pm, Qm
        gc.collect()
    return out


def print_vs_naive(vsn: dict, pool: int, batch: int) -> None:
    print(f"(d) public API (std) and core vs a naive numpy verification (cumsum + searchsorted, benchmark-local), "
          f"same-vocabulary laws; one context per call cycles over {pool} contexts; batches of {batch} rows")
    print("    time per call (one context) or per batch, best of the repeats; 'x naive' = naive time / method time "
          "(> 1: faster than naive); 'x loop' = loop of single calls / one batched call (> 1: batching pays); "
          "ratios of the best times, (of the medians) in brackets")
    print("    alpha+step: 'core', 'api' = acceptance() then sample(); '... 1 call' = sample(..., acceptance=True); "
          "'(before)': --before-tree, timed in the same interleaved repeats")
    hdr = (f"{'V':>8} {'unit':<11} {'method':<25} {'one context':>11} {'x naive':>15} | {'batch':>10} {'x naive':>15}"
           f" {'x loop':>15}")
    print(hdr)
    print("-" * len(hdr))
    labels = (("naive", "naive"), ("core", "core"), ("api", "api"), ("core_one_call", "core, 1 call"),
              ("api_one_call", "api, 1 call"))
    for V, res in vsn.items():
        for unit in ("step", "alpha+step"):
            s, b = res["single"][unit], res["batched"][unit]
            for tag in ("_before", ""):
                for key, label in labels:
                    key = key if key == "naive" else key + tag
                    if key not in s or (key == "naive" and tag):
                        continue
                    label += " (before)" if tag and key != "naive" else ""
                    line = (f"{V:>8} {unit:<11} {label:<25} {_fmt_t(s[key]['best_s']):>11} "
                            f"{s[key]['speed_vs_naive_best']:>6.2f}x ({s[key]['speed_vs_naive_median']:.2f}x) |")
                    bk = "naive_loop" if key == "naive" else f"{key}_batched"
                    if bk in b:
                        line += (f" {_fmt_t(b[bk]['best_s']):>10} {b[bk]['speed_vs_naive_best']:>6.2f}x "
                                 f"({b[bk]['speed_vs_naive_median']:.2f}x)")
                        if "speed_vs_own_loop_best" in b[bk]:
                            own = b[bk]
                            line += f" {own['speed_vs_own_loop_best']:>6.2f}x ({own['speed_vs_own_loop_median']:.2f}x)"
                        else:
                            line += f" {'(loop)':>15}"
                    print(line)
        sc = res.get("second_call_per_row")
        if sc:
            b = res["batched"]["alpha+step"]
            ca, aa = b["core_acc_batched"], b["api_acc_batched"]
            print(f"{V:>8} acceptance() alone, x loop: core {ca['speed_vs_own_loop_median']:.2f}x, "
                  f"api {aa['speed_vs_own_loop_median']:.2f}x (medians); then sample() on the same rows "
                  f"costs per row, loop / batch: core {_fmt_t(sc['core_loop'])} / {_fmt_t(sc['core_batched'])}, "
                  f"api {_fmt_t(sc['api_loop'])} / {_fmt_t(sc['api_batched'])}")
        rr = res.get("reread_per_row")
        if rr:
            print(f"{V:>8} reading a row's p and q (two sums): first read {_fmt_t(rr['first_read'])}; read again "
                  f"right after {_fmt_t(rr['after_the_row'])}, after the whole batch "
                  f"{_fmt_t(rr['after_the_batch'])} (medians)")
    print()


# --------------------------------------------------------------------------------------------


def _ints(s: str) -> list[int]:
    return [int(x) for x in s.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run: fewer repeats, shorter repeats, smaller sizes")
    ap.add_argument("--target-vocab", type=int, default=50_000, help="|T| for (a), (b) (default 50,000)")
    ap.add_argument("--drafter-vocab", type=int, default=32_000, help="|D| for (a), (b) (default 32,000)")
    ap.add_argument("--shared", type=int, default=24_000, help="|I| = |T ∩ D| for (a), (b) (default 24,000)")
    ap.add_argument("--kernel-k", type=_ints, default=[8, 32], help="SparseKernel K values (default 8,32)")
    ap.add_argument("--pool", type=int, default=None, help="contexts cycled through in (a) (default 64; quick 16)")
    ap.add_argument("--batches", type=_ints, default=None, help="batch sizes m for (b) (default 16,64,256; quick 16)")
    ap.add_argument("--sizes", type=_ints, default=None,
                    help="N for (c), dense and sparse (default 500,1000,2000,4000,8000; quick 500,1000,2000)")
    ap.add_argument("--sparse-only-sizes", type=_ints, default=None,
                    help="extra N for (c), sparse only (default 16000,32000,64000,128000; quick none)")
    ap.add_argument("--naive-sizes", type=_ints, default=None,
                    help="V for (d), public API vs core vs naive numpy (default 1000,32000,262144; quick 1000,32000)")
    ap.add_argument("--naive-pool", type=int, default=None, help="contexts cycled through in (d) (default 32; quick 8)")
    ap.add_argument("--naive-batch", type=int, default=None, help="rows per batched call in (d) (default 64; quick 16)")
    ap.add_argument("--only-naive", action="store_true", help="run (d) only (skip (a)-(c))")
    ap.add_argument("--before-tree", type=Path, default=None,
                    help="(d) also times the simspec/ of this folder (another checkout), interleaved with this one")
    ap.add_argument("--dense-overlap", type=float, default=0.75, help="|I|/N in (c) (default 0.75)")
    ap.add_argument("--repeats", type=int, default=None, help="repeats per measurement (default 7; quick 3)")
    ap.add_argument("--min-time", type=float, default=None, help="seconds per repeat (default 0.2; quick 0.05)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cpu", type=int, default=None, help="CPU to pin to (default: the first allowed)")
    ap.add_argument("--cores", type=int, default=1,
                    help="pin to the first N allowed CPUs instead of one: batches of long rows then run on N threads "
                         "(simspec.sampling.row_threads); BLAS stays at one thread (default 1)")
    ap.add_argument("--json", type=Path, default=None, help="write the figures as JSON to this path")
    args = ap.parse_args(argv)
    q = args.quick
    repeats = args.repeats or (3 if q else 7)
    min_time = args.min_time if args.min_time is not None else (0.05 if q else 0.2)
    pool = args.pool or (16 if q else 64)
    batches = args.batches or ([16] if q else [16, 64, 256])
    sizes = args.sizes or ([500, 1000, 2000] if q else [500, 1000, 2000, 4000, 8000])
    sparse_only = args.sparse_only_sizes if args.sparse_only_sizes is not None else ([] if q else [16000, 32000, 64000, 128000])

    naive_sizes = args.naive_sizes or ([1000, 32000] if q else [1000, 32000, 262144])
    naive_pool = args.naive_pool or (8 if q else 32)
    naive_batch = args.naive_batch or (16 if q else 64)

    machine = _machine.pin_one_core(args.cpu) if args.cores <= 1 else _machine.pin_cores(args.cores)

    import numpy as np
    import scipy

    import simspec
    from simspec.sampling import row_threads

    machine["row_threads"] = row_threads.num_threads()

    machine.update({
        "cpu_model": _machine.cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "simspec": _machine.simspec_version(simspec),
        "env": {v: os.environ.get(v) for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")},
        "blas": _machine.blas_info(),
        "loadavg_before": os.getloadavg() if hasattr(os, "getloadavg") else None,
    })

    rng = np.random.default_rng(args.seed)
    before = import_before(args.before_tree) if args.before_tree is not None else None
    vsn = bench_vs_naive(naive_sizes, naive_pool, naive_batch, rng, repeats, min_time, before)
    if args.only_naive:
        machine["loadavg_after"] = os.getloadavg() if hasattr(os, "getloadavg") else None
        print(f"machine: {machine['cpu_model']}, os.cpu_count()={machine['cpu_count']}, pinned to CPU "
              f"{machine.get('pinned')} (batches of rows >= {row_threads.THREAD_MIN_ENTRIES:,} entries on "
              f"{machine['row_threads']} thread(s)); python {machine['python']}, numpy {machine['numpy']}; "
              f"{repeats} repeats of >= {min_time} s" + ("   [QUICK run]" if q else ""))
        print_vs_naive(vsn, naive_pool, naive_batch)
        print(f"load average before/after: {machine['loadavg_before']} / {machine['loadavg_after']}")
        if args.json is not None:
            from simspec.io import write_json

            write_json(args.json, {"quick": q, "vs_naive": {str(v): r for v, r in vsn.items()}, "machine": machine,
                                   "setup": {"naive_sizes": naive_sizes, "pool": naive_pool, "batch": naive_batch,
                                             "repeats": repeats, "min_time_s": min_time, "dtype": "float64",
                                             "before_tree": None if before is None else str(args.before_tree)}})
            print(f"wrote {args.json}")
        return 0
    t0 = time.perf_counter()
    vm = make_vocab_pair(args.target_vocab, args.drafter_vocab, args.shared, rng)
    vm_build_s = time.perf_counter() - t0
    n_ctx = max(pool, max(batches))
    P, Q_std, Q = make_distributions(vm, n_ctx, rng)
    kernels = {k: make_sparse_kernel(vm, k, rng) for k in args.kernel_k}

    one = bench_one_context(P[:pool], Q_std[:pool], Q[:pool], vm, kernels, rng, repeats, min_time)
    batched = bench_batched(P, Q_std, Q, vm, kernels, rng, batches, repeats, min_time)
    support = api_support(P, Q, vm, kernels, rng)
    checks = sanity(P, Q_std, Q, vm, kernels, rng, min(n_ctx, 256), 20 if not q else 5)
    del P, Q_std, Q
    gc.collect()
    dvs = bench_dense_vs_sparse(sizes, sparse_only, args.kernel_k, args.dense_overlap, rng, repeats, min_time)
    machine["loadavg_after"] = os.getloadavg() if hasattr(os, "getloadavg") else None

    result = {
        "quick": q,
        "setup": {"target_vocab": args.target_vocab, "drafter_vocab": args.drafter_vocab, "shared": args.shared,
                  "overlap_I_over_T": vm.overlap, "kernel_k": args.kernel_k, "pool": pool, "batches": batches,
                  "repeats": repeats, "min_time_s": min_time, "vocabulary_map_build_s": vm_build_s,
                  "dtype": "float64"},
        "one_context": one,
        "batched": {str(m): r for m, r in batched.items()},
        "api_support_2d": support,
        "sanity": checks,
        "dense_vs_sparse": dvs,
        "vs_naive": {str(v): r for v, r in vsn.items()},
        "machine": machine,
    }

    # ---- report
    print(f"machine: {machine['cpu_model']}, os.cpu_count()={machine['cpu_count']}, pinned to CPU {machine.get('pinned')}; "
          f"python {machine['python']}, numpy {machine['numpy']}, scipy {machine['scipy']}")
    blas = machine["blas"]
    print("BLAS threads: " + (", ".join(f"{p['internal_api']}={p['num_threads']}" for p in blas["pools"])
                              if blas.get("threadpoolctl") == "installed" else blas["threadpoolctl"]))
    print(f"|T| = {args.target_vocab:,}, |D| = {args.drafter_vocab:,}, |I| = {args.shared:,} (|I|/|T| = {vm.overlap:.2f}); "
          f"VocabularyMap built once in {vm_build_s:.3f} s; float64; {repeats} repeats of >= {min_time} s"
          + ("   [QUICK run]" if q else ""))
    print()
    print(f"(a) one context per call (cycling over {pool} contexts): verifications/s (best; median)")
    w = 34
    print(f"{'method':<{w}} {'core path':>24} {'public API':>24} {'core, by CPU time':>18}")
    print("-" * (w + 69))
    labels = {"std": "std", "tli": "TLI"} | {f"rdk_k{k}": f"RDK-approx K={k}" for k in args.kernel_k}
    for name, r in one.items():
        if name == "breakdown":
            continue
        c, a = r["core"], r["api"]
        print(f"{labels[name]:<{w}} {c['verif_per_s_best']:>10,.0f} ({_fmt_t(c['best_s'])}); {c['verif_per_s_median']:>7,.0f}"
              f"  {a['verif_per_s_best']:>10,.0f} ({_fmt_t(a['best_s'])}); {a['verif_per_s_median']:>7,.0f}"
              f"  {1.0 / c['cpu_best_s']:>9,.0f}; {1.0 / c['cpu_median_s']:>6,.0f}")
    print("  core path: proposal + core.acceptance + core.sample_step; public API: <module>.acceptance + <module>.sample"
          " (rdk_sample: two-stage draw, n=1)")
    print("  where the time goes (one context, |T| = {:,}; best per call):".format(args.target_vocab))
    for label, t in one["breakdown"].items():
        print(f"    {label:<58} {_fmt_t(t['best_s']):>9}")
    print()
    for m, res in batched.items():
        print(f"(b) batched, m = {m} contexts per call as (m, V) arrays: verifications/s (best; median)")
        print(f"{'method':<{w}} {'core path':>24} {'public API':>24}")
        print("-" * (w + 50))
        for name, r in res.items():
            c = r["core"]
            line = f"{labels[name]:<{w}} {c['verif_per_s_best']:>10,.0f} ({_fmt_t(c['best_s'])}); {c['verif_per_s_median']:>7,.0f}"
            if "api" in r:
                a = r["api"]
                line += f"  {a['verif_per_s_best']:>10,.0f} ({_fmt_t(a['best_s'])}); {a['verif_per_s_median']:>7,.0f}"
            else:
                line += f"  {'n/a: rdk_sample is 1-D only':>24}"
            print(line)
        for k in args.kernel_k:
            r = res[f"rdk_k{k}"]
            ref = r["reference_scipy_csr"]
            lib, refp = r["proposal_only_library"]["best_s"], r["proposal_only_scipy_csr"]["best_s"]
            print(f"  RDK K={k}: with a scipy CSR proposal (benchmark-local, NOT library) {ref['verif_per_s_best']:,.0f}/s "
                  f"(median {ref['verif_per_s_median']:,.0f}); proposal alone for {m} rows: library row loop "
                  f"{_fmt_t(lib)}, scipy CSR {_fmt_t(refp)} ({lib / refp:.1f}x)")
        print()
    print("(b') the public API with (m, V) arguments:")
    for name, s in support.items():
        print(f"  {name}: {s}")
    print()
    print(f"sanity (untimed): mean p(I) = {checks['p_of_I_mean']:.3f}, mean q(I) = {checks['q_of_I_mean']:.3f}")
    for name in labels:
        s = checks[name]
        print(f"  {labels[name]:<20} closed-form alpha (mean) {s['alpha_mean']:.4f}   Monte Carlo accept rate "
              f"{s['monte_carlo_accept_rate']:.4f} ({s['monte_carlo_steps']:,} steps)")
    print()
    print(f"(c) rdk_proposal per call, dense N x N float64 kernel vs SparseKernel (|I|/N = {args.dense_overlap}), "
          "best (median); ratio = dense / sparse (best)")
    print("    'from_dense' = SparseKernel.from_dense(M, K) as the library returns it; 'contig.' = same entries, "
          "index copied contiguous (benchmark-local)")
    hdr = f"{'N':>7} {'dense':>20} {'check_kernel':>12} {'q@M':>9}"
    for k in args.kernel_k:
        hdr += f" {'K=' + str(k) + ' from_dense':>20} {'ratio':>6} {'K=' + str(k) + ' contig.':>20} {'ratio':>6}"
    print(hdr)
    print("-" * len(hdr))
    for r in dvs["rows"]:
        line = (f"{r['n']:>7} {_fmt_t(r['dense']['best_s']):>9} ({_fmt_t(r['dense']['median_s']):>8}) "
                f"{_fmt_t(r['dense_check_kernel']['best_s']):>12} {_fmt_t(r['dense_matvec']['best_s']):>9}")
        for k in args.kernel_k:
            for c in ("", "_contiguous"):
                s_ = r[f"sparse_k{k}{c}"]
                line += f" {_fmt_t(s_['best_s']):>9} ({_fmt_t(s_['median_s']):>8}) {s_['ratio_dense_over_sparse_best']:>5.0f}x"
        print(line)
    for r in dvs["sparse_only"]:
        line = f"{r['n']:>7} {'(dense not built)':>20} {'':>12} {'':>9}"
        for k in args.kernel_k:
            s_ = r[f"sparse_k{k}_contiguous"]
            line += f" {'':>20} {'':>6} {_fmt_t(s_['best_s']):>9} ({_fmt_t(s_['median_s']):>8}) {'':>6}"
        print(line)
    print("log-log slope of time vs N (best times):")
    for key, sl in dvs["slopes"].items():
        print(f"  {key:<24} " + ", ".join(f"{k} {v:.2f}" for k, v in sl.items()))
    for r in dvs["rows"]:
        k0 = args.kernel_k[0]
        s_ = r[f"sparse_k{k0}"]
        print(f"  N={r['n']}: from_dense K={k0} index contiguous: {s_['index_c_contiguous']}, keeps "
              f"{s_['index_retained_bytes'] / 2**20:.1f} MiB alive for a {s_['index_bytes'] / 2**10:.0f} KiB index; "
              f"alpha dense {s_['alpha_dense']:.4f}, sparse {s_['alpha_sparse']:.4f}, "
              f"|diff| {abs(s_['alpha_dense'] - s_['alpha_sparse']):.4f} <= bound {s_['bound']:.4f}")
    print()
    print_vs_naive(vsn, naive_pool, naive_batch)
    print(f"load average before/after: {machine['loadavg_before']} / {machine['loadavg_after']}")

    if args.json is not None:
        from simspec.io import write_json  # atomic: temporary file + rename

        write_json(args.json, result)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

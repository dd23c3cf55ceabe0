"""Replications in chunks, so that a Monte Carlo of any size runs in bounded memory.

The engines (:func:`~simspec.montecarlo.si.si_run`, :func:`~simspec.montecarlo.dsi.dsi_run`,
:func:`~simspec.montecarlo.nonsi.nonsi_run`) keep their own temporaries to a few tens of MB
whatever the number of rows, and their results are per replication.  What grows with the
replications is the caller's draw of outcomes: ``(reps, tokens)`` uniforms (8 bytes each), the
outcomes (1 byte) and any per-position signals (8 bytes each, say ``alpha``).  A caller that
draws and runs one chunk at a time, keeping only the per-replication results, stays within a
budget at any replication count::

    parts = []
    for lo, hi in rep_chunks(reps, tokens):
        A = acceptance.sample(rng, tokens, hi - lo)
        parts.append(dsi_run(A, k, target, drafter)["decode_ms"])
    decode = np.concatenate(parts)

The engines give the same per-replication numbers on a chunk as on all rows at once.  Whether
the draws are the same as one big draw depends on the acceptance process (one ``rng.random``
call per draw: yes; two calls, as the Markov process makes: no), so the chunks are a fixed
function of ``(reps, tokens, budget_bytes, bytes_per_outcome)``: the same arguments, the same
draws.
"""

from __future__ import annotations

from typing import Iterator

from .._checks import int_at_least

__all__ = ["rep_chunks", "DEFAULT_BUDGET_BYTES", "BYTES_PER_OUTCOME"]

DEFAULT_BUDGET_BYTES = 256 * 2**20  # per-position arrays of a chunk; the engines add tens of MB: < 500 MB in all
BYTES_PER_OUTCOME = 40  # a draw's uniforms, outcomes and signals at their heaviest (Markov: 26), with room


def rep_chunks(reps: int, tokens: int, budget_bytes: int = DEFAULT_BUDGET_BYTES,
               bytes_per_outcome: int = BYTES_PER_OUTCOME) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` slices of ``range(reps)``: draw and run one at a time to stay within a budget.

    Each chunk holds ``rows`` replications with ``rows · tokens · bytes_per_outcome``
    at most ``budget_bytes`` (at least one row, so a replication larger than the
    budget is a chunk of its own).  The engines' own temporaries come on top and
    do not grow with the chunk (tens of MB: they work on blocks of
    :data:`simspec.rounds.BLOCK_ELEMENTS` outcomes).  The chunks are contiguous,
    in order, and cover every replication once.

    >>> list(rep_chunks(10, 1000, budget_bytes=4 * 1000 * BYTES_PER_OUTCOME))
    [(0, 4), (4, 8), (8, 10)]
    >>> list(rep_chunks(5, 1000))
    [(0, 5)]
    >>> max(hi - lo for lo, hi in rep_chunks(100_000, 1000)) * 1000 * BYTES_PER_OUTCOME <= DEFAULT_BUDGET_BYTES
    True
    """
    reps = int_at_least("reps", reps, 0)
    tokens = int_at_least("tokens", tokens, 1)
    budget_bytes = int_at_least("budget_bytes", budget_bytes, 1)
    bytes_per_outcome = int_at_least("bytes_per_outcome", bytes_per_outcome, 1)
    rows = max(1, budget_bytes // (tokens * bytes_per_outcome))
    for lo in range(0, reps, rows):
        yield lo, min(lo + rows, reps)

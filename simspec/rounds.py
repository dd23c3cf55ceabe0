"""One SI round: propose ``k`` drafts, cut them at the end of the run, count the accepted ones.

A round of speculative inference (Leviathan et al. 2023; Chen et al. 2023)
starts at position ``pos`` (0-based: the next position to emit) and:

1. **proposes** ``k`` drafts (a lookahead policy's choice);
2. **cuts** them to the positions left minus one, ``k_cut = max(min(k, S − pos − 1), 0)``, as transformers
   does, so that the round's last token (the target's correction or bonus) is position ``S − 1`` at most;
3. **accepts** the leading run of accepted drafts, ``n = min(nxt[pos] − pos, k_cut)``, where ``nxt[pos]``
   is the first rejected position at or after ``pos`` (:func:`simspec.montecarlo.positions.next_rejection`);
4. **emits** ``n + 1`` tokens: the next round starts at ``pos + n + 1``.

:func:`si_round` is the rule for one run (the discrete-event engine calls it each round) and
:func:`si_round_lanes` the same rule over many lanes at once (the Monte Carlo's round loop).

With a static lookahead the rounds need no loop at all (:func:`static_rounds`): a round that
starts at ``p`` ends at ``p + k + 1`` unless a position of its window ``p .. p + k − 1`` is
rejected, and then at that rejection plus one.  So the rounds stride by ``m = k + 1`` from each
*restart* ``q``, and the next restart is the first ``y = x + 1`` (``x`` a rejected position,
``x < S − 1``) after ``q`` with ``y ≢ q (mod m)`` — a rejection at ``y ≡ q`` is a bonus position, never
looked at.  Taking the ``y`` in order, the state "residue of the last restart" always equals the
residue of the previous ``y`` (kept or skipped alike), so ``y`` is a restart exactly when its
residue differs from the previous ``y``'s (``0`` for the first): a comparison of neighbours,
vectorised.  A segment from restart ``q`` to the next restart (or ``S``) has ``⌈(end − q)/m⌉``
rounds, of which only the last can be cut.  ``tests/test_fastpaths.py`` pins this path to the
loop over :func:`si_round_lanes` exactly; change the rule above and that test says so.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["si_round", "si_round_lanes", "static_rounds", "BLOCK_ELEMENTS"]

BLOCK_ELEMENTS = 1 << 20  # outcomes the engines handle at once (their temporaries: tens of MB at most)


def si_round(pos: int, k: int, nxt: Sequence[int], S: int) -> tuple[int, int]:
    """One run's round at ``pos`` with ``k`` proposed: ``(k_cut, n)`` (drafts made, drafts accepted).

    >>> si_round(0, 5, [2, 2, 2, 4, 4], 5)  # position 2 rejected: drafts 0, 1 accepted, 2 corrected
    (4, 2)
    >>> si_round(3, 5, [2, 2, 2, 4, 4], 5)  # one position left after 3: cut to one draft
    (1, 1)
    """
    k_cut = S - pos - 1
    if k < k_cut:
        k_cut = k
    if k_cut < 0:
        k_cut = 0
    n = nxt[pos] - pos
    return k_cut, (n if n < k_cut else k_cut)


def si_round_lanes(pos: np.ndarray, k: np.ndarray, run_end: np.ndarray, S: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`si_round` over lanes: ``run_end`` is each lane's ``nxt[pos]``; returns ``(k_cut, n)``."""
    k_cut = np.maximum(np.minimum(k, S - pos - 1), 0)
    return k_cut, np.minimum(run_end - pos, k_cut)


def static_rounds(accepted: np.ndarray, k, rows: np.ndarray | None = None,
                  widths: bool = False, cuts: bool = False) -> dict[str, np.ndarray]:
    """SI rounds with a static lookahead, counted without a loop over rounds.

    ``accepted``: the outcomes, bool ``(rows, S)`` (only the first ``S − 1`` columns
    are read: position ``S − 1`` is always the last round's correction or bonus).
    ``rows``: the row of each lane (default: one lane per row); ``k``: the
    lookahead, one for all lanes or one per lane (``k > S`` acts as ``S``; ``k ≤ 0``
    as 0).  Returns per lane ``rounds``, ``drafts`` and ``accepted``
    (``int64``), exactly what the round loop gives; with ``widths`` also the count of
    verifications of each width, as ``width_lane``, ``width``, ``width_count`` sorted by
    lane then width (zero counts left out); with ``cuts`` the rounds cut short by the end of
    the run, one entry each (``cut_lane``, ``cut_width``, unsorted): every other round of a
    lane verifies ``k + 1`` tokens.  Memory: temporaries of about
    :data:`BLOCK_ELEMENTS` outcomes at a time, whatever the number of rows.
    """
    accepted = np.asarray(accepted, dtype=bool)  # (no copy when it is bool already)
    n_rows, S = accepted.shape
    step = max(BLOCK_ELEMENTS // max(S, 1), 1)
    cut_lane: list[np.ndarray] = []
    cut_width: list[np.ndarray] = []
    if rows is None and np.ndim(k) == 0:
        # the common case, one lane per row and one k: no lane bookkeeping
        kk = min(max(int(k), 0), S)
        rounds = np.empty(n_rows, dtype=np.int64)
        drafts = np.empty(n_rows, dtype=np.int64)
        for lo in range(0, n_rows, step):
            hi = min(lo + step, n_rows)
            r, d, c_row, c_width = _rows_static(*_restart_candidates(accepted[lo:hi]), hi - lo, S, kk)
            rounds[lo:hi] = r
            drafts[lo:hi] = d
            cut_lane.append(c_row + lo if lo else c_row)
            cut_width.append(c_width)
        return _finish(rounds, drafts, S, kk, cut_lane, cut_width, widths, cuts)
    rows = np.arange(n_rows) if rows is None else np.asarray(rows, dtype=np.int64).reshape(-1)
    lanes = rows.size
    kl = np.clip(np.broadcast_to(np.asarray(k, dtype=np.int64), (lanes,)), 0, S)
    rounds = np.zeros(lanes, dtype=np.int64)
    drafts = np.zeros(lanes, dtype=np.int64)
    # lanes grouped by (block of rows, k): each group is one pass over its block's rejections
    ks, k_inv = np.unique(kl, return_inverse=True)
    group = (rows // step) * ks.size + k_inv
    order = np.argsort(group, kind="stable")
    bounds = np.flatnonzero(np.diff(group[order], prepend=-1, append=-1))
    cands = None
    for g0, g1 in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        sel = order[g0:g1]
        b, j = divmod(int(group[sel[0]]), ks.size)
        lo, hi = b * step, min((b + 1) * step, n_rows)
        if cands is None or cands[0] != b:
            cands = (b, _restart_candidates(accepted[lo:hi]))
        r, d, c_row, c_width = _rows_static(*cands[1], hi - lo, S, int(ks[j]))
        lane_row = rows[sel] - lo
        rounds[sel] = r[lane_row]
        drafts[sel] = d[lane_row]
        if (widths or cuts) and c_row.size:
            # lanes of each cut round: every lane of this group whose row it is
            by_row = np.argsort(lane_row, kind="stable")
            srow = lane_row[by_row]
            left = np.searchsorted(srow, c_row, "left")
            count = np.searchsorted(srow, c_row, "right") - left
            idx = np.repeat(left - np.cumsum(count) + count, count) + np.arange(count.sum())
            cut_lane.append(sel[by_row[idx]])
            cut_width.append(np.repeat(c_width, count))
    return _finish(rounds, drafts, S, kl, cut_lane, cut_width, widths, cuts)


def _finish(rounds, drafts, S, kl, cut_lane, cut_width, widths, cuts=False) -> dict[str, np.ndarray]:
    """The result of :func:`static_rounds`, with the width counts and the cut rounds when asked for."""
    lanes = rounds.size
    out = {"rounds": rounds, "drafts": drafts, "accepted": S - rounds}
    if widths or cuts:
        c_lane = (cut_lane[0] if len(cut_lane) == 1 else np.concatenate(cut_lane)) if cut_lane \
            else np.zeros(0, dtype=np.int64)
        c_w = (cut_width[0] if len(cut_width) == 1 else np.concatenate(cut_width)) if cut_width \
            else np.zeros(0, dtype=np.int64)
    if cuts:
        out["cut_lane"], out["cut_width"] = c_lane, c_w
    if widths:
        n_cut = np.bincount(c_lane, minlength=lanes)
        full = rounds - n_cut
        has_full = full > 0
        lane = np.concatenate([np.flatnonzero(has_full), c_lane])
        full_width = np.full(int(has_full.sum()), kl + 1) if np.ndim(kl) == 0 else kl[has_full] + 1
        width = np.concatenate([full_width, c_w])
        count = np.concatenate([full[has_full], np.ones(c_lane.size, dtype=np.int64)])
        order = np.lexsort((width, lane))
        out["width_lane"], out["width"], out["width_count"] = lane[order], width[order], count[order]
    return out


def _restart_candidates(accepted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(row, y)`` of every ``y = x + 1`` with ``x < S − 1`` rejected, sorted by row then ``y``."""
    n_rows, S = accepted.shape
    if S < 2:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    flat = np.flatnonzero(~accepted[:, : S - 1])
    y_row = flat // (S - 1)
    return y_row, flat - y_row * (S - 1) + 1


def _rows_static(y_row: np.ndarray, y: np.ndarray, n_rows: int, S: int, k: int):
    """Rounds and drafts per row with lookahead ``0 <= k <= S``, and the cut rounds ``(row, width)``."""
    m = k + 1
    res = y % m
    prev = np.empty_like(res)
    prev[:1] = 0
    prev[1:] = res[:-1]
    first = np.empty(y.size, dtype=bool)
    first[:1] = True
    np.not_equal(y_row[1:], y_row[:-1], out=first[1:])
    prev[first] = 0
    kept = res != prev
    q, q_row = y[kept], y_row[kept]
    # segments ending at a kept restart start at the previous one of the row (or 0) ...
    start = np.empty_like(q)
    start[:1] = 0
    start[1:] = q[:-1]
    if q.size:
        start[1:][q_row[1:] != q_row[:-1]] = 0
    # ... and every row's last segment ends at S
    last = np.zeros(n_rows, dtype=np.int64)
    if q.size:
        is_last = np.empty(q.size, dtype=bool)
        is_last[-1] = True
        np.not_equal(q_row[:-1], q_row[1:], out=is_last[:-1])
        last[q_row[is_last]] = q[is_last]
    seg_row = np.concatenate([q_row, np.arange(n_rows)])
    seg_start = np.concatenate([start, last])
    seg_end = np.concatenate([q, np.full(n_rows, S, dtype=np.int64)])
    n_rounds = (seg_end - seg_start + k) // m
    # only a segment's last round can be cut: it drafts S − 1 − p_last < k drafts
    p_last = seg_start + (n_rounds - 1) * m
    deficit = np.maximum(k - (S - 1 - p_last), 0)
    rounds = np.bincount(seg_row, weights=n_rounds, minlength=n_rows).astype(np.int64)
    short = np.bincount(seg_row, weights=deficit, minlength=n_rows).astype(np.int64)
    cut = deficit > 0
    return rounds, k * rounds - short, seg_row[cut], k - deficit[cut] + 1

"""DSI (distributed speculative inference) on acceptance outcomes, via the epoch map.

Timor et al., "Distributed Speculative Inference", arXiv 2405.14105 (ICLR 2025),
Algorithm 1 generalised to a lookahead ``k``.  With unlimited servers, constant
latencies and zero overheads, a run splits into *epochs* (restart to next
rejection) whose duration depends only on the epoch's length ``r``:
``D(r)`` (:func:`simspec.theory.dsi_epoch_duration`, derived in
``theory/dsi_epoch_map.md``).  A run's decode time is the sum of ``D`` over its
epochs, so any acceptance process (i.i.d., Markov, traces) is simulated exactly
by counting epoch lengths — no event loop.  Finite servers, queueing and
overheads belong to the discrete-event engine.

Costs per epoch (target forwards started, useful and wasted; busy time) follow
from the same timeline: speculative task ``b`` is submitted at ``b k d`` and
runs ``v`` unless the epoch ends first; the non-SI chain is always busy and
restarts whenever a verification jumps the verified prefix ahead of it.
"""

from __future__ import annotations

import numpy as np

from .. import theory
from ..latency import LatencyModel
from ..rounds import BLOCK_ELEMENTS
from .positions import epoch_lengths

__all__ = ["dsi_epoch_table", "dsi_run"]

_TOL = 1e-9


def _ceil(x: np.ndarray) -> np.ndarray:
    return np.ceil(x - _TOL)


def _floor(x: np.ndarray) -> np.ndarray:
    return np.floor(x + _TOL)


def dsi_epoch_table(
    r: np.ndarray, k: int, d: float, v: float, t1: float, chain: bool = True, room=np.inf
) -> dict[str, np.ndarray]:
    """Duration (ms) and costs of DSI epochs of lengths ``r``.

    ``d``: drafter forward, ``v``: verification forward of width ``k + 1``,
    ``t1``: target forward of width 1, all in ms.  ``room``: positions left
    before ``S`` at the epoch's start — the drafter starts no block at or past
    position ``S`` (the duration does not depend on it, the costs do).
    """
    r = np.asarray(r, dtype=np.int64)
    slope = (v / t1 - 1.0) / k
    dur = t1 * theory.epoch_duration_unchecked(r, int(k), d / t1, slope, chain)  # d, v, t1: checked by their latency models
    kd = k * d
    blocks = np.ceil(np.asarray(room, dtype=float) / k)  # blocks the drafter may start
    n_sub = np.maximum(_ceil(dur / kd) - 1, 0)
    if np.ndim(blocks) or blocks != np.inf:
        n_sub = np.minimum(n_sub, blocks)
    n_full = np.clip(_floor((dur - v) / kd), 0, n_sub)
    idx_sum = (n_sub * (n_sub + 1) - n_full * (n_full + 1)) / 2
    spec_busy = n_full * v + (n_sub - n_full) * dur - kd * idx_sum
    B = -(-(r - 1) // k)
    if chain:
        # The chain's forwards: a first segment (from the epoch's start, or cut short by the first
        # jump), ``jumps - 1`` whole inter-block segments of ``kd``, and the segment after the last
        # jump.  (Scalars where they are scalars: the same floats, fewer array passes.)
        if d < t1:
            b0 = np.floor((v - t1) / (k * (t1 - d)) + _TOL) + 1
            jumps = np.maximum(0, (B - 1) - b0 + 1)
            jp = jumps > 0
            t_first = np.where(jp, b0 * kd + v, dur)
            t_last = np.where(jp, (B - 1) * kd + v, dur)
            mid = np.maximum(jumps - 1, 0)
            first = np.maximum(t_first, 0) / t1
            last = np.maximum(dur - t_last, 0) / t1
            kd_t1 = np.maximum(kd, 0) / t1
            chain_started = _ceil(first) + mid * _ceil(kd_t1) + jp * _ceil(last)
            chain_done = _floor(first) + mid * _floor(kd_t1) + jp * _floor(last)
        else:  # the chain is never overtaken: one segment, the whole epoch
            jumps = np.zeros(r.shape)
            chain_started = _ceil(np.maximum(dur, 0) / t1)
            chain_done = _floor(np.maximum(dur, 0) / t1)
        delivered = (B >= 1) & (np.abs(dur - (B * kd + v)) <= _TOL * (1 + dur))
        chain_busy = dur
    else:
        jumps = np.maximum(B, 1) - 1
        delivered = np.ones(r.shape, dtype=bool)
        chain_started = chain_done = chain_busy = np.zeros(r.shape)
    if chain and d > t1 * (1 + _TOL):
        # A drafter slower than the target never gets ahead of the chain: the verified prefix
        # overtakes it at every chain step, it restarts there, and it never finishes a block.
        n_sub = spec_busy = jumps = np.zeros(r.shape)
        delivered = np.zeros(r.shape, dtype=bool)
        drafts, drafter_busy = chain_started, dur
    elif np.ndim(room) == 0 and room == np.inf:
        drafts, drafter_busy = _ceil(dur / d), dur
    else:
        drafts, drafter_busy = np.minimum(_ceil(dur / d), blocks * k), np.minimum(dur, blocks * kd)
    useful = chain_done + jumps + delivered
    started = chain_started + n_sub
    return {
        "duration_ms": dur,
        "target_forwards": started,
        "target_forwards_wasted": np.maximum(started - useful, 0),
        "target_busy_ms": chain_busy + spec_busy,
        "drafter_forwards": drafts,
        "drafter_busy_ms": drafter_busy,
    }


_NAMES = ("duration_ms", "target_forwards", "target_forwards_wasted", "target_busy_ms", "drafter_forwards",
          "drafter_busy_ms")


def _length_table(r: np.ndarray, room: np.ndarray, args: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Costs of epochs ``r`` (starting ``room`` positions before ``S``) as a table over lengths plus exceptions.

    Returns ``(table, near_end, exact)``: ``table[r − 1]`` (shape ``(max r, 6)``, columns
    :data:`_NAMES`) holds the costs of an epoch of length ``r`` far from the end of its run;
    ``near_end`` indexes the epochs whose costs may depend on their room, and ``exact`` holds
    those epochs' costs (one row each).  Every value is ``dsi_epoch_table``'s float for that epoch.

    Why a table: the costs depend on ``room`` only through ``blocks = ⌈room / k⌉``, and not at
    all once ``blocks ≥ ⌈D(r) / kd⌉ + 2`` (then every ``min`` with it picks the other side:
    ``n_sub`` is at most ``⌈D/kd⌉ − 1``, the drafts at most ``D/d + 1 ≤ blocks·k``, the
    drafter's busy time ``D < blocks·kd``), and ``D(r) ≤ T_B = max(B, 1)·kd + v``.  So one call
    on ``1..max r`` and the few epochs near the end of their run replaces a pass over every epoch.
    """
    k, d, v = args[0], args[1], args[2]
    r_max = int(r.max())
    # ⌈room/k⌉ < ⌈D(r)/kd⌉ + 2 needs room < (B + ⌈v/kd⌉ + 2)·k ≤ r + (⌈v/kd⌉ + 3)·k: a test on the
    # epoch alone (not on the block's longest epoch), so each epoch is summed the same way in any block
    margin = (np.ceil(v / (k * d)) + 4) * k
    near_end = np.flatnonzero(room - r < margin)
    lengths = np.concatenate([np.arange(1, r_max + 1), r[near_end]])
    rooms = np.concatenate([np.full(r_max, np.inf), room[near_end].astype(float)])
    cols = dsi_epoch_table(lengths, *args, room=rooms)
    both = np.column_stack([np.broadcast_to(cols[name], lengths.shape) for name in _NAMES])
    return both[:r_max], near_end, both[r_max:]


def dsi_run(
    accepted: np.ndarray,
    k: int,
    target: LatencyModel,
    drafter: LatencyModel,
    prompt_len: int = 0,
    chain: bool = True,
) -> dict[str, np.ndarray]:
    """Decode time and costs of DSI with lookahead ``k``, one replication per row of ``accepted``.

    Rows are handled in blocks of about :data:`simspec.rounds.BLOCK_ELEMENTS`
    outcomes, so the per-epoch temporaries stay a few tens of MB whatever the
    number of rows (each row's sums are those of one pass over all rows).
    """
    reps, S = accepted.shape
    args = (k, float(drafter.forward(1, prompt_len)), float(target.forward(k + 1, prompt_len)),
            float(target.forward(1, prompt_len)), chain)
    out = np.empty((reps, len(_NAMES)))
    epochs = np.empty(reps, dtype=np.int64)
    step = max(BLOCK_ELEMENTS // max(S, 1), 1)
    for lo in range(0, reps, step):
        hi = min(lo + step, reps)
        n = hi - lo
        rows, r = epoch_lengths(accepted[lo:hi])
        # positions left before S when each epoch starts: the drafter starts no block past S
        end = np.cumsum(r)  # where each epoch ends, counted from the block's first row
        row_start = np.zeros(n, dtype=end.dtype)
        first = np.flatnonzero(np.diff(rows, prepend=-1))  # every row has an epoch: S >= 1
        row_start[1:] = end[first[1:] - 1]
        room = S - (end - row_start[rows] - r)
        table, near_end, exact = _length_table(r, room, args)
        # per row: (epochs of each length, the near-end ones left out) × the table, summed in order of
        # length (a reduction over a middle axis adds sequentially: the same floats whatever the block
        # and its longest epoch), then the near-end epochs in order
        r_max = table.shape[0]
        key = rows * r_max + (r - 1)
        key[near_end] = n * r_max
        counts = np.bincount(key, minlength=n * r_max + 1)[:-1].reshape(n, r_max)
        sub = max(BLOCK_ELEMENTS // (r_max * len(_NAMES)), 1)
        for a in range(0, n, sub):
            b = min(a + sub, n)
            out[lo + a:lo + b] = (counts[a:b, :, None] * table).sum(axis=1)
        np.add.at(out, lo + rows[near_end], exact)
        epochs[lo:hi] = np.bincount(rows, minlength=n)
    out = dict(zip(_NAMES, out.T))
    out["decode_ms"] = out.pop("duration_ms")
    out["epochs"] = epochs
    return out

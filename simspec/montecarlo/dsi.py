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
_TABLE_MIN_EPOCHS = 4096  # below this, dsi_run's table over lengths costs about what it saves


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
    dur = t1 * theory.dsi_epoch_duration(r, k, d / t1, slope, chain)
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


def _epoch_costs(r: np.ndarray, room: np.ndarray, args: tuple, S: int) -> dict[str, np.ndarray]:
    """``dsi_epoch_table(r, *args, room=room)``, the same floats, from a table over lengths when epochs are many.

    The costs depend on ``room`` only through ``blocks = ⌈room / k⌉``, and not at all once
    ``blocks ≥ ⌈D(r) / kd⌉ + 2`` (then every ``min`` with it picks the other side: ``n_sub``
    is at most ``⌈D/kd⌉ − 1``, the drafts at most ``D/d + 1 ≤ blocks·k``, the drafter's busy
    time ``D < blocks·kd``).  So one table over ``r = 1..max r`` without a room serves every
    epoch but the few near the end of their run, which are computed one by one.
    """
    if r.size <= max(2 * S, _TABLE_MIN_EPOCHS):  # few epochs: one pass is cheaper than a table and a pass
        return dsi_epoch_table(r, *args, room=room)
    k, d = args[0], args[1]
    table = dsi_epoch_table(np.arange(1, int(r.max()) + 1), *args)
    need = _ceil(table["duration_ms"] / (k * d)) + 2
    idx = r - 1
    bound = np.flatnonzero(np.ceil(room / k) < need[idx])
    out = {}
    exact = dsi_epoch_table(r[bound], *args, room=room[bound]) if bound.size else None
    for name, col in table.items():
        vals = col[idx]
        if exact is not None:
            vals[bound] = exact[name]
        out[name] = vals
    return out


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
    names = ("duration_ms", "target_forwards", "target_forwards_wasted", "target_busy_ms", "drafter_forwards",
             "drafter_busy_ms")
    out = {name: np.empty(reps) for name in names}
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
        per_epoch = _epoch_costs(r, room, args, S)
        for name in names:
            out[name][lo:hi] = np.bincount(rows, weights=per_epoch[name], minlength=n)
        epochs[lo:hi] = np.bincount(rows, minlength=n)
    out["decode_ms"] = out.pop("duration_ms")
    out["epochs"] = epochs
    return out

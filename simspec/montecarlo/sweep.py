"""Sweeps that reuse one acceptance draw across many lookaheads and latency ratios.

Under i.i.d. acceptance the outcomes ``A`` depend on ``a`` only, never on the
drafter's speed ``c`` or the lookahead ``k``.  With constant latencies SI's
decode time is ``drafts·c + rounds`` (in target TPOTs) and DSI's is a sum of
``D(r)`` over epoch lengths, so one draw per ``a`` serves the whole ``(c, k)``
grid: SI rounds are counted once per ``(a, k)`` and DSI reduces to a matrix
product of epoch-length histograms with ``D`` tables.  Common random numbers
across the grid make neighbouring cells comparable, and the grid is fast.
"""

from __future__ import annotations

import numpy as np

from .. import theory
from ..rounds import static_rounds
from .positions import epoch_histogram
from .si import LaneLookahead

__all__ = ["LaneLookahead", "si_sweep", "dsi_sweep"]


def si_sweep(accepted: np.ndarray, ks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SI ``rounds`` and ``drafts`` for every (row, k): arrays of shape ``(rows, len(ks))``."""
    ks = np.asarray(ks, dtype=np.int64)
    rows = accepted.shape[0]
    lane_rows = np.repeat(np.arange(rows), ks.size)
    lane_k = np.tile(ks, rows)
    res = static_rounds(accepted, lane_k, lane_rows)
    return res["rounds"].reshape(rows, ks.size), res["drafts"].reshape(rows, ks.size)


def dsi_sweep(accepted: np.ndarray, ks: np.ndarray, cs: np.ndarray, chain: bool = True) -> np.ndarray:
    """DSI decode time (target TPOTs) for every (row, k, c), constant latencies: shape ``(rows, len(ks), len(cs))``."""
    hist = epoch_histogram(accepted).astype(float)  # (rows, S+1)
    r = np.arange(1, hist.shape[1])
    ks = np.asarray(ks)
    cs = np.asarray(cs, dtype=float)
    table = theory.dsi_epoch_duration(r[None, None, :], ks[:, None, None], cs[None, :, None], chain=chain)
    return np.einsum("nr,kcr->nkc", hist[:, 1:], table, optimize=True)

"""Position bookkeeping on acceptance outcomes, shared by the Monte Carlo engines.

``A`` is a bool array ``(rows, S)`` of outcomes over absolute positions
(0-based here: column ``j`` is output position ``j + 1``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["next_rejection", "epoch_lengths", "epoch_histogram"]


def next_rejection(accepted: np.ndarray) -> np.ndarray:
    """For each position, the index of the first rejection at or after it (``S`` if none).

    ``int32`` (``int64`` only where ``S`` needs it): half the memory of a default integer.

    >>> next_rejection(np.array([[True, False, True, True]])).tolist()
    [[1, 1, 4, 4]]
    """
    rows, s = accepted.shape
    dt = np.int32 if s < np.iinfo(np.int32).max else np.int64
    idx = np.where(accepted, dt(s), np.arange(s, dtype=dt))
    rev = idx[:, ::-1]
    np.minimum.accumulate(rev, axis=1, out=rev)  # in place: no second (rows, S) array
    return idx


def epoch_lengths(accepted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split each row into DSI epochs.

    Returns ``(row, length)`` for every epoch, ordered by row and position: an
    epoch ends at a rejection (its length ``r`` counts the rejected position),
    and a row's last, unfinished epoch has the length of its accepted tail (it
    ends when position ``S`` is confirmed).  Lengths of each row add up to ``S``.

    >>> rows, r = epoch_lengths(np.array([[True, False, True, True]]))
    >>> rows.tolist(), r.tolist()
    ([0, 0], [2, 2])
    """
    rows, s = accepted.shape
    # rejections, and a sentinel column S that closes every row's tail
    padded = np.empty((rows, s + 1), dtype=bool)
    np.logical_not(accepted, out=padded[:, :s])
    padded[:, s] = True
    flat = np.flatnonzero(padded)
    # the entry before a row's first is the previous row's sentinel, one flat index before the row
    length = np.diff(flat, prepend=-1)
    r_idx = flat // (s + 1)
    tail = flat - r_idx * (s + 1) == s
    length[tail] -= 1  # the sentinel is no position
    keep = length > 0  # a tail may be empty
    return r_idx[keep], length[keep]


def epoch_histogram(accepted: np.ndarray) -> np.ndarray:
    """``H[row, r]`` = number of epochs of length ``r`` in each row (shape ``(rows, S + 1)``)."""
    rows, s = accepted.shape
    r_idx, length = epoch_lengths(accepted)
    return np.bincount(r_idx * (s + 1) + length, minlength=rows * (s + 1)).reshape(rows, s + 1)

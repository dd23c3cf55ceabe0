"""Position bookkeeping on acceptance outcomes, shared by the Monte Carlo engines.

``A`` is a bool array ``(rows, S)`` of outcomes over absolute positions
(0-based here: column ``j`` is output position ``j + 1``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["next_rejection", "epoch_lengths", "epoch_histogram"]


def next_rejection(accepted: np.ndarray) -> np.ndarray:
    """For each position, the index of the first rejection at or after it (``S`` if none).

    >>> next_rejection(np.array([[True, False, True, True]]))
    array([[1, 1, 4, 4]])
    """
    rows, s = accepted.shape
    idx = np.where(accepted, s, np.arange(s))
    return np.minimum.accumulate(idx[:, ::-1], axis=1)[:, ::-1]


def epoch_lengths(accepted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split each row into DSI epochs.

    Returns ``(row, length)`` for every epoch: an epoch ends at a rejection
    (its length ``r`` counts the rejected position), and a row's last,
    unfinished epoch has the length of its accepted tail (it ends when
    position ``S`` is confirmed).  Lengths of each row add up to ``S``.

    >>> epoch_lengths(np.array([[True, False, True, True]]))
    (array([0, 0]), array([2, 2]))
    """
    rows, s = accepted.shape
    padded = np.concatenate([~accepted, np.ones((rows, 1), dtype=bool)], axis=1)
    r_idx, cols = np.nonzero(padded)
    prev = np.empty_like(cols)
    prev[1:] = cols[:-1]
    first = np.ones(cols.size, dtype=bool)
    first[1:] = r_idx[1:] != r_idx[:-1]
    prev[first] = -1
    length = cols - prev
    # the sentinel column S closes the tail; drop it where the tail is empty
    tail = cols == s
    length[tail] -= 1
    keep = length > 0
    return r_idx[keep], length[keep]


def epoch_histogram(accepted: np.ndarray) -> np.ndarray:
    """``H[row, r]`` = number of epochs of length ``r`` in each row (shape ``(rows, S + 1)``)."""
    rows, s = accepted.shape
    r_idx, length = epoch_lengths(accepted)
    return np.bincount(r_idx * (s + 1) + length, minlength=rows * (s + 1)).reshape(rows, s + 1)

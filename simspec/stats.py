"""Confidence intervals for rates: the Wilson score interval, which never leaves [0, 1].

A rate estimated from ``n`` independent units — the fraction of drafts accepted,
averaged over ``n`` contexts — is a mean of values in [0, 1].  The textbook
normal interval ``p̂ ± z·s/√n`` can cross 1 (``0.975 ± 0.049`` from 40 contexts)
and collapses to zero width when every unit agrees.  Wilson (1927) inverts the
score test instead: the interval is every ``p`` with ``|p̂ − p| ≤ z·√(p(1 − p)/n)``,

    center = (p̂ + z²/2n) / (1 + z²/n),
    half   = z / (1 + z²/n) · √(p̂(1 − p̂)/n + z²/4n²),

which lies inside [0, 1] for every ``p̂`` in [0, 1] and keeps a positive width at
``p̂ = 0`` or ``1``.  For 0/1 outcomes it is the standard score interval.  For
the mean of ``n`` independent values in [0, 1] with mean ``p`` it is
conservative: such a value ``X`` has ``Var X = E[X²] − p² ≤ E[X] − p² = p(1 − p)``,
so the score statistic's true variance is at most the ``p(1 − p)/n`` the
interval assumes (equality only for 0/1 values).

>>> lo, hi = wilson_interval(39 / 40, 40)
>>> round(lo, 3), round(hi, 3)
(0.871, 0.996)
>>> wilson_interval(1.0, 40)[1], round(wilson_interval(0.0, 40)[1], 4)
(1.0, 0.0876)
>>> lo, hi = wilson_interval([0.5, 0.9], [10, 1000])   # vectorised over p̂ and n
>>> lo.round(3), hi.round(3)
(array([0.237, 0.88 ]), array([0.763, 0.917]))
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

from .errors import InvalidParameterError

__all__ = ["wilson_interval"]


def wilson_interval(p_hat, n, level: float = 0.95):
    """Wilson score interval ``(low, high)`` at ``level`` for a rate ``p_hat`` from ``n`` independent units.

    ``p_hat`` in [0, 1] and ``n`` >= 1 broadcast against each other; scalars
    give floats, arrays give arrays.  ``low <= p_hat <= high`` and both lie in
    [0, 1].  Valid (conservative) for the mean of ``n`` independent values in
    [0, 1], not only for 0/1 outcomes — see the module docstring.
    """
    if not (isinstance(level, (int, float)) and 0.0 < float(level) < 1.0):
        raise InvalidParameterError(f"level must be a probability strictly between 0 and 1 (e.g. 0.95), got {level!r}")
    p = np.asarray(p_hat, dtype=float)
    m = np.asarray(n, dtype=float)
    if not np.all((p >= 0.0) & (p <= 1.0)):
        raise InvalidParameterError(f"p_hat must be a rate in [0, 1], got {p_hat!r}")
    if not np.all((m >= 1) & np.isfinite(m)):
        raise InvalidParameterError(f"n must count at least one independent unit, got {n!r}")
    z = NormalDist().inv_cdf(0.5 + float(level) / 2.0)
    z2n = z * z / m
    center = (p + z2n / 2.0) / (1.0 + z2n)
    half = z / (1.0 + z2n) * np.sqrt(p * (1.0 - p) / m + z2n / (4.0 * m))
    # the exact interval lies in [0, 1] and contains p̂; clip the last ulp of rounding so the floats do too
    low = np.clip(np.minimum(center - half, p), 0.0, 1.0)
    high = np.clip(np.maximum(center + half, p), 0.0, 1.0)
    if low.ndim == 0:
        return float(low), float(high)
    return low, high

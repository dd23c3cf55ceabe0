"""Validation helpers shared by the parameter objects (private)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .errors import InvalidParameterError


def finite_nonneg(name: str, value: Any, hint: str = "") -> float:
    """Return ``value`` as a float, or raise if it is negative, NaN or infinite."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(x) or x < 0:
        raise InvalidParameterError(
            f"{name} must be a finite number >= 0, got {value!r}" + (f"; {hint}" if hint else "")
        )
    return x


def positive(name: str, value: Any, hint: str = "") -> float:
    x = finite_nonneg(name, value, hint)
    if x == 0:
        raise InvalidParameterError(f"{name} must be > 0, got {value!r}" + (f"; {hint}" if hint else ""))
    return x


def probability(name: str, value: Any) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"{name} must be a number in [0, 1], got {value!r}") from None
    if not (0.0 <= x <= 1.0):
        raise InvalidParameterError(
            f"{name} must be a probability in [0, 1], got {value!r}; "
            "an acceptance rate is the chance that one draft token is accepted"
        )
    return x


def probability_array(name: str, values: Any) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        raise InvalidParameterError(f"{name} must not be empty")
    bad = ~((arr >= 0.0) & (arr <= 1.0))
    if bad.any():
        idx = np.flatnonzero(bad.ravel())[0]
        raise InvalidParameterError(
            f"{name} must hold probabilities in [0, 1]; entry {idx} is {arr.ravel()[idx]!r}"
        )
    return arr


def int_at_least(name: str, value: Any, low: int, hint: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise InvalidParameterError(f"{name} must be an integer >= {low}, got {value!r}")
    if value < low:
        raise InvalidParameterError(
            f"{name} must be an integer >= {low}, got {value!r}" + (f"; {hint}" if hint else "")
        )
    return int(value)

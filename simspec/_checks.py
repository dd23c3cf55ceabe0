"""Validation helpers shared by the parameter objects (private).

Besides domain checks (a latency is >= 0, a probability lies in [0, 1]) this
module holds simspec's *work limits*: sizes past which a call would exhaust
memory or run for hours.  Each is checked where the size enters (the CLI's
flags, ``IIDAcceptance.draw``, ``theory.best_si_lookahead``, ``des.simulate``)
by :func:`check_work`, which raises :class:`~simspec.errors.ResourceLimitError`
before any work starts and names the argument and a value that works.  The
limits are generous for real use; a caller with a bigger machine may raise the
module constants (``simspec._checks.MAX_MC_POSITIONS = ...``), at their own risk.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .errors import InvalidParameterError, ResourceLimitError

# -- work limits (see the module docstring) ----------------------------------------------------------
#: Largest ``k_max`` and lookahead: the best-lookahead searches are quadratic in ``k_max`` (10^4: ~4 s).
MAX_LOOKAHEAD = 10_000
#: Tokens of one discrete-event run (10^7 tokens of DSI: ~25 s and ~0.5 GB).
MAX_DES_TOKENS = 10_000_000
#: Replications × tokens in one discrete-event ``simulate`` call (10^8: ~4 min of DSI, one process).
MAX_DES_POSITIONS = 100_000_000
#: Replications × tokens in one Monte Carlo comparison (10^9: ~10 min at ~0.6 µs a position).
MAX_MC_POSITIONS = 1_000_000_000
#: Bytes one acceptance draw may hold at once (outcomes, uniforms and signals).
MAX_DRAW_BYTES = 4 * 2**30
#: Positions a trace file may expand to (runs included).
MAX_TRACE_POSITIONS = 20_000_000
#: Target servers a DSI count may reach: past 2^53 a float cannot even count them one by one.
MAX_SERVERS = 2**53
#: Coefficient of variation of latency jitter: a log-normal with cv 10 already puts half its mass
#: below 1/10 of the mean; beyond, almost every forward takes nearly no time and the mean is
#: carried by rare huge ones, which a simulation of finite length does not see.
MAX_LATENCY_CV = 10.0
#: Nodes of one token tree (a tree is verified in one forward: real ones hold tens to a few hundred).
MAX_TREE_NODES = 1_000_000
#: Element operations of Sequoia's tree DP (≈ levels × ranks × (budget + 1)²; 3·10^8: a few seconds).
MAX_TREE_DP_WORK = 300_000_000


def _amount(x: float, unit: str) -> str:
    if unit == "bytes":
        for scale, name in ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
            if x >= scale:
                return f"{x / scale:.3g} {name}"
        return f"{x:.0f} bytes"
    return f"{x:.3g}" + (f" {unit}" if unit else "")


def check_work(name: str, amount: float, limit: float, what_to_change: str, *, unit: str = "") -> None:
    """Raise :class:`ResourceLimitError` if ``amount`` (an estimate of work) exceeds ``limit``.

    ``name`` says what is being estimated and from which arguments (``"--reps × --tokens"``),
    ``amount`` and ``limit`` are in ``unit`` (``"bytes"`` prints KiB..TiB; anything
    else, e.g. ``"positions"``, prints as is), and ``what_to_change`` is the sentence
    a user needs: the argument or flag to lower and a value that works.

    >>> check_work("--reps × --tokens", 2e6, 1e9, "lower --reps", unit="positions")
    >>> check_work("--reps × --tokens", 1e11, 1e9, "lower --reps to at most 1000000", unit="positions")
    Traceback (most recent call last):
    ...
    simspec.errors.ResourceLimitError: --reps × --tokens is 1e+11 positions, more than the limit of 1e+09 positions (work that would not finish in reasonable time or memory); lower --reps to at most 1000000
    """
    if not amount <= limit:  # NaN included
        raise ResourceLimitError(
            f"{name} is {_amount(amount, unit)}, more than the limit of {_amount(limit, unit)} "
            f"(work that would not finish in reasonable time or memory); {what_to_change}"
        )


def check_lookahead_size(name: str, k: int) -> int:
    """``k`` (a ``k_max`` or a lookahead, already an int >= 1) within :data:`MAX_LOOKAHEAD`."""
    check_work(name, k, MAX_LOOKAHEAD,
               f"give {name} at most {MAX_LOOKAHEAD} (lookaheads beyond a few dozen never pay in practice)")
    return k


def check_montecarlo_work(reps: int, tokens: int, names: tuple[str, str] = ("reps", "tokens")) -> None:
    """Monte Carlo time: ``reps × tokens`` positions within :data:`MAX_MC_POSITIONS`."""
    fit = MAX_MC_POSITIONS // max(int(tokens), 1)
    hint = (f"lower {names[0]} to at most {fit} (or lower {names[1]})" if fit >= 2 else
            f"lower {names[1]} to at most {MAX_MC_POSITIONS // max(int(reps), 2)} (or lower {names[0]})")
    check_work(f"{names[0]} × {names[1]} ({reps} × {tokens})", float(reps) * float(tokens), MAX_MC_POSITIONS,
               hint, unit="positions")


def check_des_work(tokens: int, replications: int = 1,
                   names: tuple[str, str] = ("tokens", "replications")) -> None:
    """Discrete-event time and memory: ``tokens`` within :data:`MAX_DES_TOKENS`, ``replications × tokens``
    within :data:`MAX_DES_POSITIONS`."""
    check_work(names[0], tokens, MAX_DES_TOKENS,
               f"give {names[0]} at most {MAX_DES_TOKENS} (the latency per token settles within a few thousand)",
               unit="tokens")
    fit = MAX_DES_POSITIONS // max(int(tokens), 1)
    check_work(f"{names[1]} × {names[0]} ({replications} × {tokens})", float(replications) * float(tokens),
               MAX_DES_POSITIONS, f"lower {names[1]} to at most {fit} (or lower {names[0]})", unit="positions")


def check_rng(rng: Any, name: str = "rng") -> Any:
    """``rng`` if it is a valid source of randomness: None, an int seed >= 0, a SeedSequence or a Generator.

    Returned unchanged (an integer seed as a Python int), so callers keep their own
    handling of each kind (a Generator advances, a seed does not).
    """
    if rng is None or isinstance(rng, (np.random.Generator, np.random.SeedSequence)):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, (bool, np.bool_)):
        if rng < 0:
            raise InvalidParameterError(f"{name} must be a seed >= 0, got {rng}; numpy seeds are non-negative integers")
        return int(rng)
    raise InvalidParameterError(
        f"{name} must be None, an integer seed >= 0, a numpy.random.SeedSequence or a numpy.random.Generator, "
        f"got {rng!r}"
    )


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


def preset_key(name: str) -> str:
    """A preset's lookup key: lower case, letters and digits only (``"A100 80-GB"`` -> ``"a10080gb"``)."""
    import re

    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def lookup_preset(name: str, table: dict, what: str, otherwise: str):
    """``table``'s entry for ``name`` (case and separators ignored), or an error naming the presets,
    the closest one, and ``otherwise`` (how to build one instead)."""
    import difflib

    found = {preset_key(k): v for k, v in table.items()}.get(preset_key(name))
    if found is None:
        close = difflib.get_close_matches(str(name), list(table), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InvalidParameterError(f"no {what} preset {name!r}{hint}; the presets are {', '.join(table)} "
                                    f"(or {otherwise})")
    return found

"""Measured latency profiles: forward times over width and context, and the loop's overheads.

A *latency profile* is a CSV file in long form, one row per measured cell (the shared format of
``simspec measure`` and every tool that writes profiles):

* lines starting with ``#`` are comments (provenance: ``# source: ...``, ``# device: ...``);
* the first other line is the header.  Required columns: ``model, phase, width, context_len,
  median_ms``; optional: ``p25_ms, p75_ms, n, batch, device, dtype, threads, torch_version,
  transformers_version``, in any order.  Any other column is an error that names it (so a typo
  is caught, not ignored);
* ``phase`` is ``decode`` or ``prefill`` for a forward: ``width`` new tokens (a prefill's: the
  prompt's tokens) on top of ``context_len`` tokens already in the KV cache (0 for a fresh prompt);
* ``phase`` is ``overhead_per_round``, ``overhead_per_draft_token``,
  ``overhead_per_drafter_forward`` or ``overhead_per_emitted_token`` for the time a generation loop
  spends outside forwards, with ``width`` and ``context_len`` empty and ``median_ms`` the fitted
  cost per unit (:class:`~simspec.Overheads`' four loop fields);
* ``batch`` defaults to 1; :func:`load_profile` reads one batch size (1 unless told).

:class:`ProfileLatency` is a :class:`~simspec.LatencyModel` built from one model's cells.  The
rules (``docs/guides/profiles.md``):

* **interpolation**: piecewise linear in the width and in the context between measured points,
  bilinear on the measured ``(width, context_len)`` grid, which must be complete (a missing cell
  is refused at load, by name).  Measured times are used as they are: a profile that is not
  monotone in the width (real ones are not: kernels change with the shape) stays so;
* **outside the measured range**: the nearest measured value, and one
  :class:`ProfileRangeWarning` per model, phase, axis and side (below/above).  An axis with one
  measured point is constant along it, without a warning: a profile with one width *says* that a
  verification costs one TPOT, the papers' assumption;
* ``tpot_ms`` is the decode at width 1 (or the smallest measured width) and the smallest measured
  context; ``ttft_ms`` the prefill at the smallest measured width and context (0 with no prefill
  rows).  ``forward(prompt_len, 0, "prefill")`` interpolates the prefill over the prompt's length;
  a prompt length of 0 (unknown) gives ``ttft_ms``;
* ``context_dependent`` is True iff the decode times differ across the measured contexts;
* **spread**: the model is deterministic (the medians).  :meth:`ProfileLatency.stochastic` returns
  one that replays the measured spread: a log-normal per forward with the cell's median and
  ``σ = ln(p75/p25) / (2·z₀.₇₅)`` (``z₀.₇₅ = Φ⁻¹(0.75) ≈ 0.6745``: the quartiles of a log-normal
  are ``median·e^{∓z₀.₇₅ σ}``), median and ``σ`` interpolated like the medians; a cell without
  quartiles has ``σ = 0`` (constant).  A log-normal because forward times are positive and
  right-skewed, and because two quartiles determine it; its ``forward`` is the mean
  ``median·e^{σ²/2}`` (the :class:`~simspec.LatencyModel` contract), its ``sample`` a draw.

>>> p = load_profile("builtin:dsi-paper-a100", model="vicuna-13b@cnn-dm")
>>> p
ProfileLatency('vicuna-13b@cnn-dm', decode 1 width x 1 context, tpot_ms=37.7, source='builtin:dsi-paper-a100')
>>> p.tpot_ms, p.forward([1, 6]), p.context_dependent
(37.7, array([37.7, 37.7]), False)
"""

from __future__ import annotations

import bisect
import csv
import difflib
import io
import math
import os
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from .deployment import Overheads
from .errors import InvalidParameterError, ProfileFormatError
from .io import atomic_write_text, decoded_lines

__all__ = [
    "ProfileLatency",
    "ProfileRow",
    "ProfileRangeWarning",
    "load_profile",
    "builtin_profile",
    "profile_spec",
    "read_profile_table",
    "write_profile",
    "BUILTIN_PROFILES",
    "REQUIRED_COLUMNS",
    "OPTIONAL_COLUMNS",
    "FORWARD_PHASES",
    "OVERHEAD_PHASES",
]

REQUIRED_COLUMNS = ("model", "phase", "width", "context_len", "median_ms")
OPTIONAL_COLUMNS = ("p25_ms", "p75_ms", "n", "batch", "device", "dtype", "threads", "torch_version",
                    "transformers_version")
FORWARD_PHASES = ("prefill", "decode")
#: Overhead phases and the :class:`~simspec.Overheads` field each fills.
OVERHEAD_PHASES = {
    "overhead_per_round": "per_round_ms",
    "overhead_per_draft_token": "per_draft_token_ms",
    "overhead_per_drafter_forward": "per_drafter_forward_ms",
    "overhead_per_emitted_token": "per_emitted_token_ms",
}
#: Built-in profiles, loadable as ``"builtin:NAME"`` (files in ``simspec/data/profiles/``).
BUILTIN_PROFILES = {"dsi-paper-a100": "dsi_paper_a100.csv", "cpu-real-pair": "cpu_real_pair.csv"}

_Z75 = 0.6744897501960817  # Φ⁻¹(0.75): a log-normal's quartiles are median·exp(∓ _Z75·σ)
_MAX_TOKENS = 10**9  # a width or context past this is a typo, not a measurement
_MAX_MS = 1e9  # a forward of more than 1e9 ms (11.6 days) is a unit error
_INT_COLUMNS = ("n", "batch", "threads")
_STR_COLUMNS = ("device", "dtype", "torch_version", "transformers_version")


class ProfileRangeWarning(UserWarning):
    """A profile was asked for a width or context outside its measured range: the nearest value is used."""


@dataclass(frozen=True)
class ProfileRow:
    """One validated row of a latency profile (``line``: where it was read, 0 if built in code)."""

    model: str
    phase: str
    width: int | None
    context_len: int | None
    median_ms: float
    p25_ms: float | None = None
    p75_ms: float | None = None
    n: int | None = None
    batch: int = 1
    device: str | None = None
    dtype: str | None = None
    threads: int | None = None
    torch_version: str | None = None
    transformers_version: str | None = None
    line: int = field(default=0, compare=False)


# -- reading ----------------------------------------------------------------------------------------


def _fail(path, line: int, col: int, msg: str) -> ProfileFormatError:
    return ProfileFormatError(f"{path}:{line}:{col}: {msg}")


def _lines(data: bytes, path) -> list[tuple[int, str]]:
    """``(line number, text)`` of every line, decoded as UTF-8 (an error names the line and the column)."""
    return list(decoded_lines(io.BytesIO(data), path, "a latency profile is a UTF-8 CSV file", ProfileFormatError))


def _number(text: str, name: str, fail, low: float = 0.0, strict: bool = False) -> float:
    try:
        x = float(text)
    except ValueError:
        raise fail(f"{name} must be a number in ms, got {text[:40]!r}") from None
    if math.isnan(x):
        raise fail(f"{name} is NaN; a measured time is a number in ms")
    if x < low or (strict and x <= low) or not math.isfinite(x):
        raise fail(f"{name} must be a time in ms {'>' if strict else '>='} {low:g}, got {text[:40]!r}")
    if x > _MAX_MS:
        raise fail(f"{name} = {x:g} ms is more than {_MAX_MS:g} ms (11 days) for one forward; times are in ms")
    return x


def _integer(text: str, name: str, fail, low: int) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) < low:
        raise fail(f"{name} must be an integer >= {low}, got {text[:40]!r}")
    x = int(text)
    if x > _MAX_TOKENS:
        raise fail(f"{name} = {x} is more than {_MAX_TOKENS:g}; it counts tokens")
    return x


def _parse(data: bytes, path) -> list[ProfileRow]:
    lines = _lines(data, path)
    header: list[str] | None = None
    header_line = 0
    rows: list[ProfileRow] = []
    seen: dict[tuple, int] = {}
    for lineno, text in lines:
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        try:
            cells = next(csv.reader([text], strict=True))
        except csv.Error as exc:
            raise _fail(path, lineno, 1, f"not a CSV line ({exc})") from None
        cells = [c.strip() for c in cells]
        if header is None:
            header, header_line = cells, lineno
            _check_header(header, path, lineno)
            continue
        rows.append(_row(cells, header, path, lineno, seen))
    if header is None:
        last = lines[-1][0] if lines else 1
        raise _fail(path, last, 1, "empty profile: no header line; the first line that is not a '#' comment must "
                                   "name the columns " + ", ".join(REQUIRED_COLUMNS))
    if not rows:
        raise _fail(path, header_line, 1, "no rows after the header: a profile needs at least one measured cell")
    _check_grids(rows, path)
    return rows


def _check_header(header: list[str], path, lineno: int) -> None:
    known = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
    for col, name in enumerate(header, start=1):
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise _fail(path, lineno, col, f"unknown column {name[:40]!r}{hint}; the columns are "
                                           f"{', '.join(REQUIRED_COLUMNS)} and optionally {', '.join(OPTIONAL_COLUMNS)}")
        if name in header[: col - 1]:
            raise _fail(path, lineno, col, f"column {name!r} appears twice in the header")
    for name in REQUIRED_COLUMNS:
        if name not in header:
            raise _fail(path, lineno, len(header) + 1, f"missing required column {name!r} in the header "
                                                      f"(required: {', '.join(REQUIRED_COLUMNS)})")


def _row(cells: list[str], header: list[str], path, lineno: int, seen: dict) -> ProfileRow:
    if len(cells) != len(header):
        col = min(len(cells), len(header)) + 1
        what = (f"a cell for column {header[len(cells)]!r} is missing" if len(cells) < len(header)
                else "more cells than the header has columns")
        raise _fail(path, lineno, col, f"{what} ({len(cells)} cells, {len(header)} columns)")
    col_of = {name: i + 1 for i, name in enumerate(header)}
    value = dict(zip(header, cells))

    def fail_at(name):
        return lambda msg: _fail(path, lineno, col_of[name], f"column {name!r}: {msg}")

    model = value["model"]
    if not model:
        raise fail_at("model")("the model name is empty")
    phase = value["phase"]
    if phase not in FORWARD_PHASES and phase not in OVERHEAD_PHASES:
        raise fail_at("phase")(f"unknown phase {phase[:40]!r}; one of {', '.join(FORWARD_PHASES + tuple(OVERHEAD_PHASES))}")
    forward = phase in FORWARD_PHASES
    if forward:
        width = _integer(value["width"], "width", fail_at("width"), 1)
        context = _integer(value["context_len"], "context_len", fail_at("context_len"), 0)
    else:
        for name in ("width", "context_len"):
            if value[name]:
                raise fail_at(name)(f"an overhead row ({phase}) has no {name}: leave it empty")
        width = context = None
    median = _number(value["median_ms"], "median_ms", fail_at("median_ms"), strict=phase == "decode")
    q = {}
    for name in ("p25_ms", "p75_ms"):
        if value.get(name):
            q[name] = _number(value[name], name, fail_at(name), strict=forward)
    if len(q) == 1:
        other = "p75_ms" if "p25_ms" in q else "p25_ms"
        missing = other if other in col_of else next(iter(q))
        raise fail_at(missing)("p25_ms and p75_ms go together: give both quartiles or neither")
    if q and not q["p25_ms"] <= median <= q["p75_ms"]:
        raise fail_at("p25_ms")(f"the quartiles must bracket the median: p25_ms {q['p25_ms']:g} <= median_ms "
                                f"{median:g} <= p75_ms {q['p75_ms']:g}")
    extra: dict[str, Any] = {}
    for name in _INT_COLUMNS:
        if value.get(name):
            extra[name] = _integer(value[name], name, fail_at(name), 1)
    for name in _STR_COLUMNS:
        if value.get(name):
            extra[name] = value[name]
    row = ProfileRow(model, phase, width, context, median, q.get("p25_ms"), q.get("p75_ms"), line=lineno, **extra)
    key = (model, phase, width, context, row.batch)
    if key in seen:
        where = "width" if forward else "phase"
        raise fail_at(where)(f"duplicate cell: model {model!r}, phase {phase}"
                             + (f", width {width}, context_len {context}" if forward else "")
                             + f", batch {row.batch} was already given on line {seen[key]}")
    seen[key] = lineno
    return row


def _check_grids(rows: list[ProfileRow], path) -> None:
    """Every (model, batch, phase) of forward cells must fill its grid of measured widths × contexts."""
    groups: dict[tuple, dict[tuple[int, int], ProfileRow]] = {}
    for r in rows:
        if r.phase in FORWARD_PHASES:
            groups.setdefault((r.model, r.batch, r.phase), {})[(r.width, r.context_len)] = r
    for (model, batch, phase), cells in groups.items():
        widths = sorted({w for w, _ in cells})
        contexts = sorted({c for _, c in cells})
        for w in widths:
            for c in contexts:
                if (w, c) not in cells:
                    at = next(r for (ww, _), r in sorted(cells.items()) if ww == w)
                    raise _fail(path, at.line, 1, f"model {model!r} {phase}"
                                + (f" (batch {batch})" if batch != 1 else "")
                                + f": no cell at width {w}, context_len {c}; the measured widths {_short(widths)} and "
                                  f"contexts {_short(contexts)} must form a complete grid (interpolation is "
                                  "bilinear): measure that cell or drop the odd width or context")


def _short(xs: Sequence[int]) -> str:
    return "[" + ", ".join(map(str, xs[:8])) + (", ...]" if len(xs) > 8 else "]")


def _resolve(path: str | os.PathLike) -> tuple[bytes, str]:
    """The bytes of ``path`` (or of a built-in profile, ``"builtin:NAME"``) and the name to show for it."""
    text = os.fspath(path)
    if isinstance(text, str) and text.startswith("builtin:"):
        name = text[len("builtin:"):]
        if name not in BUILTIN_PROFILES:
            raise InvalidParameterError(f"no built-in profile {name!r}; built in: "
                                        + ", ".join(f"builtin:{n}" for n in BUILTIN_PROFILES))
        from importlib.resources import files

        return files("simspec").joinpath("data", "profiles", BUILTIN_PROFILES[name]).read_bytes(), text
    return Path(text).read_bytes(), text


def read_profile_table(path: str | os.PathLike) -> list[ProfileRow]:
    """The validated rows of a latency profile CSV (``path`` or ``"builtin:NAME"``).

    Raises :class:`~simspec.errors.ProfileFormatError` naming the file, the line
    and the column of the first problem (a bad number, a negative or NaN time,
    an unknown phase or column, a missing required column, a width < 1, a
    duplicate cell, an incomplete grid, text that is not UTF-8, an empty file).

    >>> rows = read_profile_table("builtin:dsi-paper-a100")
    >>> rows[0].model, rows[0].phase, rows[0].width, rows[0].median_ms
    ('vicuna-13b@cnn-dm', 'decode', 1, 37.7)
    """
    data, name = _resolve(path)
    return _parse(data, name)


# -- the latency model ------------------------------------------------------------------------------


def _axis(xs: tuple[int, ...], x) -> tuple[int, int, float]:
    """Bracketing indices and weight of ``x`` on the sorted points ``xs`` (clamped to their range)."""
    last = len(xs) - 1
    if last == 0 or x <= xs[0]:
        return 0, 0, 0.0
    if x >= xs[last]:
        return last, last, 0.0
    i = bisect.bisect_right(xs, x) - 1
    return i, i + 1, (x - xs[i]) / (xs[i + 1] - xs[i])


def _axis_array(xs: np.ndarray, x: np.ndarray):
    last = xs.size - 1
    xc = np.clip(x, xs[0], xs[last])
    i = np.clip(np.searchsorted(xs, xc, side="right") - 1, 0, last)
    j = np.minimum(i + 1, last)
    span = xs[j] - xs[i]
    t = np.where(j > i, (xc - xs[i]) / np.where(span > 0, span, 1), 0.0)
    return i, j, t


@dataclass(frozen=True, eq=False)
class _Grid:
    """One phase's measured cells: medians and log-normal σ on the grid ``widths × contexts``."""

    widths: tuple[int, ...]
    contexts: tuple[int, ...]
    median: np.ndarray  # (widths, contexts)
    sigma: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "_m", self.median.tolist())
        object.__setattr__(self, "_s", self.sigma.tolist())
        object.__setattr__(self, "_w", np.array(self.widths, dtype=float))
        object.__setattr__(self, "_c", np.array(self.contexts, dtype=float))

    @classmethod
    def from_rows(cls, rows: list[ProfileRow]) -> "_Grid":
        widths = tuple(sorted({r.width for r in rows}))
        contexts = tuple(sorted({r.context_len for r in rows}))
        median = np.empty((len(widths), len(contexts)))
        sigma = np.zeros_like(median)
        for r in rows:
            i, j = widths.index(r.width), contexts.index(r.context_len)
            median[i, j] = r.median_ms
            if r.p25_ms is not None and r.p75_ms is not None and r.p75_ms > r.p25_ms:
                sigma[i, j] = math.log(r.p75_ms / r.p25_ms) / (2 * _Z75)
        return cls(widths, contexts, median, sigma)

    def at(self, table: str, n, c):
        """Bilinear value of ``table`` (``"m"`` medians or ``"s"`` σ) at width ``n``, context ``c``."""
        if np.ndim(n) == 0 and np.ndim(c) == 0:
            v = getattr(self, "_" + table)
            i0, i1, tw = _axis(self.widths, n)
            j0, j1, tc = _axis(self.contexts, c)
            a, b = v[i0][j0], v[i1][j0]
            lo = a + tw * (b - a)
            if j1 == j0:
                return lo
            a, b = v[i0][j1], v[i1][j1]
            hi = a + tw * (b - a)
            return lo + tc * (hi - lo)
        v = self.median if table == "m" else self.sigma
        n, c = np.broadcast_arrays(np.asarray(n, dtype=float), np.asarray(c, dtype=float))
        i0, i1, tw = _axis_array(self._w, n)
        j0, j1, tc = _axis_array(self._c, c)
        a, b = v[i0, j0], v[i1, j0]
        lo = a + tw * (b - a)
        a, b = v[i0, j1], v[i1, j1]
        hi = a + tw * (b - a)
        return lo + tc * (hi - lo)

    def varies_with_context(self) -> bool:
        return bool(np.any(self.median != self.median[:, :1]))


def warn_out_of_range(warned: set, label: str, phase: str, axis: str, xs: Sequence, lo, hi) -> None:
    """One :class:`ProfileRangeWarning` per (phase, axis, side) when ``lo..hi`` leaves the measured ``xs``.

    The one rule every measured model follows (:class:`ProfileLatency`, the batch profiles of
    :mod:`simspec.batch_latency`): outside the measured range the nearest measured value is used.
    An axis with a single measured point is constant along it, without a warning.
    """
    if len(xs) < 2:
        return
    for side, bad, edge, val in (("below", lo < xs[0], xs[0], lo), ("above", hi > xs[-1], xs[-1], hi)):
        key = (phase, axis, side)
        if bad and key not in warned:
            warned.add(key)
            warnings.warn(
                f"{label}: {phase} {axis} {val:g} is {side} the measured range {xs[0]}..{xs[-1]}; using the nearest "
                f"measured value ({axis} {edge}) there and for every {axis} {side} it (measure that range to "
                "model it)", ProfileRangeWarning, stacklevel=5)


@dataclass(frozen=True, eq=False)
class ProfileLatency:
    """A latency model read from a measured profile: bilinear in width and context between measured cells.

    Build it with :func:`load_profile`; the module docstring gives the rules
    (interpolation, the range, ``tpot_ms``/``ttft_ms``, the quartile replay).
    ``overheads`` holds the profile's loop overheads (an :class:`~simspec.Overheads`
    with only the four ``per_*`` fields); :meth:`simspec.Scenario.from_profiles`
    charges them.

    >>> import io, warnings
    >>> p = load_profile(io.StringIO(
    ...     "model,phase,width,context_len,median_ms\\n"
    ...     "m,decode,1,0,20\\nm,decode,5,0,22\\nm,decode,9,0,21\\n"))
    >>> p.forward([1, 3, 5, 7, 9])     # linear between measured widths, not forced monotone
    array([20. , 21. , 22. , 21.5, 21. ])
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     wide = p.forward(12), p.forward(16)
    >>> wide, [type(w.message).__name__ for w in caught]    # the nearest value, one warning
    ((21.0, 21.0), ['ProfileRangeWarning'])
    """

    model: str
    source: str
    decode: _Grid
    prefill: _Grid | None = None
    overheads: Overheads = field(default_factory=Overheads)
    deterministic: bool = True
    _warned: set = field(default_factory=set, repr=False, compare=False)

    # -- LatencyModel ------------------------------------------------------------------------------
    @property
    def tpot_ms(self) -> float:
        """The decode at width 1 (or the smallest measured width) and the smallest measured context."""
        return self._value(self.decode, 1, self.decode.contexts[0], "decode", warn=False)

    @property
    def ttft_ms(self) -> float:
        """The prefill at the smallest measured width and context (0 without prefill rows)."""
        if self.prefill is None:
            return 0.0
        return self._value(self.prefill, self.prefill.widths[0], self.prefill.contexts[0], "prefill", warn=False)

    @property
    def max_width(self) -> int | None:
        """The widest measured decode forward; None when only one width is measured (constant in width)."""
        return int(max(self.decode.widths)) if len(self.decode.widths) > 1 else None

    @property
    def context_dependent(self) -> bool:
        """True iff the decode times differ across the measured contexts."""
        return self.decode.varies_with_context()

    def forward(self, n_new=1, context_len=0, phase="decode"):
        """Time in ms of one forward of ``n_new`` tokens on ``context_len`` (vectorised over ``n_new``).

        A prefill's ``n_new`` is the prompt's length (0: unknown, which gives ``ttft_ms``).
        The stochastic model returns the mean, ``median·exp(σ²/2)``.
        """
        grid = self._grid(phase)
        if grid is None:
            return 0.0 if np.ndim(n_new) == 0 else np.zeros(np.shape(n_new))
        if phase == "prefill":
            n_new = np.where(np.asarray(n_new) < 1, grid.widths[0], n_new) if np.ndim(n_new) else (
                n_new if n_new >= 1 else grid.widths[0])
        return self._value(grid, n_new, context_len, phase)

    def sample(self, rng: np.random.Generator, n_new=1, context_len=0, phase="decode"):
        """One realised forward time: the median for the deterministic model, else a log-normal draw."""
        if self.deterministic:
            return self.forward(n_new, context_len, phase)
        grid = self._grid(phase)
        if grid is None:
            return 0.0 if np.ndim(n_new) == 0 else np.zeros(np.shape(n_new))
        if phase == "prefill" and np.ndim(n_new) == 0 and n_new < 1:
            n_new = grid.widths[0]
        m = self._value(grid, n_new, context_len, phase, mean=False)
        s = grid.at("s", n_new, context_len)
        if np.ndim(m) == 0:
            return m * math.exp(s * rng.standard_normal()) if s > 0 else m
        return m * np.exp(s * rng.standard_normal(np.shape(m)))

    # -- helpers --------------------------------------------------------------------------------
    def _grid(self, phase) -> _Grid | None:
        if phase == "decode":
            return self.decode
        if phase == "prefill":
            return self.prefill
        raise InvalidParameterError(f"phase must be 'decode' or 'prefill', got {phase!r}")

    def _value(self, grid: _Grid, n, c, phase: str, warn: bool = True, mean: bool | None = None):
        if phase == "decode" and np.any(np.asarray(n) < 1):
            raise InvalidParameterError(f"n_new must be >= 1 (one forward processes at least one token), got {n!r}")
        if warn:
            self._check_range(grid, n, c, phase)
        v = grid.at("m", n, c)
        if (not self.deterministic) if mean is None else mean:
            s = grid.at("s", n, c)
            v = v * (np.exp(s * s / 2) if np.ndim(s) else math.exp(s * s / 2))
        return float(v) if np.ndim(v) == 0 else v

    def _check_range(self, grid: _Grid, n, c, phase: str) -> None:
        for axis, xs, x in (("width", grid.widths, n), ("context_len", grid.contexts, c)):
            if np.ndim(x) == 0:
                warn_out_of_range(self._warned, f"profile {self.model!r} ({self.source})", phase, axis, xs, x, x)
            else:
                x = np.asarray(x)
                if x.size:
                    warn_out_of_range(self._warned, f"profile {self.model!r} ({self.source})", phase, axis, xs,
                                      x.min(), x.max())

    def stochastic(self) -> "ProfileLatency":
        """This profile with ``deterministic = False``: ``sample`` replays the quartiles' spread (log-normal)."""
        return replace(self, deterministic=False, _warned=set())

    def __repr__(self) -> str:
        g = self.decode
        nw, nc = len(g.widths), len(g.contexts)
        extra = "" if self.deterministic else ", stochastic"
        return (f"ProfileLatency({self.model!r}, decode {nw} width{'s' * (nw != 1)} x {nc} "
                f"context{'s' * (nc != 1)}, tpot_ms={self.tpot_ms:.4g}{extra}, source={self.source!r})")


def _from_rows(rows: list[ProfileRow], source: str, model: str | None, batch: int,
               stochastic: bool) -> ProfileLatency:
    at_batch = [r for r in rows if r.batch == batch]
    models = list(dict.fromkeys(r.model for r in at_batch))
    if not models:
        batches = sorted({r.batch for r in rows})
        raise InvalidParameterError(f"{source} has no rows at batch {batch}; its batch sizes: {batches}")
    if model is None:
        if len(models) > 1:
            raise InvalidParameterError(
                f"{source} holds profiles of {len(models)} models ({', '.join(models)}); choose one with "
                f"model=... (on the command line: FILE:MODEL, e.g. {source}:{models[0]})")
        model = models[0]
    elif model not in models:
        raise InvalidParameterError(f"{source} has no model {model!r} (batch {batch}); its models: "
                                    + ", ".join(models))
    mine = [r for r in at_batch if r.model == model]
    decode = [r for r in mine if r.phase == "decode"]
    if not decode:
        raise InvalidParameterError(f"{source}: model {model!r} has no decode rows; a latency model needs at least "
                                    "the decode at width 1")
    prefill = [r for r in mine if r.phase == "prefill"]
    ov = Overheads(**{OVERHEAD_PHASES[r.phase]: r.median_ms for r in mine if r.phase in OVERHEAD_PHASES})
    return ProfileLatency(model, source, _Grid.from_rows(decode), _Grid.from_rows(prefill) if prefill else None, ov,
                          not stochastic)


def load_profile(path: str | os.PathLike | io.TextIOBase, model: str | None = None, *, batch: int = 1,
                 stochastic: bool = False) -> ProfileLatency:
    """The :class:`ProfileLatency` of ``model`` in the profile at ``path``.

    ``path``: a file, ``"builtin:NAME"`` (:data:`BUILTIN_PROFILES`), or an open
    text stream.  ``model`` may be left out when the file holds one model;
    ``batch`` selects the batch size (default 1); ``stochastic=True`` returns
    :meth:`ProfileLatency.stochastic`.  Format errors raise
    :class:`~simspec.errors.ProfileFormatError`; a missing or ambiguous model,
    :class:`~simspec.errors.InvalidParameterError` listing the file's models.
    """
    if isinstance(path, io.TextIOBase):
        rows, source = _parse(path.read().encode("utf-8"), "<stream>"), "<stream>"
    else:
        data, source = _resolve(path)
        rows = _parse(data, source)
    return _from_rows(rows, source, model, batch, stochastic)


def builtin_profile(name: str, model: str | None = None) -> ProfileLatency:
    """``load_profile("builtin:" + name, model)``.

    >>> builtin_profile("dsi-paper-a100", "phi3-4b@alpaca").tpot_ms
    33.4
    """
    return load_profile(f"builtin:{name}", model)


def profile_spec(spec: str) -> tuple[str, str | None]:
    """Split a command line's ``FILE[:MODEL]`` (or ``builtin:NAME[:MODEL]``) into ``(file, model)``.

    An existing file's name is taken whole (it may contain ``:``); otherwise the
    text after the last ``:`` is the model.

    >>> profile_spec("builtin:dsi-paper-a100:vicuna-7b@alpaca")
    ('builtin:dsi-paper-a100', 'vicuna-7b@alpaca')
    >>> profile_spec("profiles/a100.csv")
    ('profiles/a100.csv', None)
    """
    if not spec:
        raise InvalidParameterError("a profile is FILE or FILE:MODEL, got an empty string")
    if spec.startswith("builtin:"):
        name, _, model = spec[len("builtin:"):].partition(":")
        return f"builtin:{name}", model or None
    if os.path.exists(spec) or ":" not in spec:
        return spec, None
    path, _, model = spec.rpartition(":")
    return path, model or None


# -- writing ------------------------------------------------------------------------------------------


def _cell(x: Any) -> str:
    if x is None:
        return ""
    if isinstance(x, float):
        return repr(x)
    return str(x)


def write_profile(path: str | os.PathLike, rows: Iterable[ProfileRow | Mapping[str, Any]],
                  provenance: Mapping[str, Any] | None = None) -> Path:
    """Write a latency profile CSV atomically: ``# key: value`` provenance comments, the header, the rows.

    ``rows``: :class:`ProfileRow` objects or mappings with their fields.  The
    text is validated by the reader before it is written, so a file this writes
    always loads; the optional columns written are those some row fills.
    """
    rows = [r if isinstance(r, ProfileRow) else ProfileRow(**dict(r)) for r in rows]
    optional = [name for name in OPTIONAL_COLUMNS
                if any((getattr(r, name) != 1) if name == "batch" else getattr(r, name) is not None for r in rows)]
    columns = list(REQUIRED_COLUMNS) + optional
    buf = io.StringIO()
    for key, value in (provenance or {}).items():
        buf.write(f"# {key}: {' '.join(str(value).split())}\n")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([_cell(getattr(r, name)) for name in columns])
    text = buf.getvalue()
    _parse(text.encode("utf-8"), os.fspath(path))  # what the reader refuses is never written
    return atomic_write_text(path, text)



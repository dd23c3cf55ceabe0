"""A drafter's confidence, jointly with acceptance: signals for dynamic lookahead on synthetic processes.

Dynamic lookahead policies (transformers' confidence stop, DISCO, SpecDec++) read what the
drafter knows before verification — its probability of the token it drafts — and stop a round
when it looks unsure.  Recorded traces carry that signal (``simspec record`` writes
``top1_prob``); a synthetic acceptance process does not.  :class:`ConfidenceSignal` adds it to
any process with a calibrated joint law: the outcomes are the process's own (the same ones for
the same generator: common random numbers with the bare process), and at each position the
confidence is drawn given the outcome,

    conf | accepted ~ Beta(a₁, b₁),    conf | rejected ~ Beta(a₀, b₀),

so that ``P(accept | conf = x) = m f₁(x) / (m f₁(x) + (1 − m) f₀(x))`` with ``m`` the local
acceptance rate: a confident draft is more often right, as with real drafters.  The four
parameters are fitted to a recorded trace by :meth:`ConfidenceSignal.fit` (the moments of the
signal among accepted and among rejected positions), so a synthetic study can use the pair's own
calibration.

>>> from simspec import IIDAcceptance
>>> import numpy as np
>>> proc = ConfidenceSignal(IIDAcceptance(0.8))
>>> d = proc.draw(np.random.default_rng(0), 50_000, 1)
>>> x, a = d.signals["top1_prob"][0], d.accepted[0]
>>> bool(x[a].mean() > 0.7 > 0.45 > x[~a].mean())
True
>>> np.array_equal(a, IIDAcceptance(0.8).sample(np.random.default_rng(0), 50_000, 1)[0])  # the same outcomes
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .acceptance import AcceptanceDraw, AcceptanceProcess, _Base
from .errors import InvalidParameterError

__all__ = ["ConfidenceSignal", "beta_from_moments"]


def beta_from_moments(mean: float, var: float) -> tuple[float, float]:
    """The Beta ``(a, b)`` with this mean and variance (method of moments).

    >>> beta_from_moments(0.75, 0.0375)
    (3.0, 1.0)
    """
    if not (0 < mean < 1) or not (0 < var < mean * (1 - mean)):
        raise InvalidParameterError(f"no Beta law has mean {mean:g} and variance {var:g}: the variance must be in "
                                    f"(0, mean·(1 − mean)) = (0, {mean * (1 - mean):g})")
    common = mean * (1 - mean) / var - 1
    return float(round(mean * common, 12)), float(round((1 - mean) * common, 12))


def _beta(name: str, ab) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in ab)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"{name} must be a pair (a, b) of Beta parameters, got {ab!r}") from None
    if not (a > 0 and b > 0 and np.isfinite(a) and np.isfinite(b)):
        raise InvalidParameterError(f"{name} must be Beta parameters a, b > 0, got ({a:g}, {b:g})")
    return a, b


@dataclass(frozen=True)
class ConfidenceSignal(_Base):
    """Any acceptance process, plus a drafter-confidence signal drawn given each outcome.

    ``accepted_beta``/``rejected_beta``: ``(a, b)`` of the confidence's Beta law at accepted
    and at rejected positions (defaults: mean 0.8 and 0.4, a drafter whose confidence is
    informative but far from perfect); ``signal``: the name the policies read (``top1_prob``,
    as in recorded traces).
    """

    process: AcceptanceProcess
    accepted_beta: tuple[float, float] = (4.0, 1.0)
    rejected_beta: tuple[float, float] = (2.0, 3.0)
    signal: str = "top1_prob"

    def __post_init__(self) -> None:
        if not isinstance(self.process, AcceptanceProcess):
            raise InvalidParameterError(f"process must be an acceptance process, got {type(self.process).__name__}")
        object.__setattr__(self, "accepted_beta", _beta("accepted_beta", self.accepted_beta))
        object.__setattr__(self, "rejected_beta", _beta("rejected_beta", self.rejected_beta))

    @property
    def mean(self) -> float:
        return self.process.mean

    @property
    def iid_rate(self) -> float | None:
        return self.process.iid_rate

    def __getattr__(self, name: str) -> Any:  # units, prompts, ... of the wrapped process
        if name.startswith("_") or name in ("process", "accepted_beta", "rejected_beta", "signal"):
            raise AttributeError(name)
        return getattr(self.process, name)

    def draw(self, rng: np.random.Generator, n_positions: int, reps: int = 1) -> AcceptanceDraw:
        base = self.process.draw(rng, n_positions, reps)
        acc = base.accepted
        # drawn after the outcomes, so the outcomes are the bare process's for the same generator
        yes = rng.beta(*self.accepted_beta, size=acc.shape)
        no = rng.beta(*self.rejected_beta, size=acc.shape)
        return AcceptanceDraw(acc, {**dict(base.signals), self.signal: np.where(acc, yes, no)}, base.units)

    def calibration(self, x, mean: float | None = None) -> np.ndarray:
        """``P(accept | confidence = x)`` at acceptance rate ``mean`` (default the process's mean)."""
        from scipy.stats import beta

        m = self.mean if mean is None else float(mean)
        f1 = beta.pdf(np.asarray(x, dtype=float), *self.accepted_beta)
        f0 = beta.pdf(np.asarray(x, dtype=float), *self.rejected_beta)
        return m * f1 / (m * f1 + (1 - m) * f0)

    @classmethod
    def fit(cls, process: AcceptanceProcess, recorded, signal: str = "top1_prob") -> "ConfidenceSignal":
        """``process`` with the confidence law of a recorded trace (a :class:`~simspec.TraceAcceptance`).

        The Beta parameters match the mean and variance of ``signal`` over the trace's
        accepted positions and over its rejected ones (unobserved positions and missing
        signal values are skipped).
        """
        sig = (getattr(recorded, "signals", None) or {}).get(signal)
        if sig is None:
            raise InvalidParameterError(f"the recorded trace has no {signal!r} signal to fit (simspec record "
                                        "writes top1_prob)")
        xs = {True: [], False: []}
        for outs, values in zip(recorded.traces, sig):
            for o, x in zip(outs, np.asarray(values, dtype=float)):
                if o is not None and np.isfinite(x):
                    xs[bool(o)].append(min(max(x, 1e-6), 1 - 1e-6))
        params = []
        for outcome in (True, False):
            v = np.asarray(xs[outcome])
            if v.size < 2:
                raise InvalidParameterError(f"the trace has {v.size} {'accepted' if outcome else 'rejected'} "
                                            "positions with a signal; fitting needs at least 2 of each")
            params.append(beta_from_moments(float(v.mean()), float(v.var(ddof=1))))
        return cls(process, params[0], params[1], signal)

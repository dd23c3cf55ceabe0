"""Learned stop rules: DISCO and SpecDec++, on a classifier of the drafter's signals.

Both decide, after each drafted token, whether to stop drafting and verify, from what the
drafter knows (its signals: top-1 probability, entropy, top-k mass) and the token's place in
the round — never from the outcomes.  They share one model, :class:`AcceptanceClassifier`: a
logistic regression giving ``q_j``, the probability that draft ``j`` of a round is accepted given
a correct prefix, trained offline on recorded or simulated rounds (:meth:`AcceptanceClassifier.fit`,
no scikit-learn needed).

* **DISCO** — Mamou, Pereg, Korat et al., *Dynamic Speculation Lookahead Accelerates Speculative
  Decoding of Large Language Models*, arXiv 2405.04304: a classifier on the drafter's features
  (top-k probabilities, entropy, position in the round) stops the round after the first draft
  whose predicted acceptance is below a threshold, that draft still verified
  (:class:`DiscoLookahead`).  The threshold is chosen for latency on training rounds
  (:func:`tune_threshold`).
* **SpecDec++** — Huang, Guo, Wang, *SpecDec++: Boosting Speculative Decoding via Adaptive
  Candidate Lengths*, arXiv 2405.19715: stop when the predicted probability that at least one
  draft of the round is rejected, ``1 − Π_{i≤j} q_i``, exceeds a threshold (the optimal policy of
  their MDP is such a threshold rule) (:class:`SpecDecPPLookahead`).

>>> import numpy as np
>>> from simspec import IIDAcceptance
>>> from simspec.signals import ConfidenceSignal
>>> draw = ConfidenceSignal(IIDAcceptance(0.7)).draw(np.random.default_rng(0), 400, 50)
>>> clf = AcceptanceClassifier.fit(draw.accepted, draw.signals, features=("top1_prob",), round_k=5)
>>> q = clf.predict({"top1_prob": np.array([[0.2, 0.9]])}, np.array([[0, 0]]))
>>> bool(q[0, 0] < 0.5 < q[0, 1])
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from ._checks import int_at_least
from .errors import InvalidParameterError
from .lookahead import RoundView
from .montecarlo.positions import next_rejection

__all__ = ["AcceptanceClassifier", "DiscoLookahead", "SpecDecPPLookahead", "round_samples", "tune_threshold"]

POSITION = "position"  # the feature name of a draft's index in its round (0-based)


def round_samples(accepted: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The drafts of static-``k`` rounds over each row: ``(row, position, index in round)`` of every draft.

    A round drafts ``k`` tokens (fewer at the end of the row) and keeps them up to the first
    rejection; the drafts after it are never verified, so they are not samples of "accepted
    given a correct prefix".  Returns the drafts up to and including each round's first rejection.

    >>> r, p, j = round_samples(np.array([[1, 1, 0, 1, 1, 1, 1]], dtype=bool), 3)
    >>> p.tolist(), j.tolist()   # position 6 is the bonus token of the fully accepted second round
    ([0, 1, 2, 3, 4, 5], [0, 1, 2, 0, 1, 2])
    """
    k = int_at_least("k", k, 1)
    acc = np.asarray(accepted, dtype=bool)
    rows, n = acc.shape
    nxt = next_rejection(acc)
    out_r, out_p, out_j = [], [], []
    pos = np.zeros(rows, dtype=np.int64)
    live = pos < n
    while live.any():
        r = np.flatnonzero(live)
        p = pos[r]
        stop = np.minimum(np.minimum(nxt[r, p], p + k - 1), n - 1)  # last draft of the round that is verified
        for j in range(k):
            keep = p + j <= stop
            out_r.append(r[keep])
            out_p.append(p[keep] + j)
            out_j.append(np.full(int(keep.sum()), j))
        pos[r] = stop + 1 + (nxt[r, p] > stop)  # a round with no rejection emits one more (the bonus token)
        live = pos < n
    return np.concatenate(out_r), np.concatenate(out_p), np.concatenate(out_j)


@dataclass(frozen=True)
class AcceptanceClassifier:
    """Logistic model of ``P(draft accepted | correct prefix)`` from signals (and the index in the round).

    ``features``: signal names, plus ``"position"`` for the draft's index in its round;
    ``weights``/``bias`` act on the standardised features (``(x − mean) / scale``).
    """

    features: tuple[str, ...]
    weights: tuple[float, ...]
    bias: float
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    samples: int = field(default=0, compare=False)

    @classmethod
    def fit(cls, accepted: np.ndarray, signals: Mapping[str, np.ndarray], *,
            features: Sequence[str] = ("top1_prob", POSITION), round_k: int = 5, l2: float = 1e-3) -> "AcceptanceClassifier":
        """Fit on the drafts of static-``round_k`` rounds over ``accepted`` (rows × positions) and ``signals``.

        The samples are the drafts a static-``round_k`` run verifies (:func:`round_samples`):
        each draft's features and whether it was accepted.  Maximum likelihood with a small
        ridge ``l2`` (scipy's L-BFGS).  Missing signal values (NaN) are replaced by the
        feature's mean.
        """
        from scipy.optimize import minimize

        acc = np.asarray(accepted, dtype=bool)
        if acc.ndim != 2 or acc.size == 0:
            raise InvalidParameterError("accepted must be a non-empty (rows, positions) array of outcomes")
        features = tuple(features)
        if not features:
            raise InvalidParameterError("give at least one feature (a signal name or 'position')")
        r, p, j = round_samples(acc, round_k)
        X = _features(features, signals, r, p, j, acc.shape)
        y = acc[r, p].astype(float)
        if y.min() == y.max():
            raise InvalidParameterError("the training rounds hold only accepted or only rejected drafts: "
                                        "nothing to learn; use more or other rounds")
        mu = np.nanmean(X, axis=0)
        X = np.where(np.isnan(X), mu, X)
        sd = X.std(axis=0)
        sd = np.where(sd > 0, sd, 1.0)
        Z = (X - mu) / sd

        def loss(theta):
            w, b = theta[:-1], theta[-1]
            t = Z @ w + b
            nll = np.sum(np.logaddexp(0.0, t) - y * t) / y.size + l2 * (w @ w)
            g = (1.0 / (1.0 + np.exp(-t)) - y) / y.size
            return nll, np.append(Z.T @ g + 2 * l2 * w, g.sum())

        res = minimize(loss, np.zeros(Z.shape[1] + 1), jac=True, method="L-BFGS-B")
        return cls(features, tuple(float(v) for v in res.x[:-1]), float(res.x[-1]), tuple(float(v) for v in mu),
                   tuple(float(v) for v in sd), int(y.size))

    def predict(self, signals: Mapping[str, np.ndarray], index_in_round: np.ndarray,
                rows: np.ndarray | None = None, positions: np.ndarray | None = None) -> np.ndarray:
        """``q`` for drafts at ``(rows, positions)`` of the signal arrays with their index in the round.

        Without ``rows``/``positions``: every cell of the signal arrays (then
        ``index_in_round`` has their shape).
        """
        j = np.asarray(index_in_round)
        cols = []
        for name, mu, sd in zip(self.features, self.mean, self.scale):
            if name == POSITION:
                x = j.astype(float)
            else:
                sig = signals.get(name) if signals else None
                if sig is None:
                    raise InvalidParameterError(f"the classifier reads the {name!r} signal, which this acceptance "
                                                "draw lacks")
                x = np.asarray(sig, dtype=float) if rows is None else np.asarray(sig, dtype=float)[rows, positions]
            cols.append((np.where(np.isnan(x), mu, x) - mu) / sd)
        t = sum(w * c for w, c in zip(self.weights, cols)) + self.bias
        return 1.0 / (1.0 + np.exp(-t))


def _features(features, signals, r, p, j, shape) -> np.ndarray:
    cols = []
    for name in features:
        if name == POSITION:
            cols.append(j.astype(float))
            continue
        sig = signals.get(name) if signals else None
        if sig is None:
            raise InvalidParameterError(f"feature {name!r} is neither 'position' nor a signal of the draw "
                                        f"(it has {sorted(signals or {})})")
        sig = np.asarray(sig, dtype=float)
        if sig.shape != shape:
            raise InvalidParameterError(f"signal {name!r} has shape {sig.shape}, the outcomes {shape}")
        cols.append(sig[r, p])
    return np.column_stack(cols)


class _Learned:
    def __init__(self, classifier: AcceptanceClassifier, threshold: float, k_max: int, cumulative: bool) -> None:
        self.clf, self.threshold, self.k_max, self.cumulative = classifier, threshold, k_max, cumulative
        self.offsets = np.arange(k_max)

    def propose(self, view: RoundView) -> np.ndarray:
        signals = view.signals or {}
        n = next(iter(signals.values())).shape[1] if signals else int(view.position.max()) + self.k_max
        at = view.position[:, None] + self.offsets
        rows = np.broadcast_to(view.rows[:, None], at.shape)
        q = self.clf.predict(signals, np.broadcast_to(self.offsets, at.shape), rows, np.minimum(at, n - 1))
        if self.cumulative:  # SpecDec++: P(at least one rejection among drafts 0..j) > threshold
            stop = (1.0 - np.cumprod(q, axis=1)) > self.threshold
        else:  # DISCO: this draft is predicted rejected
            stop = q < self.threshold
        stop &= at < n
        return np.where(stop.any(axis=1), stop.argmax(axis=1) + 1, self.k_max).astype(np.int64)

    def observe(self, drafted: np.ndarray, accepted: np.ndarray) -> None:
        pass


def _check(threshold: float, k_max: int, classifier) -> None:
    if not isinstance(classifier, AcceptanceClassifier):
        raise InvalidParameterError(f"classifier must be an AcceptanceClassifier (AcceptanceClassifier.fit), "
                                    f"got {type(classifier).__name__}")
    if not 0.0 <= threshold <= 1.0:
        raise InvalidParameterError(f"threshold must be in [0, 1], got {threshold!r}")
    int_at_least("k_max", k_max, 1)


@dataclass(frozen=True)
class DiscoLookahead:
    """DISCO (arXiv 2405.04304): stop after the first draft whose predicted acceptance is below ``threshold``."""

    classifier: AcceptanceClassifier
    threshold: float = 0.5
    k_max: int = 20

    def __post_init__(self) -> None:
        _check(self.threshold, self.k_max, self.classifier)

    @property
    def name(self) -> str:
        return f"disco θ={self.threshold:.3g} k_max={self.k_max}"

    @property
    def static_k(self) -> None:
        return None

    def start(self, lanes: int) -> _Learned:
        return _Learned(self.classifier, float(self.threshold), int(self.k_max), cumulative=False)


@dataclass(frozen=True)
class SpecDecPPLookahead:
    """SpecDec++ (arXiv 2405.19715): stop once ``P(some draft of the round is rejected) > threshold``."""

    classifier: AcceptanceClassifier
    threshold: float = 0.7
    k_max: int = 20

    def __post_init__(self) -> None:
        _check(self.threshold, self.k_max, self.classifier)

    @property
    def name(self) -> str:
        return f"specdec++ θ={self.threshold:.3g} k_max={self.k_max}"

    @property
    def static_k(self) -> None:
        return None

    def start(self, lanes: int) -> _Learned:
        return _Learned(self.classifier, float(self.threshold), int(self.k_max), cumulative=True)


def tune_threshold(make_policy, accepted: np.ndarray, signals: Mapping[str, np.ndarray], target, drafter,
                   thresholds: Sequence[float] = tuple(np.round(np.linspace(0.05, 0.95, 19), 2)),
                   prompt_len: int = 0) -> tuple[float, dict[float, float]]:
    """The threshold whose policy has the lowest mean SI decode time on the training rows.

    ``make_policy(threshold)`` builds the policy (e.g. ``lambda t: DiscoLookahead(clf, t)``);
    returns ``(best threshold, {threshold: mean decode ms})``.  Tune on rows other than those
    you report on.
    """
    from .montecarlo.si import si_run

    if not len(thresholds):
        raise InvalidParameterError("give at least one threshold to try")
    times = {}
    for t in thresholds:
        res = si_run(np.asarray(accepted, dtype=bool), make_policy(float(t)), target, drafter, prompt_len, signals)
        times[float(t)] = float(np.mean(res["decode_ms"]))
    best = min(times, key=times.get)
    return best, times

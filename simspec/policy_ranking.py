"""Every lookahead policy on one scenario, ranked: how much does a dynamic lookahead buy over the best static one?

:func:`rank_policies` runs SI with each policy on the *same* acceptance outcomes and drafter
signals (common random numbers: the differences between policies are not noise between draws)
and reports, per policy, the latency per token, the target and drafter forwards, the GPU-seconds
per token, and the gain over the best static lookahead — a paired ratio with its 95% interval
over the independent units (replications, or the traces a replay picked).

The policies (``docs/model.md`` §6): the best static ``k``
(searched on the training draw), transformers' heuristic schedule (from ``k = 5``), its
confidence stop at its defaults (``θ = 0.4``, 20 tokens) and with ``θ`` tuned, its adaptive
threshold, DISCO and SpecDec++ (their classifier fitted and their threshold tuned on the
training draw), and the oracle, the bound no real drafter reaches.

Training (the best static ``k``, the classifier, the thresholds) uses a separate draw: an
independent one for synthetic processes; for a replayed trace the same traces (there is no other
data), which the result's notes say — the gains are then optimistic for the tuned policies.

A process without a drafter-confidence signal gets one: :class:`~simspec.signals.ConfidenceSignal`
with its default law (the notes say so); pass ``ConfidenceSignal.fit(process, recorded_trace)``
as the scenario's acceptance to use a pair's own calibration.

>>> from simspec import Scenario, MarkovAcceptance
>>> s = Scenario.from_ms(30.0, 3.0, MarkovAcceptance.from_mean(0.8, 0.9), tokens=200)
>>> r = rank_policies(s, replications=100, rng=0)
>>> r.rows[0].policy, r.rows[-1].policy
('oracle', 'static k=5 (best static)')
>>> all(row.gain.mean > 1 for row in r.rows[:-1])   # on bursty acceptance every dynamic policy gains
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from ._checks import check_rng, int_at_least
from .errors import InvalidParameterError
from .learned_lookahead import AcceptanceClassifier, DiscoLookahead, SpecDecPPLookahead, tune_threshold
from .lookahead import (
    AdaptiveConfidenceLookahead,
    ConfidenceLookahead,
    HeuristicLookahead,
    OracleLookahead,
    StaticLookahead,
)
from .montecarlo.si import si_run
from .records import Estimate, TableRecord, to_frame
from .signals import ConfidenceSignal

__all__ = ["PolicyRow", "PolicyRanking", "rank_policies", "with_signal", "train_learned"]

SIGNAL = "top1_prob"


@dataclass(frozen=True)
class PolicyRow:
    """One policy's SI run on the common outcomes."""

    policy: str
    latency_per_token_ms: Estimate
    target_forwards: Estimate
    drafter_forwards: Estimate
    gpu_seconds_per_token: Estimate
    gain: Estimate  # best static decode time / this policy's, paired

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"policy": self.policy}
        for name in ("latency_per_token_ms", "target_forwards", "drafter_forwards", "gpu_seconds_per_token", "gain"):
            e = getattr(self, name)
            out[name] = e.mean
            out[name + "_ci"] = [e.low, e.high]
        return out


@dataclass(frozen=True)
class PolicyRanking(TableRecord):
    """The policies, fastest first, and how they were trained."""

    rows: tuple[PolicyRow, ...]
    scenario: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def to_records(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.rows]

    def to_dict(self) -> dict[str, Any]:
        return {"scenario": dict(self.scenario), "notes": list(self.notes), "rows": self.to_records()}

    def to_frame(self):
        """One row per policy (needs pandas)."""
        return to_frame(self.to_records())

    def figure(self, ax=None):
        """The gains as bars with their intervals (:func:`simspec.plots.ranking_figure`)."""
        from .plots import ranking_figure

        return ranking_figure(self, ax)

    def _table(self):
        n = self.rows[0].gain.n if self.rows else 0
        head = f"SI lookahead policies on common outcomes, fastest first ({n} independent units)"
        headers = ["ms/token", "target fwd", "drafter fwd", "GPU-s/token", "gain vs best static"]
        rows = [(r.policy, [r.latency_per_token_ms, r.target_forwards, r.drafter_forwards, r.gpu_seconds_per_token,
                            r.gain]) for r in self.rows]
        return head, headers, rows, [f"({note})" for note in self.notes]


def with_signal(acceptance) -> tuple[Any, str | None]:
    """``acceptance`` if its draws carry the drafter's ``top1_prob``, else wrapped in ConfidenceSignal (and a note)."""
    if SIGNAL in acceptance.draw(np.random.default_rng(0), 2, 1).signals:
        return acceptance, None
    return ConfidenceSignal(acceptance), (
        f"no drafter signal in {type(acceptance).__name__}: confidence drawn from ConfidenceSignal's default law "
        "(Beta(4, 1) when accepted, Beta(2, 3) when rejected)")


def train_learned(scenario, kind: str, *, k_max: int = 20, replications: int = 200, rng=None,
                  thresholds=None, accepted=None, signals=None):
    """DISCO (``kind="disco"``) or SpecDec++ (``"specdec"``) trained on a draw of the scenario's acceptance.

    The classifier is fitted on the verified drafts of the best static ``k``'s rounds and the
    threshold tuned for SI latency, both on ``replications`` rows drawn with ``rng`` (use other
    rows to evaluate), or on the given ``accepted`` and ``signals`` arrays.  The acceptance must
    carry the ``top1_prob`` signal (see :func:`with_signal`).  Returns the policy.
    """
    s = scenario
    if kind not in ("disco", "specdec"):
        raise InvalidParameterError(f"kind must be 'disco' or 'specdec', got {kind!r}")
    if accepted is None:
        A, sig, _ = _draw(s.acceptance, np.random.default_rng(check_rng(rng)), s.tokens,
                          int_at_least("replications", replications, 2))
    else:
        A, sig = np.asarray(accepted, dtype=bool), dict(signals or {})
    if SIGNAL not in sig:
        raise InvalidParameterError(f"the acceptance draws no {SIGNAL!r} signal to learn from; wrap it: "
                                    "ConfidenceSignal(acceptance) or ConfidenceSignal.fit(acceptance, trace)")
    grid = tuple(np.round(np.linspace(0.05, 0.95, 19), 2)) if thresholds is None else tuple(thresholds)
    k_best = min(range(1, min(s.k_max, 64) + 1), key=lambda k: float(np.mean(
        si_run(A, StaticLookahead(k), s.target, s.drafter, s.prompt_len, sig)["decode_ms"])))
    clf = AcceptanceClassifier.fit(A, sig, features=(SIGNAL, "position"), round_k=max(k_best, 2))
    make = (lambda t: DiscoLookahead(clf, t, k_max)) if kind == "disco" else (
        lambda t: SpecDecPPLookahead(clf, t, k_max))
    return make(tune_threshold(make, A, sig, s.target, s.drafter, grid, s.prompt_len)[0])


def _draw(process, gen, tokens, reps):
    d = process.draw(gen, tokens, reps)
    return d.accepted, dict(d.signals), d.units


def rank_policies(scenario, *, replications: int = 200, rng=None, train_replications: int | None = None,
                  k_max: int = 20, thresholds=None) -> PolicyRanking:
    """Run every lookahead policy in SI on the scenario's common outcomes; see the module docstring.

    ``replications``: evaluation rows (each ``scenario.tokens`` long); ``train_replications``:
    rows of the training draw (default the same); ``k_max``: the dynamic policies' cap
    (transformers' ``num_assistant_tokens``, default 20); ``thresholds``: the grid tuned over.
    """
    s = scenario
    reps = int_at_least("replications", replications, 2, "intervals need at least two replications")
    train_reps = reps if train_replications is None else int_at_least("train_replications", train_replications, 2)
    k_max = int_at_least("k_max", k_max, 1)
    gen = np.random.default_rng(check_rng(rng))
    train_gen, eval_gen = gen.spawn(2)
    notes = []
    process, note = with_signal(s.acceptance)
    if note:
        notes.append(note)
    if any(getattr(m, "context_dependent", False) for m in (s.target, s.drafter)):
        notes.append(f"forwards priced at context {s.prompt_len} (the prompt's): the Monte Carlo does not "
                     "follow the context as it grows; the discrete-event engine (simulate) does")
    A_tr, sig_tr, _ = _draw(process, train_gen, s.tokens, train_reps)
    A, sig, units = _draw(process, eval_gen, s.tokens, reps)
    if units is not None:
        notes.append("a replayed trace: trained and tuned on the same traces it is scored on (optimistic gains "
                     "for the tuned policies)")
    target, drafter, plen = s.target, s.drafter, s.prompt_len
    grid = tuple(np.round(np.linspace(0.05, 0.95, 19), 2)) if thresholds is None else tuple(thresholds)

    def mean_ms(policy, acc, signals):
        return float(np.mean(si_run(acc, policy, target, drafter, plen, signals)["decode_ms"]))

    k_best = min(range(1, min(s.k_max, 64) + 1), key=lambda k: mean_ms(StaticLookahead(k), A_tr, sig_tr))
    disco, specdec = (train_learned(s, kind, k_max=k_max, thresholds=grid, accepted=A_tr, signals=sig_tr)
                      for kind in ("disco", "specdec"))
    tuned = {
        "confidence": tune_threshold(lambda t: ConfidenceLookahead(t, k_max), A_tr, sig_tr, target, drafter, grid,
                                     plen)[0],
        "disco": disco.threshold,
        "specdec": specdec.threshold,
    }
    policies = [
        StaticLookahead(k_best),
        HeuristicLookahead(5, max(5, s.k_max)),
        ConfidenceLookahead(0.4, k_max),
        ConfidenceLookahead(tuned["confidence"], k_max),
        AdaptiveConfidenceLookahead(0.4, k_max),
        disco,
        specdec,
        OracleLookahead(),
    ]
    runs = [si_run(A, p, target, drafter, plen, sig) for p in policies]
    S = float(s.tokens)
    base = runs[0]["decode_ms"]
    rows = []
    for p, r in zip(policies, runs):
        busy_s = (r["target_busy_ms"] + r["drafter_busy_ms"]) / 1000.0
        name = p.name + (" (best static)" if p is policies[0] else "") + (
            " (transformers' default)" if p is policies[2] else "")
        rows.append(PolicyRow(
            name, Estimate.from_samples(r["decode_ms"] / S, units, "ms"),
            Estimate.from_samples(r["target_forwards"], units), Estimate.from_samples(r["drafter_forwards"], units),
            Estimate.from_samples(busy_s / S, units, "s"), Estimate.ratio(base, r["decode_ms"], units)))
    rows.sort(key=lambda row: row.latency_per_token_ms.mean)
    desc = s.describe() | {"replications": reps, "train_replications": train_reps, "k_max": k_max,
                           "tuned_thresholds": tuned, "best_static_k": k_best}
    return PolicyRanking(tuple(rows), desc, tuple(notes))

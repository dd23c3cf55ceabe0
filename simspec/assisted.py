"""transformers' assisted generation with a drafter model, round by round, from a recorded trace.

The rules of transformers' ``generate(..., assistant_model=drafter)`` (``AssistedCandidateGenerator`` and
``_assisted_decoding`` in ``transformers/generation/``; read in transformers 5.24), greedy, one shared
vocabulary:

* a round at ``L`` tokens drafts at most ``min(num_assistant_tokens, max_length − L − 1)`` tokens; when
  that is 0 the round proposes nothing and the target emits one token alone;
* the drafter drafts greedily and stops early after a token whose probability is below
  ``assistant_confidence_threshold`` (that token is still proposed; default 0.4 — and a ``None`` in
  the assistant's generation config falls back to that default: only ``0`` turns the stop off);
* the target accepts the longest prefix of the proposals equal to its own greedy tokens and emits one more
  (cut at ``max_length``);
* ``num_assistant_tokens_schedule="heuristic"`` (and ``"heuristic_transient"``) adds 2 to the lookahead
  when the round accepted every proposal — a round that proposed nothing counts as all accepted — and
  else subtracts 1, never below 1; ``"constant"`` keeps it (the default, with 20 tokens). The persistent
  ``"heuristic"`` carries the lookahead from one ``generate`` call to the next (``initial_k``);
* with scikit-learn installed the threshold adapts (a ROC fit after each round) — not modelled here:
  :func:`assisted_rounds` refuses to pretend, see ``adaptive_threshold``.

Greedy assisted generation emits the target's greedy output, so with a shared vocabulary the rounds follow
from a per-position trace recorded by teacher forcing (``simspec record``): the drafter's token at a
position equals the target's there (``outcomes[j] = 1``) exactly when its greedy proposal would, as long
as the round has matched so far. After a round's first mismatch the drafter continues from its own
(diverged) tokens, whose probabilities the trace does not hold: the number of proposals after the first
mismatch then uses the teacher-forced top-1 probabilities as a stand-in (exact when the drafter stops at
or before the mismatch, or when no threshold is set). The result is a per-round trace
(``docs/guides/real-traces.md``) that a replay prices forward by forward.

>>> outcomes = [1, 1, 0, 1, 1, 1, 1, 0, 1, 1]
>>> [(r["drafted"], r["accepted"]) for r in assisted_rounds(outcomes, max_new_tokens=10, num_assistant_tokens=3,
...                                                          confidence_threshold=None)]
[(3, 2), (3, 3), (2, 0), (1, 1)]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from ._checks import int_at_least
from .errors import InvalidParameterError

__all__ = ["assisted_rounds", "TRANSFORMERS_DEFAULTS"]

#: transformers' defaults for an assistant model (its generation config), transformers 5.x
TRANSFORMERS_DEFAULTS = {"num_assistant_tokens": 20, "num_assistant_tokens_schedule": "constant",
                         "assistant_confidence_threshold": 0.4}

Schedule = Literal["constant", "heuristic", "heuristic_transient"]


def assisted_rounds(outcomes: Sequence[int | None], top1_prob: Sequence[float | None] | None = None, *,
                    max_new_tokens: int | None = None, num_assistant_tokens: int = 20,
                    schedule: Schedule = "constant", confidence_threshold: float | None = 0.4,
                    initial_k: int | None = None, adaptive_threshold: bool = False, prompt: str | int = 0,
                    prompt_len: int | None = None) -> list[dict]:
    """Rounds of greedy assisted generation whose drafter's outcomes and top-1 probabilities are given.

    ``outcomes[j]``: 1 if the drafter's greedy token at output position ``j`` equals the target's
    (teacher-forced), 0 if not; ``top1_prob[j]``: the drafter's probability of its token there (needed
    when ``confidence_threshold`` is set). ``max_new_tokens``: tokens generated (default: the trace's
    length). Returns per-round trace records ``{"prompt", "prompt_len", "round", "drafted", "accepted",
    "drafter_forwards", "k", "k_next"}`` (``k``: the lookahead in force for the round; ``k_next``: after
    the schedule's update — pass the last one as ``initial_k`` of the next prompt for ``"heuristic"``). Rounds emit ``accepted + 1``
    tokens each, ``max_new_tokens`` in all.
    """
    if adaptive_threshold:
        raise InvalidParameterError(
            "the adaptive confidence threshold (transformers with scikit-learn installed) is not modelled: "
            "uninstall scikit-learn for the measured runs, or set assistant_confidence_threshold=None"
        )
    out = np.asarray([np.nan if x is None else x for x in outcomes], dtype=float)
    if out.ndim != 1 or out.size == 0:
        raise InvalidParameterError("outcomes must be a non-empty sequence of 0/1 per output position")
    if np.isnan(out).any():
        raise InvalidParameterError(
            f"outcome {int(np.flatnonzero(np.isnan(out))[0])} is unobserved (null); rounds need every position "
            "of a teacher-forced trace"
        )
    if not np.isin(out, (0, 1)).all():
        raise InvalidParameterError("outcomes must be 0 or 1")
    n = out.size if max_new_tokens is None else int_at_least("max_new_tokens", max_new_tokens, 1)
    if n > out.size:
        raise InvalidParameterError(f"the trace has {out.size} positions but max_new_tokens={n}: record more tokens")
    if schedule not in ("constant", "heuristic", "heuristic_transient"):
        raise InvalidParameterError(f"schedule must be 'constant', 'heuristic' or 'heuristic_transient', got {schedule!r}")
    theta = None if not confidence_threshold else float(confidence_threshold)
    if theta is not None:
        if top1_prob is None:
            raise InvalidParameterError("a confidence threshold needs the drafter's top-1 probabilities (top1_prob)")
        prob = np.asarray([np.nan if x is None else x for x in top1_prob], dtype=float)
        if prob.shape != out.shape:
            raise InvalidParameterError(f"top1_prob has {prob.size} entries for {out.size} outcomes")
    k = int_at_least("num_assistant_tokens", num_assistant_tokens if initial_k is None else initial_k, 1)
    rounds = []
    g = 0
    i = 0
    while g < n:
        cap = min(k, n - g - 1)  # transformers: min(num_assistant_tokens, max_length - cur_len - 1)
        drafted = cap
        if theta is not None and cap > 0:
            window = prob[g:g + cap]
            if np.isnan(window).any():
                raise InvalidParameterError(f"top1_prob is null at position {g + int(np.flatnonzero(np.isnan(window))[0])}")
            low = np.flatnonzero(window < theta)
            if low.size:
                drafted = int(low[0]) + 1
        ok = out[g:g + drafted]
        accepted = int(drafted if ok.all() else np.argmin(ok))
        emitted = min(accepted + 1, n - g)
        accepted = min(accepted, emitted - 1)
        k_in_force = k
        if schedule != "constant":
            k = k + 2 if accepted == drafted else max(1, k - 1)
        rounds.append({"prompt": prompt, "prompt_len": prompt_len, "round": i, "drafted": drafted,
                       "accepted": accepted, "drafter_forwards": drafted, "k": k_in_force, "k_next": k})
        g += emitted
        i += 1
    return rounds

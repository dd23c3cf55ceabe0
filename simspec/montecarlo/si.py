"""SI (speculative inference) on acceptance outcomes, vectorised over lanes.

Leviathan, Kalman & Matias 2023; Chen et al. 2023.  Each round drafts ``k``
tokens, then one target forward of width ``k + 1`` verifies them; with ``n``
leading drafts accepted, ``n + 1`` tokens are emitted (the target's correction,
or the bonus token when all ``k`` are accepted).  Drafter and target never
overlap.  Near the end the lookahead is cut to the positions left minus one,
as transformers does, so a run emits exactly ``S`` tokens.

A lane is one replication run with one policy: many lanes may share a row of
outcomes (common random numbers across lookaheads).
"""

from __future__ import annotations

import numpy as np

from ..latency import LatencyModel
from ..lookahead import LookaheadPolicy, RoundView
from .positions import next_rejection

__all__ = ["si_rounds", "si_run"]


def si_rounds(
    nxt: np.ndarray,
    rows: np.ndarray,
    policy: LookaheadPolicy,
    signals=None,
    record_widths: bool = False,
) -> dict[str, np.ndarray]:
    """Drive SI rounds on lanes until every lane has emitted all positions.

    ``nxt`` is :func:`next_rejection` of the outcomes, ``rows`` the outcome
    row of each lane.  Returns per-lane ``rounds``, ``drafts`` (drafter
    forwards) and ``accepted`` (accepted drafts), and with ``record_widths``
    a ``(lanes, k_max+2)`` count of verification widths, for non-constant
    verification latencies.
    """
    s = nxt.shape[1]
    lanes = rows.size
    ctrl = policy.start(lanes)
    pos = np.zeros(lanes, dtype=np.int64)
    rounds = np.zeros(lanes, dtype=np.int64)
    drafts = np.zeros(lanes, dtype=np.int64)
    acc = np.zeros(lanes, dtype=np.int64)
    widths: list[tuple[np.ndarray, np.ndarray]] = []
    active = np.ones(lanes, dtype=bool)
    while active.any():
        view = RoundView(pos, s - pos, rows, signals or {}, nxt)
        k = np.minimum(np.asarray(ctrl.propose(view), dtype=np.int64), s - pos - 1)
        k = np.where(active, np.maximum(k, 0), 0)
        run = nxt[rows, np.minimum(pos, s - 1)] - pos
        n = np.where(active, np.minimum(run, k), 0)  # finished lanes sit at pos = S: their run is -1
        rounds += active
        drafts += k
        acc += n
        if record_widths:
            widths.append((np.flatnonzero(active), k[active] + 1))
        ctrl.observe(k, n)
        pos = pos + np.where(active, n + 1, 0)
        active = pos < s
    out = {"rounds": rounds, "drafts": drafts, "accepted": acc}
    if record_widths:
        lane_idx = np.concatenate([w[0] for w in widths])
        width = np.concatenate([w[1] for w in widths])
        out["width_lane"], out["width"] = lane_idx, width
    return out


def si_run(
    accepted: np.ndarray,
    policy: LookaheadPolicy,
    target: LatencyModel,
    drafter: LatencyModel,
    prompt_len: int = 0,
    signals=None,
) -> dict[str, np.ndarray]:
    """Decode time and costs of SI, one lane per row of ``accepted``."""
    rows = np.arange(accepted.shape[0])
    res = si_rounds(next_rejection(accepted), rows, policy, signals, record_widths=True)
    d = float(drafter.forward(1, prompt_len))
    verify = np.asarray(target.forward(res["width"], prompt_len), dtype=float)
    verify_ms = np.bincount(res["width_lane"], weights=verify, minlength=rows.size)
    draft_ms = res["drafts"] * d
    return {
        "decode_ms": draft_ms + verify_ms,
        "target_forwards": res["rounds"].astype(float),
        "target_forwards_wasted": np.zeros(rows.size),
        "drafter_forwards": res["drafts"].astype(float),
        "target_busy_ms": verify_ms,
        "drafter_busy_ms": draft_ms,
        "rounds": res["rounds"],
        "accepted_drafts": res["accepted"],
    }

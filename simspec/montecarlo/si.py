"""SI (speculative inference) on acceptance outcomes, vectorised over lanes.

Leviathan, Kalman & Matias 2023; Chen et al. 2023.  Each round drafts ``k``
tokens, then one target forward of width ``k + 1`` verifies them; with ``n``
leading drafts accepted, ``n + 1`` tokens are emitted (the target's correction,
or the bonus token when all ``k`` are accepted).  Drafter and target never
overlap.  Near the end the lookahead is cut to the positions left minus one,
as transformers does, so a run emits exactly ``S`` tokens.  The round itself is
:mod:`simspec.rounds`, shared with the discrete-event engine.

A lane is one replication run with one policy: many lanes may share a row of
outcomes (common random numbers across lookaheads).  A static lookahead needs no
loop over rounds (:func:`simspec.rounds.static_rounds`); a dynamic policy runs
the round loop, one numpy step per round over all lanes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..deployment import Overheads
from ..latency import LatencyModel
from ..lookahead import LookaheadPolicy, RoundView, checked_proposal
from ..rounds import BLOCK_ELEMENTS, si_round_lanes, static_rounds
from .positions import next_rejection

__all__ = ["LaneLookahead", "si_rounds", "si_run"]


class _LaneConstant:
    def __init__(self, k: np.ndarray) -> None:
        self.k = k

    def propose(self, view):
        return self.k

    def observe(self, drafted, accepted) -> None:
        pass


@dataclass(frozen=True)
class LaneLookahead:
    """A static lookahead that differs per lane (for sweeps over ``k`` on shared outcomes)."""

    k: np.ndarray

    @property
    def name(self) -> str:
        return "static (per lane)"

    @property
    def static_k(self) -> None:
        return None

    def start(self, lanes: int) -> _LaneConstant:
        return _LaneConstant(np.broadcast_to(np.asarray(self.k, dtype=np.int64), (lanes,)))


def _static(policy: LookaheadPolicy):
    """The lookahead of a static policy (an int, or one per lane), else ``None``."""
    if isinstance(policy, LaneLookahead):
        return policy.k
    return getattr(policy, "static_k", None)


def si_rounds(
    nxt: np.ndarray,
    rows: np.ndarray,
    policy: LookaheadPolicy,
    signals=None,
    record_widths: bool = False,
) -> dict[str, np.ndarray]:
    """Drive SI rounds (:mod:`simspec.rounds`) on lanes until every lane has emitted all positions.

    ``nxt`` is :func:`next_rejection` of the outcomes, ``rows`` the outcome
    row of each lane.  Returns per-lane ``rounds``, ``drafts`` (drafter
    forwards) and ``accepted`` (accepted drafts), and with ``record_widths``
    how many verifications of each width each lane ran (``width_lane``,
    ``width``, ``width_count``, sorted by lane then width), for non-constant
    verification latencies.  A static lookahead takes
    :func:`simspec.rounds.static_rounds` (no loop over rounds; the same numbers).
    """
    rows = np.asarray(rows)
    k = _static(policy)
    if k is not None:
        accepted = nxt != np.arange(nxt.shape[1], dtype=nxt.dtype)
        return static_rounds(accepted, k, rows, record_widths)
    return _loop_rounds(nxt, rows, policy, signals, record_widths)


def _loop_rounds(nxt, rows, policy, signals=None, record_widths=False) -> dict[str, np.ndarray]:
    """The round loop: any policy, one numpy step per round over the lanes still running."""
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
        run_end = nxt[rows, np.minimum(pos, s - 1)]
        k, n = si_round_lanes(pos, checked_proposal(ctrl.propose(view), active, policy.name), run_end, s)
        k = np.where(active, k, 0)
        n = np.where(active, n, 0)  # finished lanes sit at pos = S
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
        lane_idx = np.concatenate([w[0] for w in widths]) if widths else np.zeros(0, dtype=np.int64)
        width = np.concatenate([w[1] for w in widths]) if widths else np.zeros(0, dtype=np.int64)
        top = int(width.max()) + 1 if width.size else 1
        key, count = np.unique(lane_idx * top + width, return_counts=True)
        out["width_lane"], out["width"], out["width_count"] = key // top, key % top, count.astype(np.int64)
    return out


def _loop_blocks(accepted: np.ndarray, policy: LookaheadPolicy, signals) -> dict[str, np.ndarray]:
    """:func:`_loop_rounds` with one lane per row, on blocks of rows (results as in one pass)."""
    reps, S = accepted.shape
    step = max(BLOCK_ELEMENTS // max(S, 1), 1)
    if reps <= step:
        return _loop_rounds(next_rejection(accepted), np.arange(reps), policy, signals, True)
    parts = []
    for lo in range(0, reps, step):
        hi = min(lo + step, reps)
        sig = {name: v[lo:hi] for name, v in (signals or {}).items()}
        part = _loop_rounds(next_rejection(accepted[lo:hi]), np.arange(hi - lo), policy, sig, True)
        part["width_lane"] = part["width_lane"] + lo
        parts.append(part)
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def si_run(
    accepted: np.ndarray,
    policy: LookaheadPolicy,
    target: LatencyModel,
    drafter: LatencyModel,
    prompt_len: int = 0,
    signals=None,
    overheads: Overheads | None = None,
) -> dict[str, np.ndarray]:
    """Decode time and costs of SI, one lane per row of ``accepted``.

    ``overheads``: its loop overheads are added to the decode time (not to
    the busy times): ``rounds·per_round + drafts·(per_draft_token +
    per_drafter_forward) + S·per_emitted_token`` (one drafter forward per draft).

    A static lookahead is counted by :func:`simspec.rounds.static_rounds`
    straight from the outcomes; a dynamic one runs the round loop on blocks of
    rows (each lane's policy sees its own row only, so blocks change nothing).
    Either way the temporaries are those of about
    :data:`simspec.rounds.BLOCK_ELEMENTS` outcomes, whatever the number of rows.
    """
    reps, S = accepted.shape
    k = _static(policy)
    d = float(drafter.forward(1, prompt_len))
    if k is not None:
        # every round verifies k + 1 tokens but the few cut short by the end of the run
        res = static_rounds(accepted, k, None, cuts=True)
        width = np.clip(k, 0, S) + 1  # one for all lanes, or one per lane
        full_ms = target.forward(width, prompt_len)
        # the cut rounds by lane, then width: each lane's sum in the round loop's order, the same floats
        c_lane, c_width = res["cut_lane"], res["cut_width"]
        order = np.argsort(c_lane * (S + 2) + c_width, kind="stable")
        c_lane, c_width = c_lane[order], c_width[order]
        full = res["rounds"] - np.bincount(c_lane, minlength=reps)
        cut_ms = np.asarray(target.forward(c_width, prompt_len), dtype=float)
        verify_ms = np.bincount(c_lane, weights=cut_ms, minlength=reps) + full * np.asarray(full_ms, dtype=float)
    else:
        res = _loop_blocks(accepted, policy, signals)
        verify = np.asarray(target.forward(res["width"], prompt_len), dtype=float)  # a few entries per lane
        verify_ms = np.bincount(res["width_lane"], weights=res["width_count"] * verify, minlength=reps)
    draft_ms = res["drafts"] * d
    decode_ms = draft_ms + verify_ms
    if overheads is not None and not overheads.loop_zero:
        decode_ms += (res["rounds"] * overheads.per_round_ms + res["drafts"] * overheads.per_draft_ms
                      + S * overheads.per_emitted_token_ms)
    return {
        "decode_ms": decode_ms,
        "target_forwards": res["rounds"].astype(float),
        "target_forwards_wasted": np.zeros(reps),
        "drafter_forwards": res["drafts"].astype(float),
        "target_busy_ms": verify_ms,
        "drafter_busy_ms": draft_ms,
        "rounds": res["rounds"],
        "accepted_drafts": res["accepted"],
    }

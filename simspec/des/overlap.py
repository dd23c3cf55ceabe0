"""Drafting in parallel with verification: PEARL and an asynchronous drafter/verifier pipeline.

Both run the drafter and the target on devices of their own, at the same time; both are
lossless (every emitted token is a target token or a draft the target accepted) and read the
same acceptance outcomes as SI and DSI (``accepted[j]``: the draft at position ``j`` is
accepted given a correct prefix).

**PEARL** (Liu et al., "PEARL: Parallel Speculative Decoding with Adaptive Draft Length",
ICLR 2025, arXiv 2408.11850): a window of ``γ`` drafts, two modes.  The rules simspec uses:

* *pre-verify* at position ``p``: the target runs a forward of width 1 on the confirmed
  prefix while the drafter drafts ``x_p .. x_{p+γ-1}``; the round takes
  ``max(T(1), drafting)`` and emits one token — ``x_p`` if it is accepted (then the next
  round is post-verify with the window ``x_{p+1} .. x_{p+γ-1}``), else the target's token
  (the drafts are discarded; pre-verify again at ``p + 1``);
* *post-verify* with a window of ``w`` drafts at ``p``: the target verifies them (a forward
  of width ``w + 1``) while the drafter drafts the next ``γ`` positions after the window,
  assuming it is accepted; the round takes ``max(T(w + 1), drafting)``.  All ``w``
  accepted: the ``w`` tokens are emitted and the next round is post-verify with the fresh
  window (no bonus token: the drafter's continuation stands in for it).  First rejection at
  ``n < w``: ``n + 1`` tokens (the last the target's), the continuation is discarded, and
  the next round is pre-verify.

``γ`` defaults to the paper's adaptive choice, the drafts that fit in one target forward:
``max(2, round(T(1)/d))``.  Every window is cut at the end of generation.  Closed form for
i.i.d. acceptance and fixed latencies: :func:`simspec.theory.pearl_latency_per_token`
(``theory/overlap.md``).

**Pipeline** (AMUSD, McDanel 2024, arXiv 2410.17375; PipeSpec, McDanel et al. 2025): the
drafter drafts continuously from the newest speculated token; whenever the target is free,
it verifies every draft made since the confirmed prefix (at least one, at most ``k``, the
lookahead) in one forward of width ``m + 1``.  All ``m`` accepted: they are confirmed and the
target takes the next drafts (no bonus token).  First rejection at ``n < m``: ``n + 1``
tokens (the last the target's) are confirmed, every draft past them is discarded, and the
drafter restarts after the correction at once (its forward in flight is abandoned).  With
nothing drafted, the target waits for the next draft.  No closed form: the two devices'
phases interleave.
"""

from __future__ import annotations

import numpy as np
import simpy

from ..latency import LatencyModel, sample_latency

__all__ = ["pearl_process", "pipeline_process", "pearl_window"]


def pearl_window(target: LatencyModel, drafter: LatencyModel) -> int:
    """PEARL's adaptive window: the drafts that fit in one decode forward of the target (at least 2)."""
    return max(2, int(round(float(target.tpot_ms) / max(float(drafter.tpot_ms), 1e-300))))


def _drafting(drafter, rng, prompt_len: int, start: int, n: int) -> float:
    return sum(sample_latency(drafter, rng, 1, prompt_len + start + j) for j in range(n))


def pearl_process(env: simpy.Environment, acc: np.ndarray, gamma: int, target: LatencyModel,
                  drafter: LatencyModel, rng: np.random.Generator, prompt_len: int, stats: dict):
    """Generator process of one PEARL run over the outcomes ``acc``; fills ``stats``."""
    S = acc.size
    ok = acc.tolist()
    pos = 0
    window = 0  # drafts waiting for post-verify (0: pre-verify)
    while pos < S:
        if window == 0:  # pre-verify: the target decodes position pos while the drafter drafts the window
            n_draft = min(gamma, S - pos)
            d = _drafting(drafter, rng, prompt_len, pos, n_draft)
            v = sample_latency(target, rng, 1, prompt_len + pos)
            yield env.timeout(max(v, d))
            stats["target_busy"] += v
            stats["drafter_busy"] += d
            stats["drafts"] += n_draft
            stats["rounds"] += 1
            if ok[pos] and n_draft > 1:
                window = n_draft - 1
            elif not ok[pos]:
                stats["rejections"] += 1
            pos += 1
            continue
        # post-verify: verify the window while drafting the next gamma positions after it
        w = min(window, S - pos)
        nxt_start = pos + w
        n_draft = min(gamma, max(S - nxt_start, 0))
        d = _drafting(drafter, rng, prompt_len, nxt_start, n_draft)
        v = sample_latency(target, rng, w + 1, prompt_len + pos)
        yield env.timeout(max(v, d))
        stats["target_busy"] += v
        stats["drafter_busy"] += d
        stats["drafts"] += n_draft
        stats["rounds"] += 1
        n = 0
        while n < w and ok[pos + n]:
            n += 1
        if n == w:
            pos += w
            window = n_draft
        else:
            stats["rejections"] += 1
            pos += n + 1
            window = 0


def pipeline_process(env: simpy.Environment, acc: np.ndarray, k_max: int, target: LatencyModel,
                     drafter: LatencyModel, rng: np.random.Generator, prompt_len: int, stats: dict):
    """Generator process of one pipelined run (drafter and target never wait for each other's rounds)."""
    S = acc.size
    ok = acc.tolist()
    st = {"confirmed": 0, "drafted": 0, "epoch": 0}  # drafted: drafts end before this position
    drafted_ev = [env.event()]  # fires when a draft is made
    restart_ev = [env.event()]  # fires when a rejection restarts the drafter

    def fire(box) -> None:
        ev, box[0] = box[0], env.event()
        ev.succeed()

    def drafter_loop():
        while True:
            epoch, p = st["epoch"], st["drafted"]
            if p >= S - 1:  # nothing left to draft (the last position is the target's)
                yield restart_ev[0]
                continue
            d = sample_latency(drafter, rng, 1, prompt_len + p)
            t0 = env.now
            yield env.timeout(d) | restart_ev[0]
            if epoch != st["epoch"]:
                stats["drafter_busy"] += env.now - t0  # restarted during this forward: abandoned, time spent
                continue
            stats["drafter_busy"] += d
            stats["drafts"] += 1
            st["drafted"] = p + 1
            fire(drafted_ev)

    env.process(drafter_loop())
    while st["confirmed"] < S:
        c = st["confirmed"]
        m = min(st["drafted"] - c, k_max, S - 1 - c)
        if m <= 0 and c < S - 1:
            yield drafted_ev[0]
            continue
        m = max(m, 0)
        v = sample_latency(target, rng, m + 1, prompt_len + c)
        yield env.timeout(v)
        stats["target_busy"] += v
        stats["rounds"] += 1
        n = 0
        while n < m and ok[c + n]:
            n += 1
        if m and n == m:
            st["confirmed"] = c + m
            continue
        if n < m:
            stats["rejections"] += 1
        st["confirmed"] = c + n + 1
        st["epoch"] += 1
        st["drafted"] = st["confirmed"]
        fire(restart_ev)

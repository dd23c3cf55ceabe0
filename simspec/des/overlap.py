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

**Overheads** (:class:`~simspec.Overheads`, ``docs/model.md`` §2).  The drafter's host runs the
coordinator (it sends each verification and handles its result, as in SI and DSI); the
target runs on a device of its own.  Both algorithms pay SI's overheads, placed on the
timeline of the device or host that pays them:

* **drafter side** (the drafter's timeline, as in DSI): each draft takes its forward and then
  ``per_draft_token_ms + per_drafter_forward_ms`` (one draft per forward); a draft is usable at
  the end of both.  After a rejection the drafter resumes ``sync_ms`` later (KV-cache
  synchronisation), unless no position is left to draft;
* **each verification** (every target forward is one, a pre-verify's width-1 forward
  included): ``message_ms`` to the target, ``startup_ms`` and the forward on the target (both
  busy time), ``message_ms`` back;
* **coordinator side**: the result takes effect ``per_round_ms + m·per_emitted_token_ms``
  after it arrives, ``m`` the tokens it emits; nothing that depends on it — the next round,
  the next verification, the drafter's restart — starts before.

PEARL, timed: a round starting at ``t`` ends at ``t + max(target path, drafter path)`` with

* target path ``= 2·message_ms + startup_ms + T(w + 1) + per_round_ms + m·per_emitted_token_ms``
  (``w`` the drafts it verifies, ``0`` in pre-verify; ``m`` the tokens the round emits);
* drafter path ``= [sync_ms if the previous round rejected] + Σ_j (d_j + per_draft_token_ms +
  per_drafter_forward_ms)`` over the round's drafts (the drafter's continuation of a rejected
  window is still drafted in full, as without overheads).

The pipeline, timed: the target's loop sends a verification of the ``m`` drafts made by the time
the previous result has taken effect (waiting for the first if there is none), and that result
takes effect ``2·message_ms + startup_ms + T(m + 1) + per_round_ms + tokens·per_emitted_token_ms``
after it was sent.  A rejection abandons the drafter's draft in flight (forward or overhead)
when it takes effect; the drafter drafts again ``sync_ms`` later.  The run ends when the last
result takes effect.

**Event log** (``log``, :mod:`simspec.des.trace`; drawn by :func:`simspec.gantt_figure`): lanes
``drafter`` and ``server 0`` (the target). PEARL logs a round when it ends, its events in time order: the
drafting block (``draft_start`` at ``t + sync``, ``draft_end`` after its forwards: a finished block, even
one the round then discards, as DSI logs its finished drafts), the target's forward (``verify_start`` after
the message, ``verify_end`` after start-up and the forward; positions ``[p, p + w]``), then ``reject`` and
``confirm``. The pipeline logs each draft (``draft_start``; ``draft_end`` when the draft is usable, its
per-draft overhead included, or ``draft_cancel`` when a rejection abandons it) and each verification as SI
does. Logging changes no timeout: the run's times are those of a run without a log.

With every overhead zero both reduce to the rules above, float for float.  The closed form
(:func:`simspec.theory.pearl_latency_per_token`) has no overheads; with overheads this engine is
the reference.
"""

from __future__ import annotations

import numpy as np
import simpy

from ..latency import LatencyModel, sample_latency
from .config import Overheads
from .pool import active_log

__all__ = ["pearl_process", "pipeline_process", "pearl_window"]


def pearl_window(target: LatencyModel, drafter: LatencyModel) -> int:
    """PEARL's adaptive window: the drafts that fit in one decode forward of the target (at least 2)."""
    return max(2, int(round(float(target.tpot_ms) / max(float(drafter.tpot_ms), 1e-300))))


def _drafting(drafter, rng, prompt_len: int, start: int, n: int) -> float:
    return sum(sample_latency(drafter, rng, 1, prompt_len + start + j) for j in range(n))


def pearl_process(env: simpy.Environment, acc: np.ndarray, gamma: int, target: LatencyModel,
                  drafter: LatencyModel, rng: np.random.Generator, prompt_len: int, stats: dict,
                  ov: Overheads | None = None, log=None):
    """Generator process of one PEARL run over the outcomes ``acc``; fills ``stats`` (and ``log``).

    One timeout per round: ``max(target path, drafter path)`` (the module's docstring).
    """
    ov = ov if ov is not None else Overheads()
    log = active_log(log)
    task = 0
    trip = 2.0 * ov.message_ms + ov.startup_ms  # a verification's messages and start-up
    per_draft, per_round, per_emit, sync = ov.per_draft_ms, ov.per_round_ms, ov.per_emitted_token_ms, ov.sync_ms
    S = acc.size
    ok = acc.tolist()
    pos = 0
    window = 0  # drafts waiting for post-verify (0: pre-verify)
    resync = 0.0  # sync_ms after a rejection: the drafter's next drafts start that much later
    while pos < S:
        if window == 0:  # pre-verify: the target decodes position pos while the drafter drafts the window
            w, draft_start = 0, pos
            n_draft = min(gamma, S - pos)
        else:  # post-verify: verify the window while drafting the next gamma positions after it
            w = min(window, S - pos)
            draft_start = pos + w
            n_draft = min(gamma, max(S - draft_start, 0))
        d = _drafting(drafter, rng, prompt_len, draft_start, n_draft)
        v = sample_latency(target, rng, w + 1, prompt_len + pos)
        n = 0
        if w == 0:
            rejected = not ok[pos]
            tokens = 1
        else:
            while n < w and ok[pos + n]:
                n += 1
            rejected = n < w
            tokens = n + 1 if rejected else w
        target_path = trip + v + (per_round + tokens * per_emit)
        drafter_path = resync + d + n_draft * per_draft
        t0 = env.now
        yield env.timeout(max(target_path, drafter_path))
        if log:
            task += 1
            _log_pearl_round(log, t0, env.now, task, ov, v, resync, d, draft_start, n_draft, pos, w, n, tokens,
                             rejected, S - 1)
        stats["target_busy"] += ov.startup_ms + v
        stats["drafter_busy"] += d
        stats["drafts"] += n_draft
        stats["rounds"] += 1
        if rejected:
            stats["rejections"] += 1
        pos += tokens
        resync = sync if rejected else 0.0
        if w == 0:
            window = n_draft - 1 if not rejected and n_draft > 1 else 0
        else:
            window = 0 if rejected else n_draft
    if log:
        log(env.now, "done", "drafter", None, (S - 1, S - 1))


def _log_pearl_round(log, t0: float, t1: float, task: int, ov: Overheads, v: float, resync: float, d: float,
                     draft_start: int, n_draft: int, pos: int, w: int, n: int, tokens: int, rejected: bool,
                     last_position: int) -> None:
    """One PEARL round's events, in time order, logged when it ends at ``t1`` (it started at ``t0``)."""
    events = []
    if n_draft:
        first, last = draft_start, draft_start + n_draft - 1
        events.append((t0 + resync, 0, "draft_start", "drafter", None, (first, last)))
        events.append((t0 + resync + d, 1, "draft_end", "drafter", None, (first, last)))
    start = t0 + ov.message_ms
    verified = (pos, min(pos + w, last_position))  # a window ending at the last position has no bonus slot
    events.append((start, 0, "verify_start", "server 0", task, verified))
    events.append((start + (ov.startup_ms + v), 1, "verify_end", "server 0", task, verified))
    for t, _, event, lane, tid, positions in sorted(events, key=lambda e: (e[0], e[1])):
        log(t, event, lane, tid, positions)
    if rejected:
        r = pos if w == 0 else pos + n
        log(t1, "reject", "drafter", None, (r, r))
    log(t1, "confirm", "server 0", task, (pos, pos + tokens - 1))


def pipeline_process(env: simpy.Environment, acc: np.ndarray, k_max: int, target: LatencyModel,
                     drafter: LatencyModel, rng: np.random.Generator, prompt_len: int, stats: dict,
                     ov: Overheads | None = None, log=None):
    """Generator process of one pipelined run (drafter and target never wait for each other's rounds)."""
    ov = ov if ov is not None else Overheads()
    log = active_log(log)
    msg, startup, sync = ov.message_ms, ov.startup_ms, ov.sync_ms
    per_draft, per_round, per_emit = ov.per_draft_ms, ov.per_round_ms, ov.per_emitted_token_ms
    loop = per_round or per_emit
    S = acc.size
    ok = acc.tolist()
    # drafted: drafts end before this position; resync: the drafter owes a sync before its next draft
    st = {"confirmed": 0, "drafted": 0, "epoch": 0, "resync": False}
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
            if st["resync"]:  # KV-cache synchronisation after a rejection, before the first draft
                st["resync"] = False
                yield env.timeout(sync) | restart_ev[0]
                continue
            d = sample_latency(drafter, rng, 1, prompt_len + p)
            t0 = env.now
            if log:
                log(t0, "draft_start", "drafter", None, (p, p))
            yield env.timeout(d + per_draft) | restart_ev[0]
            if epoch != st["epoch"]:
                # restarted during this draft: abandoned, its forward's time so far spent
                stats["drafter_busy"] += min(env.now - t0, d) if per_draft else env.now - t0
                if log:
                    log(env.now, "draft_cancel", "drafter", None, (p, p))
                continue
            stats["drafter_busy"] += d
            stats["drafts"] += 1
            st["drafted"] = p + 1
            if log:
                log(env.now, "draft_end", "drafter", None, (p, p))
            fire(drafted_ev)

    env.process(drafter_loop())
    while st["confirmed"] < S:
        c = st["confirmed"]
        m = min(st["drafted"] - c, k_max, S - 1 - c)
        if m <= 0 and c < S - 1:
            yield drafted_ev[0]
            continue
        m = max(m, 0)
        v = startup + sample_latency(target, rng, m + 1, prompt_len + c)
        if msg:
            yield env.timeout(msg)
        task = stats["rounds"] + 1
        if log:
            log(env.now, "verify_start", "server 0", task, (c, c + m))
        yield env.timeout(v)
        if log:
            log(env.now, "verify_end", "server 0", task, (c, c + m))
        stats["target_busy"] += v
        if msg:
            yield env.timeout(msg)
        stats["rounds"] += 1
        n = 0
        while n < m and ok[c + n]:
            n += 1
        accepted_all = m and n == m
        if loop:
            yield env.timeout(per_round + (m if accepted_all else n + 1) * per_emit)
        if accepted_all:
            st["confirmed"] = c + m
            if log:
                log(env.now, "confirm", "server 0", task, (c, c + m - 1))
            continue
        if n < m:
            stats["rejections"] += 1
            if log:
                log(env.now, "reject", "drafter", None, (c + n, c + n))
        st["confirmed"] = c + n + 1
        if log:
            log(env.now, "confirm", "server 0", task, (c, c + n))
        st["epoch"] += 1
        st["drafted"] = st["confirmed"]
        st["resync"] = bool(sync) and n < m
        fire(restart_ev)
    if log:
        log(env.now, "done", "drafter", None, (S - 1, S - 1))

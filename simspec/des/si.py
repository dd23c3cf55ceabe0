"""SI and non-SI on simulated servers.

SI (Leviathan et al. 2023; Chen et al. 2023): the drafter drafts ``k`` tokens,
sends them to the target (``message_ms``), the target verifies them in one
forward of width ``k + 1`` (after ``startup_ms``), the result comes back
(``message_ms``), and after a rejection the drafter synchronises its KV cache
(``sync_ms``).  Drafter and target never overlap.  Loop overheads
(``docs/model.md`` §2): the drafting phase of ``j`` drafts is followed by
``j·(per_draft_token_ms + per_drafter_forward_ms)``, and the round, once its
result is back, by ``per_round_ms + (n + 1)·per_emitted_token_ms`` for its
``n + 1`` emitted tokens (before any sync); neither is busy time.  The lookahead may change per
round (any :class:`~simspec.lookahead.LookaheadPolicy`); each round's cut and
accepted count come from :func:`simspec.rounds.si_round`, the rule the Monte
Carlo applies too.

non-SI: ``S`` target decode forwards, one after another, each followed by
``per_emitted_token_ms`` (its loop's only overhead).

Speed: with a static lookahead and constant latencies (deterministic and
independent of the context, the papers' setting) each round's times are known
up front, so the processes take a fast path: no per-round ``RoundView`` or
controller calls, no per-draft latency sampling, no event-log calls when
nothing is recorded.  They still yield one timeout per drafting phase and per
forward (non-SI: per token), in the same order, so the results, the event log
and the virtual clock are exactly those of the general path.
"""

from __future__ import annotations

import numpy as np
import simpy

from ..latency import LatencyModel, is_deterministic, sample_latency
from ..lookahead import LookaheadPolicy, RoundView, StaticLookahead, checked_proposal
from ..rounds import si_round
from .config import Overheads
from .pool import active_log

__all__ = ["si_process", "nonsi_process"]


def _fixed(model: LatencyModel) -> bool:
    """Is every decode forward of ``model`` the same, whatever the context and the rng?"""
    return not model.context_dependent and is_deterministic(model)


def si_process(env: simpy.Environment, acc: np.ndarray, nxt: np.ndarray, policy: LookaheadPolicy,
               target: LatencyModel, drafter: LatencyModel, rng: np.random.Generator, ov: Overheads,
               prompt_len: int, signals, log, stats: dict):
    """Generator process of one SI run; fills ``stats``."""
    log = active_log(log)
    if type(policy) is StaticLookahead and _fixed(target) and _fixed(drafter):
        return _si_static(env, nxt, policy.k, target, drafter, rng, ov, prompt_len, log, stats)
    return _si_general(env, acc, nxt, policy, target, drafter, rng, ov, prompt_len, signals, log, stats)


def _si_general(env, acc, nxt, policy, target, drafter, rng, ov, prompt_len, signals, log, stats):
    """Any lookahead policy, any latency model: the policy proposes each round's ``k``."""
    S = acc.size
    per_draft, per_round, per_emit = ov.per_draft_ms, ov.per_round_ms, ov.per_emitted_token_ms
    loop = per_round or per_emit
    ctrl = policy.start(1)
    nxt2 = nxt[None, :]
    nxt_list = nxt.tolist()  # Python ints for si_round
    rows = np.zeros(1, dtype=np.int64)
    pos = 0
    task = 0
    while pos < S:
        view = RoundView(np.array([pos]), np.array([S - pos]), rows, signals, nxt2)
        k, n = si_round(pos, int(checked_proposal(ctrl.propose(view), None, policy.name)[0]), nxt_list, S)
        t0 = env.now
        if k:
            d = sum(sample_latency(drafter, rng, 1, prompt_len + pos + j) for j in range(k))
            if log:
                log(t0, "draft_start", "drafter", None, (pos, pos + k - 1))
            yield env.timeout(d)
            if log:
                log(env.now, "draft_end", "drafter", None, (pos, pos + k - 1))
            stats["drafter_busy"] += d
            if per_draft:
                yield env.timeout(k * per_draft)
        if ov.message_ms:
            yield env.timeout(ov.message_ms)
        task += 1
        v = ov.startup_ms + sample_latency(target, rng, k + 1, prompt_len + pos)
        if log:
            log(env.now, "verify_start", "server 0", task, (pos, pos + k))
        stats["peak"] = 1
        yield env.timeout(v)
        if log:
            log(env.now, "verify_end", "server 0", task, (pos, pos + k))
        stats["target_busy"] += v
        if ov.message_ms:
            yield env.timeout(ov.message_ms)
        ctrl.observe(np.array([k]), np.array([n]))
        stats["rounds"] += 1
        stats["drafts"] += k
        if loop:
            yield env.timeout(per_round + (n + 1) * per_emit)
        if n < k:
            if log:
                log(env.now, "reject", "drafter", None, (pos + n, pos + n))
            stats["rejections"] += 1
            if ov.sync_ms and pos + n + 1 < S:
                yield env.timeout(ov.sync_ms)
        if log:
            log(env.now, "confirm", "server 0", task, (pos, pos + n))
        pos += n + 1
    if log:
        log(env.now, "done", "drafter", None, (S - 1, S - 1))


def _si_static(env, nxt, k, target, drafter, rng, ov, prompt_len, log, stats):
    """``StaticLookahead(k)`` with fixed latencies: the same rounds as the general path, times from tables.

    A round drafts ``j = min(k, positions left − 1)`` tokens; its drafting time
    and verification time depend on ``j`` only, so they are tabulated once, by
    the very expressions the general path evaluates each round (the same
    floats).  Counters are kept in locals, in the same order of additions, and
    written to ``stats`` at the end.
    """
    S = len(nxt)
    nxt = nxt.tolist()  # Python ints: one conversion instead of a numpy scalar per round
    k_top = max(min(k, S - 1), 0)
    draft_time = [sum(sample_latency(drafter, rng, 1, prompt_len + j) for j in range(kk)) for kk in range(k_top + 1)]
    verify_time = [ov.startup_ms + sample_latency(target, rng, kk + 1, prompt_len) for kk in range(k_top + 1)]
    timeout = env.timeout
    msg, sync = ov.message_ms, ov.sync_ms
    per_draft, per_round, per_emit = ov.per_draft_ms, ov.per_round_ms, ov.per_emitted_token_ms
    loop = per_round or per_emit
    drafter_busy, target_busy = stats["drafter_busy"], stats["target_busy"]
    rounds = drafts = rejections = 0
    pos = task = 0
    while pos < S:
        kk, n = si_round(pos, k, nxt, S)
        if kk:
            d = draft_time[kk]
            if log:
                log(env.now, "draft_start", "drafter", None, (pos, pos + kk - 1))
            yield timeout(d)
            if log:
                log(env.now, "draft_end", "drafter", None, (pos, pos + kk - 1))
            drafter_busy += d
            if per_draft:
                yield timeout(kk * per_draft)
        if msg:
            yield timeout(msg)
        task += 1
        v = verify_time[kk]
        if log:
            log(env.now, "verify_start", "server 0", task, (pos, pos + kk))
        yield timeout(v)
        if log:
            log(env.now, "verify_end", "server 0", task, (pos, pos + kk))
        target_busy += v
        if msg:
            yield timeout(msg)
        rounds += 1
        drafts += kk
        if loop:
            yield timeout(per_round + (n + 1) * per_emit)
        if n < kk:
            if log:
                log(env.now, "reject", "drafter", None, (pos + n, pos + n))
            rejections += 1
            if sync and pos + n + 1 < S:
                yield timeout(sync)
        if log:
            log(env.now, "confirm", "server 0", task, (pos, pos + n))
        pos += n + 1
    stats.update(drafter_busy=drafter_busy, target_busy=target_busy, rounds=stats["rounds"] + rounds,
                 drafts=stats["drafts"] + drafts, rejections=stats["rejections"] + rejections)
    if rounds:
        stats["peak"] = 1
    if log:
        log(env.now, "done", "drafter", None, (S - 1, S - 1))


def nonsi_process(env: simpy.Environment, S: int, target: LatencyModel, rng: np.random.Generator,
                  prompt_len: int, log, stats: dict, per_emit: float = 0.0):
    """Generator process of one non-SI run; fills ``stats``.

    One timeout per token, also on the fast path (fixed latency: the forward
    time is read once): the run stays an event simulation, token by token.
    """
    log = active_log(log)
    fixed = _fixed(target)
    t = sample_latency(target, rng, 1, prompt_len) if fixed else 0.0
    timeout = env.timeout
    busy = stats["target_busy"]
    for pos in range(S):
        if not fixed:
            t = sample_latency(target, rng, 1, prompt_len + pos)
        if log:
            log(env.now, "chain_start", "server 0", None, (pos, pos))
        yield timeout(t)
        if log:
            now = env.now
            log(now, "chain_end", "server 0", None, (pos, pos))
            log(now, "confirm", "server 0", None, (pos, pos))
        busy += t
        if per_emit:
            yield timeout(per_emit)
    stats["target_busy"] = busy
    stats["peak"] = 1
    if log:
        log(env.now, "done", "server 0", None, (S - 1, S - 1))

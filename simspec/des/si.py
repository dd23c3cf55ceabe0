"""SI and non-SI on simulated servers.

SI (Leviathan et al. 2023; Chen et al. 2023): the drafter drafts ``k`` tokens,
sends them to the target (``message_ms``), the target verifies them in one
forward of width ``k + 1`` (after ``startup_ms``), the result comes back
(``message_ms``), and after a rejection the drafter synchronises its KV cache
(``sync_ms``).  Drafter and target never overlap.  The lookahead may change per
round (any :class:`~simspec.lookahead.LookaheadPolicy`) and is cut to the
positions left minus one near the end, as in the Monte Carlo.

non-SI: ``S`` target decode forwards, one after another.
"""

from __future__ import annotations

import numpy as np
import simpy

from ..latency import LatencyModel, sample_latency
from ..lookahead import LookaheadPolicy, RoundView
from .config import Overheads

__all__ = ["si_process", "nonsi_process"]


def si_process(env: simpy.Environment, acc: np.ndarray, nxt: np.ndarray, policy: LookaheadPolicy,
               target: LatencyModel, drafter: LatencyModel, rng: np.random.Generator, ov: Overheads,
               prompt_len: int, signals, log, stats: dict):
    """Generator process of one SI run; fills ``stats``."""
    S = acc.size
    ctrl = policy.start(1)
    nxt2 = nxt[None, :]
    rows = np.zeros(1, dtype=np.int64)
    pos = 0
    task = 0
    while pos < S:
        view = RoundView(np.array([pos]), np.array([S - pos]), rows, signals, nxt2)
        k = int(min(int(np.asarray(ctrl.propose(view))[0]), S - pos - 1))
        k = max(k, 0)
        t0 = env.now
        if k:
            d = sum(sample_latency(drafter, rng, 1, prompt_len + pos + j) for j in range(k))
            log(t0, "draft_start", "drafter", None, (pos, pos + k - 1))
            yield env.timeout(d)
            log(env.now, "draft_end", "drafter", None, (pos, pos + k - 1))
            stats["drafter_busy"] += d
        if ov.message_ms:
            yield env.timeout(ov.message_ms)
        task += 1
        v = ov.startup_ms + sample_latency(target, rng, k + 1, prompt_len + pos)
        log(env.now, "verify_start", "server 0", task, (pos, pos + k))
        stats["peak"] = 1
        yield env.timeout(v)
        log(env.now, "verify_end", "server 0", task, (pos, pos + k))
        stats["target_busy"] += v
        if ov.message_ms:
            yield env.timeout(ov.message_ms)
        n = min(int(nxt[pos]) - pos, k)
        ctrl.observe(np.array([k]), np.array([n]))
        stats["rounds"] += 1
        stats["drafts"] += k
        if n < k:
            log(env.now, "reject", "drafter", None, (pos + n, pos + n))
            stats["rejections"] += 1
            if ov.sync_ms and pos + n + 1 < S:
                yield env.timeout(ov.sync_ms)
        log(env.now, "confirm", "server 0", task, (pos, pos + n))
        pos += n + 1
    log(env.now, "done", "drafter", None, (S - 1, S - 1))


def nonsi_process(env: simpy.Environment, S: int, target: LatencyModel, rng: np.random.Generator,
                  prompt_len: int, log, stats: dict):
    """Generator process of one non-SI run; fills ``stats``."""
    for pos in range(S):
        t = sample_latency(target, rng, 1, prompt_len + pos)
        log(env.now, "chain_start", "server 0", None, (pos, pos))
        yield env.timeout(t)
        log(env.now, "chain_end", "server 0", None, (pos, pos))
        log(env.now, "confirm", "server 0", None, (pos, pos))
        stats["target_busy"] += t
    stats["peak"] = 1
    log(env.now, "done", "server 0", None, (S - 1, S - 1))

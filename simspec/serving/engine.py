"""The serving engine: requests arrive, a continuous-batching scheduler runs them, SI or plain decoding.

A discrete-event simulation (``simpy``, virtual time in ms) of one or more
engine replicas.  Each replica loops over *steps*, one target forward each:

1. **admit** waiting requests in arrival order while fewer than ``max_batch`` run
   and the KV cache has the blocks of their prefix (:class:`~simspec.serving.Batching`);
2. **prefill** — without chunked prefill, a step that admitted requests prefills
   them alone (decoding waits, as in vLLM's default scheduler); with chunked prefill,
   the step's token budget left after the decoding sequences goes to prompt chunks
   in admission order;
3. **decode** — every decoding sequence advances by one SI round
   (:func:`simspec.rounds.si_round`, the rule of the single-request engines): the
   drafter runs ``j = 1 .. max k`` batched forwards over the sequences still drafting,
   then the target verifies every sequence's ``k + 1`` tokens in one forward;
   non-SI is the same step with ``k = 0`` and no drafter; tree SI (``algorithm="tree"``,
   :mod:`simspec.des.tree`'s rules) drafts the request's token tree level by level (the
   drafter's ``j``-th batched forward reads each sequence's level ``j`` width) and verifies
   all its nodes, the accepted path walked by :func:`simspec.des.tree.walk_tree`;
4. **KV** — before the forward each sequence holds the blocks of its context plus
   the ``k + 1`` slots it writes (a tree: its nodes and one); when the cache cannot grant them, the most recently
   admitted sequence is preempted (freed, re-queued first, its prefix recomputed
   when readmitted).

A step's time is the target's :class:`~simspec.batch_latency.BatchLatencyModel` of
its widths and contexts, plus the drafter's forwards, plus the loop overheads of
:class:`~simspec.Overheads` in the order the SI engine charges them (drafting, then
``per_drafter_forward_ms`` per drafter forward and ``per_draft_token_ms`` per draft,
``message_ms``, ``startup_ms`` + verification, ``message_ms``, ``per_round_ms`` and
``per_emitted_token_ms`` per token emitted, ``sync_ms`` when a draft was rejected).
At batch 1 with a request at a time every term is the single-request engine's, so
a request's end-to-end latency equals :func:`simspec.des.run_once`'s run by run
(``tests/test_serving.py``).
"""

from __future__ import annotations

from collections import deque

import numpy as np
import simpy

from ..deployment import Overheads
from ..lookahead import LookaheadPolicy, RoundView, StaticLookahead, checked_proposal
from ..montecarlo.positions import next_rejection
from ..des.tree import tree_levels, walk_tree
from ..rounds import si_round
from .batching import Batching, BatchSizeLookahead

__all__ = ["run_engine"]


class _Request:
    __slots__ = ("id", "arrival", "prompt", "S", "pos", "nxt", "ctrl", "signals", "blocks", "first_token",
                 "finish", "preemptions", "drafts", "accepted", "rounds", "prefill_left", "replica", "wait_ms",
                 "nxt2d", "ok")

    def __init__(self, i: int, arrival: float, prompt: int, S: int) -> None:
        self.id, self.arrival, self.prompt, self.S = i, arrival, prompt, S
        self.pos = 0
        self.nxt = None
        self.nxt2d = None
        self.ok = None  # tree SI: the rank-1 drafts' outcomes, as Python bools
        self.ctrl = None
        self.signals = None
        self.blocks = 0
        self.first_token = -1.0
        self.finish = -1.0
        self.preemptions = self.drafts = self.accepted = self.rounds = 0
        self.prefill_left = prompt
        self.replica = 0
        self.wait_ms = 0.0


class _Sampler:
    """A batch model's step time: its mean when deterministic, else a draw from the latency stream."""

    def __init__(self, model, rng: np.random.Generator) -> None:
        self.model = model
        self.rng = rng
        self.fixed = bool(model.deterministic)

    def __call__(self, new_tokens, contexts, phase="decode") -> float:
        if self.fixed:
            return self.model.step_ms(new_tokens, contexts, phase)
        return self.model.sample_step(self.rng, new_tokens, contexts, phase)


class _Replica:
    def __init__(self, engine: "_Engine", index: int) -> None:
        self.engine = engine
        self.index = index
        self.waiting: deque[_Request] = deque()
        self.running: list[_Request] = []
        self.free_blocks = engine.cfg.kv_blocks
        self.wake: simpy.Event | None = None
        self.unfinished = 0
        self.busy_ms = 0.0
        self.steps = 0
        self.batch_sum = 0
        self.peak_blocks = 0

    # -- KV cache ---------------------------------------------------------------------------------
    def _blocks(self, tokens: int) -> int:
        return self.engine.cfg.blocks_for(tokens, self.engine.speculative)

    def _take(self, r: _Request, blocks: int) -> bool:
        """Grow ``r`` to ``blocks`` blocks if the cache has them."""
        extra = blocks - r.blocks
        if extra <= 0:
            return True
        if self.free_blocks is not None:
            if self.free_blocks < extra:
                return False
            self.free_blocks -= extra
            used = self.engine.cfg.kv_blocks - self.free_blocks
            if used > self.peak_blocks:
                self.peak_blocks = used
        r.blocks = blocks
        return True

    def _release(self, r: _Request, keep: int = 0) -> None:
        if keep < r.blocks:
            if self.free_blocks is not None:
                self.free_blocks += r.blocks - keep
            r.blocks = keep

    def _preempt(self, victim: _Request) -> None:
        self.running.remove(victim)
        self._release(victim)
        victim.prefill_left = victim.prompt + victim.pos  # recompute the whole prefix
        victim.preemptions += 1
        self.engine.preemptions += 1
        self.waiting.appendleft(victim)

    # -- the loop ---------------------------------------------------------------------------------
    def submit(self, r: _Request) -> None:
        r.replica = self.index
        self.unfinished += 1
        self.waiting.append(r)
        if self.wake is not None and not self.wake.triggered:
            self.wake.succeed()

    def _admit(self) -> bool:
        cfg = self.engine.cfg
        admitted = False
        budget = cfg.max_tokens_per_step
        while self.waiting and len(self.running) < cfg.max_batch:
            r = self.waiting[0]
            if not cfg.chunked_prefill:
                if admitted and r.prefill_left > budget:
                    break
                budget -= r.prefill_left
            if not self._take(r, self._blocks(r.prompt + r.pos)):
                break
            self.waiting.popleft()
            if r.first_token < 0:
                r.wait_ms = self.engine.env.now - r.arrival
            self.running.append(r)
            admitted = True
        return admitted

    def run(self):
        env, eng, cfg = self.engine.env, self.engine, self.engine.cfg
        while True:
            if not self.waiting and not self.running:
                self.wake = env.event()
                yield self.wake
                self.wake = None
                continue
            self._admit()
            if not self.running:
                raise AssertionError("no request fits the KV cache although each fits alone")  # pragma: no cover
            prefilling = [r for r in self.running if r.prefill_left > 0]
            if prefilling and not cfg.chunked_prefill:
                dt = eng.prefill_step(prefilling)
                yield env.timeout(dt)
                self._account(dt, len(prefilling))
                now = env.now
                for r in prefilling:
                    r.prefill_left = 0
                    if r.first_token < 0:
                        r.first_token = now
                continue
            decoding = [r for r in self.running if r.prefill_left == 0]
            plan = eng.plan_rounds(decoding, len(decoding))
            # KV: every decoding sequence needs its context plus the slots it writes; preempt the newest
            for r, (kc, *_) in zip(list(decoding), list(plan)):
                while r in self.running and not self._take(r, self._blocks(r.prompt + r.pos + kc + 1)):
                    self._preempt(self.running[-1])
            keep = [i for i, r in enumerate(decoding) if r in self.running]
            if len(keep) < len(decoding):
                decoding = [decoding[i] for i in keep]
                plan = [plan[i] for i in keep]
            chunks: list[tuple[_Request, int]] = []
            if cfg.chunked_prefill:
                budget = cfg.max_tokens_per_step - sum(kc + 1 for kc, *_ in plan)
                for r in self.running:
                    if budget <= 0:
                        break
                    if r.prefill_left > 0:
                        c = min(r.prefill_left, budget)
                        chunks.append((r, c))
                        budget -= c
            if not decoding and not chunks:
                # every sequence is prefilling but the budget is spent: give the oldest one a chunk
                r = next(r for r in self.running if r.prefill_left > 0)
                chunks.append((r, min(r.prefill_left, cfg.max_tokens_per_step)))
            dt = eng.decode_step(decoding, plan, chunks)
            yield env.timeout(dt)
            self._account(dt, len(decoding) + len(chunks))
            now = env.now
            for r, c in chunks:
                r.prefill_left -= c
                if r.prefill_left == 0 and r.first_token < 0:
                    r.first_token = now
            for r, (kc, n, *_) in zip(decoding, plan):
                r.pos += n + 1
                r.rounds += 1
                r.drafts += kc
                r.accepted += n
                if r.ctrl is not None:
                    r.ctrl.observe(np.array([kc]), np.array([n]))
                if r.pos >= r.S:
                    r.finish = now
                    self.running.remove(r)
                    self._release(r)
                    self.unfinished -= 1
                    eng.finished += 1
                else:
                    self._release(r, self._blocks(r.prompt + r.pos))

    def _account(self, dt: float, batch: int) -> None:
        self.busy_ms += dt
        self.steps += 1
        self.batch_sum += batch


class _Engine:
    def __init__(self, table, outcomes, signals, target, drafter, algorithm, lookahead, cfg: Batching,
                 overheads: Overheads, rng: np.random.Generator, tree=None, tree_rng=None) -> None:
        self.env = simpy.Environment()
        self.cfg = cfg
        self.speculative = algorithm in ("si", "tree")
        self.tree = tree if algorithm == "tree" else None  # a simspec.des.tree.TreeSpec
        self.tree_rng = tree_rng  # the sibling draws of tree SI
        self.target = _Sampler(target, rng)
        self.drafter = _Sampler(drafter, rng) if self.speculative else None
        self.ov = overheads
        self.lookahead = lookahead
        self.preemptions = 0
        self.finished = 0
        self.requests = []
        for i in range(len(table)):
            r = _Request(i, float(table.arrival_ms[i]), int(table.prompt_len[i]), int(table.output_len[i]))
            if self.tree is not None:
                r.ok = outcomes[i].tolist()
            elif self.speculative:
                nxt = next_rejection(outcomes[i][None, :])
                r.nxt = nxt[0].tolist()  # Python ints for si_round
                if isinstance(lookahead, LookaheadPolicy) and type(lookahead) is not StaticLookahead:
                    r.ctrl = lookahead.start(1)
                    r.nxt2d = nxt  # what a policy's RoundView reads, built once
                    r.signals = {k: v[None, :] for k, v in signals[i].items()} if signals else {}
            self.requests.append(r)
        self.static_k = lookahead.k if type(lookahead) is StaticLookahead else None
        self.replicas = [_Replica(self, j) for j in range(cfg.replicas)]

    # -- step times ---------------------------------------------------------------------------------
    def prefill_step(self, batch: list[_Request]) -> float:
        new = [r.prefill_left for r in batch]
        ctx = [0] * len(batch)
        t = self.target(new, ctx, "prefill")
        if self.speculative:
            d = self.drafter(new, ctx, "prefill")
            t = t + d if self.cfg.drafter == "shared" else max(t, d)
        return t

    def plan_rounds(self, batch: list[_Request], size: int) -> list[tuple]:
        """Each sequence's round ``(k_cut, n)``: the lookahead, cut at the end of its output.

        Tree SI: ``(nodes, n, draft_widths, rejected)``, its tree cut to the levels that fit, ``n`` the
        accepted path's length and ``rejected`` whether the walk stopped inside the tree.
        """
        if not self.speculative:
            return [(0, 0)] * len(batch)
        if self.tree is not None:
            spec, out = self.tree, []
            for r in batch:
                par, kids, widths = tree_levels(spec.parents, r.S - r.pos - 1)
                node, n = walk_tree(kids, spec.hazards, r.ok, r.pos, self.tree_rng)
                out.append((len(par), n, widths, bool(kids[node])))
            return out
        la = self.lookahead
        out = []
        if isinstance(la, BatchSizeLookahead):
            k = la.k_for(size)
            for r in batch:
                out.append(si_round(r.pos, k, r.nxt, r.S))
        elif self.static_k is not None:
            k = self.static_k
            for r in batch:
                out.append(si_round(r.pos, k, r.nxt, r.S))
        else:
            for r in batch:
                view = RoundView(np.array([r.pos]), np.array([r.S - r.pos]), np.zeros(1, dtype=np.int64),
                                 r.signals, r.nxt2d)
                k = int(checked_proposal(r.ctrl.propose(view), None, la.name)[0])
                out.append(si_round(r.pos, k, r.nxt, r.S))
        return out

    def decode_step(self, batch, plan, chunks) -> float:
        ov = self.ov
        t = 0.0
        spec = self.speculative
        tree = self.tree is not None
        if spec and batch and not tree:
            j_max = max(kc for kc, _ in plan)
            total = 0
            for j in range(j_max):
                ctx = [r.prompt + r.pos + j for r, (kc, _) in zip(batch, plan) if kc > j]
                total += len(ctx)
                t += self.drafter([1] * len(ctx), ctx)
            if j_max:
                t += j_max * ov.per_drafter_forward_ms + total * ov.per_draft_token_ms
        elif spec and batch:  # tree SI: the j-th batched forward drafts every tree's level j + 1
            j_max = max(len(widths) for _, _, widths, _ in plan)
            for j in range(j_max):
                rows = [(r, widths[j]) for r, (_, _, widths, _) in zip(batch, plan) if len(widths) > j]
                t += self.drafter([w for _, w in rows], [r.prompt + r.pos + j for r, _ in rows])
            if j_max:
                t += j_max * ov.per_drafter_forward_ms + sum(p[0] for p in plan) * ov.per_draft_token_ms
        new = [p[0] + 1 for p in plan] + [c for _, c in chunks]
        ctx = [r.prompt + r.pos for r in batch] + [r.prompt + r.pos - r.prefill_left for r, _ in chunks]
        phase = "prefill" if chunks else "decode"
        if spec and chunks:
            d = self.drafter([c for _, c in chunks], ctx[len(batch):], "prefill")
            if self.cfg.drafter == "shared":
                t += d
        if spec and batch:
            t += ov.message_ms + ov.startup_ms
        v = self.target(new, ctx, phase)
        if spec and chunks and self.cfg.drafter == "separate":
            v = max(v, d)
        t += v
        if batch:
            if spec:
                t += ov.message_ms + ov.per_round_ms
            emitted = sum(p[1] + 1 for p in plan)
            t += emitted * ov.per_emitted_token_ms
            if spec and ov.sync_ms and any((p[3] if tree else p[1] < p[0]) and r.pos + p[1] + 1 < r.S
                                           for r, p in zip(batch, plan)):
                t += ov.sync_ms
        return t

    # -- arrivals -----------------------------------------------------------------------------------
    def arrivals(self):
        env = self.env
        for r in self.requests:
            if r.arrival > env.now:
                yield env.timeout(r.arrival - env.now)
            target = min(self.replicas, key=lambda rep: (rep.unfinished, rep.index))
            target.submit(r)

    def run(self) -> None:
        for rep in self.replicas:
            self.env.process(rep.run())
        self.env.process(self.arrivals())
        n = len(self.requests)
        while self.finished < n:
            if self.env.peek() == float("inf"):  # pragma: no cover - a scheduler bug, not a user error
                raise AssertionError(f"the serving engine stalled with {n - self.finished} requests unfinished")
            self.env.step()


def run_engine(table, outcomes, signals, target, drafter, algorithm: str, lookahead, cfg: Batching,
               overheads: Overheads, rng: np.random.Generator, tree=None, tree_rng=None) -> _Engine:
    """Run one replication on the requests ``table`` with each request's acceptance ``outcomes``.

    ``algorithm="tree"`` needs ``tree`` (a :class:`~simspec.des.tree.TreeSpec`) and ``tree_rng`` (the
    generator of the sibling draws)."""
    eng = _Engine(table, outcomes, signals, target, drafter, algorithm, lookahead, cfg, overheads, rng, tree,
                  tree_rng)
    eng.run()
    return eng


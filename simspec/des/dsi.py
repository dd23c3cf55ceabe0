"""DSI on simulated servers: drafter, verification tasks, the non-SI chain, cancellation.

Timor et al., "Distributed Speculative Inference", arXiv 2405.14105 (ICLR 2025),
Algorithm 1 generalised to a lookahead ``k`` — the rules of ``docs/model.md`` §4:

* the drafter drafts continuously from the newest speculated prefix; after every
  ``k`` drafts it submits a verification task of width ``k + 1`` (its drafts and
  the next position) and drafts on without waiting.  With a dynamic stop rule
  (:class:`~simspec.ConfidenceLookahead`, DISCO, SpecDec++, the oracle) the rule
  sets each block's ``k`` when the block starts, from the drafter's signals at the
  positions it drafts: it decides when to submit a task.  A schedule (the heuristic, the
  adaptive threshold) learns from each verification as the coordinator applies it, in
  position order (``observe_task``), and sets the blocks that start after;
* tasks run on a pool of target servers, queueing FIFO (default) or LIFO when
  all are busy;
* the non-SI chain runs one target forward at a time on the newest *verified*
  prefix, on a server of its own (so it never waits behind speculative work);
  when a verification jumps the verified prefix past it, its stale forward is
  cancelled and it restarts at the new frontier;
* a result counts once every earlier position is confirmed; at the first
  rejected position ``r`` the target's token is emitted at ``r``, every task is
  cancelled (servers freed), and the drafter and the chain restart at ``r + 1``.

The drafter also restarts when the chain overtakes it (a drafter slower than
the target), and starts no block at or past position ``S`` (its last block is
not cut).  With ``N`` servers the chain takes one and tasks share ``N − 1``;
without the chain (``chain=False``) tasks share all ``N``.  ``N = None``: as many
as the tasks need.

Loop overheads (:class:`~simspec.Overheads`, ``docs/model.md`` §2), where DSI pays them:

* **drafter side**, on the drafter's timeline: each draft takes its forward and then
  ``per_draft_token_ms + per_drafter_forward_ms`` (a draft is usable at the end of both);
  the drafter's busy time counts its forwards only;
* **coordinator side**: a verification result that reaches the coordinator takes effect
  ``per_round_ms + m·per_emitted_token_ms`` later, ``m`` the positions it covers past the
  confirmed prefix when it arrives (its emitted tokens, unless the chain gets there first);
  a token of the non-SI chain takes effect ``per_emitted_token_ms`` after it is produced
  (without messages, the chain starts its next forward then: the chain is non-SI with its
  loop overhead).

Drafts inside a block are not separate events: a block is one timeout, and the
time each draft finished is known from the block's draw — every event the
engine does not need is a cost.
"""

from __future__ import annotations

import math

import numpy as np
import simpy

from ..latency import LatencyModel, is_deterministic, sample_latency
from ..lookahead import RoundView, checked_proposal
from .config import Overheads
from .pool import BusyMeter, ServerPool, Task, active_log

__all__ = ["DSIRun"]


class DSIRun:
    """One DSI run over the acceptance outcomes ``accepted`` (1-D bool, length ``S``).

    Speed (the engine runs millions of events): handlers take the current time
    as an argument instead of reading the ``env.now`` property again, call the
    event log only when it records, and are bound methods registered once —
    a timeout is recognised as current by identity (``ev is self._block_ev``)
    rather than by a closure over its epoch.
    """

    def __init__(
        self,
        env: simpy.Environment,
        accepted: np.ndarray,
        nxt: list[int],
        k,
        target: LatencyModel,
        drafter: LatencyModel,
        rng: np.random.Generator,
        servers: int | None,
        queue: str,
        chain: bool,
        overheads: Overheads,
        prompt_len: int,
        log,
        signals=None,
    ) -> None:
        self.env, self.target, self.drafter, self.rng = env, target, drafter, rng
        # k: an int (every block), or a stop rule's controller that sets each block's k
        self.policy = None if isinstance(k, (int, np.integer)) else k
        self.k = int(k) if self.policy is None else 1  # the current block's lookahead
        self.S = len(nxt)
        self.nxt = nxt  # first rejected position at or after each position (S if none)
        self.acc = accepted
        self._acc = accepted.tolist()  # Python bools: cheaper to index once per event than a numpy array
        self.chain = chain
        self.ov = overheads
        self.prompt = prompt_len
        self.log = active_log(log)  # None when nothing is recorded: every call site is guarded
        self.meter = BusyMeter(env)
        cap = None if servers is None else max(servers - (1 if chain else 0), 0)
        self.pool = ServerPool(env, cap, queue, self.meter, log)
        self.t1 = float(target.forward(1, prompt_len))
        self.d_const = float(drafter.forward(1, prompt_len)) if is_deterministic(drafter) else None
        self.t_const = is_deterministic(target) and not target.context_dependent
        self.v_const = float(target.forward(self.k + 1, prompt_len)) if self.t_const and self.policy is None else None
        self._v_by_k: dict[int, float] = {}
        self.done = env.event()
        # per-run constants of the hot paths (each the very float the per-event expression gives)
        self._timeout = env.timeout
        self._msg = overheads.message_ms
        self._o = overheads.per_draft_ms  # loop overhead after each draft's forward
        self._per_round = overheads.per_round_ms
        self._per_emit = overheads.per_emitted_token_ms
        self._holds = bool(self._per_round or self._per_emit)
        self._step = None if self.d_const is None else self.d_const + self._o  # one draft: forward + overhead
        self._block_dur = None if self._step is None or self.policy is not None else self._step * self.k
        self._service = None if self.v_const is None else overheads.startup_ms + self.v_const
        if self.policy is not None:
            sig = {name: np.asarray(v, dtype=float).reshape(1, -1) for name, v in (signals or {}).items()}
            self._view = lambda p: RoundView(np.array([p]), np.array([self.S - p]), np.zeros(1, dtype=np.int64),
                                             sig, self._nxt2d)
            self._nxt2d = np.asarray(nxt, dtype=np.int64).reshape(1, -1)
        # a schedule learns from each verification as the coordinator applies it, in position order
        self._learns = self.policy is not None and hasattr(self.policy, "observe_task")
        # bound once: every task calls it (straight to _result when nothing lies between a task and its effect)
        self._on_task_done = self._arrive if self._holds else self._result
        # state
        self.V = 0  # positions confirmed
        self.epoch = 0
        self.finished = False  # == self.done.triggered, without the property call
        self.pending: dict[int, Task] = {}
        self.task_seq = 0
        # drafter: current block [block_p, block_p + k) started at block_t with draft end offsets
        self.block_p = 0
        self.block_t = 0.0
        self.block_ends: np.ndarray | None = None
        self.block_times: np.ndarray | None = None  # the forwards' times, with loop overheads
        self._block_ev: simpy.Event | None = None  # the block in flight this epoch (None after a restart)
        self.drafting = False
        self.drafter_forwards = 0
        self.drafter_busy = 0.0
        # chain: the position it works on (-1: idle), when its forward started, the forward's timeout
        # (None: no forward running, i.e. idle or waiting for a new prefix to arrive)
        self.chain_gen = 0
        self.chain_pos = -1
        self.chain_t0 = 0.0
        self._chain_ev: simpy.Event | None = None
        self.chain_useful = 0
        self.chain_started = 0
        self.chain_done = 0
        self.chain_busy = 0.0
        # outcomes
        self.useful_tasks = 0
        self.rejections = 0
        self.end_time = float("nan")

    # -- helpers -------------------------------------------------------------------------
    def _verify_time(self, p: int, k: int) -> float:
        if self.v_const is not None:
            return self.v_const
        if self.t_const:
            v = self._v_by_k.get(k)
            if v is None:
                v = self._v_by_k[k] = float(self.target.forward(k + 1, self.prompt))
            return v
        return sample_latency(self.target, self.rng, k + 1, self.prompt + p)

    def _propose(self, p: int) -> None:
        """A stop rule sets the lookahead of the block starting at ``p``."""
        if self.policy is not None:
            self.k = int(checked_proposal(self.policy.propose(self._view(p)))[0])

    def _chain_time(self, pos: int) -> float:
        if self.t_const:
            return self.t1
        return sample_latency(self.target, self.rng, 1, self.prompt + pos)

    def _draft_exists(self, pos: int, now: float) -> bool:
        """Has the drafter finished drafting position ``pos`` (from the current speculation) by ``now``?"""
        if pos < self.block_p:
            return True  # drafted in a finished block (block_p is where the drafter's finished drafts end)
        if not self.drafting or pos >= self.block_p + self.k:
            return False
        j = pos - self.block_p
        end = self.block_t + (self._step * (j + 1) if self.block_ends is None else self.block_ends[j])
        return now >= end - 1e-12 * max(1.0, abs(end))

    # -- drafter -------------------------------------------------------------------------
    def _draft_block(self, now: float, start_delay: float = 0.0) -> None:
        if self.block_p >= self.S:
            self.drafting = False
            return
        if start_delay > 0:
            e = self.epoch
            self._timeout(start_delay).callbacks.append(
                lambda _ev: e == self.epoch and self._draft_block(self.env.now))
            self.drafting = False
            return
        self.drafting = True
        self.block_t = now
        self._propose(self.block_p)
        if self._block_dur is not None:
            dur = self._block_dur  # block_ends stays None: draft ends are block_t + d_const·(j + 1)
        elif self._step is not None:
            dur = self._step * self.k  # a stop rule's block: constant drafts, its own length
            self.block_ends = None
        else:
            times = np.array([self._draft_time(self.block_p, j) for j in range(self.k)])
            self.block_times = times
            self.block_ends = np.cumsum(times + self._o) if self._o else np.cumsum(times)
            dur = float(self.block_ends[-1])
        if self.log:
            self.log(now, "draft_start", "drafter", None, (self.block_p, self.block_p + self.k - 1))
        ev = self._block_ev = self._timeout(dur)
        ev.callbacks.append(self._block_done)

    def _draft_time(self, p: int, j: int) -> float:
        """The forward of the ``j``-th draft of the block that starts at position ``p`` (one token wide)."""
        return sample_latency(self.drafter, self.rng, 1, self.prompt + p + j)

    def _block_done(self, ev: simpy.Event) -> None:
        if ev is not self._block_ev:
            return  # a block of an earlier epoch
        now = self.env.now
        p, k, log = self.block_p, self.k, self.log
        if log:
            log(now, "draft_end", "drafter", None, (p, p + k - 1))
        self.drafter_forwards += k
        if self._o:  # busy: the forwards, not the loop overheads between them
            self.drafter_busy += k * self.d_const if self.block_ends is None else float(self.block_times.sum())
        else:
            self.drafter_busy += now - self.block_t
        seq = self.task_seq = self.task_seq + 1
        service = self._service
        if service is None:
            service = self.ov.startup_ms + self._verify_time(p, k)
        if self._msg > 0:
            task = Task(seq, self.epoch, p, k, service, now, self._task_done)
            self._timeout(self._msg).callbacks.append(lambda _ev: task.epoch == self.epoch and self.pool.submit(task))
        else:
            # no message delay: the result is handled when the task ends
            self.pool.submit_at(Task(seq, self.epoch, p, k, service, now, self._on_task_done), now)
        q = self.block_p = p + k
        if q < self.S and self._block_dur is not None:
            # the next block at once (the common case of _draft_block, inline: this runs once per block)
            self.block_t = now
            if log:
                log(now, "draft_start", "drafter", None, (q, q + k - 1))
            ev = self._block_ev = self._timeout(self._block_dur)
            ev.callbacks.append(self._block_done)
        else:
            self._draft_block(now)

    def _stop_drafter(self, now: float) -> None:
        if self.drafting:
            e = now - self.block_t
            if self._o:
                self.drafter_busy += self._busy_part(e)
            else:
                self.drafter_busy += e
            if self.block_ends is None:
                self.drafter_forwards += math.ceil(e / self._step - 1e-9)
            else:
                self.drafter_forwards += int(np.searchsorted(self.block_ends, e - 1e-12) + 1)
            if self.log:
                self.log(now, "draft_cancel", "drafter", None, (self.block_p, self.block_p + self.k - 1))
        self.drafting = False

    def _busy_part(self, e: float) -> float:
        """Forward time within the first ``e`` ms of the current block (each draft: forward, then overhead)."""
        if self.block_ends is None:
            d, step = self.d_const, self._step
            done = min(int(e // step), self.k)
            return done * d + min(max(e - done * step, 0.0), d)
        starts = self.block_ends - (self.block_times + self._o)
        return float(np.clip(e - starts, 0.0, self.block_times).sum())

    # -- verification results --------------------------------------------------------------
    def _task_done(self, task: Task) -> None:
        if self._msg > 0:
            self._timeout(self._msg).callbacks.append(lambda _ev: self._arrive(task))
        else:
            self._arrive(task)

    def _arrive(self, task: Task) -> None:
        """A result reaches the coordinator: it takes effect after the loop overheads of handling it."""
        if not self._holds:
            self._result(task)
            return
        if task.epoch != self.epoch or self.finished:
            return
        hold = self._per_round
        if self._per_emit:
            bonus = task.p + task.k
            j = self.nxt[task.p]
            end = j + 1 if (j <= bonus and j < self.S) else min(bonus + 1, self.S)
            m = end - max(task.p, self.V)
            if m > 0:
                hold += m * self._per_emit
        if hold > 0:
            self._timeout(hold).callbacks.append(lambda _ev: self._result(task))
        else:
            self._result(task)

    def _result(self, task: Task) -> None:
        """A verification's result reaches the coordinator: apply it, then any waiting results it unblocks."""
        if task.epoch != self.epoch or self.finished:
            return
        if task.p > self.V:
            self.pending[task.p] = task  # an earlier position is not confirmed yet
            return
        now = self.env.now
        pending = self.pending
        while True:
            bonus = task.p + task.k
            if bonus + 1 > self.V:  # else the chain got there first: nothing new
                self.useful_tasks += 1
                j = self.nxt[task.p]
                if self._learns:
                    self.policy.observe_task(self._view(task.p), task.k, min(j - task.p, task.k))
                if j <= bonus and j < self.S:
                    # a rejected draft in the block, or a wrong next draft (drafted or not: it is known
                    # now); j == S means no rejection left before the end of the run
                    self._reject_in_task(task, j, now)
                else:
                    self._advance_to(bonus + 1, now)
            if not pending or self.finished:
                return
            p = min(pending)
            if p > self.V:
                return
            task = pending.pop(p)

    def _advance_to(self, v: int, now: float, by_chain: bool = False, drafted: bool = True) -> None:
        """Confirm positions up to ``v`` (exclusive) without a rejection.

        ``by_chain``: the chain's token confirmed position ``v − 1``; ``drafted``
        says whether the drafter had drafted it (``_draft_exists(v − 1, now)``).
        """
        S = self.S
        if self.log:
            self.log(now, "confirm", "chain" if by_chain else "drafter", None, (self.V, min(v, S) - 1))
        V = self.V = v if v < S else S
        if V >= S:
            self._finish(now)
        elif by_chain and (not drafted or (not self.drafting and self.block_p < V)):
            # The chain overtook a drafter slower than the target: restart it at the frontier.  (A
            # verification's bonus token never does: the drafter's draft of it is still compared.)
            self._restart(False, now)
        elif self.chain and self.chain_pos != V:
            self._chain_goto(V, now)

    def _reject_in_task(self, task: Task, j: int, now: float) -> None:
        """The task's verification found the first rejection at ``j``: a chain emits the target's token there.

        (A tree task may rescue it with a sibling: :class:`simspec.des.tree.TreeDSIRun`.)"""
        self._reject(j, now)

    def _reject(self, r: int, now: float) -> None:
        if self.log:
            self.log(now, "reject", "drafter", None, (r, r))
            self.log(now, "confirm", "drafter", None, (self.V, min(r + 1, self.S) - 1))
        self.rejections += 1
        self.V = min(r + 1, self.S)
        if self.V >= self.S:
            self._finish(now)
        else:
            self._restart(True, now)

    def _restart(self, correction: bool, now: float) -> None:
        self.epoch += 1
        self.pool.cancel_all_at(now)
        self.pending.clear()
        self._stop_drafter(now)
        self._block_ev = None  # the block in flight (if any) belongs to the old epoch now
        self.block_p = self.V
        self._draft_block(now, self.ov.sync_ms if correction else 0.0)
        if self.chain and self.chain_pos != self.V:
            self._chain_goto(self.V, now)

    # -- the non-SI chain --------------------------------------------------------------------
    def _chain_stop(self, now: float) -> None:
        """Cancel the chain's forward in flight, if any (its server time so far is spent)."""
        self.chain_gen += 1
        if self._chain_ev is not None:
            self.chain_busy += now - self.chain_t0
            self.meter.change_at(now, -1)
            if self.log:
                self.log(now, "chain_cancel", "chain", None, (self.chain_pos, self.chain_pos))
            self._chain_ev = None
        self.chain_pos = -1

    def _chain_goto(self, pos: int, now: float) -> None:
        """Restart the chain at ``pos``, once the new prefix has reached its server."""
        if self._msg > 0:
            self._chain_stop(now)
            g = self.chain_gen
            self.chain_pos = pos  # waiting for the prefix: no forward runs
            self._timeout(self._msg).callbacks.append(
                lambda _ev: g == self.chain_gen and self._chain_begin(pos, self.env.now))
        elif self._chain_ev is not None:
            # Cancel the forward in flight and start the new one at the same instant (the common case: a
            # verification moved the frontier).  The server stays busy: the meter's -1 and +1 at one
            # instant are one update of 0, which only brings its area up to now.
            self.chain_gen += 1
            self.chain_busy += now - self.chain_t0
            if self.meter.last != now:  # (else the update of 0 adds 0.0: usually a task just ended now)
                self.meter.change_at(now, 0)
            if self.log:
                self.log(now, "chain_cancel", "chain", None, (self.chain_pos, self.chain_pos))
            self._chain_begin(pos, now, meter=False)
        else:
            self._chain_stop(now)
            self._chain_begin(pos, now)

    def _chain_begin(self, pos: int, now: float, meter: bool = True) -> None:
        self.chain_pos = pos
        self.chain_t0 = now
        self.chain_started += 1
        if meter:
            self.meter.change_at(now, +1)
        if self.log:
            self.log(now, "chain_start", "chain", None, (pos, pos))
        ev = self._chain_ev = self._timeout(self.t1 if self.t_const else self._chain_time(pos))
        ev.callbacks.append(self._chain_end)

    def _chain_end(self, ev: simpy.Event) -> None:
        if ev is not self._chain_ev or self.finished:
            return  # a cancelled forward
        now = self.env.now
        pos = self.chain_pos
        self.chain_done += 1
        self.chain_busy += now - self.chain_t0
        self.meter.change_at(now, -1)
        if self.log:
            self.log(now, "chain_end", "chain", None, (pos, pos))
        self._chain_ev = None
        self.chain_pos = -1
        if self._msg > 0:
            # the server knows its own token and goes on; the coordinator hears of it later
            if pos + 1 < self.S:
                self._chain_begin(pos + 1, now)
            delay = self._msg + self._per_emit if self._per_emit else self._msg
            self._timeout(delay).callbacks.append(lambda _ev: self._chain_result(pos, self.env.now))
        elif self._per_emit:
            # the token takes effect (and the chain goes on) after the loop's overhead of emitting it
            self._timeout(self._per_emit).callbacks.append(lambda _ev: self._chain_result(pos, self.env.now))
        else:
            self._chain_result(pos, now)

    def _chain_result(self, pos: int, now: float) -> None:
        if self.finished or pos != self.V:
            return
        self.chain_useful += 1
        drafted = self._draft_exists(pos, now)
        if drafted and not self._acc[pos]:
            self._reject(pos, now)
        else:
            self._advance_to(pos + 1, now, True, drafted)
        if not self.finished and self.chain_pos != self.V:
            self._chain_goto(self.V, now)

    # -- run ------------------------------------------------------------------------------------
    def _finish(self, now: float) -> None:
        self.end_time = now
        if self.log:
            self.log(now, "done", "drafter", None, (self.S - 1, self.S - 1))
        self._stop_drafter(now)
        self._block_ev = None  # a block ending at this very instant was counted by _stop_drafter
        self.pool.cancel_all_at(now)
        if self.chain:
            self._chain_stop(now)
        self.finished = True
        self.done.succeed()

    def start(self) -> None:
        now = self.env.now
        self._draft_block(now)
        if self.chain:
            self._chain_begin(0, now)

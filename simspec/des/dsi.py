"""DSI on simulated servers: drafter, verification tasks, the non-SI chain, cancellation.

Timor et al., "Distributed Speculative Inference", arXiv 2405.14105 (ICLR 2025),
Algorithm 1 generalised to a lookahead ``k`` — the rules of ``models.md`` §4:

* the drafter drafts continuously from the newest speculated prefix; after every
  ``k`` drafts it submits a verification task of width ``k + 1`` (its drafts and
  the next position) and drafts on without waiting;
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

Drafts inside a block are not separate events: a block is one timeout, and the
time each draft finished is known from the block's draw — every event the
engine does not need is a cost.
"""

from __future__ import annotations

import numpy as np
import simpy

from ..latency import LatencyModel, is_deterministic
from .config import Overheads
from .pool import BusyMeter, ServerPool, Task

__all__ = ["DSIRun"]


class DSIRun:
    """One DSI run over the acceptance outcomes ``accepted`` (1-D bool, length ``S``)."""

    def __init__(
        self,
        env: simpy.Environment,
        accepted: np.ndarray,
        nxt: list[int],
        k: int,
        target: LatencyModel,
        drafter: LatencyModel,
        rng: np.random.Generator,
        servers: int | None,
        queue: str,
        chain: bool,
        overheads: Overheads,
        prompt_len: int,
        log,
    ) -> None:
        self.env, self.k, self.target, self.drafter, self.rng = env, k, target, drafter, rng
        self.S = len(nxt)
        self.nxt = nxt  # first rejected position at or after each position (S if none)
        self.acc = accepted
        self.chain = chain
        self.ov = overheads
        self.prompt = prompt_len
        self.log = log
        self.meter = BusyMeter(env)
        cap = None if servers is None else max(servers - (1 if chain else 0), 0)
        self.pool = ServerPool(env, cap, queue, self.meter, log)
        self.t1 = float(target.forward(1, prompt_len))
        self.d_const = float(drafter.forward(1, prompt_len)) if is_deterministic(drafter) else None
        self.t_const = is_deterministic(target) and not target.context_dependent
        self.v_const = float(target.forward(k + 1, prompt_len)) if self.t_const else None
        self.done = env.event()
        # state
        self.V = 0  # positions confirmed
        self.epoch = 0
        self.pending: dict[int, Task] = {}
        self.task_seq = 0
        # drafter: current block [block_p, block_p + k) started at block_t with draft end offsets
        self.block_p = 0
        self.block_t = 0.0
        self.block_ends: np.ndarray | None = None
        self.drafting = False
        self.drafted = 0  # positions whose drafts are complete (from finished blocks)
        self.drafter_forwards = 0
        self.drafter_busy = 0.0
        # chain
        self.chain_gen = 0
        self.chain_state: tuple | None = None
        self.chain_useful = 0
        self.chain_started = 0
        self.chain_done = 0
        self.chain_busy = 0.0
        # outcomes
        self.useful_tasks = 0
        self.rejections = 0
        self.end_time = float("nan")

    # -- helpers -------------------------------------------------------------------------
    def _verify_time(self, p: int) -> float:
        if self.v_const is not None:
            return self.v_const
        ctx = self.prompt + p
        model = self.target
        sample = getattr(model, "sample", None)
        return float(sample(self.rng, self.k + 1, ctx) if sample else model.forward(self.k + 1, ctx))

    def _chain_time(self, pos: int) -> float:
        if self.t_const:
            return self.t1
        model = self.target
        sample = getattr(model, "sample", None)
        ctx = self.prompt + pos
        return float(sample(self.rng, 1, ctx) if sample else model.forward(1, ctx))

    def _draft_exists(self, pos: int) -> bool:
        """Has the drafter finished drafting position ``pos`` (from the current speculation)?"""
        if pos < self.drafted:
            return True
        if not self.drafting or pos >= self.block_p + self.k or pos < self.block_p:
            return False
        j = pos - self.block_p
        end = self.block_t + (self.d_const * (j + 1) if self.block_ends is None else self.block_ends[j])
        return self.env.now >= end - 1e-12 * max(1.0, abs(end))

    # -- drafter -------------------------------------------------------------------------
    def _draft_block(self, start_delay: float = 0.0) -> None:
        if self.block_p >= self.S:
            self.drafting = False
            return
        if start_delay > 0:
            e = self.epoch
            self.env.timeout(start_delay).callbacks.append(lambda _ev: e == self.epoch and self._draft_block())
            self.drafting = False
            return
        self.drafting = True
        self.block_t = self.env.now
        if self.d_const is not None:
            self.block_ends = None
            dur = self.d_const * self.k
        else:
            times = np.array([float(self.drafter.sample(self.rng, 1, self.prompt + self.block_p + j)) for j in range(self.k)])
            self.block_ends = np.cumsum(times)
            dur = float(self.block_ends[-1])
        e, p = self.epoch, self.block_p
        self.log(self.env.now, "draft_start", "drafter", None, (p, p + self.k - 1))
        self.env.timeout(dur).callbacks.append(lambda _ev: self._block_done(e, p))

    def _block_done(self, e: int, p: int) -> None:
        if e != self.epoch:
            return
        now = self.env.now
        self.log(now, "draft_end", "drafter", None, (p, p + self.k - 1))
        self.drafter_forwards += self.k
        self.drafter_busy += now - self.block_t
        self.drafted = p + self.k
        self.task_seq += 1
        task = Task(self.task_seq, e, p, self.k, self.ov.startup_ms + self._verify_time(p), now, self._task_done)
        if self.ov.message_ms > 0:
            self.env.timeout(self.ov.message_ms).callbacks.append(
                lambda _ev: task.epoch == self.epoch and self.pool.submit(task)
            )
        else:
            self.pool.submit(task)
        self.block_p = p + self.k
        self._draft_block()

    def _stop_drafter(self) -> None:
        if self.drafting:
            now = self.env.now
            self.drafter_busy += now - self.block_t
            if self.block_ends is None:
                self.drafter_forwards += int(np.ceil((now - self.block_t) / self.d_const - 1e-9))
            else:
                self.drafter_forwards += int(np.searchsorted(self.block_ends, now - self.block_t - 1e-12) + 1)
            self.log(now, "draft_cancel", "drafter", None, (self.block_p, self.block_p + self.k - 1))
        self.drafting = False

    # -- verification results --------------------------------------------------------------
    def _task_done(self, task: Task) -> None:
        if self.ov.message_ms > 0:
            self.env.timeout(self.ov.message_ms).callbacks.append(lambda _ev: self._result(task))
        else:
            self._result(task)

    def _result(self, task: Task) -> None:
        if task.epoch != self.epoch or self.done.triggered:
            return
        if task.p > self.V:
            self.pending[task.p] = task
            return
        self._apply(task)
        while self.pending and not self.done.triggered:
            p = min(self.pending)
            if p > self.V:
                break
            self._apply(self.pending.pop(p))

    def _apply(self, task: Task) -> None:
        bonus = task.p + task.k
        if bonus + 1 <= self.V:
            return  # the chain got there first: nothing new
        self.useful_tasks += 1
        j = self.nxt[task.p]
        if j <= bonus:  # a rejected draft in the block, or a wrong next draft (drafted or not: it is known now)
            self._reject(j)
        else:
            self._advance_to(bonus + 1)

    def _advance_to(self, v: int, by_chain: bool = False) -> None:
        """Confirm positions up to ``v`` (exclusive) without a rejection."""
        self.log(self.env.now, "confirm", "chain" if by_chain else "drafter", None, (self.V, min(v, self.S) - 1))
        self.V = min(v, self.S)
        if self.V >= self.S:
            self._finish()
        elif by_chain and (not self._draft_exists(self.V - 1) or (not self.drafting and self.block_p < self.V)):
            # The chain overtook a drafter slower than the target: restart it at the frontier.  (A
            # verification's bonus token never does: the drafter's draft of it is still compared.)
            self._restart(correction=False)
        elif self.chain and self._chain_target() != self.V:
            self._chain_goto(self.V)

    def _reject(self, r: int) -> None:
        self.log(self.env.now, "reject", "drafter", None, (r, r))
        self.log(self.env.now, "confirm", "drafter", None, (self.V, min(r + 1, self.S) - 1))
        self.rejections += 1
        self.V = min(r + 1, self.S)
        if self.V >= self.S:
            self._finish()
        else:
            self._restart(correction=True)

    def _restart(self, correction: bool) -> None:
        self.epoch += 1
        self.pool.cancel_all()
        self.pending.clear()
        self._stop_drafter()
        self.block_p = self.V
        self.drafted = self.V
        self._draft_block(self.ov.sync_ms if correction else 0.0)
        if self.chain and self._chain_target() != self.V:
            self._chain_goto(self.V)

    # -- the non-SI chain --------------------------------------------------------------------
    # chain_state: None (idle), ("wait", pos) while a new prefix is in flight, ("run", pos, t0).
    def _chain_target(self) -> int:
        return -1 if self.chain_state is None else self.chain_state[1]

    def _chain_stop(self) -> None:
        """Cancel the chain's forward in flight, if any (its server time so far is spent)."""
        st = self.chain_state
        self.chain_gen += 1
        if st is not None and st[0] == "run":
            now = self.env.now
            self.chain_busy += now - st[2]
            self.meter.change(-1)
            self.log(now, "chain_cancel", "chain", None, (st[1], st[1]))
        self.chain_state = None

    def _chain_goto(self, pos: int) -> None:
        """Restart the chain at ``pos``, once the new prefix has reached its server."""
        self._chain_stop()
        if self.ov.message_ms > 0:
            g = self.chain_gen
            self.chain_state = ("wait", pos)
            self.env.timeout(self.ov.message_ms).callbacks.append(lambda _ev: g == self.chain_gen and self._chain_begin(pos))
        else:
            self._chain_begin(pos)

    def _chain_begin(self, pos: int) -> None:
        g = self.chain_gen
        now = self.env.now
        self.chain_state = ("run", pos, now)
        self.chain_started += 1
        self.meter.change(+1)
        self.log(now, "chain_start", "chain", None, (pos, pos))
        self.env.timeout(self._chain_time(pos)).callbacks.append(lambda _ev: self._chain_end(g, pos))

    def _chain_end(self, g: int, pos: int) -> None:
        if g != self.chain_gen or self.done.triggered:
            return
        now = self.env.now
        self.chain_done += 1
        self.chain_busy += now - self.chain_state[2]
        self.meter.change(-1)
        self.log(now, "chain_end", "chain", None, (pos, pos))
        self.chain_state = None
        if self.ov.message_ms > 0:
            # the server knows its own token and goes on; the coordinator hears of it later
            if pos + 1 < self.S:
                self._chain_begin(pos + 1)
            self.env.timeout(self.ov.message_ms).callbacks.append(lambda _ev: self._chain_result(pos))
        else:
            self._chain_result(pos)

    def _chain_result(self, pos: int) -> None:
        if self.done.triggered or pos != self.V:
            return
        self.chain_useful += 1
        if not self.acc[pos] and self._draft_exists(pos):
            self._reject(pos)
        else:
            self._advance_to(pos + 1, by_chain=True)
        if not self.done.triggered and self._chain_target() != self.V:
            self._chain_goto(self.V)

    # -- run ------------------------------------------------------------------------------------
    def _finish(self) -> None:
        now = self.env.now
        self.end_time = now
        self.log(now, "done", "drafter", None, (self.S - 1, self.S - 1))
        self._stop_drafter()
        self.pool.cancel_all()
        if self.chain:
            self._chain_stop()
        self.done.succeed()

    def start(self) -> None:
        self._draft_block()
        if self.chain:
            self._chain_begin(0)

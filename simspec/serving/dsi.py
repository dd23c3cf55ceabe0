"""DSI under load: every request runs DSI, and their verification tasks share a pool of batching servers.

Each admitted request runs the discrete-event DSI of ``simspec.des.dsi.DSIRun`` — its drafter
drafts continuously and submits a verification task every ``k`` drafts; a rejection cancels the
request's later tasks — with one change: its tasks go to a **shared pool** of ``servers`` target
servers (``Batching.replicas``), which serve the tasks of *all* requests. A free server runs one
batched forward over the oldest queued tasks (at most ``max_batch`` of them and
``max_tokens_per_step`` tokens), priced by the target's batch latency model for their widths and
contexts, plus ``startup_ms``; a task cancelled while its forward runs is wasted, and a forward
whose tasks are all cancelled is abandoned at once (the single-request engine frees a cancelled
task's server the same way). Prompts are prefilled on the same servers, as forwards of their own.

What is assumed, and stated in the results:

* no non-SI chain (it would hold a server per request): DSI here is ``chain=False``;
* one drafter GPU per target server (counted in the GPU cost, as for SI with a separate drafter);
  the requests running at once share them, so each draft costs one batched drafter forward over
  ``ceil(running requests / drafter GPUs)`` sequences (:class:`_SharedDrafter`);
* at most ``max_batch × servers`` requests run at once;
* the KV cache (``Batching.kv_blocks``): any server may verify any request's task, so **every target
  server holds every running request's KV cache** — the cache of one server bounds the requests
  running at once, however many servers there are (SI's replicas each hold their own requests).
  A request reserves ``blocks_for(prompt + output + k + 1)`` (its whole sequence and one task's draft
  slots, ``k`` the lookahead or a policy's ``k_max``) when admitted and frees it when it finishes;
  requests are admitted in arrival order while their reservation fits, so nothing is preempted.
  Several tasks of one request batched on one server share its reservation.

With one server, batch 1 and one request at a time, a request's latency equals
:func:`simspec.des.run_once`'s DSI run without the chain on one server (``tests/test_serving.py``).
"""

from __future__ import annotations

from collections import deque

import numpy as np
import simpy

from ..des.dsi import DSIRun
from ..errors import UnsupportedScenarioError
from ..des.pool import Task
from ..lookahead import LookaheadPolicy, StaticLookahead
from ..montecarlo.positions import next_rejection
from .batching import Batching

__all__ = ["run_dsi_engine", "kv_slots"]


class _Item:
    __slots__ = ("width", "context", "phase", "done", "task", "cancelled")

    def __init__(self, width, context, phase, done, task=None) -> None:
        self.width, self.context, self.phase, self.done, self.task = width, context, phase, done, task
        self.cancelled = False


class _Server:
    __slots__ = ("index", "busy", "items", "ev", "steps", "batch_sum", "busy_ms", "started")

    def __init__(self, index: int) -> None:
        self.index = index
        self.busy = False
        self.items: list[_Item] = []
        self.ev = None
        self.steps = self.batch_sum = 0
        self.busy_ms = 0.0
        self.started = 0.0


class _SharedPool:
    """Target servers that run queued items of every request in batched forwards, oldest first."""

    def __init__(self, env: simpy.Environment, cfg: Batching, target, startup_ms: float) -> None:
        self.env = env
        self.cfg = cfg
        self.target = target
        self.startup = startup_ms
        self.queue: deque[_Item] = deque()
        self.servers = [_Server(i) for i in range(cfg.replicas)]
        self.forwards = 0  # task forwards started (a task in a batch counts once)

    def submit(self, item: _Item) -> None:
        self.queue.append(item)
        for s in self.servers:
            if not s.busy:
                self._start(s)
                break

    def _start(self, s: _Server) -> None:
        q, cfg = self.queue, self.cfg
        items: list[_Item] = []
        tokens = 0
        while q and len(items) < cfg.max_batch:
            it = q[0]
            if it.cancelled:
                q.popleft()
                continue
            if items and tokens + it.width > cfg.max_tokens_per_step:
                break
            q.popleft()
            items.append(it)
            tokens += it.width
        if not items:
            s.busy = False
            return
        s.busy = True
        s.items = items
        s.started = self.env.now
        self.forwards += sum(1 for it in items if it.task is not None)
        phase = "prefill" if any(it.phase == "prefill" for it in items) else "decode"
        dt = self.target([it.width for it in items], [it.context for it in items], phase)
        if self.startup and any(it.task is not None for it in items):
            dt += self.startup
        ev = s.ev = self.env.timeout(dt)
        ev.callbacks.append(lambda e, s=s: self._end(s, e))

    def _end(self, s: _Server, ev) -> None:
        if ev is not s.ev:
            return  # an abandoned forward
        self._account(s)
        items = s.items
        s.items = []
        s.ev = None
        s.busy = False
        for it in items:
            if not it.cancelled:
                it.done()
        if not s.busy:
            self._start(s)

    def _account(self, s: _Server) -> None:
        s.busy_ms += self.env.now - s.started
        s.steps += 1
        s.batch_sum += len(s.items)

    def cancelled(self, item: _Item) -> None:
        """``item`` was cancelled: a forward left with nothing but cancelled items is abandoned."""
        for s in self.servers:
            if s.busy and item in s.items and all(it.cancelled for it in s.items):
                self._account(s)
                s.items = []
                s.ev = None
                s.busy = False
                self._start(s)
                return


class _PoolView:
    """What a request's DSIRun sees as its server pool: its own tasks in the shared pool."""

    def __init__(self, shared: _SharedPool, prompt: int) -> None:
        self.shared = shared
        self.prompt = prompt
        self.mine: dict[int, _Item] = {}
        self.started = 0
        self.busy_time = 0.0
        self.queue_delay = 0.0
        self.queued = 0

    def submit(self, task: Task) -> None:
        self.submit_at(task, self.shared.env.now)

    def submit_at(self, task: Task, now: float) -> None:
        task.submitted = now

        def done(task=task) -> None:
            self.mine.pop(task.id, None)
            task.on_done(task)

        it = _Item(task.k + 1, self.prompt + task.p, "decode", done, task)
        self.mine[task.id] = it
        self.started += 1
        self.shared.submit(it)

    def cancel_all_at(self, now: float) -> None:
        items = list(self.mine.values())
        self.mine.clear()
        for it in items:
            it.cancelled = True
            it.task.cancelled = True
        for it in items:
            self.shared.cancelled(it)


class _SharedDrafter:
    """The drafter as one request's DSI sees it: a drafter GPU shared by every request drafting on it.

    Each draft costs one batched drafter forward over the requests drafting on the same GPU at that
    moment, ``ceil(drafting / drafter_gpus)`` sequences of one token each (the drafter GPUs batch their
    requests' drafts as a serving engine batches decoding).  It answers as a random latency model
    (``deterministic = False``), so DSI asks it at every draft and sees the load of that moment.
    With one request at a time it is the drafter itself.
    """

    deterministic = False
    context_dependent = True

    def __init__(self, engine: "_DSIEngine", drafter) -> None:
        self.engine = engine
        self.batch_model = drafter
        self.single = drafter.single()
        # a fixed drafter (deterministic, blind to the context): one price per batch size, computed once
        self._memo: dict | None = {} if drafter.deterministic and not self.single.context_dependent else None

    @property
    def tpot_ms(self) -> float:
        return self.single.tpot_ms

    @property
    def ttft_ms(self) -> float:
        return self.single.ttft_ms

    def _batch(self) -> int:
        eng = self.engine
        return max(1, -(-eng.active // eng.cfg.replicas))

    def forward(self, n_new=1, context_len=0, phase="decode"):
        b = self._batch()
        if b == 1:
            return self.single.forward(n_new, context_len, phase)
        return self.batch_model.step_ms([int(n_new)] * b, [int(context_len)] * b, phase)

    def sample(self, rng, n_new=1, context_len=0, phase="decode"):
        b = self._batch()
        memo = self._memo
        if memo is not None:
            key = (b, n_new, phase)
            t = memo.get(key)
            if t is None:
                t = memo[key] = float(self.forward(n_new, context_len, phase))
            return t
        if b == 1:
            return self.single.sample(rng, n_new, context_len, phase)
        return self.batch_model.sample_step(rng, [int(n_new)] * b, [int(context_len)] * b, phase)


def kv_slots(lookahead) -> int:
    """The most draft slots one DSI task writes: a static ``k``, or a lookahead policy's ``k_max``."""
    k = getattr(lookahead, "k", None)
    if not isinstance(k, (int, np.integer)):
        k = getattr(lookahead, "k_max", None)
    if not isinstance(k, (int, np.integer)):
        raise UnsupportedScenarioError(
            f"the KV cache under DSI reserves one task's draft slots, but {getattr(lookahead, 'name', lookahead)} "
            "states no maximum lookahead (k_max): give an int lookahead, or drop kv_blocks")
    return int(k)


class _Req:
    __slots__ = ("id", "arrival", "prompt", "S", "first_token", "finish", "preemptions", "drafts", "accepted",
                 "rounds", "replica", "wait_ms", "run", "blocks")

    def __init__(self, i, arrival, prompt, S) -> None:
        self.id, self.arrival, self.prompt, self.S = i, arrival, prompt, S
        self.blocks = 0
        self.first_token = self.finish = -1.0
        self.preemptions = self.drafts = self.accepted = self.rounds = self.replica = 0
        self.wait_ms = 0.0
        self.run = None


class _DSIEngine:
    def __init__(self, table, outcomes, signals, target, drafter, lookahead, cfg: Batching, overheads, rng):
        from .engine import _Sampler

        self.env = simpy.Environment()
        self.cfg = cfg
        self.ov = overheads
        self.rng = rng
        self.target_single = target.single()
        self.drafter_shared = _SharedDrafter(self, drafter)
        self.limit = cfg.max_batch * cfg.replicas
        single = drafter.single()
        if drafter.deterministic and not single.context_dependent:
            # a drafter whose batched draft costs what one draft costs at every batch it can meet (e.g. the
            # token-count rule on a constant model): DSI's fast path for a fixed drafter is then exact
            one = float(single.forward(1, 0))
            if all(float(drafter.step_ms([1] * b, [0] * b)) == one for b in range(2, -(-self.limit // cfg.replicas) + 1)):
                self.drafter_shared = single
        self.drafter = _Sampler(drafter, rng)
        self.pool = _SharedPool(self.env, cfg, _Sampler(target, rng), overheads.startup_ms)
        self.replicas = self.pool.servers  # steps and batch sizes, for the metrics
        self.preemptions = 0
        self.finished = 0
        self.active = 0
        self.waiting: deque[_Req] = deque()
        self.outcomes, self.signals = outcomes, signals
        self.lookahead = lookahead
        self.free_blocks = cfg.kv_blocks  # None: the KV cache is not limited
        self.peak_blocks = 0
        self.slots = kv_slots(lookahead) + 1  # one task's draft slots and its bonus position
        self.requests = [_Req(i, float(table.arrival_ms[i]), int(table.prompt_len[i]), int(table.output_len[i]))
                         for i in range(len(table))]

    def _admit(self) -> None:
        while self.waiting and self.active < self.limit:
            r = self.waiting[0]
            if self.free_blocks is not None:
                # every server holds every running request's cache: one reservation, counted once
                need = self.cfg.blocks_for(r.prompt + r.S + self.slots)
                if need > self.free_blocks:
                    break  # in arrival order: the oldest waits for blocks, the others behind it
                self.free_blocks -= need
                r.blocks = need
                self.peak_blocks = max(self.peak_blocks, self.cfg.kv_blocks - self.free_blocks)
            self.waiting.popleft()
            self.active += 1
            r.wait_ms = self.env.now - r.arrival
            admitted = self.env.now
            drafter_ready = admitted + self.drafter([r.prompt], [0], "prefill")

            def prefilled(r=r, ready=drafter_ready) -> None:
                now = self.env.now
                if ready > now:
                    self.env.timeout(ready - now).callbacks.append(lambda _e, r=r: self._start(r))
                else:
                    self._start(r)

            self.pool.submit(_Item(r.prompt, 0, "prefill", prefilled))

    def _start(self, r: _Req) -> None:
        r.first_token = self.env.now
        acc = self.outcomes[r.id]
        nxt = next_rejection(acc[None, :])[0].tolist()
        la = self.lookahead
        k = la.k if type(la) is StaticLookahead else la.start(1)
        run = DSIRun(self.env, acc, nxt, k, self.target_single, self.drafter_shared, self.rng, None, "fifo", False,
                     self.ov, r.prompt, None, self.signals[r.id] if self.signals else None)
        run.pool = _PoolView(self.pool, r.prompt)
        r.run = run
        run.done.callbacks.append(lambda _e, r=r: self._finish(r))
        run.start()

    def _finish(self, r: _Req) -> None:
        run = r.run
        r.finish = run.end_time
        r.rounds = run.useful_tasks
        r.drafts = run.drafter_forwards
        r.accepted = r.S - run.useful_tasks
        r.run = None
        self.active -= 1
        self.finished += 1
        if self.free_blocks is not None:
            self.free_blocks += r.blocks
            r.blocks = 0
        self._admit()

    def arrivals(self):
        env = self.env
        for r in self.requests:
            if r.arrival > env.now:
                yield env.timeout(r.arrival - env.now)
            self.waiting.append(r)
            self._admit()

    def run(self) -> None:
        self.env.process(self.arrivals())
        n = len(self.requests)
        while self.finished < n:
            if self.env.peek() == float("inf"):  # pragma: no cover - an engine bug, not a user error
                raise AssertionError(f"the DSI serving engine stalled with {n - self.finished} requests unfinished")
            self.env.step()


def run_dsi_engine(table, outcomes, signals, target, drafter, lookahead, cfg: Batching, overheads,
                   rng: np.random.Generator) -> _DSIEngine:
    """Run one replication of DSI under load on the requests ``table``."""
    if isinstance(lookahead, LookaheadPolicy) and type(lookahead) is not StaticLookahead:
        from ..des.runner import _dsi_policy

        lookahead = _dsi_policy(lookahead)
    eng = _DSIEngine(table, outcomes, signals, target, drafter, lookahead, cfg, overheads, rng)
    eng.run()
    return eng

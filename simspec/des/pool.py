"""A pool of target servers: tasks queue (FIFO or LIFO), run, finish or are cancelled.

Like the fuel pumps of a gas station, ``N`` servers serve verification tasks;
a task that finds every server busy waits in the queue.  The pool tracks what a
capacity planner asks for: servers busy over time (peak and time-average), time
spent queueing, and forwards started, finished and cancelled.  A cancelled
running task frees its server at once; the timeout already scheduled for it is
left to fire and is ignored (cheaper than unscheduling).

Speed: the engine runs millions of events, so the hot paths take the current
time as an argument (``env.now`` is a property), call the event log only when
it records (:func:`active_log`), and register bound methods rather than a new
closure per event.
"""

from __future__ import annotations

import sys
from collections import deque
from typing import Callable

import simpy

__all__ = ["Task", "BusyMeter", "ServerPool", "active_log"]


def active_log(log):
    """``log`` if it records anything, else ``None``.

    Callers keep the result and guard each call with ``if log:`` so that a run
    without a trace does not even build the call's arguments.  An
    :class:`~simspec.des.trace.EventLog` with ``enabled=False`` is a no-op, so
    skipping it changes nothing.
    """
    if log is None or getattr(log, "enabled", True) is False:
        return None
    return log


class BusyMeter:
    """Time-weighted count of busy servers (pool tasks and the non-SI chain together)."""

    __slots__ = ("env", "busy", "peak", "_area", "last")

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.busy = 0
        self.peak = 0
        self._area = 0.0
        self.last = env.now  # time of the last change: the area is integrated up to it

    def change(self, delta: int) -> None:
        self.change_at(self.env.now, delta)

    def change_at(self, now: float, delta: int) -> None:
        """``change(delta)`` at time ``now`` (the caller's ``env.now``)."""
        self._area += self.busy * (now - self.last)
        self.last = now
        self.busy += delta
        if self.busy > self.peak:
            self.peak = self.busy

    def area(self, until: float) -> float:
        return self._area + self.busy * (until - self.last)


class Task:
    """One verification task: positions ``p..p+k`` (``k`` drafts and the next position)."""

    __slots__ = ("id", "epoch", "p", "k", "service", "submitted", "started", "server", "cancelled", "on_done")

    def __init__(self, id: int, epoch: int, p: int, k: int, service: float, submitted: float,
                 on_done: Callable[["Task"], None]) -> None:
        self.id, self.epoch, self.p, self.k, self.service = id, epoch, p, k, service
        self.submitted = submitted
        self.started = -1.0
        self.server = -1
        self.cancelled = False
        self.on_done = on_done


class ServerPool:
    """``capacity`` servers (``None``: as many as asked for) with a FIFO or LIFO queue."""

    def __init__(self, env: simpy.Environment, capacity: int | None, discipline: str, meter: BusyMeter,
                 log) -> None:
        self.env = env
        self.capacity = capacity
        self._limit = sys.maxsize if capacity is None else capacity  # one comparison per start, no None test
        self.lifo = discipline == "lifo"
        self.meter = meter
        self.log = active_log(log)
        self.queue: deque[Task] = deque()
        self.running: dict[int, Task] = {}
        self._free_ids: list[int] = []
        self._next_id = 0
        self._timeout = env.timeout
        self.started = 0
        self.completed = 0
        self.cancelled_running = 0
        self.queue_delay = 0.0  # summed over tasks that waited and then started
        self.dropped = 0  # tasks cancelled while still queued
        self.queued = 0  # tasks that found every server busy
        self.busy_time = 0.0

    def submit(self, task: Task) -> None:
        self.submit_at(task, self.env.now)

    def submit_at(self, task: Task, now: float) -> None:
        """``submit(task)`` at time ``now`` (the caller's ``env.now``)."""
        task.submitted = now
        if len(self.running) < self._limit:
            self._start(task, now)
        else:
            self.queue.append(task)
            self.queued += 1
            if self.log:
                self.log(now, "verify_queued", "queue", task.id, (task.p, task.p + task.k))

    def _start(self, task: Task, now: float) -> None:
        task.started = now
        if now != task.submitted:  # (adding 0.0 would change nothing)
            self.queue_delay += now - task.submitted
        self.running[task.id] = task
        self.started += 1
        self.meter.change_at(now, +1)
        if self.log:
            # server numbers only name the log's lanes: they are handed out only when the log records
            task.server = self._free_ids.pop() if self._free_ids else self._take_id()
            self.log(now, "verify_start", f"server {task.server}", task.id, (task.p, task.p + task.k))
        # the task rides on its timeout as the value: one bound method serves every task
        self._timeout(task.service, task).callbacks.append(self._on_end)

    def _take_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    def _on_end(self, ev: simpy.Event) -> None:
        """A task's timeout fired: the task ends, unless it was cancelled while it ran."""
        task = ev.value
        if task.cancelled:
            return  # its server was freed when it was cancelled
        now = self.env.now
        del self.running[task.id]
        self.busy_time += now - task.started
        self.meter.change_at(now, -1)
        self.completed += 1
        if self.log:
            self._free_ids.append(task.server)
            self.log(now, "verify_end", f"server {task.server}", task.id, (task.p, task.p + task.k))
        if self.queue:
            self._dispatch(now)
        task.on_done(task)

    def _dispatch(self, now: float) -> None:
        while self.queue and len(self.running) < self._limit:
            self._start(self.queue.pop() if self.lifo else self.queue.popleft(), now)

    def cancel_all(self) -> None:
        """Cancel every task: running ones free their servers, queued ones are dropped."""
        self.cancel_all_at(self.env.now)

    def cancel_all_at(self, now: float) -> None:
        """``cancel_all()`` at time ``now`` (the caller's ``env.now``)."""
        running = self.running
        if running:
            for task in running.values():
                task.cancelled = True
                self.busy_time += now - task.started
                if self.log:
                    self._free_ids.append(task.server)
                    self.log(now, "verify_cancel", f"server {task.server}", task.id, (task.p, task.p + task.k))
            n = len(running)
            running.clear()
            self.cancelled_running += n
            # one meter update for all: at one instant, n steps of -1 and one step of -n are the same
            self.meter.change_at(now, -n)
        for task in self.queue:  # dropped before they started: their wait is not a queueing delay
            task.cancelled = True
            self.dropped += 1
        self.queue.clear()

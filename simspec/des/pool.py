"""A pool of target servers: tasks queue (FIFO or LIFO), run, finish or are cancelled.

Like the fuel pumps of a gas station, ``N`` servers serve verification tasks;
a task that finds every server busy waits in the queue.  The pool tracks what a
capacity planner asks for: servers busy over time (peak and time-average), time
spent queueing, and forwards started, finished and cancelled.  A cancelled
running task frees its server at once; the timeout already scheduled for it is
left to fire and is ignored (cheaper than unscheduling).
"""

from __future__ import annotations

from collections import deque
from typing import Callable

import simpy

__all__ = ["Task", "BusyMeter", "ServerPool"]


class BusyMeter:
    """Time-weighted count of busy servers (pool tasks and the non-SI chain together)."""

    __slots__ = ("env", "busy", "peak", "_area", "_last")

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.busy = 0
        self.peak = 0
        self._area = 0.0
        self._last = env.now

    def change(self, delta: int) -> None:
        now = self.env.now
        self._area += self.busy * (now - self._last)
        self._last = now
        self.busy += delta
        if self.busy > self.peak:
            self.peak = self.busy

    def area(self, until: float) -> float:
        return self._area + self.busy * (until - self._last)


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
        self.lifo = discipline == "lifo"
        self.meter = meter
        self.log = log
        self.queue: deque[Task] = deque()
        self.running: dict[int, Task] = {}
        self._free_ids: list[int] = []
        self._next_id = 0
        self.started = 0
        self.completed = 0
        self.cancelled_running = 0
        self.queue_delay = 0.0
        self.busy_time = 0.0

    def submit(self, task: Task) -> None:
        task.submitted = self.env.now
        if self.capacity is None or len(self.running) < self.capacity:
            self._start(task)
        else:
            self.queue.append(task)
            self.log(self.env.now, "verify_queued", "queue", task.id, (task.p, task.p + task.k))

    def _start(self, task: Task) -> None:
        now = self.env.now
        task.started = now
        self.queue_delay += now - task.submitted
        task.server = self._free_ids.pop() if self._free_ids else self._take_id()
        self.running[task.id] = task
        self.started += 1
        self.meter.change(+1)
        self.log(now, "verify_start", f"server {task.server}", task.id, (task.p, task.p + task.k))
        self.env.timeout(task.service).callbacks.append(lambda _ev, t=task: self._finish(t))

    def _take_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    def _release(self, task: Task) -> None:
        del self.running[task.id]
        self._free_ids.append(task.server)
        self.busy_time += self.env.now - task.started
        self.meter.change(-1)

    def _finish(self, task: Task) -> None:
        if task.cancelled:
            return
        self._release(task)
        self.completed += 1
        self.log(self.env.now, "verify_end", f"server {task.server}", task.id, (task.p, task.p + task.k))
        self._dispatch()
        task.on_done(task)

    def _dispatch(self) -> None:
        while self.queue and (self.capacity is None or len(self.running) < self.capacity):
            self._start(self.queue.pop() if self.lifo else self.queue.popleft())

    def cancel_all(self) -> None:
        """Cancel every task: running ones free their servers, queued ones are dropped."""
        now = self.env.now
        for task in list(self.running.values()):
            task.cancelled = True
            self._release(task)
            self.cancelled_running += 1
            self.log(now, "verify_cancel", f"server {task.server}", task.id, (task.p, task.p + task.k))
        for task in self.queue:
            task.cancelled = True
            self.queue_delay += now - task.submitted
        self.queue.clear()

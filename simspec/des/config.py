"""Options of the discrete-event engine that the closed forms and the Monte Carlo do not have."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .._checks import finite_nonneg
from ..errors import InvalidParameterError

__all__ = ["Overheads", "QueueDiscipline", "check_queue"]

QueueDiscipline = Literal["fifo", "lifo"]


@dataclass(frozen=True)
class Overheads:
    """Costs the papers ignore and deployments pay; all zero by default, all in ms.

    ``message_ms``: one message between the drafter's host and a target server,
    each way (a verification request, its result, a new prefix for the chain);
    ``sync_ms``: KV-cache synchronisation after a correction, before the drafter
    resumes; ``startup_ms``: start-up of a verification task on a server, before
    its forward.
    """

    message_ms: float = 0.0
    sync_ms: float = 0.0
    startup_ms: float = 0.0

    def __post_init__(self) -> None:
        for name in ("message_ms", "sync_ms", "startup_ms"):
            object.__setattr__(self, name, finite_nonneg(name, getattr(self, name), "overheads are in ms"))

    @property
    def zero(self) -> bool:
        return self.message_ms == 0 and self.sync_ms == 0 and self.startup_ms == 0


def check_queue(queue: str) -> str:
    if queue not in ("fifo", "lifo"):
        raise InvalidParameterError(f"queue must be 'fifo' or 'lifo', got {queue!r}")
    return queue

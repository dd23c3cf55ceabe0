"""Deployment: where the target runs — servers, the non-SI chain, the queue, overheads.

This module holds the one definition of a deployment's servers that every
engine, command and experiment uses:

* ``servers`` is the **total number of target instances** (a GPU, or a group of
  GPUs holding one copy of the target).  When DSI runs its non-SI chain
  (``chain=True``, the default) the chain occupies one of them and speculative
  verification tasks share the other ``servers − 1``; without the chain tasks
  share all ``servers``.  ``None`` means "as many as DSI needs so that no
  verification ever waits".  SI and non-SI use one target instance.
* A lookahead ``k`` is *feasible* on a deployment when the no-wait count
  ``⌈(v + startup)/(k·d)⌉`` (plus one for the chain) fits in ``servers``:
  a task occupies a server for its start-up and its verification forward ``v``,
  and the drafter submits one every ``k·d`` (``theory/servers.md``).
* The DSI paper's "7 servers" is read as 7 servers for speculative tasks plus
  the chain's own, i.e. :data:`PAPER_SERVERS` ``= 8`` target instances — the
  reading of the authors' repository, whose filter is ``⌈1/(k c)⌉ ≤ 7``.

>>> from simspec import Deployment, Scenario
>>> Deployment(servers=4).speculation_servers
3
>>> s = Scenario.from_ms(30.0, 3.0, 0.8, servers=4)
>>> opts = dsi_lookahead_options(s)
>>> int(opts.k[opts.feasible][0]), int(opts.servers[opts.feasible][0])   # smallest k that fits: ⌈1/(4·0.1)⌉ + 1 = 4
(4, 4)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Literal

import numpy as np

from ._checks import finite_nonneg, int_at_least
from .errors import InvalidParameterError

if TYPE_CHECKING:  # pragma: no cover
    from .scenario import Scenario

__all__ = [
    "Overheads",
    "LOOP_OVERHEADS",
    "QueueDiscipline",
    "Deployment",
    "LookaheadOptions",
    "PAPER_SERVERS",
    "check_queue",
    "dsi_lookahead_options",
    "dsi_servers_needed",
]

QueueDiscipline = Literal["fifo", "lifo"]

#: The DSI paper's "7 servers": 7 for speculative tasks plus the chain's own (target instances in all).
PAPER_SERVERS = 8


def check_queue(queue: str) -> str:
    if queue not in ("fifo", "lifo"):
        raise InvalidParameterError(f"queue must be 'fifo' or 'lifo', got {queue!r}")
    return queue


#: The loop overheads: time the generation loop spends outside forwards, per unit (a measured profile's rows).
LOOP_OVERHEADS = ("per_round_ms", "per_draft_token_ms", "per_drafter_forward_ms", "per_emitted_token_ms")


@dataclass(frozen=True)
class Overheads:
    """Costs the papers ignore and deployments pay; all zero by default, all in ms.

    Communication (only the discrete-event engine models these):
    ``message_ms``: one message between the drafter's host and a target server,
    each way (a verification request, its result, a new prefix for the chain);
    ``sync_ms``: KV-cache synchronisation after a correction, before the drafter
    resumes; ``startup_ms``: start-up of a verification task on a server, before
    its forward.

    Loop overheads (:data:`LOOP_OVERHEADS`: time the generation loop spends
    outside forwards — sampling, bookkeeping, cache cropping —, as a measured
    profile's ``overhead_*`` rows give them; :mod:`simspec.profiles`):
    ``per_round_ms``: each SI verification round (DSI: each verification result
    the coordinator handles); ``per_draft_token_ms``: each draft token proposed;
    ``per_drafter_forward_ms``: each drafter forward (in simspec's engines one
    per draft token, so the two add up; they differ in measured loops that
    draft several tokens per forward); ``per_emitted_token_ms``: each token
    emitted — also by non-SI, whose loop has no other overhead.  SI's and
    non-SI's Monte Carlo and the discrete-event engine charge them
    (``docs/model.md`` §2); the closed forms and DSI's Monte Carlo refuse any
    overhead.  Overheads add field by field (``a + b``).

    >>> ov = Overheads(per_round_ms=0.5) + Overheads(per_emitted_token_ms=0.1)
    >>> ov.zero, ov.loop_zero, ov.loop == ov
    (False, False, True)
    """

    message_ms: float = 0.0
    sync_ms: float = 0.0
    startup_ms: float = 0.0
    per_round_ms: float = 0.0
    per_draft_token_ms: float = 0.0
    per_drafter_forward_ms: float = 0.0
    per_emitted_token_ms: float = 0.0

    def __post_init__(self) -> None:
        for name in ("message_ms", "sync_ms", "startup_ms") + LOOP_OVERHEADS:
            object.__setattr__(self, name, finite_nonneg(name, getattr(self, name), "overheads are in ms"))

    @property
    def zero(self) -> bool:
        """No overhead at all (what the closed forms and DSI's Monte Carlo need)."""
        return self.message_ms == 0 and self.sync_ms == 0 and self.startup_ms == 0 and self.loop_zero

    @property
    def loop_zero(self) -> bool:
        """No loop overhead (the four ``per_*`` fields are zero)."""
        return (self.per_round_ms == 0 and self.per_draft_token_ms == 0 and self.per_drafter_forward_ms == 0
                and self.per_emitted_token_ms == 0)

    @property
    def loop(self) -> "Overheads":
        """These overheads with the communication ones (message, sync, start-up) set to zero."""
        return Overheads(**{name: getattr(self, name) for name in LOOP_OVERHEADS})

    @property
    def per_draft_ms(self) -> float:
        """Loop overhead of one draft in simspec's engines: ``per_draft_token_ms + per_drafter_forward_ms``."""
        return self.per_draft_token_ms + self.per_drafter_forward_ms

    def __add__(self, other: "Overheads") -> "Overheads":
        if not isinstance(other, Overheads):
            return NotImplemented
        return Overheads(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def __repr__(self) -> str:
        """Only the non-zero fields (``Overheads()`` is no overhead)."""
        parts = [f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if getattr(self, f.name)]
        return f"Overheads({', '.join(parts)})"


@dataclass(frozen=True)
class Deployment:
    """Target servers (total instances, the chain's included), chain on/off, queue discipline, overheads.

    >>> Deployment()
    Deployment(servers=None, chain=True, queue='fifo', overheads=Overheads())
    >>> Deployment(servers=1).speculation_servers   # the chain takes the only server: DSI is non-SI
    0
    """

    servers: int | None = None
    chain: bool = True
    queue: QueueDiscipline = "fifo"
    overheads: Overheads = field(default_factory=Overheads)

    def __post_init__(self) -> None:
        if self.servers is not None:
            object.__setattr__(
                self, "servers",
                int_at_least("servers", self.servers, 1, "servers counts every target instance, at least one"),
            )
        if not isinstance(self.chain, (bool, np.bool_)):
            raise InvalidParameterError(f"chain must be True or False, got {self.chain!r}")
        object.__setattr__(self, "chain", bool(self.chain))
        check_queue(self.queue)
        if not isinstance(self.overheads, Overheads):
            raise InvalidParameterError(f"overheads must be an Overheads(...), got {self.overheads!r}")

    @property
    def speculation_servers(self) -> int | None:
        """Servers left for speculative verification tasks (``None``: unlimited)."""
        if self.servers is None:
            return None
        return self.servers - (1 if self.chain else 0)

    @property
    def unlimited(self) -> bool:
        return self.servers is None

    def describe(self) -> dict:
        return {"servers": self.servers, "chain": self.chain, "queue": self.queue,
                **{f.name: getattr(self.overheads, f.name) for f in fields(self.overheads)}}


def dsi_servers_needed(scenario: "Scenario", k) -> np.ndarray:
    """Target instances DSI with lookahead ``k`` needs on ``scenario`` so that no task waits.

    ``⌈(v(k) + startup)/(k d)⌉`` speculative servers, plus one for the chain when
    it runs; ``v(k)`` is the target's verification forward of width ``k + 1``
    from the scenario's latency model, and ``d`` the drafter's time per draft
    (its TPOT plus the loop overheads of a draft, ``Overheads.per_draft_ms``).
    Vectorised over ``k``.
    """
    from . import theory

    s = scenario
    dep = s.deployment
    if isinstance(k, (int, np.integer)) and not isinstance(k, bool) and k >= 1:
        return _servers_needed_scalar(s, int(k))
    k = np.asarray(k)
    t1 = float(s.target.tpot_ms)
    v = np.asarray(s.target.forward(k + 1, s.prompt_len), dtype=float)
    slope = (v / t1 - 1.0) / k + dep.overheads.startup_ms / t1 / k
    return theory.dsi_servers_needed(_draft_ratio(s), k, slope, dep.chain)


def _draft_ratio(s: "Scenario") -> float:
    """``c`` with the drafter's loop overheads per draft: ``(d + per_draft_ms)/t`` (``s.c`` when they are 0)."""
    extra = s.deployment.overheads.per_draft_ms
    return (s.drafter.tpot_ms + extra) / s.target.tpot_ms if extra else s.c


def _servers_needed_scalar(s: "Scenario", k: int) -> np.int64:
    """:func:`dsi_servers_needed` for one ``k`` in plain floats (the same formula, without array overhead)."""
    from . import theory

    t1 = float(s.target.tpot_ms)
    v = float(s.target.forward(k + 1, s.prompt_len))
    slope = (v / t1 - 1.0) / k + s.deployment.overheads.startup_ms / t1 / k
    c = _draft_ratio(s)
    need = (1.0 + slope * k) / (k * c)
    if not (slope >= 0 and math.isfinite(need) and need <= theory.MAX_SERVERS):
        return theory.dsi_servers_needed(c, k, slope, s.deployment.chain)  # raises the named error
    return np.int64(math.ceil(need - theory._EPS) + (1 if s.deployment.chain else 0))


@dataclass(frozen=True)
class LookaheadOptions:
    """DSI lookaheads ``1..k_max`` on one deployment: servers each needs, and which fit."""

    k: np.ndarray
    servers: np.ndarray
    feasible: np.ndarray

    @property
    def any_feasible(self) -> bool:
        return bool(self.feasible.any())


def dsi_lookahead_options(scenario: "Scenario") -> LookaheadOptions:
    """Which DSI lookaheads are feasible on the scenario's deployment, and how many servers each uses.

    Feasible: no verification task ever waits for a server (the no-wait count
    fits in ``deployment.servers``); every ``k`` is feasible with unlimited
    servers.  The closed forms and the Monte Carlo model only feasible
    lookaheads; the discrete-event engine runs any and shows the queueing.
    """
    ks = np.arange(1, scenario.k_max + 1)
    need = dsi_servers_needed(scenario, ks)
    cap = scenario.deployment.servers
    feasible = np.ones(ks.size, dtype=bool) if cap is None else need <= cap
    return LookaheadOptions(ks, need, feasible)

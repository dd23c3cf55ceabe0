"""Scenario: everything that defines one speculative-decoding question.

A :class:`Scenario` holds the target's and the drafter's latency models, the
acceptance process, the lookahead (an int, a policy, or ``"best"``), the number
of target servers ``N`` available to DSI (``None``: as many as it needs), the
number of tokens to generate ``S`` and the prompt length.  It is frozen and
validated on construction; every engine (closed forms, Monte Carlo, and the
discrete-event engine to come) reads the same object.

>>> from simspec import Scenario
>>> s = Scenario.from_ms(target_ms=30.0, drafter_ms=3.0, acceptance=0.8, lookahead=5)
>>> s.c
0.1
>>> s.lookahead
StaticLookahead(k=5)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal, Union

from ._checks import int_at_least, probability
from .acceptance import AcceptanceProcess, IIDAcceptance
from .errors import InvalidParameterError
from .latency import ConstantLatency, LatencyModel
from .lookahead import LookaheadPolicy, StaticLookahead

__all__ = ["Scenario", "LookaheadSpec"]

LookaheadSpec = Union[int, LookaheadPolicy, Literal["best"]]


def _lookahead(value: Any) -> LookaheadPolicy | str:
    if isinstance(value, str):
        if value != "best":
            raise InvalidParameterError(f"lookahead must be an integer >= 1, a policy or 'best', got {value!r}")
        return value
    if isinstance(value, LookaheadPolicy):
        return value
    return StaticLookahead(int_at_least("lookahead", value, 1, "propose at least one draft per round"))


@dataclass(frozen=True)
class Scenario:
    """Target, drafter, acceptance, lookahead, servers and tokens of one question."""

    target: LatencyModel
    drafter: LatencyModel
    acceptance: AcceptanceProcess
    lookahead: LookaheadPolicy | str = "best"
    servers: int | None = None
    tokens: int = 1000
    prompt_len: int = 0
    k_max: int = field(default=200)

    def __post_init__(self) -> None:
        for name in ("target", "drafter"):
            if not isinstance(getattr(self, name), LatencyModel):
                raise InvalidParameterError(
                    f"{name} must be a latency model (e.g. ConstantLatency(tpot_ms=...)), got {getattr(self, name)!r}"
                )
        if not isinstance(self.acceptance, AcceptanceProcess):
            raise InvalidParameterError(
                f"acceptance must be an acceptance process (e.g. IIDAcceptance(0.8)), got {self.acceptance!r}"
            )
        object.__setattr__(self, "lookahead", _lookahead(self.lookahead))
        if self.servers is not None:
            object.__setattr__(
                self, "servers", int_at_least("servers", self.servers, 1, "DSI needs at least one target server")
            )
        object.__setattr__(self, "tokens", int_at_least("tokens", self.tokens, 1))
        object.__setattr__(self, "prompt_len", int_at_least("prompt_len", self.prompt_len, 0))
        object.__setattr__(self, "k_max", int_at_least("k_max", self.k_max, 1))

    @classmethod
    def from_ms(
        cls,
        target_ms: float,
        drafter_ms: float,
        acceptance: float | AcceptanceProcess,
        *,
        target_ttft_ms: float = 0.0,
        drafter_ttft_ms: float = 0.0,
        **kwargs: Any,
    ) -> "Scenario":
        """The papers' scenario: constant latencies in ms and an acceptance rate (or process)."""
        if not isinstance(acceptance, AcceptanceProcess):
            acceptance = IIDAcceptance(probability("acceptance", acceptance))
        return cls(
            ConstantLatency(target_ms, target_ttft_ms),
            ConstantLatency(drafter_ms, drafter_ttft_ms),
            acceptance,
            **kwargs,
        )

    @property
    def c(self) -> float:
        """Drafter/target decode latency ratio."""
        return self.drafter.tpot_ms / self.target.tpot_ms

    @property
    def verify_slope(self) -> float:
        """Extra verification cost per extra token, in target TPOTs (0 for constant latency)."""
        t1 = self.target.tpot_ms
        return float(self.target.forward(2, self.prompt_len)) / t1 - 1.0

    def replace(self, **changes: Any) -> "Scenario":
        return replace(self, **changes)

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary (what result records carry)."""
        la = self.lookahead
        return {
            "target": repr(self.target),
            "drafter": repr(self.drafter),
            "target_tpot_ms": self.target.tpot_ms,
            "drafter_tpot_ms": self.drafter.tpot_ms,
            "target_ttft_ms": self.target.ttft_ms,
            "drafter_ttft_ms": self.drafter.ttft_ms,
            "c": self.c,
            "acceptance": repr(self.acceptance),
            "acceptance_mean": self.acceptance.mean,
            "lookahead": la if isinstance(la, str) else la.name,
            "servers": self.servers,
            "tokens": self.tokens,
            "prompt_len": self.prompt_len,
        }

"""Scenario: everything that defines one speculative-decoding question.

A :class:`Scenario` holds the target's and the drafter's latency models, the
acceptance process, the lookahead (an int, a policy, or ``"best"``), the
deployment (:class:`~simspec.Deployment`: target servers — every target
instance, the non-SI chain's included —, chain on/off, queue discipline,
overheads), the number of tokens to generate ``S`` and the prompt length.  It
is frozen and validated on construction; every engine (closed forms, Monte
Carlo, the discrete-event engine ``simspec.des``) reads the same object.

``servers``, ``chain``, ``queue`` and ``overheads`` may be given directly; they
build the deployment, and ``s.servers`` reads it back.

>>> from simspec import Scenario
>>> s = Scenario.from_ms(target_ms=30.0, drafter_ms=3.0, acceptance=0.8, lookahead=5)
>>> s.c
0.1
>>> s.lookahead
StaticLookahead(k=5)
>>> s.replace(servers=4, chain=False).deployment.speculation_servers
4
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Union

from ._checks import int_at_least, probability
from .acceptance import AcceptanceProcess, IIDAcceptance
from .deployment import LOOP_OVERHEADS, Deployment, Overheads
from .errors import InvalidParameterError
from .latency import ConstantLatency, LatencyModel, check_latency_model
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


_DEPLOYMENT_KEYS = ("servers", "chain", "queue", "overheads")


def model_overheads(*models: Any, base: Overheads | None = None) -> Overheads:
    """``base`` (default none) plus each latency model's loop ``overheads``, field by field.

    A :class:`~simspec.profiles.ProfileLatency` carries its profile's overhead rows; a model
    without ``overheads`` adds none.  The one rule for a profile's overheads
    (:meth:`Scenario.from_profiles` and ``simspec replay``).
    """
    total = base if base is not None else Overheads()
    for model in models:
        extra = getattr(model, "overheads", None)
        if isinstance(extra, Overheads):
            total = total + extra
    return total


@dataclass(frozen=True, init=False)
class Scenario:
    """Target, drafter, acceptance, lookahead, deployment and tokens of one question."""

    target: LatencyModel
    drafter: LatencyModel
    acceptance: AcceptanceProcess
    lookahead: LookaheadPolicy | str
    deployment: Deployment
    tokens: int
    prompt_len: int
    k_max: int

    def __init__(
        self,
        target: LatencyModel,
        drafter: LatencyModel,
        acceptance: AcceptanceProcess,
        lookahead: LookaheadSpec = "best",
        servers: int | None = None,
        tokens: int = 1000,
        prompt_len: int = 0,
        k_max: int = 200,
        *,
        deployment: Deployment | None = None,
        chain: bool | None = None,
        queue: str | None = None,
        overheads: Overheads | None = None,
    ) -> None:
        check_latency_model("target", target)
        check_latency_model("drafter", drafter)
        if not isinstance(acceptance, AcceptanceProcess):
            raise InvalidParameterError(
                f"acceptance must be an acceptance process (e.g. IIDAcceptance(0.8)), got {acceptance!r}"
            )
        if deployment is None:
            deployment = Deployment()
        elif not isinstance(deployment, Deployment):
            raise InvalidParameterError(f"deployment must be a Deployment(...), got {deployment!r}")
        changes = {k: v for k, v in (("servers", servers), ("chain", chain), ("queue", queue),
                                     ("overheads", overheads)) if v is not None}
        if changes:
            deployment = Deployment(**{**_deployment_fields(deployment), **changes})
        set_ = object.__setattr__
        set_(self, "target", target)
        set_(self, "drafter", drafter)
        set_(self, "acceptance", acceptance)
        set_(self, "lookahead", _lookahead(lookahead))
        set_(self, "deployment", deployment)
        set_(self, "tokens", int_at_least("tokens", tokens, 1))
        set_(self, "prompt_len", int_at_least("prompt_len", prompt_len, 0))
        set_(self, "k_max", int_at_least("k_max", k_max, 1))

    @property
    def servers(self) -> int | None:
        """Target instances in all, the chain's included (``deployment.servers``; None: as many as needed)."""
        return self.deployment.servers

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

    @classmethod
    def from_profiles(
        cls,
        target: LatencyModel,
        drafter: LatencyModel,
        acceptance: float | AcceptanceProcess,
        **kwargs: Any,
    ) -> "Scenario":
        """A scenario from measured latency profiles (:func:`simspec.profiles.load_profile`), with their overheads.

        The one rule for a profile's loop overheads: the deployment's overheads
        are ``overheads`` (default none) plus the target's and the drafter's
        ``overheads`` (:class:`~simspec.profiles.ProfileLatency`), field by field.
        Either model may be any latency model (one without ``overheads`` adds none).
        ``Scenario(...)`` and ``replace`` never read a model's overheads, so they
        are counted once.  A target profile measured at several widths also caps
        ``k_max`` (the lookaheads "best" searches) at its widest verification,
        ``max_width − 1``: beyond it a profile only repeats its last value.

        >>> from simspec.profiles import builtin_profile
        >>> s = Scenario.from_profiles(builtin_profile("dsi-paper-a100", "vicuna-13b@cnn-dm"),
        ...                            builtin_profile("dsi-paper-a100", "vicuna-68m"), 0.63)
        >>> round(s.c, 4), s.deployment.overheads.zero
        (0.0663, True)
        """
        if not isinstance(acceptance, AcceptanceProcess):
            acceptance = IIDAcceptance(probability("acceptance", acceptance))
        base = kwargs.pop("overheads", None)
        dep = kwargs.get("deployment")
        total = model_overheads(target, drafter, base=base if base is not None else (
            dep.overheads if isinstance(dep, Deployment) else Overheads()))
        widest = getattr(target, "max_width", None)
        if isinstance(widest, int) and widest >= 2:
            kwargs["k_max"] = min(kwargs.get("k_max", 200), widest - 1)
        return cls(target, drafter, acceptance, overheads=total, **kwargs)

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
        """A copy with ``changes``; ``servers``, ``chain``, ``queue`` and ``overheads`` change the deployment."""
        unknown = set(changes) - set(_FIELDS) - set(_DEPLOYMENT_KEYS)
        if unknown:
            raise InvalidParameterError(f"Scenario has no parameter {sorted(unknown)[0]!r}; "
                                        f"choose from {', '.join(_FIELDS + _DEPLOYMENT_KEYS)}")
        dep = changes.pop("deployment", self.deployment)
        dep_changes = {k: changes.pop(k) for k in _DEPLOYMENT_KEYS if k in changes}
        if dep_changes:
            dep = Deployment(**{**_deployment_fields(dep), **dep_changes})
        kwargs = {name: getattr(self, name) for name in _FIELDS if name != "deployment"}
        kwargs.update(changes)
        return Scenario(deployment=dep, **kwargs)

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
            "chain": self.deployment.chain,
            "queue": self.deployment.queue,
            "message_ms": self.deployment.overheads.message_ms,
            "sync_ms": self.deployment.overheads.sync_ms,
            "startup_ms": self.deployment.overheads.startup_ms,
            **{name: getattr(self.deployment.overheads, name) for name in LOOP_OVERHEADS},
            "tokens": self.tokens,
            "prompt_len": self.prompt_len,
        }


_FIELDS = ("target", "drafter", "acceptance", "lookahead", "deployment", "tokens", "prompt_len", "k_max")


def _deployment_fields(dep: Deployment) -> dict[str, Any]:
    return {"servers": dep.servers, "chain": dep.chain, "queue": dep.queue, "overheads": dep.overheads}

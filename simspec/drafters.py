"""Drafters that are not separate models: prompt lookup (n-gram) and early-exit self-speculation.

* **Prompt lookup** (Saxena 2023; transformers' ``prompt_lookup_num_tokens``): the drafter is a search of
  the text so far, a CPU lookup per round rather than a forward per draft. :func:`prompt_lookup_scenario`
  charges it once per round (``Overheads.per_round_ms``) and gives the drafter a negligible forward, so
  that ``c ≈ 0`` (a lookup proposes all its tokens at once). Its acceptance comes from a trace — best the
  rounds themselves, which :func:`simspec.prompt_lookup.prompt_lookup_rounds` computes exactly from the
  target's greedy output.
* **Early exit / self-speculation** (LayerSkip, Elhoushi et al. 2024, arXiv 2404.16710; transformers'
  ``assistant_early_exit``): the drafter is the target's first ``L`` of ``N`` layers, so a draft costs
  ``L/N`` of a target forward of the same shape (:class:`~simspec.ScaledLatency` of the target's model —
  a measured profile carries its width and context dependence over). The LM head's share and the reuse of
  the early layers' cache by the verification are not modelled: the verification is a full forward, which
  makes the estimate conservative.

>>> from simspec import ConstantLatency
>>> s = early_exit_scenario(ConstantLatency(30.0), 0.7, exit_layer=4, num_layers=16, lookahead=3)
>>> round(s.c, 4), s.drafter.forward()
(0.25, 7.5)
>>> p = prompt_lookup_scenario(ConstantLatency(30.0), 0.4, lookup_ms=0.2, lookahead=10)
>>> p.deployment.overheads.per_round_ms, p.drafter.tpot_ms
(0.2, 0.001)
"""

from __future__ import annotations

from typing import Any

from ._checks import finite_nonneg, int_at_least
from .acceptance import AcceptanceProcess
from .deployment import Overheads
from .errors import InvalidParameterError
from .latency import ConstantLatency, LatencyModel, ScaledLatency
from .scenario import Scenario

__all__ = ["prompt_lookup_scenario", "early_exit_scenario", "LOOKUP_FORWARD_MS"]

#: the drafter forward of a lookup "drafter": negligible, and positive so that ratios stay defined
LOOKUP_FORWARD_MS = 1e-3


def prompt_lookup_scenario(target: LatencyModel, acceptance: float | AcceptanceProcess, *, lookup_ms: float = 0.1,
                           lookahead: Any = 10, **kwargs: Any) -> Scenario:
    """SI with prompt lookup: ``lookup_ms`` per round of CPU search, no drafter model.

    ``lookahead``: transformers' ``prompt_lookup_num_tokens`` (its default is 10). Other keywords go to
    :meth:`Scenario.from_profiles` (the target's measured overheads, if it is a profile, are added).
    """
    lookup = finite_nonneg("lookup_ms", lookup_ms, "the CPU time of one n-gram search, in ms")
    extra = kwargs.pop("overheads", None) or Overheads()
    return Scenario.from_profiles(target, ConstantLatency(LOOKUP_FORWARD_MS), acceptance, lookahead=lookahead,
                                  overheads=extra + Overheads(per_round_ms=lookup), **kwargs)


def early_exit_scenario(target: LatencyModel, acceptance: float | AcceptanceProcess, *, exit_layer: int,
                        num_layers: int, **kwargs: Any) -> Scenario:
    """SI drafting with the target's first ``exit_layer`` of ``num_layers`` layers (LayerSkip-style)."""
    n = int_at_least("num_layers", num_layers, 2, "the target's decoder layers")
    L = int_at_least("exit_layer", exit_layer, 1, "layers the draft runs")
    if L >= n:
        raise InvalidParameterError(
            f"exit_layer={L} must be below num_layers={n}: a draft through every layer is the target itself"
        )
    return Scenario.from_profiles(target, ScaledLatency(target, L / n), acceptance, **kwargs)

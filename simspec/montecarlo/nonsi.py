"""Non-SI: plain autoregressive decoding, one target forward per token."""

from __future__ import annotations

import numpy as np

from ..deployment import Overheads
from ..latency import LatencyModel

__all__ = ["nonsi_run"]


def nonsi_run(target: LatencyModel, tokens: int, reps: int, prompt_len: int = 0,
              overheads: Overheads | None = None) -> dict[str, np.ndarray]:
    """Decode time and costs of non-SI for ``reps`` replications (deterministic with constant latency).

    ``overheads``: a plain loop pays ``per_emitted_token_ms`` per token (its only
    loop overhead), added to the decode time, not to the target's busy time.

    >>> from simspec import ConstantLatency, Overheads
    >>> nonsi_run(ConstantLatency(30.0), 10, 2, overheads=Overheads(per_emitted_token_ms=0.5))["decode_ms"]
    array([305., 305.])
    """
    busy = tokens * float(target.forward(1, prompt_len))
    decode = busy
    if overheads is not None and overheads.per_emitted_token_ms:
        decode = busy + tokens * overheads.per_emitted_token_ms
    ones = np.ones(reps)
    return {
        "decode_ms": decode * ones,
        "target_forwards": tokens * ones,
        "target_forwards_wasted": 0 * ones,
        "drafter_forwards": 0 * ones,
        "target_busy_ms": busy * ones,
        "drafter_busy_ms": 0 * ones,
    }

"""Non-SI: plain autoregressive decoding, one target forward per token."""

from __future__ import annotations

import numpy as np

from ..latency import LatencyModel

__all__ = ["nonsi_run"]


def nonsi_run(target: LatencyModel, tokens: int, reps: int, prompt_len: int = 0) -> dict[str, np.ndarray]:
    """Decode time and costs of non-SI for ``reps`` replications (deterministic with constant latency)."""
    decode = tokens * float(target.forward(1, prompt_len))
    ones = np.ones(reps)
    return {
        "decode_ms": decode * ones,
        "target_forwards": tokens * ones,
        "target_forwards_wasted": 0 * ones,
        "drafter_forwards": 0 * ones,
        "target_busy_ms": decode * ones,
        "drafter_busy_ms": 0 * ones,
    }

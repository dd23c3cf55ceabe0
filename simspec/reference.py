"""Published figures simspec reproduces or explains (``docs/model.md`` §9).

>>> from simspec.reference import DSI_PAPER_TABLE
>>> len(DSI_PAPER_TABLE), DSI_PAPER_TABLE[0].target
(10, 'Vicuna-13B')
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PublishedPair", "DSI_PAPER_TABLE"]


@dataclass(frozen=True)
class PublishedPair:
    """One row of the DSI paper's real-model table (1×A100-80GB, bf16, greedy).

    Latencies are TPOT in ms; ``acceptance = n̄/(1 + n̄)`` with ``n̄`` the mean
    exact-match run length over 50 prompts; ``dsi_vs_si`` is what the authors'
    thread-pool simulator reported (lookahead ∈ {1, 5, 10}, servers ∈ {1, 7},
    50 tokens; the chosen lookahead and servers were not published).
    """

    target: str
    drafter: str
    dataset: str
    target_ms: float
    drafter_ms: float
    acceptance: float
    dsi_vs_si: float

    @property
    def c(self) -> float:
        return self.drafter_ms / self.target_ms


#: Timor et al., DSI, NeurIPS ENLSP-IV 2024 (PMLR v262) Table 1 = ICLR 2025 Table 2.
DSI_PAPER_TABLE: tuple[PublishedPair, ...] = (
    PublishedPair("Vicuna-13B", "Vicuna-68M", "CNN-DM", 37.7, 2.5, 0.63, 1.47),
    PublishedPair("Vicuna-13B", "Vicuna-68M", "Alpaca", 33.3, 2.5, 0.58, 1.41),
    PublishedPair("Vicuna-7B", "Vicuna-68M", "CNN-DM", 29.4, 2.5, 0.67, 1.29),
    PublishedPair("Vicuna-7B", "Vicuna-68M", "Alpaca", 26.0, 2.5, 0.59, 1.70),
    PublishedPair("Starcoder-15B", "Starcoder-168M", "HumanEval", 20.6, 6.8, 0.93, 1.92),
    PublishedPair("Starcoder-15B", "Starcoder-168M", "MBPP", 21.0, 6.8, 0.90, 1.66),
    PublishedPair("Phi3-14B", "Phi3-4B", "HumanEval", 52.1, 34.0, 0.95, 1.41),
    PublishedPair("Phi3-14B", "Phi3-4B", "MBPP", 52.2, 34.3, 0.94, 1.37),
    PublishedPair("Phi3-14B", "Phi3-4B", "CNN-DM", 52.4, 34.6, 0.93, 1.39),
    PublishedPair("Phi3-14B", "Phi3-4B", "Alpaca", 49.6, 33.4, 0.87, 1.60),
)

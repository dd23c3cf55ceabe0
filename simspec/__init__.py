"""simspec: speedup, cost and losslessness of speculative decoding, simulated.

The public API, grouped as the reference docs group it.
"""

from __future__ import annotations

from . import theory
from .acceptance import (
    AcceptanceDraw,
    AcceptanceProcess,
    IIDAcceptance,
    MarkovAcceptance,
    ScheduleAcceptance,
    TraceAcceptance,
)
from .compare import compare
from .heatmap import Heatmap, paper_heatmap, repo_heatmap
from .reference import DSI_PAPER_TABLE
from .errors import (
    InvalidParameterError,
    OptionalDependencyError,
    SimspecError,
    TraceFormatError,
    UnsupportedScenarioError,
)
from .des import Overheads, RunRecord, SimulationResult, simulate
from .latency import AffineLatency, ConstantLatency, LatencyModel, StochasticLatency
from .lookahead import HeuristicLookahead, LookaheadPolicy, OracleLookahead, StaticLookahead
from .records import AlgorithmResult, Comparison, Estimate
from .scenario import Scenario

__version__ = "0.1.0"

#: Public names by section; the API reference is built from these groups.
API_SECTIONS = {
    "Scenarios": ["Scenario"],
    "Latency models": ["LatencyModel", "ConstantLatency", "AffineLatency", "StochasticLatency"],
    "Acceptance processes": [
        "AcceptanceProcess",
        "AcceptanceDraw",
        "IIDAcceptance",
        "ScheduleAcceptance",
        "MarkovAcceptance",
        "TraceAcceptance",
    ],
    "Lookahead policies": ["LookaheadPolicy", "StaticLookahead", "HeuristicLookahead", "OracleLookahead"],
    "Engines": ["compare", "theory", "simulate", "Overheads"],
    "Results": ["Estimate", "AlgorithmResult", "Comparison", "SimulationResult", "RunRecord"],
    "Figures and published data": ["Heatmap", "paper_heatmap", "repo_heatmap", "DSI_PAPER_TABLE"],
    "Exceptions": [
        "SimspecError",
        "InvalidParameterError",
        "TraceFormatError",
        "UnsupportedScenarioError",
        "OptionalDependencyError",
    ],
}

__all__ = [name for names in API_SECTIONS.values() for name in names]
assert len(__all__) == len(set(__all__)) and all(n in globals() for n in __all__), "API_SECTIONS out of sync"

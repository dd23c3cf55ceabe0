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
    ResourceLimitError,
    SimspecError,
    TraceFormatError,
    UnsupportedScenarioError,
)
from .deployment import PAPER_SERVERS, Deployment, Overheads, dsi_lookahead_options
from .des import simulate
from .latency import AffineLatency, ConstantLatency, LatencyBase, LatencyModel, StochasticLatency
from .planner import LookaheadChoice, best_lookahead
from .lookahead import HeuristicLookahead, LookaheadPolicy, OracleLookahead, StaticLookahead
from .records import AlgorithmResult, Comparison, Estimate, RunRecord, SimulationResult
from .scenario import Scenario

__version__ = "0.1.0"

#: Public names by section; the API reference is built from these groups.
API_SECTIONS = {
    "Scenarios": ["Scenario", "Deployment", "Overheads", "PAPER_SERVERS"],
    "Latency models": ["LatencyModel", "LatencyBase", "ConstantLatency", "AffineLatency", "StochasticLatency"],
    "Acceptance processes": [
        "AcceptanceProcess",
        "AcceptanceDraw",
        "IIDAcceptance",
        "ScheduleAcceptance",
        "MarkovAcceptance",
        "TraceAcceptance",
    ],
    "Lookahead policies": ["LookaheadPolicy", "StaticLookahead", "HeuristicLookahead", "OracleLookahead"],
    "Engines": ["compare", "theory", "simulate"],
    "Planning": ["best_lookahead", "LookaheadChoice", "dsi_lookahead_options"],
    "Results": ["Estimate", "AlgorithmResult", "Comparison", "SimulationResult", "RunRecord"],
    "Figures and published data": ["Heatmap", "paper_heatmap", "repo_heatmap", "DSI_PAPER_TABLE"],
    "Exceptions": [
        "SimspecError",
        "InvalidParameterError",
        "TraceFormatError",
        "UnsupportedScenarioError",
        "OptionalDependencyError",
        "ResourceLimitError",
    ],
}

__all__ = [name for names in API_SECTIONS.values() for name in names]
assert len(__all__) == len(set(__all__)) and all(n in globals() for n in __all__), "API_SECTIONS out of sync"

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
    PositionalAcceptance,
    ScheduleAcceptance,
    TraceAcceptance,
)
from .compare import compare
from .heatmap import Heatmap, paper_heatmap, repo_heatmap
from .reference import DSI_PAPER_TABLE
from .errors import (
    InvalidParameterError,
    OptionalDependencyError,
    ProfileFormatError,
    ResourceLimitError,
    SimspecError,
    TraceFormatError,
    UnsupportedScenarioError,
)
from .deployment import PAPER_SERVERS, Deployment, Overheads, dsi_lookahead_options
from .des import simulate
from .latency import AffineLatency, ConstantLatency, LatencyBase, LatencyModel, ScaledLatency, StochasticLatency
from .profiles import ProfileLatency, ProfileRangeWarning, load_profile
from .batch_latency import BatchedLatency, BatchLatencyModel, ProfileBatchLatency, load_batch_profile
from .hardware import HARDWARE, Hardware, hardware_preset
from .roofline import ModelSpec, RooflineFit, RooflineLatency, fit_roofline
from .planner import LookaheadChoice, best_lookahead
from .lookahead import (
    AdaptiveConfidenceLookahead,
    ConfidenceLookahead,
    HeuristicLookahead,
    LookaheadPolicy,
    OracleLookahead,
    StaticLookahead,
)
from .learned_lookahead import AcceptanceClassifier, DiscoLookahead, SpecDecPPLookahead
from .signals import ConfidenceSignal
from .records import AlgorithmResult, Comparison, Estimate, RunRecord, SimulationResult
from .scenario import Scenario
from .drafters import early_exit_scenario, prompt_lookup_scenario
from .traces import RoundTrace, load_acceptance_trace, load_round_trace, write_acceptance_trace, write_round_trace
from .replay import ReplayResult, replay_rounds
from .engine_metrics import from_engine_metrics
from .sweeps import Grid, SweepResult, sweep
from .trees import (
    PositionalTreeAcceptance,
    TokenTree,
    TreeAcceptance,
    TreeChoice,
    TreeRounds,
    best_tree,
    dynamic_tree,
    expected_accepted_length,
    optimal_tree,
    simulate_tree,
)
from .serving import (
    SLO,
    Batching,
    BatchSizeLookahead,
    BestKTable,
    LoadCurve,
    best_k_by_batch,
    load_curve,
    BurstyArrivals,
    PoissonArrivals,
    RequestTrace,
    ServingResult,
    Workload,
    load_request_trace,
    serve,
)

__version__ = "0.1.0"

#: Public names by section; the API reference is built from these groups.
API_SECTIONS = {
    "Scenarios": ["Scenario", "Deployment", "Overheads", "PAPER_SERVERS", "prompt_lookup_scenario",
                  "early_exit_scenario"],
    "Latency models": ["LatencyModel", "LatencyBase", "ConstantLatency", "AffineLatency", "StochasticLatency",
                       "ScaledLatency", "ProfileLatency", "load_profile", "ProfileRangeWarning"],
    "Batch latency and hardware": ["BatchLatencyModel", "BatchedLatency", "ProfileBatchLatency", "load_batch_profile",
                                   "RooflineLatency", "ModelSpec", "Hardware", "HARDWARE", "hardware_preset",
                                   "fit_roofline", "RooflineFit"],
    "Acceptance processes": [
        "AcceptanceProcess",
        "AcceptanceDraw",
        "IIDAcceptance",
        "ScheduleAcceptance",
        "MarkovAcceptance",
        "TraceAcceptance",
        "PositionalAcceptance",
        "ConfidenceSignal",
    ],
    "Traces and real engines": ["load_acceptance_trace", "write_acceptance_trace", "RoundTrace", "load_round_trace",
                                "write_round_trace", "replay_rounds", "ReplayResult", "from_engine_metrics"],
    "Lookahead policies": ["LookaheadPolicy", "StaticLookahead", "HeuristicLookahead", "ConfidenceLookahead",
                           "AdaptiveConfidenceLookahead", "DiscoLookahead", "SpecDecPPLookahead",
                           "AcceptanceClassifier", "OracleLookahead"],
    "Engines": ["compare", "theory", "simulate", "sweep", "Grid", "SweepResult"],
    "Serving under load": ["serve", "ServingResult", "load_curve", "LoadCurve", "best_k_by_batch", "BestKTable",
                           "Workload", "PoissonArrivals", "BurstyArrivals", "RequestTrace",
                           "load_request_trace", "Batching", "BatchSizeLookahead", "SLO"],
    "Planning": ["best_lookahead", "LookaheadChoice", "dsi_lookahead_options"],
    "Token trees": ["TokenTree", "TreeAcceptance", "PositionalTreeAcceptance", "expected_accepted_length",
                    "simulate_tree", "TreeRounds", "optimal_tree", "best_tree", "TreeChoice", "dynamic_tree"],
    "Results": ["Estimate", "AlgorithmResult", "Comparison", "SimulationResult", "RunRecord"],
    "Figures and published data": ["Heatmap", "paper_heatmap", "repo_heatmap", "DSI_PAPER_TABLE"],
    "Exceptions": [
        "SimspecError",
        "InvalidParameterError",
        "TraceFormatError",
        "ProfileFormatError",
        "UnsupportedScenarioError",
        "OptionalDependencyError",
        "ResourceLimitError",
    ],
}

__all__ = [name for names in API_SECTIONS.values() for name in names]
assert len(__all__) == len(set(__all__)) and all(n in globals() for n in __all__), "API_SECTIONS out of sync"
